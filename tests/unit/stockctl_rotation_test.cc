#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tools/stockctl/rotation.h"

namespace stockpile::stockctl {
namespace {

using ::testing::HasSubstr;

v1::LotBalance* AddLot(v1::Balance& b, const std::string& lot, const std::string& expiry,
                       int64_t on_hand, int64_t held = 0) {
  v1::LotBalance* l = b.add_lots();
  l->set_lot(lot);
  l->set_expiry_date(expiry);
  l->set_on_hand(on_hand);
  l->set_held(held);
  l->set_available(on_hand - held);
  return l;
}

// Water with three lots in the service's issue order: an expired one fully held for a transfer,
// one expiring next year, and one far out.
v1::Balance Water() {
  v1::Balance b;
  b.set_warehouse("warehouses/420102-W001");
  b.set_item("FW-0001");
  AddLot(b, "L2019", "2020-01-31", 40, /*held=*/40);
  AddLot(b, "L2025", "2027-06-30", 120, /*held=*/20);
  AddLot(b, "L2030", "2031-06-30", 300);
  return b;
}

Rotation WaterRotation() {
  Rotation r;
  r.warehouse = "warehouses/420102-W001";
  r.item = "FW-0001";
  r.new_lot = "L2032";
  r.new_expiry = "2032-06-30";
  return r;
}

TEST(PlanRotationTest, TakesTheEarliestExpiringLotWithStockFreeAndAllOfItNotHeld) {
  auto request = PlanRotation(WaterRotation(), Water());
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_EQ(request->operations_size(), 2);
  const v1::IssueOp& out = request->operations(0).issue();
  EXPECT_EQ(out.warehouse(), "warehouses/420102-W001");
  EXPECT_EQ(out.item(), "FW-0001");
  EXPECT_EQ(out.lot(), "L2025");  // L2019 is all held
  EXPECT_EQ(out.quantity(), 100);
  EXPECT_EQ(out.note(), "rotation out, replaced by lot L2032");
  const v1::ReceiveOp& in = request->operations(1).receive();
  EXPECT_EQ(in.lot(), "L2032");
  EXPECT_EQ(in.expiry_date(), "2032-06-30");
  EXPECT_EQ(in.quantity(), 100);
  EXPECT_EQ(in.note(), "rotation in, replaces lot L2025");
}

TEST(PlanRotationTest, AnExpiredLotWithStockFreeGoesFirst) {
  v1::Balance b = Water();
  b.mutable_lots(0)->set_held(0);
  b.mutable_lots(0)->set_available(40);
  auto request = PlanRotation(WaterRotation(), b);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->operations(0).issue().lot(), "L2019");
  EXPECT_EQ(request->operations(0).issue().quantity(), 40);
}

TEST(PlanRotationTest, NamedLotQuantitiesAndNotesAreTakenAsGiven) {
  Rotation r = WaterRotation();
  r.lot = "L2030";
  r.quantity = 50;
  r.new_quantity = 48;
  r.note = "sold to 江岸区人民医院";
  r.new_note = "PO 2026-117";
  auto request = PlanRotation(r, Water());
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->operations(0).issue().lot(), "L2030");
  EXPECT_EQ(request->operations(0).issue().quantity(), 50);
  EXPECT_EQ(request->operations(0).issue().note(),
            "rotation out, replaced by lot L2032: sold to 江岸区人民医院");
  EXPECT_EQ(request->operations(1).receive().quantity(), 48);
  EXPECT_EQ(request->operations(1).receive().note(),
            "rotation in, replaces lot L2030: PO 2026-117");
}

TEST(PlanRotationTest, ANamedLotTheBalanceLacksIsNotFound) {
  Rotation r = WaterRotation();
  r.lot = "L1999";
  auto request = PlanRotation(r, Water());
  EXPECT_EQ(request.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(request.status().message(),
              HasSubstr("lot L1999 of FW-0001 at warehouses/420102-W001 does not exist"));
}

TEST(PlanRotationTest, NothingFreeToRotateIsRefusedAndSaysWhy) {
  Rotation r = WaterRotation();
  r.lot = "L2019";  // all of it held
  auto held = PlanRotation(r, Water());
  EXPECT_EQ(held.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(held.status().message(), HasSubstr("nothing to rotate: lot L2019 of FW-0001"));

  v1::Balance empty;
  auto none = PlanRotation(WaterRotation(), empty);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(none.status().message(),
              HasSubstr("nothing to rotate: FW-0001 at warehouses/420102-W001 has no stock"));
}

TEST(PlanRotationTest, AQuantityGivenForAFullyHeldLotIsLeftToTheServerToJudge) {
  Rotation r = WaterRotation();
  r.lot = "L2019";
  r.quantity = 5;
  auto request = PlanRotation(r, Water());
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->operations(0).issue().quantity(), 5);
}

// The first attempt took all 100 free of L2025; since then L2030 is the earliest with stock
// free, but the retry must name L2025 and 100 again to be the same request.
TEST(RecallFirstAttemptTest, ARetrySendsTheBatchTheFirstAttemptSent) {
  v1::ListMovementsResponse first;
  v1::Movement* out = first.add_movements();
  out->set_type(v1::MOVEMENT_TYPE_ISSUE);
  out->set_lot("L2025");
  out->set_quantity(-100);
  v1::Movement* in = first.add_movements();
  in->set_type(v1::MOVEMENT_TYPE_RECEIVE);
  in->set_lot("L2032");
  in->set_quantity(100);
  v1::Balance after = Water();
  after.mutable_lots(1)->set_on_hand(20);
  after.mutable_lots(1)->set_available(0);

  Rotation retry = WaterRotation();
  RecallFirstAttempt(first, retry);
  auto again = PlanRotation(retry, after);
  ASSERT_TRUE(again.ok()) << again.status();
  auto original = PlanRotation(WaterRotation(), Water());
  ASSERT_TRUE(original.ok()) << original.status();
  EXPECT_EQ(again->SerializeAsString(), original->SerializeAsString());
}

TEST(RecallFirstAttemptTest, FlagsGivenAndAnAttemptThatNeverLandedStayAsTheyAre) {
  Rotation r = WaterRotation();
  r.lot = "L2030";
  r.quantity = 7;
  v1::ListMovementsResponse first;
  v1::Movement* out = first.add_movements();
  out->set_type(v1::MOVEMENT_TYPE_ISSUE);
  out->set_lot("L2025");
  out->set_quantity(-100);
  RecallFirstAttempt(first, r);
  EXPECT_EQ(r.lot, "L2030");  // a changed command line is the service's to refuse
  EXPECT_EQ(r.quantity, 7);

  Rotation open = WaterRotation();
  RecallFirstAttempt(v1::ListMovementsResponse(), open);
  EXPECT_EQ(open.lot, "");
  EXPECT_EQ(open.quantity, 0);
}

TEST(DescribeRotationTest, SaysWhatLeftAndWhatCameIn) {
  v1::ApplyBatchResponse response;
  v1::Movement* out = response.add_results()->add_movements();
  out->set_lot("L2025");
  out->set_expiry_date("2027-06-30");
  out->set_quantity(-100);
  v1::Movement* in = response.add_results()->add_movements();
  in->set_lot("DEFAULT");
  in->set_quantity(100);
  EXPECT_EQ(DescribeRotation(response),
            "rotated out 100 of lot L2025 (expires 2027-06-30), in 100 of lot DEFAULT\n");
}

}  // namespace
}  // namespace stockpile::stockctl
