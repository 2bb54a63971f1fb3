#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/validation.h"
#include "services/level/keys.h"
#include "services/level/proto_util.h"
#include "services/level/storage_migration.h"
#include "stockpile/internal/level_store.pb.h"
#include "tests/testutil/status_matchers.h"
#include "tests/unit/level/level_test_env.h"

namespace stockpile::level::testing {
namespace {

using ::stockpile::testing::IsOk;
using ::stockpile::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using namespace stockpile::v1;  // NOLINT
using Env = LevelTestEnv;

constexpr char kW[] = "warehouses/420102-W001";
constexpr char kW2[] = "warehouses/420103-W001";
constexpr char kTent[] = "SH-0001";   // no shelf life
constexpr char kWater[] = "FW-0001";  // 12-month shelf life

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(env_.CreateWarehouse("420102-W001").status(), IsOk());
    ASSERT_THAT(env_.CreateWarehouse("420103-W001").status(), IsOk());
  }
  Env env_;
};

TEST_F(LedgerTest, ReceiveAddsToDefaultLotOfItemWithoutShelfLife) {
  auto r = env_.Apply(Env::Receive(kW, kTent, 40));
  ASSERT_THAT(r.status(), IsOk());
  ASSERT_EQ(r->movements_size(), 1);
  EXPECT_EQ(r->movements(0).type(), MOVEMENT_TYPE_RECEIVE);
  EXPECT_EQ(r->movements(0).lot(), "DEFAULT");
  EXPECT_EQ(r->movements(0).actor(), "tester");
  Balance b = env_.Balance(kW, kTent);
  EXPECT_EQ(b.on_hand(), 40);
  EXPECT_EQ(b.available(), 40);
}

TEST_F(LedgerTest, ExpiryRequiredOnlyWhereItemHasShelfLife) {
  EXPECT_THAT(env_.Apply(Env::Receive(kW, kWater, 10, "L1")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expiry_date")));
  EXPECT_THAT(env_.Apply(Env::Receive(kW, kTent, 10, "L1", "2027-01-01")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not expire")));
  EXPECT_THAT(env_.Apply(Env::Receive(kW, kWater, 10, "L1", "2027-02-30")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(env_.Apply(Env::Receive(kW, kWater, 10, "L1", "2027-01-01")).status(), IsOk());
  EXPECT_EQ(env_.Balance(kW, kWater).on_hand(), 10);
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), 0);
}

TEST_F(LedgerTest, SameLotWithOtherExpiryIsRefused) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kWater, 10, "L1", "2027-01-01")).status(), IsOk());
  EXPECT_THAT(env_.Apply(Env::Receive(kW, kWater, 10, "L1", "2027-03-01")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expires on 2027-01-01")));
  EXPECT_EQ(env_.Balance(kW, kWater).on_hand(), 10);
}

TEST_F(LedgerTest, IssueTakesEarliestExpiryFirst) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kWater, 10, "LATE", "2027-05-01")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kWater, 10, "EARLY", "2026-09-01")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kWater, 10, "MID", "2026-12-01")).status(), IsOk());
  auto r = env_.Apply(Env::Issue(kW, kWater, 15));
  ASSERT_THAT(r.status(), IsOk());
  ASSERT_EQ(r->movements_size(), 2);
  EXPECT_EQ(r->movements(0).lot(), "EARLY");
  EXPECT_EQ(r->movements(0).quantity(), -10);
  EXPECT_EQ(r->movements(1).lot(), "MID");
  EXPECT_EQ(r->movements(1).quantity(), -5);
  Balance b = env_.Balance(kW, kWater);
  EXPECT_EQ(b.on_hand(), 15);
  ASSERT_EQ(b.lots_size(), 3);
  EXPECT_EQ(b.lots(0).lot(), "EARLY");
  EXPECT_EQ(b.lots(0).on_hand(), 0);
}

TEST_F(LedgerTest, IssueSkipsExpiredLotsUnlessNamed) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kWater, 10, "OLD", "2026-05-31")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kWater, 10, "NEW", "2027-01-01")).status(), IsOk());
  auto r = env_.Apply(Env::Issue(kW, kWater, 4));
  ASSERT_THAT(r.status(), IsOk());
  EXPECT_EQ(r->movements(0).lot(), "NEW");
  EXPECT_THAT(env_.Apply(Env::Issue(kW, kWater, 7)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("expired")));
  EXPECT_THAT(env_.Apply(Env::Issue(kW, kWater, 3, "OLD")).status(), IsOk());
}

TEST_F(LedgerTest, LotExpiringTodayIsStillIssuable) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kWater, 5, "TODAY", "2026-06-01")).status(), IsOk());
  EXPECT_THAT(env_.Apply(Env::Issue(kW, kWater, 5)).status(), IsOk());
}

TEST_F(LedgerTest, IssueNeverGoesBelowZeroAndChangesNothing) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 5)).status(), IsOk());
  EXPECT_THAT(env_.Apply(Env::Issue(kW, kTent, 6)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("only 5 available")));
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), 5);
  EXPECT_THAT(env_.Apply(Env::Issue(kW, kTent, 5)).status(), IsOk());
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), 0);
}

TEST_F(LedgerTest, ZeroNegativeAndOverflowingQuantitiesAreRefused) {
  EXPECT_THAT(env_.Apply(Env::Receive(kW, kTent, 0)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("positive")));
  EXPECT_THAT(env_.Apply(Env::Receive(kW, kTent, -3)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(env_.Apply(Env::Issue(kW, kTent, -1)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(env_.Apply(Env::Receive(kW, kTent, INT64_MAX)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("exceeds")));
  // Many receipts below the per-call limit cannot overflow a lot either.
  Operation big = Env::Receive(kW, kTent, common::kMaxQuantity);
  ASSERT_THAT(env_.Batch(std::vector<Operation>(1000, big)).status(), IsOk());
  EXPECT_THAT(env_.Apply(big).status(), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), 1000 * common::kMaxQuantity);
}

// The limit is on the balance, all lots together: a count of many lots, or a shipment
// received into a full balance, cannot take it past what the sums over it can hold.
TEST_F(LedgerTest, NoCountOrArrivalTakesABalancePastItsLimit) {
  constexpr int64_t kLimit = 1'000'000'000'000'000;
  Operation count;
  auto* c = count.mutable_stocktake();
  c->set_warehouse(kW);
  c->set_item(kTent);
  c->set_reason("found in the back");
  for (int i = 0; i < 10; ++i) {
    auto* lot = c->add_counts();
    lot->set_lot(absl::StrCat("L", i));
    lot->set_counted(kLimit / 5);
  }
  EXPECT_THAT(env_.Apply(count).status(),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("past the")));
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), 0);
  EXPECT_EQ(env_.Balance(kW, kTent).lots_size(), 0);

  c->mutable_counts()->DeleteSubrange(5, 5);  // exactly the limit
  ASSERT_THAT(env_.Apply(count).status(), IsOk());
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), kLimit);
  EXPECT_THAT(env_.Apply(Env::Receive(kW, kTent, 1, "other")).status(),
              StatusIs(absl::StatusCode::kOutOfRange));

  Operation rt;
  auto* r = rt.mutable_receive_transfer();
  r->set_warehouse(kW);
  r->set_hold_id("remote-full");
  r->set_source_warehouse("warehouses/110101-W001");
  r->set_item(kTent);
  r->add_lots()->set_lot("arrived");
  r->mutable_lots(0)->set_quantity(2);
  r->mutable_lots(0)->set_received(2);
  EXPECT_THAT(env_.Apply(rt).status(), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), kLimit);
  for (const auto& t : env_.core().Totals()) {
    if (t.item() == kTent) {
      EXPECT_EQ(t.on_hand(), kLimit);
    }
  }
}

