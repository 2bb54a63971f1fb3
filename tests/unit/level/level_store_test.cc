// LevelStore's RocksDB set-up, checked by what RocksDB reports doing.
#include "services/level/level_store.h"

#include <gtest/gtest.h>
#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>

#include <functional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/testutil/process.h"
#include "tests/testutil/rocks_files.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::level {
namespace {

using stockpile::testing::IsOk;

// Memtable filter misses of one Get, or -1 when the Get failed.
int64_t MemtableFilterMisses(const LevelStore& store, Cf cf, const std::string& key) {
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
  rocksdb::get_perf_context()->Reset();
  auto value = store.Get(cf, key);
  const int64_t misses =
      static_cast<int64_t>(rocksdb::get_perf_context()->bloom_memtable_miss_count);
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
  return value.ok() ? misses : -1;
}

// Every new command looks up its request id, which is almost never there: a memtable filter
// answers that miss without searching the memtable's skip list (for single receipts, 10-30 %
// of the writer's CPU).
TEST(LevelStoreTest, UnknownRequestIdsAreAnsweredByTheMemtableFilter) {
  stockpile::testing::TempDir tmp;
  auto store = LevelStore::Open(tmp.path() + "/db", LevelStore::Options{});
  ASSERT_THAT(store, IsOk());
  rocksdb::WriteBatch batch;
  batch.Put((*store)->handle(Cf::kRequests), "req-1", "record");
  ASSERT_THAT((*store)->Write(batch, false), IsOk());

  EXPECT_EQ(MemtableFilterMisses(**store, Cf::kRequests, "req-2"), 1);
  // A key that is there is found as before.
  EXPECT_EQ(MemtableFilterMisses(**store, Cf::kRequests, "req-1"), 0);
  auto found = (*store)->Get(Cf::kRequests, "req-1");
  ASSERT_THAT(found, IsOk());
  EXPECT_EQ(found->value_or(""), "record");
}

Overlay GroupWriting(Cf cf, int first, int count) {
  Overlay group;
  for (int i = first; i < first + count; ++i) {
    group[StoreTxn::OverlayKey(cf, absl::StrCat("4201", i, "-W001/SH-0001"))] = "balance";
  }
  group[StoreTxn::OverlayKey(Cf::kRequests, absl::StrCat("req-", first))] = "record";
  return group;
}

// RocksDB counts into a per-thread perf context at every key comparison unless the thread
// turns that off; nothing reads those counts, so any thread the store works on turns them off
// (the syncer's instructions fell by 15 % under batched receipts).
TEST(LevelStoreTest, ThreadsThatUseTheStoreStopRocksDbPerfCounting) {
  stockpile::testing::TempDir tmp;
  auto store = LevelStore::Open(tmp.path() + "/db", LevelStore::Options{});
  ASSERT_THAT(store, IsOk());
  const std::vector<std::function<void()>> uses = {
      [&] { EXPECT_THAT((*store)->Get(Cf::kBalances, "b").status(), IsOk()); },
      [&] {
        rocksdb::WriteBatch batch;
        batch.Put((*store)->handle(Cf::kBalances), "b", "1");
        EXPECT_THAT((*store)->Write(batch, false), IsOk());
      },
      [&] { (*store)->NewIterator(Cf::kBalances)->SeekToFirst(); },
  };
  for (size_t i = 0; i < uses.size(); ++i) {
    std::thread([&] {
      EXPECT_EQ(rocksdb::GetPerfLevel(), rocksdb::PerfLevel::kEnableCount) << "RocksDB's default";
      uses[i]();
      EXPECT_EQ(rocksdb::GetPerfLevel(), rocksdb::PerfLevel::kDisable) << i;
    }).join();
  }
}

// A clean stop leaves the next start nothing to replay: after a heavy load the WAL of the
// unflushed memtables (up to max_total_wal_size) took 3.9 s to replay on the next start.
TEST(LevelStoreTest, ACleanCloseLeavesNoWalToReplay) {
  stockpile::testing::TempDir tmp;
  {
    auto store = LevelStore::Open(tmp.path() + "/db", LevelStore::Options{});
    ASSERT_THAT(store, IsOk());
    rocksdb::WriteBatch batch;
    for (int i = 0; i < 1000; ++i) {
      batch.Put((*store)->handle(Cf::kMovements), absl::StrCat("m", i), "movement");
      batch.Put((*store)->handle(Cf::kBalances), absl::StrCat("b", i), "balance");
    }
    ASSERT_THAT((*store)->Write(batch, true), IsOk());
    EXPECT_GE((*store)->IntProperty("rocksdb.num-entries-active-mem-table"), 2000u);
  }
  EXPECT_EQ(stockpile::testing::WalBytes(tmp.path() + "/db"), 0u)
      << "the next start would replay this much WAL";
  auto reopened = LevelStore::Open(tmp.path() + "/db", LevelStore::Options{});
  ASSERT_THAT(reopened, IsOk());
  auto value = (*reopened)->Get(Cf::kBalances, "b999");
  ASSERT_THAT(value.status(), IsOk());
  EXPECT_EQ(value->value_or(""), "balance");
}

TEST(VersionChurnTest, ManyVersionsOfFewKeysAskForAFlush) {
  VersionChurn churn(Cf::kBalances, /*min_versions=*/50, /*versions_per_key=*/4);
  // The same 10 balances in each group: 10 versions a group, other families not counted.
  for (int group = 1; group <= 4; ++group) {
    EXPECT_FALSE(churn.Note(GroupWriting(Cf::kBalances, 0, 10))) << group;
  }
  EXPECT_EQ(churn.versions(), 40u);
  EXPECT_TRUE(churn.Note(GroupWriting(Cf::kBalances, 0, 10)));  // 50 versions of 10 keys
  churn.Flushed();
  EXPECT_EQ(churn.versions(), 0u);  // counting starts again
  EXPECT_FALSE(churn.Note(GroupWriting(Cf::kBalances, 0, 10)));
}

TEST(VersionChurnTest, KeepsAskingUntilAFlushStarted) {
  VersionChurn churn(Cf::kBalances, /*min_versions=*/50, /*versions_per_key=*/4);
  for (int group = 1; group <= 4; ++group) churn.Note(GroupWriting(Cf::kBalances, 0, 10));
  EXPECT_TRUE(churn.Note(GroupWriting(Cf::kBalances, 0, 10)));
  // No flush could start (an earlier one still running): the next group asks again rather
  // than counting from zero while the memtable keeps these versions.
  EXPECT_TRUE(churn.Note(GroupWriting(Cf::kBalances, 0, 10)));
  EXPECT_EQ(churn.versions(), 60u);
  churn.Flushed();
  EXPECT_FALSE(churn.Note(GroupWriting(Cf::kBalances, 0, 10)));
}

TEST(LevelStoreTest, FlushInBackgroundSaysWhetherItStartedOne) {
  stockpile::testing::TempDir tmp;
  auto store = LevelStore::Open(tmp.path() + "/db", LevelStore::Options{});
  ASSERT_THAT(store, IsOk());
  LevelStore& s = **store;
  auto put = [&](const std::string& key) {
    rocksdb::WriteBatch batch;
    ASSERT_TRUE(batch.Put(s.handle(Cf::kBalances), key, "balance").ok());
    ASSERT_THAT(s.Write(batch, /*sync=*/false), IsOk());
  };
  // Flushes wait until background work resumes, so the first one is still pending below.
  ASSERT_TRUE(s.db()->PauseBackgroundWork().ok());
  put("b1");
  auto first = s.FlushInBackground(Cf::kBalances);
  ASSERT_THAT(first.status(), IsOk());
  EXPECT_TRUE(*first);
  put("b2");
  auto second = s.FlushInBackground(Cf::kBalances);
  ASSERT_THAT(second.status(), IsOk());
  EXPECT_FALSE(*second) << "an earlier flush of the family is still pending";
  ASSERT_TRUE(s.db()->ContinueBackgroundWork().ok());
  rocksdb::FlushOptions wait;
  ASSERT_TRUE(s.db()->Flush(wait, s.handle(Cf::kBalances)).ok());
  auto third = s.FlushInBackground(Cf::kBalances);
  ASSERT_THAT(third.status(), IsOk());
  EXPECT_TRUE(*third);
}

TEST(VersionChurnTest, VersionsSpreadOverManyKeysNeverDo) {
  VersionChurn churn(Cf::kBalances, /*min_versions=*/50, /*versions_per_key=*/4);
  for (int group = 0; group < 100; ++group) {
    // Mostly new balances, a few written again: about 1.2 versions per key.
    EXPECT_FALSE(churn.Note(GroupWriting(Cf::kBalances, group * 8, 10))) << group;
  }
  EXPECT_EQ(churn.versions(), 1000u);
  // Other families' writes are not counted.
  EXPECT_FALSE(churn.Note(GroupWriting(Cf::kHolds, 0, 500)));
  EXPECT_EQ(churn.versions(), 1000u);
}

}  // namespace
}  // namespace stockpile::level
