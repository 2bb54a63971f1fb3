// Online backups: checkpoints that open as a database, found again by their request id, and
// only the newest --backup-keep of them kept.
#include "services/level/backup.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "services/level/keys.h"
#include "stockpile/internal/level_store.pb.h"
#include "tests/testutil/process.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::level {
namespace {

namespace fs = std::filesystem;
using stockpile::testing::IsOk;
using ::testing::HasSubstr;

constexpr int64_t kMidnight = 1764806400000123;  // 2025-12-04T00:00:00.000123Z
constexpr int64_t kMinute = 60'000'000;

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = LevelStore::Open(tmp_.Sub("db"), LevelStore::Options{});
    ASSERT_THAT(opened, IsOk());
    store_ = std::move(*opened);
  }

  void Put(const std::string& key, const std::string& value) {
    rocksdb::WriteBatch batch;
    batch.Put(store_->handle(Cf::kBalances), key, value);
    ASSERT_THAT(store_->Write(batch, true), IsOk());
  }

  std::optional<std::string> GetFrom(const std::string& db, const std::string& key) {
    auto copy = LevelStore::Open(db, LevelStore::Options{});
    EXPECT_THAT(copy, IsOk());
    if (!copy.ok()) return std::nullopt;
    auto value = (*copy)->Get(Cf::kBalances, key);
    EXPECT_THAT(value, IsOk());
    return value.ok() ? *value : std::nullopt;
  }

  // A backup by `keeper` that begins at `sequence`, `minutes` after midnight.
  absl::StatusOr<v1::Backup> Take(BackupKeeper& keeper, const std::string& request_id,
                                  uint64_t sequence, int minutes) {
    return keeper.Take(*store_, request_id, [&] {
      return BackupPoint{sequence, kMidnight + minutes * kMinute};
    });
  }

  // The store's meta as the ledger writes it with each group: its head and its level.
  // This instance's backup ("nightly-1", head 7) of a database holding ten quilts; the live
  // database holds eleven since, and stays open.
  absl::StatusOr<v1::Backup> BackUpTenQuiltsThenStoreEleven() {
    Put("4201-W001/SH-0001", "ten quilts");
    SetHead(*store_, 7);
    BackupKeeper keeper(tmp_.Sub("backups"), 0, origin_);
    auto backup = Take(keeper, "nightly-1", 7, 0);
    Put("4201-W001/SH-0001", "eleven quilts");
    return backup;
  }
  static void SetHead(LevelStore& store, uint64_t head, const std::string& level = "county") {
    internal::StoreMeta meta;
    meta.set_last_sequence(head);
    meta.set_level(level);
    rocksdb::WriteBatch batch;
    batch.Put(store.handle(Cf::kDefault), std::string(keys::kMeta), meta.SerializeAsString());
    ASSERT_THAT(store.Write(batch, true), IsOk());
  }

  // The level restored into db/ takes a change: one balance written, its head at 8.
  void TakeAChangeAfterTheRestore() {
    auto reopened = LevelStore::Open(tmp_.Sub("db"), LevelStore::Options{});
    ASSERT_THAT(reopened, IsOk());
    rocksdb::WriteBatch batch;
    batch.Put((*reopened)->handle(Cf::kBalances), "4201-W001/SH-0001", "twelve quilts");
    ASSERT_THAT((*reopened)->Write(batch, true), IsOk());
    SetHead(**reopened, 8);
  }

  // The county instance hosting 4201 restores into `db`.
  RestoreTarget Target(const std::string& db) {
    return {db, "county", {"4201"}, "county-a-0", false};
  }

  static std::vector<std::string> RequestIds(const std::vector<v1::Backup>& backups) {
    std::vector<std::string> ids;
    for (const auto& b : backups) ids.push_back(b.request_id());
    return ids;
  }

  stockpile::testing::TempDir tmp_;
  std::unique_ptr<LevelStore> store_;
  const BackupOrigin origin_{"county", {"4201"}, "county-a-0"};
};

