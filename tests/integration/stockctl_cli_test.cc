// stockctl driving a real stockpile-level process: tables, --json, CSV import, restart, exit codes.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "tests/testutil/pki.h"
#include "tests/testutil/process.h"

namespace stockpile::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

class StockctlTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(); }
  void TearDown() override {
    if (server_) server_->Stop();
  }

  void StartServer(const std::vector<std::string>& more_flags = {},
                   const std::map<std::string, std::string>& env = {}) {
    const std::string port_file = dir_.Sub("port");
    std::remove(port_file.c_str());
    std::vector<std::string> argv = {BinaryDir() + "/bin/stockpile-level",
                                     "--level=county",
                                     "--regions=4201",
                                     "--db=" + dir_.Sub("db"),
                                     "--reference-data=" + ReferenceDataDir(),
                                     "--listen=127.0.0.1:0",
                                     "--port-file=" + port_file,
                                     "--backup-dir=" + dir_.Sub("backups")};
    argv.insert(argv.end(), more_flags.begin(), more_flags.end());
    server_ = std::make_unique<Subprocess>(argv, dir_.Sub("server.log"), env);
    ASSERT_TRUE(server_->Start());
    ASSERT_TRUE(WaitFor(
        [&] {
          const std::string text = ReadFile(port_file);
          port_ = text.empty() ? 0 : std::atoi(text.c_str());
          return port_ > 0 && PortOpen(port_);
        },
        std::chrono::seconds(60)))
        << server_->Log();
  }

  // The level's command line as StartServer has it plus `more_flags`, run to its end by
  // RunCommand (killed after 30 s: a level that starts serves until stopped; plaintext, as
  // Subprocess starts it).
  std::vector<std::string> LevelCommand(const std::vector<std::string>& more_flags) {
    std::vector<std::string> argv = {"env",
                                     "STOCKPILE_INSECURE=1",
                                     "timeout",
                                     "30",
                                     BinaryDir() + "/bin/stockpile-level",
                                     "--level=county",
                                     "--regions=4201",
                                     "--db=" + dir_.Sub("db"),
                                     "--reference-data=" + ReferenceDataDir(),
                                     "--listen=127.0.0.1:0",
                                     "--backup-dir=" + dir_.Sub("backups")};
    argv.insert(argv.end(), more_flags.begin(), more_flags.end());
    return argv;
  }

  void RestartServer() {
    ASSERT_EQ(server_->Stop(SIGTERM), 0) << server_->Log();
    StartServer();
  }

  // Runs stockctl against the server; stdout and stderr are kept apart so --json can be parsed.
  CliResult Run(std::vector<std::string> args) {
    const std::string err_path = dir_.Sub("stderr.txt");
    std::vector<std::string> argv = {"/bin/sh",
                                     "-c",
                                     "exec \"$0\" \"$@\" 2>" + err_path,
                                     BinaryDir() + "/bin/stockctl",
                                     "--server=127.0.0.1:" + std::to_string(port_),
                                     "--actor=tester",
                                     "--timeout=20"};
    argv.insert(argv.end(), args.begin(), args.end());
    CliResult result;
    result.exit_code = RunCommand(argv, &result.out);
    result.err = ReadFile(err_path);
    return result;
  }

  // `quantity` tents (SH-0001) received at 420102-W001.
  CliResult ReceiveShelters(const std::string& quantity) {
    return Run(
        {"receive", "--warehouse", "420102-W001", "--item", "SH-0001", "--quantity", quantity});
  }

  void CreateWarehouse() {
    CliResult r = Run({"warehouse", "create", "--code", "420102-W001", "--name",
                       "江岸区救灾物资储备库", "--kind", "government", "--area", "2500"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  nlohmann::json BalanceJson(const std::string& item) {
    CliResult r = Run({"--json", "balance", "get", "--warehouse", "420102-W001", "--item", item});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return nlohmann::json::parse(r.out, nullptr, false);
  }

  TempDir dir_;
  std::unique_ptr<Subprocess> server_;
  int port_ = 0;
};

TEST_F(StockctlTest, CreatesWarehouseAndShowsItInATable) {
  CreateWarehouse();
  CliResult list = Run({"warehouse", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("420102-W001  江岸区救灾物资储备库  county"));
  CliResult get = Run({"--json", "warehouse", "get", "420102-W001"});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  auto json = nlohmann::json::parse(get.out);
  EXPECT_EQ(json["name"], "warehouses/420102-W001");
  EXPECT_EQ(json["kind"], "WAREHOUSE_KIND_GOVERNMENT");
  EXPECT_EQ(json["below_standard_area"], false);
}

// A list command with more pages says how to get the next one, or all of them.
TEST_F(StockctlTest, ListWithMorePagesOffersThePageTokenAndAll) {
  CreateWarehouse();
  ASSERT_EQ(Run({"warehouse", "create", "--code", "420102-W002", "--name", "江岸区二号库", "--kind",
                 "government", "--area", "2500"})
                .exit_code,
            0);
  CliResult page = Run({"warehouse", "list", "--page-size", "1"});
  ASSERT_EQ(page.exit_code, 0) << page.err;
  EXPECT_TRUE(
      std::regex_search(page.err, std::regex("more entries: --page-token=\\S+ \\(or --all\\)\n")))
      << page.err;
}

TEST_F(StockctlTest, ReceiveIssueAndBalanceInTableAndJson) {
  CreateWarehouse();
  CliResult receive = Run({"receive", "--warehouse", "420102-W001", "--item", "SH-0001",
                           "--quantity", "100", "--note", "donor A", "--request-id", "rcv-1"});
  ASSERT_EQ(receive.exit_code, 0) << receive.out << receive.err;
  EXPECT_THAT(receive.out, HasSubstr("request-id: rcv-1"));
  EXPECT_THAT(receive.out, HasSubstr("receive"));
  // The generated request id is printed so a retry can reuse it.
  CliResult issue =
      Run({"issue", "--warehouse", "420102-W001", "--item", "SH-0001", "--quantity", "30"});
  ASSERT_EQ(issue.exit_code, 0) << issue.out << issue.err;
  EXPECT_TRUE(std::regex_search(issue.out, std::regex("request-id: stockctl-\\S+")));

  CliResult table = Run({"balance", "get", "--warehouse", "420102-W001", "--item", "SH-0001"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_TRUE(std::regex_search(table.out, std::regex("on hand: +70\n"))) << table.out;
  EXPECT_TRUE(std::regex_search(table.out, std::regex("DEFAULT +70 +0 +70"))) << table.out;

  nlohmann::json balance = BalanceJson("SH-0001");
  EXPECT_EQ(balance["on_hand"], "70");
  EXPECT_EQ(balance["available"], "70");

  // A retry with the same request id moves nothing.
  CliResult retry = Run({"receive", "--warehouse", "420102-W001", "--item", "SH-0001", "--quantity",
                         "100", "--note", "donor A", "--request-id", "rcv-1"});
  ASSERT_EQ(retry.exit_code, 0) << retry.err;
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "70");

  CliResult moves =
      Run({"--json", "movements", "--warehouse", "420102-W001", "--request", "rcv-1"});
  ASSERT_EQ(moves.exit_code, 0) << moves.err;
  auto list = nlohmann::json::parse(moves.out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["type"], "MOVEMENT_TYPE_RECEIVE");
  EXPECT_EQ(list[0]["actor"], "tester");
}

// A batch file may name warehouses by code, like every other command; a bad code is a usage
// error naming the operation, and nothing is sent.
// A level whose volume has less free than --min-free-mb (here more than any disk) refuses the
// receipt before applying it; stockctl says so and how to retry (it gave no hint, exit 7).
TEST_F(StockctlTest, ALevelOutOfRoomRefusalSaysNothingWasAppliedAndHowToRetry) {
  ASSERT_EQ(server_->Stop(SIGTERM), 0) << server_->Log();
  StartServer({"--min-free-mb=1000000"});
  CliResult r = Run({"--request-id=rcv-no-room", "receive", "--warehouse", "420102-W001", "--item",
                     "SH-0001", "--quantity", "5"});
  EXPECT_EQ(r.exit_code, 7) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("RESOURCE_EXHAUSTED: the database volume"));
  EXPECT_THAT(r.err, HasSubstr("nothing was applied: retry with --request-id=rcv-no-room once the "
                               "service has room again"));
}

TEST_F(StockctlTest, BatchFileTakesWarehouseCodesAsOtherCommandsDo) {
  CreateWarehouse();
  const std::string file = dir_.Sub("batch.json");
  WriteFile(file, R"([{"receive": {"warehouse": "420102-W001", "item": "SH-0001", "quantity": 40}},
                      {"issue": {"warehouse": "warehouses/420102-W001", "item": "SH-0001",
                                 "quantity": 15}}])");
  CliResult batch = Run({"--request-id=batch-1", "batch", file});
  ASSERT_EQ(batch.exit_code, 0) << batch.out << batch.err;
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "25");

  WriteFile(file, R"([{"receive": {"warehouse": "420102-W001", "item": "SH-0001", "quantity": 5}},
                      {"receive": {"warehouse": "W001", "item": "SH-0001", "quantity": 5}}])");
  CliResult bad = Run({"--request-id=batch-2", "batch", file});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("operation 2 (receive)")) << bad.err;
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "25");
}

