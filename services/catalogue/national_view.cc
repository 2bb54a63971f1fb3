#include "services/catalogue/national_view.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/validation.h"

namespace stockpile::catalogue {

using stockpile::v1::Balance;
using stockpile::v1::Quota;
using stockpile::v1::Reserve;
using stockpile::v1::Warehouse;
using stockpile::v1::WarehouseStock;

double HaversineKm(double lon1, double lat1, double lon2, double lat2) {
  constexpr double kRad = M_PI / 180.0;
  const double dlat = (lat2 - lat1) * kRad;
  const double dlon = (lon2 - lon1) * kRad;
  const double a =
      std::sin(dlat / 2) * std::sin(dlat / 2) +
      std::cos(lat1 * kRad) * std::cos(lat2 * kRad) * std::sin(dlon / 2) * std::sin(dlon / 2);
  return 2 * 6371.0 * std::asin(std::min(1.0, std::sqrt(a)));
}

absl::string_view WarehouseCodeView(absl::string_view name) {
  constexpr absl::string_view kPrefix = "warehouses/";
  if (!absl::StartsWith(name, kPrefix) || name.size() == kPrefix.size()) return {};
  return name.substr(kPrefix.size());
}

std::string WarehouseCode(absl::string_view name) { return std::string(WarehouseCodeView(name)); }

std::string RegionOfWarehouse(absl::string_view code) {
  const size_t dash = code.find("-W");
  return std::string(dash == absl::string_view::npos ? code : code.substr(0, dash));
}

NationalView::NationalView(const common::ReferenceData* reference,
                           std::unique_ptr<StockSearch> search)
    : reference_(reference),
      items_(reference->items().size()),
      search_(std::move(search)),
      code_index_(0, CodeHash{&warehouses_}, CodeEq{&warehouses_}) {
  for (size_t i = 0; i < reference->items().size(); ++i) {
    item_index_[reference->items()[i].code] = static_cast<int>(i);
  }
  for (const auto& region : reference->regions()) {
    if (region.level >= stockpile::v1::LEVEL_PROVINCE &&
        region.level <= stockpile::v1::LEVEL_COUNTY) {
      rollup_index_[region.code] = static_cast<int32_t>(rollup_index_.size());
    }
  }
  rollups_.resize(rollup_index_.size() * items_);
  rollup_warehouses_.resize(rollup_index_.size());
}

NationalView::~NationalView() = default;

int NationalView::ItemIndex(absl::string_view item) const {
  auto it = item_index_.find(item);
  return it == item_index_.end() ? -1 : it->second;
}

size_t NationalView::warehouse_count() const {
  absl::ReaderMutexLock lock(&mu_);
  return warehouses_.size() - forgotten_;
}

uint16_t NationalView::SourceIndex(absl::string_view source_id) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < sources_.size(); ++i) {
    if (sources_[i].id == source_id) return static_cast<uint16_t>(i);
  }
  sources_.emplace_back().id = std::string(source_id);
  return static_cast<uint16_t>(sources_.size() - 1);
}

void NationalView::SetSourceFreshness(uint16_t source, int64_t last_commit_micros, bool stale,
                                      bool partial) {
  absl::MutexLock lock(&mu_);
  if (source >= sources_.size()) return;
  sources_[source].last_commit_micros = last_commit_micros;
  sources_[source].stale = stale;
  sources_[source].partial = partial;
}

void NationalView::SetSourceHosting(uint16_t source, stockpile::v1::Level level,
                                    std::vector<std::string> prefixes) {
  absl::MutexLock lock(&mu_);
  if (source >= sources_.size()) return;
  sources_[source].level = level;
  sources_[source].prefixes = std::move(prefixes);
}

// A level instance hosts only warehouses of its own level under its prefixes
// (level::Hosting::HostsCode). Unknown hosting: anywhere.
bool SourceFreshnessInfo::MayHoldUnseenUnder(absl::string_view region_code) const {
  if (!partial) return false;
  if (level == stockpile::v1::LEVEL_UNSPECIFIED || prefixes.empty()) return true;
  if (size_t(common::RegionCodeLength(level)) < region_code.size()) return false;
  return std::any_of(prefixes.begin(), prefixes.end(), [&](const std::string& prefix) {
    const size_t common_length = std::min(prefix.size(), region_code.size());
    return absl::string_view(prefix).substr(0, common_length) ==
           region_code.substr(0, common_length);
  });
}

