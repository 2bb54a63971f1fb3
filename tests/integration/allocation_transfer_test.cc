// Transfers end to end against a real stockpile-level process (county level, city 4201):
// hold -> ship -> receive between county warehouses, conservation via GetLedgerTotals, a
// cancelled transfer leaves every balance as it was, and two coordinators competing for the
// same stock never hold more than there is.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/catalogue/allocation/saga.h"
#include "tests/testutil/level_process.h"
#include "tests/testutil/reference_data.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::catalogue::allocation {
namespace {

using namespace stockpile::v1;  // NOLINT
using testing::Deadline;
using testing::IsOk;

constexpr char kDest[] = "warehouses/420102-W001";
constexpr char kNear[] = "warehouses/420103-W001";
constexpr char kMid[] = "warehouses/420106-W001";
constexpr char kItem[] = "SH-0001";
constexpr char kNationalApprover[] = "";  // the approving token's scope

const common::ReferenceData& Reference() { return testing::SharedReferenceData("420102"); }

// One coordinator (as one catalogue replica would run it) with its own store and snapshot.
struct Replica {
  Replica(const std::string& dir, LevelGateway* gateway)
      : snapshot(&Reference()), planner(&Reference()) {
    store = *TransferStore::Open(dir);
    CoordinatorOptions opts;
    opts.retry_deadline = absl::Seconds(2);
    coordinator = std::make_unique<TransferCoordinator>(store.get(), gateway, &planner, &snapshot,
                                                        common::SystemClock::Get(), opts);
  }
  StockSnapshot snapshot;
  Planner planner;
  std::unique_ptr<TransferStore> store;
  std::unique_ptr<TransferCoordinator> coordinator;
};

class TransferIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    level_ = std::make_unique<testing::LevelProcess>(dir_, "county", "4201",
                                                     std::vector<std::string>{"--insecure"});
    ASSERT_TRUE(level_->Start()) << level_->Log();
    stub_ = level_->Stub();
    const std::string address = level_->address();
    gateway_ = std::make_unique<GrpcLevelGateway>(
        [address](absl::string_view) -> absl::StatusOr<std::string> { return address; });
    for (const char* w : {kDest, kNear, kMid}) CreateWarehouse(w);
    ReceiveStock(kNear, 30);
    ReceiveStock(kMid, 30);
  }
  void TearDown() override {
    if (level_) level_->Stop();
  }

  void CreateWarehouse(const std::string& name) {
    CreateWarehouseRequest req;
    req.set_request_id("cw-" + name.substr(11));
    req.set_actor("test");
    Warehouse* w = req.mutable_warehouse();
    w->set_code(name.substr(11));
    w->set_display_name("depot " + name.substr(11));
    w->set_region_code(name.substr(11, 6));
    w->set_kind(WAREHOUSE_KIND_GOVERNMENT);
    w->set_area_m2(2500);
    Warehouse out;
    ASSERT_TRUE(stub_->CreateWarehouse(Deadline().get(), req, &out).ok());
  }
  void ReceiveStock(const std::string& name, int64_t qty) {
    ReceiveRequest req;
    req.set_request_id("rcv-" + name.substr(11));
    req.set_actor("test");
    req.mutable_op()->set_warehouse(name);
    req.mutable_op()->set_item(kItem);
    req.mutable_op()->set_quantity(qty);
    MovementResult out;
    ASSERT_TRUE(stub_->Receive(Deadline().get(), req, &out).ok());
  }
  Balance BalanceOf(const std::string& name) {
    GetBalanceRequest req;
    req.set_warehouse(name);
    req.set_item(kItem);
    Balance b;
    EXPECT_TRUE(stub_->GetBalance(Deadline().get(), req, &b).ok());
    return b;
  }
  // "TYPE actor" of each movement of the transfer at a warehouse, oldest first.
  std::vector<std::string> MovementActors(const std::string& name, const Transfer& t) {
    ListMovementsRequest req;
    req.set_warehouse(name);
    req.set_item(kItem);
    req.set_page_size(100);
    ListMovementsResponse resp;
    EXPECT_TRUE(stub_->ListMovements(Deadline().get(), req, &resp).ok());
    std::vector<std::string> out;
    for (const auto& m : resp.movements()) {
      if (m.reference() != t.id() && !absl::StartsWith(m.reference(), t.id() + ".")) continue;
      out.push_back(absl::StrCat(MovementType_Name(m.type()), " ", m.actor()));
    }
    return out;
  }
  // What the catalogue's replication would feed the snapshot.
  void Feed(StockSnapshot& snapshot) {
    for (const char* w : {kDest, kNear, kMid}) snapshot.Apply(BalanceOf(w));
  }
  ItemTotals Totals() {
    GetLedgerTotalsResponse resp;
    EXPECT_TRUE(stub_->GetLedgerTotals(Deadline().get(), GetLedgerTotalsRequest(), &resp).ok());
    for (const auto& t : resp.items()) {
      if (t.item() == kItem) return t;
    }
    return ItemTotals();
  }
  static void ExpectConserved(const ItemTotals& t) {
    EXPECT_EQ(t.on_hand() + t.in_transit(), t.received() - t.issued() + t.adjusted() - t.lost() +
                                                t.transferred_in() - t.delivered_out())
        << t.DebugString();
  }

  Transfer CreateTransfer(Replica& r, int64_t qty, const std::string& id) {
    CreateTransferRequest req;
    req.set_request_id(id);
    req.set_actor("dispatcher");
    req.mutable_plan()->set_destination_warehouse(kDest);
    auto* line = req.mutable_plan()->add_lines();
    line->set_item(kItem);
    line->set_quantity(qty);
    auto t = r.coordinator->Create(req);
    EXPECT_THAT(t.status(), IsOk());
    return t.ok() ? *t : Transfer();
  }
  absl::StatusOr<Transfer> Approve(Replica& r, const Transfer& t) {
    ApproveTransferRequest req;
    req.set_request_id("ap-" + t.id());
    req.set_actor("chief");
    req.set_name(t.name());
    return r.coordinator->Approve(req, kNationalApprover);
  }

  // kNear's reserve floor of kItem, at the level and in the replica's snapshot (fed from it).
  void SetNearFloor(Replica& r, int64_t floor) {
    SetQuotaRequest quota;
    quota.set_request_id("floor-near");
    quota.set_actor("test");
    quota.mutable_quota()->set_warehouse(kNear);
    quota.mutable_quota()->set_item(kItem);
    quota.mutable_quota()->set_min(floor);
    Quota set;
    ASSERT_TRUE(stub_->SetQuota(Deadline().get(), quota, &set).ok());
    Feed(r.snapshot);
    r.snapshot.SetFloor("420103-W001", kItem, floor);
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::LevelProcess> level_;
  std::unique_ptr<LevelService::Stub> stub_;
  std::unique_ptr<GrpcLevelGateway> gateway_;
};

