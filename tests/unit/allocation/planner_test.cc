#include "services/catalogue/allocation/planner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "services/common/validation.h"
#include "tests/testutil/process.h"
#include "tests/testutil/reference_data.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::catalogue::allocation {
namespace {

using namespace stockpile::v1;  // NOLINT
using ::testing::ElementsAre;

constexpr char kVillage[] = "420102002003";  // 保成社区, 大智街道, 江岸区, 武汉
const int32_t kToday = *common::ParseDate("d", "2026-01-01");

const common::ReferenceData& Reference() { return testing::SharedReferenceData("420102"); }

class PlannerTest : public ::testing::Test {
 protected:
  PlannerTest() : snapshot_(&Reference()), planner_(&Reference()) {}

  void Stock(const std::string& code, const std::string& item, int64_t qty,
             const std::string& expiry = "", const std::string& lot = "DEFAULT") {
    LotStock l{lot, kNoExpiry, qty};
    if (!expiry.empty()) l.expiry_day = *common::ParseDate("d", expiry);
    extra_lots_[code + item].push_back(l);
    snapshot_.SetLots(code, item, extra_lots_[code + item]);
  }

  static PlanAllocationRequest Request(const std::string& item, int64_t qty,
                                       Priority priority = PRIORITY_ROUTINE,
                                       std::vector<std::string> exclude = {}, int64_t min_leg = 0) {
    PlanAllocationRequest req;
    req.set_destination_region(kVillage);
    req.set_priority(priority);
    req.set_min_leg_quantity(min_leg);
    auto* line = req.add_lines();
    line->set_item(item);
    line->set_quantity(qty);
    for (auto& e : exclude) req.add_exclude_sources(e);
    return req;
  }

  AllocationPlan PlanFor(const std::string& item, int64_t qty, Priority priority = PRIORITY_ROUTINE,
                         std::vector<std::string> exclude = {}, int64_t min_leg = 0) {
    auto plan =
        planner_.Plan(Request(item, qty, priority, std::move(exclude), min_leg), snapshot_, kToday);
    EXPECT_TRUE(plan.ok()) << plan.status();
    return plan.ok() ? *plan : AllocationPlan{};
  }

  static std::vector<std::string> Sources(const AllocationPlan& p) {
    std::vector<std::string> out;
    for (const auto& leg : p.legs()) out.push_back(leg.source_warehouse());
    return out;
  }

  void StockEveryTier(const std::string& item) {
    for (const char* code : {"110101-W001", "430102-W001", "410102-W001", "420202-W001",
                             "4202-W001", "420115-W001", "420106-W001", "420103-W001",
                             "420102003-W001", "420102002004-W001", "420102002003-W009"}) {
      Stock(code, item, 10);
    }
  }

