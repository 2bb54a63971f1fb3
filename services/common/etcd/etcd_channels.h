#pragma once

// Internal to services/common/etcd: the gRPC channels and stubs behind EtcdClient, shared with
// Watcher. Kept out of etcd_client.h so users do not compile the generated gRPC headers.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "etcd/etcd_rpc.grpc.pb.h"
#include "services/common/etcd/etcd_client.h"

namespace stockpile::etcd {

struct Endpoint {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch;
};

struct EtcdClient::Impl {
  std::vector<std::string> addresses;
  std::vector<Endpoint> endpoints;
  absl::Duration call_timeout;
  // The endpoint that answered last; calls start there.
  std::atomic<size_t> preferred{0};

  // Runs `call` against each endpoint in turn (starting at the preferred one) until one does not
  // answer UNAVAILABLE. All attempts share one deadline of `call_timeout`.
  absl::Status Call(const std::function<grpc::Status(Endpoint&, grpc::ClientContext&)>& call);

  // The endpoint to open a long-lived stream on (the preferred one); `rotate` moves on to the next.
  Endpoint& StreamEndpoint(bool rotate);

  // Keeps gRPC's I/O polled (see StartPoller in etcd_client.cc); joined by the destructor.
  void StartPoller();
  ~Impl();
  std::atomic<bool> stop_poller{false};
  std::thread poller;
};

absl::Status FromGrpc(const grpc::Status& status, absl::string_view what);

}  // namespace stockpile::etcd
