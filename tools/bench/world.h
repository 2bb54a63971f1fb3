#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/bench/level_client.h"

namespace stockpile::bench {

struct BenchItem {
  std::string code;
  bool expires = false;
};

// The warehouses and items the load runs against, created and stocked by PrepareWorld.
struct BenchWorld {
  stockpile::v1::Level level = stockpile::v1::LEVEL_UNSPECIFIED;
  std::vector<std::string> warehouses;  // names: "warehouses/{code}"
  std::vector<BenchItem> items;
  std::string lot;          // the lot every expiring item is received into
  std::string expiry_date;  // its expiry
  uint64_t seeded_balances = 0;
  double setup_seconds = 0;
};

struct WorldOptions {
  int warehouses = 100;
  int64_t seed_quantity = 1'000'000;
  int concurrency = 16;
  std::string reference_data;
  std::string actor = "stockpile-bench";
  bool verbose = true;
};

// Picks regions the target hosts (GetInstanceInfo + reference data), creates warehouses
// "{region}-W9nnnnn" round-robin over them (existing ones are reused) and receives
// `seed_quantity` of every item into each, so issues and holds never run short.
absl::StatusOr<BenchWorld> PrepareWorld(LevelTarget& target, const WorldOptions& options);

}  // namespace stockpile::bench