std::optional<uint32_t> NationalView::FindWarehouse(absl::string_view code) const {
  auto it = code_index_.find(code);
  if (it == code_index_.end()) return std::nullopt;
  return *it;
}

NationalView::BalanceCell& NationalView::CellAt(uint32_t w, int item) const {
  return chunks_[w / kChunkWarehouses][(w % kChunkWarehouses) * items_ + size_t(item)];
}

uint32_t NationalView::WarehouseFor(absl::string_view code, uint16_t source) {
  auto found = FindWarehouse(code);
  if (found) {
    WarehouseRow& row = warehouses_[*found];
    if (row.forgotten) {  // streamed again after its source was dropped
      row.forgotten = false;
      --forgotten_;
      row.source = source;
      CountInRollups(*found, +1);
    } else if (row.source != source) {  // another instance hosts it now
      CountInRollups(*found, -1);
      row.source = source;
      CountInRollups(*found, +1);
    }
    return *found;
  }
  const uint32_t w = static_cast<uint32_t>(warehouses_.size());
  if (w % kChunkWarehouses == 0) {
    chunks_.push_back(std::make_unique<BalanceCell[]>(size_t{kChunkWarehouses} * items_));
  }
  WarehouseRow row;
  row.code = std::string(code);
  row.source = source;
  warehouses_.push_back(std::move(row));
  by_code_.emplace(std::string(code), w);
  code_index_.insert(w);
  PlaceWarehouse(w, RegionOfWarehouse(code));
  return w;
}

// Region, level, roll-up parents and a default location (the region's seat) of a new warehouse.
void NationalView::PlaceWarehouse(uint32_t w, absl::string_view region_code) {
  WarehouseRow& row = warehouses_[w];
  row.region_code = std::string(region_code);
  row.level = static_cast<uint8_t>(common::LevelOfRegionCode(region_code));
  constexpr size_t kLengths[3] = {2, 4, 6};
  for (int i = 0; i < 3; ++i) {
    if (region_code.size() < kLengths[i]) break;
    auto it = rollup_index_.find(region_code.substr(0, kLengths[i]));
    if (it == rollup_index_.end()) continue;
    row.rollups[i] = it->second;
  }
  CountInRollups(w, +1);
  if (const auto* region = reference_->FindRegion(region_code)) {
    row.longitude = static_cast<float>(region->longitude);
    row.latitude = static_cast<float>(region->latitude);
  }
  if (search_) search_->SetLocation(w, row.code, row.longitude, row.latitude);
}

void NationalView::CountInRollups(uint32_t w, int sign) {
  const WarehouseRow& row = warehouses_[w];
  for (int32_t idx : row.rollups) {
    if (idx < 0) continue;
    rollup_warehouses_[size_t(idx)] += sign;
    auto it = rollup_source_warehouses_.try_emplace(RollupSourceKey(idx, row.source), 0).first;
    it->second += sign;
    if (it->second == 0) rollup_source_warehouses_.erase(it);
  }
}

void NationalView::ForgetWarehouses(const std::vector<std::string>& codes) {
  absl::MutexLock lock(&mu_);
  for (const std::string& code : codes) {
    auto w = FindWarehouse(code);
    if (!w || warehouses_[*w].forgotten) continue;
    warehouses_[*w].forgotten = true;
    ++forgotten_;
    CountInRollups(*w, -1);
  }
}

void NationalView::AddToRollups(uint32_t w, int item, const BalanceCell* b, const QuotaCell* q,
                                const ReserveCell* r, int sign) {
  for (int32_t idx : warehouses_[w].rollups) {
    if (idx < 0) continue;
    RollupCell& cell = rollups_[size_t(idx) * items_ + size_t(item)];
    if (b) {
      cell.on_hand += sign * b->on_hand;
      cell.held += sign * b->held;
      cell.in_transit += sign * b->in_transit;
      cell.stocked += b->on_hand > 0 ? sign : 0;
    }
    if (q) cell.quota_floor += sign * q->min;
    if (r) {
      cell.contract += sign * r->contract;
      cell.capacity += sign * r->capacity;
    }
  }
}

void NationalView::UpsertWarehouse(const Warehouse& warehouse, uint16_t source) {
  absl::MutexLock lock(&mu_);
  UpsertWarehouseLocked(warehouse, source);
}

