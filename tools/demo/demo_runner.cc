#include "tools/demo/demo_runner.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <thread>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/status_util.h"
#include "services/common/validation.h"
#include "tools/bench/parallel.h"

namespace stockpile::demo {
namespace {

namespace v1 = stockpile::v1;
constexpr int kMaxBatch = 1000;
constexpr int kAttempts = 4;

// Warehouses of one level whose regions share a parent, on one instance: one unit of work.
struct Group {
  bench::LevelTarget* target;
  v1::Level level;
  std::string parent;
  std::vector<const common::RegionInfo*> regions;
};

class GroupWorker {
 public:
  GroupWorker(const Group& group, const common::ReferenceData& refdata, const DemoOptions& options,
              DemoCounters* counters, int64_t run_start_micros)
      : group_(group),
        refdata_(refdata),
        options_(options),
        counters_(counters),
        run_start_micros_(run_start_micros) {}

  void Run();

 private:
  // Retries transient failures with the same request id (safe: every mutation is idempotent).
  template <typename Fn>
  grpc::Status Call(Fn&& fn) {
    grpc::Status status;
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      status = fn(&ctx);
      ++counters_->calls;
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE &&
          status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
    }
    return status;
  }
  void CountError(const grpc::Status& status, const std::string& what);
  std::optional<int32_t> CreateWarehouse(const WarehousePlan& plan);
  void SendBatches(std::vector<v1::Operation>& ops, const std::string& kind, bool expired);
  void SetQuotasAndReserves(const WarehousePlan& plan);
  std::string Id(absl::string_view rest) const {
    return absl::StrCat("demo-", options_.plan.seed, "-", rest);
  }

