#include "services/common/metrics/metrics_server.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/exposer.h"
#include "prometheus/gauge.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"
#include "services/common/metrics/process_collector.h"
#include "services/common/tcp_connect.h"

namespace stockpile::metrics {
namespace {

// Opens and closes a TCP connection to host:port; failures do not matter.
void WakeListener(const std::string& host, int port) {
  auto fd = common::ConnectTcp(host, port, absl::Seconds(1));
  if (fd.ok()) close(*fd);
}

// The address to reach a listener bound to `listen` ("host:port", "[v6]:port", ":port").
std::string WakeHost(absl::string_view listen) {
  const std::optional<common::HostPort> bound = common::SplitHostPort(listen);
  const std::string host = bound.has_value() ? bound->host : "";
  if (host.empty() || host == "0.0.0.0") return "127.0.0.1";
  if (host == "::") return "::1";
  return host;
}

}  // namespace

// The one collectable registered with the exposer: the registry's families, then every added
// collectable's, each series completed with the process's constant labels.
class MetricsServer::Page : public prometheus::Collectable {
 public:
  Page(std::shared_ptr<prometheus::Registry> registry,
       std::map<std::string, std::string> const_labels)
      : registry_(std::move(registry)), const_labels_(std::move(const_labels)) {}

  void Add(std::shared_ptr<prometheus::Collectable> collectable) {
    absl::MutexLock lock(&mutex_);
    collectables_.push_back(std::move(collectable));
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> families = registry_->Collect();
    for (const auto& collectable : Collectables()) {
      for (auto& family : collectable->Collect()) families.push_back(std::move(family));
    }
    for (auto& family : families) {
      for (auto& metric : family.metric) AddConstLabels(metric);
    }
    return families;
  }

 private:
  std::vector<std::shared_ptr<prometheus::Collectable>> Collectables() const {
    absl::MutexLock lock(&mutex_);
    return collectables_;  // copied so a slow collector does not block AddCollectable
  }

  void AddConstLabels(prometheus::ClientMetric& metric) const {
    for (const auto& [name, value] : const_labels_) {
      bool present = false;
      for (const auto& label : metric.label) present = present || label.name == name;
      if (!present) metric.label.push_back({name, value});
    }
  }

  std::shared_ptr<prometheus::Registry> registry_;
  std::map<std::string, std::string> const_labels_;
  mutable absl::Mutex mutex_;
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_ ABSL_GUARDED_BY(mutex_);
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen,
                                                                    const ProcessInfo& info) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto page = std::make_shared<Page>(registry, info.const_labels);
  std::unique_ptr<MetricsServer> server(new MetricsServer(info, registry, page));
  try {
    // Exposer (civetweb) throws when it cannot bind; no exception may leave this function.
    server->exposer_ = std::make_unique<prometheus::Exposer>(listen, /*num_threads=*/2);
    server->exposer_->RegisterCollectable(page);
    std::vector<int> ports = server->exposer_->GetListeningPorts();
    if (ports.empty()) {
      return absl::UnavailableError(absl::StrCat("metrics endpoint ", listen, " has no port"));
    }
    server->port_ = ports.front();
    server->wake_host_ = WakeHost(listen);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", listen,
                                               " (address in use or invalid): ", e.what()));
  }
  return server;
}

MetricsServer::MetricsServer(ProcessInfo info, std::shared_ptr<prometheus::Registry> registry,
                             std::shared_ptr<Page> page)
    : info_(std::move(info)), registry_(std::move(registry)), page_(std::move(page)) {
  RegisterStandardMetrics();
}

// The exposer stops serving (and joins its threads) before the page and registry go away.
// civetweb's listener notices the stop flag only when its poll() returns, which takes up to 2 s
// when no request comes in; a connection every 20 ms wakes it so shutdown is prompt.
MetricsServer::~MetricsServer() {
  if (exposer_ == nullptr) return;
  std::atomic<bool> stopped{false};
  std::thread waker([this, &stopped] {
    while (!stopped.load()) {
      WakeListener(wake_host_, port_);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  exposer_.reset();
  stopped = true;
  waker.join();
}

void MetricsServer::AddCollectable(std::shared_ptr<prometheus::Collectable> collectable) {
  page_->Add(std::move(collectable));
}

std::string MetricsServer::RenderText() const {
  return prometheus::TextSerializer().Serialize(page_->Collect());
}

void MetricsServer::RegisterStandardMetrics() {
  prometheus::BuildGauge()
      .Name("stockpile_build_info")
      .Help("Always 1; labels give the service, version and commit of the running binary.")
      .Register(*registry_)
      .Add({{"service", info_.service}, {"version", info_.version}, {"commit", info_.commit}})
      .Set(1);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  prometheus::BuildGauge()
      .Name("stockpile_process_start_time_seconds")
      .Help("Time the metrics server of this process started, in seconds since the Unix epoch.")
      .Register(*registry_)
      .Add({})
      .Set(now);
  page_->Add(std::make_shared<ProcessCollector>());
}

}  // namespace stockpile::metrics
