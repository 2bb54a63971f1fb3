// stockctl transfer plan: what the plan table says beyond its legs; transfer show: a leg's
// notes; catalogue status: whether the catalogue holds all of a source's stock.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tools/stockctl/output/catalogue_render.h"
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
              HasSubstr("\nnot planned from (out of reach, or their stock not all streamed yet):\n"
                        "  county-jianghan (county 420103): not answering for 90 s\n"));
}

TEST(RenderPlanTest, SaysNothingOfReachWhenEverySourceAnswers) {
  EXPECT_THAT(RenderPlan(PlanFromWuchang()), Not(HasSubstr("not planned from")));
}

// The minimum leg a transfer was planned with shows in the plan and in `transfer show`, and
// nothing is said of one when there was none.
TEST(RenderPlanTest, ShowsTheMinimumLegOnlyWhenOneWasAsked) {
  v1::AllocationPlan plan = PlanFromWuchang();
  EXPECT_THAT(RenderPlan(plan), Not(HasSubstr("min leg")));
  plan.set_min_leg_quantity(20);
  EXPECT_THAT(RenderPlan(plan), HasSubstr("\nmin leg:     20 (smaller only to fill a line)\n"));
  v1::Transfer t;
  t.set_name("transfers/T17");
  EXPECT_THAT(RenderTransfer(t), Not(HasSubstr("min leg")));
  *t.mutable_plan() = plan;
  EXPECT_THAT(RenderTransfer(t), HasSubstr("\nmin leg:     20\n"));
}

// `transfer show` names the approver's region scope, which bounds re-plans after approval.
TEST(RenderTransferTest, ShowsTheApproversScopeWhenItHadOne) {
  v1::Transfer t;
  t.set_name("transfers/T18");
  EXPECT_THAT(RenderTransfer(t), HasSubstr("\napproved by: -\n"));
  t.set_approved_by("li.wei");
  EXPECT_THAT(RenderTransfer(t), HasSubstr("\napproved by: li.wei\n"));
  t.set_approver_scope("4201");
  EXPECT_THAT(RenderTransfer(t),
              HasSubstr("\napproved by: li.wei (scope 4201: re-plans take sources only there)\n"));
}

// A source whose first stream has reached sequence 1,200 of the 50,000 it had when it began
// reads "partial"; one caught up with it reads "all", however far its head has moved on since.
TEST(RenderTransferTest, SaysWhichRoundOfReplanningMadeALeg) {
  v1::Transfer t;
  t.set_name("transfers/T1");
  t.set_id("T1");
  for (int round : {0, 1, 2}) {
    v1::TransferLeg* leg = t.add_legs();
    leg->set_index(round);
    leg->mutable_plan()->set_source_warehouse(absl::StrCat("warehouses/420106-W00", round + 1));
    leg->mutable_plan()->set_item("SH-0001");
    leg->mutable_plan()->set_quantity(5);
    leg->set_state(round < 2 ? v1::LEG_STATE_REPLACED : v1::LEG_STATE_HELD);
    leg->set_replanned(round > 0);
    leg->set_replan_round(round);
  }
  auto row_of = [out = RenderTransfer(t)](const std::string& source) {
    for (absl::string_view line : absl::StrSplit(out, '\n')) {
      if (absl::StrContains(line, source)) return std::string(line);
    }
    return std::string();
  };
  EXPECT_THAT(row_of("420106-W001"), Not(HasSubstr("re-planned")));
  EXPECT_THAT(row_of("420106-W002"), HasSubstr("re-planned"));
  EXPECT_THAT(row_of("420106-W002"), Not(HasSubstr("round")));
  EXPECT_THAT(row_of("420106-W003"), HasSubstr("re-planned (round 2)"));
}

TEST(RenderReplicationStatusTest, SaysWhetherTheCatalogueHoldsAllOfASourcesStock) {
  google::protobuf::RepeatedPtrField<v1::ReplicationSource> sources;
  v1::ReplicationSource* streaming = sources.Add();
  streaming->set_instance_id("county-jianghan");
  streaming->set_applied_sequence(1200);
  streaming->set_head_sequence(50000);
  streaming->set_resync_until_sequence(50000);
  v1::ReplicationSource* caught_up = sources.Add();
  caught_up->set_instance_id("county-wuchang");
  caught_up->set_applied_sequence(700);
  caught_up->set_head_sequence(900);
  caught_up->set_resync_until_sequence(650);
  const std::string table = RenderReplicationStatus(sources);
  EXPECT_THAT(table, HasSubstr(" STOCK "));
  EXPECT_THAT(table, ::testing::ContainsRegex("county-jianghan .* partial "));
  EXPECT_THAT(table, ::testing::ContainsRegex("county-wuchang .* all "));
}

}  // namespace
}  // namespace stockpile::stockctl
