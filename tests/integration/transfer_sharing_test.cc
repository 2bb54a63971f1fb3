// Transfers shared between catalogue replicas through a real etcd (docs/allocation.md,
// "Takeover"):
//  - a deposed leader's fenced write is refused and leaves the new leader's copy alone;
//  - a leader whose local copy is stale is refused (ABORTED) and its copy refreshed;
//  - the key layout next to the registrations;
//  - two in-process replicas (TransferLeader + coordinator each, one fake level gateway): the
//    follower reads the transfer, the leader's lease goes, the other replica takes over,
//    finishes the holds without placing one twice, answers a retried create with the same
//    transfer, and ships and receives it.
#include "services/catalogue/allocation/transfer_sharing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "services/catalogue/allocation/leader.h"
#include "services/catalogue/allocation/saga.h"
#include "services/common/clock.h"
#include "services/common/etcd/etcd_client.h"
#include "services/common/etcd/leader_election.h"
#include "tests/testutil/etcd_fixture.h"
#include "tests/testutil/etcd_process.h"
#include "tests/testutil/reference_data.h"
#include "tests/testutil/status_matchers.h"
#include "tests/unit/allocation/fake_level_gateway.h"

namespace stockpile::catalogue::allocation {
namespace {

using namespace stockpile::v1;  // NOLINT
using namespace std::chrono_literals;
using ::stockpile::testing::EtcdProcess;
using ::stockpile::testing::IsOk;
using ::stockpile::testing::StatusIs;
using ::stockpile::testing::TempDir;
using ::stockpile::testing::WaitFor;
using ::testing::HasSubstr;

constexpr char kPrefix[] = "/test/transfers/";
constexpr char kDest[] = "warehouses/420102-W001";
constexpr char kNear[] = "warehouses/420103-W001";
constexpr char kFar[] = "warehouses/420115-W001";
constexpr char kNationalApprover[] = "";  // the approving token's scope
constexpr char kItem[] = "SH-0001";

Transfer Sample(const std::string& id, TransferState state) {
  Transfer t;
  t.set_id(id);
  t.set_name("transfers/" + id);
  t.set_destination_warehouse(kDest);
  t.set_destination_region("420102");
  t.set_state(state);
  return t;
}

class EtcdTest : public ::stockpile::testing::EtcdFixture {
 protected:
  EtcdTest() : EtcdFixture(absl::Seconds(2)) {}