TEST_F(LedgerTest, UnknownItemWarehouseAndLotAreNotFound) {
  EXPECT_THAT(env_.Apply(Env::Receive(kW, "XX-9999", 1)).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("XX-9999")));
  EXPECT_THAT(env_.Apply(Env::Receive("warehouses/420104-W009", kTent, 1)).status(),
              StatusIs(absl::StatusCode::kNotFound));
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 1)).status(), IsOk());
  EXPECT_THAT(env_.Apply(Env::Issue(kW, kTent, 1, "NOPE")).status(),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(LedgerTest, RetryWithSameRequestIdReturnsFirstResultAndMovesNothing) {
  auto first = env_.Apply(Env::Receive(kW, kTent, 7), "req-1");
  ASSERT_THAT(first.status(), IsOk());
  auto again = env_.Apply(Env::Receive(kW, kTent, 7), "req-1");
  ASSERT_THAT(again.status(), IsOk());
  EXPECT_EQ(again->SerializeAsString(), first->SerializeAsString());
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), 7);
  EXPECT_EQ(env_.core().last_sequence(), 3u);  // two warehouses + one receipt
}

TEST_F(LedgerTest, SameRequestIdWithOtherContentIsInvalid) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 7), "req-1").status(), IsOk());
  EXPECT_THAT(env_.Apply(Env::Receive(kW, kTent, 8), "req-1").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("already used")));
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), 7);
}

TEST_F(LedgerTest, RefusedRequestCanBeRetriedWithSameIdOnceFixable) {
  EXPECT_THAT(env_.Apply(Env::Issue(kW, kTent, 3), "req-x").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 5)).status(), IsOk());
  EXPECT_THAT(env_.Apply(Env::Issue(kW, kTent, 3), "req-x").status(), IsOk());
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), 2);
}

TEST_F(LedgerTest, HoldReservesAndReleaseRestores) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 10)).status(), IsOk());
  auto h = env_.Apply(Env::Hold(kW, kTent, 6, "h1"));
  ASSERT_THAT(h.status(), IsOk());
  EXPECT_EQ(h->hold().state(), HOLD_STATE_ACTIVE);
  Balance b = env_.Balance(kW, kTent);
  EXPECT_EQ(b.on_hand(), 10);
  EXPECT_EQ(b.held(), 6);
  EXPECT_EQ(b.available(), 4);
  EXPECT_THAT(env_.Apply(Env::Issue(kW, kTent, 5)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(env_.Apply(Env::Hold(kW, kTent, 1, "h1")).status(),
              StatusIs(absl::StatusCode::kAlreadyExists));
  ASSERT_THAT(env_.Apply(Env::Release("h1")).status(), IsOk());
  EXPECT_EQ(env_.Balance(kW, kTent).available(), 10);
  EXPECT_THAT(env_.Apply(Env::Release("h1")).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("cannot release hold holds/h1: it is released")));
}

// A release that names the warehouse closes a hold id that does not exist yet: a hold request
// with that id arriving afterwards is refused and moves nothing. Without the warehouse, an
// unknown hold is still NOT_FOUND and changes nothing.
TEST_F(LedgerTest, ReleaseBeforeTheHoldClosesItsIdThere) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 10)).status(), IsOk());
  EXPECT_THAT(env_.Apply(Env::Release("late")).status(), StatusIs(absl::StatusCode::kNotFound));
  Operation closing = Env::Release("late");
  closing.mutable_release()->set_warehouse_if_absent(kW);
  auto closed = env_.Apply(closing);
  ASSERT_THAT(closed.status(), IsOk());
  EXPECT_EQ(closed->hold().state(), HOLD_STATE_RELEASED);
  EXPECT_EQ(closed->hold().quantity(), 0);
  EXPECT_EQ(closed->movements_size(), 0);
  EXPECT_THAT(env_.Apply(Env::Hold(kW, kTent, 6, "late")).status(),
              StatusIs(absl::StatusCode::kAlreadyExists));
  const Balance b = env_.Balance(kW, kTent);
  EXPECT_EQ(b.held(), 0);
  EXPECT_EQ(b.available(), 10);
  // Releasing it again (a retried cancel) is refused as for any released hold.
  EXPECT_THAT(env_.Apply(closing).status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  // A warehouse this instance does not host is refused like any other.
  Operation elsewhere = Env::Release("late-2");
  elsewhere.mutable_release()->set_warehouse_if_absent("warehouses/110101-W001");
  EXPECT_FALSE(env_.Apply(elsewhere).ok());
}

TEST_F(LedgerTest, HoldReleasesItselfAfterItsExpiry) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 10)).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Hold(kW, kTent, 6, "h1", 60)).status(), IsOk());
  env_.clock().Advance(30'000'000);
  EXPECT_EQ(env_.core().SweepExpiredHolds(), 0);
  EXPECT_EQ(env_.Balance(kW, kTent).held(), 6);
  env_.clock().Advance(31'000'000);
  EXPECT_THAT(env_.Apply(Env::Ship("h1", kW2)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("expired")));
  EXPECT_EQ(env_.core().SweepExpiredHolds(), 1);
  EXPECT_EQ(env_.Balance(kW, kTent).held(), 0);
  auto hold = env_.queries().GetHold("holds/h1");
  ASSERT_THAT(hold.status(), IsOk());
  EXPECT_EQ(hold->state(), HOLD_STATE_EXPIRED);
  EXPECT_EQ(env_.core().SweepExpiredHolds(), 0);
}

// After --regions no longer covers a warehouse, its holds cannot be released here; the holds
// of the warehouses still hosted must expire all the same, and the sweep not retry the others.
TEST_F(LedgerTest, AHoldThatCannotExpireDoesNotKeepOthersHeld) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 10)).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW2, kTent, 10)).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Hold(kW2, kTent, 4, "gone", 60)).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Hold(kW, kTent, 6, "here", 61)).status(), IsOk());
  env_.set_prefixes({"420102"});
  env_.Reopen();
  env_.clock().Advance(120'000'000);
  const uint64_t head = env_.core().last_sequence();
  EXPECT_EQ(env_.core().SweepExpiredHolds(), 1);
  EXPECT_EQ(env_.Balance(kW, kTent).held(), 0);
  auto here = env_.queries().GetHold("holds/here");
  ASSERT_THAT(here.status(), IsOk());
  EXPECT_EQ(here->state(), HOLD_STATE_EXPIRED);
  // The other hold is left as it was, and later sweeps write nothing for it.
  EXPECT_EQ(env_.core().last_sequence(), head + 1);
  EXPECT_EQ(env_.core().SweepExpiredHolds(), 0);
  EXPECT_EQ(env_.core().last_sequence(), head + 1);
  env_.set_prefixes({"4201"});
  env_.Reopen();
  auto gone = env_.queries().GetHold("holds/gone");
  ASSERT_THAT(gone.status(), IsOk());
  // Past its expiry it reads as expired, but no release was written for it: still held.
  EXPECT_EQ(gone->state(), HOLD_STATE_EXPIRED);
  EXPECT_EQ(gone->update_time().DebugString(), gone->create_time().DebugString());
  EXPECT_EQ(env_.Balance(kW2, kTent).held(), 4);
  // Hosted again, it expires.
  EXPECT_EQ(env_.core().SweepExpiredHolds(), 1);
  EXPECT_EQ(env_.Balance(kW2, kTent).held(), 0);
}