TEST_F(StockctlTest, ImportWithBadRowsExitsSixAndAppliesGoodRowsOnce) {
  CreateWarehouse();
  const std::string csv = dir_.Sub("receipts.csv");
  WriteFile(csv,
            "warehouse,item,lot,expiry_date,quantity,note\n"
            "420102-W001,SH-0001,,,10,donor A\n"  // 2 ok
            "420102-W001,SH-0002,,,abc,\n"        // 3 bad locally
            "420102-W999,SH-0002,,,5,\n"          // 4 bad on the server (no warehouse)
            "420102-W001,FW-0001,L1,2030-01-31,7,\"po 1,2\"\n"  // 5 ok
            "420102-W001,FW-0001,,,3,\n");                      // 6 bad locally (shelf life)
  const std::string errors = dir_.Sub("errors.csv");
  for (int run = 0; run < 2; ++run) {
    CliResult r = Run({"import", "receipts", csv, "--errors-out", errors});
    ASSERT_EQ(r.exit_code, 6) << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr("rows ok: 2"));
    EXPECT_THAT(r.out, HasSubstr("rows failed: 3"));
    const std::string report = ReadFile(errors);
    EXPECT_THAT(report, HasSubstr("line,error\n3,"));
    EXPECT_TRUE(std::regex_search(report, std::regex("\n4,\"?NOT_FOUND: "))) << report;
    EXPECT_THAT(report, HasSubstr("\n6,"));
    EXPECT_THAT(report, Not(HasSubstr("\n2,")));
  }
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "10");
  EXPECT_EQ(BalanceJson("FW-0001")["on_hand"], "7");

  CliResult json = Run({"--json", "import", "receipts", csv, "--no-progress"});
  ASSERT_EQ(json.exit_code, 6) << json.err;
  auto summary = nlohmann::json::parse(json.out);
  EXPECT_EQ(summary["rows_ok"], 2);
  EXPECT_EQ(summary["rows_failed"], 3);
  EXPECT_EQ(summary["errors"].size(), 3u);
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "10");
}

// An edited copy of an imported file is a new import (its request ids come from its content),
// so staff fix the failed rows in a file of their own: --rejected-out writes it.
TEST_F(StockctlTest, RejectedRowsAreWrittenAsTheyWereAndImportAloneOnceFixed) {
  CreateWarehouse();
  const std::string csv = dir_.Sub("receipts.csv");
  WriteFile(csv,
            "warehouse,item,lot,expiry_date,quantity,note\n"
            "420102-W001,SH-0001,,,10,donor A\n"               // 2 ok
            "420102-W001,SH-0002,,,abc,\"truck 1, door 2\"\n"  // 3 bad locally
            "420102-W999,SH-0002,,,5,\n");                     // 4 bad on the server
  const std::string rejected = dir_.Sub("rejected.csv");
  CliResult r = Run({"import", "receipts", csv, "--rejected-out", rejected});
  ASSERT_EQ(r.exit_code, 6) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("would apply its 1 good row again"));
  EXPECT_EQ(ReadFile(rejected),
            "warehouse,item,lot,expiry_date,quantity,note\n"
            "420102-W001,SH-0002,,,abc,\"truck 1, door 2\"\n"
            "420102-W999,SH-0002,,,5,\n");

  WriteFile(rejected,
            "warehouse,item,lot,expiry_date,quantity,note\n"
            "420102-W001,SH-0002,,,4,\"truck 1, door 2\"\n"
            "420102-W001,SH-0002,,,5,\n");
  CliResult fixed = Run({"import", "receipts", rejected});
  ASSERT_EQ(fixed.exit_code, 0) << fixed.out << fixed.err;
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "10");  // the good row, once
  EXPECT_EQ(BalanceJson("SH-0002")["on_hand"], "9");
}

