// stockpile-level with TLS and bearer tokens, as deployed: the binary refuses plaintext clients,
// unknown CAs, missing or forged tokens and out-of-scope calls, changes nothing when it refuses,
// and records the token's subject as the actor.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "services/common/auth/service_credentials.h"
#include "services/common/auth/token.h"
#include "tests/testutil/level_process.h"
#include "tests/testutil/pki.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::testing {
namespace {

using namespace stockpile::v1;  // NOLINT
using ::testing::HasSubstr;

class LevelSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pki_.MakeCa("ca") && pki_.MakeCa("other-ca") &&
                pki_.MakeLeaf("server", "ca", "serverAuth"))
        << pki_.log;
    std::ofstream(pki_.Path("token.key")) << "a deployment secret of more than 32 bytes!!";
    level_ = std::make_unique<LevelProcess>(
        dir_, "county", "4201",
        std::vector<std::string>{"--tls-cert=" + pki_.Path("server.pem"),
                                 "--tls-key=" + pki_.Path("server.key"),
                                 "--auth-key-file=" + pki_.Path("token.key"),
                                 "--health-listen=127.0.0.1:" + std::to_string(health_port_)},
        std::map<std::string, std::string>{{"STOCKPILE_INSECURE", "0"}});
    ASSERT_TRUE(level_->Start()) << level_->Log();
    admin_ = Token("admin-1", "admin", "");
    ASSERT_THAT(CreateWarehouse("420102-W001", admin_), IsOk());
    ASSERT_THAT(CreateWarehouse("420103-W001", admin_), IsOk());
  }

  // `issued_ago`: a token minted that long ago (with a one-minute life) has expired.
  std::string Token(const std::string& subject, const std::string& role, const std::string& scope,
                    absl::Duration issued_ago = absl::ZeroDuration()) {
    common::FakeClock then(common::SystemClock::Get()->NowMicros() -
                           absl::ToInt64Microseconds(issued_ago));
    const absl::Duration ttl =
        issued_ago > absl::ZeroDuration() ? absl::Minutes(1) : absl::Hours(1);
    auto token = auth::IssueToken(pki_.Path("token.key"), subject, role, scope, ttl, &then);
    EXPECT_THAT(token.status(), IsOk());
    return token.ok() ? *token : "";
  }

  std::unique_ptr<LevelService::Stub> TlsStub(const std::string& ca = "ca") {
    grpc::SslCredentialsOptions ssl;
    std::ifstream in(pki_.Path(ca + ".pem"));
    ssl.pem_root_certs.assign(std::istreambuf_iterator<char>(in), {});
    return LevelService::NewStub(grpc::CreateChannel(level_->address(), grpc::SslCredentials(ssl)));
  }

  std::unique_ptr<grpc::ClientContext> Call(const std::string& token) {
    auto ctx = Deadline(5);
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    return ctx;
  }

  grpc::Status CreateWarehouse(const std::string& code, const std::string& token) {
    CreateWarehouseRequest req;
    req.set_request_id("create-" + code);
    req.mutable_warehouse()->set_code(code);
    req.mutable_warehouse()->set_display_name("store " + code);
    req.mutable_warehouse()->set_kind(WAREHOUSE_KIND_GOVERNMENT);
    req.mutable_warehouse()->set_area_m2(2000);
    Warehouse out;
    return TlsStub()->CreateWarehouse(Call(token).get(), req, &out);
  }

  grpc::Status Receive(const std::string& warehouse, const std::string& token,
                       LevelService::Stub* stub = nullptr, MovementResult* out = nullptr) {
    ReceiveRequest req;
    req.set_request_id("receive-" + std::to_string(++requests_));
    req.mutable_op()->set_warehouse(warehouse);
    req.mutable_op()->set_item("SH-0001");
    req.mutable_op()->set_quantity(10);
    MovementResult ignored;
    auto owned = stub ? nullptr : TlsStub();
    return (stub ? stub : owned.get())->Receive(Call(token).get(), req, out ? out : &ignored);
  }

  std::vector<std::string> StockctlOverTls() {
    return {BinaryDir() + "/bin/stockctl", "--server", level_->address(), "--tls-ca",
            pki_.Path("ca.pem")};
  }
  int64_t OnHand(const std::string& warehouse) {
    GetBalanceRequest req;
    req.set_warehouse(warehouse);
    req.set_item("SH-0001");
    Balance b;
    EXPECT_THAT(TlsStub()->GetBalance(Call(admin_).get(), req, &b), IsOk());
    return b.on_hand();
  }

  TempDir dir_;
  Pki pki_{dir_.path()};
  const int health_port_ = FreePort();
  std::unique_ptr<LevelProcess> level_;
  std::string admin_;
  int requests_ = 0;
};