// Narrowed to 420102, the instance cannot release 420103's expired hold: no sweep, on any
// start, writes a change entry for it (each start used to add an empty one to the stream).
TEST_F(LedgerTest, AnExpiredHoldNoLongerHostedWritesNothingOnAnyStart) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW2, kTent, 10)).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Hold(kW2, kTent, 4, "gone", 60)).status(), IsOk());
  env_.set_prefixes({"420102"});
  env_.clock().Advance(120'000'000);
  for (int start = 0; start < 2; ++start) {
    env_.Reopen();
    const uint64_t head = env_.core().last_sequence();
    EXPECT_EQ(env_.core().SweepExpiredHolds(), 0);
    EXPECT_EQ(env_.core().last_sequence(), head) << "start " << start;
  }
}

TEST_F(LedgerTest, HoldNeverTakesExpiredLots) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kWater, 10, "OLD", "2026-01-01")).status(), IsOk());
  EXPECT_THAT(env_.Apply(Env::Hold(kW, kWater, 1, "h1")).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  Operation op = Env::Hold(kW, kWater, 0, "h2");
  auto* lot = op.mutable_hold()->add_lots();
  lot->set_lot("OLD");
  lot->set_quantity(1);
  EXPECT_THAT(env_.Apply(op).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("expired")));
}

// A hold's lots are fixed when it is placed. One whose last usable day passes before the hold
// ships (China Standard Time: 16:00 UTC) stays where it is: the shipment is refused, naming the
// lot, its expiry and what to do, and nothing changes. Before, it left and was received as good.
TEST_F(LedgerTest, HeldLotThatExpiresBeforeItShipsDoesNotLeave) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kWater, 10, "LAST", "2026-06-01")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kWater, 10, "LATER", "2027-01-01")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Hold(kW, kWater, 4, "h1")).status(), IsOk());  // FEFO: LAST
  auto held = env_.Apply(Env::Hold(kW, kWater, 3, "h2"));
  ASSERT_THAT(held.status(), IsOk());
  ASSERT_EQ(held->hold().lots(0).lot(), "LAST");
  env_.clock().Advance((15 * 3600 + 59 * 60 + 59) * 1'000'000LL);  // 2026-06-01 23:59:59 CST
  EXPECT_THAT(env_.Apply(Env::Ship("h1", kW2)).status(), IsOk());  // its last usable day
  env_.clock().Advance(1'000'000);                                 // 2026-06-02 00:00:00 CST
  const Balance before = env_.Balance(kW, kWater);
  const uint64_t head = env_.core().last_sequence();
  EXPECT_THAT(env_.Apply(Env::Ship("h2", kW2)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("holds/h2"), HasSubstr("lot LAST of FW-0001"),
                             HasSubstr("expired on 2026-06-01"), HasSubstr("release the hold"))));
  EXPECT_EQ(env_.core().last_sequence(), head);
  const Balance after = env_.Balance(kW, kWater);
  EXPECT_EQ(after.DebugString(), before.DebugString());
  EXPECT_EQ(after.held(), 3);
  EXPECT_EQ(after.in_transit(), 4);
  auto h2 = env_.queries().GetHold("holds/h2");
  ASSERT_THAT(h2.status(), IsOk());
  EXPECT_EQ(h2->state(), HOLD_STATE_ACTIVE);
  // What the message says to do: released, the stock is held again from an unexpired lot.
  ASSERT_THAT(env_.Apply(Env::Release("h2")).status(), IsOk());
  auto again = env_.Apply(Env::Hold(kW, kWater, 3, "h3"));
  ASSERT_THAT(again.status(), IsOk());
  EXPECT_EQ(again->hold().lots(0).lot(), "LATER");
  EXPECT_THAT(env_.Apply(Env::Ship("h3", kW2)).status(), IsOk());
}

// A hold that asks to keep the reserve floor (the catalogue's, for all but CRITICAL transfers)
// is refused when it would leave less unexpired available stock than the quota's min, and
// changes nothing. Expired lots do not count toward the floor; without the ask, or without a
// quota, the hold is placed as before.
TEST_F(LedgerTest, HoldKeepingTheReserveFloorIsRefusedBelowIt) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kWater, 10, "OLD", "2026-01-01")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kWater, 30, "NEW", "2027-06-01")).status(), IsOk());
  auto keeping = [](int64_t q, const std::string& id) {
    Operation op = Env::Hold(kW, kWater, q, id);
    op.mutable_hold()->set_keep_reserve_floor(true);
    return op;
  };
  ASSERT_THAT(env_.Apply(keeping(10, "no-quota-yet")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Release("no-quota-yet")).status(), IsOk());
  ASSERT_THAT(env_.SetQuota(kW, kWater, 20, 0).status(), IsOk());
  EXPECT_THAT(env_.Apply(keeping(11, "too-much")).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("would leave 19 available, below its reserve floor of 20 (10 "
                                 "can be given above it)")));
  Balance b = env_.Balance(kW, kWater);
  EXPECT_EQ(b.held(), 0);
  ASSERT_THAT(env_.Apply(keeping(10, "to-the-floor")).status(), IsOk());
  EXPECT_THAT(env_.Apply(keeping(1, "one-more")).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("(0 can be given")));
  ASSERT_THAT(env_.Apply(Env::Hold(kW, kWater, 5, "not-asked")).status(), IsOk());
  EXPECT_EQ(env_.Balance(kW, kWater).held(), 15);
}

TEST_F(LedgerTest, ShipMovesHeldStockInTransitAndReceiveRecordsLoss) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kWater, 30, "A", "2026-08-01")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kWater, 30, "B", "2026-10-01")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Hold(kW, kWater, 40, "t1-leg1")).status(), IsOk());
  auto shipped = env_.Apply(Env::Ship("t1-leg1", kW2));
  ASSERT_THAT(shipped.status(), IsOk());
  Balance src = env_.Balance(kW, kWater);
  EXPECT_EQ(src.on_hand(), 20);
  EXPECT_EQ(src.held(), 0);
  EXPECT_EQ(src.in_transit(), 40);

  Operation rt;
  auto* r = rt.mutable_receive_transfer();
  r->set_warehouse(kW2);
  r->set_hold_id("t1-leg1");
  r->set_source_warehouse(kW);
  r->set_item(kWater);
  auto* a = r->add_lots();
  a->set_lot("A");
  a->set_received(30);
  auto* b = r->add_lots();
  b->set_lot("B");
  b->set_received(7);  // 3 lost
  auto received = env_.Apply(rt);
  ASSERT_THAT(received.status(), IsOk());
  EXPECT_EQ(env_.Balance(kW2, kWater).on_hand(), 37);
  EXPECT_EQ(env_.Balance(kW, kWater).in_transit(), 0);
  EXPECT_EQ(received->hold().state(), HOLD_STATE_DELIVERED);
  int losses = 0;
  for (const auto& m : received->movements()) {
    if (m.type() == MOVEMENT_TYPE_TRANSIT_LOSS) {
      ++losses;
      EXPECT_EQ(m.quantity(), -3);
    }
  }
  EXPECT_EQ(losses, 1);
  EXPECT_THAT(env_.Apply(rt).status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  for (const auto& t : env_.core().Totals()) {
    if (t.item() != kWater) continue;
    EXPECT_EQ(t.on_hand(), 57);
    EXPECT_EQ(t.in_transit(), 0);
    EXPECT_EQ(t.lost(), 3);
  }
}