// The coordinator reads what a request wrote at a level to find receipts and shipments that
// landed as a leader died; the level pages a request's movements like any listing, so every
// page is read (a leg of many lots writes more than a page).
TEST_F(TransferIntegrationTest, MovementsOfARequestAreReadPastTheFirstPage) {
  ApplyBatchRequest batch;
  batch.set_request_id("many-lots");
  batch.set_actor("test");
  for (int i = 0; i < 150; ++i) {
    ReceiveOp* op = batch.add_operations()->mutable_receive();
    op->set_warehouse(kDest);
    op->set_item(kItem);
    op->set_lot(absl::StrCat("L", i));
    op->set_quantity(1);
  }
  ApplyBatchResponse applied;
  ASSERT_TRUE(stub_->ApplyBatch(Deadline().get(), batch, &applied).ok());
  auto movements = gateway_->MovementsOfRequest(kDest, "many-lots");
  ASSERT_THAT(movements.status(), IsOk());
  EXPECT_EQ(movements->size(), 150u);
}

TEST_F(TransferIntegrationTest, HoldShipReceiveBetweenCountiesConservesStock) {
  Replica r(dir_.Sub("replica"), gateway_.get());
  Feed(r.snapshot);
  Transfer t = CreateTransfer(r, 40, "t1");
  ASSERT_EQ(t.legs_size(), 2);
  EXPECT_EQ(t.legs(0).plan().source_warehouse(), kNear);  // 江汉 is nearer than 武昌
  auto approved = Approve(r, t);
  ASSERT_THAT(approved.status(), IsOk());
  ASSERT_EQ(approved->state(), TRANSFER_STATE_READY) << approved->DebugString();
  EXPECT_EQ(BalanceOf(kNear).held(), 30);
  EXPECT_EQ(BalanceOf(kMid).held(), 10);
  for (int leg = 0; leg < 2; ++leg) {
    ShipTransferLegRequest ship;
    ship.set_request_id(absl::StrCat("ship-", leg));
    ship.set_actor("keeper");
    ship.set_name(t.name());
    ship.set_leg(leg);
    ASSERT_THAT(r.coordinator->Ship(ship).status(), IsOk());
  }
  EXPECT_EQ(Totals().in_transit(), 40);
  ExpectConserved(Totals());
  ReceiveTransferLegRequest recv;
  recv.set_request_id("recv-0");
  recv.set_actor("receiver");
  recv.set_name(t.name());
  recv.set_leg(0);
  ASSERT_THAT(r.coordinator->Receive(recv).status(), IsOk());
  recv.set_request_id("recv-1");
  recv.set_leg(1);
  auto* lot = recv.add_lots();
  lot->set_lot("DEFAULT");
  lot->set_received(9);  // one lost on the road
  auto done = r.coordinator->Receive(recv);
  ASSERT_THAT(done.status(), IsOk());
  EXPECT_EQ(done->state(), TRANSFER_STATE_RECEIVED);
  EXPECT_EQ(BalanceOf(kDest).on_hand(), 39);
  EXPECT_EQ(BalanceOf(kNear).on_hand(), 0);
  EXPECT_EQ(BalanceOf(kMid).on_hand(), 20);
  const ItemTotals totals = Totals();
  EXPECT_EQ(totals.in_transit(), 0);
  EXPECT_EQ(totals.held(), 0);
  EXPECT_EQ(totals.lost(), 1);
  EXPECT_EQ(totals.on_hand(), 59);
  ExpectConserved(totals);
  // Each level's ledger names who did the step (the approver held, the keeper shipped, the
  // receiver took it in), not only "the catalogue".
  using ::testing::ElementsAre;
  EXPECT_THAT(MovementActors(kMid, t),
              ElementsAre("MOVEMENT_TYPE_HOLD chief", "MOVEMENT_TYPE_SHIP keeper"));
  EXPECT_THAT(MovementActors(kDest, t), ElementsAre("MOVEMENT_TYPE_RECEIVE_TRANSFER receiver",
                                                    "MOVEMENT_TYPE_RECEIVE_TRANSFER receiver",
                                                    "MOVEMENT_TYPE_TRANSIT_LOSS receiver"));
}

