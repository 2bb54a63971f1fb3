// LeaderElection against a real etcd: one leader among candidates, takeover when it goes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "services/common/etcd/etcd_client.h"
#include "services/common/etcd/leader_election.h"
#include "tests/testutil/etcd_fixture.h"
#include "tests/testutil/etcd_process.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::etcd {
namespace {

using ::stockpile::testing::EtcdProcess;
using ::stockpile::testing::IsOk;
using ::stockpile::testing::StatusIs;
using ::stockpile::testing::TempDir;
using ::stockpile::testing::WaitFor;
using namespace std::chrono_literals;

constexpr char kElectionKey[] = "/stockpile/v1/leader/catalogue";

class LeaderElectionTest : public ::stockpile::testing::EtcdFixture {
 protected:
  std::unique_ptr<LeaderElection> Candidate(const std::string& name) {
    LeaderElectionOptions options;
    options.ttl_seconds = 2;
    options.tick = absl::Milliseconds(300);
    auto election = std::make_unique<LeaderElection>(client_, kElectionKey, name, options);
    election->Start();
    return election;
  }
};

TEST_F(LeaderElectionTest, ExactlyOneOfTwoCandidatesLeads) {
  auto a = Candidate("a");
  auto b = Candidate("b");
  ASSERT_TRUE(WaitFor([&] { return a->IsLeader() || b->IsLeader(); }, 5s));
  std::this_thread::sleep_for(1s);  // several ticks: nobody else may claim it
  EXPECT_NE(a->IsLeader(), b->IsLeader());
  auto leader = a->CurrentLeader();
  ASSERT_THAT(leader, IsOk());
  EXPECT_EQ(*leader, a->IsLeader() ? "a" : "b");
}

TEST_F(LeaderElectionTest, OtherCandidateTakesOverWhenLeaderLeaseIsRevoked) {
  auto a = Candidate("a");
  ASSERT_TRUE(WaitFor([&] { return a->IsLeader(); }, 5s));
  auto b = Candidate("b");
  std::this_thread::sleep_for(700ms);
  EXPECT_FALSE(b->IsLeader());

  ASSERT_THAT(client_->LeaseRevoke(a->lease_id()), IsOk());  // as if a's lease expired
  EXPECT_TRUE(WaitFor([&] { return b->IsLeader(); }, 5s));
  EXPECT_TRUE(WaitFor([&] { return !a->IsLeader(); }, 5s));
  EXPECT_EQ(*b->CurrentLeader(), "b");
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(b->IsLeader());
  EXPECT_FALSE(a->IsLeader());  // a re-campaigns but must not win while b holds the key
}

TEST_F(LeaderElectionTest, ResignHandsLeadershipOver) {
  auto a = Candidate("a");
  ASSERT_TRUE(WaitFor([&] { return a->IsLeader(); }, 5s));
  auto b = Candidate("b");
  a->Resign();
  EXPECT_FALSE(a->IsLeader());
  EXPECT_TRUE(WaitFor([&] { return b->IsLeader(); }, 3s));
}

TEST_F(LeaderElectionTest, LeaderStepsDownWhenEtcdIsUnreachable) {
  auto a = Candidate("a");
  ASSERT_TRUE(WaitFor([&] { return a->IsLeader(); }, 5s));
  etcd_.Kill();
  EXPECT_TRUE(WaitFor([&] { return !a->IsLeader(); }, 3s));
  EXPECT_THAT(a->CurrentLeader(), StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace stockpile::etcd
