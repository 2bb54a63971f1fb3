// The gRPC server interceptor on a real in-process server: a sync service (unary and
// server-streaming), the built-in health service (callback API, unary and streaming), and
// calls that fail, then the page is scraped and the series compared with the calls made.
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <gtest/gtest.h>

#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "services/common/metrics/grpc_server_metrics.h"
#include "services/common/metrics/metrics_server.h"
#include "services/common/metrics/scrape_client.h"
#include "stockpile/v1/level_service.grpc.pb.h"
#include "tests/testutil/process.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::metrics {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::stockpile::testing::IsOk;
using ::stockpile::testing::StatusIs;
using Labels = std::map<std::string, std::string>;

constexpr char kLevel[] = "stockpile.v1.LevelService";
constexpr char kHealth[] = "grpc.health.v1.Health";

// Sync service: one known warehouse; WatchChanges sends three messages.
class FakeLevelService final : public v1::LevelService::Service {
 public:
  grpc::Status GetWarehouse(grpc::ServerContext*, const v1::GetWarehouseRequest* request,
                            v1::Warehouse* response) override {
    if (request->name() == "warehouses/slow") {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      return grpc::Status::OK;  // too late: the client's deadline has passed
    }
    if (request->name() != "warehouses/4201-W001") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no warehouse " + request->name());
    }
    response->set_name(request->name());
    return grpc::Status::OK;
  }
  grpc::Status WatchChanges(grpc::ServerContext*, const v1::WatchChangesRequest*,
                            grpc::ServerWriter<v1::WatchChangesResponse>* writer) override {
    for (int i = 0; i < 3; ++i) writer->Write(v1::WatchChangesResponse());
    return grpc::Status::OK;
  }
};

class GrpcMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto metrics = MetricsServer::Start("127.0.0.1:0", {"stockpile-level", "t", "t", {}});
    ASSERT_THAT(metrics, IsOk());
    metrics_ = std::move(*metrics);
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&level_service_);
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(MakeGrpcServerMetricsFactory(metrics_->registry()));
    builder.experimental().SetInterceptorCreators(std::move(creators));
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials());
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    server_.reset();  // the interceptors refer to the registry: server goes first
    metrics_.reset();
  }

  std::vector<Sample> Scrape() {
    absl::StatusOr<std::string> page = FetchMetricsPage("127.0.0.1", metrics_->port());
    EXPECT_THAT(page, IsOk());
    auto samples = ParseMetricsPage(page.ok() ? *page : "");
    EXPECT_THAT(samples, IsOk());
    return samples.ok() ? *samples : std::vector<Sample>{};
  }

  // The server counts a call once it has sent the status, which can be a moment after the
  // client has it: scrapes until `calls` calls of service/method are counted (handled_total is
  // counted before the latency histogram, so both are in), or 5 s have passed.
  std::vector<Sample> ScrapeOnceCounted(const char* service, const char* method, double calls) {
    std::vector<Sample> samples;
    stockpile::testing::WaitFor(
        [&] {
          samples = Scrape();
          return SumSamples(samples, "grpc_server_handling_seconds_count", Of(service, method)) >=
                 calls;
        },
        std::chrono::seconds(5));
    return samples;
  }

  static Labels Of(const char* service, const char* method, Labels more = {}) {
    more["grpc_service"] = service;
    more["grpc_method"] = method;
    return more;
  }

  grpc::Status GetWarehouse(const std::string& name) {
    grpc::ClientContext context;
    v1::GetWarehouseRequest request;
    request.set_name(name);
    v1::Warehouse response;
    return v1::LevelService::NewStub(channel_)->GetWarehouse(&context, request, &response);
  }

  grpc::Status HealthCheck(const std::string& service) {
    grpc::ClientContext context;
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    return Health::NewStub(channel_)->Check(&context, request, &response);
  }

  FakeLevelService level_service_;
  std::unique_ptr<MetricsServer> metrics_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(GrpcMetricsTest, SyncUnaryCountsEveryCallByCode) {
  const auto before = Scrape();
  for (int i = 0; i < 3; ++i) EXPECT_THAT(GetWarehouse("warehouses/4201-W001"), IsOk());
  for (int i = 0; i < 2; ++i) {
    EXPECT_THAT(GetWarehouse("warehouses/9999-W9"), StatusIs(absl::StatusCode::kNotFound));
  }
  const auto after = ScrapeOnceCounted(kLevel, "GetWarehouse", 5);
  auto delta = [&](const char* name, const Labels& labels) {
    return SumSamples(after, name, labels) - SumSamples(before, name, labels);
  };
  const Labels unary = Of(kLevel, "GetWarehouse", {{"grpc_type", "unary"}});
  EXPECT_EQ(delta("grpc_server_started_total", unary), 5);
  EXPECT_EQ(delta("grpc_server_handled_total", Of(kLevel, "GetWarehouse", {{"grpc_code", "OK"}})),
            3);
  EXPECT_EQ(
      delta("grpc_server_handled_total", Of(kLevel, "GetWarehouse", {{"grpc_code", "NOT_FOUND"}})),
      2);
  EXPECT_EQ(delta("grpc_server_handling_seconds_count", unary), 5);
  EXPECT_EQ(
      delta("grpc_server_handling_seconds_bucket", Of(kLevel, "GetWarehouse", {{"le", "+Inf"}})),
      5);
  EXPECT_GT(delta("grpc_server_handling_seconds_sum", unary), 0);
  // Latency by code as well: the refusals have their own histogram.
  EXPECT_EQ(delta("grpc_server_handling_seconds_count",
                  Of(kLevel, "GetWarehouse", {{"grpc_code", "OK"}})),
            3);
  EXPECT_EQ(delta("grpc_server_handling_seconds_count",
                  Of(kLevel, "GetWarehouse", {{"grpc_code", "NOT_FOUND"}})),
            2);
  EXPECT_EQ(delta("grpc_server_msg_received_total", unary), 5);
  EXPECT_EQ(delta("grpc_server_msg_sent_total", unary), 3);  // errors send no message
}

