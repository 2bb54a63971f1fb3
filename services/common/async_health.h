#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>

#include "grpc/health/v1/health.grpc.pb.h"
#include "services/common/async_server.h"

namespace stockpile::common {

// grpc.health.v1 (Check and Watch) on the async API, with the behaviour of gRPC's default
// health service: "" and every service set here are known, an unknown service is NOT_FOUND
// to Check and SERVICE_UNKNOWN to Watch, and after Shutdown everything is NOT_SERVING for good.
// (gRPC's own health service runs on the callback API; see async_server.h for why not here.)
class AsyncHealth final : public grpc::health::v1::Health::AsyncService {
 public:
  AsyncHealth();

  void SetServingStatus(const std::string& service, bool serving);
  void Shutdown();
  // Awaits Check and Watch calls on every queue of `threads`.
  void Serve(AsyncServerThreads& threads);

 private:
  using Response = grpc::health::v1::HealthCheckResponse;
  using Request = grpc::health::v1::HealthCheckRequest;
  class WatchCall;

  Response::ServingStatus StatusOf(const std::string& service) const;
  void Check(UnaryCall* call, const Request& request, Response* response) const;
  void PokeWatchers();

  mutable std::mutex status_mu_;  // a leaf lock: nothing else is taken while it is held
  std::map<std::string, Response::ServingStatus> statuses_;
  bool shut_down_ = false;
  std::mutex watchers_mu_;
  std::set<WatchCall*> watchers_;
  AsyncUnary<AsyncHealth, Request, Response>::Handler check_;
};

}  // namespace stockpile::common
