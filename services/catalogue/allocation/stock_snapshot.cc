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

StockSnapshot::Entry* StockSnapshot::EntryLocked(absl::string_view code, absl::string_view item) {
  Entry& e = holders_[std::string(item)][std::string(code)];
  if (e.place == nullptr) e.place = PlaceLocked(code);
  return &e;
}

void StockSnapshot::DropIfEmptyLocked(absl::string_view code, absl::string_view item) {
  auto it = holders_.find(item);
  if (it == holders_.end()) return;
  auto e = it->second.find(std::string(code));
  if (e != it->second.end() && e->second.Empty()) it->second.erase(e);
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
  for (auto& [item, index] : holders_) index.erase(std::string(code));
  for (auto& [item, codes] : reserves_) codes.erase(std::string(code));
  places_.erase(code);
}

void StockSnapshot::SetLots(absl::string_view code, absl::string_view item,
                            std::vector<LotStock> lots) {
  lots.erase(
      std::remove_if(lots.begin(), lots.end(), [](const LotStock& l) { return l.available <= 0; }),
      lots.end());
  std::sort(lots.begin(), lots.end(), FefoBefore);
  absl::MutexLock lock(&mu_);
  EntryLocked(code, item)->stock.lots = std::move(lots);
  DropIfEmptyLocked(code, item);
}

void StockSnapshot::SetFloor(absl::string_view code, absl::string_view item, int64_t floor) {
  absl::MutexLock lock(&mu_);
  EntryLocked(code, item)->stock.floor = std::max<int64_t>(0, floor);
  DropIfEmptyLocked(code, item);
}

void StockSnapshot::SetReserve(absl::string_view code, absl::string_view item, ReserveMode mode,
                               int64_t quantity, int32_t lead_time_hours) {
  absl::MutexLock lock(&mu_);
  SourceStock& s = EntryLocked(code, item)->stock;
  quantity = std::max<int64_t>(0, quantity);
  if (mode == stockpile::v1::RESERVE_MODE_CONTRACT) {
    s.contract = quantity;
    s.contract_lead_hours = lead_time_hours;
  } else if (mode == stockpile::v1::RESERVE_MODE_CAPACITY) {
    s.capacity = quantity;
    s.capacity_lead_hours = lead_time_hours;
  }
  if (s.contract > 0 || s.capacity > 0) {
    reserves_[std::string(item)].insert(std::string(code));
  } else if (auto it = reserves_.find(item); it != reserves_.end()) {
    it->second.erase(std::string(code));
  }
  DropIfEmptyLocked(code, item);
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
  ForEachHolderLocked(item, region_prefix, fn);
}

void StockSnapshot::ForEachReserve(absl::string_view item,
                                   const std::function<void(const Candidate&)>& fn) const {
  absl::ReaderMutexLock lock(&mu_);
  ForEachReserveLocked(item, fn);
}

void StockSnapshot::ForEachHolderLocked(absl::string_view item, absl::string_view region_prefix,
                                        const std::function<void(const Candidate&)>& fn) const {
  auto it = holders_.find(item);
  if (it == holders_.end()) return;
  for (auto e = it->second.lower_bound(region_prefix); e != it->second.end(); ++e) {
    if (!absl::StartsWith(e->first, region_prefix)) break;
    if (e->second.stock.lots.empty()) continue;
    fn(Candidate{e->second.place, &e->second.stock});
  }
}

void StockSnapshot::ForEachReserveLocked(absl::string_view item,
                                         const std::function<void(const Candidate&)>& fn) const {
  auto codes = reserves_.find(item);
  auto index = holders_.find(item);
  if (codes == reserves_.end() || index == holders_.end()) return;
  for (const std::string& code : codes->second) {
    auto e = index->second.find(code);
    if (e != index->second.end()) fn(Candidate{e->second.place, &e->second.stock});
  }
}

size_t StockSnapshot::warehouse_count() const {
  absl::ReaderMutexLock lock(&mu_);
  return places_.size();
}

size_t StockSnapshot::entry_count() const {
  absl::ReaderMutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [item, index] : holders_) n += index.size();
  return n;
}

}  // namespace stockpile::catalogue::allocation