TEST_F(StockctlTest, LargeImportGoesInChunksAndOnlyTheRejectedChunkGoesRowByRow) {
  CreateWarehouse();
  std::string text = "warehouse,item,quantity,note\n";
  for (int line = 2; line <= 2501; ++line) {
    // Line 1500 (in the second chunk of 1,000) names a warehouse the server does not have.
    text += (line == 1500 ? "420102-W999" : "420102-W001") + std::string(",SH-0001,1,row ") +
            std::to_string(line) + "\n";
  }
  const std::string csv = dir_.Sub("big.csv");
  WriteFile(csv, text);
  for (int run = 0; run < 2; ++run) {
    CliResult r = Run({"--request-id=big-import", "import", "receipts", csv});
    ASSERT_EQ(r.exit_code, 6) << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr("rows ok: 2499"));
    EXPECT_THAT(r.out, HasSubstr("rows failed: 1"));
    EXPECT_TRUE(std::regex_search(r.out, std::regex("\n1500  NOT_FOUND: "))) << r.out;
  }
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "2499");
  // Chunks 1 and 3 went whole; chunk 2's good rows went one by one under their own ids.
  CliResult chunk = Run(
      {"--json", "movements", "--warehouse", "420102-W001", "--request", "big-import-c3", "--all"});
  ASSERT_EQ(chunk.exit_code, 0) << chunk.err;
  EXPECT_EQ(nlohmann::json::parse(chunk.out).size(), 500u);  // lines 2002-2501
  CliResult row = Run(
      {"--json", "movements", "--warehouse", "420102-W001", "--request", "big-import-c2-l1501"});
  ASSERT_EQ(row.exit_code, 0) << row.err;
  EXPECT_EQ(nlohmann::json::parse(row.out).size(), 1u);
}

// The natural thing after a row failed for a reason on the server's side (a suspended
// warehouse) is to fix that and run the same import again. The chunk that went row by row the
// first time must not now be accepted whole: its good rows are already in.
TEST_F(StockctlTest, RerunAfterFixingTheServerSideCauseAppliesEachRowOnce) {
  CreateWarehouse();
  ASSERT_EQ(Run({"warehouse", "create", "--code", "420102-W002", "--name", "江岸区二号库", "--kind",
                 "government", "--area", "2500"})
                .exit_code,
            0);
  ASSERT_EQ(Run({"warehouse", "update", "420102-W002", "--status", "suspended"}).exit_code, 0);
  const std::string csv = dir_.Sub("receipts.csv");
  WriteFile(csv,
            "warehouse,item,quantity\n"
            "420102-W001,SH-0001,10\n"
            "420102-W002,SH-0001,5\n"
            "420102-W001,SH-0002,7\n");
  CliResult first = Run({"import", "receipts", csv, "--no-progress"});
  ASSERT_EQ(first.exit_code, 6) << first.out << first.err;
  EXPECT_THAT(first.out, HasSubstr("rows ok: 2"));
  EXPECT_THAT(first.out, HasSubstr("run this same import again"));

  ASSERT_EQ(Run({"warehouse", "update", "420102-W002", "--status", "active"}).exit_code, 0);
  CliResult again = Run({"import", "receipts", csv, "--no-progress"});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_THAT(again.out, HasSubstr("rows ok: 3 (2 already in from an earlier run)"));
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "10");  // once, not twice
  EXPECT_EQ(BalanceJson("SH-0002")["on_hand"], "7");
  CliResult w2 =
      Run({"--json", "balance", "get", "--warehouse", "420102-W002", "--item", "SH-0001"});
  ASSERT_EQ(w2.exit_code, 0) << w2.err;
  EXPECT_EQ(nlohmann::json::parse(w2.out)["on_hand"], "5");
}

// The server answers a reused id with "use a new request_id", which for an import would apply
// every row again: stockctl says what happened and what to do instead.
TEST_F(StockctlTest, SameImportByAnotherActorStopsAndSaysWhyWithoutApplyingAgain) {
  CreateWarehouse();
  const std::string csv = dir_.Sub("receipts.csv");
  WriteFile(csv, "warehouse,item,quantity\n420102-W001,SH-0001,10\n");
  ASSERT_EQ(Run({"import", "receipts", csv, "--no-progress"}).exit_code, 0);
  CliResult other = Run({"--actor=keeper-2", "import", "receipts", csv, "--no-progress"});
  EXPECT_EQ(other.exit_code, 2) << other.out << other.err;
  EXPECT_THAT(other.err, HasSubstr("imported before by another --actor"));
  EXPECT_THAT(other.err, HasSubstr("A new --request-id would apply the file's rows a second time"));
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "10");
}

// A service that took the connection and went away during the call (it stopped, or was killed
// mid-call) used to be told as a TLS mismatch ("Socket closed" either way). Its address now
// refuses connections, which a TLS server's does not: the hint says it went away. A one-shot
// listener stands in for it: it accepts one connection, reads what the client sends, then closes
// the connection and stops listening.
TEST_F(StockctlTest, AServiceThatWentAwayDuringTheCallIsNotCalledATlsMismatch) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);  // not in stockctl
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), length), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  std::thread gone([listener] {
    const int connection = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    close(listener);
    if (connection < 0) return;
    char buffer[4096];  // all the client sent, so that closing ends cleanly, not with a reset
    pollfd waiting{connection, POLLIN, 0};
    while (poll(&waiting, 1, 300) > 0 && read(connection, buffer, sizeof(buffer)) > 0) {
    }
    close(connection);
  });
  port_ = ntohs(address.sin_port);
  CliResult r = Run({"info"});
  gone.join();
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_THAT(r.err, HasSubstr("closed the connection and accepts no other: it stopped or is "
                               "restarting; retry once it is back"));
  EXPECT_THAT(r.err, Not(HasSubstr("TLS handshake failed")));
}

// The level as deployed: TLS, and bearer tokens whose scope is a region.
class StockctlWithTokensTest : public StockctlTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pki_.MakeCa("ca") && pki_.MakeLeaf("server", "ca", "serverAuth")) << pki_.log;
    WriteFile(pki_.Path("token.key"), "a deployment secret of more than 32 bytes!!");
    StartServer({"--tls-cert=" + pki_.Path("server.pem"), "--tls-key=" + pki_.Path("server.key"),
                 "--auth-key-file=" + pki_.Path("token.key")},
                {{"STOCKPILE_INSECURE", "0"}});
  }

  // A token file for `subject`, made with stockctl token issue.
  std::string TokenFile(const std::string& subject, const std::string& role,
                        const std::string& scope) {
    CliResult token = Run({"token", "issue", "--key", pki_.Path("token.key"), "--subject", subject,
                           "--role", role, "--scope", scope});
    EXPECT_EQ(token.exit_code, 0) << token.err;
    const std::string path = pki_.Path(subject + ".token");
    WriteFile(path, token.out);
    return path;
  }

  CliResult RunWith(const std::string& token_file, std::vector<std::string> args) {
    args.insert(args.begin(), {"--tls-ca=" + pki_.Path("ca.pem"), "--token-file=" + token_file});
    return Run(args);
  }

  std::string OnHand(const std::string& warehouse, const std::string& item) {
    CliResult r =
        RunWith(admin_, {"--json", "balance", "get", "--warehouse", warehouse, "--item", item});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return nlohmann::json::parse(r.out, nullptr, false).value("on_hand", "?");
  }

  Pki pki_{dir_.path()};
  std::string admin_;
};