// A backup is a database of its own: it opens as --db (its description file beside RocksDB's
// own files), holds what was written before it, and nothing written after.
TEST_F(BackupTest, ABackupOpensAsADatabaseWithWhatWasWrittenBeforeIt) {
  Put("4201-W001/SH-0001", "ten quilts");
  BackupKeeper keeper(tmp_.Sub("backups"), 0);
  auto backup = Take(keeper, "nightly-1", 7, 0);
  ASSERT_THAT(backup, IsOk());
  EXPECT_EQ(backup->path(), tmp_.Sub("backups/backup-20251204T000000.000Z-seq7"));
  EXPECT_EQ(backup->sequence(), 7u);
  EXPECT_EQ(backup->request_id(), "nightly-1");
  EXPECT_GT(backup->size_bytes(), 0);
  EXPECT_TRUE(fs::exists(backup->path() + "/STOCKPILE-BACKUP.json"));
  Put("4201-W002/SH-0001", "later");

  EXPECT_EQ(GetFrom(backup->path(), "4201-W001/SH-0001"), "ten quilts");
  EXPECT_EQ(GetFrom(backup->path(), "4201-W002/SH-0001"), std::nullopt);
}

// A retry (the first answer lost, or a job run twice) finds the backup its request id took, also
// after the level restarted; it copies nothing again and the head it reports is the first one's.
TEST_F(BackupTest, ARetryWithTheSameRequestIdReturnsTheFirstBackupAndCopiesNothing) {
  Put("4201-W001/SH-0001", "ten quilts");
  absl::StatusOr<v1::Backup> first;
  {
    BackupKeeper before_restart(tmp_.Sub("backups"), 0);
    first = Take(before_restart, "nightly-1", 7, 0);
  }
  ASSERT_THAT(first, IsOk());
  Put("4201-W001/SH-0001", "eleven quilts");

  BackupKeeper after_restart(tmp_.Sub("backups"), 0);
  auto again = Take(after_restart, "nightly-1", 9, 5);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->path(), first->path());
  EXPECT_EQ(again->sequence(), 7u);
  EXPECT_EQ(again->create_time().seconds(), first->create_time().seconds());
  EXPECT_EQ(after_restart.List().size(), 1u);

  auto other = Take(after_restart, "nightly-2", 9, 5);
  ASSERT_THAT(other, IsOk());
  EXPECT_NE(other->path(), first->path());
  EXPECT_EQ(RequestIds(after_restart.List()), (std::vector<std::string>{"nightly-2", "nightly-1"}));
}

// --backup-keep=2: each new backup deletes all but the newest two, and the staging directory of
// a copy a crash interrupted; whatever else an operator keeps in the directory stays.
TEST_F(BackupTest, OnlyTheNewestBackupsAreKept) {
  BackupKeeper keeper(tmp_.Sub("backups"), 2);
  fs::create_directories(tmp_.Sub("backups/notes"));
  fs::create_directories(tmp_.Sub("backups/backup-20251203T235900.000Z-seq1.tmp"));
  for (int i = 1; i <= 4; ++i) {
    ASSERT_THAT(Take(keeper, "run-" + std::to_string(i), i, i), IsOk());
  }
  const auto kept = keeper.List();
  EXPECT_EQ(RequestIds(kept), (std::vector<std::string>{"run-4", "run-3"}));
  for (const auto& b : kept) EXPECT_TRUE(fs::exists(b.path())) << b.path();
  EXPECT_FALSE(fs::exists(tmp_.Sub("backups/backup-20251204T000100.000Z-seq1")));
  EXPECT_FALSE(fs::exists(tmp_.Sub("backups/backup-20251203T235900.000Z-seq1.tmp")));
  EXPECT_TRUE(fs::exists(tmp_.Sub("backups/notes")));
}

