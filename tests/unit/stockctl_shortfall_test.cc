#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tools/stockctl/shortfall.h"

namespace stockpile::stockctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::TransferLeg* AddLeg(v1::Transfer& t, const std::string& source, v1::LegState state) {
  v1::TransferLeg* leg = t.add_legs();
  leg->mutable_plan()->set_source_warehouse(source);
  leg->set_state(state);
  return leg;
}

void AddShort(v1::Transfer& t, const std::string& item, int64_t shortfall) {
  v1::LineOutcome* line = t.add_short_lines();
  line->set_item(item);
  line->set_requested(shortfall + 5);
  line->set_shortfall(shortfall);
}

// Went out for tents and quilts; a refused hold was re-planned (REPLACED), two legs were let go
// later (RELEASED: their sources may be fine, so they stay in play), one arrived.
v1::Transfer ShortTransfer() {
  v1::Transfer t;
  t.set_id("T17");
  t.set_state(v1::TRANSFER_STATE_RECEIVED);
  t.set_destination_warehouse("warehouses/420103-W001");
  t.set_priority(v1::PRIORITY_URGENT);
  // A transfer's plan says the same (the coordinator copies them from it).
  t.mutable_plan()->set_destination_warehouse("warehouses/420103-W001");
  t.mutable_plan()->set_destination_region("420103");
  t.mutable_plan()->set_priority(v1::PRIORITY_URGENT);
  t.mutable_plan()->add_excluded_sources("warehouses/420111-W001");
  t.mutable_plan()->set_min_leg_quantity(20);
  AddLeg(t, "warehouses/420102-W001", v1::LEG_STATE_REPLACED);
  AddLeg(t, "warehouses/420104-W001", v1::LEG_STATE_RELEASED);
  AddLeg(t, "warehouses/420105-W001", v1::LEG_STATE_RELEASED);
  AddLeg(t, "warehouses/420106-W001", v1::LEG_STATE_DELIVERED);
  AddShort(t, "SH-0001", 30);
  AddShort(t, "SH-0003", 12);
  AddShort(t, "SH-0001", 8);
  return t;
}

TEST(PlanRequestForShortfallTest, AsksForTheShortLinesPerItemToTheSameDestinationAndPriority) {
  auto request = PlanRequestForShortfall(ShortTransfer());
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->destination_warehouse(), "warehouses/420103-W001");
  EXPECT_EQ(request->priority(), v1::PRIORITY_URGENT);
  EXPECT_EQ(request->min_leg_quantity(), 20);  // the old transfer's minimum leg
  ASSERT_EQ(request->lines_size(), 2);
  EXPECT_EQ(request->lines(0).item(), "SH-0001");
  EXPECT_EQ(request->lines(0).quantity(), 38);
  EXPECT_EQ(request->lines(1).item(), "SH-0003");
  EXPECT_EQ(request->lines(1).quantity(), 12);
}

TEST(PlanRequestForShortfallTest, LeavesOutExcludedSourcesAndThoseThatRefusedTheirHold) {
  auto request = PlanRequestForShortfall(ShortTransfer());
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_THAT(request->exclude_sources(),
              ElementsAre("warehouses/420111-W001", "warehouses/420102-W001"));
}

TEST(PlanRequestForShortfallTest, ATransferThatFellShortOfNothingIsRefused) {
  v1::Transfer t = ShortTransfer();
  t.clear_short_lines();
  AddShort(t, "SH-0001", 0);
  auto request = PlanRequestForShortfall(t);
  EXPECT_EQ(request.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(request.status().message(), HasSubstr("transfer T17 fell short of nothing"));
}

}  // namespace
}  // namespace stockpile::stockctl
