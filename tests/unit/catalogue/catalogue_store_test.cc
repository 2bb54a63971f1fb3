// Unit tests of the catalogue's store: start-up loading (LoadAll) reads and parses on one
// thread and applies on another; what the visitor sees must not depend on that.
#include "services/catalogue/catalogue_store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/testutil/process.h"
#include "tests/testutil/rocks_files.h"

namespace stockpile::catalogue {
namespace {

std::string Code(int i) { return absl::StrFormat("4201-W%05d", i); }

// `warehouses` warehouses with three balances, a quota and a reserve each, and two sources:
// over 5 * `warehouses` records of every kind, interleaved in key order.
void Fill(CatalogueStore& store, int warehouses) {
  StoreBatch batch;
  for (int i = 0; i < warehouses; ++i) {
    stockpile::v1::Warehouse w;
    w.set_code(Code(i));
    batch.PutWarehouse(Code(i), i % 2 ? "county-a" : "county-b", w);
    for (const char* item : {"quilt", "tent", "pump"}) {
      stockpile::v1::Balance b;
      b.set_warehouse("warehouses/" + Code(i));
      b.set_item(item);
      b.set_on_hand(i);
      batch.PutBalance(Code(i), b);
    }
    stockpile::v1::Quota q;
    q.set_warehouse("warehouses/" + Code(i));
    q.set_item("tent");
    batch.PutQuota(Code(i), q);
    stockpile::v1::Reserve r;
    r.set_warehouse("warehouses/" + Code(i));
    r.set_item("pump");
    batch.PutReserve(Code(i), r);
  }
  for (const char* id : {"county-a", "county-b"}) {
    stockpile::v1::ReplicationSource s;
    s.set_instance_id(id);
    batch.PutSource(s);
  }
  ASSERT_TRUE(store.Write(batch).ok());
}

// Each record the visitor saw, as its key would sort ("b<code>/<item>", ...), and the threads
// it was called on.
struct Seen {
  std::vector<std::string> keys;
  std::vector<std::thread::id> threads;
  CatalogueStore::Visitor Visitor() {
    CatalogueStore::Visitor v;
    auto code = [](const std::string& name) {
      return name.substr(std::string("warehouses/").size());
    };
    v.warehouse = [this](const std::string& source, const stockpile::v1::Warehouse& w) {
      Note(absl::StrCat("w", w.code(), " from ", source));
    };
    v.balance = [this, code](const stockpile::v1::Balance& b) {
      Note(absl::StrCat("b", code(b.warehouse()), "/", b.item(), "=", b.on_hand()));
    };
    v.quota = [this, code](const stockpile::v1::Quota& q) {
      Note(absl::StrCat("q", code(q.warehouse()), "/", q.item()));
    };
    v.reserve = [this, code](const stockpile::v1::Reserve& r) {
      Note(absl::StrCat("r", code(r.warehouse()), "/", r.item()));
    };
    v.source = [this](const stockpile::v1::ReplicationSource& s) {
      Note(absl::StrCat("s", s.instance_id()));
    };
    return v;
  }
  void Note(std::string key) {
    keys.push_back(std::move(key));
    if (threads.empty() || threads.back() != std::this_thread::get_id()) {
      threads.push_back(std::this_thread::get_id());
    }
  }
};

TEST(CatalogueStoreTest, LoadAllVisitsEveryRecordOnceInKeyOrderAcrossChunks) {
  testing::TempDir dir;
  auto store = CatalogueStore::Open(dir.Sub("db"), /*sync_writes=*/false);
  ASSERT_TRUE(store.ok()) << store.status();
  const int kWarehouses = 1500;  // 10,502 records: several chunks, every chunk reused
  Fill(**store, kWarehouses);

  Seen seen;
  ASSERT_TRUE((*store)->LoadAll(seen.Visitor()).ok());
  ASSERT_EQ(seen.keys.size(), size_t(6 * kWarehouses + 2));
  EXPECT_TRUE(std::is_sorted(seen.keys.begin(), seen.keys.end()));
  // Every kind, with the content of its own record (a reused message keeps nothing stale).
  EXPECT_EQ(seen.keys.front(), "b" + Code(0) + "/pump=0");
  EXPECT_EQ(seen.keys[3 * 777 + 1], "b" + Code(777) + "/quilt=777");
  EXPECT_EQ(seen.keys[3 * kWarehouses], "q" + Code(0) + "/tent");
  EXPECT_EQ(seen.keys[5 * kWarehouses], "s" + std::string("county-a"));
  EXPECT_EQ(seen.keys[5 * kWarehouses + 2 + 1], "w" + Code(1) + " from county-a");
  EXPECT_EQ(seen.keys.back(), "w" + Code(kWarehouses - 1) + " from county-a");
  // One applying thread, not the caller's.
  ASSERT_EQ(seen.threads.size(), 1u);
  EXPECT_NE(seen.threads.front(), std::this_thread::get_id());
}

TEST(CatalogueStoreTest, LoadAllStopsAtAnUnreadableRecordAndNamesIt) {
  testing::TempDir dir;
  {
    auto store = CatalogueStore::Open(dir.Sub("db"), /*sync_writes=*/false);
    ASSERT_TRUE(store.ok()) << store.status();
    Fill(**store, 2000);  // the reader must stop while chunks before it wait to be applied
  }
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir.Sub("db"), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "b" + Code(1200) + "/tent", "\xff\xff\xff").ok());
  }
  auto store = CatalogueStore::Open(dir.Sub("db"), /*sync_writes=*/false);
  ASSERT_TRUE(store.ok()) << store.status();
  Seen seen;
  const absl::Status s = (*store)->LoadAll(seen.Visitor());
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("b" + Code(1200) + "/tent"), std::string::npos) << s;
  for (const auto& key : seen.keys) ASSERT_LT(key, "b" + Code(1200) + "/tent");
}

