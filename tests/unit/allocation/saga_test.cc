#include "services/catalogue/allocation/saga.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "services/common/transfer_ids.h"
#include "tests/testutil/process.h"
#include "tests/testutil/reference_data.h"
#include "tests/testutil/status_matchers.h"
#include "tests/unit/allocation/fake_level_gateway.h"

namespace stockpile::catalogue::allocation {
namespace {

using namespace stockpile::v1;  // NOLINT
using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::IsOk;
using testing::StatusIs;

#define ASSERT_OK_AND_ASSIGN_T(lhs, expr) \
  do {                                    \
    auto r_ = (expr);                     \
    ASSERT_TRUE(r_.ok()) << r_.status();  \
    lhs = *r_;                            \
  } while (0)

constexpr char kDest[] = "warehouses/420102-W001";
constexpr char kNear[] = "warehouses/420103-W001";  // 江汉, ~4 km
constexpr char kMid[] = "warehouses/420106-W001";   // 武昌, ~5 km
constexpr char kFar[] = "warehouses/420115-W001";   // 江夏, ~25 km
constexpr char kItem[] = "SH-0001";
constexpr char kNationalApprover[] = "";  // the approving token's scope

const common::ReferenceData& Reference() { return testing::SharedReferenceData("420102"); }

// Publishes into nothing: enough for the coordinator to apply a journal's size limits.
class CountingJournal final : public TransferJournal {
 public:
  absl::StatusOr<int64_t> Publish(const Transfer&, const RequestRecord*) override {
    return ++revision_;
  }

 private:
  int64_t revision_ = 0;
};

class SagaTest : public ::testing::Test {
 protected:
  SagaTest() : snapshot_(&Reference()), planner_(&Reference()), clock_(1'767'225'600'000'000) {
    Reopen();
  }

  void Reopen() {
    coordinator_.reset();
    store_.reset();
    store_ = *TransferStore::Open(dir_.Sub("transfers"));
    CoordinatorOptions opts;
    opts.retry_deadline = absl::Milliseconds(50);
    opts.initial_backoff = absl::Milliseconds(5);
    opts.hold_ttl_seconds = 3600;
    opts.require_second_approver = require_second_approver_;
    opts.replan_rounds = replan_rounds_;
    opts.max_replanned_transfer_bytes = max_replanned_transfer_bytes_;
    opts.sources = [this] { return sources_; };
    opts.known_warehouse = known_warehouse_;
    coordinator_ = std::make_unique<TransferCoordinator>(store_.get(), &gateway_, &planner_,
                                                         &snapshot_, &clock_, opts);
  }

  // Same stock in the snapshot and at the (fake) level services.
  void Stock(const std::string& warehouse, int64_t qty) {
    StockSeen(warehouse, qty);
    gateway_.SetStock(warehouse, kItem, qty);
  }
  void StockSeen(const std::string& warehouse, int64_t qty) {
    snapshot_.SetLots(warehouse.substr(strlen("warehouses/")), kItem,
                      {LotStock{"DEFAULT", kNoExpiry, qty}});
  }

  // qty of kItem to kDest.
  static PlanAllocationRequest PlanRequest(int64_t qty) {
    PlanAllocationRequest req;
    req.set_destination_warehouse(kDest);
    auto* line = req.add_lines();
    line->set_item(kItem);
    line->set_quantity(qty);
    return req;
  }
  Transfer Create(int64_t qty, const std::string& request_id = "create-1") {
    CreateTransferRequest req;
    req.set_request_id(request_id);
    req.set_actor("dispatcher-wang");
    *req.mutable_plan() = PlanRequest(qty);
    auto t = coordinator_->Create(req);
    EXPECT_THAT(t.status(), IsOk());
    return t.ok() ? *t : Transfer();
  }
  absl::StatusOr<Transfer> Approve(const Transfer& t,
                                   absl::string_view approver_scope = kNationalApprover) {
    ApproveTransferRequest req;
    req.set_request_id("approve-" + t.id());
    req.set_actor("chief-li");
    req.set_name(t.name());
    return coordinator_->Approve(req, approver_scope);
  }
  absl::StatusOr<Transfer> Ship(const Transfer& t, int leg) {
    ShipTransferLegRequest req;
    req.set_request_id(absl::StrCat("ship-", t.id(), "-", leg));
    req.set_actor("keeper");
    req.set_name(t.name());
    req.set_leg(leg);
    return coordinator_->Ship(req);
  }
  absl::StatusOr<Transfer> Receive(const Transfer& t, int leg, int64_t received = -1) {
    ReceiveTransferLegRequest req;
    req.set_request_id(absl::StrCat("recv-", t.id(), "-", leg));
    req.set_actor("receiver");
    req.set_name(t.name());
    req.set_leg(leg);
    if (received >= 0) {
      auto* l = req.add_lots();
      l->set_lot("DEFAULT");
      l->set_received(received);
    }
    return coordinator_->Receive(req);
  }
  // 15 asked for: leg 0 takes 10 from kNear and has shipped, leg 1 holds 5 at kMid.
  absl::StatusOr<Transfer> FirstOfTwoLegsShipped() {
    Stock(kNear, 10);
    Stock(kMid, 10);
    auto t = Approve(Create(15));
    return t.ok() ? Ship(*t, 0) : t;
  }
  // After FirstOfTwoLegsShipped lost leg 1 (its hold expired or forgotten): leg 0 still
  // arrives, and the transfer ends received, short by leg 1's 5.
  void ExpectTheShippedLegEndsItShortOfTheOther(const std::string& name) {
    auto after = coordinator_->Get(name);
    ASSERT_THAT(after.status(), IsOk());
    EXPECT_EQ(after->state(), TRANSFER_STATE_IN_TRANSIT);
    EXPECT_EQ(after->legs(1).state(), LEG_STATE_RELEASED);
    Transfer t;
    ASSERT_OK_AND_ASSIGN_T(t, Receive(*after, 0));
    EXPECT_EQ(t.state(), TRANSFER_STATE_RECEIVED);
    ASSERT_EQ(t.short_lines_size(), 1);
    EXPECT_EQ(t.short_lines(0).item(), kItem);
    EXPECT_EQ(t.short_lines(0).requested(), 5);
    EXPECT_EQ(t.short_lines(0).shortfall(), 5);  // the mid leg's 5 of the 15
    EXPECT_EQ(gateway_.Received(kDest, kItem), 10);
    EXPECT_EQ(gateway_.Available(kMid, kItem), 10);
  }
  absl::StatusOr<Transfer> Cancel(const Transfer& t, const std::string& actor = "chief-li") {
    CancelTransferRequest req;
    req.set_request_id("cancel-" + t.id());
    req.set_actor(actor);
    req.set_name(t.name());
    req.set_reason("no longer needed");
    return coordinator_->Cancel(req);
  }

  // 8 asked for; the snapshot shows 10 at each of kNear, kMid and kFar, but concurrent
  // transfers took all but 2 at kNear and 1 at kMid before this one's holds reached them.
  absl::StatusOr<Transfer> ApproveWithTheTwoNearestTakenMeanwhile() {
    Stock(kNear, 10);
    gateway_.SetStock(kNear, kItem, 2);
    Stock(kMid, 10);
    gateway_.SetStock(kMid, kItem, 1);
    Stock(kFar, 10);
    return Approve(Create(8));
  }

  testing::TempDir dir_;
  CountingJournal journal_;  // set by tests of shared transfers; outlives the coordinator
  StockSnapshot snapshot_;
  Planner planner_;
  common::FakeClock clock_;
  FakeLevelGateway gateway_;
  std::unique_ptr<TransferStore> store_;
  std::unique_ptr<TransferCoordinator> coordinator_;
  bool require_second_approver_ = false;
  std::function<bool(absl::string_view)> known_warehouse_;
  int replan_rounds_ = CoordinatorOptions().replan_rounds;
  size_t max_replanned_transfer_bytes_ = CoordinatorOptions().max_replanned_transfer_bytes;
  std::vector<SourceContact> sources_;  // what the catalogue's replication would say
};

TEST_F(SagaTest, WithFourEyesTheCreatorCannotApproveAndNothingIsHeld) {
  Stock(kNear, 10);
  ApproveTransferRequest own;
  own.set_actor("dispatcher-wang");  // who Create() names as the creator
  Transfer alone = Create(4, "create-alone");
  own.set_request_id("approve-own-1");
  own.set_name(alone.name());
  ASSERT_OK_AND_ASSIGN_T(alone, coordinator_->Approve(own, kNationalApprover));  // off by default
  EXPECT_EQ(alone.approved_by(), "dispatcher-wang");

  require_second_approver_ = true;
  Reopen();
  Transfer t = Create(5, "create-two");
  own.set_request_id("approve-own-2");
  own.set_name(t.name());
  const int holds_before = gateway_.Calls("Hold");
  EXPECT_THAT(coordinator_->Approve(own, kNationalApprover),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("was created by dispatcher-wang; another dispatcher must "
                                 "approve it")));
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Get(t.name()));
  EXPECT_EQ(t.state(), TRANSFER_STATE_PENDING_APPROVAL);
  EXPECT_EQ(gateway_.Calls("Hold"), holds_before);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));  // chief-li
  EXPECT_EQ(t.approved_by(), "chief-li");
  EXPECT_EQ(t.state(), TRANSFER_STATE_READY);
}

// Level services keep this form of hold id for the catalogue (rules.cc): a leg whose id fell
// outside it could be taken by anyone placing a hold with it first. Re-planned legs too.
TEST_F(SagaTest, LegHoldIdsHaveTheFormLevelServicesReserveForTransfers) {
  Transfer t;
  ASSERT_OK_AND_ASSIGN_T(t, ApproveWithTheTwoNearestTakenMeanwhile());
  ASSERT_EQ(t.legs_size(), 3);
  for (const TransferLeg& leg : t.legs()) {
    EXPECT_TRUE(common::IsTransferLegHoldId(leg.hold_id())) << leg.hold_id();
  }
}

TEST_F(SagaTest, HappyPathHoldsShipsAndReceives) {
  Stock(kNear, 10);
  Stock(kMid, 10);
  Transfer t = Create(15);
  EXPECT_EQ(t.state(), TRANSFER_STATE_PENDING_APPROVAL);
  ASSERT_EQ(t.legs_size(), 2);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  EXPECT_EQ(t.state(), TRANSFER_STATE_READY);
  EXPECT_EQ(gateway_.Available(kNear, kItem), 0);
  EXPECT_EQ(gateway_.Available(kMid, kItem), 5);
  ASSERT_OK_AND_ASSIGN_T(t, Ship(t, 0));
  EXPECT_EQ(t.state(), TRANSFER_STATE_IN_TRANSIT);
  ASSERT_OK_AND_ASSIGN_T(t, Ship(t, 1));
  ASSERT_OK_AND_ASSIGN_T(t, Receive(t, 0));
  EXPECT_EQ(t.state(), TRANSFER_STATE_IN_TRANSIT);
  ASSERT_OK_AND_ASSIGN_T(t, Receive(t, 1, 3));  // 2 of 5 lost on the way
  EXPECT_EQ(t.state(), TRANSFER_STATE_RECEIVED);
  EXPECT_EQ(t.legs(1).lost(), 2);
  EXPECT_EQ(gateway_.Received(kDest, kItem), 13);
  EXPECT_EQ(gateway_.Calls("ConfirmDelivery"), 2);  // sources on other instances
  EXPECT_EQ(gateway_.Placements(t.legs(0).hold_id()), 1);
  EXPECT_GE(t.audit_size(), 8);
  EXPECT_EQ(t.audit(0).actor(), "dispatcher-wang");
  EXPECT_FALSE(Unfinished(t));
}

