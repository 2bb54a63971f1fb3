// StoreTxn's read path: a command sees its own writes, the group's, groups in flight, then the
// writer's cache, then RocksDB; the cache follows every group the writer hands on.
#include <gtest/gtest.h>

#include "services/level/level_store.h"
#include "tests/testutil/status_matchers.h"
#include "tests/testutil/process.h"

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
  void Commit(StoreTxn& txn) { ASSERT_THAT(store_->Write(txn.batch(), false), IsOk()); }
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
// what the batch in its own order would have left: the last write to a key wins, deletes
// included, and nothing of another column family is mixed in.
class KeyOrderedTest : public StoreTxnTest {
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
      rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& k, const rocksdb::Slice& v) override {
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

TEST_F(KeyOrderedTest, SortsByFamilyAndKeyAndKeepsOnlyEachKeysLastWrite) {
  rocksdb::WriteBatch batch;
  auto* balances = store_->handle(Cf::kBalances);
  auto* movements = store_->handle(Cf::kMovements);
  ASSERT_TRUE(batch.Put(movements, "b", "m-b").ok());
  ASSERT_TRUE(batch.Put(balances, "k2", "first").ok());
  ASSERT_TRUE(batch.Put(balances, "k1", "x").ok());
  ASSERT_TRUE(batch.Put(movements, "a", "m-a").ok());
  ASSERT_TRUE(batch.Put(balances, "k2", "second").ok());
  ASSERT_TRUE(batch.Delete(balances, "k1").ok());
  ASSERT_TRUE(batch.Delete(balances, "k3").ok());
  ASSERT_TRUE(batch.Put(balances, "k3", "back").ok());

  const auto records = Records(store_->KeyOrdered(batch));
  ASSERT_EQ(records.size(), 5u);
  const uint32_t b = balances->GetID(), m = movements->GetID();
  ASSERT_LT(b, m);
  EXPECT_TRUE(records[0].cf == b && records[0].key == "k1" && records[0].is_delete);
  EXPECT_TRUE(records[1].cf == b && records[1].key == "k2" && records[1].value == "second");
  EXPECT_TRUE(records[2].cf == b && records[2].key == "k3" && records[2].value == "back");
  EXPECT_TRUE(records[3].cf == m && records[3].key == "a" && records[3].value == "m-a");
  EXPECT_TRUE(records[4].cf == m && records[4].key == "b" && records[4].value == "m-b");

  rocksdb::WriteBatch ordered = store_->KeyOrdered(batch);
  ASSERT_THAT(store_->Write(ordered, false), IsOk());
  EXPECT_EQ(*store_->Get(Cf::kBalances, "k1"), std::nullopt);
  EXPECT_EQ(*store_->Get(Cf::kBalances, "k2"), "second");
  EXPECT_EQ(*store_->Get(Cf::kBalances, "k3"), "back");
}

TEST_F(KeyOrderedTest, LeavesABatchWithOtherRecordKindsAsItIs) {
  rocksdb::WriteBatch batch;
  ASSERT_TRUE(batch.Put(store_->handle(Cf::kBalances), "k2", "v").ok());
  ASSERT_TRUE(batch.Put(store_->handle(Cf::kBalances), "k1", "v").ok());
  ASSERT_TRUE(batch.PutLogData("note").ok());
  EXPECT_EQ(store_->KeyOrdered(batch).Data(), batch.Data());
  rocksdb::WriteBatch ranged;
  ASSERT_TRUE(ranged.Put(store_->handle(Cf::kBalances), "k2", "v").ok());
  ASSERT_TRUE(ranged.DeleteRange(store_->handle(Cf::kBalances), "a", "b").ok());
  EXPECT_EQ(store_->KeyOrdered(ranged).Data(), ranged.Data());
}

}  // namespace
}  // namespace stockpile::level
