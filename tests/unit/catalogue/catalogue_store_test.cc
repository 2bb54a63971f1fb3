// Unit tests of the catalogue's store: start-up loading (LoadAll) reads and parses on one
// thread and applies on another; what the visitor sees must not depend on that.
#include "services/catalogue/catalogue_store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

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

}  // namespace
}  // namespace stockpile::catalogue
