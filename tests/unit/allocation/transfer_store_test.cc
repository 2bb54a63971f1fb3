// Unit tests of the catalogue's transfer store (services/catalogue/allocation/transfer_store).
#include "services/catalogue/allocation/transfer_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "tests/testutil/process.h"
#include "tests/testutil/rocks_files.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::catalogue::allocation {
namespace {

using stockpile::testing::IsOk;

stockpile::v1::Transfer Holding(int i) {
  stockpile::v1::Transfer t;
  t.set_id(absl::StrCat("T1700000000-", i, "-00000000aa"));
  t.set_name("transfers/" + t.id());
  t.set_destination_warehouse("warehouses/420102001001-W1");
  t.set_destination_region("420102001001");
  t.set_state(stockpile::v1::TRANSFER_STATE_HOLDING);
  return t;
}

// A clean stop leaves the next start nothing to replay, as the level's and the catalogue's
// stores do; what was saved is there after the restart.
TEST(TransferStoreTest, ACleanCloseLeavesNoWalToReplay) {
  stockpile::testing::TempDir dir;
  {
    auto store = TransferStore::Open(dir.Sub("transfers"));
    ASSERT_THAT(store.status(), IsOk());
    for (int i = 0; i < 50; ++i) {
      const RequestRecord request{absl::StrCat("req-", i), "fingerprint", Holding(i).id()};
      ASSERT_THAT((*store)->Save(Holding(i), &request), IsOk());
    }
  }
  EXPECT_EQ(stockpile::testing::WalBytes(dir.Sub("transfers")), 0u)
      << "the next start would replay this much WAL";
  auto store = TransferStore::Open(dir.Sub("transfers"));
  ASSERT_THAT(store.status(), IsOk());
  auto saved = (*store)->Get(Holding(49).id());
  ASSERT_THAT(saved.status(), IsOk());
  ASSERT_TRUE(saved->has_value());
  EXPECT_EQ((*saved)->state(), stockpile::v1::TRANSFER_STATE_HOLDING);
  auto request = (*store)->GetRequest("req-49");
  ASSERT_THAT(request.status(), IsOk());
  ASSERT_TRUE(request->has_value());
  EXPECT_EQ((*request)->transfer_id, Holding(49).id());
  auto unfinished = (*store)->UnfinishedIds();
  ASSERT_THAT(unfinished.status(), IsOk());
  EXPECT_EQ(unfinished->size(), 50u);
}

// A listing goes on from the tokens it hands out and refuses any other, with the words every
// other listing uses, instead of answering some other page.
TEST(TransferStoreTest, ListPagesOnItsTokensAndRefusesOthers) {
  stockpile::testing::TempDir dir;
  auto store = TransferStore::Open(dir.Sub("transfers"));
  ASSERT_THAT(store.status(), IsOk());
  for (int i = 0; i < 5; ++i) ASSERT_THAT((*store)->Save(Holding(i), nullptr), IsOk());
  stockpile::v1::ListTransfersRequest req;
  req.set_region_prefix("4201");
  req.set_page_size(2);
  int seen = 0;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = (*store)->List(req);
    ASSERT_THAT(page.status(), IsOk());
    seen += page->transfers_size();
    if (page->next_page_token().empty()) break;
    req.set_page_token(page->next_page_token());
  }
  EXPECT_EQ(seen, 5);
  for (const char* bad : {"4301/T1", "4201", "4201zz/T1", "4201/", "/T1"}) {
    req.set_page_token(bad);
    EXPECT_THAT((*store)->List(req).status(),
                stockpile::testing::StatusIs(
                    absl::StatusCode::kInvalidArgument,
                    "page_token is not valid for this query; start again without it"))
        << bad;
  }
}

// Audit 28, F3, applied here too: a directory that holds files is only ever opened. Without its
// CURRENT the store was made again empty, and RocksDB deleted the transfers' table files.
TEST(TransferStoreTest, AStoreWithoutItsCurrentFileIsRefusedAndKeepsItsFiles) {
  stockpile::testing::TempDir dir;
  {
    auto store = TransferStore::Open(dir.Sub("transfers"));
    ASSERT_THAT(store, IsOk());
    ASSERT_THAT((*store)->Save(Holding(1), nullptr), IsOk());
  }
  const auto tables = [&] {
    int n = 0;
    for (const auto& f : std::filesystem::directory_iterator(dir.Sub("transfers"))) {
      n += f.path().extension() == ".sst";
    }
    return n;
  };
  const int before = tables();
  ASSERT_GT(before, 0);
  std::filesystem::remove(dir.Sub("transfers/CURRENT"));
  auto reopened = TransferStore::Open(dir.Sub("transfers"));
  EXPECT_EQ(reopened.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("transfers/CURRENT")));
  EXPECT_EQ(tables(), before);
}

}  // namespace
}  // namespace stockpile::catalogue::allocation
