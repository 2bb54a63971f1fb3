#include "services/level/backup.h"

#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "rocksdb/env.h"
#include "rocksdb/utilities/checkpoint.h"
#include "services/common/status_macros.h"
#include "services/common/status_util.h"
#include "services/level/proto_util.h"

namespace stockpile::level {
namespace {

namespace fs = std::filesystem;
using stockpile::v1::Backup;

constexpr absl::string_view kNamePrefix = "backup-";
constexpr absl::string_view kTimeFormat = "%Y%m%dT%H%M%E3SZ";  // 20251204T000000.000Z
// Written into the checkpoint after the copy: RocksDB ignores files it does not know, so the
// directory still opens as --db as it is.
constexpr char kDescriptionFile[] = "STOCKPILE-BACKUP.json";

// kTimeFormat: the time in backup names and in a replaced database's name.
std::string NameTime(int64_t micros) {
  return absl::FormatTime(kTimeFormat, absl::FromUnixMicros(micros), absl::UTCTimeZone());
}

int64_t SizeOnDisk(const fs::path& dir) {
  int64_t bytes = 0;
  std::error_code ec;
  for (const auto& f : fs::recursive_directory_iterator(dir, ec)) {
    if (f.is_regular_file(ec)) bytes += static_cast<int64_t>(f.file_size(ec));
  }
  return bytes;
}

bool IsBackupName(absl::string_view name) {
  return absl::StartsWith(name, kNamePrefix) && !absl::EndsWith(name, ".tmp");
}

// The time in a backup's name (kTimeFormat). By hand: absl::ParseTime's %Y would take every
// digit of "20251204" as the year.
std::optional<int64_t> ParseNameTime(absl::string_view text) {
  if (text.size() != 20 || text[8] != 'T' || text[15] != '.' || text[19] != 'Z') {
    return std::nullopt;
  }
  int fields[7] = {};
  const std::pair<size_t, size_t> spans[7] = {{0, 4},  {4, 2},  {6, 2}, {9, 2},
                                              {11, 2}, {13, 2}, {16, 3}};
  for (int i = 0; i < 7; ++i) {
    if (!absl::SimpleAtoi(text.substr(spans[i].first, spans[i].second), &fields[i])) {
      return std::nullopt;
    }
  }
  const absl::CivilSecond when(fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]);
  return absl::ToUnixMicros(absl::FromCivil(when, absl::UTCTimeZone())) + fields[6] * 1000;
}

// A checkpoint without its description file: what its name says ("backup-<time>-seq<N>").
std::optional<Backup> DescribeByName(const fs::path& dir) {
  const std::string name = dir.filename().string();
  const size_t seq_at = name.rfind("-seq");
  if (!IsBackupName(name) || seq_at == std::string::npos || seq_at < kNamePrefix.size()) {
    return std::nullopt;
  }
  uint64_t sequence = 0;
  const std::optional<int64_t> micros = ParseNameTime(
      absl::string_view(name).substr(kNamePrefix.size(), seq_at - kNamePrefix.size()));
  if (!micros || !absl::SimpleAtoi(absl::string_view(name).substr(seq_at + 4), &sequence)) {
    return std::nullopt;
  }
  Backup backup;
  backup.set_sequence(sequence);
  *backup.mutable_create_time() = ToTimestamp(*micros);
  backup.set_size_bytes(SizeOnDisk(dir));
  return backup;
}

bool ReadBackupJson(const fs::path& file, Backup* backup) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return in && google::protobuf::util::JsonStringToMessage(text.str(), backup).ok();
}

absl::Status WriteBackupJson(const Backup& backup, const fs::path& file) {
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(backup, &json).ok()) {
    return absl::InternalError("cannot describe the backup");
  }
  return common::FromRocks(rocksdb::WriteStringToFile(rocksdb::Env::Default(), json, file.string(),
                                                      /*should_sync=*/true),
                           absl::StrCat("write ", file.string()));
}