TEST_F(TransferIntegrationTest, CancelledTransferLeavesEveryBalanceAsItWas) {
  Replica r(dir_.Sub("replica"), gateway_.get());
  Feed(r.snapshot);
  std::vector<std::string> before;
  for (const char* w : {kDest, kNear, kMid}) {
    Balance b = BalanceOf(w);
    before.push_back(absl::StrCat(b.on_hand(), "/", b.held(), "/", b.available()));
  }
  Transfer t = CreateTransfer(r, 45, "t2");
  ASSERT_EQ(Approve(r, t)->state(), TRANSFER_STATE_READY);
  EXPECT_EQ(BalanceOf(kMid).held(), 15);
  CancelTransferRequest cancel;
  cancel.set_request_id("cancel-t2");
  cancel.set_actor("chief");
  cancel.set_name(t.name());
  auto cancelled = r.coordinator->Cancel(cancel);
  ASSERT_THAT(cancelled.status(), IsOk());
  EXPECT_EQ(cancelled->state(), TRANSFER_STATE_CANCELLED);
  std::vector<std::string> after;
  for (const char* w : {kDest, kNear, kMid}) {
    Balance b = BalanceOf(w);
    after.push_back(absl::StrCat(b.on_hand(), "/", b.held(), "/", b.available()));
  }
  EXPECT_EQ(after, before);
  ExpectConserved(Totals());
  EXPECT_THAT(MovementActors(kMid, t),
              ::testing::ElementsAre("MOVEMENT_TYPE_HOLD chief", "MOVEMENT_TYPE_RELEASE chief"));
}

