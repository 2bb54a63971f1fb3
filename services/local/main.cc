// stockpile-local: the whole system in one process, for one machine and for demos.
// Five level services (one per level, each hosting all of China) and the catalogue, each on its
// own loopback port, with an in-process registry instead of etcd. Plaintext, no tokens: local
// development only. The catalogue also serves stockpile.v1.TransferService (this process is
// always the transfer leader). Wiring only: reference data -> levels -> catalogue + transfers ->
// wait -> drain.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "services/catalogue/allocation/leader.h"
#include "services/catalogue/allocation/transfer_metrics.h"
#include "services/catalogue/allocation/transfer_service.h"
#include "services/catalogue/catalogue_core.h"
#include "services/catalogue/catalogue_metrics.h"
#include "services/catalogue/catalogue_service.h"
#include "services/catalogue/source_directory.h"
#include "services/catalogue/stock_index_search.h"
#include "services/common/auth/authorizer.h"
#include "services/common/auth/interceptor.h"
#include "services/common/metrics/grpc_server_metrics.h"
#include "services/common/metrics/metrics_server.h"
#include "services/common/server_process.h"
#include "services/common/status_macros.h"
#include "services/common/validation.h"
#include "services/level/level_core.h"
#include "services/level/level_metrics.h"
#include "services/level/level_service.h"

#ifndef STOCKPILE_VERSION
#define STOCKPILE_VERSION "dev"
#endif
#ifndef STOCKPILE_COMMIT
#define STOCKPILE_COMMIT "unknown"
#endif