// A shipment names where it goes, and only that warehouse takes it in: otherwise a caller
// scoped to any warehouse of this instance could receive stock meant for another.
TEST_F(LedgerTest, ShipmentNamesItsDestinationAndOnlyThatWarehouseReceivesIt) {
  ASSERT_THAT(env_.CreateWarehouse("420104-W001").status(), IsOk());
  const char kW3[] = "warehouses/420104-W001";
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 10)).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Hold(kW, kTent, 4, "to-w2")).status(), IsOk());
  const uint64_t before = env_.core().last_sequence();

  EXPECT_THAT(env_.Apply(Env::Ship("to-w2", "")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("destination is required")));
  EXPECT_THAT(env_.Apply(Env::Ship("to-w2", "420103-W001")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(env_.core().last_sequence(), before);
  EXPECT_EQ(env_.queries().GetHold("holds/to-w2")->state(), HOLD_STATE_ACTIVE);
  EXPECT_EQ(env_.Balance(kW, kTent).held(), 4);

  ASSERT_THAT(env_.Apply(Env::Ship("to-w2", kW2)).status(), IsOk());
  Operation rt;
  auto* r = rt.mutable_receive_transfer();
  r->set_warehouse(kW3);
  r->set_hold_id("to-w2");
  r->set_source_warehouse(kW);
  r->set_item(kTent);
  r->add_lots()->set_lot("DEFAULT");
  r->mutable_lots(0)->set_received(4);
  EXPECT_THAT(env_.Apply(rt).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("was shipped to")));
  EXPECT_EQ(env_.Balance(kW3, kTent).on_hand(), 0);
  EXPECT_EQ(env_.Balance(kW, kTent).in_transit(), 4);

  r->set_warehouse(kW2);
  ASSERT_THAT(env_.Apply(rt).status(), IsOk());
  EXPECT_EQ(env_.Balance(kW2, kTent).on_hand(), 4);
  EXPECT_EQ(env_.Balance(kW, kTent).in_transit(), 0);
}

// A destination this instance hosts is checked before stock leaves: stock shipped where it
// can never be received would stay in transit for good.
TEST_F(LedgerTest, ShipmentToAWarehouseHereThatCannotReceiveItIsRefused) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 10)).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Hold(kW, kTent, 4, "h")).status(), IsOk());
  const uint64_t before = env_.core().last_sequence();
  EXPECT_THAT(env_.Apply(Env::Ship("h", "warehouses/420102-W999")).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("does not exist")));
  EXPECT_THAT(env_.Apply(Env::Ship("h", kW)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("where it is held")));
  UpdateWarehouseRequest close;
  close.set_request_id("close-w2");
  close.set_actor("tester");
  close.mutable_warehouse()->set_name(kW2);
  close.mutable_warehouse()->set_status(WAREHOUSE_STATUS_SUSPENDED);
  close.mutable_update_mask()->add_paths("status");
  ASSERT_THAT(Wait([&](CommandCallback done) { env_.core().UpdateWarehouse(close, done); }).status,
              IsOk());
  const uint64_t closed = env_.core().last_sequence();
  EXPECT_GT(closed, before);
  EXPECT_THAT(env_.Apply(Env::Ship("h", kW2)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("takes no stock")));
  EXPECT_EQ(env_.core().last_sequence(), closed);
  EXPECT_EQ(env_.Balance(kW, kTent).held(), 4);
  EXPECT_EQ(env_.Balance(kW, kTent).in_transit(), 0);
  // Elsewhere, it cannot be checked here: the receiving instance answers for it.
  EXPECT_THAT(env_.Apply(Env::Ship("h", "warehouses/110101-W001")).status(), IsOk());
  EXPECT_EQ(env_.Balance(kW, kTent).in_transit(), 4);
}

// Stock shipped to a warehouse of this instance is received there; confirming its delivery
// instead would close the hold and put the stock nowhere.
TEST_F(LedgerTest, DeliveryToAWarehouseHereIsReceivedNotConfirmed) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 10)).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Hold(kW, kTent, 4, "here")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Ship("here", kW2)).status(), IsOk());
  Operation confirm;
  confirm.mutable_confirm_delivery()->set_hold_id("here");
  EXPECT_THAT(env_.Apply(confirm).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("receive it there")));
  EXPECT_EQ(env_.queries().GetHold("holds/here")->state(), HOLD_STATE_SHIPPED);
  EXPECT_EQ(env_.Balance(kW, kTent).in_transit(), 4);

  ASSERT_THAT(env_.Apply(Env::Hold(kW, kTent, 2, "away")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Ship("away", "warehouses/110101-W001")).status(), IsOk());
  confirm.mutable_confirm_delivery()->set_hold_id("away");
  ASSERT_THAT(env_.Apply(confirm).status(), IsOk());
  EXPECT_EQ(env_.queries().GetHold("holds/away")->state(), HOLD_STATE_DELIVERED);
  EXPECT_EQ(env_.Balance(kW, kTent).in_transit(), 4);
}

TEST_F(LedgerTest, ReceiveTransferFromAnotherInstanceIsAcceptedOnce) {
  Operation rt;
  auto* r = rt.mutable_receive_transfer();
  r->set_warehouse(kW2);
  r->set_hold_id("remote-1");
  r->set_source_warehouse("warehouses/110101-W001");
  r->set_item(kTent);
  auto* a = r->add_lots();
  a->set_lot("DEFAULT");
  a->set_quantity(10);
  a->set_received(9);
  ASSERT_THAT(env_.Apply(rt).status(), IsOk());
  EXPECT_EQ(env_.Balance(kW2, kTent).on_hand(), 9);
  EXPECT_THAT(env_.Apply(rt).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already received")));
  EXPECT_EQ(env_.Balance(kW2, kTent).on_hand(), 9);
}

TEST_F(LedgerTest, ShipmentFromAnotherLevelUnderTheSamePrefixIsRemote) {
  // A village warehouse under this county instance's prefix belongs to the village instance.
  Operation rt;
  auto* r = rt.mutable_receive_transfer();
  r->set_warehouse(kW2);
  r->set_hold_id("village-hold-1");
  r->set_source_warehouse("warehouses/420102002003-W001");
  r->set_item(kTent);
  auto* a = r->add_lots();
  a->set_lot("DEFAULT");
  a->set_quantity(4);
  a->set_received(4);
  ASSERT_THAT(env_.Apply(rt).status(), IsOk());
  EXPECT_EQ(env_.Balance(kW2, kTent).on_hand(), 4);
}

// A warehouse on another instance is checked as far as the reference data reaches: its region,
// or for a village outside the loaded prefixes ("4201" here), its county. A region that does not
// exist would leave the stock in transit for good, or book it in from nowhere.
TEST_F(LedgerTest, ShipmentToOrFromARegionThatDoesNotExistIsRefused) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 10)).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Hold(kW, kTent, 4, "typo")).status(), IsOk());
  EXPECT_THAT(env_.Apply(Env::Ship("typo", "warehouses/999999-W001")).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("region 999999 is not in")));
  EXPECT_THAT(env_.Apply(Env::Ship("typo", "warehouses/110199001001-W001")).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("region 110199001001")));
  EXPECT_EQ(env_.queries().GetHold("holds/typo")->state(), HOLD_STATE_ACTIVE);
  EXPECT_EQ(env_.Balance(kW, kTent).in_transit(), 0);
  // A village of Beijing's Dongcheng district: not loaded here, but its county exists.
  EXPECT_THAT(env_.Apply(Env::Ship("typo", "warehouses/110101001001-W001")).status(), IsOk());
  EXPECT_EQ(env_.Balance(kW, kTent).in_transit(), 4);

  Operation rt;
  auto* r = rt.mutable_receive_transfer();
  r->set_warehouse(kW2);
  r->set_hold_id("from-nowhere");
  r->set_source_warehouse("warehouses/990000-W7");
  r->set_item(kTent);
  auto* a = r->add_lots();
  a->set_lot("DEFAULT");
  a->set_quantity(5);
  a->set_received(5);
  EXPECT_THAT(env_.Apply(rt).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("source warehouses/990000-W7")));
  EXPECT_EQ(env_.Balance(kW2, kTent).on_hand(), 0);
}

