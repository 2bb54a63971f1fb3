#pragma once

// Online backups of a level instance's database: RocksDB checkpoints (hard links to the live
// SST files where the backup directory is on the same filesystem, copies otherwise, plus the
// flushed memtables), each a directory that opens as --db as it is.

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "services/level/level_store.h"
#include "stockpile/v1/level_service.pb.h"

namespace stockpile::level {

// Writes a checkpoint of `store` into a new directory under `backup_dir` named after the time
// and `sequence` (the instance's head before the copy began; the copy holds at least that).
absl::StatusOr<stockpile::v1::Backup> CreateBackup(const LevelStore& store,
                                                   const std::string& backup_dir, uint64_t sequence,
                                                   int64_t now_micros);

// The backups under `backup_dir`, newest first: every checkpoint directory CreateBackup made,
// described by the file it left in it (or, where that is missing, by its name).
std::vector<stockpile::v1::Backup> ListBackups(const std::string& backup_dir);

// Who restores: what a backup must be a copy of to be put in place of `db`.
struct RestoreTarget {
  std::string db;                    // --db
  std::string level;                 // LevelName: "county"
  std::vector<std::string> regions;  // --regions
  std::string instance_id;           // --instance-id; "": derived at start, not compared
  bool any_instance = false;         // --restore-any-instance: another instance's backup too
};

// What RestoreBackup did.
struct Restored {
  stockpile::v1::Backup backup;  // what --db now holds
  std::string replaced;          // where the database it replaced was moved ("" : there was none)
  bool already = false;          // --db was restored from this backup before: nothing was done
  uint64_t changes_since = 0;    // when `already`: changes committed since that restore (kept)
  std::vector<std::string> warnings;  // for the log: checks that could not be made, or overridden
};

// Puts a copy of the backup at `backup_path` in place of the database at `target.db`. Refused
// while a process has that database open (RocksDB's lock, held until the swap is done), for a
// backup of another level, other regions or another instance id (unless
// `target.any_instance`), and for a copy that RocksDB cannot open with every check or whose
// table files fail their checksums. The database there is moved aside to
// "<db>.replaced-<UTC time>", never deleted. The copy is made and checked beside --db first and
// swapped in by renames, so a crash or a bad backup leaves the live database in place. The
// restored database records which backup it came from: the same backup again (a --restore-from
// left on the command line) does nothing, and the database keeps the changes it has taken since
// (restoring again would drop them). A marker that is there but unreadable refuses the restore.
absl::StatusOr<Restored> RestoreBackup(const std::string& backup_path, const RestoreTarget& target,
                                       int64_t now_micros);

// Removes "<db>.restoring", the copy a restore that was killed before its swap left beside
// --db (the live database was never touched). Call with `db` open, so that no restore can be
// running on it; `db_was_there`: `db` held a database before this start opened it. Where it did
// not, a restore may have been killed between its two renames (the old database moved aside,
// the copy not yet in place): the copy is kept and the error says so. Returns the path
// removed, "" when there was none.
absl::StatusOr<std::string> RemoveInterruptedRestore(const std::string& db, bool db_was_there);

// Where a backup begins: the instance's head and the time, read once no other backup runs.
struct BackupPoint {
  uint64_t sequence = 0;
  int64_t now_micros = 0;
};

// What a backup is a copy of, written into its description for --restore-from to check.
struct BackupOrigin {
  std::string level;  // LevelName
  std::vector<std::string> regions;
  std::string instance_id;
};

// Takes an instance's backups one at a time, remembers each one's request id in the backup
// itself (so a retry finds it, also after a restart) and keeps the newest `keep` of them.
class BackupKeeper {
 public:
  // keep == 0: keep every backup. Reads the directory for the newest backup already there.
  // `origin` goes into every backup's description.
  BackupKeeper(std::string backup_dir, int keep, BackupOrigin origin = {});

  // The kept backup that `request_id` took, or a new one beginning at `point()`; then the
  // oldest backups beyond `keep` are deleted.
  absl::StatusOr<stockpile::v1::Backup> Take(const LevelStore& store, absl::string_view request_id,
                                             absl::FunctionRef<BackupPoint()> point);

  std::vector<stockpile::v1::Backup> List() const { return ListBackups(dir_); }
  const std::string& dir() const { return dir_; }

  // For the metrics page: backups taken and failed since the start, and the time of the newest
  // one (also one taken before the start; 0: none yet).
  int64_t taken() const { return taken_.load(); }
  int64_t failed() const { return failed_.load(); }
  int64_t newest_micros() const { return newest_micros_.load(); }

 private:
  absl::StatusOr<stockpile::v1::Backup> TakeNew(const LevelStore& store,
                                                absl::string_view request_id, BackupPoint at)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status DeleteBeyondKeep() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;
  const int keep_;
  const BackupOrigin origin_;
  absl::Mutex mu_;  // one backup at a time: a retry waits for the first and finds it
  std::atomic<int64_t> taken_{0};
  std::atomic<int64_t> failed_{0};
  std::atomic<int64_t> newest_micros_{0};
};

}  // namespace stockpile::level
