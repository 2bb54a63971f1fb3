// Cost of the gRPC metrics interceptor. Run: <build>/bin/metrics_bench
//   BM_InterceptorWorkPerRpc: everything the interceptor does for one unary call (method
//     lookup, started, received, sent, handled + histogram), without a server.
//   BM_InterceptorPerUnaryRpc: the interceptor object as gRPC drives it for one unary call
//     (create, the five hook batches of a unary call, delete), with a fake batch.
//   BM_HealthCheckRpc/0 and /1: a real loopback unary call without and with the interceptor.
#include <benchmark/benchmark.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/support/interceptor.h>

#include <map>
#include <memory>
#include <string>

#include "grpc/health/v1/health.grpc.pb.h"
#include "prometheus/registry.h"
#include "services/common/metrics/grpc_server_metrics.h"

namespace stockpile::metrics {
namespace {

void BM_InterceptorWorkPerRpc(benchmark::State& state) {
  static prometheus::Registry registry;
  static GrpcServerMetrics metrics(registry);
  const std::string method = "/stockpile.v1.LevelService/GetWarehouse";
  for (auto _ : state) {
    GrpcServerMetrics::Method& series =
        metrics.ForMethod(method, GrpcServerMetrics::RpcType::kUnary);
    series.Started();
    series.MessageReceived();
    series.MessageSent();
    series.Handled(grpc::StatusCode::OK, 0.0004);
  }
}
BENCHMARK(BM_InterceptorWorkPerRpc);
BENCHMARK(BM_InterceptorWorkPerRpc)->Threads(2);

using grpc::experimental::InterceptionHookPoints;

// One batch of hook points, answering only what the metrics interceptor asks.
class FakeBatch : public grpc::experimental::InterceptorBatchMethods {
 public:
  explicit FakeBatch(InterceptionHookPoints point) : point_(point) {}
  bool QueryInterceptionHookPoint(InterceptionHookPoints type) override { return type == point_; }
  void Proceed() override {}
  void Hijack() override {}
  grpc::ByteBuffer* GetSerializedSendMessage() override { return nullptr; }
  const void* GetSendMessage() override { return nullptr; }
  void ModifySendMessage(const void*) override {}
  bool GetSendMessageStatus() override { return true; }
  std::multimap<std::string, std::string>* GetSendInitialMetadata() override { return nullptr; }
  grpc::Status GetSendStatus() override { return grpc::Status::OK; }
  void ModifySendStatus(const grpc::Status&) override {}
  std::multimap<std::string, std::string>* GetSendTrailingMetadata() override { return nullptr; }
  void* GetRecvMessage() override { return this; }
  std::multimap<grpc::string_ref, grpc::string_ref>* GetRecvInitialMetadata() override {
    return nullptr;
  }
  grpc::Status* GetRecvStatus() override { return nullptr; }
  std::multimap<grpc::string_ref, grpc::string_ref>* GetRecvTrailingMetadata() override {
    return nullptr;
  }
  std::unique_ptr<grpc::ChannelInterface> GetInterceptedChannel() override { return nullptr; }
  void FailHijackedRecvMessage() override {}
  void FailHijackedSendMessage() override {}

 private:
  InterceptionHookPoints point_;
};

void BM_InterceptorPerUnaryRpc(benchmark::State& state) {
  static prometheus::Registry registry;
  static GrpcServerMetrics metrics(registry);
  grpc::ServerContext context;  // no deadline
  FakeBatch batches[] = {FakeBatch(InterceptionHookPoints::POST_RECV_INITIAL_METADATA),
                         FakeBatch(InterceptionHookPoints::POST_RECV_MESSAGE),
                         FakeBatch(InterceptionHookPoints::PRE_SEND_STATUS),
                         FakeBatch(InterceptionHookPoints::POST_SEND_MESSAGE),
                         FakeBatch(InterceptionHookPoints::POST_RECV_CLOSE)};
  for (auto _ : state) {
    std::unique_ptr<grpc::experimental::Interceptor> interceptor(metrics.NewInterceptor(
        "/stockpile.v1.LevelService/GetWarehouse", GrpcServerMetrics::RpcType::kUnary, &context));
    for (FakeBatch& batch : batches) interceptor->Intercept(&batch);
  }
}
BENCHMARK(BM_InterceptorPerUnaryRpc);
BENCHMARK(BM_InterceptorPerUnaryRpc)->Threads(2);

void BM_HealthCheckRpc(benchmark::State& state) {
  prometheus::Registry registry;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  // A server needs one service of its own before the built-in health service is added.
  grpc::CallbackGenericService unimplemented;
  builder.RegisterCallbackGenericService(&unimplemented);
  if (state.range(0) == 1) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(MakeGrpcServerMetricsFactory(registry));
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    state.SkipWithError("server did not start");
    return;
  }
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  for (auto _ : state) {
    grpc::ClientContext context;
    if (!stub->Check(&context, request, &response).ok()) state.SkipWithError("Check failed");
  }
  server->Shutdown();
}
BENCHMARK(BM_HealthCheckRpc)->Arg(0)->Arg(1)->MinTime(2.0)->UseRealTime();

}  // namespace
}  // namespace stockpile::metrics
