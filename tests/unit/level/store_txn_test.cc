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

}  // namespace
}  // namespace stockpile::level