  std::map<std::string, std::vector<LotStock>> extra_lots_;
  StockSnapshot snapshot_;
  Planner planner_;
};

TEST_F(PlannerTest, TakesTierByTierThenNearestFirst) {
  StockEveryTier("SH-0001");
  AllocationPlan p = PlanFor("SH-0001", 25);
  EXPECT_THAT(Sources(p), ElementsAre("warehouses/420102002004-W001", "warehouses/420102003-W001",
                                      "warehouses/420103-W001"));
  EXPECT_EQ(p.legs(0).tier(), SOURCE_TIER_SAME_TOWNSHIP);
  EXPECT_EQ(p.legs(1).tier(), SOURCE_TIER_SAME_COUNTY);
  EXPECT_EQ(p.legs(2).tier(), SOURCE_TIER_SAME_CITY);
  EXPECT_EQ(p.legs(2).quantity(), 5);
  EXPECT_NEAR(p.legs(2).distance_km(), 3.7, 0.5);  // 江岸 → 江汉 county seats
  EXPECT_EQ(p.outcomes(0).shortfall(), 0);
}

TEST_F(PlannerTest, VisitsEveryTierInOrderAndNeverTheDestinationItself) {
  StockEveryTier("SH-0001");
  AllocationPlan p = PlanFor("SH-0001", 1000);
  ASSERT_EQ(p.legs_size(), 10);  // every source but the destination region's own warehouse
  for (int i = 1; i < p.legs_size(); ++i) {
    const auto &a = p.legs(i - 1), &b = p.legs(i);
    EXPECT_LE(a.tier(), b.tier());
    if (a.tier() == b.tier()) {
      EXPECT_LE(a.distance_km(), b.distance_km());
    }
  }
  EXPECT_THAT(Sources(p), ::testing::Not(::testing::Contains("warehouses/420102002003-W009")));
  EXPECT_EQ(p.legs(3).source_warehouse(), "warehouses/420106-W001");
  EXPECT_EQ(p.legs(4).source_warehouse(), "warehouses/420115-W001");
  EXPECT_EQ(p.legs(5).tier(), SOURCE_TIER_SAME_PROVINCE);
  EXPECT_EQ(p.legs(7).tier(), SOURCE_TIER_OTHER_PROVINCE);
  EXPECT_EQ(p.legs(9).source_warehouse(), "warehouses/110101-W001");  // Beijing is farthest
  EXPECT_EQ(p.outcomes(0).planned(), 100);
  EXPECT_EQ(p.outcomes(0).shortfall(), 900);
}

TEST_F(PlannerTest, OtherProvincesAreNearestFirstAcrossProvinces) {
  // From 武汉, 江西 (36)'s centroid (~343 km) and 安徽 (34)'s (~322 km) are nearer than 湖南
  // (43)'s (~408 km), but 临湘 on 湖南's border is nearer than any of these, and 江西's far
  // south (全南) is farther than all of them.
  Stock("360729-W001", "SH-0001", 10);  // 全南, 江西: ~652 km
  Stock("430682-W001", "SH-0001", 10);  // 临湘, 湖南: ~150 km
  Stock("360481-W001", "SH-0001", 10);  // 瑞昌, 江西: ~167 km
  Stock("340826-W001", "SH-0001", 10);  // 宿松, 安徽: ~182 km
  EXPECT_THAT(Sources(PlanFor("SH-0001", 10)), ElementsAre("warehouses/430682-W001"));
  AllocationPlan p = PlanFor("SH-0001", 40);
  ASSERT_EQ(p.legs_size(), 4);
  EXPECT_THAT(Sources(p), ElementsAre("warehouses/430682-W001", "warehouses/360481-W001",
                                      "warehouses/340826-W001", "warehouses/360729-W001"));
  for (int i = 0; i < p.legs_size(); ++i) {
    EXPECT_EQ(p.legs(i).tier(), SOURCE_TIER_OTHER_PROVINCE);
    if (i > 0) {
      EXPECT_LE(p.legs(i - 1).distance_km(), p.legs(i).distance_km());
    }
  }
  EXPECT_NEAR(p.legs(0).distance_km(), 150, 5);
  EXPECT_NEAR(p.legs(3).distance_km(), 652, 5);
}

TEST_F(PlannerTest, TierOfFollowsCodePrefixes) {
  EXPECT_EQ(TierOf("420102002003", "420102002"), SOURCE_TIER_SAME_TOWNSHIP);
  EXPECT_EQ(TierOf("420102002003", "420102"), SOURCE_TIER_SAME_COUNTY);
  EXPECT_EQ(TierOf("420102", "4201"), SOURCE_TIER_SAME_CITY);
  EXPECT_EQ(TierOf("420102", "42"), SOURCE_TIER_SAME_PROVINCE);
  EXPECT_EQ(TierOf("420102", "430102"), SOURCE_TIER_OTHER_PROVINCE);
}

TEST_F(PlannerTest, RoutineLeavesTheFloorInPlace) {
  Stock("420103-W001", "SH-0001", 50);
  snapshot_.SetFloor("420103-W001", "SH-0001", 30);
  AllocationPlan p = PlanFor("SH-0001", 40, PRIORITY_URGENT);
  ASSERT_EQ(p.legs_size(), 1);
  EXPECT_EQ(p.legs(0).quantity(), 20);
  EXPECT_FALSE(p.legs(0).below_floor());
  EXPECT_EQ(p.outcomes(0).shortfall(), 20);
}

TEST_F(PlannerTest, CriticalGoesBelowTheFloorAndSaysSo) {
  Stock("420103-W001", "SH-0001", 50);
  snapshot_.SetFloor("420103-W001", "SH-0001", 30);
  Stock("420106-W001", "SH-0001", 50);
  snapshot_.SetFloor("420106-W001", "SH-0001", 10);
  AllocationPlan p = PlanFor("SH-0001", 60, PRIORITY_CRITICAL);
  ASSERT_EQ(p.legs_size(), 2);
  EXPECT_EQ(p.legs(0).quantity(), 50);
  EXPECT_TRUE(p.legs(0).below_floor());
  EXPECT_EQ(p.legs(1).quantity(), 10);
  EXPECT_FALSE(p.legs(1).below_floor());
}

TEST_F(PlannerTest, SourceWithNothingAboveTheFloorIsSkipped) {
  Stock("420103-W001", "SH-0001", 30);
  snapshot_.SetFloor("420103-W001", "SH-0001", 30);
  Stock("420106-W001", "SH-0001", 5);
  AllocationPlan p = PlanFor("SH-0001", 5);
  EXPECT_THAT(Sources(p), ElementsAre("warehouses/420106-W001"));
}

TEST_F(PlannerTest, SplitsOneLineOverSeveralSources) {
  Stock("420103-W001", "SH-0001", 7);
  Stock("420106-W001", "SH-0001", 7);
  Stock("420115-W001", "SH-0001", 7);
  AllocationPlan p = PlanFor("SH-0001", 18);
  ASSERT_EQ(p.legs_size(), 3);
  EXPECT_EQ(p.legs(0).quantity() + p.legs(1).quantity() + p.legs(2).quantity(), 18);
  EXPECT_EQ(p.legs(2).quantity(), 4);
}

TEST_F(PlannerTest, LotsLeaveEarliestExpiryFirstAndExpiredNever) {
  // FD-0001-like expiring item: pick one with a shelf life from the catalogue.
  std::string item;
  for (const auto& i : Reference().items()) {
    if (i.expires()) {
      item = i.code;
      break;
    }
  }
  ASSERT_FALSE(item.empty());
  Stock("420103-W001", item, 10, "2027-06-01", "LATE");
  Stock("420103-W001", item, 10, "2026-03-01", "EARLY");
  Stock("420103-W001", item, 100, "2025-12-31", "EXPIRED");  // the day before today
  Stock("420103-W001", item, 10, "2026-01-01", "LASTDAY");   // usable through today
  AllocationPlan p = PlanFor(item, 25);
  ASSERT_EQ(p.legs_size(), 1);
  const auto& lots = p.legs(0).lots();
  ASSERT_EQ(lots.size(), 3);
  EXPECT_EQ(lots[0].lot(), "LASTDAY");
  EXPECT_EQ(lots[1].lot(), "EARLY");
  EXPECT_EQ(lots[1].expiry_date(), "2026-03-01");
  EXPECT_EQ(lots[2].lot(), "LATE");
  EXPECT_EQ(lots[2].quantity(), 5);
  EXPECT_EQ(PlanFor(item, 1000).outcomes(0).planned(), 30);  // never the expired 100
}

// A re-planned transfer's own legs already take part of a source's stock: per lot, what is taken
// is gone before the floor is applied, and lots the legs use up are skipped.
TEST_F(PlannerTest, StockTakenIsSubtractedPerLotBeforeTheFloor) {
  Stock("420103-W001", "SH-0001", 10, "", "A");
  Stock("420103-W001", "SH-0001", 30, "", "B");
  snapshot_.SetFloor("420103-W001", "SH-0001", 15);
  Stock("420106-W001", "SH-0001", 50);
  StockTaken taken;
  taken.Add("SH-0001", "420103-W001", "A", 10);
  taken.Add("SH-0001", "420103-W001", "B", 5);
  taken.Add("SH-0002", "420106-W001", "DEFAULT", 50);  // another item: no effect here
  auto p = planner_.Plan(Request("SH-0001", 20), snapshot_, kToday, {}, taken);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->legs_size(), 2);
  EXPECT_EQ(p->legs(0).source_warehouse(), "warehouses/420103-W001");
  EXPECT_EQ(p->legs(0).quantity(), 10);  // 40 - 15 taken - floor 15
  ASSERT_EQ(p->legs(0).lots_size(), 1);
  EXPECT_EQ(p->legs(0).lots(0).lot(), "B");
  EXPECT_EQ(p->legs(1).quantity(), 10);
  EXPECT_EQ(PlanFor("SH-0001", 20).legs(0).quantity(), 20);  // without it: 25 above the floor
}

