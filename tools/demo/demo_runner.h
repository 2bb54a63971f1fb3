#pragma once

#include <grpcpp/support/status.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/common/reference_data.h"
#include "tools/bench/level_client.h"
#include "tools/demo/demo_plan.h"

namespace stockpile::demo {

struct DemoOptions {
  std::vector<std::string> region_prefixes;  // empty: all of China
  std::vector<stockpile::v1::Level> levels;
  PlanOptions plan;
  int concurrency = 8;
  std::string actor = "stockpile-demo";
  bool progress = true;
};

// What a run did; reruns show everything as existing/deduplicated and change nothing.
struct DemoCounters {
  std::atomic<uint64_t> warehouses_planned{0};
  std::atomic<uint64_t> warehouses_created{0};
  std::atomic<uint64_t> warehouses_existing{0};
  std::atomic<uint64_t> unhosted_regions{0};
  std::atomic<uint64_t> balances{0};
  std::atomic<uint64_t> movements{0};
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> expired_lots_refused{0};
  std::atomic<uint64_t> quotas{0};
  std::atomic<uint64_t> reserves{0};
  std::atomic<uint64_t> calls{0};
  std::array<std::atomic<uint64_t>, 17> errors{};
  uint64_t total_errors() const;
};

// Level services by level, each with the region prefixes it reported.
class Router {
 public:
  // `specs`: "level=HOST:PORT" entries.
  static absl::StatusOr<Router> Connect(const std::vector<std::string>& specs);
  // The instance hosting `region_code` at `level` (longest prefix wins), or nullptr.
  bench::LevelTarget* Route(stockpile::v1::Level level, const std::string& region_code) const;
  bool HasLevel(stockpile::v1::Level level) const;
  std::vector<stockpile::v1::Level> Levels() const;

 private:
  std::vector<std::unique_ptr<bench::LevelTarget>> targets_;
};

// Creates the warehouses, stock, quotas and reserves of every selected region.
// Whether a batch of already-expired lots was refused for being expired (a service may refuse
// such receipts: counted apart). Any other refusal of that batch is an error like any other.
bool IsExpiryRefusal(const grpc::Status& s);

void RunDemo(const common::ReferenceData& refdata, const Router& router, const DemoOptions& options,
             DemoCounters* counters);

}  // namespace stockpile::demo