// A checkpoint without its description (made by an older level, or interrupted right after the
// copy) is still listed, described by its name, and counts towards --backup-keep.
TEST_F(BackupTest, ACheckpointWithoutItsDescriptionIsListedByItsName) {
  auto bare = CreateBackup(*store_, tmp_.Sub("backups"), 5, kMidnight);
  ASSERT_THAT(bare, IsOk());
  std::ofstream(bare->path() + "/STOCKPILE-BACKUP.json") << "{ not json";
  auto listed = ListBackups(tmp_.Sub("backups"));
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].path(), bare->path());
  EXPECT_EQ(listed[0].sequence(), 5u);
  EXPECT_EQ(listed[0].create_time().seconds(), kMidnight / 1'000'000);
  EXPECT_EQ(listed[0].request_id(), "");

  BackupKeeper keeper(tmp_.Sub("backups"), 1);
  ASSERT_THAT(Take(keeper, "run-1", 6, 1), IsOk());
  EXPECT_EQ(RequestIds(keeper.List()), (std::vector<std::string>{"run-1"}));
}

// --restore-from: the backup's copy becomes --db, the database it replaces is kept aside, and
// the same backup named again (the flag left on) changes nothing while nothing was written.
TEST_F(BackupTest, RestoreReplacesTheDatabaseKeepsTheOldOneAndHappensOnce) {
  auto backup = BackUpTenQuiltsThenStoreEleven();
  ASSERT_THAT(backup, IsOk());
  store_.reset();  // the level is stopped

  auto restored = RestoreBackup(backup->path() + "/", Target(tmp_.Sub("db")), kMidnight + kMinute);
  ASSERT_THAT(restored, IsOk());
  EXPECT_FALSE(restored->already);
  EXPECT_EQ(restored->backup.sequence(), 7u);
  EXPECT_EQ(restored->replaced, tmp_.Sub("db.replaced-20251204T000100.000Z"));
  EXPECT_TRUE(restored->warnings.empty());
  EXPECT_EQ(GetFrom(tmp_.Sub("db"), "4201-W001/SH-0001"), "ten quilts");
  EXPECT_EQ(GetFrom(restored->replaced, "4201-W001/SH-0001"), "eleven quilts");
  EXPECT_FALSE(fs::exists(tmp_.Sub("db.restoring")));

  // The level restarts (opens and closes the database) with the flag still on.
  auto again = RestoreBackup(backup->path(), Target(tmp_.Sub("db")), kMidnight + 2 * kMinute);
  ASSERT_THAT(again, IsOk());
  EXPECT_TRUE(again->already);
  EXPECT_EQ(GetFrom(tmp_.Sub("db"), "4201-W001/SH-0001"), "ten quilts");
  EXPECT_FALSE(fs::exists(tmp_.Sub("db.replaced-20251204T000200.000Z")));
}

// Defect: a second level process with the same --db moved the live database aside and served
// a copy, both acknowledging writes. RocksDB's lock on --db refuses that.
TEST_F(BackupTest, RestoreIsRefusedWhileTheDatabaseIsOpen) {
  auto backup = BackUpTenQuiltsThenStoreEleven();  // store_ stays open: the level still serves
  ASSERT_THAT(backup, IsOk());

  auto restored = RestoreBackup(backup->path(), Target(tmp_.Sub("db")), kMidnight + kMinute);
  EXPECT_EQ(restored.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(restored.status().message()),
              HasSubstr("the database " + tmp_.Sub("db") + " is in use"));
  EXPECT_FALSE(fs::exists(tmp_.Sub("db.replaced-20251204T000100.000Z")));
  EXPECT_FALSE(fs::exists(tmp_.Sub("db.restoring")));
  store_.reset();
  EXPECT_EQ(GetFrom(tmp_.Sub("db"), "4201-W001/SH-0001"), "eleven quilts");
}