// The ledgers at the sources and the destination say who did each step, not just "the
// catalogue": holds in the approver's name, the shipment in the shipper's, arrival and its
// confirmation at the source in the receiver's.
TEST_F(SagaTest, LevelCallsNameTheStepsActor) {
  Transfer t;
  ASSERT_OK_AND_ASSIGN_T(t, FirstOfTwoLegsShipped());
  ASSERT_OK_AND_ASSIGN_T(t, Ship(t, 1));
  ASSERT_OK_AND_ASSIGN_T(t, Receive(t, 0));
  ASSERT_OK_AND_ASSIGN_T(t, Receive(t, 1));
  using V = std::vector<std::string>;
  EXPECT_EQ(gateway_.Actors("Hold"), V({"chief-li", "chief-li"}));
  EXPECT_EQ(gateway_.Actors("Ship"), V({"keeper", "keeper"}));
  EXPECT_EQ(gateway_.Actors("ReceiveTransfer"), V({"receiver", "receiver"}));
  EXPECT_EQ(gateway_.Actors("ConfirmDelivery"), V({"receiver", "receiver"}));
  EXPECT_EQ(t.legs(0).shipped_by(), "keeper");
  EXPECT_EQ(t.legs(1).received_by(), "receiver");
}

TEST_F(SagaTest, ReleasesNameTheCancellerOrTheCoordinator) {
  Stock(kNear, 10);
  Stock(kMid, 10);
  Transfer t = Create(15);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  ASSERT_OK_AND_ASSIGN_T(t, Cancel(t, "duty-officer-zhao"));
  EXPECT_EQ(t.cancelled_by(), "duty-officer-zhao");
  using V = std::vector<std::string>;
  EXPECT_EQ(gateway_.Actors("Release"), V({"duty-officer-zhao", "duty-officer-zhao"}));
  // A transfer that fails on its own lets go of its holds in the coordinator's name.
  Stock(kNear, 10);
  Stock(kMid, 10);
  Transfer u = Create(15, "create-2");
  ASSERT_OK_AND_ASSIGN_T(u, Approve(u));
  gateway_.Expire(u.legs(0).hold_id());
  clock_.Advance(int64_t{2} * 3600 * 1'000'000);
  ASSERT_THAT(coordinator_->ResumeAll(), IsOk());
  EXPECT_EQ(gateway_.Actors("Release").back(), CoordinatorOptions().level_actor);
}

// A shipment whose level reply was lost is shipped again by someone else: the level request is
// repeated as first sent (same id, same actor), so the level answers it instead of refusing a
// reused id with other content.
TEST_F(SagaTest, ShipmentRetriedByAnotherPersonRepeatsTheFirstRequest) {
  Stock(kNear, 10);
  Transfer t = Create(5);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  gateway_.LoseNextReply(kNear, /*then_down=*/true);
  EXPECT_THAT(Ship(t, 0), StatusIs(absl::StatusCode::kUnavailable));
  gateway_.SetDown(kNear, false);
  ShipTransferLegRequest again;
  again.set_request_id("ship-again");
  again.set_actor("keeper-2");
  again.set_name(t.name());
  again.set_leg(0);
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Ship(again));
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_SHIPPED);
  EXPECT_EQ(t.legs(0).shipped_by(), "keeper");
  EXPECT_EQ(gateway_.Actors("Ship"), std::vector<std::string>({"keeper"}));
  EXPECT_EQ(gateway_.Replays(), 1);
  EXPECT_EQ(t.audit(t.audit_size() - 2).actor(), "keeper-2");  // who asked the second time
}

// Transfers stored before steps named their actor may have level requests stored under the
// coordinator's name; they keep it, so their retries are still recognised.
TEST_F(SagaTest, OlderTransfersKeepTheCoordinatorsNameOnLevelCalls) {
  Stock(kNear, 10);
  Transfer t = Create(5);
  t.clear_level_calls_name_step_actor();
  ASSERT_THAT(store_->Save(t), IsOk());
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  ASSERT_OK_AND_ASSIGN_T(t, Ship(t, 0));
  const std::string coordinator = CoordinatorOptions().level_actor;
  EXPECT_EQ(gateway_.Actors("Hold"), std::vector<std::string>({coordinator}));
  EXPECT_EQ(gateway_.Actors("Ship"), std::vector<std::string>({coordinator}));
}

TEST_F(SagaTest, ReceiptThatLandedIsTakenFromTheDestinationAndOtherFiguresAreRefused) {
  Stock(kNear, 20);
  Transfer t = Create(20);
  ASSERT_EQ(t.legs_size(), 1);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  ASSERT_OK_AND_ASSIGN_T(t, Ship(t, 0));
  gateway_.LoseNextReply(kDest, /*then_down=*/true);
  EXPECT_THAT(Receive(t, 0, 15), StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Get(t.name()));
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_SHIPPED);
  EXPECT_EQ(t.legs(0).received_lots_size(), 0);  // not shown before the ledger is known to have it
  gateway_.SetDown(kDest, false);

  // Someone else says everything arrived (a new request id): the ledger has 15, which stands.
  ReceiveTransferLegRequest all;
  all.set_request_id("receive-all");
  all.set_actor("receiver-2");
  all.set_name(t.name());
  all.set_leg(0);
  const auto refused =
      StatusIs(absl::StatusCode::kFailedPrecondition,
               HasSubstr("leg 0 was already received at warehouses/420102-W001: 15 of 20 "
                         "arrived, 5 lost"));
  EXPECT_THAT(coordinator_->Receive(all), refused);
  EXPECT_THAT(coordinator_->Receive(all), refused);  // its retry is answered the same
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Get(t.name()));
  EXPECT_EQ(t.state(), TRANSFER_STATE_RECEIVED);
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_DELIVERED);
  EXPECT_EQ(t.legs(0).received(), 15);
  EXPECT_EQ(t.legs(0).lost(), 5);
  ASSERT_EQ(t.legs(0).received_lots_size(), 1);
  EXPECT_EQ(t.legs(0).received_lots(0).received(), 15);
  EXPECT_EQ(gateway_.Received(kDest, kItem), 15);
  EXPECT_FALSE(Unfinished(t));
  // The first receipt's own retry has the recorded figures: answered OK.
  ASSERT_OK_AND_ASSIGN_T(t, Receive(t, 0, 15));
  EXPECT_EQ(t.state(), TRANSFER_STATE_RECEIVED);
}

TEST_F(SagaTest, ReceiptThatLandedIsCompletedByAnotherWithTheSameFigures) {
  Stock(kNear, 20);
  Transfer t = Create(20);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  ASSERT_OK_AND_ASSIGN_T(t, Ship(t, 0));
  gateway_.LoseNextReply(kDest, /*then_down=*/true);
  EXPECT_THAT(Receive(t, 0, 15), StatusIs(absl::StatusCode::kUnavailable));
  gateway_.SetDown(kDest, false);
  ReceiveTransferLegRequest again;
  again.set_request_id("receive-again");
  again.set_actor("receiver-2");
  again.set_name(t.name());
  again.set_leg(0);
  auto* lot = again.add_lots();
  lot->set_lot("DEFAULT");
  lot->set_received(15);
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Receive(again));
  EXPECT_EQ(t.state(), TRANSFER_STATE_RECEIVED);
  EXPECT_EQ(t.legs(0).received(), 15);
  EXPECT_EQ(gateway_.Received(kDest, kItem), 15);
  EXPECT_EQ(gateway_.Calls("MovementsOfRequest"), 0);  // the level answered the retry itself
}

// Only the source's delivery confirmation is owed (the source is down): the receipt is
// recorded, so the caller is answered OK, after one attempt at the source: retrying it for the
// retry deadline (20 s) outlasted stockctl's 10 s, so the receipt answered DEADLINE_EXCEEDED.
// The resume loop confirms once the source is back.
TEST_F(SagaTest, ReceiptIsAnsweredOkWhileTheSourcesConfirmationIsOwed) {
  Stock(kNear, 10);
  Transfer t = Create(5);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  ASSERT_OK_AND_ASSIGN_T(t, Ship(t, 0));
  gateway_.SetDown(kNear, true);
  ASSERT_OK_AND_ASSIGN_T(t, Receive(t, 0));
  EXPECT_EQ(gateway_.Calls("ConfirmDelivery"), 1);
  EXPECT_EQ(t.state(), TRANSFER_STATE_RECEIVED);
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_RECEIVED);
  EXPECT_THAT(t.audit(t.audit_size() - 1).what(),
              HasSubstr("delivery confirmation at warehouses/420103-W001 failed"));
  ASSERT_OK_AND_ASSIGN_T(t, Receive(t, 0));  // a retry, the source still down
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_RECEIVED);
  EXPECT_TRUE(Unfinished(t));
  gateway_.SetDown(kNear, false);
  EXPECT_THAT(coordinator_->ResumeAll(), IsOk());
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Get(t.name()));
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_DELIVERED);
  EXPECT_EQ(gateway_.Received(kDest, kItem), 5);
  EXPECT_FALSE(Unfinished(t));
}

TEST_F(SagaTest, SameInstanceNeedsNoConfirmation) {
  Stock(kNear, 10);
  gateway_.SameInstanceFor(kNear, kDest);
  Transfer t = Create(4);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  ASSERT_OK_AND_ASSIGN_T(t, Ship(t, 0));
  ASSERT_OK_AND_ASSIGN_T(t, Receive(t, 0));
  EXPECT_EQ(t.state(), TRANSFER_STATE_RECEIVED);
  EXPECT_EQ(gateway_.Calls("ConfirmDelivery"), 0);
}

TEST_F(SagaTest, CancelReleasesEveryHold) {
  Stock(kNear, 10);
  Stock(kMid, 10);
  Transfer t = Create(15);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  ASSERT_OK_AND_ASSIGN_T(t, Cancel(t));
  EXPECT_EQ(t.state(), TRANSFER_STATE_CANCELLED);
  EXPECT_EQ(gateway_.Available(kNear, kItem), 10);
  EXPECT_EQ(gateway_.Available(kMid, kItem), 10);
  EXPECT_EQ(gateway_.ActiveHolds(), 0);
  for (const auto& leg : t.legs()) EXPECT_EQ(leg.state(), LEG_STATE_RELEASED);
  EXPECT_FALSE(Unfinished(t));
}

