#pragma once

// What the planner reads: per item, every warehouse that holds it (per lot, with expiry), its
// reserve floor and its contract/capacity reserves. Kept up to date by the catalogue from the
// same change entries it applies to its national view (Apply* below), so a plan never copies
// the national dataset. Indexed per item by warehouse code: codes start with the region code,
// so "every holder under region prefix P" is one contiguous range of an ordered map.
// Thread-safe: writers take the lock exclusively, each read call shares it.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "services/catalogue/geo.h"
#include "services/common/reference_data.h"
#include "stockpile/v1/stock.pb.h"
#include "stockpile/v1/warehouse.pb.h"

namespace stockpile::catalogue::allocation {

// Days since 1970-01-01 for a lot without expiry: after every real date.
inline constexpr int32_t kNoExpiry = INT32_MAX;

// A lot as callers hand it to SetLots (names as strings; interned on the way in).
struct LotStock {
  std::string lot;
  int32_t expiry_day = kNoExpiry;  // last day the lot may be used
  int64_t available = 0;           // on_hand - held
};

// A lot as the snapshot keeps it: 16 bytes, the name interned (StockSnapshot::LotName).
struct Lot {
  uint32_t lot_id = 0;
  int32_t expiry_day = kNoExpiry;
  int64_t available = 0;
};
// Most balances have one lot: it lives inside the entry, no allocation.
using Lots = absl::InlinedVector<Lot, 1>;

// One warehouse × item as the planner sees it, assembled for a callback (a view: `lots` points
// into the snapshot and stays valid while the read lock is held). Lots earliest expiry first.
struct SourceStock {
  absl::Span<const Lot> lots;
  int64_t floor = 0;  // quota min: stock a ROUTINE/URGENT plan must leave in place
  int64_t contract = 0;
  int64_t capacity = 0;
  int32_t contract_lead_hours = 0;
  int32_t capacity_lead_hours = 0;
};

// A warehouse's place: region and the county seat it is measured from (radians, precomputed).
struct SourcePlace {
  std::string code;    // "4201-W001"
  std::string region;  // "4201"
  GeoPoint seat;       // degrees
  double lat_rad = 0, lon_rad = 0, cos_lat = 1;
};

// One candidate handed to a reader. `place` and the lots behind `stock->lots` stay valid while
// the read lock is held; the SourceStock itself only during the callback.
struct Candidate {
  const SourcePlace* place;
  const SourceStock* stock;
};

class StockSnapshot {
 public:
  // `reference` (may be null) gives each warehouse its region's county seat; without it, or for
  // an unknown region, the location passed to SetWarehouse is used.
  explicit StockSnapshot(const common::ReferenceData* reference);
  ~StockSnapshot();

  // ---- writes (state-based: the latest value wins)
  void SetWarehouse(absl::string_view code, GeoPoint location);
  void RemoveWarehouse(absl::string_view code);
  // Replaces the lots of one warehouse × item (lots with available <= 0 are dropped).
  void SetLots(absl::string_view code, absl::string_view item, std::vector<LotStock> lots);
  void SetFloor(absl::string_view code, absl::string_view item, int64_t floor);
  void SetReserve(absl::string_view code, absl::string_view item, stockpile::v1::ReserveMode mode,
                  int64_t quantity, int32_t lead_time_hours);

  // The catalogue's change records, as they come from WatchChanges.
  void Apply(const stockpile::v1::Warehouse& warehouse);
  void Apply(const stockpile::v1::Balance& balance);
  void Apply(const stockpile::v1::Quota& quota);
  void Apply(const stockpile::v1::Reserve& reserve);

  // ---- reads
  // Holds the snapshot's read lock for its lifetime: candidates seen through it stay valid
  // until it dies (a plan reads through one Reader, so it sees one consistent state).
  class Reader {
   public:
    explicit Reader(const StockSnapshot& s) ABSL_NO_THREAD_SAFETY_ANALYSIS : s_(s) {
      s_.mu_.ReaderLock();
    }
    ~Reader() ABSL_NO_THREAD_SAFETY_ANALYSIS { s_.mu_.ReaderUnlock(); }
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;
    void ForEachHolder(absl::string_view item, absl::string_view region_prefix,
                       const std::function<void(const Candidate&)>& fn) const
        ABSL_NO_THREAD_SAFETY_ANALYSIS {
      s_.ForEachHolderLocked(item, region_prefix, "", fn);
    }
    // The same, leaving out the holders under `except_prefix` (a tier already visited) without
    // walking past them one by one.
    void ForEachHolderExcept(
        absl::string_view item, absl::string_view region_prefix, absl::string_view except_prefix,
        const std::function<void(const Candidate&)>& fn) const ABSL_NO_THREAD_SAFETY_ANALYSIS {
      s_.ForEachHolderLocked(item, region_prefix, except_prefix, fn);
    }
    void ForEachReserve(absl::string_view item, const std::function<void(const Candidate&)>& fn)
        const ABSL_NO_THREAD_SAFETY_ANALYSIS {
      s_.ForEachReserveLocked(item, fn);
    }
    const std::string& LotName(uint32_t lot_id) const ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return s_.lot_names_[lot_id];
    }