  const Group& group_;
  const common::ReferenceData& refdata_;
  const DemoOptions& options_;
  DemoCounters* counters_;
  int64_t run_start_micros_;
};

void GroupWorker::CountError(const grpc::Status& status, const std::string& what) {
  int code = std::min<int>(status.error_code(), 16);
  if (counters_->errors[code]++ < 5) {
    std::fprintf(stderr, "\n[demo] %s: %s %s\n", what.c_str(),
                 common::StatusCodeName(status.error_code()), status.error_message().c_str());
  }
}

// Returns the warehouse's anchor day (its creation date), or nothing when it could not be made.
std::optional<int32_t> GroupWorker::CreateWarehouse(const WarehousePlan& plan) {
  v1::CreateWarehouseRequest request;
  request.set_request_id(Id(absl::StrCat(plan.warehouse.code(), "-wh")));
  request.set_actor(options_.actor);
  *request.mutable_warehouse() = plan.warehouse;
  v1::Warehouse created;
  grpc::Status s = Call([&](grpc::ClientContext* ctx) {
    return group_.target->stub->CreateWarehouse(ctx, request, &created);
  });
  if (s.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
    v1::GetWarehouseRequest get;
    get.set_name(common::WarehouseName(plan.warehouse.code()));
    s = Call([&](grpc::ClientContext* ctx) {
      return group_.target->stub->GetWarehouse(ctx, get, &created);
    });
    if (s.ok()) ++counters_->warehouses_existing;
  } else if (s.ok()) {
    // A retried request id returns the first result: an old create_time means a rerun.
    // (Compared at microsecond precision: a rerun may start within the same second.)
    int64_t created_micros =
        created.create_time().seconds() * 1'000'000 + created.create_time().nanos() / 1000;
    bool rerun = created_micros > 0 && created_micros < run_start_micros_;
    ++(rerun ? counters_->warehouses_existing : counters_->warehouses_created);
  }
  if (!s.ok()) {
    CountError(s, absl::StrCat("create ", plan.warehouse.code()));
    return std::nullopt;
  }
  int64_t seconds = created.create_time().seconds();
  return seconds > 0 ? static_cast<int32_t>(seconds / 86400) : bench::TodayDays();
}

void GroupWorker::SendBatches(std::vector<v1::Operation>& ops, const std::string& kind,
                              bool expired) {
  std::string group_key = group_.parent.empty() ? "cn" : group_.parent;
  for (size_t start = 0, k = 0; start < ops.size(); start += kMaxBatch, ++k) {
    size_t end = std::min(ops.size(), start + kMaxBatch);
    v1::ApplyBatchRequest request;
    request.set_request_id(
        Id(absl::StrCat(group_key, "-", common::LevelName(group_.level), "-", kind, k)));
    request.set_actor(options_.actor);
    for (size_t i = start; i < end; ++i) *request.add_operations() = std::move(ops[i]);
    v1::ApplyBatchResponse response;
    grpc::Status s = Call([&](grpc::ClientContext* ctx) {
      return group_.target->stub->ApplyBatch(ctx, request, &response);
    });
    ++counters_->batches;
    if (s.ok()) {
      counters_->movements += end - start;
    } else if (expired && IsExpiryRefusal(s)) {
      counters_->expired_lots_refused += end - start;
    } else {
      CountError(s, absl::StrCat("batch ", request.request_id()));
    }
  }
}

void GroupWorker::SetQuotasAndReserves(const WarehousePlan& plan) {
  std::string name = common::WarehouseName(plan.warehouse.code());
  for (const auto& q : plan.quotas) {
    v1::SetQuotaRequest request;
    request.set_request_id(Id(absl::StrCat(plan.warehouse.code(), "-q-", q.item)));
    request.set_actor(options_.actor);
    request.mutable_quota()->set_warehouse(name);
    request.mutable_quota()->set_item(q.item);
    request.mutable_quota()->set_min(q.min);
    request.mutable_quota()->set_max(q.max);
    v1::Quota reply;
    grpc::Status s = Call([&](grpc::ClientContext* ctx) {
      return group_.target->stub->SetQuota(ctx, request, &reply);
    });
    s.ok() ? void(++counters_->quotas) : CountError(s, request.request_id());
  }
  for (const auto& r : plan.reserves) {
    v1::SetReserveRequest request;
    request.set_request_id(Id(absl::StrCat(plan.warehouse.code(), "-r-", r.item)));
    request.set_actor(options_.actor);
    auto* reserve = request.mutable_reserve();
    reserve->set_warehouse(name);
    reserve->set_item(r.item);
    reserve->set_mode(r.mode);
    reserve->set_quantity(r.quantity);
    reserve->set_lead_time_hours(r.lead_time_hours);
    reserve->set_partner(r.partner);
    v1::Reserve reply;
    grpc::Status s = Call([&](grpc::ClientContext* ctx) {
      return group_.target->stub->SetReserve(ctx, request, &reply);
    });
    s.ok() ? void(++counters_->reserves) : CountError(s, request.request_id());
  }
}

void GroupWorker::Run() {
  std::vector<WarehousePlan> plans;
  std::vector<v1::Operation> fresh, expired;
  for (const auto* region : group_.regions) {
    WarehousePlan plan = PlanWarehouse(*region, refdata_.items(), options_.plan);
    ++counters_->warehouses_planned;
    std::optional<int32_t> anchor = CreateWarehouse(plan);
    if (!anchor) continue;
    AppendStockOperations(plan, *anchor, &fresh, &expired);
    counters_->balances += plan.stock.size();
    plans.push_back(std::move(plan));
  }
  SendBatches(fresh, "s", /*expired=*/false);
  SendBatches(expired, "x", /*expired=*/true);
  for (const auto& plan : plans) SetQuotasAndReserves(plan);
}

std::vector<Group> BuildGroups(const common::ReferenceData& refdata, const Router& router,
                               const DemoOptions& options, DemoCounters* counters) {
  std::map<std::tuple<int, bench::LevelTarget*, std::string>, Group> groups;
  for (const auto& region : refdata.regions()) {
    if (std::find(options.levels.begin(), options.levels.end(), region.level) ==
        options.levels.end()) {
      continue;
    }
    if (!options.region_prefixes.empty() &&
        !bench::CoveredBy(region.code, options.region_prefixes)) {
      continue;
    }
    bench::LevelTarget* target = router.Route(region.level, region.code);
    if (target == nullptr) {
      ++counters->unhosted_regions;
      continue;
    }
    auto key = std::make_tuple(static_cast<int>(region.level), target, region.parent_code);
    Group& g = groups[key];
    g.target = target;
    g.level = region.level;
    g.parent = region.parent_code;
    g.regions.push_back(&region);
  }
  std::vector<Group> out;
  for (auto& [key, group] : groups) out.push_back(std::move(group));
  return out;
}

void PrintProgress(const DemoCounters& c, uint64_t total, double seconds, bool final_line) {
  std::fprintf(stderr,
               "%s[demo] %llu/%llu warehouses, %llu movements, %llu quotas, %llu errors, "
               "%.1f s%s",
               isatty(2) ? "\r" : "", static_cast<unsigned long long>(c.warehouses_planned.load()),
               static_cast<unsigned long long>(total),
               static_cast<unsigned long long>(c.movements.load()),
               static_cast<unsigned long long>(c.quotas.load()),
               static_cast<unsigned long long>(c.total_errors()), seconds,
               (final_line || !isatty(2)) ? "\n" : "");
}

}  // namespace