// The level service says whether the destination exists and takes stock: a transfer there
// could otherwise be shipped and then neither received nor cancelled.
TEST_F(TransferIntegrationTest, TransferToAMissingOrClosedDestinationIsRefused) {
  Replica r(dir_.Sub("replica"), gateway_.get());
  Feed(r.snapshot);
  CreateTransferRequest req;
  req.set_request_id("to-nowhere");
  req.set_actor("dispatcher");
  req.mutable_plan()->set_destination_warehouse("warehouses/420102-W009");
  auto* line = req.mutable_plan()->add_lines();
  line->set_item(kItem);
  line->set_quantity(5);
  EXPECT_THAT(r.coordinator->Create(req),
              testing::StatusIs(absl::StatusCode::kNotFound,
                                ::testing::HasSubstr("warehouses/420102-W009 does not exist")));
  UpdateWarehouseRequest close;
  close.set_request_id("close-dest");
  close.set_actor("test");
  close.mutable_warehouse()->set_name(kDest);
  close.mutable_warehouse()->set_status(WAREHOUSE_STATUS_CLOSED);
  close.mutable_update_mask()->add_paths("status");
  Warehouse closed;
  ASSERT_TRUE(stub_->UpdateWarehouse(Deadline().get(), close, &closed).ok());
  req.set_request_id("to-closed");
  req.mutable_plan()->set_destination_warehouse(kDest);
  EXPECT_THAT(r.coordinator->Create(req),
              testing::StatusIs(absl::StatusCode::kFailedPrecondition,
                                ::testing::HasSubstr("is closed and takes no stock")));
  EXPECT_EQ(BalanceOf(kNear).held(), 0);
}

TEST_F(TransferIntegrationTest, CompetingCoordinatorsNeverHoldMoreThanThereIs) {
  // Two replicas that both believe all 60 units are free (their snapshots are stale for each
  // other): the level service's holds decide.
  Replica a(dir_.Sub("a"), gateway_.get()), b(dir_.Sub("b"), gateway_.get());
  Feed(a.snapshot);
  Feed(b.snapshot);
  Transfer ta = CreateTransfer(a, 40, "ta");
  Transfer tb = CreateTransfer(b, 40, "tb");
  absl::StatusOr<Transfer> ra, rb;
  std::thread x([&] { ra = Approve(a, ta); });
  std::thread y([&] { rb = Approve(b, tb); });
  x.join();
  y.join();
  ASSERT_THAT(ra.status(), IsOk());
  ASSERT_THAT(rb.status(), IsOk());
  int64_t held_by_transfers = 0;
  for (const Transfer* t : {&*ra, &*rb}) {
    for (const auto& leg : t->legs()) {
      if (leg.state() == LEG_STATE_HELD) held_by_transfers += leg.plan().quantity();
    }
  }
  const int64_t held = BalanceOf(kNear).held() + BalanceOf(kMid).held();
  EXPECT_EQ(held, held_by_transfers);
  EXPECT_LE(held, 60);
  EXPECT_GE(BalanceOf(kNear).available(), 0);
  EXPECT_GE(BalanceOf(kMid).available(), 0);
  // 40 + 40 > 60: at most one can be READY (depending on the interleaving both may fail after
  // their re-plans); a failed one let go of everything it held.
  const int ready = (ra->state() == TRANSFER_STATE_READY) + (rb->state() == TRANSFER_STATE_READY);
  EXPECT_LE(ready, 1) << ra->DebugString() << rb->DebugString();
  EXPECT_EQ(held, 40 * ready);
  ExpectConserved(Totals());
}

