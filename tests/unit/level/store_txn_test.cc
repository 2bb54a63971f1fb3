// StoreTxn's read path: a command sees its own writes, the group's, groups in flight, then the
// writer's cache, then RocksDB; the cache follows every group the writer hands on.
#include <gtest/gtest.h>

#include "services/level/level_store.h"
#include "tests/testutil/process.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::level {
namespace {

using stockpile::testing::IsOk;

class StoreTxnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = LevelStore::Open(tmp_.path() + "/db", LevelStore::Options{});
    ASSERT_THAT(store, IsOk());
    store_ = std::move(*store);
  }
  void Commit(StoreTxn& txn) {
    rocksdb::WriteBatch batch = txn.KeyOrderedBatch();
    ASSERT_THAT(store_->Write(batch, false), IsOk());
  }
  std::optional<std::string> Read(StoreTxn& txn, Cf cf, const std::string& key) {
    auto v = txn.Get(cf, key);
    EXPECT_THAT(v, IsOk());
    return v.ok() ? *v : std::nullopt;
  }

  stockpile::testing::TempDir tmp_;
  std::unique_ptr<LevelStore> store_;
};

TEST_F(StoreTxnTest, CacheFollowsEveryGroupTheWriterHandsOn) {
  WriterCache cache(100);
  {
    StoreTxn txn(*store_, {}, &cache);
    txn.Begin();
    txn.Put(Cf::kBalances, "4201-W001/SH-0001", "v1");
    txn.Keep();
    Commit(txn);
    txn.TakeOverlay();
  }
  // Someone else's write behind the writer's back would not be seen: the writer is the only
  // writer, and its cache answers before RocksDB.
  rocksdb::WriteBatch other;
  other.Put(store_->handle(Cf::kBalances), "4201-W001/SH-0001", "outside");
  ASSERT_THAT(store_->Write(other, false), IsOk());
  StoreTxn next(*store_, {}, &cache);
  EXPECT_EQ(Read(next, Cf::kBalances, "4201-W001/SH-0001"), "v1");
  // Deletes are cached as absent; column families it does not cache read RocksDB.
  next.Begin();
  next.Delete(Cf::kBalances, "4201-W001/SH-0001");
  next.Put(Cf::kRequests, "r1", "rec");
  next.Keep();
  Commit(next);
  next.TakeOverlay();
  StoreTxn third(*store_, {}, &cache);
  EXPECT_EQ(Read(third, Cf::kBalances, "4201-W001/SH-0001"), std::nullopt);
  EXPECT_EQ(Read(third, Cf::kRequests, "r1"), "rec");
  EXPECT_EQ(cache.size(), 1u);
}

TEST_F(StoreTxnTest, DroppedCommandsNeverReachTheCacheAndOverlaysWinOverIt) {
  WriterCache cache(100);
  StoreTxn txn(*store_, {}, &cache);
  txn.Begin();
  txn.Put(Cf::kWarehouses, "4201-W001", "refused");
  txn.Drop();
  EXPECT_EQ(Read(txn, Cf::kWarehouses, "4201-W001"), std::nullopt);  // cached: absent
  txn.Begin();
  txn.Put(Cf::kWarehouses, "4201-W001", "kept");
  txn.Keep();
  EXPECT_EQ(Read(txn, Cf::kWarehouses, "4201-W001"), "kept");
  auto in_flight = txn.TakeOverlay();
  StoreTxn later(*store_, {in_flight}, &cache);
  EXPECT_EQ(Read(later, Cf::kWarehouses, "4201-W001"), "kept");
}

TEST_F(StoreTxnTest, CacheStartsOverWhenFull) {
  WriterCache cache(2);
  cache.Set("a", "1");
  cache.Set("b", "2");
  cache.Set("b", "3");  // an update of a cached key does not count as growth
  EXPECT_EQ(cache.size(), 2u);
  cache.Set("c", "4");
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.Find("a"), nullptr);
  ASSERT_NE(cache.Find("c"), nullptr);
  EXPECT_EQ(*cache.Find("c"), "4");
}

