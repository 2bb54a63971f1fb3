#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

namespace stockpile::common {

// A second, plaintext gRPC listener that serves grpc.health.v1 only, for probes that cannot
// speak TLS or send tokens (Kubernetes' gRPC probes). It carries no stock-changing capability:
// no other service is registered on it. `services` are reported SERVING until Shutdown().
// Returns nullptr (and the bound port 0) when it cannot listen.
std::unique_ptr<grpc::Server> ServeHealthOnly(const std::string& listen,
                                              const std::vector<std::string>& services,
                                              int* bound_port = nullptr);

}  // namespace stockpile::common