// Every township and village of a county sits at its seat: a county's own request finds dozens
// of equally near village stores. The ones that can give more go first, so fewer legs (trucks)
// cover the line; what a routine request can take is what lies above the floor.
TEST_F(PlannerTest, AmongEquallyNearSourcesTheOneThatGivesMoreGoesFirst) {
  Stock("420103-W001", "SH-0001", 3);  // all three at 江汉's seat
  Stock("420103-W002", "SH-0001", 60);
  snapshot_.SetFloor("420103-W002", "SH-0001", 45);  // 15 above its floor
  Stock("420103-W003", "SH-0001", 40);
  AllocationPlan routine = PlanFor("SH-0001", 50);
  EXPECT_THAT(Sources(routine), ElementsAre("warehouses/420103-W003", "warehouses/420103-W002"));
  EXPECT_EQ(routine.legs(0).quantity(), 40);
  EXPECT_EQ(routine.legs(1).quantity(), 10);
  AllocationPlan critical = PlanFor("SH-0001", 50, PRIORITY_CRITICAL);  // down to zero
  EXPECT_THAT(Sources(critical), ElementsAre("warehouses/420103-W002"));
  EXPECT_TRUE(critical.legs(0).below_floor());
  // A nearer source still goes first, however little it holds (a township of the village's own
  // county: the tier before the city's).
  Stock("420102003-W001", "SH-0001", 2);
  EXPECT_EQ(PlanFor("SH-0001", 50).legs(0).source_warehouse(), "warehouses/420102003-W001");
}