std::optional<Backup> Describe(const fs::path& dir) {
  Backup backup;
  std::optional<Backup> described;
  if (ReadBackupJson(dir / kDescriptionFile, &backup)) {
    described = std::move(backup);
  } else {
    described = DescribeByName(dir);  // interrupted before its description, or unreadable
  }
  if (described) described->set_path(dir.string());
  return described;
}

absl::Status WriteDescription(const Backup& backup) {
  Backup stored = backup;
  stored.clear_path();  // the directory may be moved; its place is where it is found
  return WriteBackupJson(stored, fs::path(backup.path()) / kDescriptionFile);
}

// Written into a restored database: which backup it came from.
constexpr char kRestoredFromFile[] = "STOCKPILE-RESTORED-FROM.json";

absl::Status SyncPath(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const std::string error = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return absl::InternalError(absl::StrCat("cannot sync ", path.string(), ": ", error));
  }
  ::close(fd);
  return absl::OkStatus();
}

// A copy of the directory `from` at `to`, every file and directory synced: the level writes on
// top of it at once, and a power cut must not leave it half there.
absl::Status CopyDurably(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to, ec);
  for (const auto& entry : fs::directory_iterator(from, ec)) {
    const fs::path target = to / entry.path().filename();
    if (entry.is_directory(ec)) {
      RETURN_IF_ERROR(CopyDurably(entry.path(), target));
      continue;
    }
    fs::copy_file(entry.path(), target, ec);
    if (ec) break;
    RETURN_IF_ERROR(SyncPath(target));
  }
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot copy ", from.string(), " to ", to.string(), ": ", ec.message()));
  }
  return SyncPath(to);
}

