#include "services/level/backup.h"

#include <filesystem>
#include <memory>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "rocksdb/utilities/checkpoint.h"
#include "services/common/status_macros.h"
#include "services/common/status_util.h"
#include "services/level/proto_util.h"

namespace stockpile::level {
namespace {

int64_t SizeOnDisk(const std::filesystem::path& dir) {
  int64_t bytes = 0;
  std::error_code ec;
  for (const auto& f : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (f.is_regular_file(ec)) bytes += static_cast<int64_t>(f.file_size(ec));
  }
  return bytes;
}

}  // namespace

absl::StatusOr<stockpile::v1::Backup> CreateBackup(const LevelStore& store,
                                                   const std::string& backup_dir, uint64_t sequence,
                                                   int64_t now_micros) {
  if (backup_dir.empty()) {
    return absl::FailedPreconditionError(
        "this instance runs without --backup-dir: start it with one to take backups");
  }
  std::error_code ec;
  std::filesystem::create_directories(backup_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create --backup-dir ", backup_dir, ": ", ec.message()));
  }
  // Milliseconds in the name: two backups in one second get two directories.
  const std::string name = absl::StrCat(
      "backup-",
      absl::FormatTime("%Y%m%dT%H%M%E3SZ", absl::FromUnixMicros(now_micros), absl::UTCTimeZone()),
      "-seq", sequence);
  const std::filesystem::path path = std::filesystem::path(backup_dir) / name;
  rocksdb::Checkpoint* raw = nullptr;
  RETURN_IF_ERROR(common::FromRocks(rocksdb::Checkpoint::Create(store.db(), &raw), "backup"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  RETURN_IF_ERROR(common::FromRocks(checkpoint->CreateCheckpoint(path.string()),
                                    absl::StrCat("backup to ", path.string())));
  stockpile::v1::Backup backup;
  backup.set_path(path.string());
  backup.set_sequence(sequence);
  *backup.mutable_create_time() = ToTimestamp(now_micros);
  backup.set_size_bytes(SizeOnDisk(path));
  return backup;
}

}  // namespace stockpile::level
