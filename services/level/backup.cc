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
#include <random>
#include <sstream>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/utilities/checkpoint.h"
#include "services/common/status_macros.h"
#include "services/common/status_util.h"
#include "services/level/keys.h"
#include "services/level/proto_util.h"
#include "stockpile/internal/level_store.pb.h"

namespace stockpile::level {
namespace {

namespace fs = std::filesystem;
using stockpile::v1::Backup;

constexpr absl::string_view kNamePrefix = "backup-";
constexpr absl::string_view kTimeFormat = "%Y%m%dT%H%M%E3SZ";  // 20251204T000000.000Z
// Written into the checkpoint after the copy: RocksDB ignores files it does not know, so the
// directory still opens as --db as it is.
constexpr char kDescriptionFile[] = "STOCKPILE-BACKUP.json";
// Written into a restored database: which backup it came from (internal::RestoredFrom; before
// backups had ids, the backup's description).
constexpr char kRestoredFromFile[] = "STOCKPILE-RESTORED-FROM.json";

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
  // A database restored by an older release holds a copy of its backup's description: it is not
  // that backup (it has moved on since), and must not pass for it.
  std::error_code ec;
  if (fs::exists(dir / kRestoredFromFile, ec)) return std::nullopt;
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

// "/data/db/" and "/data/./db" are "/data/db": the staging copy and the replaced database are
// its siblings, not entries inside it.
fs::path NormalDir(const std::string& path) {
  fs::path normal = fs::path(path).lexically_normal();
  if (!normal.has_filename() && normal.has_parent_path() && normal != normal.root_path()) {
    normal = normal.parent_path();
  }
  return normal;
}

std::string NewBackupId() {
  std::random_device random;
  return absl::StrFormat("%08x%08x%08x%08x", random(), random(), random(), random());
}

struct Unlock {
  void operator()(rocksdb::FileLock* lock) const {
    rocksdb::Env::Default()->UnlockFile(lock).PermitUncheckedError();
  }
};
using HeldLock = std::unique_ptr<rocksdb::FileLock, Unlock>;

// RocksDB's own lock on the database at `db` (<db>/LOCK, the file DB::Open locks): it fails
// while a process has the database open, and while held no level can open it.
absl::StatusOr<HeldLock> LockDatabase(const fs::path& db) {
  rocksdb::FileLock* lock = nullptr;
  const std::string file = (db / "LOCK").string();
  rocksdb::Status s = rocksdb::Env::Default()->LockFile(file, &lock);
  if (!s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the database ", db.string(), " is in use (cannot take its lock ", file, ": ",
                     s.ToString(), "); stop the level that serves it before restoring over it"));
  }
  return HeldLock(lock);
}

// Opens the database at `db` read-only (no lock, nothing written), every column family, with
// RocksDB's consistency checks; with `verify`, also reads every table file's checksums.
// Returns the store's meta (empty in a database no command has written yet).
absl::StatusOr<internal::StoreMeta> ReadStoreMeta(const fs::path& db, bool verify) {
  rocksdb::DBOptions options;
  options.paranoid_checks = true;
  std::vector<std::string> names;
  RETURN_IF_ERROR(common::FromRocks(rocksdb::DB::ListColumnFamilies(options, db.string(), &names),
                                    absl::StrCat("list the column families of ", db.string())));
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const auto& name : names) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  RETURN_IF_ERROR(common::FromRocks(
      rocksdb::DB::OpenForReadOnly(options, db.string(), families, &handles, &raw),
      absl::StrCat("open ", db.string())));
  std::unique_ptr<rocksdb::DB> opened(raw);
  rocksdb::Status s = verify ? opened->VerifyChecksum() : rocksdb::Status::OK();
  std::string value;
  if (s.ok()) {
    rocksdb::ReadOptions read;
    read.verify_checksums = true;
    s = opened->Get(read, opened->DefaultColumnFamily(), std::string(keys::kMeta), &value);
  }
  for (auto* handle : handles) opened->DestroyColumnFamilyHandle(handle);
  internal::StoreMeta meta;
  if (s.IsNotFound()) return meta;
  RETURN_IF_ERROR(common::FromRocks(s, absl::StrCat("check ", db.string())));
  if (!meta.ParseFromString(value)) {
    return absl::DataLossError(absl::StrCat("the store meta of ", db.string(), " is unreadable"));
  }
  return meta;
}