// A TLS server reached without TLS is a settings problem, not a wrong address; a token file
// that cannot be read stops stockctl before it calls (exit 1), not as a refusal (exit 4).
TEST_F(StockctlWithTokensTest, TlsMismatchAndAnUnreadableTokenFileSayWhatToFix) {
  admin_ = TokenFile("admin-1", "admin", "");
  CliResult plaintext = Run({"--token-file=" + admin_, "info"});
  EXPECT_EQ(plaintext.exit_code, 5) << plaintext.err;
  EXPECT_THAT(plaintext.err, HasSubstr("but the TLS handshake failed: check --tls-ca"));
  EXPECT_THAT(plaintext.err, Not(HasSubstr("no level service answers")));

  CliResult missing = RunWith(dir_.Sub("no-such.token"), {"info"});
  EXPECT_EQ(missing.exit_code, 1) << missing.err;
  EXPECT_THAT(missing.err, HasSubstr("cannot read a token from " + dir_.Sub("no-such.token")));
  EXPECT_THAT(missing.err, Not(HasSubstr("UNAUTHENTICATED")));

  EXPECT_EQ(RunWith(admin_, {"info"}).exit_code, 0);
}

// A receipts file with one row at a warehouse outside the token's region: that row fails with
// its line, the others go in, and a second run applies nothing twice.
TEST_F(StockctlWithTokensTest, ImportRowOutsideTheTokensScopeFailsAloneWithItsLine) {
  admin_ = TokenFile("admin-1", "admin", "");
  for (const std::string code : {"420102-W001", "420103-W001"}) {
    CliResult r = RunWith(admin_, {"warehouse", "create", "--code", code, "--name", "store " + code,
                                   "--kind", "government", "--area", "2500"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  const std::string staff = TokenFile("wang.li", "staff", "420102");
  const std::string csv = dir_.Sub("receipts.csv");
  WriteFile(csv,
            "warehouse,item,quantity\n"
            "420102-W001,SH-0001,10\n"    // 2
            "420102-W001,SH-0002,20\n"    // 3
            "420103-W001,SH-0001,30\n"    // 4: outside scope 420102
            "420102-W001,SH-0003,40\n");  // 5
  for (int run = 0; run < 2; ++run) {
    CliResult r = RunWith(staff, {"import", "receipts", csv, "--no-progress"});
    ASSERT_EQ(r.exit_code, 6) << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr(run == 0 ? "rows ok: 3\n" : "rows ok: 3 (3 already in"));
    EXPECT_THAT(r.out, HasSubstr("rows failed: 1\n"));
    EXPECT_THAT(r.out, Not(HasSubstr("rows not sent")));
    EXPECT_TRUE(std::regex_search(
        r.out, std::regex("\n   4  PERMISSION_DENIED: wang\\.li [^\n]*may not call \\S+Receive: "
                          "op.warehouse \"warehouses/420103-W001\" is in region 420103, outside "
                          "scope 420102\n")))
        << r.out;
  }
  // Someone with a national token runs the same file: the chunk's id holds the rows in scope,
  // so the import stops rather than apply them a second time.
  CliResult national = RunWith(admin_, {"import", "receipts", csv, "--no-progress"});
  EXPECT_EQ(national.exit_code, 2) << national.out << national.err;
  EXPECT_THAT(national.err, HasSubstr("with a token of another scope"));
  EXPECT_EQ(OnHand("420102-W001", "SH-0001"), "10");
  EXPECT_EQ(OnHand("420102-W001", "SH-0002"), "20");
  EXPECT_EQ(OnHand("420102-W001", "SH-0003"), "40");
  EXPECT_EQ(OnHand("420103-W001", "SH-0001"), "0");
}

// Scripts read --errors-out after an import: a path that cannot be written stops the import
// before anything is sent, instead of a warning after the rows went in and exit 0.
TEST_F(StockctlTest, UnwritableReportPathStopsTheImportBeforeAnythingIsSent) {
  CreateWarehouse();
  const std::string csv = dir_.Sub("receipts.csv");
  WriteFile(csv, "warehouse,item,quantity\n420102-W001,SH-0001,10\n420102-W001,SH-0001,x\n");
  const std::string nowhere = dir_.Sub("no-such-dir/out.csv");
  for (const std::string flag : {"--errors-out", "--rejected-out"}) {
    CliResult r = Run({"import", "receipts", csv, "--no-progress", flag, nowhere});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr(flag + ": cannot write " + nowhere +
                                 ": No such file or directory; nothing was sent"));
  }
  CliResult info = Run({"--json", "info"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(nlohmann::json::parse(info.out)["last_sequence"], "1");  // the warehouse only
  // A writable path is not left behind by the check when the import stops after it.
  const std::string errors = dir_.Sub("errors.csv");
  EXPECT_EQ(
      Run({"import", "receipts", csv, "--errors-out", errors, "--rejected-out", nowhere}).exit_code,
      1);
  EXPECT_FALSE(std::filesystem::exists(errors));
}

// A report that fails to be written at the end (here: a full disk) is not a success either.
TEST_F(StockctlTest, ReportThatCannotBeWrittenAtTheEndIsNotASuccess) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "needs /dev/full";
  CreateWarehouse();
  const std::string csv = dir_.Sub("receipts.csv");
  WriteFile(csv, "warehouse,item,quantity\n420102-W001,SH-0001,10\n");
  CliResult r = Run({"import", "receipts", csv, "--no-progress", "--errors-out", "/dev/full"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("--errors-out: cannot write /dev/full: No space left on device"));
  EXPECT_THAT(r.out, HasSubstr("rows ok: 1"));
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "10");
}

// A lot received already past its expiry (a mistyped year, most often) goes in, as expired stock
// does arrive, but is issued only when named, never held or planned: stockctl says so, for a
// single receipt and for the rows of an import.
TEST_F(StockctlTest, AReceiptAlreadyPastItsExpiryIsAcceptedWithAWarning) {
  CreateWarehouse();
  CliResult past = Run({"receive", "--warehouse", "420102-W001", "--item", "MD-0004", "--lot",
                        "L2020", "--expiry", "2020-01-31", "--quantity", "3"});
  EXPECT_EQ(past.exit_code, 0) << past.err;
  EXPECT_THAT(past.err, HasSubstr("warning: lot L2020 expired on 2020-01-31, before today"));
  CliResult future = Run({"receive", "--warehouse", "420102-W001", "--item", "MD-0004", "--lot",
                          "L2099", "--expiry", "2099-01-31", "--quantity", "3"});
  EXPECT_EQ(future.exit_code, 0) << future.err;
  EXPECT_THAT(future.err, Not(HasSubstr("warning")));

  const std::string csv = dir_.Sub("receipts.csv");
  WriteFile(csv,
            "warehouse,item,lot,expiry_date,quantity,note\n"
            "420102-W001,MD-0004,L2098,2098-01-31,1,\n"
            "420102-W001,MD-0004,L2021,2021-06-30,1,\n");
  CliResult imported = Run({"import", "receipts", csv, "--no-progress"});
  EXPECT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_THAT(imported.err, HasSubstr("1 receipt row had an expiry before today"));
  EXPECT_THAT(imported.err, HasSubstr("line 3: stocked as expired"));
}

// Tables print times to the second; a balance asked --as-of a time copied from `movements`
// counts the movements printed with that time (it read only up to its first microsecond, so a
// receipt printed at 11:10:12 was not in the balance "as of 11:10:12"). A fraction is exact.
TEST_F(StockctlTest, BalanceAsOfATimeToTheSecondCountsThatWholeSecond) {
  CreateWarehouse();
  ASSERT_EQ(ReceiveShelters("10").exit_code, 0);
  CliResult listed = Run({"--json", "movements", "--warehouse", "420102-W001"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  nlohmann::json movements = nlohmann::json::parse(listed.out, nullptr, false);
  ASSERT_TRUE(movements.is_array() && !movements.empty()) << listed.out;
  const std::string exact = movements[0]["create_time"];  // 2026-12-05T11:10:12.369123Z
  const std::string second = exact.substr(0, exact.find('.')) + "Z";
  auto on_hand_as_of = [&](const std::string& when) {
    CliResult r = Run({"--json", "balance", "get", "--warehouse", "420102-W001", "--item",
                       "SH-0001", "--as-of", when});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out, nullptr, false).value("on_hand", std::string("0"));
  };
  EXPECT_EQ(on_hand_as_of(second), "10") << second;
  EXPECT_EQ(on_hand_as_of(exact), "10") << exact;
  EXPECT_EQ(on_hand_as_of(second.substr(0, second.size() - 1) + ".000000Z"), "0");
}

// Rotation exists to bring good stock in: a new lot whose expiry is already past (a mistyped year)
// is rotated in, but stockctl says so, as it does for a receipt; the same for a lot a stocktake
// counts in and the lots a transfer delivers.
TEST_F(StockctlTest, LotsTakenInAlreadyPastTheirExpiryAreWarnedOf) {
  CreateWarehouse();
  ASSERT_EQ(Run({"receive", "--warehouse", "420102-W001", "--item", "FW-0001", "--lot", "L2019",
                 "--expiry", "2020-01-31", "--quantity", "4"})
                .exit_code,
            0);
  CliResult rotated = Run({"rotate", "--warehouse", "420102-W001", "--item", "FW-0001", "--new-lot",
                           "R1", "--new-expiry", "2020-06-30"});
  EXPECT_EQ(rotated.exit_code, 0) << rotated.err;
  EXPECT_THAT(rotated.err, HasSubstr("warning: lot R1 expired on 2020-06-30, before today"));
  CliResult counted = Run({"stocktake", "--warehouse", "420102-W001", "--item", "FW-0001",
                           "--count", "C1:2:2021-03-31", "--reason", "found"});
  EXPECT_EQ(counted.exit_code, 0) << counted.err;
  EXPECT_THAT(counted.err, HasSubstr("warning: lot C1 expired on 2021-03-31"));
  CliResult good = Run({"rotate", "--warehouse", "420102-W001", "--item", "FW-0001", "--new-lot",
                        "R2", "--new-expiry", "2099-06-30"});
  EXPECT_EQ(good.exit_code, 0) << good.err;
  EXPECT_THAT(good.err, Not(HasSubstr("warning")));
}

// An expiry typed without dashes after a count (20270101, as dates are often written in China)
// is refused: it used to become the count, 20,270,101 units in a new lot "N1:1", exit 0.
TEST_F(StockctlTest, StocktakeRefusesAnExpiryWithoutDashes) {
  CreateWarehouse();
  ASSERT_EQ(ReceiveShelters("5").exit_code, 0);
  CliResult r = Run({"stocktake", "--warehouse", "420102-W001", "--item", "SH-0001", "--count",
                     "N1:1:20270101", "--reason", "count"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;  // usage
  EXPECT_THAT(r.err, HasSubstr("write the expiry with dashes (2027-01-01)"));
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "5");
}

TEST_F(StockctlTest, StocktakeImportAdjustsToTheCount) {
  CreateWarehouse();
  ASSERT_EQ(ReceiveShelters("50").exit_code, 0);
  const std::string csv = dir_.Sub("count.csv");
  WriteFile(csv,
            "warehouse,item,lot,expiry_date,counted,reason\n"
            "420102-W001,SH-0001,,,47,damaged in storage\n"
            "420102-W001,SH-0003,,,2,\n");  // differs from 0 without a reason: server refuses
  CliResult r = Run({"import", "stocktake", csv});
  ASSERT_EQ(r.exit_code, 6) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("rows ok: 1"));
  EXPECT_THAT(r.out, HasSubstr("reason is required"));
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "47");
}

// A stocktake row without a lot counts the whole shelf. Where the item is kept in named lots it
// used to start a DEFAULT lot beside them and the shelf read double; it is now refused with its
// line, naming the lots, and the other rows go in.
TEST_F(StockctlTest, StocktakeRowWithoutLotIsRefusedWhereStockIsInNamedLots) {
  CreateWarehouse();
  for (const char* lot : {"2024-A", "2024-B"}) {
    ASSERT_EQ(Run({"receive", "--warehouse", "420102-W001", "--item", "BD-0001", "--lot", lot,
                   "--quantity", "25"})
                  .exit_code,
              0);
  }
  ASSERT_EQ(ReceiveShelters("50").exit_code, 0);
  const std::string csv = dir_.Sub("count.csv");
  WriteFile(csv,
            "warehouse,item,lot,expiry_date,counted,reason\n"
            "420102-W001,BD-0001,,,50,monthly count\n"    // 2: the lots are named in the ledger
            "420102-W001,SH-0001,,,48,two torn\n"         // 3: all in DEFAULT: fine
            "420102-W001,BD-0001,2024-A,,24,one wet\n");  // 4
  CliResult r = Run({"import", "stocktake", csv, "--no-progress"});
  ASSERT_EQ(r.exit_code, 6) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("rows ok: 2"));
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\n +2  INVALID_ARGUMENT: .*kept in lots "
                                                  "2024-A, 2024-B: count each lot")))
      << r.out;
  nlohmann::json lots = BalanceJson("BD-0001");
  EXPECT_EQ(lots["on_hand"], "49");
  EXPECT_EQ(lots["lots"].size(), 2u);
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "48");
}