TEST_F(LevelSecurityTest, StaffMoveStockOnlyInTheirScopeAndAreRecordedAsActor) {
  const std::string staff = Token("wang.li", "staff", "420102");
  MovementResult out;
  ASSERT_THAT(Receive("warehouses/420102-W001", staff, nullptr, &out), IsOk());
  EXPECT_EQ(out.movements(0).actor(), "wang.li");
  grpc::Status other = Receive("warehouses/420103-W001", staff);
  EXPECT_EQ(other.error_code(), grpc::StatusCode::PERMISSION_DENIED) << other.error_message();
  EXPECT_THAT(other.error_message(), HasSubstr("420103"));
  EXPECT_EQ(OnHand("warehouses/420103-W001"), 0);
  EXPECT_EQ(OnHand("warehouses/420102-W001"), 10);
}

// Hold ids are instance-wide. A county dispatcher holding 1 unit, or closing the id, at its own
// warehouse under the id a transfer's leg will use made that leg's hold at another county fail
// (ALREADY_EXISTS). Both are refused, alone or in a batch, nothing is held, and the catalogue's
// hold under that id still goes through.
TEST_F(LevelSecurityTest, ADispatcherCannotTakeATransferLegsHoldId) {
  ASSERT_THAT(Receive("warehouses/420102-W001", admin_), IsOk());
  ASSERT_THAT(Receive("warehouses/420103-W001", admin_), IsOk());
  const std::string dispatcher = Token("li.dispatch", "dispatcher", "420102");
  const std::string transfer = "T1767225600-12-00a1b2c3d4";
  const std::string leg = transfer + ".L0";
  HoldRequest squat;
  squat.set_request_id("squat-hold");
  squat.mutable_op()->set_warehouse("warehouses/420102-W001");
  squat.mutable_op()->set_item("SH-0001");
  squat.mutable_op()->set_quantity(1);
  squat.mutable_op()->set_hold_id(leg);
  MovementResult out;
  grpc::Status s = TlsStub()->Hold(Call(dispatcher).get(), squat, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("belong to the catalogue's transfers"));
  ReleaseRequest close;
  close.set_request_id("squat-release");
  close.mutable_op()->set_hold_id(leg);
  close.mutable_op()->set_warehouse_if_absent("warehouses/420102-W001");
  s = TlsStub()->Release(Call(dispatcher).get(), close, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("before any hold exists"));
  ApplyBatchRequest batch;
  batch.set_request_id("squat-batch");
  *batch.add_operations()->mutable_release() = close.op();
  ApplyBatchResponse batched;
  s = TlsStub()->ApplyBatch(Call(dispatcher).get(), batch, &batched);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  GetHoldRequest get;
  get.set_name("holds/" + leg);
  Hold none;
  EXPECT_EQ(TlsStub()->GetHold(Call(admin_).get(), get, &none).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // The catalogue's hold for the leg, at its planned source in the next county.
  HoldRequest real = squat;
  real.set_request_id(leg + ".hold");
  real.mutable_op()->set_warehouse("warehouses/420103-W001");
  real.mutable_op()->set_quantity(5);
  real.mutable_op()->set_reference(transfer);
  ASSERT_THAT(TlsStub()->Hold(Call(Token("catalogue", "service", "")).get(), real, &out), IsOk());
  EXPECT_EQ(out.hold().warehouse(), "warehouses/420103-W001");
  EXPECT_EQ(out.hold().quantity(), 5);
}

TEST_F(LevelSecurityTest, MissingExpiredAndForgedTokensAreUnauthenticated) {
  EXPECT_EQ(Receive("warehouses/420102-W001", "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  const std::string expired = Token("wang.li", "staff", "420102", absl::Hours(1));
  EXPECT_EQ(Receive("warehouses/420102-W001", expired).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  std::string forged = Token("wang.li", "staff", "42");
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(Receive("warehouses/420102-W001", forged).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(OnHand("warehouses/420102-W001"), 0);
}

// stockpile-bench measures the service as deployed (TLS and tokens) with --tls-ca and
// --token-file; without a token the server refuses its very first call, and the bench says so.
TEST_F(LevelSecurityTest, BenchDrivesTheSecureServiceWithItsCaAndAToken) {
  std::ofstream(pki_.Path("admin.token")) << admin_ << "\n";
  const std::vector<std::string> bench = {BinaryDir() + "/bin/stockpile-bench",
                                          "--target=" + level_->address(),
                                          "--tls-ca=" + pki_.Path("ca.pem"),
                                          "--clients=4",
                                          "--duration=1s",
                                          "--warmup=0s",
                                          "--warehouses=3",
                                          "--mix=receive:100",
                                          "--reference-data=" + ReferenceDataDir(),
                                          "--baseline=echo"};
  std::vector<std::string> with_token = bench;
  with_token.push_back("--token-file=" + pki_.Path("admin.token"));
  std::string output;
  ASSERT_EQ(RunCommand(with_token, &output, "", std::chrono::seconds(60)), 0) << output;
  EXPECT_THAT(output, HasSubstr("receive "));
  EXPECT_THAT(output, HasSubstr("echo: "));
  GetLedgerTotalsResponse totals;  // the bench's receipts went in, to its own warehouses
  ASSERT_THAT(TlsStub()->GetLedgerTotals(Call(admin_).get(), GetLedgerTotalsRequest(), &totals),
              IsOk());
  int64_t received = 0;
  for (const auto& item : totals.items()) received += item.received();
  EXPECT_GT(received, 0);

  std::string refused;
  EXPECT_NE(RunCommand(bench, &refused, "", std::chrono::seconds(60)), 0);
  EXPECT_THAT(refused, HasSubstr("UNAUTHENTICATED")) << refused;
}

// A service's token file (the catalogue's --service-token-file) is read again once it changes,
// so a rotated token needs no restart: a viewer's token is refused a receipt, the admin's token
// written over it is taken up within seconds.
TEST_F(LevelSecurityTest, ServiceCredentialsTakeUpARotatedTokenFile) {
  const std::string file = pki_.Path("service.token");
  std::ofstream(file) << Token("dashboard", "viewer", "4201") << "\n";
  auth::TlsOptions tls;
  tls.files.ca = pki_.Path("ca.pem");
  auto credentials = auth::ServiceChannelCredentials(tls, file);
  ASSERT_THAT(credentials.status(), IsOk());
  auto stub = LevelService::NewStub(grpc::CreateChannel(level_->address(), *credentials));
  EXPECT_EQ(Receive("warehouses/420102-W001", "", stub.get()).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a new modification time
  std::ofstream(file) << admin_ << "\n";
  EXPECT_TRUE(WaitFor([&] { return Receive("warehouses/420102-W001", "", stub.get()).ok(); },
                      std::chrono::seconds(5)));
  EXPECT_EQ(OnHand("warehouses/420102-W001"), 10);
}

TEST_F(LevelSecurityTest, ViewersReadButCannotMoveStock) {
  const std::string viewer = Token("dashboard", "viewer", "4201");
  EXPECT_EQ(Receive("warehouses/420102-W001", viewer).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  GetBalanceRequest req;
  req.set_warehouse("warehouses/420102-W001");
  req.set_item("SH-0001");
  Balance b;
  EXPECT_THAT(TlsStub()->GetBalance(Call(viewer).get(), req, &b), IsOk());
}

TEST_F(LevelSecurityTest, PlaintextAndForeignCaClientsCannotConnect) {
  auto plaintext = LevelService::NewStub(
      grpc::CreateChannel(level_->address(), grpc::InsecureChannelCredentials()));
  EXPECT_EQ(Receive("warehouses/420102-W001", admin_, plaintext.get()).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  auto foreign = TlsStub("other-ca");
  EXPECT_EQ(Receive("warehouses/420102-W001", admin_, foreign.get()).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(OnHand("warehouses/420102-W001"), 0);
}

// Kubernetes' gRPC probes speak neither TLS nor tokens: --health-listen answers them in
// plaintext and offers nothing else.
TEST_F(LevelSecurityTest, PlaintextHealthListenerAnswersProbesAndNothingElse) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(health_port_),
                                     grpc::InsecureChannelCredentials());
  grpc::health::v1::HealthCheckRequest req;
  req.set_service("stockpile.v1.LevelService");
  grpc::health::v1::HealthCheckResponse resp;
  ASSERT_THAT(grpc::health::v1::Health::NewStub(channel)->Check(Deadline(5).get(), req, &resp),
              IsOk());
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  auto plaintext = LevelService::NewStub(channel);
  EXPECT_EQ(Receive("warehouses/420102-W001", admin_, plaintext.get()).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(OnHand("warehouses/420102-W001"), 0);
}

TEST_F(LevelSecurityTest, StockctlIssuesTokensAndUsesThemOverTls) {
  const std::string stockctl = BinaryDir() + "/bin/stockctl";
  std::string token;
  ASSERT_EQ(RunCommand({stockctl, "token", "issue", "--key", pki_.Path("token.key"), "--subject",
                        "zhao.min", "--role", "staff", "--scope", "420102", "--ttl", "1h"},
                       &token),
            0)
      << token;
  std::ofstream(pki_.Path("zhao.token")) << token;
  const std::vector<std::string> base = {stockctl, "--server", level_->address(), "--tls-ca",
                                         pki_.Path("ca.pem")};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  };
  std::string out;
  EXPECT_EQ(RunCommand(with({"--token-file", pki_.Path("zhao.token"), "receive", "--warehouse",
                             "warehouses/420102-W001", "--item", "SH-0001", "--quantity", "3"}),
                       &out),
            0)
      << out;
  EXPECT_EQ(OnHand("warehouses/420102-W001"), 3);
  EXPECT_EQ(RunCommand(with({"receive", "--warehouse", "warehouses/420102-W001", "--item",
                             "SH-0001", "--quantity", "3"}),
                       &out),
            4)
      << out;
  EXPECT_THAT(out, HasSubstr("UNAUTHENTICATED"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr(token.substr(0, 20))));
  EXPECT_EQ(OnHand("warehouses/420102-W001"), 3);
}

std::vector<std::string> WithArgs(std::vector<std::string> argv,
                                  const std::vector<std::string>& extra) {
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

// stockctl sends its token on the change stream as on every other call.
TEST_F(LevelSecurityTest, StockctlWatchesTheChangeStreamWithItsToken) {
  ASSERT_THAT(Receive("warehouses/420102-W001", admin_), IsOk());
  std::ofstream(pki_.Path("admin.token")) << admin_ << "\n";
  std::string out;
  EXPECT_EQ(RunCommand(WithArgs(StockctlOverTls(), {"--token-file", pki_.Path("admin.token"),
                                                    "--json", "watch", "--limit", "1"}),
                       &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("\"sequence\""));
}

// A token copied into STOCKPILE_TOKEN with its newline works; one that still cannot go into a
// header is refused before anything is sent, and not echoed.
TEST_F(LevelSecurityTest, StockctlTrimsAnEnvironmentTokenAndRefusesOneThatCannotBeSent) {
  const std::vector<std::string> receive = {
      "receive", "--warehouse", "warehouses/420102-W001", "--item", "SH-0001", "--quantity", "2"};
  std::string out;
  EXPECT_EQ(RunCommand(WithArgs({"env", "STOCKPILE_TOKEN=" + admin_ + "\n"},
                                WithArgs(StockctlOverTls(), receive)),
                       &out),
            0)
      << out;
  EXPECT_EQ(OnHand("warehouses/420102-W001"), 2);
  EXPECT_EQ(RunCommand(WithArgs({"env", "STOCKPILE_TOKEN=" + admin_.substr(0, 30) + " x"},
                                WithArgs(StockctlOverTls(), receive)),
                       &out),
            1)
      << out;
  EXPECT_THAT(out, HasSubstr("cannot be sent"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr(admin_.substr(0, 30))));
  EXPECT_EQ(OnHand("warehouses/420102-W001"), 2);
}

// A client certificate without the CA would have meant no TLS at all: refused, not sent in
// plaintext.
TEST_F(LevelSecurityTest, StockctlRefusesClientCertificateFlagsWithoutTheCa) {
  std::string out;
  EXPECT_EQ(RunCommand({BinaryDir() + "/bin/stockctl", "--server", level_->address(), "--tls-cert",
                        pki_.Path("server.pem"), "--tls-key", pki_.Path("server.key"), "info"},
                       &out),
            1)
      << out;
  EXPECT_THAT(out, HasSubstr("need --tls-ca"));
}

// Staff scoped to their district rotate a lot and retry the command with its request id: the
// retry reads what the first run took out inside their scope and moves nothing twice.
TEST_F(LevelSecurityTest, ScopedStaffRotateAndRetryWithTheSameRequestId) {
  std::ofstream(pki_.Path("zhao.token")) << Token("zhao.min", "staff", "420102");
  ASSERT_THAT(Receive("warehouses/420102-W001", admin_), IsOk());
  const std::vector<std::string> rotate = {BinaryDir() + "/bin/stockctl",
                                           "--server",
                                           level_->address(),
                                           "--tls-ca",
                                           pki_.Path("ca.pem"),
                                           "--token-file",
                                           pki_.Path("zhao.token"),
                                           "--request-id",
                                           "rot-zhao",
                                           "rotate",
                                           "--warehouse",
                                           "420102-W001",
                                           "--item",
                                           "SH-0001",
                                           "--new-note",
                                           "new tents"};
  for (int run = 1; run <= 2; ++run) {
    std::string out;
    EXPECT_EQ(RunCommand(rotate, &out), 0) << "run " << run << ": " << out;
    EXPECT_THAT(out, HasSubstr("rotated out 10 of lot DEFAULT, in 10 of lot DEFAULT")) << out;
  }
  EXPECT_EQ(OnHand("warehouses/420102-W001"), 10);
}

TEST(LevelSecurityStartTest, RefusesToStartWithoutTlsUnlessInsecure) {
  TempDir dir;
  Subprocess level({BinaryDir() + "/bin/stockpile-level", "--level=county", "--regions=4201",
                    "--db=" + dir.Sub("db"), "--listen=127.0.0.1:0"},
                   dir.Sub("log"), {{"STOCKPILE_INSECURE", "0"}});
  ASSERT_TRUE(level.Start());
  const int status = level.Wait(std::chrono::seconds(20));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << level.Log();
  EXPECT_THAT(level.Log(), HasSubstr("--insecure"));
}

// STOCKPILE_INSECURE=1 left in an operator's shell, with the TLS and token flags of a secured
// start: refused, naming the flags, instead of an open ledger without token checks.
TEST(LevelSecurityStartTest, RefusesInsecureFromTheEnvironmentWithTlsAndTokenFlags) {
  TempDir dir;
  Subprocess level({BinaryDir() + "/bin/stockpile-level", "--level=county", "--regions=4201",
                    "--db=" + dir.Sub("db"), "--listen=127.0.0.1:0", "--tls-cert=server.pem",
                    "--tls-key=server.key", "--auth-key-file=token.key"},
                   dir.Sub("log"), {{"STOCKPILE_INSECURE", "1"}});
  ASSERT_TRUE(level.Start());
  const int status = level.Wait(std::chrono::seconds(20));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << level.Log();
  EXPECT_THAT(level.Log(), HasSubstr("contradicts --tls-cert, --tls-key, --auth-key-file"));
}

// A typo in the etcd TLS files is a configuration error, not etcd being down: refuse to start.
TEST(LevelSecurityStartTest, RefusesToStartWithUnreadableEtcdTlsFiles) {
  TempDir dir;
  Subprocess level({BinaryDir() + "/bin/stockpile-level", "--level=county", "--regions=4201",
                    "--db=" + dir.Sub("db"), "--listen=127.0.0.1:0", "--insecure",
                    "--etcd-endpoints=127.0.0.1:1", "--etcd-tls-ca=" + dir.Sub("missing-ca.pem")},
                   dir.Sub("log"));
  ASSERT_TRUE(level.Start());
  const int status = level.Wait(std::chrono::seconds(20));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << level.Log();
  EXPECT_THAT(level.Log(), HasSubstr("missing-ca.pem"));
}

}  // namespace
}  // namespace stockpile::testing
