#include "services/catalogue/allocation/planner.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/status_macros.h"
#include "services/common/validation.h"

namespace stockpile::catalogue::allocation {
namespace {

using namespace stockpile::v1;  // NOLINT: the planner speaks the API's types throughout

constexpr int64_t kMaxQuantity = 1'000'000'000'000'000;

struct TierSpec {
  size_t prefix_len;
  SourceTier tier;
};
constexpr TierSpec kTiers[] = {{9, SOURCE_TIER_SAME_TOWNSHIP},
                               {6, SOURCE_TIER_SAME_COUNTY},
                               {4, SOURCE_TIER_SAME_CITY},
                               {2, SOURCE_TIER_SAME_PROVINCE}};

// A source able to give something to the current line.
struct Option {
  double km;
  const SourcePlace* place;
  absl::Span<const Lot> lots;          // valid while the plan's Reader holds the lock
  const StockTaken::LotsTaken* taken;  // of `lots`, already taken; null: none
  int64_t usable;                      // unexpired available, less what is taken
  int64_t above_floor;                 // usable - floor (may be negative)
  int64_t givable;                     // what this priority may take: usable, or above_floor
};

// Nearest first. Among equally near sources, the one that can give more first, so a line needs
// fewer legs: every township and village of a county sits at the county's seat, and ordered by
// code alone a request went through dozens of village stores in code order, whatever each held.
// Then by code, so the same inputs give the same plan.
bool TakenBefore(const Option& a, const Option& b) {
  if (a.km != b.km) return a.km < b.km;
  if (a.givable != b.givable) return a.givable > b.givable;
  return a.place->code < b.place->code;
}

// Heap order with the option to take next on top.
bool TakenAfter(const Option& a, const Option& b) { return TakenBefore(b, a); }

bool IsDigits(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

SourceTier TierOf(absl::string_view destination_region, absl::string_view source_region) {
  for (const TierSpec& t : kTiers) {
    if (destination_region.size() >= t.prefix_len && source_region.size() >= t.prefix_len &&
        destination_region.substr(0, t.prefix_len) == source_region.substr(0, t.prefix_len)) {
      return t.tier;
    }
  }
  return SOURCE_TIER_OTHER_PROVINCE;
}

bool SourceScope::Holds(absl::string_view region) const {
  if (common::LevelOfRegionCode(region) != level) return false;
  for (const auto& prefix : prefixes) {
    if (absl::StartsWith(region, prefix)) return true;
  }
  return false;
}

void StockTaken::Add(absl::string_view item, absl::string_view warehouse_code,
                     absl::string_view lot, int64_t quantity) {
  taken_[item][warehouse_code][lot] += quantity;
}

const StockTaken::LotsTaken* StockTaken::At(absl::string_view item,
                                            absl::string_view warehouse_code) const {
  auto of_item = taken_.find(item);
  if (of_item == taken_.end()) return nullptr;
  auto at = of_item->second.find(warehouse_code);
  return at == of_item->second.end() ? nullptr : &at->second;
}

bool SourceReach::Excludes(absl::string_view region) const {
  if (!absl::StartsWith(region, only_under)) return true;
  auto holds = [region](const SourceScope& scope) { return scope.Holds(region); };
  return std::any_of(unreachable.begin(), unreachable.end(), holds) &&
         std::none_of(reachable.begin(), reachable.end(), holds);
}

int32_t Planner::ReserveDay(int64_t unix_micros) { return common::ReserveDay(unix_micros); }

// Plans one request: the context shared by its lines, and the walk over tiers for one line.
class Planner::LinePlanner {
 public:
  LinePlanner(const Planner& planner, const StockSnapshot::Reader& stock, std::string destination,
              bool critical, int64_t min_leg, int32_t today,
              absl::flat_hash_set<std::string> excluded, const SourceReach& reach,
              const StockTaken& taken, AllocationPlan* plan)
      : planner_(planner),
        stock_(stock),
        destination_(std::move(destination)),
        critical_(critical),
        min_leg_(min_leg),
        today_(today),
        excluded_(std::move(excluded)),
        reach_(reach),
        taken_(taken),
        plan_(plan) {
    const GeoPoint seat = planner.SeatOf(destination_);
    lat_ = seat.lat * kDegToRad;
    lon_ = seat.lon * kDegToRad;
    cos_lat_ = std::cos(lat_);
  }

  void PlanLine(const PlanLine& line) {
    item_ = line.item();
    remaining_ = line.quantity();
    std::string inner;  // prefix of the tier visited before (already taken from)
    for (const TierSpec& t : kTiers) {
      if (destination_.size() < t.prefix_len || remaining_ == 0) continue;
      const std::string prefix = destination_.substr(0, t.prefix_len);
      TakeNearestFirst(Collect(prefix, inner), t.tier);
      inner = prefix;
    }
    if (remaining_ > 0) TakeFromOtherProvinces();
    TakePassedOver();
    auto* outcome = plan_->add_outcomes();
    outcome->set_item(item_);
    outcome->set_requested(line.quantity());
    outcome->set_planned(line.quantity() - remaining_);
    outcome->set_shortfall(remaining_);
    if (remaining_ > 0) ListReserves(remaining_);
  }

 private:
  // An other province and the nearest any of its warehouses can be.
  struct ProvinceBound {
    double km;
    const Province* province;
  };

  // The same expression for a seat and a source at it, so a bound is bit-for-bit comparable.
  double KmTo(double lat_rad, double lon_rad, double cos_lat) const {
    return KmFromHaversineTerm(HaversineTerm(lat_, lon_, cos_lat_, lat_rad, lon_rad, cos_lat));
  }
  double KmTo(const SourcePlace& p) const { return KmTo(p.lat_rad, p.lon_rad, p.cos_lat); }

  bool Eligible(const SourcePlace& p) const {
    return p.region != destination_ && (excluded_.empty() || !excluded_.contains(p.code)) &&
           !reach_.Excludes(p.region);
  }

  // Distance to each source in turn, measured once per run of sources at the same seat: in code
  // order a county's townships and villages follow each other, all at the county's seat.
  class SeatDistances {
   public:
    explicit SeatDistances(const LinePlanner& line) : line_(line) {}
    double KmTo(const SourcePlace& p) {
      if (p.lat_rad != lat_ || p.lon_rad != lon_ || p.cos_lat != cos_lat_) {
        lat_ = p.lat_rad;
        lon_ = p.lon_rad;
        cos_lat_ = p.cos_lat;
        km_ = line_.KmTo(p);
      }
      return km_;
    }

   private:
    const LinePlanner& line_;
    double lat_ = std::numeric_limits<double>::quiet_NaN(), lon_ = 0, cos_lat_ = 0, km_ = 0;
  };

  // Sources under `prefix` but not under `inner` that can give something, in code order.
  std::vector<Option> Collect(const std::string& prefix, const std::string& inner) const {
    std::vector<Option> options;
    SeatDistances distances(*this);
    stock_.ForEachHolderExcept(item_, prefix, inner, [&](const Candidate& c) {
      const StockTaken::LotsTaken* taken =
          taken_.empty() ? nullptr : taken_.At(item_, c.place->code);
      int64_t usable = 0;
      for (const Lot& lot : c.stock->lots) {
        if (lot.expiry_day >= today_) usable += Left(lot, taken);
      }
      const int64_t above_floor = usable - c.stock->floor;
      const int64_t givable = critical_ ? usable : above_floor;
      if (givable <= 0 || !Eligible(*c.place)) return;
      options.push_back(
          {distances.KmTo(*c.place), c.place, c.stock->lots, taken, usable, above_floor, givable});
    });
    return options;
  }

  // What `lot` has left once `taken` (of its warehouse) is subtracted.
  int64_t Left(const Lot& lot, const StockTaken::LotsTaken* taken) const {
    if (taken == nullptr) return lot.available;
    auto it = taken->find(stock_.LotName(lot.lot_id));
    return it == taken->end() ? lot.available : std::max<int64_t>(0, lot.available - it->second);
  }

  // Takes options nearest first until the line is complete. A line usually takes a few of a
  // tier's thousands of sources, so they are put in a heap (linear) rather than sorted, and only
  // those met are put in order.
  void TakeNearestFirst(std::vector<Option> options, SourceTier tier) {
    std::make_heap(options.begin(), options.end(), TakenAfter);
    while (remaining_ > 0 && !options.empty()) {
      std::pop_heap(options.begin(), options.end(), TakenAfter);
      Take(options.back(), tier);
      options.pop_back();
    }
  }

  // A leg below the request's minimum is passed over, unless it completes the line.
  void Take(const Option& o, SourceTier tier) {
    const int64_t take = std::min(o.givable, remaining_);
    if (take < min_leg_ && take < remaining_) {
      // Only as many as could fill what is left: later ones would never be taken.
      if (passed_over_givable_ < remaining_) {
        passed_over_.push_back({o, tier});
        passed_over_givable_ += o.givable;
      }
      return;
    }
    AddLeg(o, tier, take);
    remaining_ -= take;
  }

  // The line would fall short: the sources passed over for giving too little give it after
  // all, in the order they were met (tier, then distance).
  void TakePassedOver() {
    for (const auto& [o, tier] : passed_over_) {
      if (remaining_ == 0) break;
      const int64_t take = std::min(o.givable, remaining_);
      AddLeg(o, tier, take);
      remaining_ -= take;
    }
    passed_over_.clear();
    passed_over_givable_ = 0;
  }

  // Nearest first over all other provinces, gathering only as many as the line needs. Provinces
  // are gathered by bound; a gathered option goes before province i once it is nearer than
  // bound(i), since every option of province i or later is at least bound(i) away (one exactly
  // as near waits for province i, which may hold an equally near source that gives more).
  void TakeFromOtherProvinces() {
    std::vector<Option> pending;  // gathered, not taken yet: a heap, the next to take on top
    for (const ProvinceBound& b : OtherProvinceBounds()) {
      TakePending(pending, [&b](const Option& o) { return o.km < b.km; });
      if (remaining_ == 0) return;
      // Sorted first, so each push lands at the bottom of the heap without moving anything.
      std::vector<Option> options = Collect(b.province->code, "");
      std::sort(options.begin(), options.end(), TakenBefore);
      for (const Option& o : options) {
        pending.push_back(o);
        std::push_heap(pending.begin(), pending.end(), TakenAfter);
      }
    }
    TakePending(pending, [](const Option&) { return true; });
  }

  // Takes pending options, nearest first, while `before` holds and the line needs more.
  template <typename Before>
  void TakePending(std::vector<Option>& pending, const Before& before) {
    while (remaining_ > 0 && !pending.empty() && before(pending.front())) {
      std::pop_heap(pending.begin(), pending.end(), TakenAfter);
      Take(pending.back(), SOURCE_TIER_OTHER_PROVINCE);
      pending.pop_back();
    }
  }

  void AddLeg(const Option& o, SourceTier tier, int64_t take) {
    PlanLeg* leg = plan_->add_legs();
    leg->set_source_warehouse(common::WarehouseName(o.place->code));
    leg->set_source_region(o.place->region);
    leg->set_item(item_);
    leg->set_quantity(take);
    leg->set_distance_km(o.km);
    leg->set_tier(tier);
    leg->set_below_floor(take > std::max<int64_t>(0, o.above_floor));
    int64_t left = take;
    for (const Lot& lot : o.lots) {  // earliest expiry first
      if (left == 0) break;
      const int64_t available = Left(lot, o.taken);
      if (lot.expiry_day < today_ || available <= 0) continue;
      const int64_t q = std::min(available, left);
      HoldLot* hl = leg->add_lots();
      hl->set_lot(stock_.LotName(lot.lot_id));
      if (lot.expiry_day != kNoExpiry) hl->set_expiry_date(common::FormatDate(lot.expiry_day));
      hl->set_quantity(q);
      left -= q;
    }
  }

  // Other provinces by bound (ties by code). The destination is the same for every line, so
  // the ~3,300 seat distances are computed once per plan, and only if a line gets this far.
  const std::vector<ProvinceBound>& OtherProvinceBounds() {
    if (bounds_ready_) return bounds_;
    const std::string& only_under = reach_.only_under;
    for (const Province& p : planner_.provinces_) {
      if (absl::StartsWith(destination_, p.code)) continue;
      // None of its warehouses may give: not worth reading them.
      if (!absl::StartsWith(p.code, only_under) && !absl::StartsWith(only_under, p.code)) continue;
      double km = std::numeric_limits<double>::infinity();
      for (const Seat& s : p.seats) km = std::min(km, KmTo(s.lat_rad, s.lon_rad, s.cos_lat));
      bounds_.push_back({km, &p});
    }
    std::sort(bounds_.begin(), bounds_.end(), [](const ProvinceBound& a, const ProvinceBound& b) {
      return std::tie(a.km, a.province->code) < std::tie(b.km, b.province->code);
    });
    bounds_ready_ = true;
    return bounds_;
  }

  void ListReserves(int64_t shortfall) {
    struct ReserveRow {
      SourceTier tier;
      double km;
      const SourcePlace* place;
      ReserveMode mode;
      int64_t quantity;
      int32_t lead;
    };
    std::vector<ReserveRow> rows;
    stock_.ForEachReserve(item_, [&](const Candidate& c) {
      if (!Eligible(*c.place)) return;
      const SourceTier tier = TierOf(destination_, c.place->region);
      const double km = KmTo(*c.place);
      const SourceStock& s = *c.stock;
      if (s.contract > 0) {
        rows.push_back(
            {tier, km, c.place, RESERVE_MODE_CONTRACT, s.contract, s.contract_lead_hours});
      }
      if (s.capacity > 0) {
        rows.push_back(
            {tier, km, c.place, RESERVE_MODE_CAPACITY, s.capacity, s.capacity_lead_hours});
      }
    });
    std::sort(rows.begin(), rows.end(), [](const ReserveRow& a, const ReserveRow& b) {
      return std::tie(a.tier, a.km, a.place->code, a.mode) <
             std::tie(b.tier, b.km, b.place->code, b.mode);
    });
    int64_t covered = 0;
    size_t listed = 0;
    for (const ReserveRow& r : rows) {
      if (covered >= shortfall || listed == planner_.limits_.max_reserve_options_per_line) break;
      ReserveOption* o = plan_->add_reserve_options();
      o->set_warehouse(common::WarehouseName(r.place->code));
      o->set_item(item_);
      o->set_mode(r.mode);
      o->set_quantity(r.quantity);
      o->set_lead_time_hours(r.lead);
      o->set_distance_km(r.km);
      o->set_tier(r.tier);
      covered += r.quantity;
      ++listed;
    }
  }

  const Planner& planner_;
  const StockSnapshot::Reader& stock_;
  const std::string destination_;
  const bool critical_;
  const int64_t min_leg_;  // 0: every leg is taken as met
  const int32_t today_;
  const absl::flat_hash_set<std::string> excluded_;
  const SourceReach& reach_;
  const StockTaken& taken_;
  AllocationPlan* plan_;
  double lat_ = 0, lon_ = 0, cos_lat_ = 1;
  std::string item_;
  int64_t remaining_ = 0;
  std::vector<std::pair<Option, SourceTier>> passed_over_;  // of the current line
  int64_t passed_over_givable_ = 0;                         // what they could give in all
  std::vector<ProvinceBound> bounds_;                       // OtherProvinceBounds(), once computed
  bool bounds_ready_ = false;
};

Planner::Planner(const common::ReferenceData* reference, PlanLimits limits)
    : reference_(reference), limits_(limits) {
  absl::flat_hash_map<std::string, size_t> index;  // province code -> provinces_ slot
  for (const auto& r : reference_->regions()) {
    if (r.level != LEVEL_PROVINCE) continue;
    index[r.code] = provinces_.size();
    provinces_.push_back({r.code, {}});
  }
  // The seats StockSnapshot::SeatOf can give: regions of up to 6 digits, computed the same way.
  for (const auto& r : reference_->regions()) {
    if (r.code.size() > 6) continue;
    auto it = index.find(r.code.substr(0, 2));
    if (it == index.end()) continue;
    const double lat = r.latitude * kDegToRad;
    provinces_[it->second].seats.push_back({lat, r.longitude * kDegToRad, std::cos(lat)});
  }
}

GeoPoint Planner::SeatOf(absl::string_view region) const {
  const auto* r = reference_->FindRegion(region.size() > 6 ? region.substr(0, 6) : region);
  return r == nullptr ? GeoPoint{} : GeoPoint{r->longitude, r->latitude};
}

absl::StatusOr<std::string> Planner::DestinationRegion(const PlanAllocationRequest& req) const {
  std::string region = req.destination_region();
  if (!req.destination_warehouse().empty()) {
    ASSIGN_OR_RETURN(std::string code, common::WarehouseCodeFromName(req.destination_warehouse()));
    ASSIGN_OR_RETURN(std::string of_warehouse, common::RegionOfWarehouseCode(code));
    if (!region.empty() && region != of_warehouse) {
      return absl::InvalidArgumentError(absl::StrCat(
          "destination_region ", region, " is not the region of ", req.destination_warehouse()));
    }
    region = of_warehouse;
  }
  if (region.empty()) {
    return absl::InvalidArgumentError("destination_warehouse or destination_region is required");
  }
  const size_t n = region.size();
  if (!IsDigits(region) || (n != 2 && n != 4 && n != 6 && n != 9 && n != 12)) {
    return absl::InvalidArgumentError(
        absl::StrCat("destination region must be 2, 4, 6, 9 or 12 digits; got \"", region, "\""));
  }
  // A township or village too, not only its county: a mistyped code is not planned for.
  if (!reference_->MayBeRegion(region)) {
    return absl::NotFoundError(absl::StrCat("region ", region, " is not in the reference data"));
  }
  return region;
}

absl::Status Planner::CheckLines(const PlanAllocationRequest& req) const {
  if (req.lines().empty()) return absl::InvalidArgumentError("lines must list at least one item");
  if (static_cast<size_t>(req.lines_size()) > limits_.max_lines) {
    return absl::InvalidArgumentError(absl::StrCat("at most ", limits_.max_lines, " lines"));
  }
  std::set<std::string> seen;
  for (const auto& line : req.lines()) {
    if (reference_->FindItem(line.item()) == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("item \"", line.item(), "\" is not in the catalogue"));
    }
    if (line.quantity() <= 0 || line.quantity() > kMaxQuantity) {
      return absl::InvalidArgumentError(absl::StrCat("quantity of ", line.item(),
                                                     " must be between 1 and ", kMaxQuantity,
                                                     "; got ", line.quantity()));
    }
    if (!seen.insert(line.item()).second) {
      return absl::InvalidArgumentError(absl::StrCat("item ", line.item(), " is listed twice"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<AllocationPlan> Planner::Plan(const PlanAllocationRequest& req,
                                             const StockSnapshot& stock, int32_t today,
                                             const SourceReach& reach,
                                             const StockTaken& taken) const {
  ASSIGN_OR_RETURN(std::string destination, DestinationRegion(req));
  RETURN_IF_ERROR(CheckLines(req));
  if (req.min_leg_quantity() < 0 || req.min_leg_quantity() > kMaxQuantity) {
    return absl::InvalidArgumentError(absl::StrCat("min_leg_quantity must be between 0 and ",
                                                   kMaxQuantity, "; got ", req.min_leg_quantity()));
  }
  const Priority priority =
      req.priority() == PRIORITY_UNSPECIFIED ? PRIORITY_ROUTINE : req.priority();
  AllocationPlan plan;
  plan.set_destination_region(destination);
  plan.set_destination_warehouse(req.destination_warehouse());
  plan.set_priority(priority);
  plan.set_min_leg_quantity(req.min_leg_quantity());
  *plan.mutable_lines() = req.lines();
  std::set<std::string> sorted_excluded(req.exclude_sources().begin(), req.exclude_sources().end());
  for (const auto& e : sorted_excluded) plan.add_excluded_sources(e);
  absl::flat_hash_set<std::string> excluded;  // by code
  for (const auto& name : sorted_excluded) {
    ASSIGN_OR_RETURN(std::string code, common::WarehouseCodeFromName(name));
    excluded.insert(std::move(code));
  }
  StockSnapshot::Reader reader(stock);
  LinePlanner planner(*this, reader, destination, priority == PRIORITY_CRITICAL,
                      req.min_leg_quantity(), today, std::move(excluded), reach, taken, &plan);
  for (const auto& line : req.lines()) planner.PlanLine(line);
  return plan;
}

}  // namespace stockpile::catalogue::allocation
