// stockctl's catalogue and transfer commands against a real stockpile-local (five level services
// and the catalogue in one process): roll-ups, search, replication status, one transfer end to end.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/testutil/process.h"

namespace stockpile::testing {
namespace {

using nlohmann::json;
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

// Level i of stockpile-local listens on base+i (county 3, village 5), the catalogue on base+10.
constexpr int kCounty = 3;
constexpr int kVillage = 5;
constexpr int kCatalogue = 10;

class StockctlCatalogueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int attempt = 0; attempt < 5 && base_port_ == 0; ++attempt) TryStart();
    ASSERT_NE(base_port_, 0) << (local_ ? local_->Log() : "no start attempted");
  }
  void TearDown() override {
    if (local_) local_->Stop();
  }

  // Picks a base port whose neighbours look free; gives up on this attempt if the process
  // exits (a port was taken meanwhile) or is not ready within 30 s.
  void TryStart() {
    const int base = FreePort();
    if (base + kCatalogue > 65535) return;
    for (int offset : {1, 2, 3, 4, 5, kCatalogue}) {
      if (PortOpen(base + offset)) return;
    }
    const std::string log = dir_.Sub("local-" + std::to_string(base) + ".log");
    local_ = std::make_unique<Subprocess>(
        std::vector<std::string>{BinaryDir() + "/bin/stockpile-local", "--data-dir",
                                 dir_.Sub("data-" + std::to_string(base)), "--base-port",
                                 std::to_string(base), "--metrics-base-port", "0",
                                 "--reference-data", ReferenceDataDir()},
        log);
    if (!local_->Start()) return;
    const bool ready = WaitFor(
        [&] {
          return !local_->running() ||
                 (ReadFile(log).find("stockpile-local is running") != std::string::npos &&
                  PortOpen(base + kCatalogue));
        },
        std::chrono::seconds(30));
    if (ready && local_->running()) {
      base_port_ = base;
    } else {
      local_->Stop(9);
    }
  }

  std::string Address(int offset) const {
    return "127.0.0.1:" + std::to_string(base_port_ + offset);
  }

  // Runs stockctl with --server on a level (default the county) and --catalogue set.
  CliResult Run(std::vector<std::string> args, int level = kCounty) {
    const std::string err_path = dir_.Sub("stderr.txt");
    std::vector<std::string> argv = {"/bin/sh",
                                     "-c",
                                     "exec \"$0\" \"$@\" 2>" + err_path,
                                     BinaryDir() + "/bin/stockctl",
                                     "--server=" + Address(level),
                                     "--catalogue=" + Address(kCatalogue),
                                     "--actor=tester",
                                     "--timeout=20"};
    argv.insert(argv.end(), args.begin(), args.end());
    CliResult result;
    result.exit_code = RunCommand(argv, &result.out, "", std::chrono::seconds(30));
    result.err = ReadFile(err_path);
    return result;
  }

  json RunJson(std::vector<std::string> args, int level = kCounty) {
    args.insert(args.begin(), "--json");
    CliResult r = Run(args, level);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return json::parse(r.out, nullptr, false);
  }

  void CreateWarehouse(int level, const std::string& code, const std::string& name) {
    CliResult r = Run({"warehouse", "create", "--code", code, "--name", name, "--kind",
                       "government", "--area", "2500"},
                      level);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  void Receive(int level, const std::string& warehouse, const std::string& quantity) {
    CliResult r = Run(
        {"receive", "--warehouse", warehouse, "--item", "SH-0001", "--quantity", quantity}, level);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  // Polls the catalogue's roll-up of `region` until SH-0001's on hand is `expected` (5 s).
  bool RollupReaches(const std::string& region, const std::string& expected) {
    return WaitFor(
        [&] {
          CliResult r =
              Run({"--json", "catalogue", "rollup", "--region", region, "--item", "SH-0001"});
          json j = json::parse(r.out, nullptr, false);
          return r.exit_code == 0 && j.is_object() && j["items"].size() == 1 &&
                 j["items"][0]["on_hand"] == expected;
        },
        std::chrono::seconds(5));
  }

  // The level's balance of SH-0001 at a warehouse.
  std::string OnHand(const std::string& warehouse) {
    json j = RunJson({"balance", "get", "--warehouse", warehouse, "--item", "SH-0001"});
    return j.is_object() ? j["on_hand"].get<std::string>() : "";
  }

  TempDir dir_;
  std::unique_ptr<Subprocess> local_;
  int base_port_ = 0;
};

TEST_F(StockctlCatalogueTest, RollupSearchAndStatusSeeCountyAndVillageStock) {
  CreateWarehouse(kCounty, "420102-W001", "江岸区救灾物资储备库");
  Receive(kCounty, "420102-W001", "100");
  CreateWarehouse(kVillage, "420102002003-W001", "保成社区储备点");
  Receive(kVillage, "420102002003-W001", "7");

  ASSERT_TRUE(RollupReaches("42", "107")) << Run({"catalogue", "rollup", "--region", "42"}).out;
  CliResult rollup = Run({"catalogue", "rollup", "--region", "42"});
  ASSERT_EQ(rollup.exit_code, 0) << rollup.err;
  EXPECT_THAT(rollup.out, HasSubstr("42 湖北省"));
  // ITEM ON_HAND HELD AVAILABLE IN_TRANSIT CONTRACT CAPACITY WAREHOUSES FLOOR COVERAGE
  EXPECT_TRUE(
      std::regex_search(rollup.out, std::regex(R"(SH-0001 +107 +0 +107 +0 +0 +0 +2 +0 +-\n)")))
      << rollup.out;

  json hits = RunJson(
      {"catalogue", "search", "--item", "SH-0001", "--min", "5", "--near-region", "420103"});
  ASSERT_TRUE(hits.is_array());
  ASSERT_EQ(hits.size(), 2u) << hits.dump();
  EXPECT_LE(hits[0]["distance_km"].get<double>(), hits[1]["distance_km"].get<double>());
  json enough = RunJson({"catalogue", "search", "--item", "SH-0001", "--min", "50", "--near",
                         "114.3,30.6", "--radius-km", "100"});
  ASSERT_EQ(enough.size(), 1u) << enough.dump();
  EXPECT_EQ(enough[0]["stock"]["warehouse"], "warehouses/420102-W001");
  CliResult table = Run({"catalogue", "search", "--item", "SH-0001", "--min", "5", "--near-region",
                         "420103", "--limit", "1"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("DISTANCE_KM"));
  EXPECT_THAT(table.err, HasSubstr("more entries: --page-token="));
  EXPECT_THAT(table.err, Not(HasSubstr("--all"))) << "search does not take --all";

  json stock = RunJson(
      {"catalogue", "stock", "get", "--warehouse", "420102002003-W001", "--item", "SH-0001"});
  EXPECT_EQ(stock["on_hand"], "7");
  EXPECT_EQ(stock["level"], "LEVEL_VILLAGE");

  json status = RunJson({"catalogue", "status"});
  ASSERT_TRUE(status.is_array());
  ASSERT_EQ(status.size(), 5u) << status.dump();
  for (const auto& source : status) {
    EXPECT_TRUE(source["connected"].get<bool>()) << source.dump();
    EXPECT_FALSE(source["gone"].get<bool>()) << source.dump();
  }
  CliResult status_table = Run({"catalogue", "status"});
  EXPECT_THAT(status_table.out, HasSubstr("local-village"));
  EXPECT_THAT(status_table.out, HasSubstr(Address(kVillage)));
}

// Audit 30, F5: without --item, `stock list` lists every item in full, and a --page-token was
// applied to each item's listing: every item silently started after the token's warehouse.
// Refused as a usage error now; with --item a token of another query is the catalogue's refusal.
TEST_F(StockctlCatalogueTest, StockListOfEveryItemRefusesAPageToken) {
  CreateWarehouse(kCounty, "420102-W001", "江岸区一号库");
  CreateWarehouse(kCounty, "420102-W002", "江岸区二号库");
  Receive(kCounty, "420102-W001", "10");
  Receive(kCounty, "420102-W002", "20");
  ASSERT_TRUE(RollupReaches("420102", "30"));

  CliResult every =
      Run({"catalogue", "stock", "list", "--region", "420102", "--page-token", "420102-W001"});
  EXPECT_EQ(every.exit_code, 1) << every.out << every.err;
  EXPECT_THAT(every.err, HasSubstr("--page-token continues the listing of one item: give that "
                                   "--item with it"));
  EXPECT_EQ(every.out, "");

  CliResult first = Run({"catalogue", "stock", "list", "--region", "420102", "--item", "SH-0001",
                         "--page-size", "1"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  std::smatch token;
  ASSERT_TRUE(std::regex_search(first.err, token, std::regex("--page-token=(\\S+)"))) << first.err;
  CliResult next = Run({"catalogue", "stock", "list", "--region", "420102", "--item", "SH-0001",
                        "--page-size", "1", "--page-token", token[1]});
  ASSERT_EQ(next.exit_code, 0) << next.err;
  EXPECT_THAT(next.out, HasSubstr("420102-W002"));
  EXPECT_THAT(next.out, Not(HasSubstr("420102-W001")));
  CliResult other = Run({"catalogue", "stock", "list", "--region", "420102", "--item", "BD-0001",
                         "--page-token", token[1]});
  EXPECT_EQ(other.exit_code, 2) << other.out << other.err;
  EXPECT_THAT(other.err, HasSubstr("page_token belongs to another query"));
}

// The run command's levels take backups too: beside their databases, one directory a level.
TEST_F(StockctlCatalogueTest, LevelsOfTheLocalRunTakeBackups) {
  CliResult backup = Run({"--json", "backup", "--request-id", "local-backup"}, kVillage);
  ASSERT_EQ(backup.exit_code, 0) << backup.err;
  const std::string path = nlohmann::json::parse(backup.out)["path"];
  EXPECT_THAT(path, HasSubstr("/backups/village/backup-"));
  EXPECT_TRUE(std::filesystem::exists(path + "/CURRENT")) << path;
  CliResult listed = Run({"--json", "backup", "list"}, kVillage);
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(nlohmann::json::parse(listed.out).size(), 1u) << listed.out;
}

TEST_F(StockctlCatalogueTest, BadArgumentsAreUsageErrorsAndUnknownTransferIsNotFound) {
  EXPECT_EQ(Run({"catalogue", "search", "--item", "SH-0001", "--min", "1"}).exit_code, 1);
  CliResult near =
      Run({"catalogue", "search", "--item", "SH-0001", "--min", "1", "--near", "420102"});
  EXPECT_EQ(near.exit_code, 1);
  EXPECT_THAT(near.err, HasSubstr("use --near-region 420102")) << near.err;
  EXPECT_EQ(Run({"catalogue", "rollup", "--region", "4201x"}).exit_code, 2);
  EXPECT_EQ(Run({"transfer", "plan", "--to", "420103", "--line", "SH-0001"}).exit_code, 1);
  EXPECT_EQ(Run({"transfer", "list", "--state", "shipped"}).exit_code, 1);
  CliResult create = Run({"transfer", "create", "--to", "420103", "--line", "SH-0001=1"});
  EXPECT_EQ(create.exit_code, 1);
  EXPECT_THAT(create.err, HasSubstr("give --to WAREHOUSE"));
  CliResult list = Run({"transfer", "list"});
  ASSERT_EQ(list.exit_code, 0) << "stockpile-local must host the TransferService: " << list.err;
  CliResult show = Run({"transfer", "show", "T-does-not-exist"});
  EXPECT_EQ(show.exit_code, 3) << show.out << show.err;
  // Nothing listens there: the message names the address and the flag (the last one given wins).
  const std::string nowhere = "127.0.0.1:" + std::to_string(FreePort());
  CliResult down = Run({"--catalogue=" + nowhere, "--timeout=2", "catalogue", "status"});
  EXPECT_EQ(down.exit_code, 5);
  EXPECT_THAT(down.err, HasSubstr("no catalogue answers at " + nowhere +
                                  ": give its address with --catalogue"))
      << down.err;
}

// --min-leg: the store holding 3 is passed over, whichever is nearer, and the plan says so.
TEST_F(StockctlCatalogueTest, TransferPlanWithAMinimumLegPassesOverASmallStore) {
  CreateWarehouse(kCounty, "420102-W001", "江岸区救灾物资储备库");
  Receive(kCounty, "420102-W001", "3");
  CreateWarehouse(kCounty, "420104-W001", "硚口区救灾物资储备库");
  Receive(kCounty, "420104-W001", "100");
  CreateWarehouse(kCounty, "420103-W001", "江汉区救灾物资储备库");
  ASSERT_TRUE(RollupReaches("4201", "103"));

  json plan = RunJson(
      {"transfer", "plan", "--to", "420103-W001", "--line", "SH-0001=30", "--min-leg", "10"});
  ASSERT_EQ(plan["legs"].size(), 1u) << plan.dump();
  EXPECT_EQ(plan["legs"][0]["source_warehouse"], "warehouses/420104-W001");
  EXPECT_EQ(plan["legs"][0]["quantity"], "30");
  EXPECT_EQ(plan["min_leg_quantity"], "10");
  CliResult table =
      Run({"transfer", "plan", "--to", "420103-W001", "--line", "SH-0001=30", "--min-leg", "10"});
  EXPECT_THAT(table.out, HasSubstr("min leg:     10 (smaller only to fill a line)")) << table.out;
  // Nothing else can fill the line: the small store gives after all.
  plan = RunJson(
      {"transfer", "plan", "--to", "420103-W001", "--line", "SH-0001=103", "--min-leg", "10"});
  ASSERT_EQ(plan["legs"].size(), 2u) << plan.dump();
  EXPECT_EQ(plan["legs"][1]["source_warehouse"], "warehouses/420102-W001");
  EXPECT_EQ(plan["outcomes"][0]["shortfall"], "0");
  EXPECT_EQ(
      Run({"transfer", "plan", "--to", "420103-W001", "--line", "SH-0001=30", "--min-leg", "-1"})
          .exit_code,
      1);
}

// A plan saved with --json and sent later with --from-plan asks for the same thing (lines,
// priority, exclusions, minimum leg), planned again on the stock of that moment; --to sends a
// plan made for a region to one of its warehouses. A file that is not a plan is a usage error,
// and so is excluding a warehouse the catalogue does not know (NOT_FOUND: it would exclude
// nothing).
TEST_F(StockctlCatalogueTest, TransferCreatedFromASavedPlanAsksForWhatThePlanAskedFor) {
  CreateWarehouse(kCounty, "420104-W009", "硚口区救灾物资储备库");
  CreateWarehouse(kCounty, "420102-W001", "江岸区救灾物资储备库");
  Receive(kCounty, "420102-W001", "100");
  CreateWarehouse(kCounty, "420103-W001", "江汉区救灾物资储备库");
  ASSERT_TRUE(RollupReaches("4201", "100"));
  CliResult mistyped = Run(
      {"transfer", "plan", "--to", "420103", "--line", "SH-0001=30", "--exclude", "420104-W090"});
  EXPECT_EQ(mistyped.exit_code, 3) << mistyped.err;
  EXPECT_THAT(mistyped.err, HasSubstr("420104-W090 is not a warehouse the catalogue knows"));
  CliResult saved = Run({"--json", "transfer", "plan", "--to", "420103", "--line", "SH-0001=30",
                         "--priority", "urgent", "--min-leg", "10", "--exclude", "420104-W009"});
  ASSERT_EQ(saved.exit_code, 0) << saved.err;
  const std::string file = dir_.Sub("plan.json");
  std::ofstream(file) << saved.out;

  json created = RunJson({"transfer", "create", "--from-plan", file, "--to", "420103-W001",
                          "--request-id", "from-plan-1"});
  EXPECT_EQ(created["destination_warehouse"], "warehouses/420103-W001") << created.dump();
  EXPECT_EQ(created["priority"], "PRIORITY_URGENT");
  const json& plan = created["plan"];
  EXPECT_EQ(plan["min_leg_quantity"], "10") << plan.dump();
  EXPECT_EQ(plan["excluded_sources"], json::array({"warehouses/420104-W009"}));
  ASSERT_EQ(plan["lines"].size(), 1u);
  EXPECT_EQ(plan["lines"][0]["quantity"], "30");
  ASSERT_EQ(created["legs"].size(), 1u);
  EXPECT_EQ(created["legs"][0]["plan"]["source_warehouse"], "warehouses/420102-W001");

  std::ofstream(dir_.Sub("not-a-plan.json")) << "{\"legs\": 7}";
  CliResult bad = Run({"transfer", "create", "--from-plan", dir_.Sub("not-a-plan.json")});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("is not a plan from 'transfer plan --json'"));
}

TEST_F(StockctlCatalogueTest, TransferPlannedApprovedShippedAndReceivedMovesStock) {
  CliResult probe = Run({"transfer", "list"});
  ASSERT_EQ(probe.exit_code, 0) << "stockpile-local must host the TransferService: " << probe.err;
  CreateWarehouse(kCounty, "420102-W001", "江岸区救灾物资储备库");
  Receive(kCounty, "420102-W001", "100");
  CreateWarehouse(kCounty, "420103-W001", "江汉区救灾物资储备库");
  ASSERT_TRUE(RollupReaches("420102", "100"));

  json plan = RunJson({"transfer", "plan", "--to", "420103-W001", "--line", "SH-0001=30"});
  ASSERT_EQ(plan["legs"].size(), 1u) << plan.dump();
  EXPECT_EQ(plan["legs"][0]["source_warehouse"], "warehouses/420102-W001");
  EXPECT_EQ(plan["legs"][0]["quantity"], "30");
  EXPECT_EQ(plan["legs"][0]["tier"], "SOURCE_TIER_SAME_CITY");
  EXPECT_EQ(plan["outcomes"][0]["shortfall"], "0");
  CliResult plan_table = Run({"transfer", "plan", "--to", "420103-W001", "--line", "SH-0001=30"});
  EXPECT_TRUE(std::regex_search(plan_table.out,
                                std::regex(R"(0 +420102-W001 +420102 +SH-0001 +30 +DEFAULT:30)")))
      << plan_table.out;

  json created = RunJson({"transfer", "create", "--to", "420103-W001", "--line", "SH-0001=30",
                          "--note", "flood relief", "--request-id", "create-1"});
  const std::string id = created["id"].get<std::string>();
  EXPECT_EQ(created["state"], "TRANSFER_STATE_PENDING_APPROVAL");
  // The same request id returns the first result: no second transfer.
  EXPECT_EQ(RunJson({"transfer", "create", "--to", "420103-W001", "--line", "SH-0001=30", "--note",
                     "flood relief", "--request-id", "create-1"})["id"],
            id);

  EXPECT_EQ(RunJson({"transfer", "approve", id})["state"], "TRANSFER_STATE_READY");
  EXPECT_EQ(RunJson({"transfer", "ship", id, "--leg", "0"})["state"], "TRANSFER_STATE_IN_TRANSIT");
  json received = RunJson({"transfer", "receive", id, "--leg", "0", "--received", "DEFAULT=29"});
  EXPECT_EQ(received["state"], "TRANSFER_STATE_RECEIVED");
  EXPECT_EQ(received["legs"][0]["lost"], "1");

  CliResult show = Run({"transfer", "show", id});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_THAT(show.out, HasSubstr("state:       received"));
  EXPECT_THAT(show.out, HasSubstr("approved by: tester"));
  EXPECT_TRUE(std::regex_search(show.out, std::regex(R"(\n\S+Z +tester +approved\n)"))) << show.out;
  CliResult list = Run({"transfer", "list", "--region", "42", "--state", "received"});
  EXPECT_THAT(list.out, HasSubstr(id));

  EXPECT_EQ(OnHand("420102-W001"), "70");
  EXPECT_EQ(OnHand("420103-W001"), "29");
  EXPECT_TRUE(RollupReaches("4201", "99")) << "30 left, 29 arrived, 1 lost";
}

// The only source is emptied before approval: its hold is refused, re-planning finds nothing
// else, and the transfer FAILS short by all of it. Once another warehouse has stock,
// --short-of plans exactly that again, to the same destination, never from the source that
// refused, and creates the transfer that brings it.
TEST_F(StockctlCatalogueTest, ShortOfPlansAgainWhatAFailedTransferFellShortOf) {
  CreateWarehouse(kCounty, "420102-W001", "江岸区救灾物资储备库");
  CreateWarehouse(kCounty, "420103-W001", "江汉区救灾物资储备库");
  CreateWarehouse(kCounty, "420104-W001", "硚口区救灾物资储备库");
  Receive(kCounty, "420102-W001", "40");
  ASSERT_TRUE(RollupReaches("420102", "40"));
  json created = RunJson({"transfer", "create", "--to", "420103-W001", "--line", "SH-0001=30",
                          "--priority", "urgent"});
  const std::string id = created["id"].get<std::string>();
  ASSERT_EQ(Run({"issue", "--warehouse", "420102-W001", "--item", "SH-0001", "--quantity", "40"})
                .exit_code,
            0);
  json failed = RunJson({"transfer", "approve", id});
  ASSERT_EQ(failed["state"], "TRANSFER_STATE_FAILED") << failed.dump();
  ASSERT_EQ(failed["short_lines"].size(), 1u) << failed.dump();
  EXPECT_EQ(failed["short_lines"][0]["shortfall"], "30");

  Receive(kCounty, "420104-W001", "50");
  ASSERT_TRUE(RollupReaches("420104", "50"));
  json plan = RunJson({"transfer", "plan", "--short-of", id});
  EXPECT_EQ(plan["destination_warehouse"], "warehouses/420103-W001");
  EXPECT_EQ(plan["priority"], "PRIORITY_URGENT");
  ASSERT_EQ(plan["lines"].size(), 1u) << plan.dump();
  EXPECT_EQ(plan["lines"][0]["quantity"], "30");
  ASSERT_EQ(plan["legs"].size(), 1u) << plan.dump();
  EXPECT_EQ(plan["legs"][0]["source_warehouse"], "warehouses/420104-W001");
  EXPECT_THAT(plan["excluded_sources"].dump(), HasSubstr("warehouses/420102-W001"));

  json again = RunJson({"transfer", "create", "--short-of", id});
  EXPECT_EQ(again["state"], "TRANSFER_STATE_PENDING_APPROVAL");
  EXPECT_EQ(again["note"], "what " + id + " fell short of");
  EXPECT_EQ(RunJson({"transfer", "approve", again["id"]})["state"], "TRANSFER_STATE_READY");

  CliResult nothing_short = Run({"transfer", "plan", "--short-of", again["id"]});
  EXPECT_EQ(nothing_short.exit_code, 2) << nothing_short.out << nothing_short.err;
  EXPECT_THAT(nothing_short.err, HasSubstr("fell short of nothing"));
  EXPECT_EQ(Run({"transfer", "plan", "--short-of", "T-nope"}).exit_code, 3);
  EXPECT_EQ(Run({"transfer", "plan", "--short-of", id, "--line", "SH-0001=1"}).exit_code, 1);
}

}  // namespace
}  // namespace stockpile::testing
