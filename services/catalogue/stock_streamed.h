#pragma once

// Whether the catalogue holds all of a level instance's stock. It does not while the stream it
// follows from sequence 1 (the first, or one again after the instance's history changed) is
// below the head that stream began at (ReplicationSource.resync_until_sequence): until then the
// source reads stale, plans leave it out, and `stockctl catalogue status` says "partial".

#include <cstdint>

namespace stockpile::catalogue {

inline bool HoldsAllStock(uint64_t applied_sequence, uint64_t complete_at_sequence) {
  return applied_sequence >= complete_at_sequence;
}

// The same for a stockpile.v1.ReplicationSource (a template, so that the allocation library
// can use the rule without linking the catalogue's protos).
template <typename ReplicationSource>
bool HoldsAllStockOf(const ReplicationSource& source) {
  return HoldsAllStock(source.applied_sequence(), source.resync_until_sequence());
}

}  // namespace stockpile::catalogue
