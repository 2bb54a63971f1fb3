// Group commit: commands that arrive while a group is being made durable are applied into the
// next, open group, which goes to the syncer as one write when the syncer is free.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/testutil/status_matchers.h"
#include "tests/unit/level/level_test_env.h"

namespace stockpile::level::testing {
namespace {

using ::stockpile::testing::IsOk;
using namespace stockpile::v1;  // NOLINT

// Holds the syncer before the first group's write until Release(): commands submitted
// meanwhile gather in the next, open group.
class FirstWriteStall {
 public:
  LevelCore::Options Options() {
    LevelCore::Options options;
    options.hold_sweep_interval_ms = 3'600'000;
    options.before_group_write = [this] {
      std::unique_lock<std::mutex> lock(mu_);
      ++writes_;
      cv_.notify_all();
      if (writes_ == 1) cv_.wait(lock, [&] { return released_; });
      return writes_ == 1 ? first_write_ : absl::OkStatus();
    };
    return options;
  }
  void WaitForFirstWrite() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return writes_ >= 1; });
  }
  // `first_write`: what the store answers the stalled write (a failure: it is not written).
  void Release(absl::Status first_write = absl::OkStatus()) {
    std::lock_guard<std::mutex> lock(mu_);
    first_write_ = std::move(first_write);
    released_ = true;
    cv_.notify_all();
  }
  int writes() {
    std::lock_guard<std::mutex> lock(mu_);
    return writes_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  absl::Status first_write_;
  int writes_ = 0;
};

// A receipt of `quantity` SH-0001 at 420102-W001 under `id`, its answer set into `answer`.
void SubmitReceipt(LevelTestEnv& env, const std::string& id, int64_t quantity,
                   std::promise<CommandResult>& answer) {
  const Operation op = LevelTestEnv::Receive("warehouses/420102-W001", "SH-0001", quantity);
  ApplyBatchRequest req;
  *req.add_operations() = op;
  req.set_request_id(id);
  env.core().ApplyOperations("Receive", id, "tester", {op}, req,
                             [&answer](CommandResult r) { answer.set_value(std::move(r)); });
}