TEST_F(PlannerTest, SamePlanForSameInputsAndTiesBrokenByCode) {
  Stock("420103-W002", "SH-0001", 5);  // same county seat and same stock: only the code differs
  Stock("420103-W001", "SH-0001", 5);
  StockEveryTier("SH-0002");
  AllocationPlan a = PlanFor("SH-0001", 7);
  EXPECT_THAT(Sources(a), ElementsAre("warehouses/420103-W001", "warehouses/420103-W002"));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(PlanFor("SH-0001", 7).SerializeAsString(), a.SerializeAsString());
    EXPECT_EQ(PlanFor("SH-0002", 500).SerializeAsString(),
              PlanFor("SH-0002", 500).SerializeAsString());
  }
}

// With a minimum leg, the township's 4 and the county's 3 are passed over for 江汉's 40 (a
// truck is not sent for 3 tents); what is left of a line may be smaller, so the last leg is.
TEST_F(PlannerTest, AMinimumLegPassesOverSmallSourcesUnlessTheyFillTheLine) {
  Stock("420102002004-W001", "SH-0001", 4);  // same township
  Stock("420102003-W001", "SH-0001", 3);     // same county
  Stock("420103-W001", "SH-0001", 40);       // same city
  Stock("420106-W001", "SH-0001", 40);       // same city, a little farther
  AllocationPlan every = PlanFor("SH-0001", 45);
  EXPECT_THAT(Sources(every), ElementsAre("warehouses/420102002004-W001",
                                          "warehouses/420102003-W001", "warehouses/420103-W001"));
  AllocationPlan fewer = PlanFor("SH-0001", 45, PRIORITY_ROUTINE, {}, 10);
  EXPECT_THAT(Sources(fewer), ElementsAre("warehouses/420103-W001", "warehouses/420106-W001"));
  EXPECT_EQ(fewer.legs(1).quantity(), 5);  // completes the line
  EXPECT_EQ(fewer.min_leg_quantity(), 10);
  EXPECT_EQ(fewer.outcomes(0).shortfall(), 0);
  // 4 asked for: the township's 4 complete the line, so its leg is not too small.
  EXPECT_THAT(Sources(PlanFor("SH-0001", 4, PRIORITY_ROUTINE, {}, 10)),
              ElementsAre("warehouses/420102002004-W001"));
}