TEST_F(SagaTest, CancelAfterShippingIsRefused) {
  Stock(kNear, 10);
  Transfer t = Create(5);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  ASSERT_OK_AND_ASSIGN_T(t, Ship(t, 0));
  // The refusal reads as the tables do ("in transit", not TRANSFER_STATE_IN_TRANSIT).
  EXPECT_THAT(Cancel(t), StatusIs(absl::StatusCode::kFailedPrecondition,
                                  HasSubstr(" is in transit; only a transfer with nothing "
                                            "shipped can be cancelled")));
  ApproveTransferRequest approve;  // a new request, not a retry of the approval
  approve.set_request_id("approve-again");
  approve.set_actor("chief-li");
  approve.set_name(t.name());
  EXPECT_THAT(coordinator_->Approve(approve, kNationalApprover),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr(" is in transit; only a transfer pending approval")));
  ShipTransferLegRequest ship;
  ship.set_request_id("ship-again");
  ship.set_actor("keeper");
  ship.set_name(t.name());
  ship.set_leg(0);
  EXPECT_THAT(coordinator_->Ship(ship),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("leg 0 of " + t.name() +
                                 " is shipped and the transfer in transit; only a held leg of a "
                                 "ready or in-transit transfer")));
}

// A shipment that never reached its source (down) was answered "retry"; the transfer was then
// cancelled. The retry used to answer OK with the cancelled transfer, so a script read the leg
// as shipped: it is refused, and nothing moves.
TEST_F(SagaTest, AShipmentRetriedAfterTheTransferWasCancelledIsRefused) {
  Stock(kNear, 10);
  Transfer t = Create(5);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  gateway_.SetDown(kNear, true);
  EXPECT_THAT(Ship(t, 0), StatusIs(absl::StatusCode::kUnavailable));
  gateway_.SetDown(kNear, false);
  ASSERT_OK_AND_ASSIGN_T(t, Cancel(t));
  ASSERT_EQ(t.state(), TRANSFER_STATE_CANCELLED);
  const int ship_calls = gateway_.Calls("Ship");
  EXPECT_THAT(Ship(t, 0), StatusIs(absl::StatusCode::kFailedPrecondition,
                                   HasSubstr("leg 0 of " + t.name() +
                                             " is released and the transfer cancelled")));
  EXPECT_EQ(gateway_.Calls("Ship"), ship_calls);
  EXPECT_EQ(gateway_.Available(kNear, kItem), 10);
}

// A shipment that reached its source but whose reply was lost leaves the leg HELD here. A cancel
// read the release's refusal as "released": the leg was recorded released while its stock was in
// transit, and nothing could receive it. The cancel now asks the source first.
TEST_F(SagaTest, CancelAfterAShipmentWhoseReplyWasLostIsRefusedAndTheLegReceived) {
  Stock(kNear, 10);
  Transfer t = Create(5);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  gateway_.LoseNextReply(kNear, /*then_down=*/true);
  EXPECT_THAT(Ship(t, 0), StatusIs(absl::StatusCode::kUnavailable));
  gateway_.SetDown(kNear, false);
  EXPECT_THAT(Cancel(t), StatusIs(absl::StatusCode::kFailedPrecondition,
                                  HasSubstr("cannot be cancelled: leg 0 is in transit")));
  EXPECT_EQ(gateway_.Calls("Release"), 0);
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Get(t.name()));
  EXPECT_EQ(t.state(), TRANSFER_STATE_IN_TRANSIT);
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_SHIPPED);
  ASSERT_OK_AND_ASSIGN_T(t, Receive(t, 0));
  EXPECT_EQ(t.state(), TRANSFER_STATE_RECEIVED);
  EXPECT_EQ(gateway_.Received(kDest, kItem), 5);
}

// Nobody retries or cancels: the resume loop finds the shipment that went through (it used to
// leave the transfer READY, its leg HELD, until the hold's expiry).
TEST_F(SagaTest, ResumeFindsAShipmentWhoseReplyWasLost) {
  Stock(kNear, 10);
  Transfer t = Create(5);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  gateway_.LoseNextReply(kNear, /*then_down=*/true);
  EXPECT_THAT(Ship(t, 0), StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_THAT(coordinator_->ResumeAll(), IsOk());  // source still down: nothing to tell yet
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Get(t.name()));
  EXPECT_EQ(t.state(), TRANSFER_STATE_READY);
  gateway_.SetDown(kNear, false);
  ASSERT_THAT(coordinator_->ResumeAll(), IsOk());
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Get(t.name()));
  EXPECT_EQ(t.state(), TRANSFER_STATE_IN_TRANSIT);
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_SHIPPED);
  EXPECT_THAT(t.audit(t.audit_size() - 1).what(), HasSubstr("found shipped at"));
}

// The leader died after the destination recorded a receipt and before the leg was saved
// RECEIVED (its reply lost). Nobody retries: the resume loop asks the destination by the leg's
// request id and records what its ledger has, once (it used to stay in transit, counted at the
// destination and in transit at once, until someone re-ran the receipt).
TEST_F(SagaTest, ResumeFindsAReceiptWhoseReplyWasLost) {
  Stock(kNear, 20);
  Transfer t = Create(20);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  ASSERT_OK_AND_ASSIGN_T(t, Ship(t, 0));
  gateway_.LoseNextReply(kDest, /*then_down=*/true);
  EXPECT_THAT(Receive(t, 0, 15), StatusIs(absl::StatusCode::kUnavailable));
  Reopen();                                        // a new leader, from what was saved
  ASSERT_THAT(coordinator_->ResumeAll(), IsOk());  // destination down: nothing to tell yet
  Transfer before;
  ASSERT_OK_AND_ASSIGN_T(before, coordinator_->Get(t.name()));
  EXPECT_EQ(before.state(), TRANSFER_STATE_IN_TRANSIT);
  EXPECT_EQ(before.legs(0).state(), LEG_STATE_SHIPPED);
  gateway_.SetDown(kDest, false);
  ASSERT_THAT(coordinator_->ResumeAll(), IsOk());
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Get(t.name()));
  EXPECT_EQ(t.state(), TRANSFER_STATE_RECEIVED);
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_DELIVERED);  // confirmed at the source too
  EXPECT_EQ(t.legs(0).received(), 15);                // the ledger's figures
  EXPECT_EQ(t.legs(0).lost(), 5);
  EXPECT_TRUE(std::any_of(t.audit().begin(), t.audit().end(), [](const AuditStep& a) {
    return absl::StrContains(a.what(),
                             "leg 0: found received at warehouses/420102-W001 (15 arrived, 5 "
                             "lost): its receipt went through; the reply was lost");
  }));
  EXPECT_FALSE(Unfinished(t));
  ASSERT_THAT(coordinator_->ResumeAll(), IsOk());
  EXPECT_EQ(gateway_.Actors("ReceiveTransfer").size(), 1u);  // asked, never received again
  EXPECT_EQ(gateway_.Calls("ConfirmDelivery"), 1);
  EXPECT_EQ(gateway_.Received(kDest, kItem), 15);
  ASSERT_OK_AND_ASSIGN_T(t, Receive(t, 0, 15));  // the dispatcher's retry is answered OK
  EXPECT_EQ(t.state(), TRANSFER_STATE_RECEIVED);
  EXPECT_EQ(gateway_.Received(kDest, kItem), 15);
}

// A receipt that never reached the destination (down) is not taken for received: the leg
// stays in transit until someone receives it.
TEST_F(SagaTest, ResumeLeavesAReceiptThatNeverLandedInTransit) {
  Stock(kNear, 10);
  Transfer t = Create(5);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  ASSERT_OK_AND_ASSIGN_T(t, Ship(t, 0));
  gateway_.SetDown(kDest, true);
  EXPECT_THAT(Receive(t, 0), StatusIs(absl::StatusCode::kUnavailable));
  gateway_.SetDown(kDest, false);
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Get(t.name()));
  const int audit_size = t.audit_size();
  ASSERT_THAT(coordinator_->ResumeAll(), IsOk());
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Get(t.name()));
  EXPECT_EQ(t.state(), TRANSFER_STATE_IN_TRANSIT);
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_SHIPPED);
  EXPECT_EQ(t.audit_size(), audit_size);
  EXPECT_GE(gateway_.Calls("MovementsOfRequest"), 1);  // it was asked
  ASSERT_OK_AND_ASSIGN_T(t, Receive(t, 0));
  EXPECT_EQ(t.state(), TRANSFER_STATE_RECEIVED);
  EXPECT_EQ(gateway_.Received(kDest, kItem), 5);
}

// Whether the lost shipment went through cannot be told while its source is down: the cancel is
// refused and changes nothing, rather than let go of a leg that may be on the road.
TEST_F(SagaTest, CancelWhileALostShipmentsSourceIsDownChangesNothing) {
  Stock(kNear, 10);
  Transfer t = Create(5);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  gateway_.LoseNextReply(kNear, /*then_down=*/true);
  EXPECT_THAT(Ship(t, 0), StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Get(t.name()));
  EXPECT_THAT(Cancel(t),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("cannot tell whether leg 0 of " + t.name() + " has shipped")));
  Transfer after;
  ASSERT_OK_AND_ASSIGN_T(after, coordinator_->Get(t.name()));
  EXPECT_EQ(after.state(), TRANSFER_STATE_READY);
  EXPECT_EQ(after.legs(0).state(), LEG_STATE_HELD);
  EXPECT_EQ(after.audit_size(), t.audit_size());
}

// A leg shipped with no shipment on record (at its level directly): its release is refused, and
// the hold, asked for, has shipped. The leg is in transit, not released, and the cancel refused.
TEST_F(SagaTest, ReleaseRefusedForAShippedHoldRecordsTheLegShipped) {
  Stock(kNear, 10);
  Stock(kMid, 10);
  Transfer t = Create(15);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  ShipRequest direct;
  direct.set_request_id("shipped-at-the-level");
  direct.mutable_op()->set_hold_id(t.legs(1).hold_id());
  direct.mutable_op()->set_destination(kDest);
  ASSERT_THAT(gateway_.Ship(kMid, direct).status(), IsOk());
  EXPECT_THAT(Cancel(t), StatusIs(absl::StatusCode::kFailedPrecondition,
                                  HasSubstr("leg 1 is in transit (shipped at the source, which the "
                                            "transfer had not recorded) and must be received; "
                                            "the holds of its legs not shipped were released")));
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Get(t.name()));
  EXPECT_EQ(t.state(), TRANSFER_STATE_IN_TRANSIT);
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_RELEASED);
  EXPECT_EQ(t.legs(1).state(), LEG_STATE_SHIPPED);
  EXPECT_EQ(gateway_.Available(kNear, kItem), 10);
  ASSERT_OK_AND_ASSIGN_T(t, Receive(t, 1));
  EXPECT_EQ(t.state(), TRANSFER_STATE_RECEIVED);
  EXPECT_EQ(gateway_.Received(kDest, kItem), 5);
  EXPECT_FALSE(Unfinished(t));
}

