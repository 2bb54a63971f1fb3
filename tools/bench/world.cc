#include "tools/bench/world.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "services/common/reference_data.h"
#include "services/common/status_macros.h"
#include "services/common/validation.h"
#include "tools/bench/parallel.h"

namespace stockpile::bench {
namespace {

namespace v1 = stockpile::v1;
constexpr auto kCallTimeout = std::chrono::seconds(60);
constexpr int kMaxBatch = 1000;

absl::StatusOr<std::vector<std::string>> HostedRegions(const LevelTarget& target,
                                                       const std::string& reference_dir) {
  common::ReferenceData::Options options;
  for (const auto& p : target.info.region_prefixes()) options.fine_region_prefixes.push_back(p);
  ASSIGN_OR_RETURN(auto refdata, common::ReferenceData::Load(reference_dir, options));
  std::vector<std::string> prefixes(target.info.region_prefixes().begin(),
                                    target.info.region_prefixes().end());
  std::vector<std::string> regions;
  for (const auto& r : refdata->regions()) {
    if (r.level == target.info.level() && CoveredBy(r.code, prefixes)) regions.push_back(r.code);
  }
  if (regions.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no region of the target's level under its prefixes ", absl::StrJoin(prefixes, ",")));
  }
  return regions;
}

absl::StatusOr<std::vector<BenchItem>> FetchItems(LevelTarget& target) {
  v1::ListItemsResponse response;
  grpc::Status s = CallWithDeadline(kCallTimeout, [&](grpc::ClientContext* ctx) {
    return target.stub->ListItems(ctx, {}, &response);
  });
  if (!s.ok()) return absl::UnavailableError(absl::StrCat("ListItems: ", s.error_message()));
  std::vector<BenchItem> items;
  for (const auto& item : response.items()) {
    items.push_back({item.code(), item.shelf_life_months() > 0});
  }
  return items;
}

// Creates the warehouses in parallel; ALREADY_EXISTS means a previous run made it.
absl::Status CreateWarehouses(LevelTarget& target, const std::vector<std::string>& codes,
                              const WorldOptions& options) {
  std::atomic<int> failures{0};
  std::mutex mu;
  std::string first_error;
  RunParallel(options.concurrency, codes.size(), [&](size_t i) {
    v1::CreateWarehouseRequest request;
    request.set_request_id(absl::StrCat("bench-wh-", codes[i]));
    request.set_actor(options.actor);
    auto* w = request.mutable_warehouse();
    w->set_code(codes[i]);
    w->set_display_name(absl::StrCat("bench store ", codes[i]));
    w->set_region_code(codes[i].substr(0, codes[i].find('-')));
    w->set_kind(v1::WAREHOUSE_KIND_GOVERNMENT);
    w->set_area_m2(1000);
    v1::Warehouse created;
    grpc::Status s = CallWithDeadline(kCallTimeout, [&](grpc::ClientContext* ctx) {
      return target.stub->CreateWarehouse(ctx, request, &created);
    });
    if (!s.ok() && s.error_code() != grpc::StatusCode::ALREADY_EXISTS) {
      ++failures;
      std::lock_guard<std::mutex> lock(mu);
      if (first_error.empty()) first_error = absl::StrCat(codes[i], ": ", s.error_message());
    }
  });
  if (failures > 0) {
    return absl::InternalError(
        absl::StrCat(failures.load(), " warehouse creations failed; first: ", first_error));
  }
  return absl::OkStatus();
}

// Receives seed stock for every warehouse x item, packed into ApplyBatch calls.
absl::Status SeedStock(LevelTarget& target, BenchWorld& world, const WorldOptions& options) {
  std::vector<v1::ApplyBatchRequest> batches;
  for (const auto& warehouse : world.warehouses) {
    for (const auto& item : world.items) {
      if (batches.empty() || batches.back().operations_size() + 1 > kMaxBatch) {
        batches.emplace_back();
        batches.back().set_request_id(
            absl::StrCat("bench-seed-", world.lot, "-", warehouse.substr(11), "-", item.code));
        batches.back().set_actor(options.actor);
      }
      auto* op = batches.back().add_operations()->mutable_receive();
      op->set_warehouse(warehouse);
      op->set_item(item.code);
      op->set_quantity(options.seed_quantity);
      op->set_note("stockpile-bench seed");
      if (item.expires) {
        op->set_lot(world.lot);
        op->set_expiry_date(world.expiry_date);
      }
      ++world.seeded_balances;
    }
  }
  std::atomic<int> failures{0};
  std::string first_error;
  std::mutex mu;
  RunParallel(options.concurrency, batches.size(), [&](size_t i) {
    v1::ApplyBatchResponse response;
    grpc::Status s = CallWithDeadline(kCallTimeout, [&](grpc::ClientContext* ctx) {
      return target.stub->ApplyBatch(ctx, batches[i], &response);
    });
    if (!s.ok()) {
      ++failures;
      std::lock_guard<std::mutex> lock(mu);
      if (first_error.empty()) first_error = s.error_message();
    }
  });
  if (failures > 0) {
    return absl::InternalError(
        absl::StrCat(failures.load(), " seed batches failed; first: ", first_error));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BenchWorld> PrepareWorld(LevelTarget& target, const WorldOptions& options) {
  auto start = std::chrono::steady_clock::now();
  BenchWorld world;
  world.level = target.info.level();
  ASSIGN_OR_RETURN(world.items, FetchItems(target));
  ASSIGN_OR_RETURN(auto regions, HostedRegions(target, options.reference_data));
  // One lot per calendar year two years out: stable across runs, so seeding is idempotent.
  std::string year = common::FormatDate(TodayDays()).substr(0, 4);
  int expiry_year = std::stoi(year) + 2;
  world.lot = absl::StrCat("BENCH-", expiry_year);
  world.expiry_date = absl::StrCat(expiry_year, "-12-31");
  std::vector<std::string> codes;
  for (int i = 0; i < options.warehouses; ++i) {
    codes.push_back(absl::StrFormat("%s-W9%05d", regions[i % regions.size()], i));
    world.warehouses.push_back(common::WarehouseName(codes.back()));
  }
  if (options.verbose) {
    std::fprintf(stderr, "[bench] creating %zu warehouses over %zu hosted regions\n", codes.size(),
                 std::min(regions.size(), codes.size()));
  }
  RETURN_IF_ERROR(CreateWarehouses(target, codes, options));
  if (options.verbose) {
    std::fprintf(stderr, "[bench] seeding %zu x %zu balances with %lld each\n",
                 world.warehouses.size(), world.items.size(),
                 static_cast<long long>(options.seed_quantity));
  }
  RETURN_IF_ERROR(SeedStock(target, world, options));
  world.setup_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return world;
}

}  // namespace stockpile::bench