void NationalView::UpsertWarehouseLocked(const Warehouse& warehouse, uint16_t source) {
  const absl::string_view code = warehouse.code().empty() ? WarehouseCodeView(warehouse.name())
                                                          : absl::string_view(warehouse.code());
  if (code.empty()) return;
  const uint32_t w = WarehouseFor(code, source);
  WarehouseRow& row = warehouses_[w];
  if (warehouse.has_location()) {
    row.longitude = static_cast<float>(warehouse.location().longitude());
    row.latitude = static_cast<float>(warehouse.location().latitude());
    if (search_) search_->SetLocation(w, row.code, row.longitude, row.latitude);
  }
  const bool closed = warehouse.status() == stockpile::v1::WAREHOUSE_STATUS_CLOSED;
  if (closed == row.closed) return;
  row.closed = closed;
  if (!search_) return;
  for (size_t i = 0; i < items_; ++i) {
    const BalanceCell& cell = CellAt(w, int(i));
    search_->SetAvailable(w, uint32_t(i), SearchableAvailable(row, cell));
  }
}

int64_t NationalView::SearchableAvailable(const WarehouseRow& row, const BalanceCell& cell) {
  return row.closed ? 0 : cell.on_hand - cell.held;
}

void NationalView::SetBalance(const Balance& balance, uint16_t source) {
  absl::MutexLock lock(&mu_);
  SetBalanceLocked(balance, source);
}

void NationalView::SetBalanceLocked(const Balance& balance, uint16_t source) {
  const absl::string_view code = WarehouseCodeView(balance.warehouse());
  const int item = ItemIndex(balance.item());
  if (code.empty() || item < 0) return;
  const uint32_t w = WarehouseFor(code, source);
  BalanceCell& cell = CellAt(w, item);
  AddToRollups(w, item, &cell, nullptr, nullptr, -1);
  cell.on_hand = balance.on_hand();
  cell.held = balance.held();
  cell.in_transit = balance.in_transit();
  AddToRollups(w, item, &cell, nullptr, nullptr, +1);
  if (search_) search_->SetAvailable(w, uint32_t(item), SearchableAvailable(warehouses_[w], cell));
}

void NationalView::SetQuota(const Quota& quota, uint16_t source) {
  absl::MutexLock lock(&mu_);
  SetQuotaLocked(quota, source);
}

void NationalView::SetQuotaLocked(const Quota& quota, uint16_t source) {
  const absl::string_view code = WarehouseCodeView(quota.warehouse());
  const int item = ItemIndex(quota.item());
  if (code.empty() || item < 0) return;
  const uint32_t w = WarehouseFor(code, source);
  QuotaCell& cell = quotas_[Key(w, item)];
  AddToRollups(w, item, nullptr, &cell, nullptr, -1);
  cell.min = quota.min();
  cell.max = quota.max();
  AddToRollups(w, item, nullptr, &cell, nullptr, +1);
  if (cell.min == 0 && cell.max == 0) quotas_.erase(Key(w, item));
}

void NationalView::SetReserve(const Reserve& reserve, uint16_t source) {
  absl::MutexLock lock(&mu_);
  SetReserveLocked(reserve, source);
}

void NationalView::SetReserveLocked(const Reserve& reserve, uint16_t source) {
  const absl::string_view code = WarehouseCodeView(reserve.warehouse());
  const int item = ItemIndex(reserve.item());
  if (code.empty() || item < 0) return;
  const uint32_t w = WarehouseFor(code, source);
  ReserveCell& cell = reserves_[Key(w, item)];
  AddToRollups(w, item, nullptr, nullptr, &cell, -1);
  if (reserve.mode() == stockpile::v1::RESERVE_MODE_CONTRACT) {
    cell.contract = reserve.quantity();
    cell.contract_lead = reserve.lead_time_hours();
  } else if (reserve.mode() == stockpile::v1::RESERVE_MODE_CAPACITY) {
    cell.capacity = reserve.quantity();
    cell.capacity_lead = reserve.lead_time_hours();
  }
  AddToRollups(w, item, nullptr, nullptr, &cell, +1);
  if (cell.contract == 0 && cell.capacity == 0) reserves_.erase(Key(w, item));
}