// Passed-over sources are not lost: when the large ones cannot fill the line, the small ones
// give after all, in the order they were met, and the line falls short only by what none has.
TEST_F(PlannerTest, SourcesPassedOverForAMinimumLegGiveWhenTheLineWouldFallShort) {
  Stock("420102002004-W001", "SH-0001", 4);
  Stock("420102003-W001", "SH-0001", 3);
  Stock("420103-W001", "SH-0001", 40);
  AllocationPlan plan = PlanFor("SH-0001", 50, PRIORITY_ROUTINE, {}, 10);
  EXPECT_THAT(Sources(plan), ElementsAre("warehouses/420103-W001", "warehouses/420102002004-W001",
                                         "warehouses/420102003-W001"));
  EXPECT_EQ(plan.legs(1).tier(), SOURCE_TIER_SAME_TOWNSHIP);
  EXPECT_EQ(plan.legs(2).tier(), SOURCE_TIER_SAME_COUNTY);
  EXPECT_EQ(plan.outcomes(0).planned(), 47);
  EXPECT_EQ(plan.outcomes(0).shortfall(), 3);
  EXPECT_THAT(planner_.Plan(Request("SH-0001", 50, PRIORITY_ROUTINE, {}, -1), snapshot_, kToday),
              testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                ::testing::HasSubstr("min_leg_quantity must be between 0")));
}

TEST_F(PlannerTest, ExcludedSourcesAreHonoured) {
  StockEveryTier("SH-0001");
  AllocationPlan p = PlanFor("SH-0001", 15, PRIORITY_ROUTINE,
                             {"warehouses/420102002004-W001", "warehouses/420103-W001"});
  EXPECT_THAT(Sources(p), ElementsAre("warehouses/420102003-W001", "warehouses/420106-W001"));
  EXPECT_THAT(p.excluded_sources(),
              ElementsAre("warehouses/420102002004-W001", "warehouses/420103-W001"));
}

// The county instance of Wuhan (4201) does not answer: its counties' stores are skipped, the
// township and village stores under them and the counties of other cities are not.
TEST_F(PlannerTest, WarehousesOfAnUnreachableInstanceAreNotPlannedFrom) {
  StockEveryTier("SH-0001");
  SourceReach reach;
  reach.unreachable = {SourceScope{LEVEL_COUNTY, {"4201"}}};
  reach.reachable = {SourceScope{LEVEL_COUNTY, {"4202"}}};
  auto plan = planner_.Plan(Request("SH-0001", 25), snapshot_, kToday, reach);
  ASSERT_THAT(plan.status(), testing::IsOk());
  const std::vector<std::string> sources = Sources(*plan);
  ASSERT_EQ(sources.size(), 3u);
  EXPECT_EQ(sources[0], "warehouses/420102002004-W001");
  EXPECT_EQ(sources[1], "warehouses/420102003-W001");
  EXPECT_EQ(plan->legs(2).tier(), SOURCE_TIER_SAME_PROVINCE);  // not 420103-W001, same city
  EXPECT_EQ(plan->outcomes(0).shortfall(), 0);
}

// The instance that hosted Wuhan's counties is gone; a new one hosts 420103 (江汉) now.
TEST(SourceReachTest, ARegionAnAnsweringInstanceHostsIsNotExcluded) {
  SourceReach reach;
  reach.unreachable = {SourceScope{LEVEL_COUNTY, {"4201"}}};
  reach.reachable = {SourceScope{LEVEL_COUNTY, {"420103"}}};
  EXPECT_FALSE(reach.Excludes("420103"));
  EXPECT_TRUE(reach.Excludes("420106"));
  EXPECT_FALSE(reach.Excludes("420202"));
}