TEST(GroupCommitTest, CommandsArrivingDuringASyncShareOneNextGroup) {
  LevelTestEnv env;
  ASSERT_THAT(env.CreateWarehouse("420102-W001").status(), IsOk());
  FirstWriteStall stall;
  env.Reopen(stall.Options());
  const uint64_t groups_before = env.core().stats().commit_groups;

  constexpr int kReceipts = 50;
  std::vector<std::promise<CommandResult>> promises(kReceipts + 1);
  auto submit = [&](int i) {
    const Operation op = LevelTestEnv::Receive("warehouses/420102-W001", "SH-0001", 1 + i);
    ApplyBatchRequest req;
    *req.add_operations() = op;
    const std::string id = absl::StrCat("receipt-", i);
    req.set_request_id(id);
    env.core().ApplyOperations("Receive", id, "tester", {op}, req,
                               [&promises, i](CommandResult r) { promises[i].set_value(r); });
  };
  submit(0);
  stall.WaitForFirstWrite();
  // One by one, so a writer that handed each arrival on at once would make many groups.
  for (int i = 1; i <= kReceipts; ++i) {
    submit(i);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  stall.Release();

  int64_t expected = 0;
  for (int i = 0; i <= kReceipts; ++i) {
    CommandResult r = promises[i].get_future().get();
    EXPECT_THAT(r.status, IsOk());
    expected += 1 + i;
  }
  // One write for the stalled receipt, one for all fifty that came meanwhile.
  EXPECT_EQ(env.core().stats().commit_groups - groups_before, 2u);
  EXPECT_EQ(stall.writes(), 2);
  EXPECT_EQ(env.Balance("warehouses/420102-W001", "SH-0001").on_hand(), expected);
  env.Reopen();
  EXPECT_EQ(env.Balance("warehouses/420102-W001", "SH-0001").on_hand(), expected);
}

// A retry can arrive before its first execution is durable: in the same open group, or while
// that group is still being written. Its reply takes the balances the stored record leaves out
// from the change entry of the first execution, which is not in RocksDB yet either.
TEST(GroupCommitTest, RetriesBeforeTheFirstIsDurableGetTheSameReplyWithItsBalances) {
  LevelTestEnv env;
  ASSERT_THAT(env.CreateWarehouse("420102-W001").status(), IsOk());
  FirstWriteStall stall;
  env.Reopen(stall.Options());

  std::vector<std::promise<CommandResult>> promises(5);
  auto submit = [&](int slot, const std::string& id, int64_t quantity) {
    SubmitReceipt(env, id, quantity, promises[slot]);
  };
  submit(0, "in-flight", 3);  // its group stalls in the syncer
  stall.WaitForFirstWrite();
  submit(1, "in-flight", 3);  // reads the stalled group's writes
  submit(2, "same-group", 4);
  submit(3, "same-group", 4);  // reads its own group's writes
  submit(4, "same-group", 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stall.Release();

  std::vector<CommandResult> results;
  for (auto& p : promises) results.push_back(p.get_future().get());
  for (const auto& r : results) ASSERT_THAT(r.status, IsOk());
  EXPECT_FALSE(results[0].replayed);
  EXPECT_FALSE(results[2].replayed);
  for (int i : {1, 3, 4}) EXPECT_TRUE(results[i].replayed) << i;
  const auto& first = dynamic_cast<const MovementResult&>(*results[0].message);
  ASSERT_EQ(first.balances_size(), 1);
  EXPECT_EQ(first.balances(0).on_hand(), 3);
  EXPECT_EQ(results[1].Bytes(), results[0].Bytes());
  EXPECT_EQ(results[3].Bytes(), results[2].Bytes());
  EXPECT_EQ(results[4].Bytes(), results[2].Bytes());
  EXPECT_EQ(env.Balance("warehouses/420102-W001", "SH-0001").on_hand(), 7);
}

// The first write fails (disk full). Retries answered from it, in its own group or in a later
// group of replays only (which writes nothing), used to keep their OK: the client was told its
// receipt was stored, and after a restart it was not. Every answer that depends on the failed
// write is refused now, and the retry after a restart applies the receipt once.
TEST(GroupCommitTest, RetriesOfAWriteThatFailedAreRefusedNotAnsweredOk) {
  LevelTestEnv env;
  ASSERT_THAT(env.CreateWarehouse("420102-W001").status(), IsOk());
  FirstWriteStall stall;
  env.Reopen(stall.Options());

  std::vector<std::promise<CommandResult>> promises(4);
  auto submit = [&](int slot, const std::string& id, int64_t quantity) {
    SubmitReceipt(env, id, quantity, promises[slot]);
  };
  submit(0, "in-flight", 3);  // its group stalls in the syncer, then fails
  submit(1, "in-flight", 3);  // replayed from its writes, in its group or the next
  stall.WaitForFirstWrite();
  submit(2, "in-flight", 3);  // next group, replays only: writes nothing
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stall.Release(absl::ResourceExhaustedError("write batch: IO error: No space left on device"));
  std::vector<CommandResult> results;
  for (int i = 0; i < 3; ++i) results.push_back(promises[i].get_future().get());
  EXPECT_EQ(results[0].status.code(), absl::StatusCode::kResourceExhausted);
  for (int i : {1, 2}) {
    EXPECT_FALSE(results[i].status.ok()) << i << " was answered OK from a write that failed";
  }
  submit(3, "in-flight", 3);  // after the failure: refused at once
  EXPECT_EQ(promises[3].get_future().get().status.code(), absl::StatusCode::kUnavailable);

  env.Reopen();  // the restart the refusal asks for
  EXPECT_EQ(env.Balance("warehouses/420102-W001", "SH-0001").on_hand(), 0);
  auto retried =
      env.Apply(LevelTestEnv::Receive("warehouses/420102-W001", "SH-0001", 3), "in-flight");
  ASSERT_THAT(retried.status(), IsOk());
  EXPECT_EQ(env.Balance("warehouses/420102-W001", "SH-0001").on_hand(), 3);
}

// Operators tell the core's threads apart in top -H, perf and /proc by name.
TEST(GroupCommitTest, CoreThreadsAreNamed) {
  LevelTestEnv env;
  auto thread_names = [] {
    std::set<std::string> names;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream comm(task.path() / "comm");
      std::string name;
      std::getline(comm, name);
      names.insert(name);
    }
    return names;
  };
  const std::vector<std::string> wanted = {"level-writer", "level-syncer", "level-answer",
                                           "level-notify", "level-sweeper"};
  std::set<std::string> names;
  // A thread names itself when it starts running: give them a moment.
  for (int i = 0; i < 200; ++i) {
    names = thread_names();
    if (std::all_of(wanted.begin(), wanted.end(), [&](auto& n) { return names.count(n); })) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (const auto& name : wanted) EXPECT_TRUE(names.count(name)) << name;
}

// A listing steps over every version of a balance not yet flushed: few balances updated by
// many groups have their memtable flushed early, before it is full.
TEST(GroupCommitTest, ManyUpdatesOfFewBalancesFlushTheirMemtableEarly) {
  LevelTestEnv env;
  LevelCore::Options options;
  options.hold_sweep_interval_ms = 3'600'000;
  options.balance_flush_min_versions = 100;
  env.Reopen(options);
  ASSERT_THAT(env.CreateWarehouse("420102-W001").status(), IsOk());
  auto* balances = env.core().store().handle(Cf::kBalances);
  auto active_entries = [&] {
    uint64_t n = 0;
    EXPECT_TRUE(env.core().store().db()->GetIntProperty(
        balances, "rocksdb.num-entries-active-mem-table", &n));
    return n;
  };
  // One group per receipt (each is applied and made durable before the next): 300 versions
  // of two balances.
  for (int i = 0; i < 300; ++i) {
    const char* item = i % 2 == 0 ? "SH-0001" : "SH-0002";
    ASSERT_THAT(env.Apply(LevelTestEnv::Receive("warehouses/420102-W001", item, 1)).status(),
                IsOk());
  }
  // Without the early flush all 300 would be there; a flush still running when the next one
  // is due is skipped, so the bound is loose.
  EXPECT_LT(active_entries(), 300u) << "the balances memtable was never switched";
  EXPECT_EQ(env.Balance("warehouses/420102-W001", "SH-0001").on_hand(), 150);
  EXPECT_EQ(env.Balance("warehouses/420102-W001", "SH-0002").on_hand(), 150);
}

// stockpile_commit_groups_total counts synced writes: a group of replays or refusals that
// writes nothing is not one.
TEST(GroupCommitTest, OnlyGroupsThatWriteAreCountedAsCommitGroups) {
  LevelTestEnv env;
  ASSERT_THAT(env.CreateWarehouse("420102-W001").status(), IsOk());
  std::atomic<int> writes{0};
  LevelCore::Options options;
  options.before_group_write = [&writes] {
    ++writes;
    return absl::OkStatus();
  };
  env.Reopen(options);
  const uint64_t groups_before = env.core().stats().commit_groups;
  const Operation receipt = LevelTestEnv::Receive("warehouses/420102-W001", "SH-0001", 5);
  ASSERT_THAT(env.Apply(receipt, "same-receipt").status(), IsOk());
  for (int i = 0; i < 3; ++i) {
    ASSERT_THAT(env.Apply(receipt, "same-receipt").status(), IsOk());  // replays
    EXPECT_FALSE(env.Apply(LevelTestEnv::Issue("warehouses/420102-W001", "SH-0001", 999999),
                           absl::StrCat("too-much-", i))
                     .ok());
  }
  EXPECT_GE(writes.load(), 1);
  EXPECT_EQ(env.core().stats().commit_groups - groups_before, static_cast<uint64_t>(writes));
  EXPECT_EQ(env.Balance("warehouses/420102-W001", "SH-0001").on_hand(), 5);
}

}  // namespace
}  // namespace stockpile::level::testing