bool IsExpiryRefusal(const grpc::Status& s) {
  const bool refused = s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
                       s.error_code() == grpc::StatusCode::FAILED_PRECONDITION;
  return refused && absl::StrContains(s.error_message(), "expired");
}

uint64_t DemoCounters::total_errors() const {
  uint64_t n = 0;
  for (const auto& e : errors) n += e.load();
  return n;
}

absl::StatusOr<Router> Router::Connect(const std::vector<std::string>& specs) {
  Router router;
  for (const auto& spec : specs) {
    std::vector<std::string> parts = absl::StrSplit(spec, absl::MaxSplits('=', 1));
    std::optional<v1::Level> level =
        parts.size() == 2 ? common::ParseLevel(parts[0]) : std::nullopt;
    if (!level) {
      return absl::InvalidArgumentError(
          absl::StrCat("--target wants LEVEL=HOST:PORT, got '", spec, "'"));
    }
    auto target = bench::ConnectLevel(parts[1], std::chrono::seconds(10));
    if (!target.ok()) return target.status();
    if ((*target)->info.level() != *level) {
      return absl::InvalidArgumentError(absl::StrCat(parts[1], " serves level ",
                                                     common::LevelName((*target)->info.level()),
                                                     ", not ", parts[0]));
    }
    router.targets_.push_back(std::move(*target));
  }
  return router;
}

bench::LevelTarget* Router::Route(v1::Level level, const std::string& region_code) const {
  bench::LevelTarget* best = nullptr;
  size_t best_length = 0;
  for (const auto& t : targets_) {
    if (t->info.level() != level) continue;
    for (const auto& prefix : t->info.region_prefixes()) {
      if (absl::StartsWith(region_code, prefix) &&
          (best == nullptr || prefix.size() > best_length)) {
        best = t.get();
        best_length = prefix.size();
      }
    }
    if (t->info.region_prefixes().empty() && best == nullptr) best = t.get();
  }
  return best;
}

bool Router::HasLevel(v1::Level level) const {
  for (const auto& t : targets_) {
    if (t->info.level() == level) return true;
  }
  return false;
}

std::vector<v1::Level> Router::Levels() const {
  std::vector<v1::Level> levels;
  for (int l = v1::LEVEL_PROVINCE; l <= v1::LEVEL_VILLAGE; ++l) {
    if (HasLevel(static_cast<v1::Level>(l))) levels.push_back(static_cast<v1::Level>(l));
  }
  return levels;
}

void RunDemo(const common::ReferenceData& refdata, const Router& router, const DemoOptions& options,
             DemoCounters* counters) {
  std::vector<Group> groups = BuildGroups(refdata, router, options, counters);
  uint64_t total = 0;
  for (const auto& g : groups) total += g.regions.size();
  auto start = std::chrono::steady_clock::now();
  int64_t run_start_micros = std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  std::atomic<bool> done{false};
  std::thread progress([&] {
    auto period = std::chrono::milliseconds(isatty(2) ? 1000 : 5000);
    auto next = std::chrono::steady_clock::now() + period;
    while (!done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (!options.progress || std::chrono::steady_clock::now() < next) continue;
      next += period;
      PrintProgress(*counters, total,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                    false);
    }
  });
  bench::RunParallel(options.concurrency, groups.size(), [&](size_t i) {
    GroupWorker(groups[i], refdata, options, counters, run_start_micros).Run();
  });
  done = true;
  progress.join();
  if (options.progress) {
    PrintProgress(*counters, total,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                  true);
  }
}

}  // namespace stockpile::demo