TEST(HostingTest, HostsOnlyItsOwnLevelUnderItsPrefixes) {
  Hosting county(LEVEL_COUNTY, {"4201"});
  EXPECT_TRUE(county.HostsCode("420102"));
  EXPECT_TRUE(county.HostsCode("420102-W001"));
  EXPECT_FALSE(county.HostsCode("420102002003-W001"));
  EXPECT_FALSE(county.HostsCode("4201-W001"));
  EXPECT_FALSE(county.HostsCode("430102-W001"));
}

TEST_F(LedgerTest, StocktakeRecordsDifferenceAsAdjustWithReason) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 10)).status(), IsOk());
  EXPECT_THAT(env_.Apply(Env::Count(kW, kTent, "", 8, "")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("reason")));
  auto r = env_.Apply(Env::Count(kW, kTent, "", 8, "two found torn"));
  ASSERT_THAT(r.status(), IsOk());
  ASSERT_EQ(r->movements_size(), 1);
  EXPECT_EQ(r->movements(0).type(), MOVEMENT_TYPE_ADJUST);
  EXPECT_EQ(r->movements(0).quantity(), -2);
  EXPECT_EQ(r->movements(0).note(), "two found torn");
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), 8);
  // A count equal to the ledger needs no reason.
  EXPECT_THAT(env_.Apply(Env::Count(kW, kTent, "", 8, "")).status(), IsOk());
}

TEST_F(LedgerTest, StocktakeCannotCountBelowHeldStock) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 10)).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Hold(kW, kTent, 6, "h1")).status(), IsOk());
  EXPECT_THAT(env_.Apply(Env::Count(kW, kTent, "", 5, "missing")).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("held")));
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), 10);
}

TEST_F(LedgerTest, StocktakeOfUnknownLotCreatesItWithExpiry) {
  EXPECT_THAT(env_.Apply(Env::Count(kW, kWater, "FOUND", 4, "found in back room")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expiry_date")));
  ASSERT_THAT(
      env_.Apply(Env::Count(kW, kWater, "FOUND", 4, "found in back room", "2027-01-01")).status(),
      IsOk());
  EXPECT_EQ(env_.Balance(kW, kWater).on_hand(), 4);
}

// The item catalogue is deployed with shelf lives changed (tents given 12 months, water none):
// lots already in the ledger can still be counted as they are stored, or a difference could
// never be recorded against them; new lots follow the new rules; a mismatch names both dates.
TEST_F(LedgerTest, ExistingLotsCanBeCountedAfterTheirItemsShelfLifeChanged) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 10)).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kWater, 10, "OLD", "2027-02-01")).status(), IsOk());
  stockpile::testing::TempDir dir;
  std::filesystem::create_directories(dir.Sub("items"));
  std::filesystem::create_symlink(stockpile::testing::ReferenceDataDir() + "/regions",
                                  dir.Sub("regions"));
  std::ifstream in(stockpile::testing::ReferenceDataDir() + "/items/items.csv");
  std::ofstream out(dir.Sub("items/items.csv"));
  for (std::string line; std::getline(in, line);) {
    if (absl::StartsWith(line, "SH-0001,")) line.replace(line.rfind(',') + 1, 1, "12");
    if (absl::StartsWith(line, "FW-0001,")) line.replace(line.rfind(',') + 1, 2, "0");
    out << line << "\n";
  }
  out.close();
  common::ReferenceData::Options options;
  options.fine_region_prefixes = {"4201"};
  auto changed = common::ReferenceData::Load(dir.path(), options);
  ASSERT_THAT(changed.status(), IsOk());
  env_.set_reference(changed->get());
  env_.Reopen();

  EXPECT_THAT(env_.Apply(Env::Count(kW, kTent, "DEFAULT", 8, "two torn")).status(), IsOk());
  EXPECT_THAT(env_.Apply(Env::Count(kW, kWater, "OLD", 9, "one burst")).status(), IsOk());
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), 8);
  EXPECT_EQ(env_.Balance(kW, kWater).on_hand(), 9);
  EXPECT_THAT(env_.Apply(Env::Count(kW, kTent, "DEFAULT", 8, "", "2027-01-01")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("lot DEFAULT of SH-0001 at warehouses/420102-W001 has no expiry "
                                 "date; the count says 2027-01-01")));
  EXPECT_THAT(env_.Apply(Env::Count(kW, kTent, "NEW", 1, "found")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expiry_date")));
  env_.Close();  // before `changed` goes
  env_.set_reference(&Reference());
  env_.Reopen();
}

// Staff typing "default" for the DEFAULT lot (or "b1" for B1) would start a second lot beside
// the one they counted: 4 counted would read 8. Such a lot id is refused, naming the lot meant.
TEST_F(LedgerTest, ALotIdDifferingOnlyInCaseFromAnExistingLotIsRefused) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 4)).status(), IsOk());
  EXPECT_THAT(env_.Apply(Env::Count(kW, kTent, "default", 4, "recount")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("lot default"), HasSubstr("lot DEFAULT does"))));
  EXPECT_THAT(env_.Apply(Env::Receive(kW, kTent, 3, "Default")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("case-sensitive")));
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), 4);
  EXPECT_EQ(env_.Balance(kW, kTent).lots_size(), 1);
  // The exact id, and a genuinely new lot, still work.
  ASSERT_THAT(env_.Apply(Env::Count(kW, kTent, "DEFAULT", 3, "one torn")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Count(kW, kTent, "B2", 2, "found in back room")).status(), IsOk());
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), 5);
}

// A count that names no lot is the count of the whole shelf. Where the stock is kept in named
// lots it cannot be taken as the DEFAULT lot's: that lot would start beside the others and the
// shelf would read double. It is refused, naming the lots, and nothing changes.
TEST_F(LedgerTest, CountWithoutLotIsRefusedWhereStockIsInNamedLots) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 30, "2024-A")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 20, "2024-B")).status(), IsOk());
  EXPECT_THAT(env_.Apply(Env::Count(kW, kTent, "", 50, "monthly count")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("SH-0001 at warehouses/420102-W001 is kept in lots "
                                       "2024-A, 2024-B"),
                             HasSubstr("count each lot"))));
  Balance b = env_.Balance(kW, kTent);
  EXPECT_EQ(b.on_hand(), 50);
  EXPECT_EQ(b.lots_size(), 2);
  // Stock in DEFAULT beside a named lot is just as ambiguous.
  ASSERT_THAT(env_.Apply(Env::Receive(kW2, kTent, 5)).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW2, kTent, 7, "B1")).status(), IsOk());
  EXPECT_THAT(env_.Apply(Env::Count(kW2, kTent, "", 12, "monthly count")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("lots B1, DEFAULT")));
  EXPECT_EQ(env_.Balance(kW2, kTent).on_hand(), 12);
}

