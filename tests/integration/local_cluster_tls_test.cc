// STOCKPILE_TLS=1 deploy/local/cluster.sh: etcd and seven processes with TLS and bearer tokens
// (the catalogue reaches the level services over mutual TLS with its service token). Through
// stockctl, as an operator would: staff receive at a village warehouse, the receipt reaches the
// catalogue roll-up, a county dispatcher plans, creates and approves a transfer out of that
// village (holds placed over mutual TLS), the audit lists who did it; plaintext clients,
// out-of-scope dispatchers and missing tokens are refused and change nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "absl/strings/str_cat.h"
#include "stockpile/v1/catalogue_service.grpc.pb.h"
#include "tests/testutil/level_process.h"
#include "tests/testutil/pki.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::testing {
namespace {

using namespace stockpile::v1;  // NOLINT
using ::testing::HasSubstr;

constexpr int kPorts[] = {2379, 2380, 7501, 7502, 7503, 7504, 7505, 7506,
                          7510, 9501, 9502, 9503, 9504, 9505, 9506, 9510};
constexpr int kExitDenied = 4;  // stockctl: PERMISSION_DENIED / UNAUTHENTICATED

class LocalClusterTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string out;
    offset_ = StartOnFreePortLayout(
        kPorts,
        [&](int offset) {
          offset_ = offset;
          return Cluster("start", &out) == 0;
        },
        [&] {
          std::string stopped;
          Cluster("stop", &stopped);
          std::filesystem::remove_all(dir_.Sub("cluster"));
        });
    started_ = offset_ > 0;
    ASSERT_TRUE(started_) << "no free port layout started: " << out;
    EXPECT_THAT(out, HasSubstr("STOCKPILE_TLS_CA="));  // tells the operator how to connect
  }
  void TearDown() override {
    std::string out;
    if (started_) {
      EXPECT_EQ(Cluster("stop", &out), 0) << out;
    }
  }

  int Cluster(const std::string& verb, std::string* out) {
    return RunCommand(
        {"env", "STOCKPILE_TLS=1", "STOCKPILE_INSECURE=0", "STOCKPILE_BIN=" + BinaryDir() + "/bin",
         "STOCKPILE_CLUSTER_DIR=" + dir_.Sub("cluster"),
         "STOCKPILE_REFERENCE_DATA=" + ReferenceDataDir(),
         "STOCKPILE_PORT_OFFSET=" + std::to_string(offset_), "bash",
         SourceDir() + "/deploy/local/cluster.sh", verb},
        out, "", std::chrono::seconds(150));
  }
  std::string Address(int port) const { return absl::StrCat("127.0.0.1:", port + offset_); }
  std::string Tls(const std::string& file) const { return dir_.Sub("cluster") + "/tls/" + file; }

  // A token file minted with the cluster's key.
  std::string Token(const std::string& subject, const std::string& role, const std::string& scope) {
    std::string token;
    const int rc =
        RunCommand({BinaryDir() + "/bin/stockctl", "token", "issue", "--key", Tls("token.key"),
                    "--subject", subject, "--role", role, "--scope", scope, "--ttl", "10m"},
                   &token);
    EXPECT_EQ(rc, 0) << token;
    const std::string path = dir_.Sub(subject + ".token");
    std::ofstream(path) << token;
    return path;
  }

  // stockctl over TLS (client certificate for the level services' mutual TLS) with a token;
  // `token_file` "" sends none, `tls` false dials plaintext.
  int Stockctl(const std::string& token_file, std::vector<std::string> args, std::string* out,
               bool tls = true) {
    std::vector<std::string> argv = {"env",
                                     "STOCKPILE_TOKEN_FILE=" + token_file,
                                     BinaryDir() + "/bin/stockctl",
                                     "--server=" + Address(7506),
                                     "--catalogue=" + Address(7510),
                                     "--timeout=15"};
    if (tls) {
      argv.insert(argv.end(), {"--tls-ca=" + Tls("ca.pem"), "--tls-cert=" + Tls("stockctl.pem"),
                               "--tls-key=" + Tls("stockctl.key")});
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, out, "", std::chrono::seconds(60));
  }

  int64_t RollupOnHand(const std::string& token_file, const std::string& region) {
    std::string out;
    if (Stockctl(token_file,
                 {"catalogue", "rollup", "--region", region, "--item", "BD-0001", "--json"},
                 &out) != 0) {
      return -1;
    }
    std::smatch m;
    std::regex on_hand("\"on_hand\": ?\"?([0-9]+)");
    return std::regex_search(out, m, on_hand) ? std::stoll(m[1]) : 0;
  }

  TempDir dir_;
  int offset_ = 0;
  bool started_ = false;
};

