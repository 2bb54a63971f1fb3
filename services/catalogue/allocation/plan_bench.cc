// stockpile-plan-bench: plan latency over a synthetic national snapshot built from the real
// reference data (one warehouse per region: 665,276 warehouses; 42 items).
//   stockpile-plan-bench [--requests=N] [--lines=5] [--quantity=Q] [--min-leg=0]
//                        [--reference-data=DIR]
// Prints build time, entry count and p50/p90/p99/max plan latency for random destinations, and
// a digest of every plan made: the requests are the same from run to run, so two builds that
// print the same digest planned the same legs (compare one after a planner change).

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "services/catalogue/allocation/planner.h"
#include "services/common/validation.h"

namespace {

using stockpile::catalogue::allocation::LotStock;
using stockpile::catalogue::allocation::Planner;
using stockpile::catalogue::allocation::StockSnapshot;
using Clock = std::chrono::steady_clock;

struct Flags {
  int requests = 2000;
  int lines = 5;
  int64_t quantity = 200;
  int64_t min_leg = 0;  // the requests' min_leg_quantity
  std::string reference_dir = stockpile::common::ReferenceData::DefaultDir();
};

// --help prints the flags; an unknown flag or a value that is not a number stops the run before
// the national snapshot is built (seconds of CPU).
Flags ParseFlags(int argc, char** argv) {
  Flags f;
  CLI::App app("stockpile-plan-bench: plan latency over a synthetic national snapshot");
  app.add_option("--requests", f.requests, "plans to make")->capture_default_str();
  app.add_option("--lines", f.lines, "lines per request")->capture_default_str();
  app.add_option("--quantity", f.quantity, "units per line")->capture_default_str();
  app.add_option("--min-leg", f.min_leg, "the requests' min_leg_quantity")->capture_default_str();
  app.add_option("--reference-data", f.reference_dir, "folder with regions/ and items/")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  return f;
}

// Villages hold 3 items, townships 10, counties and above all items; 1-3 lots each.
void Fill(const stockpile::common::ReferenceData& ref, StockSnapshot& snap, int32_t today) {
  std::mt19937_64 rng(42);
  const auto& items = ref.items();
  for (const auto& r : ref.regions()) {
    const std::string code = r.code + "-W001";
    snap.SetWarehouse(code, {r.longitude, r.latitude});
    const size_t n = r.code.size() == 12 ? 3 : r.code.size() == 9 ? 10 : items.size();
    const int64_t scale = r.code.size() >= 9 ? 20 : 400;
    std::vector<size_t> order(items.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t k = 0; k < n; ++k) {
      const auto& item = items[order[k]];
      std::vector<LotStock> lots;
      const int nlots = item.expires() ? 1 + int(rng() % 3) : 1;
      for (int l = 0; l < nlots; ++l) {
        LotStock lot{item.expires() ? "L" + std::to_string(l) : "DEFAULT",
                     stockpile::catalogue::allocation::kNoExpiry,
                     int64_t(1 + rng() % uint64_t(scale))};
        if (item.expires()) lot.expiry_day = today - 30 + int32_t(rng() % 720);
        lots.push_back(std::move(lot));
      }
      snap.SetLots(code, item.code, std::move(lots));
      if (rng() % 3 == 0) snap.SetFloor(code, item.code, int64_t(rng() % uint64_t(scale)));
      if (r.code.size() <= 6 && rng() % 4 == 0) {
        snap.SetReserve(code, item.code, stockpile::v1::RESERVE_MODE_CONTRACT, 1000, 48);
      }
    }
  }
}

// FNV-1a: the same bytes give the same digest in every run and build (absl's hash is seeded
// per process).
constexpr uint64_t kFnvOffset = 14695981039346656037ULL;
uint64_t Fnv1a(uint64_t h, const std::string& bytes) {
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ULL;
  return h;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * double(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);
  auto t0 = Clock::now();
  auto ref = stockpile::common::ReferenceData::Load(flags.reference_dir);
  if (!ref.ok()) {
    std::fprintf(stderr, "reference data: %s\n", ref.status().ToString().c_str());
    return 1;
  }
  const int32_t today = stockpile::common::DaysFromMicros(1'767'225'600'000'000);  // 2026-01-01
  StockSnapshot snap(ref->get());
  Fill(**ref, snap, today);
  const double build_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("snapshot: %zu warehouses, %zu warehouse x item entries, built in %.1f s\n",
              snap.warehouse_count(), snap.entry_count(), build_s);

  Planner planner(ref->get());
  std::mt19937_64 rng(7);
  const auto& regions = (*ref)->regions();
  const auto& items = (*ref)->items();
  std::vector<double> ms;
  size_t legs = 0, short_lines = 0;
  uint64_t digest = kFnvOffset;
  for (int i = 0; i < flags.requests; ++i) {
    stockpile::v1::PlanAllocationRequest req;
    req.set_destination_region(regions[rng() % regions.size()].code);
    req.set_priority(stockpile::v1::PRIORITY_URGENT);
    req.set_min_leg_quantity(flags.min_leg);
    std::vector<size_t> order(items.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::shuffle(order.begin(), order.end(), rng);
    for (int l = 0; l < flags.lines; ++l) {
      auto* line = req.add_lines();
      line->set_item(items[order[size_t(l)]].code);
      line->set_quantity(flags.quantity);
    }
    auto start = Clock::now();
    auto plan = planner.Plan(req, snap, today);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (!plan.ok()) {
      std::fprintf(stderr, "plan failed: %s\n", plan.status().ToString().c_str());
      return 1;
    }
    legs += size_t(plan->legs_size());
    digest = Fnv1a(digest, plan->SerializeAsString());
    for (const auto& o : plan->outcomes()) short_lines += o.shortfall() > 0 ? 1 : 0;
  }
  std::printf(
      "%d plans of %d lines x %lld units (min leg %lld): p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, "
      "max %.3f ms; %.1f legs/plan, %zu short lines; plans digest %016llx\n",
      flags.requests, flags.lines, static_cast<long long>(flags.quantity),
      static_cast<long long>(flags.min_leg), Percentile(ms, 0.5), Percentile(ms, 0.9),
      Percentile(ms, 0.99), Percentile(ms, 1.0), double(legs) / flags.requests, short_lines,
      static_cast<unsigned long long>(digest));
  return 0;
}