// A refusal for a hold that has expired at its source is a release (nothing is held there).
TEST_F(SagaTest, ReleaseRefusedForAnExpiredHoldCountsAsReleased) {
  Stock(kNear, 10);
  Transfer t = Create(5);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  gateway_.Expire(t.legs(0).hold_id());
  ASSERT_OK_AND_ASSIGN_T(t, Cancel(t));
  EXPECT_EQ(t.state(), TRANSFER_STATE_CANCELLED);
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_RELEASED);
  EXPECT_THAT(t.audit().rbegin()->what(), HasSubstr("already expired"));
  EXPECT_FALSE(Unfinished(t));
}

TEST_F(SagaTest, OverlongCancelReasonIsRefusedAndChangesNothing) {
  Stock(kNear, 10);
  Transfer t = Create(5);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  CancelTransferRequest req;
  req.set_request_id("cancel-long-" + t.id());
  req.set_actor("chief-li");
  req.set_name(t.name());
  req.set_reason(std::string(1001, 'x'));
  EXPECT_THAT(coordinator_->Cancel(req), StatusIs(absl::StatusCode::kInvalidArgument));
  Transfer after;
  ASSERT_OK_AND_ASSIGN_T(after, coordinator_->Get(t.name()));
  EXPECT_EQ(after.state(), TRANSFER_STATE_READY);
  EXPECT_EQ(after.audit_size(), t.audit_size());
  EXPECT_EQ(gateway_.Available(kNear, kItem), 5);
}

TEST_F(SagaTest, HoldRefusedBecauseStockChangedIsReplanned) {
  Stock(kNear, 10);
  gateway_.SetStock(kNear, kItem, 2);  // issued meanwhile; the snapshot has not seen it yet
  Stock(kMid, 10);
  Transfer t = Create(8);
  ASSERT_EQ(t.legs(0).plan().source_warehouse(), kNear);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  EXPECT_EQ(t.state(), TRANSFER_STATE_READY);
  ASSERT_EQ(t.legs_size(), 2);
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_REPLACED);
  EXPECT_EQ(t.legs(1).plan().source_warehouse(), kMid);
  EXPECT_TRUE(t.legs(1).replanned());
  EXPECT_EQ(t.legs(1).replan_round(), 1);
  EXPECT_EQ(gateway_.Available(kMid, kItem), 2);
}

// Concurrent transfers near the same small stores: the snapshot has not seen the stock the
// others took at two sources in a row. The third round holds at the next source.
TEST_F(SagaTest, HoldRefusedAgainAfterAReplanIsReplannedAgain) {
  Transfer t;
  ASSERT_OK_AND_ASSIGN_T(t, ApproveWithTheTwoNearestTakenMeanwhile());
  EXPECT_EQ(t.state(), TRANSFER_STATE_READY);
  ASSERT_EQ(t.legs_size(), 3);
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_REPLACED);
  EXPECT_EQ(t.legs(1).state(), LEG_STATE_REPLACED);
  EXPECT_EQ(t.legs(1).plan().source_warehouse(), kMid);
  EXPECT_EQ(t.legs(2).state(), LEG_STATE_HELD);
  EXPECT_EQ(t.legs(2).plan().source_warehouse(), kFar);
  EXPECT_EQ(t.legs(2).replan_round(), 2);
  EXPECT_TRUE(std::any_of(t.audit().begin(), t.audit().end(), [](const AuditStep& a) {
    return absl::StrContains(a.what(), "re-planning it (2 of 3)");
  }));
  EXPECT_EQ(gateway_.Available(kFar, kItem), 2);
  EXPECT_EQ(gateway_.Available(kNear, kItem), 2);
  EXPECT_EQ(gateway_.Available(kMid, kItem), 1);
}

// 30 asked for: kNear gives 10, kMid (40, floor 20) gives 20. kNear issued 5 before the hold
// reached it, so its leg is re-planned while kMid's leg is not held yet: the re-plan must count
// that leg's 20 as gone, and takes the 10 from kFar instead of pushing kMid below its floor.
TEST_F(SagaTest, ReplanCountsWhatTheTransfersLegsNotYetHeldTake) {
  Stock(kNear, 10);
  gateway_.SetStock(kNear, kItem, 5);
  Stock(kMid, 40);
  snapshot_.SetFloor("420106-W001", kItem, 20);
  Stock(kFar, 10);
  Transfer t = Create(30);
  ASSERT_EQ(t.legs_size(), 2);
  ASSERT_EQ(t.legs(1).plan().source_warehouse(), kMid);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  EXPECT_EQ(t.state(), TRANSFER_STATE_READY);
  ASSERT_EQ(t.legs_size(), 3);
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_REPLACED);
  EXPECT_EQ(t.legs(2).plan().source_warehouse(), kFar);
  EXPECT_EQ(t.legs(2).plan().quantity(), 10);
  EXPECT_EQ(gateway_.Available(kMid, kItem), 20);  // its floor
  for (const auto& leg : t.legs()) EXPECT_FALSE(leg.plan().below_floor()) << leg.index();
}

// The same with kMid's leg held before kNear's is refused (kNear is the farther source here):
// the catalogue may not have seen that hold yet, so the re-plan counts it too.
TEST_F(SagaTest, ReplanCountsWhatTheTransfersHeldLegsTake) {
  Stock(kNear, 40);
  snapshot_.SetFloor("420103-W001", kItem, 20);
  Stock(kMid, 10);
  gateway_.SetStock(kMid, kItem, 5);
  Stock(kFar, 10);
  Transfer t = Create(30);
  ASSERT_EQ(t.legs_size(), 2);
  ASSERT_EQ(t.legs(0).plan().source_warehouse(), kNear);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  EXPECT_EQ(t.state(), TRANSFER_STATE_READY);
  ASSERT_EQ(t.legs_size(), 3);
  EXPECT_EQ(t.legs(1).state(), LEG_STATE_REPLACED);
  EXPECT_EQ(t.legs(2).plan().source_warehouse(), kFar);
  EXPECT_EQ(gateway_.Available(kNear, kItem), 20);  // its floor
}

// With nowhere else to take it from, the re-planned quantity falls short rather than coming
// from below a floor.
TEST_F(SagaTest, ReplanFallsShortRatherThanTakeTheTransfersOwnStockTwice) {
  Stock(kNear, 10);
  gateway_.SetStock(kNear, kItem, 5);
  Stock(kMid, 40);
  snapshot_.SetFloor("420106-W001", kItem, 20);
  Transfer t = Create(30);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  EXPECT_EQ(t.state(), TRANSFER_STATE_FAILED);
  EXPECT_THAT(t.failure_reason(), HasSubstr("fell short by 10 after re-planning"));
  EXPECT_EQ(gateway_.ActiveHolds(), 0);
  EXPECT_EQ(gateway_.Available(kMid, kItem), 40);
}

// Approval checks every leg's source against the approver's scope; a re-plan after it must stay
// there too. A dispatcher of 江夏 (420115) approves 8 from the one source the plan found, in
// 江夏; it had only 2 left when the hold came, and stock has since appeared nearer, in 武昌
// (420106), outside the scope. The re-plan takes the farther source inside the scope instead.
TEST_F(SagaTest, ReplanAfterApprovalStaysInsideTheApproversScope) {
  constexpr char kFarToo[] = "warehouses/420115-W002";  // 江夏 as well
  Stock(kFar, 10);
  gateway_.SetStock(kFar, kItem, 2);
  Transfer t = Create(8);
  ASSERT_EQ(t.legs_size(), 1);
  ASSERT_EQ(t.legs(0).plan().source_warehouse(), kFar);
  Stock(kMid, 10);
  Stock(kFarToo, 10);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t, "420115"));
  EXPECT_EQ(t.approver_scope(), "420115");
  EXPECT_EQ(t.state(), TRANSFER_STATE_READY);
  ASSERT_EQ(t.legs_size(), 2);
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_REPLACED);
  EXPECT_EQ(t.legs(1).plan().source_warehouse(), kFarToo);
  EXPECT_EQ(gateway_.Available(kMid, kItem), 10);
  // The scope is stored: a new coordinator (leader) re-plans inside it as well.
  Reopen();
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Get(t.name()));
  EXPECT_EQ(t.approver_scope(), "420115");
}

// With no source inside the scope the re-planned quantity falls short, as for any shortage, and
// the audit trail says why; nothing is held outside the scope.
TEST_F(SagaTest, ReplanWithNoSourceInsideTheApproversScopeFallsShort) {
  Stock(kFar, 10);
  gateway_.SetStock(kFar, kItem, 2);
  Transfer t = Create(8);
  ASSERT_EQ(t.legs_size(), 1);
  Stock(kMid, 10);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t, "420115"));
  EXPECT_EQ(t.state(), TRANSFER_STATE_FAILED);
  ASSERT_EQ(t.short_lines_size(), 1);
  EXPECT_EQ(t.short_lines(0).shortfall(), 8);
  EXPECT_THAT(t.failure_reason(), HasSubstr("inside the approver's scope 420115"));
  EXPECT_TRUE(std::any_of(t.audit().begin(), t.audit().end(), [](const AuditStep& a) {
    return absl::StrContains(a.what(), "inside the approver's scope 420115");
  }));
  EXPECT_EQ(gateway_.Available(kMid, kItem), 10);
  EXPECT_EQ(gateway_.ActiveHolds(), 0);
}

TEST_F(SagaTest, HoldRefusedAfterTheLastReplanRoundFailsTheTransfer) {
  replan_rounds_ = 1;
  Reopen();
  Transfer t;
  ASSERT_OK_AND_ASSIGN_T(t, ApproveWithTheTwoNearestTakenMeanwhile());
  EXPECT_EQ(t.state(), TRANSFER_STATE_FAILED);
  ASSERT_EQ(t.short_lines_size(), 1);
  EXPECT_EQ(t.short_lines(0).shortfall(), 8);
  EXPECT_THAT(t.failure_reason(), HasSubstr("hold of 8 " + std::string(kItem)));
  EXPECT_EQ(gateway_.Available(kFar, kItem), 10);  // a second re-plan would have held here
  EXPECT_EQ(gateway_.ActiveHolds(), 0);
}

TEST_F(SagaTest, SharedTransferIsNotReplannedPastTheSizeReplicasShare) {
  max_replanned_transfer_bytes_ = 1;  // any re-plan outgrows it
  Reopen();
  coordinator_->SetJournal(&journal_);
  Transfer t;
  ASSERT_OK_AND_ASSIGN_T(t, ApproveWithTheTwoNearestTakenMeanwhile());
  EXPECT_EQ(t.state(), TRANSFER_STATE_FAILED);
  EXPECT_THAT(t.failure_reason(), HasSubstr("split the request"));
  EXPECT_EQ(t.legs_size(), 1);  // the re-plan's legs were not kept
  ASSERT_EQ(t.short_lines_size(), 1);
  EXPECT_EQ(t.short_lines(0).shortfall(), 8);
  EXPECT_EQ(gateway_.Available(kFar, kItem), 10);  // re-planning would have held here
  EXPECT_EQ(gateway_.ActiveHolds(), 0);
  auto stored = coordinator_->Get(t.name());
  ASSERT_THAT(stored.status(), IsOk());
  EXPECT_EQ(stored->state(), TRANSFER_STATE_FAILED);
}

