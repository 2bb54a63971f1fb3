#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "services/common/clock.h"

namespace stockpile::level {

// Refuses mutations while the database's volume has less than a set amount free, before they
// are applied. RocksDB cannot be let near a full volume: a WAL append that fails for want of
// space breaks its log writer, and Debian's librocksdb then aborts the process on the next
// sync (an assertion), so a level on a full volume crash-looped instead of refusing writes.
// Refused here, nothing is applied, nothing needs a restart, and writes go on once space is
// freed. Statistics are read at most every 100 ms, from whichever caller finds them old.
class SpaceGuard {
 public:
  // `min_free_bytes` 0: never refuses (the volume is still read, for the gauge).
  SpaceGuard(std::string path, uint64_t min_free_bytes, const common::Clock* clock);

  // OK, or RESOURCE_EXHAUSTED saying how much is free and how much is kept back.
  absl::Status CheckRoom();
  // Bytes free to unprivileged writers on the volume, read at most 100 ms ago (0 when it
  // cannot be read).
  uint64_t free_bytes() const;
  uint64_t min_free_bytes() const { return min_free_bytes_; }

 private:
  void RefreshIfOld() const;

  const std::string path_;
  const uint64_t min_free_bytes_;
  const common::Clock* const clock_;
  // A cache of the volume's statistics: reading them does not change what the guard is.
  mutable std::atomic<int64_t> read_at_micros_{0};
  mutable std::atomic<uint64_t> free_bytes_{0};
  mutable std::atomic<bool> readable_{false};
};

}  // namespace stockpile::level
