#include "services/catalogue/stock_index_search.h"

#include <vector>

#include "services/catalogue/national_view.h"
#include "services/catalogue/stock_index.h"

namespace stockpile::catalogue {
namespace {

// Both the view and the index number warehouses densely in order of first registration; the
// maps make that an explicit contract instead of a coincidence.
class StockIndexSearch final : public StockSearch {
 public:
  explicit StockIndexSearch(int item_count) : index_(item_count) {}

  void SetLocation(uint32_t warehouse, const std::string& code, double longitude,
                   double latitude) override {
    const GeoPoint at{longitude, latitude};
    if (warehouse < to_index_.size() && to_index_[warehouse] != StockIndex::kNoWarehouse) {
      index_.MoveWarehouse(to_index_[warehouse], at);
      return;
    }
    const uint32_t id = index_.AddWarehouse(code, RegionOfWarehouse(code), at);
    if (to_index_.size() <= warehouse) to_index_.resize(warehouse + 1, StockIndex::kNoWarehouse);
    to_index_[warehouse] = id;
    if (to_view_.size() <= id) to_view_.resize(id + 1, StockIndex::kNoWarehouse);
    to_view_[id] = warehouse;
  }

  void SetAvailable(uint32_t warehouse, uint32_t item, int64_t available) override {
    if (warehouse >= to_index_.size()) return;
    index_.SetAvailable(to_index_[warehouse], int(item), available);
  }

  std::vector<SearchHit> Nearest(const SearchQuery& q) const override {
    StockIndex::Query query;
    query.item = int(q.item);
    query.min_available = q.min_available;
    query.origin = GeoPoint{q.longitude, q.latitude};
    query.limit = q.limit;
    query.radius_km = q.radius_km;
    query.region_prefix = q.region_prefix;
    if (q.after_distance_km >= 0) {
      query.after_distance_km = q.after_distance_km;
      query.after_warehouse = q.after_warehouse < to_index_.size() ? to_index_[q.after_warehouse]
                                                                   : StockIndex::kNoWarehouse;
    }
    std::vector<SearchHit> hits;
    for (const auto& h : index_.Nearest(query)) {
      if (h.warehouse < to_view_.size()) hits.push_back({to_view_[h.warehouse], h.distance_km});
    }
    return hits;
  }

 private:
  StockIndex index_;
  std::vector<uint32_t> to_index_;  // view id -> index id
  std::vector<uint32_t> to_view_;   // index id -> view id
};

}  // namespace

std::unique_ptr<StockSearch> NewStockIndexSearch(int item_count) {
  return std::make_unique<StockIndexSearch>(item_count);
}

}  // namespace stockpile::catalogue