  std::unique_ptr<etcd::LeaderElection> Candidate(const std::string& name) {
    etcd::LeaderElectionOptions options;
    options.ttl_seconds = 2;
    options.tick = absl::Milliseconds(200);
    auto election =
        std::make_unique<etcd::LeaderElection>(client_, kCatalogueLeaderKey, name, options);
    election->Start();
    return election;
  }
  std::unique_ptr<TransferStore> Store(const std::string& name) {
    auto store = TransferStore::Open(tmp_.Sub(name));
    EXPECT_THAT(store, IsOk());
    return store.ok() ? std::move(*store) : nullptr;
  }
  static LeaderFence FenceOf(const etcd::LeaderElection& e) {
    return LeaderFence{e.key(), e.candidate(), e.IsLeader() ? e.lease_id() : 0};
  }
  TransferState StateInEtcd(const std::string& id) {
    auto range = client_->Range(std::string(kPrefix) + id);
    if (!range.ok() || range->kvs.empty()) return TRANSFER_STATE_UNSPECIFIED;
    Transfer t;
    t.ParseFromString(range->kvs.front().value);
    return t.state();
  }
  static TransferState StateIn(TransferStore& store, const std::string& id) {
    auto t = store.Get(id);
    return t.ok() && t->has_value() ? (*t)->state() : TRANSFER_STATE_UNSPECIFIED;
  }
};

TEST(TransferPrefixTest, SitsNextToTheRegistrations) {
  EXPECT_EQ(TransferPrefixFor("/stockpile/v1/instances/"), "/stockpile/v1/transfers/");
  EXPECT_EQ(TransferPrefixFor("/prod/instances/"), "/prod/transfers/");
  EXPECT_EQ(TransferPrefixFor("/instances/"), "/transfers/");
}

TEST_F(EtcdTest, DeposedLeaderWriteIsRefused) {
  auto a = Candidate("a");
  ASSERT_TRUE(WaitFor([&] { return a->IsLeader(); }, 5s));
  // What `a` believes while it still thinks it leads (a process paused past its lease).
  const LeaderFence stale = FenceOf(*a);
  auto store_a = Store("a");
  EtcdTransferSharing sharing_a(client_, kPrefix, store_a.get(), [&] { return stale; });
  auto written = sharing_a.Publish(Sample("T1", TRANSFER_STATE_PENDING_APPROVAL), nullptr);
  ASSERT_THAT(written, IsOk());
  ASSERT_THAT(
      store_a->SaveIfNewer(Sample("T1", TRANSFER_STATE_PENDING_APPROVAL), nullptr, *written),
      IsOk());

  auto b = Candidate("b");
  auto store_b = Store("b");
  EtcdTransferSharing sharing_b(client_, kPrefix, store_b.get(), [&] { return FenceOf(*b); });
  sharing_b.StartMirror();  // b follows: it reads what a wrote
  ASSERT_TRUE(WaitFor([&] { return StateIn(*store_b, "T1") != TRANSFER_STATE_UNSPECIFIED; }, 5s));
  EXPECT_FALSE(b->IsLeader());
  // A follower never writes; leadership lost is a reason to retry (a retry reaches the leader),
  // not a refusal.
  EXPECT_THAT(sharing_b.Publish(Sample("T1", TRANSFER_STATE_HOLDING), nullptr),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("retry")));

  ASSERT_THAT(client_->LeaseRevoke(stale.lease), IsOk());  // a's lease lapses
  ASSERT_TRUE(WaitFor([&] { return b->IsLeader(); }, 5s));
  ASSERT_THAT(sharing_b.Import(), IsOk());
  auto by_b = sharing_b.Publish(Sample("T1", TRANSFER_STATE_HOLDING), nullptr);
  ASSERT_THAT(by_b, IsOk());
  ASSERT_THAT(store_b->SaveIfNewer(Sample("T1", TRANSFER_STATE_HOLDING), nullptr, *by_b), IsOk());

