// stockpile-catalogue: wiring only. flags -> reference data -> core (rebuilds the view from its
// store) -> metrics -> gRPC server -> source discovery (etcd or --source) -> signal -> drain.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/catalogue/catalogue_core.h"
#include "services/catalogue/catalogue_metrics.h"
#include "services/catalogue/catalogue_service.h"
#include "services/catalogue/config.h"
#include "services/catalogue/source_directory.h"
#include "services/catalogue/stock_index_search.h"
#include "services/common/etcd/registration.h"
#include "services/common/metrics/grpc_server_metrics.h"
#include "services/common/metrics/metrics_server.h"

#ifndef STOCKPILE_VERSION
#define STOCKPILE_VERSION "dev"
#endif
#ifndef STOCKPILE_COMMIT
#define STOCKPILE_COMMIT "unknown"
#endif

namespace {

using stockpile::catalogue::CatalogueConfig;

int Fail(absl::string_view what, const absl::Status& s) {
  std::cerr << "stockpile-catalogue: " << what << ": " << s.message() << std::endl;
  return 2;
}

std::string HostOf(const std::string& listen) { return listen.substr(0, listen.rfind(':')); }

std::unique_ptr<stockpile::catalogue::SourceDirectory> StartDirectory(
    const CatalogueConfig& c, stockpile::catalogue::CatalogueCore* core,
    std::shared_ptr<stockpile::etcd::EtcdClient> etcd) {
  std::unique_ptr<stockpile::catalogue::SourceDirectory> dir;
  if (etcd) {
    dir = std::make_unique<stockpile::catalogue::EtcdSourceDirectory>(core, etcd, c.etcd_prefix);
  } else {
    dir = std::make_unique<stockpile::catalogue::StaticSourceDirectory>(core, c.static_sources);
  }
  dir->Start();
  return dir;
}

// The catalogue registers itself too (level "catalogue"), so dashboards and tools find it.
std::unique_ptr<stockpile::etcd::Registration> Register(
    const CatalogueConfig& c, std::shared_ptr<stockpile::etcd::EtcdClient> etcd,
    const std::string& id, int port, int metrics_port) {
  if (!etcd) return nullptr;
  stockpile::etcd::InstanceInfo info;
  info.id = id;
  info.level = "catalogue";
  info.address = c.advertise.empty() ? absl::StrCat(HostOf(c.listen), ":", port) : c.advertise;
  if (metrics_port > 0) {
    info.metrics_address = absl::StrCat(HostOf(c.metrics_listen), ":", metrics_port);
  }
  stockpile::etcd::RegistrationOptions options;
  options.key_prefix = c.etcd_prefix;
  options.ttl_seconds = c.etcd_ttl_seconds;
  auto registration = std::make_unique<stockpile::etcd::Registration>(etcd, info, options);
  registration->Start();
  return registration;
}

}  // namespace

int main(int argc, char** argv) {
  auto config = stockpile::catalogue::ParseCatalogueConfig(argc, argv);
  if (!config.ok()) {
    if (absl::IsCancelled(config.status())) {
      std::cout << config.status().message();
      return 0;
    }
    return Fail("bad configuration", config.status());
  }
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto reference = stockpile::common::ReferenceData::Load(config->reference_data);
  if (!reference.ok()) return Fail("cannot load reference data", reference.status());
  stockpile::catalogue::CatalogueCore::Options options;
  options.sync_writes = config->sync_writes;
  options.stream.max_batch = config->max_batch;
  options.search = stockpile::catalogue::NewStockIndexSearch(int((*reference)->items().size()));
  auto core = stockpile::catalogue::CatalogueCore::Open(
      config->db, reference->get(), stockpile::common::SystemClock::Get(), std::move(options));
  if (!core.ok()) return Fail("cannot open the catalogue", core.status());

  std::unique_ptr<stockpile::metrics::MetricsServer> metrics;
  if (!config->metrics_listen.empty()) {
    auto started = stockpile::metrics::MetricsServer::Start(
        config->metrics_listen, {"stockpile-catalogue", STOCKPILE_VERSION, STOCKPILE_COMMIT, {}});
    if (!started.ok()) return Fail("cannot serve metrics", started.status());
    metrics = std::move(*started);
    metrics->AddCollectable(stockpile::catalogue::MakeReplicationCollectable(core->get()));
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  stockpile::catalogue::CatalogueServiceImpl service(core->get());
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config->listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  if (metrics) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(stockpile::metrics::MakeGrpcServerMetricsFactory(metrics->registry()));
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) return Fail("cannot listen", absl::UnavailableError(config->listen));
  server->GetHealthCheckService()->SetServingStatus("stockpile.v1.CatalogueService", true);

  std::shared_ptr<stockpile::etcd::EtcdClient> etcd;
  if (!config->etcd_endpoints.empty()) {
    auto client = stockpile::etcd::EtcdClient::Create(absl::StrJoin(config->etcd_endpoints, ","));
    if (!client.ok()) return Fail("bad --etcd-endpoints", client.status());
    etcd = std::move(*client);
  }
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  const std::string id = config->instance_id.empty()
                             ? absl::StrCat("catalogue-", host, "-", port)
                             : config->instance_id;
  auto directory = StartDirectory(*config, core->get(), etcd);
  auto registration = Register(*config, etcd, id, port, metrics ? metrics->port() : 0);

  if (!config->port_file.empty()) std::ofstream(config->port_file) << port << "\n";
  std::cout << "stockpile-catalogue listening on " << HostOf(config->listen) << ":" << port
            << " (" << (*core)->view().warehouse_count() << " warehouses loaded";
  if (metrics) std::cout << ", metrics on port " << metrics->port();
  std::cout << ")" << std::endl;

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cout << "stockpile-catalogue: signal " << sig << ", draining" << std::endl;
  directory->Stop();
  if (registration) registration->Stop();
  server->GetHealthCheckService()->Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server->Wait();
  core->reset();
  std::cout << "stockpile-catalogue: stopped" << std::endl;
  return 0;
}
