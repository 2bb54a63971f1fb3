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
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "services/catalogue/geo.h"
#include "services/common/reference_data.h"
#include "stockpile/v1/stock.pb.h"
#include "stockpile/v1/warehouse.pb.h"

namespace stockpile::catalogue::allocation {

// Days since 1970-01-01 for a lot without expiry: after every real date.
inline constexpr int32_t kNoExpiry = INT32_MAX;

struct LotStock {
  std::string lot;
  int32_t expiry_day = kNoExpiry;  // last day the lot may be used
  int64_t available = 0;           // on_hand - held
};

// One warehouse × item as the planner sees it. Lots are kept earliest expiry first.
struct SourceStock {
  std::vector<LotStock> lots;
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

// One candidate handed to a reader; pointers valid during the callback only.
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
      s_.ForEachHolderLocked(item, region_prefix, fn);
    }
    void ForEachReserve(absl::string_view item, const std::function<void(const Candidate&)>& fn)
        const ABSL_NO_THREAD_SAFETY_ANALYSIS {
      s_.ForEachReserveLocked(item, fn);
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
  size_t warehouse_count() const;
  size_t entry_count() const;

 private:
  struct Entry {
    const SourcePlace* place = nullptr;
    SourceStock stock;
    bool Empty() const {
      return stock.lots.empty() && stock.floor == 0 && stock.contract == 0 && stock.capacity == 0;
    }
  };
  using ItemIndex = absl::btree_map<std::string, Entry>;

  SourcePlace* PlaceLocked(absl::string_view code) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Entry* EntryLocked(absl::string_view code, absl::string_view item)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropIfEmptyLocked(absl::string_view code, absl::string_view item)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  GeoPoint SeatOf(absl::string_view region, GeoPoint fallback) const;
  void ForEachHolderLocked(absl::string_view item, absl::string_view region_prefix,
                           const std::function<void(const Candidate&)>& fn) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void ForEachReserveLocked(absl::string_view item,
                            const std::function<void(const Candidate&)>& fn) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const common::ReferenceData* reference_;
  mutable absl::Mutex mu_;
  // Stable addresses: entries point at their warehouse's place.
  absl::flat_hash_map<std::string, std::unique_ptr<SourcePlace>> places_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, ItemIndex> holders_ ABSL_GUARDED_BY(mu_);
  // Codes with a contract/capacity reserve, per item (a small subset).
  absl::flat_hash_map<std::string, absl::btree_set<std::string>> reserves_ ABSL_GUARDED_BY(mu_);
};

// Region code of a warehouse code ("4201-W001" -> "4201"); the code itself when malformed.
absl::string_view RegionOfCode(absl::string_view code);

}  // namespace stockpile::catalogue::allocation
