#pragma once

// The seam between the national view and the "nearest warehouses with enough stock" index
// (services/catalogue/stock_index.h, written separately). The view feeds every change of
// available stock and of warehouse location through this interface and asks it for the nearest
// warehouses; without an index the view answers by a full scan (BruteForceSearch in the view).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace stockpile::catalogue {

struct SearchQuery {
  uint32_t item = 0;  // dense item index (order of ReferenceData::items())
  int64_t min_available = 1;
  double longitude = 0;
  double latitude = 0;
  double radius_km = 0;       // 0: no limit
  std::string region_prefix;  // only warehouses whose code starts with it
  size_t limit = 10;
  // Resume strictly after this hit (distance, then warehouse index); negative: from the start.
  double after_distance_km = -1;
  uint32_t after_warehouse = 0;
};

struct SearchHit {
  uint32_t warehouse = 0;  // dense warehouse index of the view
  double distance_km = 0;
};

class StockSearch {
 public:
  virtual ~StockSearch() = default;
  // Called with the view's write lock held; never concurrently with Nearest.
  virtual void SetLocation(uint32_t warehouse, const std::string& code, double longitude,
                           double latitude) = 0;
  virtual void SetAvailable(uint32_t warehouse, uint32_t item, int64_t available) = 0;
  // Called with the view's read lock held (possibly from several threads at once).
  virtual std::vector<SearchHit> Nearest(const SearchQuery& query) const = 0;
};

// Great-circle distance on a 6,371 km sphere.
double HaversineKm(double lon1, double lat1, double lon2, double lat2);

}  // namespace stockpile::catalogue
