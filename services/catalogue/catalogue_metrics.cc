#include "services/catalogue/catalogue_metrics.h"

#include "services/common/metrics/scrape_collector.h"
#include "services/common/validation.h"

namespace stockpile::catalogue {

namespace {

prometheus::MetricFamily Family(const char* name, const char* help, prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  return f;
}

void AddSample(prometheus::MetricFamily& f, const stockpile::v1::ReplicationSource& s,
               double value) {
  prometheus::ClientMetric m;
  m.label = {{"source", s.instance_id()}, {"level", std::string(common::LevelName(s.level()))}};
  if (f.type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

}  // namespace

std::shared_ptr<prometheus::Collectable> MakeReplicationCollectable(const CatalogueCore* core) {
  return metrics::MakeFunctionCollectable([core] {
    using prometheus::MetricType;
    auto applied =
        Family("stockpile_replication_applied_sequence",
               "Last change-stream sequence applied from the source.", MetricType::Gauge);
    auto lag_entries =
        Family("stockpile_replication_lag_entries",
               "Source head sequence minus the applied sequence.", MetricType::Gauge);
    auto lag_seconds =
        Family("stockpile_replication_lag_seconds",
               "Age of the oldest change not yet applied (0 when caught up).", MetricType::Gauge);
    auto connected = Family("stockpile_replication_connected",
                            "1 while the source's stream is up and it answers.", MetricType::Gauge);
    auto total = Family("stockpile_replication_entries_applied_total",
                        "Change entries applied from the source.", MetricType::Counter);
    auto resyncs = Family("stockpile_replication_resyncs_total",
                          "Times the source's history stopped matching what was held from it "
                          "(restored or re-created database): its stock was dropped and "
                          "streamed again.",
                          MetricType::Counter);
    for (const auto& s : core->ReplicationStatus()) {
      AddSample(applied, s, double(s.applied_sequence()));
      AddSample(lag_entries, s, double(s.lag_entries()));
      AddSample(lag_seconds, s, s.lag_seconds());
      AddSample(connected, s, s.connected() ? 1 : 0);
      AddSample(total, s, double(s.entries_applied()));
      AddSample(resyncs, s, double(s.resyncs()));
    }
    auto warehouses = Family("stockpile_catalogue_warehouses", "Warehouses in the national view.",
                             MetricType::Gauge);
    prometheus::ClientMetric m;
    m.gauge.value = double(core->view().warehouse_count());
    warehouses.metric.push_back(m);
    return std::vector<prometheus::MetricFamily>{applied, lag_entries, lag_seconds, connected,
                                                 total,   resyncs,     warehouses};
  });
}

}  // namespace stockpile::catalogue
