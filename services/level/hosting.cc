#include "services/level/hosting.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "services/common/validation.h"

namespace stockpile::level {

// `code` is a region code or a warehouse code ("{region}-W..."): hosted when its region is at
// this level and under a hosted prefix. (A village warehouse under a county instance's prefix
// belongs to the village instance.)
bool Hosting::HostsCode(absl::string_view code) const {
  const absl::string_view region = code.substr(0, code.find('-'));
  if (common::LevelOfRegionCode(region) != level_) return false;
  for (const auto& p : prefixes_) {
    if (absl::StartsWith(region, p)) return true;
  }
  return false;
}

bool Hosting::HostsWarehouseName(absl::string_view name) const {
  absl::ConsumePrefix(&name, common::kWarehousePrefix);
  return HostsCode(name);
}

absl::Status Hosting::CheckRegion(absl::string_view region_code) const {
  const auto level = common::LevelOfRegionCode(region_code);
  if (level != level_) {
    return absl::InvalidArgumentError(
        absl::StrCat("region ", region_code, " is a ", common::LevelName(level),
                     " region; this is the ", common::LevelName(level_), " level service"));
  }
  if (!HostsCode(region_code)) {
    return absl::FailedPreconditionError(
        absl::StrCat("region ", region_code, " is not hosted by this instance (it hosts ",
                     absl::StrJoin(prefixes_, ","), "); send it to the instance that does"));
  }
  return absl::OkStatus();
}

}  // namespace stockpile::level
