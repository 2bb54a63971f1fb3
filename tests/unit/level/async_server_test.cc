// services/common/async_server.h and async_health.h with a real in-process server on loopback.
#include "services/common/async_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "services/common/async_health.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::common {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using ::stockpile::testing::IsOk;

std::unique_ptr<grpc::ClientContext> Deadline(int seconds = 10) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return ctx;
}

// A server with `service` on one queue thread; Stop() shuts it down the way the mains do.
class TestServer {
 public:
  explicit TestServer(grpc::Service* service) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service);
    threads_ = std::make_unique<AsyncServerThreads>(builder, 1);
    server_ = builder.BuildAndStart();
  }
  ~TestServer() { Stop(); }
  void Start() { threads_->Start(); }
  void Stop(std::chrono::seconds grace = std::chrono::seconds(5)) {
    if (!server_) return;
    server_->Shutdown(std::chrono::system_clock::now() + grace);
    threads_->Stop();
    server_->Wait();
    server_.reset();
  }
  AsyncServerThreads& threads() { return *threads_; }
  std::unique_ptr<Health::Stub> Stub() const {
    return Health::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                               grpc::InsecureChannelCredentials()));
  }

 private:
  int port_ = 0;
  std::unique_ptr<AsyncServerThreads> threads_;
  std::unique_ptr<grpc::Server> server_;
};

HealthCheckResponse::ServingStatus CheckStatus(Health::Stub& stub, const std::string& service,
                                               grpc::StatusCode* code = nullptr) {
  HealthCheckRequest req;
  req.set_service(service);
  HealthCheckResponse resp;
  grpc::Status s = stub.Check(Deadline().get(), req, &resp);
  if (code != nullptr) *code = s.error_code();
  return s.ok() ? resp.status() : HealthCheckResponse::UNKNOWN;
}

TEST(AsyncHealthTest, CheckKnowsItsServicesAndShutsDownForGood) {
  AsyncHealth health;
  TestServer server(&health);
  health.Serve(server.threads());
  server.Start();
  auto stub = server.Stub();
  EXPECT_EQ(CheckStatus(*stub, ""), HealthCheckResponse::SERVING);
  grpc::StatusCode code = grpc::StatusCode::OK;
  CheckStatus(*stub, "stockpile.v1.LevelService", &code);
  EXPECT_EQ(code, grpc::StatusCode::NOT_FOUND);

  health.SetServingStatus("stockpile.v1.LevelService", true);
  EXPECT_EQ(CheckStatus(*stub, "stockpile.v1.LevelService"), HealthCheckResponse::SERVING);
  health.SetServingStatus("stockpile.v1.LevelService", false);
  EXPECT_EQ(CheckStatus(*stub, "stockpile.v1.LevelService"), HealthCheckResponse::NOT_SERVING);

  health.SetServingStatus("stockpile.v1.LevelService", true);
  health.Shutdown();
  health.SetServingStatus("stockpile.v1.LevelService", true);  // too late: stays down
  EXPECT_EQ(CheckStatus(*stub, ""), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(CheckStatus(*stub, "stockpile.v1.LevelService"), HealthCheckResponse::NOT_SERVING);
}

TEST(AsyncHealthTest, WatchSendsTheStatusThenEachChangeUntilTheServerStops) {
  AsyncHealth health;
  TestServer server(&health);
  health.Serve(server.threads());
  server.Start();
  auto stub = server.Stub();
  grpc::ClientContext ctx;
  HealthCheckRequest req;
  req.set_service("svc");
  auto stream = stub->Watch(&ctx, req);
  HealthCheckResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::SERVICE_UNKNOWN);
  health.SetServingStatus("svc", true);
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::SERVING);
  health.SetServingStatus("svc", true);  // no change, nothing sent
  health.SetServingStatus("svc", false);
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::NOT_SERVING);
  health.Shutdown();
  server.Stop(std::chrono::seconds(0));  // the open stream is ended, not waited for
  EXPECT_FALSE(stream->Read(&resp));
}

// The mains stop a server with Shutdown then AsyncServerThreads::Stop. A call still being
// worked on when the shutdown's grace ends (a mutation waiting for its fsync) is answered
// later by another thread; the queues must stay open until it is (an answer started on a
// closed queue aborts the process).
TEST(AsyncServerThreadsTest, StopWaitsUntilEveryCallInProgressIsAnswered) {
  Health::AsyncService service;
  TestServer server(&service);
  std::promise<UnaryCall*> arrived;
  using Check = AsyncUnary<Health::AsyncService, HealthCheckRequest, HealthCheckResponse>;
  Check::Handler later = [&](UnaryCall* call, const HealthCheckRequest&,
                             HealthCheckResponse* resp) {
    resp->set_status(HealthCheckResponse::SERVING);
    arrived.set_value(call);  // answered by the test thread, like the core's answering thread
  };
  for (auto* cq : server.threads().queues()) {
    Check::Await(&service, &Health::AsyncService::RequestCheck, &later, cq, &server.threads());
  }
  server.Start();
  auto stub = server.Stub();
  auto answer = std::async(std::launch::async, [&] {
    HealthCheckResponse resp;
    return std::make_pair(stub->Check(Deadline().get(), HealthCheckRequest(), &resp),
                          resp.status());
  });
  UnaryCall* call = arrived.get_future().get();
  std::atomic<bool> finished{false};
  std::thread answering([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    finished = true;
    call->Finish(grpc::Status::OK);
  });
  server.Stop(std::chrono::seconds(0));  // the call is cancelled at once, not answered yet
  EXPECT_TRUE(finished);                 // Stop returned only after the answer was given
  answering.join();
  EXPECT_FALSE(answer.get().first.ok());  // cancelled by the shutdown
}

}  // namespace
}  // namespace stockpile::common
