// stockpile-level: wiring only. flags -> reference data -> ledger core -> gRPC server -> drain.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/common/validation.h"
#include "services/level/config.h"
#include "services/level/level_core.h"
#include "services/level/level_service.h"

#ifndef STOCKPILE_VERSION
#define STOCKPILE_VERSION "dev"
#endif

namespace {

using stockpile::level::LevelConfig;

int Fail(absl::string_view what, const absl::Status& s) {
  std::cerr << "stockpile-level: " << what << ": " << s.message() << std::endl;
  return 2;
}

std::string DefaultInstanceId(const LevelConfig& c, int port) {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  return absl::StrCat(stockpile::common::LevelName(c.level), "-", host, "-", port);
}

}  // namespace

int main(int argc, char** argv) {
  auto config = stockpile::level::ParseLevelConfig(argc, argv);
  if (!config.ok()) {
    if (absl::IsCancelled(config.status())) {
      std::cout << config.status().message();
      return 0;
    }
    return Fail("bad configuration", config.status());
  }
  // Block the stop signals before any thread starts; one thread waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  stockpile::common::ReferenceData::Options ref_options;
  ref_options.fine_region_prefixes = config->regions;
  auto reference = stockpile::common::ReferenceData::Load(config->reference_data, ref_options);
  if (!reference.ok()) return Fail("cannot load reference data", reference.status());

  stockpile::level::LevelCore::Options core_options;
  core_options.hold_sweep_interval_ms = config->hold_sweep_interval_ms;
  core_options.max_group_commands = static_cast<size_t>(config->max_group_commands);
  auto core = stockpile::level::LevelCore::Open(
      config->db, reference->get(), stockpile::level::Hosting(config->level, config->regions),
      stockpile::common::SystemClock::Get(), core_options);
  if (!core.ok()) return Fail("cannot open the ledger", core.status());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  stockpile::level::InstanceIdentity identity{config->instance_id, STOCKPILE_VERSION};
  stockpile::level::LevelServiceImpl service(core->get(), identity);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config->listen, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(16 << 20);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    return Fail("cannot listen", absl::UnavailableError(config->listen));
  }
  const std::string instance_id =
      config->instance_id.empty() ? DefaultInstanceId(*config, port) : config->instance_id;
  service.SetInstanceId(instance_id);
  server->GetHealthCheckService()->SetServingStatus("stockpile.v1.LevelService", true);
  if (!config->port_file.empty()) std::ofstream(config->port_file) << port << "\n";
  const std::string host = config->listen.substr(0, config->listen.rfind(':'));
  std::cout << "stockpile-level listening on " << host << ":" << port << " (level "
            << stockpile::common::LevelName(config->level) << ", regions "
            << absl::StrJoin(config->regions, ",") << ", "
            << (*core)->last_sequence() << " changes)" << std::endl;

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cout << "stockpile-level: signal " << sig << ", draining" << std::endl;
  server->GetHealthCheckService()->Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server->Wait();
  core->reset();
  std::cout << "stockpile-level: stopped" << std::endl;
  return 0;
}