// Defect: a partial or corrupt backup was swapped in unchecked, and the level could not open it
// afterwards. Now the copy is opened and checksummed first; a bad one leaves --db in place.
TEST_F(BackupTest, APartialOrCorruptBackupIsNotSwappedIn) {
  auto backup = BackUpTenQuiltsThenStoreEleven();
  ASSERT_THAT(backup, IsOk());
  store_.reset();
  // Copies, not the backup itself: its table files are hard links to the live database's.
  const fs::path partial = tmp_.Sub("partial/backup-20251204T000000.000Z-seq7");
  const fs::path corrupt = tmp_.Sub("corrupt/backup-20251204T000000.000Z-seq7");
  for (const fs::path& copy : {partial, corrupt}) {
    fs::create_directories(copy.parent_path());
    fs::copy(backup->path(), copy, fs::copy_options::recursive);
  }
  int tables = 0;
  for (const auto& f : fs::directory_iterator(partial)) {
    if (f.path().extension() == ".sst" && tables++ == 0) fs::remove(f.path());
  }
  for (const auto& f : fs::directory_iterator(corrupt)) {
    if (f.path().extension() != ".sst") continue;
    std::fstream table(f.path(), std::ios::in | std::ios::out | std::ios::binary);
    table.seekp(8);
    table.write("garbage!garbage!", 16);
  }
  ASSERT_GT(tables, 0);

  for (const fs::path& bad : {partial, corrupt}) {
    auto restored = RestoreBackup(bad.string(), Target(tmp_.Sub("db")), kMidnight + kMinute);
    EXPECT_FALSE(restored.ok()) << bad;
    EXPECT_THAT(std::string(restored.status().message()),
                HasSubstr("the backup " + bad.string() + " cannot be restored"));
    EXPECT_FALSE(fs::exists(tmp_.Sub("db.restoring"))) << bad;
    EXPECT_FALSE(fs::exists(tmp_.Sub("db.replaced-20251204T000100.000Z"))) << bad;
    EXPECT_EQ(GetFrom(tmp_.Sub("db"), "4201-W001/SH-0001"), "eleven quilts");
  }
}

// Defect: another instance's backup was restored without complaint. Its description names its
// level, regions and instance id; a mismatch is refused naming both, unless overridden, and a
// backup described before those fields is restored with a warning.
TEST_F(BackupTest, AnotherInstancesBackupIsRefused) {
  Put("4201-W001/SH-0001", "ten quilts");
  SetHead(*store_, 7);
  BackupKeeper keeper(tmp_.Sub("backups"), 0, origin_);
  auto backup = Take(keeper, "nightly-1", 7, 0);
  ASSERT_THAT(backup, IsOk());
  EXPECT_EQ(backup->level(), "county");
  EXPECT_EQ(backup->instance_id(), "county-a-0");
  BackupKeeper older(tmp_.Sub("older-backups"), 0);  // an older release's: no origin
  auto unnamed = Take(older, "nightly-0", 7, 0);
  ASSERT_THAT(unnamed, IsOk());
  store_.reset();

  const std::vector<RestoreTarget> others = {
      {tmp_.Sub("db"), "county", {"4202"}, "county-b-0", false},
      {tmp_.Sub("db"), "county", {"4201"}, "county-b-0", false},
      {tmp_.Sub("db"), "city", {"4201"}, "", false}};
  for (const auto& other : others) {
    auto refused = RestoreBackup(backup->path(), other, kMidnight + kMinute);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(refused.status().message()),
                HasSubstr("is a copy of level county, regions 4201, instance county-a-0; this "
                          "instance is level " +
                          other.level + ", regions " + other.regions[0]));
    EXPECT_FALSE(fs::exists(tmp_.Sub("db.replaced-20251204T000100.000Z")));
  }
  RestoreTarget overridden = others[0];
  overridden.any_instance = true;
  auto taken = RestoreBackup(backup->path(), overridden, kMidnight + kMinute);
  ASSERT_THAT(taken, IsOk());
  ASSERT_EQ(taken->warnings.size(), 1u);
  EXPECT_THAT(taken->warnings[0], HasSubstr("--restore-any-instance"));
  // The override does not make a county database serve as a city: its store meta says county.
  auto city = RestoreBackup(backup->path(), {tmp_.Sub("db2"), "city", {"4201"}, "", true},
                            kMidnight + kMinute);
  EXPECT_THAT(std::string(city.status().message()), HasSubstr("it holds a county database"));

  auto old = RestoreBackup(unnamed->path(), Target(tmp_.Sub("db3")), kMidnight + kMinute);
  ASSERT_THAT(old, IsOk());
  ASSERT_EQ(old->warnings.size(), 1u);
  EXPECT_THAT(old->warnings[0], HasSubstr("does not say which instance it is a copy of"));
}