void NationalView::ApplyEntries(
    const google::protobuf::RepeatedPtrField<stockpile::v1::ChangeEntry>& entries, int first,
    uint16_t source) {
  absl::MutexLock lock(&mu_);
  for (int i = first; i < entries.size(); ++i) {
    const auto& e = entries[i];
    for (const auto& w : e.warehouses()) UpsertWarehouseLocked(w, source);
    for (const auto& b : e.balances()) SetBalanceLocked(b, source);
    for (const auto& q : e.quotas()) SetQuotaLocked(q, source);
    for (const auto& r : e.reserves()) SetReserveLocked(r, source);
  }
}

void NationalView::FillStock(uint32_t w, int item, WarehouseStock* out) const {
  const WarehouseRow& row = warehouses_[w];
  const BalanceCell& b = CellAt(w, item);
  const std::string& item_code = reference_->items()[size_t(item)].code;
  out->set_name(absl::StrCat("warehouses/", row.code, "/stock/", item_code));
  out->set_warehouse(absl::StrCat("warehouses/", row.code));
  out->set_item(item_code);
  out->set_region_code(row.region_code);
  out->set_level(static_cast<stockpile::v1::Level>(row.level));
  out->mutable_location()->set_longitude(row.longitude);
  out->mutable_location()->set_latitude(row.latitude);
  out->set_on_hand(b.on_hand);
  out->set_held(b.held);
  out->set_available(b.on_hand - b.held);
  out->set_in_transit(b.in_transit);
  if (auto q = quotas_.find(Key(w, item)); q != quotas_.end()) {
    out->set_quota_min(q->second.min);
    out->set_quota_max(q->second.max);
  }
  if (auto r = reserves_.find(Key(w, item)); r != reserves_.end()) {
    out->mutable_contract()->set_quantity(r->second.contract);
    out->mutable_contract()->set_lead_time_hours(r->second.contract_lead);
    out->mutable_capacity()->set_quantity(r->second.capacity);
    out->mutable_capacity()->set_lead_time_hours(r->second.capacity_lead);
  }
  if (row.source < sources_.size()) {
    const SourceFreshnessInfo& s = sources_[row.source];
    auto* f = out->mutable_freshness();
    f->set_source(s.id);
    f->mutable_last_commit_time()->set_seconds(s.last_commit_micros / 1000000);
    f->mutable_last_commit_time()->set_nanos(int32_t(s.last_commit_micros % 1000000) * 1000);
    f->set_stale(s.stale);
  }
}

absl::StatusOr<WarehouseStock> NationalView::GetStock(absl::string_view code,
                                                      absl::string_view item) const {
  const int i = ItemIndex(item);
  if (i < 0) return UnknownItem(item);
  absl::ReaderMutexLock lock(&mu_);
  auto w = FindWarehouse(code);
  if (!w || warehouses_[*w].forgotten) {
    return absl::NotFoundError(absl::StrCat("warehouse '", code, "' is not in the catalogue"));
  }
  WarehouseStock out;
  FillStock(*w, i, &out);
  return out;
}

bool NationalView::HasWarehouse(absl::string_view code) const {
  absl::ReaderMutexLock lock(&mu_);
  auto w = FindWarehouse(code);
  return w && !warehouses_[*w].forgotten;
}

std::optional<std::array<int64_t, 3>> NationalView::Cell(absl::string_view code,
                                                         absl::string_view item) const {
  const int i = ItemIndex(item);
  absl::ReaderMutexLock lock(&mu_);
  auto w = FindWarehouse(code);
  if (!w || i < 0 || warehouses_[*w].forgotten) return std::nullopt;
  const BalanceCell& b = CellAt(*w, i);
  return std::array<int64_t, 3>{b.on_hand, b.held, b.in_transit};
}

absl::StatusOr<std::vector<WarehouseStock>> NationalView::ListStock(absl::string_view prefix,
                                                                    absl::string_view item,
                                                                    bool skip_zero, size_t limit,
                                                                    absl::string_view after_code,
                                                                    std::string* next_code) const {
  const int i = ItemIndex(item);
  if (i < 0) return UnknownItem(item);
  std::vector<WarehouseStock> out;
  next_code->clear();
  absl::ReaderMutexLock lock(&mu_);
  auto it = after_code.empty() ? by_code_.lower_bound(std::string(prefix))
                               : by_code_.upper_bound(std::string(after_code));
  for (; it != by_code_.end() && absl::StartsWith(it->first, prefix); ++it) {
    if (out.size() == limit) {
      *next_code = out.back().warehouse().substr(11);
      break;
    }
    if (warehouses_[it->second].forgotten) continue;
    const BalanceCell& b = CellAt(it->second, i);
    if (skip_zero && b.on_hand == 0 && b.in_transit == 0) continue;
    FillStock(it->second, i, &out.emplace_back());
  }
  return out;
}

