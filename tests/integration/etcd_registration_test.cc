// Registration against a real etcd: the record appears, disappears on Stop and on death, and comes
// back by itself when etcd is killed and restarted; a level instance refuses regions another
// live instance of its level hosts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "services/common/etcd/etcd_client.h"
#include "services/common/etcd/registration.h"
#include "services/common/etcd/watcher.h"
#include "tests/testutil/etcd_fixture.h"
#include "tests/testutil/etcd_process.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::etcd {
namespace {

using ::stockpile::testing::BinaryDir;
using ::stockpile::testing::EtcdProcess;
using ::stockpile::testing::IsOk;
using ::stockpile::testing::ReferenceDataDir;
using ::stockpile::testing::StatusIs;
using ::stockpile::testing::Subprocess;
using ::stockpile::testing::TempDir;
using ::stockpile::testing::WaitFor;
using namespace std::chrono_literals;

constexpr char kRegistrationKey[] = "/stockpile/v1/instances/county/county-a";

InstanceInfo CountyInstance() {
  InstanceInfo info;
  info.id = "county-a";
  info.level = "county";
  info.address = "127.0.0.1:50051";
  info.region_prefixes = {"4201", "4202"};
  info.metrics_address = "127.0.0.1:9464";
  return info;
}

TEST(InstanceJsonTest, RoundTripsAndRejectsGarbage) {
  InstanceInfo info = CountyInstance();
  info.started_at = "2024-05-01T08:00:00Z";
  info.database_id = "5b0b5d4e-7a1c-4f0e-9d55-0c2f4c1d9e21";
  auto parsed = InstanceFromJson(InstanceToJson(info));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(*parsed, info);
  // Records of releases before database_id still read.
  auto older = InstanceFromJson(R"({"id":"a","level":"county","address":"x"})");
  ASSERT_THAT(older, IsOk());
  EXPECT_EQ(older->database_id, "");
  EXPECT_THAT(InstanceFromJson("{not json"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(InstanceFromJson(R"({"id":1,"level":"county","address":"x"})"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(InstanceFromJson(R"({"id":"a","level":"county","address":"x","region_prefixes":3})"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

class RegistrationTest : public ::stockpile::testing::EtcdFixture {
 protected:
  std::unique_ptr<Registration> MakeRegistration(int64_t ttl_seconds) {
    RegistrationOptions options;
    options.ttl_seconds = ttl_seconds;
    options.max_backoff = absl::Milliseconds(500);
    return std::make_unique<Registration>(client_, CountyInstance(), options);
  }

  std::optional<KeyValue> Lookup(const std::string& key) {
    auto range = client_->Range(key);
    if (!range.ok() || range->kvs.empty()) return std::nullopt;
    return range->kvs.front();
  }
  // The key is in etcd and the registration says so. It puts the key before it records that
  // it did, so a test that saw the key may still read the state before it changes.
  bool Registered(const Registration& registration) {
    return Lookup(registration.key()).has_value() && registration.state().registered;
  }
};

TEST_F(RegistrationTest, KeyAppearsWithInstanceJsonUnderALease) {
  auto registration = MakeRegistration(3);
  EXPECT_EQ(registration->key(), "/stockpile/v1/instances/county/county-a");
  registration->Start();
  ASSERT_TRUE(WaitFor([&] { return Registered(*registration); }, 5s));

  KeyValue kv = *Lookup(registration->key());
  auto info = InstanceFromJson(kv.value);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->id, "county-a");
  EXPECT_EQ(info->level, "county");
  EXPECT_EQ(info->address, "127.0.0.1:50051");
  EXPECT_THAT(info->region_prefixes, ::testing::ElementsAre("4201", "4202"));
  EXPECT_EQ(info->metrics_address, "127.0.0.1:9464");
  EXPECT_THAT(info->started_at, ::testing::MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T.*Z"));

  RegistrationState state = registration->state();
  EXPECT_TRUE(state.registered);
  EXPECT_EQ(state.lease_id, kv.lease);
  EXPECT_EQ(state.registrations, 1);
  EXPECT_EQ(state.last_error, "");
}

TEST_F(RegistrationTest, KeepAliveHoldsTheKeyPastItsTtl) {
  auto registration = MakeRegistration(2);
  registration->Start();
  ASSERT_TRUE(WaitFor([&] { return Lookup(registration->key()).has_value(); }, 5s));
  std::this_thread::sleep_for(5s);  // 2.5 TTLs
  EXPECT_TRUE(Lookup(registration->key()).has_value());
  EXPECT_EQ(registration->state().registrations, 1);  // same lease all along
}

TEST_F(RegistrationTest, StopRemovesTheKeyAtOnce) {
  auto registration = MakeRegistration(10);
  registration->Start();
  ASSERT_TRUE(WaitFor([&] { return Lookup(registration->key()).has_value(); }, 5s));
  registration->Stop();
  EXPECT_FALSE(Lookup(registration->key()).has_value());
  EXPECT_FALSE(registration->state().registered);
}

TEST_F(RegistrationTest, KeyExpiresWhenTheProcessStopsKeepingItAlive) {
  auto registration = MakeRegistration(2);
  registration->Start();
  ASSERT_TRUE(WaitFor([&] { return Lookup(registration->key()).has_value(); }, 5s));
  const std::string key = registration->key();
  registration->Abandon();  // as if the process died: no revoke
  registration.reset();
  EXPECT_TRUE(Lookup(key).has_value());
  EXPECT_TRUE(WaitFor([&] { return !Lookup(key).has_value(); }, 8s));
}

TEST_F(RegistrationTest, StartDoesNotWaitForEtcdAndRegistersWhenItComesUp) {
  etcd_.Kill();
  auto registration = MakeRegistration(3);
  const auto start = std::chrono::steady_clock::now();
  registration->Start();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 100ms);
  EXPECT_TRUE(WaitFor([&] { return !registration->state().last_error.empty(); }, 5s));
  EXPECT_FALSE(registration->state().registered);

  std::string error;
  ASSERT_TRUE(etcd_.Restart(15s, &error)) << error;
  EXPECT_TRUE(WaitFor([&] { return Registered(*registration); }, 8s));
}

TEST_F(RegistrationTest, ComesBackByItselfAfterEtcdIsKilledAndRestarted) {
  std::mutex mu;
  std::map<std::string, std::string> seen;  // what a catalogue watching the prefix would see
  WatcherOptions watch_options;
  watch_options.prefix = kDefaultInstancesPrefix;
  watch_options.max_backoff = absl::Milliseconds(500);
  Watcher watcher(
      client_, watch_options,
      [&](const std::vector<KeyValue>& kvs, int64_t) {
        std::lock_guard<std::mutex> lock(mu);
        seen.clear();
        for (const auto& kv : kvs) seen[kv.key] = kv.value;
      },
      [&](const std::vector<WatchEvent>& events) {
        std::lock_guard<std::mutex> lock(mu);
        for (const auto& e : events) {
          if (e.type == WatchEvent::Type::kPut) seen[e.kv.key] = e.kv.value;
          if (e.type == WatchEvent::Type::kDelete) seen.erase(e.kv.key);
        }
      });
  watcher.Start();
  auto watcher_sees = [&](int64_t lease) {
    auto kv = Lookup(kRegistrationKey);
    std::lock_guard<std::mutex> lock(mu);
    return seen.count(kRegistrationKey) == 1 && kv.has_value() && kv->lease == lease;
  };

  auto registration = MakeRegistration(3);
  registration->Start();
  ASSERT_TRUE(WaitFor([&] { return registration->state().registered; }, 5s));
  const int64_t first_lease = registration->state().lease_id;
  ASSERT_TRUE(WaitFor([&] { return watcher_sees(first_lease); }, 5s));

  etcd_.Kill();
  EXPECT_TRUE(WaitFor([&] { return !registration->state().registered; }, 5s));
  EXPECT_TRUE(WaitFor([&] { return !watcher.connected(); }, 5s));
  std::string error;
  ASSERT_TRUE(etcd_.Restart(15s, &error)) << error;
  const auto restarted = std::chrono::steady_clock::now();

  // A new lease, the key re-put under it, and the watcher delivering it: all without help.
  ASSERT_TRUE(WaitFor([&] { return registration->state().registered; }, 8s));
  const RegistrationState state = registration->state();
  EXPECT_NE(state.lease_id, first_lease);
  EXPECT_EQ(state.registrations, 2);
  EXPECT_TRUE(WaitFor([&] { return watcher_sees(state.lease_id); }, 8s));
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - restarted)
                      .count();
  RecordProperty("reregistered_and_watched_ms", static_cast<int>(ms));
  std::cerr << "re-registered and seen by the watcher " << ms << " ms after etcd was healthy\n";
  EXPECT_TRUE(InstanceFromJson(Lookup(kRegistrationKey)->value).ok());
  watcher.Stop();
}

// Two overlapping instances starting at the same moment have both claimed before either asks:
// the older claim wins and the younger sees it (without claims both would find nothing and both
// would serve Wuhan). Registrations of others count whatever the age of the claim.
TEST_F(RegistrationTest, OfTwoOverlappingInstancesStartingAtOnceTheFirstToClaimServes) {
  const InstanceInfo wuhan{"county-wuhan", "county", "", {"4201"}, "", "", ""};
  const InstanceInfo hubei{"county-hubei", "county", "", {"42"}, "", "", ""};
  const InstanceInfo hunan{"county-hunan", "county", "", {"43"}, "", "", ""};
  auto first = PutClaim(*client_, wuhan, kDefaultInstancesPrefix, 10);
  auto second = PutClaim(*client_, hubei, kDefaultInstancesPrefix, 10);
  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(second, IsOk());
  ASSERT_LT(first->revision, second->revision);

  auto for_first = OverlappingInstances(*client_, wuhan, kDefaultInstancesPrefix, &*first);
  auto for_second = OverlappingInstances(*client_, hubei, kDefaultInstancesPrefix, &*second);
  ASSERT_THAT(for_first, IsOk());
  ASSERT_THAT(for_second, IsOk());
  EXPECT_THAT(*for_first, ::testing::IsEmpty());  // the younger claim yields
  ASSERT_EQ(for_second->size(), 1u);
  EXPECT_EQ(for_second->front(), "county-wuhan (starting) hosts 4201, overlapping 42");
  auto for_hunan = OverlappingInstances(*client_, hunan, kDefaultInstancesPrefix);
  ASSERT_THAT(for_hunan, IsOk());
  EXPECT_THAT(*for_hunan, ::testing::IsEmpty());

  // The loser gives up (revokes its claim); the winner registers. A newcomer later than both
  // sees the winner's registration, whatever the age of its own claim.
  ASSERT_THAT(client_->LeaseRevoke(second->lease), IsOk());
  InstanceInfo registered = wuhan;
  registered.address = "127.0.0.1:50051";
  ASSERT_THAT(client_->Put(std::string(kDefaultInstancesPrefix) + "county/county-wuhan",
                           InstanceToJson(registered)),
              IsOk());
  auto late = PutClaim(*client_, hubei, kDefaultInstancesPrefix, 10);
  ASSERT_THAT(late, IsOk());
  auto for_late = OverlappingInstances(*client_, hubei, kDefaultInstancesPrefix, &*late);
  ASSERT_THAT(for_late, IsOk());
  EXPECT_THAT(*for_late, ::testing::Contains("county-wuhan at 127.0.0.1:50051 hosts 4201, "
                                             "overlapping 42"));
}

// An instance's own id is no overlap when its record comes from the same database (its
// predecessor, whose lease may outlive it), but is when it comes from another database: two
// processes started with one id would both write the same warehouses.
TEST_F(RegistrationTest, SameIdFromAnotherDatabaseCountsAsASecondWriter) {
  InstanceInfo running = CountyInstance();
  running.database_id = "db-one";
  ASSERT_THAT(client_->Put(kRegistrationKey, InstanceToJson(running)), IsOk());
  InstanceInfo starting = CountyInstance();
  starting.address.clear();
  starting.region_prefixes = {"4203"};  // even for other regions: one id, one record
  starting.database_id = "db-one";
  auto same_database = OverlappingInstances(*client_, starting, kDefaultInstancesPrefix);
  ASSERT_THAT(same_database, IsOk());
  EXPECT_THAT(*same_database, ::testing::IsEmpty());

  starting.database_id = "db-two";
  auto other_database = OverlappingInstances(*client_, starting, kDefaultInstancesPrefix);
  ASSERT_THAT(other_database, IsOk());
  EXPECT_THAT(*other_database,
              ::testing::ElementsAre("county-a at 127.0.0.1:50051 runs with this instance id on "
                                     "another database (db-one)"));

  running.database_id.clear();  // a record written by a release before database_id
  ASSERT_THAT(client_->Put(kRegistrationKey, InstanceToJson(running)), IsOk());
  auto older_record = OverlappingInstances(*client_, starting, kDefaultInstancesPrefix);
  ASSERT_THAT(older_record, IsOk());
  EXPECT_THAT(*older_record, ::testing::IsEmpty());
}

// stockpile-level instances of the county level registering in the test's etcd.
class LevelRegistrationTest : public RegistrationTest {
 protected:
  std::unique_ptr<Subprocess> StartLevel(const std::string& id, const std::string& regions, int ttl,
                                         int port = 0, const std::string& db = "") {
    auto level = std::make_unique<Subprocess>(
        std::vector<std::string>{
            BinaryDir() + "/bin/stockpile-level", "--level=county", "--regions=" + regions,
            "--db=" + tmp_.Sub(db.empty() ? id : db), "--reference-data=" + ReferenceDataDir(),
            "--listen=127.0.0.1:" + std::to_string(port), "--instance-id=" + id,
            "--port-file=" + tmp_.Sub(id + ".port"), "--etcd-endpoints=" + etcd_.endpoint(),
            "--etcd-ttl=" + std::to_string(ttl)},
        tmp_.Sub(id + ".log"));
    EXPECT_TRUE(level->Start());
    return level;
  }
  bool Registered(const std::string& id) {
    return Lookup("/stockpile/v1/instances/county/" + id).has_value();
  }
  bool BecomesRegistered(const std::string& id) {
    return WaitFor([&] { return Registered(id); }, 30s);
  }
  std::string RegisteredAddress(const std::string& id) {
    auto kv = Lookup("/stockpile/v1/instances/county/" + id);
    if (!kv) return "";
    auto info = InstanceFromJson(kv->value);
    return info.ok() ? info->address : "";
  }
  // Waits up to 30 s for `level` to exit with a failure status without ever having accepted a
  // connection on `port`: refused before it took a single call.
  static ::testing::AssertionResult RefusedBeforeListening(Subprocess& level, int port) {
    bool listened = false;
    if (!WaitFor(
            [&] {
              listened = listened || ::stockpile::testing::PortOpen(port);
              return !level.running();
            },
            30s)) {
      return ::testing::AssertionFailure() << "still serving: a second writer";
    }
    if (listened) return ::testing::AssertionFailure() << "it listened before it exited";
    const int status = level.Wait(1s);
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 0) {
      return ::testing::AssertionFailure() << "wait status " << status;
    }
    return ::testing::AssertionSuccess();
  }
  std::string PortFile(const std::string& id) {
    std::ifstream in(tmp_.Sub(id + ".port"));
    int port = 0;
    return in >> port ? "127.0.0.1:" + std::to_string(port) : "";
  }
};

// Two processes started with one --instance-id on two databases would both write the warehouses
// that id stands for, and their registrations would overwrite each other: the second is refused
// before it listens, whatever regions it was given.
TEST_F(LevelRegistrationTest, LevelRefusesItsIdWhileAProcessOnAnotherDatabaseRunsWithIt) {
  auto first = StartLevel("county-wuhan", "4201", 2);
  ASSERT_TRUE(BecomesRegistered("county-wuhan")) << first->Log();
  const std::string first_address = RegisteredAddress("county-wuhan");
  const int second_port = ::stockpile::testing::FreePort();
  auto second = StartLevel("county-wuhan", "4202", 2, second_port, "second-db");
  ASSERT_TRUE(RefusedBeforeListening(*second, second_port)) << second->Log();
  EXPECT_THAT(second->Log(),
              ::testing::HasSubstr("runs with this instance id on another database"));
  EXPECT_THAT(second->Log(), ::testing::HasSubstr("exactly one writer"));
  EXPECT_TRUE(first->running());
  EXPECT_EQ(RegisteredAddress("county-wuhan"), first_address);
}

// A level killed without revoking its lease and started again on its own database is its own
// predecessor: it serves at once rather than waiting out the old lease (30 s here).
TEST_F(LevelRegistrationTest, LevelRestartedOnItsOwnDatabaseDoesNotWaitForItsOldLease) {
  auto level = StartLevel("county-wuhan", "4201", 30);
  ASSERT_TRUE(BecomesRegistered("county-wuhan")) << level->Log();
  level->Signal(9);
  level->Wait(10s);
  std::remove(tmp_.Sub("county-wuhan.port").c_str());
  const auto restarted_at = std::chrono::steady_clock::now();
  auto restarted = StartLevel("county-wuhan", "4201", 30);
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string serving = PortFile("county-wuhan");
        return !serving.empty() && RegisteredAddress("county-wuhan") == serving;
      },
      20s))
      << restarted->Log();
  EXPECT_LT(std::chrono::steady_clock::now() - restarted_at, 20s);
  EXPECT_TRUE(restarted->running());
}

TEST_F(LevelRegistrationTest, LevelRefusesRegionsAnotherLiveInstanceHosts) {
  auto wuhan = StartLevel("county-wuhan", "4201", 2);
  ASSERT_TRUE(BecomesRegistered("county-wuhan")) << wuhan->Log();
  // All of Hubei includes Wuhan: two writers for Wuhan's warehouses. Refused, naming the other.
  const int hubei_port = ::stockpile::testing::FreePort();
  auto hubei = StartLevel("county-hubei", "42", 2, hubei_port);
  ASSERT_TRUE(RefusedBeforeListening(*hubei, hubei_port)) << hubei->Log();
  EXPECT_THAT(hubei->Log(), ::testing::HasSubstr("county-wuhan"));
  EXPECT_THAT(hubei->Log(), ::testing::HasSubstr("exactly one writer"));
  EXPECT_FALSE(Registered("county-hubei"));
  // Other regions of the same level start as before.
  auto hunan = StartLevel("county-hunan", "43", 2);
  EXPECT_TRUE(BecomesRegistered("county-hunan")) << hunan->Log();
  EXPECT_TRUE(wuhan->running());
}

// A starting level claims its regions before it asks who else hosts them, and keeps the claim
// while it waits, so an overlapping instance starting at the same moment sees it (which of the
// two then yields: OfTwoOverlappingInstancesStartingAtOnceTheFirstToClaimServes).
TEST_F(LevelRegistrationTest, StartingLevelHoldsAClaimWhileItWaits) {
  auto lease = client_->LeaseGrant(30);
  ASSERT_THAT(lease, IsOk());
  const InstanceInfo wuhan{"county-wuhan", "county", "127.0.0.1:1", {"4201"}, "", "", ""};
  ASSERT_THAT(
      client_->Put("/stockpile/v1/instances/county/county-wuhan", InstanceToJson(wuhan), lease->id),
      IsOk());
  auto hubei = StartLevel("county-hubei", "42", 6);  // waits up to 7 s for Wuhan to go
  auto hubei_claimed = [&] {
    auto claims = client_->RangePrefix("/stockpile/v1/instances/county/claim-");
    if (!claims.ok()) return false;
    for (const KeyValue& kv : claims->kvs) {
      auto planned = InstanceFromJson(kv.value);
      if (planned.ok() && planned->id == "county-hubei" && planned->address.empty() &&
          planned->region_prefixes == std::vector<std::string>{"42"} && kv.lease != 0) {
        return true;
      }
    }
    return false;
  };
  ASSERT_TRUE(WaitFor(hubei_claimed, 10s)) << hubei->Log();
  EXPECT_FALSE(Registered("county-hubei"));              // still waiting
  ASSERT_THAT(client_->LeaseRevoke(lease->id), IsOk());  // Wuhan goes away
  EXPECT_TRUE(BecomesRegistered("county-hubei")) << hubei->Log();
  EXPECT_TRUE(hubei->running());
}

// A predecessor killed without revoking its lease leaves its registration until the lease runs
// out: the replacement (another id, same regions) waits for that instead of refusing.
TEST_F(LevelRegistrationTest, LevelReplacingAKilledInstanceWaitsForItsLeaseToRunOut) {
  auto old = StartLevel("county-old", "4201", 2);
  ASSERT_TRUE(BecomesRegistered("county-old")) << old->Log();
  old->Signal(9);
  old->Wait(10s);
  ASSERT_TRUE(Registered("county-old"));  // its lease is still running
  auto replacement = StartLevel("county-new", "4201", 6);
  EXPECT_TRUE(BecomesRegistered("county-new")) << replacement->Log();
  EXPECT_TRUE(replacement->running());
}

}  // namespace
}  // namespace stockpile::etcd
