#include "services/catalogue/allocation/stock_snapshot.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "services/common/validation.h"

namespace stockpile::catalogue::allocation {
namespace {

using stockpile::v1::ReserveMode;

bool FefoBefore(const LotStock& a, const LotStock& b) {
  if (a.expiry_day != b.expiry_day) return a.expiry_day < b.expiry_day;
  return a.lot < b.lot;
}

std::string CodeOf(absl::string_view name) {
  auto code = common::WarehouseCodeFromName(name);
  return code.ok() ? *code : std::string(name);
}

}  // namespace

absl::string_view RegionOfCode(absl::string_view code) {
  const size_t dash = code.find('-');
  return dash == absl::string_view::npos ? code : code.substr(0, dash);
}

StockSnapshot::StockSnapshot(const common::ReferenceData* reference) : reference_(reference) {}
StockSnapshot::~StockSnapshot() = default;

GeoPoint StockSnapshot::SeatOf(absl::string_view region, GeoPoint fallback) const {
  if (reference_ == nullptr) return fallback;
  // Townships and villages sit at their county's seat; counties and above carry their own.
  const auto* r = reference_->FindRegion(region.size() > 6 ? region.substr(0, 6) : region);
  return r == nullptr ? fallback : GeoPoint{r->longitude, r->latitude};
}

SourcePlace* StockSnapshot::PlaceLocked(absl::string_view code) {
  auto& slot = places_[std::string(code)];
  if (slot == nullptr) {
    slot = std::make_unique<SourcePlace>();
    slot->code = std::string(code);
    slot->region = std::string(RegionOfCode(code));
    slot->seat = SeatOf(slot->region, GeoPoint{});
    slot->lat_rad = slot->seat.lat * kDegToRad;
    slot->lon_rad = slot->seat.lon * kDegToRad;
    slot->cos_lat = std::cos(slot->lat_rad);
  }
  return slot.get();
}

StockSnapshot::ItemState& StockSnapshot::ItemLocked(absl::string_view item) {
  auto it = items_.find(item);
  return it != items_.end() ? it->second : items_[std::string(item)];
}

uint32_t StockSnapshot::LotIdLocked(absl::string_view name) {
  if (auto it = lot_ids_.find(name); it != lot_ids_.end()) return it->second;
  const auto id = uint32_t(lot_names_.size());
  lot_names_.emplace_back(name);
  lot_ids_.emplace(std::string(name), id);
  return id;
}

StockSnapshot::Extra* StockSnapshot::ExtraLocked(absl::string_view code, absl::string_view item) {
  return &ItemLocked(item).extras[PlaceLocked(code)];
}

void StockSnapshot::DropExtraIfEmptyLocked(absl::string_view item, const SourcePlace* place) {
  auto it = items_.find(item);
  if (it == items_.end()) return;
  auto e = it->second.extras.find(place);
  if (e != it->second.extras.end() && e->second.Empty()) it->second.extras.erase(e);
}

void StockSnapshot::SetWarehouse(absl::string_view code, GeoPoint location) {
  absl::MutexLock lock(&mu_);
  SourcePlace* p = PlaceLocked(code);
  p->seat = SeatOf(p->region, location);
  p->lat_rad = p->seat.lat * kDegToRad;
  p->lon_rad = p->seat.lon * kDegToRad;
  p->cos_lat = std::cos(p->lat_rad);
}

void StockSnapshot::RemoveWarehouse(absl::string_view code) {
  absl::MutexLock lock(&mu_);
  auto place = places_.find(code);
  if (place == places_.end()) return;
  const SourcePlace* p = place->second.get();
  // Every index entry goes before the place it points at.
  for (auto& [item, state] : items_) {
    state.holders.erase(p);
    state.extras.erase(p);
    state.reserves.erase(p);
  }
  places_.erase(place);
}

void StockSnapshot::SetLots(absl::string_view code, absl::string_view item,
                            std::vector<LotStock> lots) {
  lots.erase(
      std::remove_if(lots.begin(), lots.end(), [](const LotStock& l) { return l.available <= 0; }),
      lots.end());
  std::sort(lots.begin(), lots.end(), FefoBefore);
  absl::MutexLock lock(&mu_);
  if (lots.empty()) {
    auto it = items_.find(item);
    auto place = places_.find(code);
    if (it != items_.end() && place != places_.end()) it->second.holders.erase(place->second.get());
    return;
  }
  Lots kept;
  kept.reserve(lots.size());
  for (const LotStock& l : lots) kept.push_back({LotIdLocked(l.lot), l.expiry_day, l.available});
  ItemState& state = ItemLocked(item);
  state.holders[PlaceLocked(code)] = std::move(kept);
}

void StockSnapshot::SetFloor(absl::string_view code, absl::string_view item, int64_t floor) {
  absl::MutexLock lock(&mu_);
  Extra* e = ExtraLocked(code, item);
  e->floor = std::max<int64_t>(0, floor);
  DropExtraIfEmptyLocked(item, PlaceLocked(code));
}

void StockSnapshot::SetReserve(absl::string_view code, absl::string_view item, ReserveMode mode,
                               int64_t quantity, int32_t lead_time_hours) {
  absl::MutexLock lock(&mu_);
  const SourcePlace* place = PlaceLocked(code);
  Extra& s = *ExtraLocked(code, item);
  quantity = std::max<int64_t>(0, quantity);
  if (mode == stockpile::v1::RESERVE_MODE_CONTRACT) {
    s.contract = quantity;
    s.contract_lead_hours = lead_time_hours;
  } else if (mode == stockpile::v1::RESERVE_MODE_CAPACITY) {
    s.capacity = quantity;
    s.capacity_lead_hours = lead_time_hours;
  }
  ItemState& state = ItemLocked(item);
  if (s.contract > 0 || s.capacity > 0) {
    state.reserves.insert(place);
  } else {
    state.reserves.erase(place);
  }
  DropExtraIfEmptyLocked(item, place);
}

void StockSnapshot::Apply(const stockpile::v1::Warehouse& w) {
  if (w.status() == stockpile::v1::WAREHOUSE_STATUS_CLOSED) {
    RemoveWarehouse(w.code());
    return;
  }
  SetWarehouse(w.code(), GeoPoint{w.location().longitude(), w.location().latitude()});
}

void StockSnapshot::Apply(const stockpile::v1::Balance& b) {
  std::vector<LotStock> lots;
  lots.reserve(b.lots_size());
  for (const auto& l : b.lots()) {
    LotStock lot{l.lot(), kNoExpiry, l.on_hand() - l.held()};
    if (!l.expiry_date().empty()) {
      auto day = common::ParseDate("expiry_date", l.expiry_date());
      lot.expiry_day = day.ok() ? *day : 0;  // unreadable date: treat as expired, never planned
    }
    lots.push_back(std::move(lot));
  }
  SetLots(CodeOf(b.warehouse()), b.item(), std::move(lots));
}

void StockSnapshot::Apply(const stockpile::v1::Quota& q) {
  SetFloor(CodeOf(q.warehouse()), q.item(), q.min());
}

void StockSnapshot::Apply(const stockpile::v1::Reserve& r) {
  SetReserve(CodeOf(r.warehouse()), r.item(), r.mode(), r.quantity(), r.lead_time_hours());
}

void StockSnapshot::ForEachHolder(absl::string_view item, absl::string_view region_prefix,
                                  const std::function<void(const Candidate&)>& fn) const {
  absl::ReaderMutexLock lock(&mu_);
  ForEachHolderLocked(item, region_prefix, "", fn);
}

void StockSnapshot::ForEachReserve(absl::string_view item,
                                   const std::function<void(const Candidate&)>& fn) const {
  absl::ReaderMutexLock lock(&mu_);
  ForEachReserveLocked(item, fn);
}

SourceStock StockSnapshot::StockOf(const ItemState& state, const SourcePlace* place,
                                   absl::Span<const Lot> lots) {
  SourceStock stock;
  stock.lots = lots;
  if (auto e = state.extras.find(place); e != state.extras.end()) {
    stock.floor = e->second.floor;
    stock.contract = e->second.contract;
    stock.capacity = e->second.capacity;
    stock.contract_lead_hours = e->second.contract_lead_hours;
    stock.capacity_lead_hours = e->second.capacity_lead_hours;
  }
  return stock;
}

void StockSnapshot::ForEachHolderLocked(absl::string_view item, absl::string_view region_prefix,
                                        absl::string_view except_prefix,
                                        const std::function<void(const Candidate&)>& fn) const {
  auto it = items_.find(item);
  if (it == items_.end()) return;
  const ItemState& state = it->second;
  const HolderIndex& holders = state.holders;
  auto visit = [&](HolderIndex::const_iterator from, HolderIndex::const_iterator to) {
    for (auto e = from; e != to; ++e) {
      const SourceStock stock = StockOf(state, e->first, e->second);
      fn(Candidate{e->first, &stock});
    }
  };
  const auto begin = holders.lower_bound(UnderPrefix{region_prefix});
  const auto end = holders.upper_bound(UnderPrefix{region_prefix});
  if (except_prefix.empty()) return visit(begin, end);
  if (absl::StartsWith(region_prefix, except_prefix)) return;  // all of it is left out
  if (!absl::StartsWith(except_prefix, region_prefix)) return visit(begin, end);  // none is
  visit(begin, holders.lower_bound(UnderPrefix{except_prefix}));
  visit(holders.upper_bound(UnderPrefix{except_prefix}), end);
}

void StockSnapshot::ForEachReserveLocked(absl::string_view item,
                                         const std::function<void(const Candidate&)>& fn) const {
  auto it = items_.find(item);
  if (it == items_.end()) return;
  for (const SourcePlace* place : it->second.reserves) {
    auto h = it->second.holders.find(place);
    const SourceStock stock = StockOf(
        it->second, place, h == it->second.holders.end() ? absl::Span<const Lot>() : h->second);
    fn(Candidate{place, &stock});
  }
}

int64_t StockSnapshot::ExpiredAvailable(absl::string_view code, absl::string_view item,
                                        int32_t today) const {
  absl::ReaderMutexLock lock(&mu_);
  auto state = items_.find(item);
  if (state == items_.end()) return 0;
  auto holder = state->second.holders.find(code);
  if (holder == state->second.holders.end()) return 0;
  int64_t expired = 0;
  for (const Lot& lot : holder->second) {
    if (lot.expiry_day < today) expired += lot.available;
  }
  return expired;
}

std::string StockSnapshot::LotName(uint32_t lot_id) const {
  absl::ReaderMutexLock lock(&mu_);
  return lot_id < lot_names_.size() ? lot_names_[lot_id] : std::string();
}

size_t StockSnapshot::warehouse_count() const {
  absl::ReaderMutexLock lock(&mu_);
  return places_.size();
}

size_t StockSnapshot::entry_count() const {
  absl::ReaderMutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [item, state] : items_) {
    n += state.holders.size();
    for (const auto& [place, extra] : state.extras) n += state.holders.contains(place) ? 0 : 1;
  }
  return n;
}

}  // namespace stockpile::catalogue::allocation
