// Unit tests of the national view on its own: which sources make a roll-up stale.
#include "services/catalogue/national_view.h"

#include <gtest/gtest.h>

#include "tests/testutil/reference_data.h"

namespace stockpile::catalogue {
namespace {

class CatalogueNationalViewTest : public ::testing::Test {
 protected:
  CatalogueNationalViewTest()
      : view_(&testing::SharedReferenceData(""), nullptr),
        fresh_(view_.SourceIndex("fresh")),
        stale_(view_.SourceIndex("stale")) {
    view_.SetSourceFreshness(fresh_, 0, /*stale=*/false, /*partial=*/false);
    view_.SetSourceFreshness(stale_, 0, /*stale=*/true, /*partial=*/false);
  }

  void Warehouse(const std::string& code, uint16_t source) {
    stockpile::v1::Warehouse w;
    w.set_code(code);
    w.set_name("warehouses/" + code);
    view_.UpsertWarehouse(w, source);
  }

  bool Stale(const std::string& region) const {
    auto rollup = view_.Rollup(region, "SH-0001");
    EXPECT_TRUE(rollup.ok()) << rollup.status();
    return rollup.ok() && rollup->stale();
  }

  NationalView view_;
  const uint16_t fresh_;
  const uint16_t stale_;
};

// Counties keep running sums; townships are summed from their warehouses: both ways, only a
// stale source with warehouses under the region makes its roll-up stale.
TEST_F(CatalogueNationalViewTest, RollupIsStaleOnlyWhereAStaleSourceHasWarehouses) {
  Warehouse("420102-W001", fresh_);
  Warehouse("420103-W001", stale_);
  Warehouse("420102002003-W001", fresh_);
  Warehouse("420102003001-W001", stale_);
  EXPECT_FALSE(Stale("420103002"));  // nobody's warehouses
  EXPECT_FALSE(Stale("420102002"));
  EXPECT_TRUE(Stale("420102003"));
  EXPECT_TRUE(Stale("420102"));  // holds the stale source's village warehouse
  EXPECT_TRUE(Stale("420103"));
  EXPECT_FALSE(Stale("420104"));
  EXPECT_TRUE(Stale("4201"));
  EXPECT_FALSE(Stale("43"));
}

// A warehouse a fresh source took over no longer counts for the stale one.
TEST_F(CatalogueNationalViewTest, WarehouseTakenOverByAFreshSourceNoLongerMakesItsRegionStale) {
  Warehouse("420103-W001", stale_);
  ASSERT_TRUE(Stale("420103"));
  Warehouse("420103-W001", fresh_);
  EXPECT_FALSE(Stale("420103"));
  EXPECT_FALSE(Stale("42"));
}

// A stale source whose stock has not all arrived may hold warehouses the view lacks: every
// region where its level and prefixes could place one is stale, and no other.
TEST_F(CatalogueNationalViewTest, PartialStaleSourceMakesRegionsItHostsStale) {
  view_.SetSourceFreshness(stale_, 0, /*stale=*/true, /*partial=*/true);
  view_.SetSourceHosting(stale_, stockpile::v1::LEVEL_COUNTY, {"4201"});
  EXPECT_TRUE(Stale("42"));
  EXPECT_TRUE(Stale("4201"));
  EXPECT_TRUE(Stale("420105"));
  EXPECT_FALSE(Stale("4202"));
  EXPECT_FALSE(Stale("420102002"));  // a county instance holds no township warehouses
  EXPECT_FALSE(Stale("43"));
}

}  // namespace
}  // namespace stockpile::catalogue
