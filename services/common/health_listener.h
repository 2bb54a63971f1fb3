#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "services/common/async_health.h"
#include "services/common/async_server.h"

namespace stockpile::common {

// A second, plaintext gRPC listener that serves grpc.health.v1 only, for probes that cannot
// speak TLS or send tokens (Kubernetes' gRPC probes). It carries no stock-changing capability:
// no other service is registered on it. Its services are reported SERVING until Shutdown().
class HealthOnlyListener {
 public:
  // nullptr (and the bound port 0) when it cannot listen.
  static std::unique_ptr<HealthOnlyListener> Start(const std::string& listen,
                                                   const std::vector<std::string>& services,
                                                   int* bound_port = nullptr);
  ~HealthOnlyListener();

  // Everything NOT_SERVING, open Watch streams ended, the port closed.
  void Shutdown();

 private:
  HealthOnlyListener() = default;

  AsyncHealth health_;
  std::unique_ptr<AsyncServerThreads> threads_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace stockpile::common