// Where all stock is in DEFAULT, or there is none, a count without a lot counts DEFAULT as ever.
TEST_F(LedgerTest, CountWithoutLotCountsDefaultWhereNoNamedLotHoldsStock) {
  ASSERT_THAT(env_.Apply(Env::Count(kW, kTent, "", 4, "found in back room")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Count(kW, kTent, "", 3, "one torn")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW2, kTent, 6, "OLD")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Issue(kW2, kTent, 6, "OLD")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Count(kW2, kTent, "", 2, "found")).status(), IsOk());
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), 3);
  EXPECT_EQ(env_.Balance(kW2, kTent).on_hand(), 2);
}

TEST_F(LedgerTest, BatchIsAllOrNothing) {
  auto bad = env_.Batch({Env::Receive(kW, kTent, 5), Env::Issue(kW, kTent, 9)});
  EXPECT_THAT(bad.status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("operation 1")));
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), 0);
  auto good = env_.Batch({Env::Receive(kW, kTent, 5), Env::Issue(kW, kTent, 2)});
  ASSERT_THAT(good.status(), IsOk());
  EXPECT_EQ(good->results_size(), 2);
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), 3);
}

// A reply states the balances its command left, and so does the command's change entry: the
// stored record keeps them once, in the change entry, and a retry after a restart gets the
// whole first reply back from the two.
TEST_F(LedgerTest, StoredRecordLeavesOutTheBalancesItsChangeEntryStates) {
  auto first = env_.Apply(Env::Receive(kW, kTent, 7), "receipt-1");
  ASSERT_THAT(first.status(), IsOk());
  ASSERT_EQ(first->balances_size(), 1);
  EXPECT_EQ(first->balances(0).on_hand(), 7);
  const std::vector<Operation> ops = {Env::Receive(kW, kTent, 5), Env::Receive(kW2, kTent, 4)};
  auto batch = env_.Batch(ops, "batch-2");
  ASSERT_THAT(batch.status(), IsOk());
  ASSERT_EQ(batch->balances_size(), 2);
  env_.Close();
  {
    auto store = LevelStore::Open(env_.db_path(), LevelStore::Options{});
    ASSERT_THAT(store.status(), IsOk());
    for (const char* id : {"receipt-1", "batch-2"}) {
      auto raw = (*store)->Get(Cf::kRequests, id);
      ASSERT_THAT(raw.status(), IsOk());
      ASSERT_TRUE(raw->has_value()) << id;
      internal::RequestRecord record;
      ASSERT_TRUE(record.ParseFromString(**raw));
      EXPECT_TRUE(record.balances_in_change()) << id;
      if (record.method() == "ApplyBatch") {
        ApplyBatchResponse stored;
        ASSERT_TRUE(stored.ParseFromString(record.response()));
        EXPECT_EQ(stored.results_size(), 2);
        EXPECT_EQ(stored.balances_size(), 0);
      } else {
        MovementResult stored;
        ASSERT_TRUE(stored.ParseFromString(record.response()));
        EXPECT_EQ(stored.movements_size(), 1);
        EXPECT_EQ(stored.balances_size(), 0);
      }
    }
  }
  env_.Reopen();
  auto again = env_.Apply(Env::Receive(kW, kTent, 7), "receipt-1");
  ASSERT_THAT(again.status(), IsOk());
  EXPECT_EQ(again->SerializeAsString(), first->SerializeAsString());
  auto batch_again = env_.Batch(ops, "batch-2");
  ASSERT_THAT(batch_again.status(), IsOk());
  EXPECT_EQ(batch_again->SerializeAsString(), batch->SerializeAsString());
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), 12);
}

// A retried batch gets back exactly its first reply, also from the stored record after a
// restart, although the record leaves out what the batch's records share.
TEST_F(LedgerTest, RetriedBatchGetsItsFirstReplyBackAfterARestart) {
  const std::vector<Operation> ops = {Env::Receive(kW, kTent, 5), Env::Receive(kW2, kTent, 4),
                                      Env::Issue(kW, kTent, 2)};
  auto first = env_.Batch(ops, "batch-1");
  ASSERT_THAT(first.status(), IsOk());
  ASSERT_EQ(first->results(0).movements(0).actor(), "tester");
  env_.Reopen();
  auto again = env_.Batch(ops, "batch-1");
  ASSERT_THAT(again.status(), IsOk());
  EXPECT_EQ(again->SerializeAsString(), first->SerializeAsString());
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), 3);

  ListMovementsRequest by_request;
  by_request.set_request_id("batch-1");
  auto listed = env_.queries().ListMovements(by_request);
  ASSERT_THAT(listed.status(), IsOk());
  ASSERT_EQ(listed->movements_size(), 3);
  EXPECT_EQ(listed->movements(2).SerializeAsString(),
            first->results(2).movements(0).SerializeAsString());
}

// A batch that asks for it has its refusal kept under its request_id: a retry is refused the
// same way even once the cause is gone (here: the stock it lacked has arrived), also after a
// restart, so a client that went on to send its operations one by one never finds the batch
// applied on top of them. Without the flag a refusal leaves nothing behind, as before.
TEST_F(LedgerTest, KeptRefusalAnswersARetryEvenOnceItsCauseIsGone) {
  ApplyBatchRequest kept;
  kept.set_request_id("chunk-1");
  kept.set_keep_refusal(true);
  *kept.add_operations() = Env::Receive(kW2, kTent, 3);
  *kept.add_operations() = Env::Issue(kW, kTent, 5);
  ApplyBatchRequest plain = kept;
  plain.set_request_id("chunk-2");
  plain.set_keep_refusal(false);
  EXPECT_THAT(env_.Batch(kept).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("operation 1")));
  EXPECT_THAT(env_.Batch(plain).status(), StatusIs(absl::StatusCode::kFailedPrecondition));

  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 10)).status(), IsOk());
  env_.Reopen();
  EXPECT_THAT(env_.Batch(kept).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("kept from the first time request_id chunk-1 was sent")));
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), 10);
  EXPECT_EQ(env_.Balance(kW2, kTent).on_hand(), 0);
  ApplyBatchRequest other = kept;
  other.set_keep_refusal(false);
  EXPECT_THAT(env_.Batch(other).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("different request")));
  ListMovementsRequest by_request;
  by_request.set_request_id("chunk-1");
  auto listed = env_.queries().ListMovements(by_request);
  ASSERT_THAT(listed.status(), IsOk());
  EXPECT_EQ(listed->movements_size(), 0);

  ASSERT_THAT(env_.Batch(plain).status(), IsOk());  // no refusal was kept for it
  EXPECT_EQ(env_.Balance(kW, kTent).on_hand(), 5);
  EXPECT_EQ(env_.Balance(kW2, kTent).on_hand(), 3);
}

