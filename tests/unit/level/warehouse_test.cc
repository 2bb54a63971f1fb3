#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testutil/status_matchers.h"
#include "tests/unit/level/level_test_env.h"

namespace stockpile::level::testing {
namespace {

using ::stockpile::testing::IsOk;
using ::stockpile::testing::StatusIs;
using ::testing::HasSubstr;
using namespace stockpile::v1;  // NOLINT

TEST(WarehouseTest, CreateFillsLevelRegionAndCountySeatLocation) {
  LevelTestEnv env;
  auto w = env.CreateWarehouse("420102-W001", 2500);
  ASSERT_THAT(w.status(), IsOk());
  EXPECT_EQ(w->name(), "warehouses/420102-W001");
  EXPECT_EQ(w->level(), LEVEL_COUNTY);
  EXPECT_EQ(w->region_code(), "420102");
  EXPECT_EQ(w->status(), WAREHOUSE_STATUS_ACTIVE);
  EXPECT_TRUE(w->location_defaulted());
  EXPECT_NEAR(w->location().longitude(), 114.3, 0.2);  // 江岸区 county seat
  EXPECT_NEAR(w->location().latitude(), 30.6, 0.2);
  EXPECT_FALSE(w->below_standard_area());
}

TEST(WarehouseTest, BelowStandardAreaIsAllowedAndReported) {
  LevelTestEnv env;
  auto w = env.CreateWarehouse("420102-W002", 800);
  ASSERT_THAT(w.status(), IsOk());
  EXPECT_TRUE(w->below_standard_area());
  LevelTestEnv village(LEVEL_VILLAGE, {"420102"});
  auto v = village.CreateWarehouse("420102002003-W1", 12);
  ASSERT_THAT(v.status(), IsOk());
  EXPECT_FALSE(v->below_standard_area());
}

TEST(WarehouseTest, RefusesOtherLevelsOtherPrefixesAndDuplicates) {
  LevelTestEnv env;
  EXPECT_THAT(env.CreateWarehouse("4201-W001").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("city region")));
  EXPECT_THAT(env.CreateWarehouse("110101-W001").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not hosted")));
  EXPECT_THAT(env.CreateWarehouse("420199-W001").status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("reference data")));
  EXPECT_THAT(env.CreateWarehouse("420102-X001").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("{region code}-W")));
  ASSERT_THAT(env.CreateWarehouse("420102-W001").status(), IsOk());
  EXPECT_THAT(env.CreateWarehouse("420102-W001").status(),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(env.CreateWarehouse("420102-W003", 0).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("area_m2")));
}

TEST(WarehouseTest, UpdateChangesOnlyMaskedFieldsAndRefusesImmutableOnes) {
  LevelTestEnv env;
  ASSERT_THAT(env.CreateWarehouse("420102-W001").status(), IsOk());
  UpdateWarehouseRequest req;
  req.set_request_id("u1");
  req.set_actor("editor");
  req.mutable_warehouse()->set_name("warehouses/420102-W001");
  req.mutable_warehouse()->set_display_name("江岸区应急物资储备库");
  req.mutable_warehouse()->set_area_m2(1);  // not in the mask: ignored
  req.mutable_update_mask()->add_paths("display_name");
  CommandResult r = Wait([&](CommandCallback done) { env.core().UpdateWarehouse(req, done); });
  ASSERT_THAT(r.status, IsOk());
  auto w = env.queries().GetWarehouse("warehouses/420102-W001");
  ASSERT_THAT(w.status(), IsOk());
  EXPECT_EQ(w->display_name(), "江岸区应急物资储备库");
  EXPECT_EQ(w->area_m2(), 2500);
  EXPECT_EQ(w->created_by(), "tester");  // the audit trail: who created it, who changed it last
  EXPECT_EQ(w->updated_by(), "editor");
  req.set_request_id("u2");
  req.mutable_update_mask()->add_paths("region_code");
  r = Wait([&](CommandCallback done) { env.core().UpdateWarehouse(req, done); });
  EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("region_code")));
}

TEST(WarehouseTest, ListIsPaginatedByRegionPrefix) {
  LevelTestEnv env;
  for (const char* code : {"420102-W001", "420102-W002", "420103-W001", "420104-W001"}) {
    ASSERT_THAT(env.CreateWarehouse(code).status(), IsOk());
  }
  ListWarehousesRequest req;
  req.set_region_prefix("4201");
  req.set_page_size(3);
  auto page1 = env.queries().ListWarehouses(req);
  ASSERT_THAT(page1.status(), IsOk());
  EXPECT_EQ(page1->warehouses_size(), 3);
  ASSERT_FALSE(page1->next_page_token().empty());
  req.set_page_token(page1->next_page_token());
  auto page2 = env.queries().ListWarehouses(req);
  ASSERT_THAT(page2.status(), IsOk());
  ASSERT_EQ(page2->warehouses_size(), 1);
  EXPECT_EQ(page2->warehouses(0).code(), "420104-W001");
  EXPECT_TRUE(page2->next_page_token().empty());
  req.set_page_token("garbage!");
  EXPECT_THAT(env.queries().ListWarehouses(req).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_token")));
  ListWarehousesRequest one;
  one.set_region_prefix("420102");
  auto only = env.queries().ListWarehouses(one);
  ASSERT_THAT(only.status(), IsOk());
  EXPECT_EQ(only->warehouses_size(), 2);
}

}  // namespace
}  // namespace stockpile::level::testing
