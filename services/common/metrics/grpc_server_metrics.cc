#include "services/common/metrics/grpc_server_metrics.h"

#include <grpcpp/server_context.h>

#include <atomic>
#include <chrono>

#include "absl/strings/strip.h"
#include "services/common/status_util.h"

namespace stockpile::metrics {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

// 0.1 ms .. 10 s: loopback RPCs take ~0.1 ms, a synced RocksDB write ~1-3 ms, a saga step more.
prometheus::Histogram::BucketBoundaries HandlingBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

GrpcServerMetrics::RpcType TypeOf(ServerRpcInfo::Type type) {
  switch (type) {
    case ServerRpcInfo::Type::UNARY:
      return GrpcServerMetrics::RpcType::kUnary;
    case ServerRpcInfo::Type::CLIENT_STREAMING:
      return GrpcServerMetrics::RpcType::kClientStream;
    case ServerRpcInfo::Type::SERVER_STREAMING:
      return GrpcServerMetrics::RpcType::kServerStream;
    case ServerRpcInfo::Type::BIDI_STREAMING:
      return GrpcServerMetrics::RpcType::kBidiStream;
  }
  return GrpcServerMetrics::RpcType::kUnary;
}

// Splits "/package.Service/Method" into its two names; anything else is "unknown".
std::pair<std::string, std::string> SplitMethod(absl::string_view full_method) {
  absl::ConsumePrefix(&full_method, "/");
  const size_t slash = full_method.rfind('/');
  if (slash == absl::string_view::npos || slash == 0 || slash + 1 == full_method.size()) {
    return {"unknown", "unknown"};
  }
  return {std::string(full_method.substr(0, slash)), std::string(full_method.substr(slash + 1))};
}

// One per RPC (gRPC creates it through the factory when the call starts and deletes it when
// the call ends): counts the start, the messages, and the status with the time it took.
class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(GrpcServerMetrics::Method& method, grpc::ServerContextBase* context)
      : method_(method), context_(context), start_(std::chrono::steady_clock::now()) {
    method_.Started();
  }