// A batch's reply is built in place on the arena of the call it answers (gRPC frees the
// arena at once when the call ends), and it is the same reply a heap-built one would be.
TEST_F(LedgerTest, BatchReplyIsBuiltOnTheCallsArena) {
  google::protobuf::Arena arena;
  const std::vector<Operation> ops = {Env::Receive(kW, kTent, 5), Env::Issue(kW, kTent, 2)};
  ApplyBatchRequest req;
  req.set_request_id("arena-1");
  for (const auto& op : ops) *req.add_operations() = op;
  CommandResult r = Wait([&](CommandCallback done) {
    env_.core().ApplyOperations("ApplyBatch", "arena-1", "tester", ops, req, done, &arena);
  });
  ASSERT_THAT(r.status, IsOk());
  ASSERT_NE(r.message, nullptr);
  EXPECT_EQ(r.message->GetArena(), &arena);
  const auto* reply = dynamic_cast<const ApplyBatchResponse*>(r.message.get());
  ASSERT_NE(reply, nullptr);
  ASSERT_EQ(reply->results_size(), 2);
  EXPECT_EQ(reply->results(1).movements(0).quantity(), -2);
  EXPECT_EQ(reply->results(1).movements(0).actor(), "tester");
  ASSERT_EQ(reply->balances_size(), 1);
  EXPECT_EQ(reply->balances(0).on_hand(), 3);
  auto replayed = env_.Batch(ops, "arena-1");  // from the stored record, on the heap
  ASSERT_THAT(replayed.status(), IsOk());
  EXPECT_EQ(replayed->SerializeAsString(), reply->SerializeAsString());
}

// A movement is stored without what its key gives back (warehouse, item, time, name) and read
// back whole; a value stored whole by an earlier build reads the same.
TEST_F(LedgerTest, StoredMovementLeavesOutWhatItsKeyGivesBack) {
  auto reply = env_.Apply(Env::Receive(kW, kWater, 8, "L1", "2027-01-01"), "rcv-1");
  ASSERT_THAT(reply.status(), IsOk());
  const Movement& first = reply->movements(0);
  env_.Close();
  std::string key, value;
  {
    auto store = LevelStore::Open(env_.db_path(), LevelStore::Options{});
    ASSERT_THAT(store.status(), IsOk());
    auto it = (*store)->NewIterator(Cf::kMovements);
    it->SeekToFirst();
    ASSERT_TRUE(it->Valid());
    key = it->key().ToString();
    value = it->value().ToString();
  }
  Movement stored;
  ASSERT_TRUE(stored.ParseFromString(value));
  EXPECT_TRUE(stored.warehouse().empty() && stored.item().empty() && stored.name().empty() &&
              !stored.has_create_time());
  EXPECT_LT(value.size(), first.ByteSizeLong() * 2 / 3);
  auto read = MovementFromRecord(key, value);
  ASSERT_THAT(read.status(), IsOk());
  EXPECT_EQ(read->SerializeAsString(), first.SerializeAsString());
  auto whole = MovementFromRecord(key, first.SerializeAsString());
  ASSERT_THAT(whole.status(), IsOk());
  EXPECT_EQ(whole->SerializeAsString(), first.SerializeAsString());
  EXPECT_THAT(MovementFromRecord("x", value).status(), StatusIs(absl::StatusCode::kDataLoss));

  // Format 2 stored movements whole: such a database needs no conversion, and the first group
  // written marks it format 3, which an older release refuses instead of misreading.
  auto set_format = [&](uint32_t format) {
    auto store = LevelStore::Open(env_.db_path(), LevelStore::Options{});
    ASSERT_THAT(store.status(), IsOk());
    internal::StoreMeta meta;
    ASSERT_TRUE(meta.ParseFromString(**(*store)->Get(Cf::kDefault, keys::kMeta)));
    EXPECT_EQ(meta.storage_format(), kStorageFormat);
    meta.set_storage_format(format);
    rocksdb::WriteBatch batch;
    ASSERT_TRUE(
        batch
            .Put((*store)->handle(Cf::kDefault), std::string(keys::kMeta), meta.SerializeAsString())
            .ok());
    ASSERT_TRUE(batch.Put((*store)->handle(Cf::kMovements), key, first.SerializeAsString()).ok());
    ASSERT_THAT((*store)->Write(batch, true), IsOk());
  };
  set_format(2);
  env_.Reopen();
  ListMovementsRequest history;
  history.set_warehouse(kW);
  auto listed = env_.queries().ListMovements(history);
  ASSERT_THAT(listed.status(), IsOk());
  ASSERT_EQ(listed->movements_size(), 1);
  EXPECT_EQ(listed->movements(0).SerializeAsString(), first.SerializeAsString());
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 1)).status(), IsOk());
  EXPECT_EQ(env_.queries().ListMovements(history)->movements_size(), 2);
  env_.Close();
  set_format(3);  // checks this build wrote its own format, then leaves 3: that opens as it is
  env_.Reopen();
}

// A batch states each balance it touched once, as it stands after the whole batch; its results
// carry the movements only. A single operation's result carries its balance.
TEST_F(LedgerTest, BatchStatesEachBalanceOnceAfterTheBatch) {
  auto batch = env_.Batch(
      {Env::Receive(kW, kTent, 5), Env::Issue(kW, kTent, 2), Env::Receive(kW, kTent, 4)});
  ASSERT_THAT(batch.status(), IsOk());
  ASSERT_EQ(batch->results_size(), 3);
  for (const auto& r : batch->results()) {
    EXPECT_EQ(r.balances_size(), 0);
    EXPECT_EQ(r.movements_size(), 1);
  }
  ASSERT_EQ(batch->balances_size(), 1);
  EXPECT_EQ(batch->balances(0).on_hand(), 7);
  auto single = env_.Apply(Env::Receive(kW, kTent, 1));
  ASSERT_THAT(single.status(), IsOk());
  ASSERT_EQ(single->balances_size(), 1);
  EXPECT_EQ(single->balances(0).on_hand(), 8);
}

// The balance in a movement's reply is the balance as stored by that movement: its sequence and
// update time are the movement's, not those of the change before it.
TEST_F(LedgerTest, ReplyStatesTheBalanceAsThisMovementStoredIt) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 5)).status(), IsOk());
  env_.clock().Advance(60'000'000);
  for (const auto& op : {Env::Receive(kW, kTent, 3), Env::Issue(kW, kTent, 2)}) {
    auto r = env_.Apply(op);
    ASSERT_THAT(r.status(), IsOk());
    ASSERT_EQ(r->balances_size(), 1);
    const Balance stored = env_.Balance(kW, kTent);
    EXPECT_EQ(r->balances(0).sequence(), r->sequence());
    EXPECT_EQ(r->balances(0).sequence(), stored.sequence());
    EXPECT_EQ(r->balances(0).update_time().seconds(), stored.update_time().seconds());
    EXPECT_EQ(r->balances(0).update_time().seconds(), r->movements(0).create_time().seconds());
  }
}

// Likewise the hold in a hold's or a release's reply is the hold as stored.
TEST_F(LedgerTest, ReplyStatesTheHoldAsThisMovementStoredIt) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 5)).status(), IsOk());
  for (const auto& op : {Env::Hold(kW, kTent, 2, "h-reply"), Env::Release("h-reply")}) {
    env_.clock().Advance(60'000'000);
    auto r = env_.Apply(op);
    ASSERT_THAT(r.status(), IsOk());
    auto stored = env_.queries().GetHold("holds/h-reply");
    ASSERT_THAT(stored.status(), IsOk());
    EXPECT_EQ(r->hold().state(), stored->state());
    EXPECT_EQ(r->hold().update_time().seconds(), stored->update_time().seconds());
    EXPECT_EQ(r->hold().update_time().seconds(), r->movements(0).create_time().seconds());
  }
}