namespace stockpile::local {
namespace {

using v1::Level;

struct Options {
  std::string data_dir = ".local-data";
  std::string reference_data = common::ReferenceData::DefaultDir();
  std::string host = "127.0.0.1";
  int base_port = 7500;  // level i on base+i (province 7501 ... village 7505), catalogue +10
  int metrics_base_port = 9500;  // likewise; 0: no metrics
};

constexpr Level kLevels[] = {v1::LEVEL_PROVINCE, v1::LEVEL_CITY, v1::LEVEL_COUNTY,
                             v1::LEVEL_TOWNSHIP, v1::LEVEL_VILLAGE};

// One gRPC server with the standard interceptors (metrics, authorization verdicts).
std::unique_ptr<grpc::Server> Serve(grpc::Service* service, const std::string& address,
                                    metrics::MetricsServer* metrics,
                                    std::shared_ptr<auth::Authorizer> authorizer,
                                    grpc::Service* extra_service = nullptr) {
  grpc::ServerBuilder builder;
  common::ListenExclusively(builder);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(16 << 20);
  builder.RegisterService(service);
  if (extra_service) builder.RegisterService(extra_service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  if (metrics) creators.push_back(metrics::MakeGrpcServerMetricsFactory(metrics->registry()));
  creators.push_back(auth::MakeAuthInterceptorFactory(std::move(authorizer)));
  builder.experimental().SetInterceptorCreators(std::move(creators));
  return builder.BuildAndStart();
}

absl::StatusOr<std::unique_ptr<metrics::MetricsServer>> StartMetrics(const Options& o, int offset,
                                                                     std::string service,
                                                                     std::string level) {
  if (o.metrics_base_port == 0) return std::unique_ptr<metrics::MetricsServer>();
  std::map<std::string, std::string> labels;
  if (!level.empty()) labels["level"] = level;
  return metrics::MetricsServer::Start(
      absl::StrCat(o.host, ":", o.metrics_base_port + offset),
      {std::move(service), STOCKPILE_VERSION, STOCKPILE_COMMIT, labels});
}

// A level service of the embedded cluster.
struct LevelInstance {
  Level level;
  std::string address;
  std::unique_ptr<level::LevelCore> core;
  std::unique_ptr<metrics::MetricsServer> metrics;
  std::unique_ptr<level::LevelMetrics> level_metrics;
  std::unique_ptr<level::LevelServiceImpl> service;
  std::unique_ptr<grpc::Server> server;
};

absl::StatusOr<std::unique_ptr<LevelInstance>> StartLevel(
    const Options& o, const common::ReferenceData& reference, Level level,
    const std::vector<std::string>& provinces, std::shared_ptr<auth::Authorizer> authorizer) {
  auto inst = std::make_unique<LevelInstance>();
  inst->level = level;
  const std::string name(common::LevelName(level));
  const int offset = static_cast<int>(level);
  inst->address = absl::StrCat(o.host, ":", o.base_port + offset);
  auto core =
      level::LevelCore::Open(o.data_dir + "/" + name, &reference, level::Hosting(level, provinces),
                             common::SystemClock::Get(), {});
  if (!core.ok()) return core.status();
  inst->core = std::move(*core);
  auto m = StartMetrics(o, offset, "stockpile-level", name);
  if (!m.ok()) return m.status();
  inst->metrics = std::move(*m);
  if (inst->metrics) {
    auto lm = level::LevelMetrics::Register(*inst->metrics, *inst->core);
    if (!lm.ok()) return lm.status();
    inst->level_metrics = std::move(*lm);
  }
  const std::string metrics_address =
      inst->metrics ? absl::StrCat(o.host, ":", inst->metrics->port()) : "";
  inst->service = std::make_unique<level::LevelServiceImpl>(
      inst->core.get(),
      level::InstanceIdentity{"local-" + name, STOCKPILE_VERSION, metrics_address});
  // stockctl backup works here too: checkpoints beside the databases, the newest 8 kept.
  inst->service->SetBackups(o.data_dir + "/backups/" + name, 8);
  if (inst->metrics) {
    RETURN_IF_ERROR(level::RegisterBackupMetrics(*inst->metrics, inst->service->backups()));
  }
  inst->server = Serve(inst->service.get(), inst->address, inst->metrics.get(), authorizer);
  if (!inst->server) return absl::UnavailableError("cannot listen on " + inst->address);
  inst->server->GetHealthCheckService()->SetServingStatus("stockpile.v1.LevelService", true);
  return inst;
}

namespace alloc = catalogue::allocation;

// The transfer machinery over the in-process levels (docs/allocation.md). Members are destroyed
// in reverse: service (joins workers), resume loop, coordinator, gateway, store.
struct Transfers {
  std::unique_ptr<alloc::TransferStore> store;
  std::unique_ptr<alloc::GrpcLevelGateway> gateway;
  std::unique_ptr<alloc::Planner> planner;
  std::unique_ptr<alloc::TransferCoordinator> coordinator;
  alloc::AlwaysLeader leadership;
  std::unique_ptr<alloc::ResumeLoop> loop;
  std::unique_ptr<alloc::TransferServiceImpl> service;
};

absl::StatusOr<std::unique_ptr<Transfers>> StartTransfers(
    const Options& o, const common::ReferenceData* reference, const alloc::StockSnapshot* stock,
    const catalogue::CatalogueCore* catalogue,
    const std::vector<std::unique_ptr<LevelInstance>>& levels) {
  auto t = std::make_unique<Transfers>();
  auto store = alloc::TransferStore::Open(o.data_dir + "/transfers");
  if (!store.ok()) return store.status();
  t->store = std::move(*store);
  std::map<Level, std::string> address;  // every level instance hosts all of China
  for (const auto& l : levels) address[l->level] = l->address;
  t->gateway = std::make_unique<alloc::GrpcLevelGateway>(
      [address](absl::string_view region) -> absl::StatusOr<std::string> {
        auto it = address.find(common::LevelOfRegionCode(region));
        if (it == address.end())
          return absl::UnavailableError(absl::StrCat("no level for ", region));
        return it->second;
      });
  t->planner = std::make_unique<alloc::Planner>(reference);
  alloc::CoordinatorOptions options;
  options.known_warehouse = [catalogue](absl::string_view code) {
    return catalogue->view().HasWarehouse(code);
  };
  t->coordinator = std::make_unique<alloc::TransferCoordinator>(
      t->store.get(), t->gateway.get(), t->planner.get(), stock, common::SystemClock::Get(),
      options);
  t->loop = std::make_unique<alloc::ResumeLoop>(t->coordinator.get(), absl::Seconds(30));
  t->loop->SetLeader(true);
  t->service = std::make_unique<alloc::TransferServiceImpl>(t->coordinator.get(), &t->leadership);
  return t;
}

int Fail(absl::string_view what, const absl::Status& s) {
  std::cerr << "stockpile-local: " << what << ": " << s.message() << std::endl;
  return 2;
}

int Run(const Options& o) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  std::cerr << "stockpile-local: WARNING: plaintext gRPC and no tokens (local development)\n";

  auto reference = common::ReferenceData::Load(o.reference_data);
  if (!reference.ok()) return Fail("cannot load reference data", reference.status());
  std::vector<std::string> provinces;
  for (const auto& r : (*reference)->regions()) {
    if (r.level == v1::LEVEL_PROVINCE) provinces.push_back(r.code);
  }
  std::shared_ptr<auth::Authorizer> authorizer = auth::Authorizer::Disabled();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  std::vector<std::unique_ptr<LevelInstance>> levels;
  std::vector<catalogue::SourceSpec> sources;
  for (Level level : kLevels) {
    auto inst = StartLevel(o, **reference, level, provinces, authorizer);
    if (!inst.ok())
      return Fail(absl::StrCat("cannot start the ", common::LevelName(level), " level"),
                  inst.status());
    sources.push_back(
        {"local-" + std::string(common::LevelName(level)), level, (*inst)->address, provinces});
    levels.push_back(std::move(*inst));
  }

  alloc::StockSnapshot stock(reference->get());  // outlives the core that feeds it
  catalogue::CatalogueCore::Options options;
  options.search = catalogue::NewStockIndexSearch(int((*reference)->items().size()));
  options.snapshot = &stock;
  auto core = catalogue::CatalogueCore::Open(o.data_dir + "/catalogue", reference->get(),
                                             common::SystemClock::Get(), std::move(options));
  if (!core.ok()) return Fail("cannot open the catalogue", core.status());
  auto metrics = StartMetrics(o, 10, "stockpile-catalogue", "");
  if (!metrics.ok()) return Fail("cannot serve metrics", metrics.status());
  if (*metrics) (*metrics)->AddCollectable(catalogue::MakeReplicationCollectable(core->get()));
  auto transfers = StartTransfers(o, reference->get(), &stock, core->get(), levels);
  if (!transfers.ok()) return Fail("cannot open the transfer store", transfers.status());
  if (*metrics) {
    (*metrics)->AddCollectable(alloc::MakeTransferCollectable(
        (*transfers)->store.get(), common::SystemClock::Get(), [] { return true; }));
  }
  catalogue::CatalogueServiceImpl catalogue_service(core->get());
  const std::string catalogue_address = absl::StrCat(o.host, ":", o.base_port + 10);
  auto catalogue_server = Serve(&catalogue_service, catalogue_address, metrics->get(), authorizer,
                                (*transfers)->service.get());
  if (!catalogue_server) return Fail("cannot listen", absl::UnavailableError(catalogue_address));
  catalogue_server->GetHealthCheckService()->SetServingStatus("stockpile.v1.CatalogueService",
                                                              true);
  catalogue::StaticSourceDirectory directory(core->get(), sources);
  directory.Start();

  std::cout << "stockpile-local is running (data in " << o.data_dir << "):\n";
  for (const auto& l : levels) {
    std::cout << "  " << common::LevelName(l->level) << " level service  " << l->address << "\n";
  }
  std::cout << "  catalogue + transfers " << catalogue_address << "\n"
            << "Point stockctl at a level, e.g.\n"
            << "  export STOCKPILE_SERVER=" << levels[2]->address << "   # county level\n"
            << "  stockctl warehouse list --region 4201\n"
            << "Stop with Ctrl-C." << std::endl;

  int sig = 0;
  sigwait(&stop, &sig);
  std::cout << "stockpile-local: signal " << sig << ", stopping" << std::endl;
  directory.Stop();
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(5);
  catalogue_server->Shutdown(deadline);
  metrics->reset();    // its collectables read the transfer store and the catalogue
  transfers->reset();  // before the levels it calls go away
  for (auto& l : levels) l->server->Shutdown(deadline);
  core->reset();
  for (auto& l : levels) {
    l->server.reset();
    l->level_metrics.reset();
    l->core.reset();
  }
  std::cout << "stockpile-local: stopped" << std::endl;
  return 0;
}

}  // namespace
}  // namespace stockpile::local

int main(int argc, char** argv) {
  stockpile::common::PrepareServerProcess();
  stockpile::local::Options o;
  CLI::App app{"stockpile-local: five level services and the catalogue in one process"};
  app.add_option("--data-dir", o.data_dir, "where the six databases live")->capture_default_str();
  app.add_option("--reference-data", o.reference_data, "folder with regions/ and items/");
  app.add_option("--host", o.host, "address to listen on")->capture_default_str();
  app.add_option("--base-port", o.base_port,
                 "levels listen on base+1 (province) .. base+5 (village), the catalogue on base+10")
      ->capture_default_str();
  app.add_option("--metrics-base-port", o.metrics_base_port,
                 "metrics ports, laid out like --base-port (0: none)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  std::error_code ec;
  std::filesystem::create_directories(o.data_dir, ec);
  return stockpile::local::Run(o);
}