// The group's batch is written in key order; what it leaves in the database must be exactly
// what the writes in their own order would have left: the last write to a key wins, deletes
// included, a dropped command's writes (appends too) are gone, and nothing of another column
// family is mixed in.
class KeyOrderedBatchTest : public StoreTxnTest {
 protected:
  struct Record {
    uint32_t cf;
    std::string key, value;
    bool is_delete;
  };
  // The batch's records in order, as RocksDB would apply them.
  std::vector<Record> Records(const rocksdb::WriteBatch& batch) {
    struct Walk : rocksdb::WriteBatch::Handler {
      std::vector<Record> out;
      rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& k,
                            const rocksdb::Slice& v) override {
        out.push_back({cf, k.ToString(), v.ToString(), false});
        return rocksdb::Status::OK();
      }
      rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& k) override {
        out.push_back({cf, k.ToString(), "", true});
        return rocksdb::Status::OK();
      }
    } walk;
    EXPECT_TRUE(batch.Iterate(&walk).ok());
    return walk.out;
  }
};

TEST_F(KeyOrderedBatchTest, SortsByFamilyAndKeyAndKeepsOnlyEachKeysLastWrite) {
  StoreTxn txn(*store_);
  txn.Begin();
  txn.Append(Cf::kMovements, "b", "m-b");
  txn.Put(Cf::kBalances, "k2", "first");
  txn.Put(Cf::kBalances, "k1", "x");
  txn.Keep();
  txn.Begin();
  txn.Append(Cf::kMovements, "c", "refused");
  txn.Put(Cf::kBalances, "k4", "refused");
  txn.Drop();
  txn.Begin();
  txn.Append(Cf::kMovements, "a", "m-a");
  txn.Put(Cf::kBalances, "k2", "second");
  txn.Delete(Cf::kBalances, "k1");
  txn.Delete(Cf::kBalances, "k3");
  txn.Keep();
  txn.Begin();
  txn.Put(Cf::kBalances, "k3", "back");
  txn.Keep();
  txn.Begin();
  txn.Append(Cf::kMovements, "d", "not kept yet");  // a command still being applied

  const auto records = Records(txn.KeyOrderedBatch());
  ASSERT_EQ(records.size(), 5u);
  const uint32_t b = store_->handle(Cf::kBalances)->GetID();
  const uint32_t m = store_->handle(Cf::kMovements)->GetID();
  ASSERT_LT(b, m);
  EXPECT_TRUE(records[0].cf == b && records[0].key == "k1" && records[0].is_delete);
  EXPECT_TRUE(records[1].cf == b && records[1].key == "k2" && records[1].value == "second");
  EXPECT_TRUE(records[2].cf == b && records[2].key == "k3" && records[2].value == "back");
  EXPECT_TRUE(records[3].cf == m && records[3].key == "a" && records[3].value == "m-a");
  EXPECT_TRUE(records[4].cf == m && records[4].key == "b" && records[4].value == "m-b");

  txn.Drop();
  Commit(txn);
  EXPECT_EQ(*store_->Get(Cf::kBalances, "k1"), std::nullopt);
  EXPECT_EQ(*store_->Get(Cf::kBalances, "k2"), "second");
  EXPECT_EQ(*store_->Get(Cf::kBalances, "k3"), "back");
  EXPECT_EQ(*store_->Get(Cf::kBalances, "k4"), std::nullopt);
  EXPECT_EQ(*store_->Get(Cf::kMovements, "c"), std::nullopt);
  EXPECT_EQ(*store_->Get(Cf::kMovements, "d"), std::nullopt);
  EXPECT_EQ(*store_->Get(Cf::kMovements, "a"), "m-a");
}

}  // namespace
}  // namespace stockpile::level
