#include "tools/demo/demo_plan.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "services/common/validation.h"
#include "tools/bench/rng.h"

namespace stockpile::demo {
namespace {

namespace v1 = stockpile::v1;
using bench::Rng;

// How much of an item a village store holds, in the item's unit; other levels scale it.
double BaseQuantity(const common::ItemInfo& item) {
  static const char* const kHeavy[] = {"FL-0003", "FL-0004", "FL-0005", "PW-0001",
                                       "PW-0002", "CM-0001", "RS-0001", "RS-0002",
                                       "RS-0003", "FW-0004", "FF-0001"};
  for (const char* code : kHeavy) {
    if (item.code == code) return 0.05;  // boats, generators, detectors: not in villages
  }
  if (item.code == "FL-0006") return 50;  // sandbags
  if (item.category == "food-water" || item.code == "MD-0002") return 10;
  return 3;
}

struct LevelProfile {
  double scale;  // multiplier of BaseQuantity
  int min_items;
  int max_items;
  int max_quotas;
};

LevelProfile ProfileOf(v1::Level level) {
  switch (level) {
    case v1::LEVEL_PROVINCE:
      return {1200, 42, 42, 42};
    case v1::LEVEL_CITY:
      return {300, 25, 40, 40};
    case v1::LEVEL_COUNTY:
      return {60, 15, 30, 30};
    case v1::LEVEL_TOWNSHIP:
      return {8, 8, 16, 6};
    default:
      return {1, 4, 8, 3};
  }
}

std::string StoreName(const common::RegionInfo& region) {
  if (region.level == v1::LEVEL_VILLAGE) return absl::StrCat(region.name, "救灾物资储备点");
  return absl::StrCat(region.name, "应急物资储备库");
}

// Lot expiry offsets: ~5 % already expired, ~15 % within 30 days, the rest over the shelf life.
int32_t ExpiryOffset(Rng& rng, int32_t shelf_life_months) {
  double r = rng.UniformDouble();
  if (r < 0.05) return -static_cast<int32_t>(rng.Uniform(1, 60));
  if (r < 0.20) return static_cast<int32_t>(rng.Uniform(1, 30));
  return static_cast<int32_t>(rng.Uniform(31, std::max(62, shelf_life_months * 30)));
}

PlannedStock PlanStock(Rng& rng, const common::ItemInfo& item, const LevelProfile& profile,
                       bool maybe_zero) {
  PlannedStock stock;
  stock.item = item.code;
  stock.expires = item.expires();
  double mean = BaseQuantity(item) * profile.scale;
  int64_t total = std::max<int64_t>(1, std::llround(mean * (0.5 + rng.UniformDouble())));
  stock.zero = maybe_zero && rng.Chance(0.3);
  int lots = (item.expires() && !stock.zero) ? static_cast<int>(rng.Uniform(1, 3)) : 1;
  lots = static_cast<int>(std::min<int64_t>(lots, total));
  for (int i = 0; i < lots; ++i) {
    PlannedLot lot;
    lot.quantity = total / lots + (i < total % lots ? 1 : 0);
    // A zero balance is a fresh lot received and issued back: keep it unexpired.
    lot.expiry_offset_days = stock.zero ? static_cast<int32_t>(rng.Uniform(90, 365))
                                        : ExpiryOffset(rng, item.shelf_life_months);
    stock.lots.push_back(lot);
  }
  return stock;
}

PlannedQuota PlanQuota(Rng& rng, const PlannedStock& stock) {
  int64_t on_hand = 0;
  for (const auto& lot : stock.lots) on_hand += lot.quantity;
  if (stock.zero) on_hand = 0;
  int64_t reference = std::max<int64_t>(on_hand, 1);
  PlannedQuota q{stock.item, 0, 0};
  double r = rng.UniformDouble();
  if (r < 0.10) {  // deliberately short: the floor sits above what is on hand
    q.min = reference +
            std::max<int64_t>(1, std::llround(reference * (0.2 + 0.4 * rng.UniformDouble())));
    q.max = q.min * 2;
  } else if (r < 0.15 && on_hand > 2) {  // overstocked
    q.max = std::max<int64_t>(1, std::llround(on_hand * (0.6 + 0.3 * rng.UniformDouble())));
    q.min = q.max / 2;
  } else {
    q.min = std::llround(reference * (0.5 + 0.4 * rng.UniformDouble()));
    q.max = std::max<int64_t>(q.min + 1, std::llround(reference * (1.5 + rng.UniformDouble())));
  }
  return q;
}

std::vector<PlannedReserve> PlanReserves(Rng& rng, const std::vector<PlannedStock>& stock,
                                         const LevelProfile& profile) {
  std::vector<PlannedReserve> reserves;
  int count = static_cast<int>(rng.Uniform(2, 4));
  for (int i = 0; i < count && !stock.empty(); ++i) {
    const PlannedStock& s = stock[rng.Next() % stock.size()];
    bool duplicate = std::any_of(reserves.begin(), reserves.end(),
                                 [&](const PlannedReserve& r) { return r.item == s.item; });
    if (duplicate) continue;
    PlannedReserve r;
    r.item = s.item;
    r.mode = rng.Chance(0.6) ? v1::RESERVE_MODE_CONTRACT : v1::RESERVE_MODE_CAPACITY;
    r.quantity = std::max<int64_t>(1, std::llround(profile.scale * (1 + 2 * rng.UniformDouble())));
    r.lead_time_hours = static_cast<int32_t>(24 * rng.Uniform(1, 3));
    r.partner =
        absl::StrCat(r.mode == v1::RESERVE_MODE_CONTRACT ? "demo supplier " : "demo factory ",
                     rng.Uniform(1, 20));
    reserves.push_back(r);
  }
  return reserves;
}

void FillWarehouse(const common::RegionInfo& region, Rng& rng, v1::Warehouse* w) {
  w->set_code(absl::StrCat(region.code, "-W001"));
  w->set_display_name(StoreName(region));
  w->set_region_code(region.code);
  w->set_kind(region.level == v1::LEVEL_VILLAGE ? v1::WAREHOUSE_KIND_SOCIAL
                                                : v1::WAREHOUSE_KIND_GOVERNMENT);
  double area = StandardArea(region.level) * (1.0 + 0.5 * rng.UniformDouble());
  // A few small stores fall short of the standard, as real ones do (reported, not refused).
  bool small_level = region.level == v1::LEVEL_TOWNSHIP || region.level == v1::LEVEL_VILLAGE;
  if (small_level && rng.Chance(0.05)) area = StandardArea(region.level) * 0.75;
  w->set_area_m2(std::round(area));
  w->set_address(region.name);
}

}  // namespace

double StandardArea(v1::Level level) {
  switch (level) {
    case v1::LEVEL_PROVINCE:
      return 10'000;
    case v1::LEVEL_CITY:
      return 5'000;
    case v1::LEVEL_COUNTY:
      return 2'000;
    case v1::LEVEL_TOWNSHIP:
      return 200;
    default:
      return 12;
  }
}

WarehousePlan PlanWarehouse(const common::RegionInfo& region,
                            const std::vector<common::ItemInfo>& items,
                            const PlanOptions& options) {
  Rng rng(bench::StableHash(region.code, options.seed));
  WarehousePlan plan;
  FillWarehouse(region, rng, &plan.warehouse);
  LevelProfile profile = ProfileOf(region.level);
  std::vector<const common::ItemInfo*> candidates;
  for (const auto& item : items) {
    // Villages and townships hold no boats or generators (their share would round to zero).
    if (options.all_items || BaseQuantity(item) * profile.scale >= 0.5) candidates.push_back(&item);
  }
  size_t wanted = options.all_items
                      ? candidates.size()
                      : static_cast<size_t>(rng.Uniform(profile.min_items, profile.max_items));
  // A seeded partial Fisher-Yates shuffle picks the subset; keep catalogue order afterwards.
  for (size_t i = 0; i < std::min(wanted, candidates.size()); ++i) {
    std::swap(candidates[i], candidates[i + rng.Next() % (candidates.size() - i)]);
  }
  candidates.resize(std::min(wanted, candidates.size()));
  std::sort(candidates.begin(), candidates.end(),
            [](const auto* a, const auto* b) { return a->code < b->code; });
  for (const auto* item : candidates) {
    plan.stock.push_back(PlanStock(rng, *item, profile, options.all_items));
  }
  if (options.quotas) {
    for (const auto& stock : plan.stock) {
      if (static_cast<int>(plan.quotas.size()) >= profile.max_quotas) break;
      plan.quotas.push_back(PlanQuota(rng, stock));
    }
  }
  bool upper_level = region.level == v1::LEVEL_PROVINCE || region.level == v1::LEVEL_CITY;
  if (options.reserves && upper_level) plan.reserves = PlanReserves(rng, plan.stock, profile);
  return plan;
}

void AppendStockOperations(const WarehousePlan& plan, int32_t anchor_days,
                           std::vector<v1::Operation>* fresh, std::vector<v1::Operation>* expired) {
  std::string warehouse = common::WarehouseName(plan.warehouse.code());
  for (const auto& stock : plan.stock) {
    for (const auto& lot : stock.lots) {
      v1::Operation op;
      auto* receive = op.mutable_receive();
      receive->set_warehouse(warehouse);
      receive->set_item(stock.item);
      receive->set_quantity(lot.quantity);
      receive->set_note("stockpile-demo seed stock");
      if (stock.expires) {
        std::string expiry = common::FormatDate(anchor_days + lot.expiry_offset_days);
        receive->set_expiry_date(expiry);
        receive->set_lot(
            absl::StrCat("L", expiry.substr(0, 4), expiry.substr(5, 2), expiry.substr(8, 2)));
      }
      auto* target = (stock.expires && lot.expiry_offset_days < 0) ? expired : fresh;
      target->push_back(op);
      if (stock.zero) {
        v1::Operation issue;
        auto* out = issue.mutable_issue();
        out->set_warehouse(warehouse);
        out->set_item(stock.item);
        out->set_lot(stock.expires ? receive->lot() : "DEFAULT");
        out->set_quantity(lot.quantity);
        out->set_note("stockpile-demo: balance kept at zero");
        target->push_back(issue);
      }
    }
  }
}

}  // namespace stockpile::demo
