#pragma once

// Online backups of a level instance's database: RocksDB checkpoints (hard links to the live
// SST files where the backup directory is on the same filesystem, copies otherwise, plus the
// flushed memtables), each a directory that opens as --db as it is.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "services/level/level_store.h"
#include "stockpile/v1/level_service.pb.h"

namespace stockpile::level {

// Writes a checkpoint of `store` into a new directory under `backup_dir` named after the time
// and `sequence` (the instance's head before the copy began; the copy holds at least that).
absl::StatusOr<stockpile::v1::Backup> CreateBackup(const LevelStore& store,
                                                   const std::string& backup_dir, uint64_t sequence,
                                                   int64_t now_micros);

}  // namespace stockpile::level