// A database written in storage format 1 (movements keyed by warehouse only, a warehouse ×
// item index, index entries holding the code) is converted at start and then answers exactly as
// before; the conversion picks up a database it left half done. A newer format is refused.
TEST_F(LedgerTest, OlderStorageFormatIsConvertedAtStart) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 5)).status(), IsOk());
  env_.clock().Advance(1'000'000);
  ASSERT_THAT(env_.Batch({Env::Receive(kW, kWater, 8, "L1", "2027-01-01"),
                          Env::Receive(kW2, kTent, 3), Env::Hold(kW, kTent, 2, "h-1")})
                  .status(),
              IsOk());
  env_.clock().Advance(1'000'000);
  ASSERT_THAT(env_.Apply(Env::Ship("h-1", kW2)).status(), IsOk());
  auto listing = [&](ListMovementsRequest req) {
    auto resp = env_.queries().ListMovements(req);
    EXPECT_THAT(resp.status(), IsOk());
    std::vector<std::string> names;
    if (resp.ok()) {
      for (const auto& m : resp->movements()) names.push_back(m.name());
    }
    return names;
  };
  ListMovementsRequest by_warehouse, by_item, by_ref;
  by_warehouse.set_warehouse(kW);
  by_item.set_item(kTent);
  by_ref.set_reference("h-1");
  const auto warehouse_history = listing(by_warehouse);
  const auto item_history = listing(by_item);
  const auto ref_history = listing(by_ref);
  ASSERT_EQ(warehouse_history.size(), 4u);
  ASSERT_EQ(item_history.size(), 4u);
  ASSERT_EQ(ref_history.size(), 2u);
  env_.Close();

  // Back to format 1, for every other movement only (as if a conversion had stopped halfway).
  {
    auto store = LevelStore::Open(env_.db_path(), LevelStore::Options{});
    ASSERT_THAT(store.status(), IsOk());
    rocksdb::WriteBatch batch;
    auto* movements = (*store)->handle(Cf::kMovements);
    auto* index = (*store)->handle(Cf::kMovementIndex);
    int n = 0;
    auto it = (*store)->NewIterator(Cf::kMovements);
    for (it->SeekToFirst(); it->Valid(); it->Next(), ++n) {
      const std::string key = it->key().ToString();  // {code}/{item}/ + time-id
      const std::string time_id = key.substr(key.size() - keys::kTimeIdSize);
      const std::string code = key.substr(0, key.find('/'));
      // Format 1 stored movements whole.
      auto m = MovementFromRecord(key, it->value().ToString());
      ASSERT_THAT(m.status(), IsOk());
      if (n % 2 == 1) continue;
      ASSERT_TRUE(batch.Delete(movements, key).ok());
      ASSERT_TRUE(batch.Put(movements, code + "/" + time_id, m->SerializeAsString()).ok());
      ASSERT_TRUE(batch.Put(index, "w" + code + "/" + m->item() + "/" + time_id, "").ok());
      ASSERT_TRUE(batch.Put(index, keys::ByItem(m->item()) + time_id, code).ok());
      if (!m->reference().empty()) {
        ASSERT_TRUE(batch.Put(index, keys::ByReference(m->reference()) + time_id, code).ok());
      }
    }
    auto raw = (*store)->Get(Cf::kDefault, keys::kMeta);
    ASSERT_TRUE(raw.ok() && raw->has_value());
    internal::StoreMeta meta;
    ASSERT_TRUE(meta.ParseFromString(**raw));
    EXPECT_EQ(meta.storage_format(), kStorageFormat);  // what this build writes
    meta.set_storage_format(1);
    ASSERT_TRUE(
        batch
            .Put((*store)->handle(Cf::kDefault), std::string(keys::kMeta), meta.SerializeAsString())
            .ok());
    ASSERT_THAT((*store)->Write(batch, true), IsOk());
  }
  env_.Reopen();
  EXPECT_EQ(listing(by_warehouse), warehouse_history);
  EXPECT_EQ(listing(by_item), item_history);
  EXPECT_EQ(listing(by_ref), ref_history);
  GetBalanceRequest as_of;
  as_of.set_warehouse(kW);
  as_of.set_item(kTent);
  *as_of.mutable_as_of_time() = ToTimestamp(env_.clock().NowMicros() - 1'500'000);
  EXPECT_EQ(env_.queries().GetBalance(as_of)->on_hand(), 5);
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 1)).status(), IsOk());
  EXPECT_EQ(listing(by_warehouse).size(), 5u);
  env_.Close();
  {
    auto store = LevelStore::Open(env_.db_path(), LevelStore::Options{});
    ASSERT_THAT(store.status(), IsOk());
    auto it = (*store)->NewIterator(Cf::kMovementIndex);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      EXPECT_NE(it->key().ToString()[0], 'w') << "a warehouse × item entry was left";
    }
    auto raw = (*store)->Get(Cf::kDefault, keys::kMeta);
    internal::StoreMeta meta;
    ASSERT_TRUE(meta.ParseFromString(**raw));
    EXPECT_EQ(meta.storage_format(), kStorageFormat);
    meta.set_storage_format(kStorageFormat + 1);  // as a newer release would leave it
    rocksdb::WriteBatch batch;
    ASSERT_TRUE(
        batch
            .Put((*store)->handle(Cf::kDefault), std::string(keys::kMeta), meta.SerializeAsString())
            .ok());
    ASSERT_THAT((*store)->Write(batch, true), IsOk());
  }
  auto newer = LevelCore::Open(env_.db_path(), &Reference(), Hosting(env_.level(), env_.prefixes()),
                               &env_.clock(), {});
  EXPECT_THAT(newer.status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("storage format 5")));
}

TEST_F(LedgerTest, RestartKeepsBalancesMovementsTotalsAndRequestIds) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kWater, 10, "L", "2027-01-01"), "r1").status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Hold(kW, kWater, 4, "h1"), "r2").status(), IsOk());
  const uint64_t seq = env_.core().last_sequence();
  EXPECT_EQ(env_.core().warehouse_count(), 2);
  env_.Reopen();
  EXPECT_EQ(env_.core().last_sequence(), seq);
  EXPECT_EQ(env_.core().warehouse_count(), 2);
  Balance b = env_.Balance(kW, kWater);
  EXPECT_EQ(b.on_hand(), 10);
  EXPECT_EQ(b.held(), 4);
  EXPECT_THAT(env_.Apply(Env::Receive(kW, kWater, 10, "L", "2027-01-01"), "r1").status(), IsOk());
  EXPECT_EQ(env_.Balance(kW, kWater).on_hand(), 10);
  auto totals = env_.core().Totals();
  ASSERT_EQ(totals.size(), 1u);
  EXPECT_EQ(totals[0].received(), 10);
  EXPECT_EQ(totals[0].held(), 4);
  auto r = env_.Apply(Env::Receive(kW, kTent, 1));
  ASSERT_THAT(r.status(), IsOk());
  EXPECT_EQ(r->sequence(), seq + 1);
}

TEST_F(LedgerTest, SuspendedWarehouseTakesNoStockButIssues) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 5)).status(), IsOk());
  UpdateWarehouseRequest req;
  req.set_request_id("upd-1");
  req.set_actor("tester");
  req.mutable_warehouse()->set_name(kW);
  req.mutable_warehouse()->set_status(WAREHOUSE_STATUS_SUSPENDED);
  req.mutable_update_mask()->add_paths("status");
  CommandResult r = Wait([&](CommandCallback done) { env_.core().UpdateWarehouse(req, done); });
  ASSERT_THAT(r.status, IsOk());
  EXPECT_THAT(env_.Apply(Env::Receive(kW, kTent, 1)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("SUSPENDED")));
  EXPECT_THAT(env_.Apply(Env::Issue(kW, kTent, 1)).status(), IsOk());
}

}  // namespace
}  // namespace stockpile::level::testing