void NationalView::SumWarehouse(uint32_t w, std::vector<RollupCell>& per_item) const {
  for (size_t i = 0; i < items_; ++i) {
    const BalanceCell& b = CellAt(w, int(i));
    RollupCell& sum = per_item[i];
    sum.on_hand += b.on_hand;
    sum.held += b.held;
    sum.in_transit += b.in_transit;
    sum.stocked += b.on_hand > 0 ? 1 : 0;
    if (auto q = quotas_.find(Key(w, int(i))); q != quotas_.end()) sum.quota_floor += q->second.min;
    if (auto r = reserves_.find(Key(w, int(i))); r != reserves_.end()) {
      sum.contract += r->second.contract;
      sum.capacity += r->second.capacity;
    }
  }
}

absl::StatusOr<stockpile::v1::Rollup> NationalView::Rollup(absl::string_view region_code,
                                                           absl::string_view item) const {
  const auto* region = reference_->FindRegion(region_code);
  if (region == nullptr) {
    return absl::NotFoundError(absl::StrCat("region '", region_code, "' is unknown"));
  }
  const int only = item.empty() ? -1 : ItemIndex(item);
  if (!item.empty() && only < 0) {
    return UnknownItem(item);
  }
  stockpile::v1::Rollup out;
  out.set_name(absl::StrCat("rollups/", region_code));
  out.set_region_code(std::string(region_code));
  out.set_level(region->level);
  out.set_display_name(region->name);
  std::vector<RollupCell> sums;
  absl::ReaderMutexLock lock(&mu_);
  int32_t rollup = -1;
  if (auto it = rollup_index_.find(region_code); it != rollup_index_.end()) {
    rollup = it->second;
    const size_t base = size_t(rollup) * items_;
    sums.assign(rollups_.begin() + long(base), rollups_.begin() + long(base + items_));
    out.set_warehouse_count(rollup_warehouses_[size_t(rollup)]);
  } else {  // township or village: few warehouses, summed now
    sums.resize(items_);
    int64_t count = 0;
    for (auto w = by_code_.lower_bound(std::string(region_code));
         w != by_code_.end() && absl::StartsWith(w->first, region_code); ++w) {
      const WarehouseRow& row = warehouses_[w->second];
      if (row.forgotten) continue;
      SumWarehouse(w->second, sums);
      ++count;
      if (row.source < sources_.size() && sources_[row.source].stale) out.set_stale(true);
    }
    out.set_warehouse_count(count);
  }
  for (size_t i = 0; i < items_; ++i) {
    const RollupCell& s = sums[i];
    if (only >= 0 ? int(i) != only
                  : (s.on_hand == 0 && s.in_transit == 0 && s.quota_floor == 0 && s.contract == 0 &&
                     s.capacity == 0 && s.held == 0)) {
      continue;
    }
    auto* r = out.add_items();
    r->set_item(reference_->items()[i].code);
    r->set_on_hand(s.on_hand);
    r->set_held(s.held);
    r->set_available(s.on_hand - s.held);
    r->set_in_transit(s.in_transit);
    r->set_contract(s.contract);
    r->set_capacity(s.capacity);
    r->set_warehouse_count(s.stocked);
    r->set_quota_floor(s.quota_floor);
    r->set_coverage(s.quota_floor > 0 ? double(s.on_hand) / double(s.quota_floor) : 0.0);
  }
  if (!out.stale()) out.set_stale(StaleSourceUnder(region_code, rollup));
  return out;
}