TEST_F(SagaTest, ReplanThatFindsNothingFailsWithShortLinesAndReleasesHolds) {
  Stock(kNear, 10);
  Stock(kMid, 10);
  gateway_.SetStock(kMid, kItem, 1);
  StockSeen(kFar, 5);  // the re-plan picks it, but it has nothing either
  Transfer t = Create(15);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  EXPECT_EQ(t.state(), TRANSFER_STATE_FAILED);
  ASSERT_EQ(t.short_lines_size(), 1);
  EXPECT_EQ(t.short_lines(0).item(), kItem);
  EXPECT_THAT(t.failure_reason(), HasSubstr(kItem));
  EXPECT_EQ(gateway_.ActiveHolds(), 0);
  EXPECT_EQ(gateway_.Available(kNear, kItem), 10);
  EXPECT_FALSE(Unfinished(t));
}

TEST_F(SagaTest, LostReplyIsRetriedWithoutASecondHold) {
  Stock(kNear, 10);
  Stock(kMid, 10);
  gateway_.LoseNextReply(kMid);
  Transfer t = Create(15);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  EXPECT_EQ(t.state(), TRANSFER_STATE_READY);
  EXPECT_EQ(gateway_.Placements(t.legs(1).hold_id()), 1);
  EXPECT_EQ(gateway_.Replays(), 1);
  EXPECT_EQ(gateway_.Available(kMid, kItem), 5);
}

// Hold ids are instance-wide and caller-chosen: someone else's hold with the leg's id (here 1
// unit at another warehouse of the same instance) is not the leg's 30 held. The leg is refused
// and re-planned with the reason in the audit; the other hold is left alone.
TEST_F(SagaTest, AnotherHoldWithTheLegsIdIsNotTakenForTheLegs) {
  Stock(kNear, 30);
  Stock(kMid, 30);
  gateway_.SetStock(kFar, kItem, 5);
  Transfer t = Create(30);
  ASSERT_EQ(t.legs_size(), 1);
  ASSERT_EQ(t.legs(0).plan().source_warehouse(), kNear);
  HoldRequest squat;
  squat.set_request_id("squat-1");
  squat.set_actor("someone");
  squat.mutable_op()->set_warehouse(kFar);
  squat.mutable_op()->set_item(kItem);
  squat.mutable_op()->set_quantity(1);
  squat.mutable_op()->set_hold_id(t.legs(0).hold_id());
  squat.mutable_op()->set_reference("not-a-transfer");
  auto* lot = squat.mutable_op()->add_lots();
  lot->set_lot("DEFAULT");
  lot->set_quantity(1);
  ASSERT_THAT(gateway_.Hold(squat).status(), IsOk());

  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  EXPECT_EQ(t.state(), TRANSFER_STATE_READY);
  ASSERT_EQ(t.legs_size(), 2);
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_REPLACED);
  EXPECT_EQ(t.legs(1).state(), LEG_STATE_HELD);
  EXPECT_EQ(t.legs(1).plan().source_warehouse(), kMid);
  EXPECT_EQ(t.legs(1).plan().quantity(), 30);
  EXPECT_EQ(gateway_.Available(kNear, kItem), 30);  // nothing held there in the leg's name
  EXPECT_EQ(gateway_.Available(kMid, kItem), 0);
  EXPECT_TRUE(std::any_of(t.audit().begin(), t.audit().end(), [&](const AuditStep& a) {
    return absl::StrContains(a.what(), "is taken by a hold that is not this leg's") &&
           absl::StrContains(a.what(), kFar);
  })) << t.DebugString();
  auto other = gateway_.GetHold(kFar, t.legs(0).hold_id());
  ASSERT_THAT(other.status(), IsOk());
  EXPECT_EQ(other->state(), HOLD_STATE_ACTIVE);  // not released by the transfer
  EXPECT_EQ(gateway_.Available(kFar, kItem), 4);
}

// The leg's own hold, placed by an earlier request whose answer never came back here (another
// request id), is still taken as the leg's.
TEST_F(SagaTest, TheLegsOwnHoldFoundUnderItsIdIsTakenAsHeld) {
  Stock(kNear, 30);
  Transfer t = Create(30);
  ASSERT_EQ(t.legs_size(), 1);
  HoldRequest earlier;
  earlier.set_request_id("an-earlier-leaders-hold");
  earlier.set_actor("catalogue-transfers");
  HoldOp* op = earlier.mutable_op();
  op->set_warehouse(kNear);
  op->set_item(kItem);
  op->set_quantity(30);
  op->set_hold_id(t.legs(0).hold_id());
  op->set_reference(t.id());
  *op->mutable_lots() = t.legs(0).plan().lots();
  ASSERT_THAT(gateway_.Hold(earlier).status(), IsOk());
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  EXPECT_EQ(t.state(), TRANSFER_STATE_READY);
  ASSERT_EQ(t.legs_size(), 1);
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_HELD);
  EXPECT_EQ(gateway_.Placements(t.legs(0).hold_id()), 1);
}

TEST_F(SagaTest, NewLeaderResumesFromTheStoreWithoutHoldingTwice) {
  Stock(kNear, 10);
  Stock(kMid, 10);
  Transfer t = Create(15);
  gateway_.LoseNextReply(kMid, /*then_down=*/true);  // applied, unanswered, then unreachable
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  ASSERT_EQ(t.state(), TRANSFER_STATE_HOLDING);
  Reopen();  // the old coordinator is gone; a new one opens the same store
  gateway_.SetDown(kMid, false);
  ASSERT_THAT(coordinator_->ResumeAll(), IsOk());
  auto after = coordinator_->Get(t.name());
  ASSERT_THAT(after.status(), IsOk());
  EXPECT_EQ(after->state(), TRANSFER_STATE_READY);
  for (const auto& leg : after->legs()) {
    EXPECT_EQ(gateway_.Placements(leg.hold_id()), 1) << leg.hold_id();
  }
  EXPECT_EQ(gateway_.Replays(), 1);
  EXPECT_EQ(gateway_.Available(kMid, kItem), 5);
  // The rest of the saga runs on the new coordinator.
  ASSERT_OK_AND_ASSIGN_T(t, Ship(*after, 0));
  ASSERT_OK_AND_ASSIGN_T(t, Ship(t, 1));
  ASSERT_OK_AND_ASSIGN_T(t, Receive(t, 0));
  ASSERT_OK_AND_ASSIGN_T(t, Receive(t, 1));
  EXPECT_EQ(t.state(), TRANSFER_STATE_RECEIVED);
}

TEST_F(SagaTest, UnreachableSourceWaitsThenResumes) {
  Stock(kNear, 10);
  Stock(kMid, 10);
  gateway_.SetDown(kMid, true);
  Transfer t = Create(15);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  EXPECT_EQ(t.state(), TRANSFER_STATE_HOLDING);
  EXPECT_THAT(t.audit().rbegin()->what(), HasSubstr("unreachable"));
  EXPECT_TRUE(Unfinished(t));
  ASSERT_THAT(coordinator_->ResumeAll(), IsOk());  // still down: still waiting, one note
  auto still = coordinator_->Get(t.name());
  EXPECT_EQ(still->state(), TRANSFER_STATE_HOLDING);
  EXPECT_EQ(still->audit_size(), t.audit_size());
  gateway_.SetDown(kMid, false);
  ASSERT_THAT(coordinator_->ResumeAll(), IsOk());
  EXPECT_EQ(coordinator_->Get(t.name())->state(), TRANSFER_STATE_READY);
}

TEST_F(SagaTest, CancelWhileASourceIsDownLeavesNoHoldBehind) {
  Stock(kNear, 10);
  Stock(kMid, 10);
  Transfer t = Create(15);
  gateway_.LoseNextReply(kMid, /*then_down=*/true);  // kMid's hold lands, then kMid is down
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  EXPECT_EQ(t.state(), TRANSFER_STATE_HOLDING);
  ASSERT_OK_AND_ASSIGN_T(t, Cancel(t));
  EXPECT_EQ(t.state(), TRANSFER_STATE_CANCELLED);
  EXPECT_EQ(gateway_.Available(kNear, kItem), 10);
  EXPECT_TRUE(Unfinished(t));  // the release at kMid is still owed
  gateway_.SetDown(kMid, false);
  ASSERT_THAT(coordinator_->ResumeAll(), IsOk());
  EXPECT_EQ(gateway_.ActiveHolds(), 0);
  EXPECT_FALSE(Unfinished(*coordinator_->Get(t.name())));
}

// A hold request that timed out may still reach the source after the cancel: the cancel's
// release closes the hold id there, so the late request is refused and holds nothing.
TEST_F(SagaTest, CancelClosesTheIdOfAHoldThatHadNotArrived) {
  Stock(kNear, 10);
  Transfer t = Create(5);
  gateway_.SetDown(kNear, true);  // the hold does not get through: its outcome is unknown
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  EXPECT_EQ(t.state(), TRANSFER_STATE_HOLDING);
  gateway_.SetDown(kNear, false);
  ASSERT_OK_AND_ASSIGN_T(t, Cancel(t));
  EXPECT_EQ(t.state(), TRANSFER_STATE_CANCELLED);
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_RELEASED);
  EXPECT_FALSE(Unfinished(t));
  // The delayed request arrives now.
  HoldRequest late;
  late.set_request_id("late-" + t.id());
  late.mutable_op()->set_warehouse(t.legs(0).plan().source_warehouse());
  late.mutable_op()->set_item(kItem);
  late.mutable_op()->set_quantity(5);
  late.mutable_op()->set_hold_id(t.legs(0).hold_id());
  EXPECT_THAT(gateway_.Hold(late).status(), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(gateway_.ActiveHolds(), 0);
  EXPECT_EQ(gateway_.Available(kNear, kItem), 10);
}

constexpr int64_t kSecond = 1'000'000;

SourceContact Contact(const std::string& id, const std::string& prefix, bool connected,
                      int64_t last_contact_micros, bool gone = false) {
  return SourceContact{id, SourceScope{LEVEL_COUNTY, {prefix}}, connected, gone,
                       last_contact_micros};
}

TEST(FindUnreachableTest, SilentLongEnoughOrGoneCountsAnsweringOrBrieflySilentDoesNot) {
  const int64_t now = 1'000 * kSecond;
  const int64_t started = now - 600 * kSecond;
  const auto found =
      FindUnreachable({Contact("answering", "4201", true, now - 30 * kSecond),
                       Contact("blip", "4202", false, now - 5 * kSecond),
                       Contact("silent", "4203", false, now - 30 * kSecond),
                       Contact("never-answered", "4205", false, 0),
                       Contact("deregistered", "4206", false, now - 1 * kSecond, /*gone=*/true)},
                      now, started, absl::Seconds(10));
  EXPECT_THAT(found.described,
              ::testing::ElementsAre("silent (county 4203): not answering for 30 s",
                                     "never-answered (county 4205): not answering for 600 s",
                                     "deregistered (county 4206): no longer registered"));
  ASSERT_EQ(found.reach.unreachable.size(), 3u);
  EXPECT_EQ(found.reach.unreachable[0].prefixes, std::vector<std::string>{"4203"});
  ASSERT_EQ(found.reach.reachable.size(), 2u);  // answering, and the blip
}

