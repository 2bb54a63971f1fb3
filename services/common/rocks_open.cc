#include "services/common/rocks_open.h"

#include <rocksdb/options.h>
#include <rocksdb/status.h>

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "services/common/status_util.h"

namespace stockpile::common {
namespace {

// True when `dir` holds a file (or something else that is not a directory); false when it
// holds only subdirectories or nothing.
absl::StatusOr<bool> HoldsFiles(const std::filesystem::path& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (!entry.is_directory(ec)) return true;
  }
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot list the database directory ", dir.string(), ": ", ec.message()));
  }
  return false;
}

}  // namespace

absl::Status PrepareToOpen(const std::string& path, bool synced_writes,
                           rocksdb::DBOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create the database directory ", path, ": ", ec.message()));
  }
  absl::StatusOr<bool> holds_files = HoldsFiles(path);
  if (!holds_files.ok()) return holds_files.status();
  options.create_if_missing = !*holds_files;
  // Without synced writes a power cut can leave holes anywhere in the unsynced part of the
  // log: RocksDB's default recovery (to the last consistent point) is the one that fits.
  if (!synced_writes) return absl::OkStatus();
  // Every write is synced before it is answered, so the only record a crash can leave torn is
  // the last one of the newest WAL, and it was never acknowledged. RocksDB's default,
  // kPointInTimeRecovery, takes corruption anywhere for the end of the log and opens without
  // everything after it (later WAL files too): acknowledged writes silently gone.
  // kTolerateCorruptedTailRecords ignores only an incomplete last record (a crash mid-write)
  // and refuses to open on any other corruption. kAbsoluteConsistency would also refuse that
  // torn tail, so an ordinary kill -9 during a write could stop the next start.
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  return absl::OkStatus();
}

absl::Status OpenFailure(const rocksdb::Status& s, const std::string& path,
                         const rocksdb::DBOptions& options, absl::string_view what) {
  const bool damaged = s.IsCorruption() || s.IsPathNotFound() ||
                       (!options.create_if_missing && s.IsInvalidArgument());
  if (!damaged) return FromRocks(s, absl::StrCat("open ", what, " at ", path));
  return absl::DataLossError(absl::StrCat("the database at ", path,
                                          " is damaged or is not a database, and was not opened (",
                                          s.ToString(), "); its data files were left as they are"));
}

}  // namespace stockpile::common