  // a, deposed but unaware, tries to write its own next state: refused, nothing changes.
  EXPECT_THAT(sharing_a.Publish(Sample("T1", TRANSFER_STATE_CANCELLED), nullptr),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("retry")));
  EXPECT_EQ(StateInEtcd("T1"), TRANSFER_STATE_HOLDING);
  // A write of a new transfer is refused just the same.
  EXPECT_THAT(sharing_a.Publish(Sample("T2", TRANSFER_STATE_PENDING_APPROVAL), nullptr),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(StateInEtcd("T2"), TRANSFER_STATE_UNSPECIFIED);
  EXPECT_EQ(StateIn(*store_b, "T1"), TRANSFER_STATE_HOLDING);
}

TEST_F(EtcdTest, StaleLocalCopyIsAbortedAndRefreshed) {
  auto a = Candidate("a");
  ASSERT_TRUE(WaitFor([&] { return a->IsLeader(); }, 5s));
  auto fresh = Store("fresh");
  auto stale = Store("stale");
  EtcdTransferSharing writer(client_, kPrefix, fresh.get(), [&] { return FenceOf(*a); });
  EtcdTransferSharing lagging(client_, kPrefix, stale.get(), [&] { return FenceOf(*a); });
  auto v1 = writer.Publish(Sample("T1", TRANSFER_STATE_PENDING_APPROVAL), nullptr);
  ASSERT_THAT(v1, IsOk());
  ASSERT_THAT(fresh->SaveIfNewer(Sample("T1", TRANSFER_STATE_PENDING_APPROVAL), nullptr, *v1),
              IsOk());
  ASSERT_THAT(stale->SaveIfNewer(Sample("T1", TRANSFER_STATE_PENDING_APPROVAL), nullptr, *v1),
              IsOk());
  auto v2 = writer.Publish(Sample("T1", TRANSFER_STATE_HOLDING), nullptr);
  ASSERT_THAT(v2, IsOk());

  // Same leadership, but built on v1 while etcd holds v2: refused, local copy refreshed.
  EXPECT_THAT(lagging.Publish(Sample("T1", TRANSFER_STATE_CANCELLED), nullptr),
              StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(StateInEtcd("T1"), TRANSFER_STATE_HOLDING);
  EXPECT_EQ(StateIn(*stale, "T1"), TRANSFER_STATE_HOLDING);
  EXPECT_EQ(stale->Revision("T1").value_or(0), *v2);
  // A late mirror copy of v1 never overwrites v2.
  auto late = stale->SaveIfNewer(Sample("T1", TRANSFER_STATE_PENDING_APPROVAL), nullptr, *v1);
  ASSERT_THAT(late, IsOk());
  EXPECT_FALSE(*late);
  EXPECT_EQ(StateIn(*stale, "T1"), TRANSFER_STATE_HOLDING);
}

// etcd's space quota is shared with every registration: finished transfers and request records
// leave it after the retention (a lease), while every replica's store keeps them; transfers still
// waiting or under way stay.
TEST_F(EtcdTest, FinishedTransfersLeaveEtcdAfterTheRetentionAndStayInEveryStore) {
  auto a = Candidate("a");
  ASSERT_TRUE(WaitFor([&] { return a->IsLeader(); }, 5s));
  auto leader_store = Store("leader");
  auto follower_store = Store("follower");
  EtcdTransferSharing leader(
      client_, kPrefix, leader_store.get(), [&] { return FenceOf(*a); }, absl::Seconds(3));
  EtcdTransferSharing follower(client_, kPrefix, follower_store.get(),
                               [] { return LeaderFence{}; });
  follower.StartMirror();
  const RequestRecord cancel{"cancel-TDONE", "fingerprint", "TDONE"};
  for (const auto& [id, state] : std::vector<std::pair<std::string, TransferState>>{
           {"TDONE", TRANSFER_STATE_CANCELLED},
           {"TWAIT", TRANSFER_STATE_PENDING_APPROVAL},
           {"TMOVE", TRANSFER_STATE_HOLDING}}) {
    auto written = leader.Publish(Sample(id, state), id == "TDONE" ? &cancel : nullptr);
    ASSERT_THAT(written, IsOk());
    ASSERT_THAT(leader_store->SaveIfNewer(Sample(id, state), nullptr, *written), IsOk());
  }
  ASSERT_TRUE(
      WaitFor([&] { return StateIn(*follower_store, "TMOVE") != TRANSFER_STATE_UNSPECIFIED; }, 5s));
  ASSERT_EQ(StateInEtcd("TDONE"), TRANSFER_STATE_CANCELLED);
  EXPECT_TRUE(WaitFor([&] { return StateInEtcd("TDONE") == TRANSFER_STATE_UNSPECIFIED; }, 20s));
  auto request = client_->Range(std::string(kPrefix) + "requests/cancel-TDONE");
  ASSERT_THAT(request, IsOk());
  EXPECT_TRUE(request->kvs.empty());
  EXPECT_EQ(StateInEtcd("TWAIT"), TRANSFER_STATE_PENDING_APPROVAL);
  EXPECT_EQ(StateInEtcd("TMOVE"), TRANSFER_STATE_HOLDING);
  for (TransferStore* store : {leader_store.get(), follower_store.get()}) {
    EXPECT_EQ(StateIn(*store, "TDONE"), TRANSFER_STATE_CANCELLED);  // deletions are not mirrored
  }
  auto kept = follower_store->GetRequest("cancel-TDONE");
  ASSERT_THAT(kept, IsOk());
  EXPECT_TRUE(kept->has_value());
}

// A retention lease etcd no longer knows (revoked here; restored from a backup in life) costs
// one refused write, not every later one.
TEST_F(EtcdTest, ForgottenRetentionLeaseIsReplacedAfterOneRefusedWrite) {
  auto a = Candidate("a");
  ASSERT_TRUE(WaitFor([&] { return a->IsLeader(); }, 5s));
  auto store = Store("leader");
  EtcdTransferSharing leader(
      client_, kPrefix, store.get(), [&] { return FenceOf(*a); }, absl::Hours(1));
  ASSERT_THAT(leader.Publish(Sample("T1", TRANSFER_STATE_FAILED), nullptr), IsOk());
  auto first = client_->Range(std::string(kPrefix) + "T1");
  ASSERT_THAT(first, IsOk());
  ASSERT_EQ(first->kvs.size(), 1u);
  ASSERT_NE(first->kvs.front().lease, 0);
  ASSERT_THAT(client_->LeaseRevoke(first->kvs.front().lease), IsOk());
  EXPECT_THAT(leader.Publish(Sample("T2", TRANSFER_STATE_FAILED), nullptr),
              StatusIs(absl::StatusCode::kUnavailable));  // transient: retried by the saga
  ASSERT_THAT(leader.Publish(Sample("T2", TRANSFER_STATE_FAILED), nullptr), IsOk());
  EXPECT_EQ(StateInEtcd("T2"), TRANSFER_STATE_FAILED);
}

// etcd started again with an empty data dir (lost, or replaced): the transfers under way exist
// only in the replicas' stores, under revisions of a history that is gone. The leader's next
// write of each used to be refused for ever (ABORTED "retry"): ship, receive and cancel all
// failed and the stock stayed held or in transit. Now the leader writes its copy again, and the
// followers take the new history's copies.
TEST_F(EtcdTest, TransfersUnderWayGoOnAfterEtcdComesBackEmpty) {
  auto a = Candidate("a");
  ASSERT_TRUE(WaitFor([&] { return a->IsLeader(); }, 5s));
  auto leader_store = Store("leader");
  auto follower_store = Store("follower");
  EtcdTransferSharing leader(client_, kPrefix, leader_store.get(), [&] { return FenceOf(*a); });
  EtcdTransferSharing follower(client_, kPrefix, follower_store.get(),
                               [] { return LeaderFence{}; });
  follower.StartMirror();
  // Many revisions first, as in a cluster that has run a while.
  for (int i = 0; i < 30; ++i) ASSERT_THAT(client_->Put("/test/other", "x"), IsOk());
  Transfer t = Sample("T1", TRANSFER_STATE_HOLDING);
  for (TransferState state : {TRANSFER_STATE_HOLDING, TRANSFER_STATE_READY}) {
    t.set_state(state);
    t.add_audit()->set_what(TransferState_Name(state));
    auto written = leader.Publish(t, nullptr);
    ASSERT_THAT(written, IsOk());
    ASSERT_THAT(leader_store->SaveIfNewer(t, nullptr, *written), IsOk());
  }
  ASSERT_TRUE(WaitFor([&] { return StateIn(*follower_store, "T1") == TRANSFER_STATE_READY; }, 5s));

  etcd_.Kill();
  std::filesystem::remove_all(tmp_.Sub("etcd-data"));
  std::string error;
  ASSERT_TRUE(etcd_.Restart(std::chrono::seconds(15), &error)) << error;
  ASSERT_TRUE(WaitFor([&] { return a->IsLeader(); }, 15s));

  t.set_state(TRANSFER_STATE_IN_TRANSIT);
  t.add_audit()->set_what("shipped");
  absl::StatusOr<int64_t> shipped = absl::UnknownError("not tried");
  for (int attempt = 0; attempt < 3 && !shipped.ok(); ++attempt) {
    shipped = leader.Publish(t, nullptr);  // a retry of ABORTED, as the saga's caller does
  }
  ASSERT_THAT(shipped, IsOk());
  ASSERT_THAT(leader_store->SaveIfNewer(t, nullptr, *shipped), IsOk());
  EXPECT_EQ(StateIn(*leader_store, "T1"), TRANSFER_STATE_IN_TRANSIT);
  EXPECT_EQ(StateInEtcd("T1"), TRANSFER_STATE_IN_TRANSIT);
  EXPECT_TRUE(
      WaitFor([&] { return StateIn(*follower_store, "T1") == TRANSFER_STATE_IN_TRANSIT; }, 10s));
  // The next change is fenced on the new history's revision, as before the loss.
  t.set_state(TRANSFER_STATE_RECEIVED);
  t.add_audit()->set_what("received");
  auto received = leader.Publish(t, nullptr);
  ASSERT_THAT(received, IsOk());
  ASSERT_THAT(leader_store->SaveIfNewer(t, nullptr, *received), IsOk());
  EXPECT_EQ(StateInEtcd("T1"), TRANSFER_STATE_RECEIVED);
}

// A replica's copy older than etcd's, with its revision forgotten (another history), takes
// etcd's copy; one newer keeps its own, and the leader writes it over etcd's.
TEST_F(EtcdTest, CopiesWithoutARevisionAreOrderedByContent) {
  auto a = Candidate("a");
  ASSERT_TRUE(WaitFor([&] { return a->IsLeader(); }, 5s));
  auto store = Store("leader");
  EtcdTransferSharing leader(client_, kPrefix, store.get(), [&] { return FenceOf(*a); });
  Transfer older = Sample("T1", TRANSFER_STATE_HOLDING);
  older.add_audit()->set_what("approved");
  Transfer newer = older;
  newer.set_state(TRANSFER_STATE_READY);
  newer.add_audit()->set_what("held");
  EXPECT_TRUE(ContentNotOlder(newer, older));
  EXPECT_FALSE(ContentNotOlder(older, newer));

  auto in_etcd = leader.Publish(older, nullptr);  // etcd holds the older copy
  ASSERT_THAT(in_etcd, IsOk());
  ASSERT_THAT(store->Save(newer), IsOk());  // this replica, the newer one, no revision
  ASSERT_THAT(store->SaveIfNewer(older, nullptr, *in_etcd), IsOk());
  EXPECT_EQ(StateIn(*store, "T1"), TRANSFER_STATE_READY);  // not replaced by the older copy
  EXPECT_EQ(store->Revision("T1").value_or(-1), 0);

  Transfer next = newer;
  next.set_state(TRANSFER_STATE_IN_TRANSIT);
  next.add_audit()->set_what("shipped");
  auto written = leader.Publish(next, nullptr);  // over etcd's older copy
  ASSERT_THAT(written, IsOk());
  EXPECT_EQ(StateInEtcd("T1"), TRANSFER_STATE_IN_TRANSIT);

  ASSERT_THAT(store->ForgetRevisions(), IsOk());
  ASSERT_THAT(store->Save(older), IsOk());  // a replica behind etcd's copy
  EXPECT_THAT(leader.Publish(older, nullptr), StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(StateIn(*store, "T1"), TRANSFER_STATE_IN_TRANSIT);  // refreshed from etcd
  EXPECT_EQ(StateInEtcd("T1"), TRANSFER_STATE_IN_TRANSIT);
}

const common::ReferenceData& Reference() { return testing::SharedReferenceData("420102"); }

// One catalogue replica: its own store and coordinator, the shared fake level services.
struct Replica {
  Replica(const std::string& name, const TempDir& dir, std::shared_ptr<etcd::EtcdClient> client,
          LevelGateway* gateway, const StockSnapshot* snapshot, const Planner* planner,
          const common::Clock* clock) {
    store = *TransferStore::Open(dir.Sub(name));
    CoordinatorOptions options;
    options.retry_deadline = absl::Milliseconds(50);
    options.initial_backoff = absl::Milliseconds(5);
    options.hold_ttl_seconds = 3600;
    coordinator = std::make_unique<TransferCoordinator>(store.get(), gateway, planner, snapshot,
                                                        clock, options);
    TransferLeaderOptions leading;
    leading.lease_ttl_seconds = 2;
    leading.resume_interval = absl::Milliseconds(200);
    leading.shared_prefix = kPrefix;
    leader =
        std::make_unique<TransferLeader>(client, name, coordinator.get(), store.get(), leading);
    leader->Start();
  }
  TransferState State(const Transfer& t) const {
    auto got = coordinator->Get(t.name());
    return got.ok() ? got->state() : TRANSFER_STATE_UNSPECIFIED;
  }
  LegState Leg(const Transfer& t, int i) const {
    auto got = coordinator->Get(t.name());
    return got.ok() && got->legs_size() > i ? got->legs(i).state() : LEG_STATE_UNSPECIFIED;
  }

  std::unique_ptr<TransferStore> store;
  std::unique_ptr<TransferCoordinator> coordinator;
  std::unique_ptr<TransferLeader> leader;
};

class TakeoverTest : public EtcdTest {
 protected:
  TakeoverTest() : snapshot_(&Reference()), planner_(&Reference()), clock_(1'767'225'600'000'000) {}

  void Stock(const std::string& warehouse, int64_t qty) {
    snapshot_.SetLots(warehouse.substr(strlen("warehouses/")), kItem,
                      {LotStock{"DEFAULT", kNoExpiry, qty}});
    gateway_.SetStock(warehouse, kItem, qty);
  }
  std::unique_ptr<Replica> Start(const std::string& name) {
    return std::make_unique<Replica>(name, tmp_, client_, &gateway_, &snapshot_, &planner_,
                                     &clock_);
  }
  static CreateTransferRequest CreateRequest(int64_t qty) {
    CreateTransferRequest req;
    req.set_request_id("create-1");
    req.set_actor("dispatcher");
    req.mutable_plan()->set_destination_warehouse(kDest);
    auto* line = req.mutable_plan()->add_lines();
    line->set_item(kItem);
    line->set_quantity(qty);
    return req;
  }

  FakeLevelGateway gateway_;
  StockSnapshot snapshot_;
  Planner planner_;
  common::FakeClock clock_;  // the fake gateway's holds expire an hour after this
};

TEST_F(TakeoverTest, OtherReplicaFinishesTheTransferWithoutHoldingTwice) {
  Stock(kNear, 30);
  Stock(kFar, 50);
  auto a = Start("a");
  ASSERT_TRUE(WaitFor([&] { return a->leader->IsLeader(); }, 10s));
  auto b = Start("b");

  auto created = a->coordinator->Create(CreateRequest(60));
  ASSERT_THAT(created, IsOk());
  const Transfer t = *created;
  ASSERT_EQ(t.legs_size(), 2) << t.DebugString();
  ASSERT_EQ(t.legs(1).plan().source_warehouse(), kFar);
  gateway_.SetDown(kFar, true);  // leg 1 waits: the leader dies between the holds
  ApproveTransferRequest approve;
  approve.set_request_id("approve-1");
  approve.set_actor("chief");
  approve.set_name(t.name());
  auto approved = a->coordinator->Approve(approve, kNationalApprover);
  ASSERT_THAT(approved, IsOk());
  ASSERT_EQ(approved->state(), TRANSFER_STATE_HOLDING) << approved->DebugString();

  // The follower reads it, step history included, and does not lead.
  // Until the mirror has it, the follower answers NOT_FOUND.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto seen = b->coordinator->Get(t.name());
        return seen.ok() && seen->audit_size() == approved->audit_size();
      },
      5s));
  EXPECT_EQ(b->State(t), TRANSFER_STATE_HOLDING);
  EXPECT_EQ(b->Leg(t, 0), LEG_STATE_HELD);
  EXPECT_EQ(b->Leg(t, 1), LEG_STATE_PLANNED);
  EXPECT_FALSE(b->leader->IsLeader());

  // The leader goes for good (its election stops and its lease goes; the crash case, with a
  // lapsing lease, is tests/fault/transfer_fault_test.cc).
  a->leader->Resign();
  ASSERT_TRUE(WaitFor([&] { return b->leader->IsLeader(); }, 10s));
  EXPECT_FALSE(a->leader->IsLeader());
  gateway_.SetDown(kFar, false);
  // The new leader re-listed the transfer and resumes it: the missing hold is placed.
  ASSERT_TRUE(WaitFor([&] { return b->State(t) == TRANSFER_STATE_READY; }, 10s))
      << b->coordinator->Get(t.name()).value_or(Transfer()).DebugString();
  EXPECT_EQ(gateway_.Placements(t.legs(0).hold_id()), 1);
  EXPECT_EQ(gateway_.Placements(t.legs(1).hold_id()), 1);
  EXPECT_EQ(gateway_.ActiveHolds(), 2);
  EXPECT_EQ(gateway_.Available(kNear, kItem), 0);
  EXPECT_EQ(gateway_.Available(kFar, kItem), 20);

  // The request record came along: a retried create answers with the same transfer.
  auto again = b->coordinator->Create(CreateRequest(60));
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->id(), t.id());