// Defect: "already restored" compared only (sequence, create time), and a restored database
// carried its backup's description. Now each backup has an id, a restored database is not a
// backup, and the same backup again is skipped, keeping what the database took since.
TEST_F(BackupTest, OnlyTheSameBackupUnchangedSinceCountsAsAlreadyRestored) {
  Put("4201-W001/SH-0001", "ten quilts");
  SetHead(*store_, 7);
  BackupKeeper keeper_a(tmp_.Sub("backups-a"), 0, origin_);
  auto a = Take(keeper_a, "nightly-1", 7, 0);
  ASSERT_THAT(a, IsOk());
  Put("4201-W001/SH-0001", "eleven quilts");
  BackupKeeper keeper_b(tmp_.Sub("backups-b"), 0, origin_);
  auto b = Take(keeper_b, "nightly-1", 7, 0);  // the same sequence and time, other content
  ASSERT_THAT(b, IsOk());
  EXPECT_NE(a->id(), b->id());
  EXPECT_EQ(a->id().size(), 32u);
  store_.reset();

  ASSERT_THAT(RestoreBackup(a->path(), Target(tmp_.Sub("db")), kMidnight + kMinute), IsOk());
  EXPECT_FALSE(fs::exists(tmp_.Sub("db/STOCKPILE-BACKUP.json")));
  auto other = RestoreBackup(b->path(), Target(tmp_.Sub("db")), kMidnight + 2 * kMinute);
  ASSERT_THAT(other, IsOk());
  EXPECT_FALSE(other->already);
  EXPECT_EQ(GetFrom(tmp_.Sub("db"), "4201-W001/SH-0001"), "eleven quilts");

  // A restored database (here the one moved aside) is not a backup, whatever files it holds.
  std::ofstream(other->replaced + "/STOCKPILE-BACKUP.json")
      << std::ifstream(a->path() + "/STOCKPILE-BACKUP.json").rdbuf();
  auto database = RestoreBackup(other->replaced, Target(tmp_.Sub("db")), kMidnight + 3 * kMinute);
  EXPECT_EQ(database.status().code(), absl::StatusCode::kNotFound);

  // the restored level takes changes, then restarts with the flag still on
  ASSERT_NO_FATAL_FAILURE(TakeAChangeAfterTheRestore());
  // The same backup again: already restored, and the change since is kept, not restored over.
  auto again = RestoreBackup(b->path(), Target(tmp_.Sub("db")), kMidnight + 4 * kMinute);
  ASSERT_THAT(again, IsOk());
  EXPECT_TRUE(again->already);
  EXPECT_EQ(again->changes_since, 1u);
  EXPECT_EQ(GetFrom(tmp_.Sub("db"), "4201-W001/SH-0001"), "twelve quilts");
}

// Defect: --db=/data/db/ put the staging copy and the replaced database inside the directory.
TEST_F(BackupTest, RestoreIntoADbPathWithATrailingSlashUsesItsSiblings) {
  auto backup = BackUpTenQuiltsThenStoreEleven();
  ASSERT_THAT(backup, IsOk());
  store_.reset();

  auto restored = RestoreBackup(backup->path(), Target(tmp_.Sub("db") + "/"), kMidnight + kMinute);
  ASSERT_THAT(restored, IsOk());
  EXPECT_EQ(restored->replaced, tmp_.Sub("db.replaced-20251204T000100.000Z"));
  EXPECT_EQ(GetFrom(tmp_.Sub("db"), "4201-W001/SH-0001"), "ten quilts");
  EXPECT_EQ(GetFrom(restored->replaced, "4201-W001/SH-0001"), "eleven quilts");
  EXPECT_FALSE(fs::exists(tmp_.Sub("db.restoring")));
}

