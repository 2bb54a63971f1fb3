// The level's guard against a full database volume (services/level/space_guard.h).
#include "services/level/space_guard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>

#include "tests/testutil/process.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::level {
namespace {

using ::stockpile::testing::IsOk;
using ::stockpile::testing::StatusIs;
using ::testing::HasSubstr;

constexpr uint64_t kMoreThanAnyDisk = uint64_t{1} << 62;

TEST(SpaceGuardTest, RefusesWhileTheVolumeHasLessThanTheFloorFree) {
  testing::TempDir dir;
  common::FakeClock clock(1'000'000);
  SpaceGuard guard(dir.path(), kMoreThanAnyDisk, &clock);
  EXPECT_GT(guard.free_bytes(), 0u);
  EXPECT_THAT(guard.CheckRoom(),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("MiB free, less than the 4398046511104 MiB --min-free-mb keeps "
                                 "back: writes are refused until space is freed")));
}

TEST(SpaceGuardTest, EnoughRoomOrNoFloorLetsWritesThrough) {
  testing::TempDir dir;
  common::FakeClock clock(1'000'000);
  EXPECT_THAT(SpaceGuard(dir.path(), 0, &clock).CheckRoom(), IsOk());
  EXPECT_THAT(SpaceGuard(dir.path(), 1, &clock).CheckRoom(), IsOk());
}

// A volume that cannot be read (the directory went away) is not taken for a full one.
TEST(SpaceGuardTest, AnUnreadableVolumeIsNotTakenForAFullOne) {
  common::FakeClock clock(1'000'000);
  SpaceGuard guard("/nonexistent/stockpile/db", kMoreThanAnyDisk, &clock);
  EXPECT_EQ(guard.free_bytes(), 0u);
  EXPECT_THAT(guard.CheckRoom(), IsOk());
}

}  // namespace
}  // namespace stockpile::level
