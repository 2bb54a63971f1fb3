#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "services/level/level_store.h"
#include "stockpile/internal/level_store.pb.h"

namespace stockpile::level {

// The record layout this build writes and reads (StoreMeta.storage_format):
// 1 (and 0, before it was recorded): movements keyed "{code}/" + time-id, a warehouse × item
//   index "w{code}/{item}/" + time-id, and item / reference index entries holding the code;
// 2: movements keyed "{code}/{item}/" + time-id, no warehouse × item index, index entries
//   holding the movement's primary key;
// 3: as 2, and a movement's value leaves out what its key gives back (MovementFromRecord reads
//   both kinds of value, so 2 needs no conversion: the first group written records 3, and an
//   older release then refuses the database instead of misreading it);
// 4: as 3, and a stock command's stored first reply leaves out the balances its change entry
//   states (RequestRecord.balances_in_change; records without it are read as they are, so 3
//   needs no conversion, and an older release refuses the database instead of replaying
//   replies without their balances).
inline constexpr uint32_t kStorageFormat = 4;
// Below it, movements are converted in place at start (MigrateToFormat2).
inline constexpr uint32_t kFormatKeyedByWarehouseItem = 2;

// Rewrites a format-1 database's movements and indexes as format 2 and records this build's
// format in `meta` (written last, synced). Resumable: a conversion cut short by a crash is
// finished by the next start. Returns how many movements were moved.
absl::StatusOr<uint64_t> MigrateToFormat2(LevelStore& store, internal::StoreMeta& meta);

}  // namespace stockpile::level