// A receipt list saved by Excel on Chinese Windows (GBK) is refused whole, with how to import
// it, and goes in with --encoding=gb18030; a missing file or a directory says which it is.
TEST_F(StockctlTest, AGbkReceiptListIsRefusedWholeOrConverted) {
  CreateWarehouse();
  const std::string csv = dir_.Sub("gbk.csv");
  WriteFile(csv,
            "warehouse,item,quantity,note\n"
            "420102-W001,SH-0006,2,ascii\n"
            "420102-W001,SH-0006,1,\xca\xa1\xc3\xf1\xd5\xfe\xcc\xfc\n");
  CliResult refused = Run({"import", "receipts", csv});
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("--encoding=gb18030"));
  EXPECT_EQ(BalanceJson("SH-0006")["on_hand"], "0");  // nothing was sent
  CliResult converted = Run({"import", "receipts", csv, "--encoding", "gb18030"});
  ASSERT_EQ(converted.exit_code, 0) << converted.out << converted.err;
  EXPECT_EQ(BalanceJson("SH-0006")["on_hand"], "3");
  CliResult movements =
      Run({"--json", "movements", "--warehouse", "420102-W001", "--item", "SH-0006"});
  EXPECT_THAT(movements.out, HasSubstr("省民政厅"));

  CliResult missing = Run({"import", "receipts", dir_.Sub("no-such.csv")});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("No such file or directory"));
  CliResult directory = Run({"import", "receipts", dir_.path()});
  EXPECT_EQ(directory.exit_code, 1);
  EXPECT_THAT(directory.err, HasSubstr("is a directory"));
}

