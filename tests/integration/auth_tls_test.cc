// TLS and authorization over real gRPC: an in-process server on 127.0.0.1:0 with the health
// service and a small LevelService whose handlers enforce the interceptor's verdict, certificates
// made by the openssl command in the test's TempDir.

#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <gtest/gtest.h>

#include <fstream>
#include <future>

#include "absl/strings/str_cat.h"
#include "services/common/auth/authorizer.h"
#include "services/common/auth/interceptor.h"
#include "services/common/auth/rules.h"
#include "services/common/auth/tls.h"
#include "stockpile/v1/level_service.grpc.pb.h"
#include "tests/testutil/pki.h"
#include "tests/testutil/process.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::auth {
namespace {

using ::stockpile::testing::Pki;
using ::stockpile::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

// Two handlers in the service's shape: ask for the verdict first, touch nothing when refused.
class FakeLevelService final : public v1::LevelService::CallbackService {
 public:
  grpc::ServerUnaryReactor* Receive(grpc::CallbackServerContext* ctx, const v1::ReceiveRequest* req,
                                    v1::MovementResult* resp) override {
    auto* reactor = ctx->DefaultReactor();
    absl::StatusOr<Identity> who = CallIdentity(ctx);
    if (!who.ok()) {
      reactor->Finish(grpc::Status(static_cast<grpc::StatusCode>(who.status().code()),
                                   std::string(who.status().message())));
      return reactor;
    }
    applied_.fetch_add(1);
    resp->add_movements()->set_actor(AuditActor(*who, req->actor()));
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  int applied() const { return applied_.load(); }

 private:
  std::atomic<int> applied_{0};
};

constexpr int64_t kNow = 1'700'000'000;
constexpr char kKey[] = "integration-key-integration-key-0123456789";

class AuthTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pki_.MakeCa("ca") && pki_.MakeLeaf("server", "ca", "serverAuth") &&
                pki_.MakeLeaf("client", "ca", "clientAuth") && pki_.MakeCa("other-ca") &&
                pki_.MakeLeaf("stranger", "other-ca", "clientAuth"))
        << pki_.log;
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }

  TlsOptions ServerTls(bool require_client_cert = false) {
    return TlsOptions{{pki_.Path("server.pem"), pki_.Path("server.key"), pki_.Path("ca.pem"),
                       require_client_cert}};
  }
  TlsOptions ClientTls(const std::string& ca, const std::string& leaf = "") {
    TlsOptions options;
    options.files.ca = pki_.Path(ca + ".pem");
    if (!leaf.empty()) {
      options.files.cert = pki_.Path(leaf + ".pem");
      options.files.key = pki_.Path(leaf + ".key");
    }
    return options;
  }

  void StartServer(const TlsOptions& tls, bool with_interceptor = true) {
    auto credentials = ServerCredentials(tls);
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    grpc::EnableDefaultHealthCheckService(true);
    auto authorizer = std::make_shared<Authorizer>(
        TokenVerifier(*TokenKey::FromBytes(kKey), &clock_),
        std::vector<absl::Span<const MethodRule>>{LevelServiceRules(), HealthRules()});
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", *credentials, &port_);
    builder.RegisterService(&service_);
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    if (with_interceptor) creators.push_back(MakeAuthInterceptorFactory(authorizer));
    builder.experimental().SetInterceptorCreators(std::move(creators));
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }

  std::shared_ptr<grpc::Channel> Channel(std::shared_ptr<grpc::ChannelCredentials> credentials) {
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), credentials);
  }
  std::shared_ptr<grpc::Channel> Channel(const TlsOptions& tls) {
    auto credentials = ChannelCredentials(tls);
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    return Channel(*credentials);
  }

  // grpc.health.v1.Health/Check with an empty request, through a generic stub.
  static grpc::Status HealthCheck(const std::shared_ptr<grpc::Channel>& channel) {
    grpc::GenericStub stub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1);
    grpc::ByteBuffer response;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                   [&done](grpc::Status s) { done.set_value(std::move(s)); });
    return done.get_future().get();
  }

  std::string Bearer(Role role, const std::string& scope, int64_t expires = kNow + 3600) {
    Claims claims{"alice", role, scope, kNow - 10, expires};
    return "Bearer " + *SignToken(*TokenKey::FromBytes(kKey), claims);
  }

  grpc::Status Receive(const std::shared_ptr<grpc::Channel>& channel, const std::string& header,
                       const std::string& warehouse, v1::MovementResult* result) {
    auto stub = v1::LevelService::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (!header.empty()) ctx.AddMetadata("authorization", header);
    v1::ReceiveRequest request;
    request.set_request_id("r1");
    request.set_actor("typed-by-client");
    request.mutable_op()->set_warehouse(warehouse);
    return stub->Receive(&ctx, request, result);
  }

  testing::TempDir dir_;
  Pki pki_{dir_.path()};
  common::FakeClock clock_{kNow * 1'000'000};
  FakeLevelService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(AuthTlsTest, ClientTrustingTheCaReachesTheServer) {
  StartServer(ServerTls());
  EXPECT_THAT(HealthCheck(Channel(ClientTls("ca"))), StatusIs(absl::StatusCode::kOk));
}

