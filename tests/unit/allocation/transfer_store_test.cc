// Unit tests of the catalogue's transfer store (services/catalogue/allocation/transfer_store).
#include "services/catalogue/allocation/transfer_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "services/common/page_token.h"
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
  common::PageQuery query(
      "catalogue ListTransfers");  // tokens of the right form for wrong positions
  query.Add("region_prefix", "4201").AddInt("state", 0);
  for (const char* bad : {"4301/T1", "4201", "4201zz/T1", "4201/", "/T1"}) {
    for (const std::string& token : {std::string(bad), query.Token(bad)}) {
      req.set_page_token(token);
      EXPECT_THAT((*store)->List(req).status(),
                  stockpile::testing::StatusIs(
                      absl::StatusCode::kInvalidArgument,
                      ::testing::HasSubstr("page_token is not valid for this query")))
          << token;
    }
  }
}

stockpile::v1::Transfer To(const std::string& region, int i, stockpile::v1::TransferState state) {
  stockpile::v1::Transfer t = Holding(i);
  t.set_id(absl::StrCat("T1700000000-", region, "-", i, "-00000000aa"));
  t.set_name("transfers/" + t.id());
  t.set_destination_warehouse("warehouses/" + region + "-W1");
  t.set_destination_region(region);
  t.set_state(state);
  return t;
}

// Audit 30, F1: a token was the last key only, so one of the whole list reused under a prefix,
// or with a state, went on from that key and silently left transfers out. Refused now; the same
// query, at any page size, still lists every transfer once.
TEST(TransferStoreTest, ATokenOfAnotherQueryIsRefusedAndTheSameQueryListsEachOnce) {
  stockpile::testing::TempDir dir;
  auto store = TransferStore::Open(dir.Sub("transfers"));
  ASSERT_THAT(store.status(), IsOk());
  std::vector<std::string> all;
  for (const char* region : {"420102001001", "420103001001", "430102001001"}) {
    for (int i = 0; i < 3; ++i) {
      const auto t = To(
          region, i,
          i == 1 ? stockpile::v1::TRANSFER_STATE_CANCELLED : stockpile::v1::TRANSFER_STATE_HOLDING);
      ASSERT_THAT((*store)->Save(t, nullptr), IsOk());
    }
  }
  auto ids = [&](stockpile::v1::ListTransfersRequest req) {
    std::vector<std::string> out;
    for (int pages = 0; pages < 20; ++pages) {
      auto page = (*store)->List(req);
      EXPECT_THAT(page.status(), IsOk());
      if (!page.ok()) break;
      for (const auto& t : page->transfers()) out.push_back(t.id());
      if (page->next_page_token().empty()) break;
      req.set_page_token(page->next_page_token());
    }
    return out;
  };
  stockpile::v1::ListTransfersRequest req;
  req.set_page_size(1000);
  const auto every = ids(req);
  EXPECT_EQ(every.size(), 9u);
  req.set_state(stockpile::v1::TRANSFER_STATE_HOLDING);
  const auto holding = ids(req);
  EXPECT_EQ(holding.size(), 6u);
  for (int size = 1; size <= 4; ++size) {
    req.set_page_size(size);
    req.clear_state();
    EXPECT_EQ(ids(req), every) << size;
    req.set_state(stockpile::v1::TRANSFER_STATE_HOLDING);
    EXPECT_EQ(ids(req), holding) << size;
  }

  req.clear_state();
  req.set_page_size(2);
  const std::string token = (*store)->List(req)->next_page_token();
  ASSERT_FALSE(token.empty());
  std::vector<stockpile::v1::ListTransfersRequest> others(2, req);
  others[0].set_region_prefix("42");
  others[1].set_state(stockpile::v1::TRANSFER_STATE_CANCELLED);
  for (auto& other : others) {
    other.set_page_token(token);
    EXPECT_THAT(
        (*store)->List(other).status(),
        stockpile::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                     ::testing::HasSubstr("page_token belongs to another query")))
        << other.ShortDebugString();
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
