#include "services/common/metrics/scrape_collector.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "prometheus/check_names.h"
#include "prometheus/client_metric.h"

namespace stockpile::metrics {
namespace {

class FunctionCollectable : public prometheus::Collectable {
 public:
  explicit FunctionCollectable(std::function<std::vector<prometheus::MetricFamily>()> collect)
      : collect_(std::move(collect)) {}
  std::vector<prometheus::MetricFamily> Collect() const override { return collect_(); }

 private:
  std::function<std::vector<prometheus::MetricFamily>()> collect_;
};

absl::Status CheckNames(const std::string& name, prometheus::MetricType type,
                        const std::vector<std::string>& label_names) {
  if (!prometheus::CheckMetricName(name)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid metric name '", name, "'"));
  }
  if (type != prometheus::MetricType::Gauge && type != prometheus::MetricType::Counter) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric '", name, "': only gauges and counters are computed at scrape"));
  }
  if (type == prometheus::MetricType::Counter && !absl::EndsWith(name, "_total")) {
    return absl::InvalidArgumentError(absl::StrCat("counter '", name, "' must end in _total"));
  }
  for (const std::string& label : label_names) {
    if (!prometheus::CheckLabelName(label)) {
      return absl::InvalidArgumentError(
          absl::StrCat("metric '", name, "': invalid label name '", label, "'"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<ScrapeCollector>> ScrapeCollector::Create(
    std::string name, std::string help, prometheus::MetricType type,
    std::vector<std::string> label_names, Producer producer) {
  if (absl::Status names = CheckNames(name, type, label_names); !names.ok()) return names;
  if (!producer) {
    return absl::InvalidArgumentError(absl::StrCat("metric '", name, "' has no producer"));
  }
  return std::shared_ptr<ScrapeCollector>(new ScrapeCollector(
      std::move(name), std::move(help), type, std::move(label_names), std::move(producer)));
}

ScrapeCollector::ScrapeCollector(std::string name, std::string help, prometheus::MetricType type,
                                 std::vector<std::string> label_names, Producer producer)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)),
      producer_(std::move(producer)) {}

std::vector<prometheus::MetricFamily> ScrapeCollector::Collect() const {
  prometheus::MetricFamily family{name_, help_, type_, {}};
  for (Sample& sample : producer_()) {
    if (sample.label_values.size() != label_names_.size()) {
      dropped_samples_.fetch_add(1);  // a producer bug; the rest of the page stays valid
      continue;
    }
    prometheus::ClientMetric metric;
    for (size_t i = 0; i < label_names_.size(); ++i) {
      metric.label.push_back({label_names_[i], std::move(sample.label_values[i])});
    }
    if (type_ == prometheus::MetricType::Counter) {
      metric.counter.value = sample.value;
    } else {
      metric.gauge.value = sample.value;
    }
    family.metric.push_back(std::move(metric));
  }
  return {std::move(family)};
}

std::shared_ptr<prometheus::Collectable> MakeFunctionCollectable(
    std::function<std::vector<prometheus::MetricFamily>()> collect) {
  return std::make_shared<FunctionCollectable>(std::move(collect));
}

}  // namespace stockpile::metrics