TEST_F(AuthTlsTest, PlaintextClientFailsAgainstTlsServer) {
  StartServer(ServerTls());
  EXPECT_THAT(HealthCheck(Channel(grpc::InsecureChannelCredentials())),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(AuthTlsTest, ClientTrustingAnotherCaFails) {
  StartServer(ServerTls());
  EXPECT_THAT(HealthCheck(Channel(ClientTls("other-ca"))),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(AuthTlsTest, MutualTlsNeedsAClientCertificateFromTheCa) {
  StartServer(ServerTls(/*require_client_cert=*/true));
  EXPECT_THAT(HealthCheck(Channel(ClientTls("ca"))), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(HealthCheck(Channel(ClientTls("ca", "stranger"))),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(HealthCheck(Channel(ClientTls("ca", "client"))), StatusIs(absl::StatusCode::kOk));
}

TEST_F(AuthTlsTest, InterceptorVerdictIsEnforcedBeforeTheHandlerActs) {
  StartServer(ServerTls());
  auto channel = Channel(ClientTls("ca"));
  v1::MovementResult result;
  const std::string in = "warehouses/420102-W001", out = "warehouses/420103-W001";
  EXPECT_THAT(Receive(channel, "", in, &result), StatusIs(absl::StatusCode::kUnauthenticated));
  const std::string expired = Bearer(Role::kStaff, "420102", kNow - 600);
  auto status = Receive(channel, expired, in, &result);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("expired")));
  EXPECT_THAT(status.error_message(), Not(HasSubstr(expired.substr(7))));
  EXPECT_THAT(Receive(channel, Bearer(Role::kStaff, "420102"), out, &result),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("outside scope 420102")));
  EXPECT_THAT(Receive(channel, Bearer(Role::kViewer, "420102"), in, &result),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("role")));
  EXPECT_EQ(service_.applied(), 0);  // nothing was applied on any refusal

  ASSERT_THAT(Receive(channel, Bearer(Role::kStaff, "420102"), in, &result),
              StatusIs(absl::StatusCode::kOk));
  EXPECT_EQ(service_.applied(), 1);
  ASSERT_EQ(result.movements_size(), 1);
  EXPECT_EQ(result.movements(0).actor(), "alice");  // the token's subject, not the typed actor
}

TEST_F(AuthTlsTest, WithoutTheInterceptorEveryCallIsRefused) {
  StartServer(ServerTls(), /*with_interceptor=*/false);
  v1::MovementResult result;
  EXPECT_THAT(
      Receive(Channel(ClientTls("ca")), Bearer(Role::kAdmin, ""), "warehouses/42-W1", &result),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("no authorization verdict")));
  EXPECT_EQ(service_.applied(), 0);
}

TEST_F(AuthTlsTest, CredentialErrorsNameTheFile) {
  TlsOptions tls = ServerTls();
  tls.files.key = pki_.Path("missing.key");
  EXPECT_THAT(ServerCredentials(tls),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(pki_.Path("missing.key"))));
  tls = ServerTls();
  tls.files.key = pki_.Path("client.key");  // another certificate's key
  EXPECT_THAT(ServerCredentials(tls),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not match")));
  tls = ServerTls();
  tls.files.cert = pki_.Path("server.ext");  // not PEM
  EXPECT_THAT(ServerCredentials(tls),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no PEM certificate")));
  tls = ServerTls(true);
  tls.files.ca.clear();
  EXPECT_THAT(ServerCredentials(tls), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ChannelCredentials(TlsOptions{}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("CA")));
  TlsOptions half = ClientTls("ca");
  half.files.cert = pki_.Path("client.pem");
  EXPECT_THAT(ChannelCredentials(half), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(AuthTlsTest, PlaintextOnlyWhenAskedAndWithAWarning) {
  TlsOptions plaintext;
  plaintext.insecure = true;
  ::testing::internal::CaptureStderr();
  auto credentials = ServerCredentials(plaintext);
  const std::string warning = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(credentials.ok());
  EXPECT_THAT(warning, HasSubstr("WARNING: plaintext gRPC"));
  // Default options are TLS: with no files they fail instead of falling back to plaintext.
  EXPECT_THAT(ServerCredentials(TlsOptions{}), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace stockpile::auth