  // Safety net: a call must never be left out of handled_total (started and handled agree).
  ~MetricsInterceptor() override { Finish(grpc::StatusCode::CANCELLED); }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() != nullptr) {  // nullptr: the client half-closed, no message
      method_.MessageReceived();
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_SEND_MESSAGE) &&
        methods->GetSendMessageStatus()) {
      method_.MessageSent();
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::StatusCode code = methods->GetSendStatus().error_code();
      if (DeadlinePassed()) {
        Finish(grpc::StatusCode::DEADLINE_EXCEEDED);  // the client stopped waiting
      } else if (code != grpc::StatusCode::OK && CancelledCallbackCall()) {
        Finish(grpc::StatusCode::CANCELLED);
      } else {
        Finish(code);
      }
    }
    // The call closed before a status was sent: the client cancelled or the deadline passed.
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_CLOSE)) {
      Finish(ClosedCode());
    }
    methods->Proceed();
  }

 private:
  // A callback handler told of a cancellation (OnCancel) sends a status nobody receives (the
  // health service's Watch sends UNKNOWN): count the call as the client saw it. Only asked for
  // failed calls, and only of callback contexts, where IsCancelled() is always safe and cheap
  // (with the async API it is not safe before AsyncNotifyWhenDone).
  bool CancelledCallbackCall() const {
    return dynamic_cast<grpc::CallbackServerContext*>(context_) != nullptr &&
           context_->IsCancelled();
  }

  bool DeadlinePassed() const {
    return context_ != nullptr && context_->deadline() < std::chrono::system_clock::now();
  }

  grpc::StatusCode ClosedCode() const {
    return DeadlinePassed() ? grpc::StatusCode::DEADLINE_EXCEEDED : grpc::StatusCode::CANCELLED;
  }

  // Records the call's outcome once; the close hook may race with the handler's status.
  void Finish(grpc::StatusCode code) {
    if (handled_.exchange(true, std::memory_order_relaxed)) return;
    method_.Handled(
        code, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

  GrpcServerMetrics::Method& method_;
  grpc::ServerContextBase* const context_;
  const std::chrono::steady_clock::time_point start_;
  std::atomic<bool> handled_{false};
};

class MetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(prometheus::Registry& registry) : metrics_(registry) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(ServerRpcInfo* info) override {
    const char* method = info->method();
    return metrics_.NewInterceptor(method != nullptr ? method : "", TypeOf(info->type()),
                                   info->server_context());
  }

 private:
  GrpcServerMetrics metrics_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeGrpcServerMetricsFactory(
    prometheus::Registry& registry) {
  return std::make_unique<MetricsInterceptorFactory>(registry);
}

GrpcServerMetrics::GrpcServerMetrics(prometheus::Registry& registry)
    : started_(prometheus::BuildCounter()
                   .Name("grpc_server_started_total")
                   .Help("RPCs started on the server.")
                   .Register(registry)),
      handled_(prometheus::BuildCounter()
                   .Name("grpc_server_handled_total")
                   .Help("RPCs completed on the server, by gRPC status code.")
                   .Register(registry)),
      handling_seconds_(prometheus::BuildHistogram()
                            .Name("grpc_server_handling_seconds")
                            .Help("Time from the start of an RPC to its status being sent.")
                            .Register(registry)),
      msg_received_(prometheus::BuildCounter()
                        .Name("grpc_server_msg_received_total")
                        .Help("Messages received from clients.")
                        .Register(registry)),
      msg_sent_(prometheus::BuildCounter()
                    .Name("grpc_server_msg_sent_total")
                    .Help("Messages sent to clients.")
                    .Register(registry)) {}

grpc::experimental::Interceptor* GrpcServerMetrics::NewInterceptor(
    absl::string_view full_method, RpcType type, grpc::ServerContextBase* context) {
  return new MetricsInterceptor(ForMethod(full_method, type), context);
}

GrpcServerMetrics::Method& GrpcServerMetrics::ForMethod(absl::string_view full_method,
                                                        RpcType type) {
  {
    absl::ReaderMutexLock lock(&mutex_);
    auto it = methods_.find(full_method);
    if (it != methods_.end()) return *it->second;
  }
  absl::MutexLock lock(&mutex_);
  return Create(full_method, type);
}

GrpcServerMetrics::Method& GrpcServerMetrics::Create(absl::string_view full_method, RpcType type) {
  auto it = methods_.find(full_method);  // another thread may have created it meanwhile
  if (it != methods_.end()) return *it->second;
  if (methods_.size() >= kMaxMethods) {
    if (overflow_ == nullptr) {
      overflow_ = std::make_unique<Method>(
          *this, prometheus::Labels{{"grpc_service", "unknown"},
                                    {"grpc_method", "unknown"},
                                    {"grpc_type", TypeName(RpcType::kUnary)}});
    }
    return *overflow_;
  }
  auto [service, method] = SplitMethod(full_method);
  auto created =
      std::make_unique<Method>(*this, prometheus::Labels{{"grpc_service", std::move(service)},
                                                         {"grpc_method", std::move(method)},
                                                         {"grpc_type", TypeName(type)}});
  Method& result = *created;
  methods_.emplace(std::string(full_method), std::move(created));
  return result;
}

GrpcServerMetrics::Method::Method(GrpcServerMetrics& owner, const prometheus::Labels& labels)
    : handled_family_(&owner.handled_),
      handling_family_(&owner.handling_seconds_),
      labels_(labels),
      started_(&owner.started_.Add(labels)),
      msg_received_(&owner.msg_received_.Add(labels)),
      msg_sent_(&owner.msg_sent_.Add(labels)) {}

void GrpcServerMetrics::Method::Handled(grpc::StatusCode code, double seconds) {
  const size_t index = CodeIndex(code);
  Slot(handled_[index], *handled_family_, index).Increment();
  Slot(handling_seconds_[index], *handling_family_, index, HandlingBuckets()).Observe(seconds);
}

size_t GrpcServerMetrics::Method::CodeIndex(grpc::StatusCode code) {
  const size_t index = static_cast<size_t>(code);
  return index < kCodes ? index : static_cast<size_t>(grpc::StatusCode::UNKNOWN);
}

// Family::Add is thread-safe and returns the existing child for equal labels, so two threads
// filling the same slot store the same pointer.
template <typename Metric, typename... Args>
Metric& GrpcServerMetrics::Method::Slot(std::atomic<Metric*>& slot,
                                        prometheus::Family<Metric>& family, size_t code_index,
                                        Args&&... args) const {
  Metric* metric = slot.load(std::memory_order_acquire);
  if (metric != nullptr) return *metric;
  prometheus::Labels labels = labels_;
  labels.emplace("grpc_code", common::StatusCodeName(static_cast<grpc::StatusCode>(code_index)));
  metric = &family.Add(labels, std::forward<Args>(args)...);
  slot.store(metric, std::memory_order_release);
  return *metric;
}

const char* GrpcServerMetrics::TypeName(RpcType type) {
  switch (type) {
    case RpcType::kUnary:
      return "unary";
    case RpcType::kClientStream:
      return "client_stream";
    case RpcType::kServerStream:
      return "server_stream";
    case RpcType::kBidiStream:
      return "bidi_stream";
  }
  return "unary";
}

}  // namespace stockpile::metrics