// county-old's lease lapsed and county-new hosts its provinces now: nothing is left out, and
// the plan does not name the old one. A source hosting more than the answering ones is named.
TEST(FindUnreachableTest, ASourceWhoseRegionsAnsweringSourcesHostIsNotNamed) {
  const int64_t now = 1'000 * kSecond;
  SourceContact old_shard = Contact("county-old", "42", false, now - 600 * kSecond, true);
  old_shard.scope.prefixes = {"42", "43"};
  SourceContact new_shard = Contact("county-new", "42", true, now);
  new_shard.scope.prefixes = {"42", "43", "44"};
  auto found = FindUnreachable({old_shard, new_shard}, now, 0, absl::Seconds(10));
  EXPECT_TRUE(found.described.empty());
  EXPECT_TRUE(found.reach.unreachable.empty());

  new_shard.scope.prefixes = {"42"};
  found = FindUnreachable({old_shard, new_shard}, now, 0, absl::Seconds(10));
  EXPECT_THAT(found.described,
              ::testing::ElementsAre("county-old (county 42,43): no longer registered"));
  EXPECT_FALSE(found.reach.Excludes("420103"));
  EXPECT_TRUE(found.reach.Excludes("430102"));
}

TEST(FindUnreachableTest, ASourceNotYetReachedRightAfterStartIsGivenItsTime) {
  const int64_t now = 1'000 * kSecond;
  const auto found = FindUnreachable({Contact("county-a", "4201", false, 0)}, now,
                                     now - 3 * kSecond, absl::Seconds(10));
  EXPECT_TRUE(found.reach.unreachable.empty());
}

// county-a restarted: its registration came back 3 s ago and a new stream follows it, which has
// not reached it yet. It gets the grace again, however long the catalogue has run.
TEST(FindUnreachableTest, ASourceThatRegisteredAgainIsGivenItsTime) {
  const int64_t now = 1'000 * kSecond;
  SourceContact restarted = Contact("county-a", "4201", false, 0);
  restarted.stream_start_micros = now - 3 * kSecond;
  EXPECT_TRUE(FindUnreachable({restarted}, now, now - 600 * kSecond, absl::Seconds(10))
                  .reach.unreachable.empty());
  restarted.stream_start_micros = now - 30 * kSecond;
  EXPECT_EQ(FindUnreachable({restarted}, now, now - 600 * kSecond, absl::Seconds(10))
                .reach.unreachable.size(),
            1u);
}

// 江汉's instance has not answered for 30 s: plans take from 武昌 and say why 江汉 is missing;
// once it answers again it is the nearest source again.
TEST_F(SagaTest, PlansLeaveOutAnInstanceThatHasNotAnsweredForAWhile) {
  Stock(kNear, 10);
  Stock(kMid, 10);
  sources_ = {Contact("county-jianghan", "420103", false, clock_.NowMicros() - 30 * kSecond),
              Contact("county-wuchang", "420106", true, clock_.NowMicros())};
  Reopen();
  clock_.Advance(60 * kSecond);  // the coordinator has been up longer than the grace
  const PlanAllocationRequest req = PlanRequest(15);
  auto plan = coordinator_->Plan(req);
  ASSERT_THAT(plan.status(), IsOk());
  ASSERT_EQ(plan->legs_size(), 1);
  EXPECT_EQ(plan->legs(0).source_warehouse(), kMid);
  EXPECT_EQ(plan->outcomes(0).shortfall(), 5);
  // Silent for 90 s, of which this coordinator saw 60: a restarted catalogue gives every source
  // the grace again before it gives up on it.
  EXPECT_THAT(plan->unreachable_sources(),
              ::testing::ElementsAre("county-jianghan (county 420103): not answering for 60 s"));

  Transfer t = Create(10);
  ASSERT_EQ(t.legs_size(), 1);
  EXPECT_EQ(t.legs(0).plan().source_warehouse(), kMid);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  EXPECT_EQ(t.state(), TRANSFER_STATE_READY);

  sources_[0].connected = true;
  auto again = coordinator_->Plan(req);
  ASSERT_THAT(again.status(), IsOk());
  EXPECT_EQ(again->legs(0).source_warehouse(), kNear);
  EXPECT_TRUE(again->unreachable_sources().empty());
}

// Right after the catalogue began streaming from 江汉's instance it holds only part of its stock:
// plans leave it out and say so, and a transfer nothing else can give says why it was refused.
// Once the stream has reached the head it began at, 江汉 is the nearest source again.
TEST_F(SagaTest, PlansLeaveOutAnInstanceWhoseStockIsStillBeingStreamed) {
  Stock(kNear, 10);
  SourceContact jianghan = Contact("county-jianghan", "420103", true, clock_.NowMicros());
  jianghan.applied_sequence = 1200;
  jianghan.complete_at_sequence = 50000;
  sources_ = {jianghan};
  Reopen();
  const PlanAllocationRequest req = PlanRequest(5);
  auto plan = coordinator_->Plan(req);
  ASSERT_THAT(plan.status(), IsOk());
  EXPECT_EQ(plan->legs_size(), 0);
  EXPECT_THAT(plan->unreachable_sources(),
              ::testing::ElementsAre("county-jianghan (county 420103): its stock is still being "
                                     "streamed (change 1200 of 50000)"));
  CreateTransferRequest create;
  create.set_request_id("while-streaming");
  create.set_actor("dispatcher-wang");
  *create.mutable_plan() = req;
  EXPECT_THAT(coordinator_->Create(create),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("not planned from: county-jianghan (county 420103): its stock "
                                 "is still being streamed")));

  sources_[0].applied_sequence = 50000;
  auto again = coordinator_->Plan(req);
  ASSERT_THAT(again.status(), IsOk());
  ASSERT_EQ(again->legs_size(), 1);
  EXPECT_EQ(again->legs(0).source_warehouse(), kNear);
  EXPECT_TRUE(again->unreachable_sources().empty());
}

// Resume rounds that find nothing new leave a READY transfer's update time alone, so the
// TransferStuck alert sees how long nobody shipped it (also without etcd).
TEST_F(SagaTest, ResumeRoundsThatChangeNothingKeepTheUpdateTime) {
  Stock(kNear, 10);
  Transfer t = Create(5);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  ASSERT_EQ(t.state(), TRANSFER_STATE_READY);
  for (int round = 0; round < 3; ++round) {
    clock_.Advance(10 * 60 * kSecond);  // inside the one-hour TTL
    ASSERT_THAT(coordinator_->ResumeAll(), IsOk());
  }
  auto after = coordinator_->Get(t.name());
  ASSERT_THAT(after.status(), IsOk());
  EXPECT_EQ(after->state(), TRANSFER_STATE_READY);
  EXPECT_EQ(after->update_time().seconds(), t.update_time().seconds());
  EXPECT_EQ(after->audit_size(), t.audit_size());
}

TEST_F(SagaTest, ExpiredHoldIsNoticedAndTheTransferFails) {
  Stock(kNear, 10);
  Stock(kMid, 10);
  Transfer t = Create(15);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  gateway_.Expire(t.legs(0).hold_id());
  clock_.Advance(int64_t{2} * 3600 * 1'000'000);  // past the one-hour TTL
  ASSERT_THAT(coordinator_->ResumeAll(), IsOk());
  auto after = coordinator_->Get(t.name());
  EXPECT_EQ(after->state(), TRANSFER_STATE_FAILED);
  EXPECT_THAT(after->failure_reason(), HasSubstr("expired"));
  ASSERT_EQ(after->short_lines_size(), 1);
  EXPECT_EQ(after->short_lines(0).item(), kItem);
  EXPECT_EQ(after->short_lines(0).shortfall(), 10);  // the near leg's 10
  EXPECT_EQ(gateway_.ActiveHolds(), 0);
  EXPECT_EQ(gateway_.Available(kMid, kItem), 10);
}

// A hold that expires after another leg shipped drops its leg: the transfer ends received,
// and says by how much it fell short, so the dispatcher can plan that again.
TEST_F(SagaTest, HoldExpiredAfterAnotherLegShippedEndsReceivedWithAShortLine) {
  Transfer t;
  ASSERT_OK_AND_ASSIGN_T(t, FirstOfTwoLegsShipped());
  gateway_.Expire(t.legs(1).hold_id());
  clock_.Advance(int64_t{2} * 3600 * 1'000'000);  // past the one-hour TTL
  ASSERT_THAT(coordinator_->ResumeAll(), IsOk());
  ExpectTheShippedLegEndsItShortOfTheOther(t.name());
}

// A source restored from a backup taken before the hold no longer knows it: shipping says so
// and fails the transfer, which lets go of its other holds (before: NOT_FOUND at every try, the
// transfer ready for ever).
TEST_F(SagaTest, HoldLostByARestoredSourceFailsTheTransferWhenShipped) {
  Stock(kNear, 10);
  Stock(kMid, 10);
  Transfer t = Create(15);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  gateway_.Forget(t.legs(0).hold_id());
  auto shipped = Ship(t, 0);
  EXPECT_THAT(shipped.status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no longer known there")));
  EXPECT_THAT(shipped.status().message(), HasSubstr("plan it again"));
  auto after = coordinator_->Get(t.name());
  ASSERT_THAT(after.status(), IsOk());
  EXPECT_EQ(after->state(), TRANSFER_STATE_FAILED);
  EXPECT_THAT(after->failure_reason(), HasSubstr("restore from a backup"));
  EXPECT_EQ(after->legs(0).state(), LEG_STATE_RELEASED);
  EXPECT_EQ(gateway_.ActiveHolds(), 0);
  EXPECT_EQ(gateway_.Available(kNear, kItem), 10);
  EXPECT_EQ(gateway_.Available(kMid, kItem), 10);
  EXPECT_FALSE(Unfinished(*after));
}

// Once a leg has shipped, losing another leg's hold drops that leg only: the shipped one still
// arrives and the transfer ends received.
TEST_F(SagaTest, HoldLostAfterAnotherLegShippedDropsThatLegOnly) {
  Transfer t;
  ASSERT_OK_AND_ASSIGN_T(t, FirstOfTwoLegsShipped());
  gateway_.Forget(t.legs(1).hold_id());
  auto shipped = Ship(t, 1);
  EXPECT_THAT(shipped.status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("The leg was dropped")));
  ExpectTheShippedLegEndsItShortOfTheOther(t.name());
}

// Leg 0's shipment went through but its reply was lost; then leg 1's source lost its hold. With
// leg 0 on the road the transfer goes on without leg 1: leg 2 keeps its hold.
TEST_F(SagaTest, HoldLostWhileAnotherLegsShipmentWentUnansweredDropsOnlyThatLeg) {
  Stock(kNear, 10);
  Stock(kMid, 10);
  Stock(kFar, 10);
  Transfer t = Create(25);
  ASSERT_EQ(t.legs_size(), 3);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  gateway_.LoseNextReply(kNear, /*then_down=*/true);
  EXPECT_THAT(Ship(t, 0), StatusIs(absl::StatusCode::kUnavailable));
  gateway_.SetDown(kNear, false);
  gateway_.Forget(t.legs(1).hold_id());
  EXPECT_THAT(Ship(t, 1),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("The leg was dropped; the rest of the transfer goes on")));
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Get(t.name()));
  EXPECT_EQ(t.state(), TRANSFER_STATE_IN_TRANSIT);
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_SHIPPED);
  EXPECT_EQ(t.legs(1).state(), LEG_STATE_RELEASED);
  EXPECT_EQ(t.legs(2).state(), LEG_STATE_HELD);
  EXPECT_EQ(gateway_.Calls("Release"), 0);
}

