#pragma once

#include <grpcpp/support/server_interceptor.h>
#include <grpcpp/support/status.h>

#include <array>
#include <atomic>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace stockpile::metrics {

// Server-side RPC metrics, named and labelled like go-grpc-prometheus so standard dashboards
// and alerts work, with gRPC's own code names (OK, INVALID_ARGUMENT, NOT_FOUND, ...):
//   grpc_server_started_total{grpc_service,grpc_method,grpc_type}
//   grpc_server_handled_total{grpc_service,grpc_method,grpc_type,grpc_code}
//   grpc_server_handling_seconds{grpc_service,grpc_method,grpc_type,grpc_code} (histogram,
//     0.1 ms .. 10 s; by code too, so a slow refusal or a slow success can be told apart)
//   grpc_server_msg_received_total / grpc_server_msg_sent_total{grpc_service,grpc_method,grpc_type}
// grpc_type is unary, client_stream, server_stream or bidi_stream. grpc_code is what the
// client saw: a call closed before its status (client cancelled) counts CANCELLED, and a status
// sent after the deadline counts DEADLINE_EXCEEDED, whatever the handler returns. With the
// callback API a handler's failure after OnCancel also counts CANCELLED; sync/async handlers
// that return an error after a cancellation count with their own code. Every started call is
// handled exactly once. Cost: ~0.2 us CPU per unary call (metrics_bench).
//
// Use (the registry must outlive the server):
//   std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
//   creators.push_back(MakeGrpcServerMetricsFactory(metrics_server->registry()));
//   builder.experimental().SetInterceptorCreators(std::move(creators));
// Works for sync, async and callback services, unary and streaming.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeGrpcServerMetricsFactory(
    prometheus::Registry& registry);

// The series behind the interceptor; public so the hot path can be measured without a server.
class GrpcServerMetrics {
 public:
  enum class RpcType { kUnary, kClientStream, kServerStream, kBidiStream };
  // Distinct methods tracked. gRPC also runs interceptors for names no service implements
  // (type bidi_stream, code UNIMPLEMENTED), so a client can invent names: past this many, calls
  // share {grpc_service="unknown",grpc_method="unknown"} and the page stays bounded.
  static constexpr size_t kMaxMethods = 256;

  // The series of one method, created on its first call and kept for the process's life.
  class Method {
   public:
    Method(GrpcServerMetrics& owner, const prometheus::Labels& labels);
    void Started() { started_->Increment(); }
    void Handled(grpc::StatusCode code, double seconds);
    void MessageReceived() { msg_received_->Increment(); }
    void MessageSent() { msg_sent_->Increment(); }

   private:
    static constexpr size_t kCodes = 17;  // gRPC status codes 0..16
    static size_t CodeIndex(grpc::StatusCode code);
    // The metric of `code_index` in `slot`, added to `family` on first use.
    template <typename Metric, typename... Args>
    Metric& Slot(std::atomic<Metric*>& slot, prometheus::Family<Metric>& family, size_t code_index,
                 Args&&... args) const;

    prometheus::Family<prometheus::Counter>* handled_family_;
    prometheus::Family<prometheus::Histogram>* handling_family_;
    prometheus::Labels labels_;
    prometheus::Counter* started_;
    prometheus::Counter* msg_received_;
    prometheus::Counter* msg_sent_;
    // One slot per gRPC code (0..16), filled on first use; racing fills store the same pointer.
    std::array<std::atomic<prometheus::Counter*>, kCodes> handled_{};
    std::array<std::atomic<prometheus::Histogram*>, kCodes> handling_seconds_{};
  };

  explicit GrpcServerMetrics(prometheus::Registry& registry);

  // `full_method` is "/package.Service/Method" as gRPC reports it.
  Method& ForMethod(absl::string_view full_method, RpcType type);

  // The interceptor of one call (what the factory returns to gRPC; owned by the caller).
  grpc::experimental::Interceptor* NewInterceptor(absl::string_view full_method, RpcType type,
                                                  grpc::ServerContextBase* context);

  static const char* TypeName(RpcType type);

 private:
  Method& Create(absl::string_view full_method, RpcType type) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Histogram>& handling_seconds_;
  prometheus::Family<prometheus::Counter>& msg_received_;
  prometheus::Family<prometheus::Counter>& msg_sent_;

  absl::Mutex mutex_;
  absl::flat_hash_map<std::string, std::unique_ptr<Method>> methods_ ABSL_GUARDED_BY(mutex_);
  std::unique_ptr<Method> overflow_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace stockpile::metrics
