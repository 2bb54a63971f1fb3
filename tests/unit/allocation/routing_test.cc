#include "services/catalogue/allocation/routing.h"

#include <gtest/gtest.h>

#include "tests/testutil/status_matchers.h"

namespace stockpile::catalogue::allocation {
namespace {

using stockpile::v1::LEVEL_COUNTY;
using stockpile::v1::LEVEL_VILLAGE;

TEST(RoutingTest, PicksTheInstanceAtTheRegionsLevelWithTheLongestPrefix) {
  std::vector<LevelInstance> instances = {{LEVEL_COUNTY, "a:1", {"42"}},
                                          {LEVEL_COUNTY, "b:1", {"4201", "43"}},
                                          {LEVEL_VILLAGE, "v:1", {"42"}}};
  EXPECT_EQ(*RouteRegion(instances, "420102"), "b:1");
  EXPECT_EQ(*RouteRegion(instances, "420202"), "a:1");
  EXPECT_EQ(*RouteRegion(instances, "430102"), "b:1");
  EXPECT_EQ(*RouteRegion(instances, "420102002003"), "v:1");
  EXPECT_THAT(RouteRegion(instances, "110101"), testing::StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(RouteRegion(instances, "420102002"),
              testing::StatusIs(absl::StatusCode::kUnavailable));  // no township instance
}

}  // namespace
}  // namespace stockpile::catalogue::allocation
