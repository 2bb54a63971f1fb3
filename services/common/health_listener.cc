#include "services/common/health_listener.h"

#include "services/common/server_process.h"

namespace stockpile::common {

std::unique_ptr<grpc::Server> ServeHealthOnly(const std::string& listen,
                                              const std::vector<std::string>& services,
                                              int* bound_port) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  ListenExclusively(builder);
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (bound_port != nullptr) *bound_port = server ? port : 0;
  if (!server || port == 0) return nullptr;
  for (const std::string& service : services) {
    server->GetHealthCheckService()->SetServingStatus(service, true);
  }
  return server;
}

}  // namespace stockpile::common