   private:
    const StockSnapshot& s_;
  };

  // Every holder of `item` whose code starts with `region_prefix`, in code order.
  void ForEachHolder(absl::string_view item, absl::string_view region_prefix,
                     const std::function<void(const Candidate&)>& fn) const;
  // Every warehouse with a contract or capacity reserve of `item`.
  void ForEachReserve(absl::string_view item,
                      const std::function<void(const Candidate&)>& fn) const;
  // Available stock (on hand - held) of `item` at warehouse `code` in lots whose expiry day is
  // before `today` (the expiry date is the last usable day): what no plan takes.
  int64_t ExpiredAvailable(absl::string_view code, absl::string_view item, int32_t today) const;
  // Name of an interned lot id (ids come from Candidate lots).
  std::string LotName(uint32_t lot_id) const;
  size_t warehouse_count() const;
  // Warehouse × item pairs with lots, a floor or a reserve.
  size_t entry_count() const;

 private:
  // Per item, warehouses are keyed by their (stable) place and ordered by its code, so an entry
  // costs a pointer, not a copy of the code, and a region prefix is still one contiguous range.
  // Codes that start with `prefix` compare equal to it, so lower_bound and upper_bound of an
  // UnderPrefix give the range of a region prefix (a code cut to the prefix's length orders as
  // the code does).
  struct UnderPrefix {
    absl::string_view prefix;
  };
  struct CodeOrder {
    using is_transparent = void;
    bool operator()(const SourcePlace* a, const SourcePlace* b) const { return a->code < b->code; }
    bool operator()(const SourcePlace* a, absl::string_view b) const {
      return absl::string_view(a->code) < b;
    }
    bool operator()(absl::string_view a, const SourcePlace* b) const {
      return a < absl::string_view(b->code);
    }
    bool operator()(const SourcePlace* a, UnderPrefix b) const {
      return absl::string_view(a->code).substr(0, b.prefix.size()) < b.prefix;
    }
    bool operator()(UnderPrefix a, const SourcePlace* b) const {
      return a.prefix < absl::string_view(b->code).substr(0, a.prefix.size());
    }
  };
  // Only warehouses holding some (available > 0) lot of the item.
  using HolderIndex = absl::btree_map<const SourcePlace*, Lots, CodeOrder>;
  // The rarely set per-balance figures, apart so a plain holding stays 32 bytes.
  struct Extra {
    int64_t floor = 0;
    int64_t contract = 0;
    int64_t capacity = 0;
    int32_t contract_lead_hours = 0;
    int32_t capacity_lead_hours = 0;
    bool Empty() const { return floor == 0 && contract == 0 && capacity == 0; }
  };
  struct ItemState {
    HolderIndex holders;
    absl::flat_hash_map<const SourcePlace*, Extra> extras;
    // Warehouses with a contract/capacity reserve (a small subset), code order.
    absl::btree_set<const SourcePlace*, CodeOrder> reserves;
  };

  SourcePlace* PlaceLocked(absl::string_view code) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  ItemState& ItemLocked(absl::string_view item) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint32_t LotIdLocked(absl::string_view name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Extra* ExtraLocked(absl::string_view code, absl::string_view item)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropExtraIfEmptyLocked(absl::string_view item, const SourcePlace* place)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static SourceStock StockOf(const ItemState& state, const SourcePlace* place,
                             absl::Span<const Lot> lots);
  GeoPoint SeatOf(absl::string_view region, GeoPoint fallback) const;
  void ForEachHolderLocked(absl::string_view item, absl::string_view region_prefix,
                           absl::string_view except_prefix,
                           const std::function<void(const Candidate&)>& fn) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void ForEachReserveLocked(absl::string_view item,
                            const std::function<void(const Candidate&)>& fn) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const common::ReferenceData* reference_;
  mutable absl::Mutex mu_;
  // Stable addresses: item indexes point at their warehouse's place.
  absl::flat_hash_map<std::string, std::unique_ptr<SourcePlace>> places_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, ItemState> items_ ABSL_GUARDED_BY(mu_);
  // Lot names, interned (a handful of distinct names across the country).
  std::vector<std::string> lot_names_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint32_t> lot_ids_ ABSL_GUARDED_BY(mu_);
};

// Region code of a warehouse code ("4201-W001" -> "4201"); the code itself when malformed.
absl::string_view RegionOfCode(absl::string_view code);

}  // namespace stockpile::catalogue::allocation
