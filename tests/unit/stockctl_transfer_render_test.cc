// stockctl transfer plan: what the plan table says beyond its legs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tools/stockctl/output/transfer_render.h"

namespace stockpile::stockctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::AllocationPlan PlanFromWuchang() {
  v1::AllocationPlan plan;
  plan.set_destination_region("420102");
  plan.set_destination_warehouse("warehouses/420102-W001");
  plan.set_priority(v1::PRIORITY_URGENT);
  v1::PlanLeg* leg = plan.add_legs();
  leg->set_source_warehouse("warehouses/420106-W001");
  leg->set_source_region("420106");
  leg->set_item("SH-0001");
  leg->set_quantity(10);
  v1::LineOutcome* outcome = plan.add_outcomes();
  outcome->set_item("SH-0001");
  outcome->set_requested(15);
  outcome->set_planned(10);
  outcome->set_shortfall(5);
  return plan;
}

TEST(RenderPlanTest, NamesTheInstancesItCouldNotPlanFromAndWhy) {
  v1::AllocationPlan plan = PlanFromWuchang();
  plan.add_unreachable_sources("county-jianghan (county 420103): not answering for 90 s");
  EXPECT_THAT(RenderPlan(plan),
              HasSubstr("\nnot planned from (the catalogue cannot reach them now):\n"
                        "  county-jianghan (county 420103): not answering for 90 s\n"));
}

TEST(RenderPlanTest, SaysNothingOfReachWhenEverySourceAnswers) {
  EXPECT_THAT(RenderPlan(PlanFromWuchang()), Not(HasSubstr("not planned from")));
}

}  // namespace
}  // namespace stockpile::stockctl