  // The deposed replica cannot act: its write is refused before any level call.
  const int ships = gateway_.Calls("Ship");
  ShipTransferLegRequest ship;
  ship.set_request_id("ship-by-a");
  ship.set_actor("keeper");
  ship.set_name(t.name());
  ship.set_leg(0);
  ASSERT_TRUE(WaitFor([&] { return a->State(t) == TRANSFER_STATE_READY; }, 5s));
  EXPECT_THAT(a->coordinator->Ship(ship),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("retry")));
  EXPECT_EQ(gateway_.Calls("Ship"), ships);

  for (int leg = 0; leg < 2; ++leg) {
    ship.set_request_id(absl::StrCat("ship-", leg));
    ship.set_leg(leg);
    ASSERT_THAT(b->coordinator->Ship(ship), IsOk());
  }
  for (int leg = 0; leg < 2; ++leg) {
    ReceiveTransferLegRequest receive;
    receive.set_request_id(absl::StrCat("receive-", leg));
    receive.set_actor("receiver");
    receive.set_name(t.name());
    receive.set_leg(leg);
    ASSERT_THAT(b->coordinator->Receive(receive), IsOk());
  }
  EXPECT_EQ(b->State(t), TRANSFER_STATE_RECEIVED);
  EXPECT_EQ(gateway_.Received(kDest, kItem), 60);
  EXPECT_EQ(gateway_.ActiveHolds(), 0);
  EXPECT_EQ(StateInEtcd(t.id()), TRANSFER_STATE_RECEIVED);
  // Every replica ends up with the same record.
  EXPECT_TRUE(WaitFor([&] { return a->State(t) == TRANSFER_STATE_RECEIVED; }, 5s));
}

