#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "services/common/reference_data.h"
#include "stockpile/v1/level_service.pb.h"

namespace stockpile::demo {

// One lot to receive. Expiry is relative to the warehouse's anchor day (its creation date), so
// a rerun on another day rebuilds byte-identical requests and the service deduplicates them.
struct PlannedLot {
  int32_t expiry_offset_days = 0;  // meaningful only for items with a shelf life
  int64_t quantity = 0;
};

struct PlannedStock {
  std::string item;
  bool expires = false;
  std::vector<PlannedLot> lots;
  // A balance record at zero: received and issued back in the same batch (see docs/bench.md).
  bool zero = false;
};

struct PlannedQuota {
  std::string item;
  int64_t min = 0;
  int64_t max = 0;
};

struct PlannedReserve {
  std::string item;
  stockpile::v1::ReserveMode mode = stockpile::v1::RESERVE_MODE_UNSPECIFIED;
  int64_t quantity = 0;
  int32_t lead_time_hours = 0;
  std::string partner;
};

struct WarehousePlan {
  stockpile::v1::Warehouse warehouse;  // code, display_name, region_code, kind, area, address
  std::vector<PlannedStock> stock;
  std::vector<PlannedQuota> quotas;
  std::vector<PlannedReserve> reserves;
};

struct PlanOptions {
  uint64_t seed = 1;
  bool all_items = false;  // every item in every warehouse, ~30 % of them at zero
  bool quotas = true;
  bool reserves = true;
};

// Standard store area per level (m²): province 10,000, city 5,000, county 2,000, township 200,
// village 12.
double StandardArea(stockpile::v1::Level level);

// The deterministic plan for the demo warehouse of `region`: same seed, same plan.
WarehousePlan PlanWarehouse(const common::RegionInfo& region,
                            const std::vector<common::ItemInfo>& items, const PlanOptions& options);

// The receive (and, for zero balances, issue) operations of a plan, with expiry dates fixed
// against `anchor_days` (days since 1970-01-01). Lots already expired on the anchor day go to
// `expired` (sent in their own batch: a service may refuse receipts of expired stock).
void AppendStockOperations(const WarehousePlan& plan, int32_t anchor_days,
                           std::vector<stockpile::v1::Operation>* fresh,
                           std::vector<stockpile::v1::Operation>* expired);

}  // namespace stockpile::demo
