// stockpile-demo: fills level services with demo warehouses, stock, lots, quotas and reserves
// (see docs/bench.md). Deterministic: a rerun with the same --seed changes nothing.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/status_util.h"
#include "services/common/validation.h"
#include "tools/demo/demo_runner.h"

namespace stockpile::demo {
namespace {

namespace v1 = stockpile::v1;

struct Flags {
  std::vector<std::string> targets;
  std::vector<std::string> provinces;
  bool all = false;
  std::vector<std::string> levels;
  uint64_t seed = 1;
  int concurrency = 8;
  std::string items_per_warehouse = "some";
  bool quotas = true;
  bool reserves = true;
  std::string reference_data = common::ReferenceData::DefaultDir();
  bool json = false;
  bool quiet = false;
};

std::vector<std::string> SplitList(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const auto& v : values) {
    for (absl::string_view part : absl::StrSplit(v, ',', absl::SkipWhitespace())) {
      out.emplace_back(part);
    }
  }
  return out;
}

absl::StatusOr<DemoOptions> MakeOptions(const Flags& flags, const Router& router) {
  DemoOptions options;
  options.region_prefixes = SplitList(flags.provinces);
  if (options.region_prefixes.empty() && !flags.all) {
    return absl::InvalidArgumentError("choose regions: --provinces=42,11 or --all");
  }
  if (flags.all) options.region_prefixes.clear();
  for (const auto& prefix : options.region_prefixes) {
    if (prefix.size() > 12 || !std::all_of(prefix.begin(), prefix.end(), absl::ascii_isdigit)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--provinces takes region-code prefixes (digits, e.g. 42 or 4201); got '", prefix, "'"));
    }
  }
  for (const auto& name : SplitList(flags.levels)) {
    auto level = common::ParseLevel(name);
    if (!level) return absl::InvalidArgumentError(absl::StrCat("unknown level '", name, "'"));
    if (!router.HasLevel(*level)) {
      return absl::InvalidArgumentError(absl::StrCat("no --target for level ", name));
    }
    options.levels.push_back(*level);
  }
  if (options.levels.empty()) options.levels = router.Levels();
  options.plan.seed = flags.seed;
  options.plan.all_items = flags.items_per_warehouse == "all";
  options.plan.quotas = flags.quotas;
  options.plan.reserves = flags.reserves;
  options.concurrency = flags.concurrency;
  options.progress = !flags.quiet;
  return options;
}

nlohmann::json Summary(const DemoCounters& c, double seconds) {
  nlohmann::json errors = nlohmann::json::object();
  for (size_t i = 0; i < c.errors.size(); ++i) {
    if (c.errors[i] > 0)
      errors[common::StatusCodeName(static_cast<grpc::StatusCode>(i))] = c.errors[i].load();
  }
  return {{"warehouses", c.warehouses_planned.load()},
          {"warehouses_created", c.warehouses_created.load()},
          {"warehouses_existing", c.warehouses_existing.load()},
          {"unhosted_regions", c.unhosted_regions.load()},
          {"balances", c.balances.load()},
          {"movements", c.movements.load()},
          {"batches", c.batches.load()},
          {"expired_lots_refused", c.expired_lots_refused.load()},
          {"quotas", c.quotas.load()},
          {"reserves", c.reserves.load()},
          {"calls", c.calls.load()},
          {"errors", c.total_errors()},
          {"errors_by_code", errors},
          {"seconds", seconds},
          {"movements_per_s", seconds > 0 ? c.movements.load() / seconds : 0},
          {"calls_per_s", seconds > 0 ? c.calls.load() / seconds : 0}};
}

void PrintSummary(const nlohmann::json& s) {
  std::cout << "warehouses: " << s["warehouses"] << " (" << s["warehouses_created"] << " created, "
            << s["warehouses_existing"] << " already there, " << s["unhosted_regions"]
            << " regions hosted by no target)\n"
            << "balances:   " << s["balances"] << "\n"
            << "movements:  " << s["movements"] << " in " << s["batches"] << " batches"
            << " (expired lots refused by the service: " << s["expired_lots_refused"] << ")\n"
            << "quotas:     " << s["quotas"] << ", reserves: " << s["reserves"] << "\n"
            << "errors:     " << s["errors"] << " " << s["errors_by_code"].dump() << "\n"
            << "time:       " << s["seconds"].get<double>() << " s, "
            << static_cast<int64_t>(s["movements_per_s"].get<double>()) << " movements/s, "
            << static_cast<int64_t>(s["calls_per_s"].get<double>()) << " calls/s\n";
}

// Every prefix must name some region: "99" would otherwise create nothing and exit 0.
absl::Status CheckPrefixesName(const common::ReferenceData& reference,
                               const std::vector<std::string>& prefixes) {
  const auto& regions = reference.regions();  // sorted by code
  for (const auto& prefix : prefixes) {
    auto it = std::lower_bound(
        regions.begin(), regions.end(), prefix,
        [](const common::RegionInfo& r, const std::string& p) { return r.code < p; });
    if (it == regions.end() || !absl::StartsWith(it->code, prefix)) {
      return absl::InvalidArgumentError(
          absl::StrCat("no region code starts with ", prefix, " in the reference data"));
    }
  }
  return absl::OkStatus();
}

int Run(const Flags& flags) {
  auto router = Router::Connect(SplitList(flags.targets));
  if (!router.ok()) {
    std::cerr << "stockpile-demo: " << router.status().message() << "\n";
    return 1;
  }
  auto options = MakeOptions(flags, *router);
  if (!options.ok()) {
    std::cerr << "stockpile-demo: " << options.status().message() << "\n";
    return 2;
  }
  common::ReferenceData::Options load;
  load.fine_region_prefixes = options->region_prefixes;
  auto refdata = common::ReferenceData::Load(flags.reference_data, load);
  if (!refdata.ok()) {
    std::cerr << "stockpile-demo: " << refdata.status().message() << "\n";
    return 1;
  }
  if (absl::Status s = CheckPrefixesName(**refdata, options->region_prefixes); !s.ok()) {
    std::cerr << "stockpile-demo: " << s.message() << "\n";
    return 2;
  }
  auto start = std::chrono::steady_clock::now();
  DemoCounters counters;
  RunDemo(**refdata, *router, *options, &counters);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::json summary = Summary(counters, seconds);
  if (flags.json) {
    std::cout << summary.dump(2) << std::endl;
  } else {
    PrintSummary(summary);
  }
  return counters.total_errors() == 0 ? 0 : 3;
}

}  // namespace
}  // namespace stockpile::demo