std::string DescribeOrigin(const std::string& level, const std::vector<std::string>& regions,
                           const std::string& instance_id) {
  return absl::StrCat("level ", level.empty() ? "?" : level, ", regions ",
                      absl::StrJoin(regions, ","),
                      instance_id.empty() ? "" : absl::StrCat(", instance ", instance_id));
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// A backup of another level, other regions or another instance id is refused (its warehouses
// are not this instance's); one described before backups named their instance is let through
// with a warning.
absl::Status CheckOrigin(const Backup& backup, const RestoreTarget& target,
                         std::vector<std::string>* warnings) {
  if (backup.level().empty() && backup.region_prefixes().empty()) {
    warnings->push_back(absl::StrCat("the backup ", backup.path(),
                                     " does not say which instance it is a copy of (taken by an "
                                     "older release); restoring it unchecked as ",
                                     DescribeOrigin(target.level, target.regions, "")));
    return absl::OkStatus();
  }
  const std::vector<std::string> regions(backup.region_prefixes().begin(),
                                         backup.region_prefixes().end());
  const bool same = backup.level() == target.level && Sorted(regions) == Sorted(target.regions) &&
                    (backup.instance_id().empty() || target.instance_id.empty() ||
                     backup.instance_id() == target.instance_id);
  if (same) return absl::OkStatus();
  const std::string what = absl::StrCat(
      "the backup ", backup.path(), " is a copy of ",
      DescribeOrigin(backup.level(), regions, backup.instance_id()), "; this instance is ",
      DescribeOrigin(target.level, target.regions, target.instance_id));
  if (target.any_instance) {
    warnings->push_back(absl::StrCat(what, "; restoring it all the same (--restore-any-instance)"));
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      what, ". Refusing to restore another instance's backup (--restore-any-instance overrides)"));
}

// The marker of a restored database: false when `db` has none. One that is there but cannot be
// read (emptied, torn, garbled) is an error: it is what says whether `db` has taken changes since
// its restore, and without it a restore would move them aside.
absl::StatusOr<bool> ReadMarker(const fs::path& db, internal::RestoredFrom* marker) {
  const fs::path file = db / kRestoredFromFile;
  std::error_code ec;
  if (!fs::exists(file, ec) && !ec) return false;
  const auto unreadable = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat(
        file.string(), " is unreadable (", why, "), so whether ", db.string(),
        " has taken changes since it was restored is unknown; not restoring over it, which could "
        "drop acknowledged movements. Take --restore-from off to serve ",
        db.string(), " as it is; to restore all the same, stop the level and move ", db.string(),
        " aside by hand first"));
  };
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return unreadable(ec ? ec.message() : "cannot read it");
  if (text.str().empty()) return unreadable("empty");
  if (google::protobuf::util::JsonStringToMessage(text.str(), marker).ok()) return true;
  Backup legacy;  // written before backups had ids: the backup's description
  if (!google::protobuf::util::JsonStringToMessage(text.str(), &legacy).ok()) {
    return unreadable("not a restore marker");
  }
  marker->set_backup_path(legacy.path());
  marker->set_backup_sequence(legacy.sequence());
  marker->set_backup_create_micros(ToMicros(legacy.create_time()));
  marker->set_head_sequence(legacy.sequence());
  return true;
}

absl::Status WriteMarker(const Backup& backup, uint64_t head, const fs::path& db) {
  internal::RestoredFrom marker;
  marker.set_backup_id(backup.id());
  marker.set_backup_path(backup.path());
  marker.set_backup_sequence(backup.sequence());
  marker.set_backup_create_micros(ToMicros(backup.create_time()));
  marker.set_head_sequence(head);
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(marker, &json).ok()) {
    return absl::InternalError("cannot describe the restored backup");
  }
  const fs::path file = db / kRestoredFromFile;
  return common::FromRocks(rocksdb::WriteStringToFile(rocksdb::Env::Default(), json, file.string(),
                                                      /*should_sync=*/true),
                           absl::StrCat("write ", file.string()));
}

bool SameBackup(const internal::RestoredFrom& marker, const Backup& backup) {
  if (!marker.backup_id().empty() || !backup.id().empty()) {
    return marker.backup_id() == backup.id();
  }
  return marker.backup_sequence() == backup.sequence() &&
         marker.backup_create_micros() == ToMicros(backup.create_time());
}

// True when `db` was restored from `backup` and has not changed since: nothing to do. Once it
// has taken changes, restoring the same backup again would drop them: refused.
// Whether `db` was restored from `backup` (its marker names the backup's id); `changes_since`
// counts what it has committed after that. Such a database is served as it is: restoring the
// backup again would drop acknowledged changes, and a pod restarted with the flag still on must
// come up with them.
absl::StatusOr<bool> AlreadyRestored(const Backup& backup, const fs::path& db,
                                     uint64_t* changes_since) {
  internal::RestoredFrom marker;
  ASSIGN_OR_RETURN(const bool marked, ReadMarker(db, &marker));
  if (!marked || !SameBackup(marker, backup)) return false;
  ASSIGN_OR_RETURN(internal::StoreMeta meta, ReadStoreMeta(db, /*verify=*/false));
  *changes_since = meta.last_sequence() > marker.head_sequence()
                       ? meta.last_sequence() - marker.head_sequence()
                       : 0;
  return true;
}

// The backup at `path`: a directory holding a RocksDB CURRENT file and described as a backup.
absl::StatusOr<Backup> FindBackup(const std::string& path) {
  const fs::path from = NormalDir(path);
  std::error_code ec;
  std::optional<Backup> backup;
  if (fs::exists(from / "CURRENT", ec)) backup = Describe(from);
  if (!backup) {
    return absl::NotFoundError(absl::StrCat(
        "--restore-from=", path,
        " is not a backup (a directory stockctl backup made, holding a RocksDB CURRENT file; a "
        "database restored from one is not)"));
  }
  return *backup;
}