TEST_F(GrpcMetricsTest, HandlerPastTheDeadlineCountsAsDeadlineExceeded) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(50));
  v1::GetWarehouseRequest request;
  request.set_name("warehouses/slow");
  v1::Warehouse response;
  EXPECT_THAT(v1::LevelService::NewStub(channel_)->GetWarehouse(&context, request, &response),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  const Labels deadline = Of(kLevel, "GetWarehouse", {{"grpc_code", "DEADLINE_EXCEEDED"}});
  EXPECT_TRUE(stockpile::testing::WaitFor(
      [&] { return SumSamples(Scrape(), "grpc_server_handled_total", deadline) == 1; },
      std::chrono::seconds(5)));
  EXPECT_EQ(SumSamples(Scrape(), "grpc_server_handled_total", Of(kLevel, "GetWarehouse")), 1);
}

TEST_F(GrpcMetricsTest, UnimplementedMethodIsCounted) {
  grpc::ClientContext context;
  v1::ListWarehousesResponse response;
  EXPECT_THAT(v1::LevelService::NewStub(channel_)->ListWarehouses(
                  &context, v1::ListWarehousesRequest(), &response),
              StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_EQ(SumSamples(ScrapeOnceCounted(kLevel, "ListWarehouses", 1), "grpc_server_handled_total",
                       Of(kLevel, "ListWarehouses", {{"grpc_code", "UNIMPLEMENTED"}})),
            1);
}

TEST_F(GrpcMetricsTest, SyncServerStreamCountsMessages) {
  grpc::ClientContext context;
  auto reader =
      v1::LevelService::NewStub(channel_)->WatchChanges(&context, v1::WatchChangesRequest());
  v1::WatchChangesResponse response;
  int received = 0;
  while (reader->Read(&response)) ++received;
  EXPECT_THAT(reader->Finish(), IsOk());
  EXPECT_EQ(received, 3);
  const auto samples = ScrapeOnceCounted(kLevel, "WatchChanges", 1);
  const Labels stream = Of(kLevel, "WatchChanges", {{"grpc_type", "server_stream"}});
  EXPECT_EQ(SumSamples(samples, "grpc_server_started_total", stream), 1);
  EXPECT_EQ(SumSamples(samples, "grpc_server_handled_total",
                       Of(kLevel, "WatchChanges", {{"grpc_code", "OK"}})),
            1);
  EXPECT_EQ(SumSamples(samples, "grpc_server_msg_sent_total", stream), 3);
  EXPECT_EQ(SumSamples(samples, "grpc_server_msg_received_total", stream), 1);
}

TEST_F(GrpcMetricsTest, CallbackUnaryHealthCheckCountsByCode) {
  EXPECT_THAT(HealthCheck(""), IsOk());
  EXPECT_THAT(HealthCheck(""), IsOk());
  EXPECT_THAT(HealthCheck("no.such.Service"), StatusIs(absl::StatusCode::kNotFound));
  const auto samples = ScrapeOnceCounted(kHealth, "Check", 3);
  EXPECT_EQ(SumSamples(samples, "grpc_server_started_total",
                       Of(kHealth, "Check", {{"grpc_type", "unary"}})),
            3);
  EXPECT_EQ(
      SumSamples(samples, "grpc_server_handled_total", Of(kHealth, "Check", {{"grpc_code", "OK"}})),
      2);
  EXPECT_EQ(SumSamples(samples, "grpc_server_handled_total",
                       Of(kHealth, "Check", {{"grpc_code", "NOT_FOUND"}})),
            1);
  EXPECT_EQ(SumSamples(samples, "grpc_server_handling_seconds_count", Of(kHealth, "Check")), 3);
}

TEST_F(GrpcMetricsTest, CallbackStreamCancelledByClientIsHandledOnce) {
  {
    grpc::ClientContext context;
    HealthCheckRequest request;
    auto reader = Health::NewStub(channel_)->Watch(&context, request);
    HealthCheckResponse response;
    ASSERT_TRUE(reader->Read(&response));
    EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
    context.TryCancel();
    EXPECT_THAT(reader->Finish(), StatusIs(absl::StatusCode::kCancelled));
  }
  const Labels watch = Of(kHealth, "Watch", {{"grpc_type", "server_stream"}});
  // The server learns of the cancellation asynchronously.
  std::vector<Sample> samples;
  EXPECT_TRUE(stockpile::testing::WaitFor(
      [&] {
        samples = Scrape();
        return SumSamples(samples, "grpc_server_handled_total", watch) >= 1 &&
               SumSamples(samples, "grpc_server_msg_sent_total", watch) >= 1;
      },
      std::chrono::seconds(10)));
  EXPECT_EQ(SumSamples(samples, "grpc_server_started_total", watch), 1);
  EXPECT_EQ(SumSamples(samples, "grpc_server_handled_total", watch), 1);
  EXPECT_EQ(SumSamples(samples, "grpc_server_handled_total",
                       Of(kHealth, "Watch", {{"grpc_code", "CANCELLED"}})),
            1);
  EXPECT_GE(SumSamples(samples, "grpc_server_msg_sent_total", watch), 1);
}

// gRPC runs interceptors for a method no service implements (as bidi_stream); it is counted under
// the name the client sent, within GrpcServerMetrics::kMaxMethods.
TEST_F(GrpcMetricsTest, UnknownMethodIsCountedAsUnimplemented) {
  grpc::GenericStub stub(channel_);
  grpc::ClientContext context;
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1), response;  // an empty ByteBuffer() is not a message
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/no.such.Service/Nope", grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status status) { done.set_value(status); });
  EXPECT_THAT(done.get_future().get(), StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_THAT(HealthCheck(""), IsOk());
  const auto samples = ScrapeOnceCounted("no.such.Service", "Nope", 1);
  EXPECT_EQ(SumSamples(samples, "grpc_server_handled_total",
                       Of("no.such.Service", "Nope", {{"grpc_code", "UNIMPLEMENTED"}})),
            1);
  EXPECT_EQ(SumSamples(samples, "grpc_server_handled_total", Of(kHealth, "Check")), 1);
}

TEST_F(GrpcMetricsTest, PageAfterTrafficPassesPromtool) {
  EXPECT_THAT(GetWarehouse("warehouses/4201-W001"), IsOk());
  EXPECT_THAT(GetWarehouse("warehouses/x"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(HealthCheck("nope"), StatusIs(absl::StatusCode::kNotFound));
  absl::StatusOr<std::string> page = FetchMetricsPage("127.0.0.1", metrics_->port());
  ASSERT_THAT(page, IsOk());
  std::string output;
  EXPECT_EQ(
      stockpile::testing::RunCommand({"/usr/bin/promtool", "check", "metrics"}, &output, *page), 0)
      << output << "\n"
      << *page;
}

TEST(GrpcServerMetricsTest, TypeNamesAreGrpcSpellings) {
  EXPECT_STREQ(GrpcServerMetrics::TypeName(GrpcServerMetrics::RpcType::kBidiStream), "bidi_stream");
}

TEST(GrpcServerMetricsTest, MethodSeriesAreBoundedAndCached) {
  prometheus::Registry registry;
  GrpcServerMetrics metrics(registry);
  auto& first = metrics.ForMethod("/a.B/C", GrpcServerMetrics::RpcType::kUnary);
  EXPECT_EQ(&first, &metrics.ForMethod("/a.B/C", GrpcServerMetrics::RpcType::kUnary));
  for (size_t i = 0; i < GrpcServerMetrics::kMaxMethods + 50; ++i) {
    metrics.ForMethod("/x.Y/M" + std::to_string(i), GrpcServerMetrics::RpcType::kUnary).Started();
  }
  size_t started_series = 0;
  for (const auto& family : registry.Collect()) {
    if (family.name == "grpc_server_started_total") started_series = family.metric.size();
  }
  EXPECT_EQ(started_series, GrpcServerMetrics::kMaxMethods + 1);  // + the "unknown" overflow
}

}  // namespace
}  // namespace stockpile::metrics