int main(int argc, char** argv) {
  stockpile::demo::Flags f;
  CLI::App app{"stockpile-demo: seeds demo warehouses and stock into level services"};
  app.add_option("--target", f.targets, "LEVEL=HOST:PORT (repeat or comma-separate)")->required();
  app.add_option("--provinces,--regions", f.provinces,
                 "region-code prefixes, e.g. 42,11 (any length: 420102 is one county)");
  app.add_flag("--all", f.all, "every region of China");
  app.add_option("--levels", f.levels,
                 "province,city,county,township,village (default: every level with a target)");
  app.add_option("--seed", f.seed, "randomness seed (part of every request id)");
  app.add_option("--concurrency", f.concurrency, "calls in flight")->check(CLI::Range(1, 1024));
  app.add_option("--items-per-warehouse", f.items_per_warehouse,
                 "some: a level-sized subset; all: every item, ~30% at zero")
      ->check(CLI::IsMember({"some", "all"}));
  app.add_option("--quotas", f.quotas, "set min/max quotas (true/false)");
  app.add_option("--reserves", f.reserves, "set contract/capacity reserves (true/false)");
  app.add_option("--reference-data", f.reference_data, "folder with regions/ and items/");
  app.add_flag("--json", f.json, "print the summary as JSON");
  app.add_flag("--quiet", f.quiet, "no progress line");
  CLI11_PARSE(app, argc, argv);
  return stockpile::demo::Run(f);
}
