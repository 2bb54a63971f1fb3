// The catalogue's apply path with large and repetitive batches: only the last state of each key
// is stored, large batches update memory on a second thread, and after a restart (memory rebuilt
// from the store) the view equals what was applied.
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "services/catalogue/catalogue_core.h"
#include "services/common/reference_data.h"
#include "tests/testutil/process.h"
#include "tests/testutil/reference_data.h"

namespace stockpile::catalogue {
namespace {

using stockpile::v1::ChangeEntry;
using stockpile::v1::WatchChangesResponse;

const common::ReferenceData& Reference() { return testing::SharedReferenceData(""); }

std::unique_ptr<CatalogueCore> OpenCore(const std::string& path) {
  CatalogueCore::Options options;
  options.sync_writes = false;
  auto core =
      CatalogueCore::Open(path, &Reference(), common::SystemClock::Get(), std::move(options));
  EXPECT_TRUE(core.ok()) << core.status();
  return core.ok() ? std::move(*core) : nullptr;
}

void AddBalance(ChangeEntry& e, const std::string& code, const std::string& item, int64_t on_hand) {
  auto* b = e.add_balances();
  b->set_warehouse("warehouses/" + code);
  b->set_item(item);
  b->set_on_hand(on_hand);
  b->set_available(on_hand);
}

ChangeEntry& NextEntry(WatchChangesResponse& batch) {
  ChangeEntry& e = *batch.add_entries();
  e.set_sequence(uint64_t(batch.entries_size()));
  e.mutable_commit_time()->set_seconds(1700000000 + batch.entries_size());
  return e;
}

const std::string& Item(size_t i) { return Reference().items()[i % 42].code; }

// 10 warehouses; 400 entries, each moving one balance (many states per key), the last entry
// holding one balance twice (the later state must win even inside one entry).
WatchChangesResponse RepetitiveBatch(std::map<std::pair<std::string, std::string>, int64_t>* last) {
  WatchChangesResponse batch;
  for (int w = 0; w < 10; ++w) {
    auto* wh = NextEntry(batch).add_warehouses();
    const std::string code = absl::StrCat("42010200200", w, "-W001");
    wh->set_code(code);
    wh->set_name("warehouses/" + code);
  }
  for (int i = 0; i < 400; ++i) {
    const std::string code = absl::StrCat("42010200200", i % 10, "-W001");
    AddBalance(NextEntry(batch), code, Item(size_t(i % 3)), 1000 + i);
    (*last)[{code, Item(size_t(i % 3))}] = 1000 + i;
  }
  ChangeEntry& twice = NextEntry(batch);
  AddBalance(twice, "420102002000-W001", Item(0), 10);
  AddBalance(twice, "420102002000-W001", Item(0), 20);
  (*last)[{"420102002000-W001", Item(0)}] = 20;
  batch.set_head_sequence(uint64_t(batch.entries_size()));
  return batch;
}

TEST(CatalogueApplyTest, LastStateOfEveryKeyIsVisibleAndSurvivesARestart) {
  testing::TempDir dir;
  std::map<std::pair<std::string, std::string>, int64_t> last;
  const WatchChangesResponse batch = RepetitiveBatch(&last);
  int64_t total = 0;
  for (const auto& [key, on_hand] : last) total += key.second == Item(0) ? on_hand : 0;
  for (int open = 0; open < 2; ++open) {  // 0: as applied; 1: rebuilt from the store
    auto core = OpenCore(dir.Sub("db"));
    ASSERT_NE(core, nullptr);
    if (open == 0) {
      auto applied = core->Apply("village-1", batch);
      ASSERT_TRUE(applied.ok()) << applied.status();
      EXPECT_EQ(*applied, uint64_t(batch.entries_size()));
    }
    EXPECT_EQ(core->Watermark("village-1"), uint64_t(batch.entries_size()));
    for (const auto& [key, on_hand] : last) {
      auto cell = core->view().Cell(key.first, key.second);
      ASSERT_TRUE(cell.has_value()) << key.first;
      EXPECT_EQ((*cell)[0], on_hand) << key.first << " " << key.second << " open " << open;
    }
    stockpile::v1::GetRollupRequest req;
    req.set_region_code("420102");
    req.set_item(Item(0));
    auto rollup = core->GetRollup(req);
    ASSERT_TRUE(rollup.ok()) << rollup.status();
    ASSERT_EQ(rollup->items_size(), 1);
    EXPECT_EQ(rollup->items(0).on_hand(), total) << "open " << open;
  }
}

TEST(CatalogueApplyTest, ReplayedLargeBatchChangesNothing) {
  testing::TempDir dir;
  std::map<std::pair<std::string, std::string>, int64_t> last;
  const WatchChangesResponse batch = RepetitiveBatch(&last);
  auto core = OpenCore(dir.Sub("db"));
  ASSERT_NE(core, nullptr);
  ASSERT_TRUE(core->Apply("village-1", batch).ok());
  auto again = core->Apply("village-1", batch);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, uint64_t(batch.entries_size()));
  EXPECT_EQ(core->ReplicationStatus().at(0).entries_applied(), uint64_t(batch.entries_size()));
  EXPECT_EQ((*core->view().Cell("420102002000-W001", Item(0)))[0], 20);
}

}  // namespace
}  // namespace stockpile::catalogue
