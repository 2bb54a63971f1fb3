#include "services/catalogue/allocation/routing.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/validation.h"

namespace stockpile::catalogue::allocation {

absl::StatusOr<std::string> RouteRegion(const std::vector<LevelInstance>& instances,
                                        absl::string_view region_code) {
  const stockpile::v1::Level level = common::LevelOfRegionCode(region_code);
  const LevelInstance* best = nullptr;
  size_t best_len = 0;
  for (const LevelInstance& instance : instances) {
    if (instance.level != level || instance.address.empty()) continue;
    for (const std::string& prefix : instance.region_prefixes) {
      if (absl::StartsWith(region_code, prefix) && (best == nullptr || prefix.size() > best_len)) {
        best = &instance;
        best_len = prefix.size();
      }
    }
  }
  if (best == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("no level instance is registered for region ", region_code));
  }
  return best->address;
}

}  // namespace stockpile::catalogue::allocation
