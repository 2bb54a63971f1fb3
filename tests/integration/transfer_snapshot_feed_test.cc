// The catalogue core feeds the transfer planner's StockSnapshot: every applied change batch
// (replication) and, after a restart, every record loaded from the catalogue's own store.
#include <gtest/gtest.h>

#include "services/catalogue/allocation/stock_snapshot.h"
#include "services/catalogue/catalogue_core.h"
#include "tests/testutil/process.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::catalogue {
namespace {

using allocation::Candidate;
using allocation::StockSnapshot;
using testing::IsOk;

const common::ReferenceData* Reference() {
  static const common::ReferenceData* ref = [] {
    common::ReferenceData::Options opts;
    opts.fine_region_prefixes = {"420102"};
    return common::ReferenceData::Load(testing::ReferenceDataDir(), opts)->release();
  }();
  return ref;
}

stockpile::v1::WatchChangesResponse Batch() {
  stockpile::v1::WatchChangesResponse batch;
  auto* e = batch.add_entries();
  e->set_sequence(1);
  auto* w = e->add_warehouses();
  w->set_name("warehouses/420103-W001");
  w->set_code("420103-W001");
  w->set_region_code("420103");
  auto* b = e->add_balances();
  b->set_warehouse("warehouses/420103-W001");
  b->set_item("SH-0001");
  b->set_on_hand(30);
  b->set_held(4);
  b->set_available(26);
  auto* lot = b->add_lots();
  lot->set_lot("DEFAULT");
  lot->set_on_hand(30);
  lot->set_held(4);
  auto* q = e->add_quotas();
  q->set_warehouse("warehouses/420103-W001");
  q->set_item("SH-0001");
  q->set_min(10);
  return batch;
}

// (code, available, floor) of every holder of SH-0001 under 4201.
std::vector<std::tuple<std::string, int64_t, int64_t>> Holders(const StockSnapshot& s) {
  std::vector<std::tuple<std::string, int64_t, int64_t>> out;
  s.ForEachHolder("SH-0001", "4201", [&](const Candidate& c) {
    int64_t available = 0;
    for (const auto& l : c.stock->lots) available += l.available;
    out.emplace_back(c.place->code, available, c.stock->floor);
  });
  return out;
}

CatalogueCore::Options WithSnapshot(StockSnapshot* snapshot) {
  CatalogueCore::Options options;
  options.snapshot = snapshot;
  return options;
}

TEST(TransferSnapshotFeedTest, AppliedBatchesAndReloadedRecordsReachThePlanner) {
  testing::TempDir dir;
  const auto expected =
      std::vector<std::tuple<std::string, int64_t, int64_t>>{{"420103-W001", 26, 10}};
  {
    StockSnapshot snapshot(Reference());
    auto core = CatalogueCore::Open(dir.Sub("db"), Reference(), common::SystemClock::Get(),
                                    WithSnapshot(&snapshot));
    ASSERT_THAT(core.status(), IsOk());
    EXPECT_TRUE(Holders(snapshot).empty());
    ASSERT_THAT((*core)->Apply("county-a", Batch()).status(), IsOk());
    EXPECT_EQ(Holders(snapshot), expected);
    // A repeated batch is skipped (exactly once) and changes nothing.
    ASSERT_THAT((*core)->Apply("county-a", Batch()).status(), IsOk());
    EXPECT_EQ(Holders(snapshot), expected);
  }
  StockSnapshot reloaded(Reference());
  auto core = CatalogueCore::Open(dir.Sub("db"), Reference(), common::SystemClock::Get(),
                                  WithSnapshot(&reloaded));
  ASSERT_THAT(core.status(), IsOk());
  EXPECT_EQ(Holders(reloaded), expected);
}

TEST(TransferSnapshotFeedTest, NoSnapshotMeansNoFeed) {
  testing::TempDir dir;
  auto core = CatalogueCore::Open(dir.Sub("db"), Reference(), common::SystemClock::Get(), {});
  ASSERT_THAT(core.status(), IsOk());
  EXPECT_THAT((*core)->Apply("county-a", Batch()).status(), IsOk());
}

}  // namespace
}  // namespace stockpile::catalogue