// The clerk's round trip: a GBK sheet with a bad row, its --rejected-out fixed and imported with
// the same command. The rejected rows come back in GBK, so the note goes in as written; a UTF-8
// file under --encoding=gbk (which would be stored garbled) is refused with nothing sent.
TEST_F(StockctlTest, GbkRejectedRowsRoundTripAndAUtf8FileIsNotConvertedAgain) {
  CreateWarehouse();
  const std::string gbk_note = "\xB7\xC0\xD1\xB4\xCE\xEF\xD7\xCA";  // 防汛物资
  const std::string csv = dir_.Sub("gbk.csv");
  WriteFile(csv, "warehouse,item,quantity,note\r\n420102-W001,SH-0002,abc," + gbk_note + "\r\n");
  const std::string rejected = dir_.Sub("gbk.rej.csv");
  CliResult first =
      Run({"import", "receipts", csv, "--encoding", "gb18030", "--rejected-out", rejected});
  ASSERT_EQ(first.exit_code, 6) << first.out << first.err;
  std::string fixed = ReadFile(rejected);
  EXPECT_THAT(fixed, HasSubstr(gbk_note));
  fixed.replace(fixed.find(",abc,"), 5, ",3,");
  WriteFile(rejected, fixed);
  CliResult again = Run({"import", "receipts", rejected, "--encoding", "gb18030"});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  CliResult movements =
      Run({"--json", "movements", "--warehouse", "420102-W001", "--item", "SH-0002"});
  EXPECT_THAT(movements.out, HasSubstr("防汛物资"));

  const std::string utf8 = dir_.Sub("utf8.csv");
  WriteFile(utf8, "warehouse,item,quantity,note\r\n420102-W001,SH-0001,6,省民政厅调拨\r\n");
  CliResult refused = Run({"import", "receipts", utf8, "--encoding", "gbk"});
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("already UTF-8"));
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "0");
}

// A mistyped command used to be told "A subcommand is required": the clerk did type one.
TEST_F(StockctlTest, AMistypedCommandIsNamedWithTheNearestOne) {
  CliResult r =
      Run({"recieve", "--warehouse", "420102-W001", "--item", "SH-0001", "--quantity", "1"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("unknown command 'recieve' (did you mean 'receive'?)"));
  CliResult far = Run({"frobnicate"});
  EXPECT_EQ(far.exit_code, 1);
  EXPECT_THAT(far.err, HasSubstr("unknown command 'frobnicate'"));
  EXPECT_THAT(far.err, Not(HasSubstr("did you mean")));
  CliResult none = Run({});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.err, HasSubstr("A subcommand is required"));
}

// A byte-identical stocktake sheet brought in on a later day is the same import (its request
// ids come from the content), so its counts are not applied again: that keeps an interrupted
// import from applying twice, but it is said on stderr with how to import the sheet on purpose.
TEST_F(StockctlTest, ASheetImportedAgainSaysNothingNewWasAppliedAndHowToApplyIt) {
  CreateWarehouse();
  ASSERT_EQ(ReceiveShelters("8").exit_code, 0);
  const std::string csv = dir_.Sub("count.csv");
  WriteFile(csv,
            "warehouse,item,lot,expiry_date,counted,reason\n"
            "420102-W001,SH-0001,,,8,quarterly count\n");
  CliResult first = Run({"import", "stocktake", csv, "--no-progress"});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_THAT(first.err, Not(HasSubstr("NOTE")));
  ASSERT_EQ(ReceiveShelters("2").exit_code, 0);
  CliResult again = Run({"import", "stocktake", csv, "--no-progress"});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_THAT(again.err, HasSubstr("NOTE: every row of this file had been applied already"));
  EXPECT_THAT(again.err, HasSubstr("nothing new was applied for any row"));
  EXPECT_THAT(again.err, HasSubstr("a new --request-id"));
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "10");  // the count was not applied again
  CliResult on_purpose =
      Run({"--request-id=stocktake-2", "import", "stocktake", csv, "--no-progress"});
  ASSERT_EQ(on_purpose.exit_code, 0) << on_purpose.out << on_purpose.err;
  EXPECT_THAT(on_purpose.err, Not(HasSubstr("NOTE")));
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "8");
}

TEST_F(StockctlTest, BalanceSurvivesARestart) {
  CreateWarehouse();
  ASSERT_EQ(Run({"receive", "--warehouse", "420102-W001", "--item", "FW-0001", "--lot", "L9",
                 "--expiry", "2031-06-30", "--quantity", "42"})
                .exit_code,
            0);
  RestartServer();
  nlohmann::json balance = BalanceJson("FW-0001");
  EXPECT_EQ(balance["on_hand"], "42");
  ASSERT_EQ(balance["lots"].size(), 1u);
  EXPECT_EQ(balance["lots"][0]["expiry_date"], "2031-06-30");
}

// `quota set --min` alone raises the floor and keeps the ceiling; `reserve set --quantity` alone
// keeps the partner and lead time. Before, each left-out setting was cleared.
TEST_F(StockctlTest, SettingAQuotaOrReserveKeepsWhatWasLeftOut) {
  CreateWarehouse();
  ASSERT_EQ(Run({"quota", "set", "--warehouse", "420102-W001", "--item", "SH-0001", "--min", "5",
                 "--max", "50"})
                .exit_code,
            0);
  CliResult raised = Run(
      {"--json", "quota", "set", "--warehouse", "420102-W001", "--item", "SH-0001", "--min", "10"});
  ASSERT_EQ(raised.exit_code, 0) << raised.err;
  auto quota = nlohmann::json::parse(raised.out);
  EXPECT_EQ(quota["min"], "10");
  EXPECT_EQ(quota["max"], "50");
  CliResult cleared = Run({"--json", "quota", "set", "--warehouse", "420102-W001", "--item",
                           "SH-0001", "--min", "10", "--max", "0"});
  ASSERT_EQ(cleared.exit_code, 0) << cleared.err;
  EXPECT_EQ(nlohmann::json::parse(cleared.out)["max"], "0");

  ASSERT_EQ(
      Run({"reserve", "set", "--warehouse", "420102-W001", "--item", "SH-0001", "--mode",
           "contract", "--quantity", "100", "--lead-time-hours", "48", "--partner", "武汉帐篷厂"})
          .exit_code,
      0);
  CliResult more = Run({"--json", "reserve", "set", "--warehouse", "420102-W001", "--item",
                        "SH-0001", "--mode", "contract", "--quantity", "200"});
  ASSERT_EQ(more.exit_code, 0) << more.err;
  auto reserve = nlohmann::json::parse(more.out);
  EXPECT_EQ(reserve["quantity"], "200");
  EXPECT_EQ(reserve["lead_time_hours"], 48);
  EXPECT_EQ(reserve["partner"], "武汉帐篷厂");
}

