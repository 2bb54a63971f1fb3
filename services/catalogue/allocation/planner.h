#pragma once

// Allocation planning (分级负责, 属地为主): for each requested line, sources are taken tier by
// tier (same township, county, city, province, then other provinces), nearest first inside a
// tier by great-circle distance between county seats (ties: warehouse code). A source gives what
// it holds above its reserve floor (CRITICAL: down to zero, flagged below_floor), lots leave
// earliest expiry first, expired lots never leave. With a min_leg_quantity, a source that
// could give less is passed over unless its leg completes the line, and taken after all when
// the line would otherwise fall short. Pure: same request, stock and day give the same plan.
//
// "Other provinces" are nearest first across all of them, yet gathered one province at a time:
// each province has a lower bound (its seat nearest the destination: every warehouse sits at a
// province, city or county seat), provinces are gathered by bound, and a gathered source is
// taken once it is nearer than the next province's bound. So a plan stops as soon as the line is
// filled without reading every warehouse of the country (see docs/allocation.md).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "services/catalogue/allocation/stock_snapshot.h"
#include "services/common/reference_data.h"
#include "stockpile/v1/allocation.pb.h"
#include "stockpile/v1/transfer_service.pb.h"

namespace stockpile::catalogue::allocation {

// The warehouses of one level service instance: its level and region prefixes.
struct SourceScope {
  stockpile::v1::Level level = stockpile::v1::LEVEL_UNSPECIFIED;
  std::vector<std::string> prefixes;
  bool Holds(absl::string_view region) const;
};

// Which sources a plan may reach. A warehouse is left out of plans when an unreachable instance
// hosts its region and no answering one does (the shard of an instance that is gone may have
// moved to a new one), or when its region is not under `only_under`.
struct SourceReach {
  std::vector<SourceScope> unreachable;
  std::vector<SourceScope> reachable;
  // A region-code prefix sources must lie under ("": anywhere): a re-plan after approval stays
  // inside its approver's scope.
  std::string only_under;
  bool Excludes(absl::string_view region) const;
};

// Stock a plan must count as gone although the snapshot may still show it: what a transfer being
// re-planned already takes at its sources (legs whose holds are not placed yet, holds placed too
// recently for the catalogue to have seen them). Per item, warehouse code and lot name.
class StockTaken {
 public:
  using LotsTaken = absl::flat_hash_map<std::string, int64_t>;  // lot name -> quantity

  void Add(absl::string_view item, absl::string_view warehouse_code, absl::string_view lot,
           int64_t quantity);
  // What is taken of `item` at `warehouse_code`, per lot; null when nothing is.
  const LotsTaken* At(absl::string_view item, absl::string_view warehouse_code) const;
  bool empty() const { return taken_.empty(); }

 private:
  absl::flat_hash_map<std::string, absl::flat_hash_map<std::string, LotsTaken>> taken_;
};

struct PlanLimits {
  size_t max_lines = 100;
  size_t max_reserve_options_per_line = 20;
};

class Planner {
 public:
  explicit Planner(const common::ReferenceData* reference, PlanLimits limits = {});
  const common::ReferenceData& reference() const { return *reference_; }

  // `today` is the reserve day (days since 1970-01-01 in China Standard Time): lots whose expiry
  // date is before it are expired. Warehouses `reach` excludes are not planned from; what
  // `taken` lists is subtracted from the snapshot's stock. INVALID_ARGUMENT for a malformed
  // request.
  absl::StatusOr<stockpile::v1::AllocationPlan> Plan(
      const stockpile::v1::PlanAllocationRequest& request, const StockSnapshot& stock,
      int32_t today, const SourceReach& reach = {}, const StockTaken& taken = {}) const;

  // Reserve day of a wall-clock time (UTC+8 calendar day).
  static int32_t ReserveDay(int64_t unix_micros);

 private:
  // A seat warehouses are measured from, as StockSnapshot precomputes it (radians, cos lat).
  struct Seat {
    double lat_rad, lon_rad, cos_lat;
  };
  // A province and the seats of its province, city and county regions: each of its warehouses
  // sits at one of them (townships and villages at their county's), so none is nearer the
  // destination than the nearest of these.
  struct Province {
    std::string code;
    std::vector<Seat> seats;
  };
  class LinePlanner;

  absl::StatusOr<std::string> DestinationRegion(
      const stockpile::v1::PlanAllocationRequest& request) const;
  absl::Status CheckLines(const stockpile::v1::PlanAllocationRequest& request) const;
  GeoPoint SeatOf(absl::string_view region) const;

  const common::ReferenceData* reference_;
  const PlanLimits limits_;
  std::vector<Province> provinces_;
};

// The tier of a source region relative to a destination region.
stockpile::v1::SourceTier TierOf(absl::string_view destination_region,
                                 absl::string_view source_region);

}  // namespace stockpile::catalogue::allocation