// Counts what the coordinator publishes; revisions as etcd would hand them out.
class CountingJournal final : public TransferJournal {
 public:
  absl::StatusOr<int64_t> Publish(const Transfer&, const RequestRecord*) override {
    absl::MutexLock lock(&mu_);
    return ++writes_;
  }
  int64_t writes() {
    absl::MutexLock lock(&mu_);
    return writes_;
  }

 private:
  absl::Mutex mu_;
  int64_t writes_ = 0;
};

TEST_F(TakeoverTest, WaitingTransferIsNotRewrittenByEveryResumeRound) {
  Stock(kNear, 30);
  Stock(kFar, 50);
  auto store = *TransferStore::Open(tmp_.Sub("counted"));
  CoordinatorOptions options;
  options.retry_deadline = absl::Milliseconds(20);
  options.initial_backoff = absl::Milliseconds(5);
  TransferCoordinator coordinator(store.get(), &gateway_, &planner_, &snapshot_, &clock_, options);
  CountingJournal journal;
  coordinator.SetJournal(&journal);
  auto t = coordinator.Create(CreateRequest(60));
  ASSERT_THAT(t, IsOk());
  gateway_.SetDown(kFar, true);
  ApproveTransferRequest approve;
  approve.set_request_id("approve-1");
  approve.set_actor("chief");
  approve.set_name(t->name());
  ASSERT_THAT(coordinator.Approve(approve, kNationalApprover), IsOk());
  const int64_t after_approval = journal.writes();  // create, approve, leg 0 held, waiting
  EXPECT_EQ(after_approval, 4);
  EXPECT_EQ(store->Revision(t->id()).value_or(0), after_approval);
  clock_.Advance(1'000'000);
  for (int round = 0; round < 5; ++round) ASSERT_THAT(coordinator.ResumeAll(), IsOk());
  EXPECT_EQ(journal.writes(), after_approval);  // nothing changed: nothing written
  gateway_.SetDown(kFar, false);
  ASSERT_THAT(coordinator.ResumeAll(), IsOk());
  EXPECT_EQ(journal.writes(), after_approval + 2);  // leg 1 held, ready
  auto after = coordinator.Get(t->name());
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(after->state(), TRANSFER_STATE_READY);
}