// Copies the backup to `staging` and checks the copy as the level will use it: RocksDB opens it
// with every check, its table files pass their checksums, and its store meta is readable and of
// this level. Returns the copy's head. On failure nothing is left at `staging`.
absl::StatusOr<uint64_t> StageAndCheck(const Backup& backup, const RestoreTarget& target,
                                       const fs::path& staging) {
  std::error_code ec;
  fs::remove_all(staging, ec);  // a copy an earlier attempt did not finish
  auto checked = [&]() -> absl::StatusOr<uint64_t> {
    RETURN_IF_ERROR(CopyDurably(backup.path(), staging));
    // The database describes itself by its marker only: a copied description would make it
    // pass for the backup (and a copied marker for the backup's own origin).
    fs::remove(staging / kDescriptionFile, ec);
    fs::remove(staging / kRestoredFromFile, ec);
    ASSIGN_OR_RETURN(internal::StoreMeta meta, ReadStoreMeta(staging, /*verify=*/true));
    if (!meta.level().empty() && meta.level() != target.level) {
      return absl::FailedPreconditionError(
          absl::StrCat("it holds a ", meta.level(), " database; this instance is ", target.level));
    }
    return meta.last_sequence();
  }();
  if (!checked.ok()) {
    fs::remove_all(staging, ec);
    return absl::Status(
        checked.status().code(),
        absl::StrCat("the backup ", backup.path(),
                     " cannot be restored (--db is left as it was): ", checked.status().message()));
  }
  return checked;
}

// Moves `to` aside (when there is one) and the checked copy at `staging` in its place; both
// held locked throughout, so no level opens either halfway.
absl::StatusOr<std::string> Swap(const fs::path& staging, const fs::path& to, int64_t now_micros) {
  ASSIGN_OR_RETURN(HeldLock staged, LockDatabase(staging));
  std::error_code ec;
  std::string replaced;
  if (fs::exists(to, ec)) {
    replaced = absl::StrCat(to.string(), ".replaced-", NameTime(now_micros));
    fs::rename(to, replaced, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot move ", to.string(), " aside to ", replaced, ": ", ec.message()));
    }
  }
  fs::rename(staging, to, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot move the restored copy ", staging.string(),
                                            " to ", to.string(), ": ", ec.message()));
  }
  RETURN_IF_ERROR(SyncPath(to.has_parent_path() ? to.parent_path() : fs::path(".")));
  return replaced;
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

absl::StatusOr<Restored> RestoreBackup(const std::string& backup_path, const RestoreTarget& target,
                                       int64_t now_micros) {
  ASSIGN_OR_RETURN(Backup backup, FindBackup(backup_path));
  Restored restored{backup, "", false, 0, {}};
  const fs::path to = NormalDir(target.db);
  std::error_code ec;
  HeldLock live;  // held until the swap is done: no level may open --db meanwhile
  if (fs::exists(to, ec)) {
    ASSIGN_OR_RETURN(live, LockDatabase(to));
  }
  RETURN_IF_ERROR(CheckOrigin(backup, target, &restored.warnings));
  ASSIGN_OR_RETURN(restored.already, AlreadyRestored(backup, to, &restored.changes_since));
  if (restored.already) return restored;
  const fs::path staging = to.string() + ".restoring";
  ASSIGN_OR_RETURN(uint64_t head, StageAndCheck(backup, target, staging));
  if (absl::Status marked = WriteMarker(backup, head, staging); !marked.ok()) {
    fs::remove_all(staging, ec);
    return marked;
  }
  ASSIGN_OR_RETURN(restored.replaced, Swap(staging, to, now_micros));
  return restored;
}

absl::StatusOr<std::string> RemoveInterruptedRestore(const std::string& db, bool db_was_there) {
  const fs::path staging = NormalDir(db).string() + ".restoring";
  std::error_code ec;
  if (!fs::exists(staging, ec)) return std::string();
  if (!db_was_there) {
    return absl::FailedPreconditionError(absl::StrCat(
        staging.string(), " is left by an interrupted restore, and ", db,
        " held no database before this start: if the restore was killed while swapping, ",
        staging.string(), " is the restored copy and the old database is at ", db,
        ".replaced-<time>. Left in place; stop the level and sort them out by hand"));
  }
  fs::remove_all(staging, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot remove ", staging.string(), ", left by an interrupted restore: ", ec.message()));
  }
  return staging.string();
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

BackupKeeper::BackupKeeper(std::string backup_dir, int keep, BackupOrigin origin)
    : dir_(std::move(backup_dir)), keep_(keep), origin_(std::move(origin)) {
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
  backup.set_id(NewBackupId());
  backup.set_level(origin_.level);
  for (const auto& prefix : origin_.regions) backup.add_region_prefixes(prefix);
  backup.set_instance_id(origin_.instance_id);
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