TEST_F(LocalClusterTlsTest, TokensAndScopesHoldEndToEndOverTls) {
  const std::string admin = Tls("admin.token");
  const std::string staff = Token("wang.village", "staff", "420102002003");
  const std::string viewer = Token("hubei.dashboard", "viewer", "42");
  const std::string county = Token("li.dispatch", "dispatcher", "420102");
  const std::string hunan = Token("chen.hunan", "dispatcher", "43");
  std::string out;

  // Admin sets up a village warehouse (village instance) and a county one (county-a).
  ASSERT_EQ(Stockctl(admin,
                     {"warehouse", "create", "--code", "420102002003-W001", "--name",
                      "保成社区储备点", "--kind", "social", "--area", "12"},
                     &out),
            0)
      << out;
  ASSERT_EQ(Stockctl(admin,
                     {"--server=" + Address(7503), "warehouse", "create", "--code", "420102-W001",
                      "--name", "江岸区救灾物资储备库", "--kind", "government", "--area", "2500"},
                     &out),
            0)
      << out;

  // Staff receive at their village; the next village is out of their scope.
  ASSERT_EQ(Stockctl(staff,
                     {"receive", "--warehouse", "420102002003-W001", "--item", "BD-0001",
                      "--quantity", "37", "--request-id", "tls-receive"},
                     &out),
            0)
      << out;
  EXPECT_EQ(Stockctl(staff,
                     {"receive", "--warehouse", "420102002004-W001", "--item", "BD-0001",
                      "--quantity", "1", "--request-id", "tls-receive-2"},
                     &out),
            kExitDenied)
      << out;
  EXPECT_THAT(out, HasSubstr("PERMISSION_DENIED"));

  // The receipt reaches the catalogue (replicated over mutual TLS with the service token).
  int64_t quilts = -1;
  WaitFor([&] { return (quilts = RollupOnHand(viewer, "42")) == 37; }, std::chrono::seconds(15));
  EXPECT_EQ(quilts, 37);
  EXPECT_EQ(Stockctl(viewer, {"catalogue", "rollup", "--region", "43"}, &out), kExitDenied) << out;

  // Plaintext and tokenless clients are refused.
  EXPECT_NE(Stockctl(viewer, {"catalogue", "rollup", "--region", "42"}, &out, /*tls=*/false), 0);
  EXPECT_THAT(out, HasSubstr("UNAVAILABLE"));
  EXPECT_EQ(Stockctl("", {"catalogue", "rollup", "--region", "42"}, &out), kExitDenied) << out;
  EXPECT_THAT(out, HasSubstr("UNAUTHENTICATED"));
  auto plain = CatalogueService::NewStub(
      grpc::CreateChannel(Address(7510), grpc::InsecureChannelCredentials()));
  GetRollupRequest rollup_request;
  rollup_request.set_region_code("42");
  Rollup rollup;
  EXPECT_EQ(plain->GetRollup(Deadline(5).get(), rollup_request, &rollup).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // A server certificate from another CA is not trusted.
  Pki other(dir_.path());
  ASSERT_TRUE(other.MakeCa("other-ca")) << other.log;
  EXPECT_NE(Stockctl(viewer,
                     {"--tls-ca=" + other.Path("other-ca.pem"), "--tls-cert=" + Tls("stockctl.pem"),
                      "--tls-key=" + Tls("stockctl.key"), "catalogue", "rollup", "--region", "42"},
                     &out, /*tls=*/false),
            0);
  EXPECT_THAT(out, HasSubstr("UNAVAILABLE"));

  // A county dispatcher plans, creates and approves a transfer out of the village.
  ASSERT_EQ(
      Stockctl(county, {"transfer", "plan", "--to", "420102-W001", "--line", "BD-0001=10"}, &out),
      0)
      << out;
  EXPECT_THAT(out, HasSubstr("420102002003-W001"));
  ASSERT_EQ(Stockctl(county,
                     {"transfer", "create", "--to", "420102-W001", "--line", "BD-0001=10",
                      "--request-id", "tls-create", "--json"},
                     &out),
            0)
      << out;
  std::smatch id;
  ASSERT_TRUE(std::regex_search(out, id, std::regex("transfers/(T[A-Za-z0-9-]+)"))) << out;
  const std::string transfer = id[1];

  // A Hunan dispatcher may neither approve nor cancel it; nothing changes.
  EXPECT_EQ(Stockctl(hunan, {"transfer", "approve", transfer, "--request-id", "tls-hunan"}, &out),
            kExitDenied)
      << out;
  EXPECT_EQ(Stockctl(hunan, {"transfer", "cancel", transfer, "--request-id", "tls-hunan-c"}, &out),
            kExitDenied)
      << out;
  ASSERT_EQ(Stockctl(county, {"transfer", "show", transfer, "--json"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("PENDING_APPROVAL"));

  ASSERT_EQ(
      Stockctl(county, {"transfer", "approve", transfer, "--request-id", "tls-approve", "--json"},
               &out),
      0)
      << out;
  EXPECT_THAT(out, HasSubstr("READY"));  // the hold stands at the village

  // The village's available stock dropped by the hold (read at the level with the staff token).
  ASSERT_EQ(Stockctl(staff,
                     {"balance", "get", "--warehouse", "420102002003-W001", "--item", "BD-0001",
                      "--json"},
                     &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("\"held\":\"10\""));

  // Audit: who did what, for the transfer (catalogue) and the warehouse (level service).
  ASSERT_EQ(Stockctl(county, {"audit", "--transfer", transfer}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("li.dispatch"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("chen.hunan")));
  ASSERT_EQ(Stockctl(staff, {"audit", "--warehouse", "420102002003-W001", "--json"}, &out), 0)
      << out;
  EXPECT_THAT(out, HasSubstr("\"actor\":\"wang.village\""));
  EXPECT_THAT(out, HasSubstr("\"what\":\"receive\""));
  EXPECT_THAT(out, HasSubstr("\"what\":\"hold\""));
  // The hold was placed by the catalogue's service token (subject "catalogue") for the
  // dispatcher who approved the transfer.
  EXPECT_THAT(out, HasSubstr("\"actor\":\"catalogue for li.dispatch\""));

  // `cluster.sh backup` over mutual TLS with the admin token: every level instance answers.
  ASSERT_EQ(Cluster("backup", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("village   " + dir_.Sub("cluster/backups/village/backup-")));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("FAILED")));
}

// Without TLS files, token key and service token the catalogue does not start (and says why);
// --insecure starts it in plaintext with a warning.
TEST(CatalogueTlsStartTest, RefusesToStartWithoutTlsUnlessInsecure) {
  TempDir dir;
  const std::vector<std::string> base = {"env",
                                         "STOCKPILE_INSECURE=0",
                                         BinaryDir() + "/bin/stockpile-catalogue",
                                         "--db=" + dir.Sub("db"),
                                         "--listen=127.0.0.1:0",
                                         "--reference-data=" + ReferenceDataDir()};
  std::string out;
  EXPECT_EQ(RunCommand(base, &out, "", std::chrono::seconds(30)), 2) << out;
  EXPECT_THAT(out, HasSubstr("TLS is required"));
  auto with = base;
  with.insert(with.end(), {"--tls-cert=x.pem", "--tls-key=x.key", "--tls-ca=ca.pem"});
  EXPECT_EQ(RunCommand(with, &out, "", std::chrono::seconds(30)), 2) << out;
  EXPECT_THAT(out, HasSubstr("--auth-key-file"));
  with.push_back("--auth-key-file=token.key");
  EXPECT_EQ(RunCommand(with, &out, "", std::chrono::seconds(30)), 2) << out;
  EXPECT_THAT(out, HasSubstr("--service-token-file"));
  with.push_back("--service-token-file=" + dir.Sub("missing.token"));
  EXPECT_EQ(RunCommand(with, &out, "", std::chrono::seconds(30)), 2) << out;
  EXPECT_THAT(out, HasSubstr("x.pem"));  // files are checked at start-up, the path named

  const int health_port = FreePort();
  Subprocess insecure(
      {BinaryDir() + "/bin/stockpile-catalogue", "--db=" + dir.Sub("db2"), "--listen=127.0.0.1:0",
       "--port-file=" + dir.Sub("port"), "--insecure", "--reference-data=" + ReferenceDataDir(),
       "--health-listen=127.0.0.1:" + std::to_string(health_port)},
      dir.Sub("insecure.log"));
  ASSERT_TRUE(insecure.Start());
  EXPECT_TRUE(
      WaitFor([&] { return std::ifstream(dir.Sub("port")).good(); }, std::chrono::seconds(30)));
  EXPECT_TRUE(PortOpen(health_port));  // the plaintext health-only listener for probes
  insecure.Stop();
  std::ifstream log(dir.Sub("insecure.log"));
  const std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_THAT(text, HasSubstr("WARNING: plaintext gRPC listener"));
  EXPECT_THAT(text, HasSubstr("WARNING: authorization disabled"));
}

}  // namespace
}  // namespace stockpile::testing