TEST_F(TakeoverTest, TooLargeTransferIsRefusedWhenShared) {
  Stock(kNear, 30);
  auto store = *TransferStore::Open(tmp_.Sub("small"));
  CoordinatorOptions options;
  options.max_shared_transfer_bytes = 200;
  TransferCoordinator coordinator(store.get(), &gateway_, &planner_, &snapshot_, &clock_, options);
  CountingJournal journal;
  coordinator.SetJournal(&journal);
  EXPECT_THAT(coordinator.Create(CreateRequest(10)),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("split")));
  EXPECT_EQ(journal.writes(), 0);
}

TEST_F(TakeoverTest, ResumeLoopResumesNothingUntilTheReListSucceeds) {
  auto store = *TransferStore::Open(tmp_.Sub("loop"));
  TransferCoordinator coordinator(store.get(), &gateway_, &planner_, &snapshot_, &clock_);
  std::atomic<bool> etcd_up{false};
  std::atomic<int> attempts{0};
  ResumeLoop loop(&coordinator, absl::Milliseconds(100), [&]() -> absl::Status {
    ++attempts;
    return etcd_up ? absl::OkStatus() : absl::UnavailableError("etcd down");
  });
  loop.SetLeader(true);
  ASSERT_TRUE(WaitFor([&] { return attempts >= 2; }, 5s));
  EXPECT_EQ(loop.rounds(), 0);
  EXPECT_FALSE(loop.synced());
  etcd_up = true;
  ASSERT_TRUE(WaitFor([&] { return loop.rounds() >= 1; }, 5s));
  EXPECT_TRUE(loop.synced());
  const int synced_after = attempts;
  ASSERT_TRUE(WaitFor([&] { return loop.rounds() >= 3; }, 5s));
  EXPECT_EQ(attempts, synced_after);  // once per term
  loop.SetLeader(false);
  EXPECT_FALSE(loop.synced());
  loop.SetLeader(true);  // a new term re-lists again
  ASSERT_TRUE(WaitFor([&] { return attempts > synced_after && loop.synced(); }, 5s));
}

}  // namespace
}  // namespace stockpile::catalogue::allocation
