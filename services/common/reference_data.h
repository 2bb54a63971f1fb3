#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "stockpile/v1/reference.pb.h"
#include "stockpile/v1/warehouse.pb.h"

namespace stockpile::common {

struct RegionInfo {
  std::string code;
  std::string name;
  stockpile::v1::Level level = stockpile::v1::LEVEL_UNSPECIFIED;
  std::string parent_code;
  double longitude = 0;
  double latitude = 0;
  // The county had no seat in the data: the location is its siblings' centroid.
  bool location_estimated = false;
};

struct ItemInfo {
  std::string code;
  std::string name_zh;
  std::string name_en;
  std::string category;
  std::string unit_zh;
  std::string unit_en;
  int32_t shelf_life_months = 0;
  bool expires() const { return shelf_life_months > 0; }
};

// The five-level region tree and the reserve item catalogue, read from a folder holding
// regions/ and items/ in the format of ../shared/data. Immutable after Load.
class ReferenceData {
 public:
  struct Options {
    // Load townships and villages only under these code prefixes (empty: all of China).
    // Provinces, cities and counties are always loaded: they carry the coordinates.
    std::vector<std::string> fine_region_prefixes;
  };

  static absl::StatusOr<std::unique_ptr<ReferenceData>> Load(const std::string& dir,
                                                             const Options& options);
  static absl::StatusOr<std::unique_ptr<ReferenceData>> Load(const std::string& dir) {
    return Load(dir, Options{});
  }

  // The folder used when --reference-data is not given: $STOCKPILE_REFERENCE_DATA, else
  // ../shared/data next to the repository this binary was built from.
  static std::string DefaultDir();

  const RegionInfo* FindRegion(absl::string_view code) const;
  // Whether `code` can name a region, as far as this load can tell: a loaded region, or a
  // township or village outside the loaded prefixes whose county exists.
  bool MayBeRegion(absl::string_view code) const;
  // A listing's region filter as long as a region code (2, 4, 6, 9 or 12 digits) must name one
  // (NOT_FOUND otherwise), so a mistyped region is not read as "nothing there". Shorter or
  // in-between prefixes pass.
  absl::Status CheckRegionFilter(absl::string_view prefix) const;
  const ItemInfo* FindItem(absl::string_view code) const;
  const std::vector<RegionInfo>& regions() const { return regions_; }  // sorted by code
  const std::vector<ItemInfo>& items() const { return items_; }
  size_t CountAtLevel(stockpile::v1::Level level) const;

  stockpile::v1::Region ToProto(const RegionInfo& r) const;
  static stockpile::v1::Item ToProto(const ItemInfo& i);

 private:
  ReferenceData() = default;
  absl::Status LoadRegions(const std::string& dir, const Options& options);
  absl::Status LoadItems(const std::string& dir);
  absl::Status LoadCenters(const std::string& dir);
  void PlaceRegions();

  std::vector<RegionInfo> regions_;
  absl::flat_hash_map<std::string, size_t> region_index_;
  std::vector<ItemInfo> items_;
  absl::flat_hash_map<std::string, size_t> item_index_;
  absl::flat_hash_map<std::string, std::pair<double, double>> county_centers_;
  std::vector<std::string> fine_region_prefixes_;  // Options::fine_region_prefixes
};

// Splits one CSV record (RFC 4180 quoting, no embedded newlines).
absl::StatusOr<std::vector<std::string>> ParseCsvLine(absl::string_view line);

}  // namespace stockpile::common