// Past its expiry, a hold the source no longer knows ends the transfer as an expired one does.
TEST_F(SagaTest, ExpiredHoldTheSourceNoLongerKnowsFailsTheTransfer) {
  Stock(kNear, 10);
  Stock(kMid, 10);
  Transfer t = Create(15);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  gateway_.Forget(t.legs(0).hold_id());
  clock_.Advance(int64_t{2} * 3600 * 1'000'000);  // past the one-hour TTL
  ASSERT_THAT(coordinator_->ResumeAll(), IsOk());
  auto after = coordinator_->Get(t.name());
  ASSERT_THAT(after.status(), IsOk());
  EXPECT_EQ(after->state(), TRANSFER_STATE_FAILED);
  EXPECT_THAT(after->failure_reason(), HasSubstr("no longer known there"));
  EXPECT_EQ(gateway_.ActiveHolds(), 0);
}

CreateTransferRequest CreateRequest(int64_t qty, const std::string& request_id) {
  CreateTransferRequest req;
  req.set_request_id(request_id);
  req.set_actor("dispatcher-wang");
  req.mutable_plan()->set_destination_warehouse(kDest);
  auto* line = req.mutable_plan()->add_lines();
  line->set_item(kItem);
  line->set_quantity(qty);
  return req;
}

// A transfer to a warehouse that is not there could be approved and shipped, and then neither
// received nor cancelled: its stock stayed in transit for ever.
TEST_F(SagaTest, CreateRefusesADestinationThatDoesNotExist) {
  Stock(kNear, 10);
  gateway_.RemoveWarehouse(kDest);
  EXPECT_THAT(coordinator_->Create(CreateRequest(5, "create-nowhere")),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr(absl::StrCat("destination ", kDest, " does not exist"))));
  EXPECT_EQ(coordinator_->List(ListTransfersRequest())->transfers_size(), 0);
  gateway_.SetWarehouseStatus(kDest, WAREHOUSE_STATUS_ACTIVE);  // created since: the id is free
  EXPECT_THAT(coordinator_->Create(CreateRequest(5, "create-nowhere")).status(), IsOk());
  EXPECT_EQ(coordinator_->List(ListTransfersRequest())->transfers_size(), 1);
}

// A dispatcher's plan to a mistyped warehouse is refused at once (it used to look valid until
// create), and a listing of transfers under a region no region has is NOT_FOUND, not empty.
TEST_F(SagaTest, PlanAllocationRefusesADestinationThatDoesNotExist) {
  Stock(kNear, 10);
  const PlanAllocationRequest req = CreateRequest(5, "unused").plan();
  ASSERT_THAT(coordinator_->PlanAllocation(req).status(), IsOk());
  gateway_.RemoveWarehouse(kDest);
  EXPECT_THAT(coordinator_->PlanAllocation(req),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr(absl::StrCat("destination ", kDest, " does not exist"))));
  EXPECT_THAT(coordinator_->Plan(req).status(), IsOk());  // the planner itself reads the view
  ListTransfersRequest typo;
  typo.set_region_prefix("4021");
  EXPECT_THAT(coordinator_->List(typo), StatusIs(absl::StatusCode::kNotFound));
}

// Audit 30, F4: ListTransfers took page_size -1 as the default page, and a region prefix with
// a letter in it ("4x") listed as "no transfers there"; every other listing refuses both.
TEST_F(SagaTest, ListTransfersRefusesANegativePageSizeAndAPrefixThatIsNotDigits) {
  ListTransfersRequest req;
  req.set_page_size(-1);
  EXPECT_THAT(coordinator_->List(req),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("page_size must not be negative; got -1")));
  req.clear_page_size();
  for (const char* bad : {"4x", "42 01", "x"}) {
    req.set_region_prefix(bad);
    EXPECT_THAT(coordinator_->List(req),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr(absl::StrCat("region_prefix must be digits; got \"", bad))));
  }
  req.set_region_prefix("4201020010010");
  EXPECT_THAT(coordinator_->List(req),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("12 digits")));
  req.set_region_prefix("420");  // a plain prefix of digits is fine
  EXPECT_THAT(coordinator_->List(req).status(), IsOk());
}

// An excluded source is one the dispatcher does not want stock from: a mistyped code used to
// be accepted and exclude nothing, so the warehouse meant stayed in the plan.
TEST_F(SagaTest, AnExcludedSourceTheCatalogueDoesNotKnowIsNotFound) {
  Stock(kNear, 10);
  Stock(kMid, 10);
  known_warehouse_ = [](absl::string_view code) {
    return code == "420103-W001" || code == "420106-W001";
  };
  Reopen();
  CreateTransferRequest create = CreateRequest(5, "create-typo");
  create.mutable_plan()->add_exclude_sources("warehouses/420103-W009");  // kNear, mistyped
  EXPECT_THAT(coordinator_->PlanAllocation(create.plan()),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("excluded source warehouses/420103-W009 is not a warehouse")));
  EXPECT_THAT(coordinator_->Create(create), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(coordinator_->List(ListTransfersRequest())->transfers_size(), 0);

  create.mutable_plan()->set_exclude_sources(0, kNear);
  auto plan = coordinator_->PlanAllocation(create.plan());
  ASSERT_THAT(plan.status(), IsOk());
  ASSERT_EQ(plan->legs_size(), 1);
  EXPECT_EQ(plan->legs(0).source_warehouse(), kMid);
  EXPECT_THAT(coordinator_->Create(create).status(), IsOk());
}

TEST_F(SagaTest, CreateRefusesADestinationThatTakesNoStock) {
  Stock(kNear, 10);
  gateway_.SetWarehouseStatus(kDest, WAREHOUSE_STATUS_CLOSED);
  EXPECT_THAT(coordinator_->Create(CreateRequest(5, "create-closed")),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr(absl::StrCat("destination ", kDest,
                                              " is closed and takes no stock: a transfer there "
                                              "could not be received"))));
  gateway_.SetWarehouseStatus(kDest, WAREHOUSE_STATUS_SUSPENDED);
  EXPECT_THAT(coordinator_->Create(CreateRequest(5, "create-suspended")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("is suspended")));
  EXPECT_EQ(coordinator_->List(ListTransfersRequest())->transfers_size(), 0);
}

// A destination whose level does not answer is not waited for: relief goes where it is needed,
// and the level records the receipt when it is back. Only a definite answer refuses.
TEST_F(SagaTest, DestinationWhoseLevelIsDownDoesNotHoldUpDispatch) {
  Stock(kNear, 10);
  gateway_.SetDown(kDest, true);
  Transfer t;
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Create(CreateRequest(5, "create-down")));
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  ASSERT_OK_AND_ASSIGN_T(t, Ship(t, 0));
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_SHIPPED);
  EXPECT_EQ(gateway_.Calls("GetWarehouse"), 3);
}

TEST_F(SagaTest, ApproveRefusesADestinationClosedSinceTheTransferWasCreated) {
  Stock(kNear, 10);
  Transfer t = Create(5);
  gateway_.SetWarehouseStatus(kDest, WAREHOUSE_STATUS_CLOSED);
  EXPECT_THAT(Approve(t), StatusIs(absl::StatusCode::kFailedPrecondition,
                                   HasSubstr("is closed and takes no stock: nothing was held")));
  Transfer after;
  ASSERT_OK_AND_ASSIGN_T(after, coordinator_->Get(t.name()));
  EXPECT_EQ(after.state(), TRANSFER_STATE_PENDING_APPROVAL);
  EXPECT_EQ(after.audit_size(), t.audit_size());
  EXPECT_EQ(gateway_.Calls("Hold"), 0);
}

// Closed after approval: the leg is not shipped, so the transfer can still be cancelled and its
// stock goes back; reopened, the leg ships.
TEST_F(SagaTest, ShipRefusesADestinationClosedSinceApproval) {
  Stock(kNear, 10);
  Transfer t = Create(5);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  gateway_.SetWarehouseStatus(kDest, WAREHOUSE_STATUS_CLOSED);
  EXPECT_THAT(Ship(t, 0), StatusIs(absl::StatusCode::kFailedPrecondition,
                                   HasSubstr("and takes no stock: leg 0 was not shipped")));
  Transfer after;
  ASSERT_OK_AND_ASSIGN_T(after, coordinator_->Get(t.name()));
  EXPECT_EQ(after.legs(0).state(), LEG_STATE_HELD);
  EXPECT_TRUE(after.legs(0).shipped_by().empty());
  EXPECT_EQ(after.audit_size(), t.audit_size());
  EXPECT_EQ(gateway_.Calls("Ship"), 0);
  gateway_.SetWarehouseStatus(kDest, WAREHOUSE_STATUS_ACTIVE);
  ShipTransferLegRequest again;  // a new request: the refused one changed nothing
  again.set_request_id("ship-after-reopening");
  again.set_actor("keeper");
  again.set_name(t.name());
  again.set_leg(0);
  ASSERT_OK_AND_ASSIGN_T(after, coordinator_->Ship(again));
  EXPECT_EQ(after.legs(0).state(), LEG_STATE_SHIPPED);
}

TEST_F(SagaTest, CreateIsIdempotentPerRequestId) {
  Stock(kNear, 10);
  Transfer a = Create(5, "same-id");
  Transfer b = Create(5, "same-id");
  EXPECT_EQ(a.id(), b.id());
  CreateTransferRequest other;
  other.set_request_id("same-id");
  other.set_actor("dispatcher-wang");
  other.mutable_plan()->set_destination_warehouse(kDest);
  auto* line = other.mutable_plan()->add_lines();
  line->set_item(kItem);
  line->set_quantity(6);
  EXPECT_THAT(coordinator_->Create(other), StatusIs(absl::StatusCode::kInvalidArgument));
}

// By content alone an approval and a cancel without a reason are the same request: the
// approval's id reused for a cancel cancelled the transfer instead of being refused.
TEST_F(SagaTest, ApprovalsRequestIdReusedForACancelIsRefused) {
  Stock(kNear, 10);
  Transfer t = Create(5);
  ApproveTransferRequest approve;
  approve.set_request_id("r-1");
  approve.set_actor("chief-li");
  approve.set_name(t.name());
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Approve(approve, kNationalApprover));
  CancelTransferRequest cancel;
  cancel.set_request_id("r-1");
  cancel.set_actor("chief-li");
  cancel.set_name(t.name());
  EXPECT_THAT(coordinator_->Cancel(cancel),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("request_id r-1 was already used for a different request")));
  Transfer after;
  ASSERT_OK_AND_ASSIGN_T(after, coordinator_->Get(t.name()));
  EXPECT_EQ(after.state(), TRANSFER_STATE_READY);
  EXPECT_EQ(after.audit_size(), t.audit_size());
  EXPECT_EQ(gateway_.Available(kNear, kItem), 5);
  ASSERT_OK_AND_ASSIGN_T(
      after, coordinator_->Approve(approve, kNationalApprover));  // the retry is still one
  EXPECT_EQ(after.state(), TRANSFER_STATE_READY);
}

