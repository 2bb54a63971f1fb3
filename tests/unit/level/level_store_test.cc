// LevelStore's RocksDB set-up, checked by what RocksDB reports doing.
#include "services/level/level_store.h"

#include <gtest/gtest.h>
#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/testutil/process.h"
#include "tests/testutil/rocks_files.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::level {
namespace {

namespace fs = std::filesystem;
using stockpile::testing::IsOk;
using stockpile::testing::StatusIs;

// The names of the files directly in `dir` with `extension` (".sst", ".log"), sorted.
std::vector<std::string> FilesEndingIn(const std::string& dir, const std::string& extension) {
  std::vector<std::string> names;
  for (const auto& f : fs::directory_iterator(dir)) {
    if (f.path().extension() == extension) names.push_back(f.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// A database in `dir` holding `count` synced writes to balances, and a copy of it taken while
// it is open at `copy`: what a kill -9 leaves (every write in the WAL, nothing flushed).
void WriteAndCopyOpen(const std::string& dir, const std::string& copy, int count) {
  auto store = LevelStore::Open(dir, LevelStore::Options{});
  ASSERT_THAT(store, IsOk());
  for (int i = 0; i < count; ++i) {
    rocksdb::WriteBatch batch;
    batch.Put((*store)->handle(Cf::kBalances), absl::StrCat("4201-W001/SH-", i),
              std::string(200, 'b'));
    ASSERT_THAT((*store)->Write(batch, /*sync=*/true), IsOk());
  }
  fs::copy(dir, copy, fs::copy_options::recursive);
}

// The path of the one write-ahead log in `dir`; empty when there is not exactly one.
std::string OnlyWal(const std::string& dir) {
  const std::vector<std::string> logs = FilesEndingIn(dir, ".log");
  return logs.size() == 1 ? dir + "/" + logs[0] : std::string();
}

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

// Defect (audit 28, F2): RocksDB's default WAL recovery stops at the first corruption and opens
// without everything after it, so one flipped byte in the WAL silently dropped acknowledged
// writes. Corruption inside the log now fails the open; nothing is dropped or rewritten.
TEST(LevelStoreTest, CorruptionInsideTheWalFailsTheOpen) {
  stockpile::testing::TempDir tmp;
  WriteAndCopyOpen(tmp.Sub("db"), tmp.Sub("copy"), 60);
  const std::string wal = OnlyWal(tmp.Sub("copy"));
  ASSERT_FALSE(wal.empty());
  const auto size = fs::file_size(wal);
  {  // one byte of a value in the middle of the log (a header byte there could read as a tail)
    std::fstream f(wal, std::ios::in | std::ios::out | std::ios::binary);
    std::string bytes(size, '\0');
    f.read(bytes.data(), static_cast<std::streamsize>(size));
    const size_t at = bytes.find("bbbb", size / 2);
    ASSERT_NE(at, std::string::npos);
    f.seekp(static_cast<std::streamoff>(at + 2));
    f.put('c');
  }
  auto opened = LevelStore::Open(tmp.Sub("copy"), LevelStore::Options{});
  EXPECT_THAT(opened.status(), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(opened.status().message()),
              ::testing::HasSubstr("the database at " + tmp.Sub("copy")));
  EXPECT_EQ(fs::file_size(wal), size);
}

// The mode chosen for F2 still tolerates what a crash during a write leaves: a torn last record
// (never acknowledged). Everything before it is there.
TEST(LevelStoreTest, ATornLastWalRecordIsDroppedAndTheRestOpens) {
  stockpile::testing::TempDir tmp;
  WriteAndCopyOpen(tmp.Sub("db"), tmp.Sub("copy"), 20);
  const std::string wal = OnlyWal(tmp.Sub("copy"));
  ASSERT_FALSE(wal.empty());
  fs::resize_file(wal, fs::file_size(wal) - 50);
  auto opened = LevelStore::Open(tmp.Sub("copy"), LevelStore::Options{});
  ASSERT_THAT(opened, IsOk());
  auto first = (*opened)->Get(Cf::kBalances, "4201-W001/SH-18");
  ASSERT_THAT(first, IsOk());
  EXPECT_TRUE(first->has_value());
  auto torn = (*opened)->Get(Cf::kBalances, "4201-W001/SH-19");
  ASSERT_THAT(torn, IsOk());
  EXPECT_FALSE(torn->has_value());
}

// Defect (audit 28, F3): with create_if_missing on a directory that held a database without
// its CURRENT, RocksDB made a new, empty one and deleted the old table files. A directory that
// holds files is now only ever opened, and one that is not a database is refused as it is.
TEST(LevelStoreTest, ADatabaseWithoutItsCurrentFileIsRefusedAndKeepsItsTableFiles) {
  stockpile::testing::TempDir tmp;
  {
    auto store = LevelStore::Open(tmp.Sub("db"), LevelStore::Options{});
    ASSERT_THAT(store, IsOk());
    rocksdb::WriteBatch batch;
    batch.Put((*store)->handle(Cf::kBalances), "4201-W001/SH-0001", "ten quilts");
    ASSERT_THAT((*store)->Write(batch, /*sync=*/true), IsOk());
  }  // closing flushes: the data is in table files
  const std::vector<std::string> tables = FilesEndingIn(tmp.Sub("db"), ".sst");
  ASSERT_FALSE(tables.empty());
  fs::remove(tmp.Sub("db") + "/CURRENT");
  for (const auto& log : FilesEndingIn(tmp.Sub("db"), ".log")) fs::remove(tmp.Sub("db/" + log));

  auto opened = LevelStore::Open(tmp.Sub("db"), LevelStore::Options{});
  EXPECT_THAT(opened.status(), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_FALSE(fs::exists(tmp.Sub("db") + "/CURRENT"));
  EXPECT_EQ(FilesEndingIn(tmp.Sub("db"), ".sst"), tables);
}

TEST(LevelStoreTest, ADirectoryHoldingOtherFilesIsNotMadeADatabase) {
  stockpile::testing::TempDir tmp;
  fs::create_directories(tmp.Sub("data"));
  std::ofstream(tmp.Sub("data/notes.txt")) << "not a database";
  auto opened = LevelStore::Open(tmp.Sub("data"), LevelStore::Options{});
  EXPECT_THAT(opened.status(), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_FALSE(fs::exists(tmp.Sub("data/CURRENT")));
}

// Where nothing is yet (a missing directory, or one holding only directories, like a fresh
// volume's lost+found), the database is made.
TEST(LevelStoreTest, AMissingOrFilelessDirectoryGetsANewDatabase) {
  stockpile::testing::TempDir tmp;
  EXPECT_THAT(LevelStore::Open(tmp.Sub("new/db"), LevelStore::Options{}).status(), IsOk());
  fs::create_directories(tmp.Sub("volume/lost+found"));
  EXPECT_THAT(LevelStore::Open(tmp.Sub("volume"), LevelStore::Options{}).status(), IsOk());
  EXPECT_TRUE(fs::exists(tmp.Sub("volume/CURRENT")));
}

}  // namespace
}  // namespace stockpile::level