// kNear keeps a reserve floor of 20 of its 30. Two ROUTINE transfers of 10 are both planned
// from its 10 above the floor before either is approved (two dispatchers at once). The first
// holds them; the level refuses the second's hold below the floor, and that leg is re-planned
// to kMid. kNear keeps its floor. (Holds were placed whatever the floor before.)
TEST_F(TransferIntegrationTest, TransfersPlannedAtOnceKeepTheSourcesReserveFloor) {
  Replica r(dir_.Sub("r"), gateway_.get());
  SetNearFloor(r, 20);
  Transfer first = CreateTransfer(r, 10, "first");
  Transfer second = CreateTransfer(r, 10, "second");
  ASSERT_EQ(first.legs(0).plan().source_warehouse(), kNear);
  ASSERT_EQ(second.legs(0).plan().source_warehouse(), kNear);  // planned from the same 10
  absl::StatusOr<Transfer> a = Approve(r, first);
  ASSERT_THAT(a.status(), IsOk());
  EXPECT_EQ(a->state(), TRANSFER_STATE_READY);
  absl::StatusOr<Transfer> b = Approve(r, second);
  ASSERT_THAT(b.status(), IsOk());
  EXPECT_EQ(b->state(), TRANSFER_STATE_READY) << b->DebugString();
  ASSERT_EQ(b->legs_size(), 2) << b->DebugString();
  EXPECT_EQ(b->legs(0).state(), LEG_STATE_REPLACED);
  EXPECT_EQ(b->legs(1).plan().source_warehouse(), kMid);
  EXPECT_EQ(b->legs(1).state(), LEG_STATE_HELD);
  bool refusal_audited = false;
  for (const auto& step : b->audit()) {
    refusal_audited |= absl::StrContains(step.what(), "below its reserve floor of 20");
  }
  EXPECT_TRUE(refusal_audited) << b->DebugString();
  EXPECT_EQ(BalanceOf(kNear).available(), 20);
  EXPECT_EQ(BalanceOf(kMid).available(), 20);
  ExpectConserved(Totals());
}

// A CRITICAL transfer may draw a reserve down: its hold does not ask the level to keep it.
TEST_F(TransferIntegrationTest, CriticalTransferMayHoldBelowTheReserveFloor) {
  Replica r(dir_.Sub("r"), gateway_.get());
  SetNearFloor(r, 30);
  CreateTransferRequest req;
  req.set_request_id("critical");
  req.set_actor("dispatcher");
  req.mutable_plan()->set_destination_warehouse(kDest);
  req.mutable_plan()->set_priority(PRIORITY_CRITICAL);
  auto* line = req.mutable_plan()->add_lines();
  line->set_item(kItem);
  line->set_quantity(10);
  auto t = r.coordinator->Create(req);
  ASSERT_THAT(t.status(), IsOk());
  ASSERT_EQ(t->legs(0).plan().source_warehouse(), kNear);
  EXPECT_TRUE(t->legs(0).plan().below_floor());
  absl::StatusOr<Transfer> a = Approve(r, *t);
  ASSERT_THAT(a.status(), IsOk());
  EXPECT_EQ(a->state(), TRANSFER_STATE_READY) << a->DebugString();
  EXPECT_EQ(BalanceOf(kNear).available(), 20);
}

}  // namespace
}  // namespace stockpile::catalogue::allocation