// A ship and a receive of leg 0 without a note are alike too.
TEST_F(SagaTest, ShipmentsRequestIdReusedForAReceiptIsRefused) {
  Stock(kNear, 10);
  Transfer t = Create(5);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  ShipTransferLegRequest ship;
  ship.set_request_id("leg-0");
  ship.set_actor("keeper");
  ship.set_name(t.name());
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Ship(ship));
  ReceiveTransferLegRequest receive;
  receive.set_request_id("leg-0");
  receive.set_actor("keeper");
  receive.set_name(t.name());
  EXPECT_THAT(coordinator_->Receive(receive), StatusIs(absl::StatusCode::kInvalidArgument));
  Transfer after;
  ASSERT_OK_AND_ASSIGN_T(after, coordinator_->Get(t.name()));
  EXPECT_EQ(after.legs(0).state(), LEG_STATE_SHIPPED);
  EXPECT_EQ(gateway_.Received(kDest, kItem), 0);
}

// A request record stored before fingerprints named the request's type holds the content
// alone: a retry of that request across the upgrade is still answered as a retry.
TEST_F(SagaTest, RequestRecordsStoredWithoutTheTypeStillAnswerRetries) {
  Stock(kNear, 10);
  Transfer t = Create(5);
  ApproveTransferRequest approve;
  approve.set_request_id("approved-before-the-upgrade");
  approve.set_actor("chief-li");
  approve.set_name(t.name());
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Approve(approve, kNationalApprover));
  ApproveTransferRequest content = approve;
  content.clear_request_id();
  std::string legacy;
  ASSERT_TRUE(content.SerializeToString(&legacy));
  const RequestRecord old{approve.request_id(), legacy, t.id()};
  ASSERT_THAT(store_->Save(t, &old), IsOk());
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Approve(approve, kNationalApprover));
  EXPECT_EQ(t.state(), TRANSFER_STATE_READY);
  EXPECT_EQ(gateway_.Placements(t.legs(0).hold_id()), 1);
  approve.set_actor("someone-else");  // other content is still refused
  EXPECT_THAT(coordinator_->Approve(approve, kNationalApprover),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(SagaTest, ListsByRegionWithPages) {
  Stock(kNear, 100);
  for (int i = 0; i < 5; ++i) Create(1, absl::StrCat("c", i));
  ListTransfersRequest req;
  req.set_region_prefix("4201");
  req.set_page_size(2);
  int seen = 0, pages = 0;
  do {
    auto page = coordinator_->List(req);
    ASSERT_THAT(page.status(), IsOk());
    seen += page->transfers_size();
    req.set_page_token(page->next_page_token());
    ++pages;
  } while (!req.page_token().empty() && pages < 10);
  EXPECT_EQ(seen, 5);
  EXPECT_EQ(pages, 3);
  req.set_region_prefix("43");
  req.clear_page_token();
  EXPECT_EQ(coordinator_->List(req)->transfers_size(), 0);
}

// Expiry across a China midnight. The clock starts at 2026-01-01 08:00 CST; lot B's last usable
// day is that day, lot D's a month later. 16 hours on it is 2026-01-02 00:00 CST: B has expired.
class ExpiringLotSagaTest : public SagaTest {
 protected:
  static constexpr int32_t kToday = 20454;  // 2026-01-01
  static constexpr int64_t kToChinaMidnight = 16LL * 3600 * 1'000'000;

  // kNear holds 5 of B and 5 of D, seen by the catalogue and at its level.
  void StockBAndDAtNear() {
    snapshot_.SetLots("420103-W001", kItem,
                      {LotStock{"B", kToday, 5}, LotStock{"D", kToday + 30, 5}});
    gateway_.SetStock(kNear, kItem, 5, "B");
    gateway_.SetStock(kNear, kItem, 5, "D");
  }
  void PassChinaMidnight() {
    clock_.Advance(kToChinaMidnight);
    gateway_.ExpireLot(kNear, kItem, "B");
  }
  static std::string Lots(const TransferLeg& leg) {
    std::string out;
    for (const auto& l : leg.plan().lots()) absl::StrAppend(&out, l.lot(), ":", l.quantity(), " ");
    return out;
  }
};

// F6 of audit 30: created at 23:59 CST, approved at 00:00. The hold of lot B is refused (it has
// expired); the re-plan takes lot D at the same source, which still has it. Before, every
// refused leg's source was left out, and the transfer failed "fell short by 5".
TEST_F(ExpiringLotSagaTest, HoldRefusedForALotExpiredSincePlanningIsReplannedAtTheSameSource) {
  StockBAndDAtNear();
  Transfer t = Create(5);
  ASSERT_EQ(t.legs_size(), 1);
  ASSERT_EQ(Lots(t.legs(0)), "B:5 ");
  PassChinaMidnight();
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  EXPECT_EQ(t.state(), TRANSFER_STATE_READY) << t.failure_reason();
  ASSERT_EQ(t.legs_size(), 2);
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_REPLACED);
  EXPECT_TRUE(t.legs(0).lot_expired());
  EXPECT_EQ(t.legs(1).state(), LEG_STATE_HELD);
  EXPECT_EQ(t.legs(1).plan().source_warehouse(), kNear);
  EXPECT_EQ(Lots(t.legs(1)), "D:5 ");
  EXPECT_TRUE(std::any_of(t.audit().begin(), t.audit().end(), [](const AuditStep& a) {
    return absl::StrContains(a.what(), "from unexpired lots, its source included");
  }));
  EXPECT_EQ(gateway_.Available(kNear, kItem, "D"), 0);
  EXPECT_EQ(gateway_.Available(kNear, kItem, "B"), 5);
  EXPECT_EQ(t.short_lines_size(), 0);
}

// A refusal for lack of stock still leaves the source out: only an expired lot keeps it.
TEST_F(ExpiringLotSagaTest, HoldRefusedForLackOfStockStillLeavesItsSourceOut) {
  StockBAndDAtNear();
  Stock(kMid, 10);
  Transfer t = Create(5);
  gateway_.SetStock(kNear, kItem, 1, "B");  // taken meanwhile
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  EXPECT_EQ(t.state(), TRANSFER_STATE_READY);
  ASSERT_EQ(t.legs_size(), 2);
  EXPECT_FALSE(t.legs(0).lot_expired());
  EXPECT_EQ(t.legs(1).plan().source_warehouse(), kMid);
}

// F1 of audit 30: a held lot expires before its leg ships. The level refuses the shipment; the
// coordinator releases the hold, re-plans the leg from unexpired stock (its source included) and
// holds it, and the refusal says which leg to ship instead. Before, the expired lot shipped and
// was received as good.
TEST_F(ExpiringLotSagaTest, HeldLotThatExpiresBeforeShippingIsReleasedAndReplanned) {
  StockBAndDAtNear();
  Transfer t = Create(5);
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  ASSERT_EQ(t.state(), TRANSFER_STATE_READY);
  ASSERT_EQ(Lots(t.legs(0)), "B:5 ");
  PassChinaMidnight();
  EXPECT_THAT(Ship(t, 0).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("leg 0"), HasSubstr("lot B (last usable day 2026-01-01)"),
                             HasSubstr("re-planned as leg 1"), HasSubstr("ship it instead"))));
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Get(t.name()));
  EXPECT_EQ(t.state(), TRANSFER_STATE_READY);
  ASSERT_EQ(t.legs_size(), 2);
  EXPECT_EQ(t.legs(0).state(), LEG_STATE_REPLACED);
  EXPECT_TRUE(t.legs(0).lot_expired());
  EXPECT_EQ(t.legs(1).state(), LEG_STATE_HELD);
  EXPECT_EQ(t.legs(1).plan().source_warehouse(), kNear);
  EXPECT_EQ(Lots(t.legs(1)), "D:5 ");
  EXPECT_EQ(gateway_.Available(kNear, kItem, "B"), 5);  // released, never shipped
  EXPECT_EQ(gateway_.ActiveHolds(), 1);
  // A retry of the refused shipment changes nothing more.
  EXPECT_THAT(Ship(t, 0).status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK_AND_ASSIGN_T(t, Ship(t, 1));
  ASSERT_OK_AND_ASSIGN_T(t, Receive(t, 1));
  EXPECT_EQ(t.state(), TRANSFER_STATE_RECEIVED);
  EXPECT_EQ(t.short_lines_size(), 0);
  EXPECT_EQ(gateway_.Received(kDest, kItem), 5);
}

// The same with another leg already on its way: the transfer holds again for the new legs,
// then is in transit; the shipped leg is received meanwhile and nothing else is released.
TEST_F(ExpiringLotSagaTest, ExpiredLegOfATransferInTransitIsReplannedAndTheRestGoesOn) {
  StockBAndDAtNear();
  Stock(kMid, 10);
  Transfer t = Create(15);  // leg 0: B:5 D:5 at kNear; leg 1: 5 at kMid
  ASSERT_OK_AND_ASSIGN_T(t, Approve(t));
  ASSERT_EQ(t.legs_size(), 2);
  ASSERT_EQ(Lots(t.legs(0)), "B:5 D:5 ");
  ASSERT_OK_AND_ASSIGN_T(t, Ship(t, 1));
  ASSERT_EQ(t.state(), TRANSFER_STATE_IN_TRANSIT);
  PassChinaMidnight();
  EXPECT_THAT(Ship(t, 0).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("ship them instead")));
  ASSERT_OK_AND_ASSIGN_T(t, coordinator_->Get(t.name()));
  EXPECT_EQ(t.state(), TRANSFER_STATE_IN_TRANSIT);
  ASSERT_EQ(t.legs_size(), 4);
  EXPECT_EQ(t.legs(1).state(), LEG_STATE_SHIPPED);
  EXPECT_EQ(t.legs(2).plan().source_warehouse(), kNear);
  EXPECT_EQ(Lots(t.legs(2)), "D:5 ");
  EXPECT_EQ(t.legs(3).plan().source_warehouse(), kMid);
  EXPECT_EQ(t.legs(2).state(), LEG_STATE_HELD);
  EXPECT_EQ(t.legs(3).state(), LEG_STATE_HELD);
  for (int leg : {1, 2, 3}) {
    if (leg != 1) ASSERT_OK_AND_ASSIGN_T(t, Ship(t, leg));
    ASSERT_OK_AND_ASSIGN_T(t, Receive(t, leg));
  }
  EXPECT_EQ(t.state(), TRANSFER_STATE_RECEIVED);
  EXPECT_EQ(gateway_.Received(kDest, kItem), 15);
  EXPECT_EQ(gateway_.Available(kNear, kItem, "B"), 5);
}

}  // namespace
}  // namespace stockpile::catalogue::allocation