TEST_F(BackupTest, RestoreFromSomethingThatIsNotABackupChangesNothing) {
  Put("4201-W001/SH-0001", "ten quilts");
  store_.reset();
  fs::create_directories(tmp_.Sub("backups/backup-20251204T000000.000Z-seq1"));  // empty
  for (const std::string& bad : {tmp_.Sub("nowhere"), tmp_.Sub("backups"),
                                 tmp_.Sub("backups/backup-20251204T000000.000Z-seq1")}) {
    auto restored = RestoreBackup(bad, Target(tmp_.Sub("db")), kMidnight);
    EXPECT_EQ(restored.status().code(), absl::StatusCode::kNotFound) << bad;
    EXPECT_THAT(std::string(restored.status().message()), ::testing::HasSubstr("is not a backup"));
  }
  EXPECT_EQ(GetFrom(tmp_.Sub("db"), "4201-W001/SH-0001"), "ten quilts");
  EXPECT_FALSE(fs::exists(tmp_.Sub("db.restoring")));
}

TEST_F(BackupTest, WithoutABackupDirectoryItIsRefusedAndWritesNothing) {
  BackupKeeper keeper("", 0);
  auto backup = Take(keeper, "nightly-1", 1, 0);
  EXPECT_EQ(backup.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(backup.status().message().find("--backup-dir"), std::string::npos);
  EXPECT_TRUE(keeper.List().empty());
}

// Defect (audit 28, F5): an emptied or torn STOCKPILE-RESTORED-FROM.json read as "not restored
// from this backup", so a restart with --restore-from still on restored again and moved the
// changes taken since aside. An unreadable marker now refuses the restore; --db stays.
TEST_F(BackupTest, AnUnreadableRestoreMarkerRefusesToRestoreAgain) {
  auto backup = BackUpTenQuiltsThenStoreEleven();
  ASSERT_THAT(backup, IsOk());
  store_.reset();
  ASSERT_THAT(RestoreBackup(backup->path(), Target(tmp_.Sub("db")), kMidnight + kMinute), IsOk());
  ASSERT_NO_FATAL_FAILURE(TakeAChangeAfterTheRestore());
  for (const std::string& marker : {std::string(), std::string("{\"backupId\": \"ab")}) {
    std::ofstream(tmp_.Sub("db/STOCKPILE-RESTORED-FROM.json"), std::ios::trunc) << marker;
    auto again = RestoreBackup(backup->path(), Target(tmp_.Sub("db")), kMidnight + 2 * kMinute);
    EXPECT_EQ(again.status().code(), absl::StatusCode::kDataLoss) << marker;
    EXPECT_THAT(std::string(again.status().message()),
                HasSubstr("STOCKPILE-RESTORED-FROM.json is unreadable"));
    EXPECT_EQ(GetFrom(tmp_.Sub("db"), "4201-W001/SH-0001"), "twelve quilts");
    EXPECT_FALSE(fs::exists(tmp_.Sub("db.replaced-20251204T000200.000Z")));
  }
}

// Audit 28, F8: a restore killed while copying left <db>.restoring, which a start without
// --restore-from never removed.
TEST_F(BackupTest, TheCopyOfAnInterruptedRestoreIsRemovedOnceTheDatabaseIsOpen) {
  fs::create_directories(tmp_.Sub("db.restoring"));
  std::ofstream(tmp_.Sub("db.restoring/000012.sst")) << "half a copy";
  auto removed = RemoveInterruptedRestore(tmp_.Sub("db"), /*db_was_there=*/true);
  ASSERT_THAT(removed, IsOk());
  EXPECT_EQ(*removed, tmp_.Sub("db.restoring"));
  EXPECT_FALSE(fs::exists(tmp_.Sub("db.restoring")));
  auto nothing = RemoveInterruptedRestore(tmp_.Sub("db"), /*db_was_there=*/true);
  ASSERT_THAT(nothing, IsOk());
  EXPECT_EQ(*nothing, "");
}

// Where --db held no database before the start, a restore may have been killed between moving
// the old database aside and moving its checked copy in: that copy is kept.
TEST_F(BackupTest, TheCopyOfAnInterruptedRestoreIsKeptWhereTheDatabaseWasMissing) {
  fs::create_directories(tmp_.Sub("db.restoring"));
  auto kept = RemoveInterruptedRestore(tmp_.Sub("db"), /*db_was_there=*/false);
  EXPECT_EQ(kept.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(fs::exists(tmp_.Sub("db.restoring")));
}

}  // namespace
}  // namespace stockpile::level