absl::Status CheckBackupDir(const std::string& backup_dir) {
  if (backup_dir.empty()) {
    return absl::FailedPreconditionError(
        "this instance runs without --backup-dir: start it with one to take backups");
  }
  std::error_code ec;
  fs::create_directories(backup_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create --backup-dir ", backup_dir, ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Backup> CreateBackup(const LevelStore& store, const std::string& backup_dir,
                                    uint64_t sequence, int64_t now_micros) {
  RETURN_IF_ERROR(CheckBackupDir(backup_dir));
  // Milliseconds in the name: two backups in one second get two directories.
  const std::string name = absl::StrCat(kNamePrefix, NameTime(now_micros), "-seq", sequence);
  const fs::path path = fs::path(backup_dir) / name;
  rocksdb::Checkpoint* raw = nullptr;
  RETURN_IF_ERROR(common::FromRocks(rocksdb::Checkpoint::Create(store.db(), &raw), "backup"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  RETURN_IF_ERROR(common::FromRocks(checkpoint->CreateCheckpoint(path.string()),
                                    absl::StrCat("backup to ", path.string())));
  Backup backup;
  backup.set_path(path.string());
  backup.set_sequence(sequence);
  *backup.mutable_create_time() = ToTimestamp(now_micros);
  backup.set_size_bytes(SizeOnDisk(path));
  return backup;
}

absl::StatusOr<Restored> RestoreBackup(const std::string& backup_path, const std::string& db,
                                       int64_t now_micros) {
  std::error_code ec;
  fs::path from = fs::path(backup_path).lexically_normal();
  if (!from.has_filename()) from = from.parent_path();  // "backup-.../"
  std::optional<Backup> backup;
  if (fs::exists(from / "CURRENT", ec)) backup = Describe(from);
  if (!backup) {
    return absl::NotFoundError(absl::StrCat(
        "--restore-from=", backup_path,
        " is not a backup (a directory stockctl backup made, holding a RocksDB CURRENT file)"));
  }
  Restored restored{*backup, "", false};
  const fs::path to(db);
  Backup before;
  if (ReadBackupJson(to / kRestoredFromFile, &before) && before.sequence() == backup->sequence() &&
      ToMicros(before.create_time()) == ToMicros(backup->create_time())) {
    restored.already = true;
    return restored;
  }
  const fs::path staging = to.string() + ".restoring";
  fs::remove_all(staging, ec);  // a copy an earlier attempt did not finish
  if (absl::Status copied = CopyDurably(from, staging); !copied.ok()) {
    fs::remove_all(staging, ec);
    return copied;
  }
  RETURN_IF_ERROR(WriteBackupJson(*backup, staging / kRestoredFromFile));
  if (fs::exists(to, ec)) {
    restored.replaced = absl::StrCat(to.string(), ".replaced-", NameTime(now_micros));
    fs::rename(to, restored.replaced, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot move ", db, " aside to ", restored.replaced, ": ", ec.message()));
    }
  }
  fs::rename(staging, to, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot move the restored copy ", staging.string(),
                                            " to ", db, ": ", ec.message()));
  }
  RETURN_IF_ERROR(SyncPath(to.parent_path().empty() ? fs::path(".") : to.parent_path()));
  return restored;
}

std::vector<Backup> ListBackups(const std::string& backup_dir) {
  std::vector<Backup> backups;
  std::error_code ec;
  if (backup_dir.empty()) return backups;
  for (const auto& entry : fs::directory_iterator(backup_dir, ec)) {
    if (!entry.is_directory(ec) || !IsBackupName(entry.path().filename().string())) continue;
    if (auto backup = Describe(entry.path())) backups.push_back(std::move(*backup));
  }
  std::sort(backups.begin(), backups.end(), [](const Backup& a, const Backup& b) {
    const auto at = std::make_pair(ToMicros(a.create_time()), a.path());
    const auto bt = std::make_pair(ToMicros(b.create_time()), b.path());
    return at > bt;
  });
  return backups;
}

BackupKeeper::BackupKeeper(std::string backup_dir, int keep)
    : dir_(std::move(backup_dir)), keep_(keep) {
  const std::vector<Backup> backups = List();
  if (!backups.empty()) newest_micros_ = ToMicros(backups.front().create_time());
}

absl::StatusOr<Backup> BackupKeeper::Take(const LevelStore& store, absl::string_view request_id,
                                          absl::FunctionRef<BackupPoint()> point) {
  if (absl::Status usable = CheckBackupDir(dir_); !usable.ok()) {
    if (!dir_.empty()) ++failed_;  // without a --backup-dir nothing was meant to be taken
    return usable;
  }
  absl::MutexLock lock(&mu_);
  for (auto& kept : List()) {
    if (kept.request_id() == request_id) return std::move(kept);
  }
  absl::StatusOr<Backup> backup = TakeNew(store, request_id, point());
  if (!backup.ok()) {
    ++failed_;
    return backup;
  }
  ++taken_;
  newest_micros_ = std::max(newest_micros_.load(), ToMicros(backup->create_time()));
  if (absl::Status pruned = DeleteBeyondKeep(); !pruned.ok()) {
    std::cerr << "stockpile-level: warning: " << pruned.message() << std::endl;
  }
  return backup;
}

absl::StatusOr<Backup> BackupKeeper::TakeNew(const LevelStore& store, absl::string_view request_id,
                                             BackupPoint at) {
  ASSIGN_OR_RETURN(Backup backup, CreateBackup(store, dir_, at.sequence, at.now_micros));
  backup.set_request_id(std::string(request_id));
  if (absl::Status described = WriteDescription(backup); !described.ok()) {
    // Without its request id a retry would take a second copy: none is better than that.
    std::error_code ec;
    fs::remove_all(backup.path(), ec);
    return described;
  }
  return backup;
}

absl::Status BackupKeeper::DeleteBeyondKeep() {
  std::error_code ec;
  // Staging directories of copies a crash interrupted (none runs now: this holds mu_).
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (absl::StartsWith(name, kNamePrefix) && absl::EndsWith(name, ".tmp")) {
      fs::remove_all(entry.path(), ec);
    }
  }
  if (keep_ <= 0) return absl::OkStatus();
  const std::vector<Backup> backups = List();
  for (size_t i = static_cast<size_t>(keep_); i < backups.size(); ++i) {
    fs::remove_all(backups[i].path(), ec);
    if (ec) {
      return absl::InternalError(absl::StrCat("cannot delete the old backup ", backups[i].path(),
                                              " (--backup-keep): ", ec.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace stockpile::level
