// Watcher against a real etcd: events from other writers, resync after restart and compaction.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "services/common/etcd/etcd_client.h"
#include "services/common/etcd/watcher.h"
#include "tests/testutil/etcd_fixture.h"
#include "tests/testutil/etcd_process.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::etcd {
namespace {

using ::stockpile::testing::EtcdProcess;
using ::stockpile::testing::IsOk;
using ::stockpile::testing::TempDir;
using ::stockpile::testing::WaitFor;
using namespace std::chrono_literals;

// The consumer side: a map kept equal to etcd's prefix by resyncs and events.
class Mirror {
 public:
  void OnResync(const std::vector<KeyValue>& current, int64_t /*revision*/) {
    std::lock_guard<std::mutex> lock(mu_);
    map_.clear();
    for (const auto& kv : current) map_[kv.key] = kv.value;
    ++resyncs_;
  }
  void OnEvents(const std::vector<WatchEvent>& events) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& event : events) {
      if (event.type == WatchEvent::Type::kPut) {
        map_[event.kv.key] = event.kv.value;
        log_.push_back("PUT " + event.kv.key + "=" + event.kv.value);
      } else {
        map_.erase(event.kv.key);
        log_.push_back("DELETE " + event.kv.key);
      }
    }
  }
  std::map<std::string, std::string> map() {
    std::lock_guard<std::mutex> lock(mu_);
    return map_;
  }
  std::vector<std::string> log() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }
  int resyncs() {
    std::lock_guard<std::mutex> lock(mu_);
    return resyncs_;
  }
  bool Has(const std::string& key, const std::string& value) {
    auto m = map();
    auto it = m.find(key);
    return it != m.end() && it->second == value;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> map_;
  std::vector<std::string> log_;
  int resyncs_ = 0;
};

class WatcherTest : public ::stockpile::testing::EtcdFixture {
 protected:
  std::unique_ptr<Watcher> StartWatcher(const std::string& prefix) {
    WatcherOptions options;
    options.prefix = prefix;
    options.max_backoff = absl::Milliseconds(500);
    auto watcher = std::make_unique<Watcher>(
        client_, options,
        [this](const std::vector<KeyValue>& kvs, int64_t rev) { mirror_.OnResync(kvs, rev); },
        [this](const std::vector<WatchEvent>& events) { mirror_.OnEvents(events); });
    watcher->Start();
    return watcher;
  }

  void Etcdctl(const std::vector<std::string>& args) {
    std::string out;
    ASSERT_EQ(etcd_.Etcdctl(args, &out), 0) << out;
  }

  Mirror mirror_;
};

TEST_F(WatcherTest, SeesCurrentStateThenPutsAndDeletesFromAnotherWriter) {
  ASSERT_THAT(client_->Put("/w/existing", "0"), IsOk());
  auto watcher = StartWatcher("/w/");
  ASSERT_TRUE(WaitFor([&] { return watcher->connected(); }, 5s));
  EXPECT_EQ(mirror_.resyncs(), 1);
  EXPECT_TRUE(mirror_.Has("/w/existing", "0"));

  Etcdctl({"put", "/w/a", "1"});
  Etcdctl({"put", "/outside", "x"});
  Etcdctl({"put", "/w/a", "2"});
  Etcdctl({"del", "/w/existing"});
  ASSERT_TRUE(WaitFor([&] { return mirror_.log().size() >= 3; }, 5s));
  EXPECT_THAT(mirror_.log(),
              ::testing::ElementsAre("PUT /w/a=1", "PUT /w/a=2", "DELETE /w/existing"));
  EXPECT_EQ(mirror_.map(), (std::map<std::string, std::string>{{"/w/a", "2"}}));
  // The delete was the last write: its revision is the store's current one.
  EXPECT_EQ(watcher->last_revision(), client_->Range("/w/a")->revision);
}

TEST_F(WatcherTest, StopsPromptlyWhileStreaming) {
  auto watcher = StartWatcher("/w/");
  ASSERT_TRUE(WaitFor([&] { return watcher->connected(); }, 5s));
  const auto start = std::chrono::steady_clock::now();
  watcher->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
  EXPECT_FALSE(watcher->connected());
}

TEST_F(WatcherTest, ResyncsAfterEtcdIsKilledAndRestarted) {
  auto watcher = StartWatcher("/w/");
  ASSERT_TRUE(WaitFor([&] { return watcher->connected(); }, 5s));
  ASSERT_THAT(client_->Put("/w/before", "1"), IsOk());
  ASSERT_TRUE(WaitFor([&] { return mirror_.Has("/w/before", "1"); }, 5s));

  etcd_.Kill();
  EXPECT_TRUE(WaitFor([&] { return !watcher->connected(); }, 5s));
  std::string error;
  ASSERT_TRUE(etcd_.Restart(15s, &error)) << error;
  Etcdctl({"put", "/w/after", "2"});

  EXPECT_TRUE(WaitFor([&] { return mirror_.Has("/w/after", "2"); }, 8s));
  EXPECT_TRUE(mirror_.Has("/w/before", "1"));
  EXPECT_GE(mirror_.resyncs(), 2);
  // The re-list can already show the new key while the watch it opens next is not yet created.
  EXPECT_TRUE(WaitFor([&] { return watcher->connected(); }, 5s));
}

TEST_F(WatcherTest, ReListsWhenItsStartRevisionWasCompacted) {
  ASSERT_THAT(client_->Put("/w/a", "1"), IsOk());
  // Hold the watcher inside its first resync while keys change and history is compacted, so the
  // watch it then opens starts at a revision etcd no longer has.
  std::mutex gate;
  gate.lock();
  int resyncs = 0;
  WatcherOptions options;
  options.prefix = "/w/";
  Watcher watcher(
      client_, options,
      [&](const std::vector<KeyValue>& kvs, int64_t rev) {
        if (resyncs++ == 0) std::lock_guard<std::mutex> wait(gate);
        mirror_.OnResync(kvs, rev);
      },
      [&](const std::vector<WatchEvent>& events) { mirror_.OnEvents(events); });
  watcher.Start();
  std::this_thread::sleep_for(200ms);
  ASSERT_THAT(client_->Put("/w/a", "2"), IsOk());
  auto latest = client_->Put("/w/b", "3");
  ASSERT_THAT(latest, IsOk());
  Etcdctl({"compact", std::to_string(*latest)});
  gate.unlock();

  EXPECT_TRUE(WaitFor([&] { return mirror_.Has("/w/a", "2") && mirror_.Has("/w/b", "3"); }, 5s));
  EXPECT_GE(watcher.resync_count(), 2);
  watcher.Stop();
}

}  // namespace
}  // namespace stockpile::etcd