TEST(SourceScopeTest, HoldsTheRegionsOfItsLevelUnderItsPrefixes) {
  const SourceScope wuhan_counties{LEVEL_COUNTY, {"4201", "4290"}};
  EXPECT_TRUE(wuhan_counties.Holds("420103"));
  EXPECT_TRUE(wuhan_counties.Holds("429004"));
  EXPECT_FALSE(wuhan_counties.Holds("420102003"));  // a township under it
  EXPECT_FALSE(wuhan_counties.Holds("420202"));
  EXPECT_TRUE((SourceScope{LEVEL_VILLAGE, {""}}.Holds("420102002003")));
}

TEST_F(PlannerTest, ContractAndCapacityListedOnlyWhenStockFallsShort) {
  Stock("420103-W001", "SH-0001", 10);
  snapshot_.SetReserve("420106-W001", "SH-0001", RESERVE_MODE_CONTRACT, 40, 48);
  snapshot_.SetReserve("420202-W001", "SH-0001", RESERVE_MODE_CAPACITY, 500, 72);
  EXPECT_EQ(PlanFor("SH-0001", 10).reserve_options_size(), 0);
  AllocationPlan p = PlanFor("SH-0001", 100);
  EXPECT_EQ(p.outcomes(0).shortfall(), 90);
  ASSERT_EQ(p.reserve_options_size(), 2);
  EXPECT_EQ(p.reserve_options(0).warehouse(), "warehouses/420106-W001");
  EXPECT_EQ(p.reserve_options(0).mode(), RESERVE_MODE_CONTRACT);
  EXPECT_EQ(p.reserve_options(0).lead_time_hours(), 48);
  EXPECT_EQ(p.reserve_options(1).mode(), RESERVE_MODE_CAPACITY);
  EXPECT_EQ(p.reserve_options(1).tier(), SOURCE_TIER_SAME_PROVINCE);
}

TEST_F(PlannerTest, SnapshotFollowsBalanceRecords) {
  Balance b;
  b.set_warehouse("warehouses/420103-W001");
  b.set_item("SH-0001");
  auto* lot = b.add_lots();
  lot->set_lot("DEFAULT");
  lot->set_on_hand(20);
  lot->set_held(15);
  snapshot_.Apply(b);
  EXPECT_EQ(PlanFor("SH-0001", 100).outcomes(0).planned(), 5);  // held stock is not available
  lot->set_held(20);
  snapshot_.Apply(b);
  EXPECT_EQ(PlanFor("SH-0001", 100).legs_size(), 0);
}

TEST_F(PlannerTest, RejectsMalformedRequests) {
  PlanAllocationRequest req;
  req.set_destination_region("4201x");
  req.add_lines()->set_item("SH-0001");
  EXPECT_THAT(planner_.Plan(req, snapshot_, kToday),
              testing::StatusIs(absl::StatusCode::kInvalidArgument));
  req.set_destination_region("420102");
  req.mutable_lines(0)->set_quantity(0);
  EXPECT_THAT(planner_.Plan(req, snapshot_, kToday),
              testing::StatusIs(absl::StatusCode::kInvalidArgument));
  req.mutable_lines(0)->set_item("NOPE-1");
  req.mutable_lines(0)->set_quantity(1);
  EXPECT_THAT(planner_.Plan(req, snapshot_, kToday),
              testing::StatusIs(absl::StatusCode::kNotFound));
}

// A township or village code is checked itself, not only its county: 420102999 (no such
// township in 420102) used to get a plan, though a roll-up of it is NOT_FOUND.
TEST_F(PlannerTest, RefusesATownshipOrVillageThatDoesNotExist) {
  PlanAllocationRequest req;
  auto* line = req.add_lines();
  line->set_item("SH-0001");
  line->set_quantity(1);
  req.set_destination_region("420102002");  // 大智街道
  EXPECT_TRUE(planner_.Plan(req, snapshot_, kToday).ok());
  for (const char* unknown : {"420102999", "420102002999", "420199"}) {
    req.set_destination_region(unknown);
    EXPECT_THAT(planner_.Plan(req, snapshot_, kToday),
                testing::StatusIs(absl::StatusCode::kNotFound,
                                  ::testing::HasSubstr("is not in the reference data")))
        << unknown;
  }
}

}  // namespace
}  // namespace stockpile::catalogue::allocation