// A resync's drop goes in writes of whole warehouses, the source's record last: stopped part
// way (a crash), the source keeps its old watermark (so the next start meets the same mismatch)
// and what was not reached is still there; run again, it finishes.
TEST(CatalogueStoreTest, DroppingASourceWritesInChunksAndItsRecordLast) {
  testing::TempDir dir;
  auto store = CatalogueStore::Open(dir.Sub("db"), /*sync_writes=*/false);
  ASSERT_TRUE(store.ok()) << store.status();
  Fill(**store, 6);  // county-a: warehouses 1, 3, 5 with 5 records each
  stockpile::v1::ReplicationSource old_record;
  old_record.set_instance_id("county-a");
  old_record.set_applied_sequence(40);
  StoreBatch batch;
  batch.PutSource(old_record);
  ASSERT_TRUE((*store)->Write(batch).ok());

  stockpile::v1::ReplicationSource reset = old_record;
  reset.set_applied_sequence(0);
  int chunks = 0;
  auto crashed = (*store)->DropSourceStock(reset, 5, [&](const CatalogueStore::DroppedStock& c) {
    EXPECT_EQ(c.warehouses, std::vector<std::string>{Code(1)});
    EXPECT_EQ(c.balances.size(), 3u);
    ++chunks;
    return absl::AbortedError("the process died here");
  });
  EXPECT_EQ(crashed.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(chunks, 1);
  Seen after_crash;
  ASSERT_TRUE((*store)->LoadAll(after_crash.Visitor()).ok());
  auto has = [](const Seen& s, const std::string& key) {
    return std::find(s.keys.begin(), s.keys.end(), key) != s.keys.end();
  };
  EXPECT_FALSE(has(after_crash, "w" + Code(1) + " from county-a"));
  EXPECT_FALSE(has(after_crash, "b" + Code(1) + "/tent=1"));
  EXPECT_TRUE(has(after_crash, "w" + Code(3) + " from county-a"));
  EXPECT_TRUE(has(after_crash, "b" + Code(3) + "/tent=3"));
  uint64_t watermark = 0;
  CatalogueStore::Visitor sources;
  sources.warehouse = [](const std::string&, const stockpile::v1::Warehouse&) {};
  sources.balance = [](const stockpile::v1::Balance&) {};
  sources.quota = [](const stockpile::v1::Quota&) {};
  sources.reserve = [](const stockpile::v1::Reserve&) {};
  sources.source = [&](const stockpile::v1::ReplicationSource& s) {
    if (s.instance_id() == "county-a") watermark = s.applied_sequence();
  };
  ASSERT_TRUE((*store)->LoadAll(sources).ok());
  EXPECT_EQ(watermark, 40u);

  chunks = 0;
  auto codes = (*store)->DropSourceStock(reset, 5, [&](const CatalogueStore::DroppedStock&) {
    ++chunks;
    return absl::OkStatus();
  });
  ASSERT_TRUE(codes.ok()) << codes.status();
  EXPECT_EQ(*codes, (std::vector<std::string>{Code(3), Code(5)}));
  EXPECT_EQ(chunks, 3);  // warehouse 3, warehouse 5, then the source's record alone
  Seen done;
  ASSERT_TRUE((*store)->LoadAll(done.Visitor()).ok());
  EXPECT_FALSE(has(done, "w" + Code(5) + " from county-a"));
  EXPECT_TRUE(has(done, "w" + Code(4) + " from county-b"));  // another source's stays
  EXPECT_TRUE(has(done, "b" + Code(4) + "/tent=4"));
  ASSERT_TRUE((*store)->LoadAll(sources).ok());
  EXPECT_EQ(watermark, 0u);
}

// A clean stop leaves the next start nothing to replay (the level's store does the same: after
// a heavy load its unflushed memtables took 3.9 s to replay on the next start).
TEST(CatalogueStoreTest, ACleanCloseLeavesNoWalToReplay) {
  testing::TempDir dir;
  {
    auto store = CatalogueStore::Open(dir.Sub("db"), /*sync_writes=*/true);
    ASSERT_TRUE(store.ok()) << store.status();
    Fill(**store, 100);
  }
  EXPECT_EQ(testing::WalBytes(dir.Sub("db")), 0u) << "the next start would replay this much WAL";
  auto store = CatalogueStore::Open(dir.Sub("db"), /*sync_writes=*/false);
  ASSERT_TRUE(store.ok()) << store.status();
  Seen seen;
  ASSERT_TRUE((*store)->LoadAll(seen.Visitor()).ok());
  EXPECT_EQ(seen.keys.size(), size_t(6 * 100 + 2));
}

// Audit 28, F3, applied here too: a directory that holds files is only ever opened (the
// transfer store's directory inside it does not count).
TEST(CatalogueStoreTest, AStoreWithoutItsCurrentFileIsRefusedAndKeepsItsFiles) {
  stockpile::testing::TempDir dir;
  std::filesystem::create_directories(dir.Sub("db/transfers"));
  {
    auto store = CatalogueStore::Open(dir.Sub("db"), /*sync_writes=*/true);
    ASSERT_TRUE(store.ok()) << store.status();
    Fill(**store, 3);
  }
  const auto tables = [&] {
    int n = 0;
    for (const auto& f : std::filesystem::directory_iterator(dir.Sub("db"))) {
      n += f.path().extension() == ".sst";
    }
    return n;
  };
  const int before = tables();
  ASSERT_GT(before, 0);
  std::filesystem::remove(dir.Sub("db/CURRENT"));
  auto reopened = CatalogueStore::Open(dir.Sub("db"), /*sync_writes=*/true);
  EXPECT_EQ(reopened.status().code(), absl::StatusCode::kDataLoss) << reopened.status();
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("db/CURRENT")));
  EXPECT_EQ(tables(), before);
}

}  // namespace
}  // namespace stockpile::catalogue
