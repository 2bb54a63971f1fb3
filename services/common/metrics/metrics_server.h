#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/collectable.h"
#include "prometheus/registry.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace stockpile::metrics {

// Who is being scraped. `service` is the binary ("stockpile-level", "stockpile-catalogue");
// `const_labels` (e.g. {{"level", "county"}}) are added to every series on the page, except
// series that already carry a label of that name (the series' own value wins).
struct ProcessInfo {
  std::string service;
  std::string version;
  std::string commit;
  std::map<std::string, std::string> const_labels;
};

// The /metrics HTTP endpoint of one process.
//
//   ASSIGN_OR_RETURN(auto metrics, MetricsServer::Start(flags.metrics_listen, info));
//   auto& requests = prometheus::BuildCounter().Name("stockpile_x_total").Help("...")
//                        .Register(metrics->registry()).Add({{"kind", "y"}});
//   builder.experimental().SetInterceptorCreators(...MakeGrpcServerMetricsFactory(
//       metrics->registry())...);
//   metrics->AddCollectable(std::make_shared<ScrapeCollector>(...));  // scrape-time values
//
// Always present on the page: stockpile_build_info{service,version,commit} 1,
// stockpile_process_start_time_seconds, and the standard process_* metrics read from /proc/self
// at scrape time (process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds, process_start_time_seconds).
//
// Lifetime: destroy the gRPC server (its interceptors refer to series in registry()) before the
// MetricsServer. Collectables added with AddCollectable are kept alive by the MetricsServer, so
// whatever their producers capture must outlive it too (or be captured by shared_ptr).
// Destruction stops the HTTP server and joins its threads (takes a few ms).
class MetricsServer {
 public:
  // `listen` is "host:port"; port 0 picks a free port (read it back with port()).
  // Fails with UNAVAILABLE when the address cannot be bound (port in use, bad host).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen,
                                                              const ProcessInfo& info);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return port_; }
  prometheus::Registry& registry() { return *registry_; }
  const ProcessInfo& info() const { return info_; }

  // Adds a collectable whose families appear on the page from the next scrape on. Its metric
  // names must not repeat a name of the registry or of another collectable.
  void AddCollectable(std::shared_ptr<prometheus::Collectable> collectable);

  // The page as the HTTP endpoint serves it (handy for tests and for a debug dump).
  std::string RenderText() const;

 private:
  class Page;
  MetricsServer(ProcessInfo info, std::shared_ptr<prometheus::Registry> registry,
                std::shared_ptr<Page> page);
  void RegisterStandardMetrics();

  ProcessInfo info_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<Page> page_;  // what the exposer serves: registry + collectables + const labels
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
  std::string wake_host_;  // where to connect to wake the listener at shutdown
};

}  // namespace stockpile::metrics