// Rotation: the expired lot (first in line) leaves and a fresh lot comes in under one request id;
// a retry of the same command after the balance moved changes nothing; a rotation the service
// refuses in either half changes nothing at all.
TEST_F(StockctlTest, RotateReplacesTheExpiredLotAtOnceAndARetryMovesNothingTwice) {
  CreateWarehouse();
  for (const auto& [lot, expiry, quantity] :
       {std::tuple{"L2019", "2020-01-31", "40"}, std::tuple{"L2025", "2027-06-30", "120"}}) {
    ASSERT_EQ(Run({"receive", "--warehouse", "420102-W001", "--item", "FW-0001", "--lot", lot,
                   "--expiry", expiry, "--quantity", quantity})
                  .exit_code,
              0);
  }
  const std::vector<std::string> rotate = {
      "--request-id=rot-1", "rotate", "--warehouse",
      "420102-W001",        "--item", "FW-0001",
      "--new-lot",          "L2032",  "--new-expiry",
      "2032-06-30",         "--note", "destroyed, out of date"};
  CliResult first = Run(rotate);
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  const std::string said =
      "rotated out 40 of lot L2019 (expires 2020-01-31), in 40 of lot L2032 (expires 2032-06-30)";
  EXPECT_THAT(first.out, HasSubstr(said));

  auto lots = [&] {
    std::map<std::string, std::string> on_hand;
    nlohmann::json balance = BalanceJson("FW-0001");
    for (const auto& lot : balance["lots"]) {
      on_hand[lot["lot"]] = lot.value("on_hand", std::string("0"));
    }
    return on_hand;
  };
  const std::map<std::string, std::string> after = {
      {"L2019", "0"}, {"L2025", "120"}, {"L2032", "40"}};
  EXPECT_EQ(lots(), after);

  CliResult retry = Run(rotate);  // L2025 would be first in line now
  ASSERT_EQ(retry.exit_code, 0) << retry.out << retry.err;
  EXPECT_THAT(retry.out, HasSubstr(said));
  EXPECT_EQ(lots(), after);

  CliResult moves =
      Run({"--json", "movements", "--warehouse", "420102-W001", "--request", "rot-1"});
  ASSERT_EQ(moves.exit_code, 0) << moves.err;
  auto list = nlohmann::json::parse(moves.out);
  ASSERT_EQ(list.size(), 2u) << moves.out;
  EXPECT_EQ(list[0]["type"], "MOVEMENT_TYPE_ISSUE");
  EXPECT_EQ(list[0]["note"], "rotation out, replaced by lot L2032: destroyed, out of date");
  EXPECT_EQ(list[1]["type"], "MOVEMENT_TYPE_RECEIVE");
  EXPECT_EQ(list[1]["note"], "rotation in, replaces lot L2019");

  CliResult no_expiry =
      Run({"rotate", "--warehouse", "420102-W001", "--item", "FW-0001", "--new-lot", "L2033"});
  EXPECT_EQ(no_expiry.exit_code, 2) << no_expiry.out << no_expiry.err;
  EXPECT_THAT(no_expiry.err, HasSubstr("INVALID_ARGUMENT"));
  CliResult too_much =
      Run({"rotate", "--warehouse", "420102-W001", "--item", "FW-0001", "--lot", "L2025",
           "--quantity", "500", "--new-lot", "L2033", "--new-expiry", "2033-06-30"});
  EXPECT_EQ(too_much.exit_code, 2) << too_much.out << too_much.err;
  EXPECT_THAT(too_much.err, HasSubstr("only 120 available"));
  CliResult unknown = Run({"rotate", "--warehouse", "420102-W001", "--item", "FW-0001", "--lot",
                           "L1999", "--new-lot", "L2033", "--new-expiry", "2033-06-30"});
  EXPECT_EQ(unknown.exit_code, 3) << unknown.out << unknown.err;
  EXPECT_THAT(unknown.err, HasSubstr("lot L1999 of FW-0001"));
  EXPECT_EQ(lots(), after);
}

// A backup taken while the service runs, put in place of its database: the ledger is back as it
// was when the backup was taken, and what came after can be entered again.
TEST_F(StockctlTest, BackupTakenWhileServingRestoresTheLedgerAsItWas) {
  CreateWarehouse();
  ASSERT_EQ(Run({"receive", "--warehouse", "420102-W001", "--item", "SH-0001", "--quantity", "42",
                 "--request-id", "before-backup"})
                .exit_code,
            0);
  CliResult backup = Run({"--json", "backup", "--request-id", "nightly-1"});
  ASSERT_EQ(backup.exit_code, 0) << backup.err;
  auto json = nlohmann::json::parse(backup.out);
  const std::string path = json["path"];
  EXPECT_EQ(path.rfind(dir_.Sub("backups") + "/backup-", 0), 0u) << path;
  EXPECT_EQ(json["sequence"], "2");
  // A retry (a job run twice, an answer lost) gets the same backup; a new request a new one.
  CliResult retry = Run({"--json", "backup", "--request-id", "nightly-1"});
  ASSERT_EQ(retry.exit_code, 0) << retry.err;
  EXPECT_EQ(nlohmann::json::parse(retry.out)["path"], path);
  EXPECT_THAT(Run({"backup"}).out, HasSubstr("holds changes up to at least sequence: 2"));
  CliResult listed = Run({"--json", "backup", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  auto backups = nlohmann::json::parse(listed.out);
  ASSERT_EQ(backups.size(), 2u) << listed.out;
  EXPECT_EQ(backups[1]["path"], path);
  EXPECT_EQ(backups[1]["request_id"], "nightly-1");
  EXPECT_THAT(Run({"backup", "list"}).out, HasSubstr("nightly-1"));
  ASSERT_EQ(Run({"receive", "--warehouse", "420102-W001", "--item", "SH-0001", "--quantity", "8",
                 "--request-id", "after-backup"})
                .exit_code,
            0);
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "50");

  ASSERT_EQ(server_->Stop(SIGTERM), 0) << server_->Log();
  StartServer({"--restore-from=" + path});
  EXPECT_THAT(server_->Log(),
              HasSubstr("the database it replaced is at " + dir_.Sub("db") + ".replaced-"));
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "42");
  CliResult info = Run({"--json", "info"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(nlohmann::json::parse(info.out)["last_sequence"], "2");
  ASSERT_EQ(Run({"receive", "--warehouse", "420102-W001", "--item", "SH-0001", "--quantity", "8",
                 "--request-id", "after-backup"})
                .exit_code,
            0);
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "50");
  // A restart with --restore-from still on (a pod restarted before the flag came off) serves
  // that receipt: restoring again would drop it.
  ASSERT_EQ(server_->Stop(SIGTERM), 0) << server_->Log();
  StartServer({"--restore-from=" + path});
  EXPECT_THAT(server_->Log(), HasSubstr("has committed 1 changes since; they are kept"));
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "50");
}

