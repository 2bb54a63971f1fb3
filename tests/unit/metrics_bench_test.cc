// Cost of the gRPC metrics interceptor. Run: <build>/bin/metrics_bench
//   BM_InterceptorWorkPerRpc: everything the interceptor does for one unary call (method
//     lookup, started, received, sent, handled + histogram), without a server.
//   BM_HealthCheckRpc/0 and /1: a real loopback unary call without and with the interceptor.
#include <benchmark/benchmark.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

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
