#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "prometheus/metric_type.h"

namespace stockpile::metrics {

// One metric family whose values are computed when Prometheus scrapes, so the page never shows
// stale figures and no background thread is needed. Good for values the service already holds
// (in-memory aggregates, counters kept by a store, RocksDB properties).
//
//   auto stock = ScrapeCollector::Create(
//       "stockpile_stock_units", "Units per item and state at this level.",
//       prometheus::MetricType::Gauge, {"item", "state"},
//       [&core] {
//         std::vector<ScrapeCollector::Sample> samples;
//         for (const auto& [item, totals] : core.TotalsByItem()) {  // a cheap in-memory snapshot
//           samples.push_back({{item, "on_hand"}, double(totals.on_hand)});
//           samples.push_back({{item, "held"}, double(totals.held)});
//         }
//         return samples;
//       });
//   if (!stock.ok()) return stock.status();
//   metrics_server->AddCollectable(*stock);
//
// The producer runs on the HTTP server's thread at every scrape (Prometheus: every 15-30 s):
// it must be thread-safe and fast (no full-table scans), and must not return the same label
// values twice. Samples whose label count differs from `label_names` are left out and counted
// in dropped_samples(). Keep label sets bounded (item, state, level; never a warehouse or a
// request). The MetricsServer's constant labels (e.g. level) are added to every sample.
class ScrapeCollector : public prometheus::Collectable {
 public:
  struct Sample {
    std::vector<std::string> label_values;  // in the order of label_names
    double value = 0;
  };
  using Producer = std::function<std::vector<Sample>()>;

  // INVALID_ARGUMENT for a bad metric or label name, a type other than Gauge or Counter, or a
  // Counter whose name does not end in "_total".
  static absl::StatusOr<std::shared_ptr<ScrapeCollector>> Create(
      std::string name, std::string help, prometheus::MetricType type,
      std::vector<std::string> label_names, Producer producer);

  std::vector<prometheus::MetricFamily> Collect() const override;
  uint64_t dropped_samples() const { return dropped_samples_.load(); }

 private:
  ScrapeCollector(std::string name, std::string help, prometheus::MetricType type,
                  std::vector<std::string> label_names, Producer producer);

  const std::string name_;
  const std::string help_;
  const prometheus::MetricType type_;
  const std::vector<std::string> label_names_;
  const Producer producer_;
  mutable std::atomic<uint64_t> dropped_samples_{0};
};

// Any number of families from one function, for a component that reports several related
// families from one snapshot (e.g. replication lag, watermark and connected per source).
// The function has the same duties as a ScrapeCollector producer.
std::shared_ptr<prometheus::Collectable> MakeFunctionCollectable(
    std::function<std::vector<prometheus::MetricFamily>()> collect);

}  // namespace stockpile::metrics