// A restart with --restore-from still on, before the restored level has taken a change,
// restores nothing again.
TEST_F(StockctlTest, RestoreFromLeftOnDoesNothingMore) {
  CreateWarehouse();
  CliResult backup = Run({"--json", "backup", "--request-id", "nightly-1"});
  ASSERT_EQ(backup.exit_code, 0) << backup.err;
  const std::string path = nlohmann::json::parse(backup.out)["path"];
  ASSERT_EQ(server_->Stop(SIGTERM), 0) << server_->Log();
  StartServer({"--restore-from=" + path});
  EXPECT_THAT(server_->Log(), HasSubstr("the database it replaced is at "));
  ASSERT_EQ(server_->Stop(SIGTERM), 0) << server_->Log();
  StartServer({"--restore-from=" + path});
  EXPECT_THAT(server_->Log(), HasSubstr("has taken no change since; nothing to do"));
}

// Defect: a second level process started with --restore-from and the --db of a level still
// serving moved the live database aside and served too. Now it is refused, naming the
// database, and the first one keeps serving its own.
TEST_F(StockctlTest, RestoreIntoTheDatabaseOfARunningLevelIsRefused) {
  CreateWarehouse();
  CliResult backup = Run({"--json", "backup", "--request-id", "nightly-1"});
  ASSERT_EQ(backup.exit_code, 0) << backup.err;
  const std::string path = nlohmann::json::parse(backup.out)["path"];
  ASSERT_EQ(Run({"receive", "--warehouse", "420102-W001", "--item", "SH-0001", "--quantity", "8",
                 "--request-id", "after-backup"})
                .exit_code,
            0);

  std::string second;
  const std::vector<std::string> argv =
      LevelCommand({"--restore-from=" + path, "--port-file=" + dir_.Sub("second-port")});
  EXPECT_EQ(RunCommand(argv, &second), 2) << second;  // (without the check: serves until killed)
  EXPECT_THAT(second, HasSubstr("the database " + dir_.Sub("db") + " is in use"));
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_THAT(entry.path().filename().string(), Not(HasSubstr("replaced"))) << entry.path();
  }
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "8");
  ASSERT_EQ(Run({"receive", "--warehouse", "420102-W001", "--item", "SH-0001", "--quantity", "2",
                 "--request-id", "after-refusal"})
                .exit_code,
            0);
  RestartServer();
  EXPECT_EQ(BalanceJson("SH-0001")["on_hand"], "10");
}

TEST_F(StockctlTest, WarnsWhenATokenWouldTravelInPlaintext) {
  CreateWarehouse();
  CliResult without_token = Run({"warehouse", "get", "420102-W001"});
  ASSERT_EQ(without_token.exit_code, 0) << without_token.err;
  EXPECT_THAT(without_token.err, Not(HasSubstr("plaintext")));

  const std::string token_file = dir_.Sub("token");
  WriteFile(token_file, "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl\n");
  CliResult with_token = Run({"--token-file", token_file, "warehouse", "get", "420102-W001"});
  ASSERT_EQ(with_token.exit_code, 0) << with_token.err;
  EXPECT_THAT(with_token.err, HasSubstr("the bearer token is sent over plaintext"));
  EXPECT_THAT(with_token.err, Not(HasSubstr("c2lnbmF0dXJl")));  // the token itself is never printed
}

TEST_F(StockctlTest, ExitCodesForNotFoundRefusalsAndUsage) {
  CreateWarehouse();
  CliResult missing = Run({"warehouse", "get", "420102-W404"});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_THAT(missing.err, HasSubstr("stockctl: NOT_FOUND: "));

  CliResult too_much =
      Run({"issue", "--warehouse", "420102-W001", "--item", "SH-0001", "--quantity", "5"});
  EXPECT_EQ(too_much.exit_code, 2) << too_much.err;

  CliResult zero =
      Run({"receive", "--warehouse", "420102-W001", "--item", "SH-0001", "--quantity", "0"});
  EXPECT_EQ(zero.exit_code, 2);
  EXPECT_THAT(zero.err, HasSubstr("stockctl: INVALID_ARGUMENT: "));

  CliResult twice = Run(
      {"warehouse", "create", "--code", "420102-W001", "--name", "again", "--kind", "government"});
  EXPECT_EQ(twice.exit_code, 2) << twice.err;

  EXPECT_EQ(Run({"receive", "--warehouse", "420102-W001"}).exit_code, 1);  // missing flags
  // Numbers the flag's type would clamp or wrap, or its "not given" default would swallow.
  CliResult clamped = Run({"receive", "--warehouse", "420102-W001", "--item", "SH-0001",
                           "--quantity", "9223372036854775808"});
  EXPECT_EQ(clamped.exit_code, 1);
  EXPECT_THAT(clamped.err, HasSubstr("got 9223372036854775808"));
  EXPECT_EQ(Run({"watch", "--from", "-1", "--limit", "1"}).exit_code, 1);
  // One of --warehouse and --region: the service would have ignored the region.
  EXPECT_EQ(Run({"balance", "list", "--warehouse", "420102-W001", "--region", "42"}).exit_code, 1);
  EXPECT_EQ(Run({"quota", "list", "--warehouse", "420102-W001", "--region", "42"}).exit_code, 1);
  EXPECT_EQ(Run({"warehouse", "update", "420102-W001", "--area", "-5"}).exit_code, 1);
  EXPECT_EQ(Run({"warehouse", "update", "420102-W001", "--longitude", "1000", "--latitude", "30"})
                .exit_code,
            1);
  EXPECT_EQ(Run({"balance", "get", "--warehouse", "nope", "--item", "X"}).exit_code, 1);
  EXPECT_EQ(Run({"no-such-command"}).exit_code, 1);

  // A position past the end of this instance's history: refused, not waited on for ever.
  CliResult beyond = Run({"watch", "--from", "99"});
  EXPECT_EQ(beyond.exit_code, 2) << beyond.err;
  EXPECT_THAT(beyond.err, HasSubstr("nothing to watch after sequence 99: this instance's history "
                                    "ends at sequence 1"));

  server_->Stop();
  CliResult down = Run({"--timeout=2", "info"});
  EXPECT_EQ(down.exit_code, 5);
  EXPECT_THAT(down.err, HasSubstr("stockctl: UNAVAILABLE: "));
  // Says which address nothing answered at, and the flag that names it.
  EXPECT_THAT(down.err, HasSubstr("no level service answers at 127.0.0.1:" + std::to_string(port_) +
                                  ": give its address with --server"))
      << down.err;
  server_.reset();
}

}  // namespace
}  // namespace stockpile::testing
