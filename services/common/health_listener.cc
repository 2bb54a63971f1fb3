#include "services/common/health_listener.h"

#include <grpcpp/health_check_service_interface.h>

#include "services/common/server_process.h"

namespace stockpile::common {

std::unique_ptr<HealthOnlyListener> HealthOnlyListener::Start(
    const std::string& listen, const std::vector<std::string>& services, int* bound_port) {
  std::unique_ptr<HealthOnlyListener> listener(new HealthOnlyListener());
  grpc::ServerBuilder builder;
  ListenExclusively(builder);
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&listener->health_);
  listener->threads_ = std::make_unique<AsyncServerThreads>(builder, 1);
  // gRPC's own health service would be added beside ours when a process has switched it on.
  const bool default_health = grpc::DefaultHealthCheckServiceEnabled();
  grpc::EnableDefaultHealthCheckService(false);
  listener->server_ = builder.BuildAndStart();
  grpc::EnableDefaultHealthCheckService(default_health);
  if (bound_port != nullptr) *bound_port = listener->server_ ? port : 0;
  if (!listener->server_ || port == 0) return nullptr;
  for (const std::string& service : services) listener->health_.SetServingStatus(service, true);
  listener->health_.Serve(*listener->threads_);
  listener->threads_->Start();
  return listener;
}

HealthOnlyListener::~HealthOnlyListener() { Shutdown(); }

void HealthOnlyListener::Shutdown() {
  if (!server_) return;
  health_.Shutdown();
  server_->Shutdown(std::chrono::system_clock::now());  // Watch streams end now
  threads_->Stop();
  server_->Wait();
  server_.reset();
}

}  // namespace stockpile::common
