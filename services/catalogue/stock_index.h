// Library target: stockpile_stock_index (defined in tests/unit/stock_index.cmake until
// services/catalogue/CMakeLists.txt includes it)
#pragma once

// In-memory index behind the catalogue's search: "warehouses holding >= Q available of item X,
// nearest first to a point, within a radius and/or under a region-code prefix, paginated".
// Design and measured numbers: docs/search.md.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "services/catalogue/geo.h"

namespace stockpile::catalogue {

// Thread safety: any number of concurrent readers (Nearest and the accessors) and writers
// (AddWarehouse, MoveWarehouse, SetAvailable*). Writers are serialised among themselves; each
// write holds the readers' lock only for its own few microseconds (SetAvailableBatch releases it
// every kBatchChunk updates), so a long burst of writes interleaves with searches instead of
// stalling them. Index rebuilds (after new locations appear) are computed outside the readers'
// lock and swapped in.
class StockIndex {
 public:
  static constexpr uint32_t kNoWarehouse = std::numeric_limits<uint32_t>::max();
  static constexpr size_t kBatchChunk = 256;

  // item_count: items are dense ints 0..item_count-1 (the catalogue maps item codes to them).
  explicit StockIndex(int item_count);
  ~StockIndex();
  StockIndex(const StockIndex&) = delete;
  StockIndex& operator=(const StockIndex&) = delete;

  // Registers a warehouse at a place, under a region code (e.g. "420102001001"; codes nest by
  // prefix). Returns its dense id (0, 1, 2, ... in order of first registration). Idempotent: the
  // same code again returns the same id, and moves it / changes its region if those differ.
  // Every item starts at 0 available.
  uint32_t AddWarehouse(std::string code, std::string region_code, GeoPoint location);

  // Moves a registered warehouse to a new place. False if id is unknown.
  bool MoveWarehouse(uint32_t id, GeoPoint location);

  // Records the current available quantity (on hand - held) of an item at a warehouse; called
  // for every applied balance. Zero or negative is stored but never returned by Nearest.
  // False (and no change) if id or item is out of range.
  bool SetAvailable(uint32_t id, int item, int64_t available);

  struct Update {
    uint32_t warehouse;
    int item;
    int64_t available;
  };
  // Many SetAvailable at once (a replication batch); cheaper per update. Returns how many were
  // in range and applied.
  size_t SetAvailableBatch(const std::vector<Update>& updates);

  struct Hit {
    uint32_t warehouse;
    int64_t available;
    double distance_km;  // great-circle (HaversineKm) from the query origin
    friend bool operator==(const Hit& a, const Hit& b) {
      return a.warehouse == b.warehouse && a.available == b.available &&
             a.distance_km == b.distance_km;
    }
  };

  struct Query {
    int item = 0;
    int64_t min_available = 1;  // values below 1 are treated as 1: empty stock never matches
    GeoPoint origin;
    size_t limit = 10;          // 0 returns nothing
    double radius_km = 0;       // 0 = no radius; otherwise distance_km <= radius_km
    std::string region_prefix;  // "" = anywhere; else region code starts with it
    // Paging: return only hits ordered after (after_distance_km, after_warehouse). Pass back the
    // last hit's distance_km bit-for-bit (e.g. as the double's 64 bits in the page token) and its
    // warehouse. after_distance_km < 0 = first page.
    double after_distance_km = -1;
    uint32_t after_warehouse = kNoWarehouse;
  };

  // Up to q.limit hits, ordered by (distance_km, warehouse id): nearest first, ties by id.
  // Deterministic: the same data and query give the same list. Unknown item: empty.
  std::vector<Hit> Nearest(const Query& q) const;

  // What one search touched (for tests and tuning): tree nodes expanded, sites scanned.
  struct SearchStats {
    size_t nodes_expanded = 0;
    size_t sites_scanned = 0;
  };
  std::vector<Hit> Nearest(const Query& q, SearchStats* stats) const;

  // Accessors. id must be < warehouse_count() (checked: out of range aborts).
  size_t warehouse_count() const;
  int item_count() const { return item_count_; }
  std::string code(uint32_t id) const;
  std::string region_code(uint32_t id) const;
  GeoPoint location(uint32_t id) const;
  int64_t available(uint32_t id, int item) const;
  std::optional<uint32_t> Find(absl::string_view code) const;

  // Distinct locations known / currently in the spatial tree (the rest are scanned linearly
  // until the next rebuild). For tests and the benchmark.
  size_t site_count() const;
  size_t indexed_site_count() const;

 private:
  struct State;  // sites, warehouses, tree: see stock_index.cc
  class Search;  // one Nearest call

  bool SetAvailableLocked(uint32_t id, int item, int64_t available)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeRebuild() ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);

  const int item_count_;
  absl::Mutex writer_mu_;  // serialises writers; held across a rebuild
  mutable absl::Mutex mu_ ABSL_ACQUIRED_AFTER(writer_mu_);  // readers shared, writers exclusive
  std::unique_ptr<State> state_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stockpile::catalogue