bool NationalView::StaleSourceUnder(absl::string_view region_code, int32_t rollup) const {
  for (size_t s = 0; s < sources_.size(); ++s) {
    const SourceFreshnessInfo& source = sources_[s];
    if (!source.stale) continue;
    if (source.MayHoldUnseenUnder(region_code)) return true;
    if (rollup >= 0 && rollup_source_warehouses_.contains(RollupSourceKey(rollup, uint16_t(s)))) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<std::vector<stockpile::v1::QuotaStatus>> NationalView::Shortages(
    absl::string_view prefix, absl::string_view item, size_t limit, absl::string_view after,
    std::string* next, const ExpiredStock& expired) const {
  const int only = item.empty() ? -1 : ItemIndex(item);
  if (!item.empty() && only < 0) {
    return UnknownItem(item);
  }
  std::vector<stockpile::v1::QuotaStatus> out;
  next->clear();
  const std::string after_code(after.substr(0, after.find('/')));
  const int after_item = after.find('/') == absl::string_view::npos
                             ? -1
                             : ItemIndex(after.substr(after.find('/') + 1));
  absl::ReaderMutexLock lock(&mu_);
  if (quotas_.empty()) return out;
  auto it = after_code.empty() ? by_code_.lower_bound(std::string(prefix))
                               : by_code_.lower_bound(after_code);
  for (; it != by_code_.end() && absl::StartsWith(it->first, prefix); ++it) {
    if (warehouses_[it->second].forgotten) continue;
    for (size_t i = 0; i < items_; ++i) {
      if ((only >= 0 && int(i) != only) || (it->first == after_code && int(i) <= after_item)) {
        continue;
      }
      auto q = quotas_.find(Key(it->second, int(i)));
      if (q == quotas_.end()) continue;
      const BalanceCell& b = CellAt(it->second, int(i));
      int64_t usable = b.on_hand - b.held;
      if (usable > 0 && expired && reference_->items()[i].expires()) {
        usable -= expired(it->first, int(i));
      }
      if (usable >= q->second.min) continue;
      if (out.size() == limit) {
        const auto& last = out.back();
        *next = absl::StrCat(last.warehouse().substr(11), "/", last.item());
        return out;
      }
      auto& s = out.emplace_back();
      s.set_warehouse(absl::StrCat("warehouses/", it->first));
      s.set_item(reference_->items()[i].code);
      s.set_on_hand(b.on_hand);
      s.set_available(b.on_hand - b.held);
      s.set_min(q->second.min);
      s.set_max(q->second.max);
      s.set_gap(q->second.min - usable);
      s.set_usable(usable);
    }
  }
  return out;
}

std::vector<SearchHit> NationalView::BruteForceSearch(const SearchQuery& q) const {
  std::vector<SearchHit> hits;
  auto after = [&](const SearchHit& h) {
    return q.after_distance_km < 0 || h.distance_km > q.after_distance_km ||
           (h.distance_km == q.after_distance_km && h.warehouse > q.after_warehouse);
  };
  for (uint32_t w = 0; w < warehouses_.size(); ++w) {
    const WarehouseRow& row = warehouses_[w];
    if (SearchableAvailable(row, CellAt(w, int(q.item))) < q.min_available) continue;
    if (row.forgotten || !absl::StartsWith(row.code, q.region_prefix)) continue;
    SearchHit h{w, HaversineKm(q.longitude, q.latitude, row.longitude, row.latitude)};
    if ((q.radius_km > 0 && h.distance_km > q.radius_km) || !after(h)) continue;
    hits.push_back(h);
  }
  auto less = [](const SearchHit& a, const SearchHit& b) {
    return a.distance_km != b.distance_km ? a.distance_km < b.distance_km
                                          : a.warehouse < b.warehouse;
  };
  const size_t n = std::min(hits.size(), q.limit);
  std::partial_sort(hits.begin(), hits.begin() + long(n), hits.end(), less);
  hits.resize(n);
  return hits;
}

absl::StatusOr<std::vector<stockpile::v1::StockHit>> NationalView::Search(
    const SearchQuery& query, uint32_t* last_index) const {
  if (query.item >= items_) return absl::NotFoundError("item is not in the item catalogue");
  absl::ReaderMutexLock lock(&mu_);
  std::vector<SearchHit> hits = search_ ? search_->Nearest(query) : BruteForceSearch(query);
  std::vector<stockpile::v1::StockHit> out;
  out.reserve(hits.size());
  for (const SearchHit& h : hits) {
    if (h.warehouse >= warehouses_.size() || warehouses_[h.warehouse].forgotten) continue;
    auto& hit = out.emplace_back();
    FillStock(h.warehouse, int(query.item), hit.mutable_stock());
    hit.set_distance_km(h.distance_km);
    *last_index = h.warehouse;
  }
  return out;
}

}  // namespace stockpile::catalogue
