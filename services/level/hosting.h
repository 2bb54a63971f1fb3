#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "stockpile/v1/warehouse.pb.h"

namespace stockpile::level {

// Which regions an instance hosts: one level, and region-code prefixes at or above it.
class Hosting {
 public:
  Hosting(stockpile::v1::Level level, std::vector<std::string> prefixes)
      : level_(level), prefixes_(std::move(prefixes)) {}

  stockpile::v1::Level level() const { return level_; }
  const std::vector<std::string>& prefixes() const { return prefixes_; }

  // OK when the region is at this level and under a hosted prefix; otherwise
  // INVALID_ARGUMENT (wrong level) or FAILED_PRECONDITION (another instance's region).
  absl::Status CheckRegion(absl::string_view region_code) const;
  bool HostsCode(absl::string_view code) const;
  // HostsCode for "warehouses/{code}" (or a bare code).
  bool HostsWarehouseName(absl::string_view name) const;

 private:
  stockpile::v1::Level level_;
  std::vector<std::string> prefixes_;
};

}  // namespace stockpile::level
