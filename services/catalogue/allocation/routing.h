#pragma once

// Which level instance owns a region: the one at the region's level (code length) whose
// longest registered prefix covers the region code. The catalogue builds a LevelRouter from its
// source registry with this (see docs/allocation.md, "Hosting").

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "stockpile/v1/warehouse.pb.h"

namespace stockpile::catalogue::allocation {

struct LevelInstance {
  stockpile::v1::Level level = stockpile::v1::LEVEL_UNSPECIFIED;
  std::string address;  // "host:port"
  std::vector<std::string> region_prefixes;
};

// Address of the owner of `region_code`; UNAVAILABLE when no registered instance hosts it
// (a saga treats that like a source that is down: it waits and retries).
absl::StatusOr<std::string> RouteRegion(const std::vector<LevelInstance>& instances,
                                        absl::string_view region_code);

}  // namespace stockpile::catalogue::allocation
