// stockpile-bench against a real stockpile-level: a short run must do work and see no errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/integration/bench_level_fixture.h"

namespace stockpile::testing {
namespace {

std::string Bench() { return BinaryDir() + "/bin/stockpile-bench"; }

nlohmann::json RunBenchJson(const std::vector<std::string>& argv) {
  std::string output;
  int rc = RunCommand(argv, &output, "", std::chrono::seconds(50));
  EXPECT_EQ(rc, 0) << output;
  return LastJsonDocument(output);
}

TEST(BenchLevelTest, MixedRunDoesWorkWithoutErrors) {
  TempDir dir;
  LevelProcess level(dir, "county", "4201");
  ASSERT_TRUE(level.Start());
  nlohmann::json j = RunBenchJson(
      {Bench(), "--target=" + level.address(), "--clients=8", "--duration=2s", "--warmup=0s",
       "--warehouses=10", "--reference-data=" + ReferenceDataDir(), "--json", "--baseline=echo"});
  ASSERT_FALSE(j.is_discarded());
  EXPECT_GT(j["ops"]["calls"].get<uint64_t>(), 0u) << j.dump(2);
  EXPECT_GT(j["ops"]["movements"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["errors"].get<uint64_t>(), 0u) << j.dump(2);
  EXPECT_EQ(j["ops"]["errors"].get<uint64_t>(), 0u);
  EXPECT_GT(j["echo"]["calls"].get<uint64_t>(), 0u);
  EXPECT_GT(j["ops"]["latency"]["p99_ms"].get<double>(), 0.0);
  // CPU per call on both sides: the level gives its metrics address in GetInstanceInfo and the
  // bench reads the level's process CPU there before and after the measured phase.
  for (const char* phase : {"ops", "echo"}) {
    ASSERT_TRUE(j[phase].contains("cpu")) << j.dump(2);
    EXPECT_GT(j[phase]["cpu"]["server_us_per_call"].get<double>(), 0.0) << phase;
    EXPECT_GT(j[phase]["cpu"]["bench_us_per_call"].get<double>(), 0.0) << phase;
    // The bench and the level were both working: some of the machine was busy.
    EXPECT_GT(j[phase]["cpu"]["machine_busy_percent"].get<double>(), 0.0) << phase;
    EXPECT_LE(j[phase]["cpu"]["machine_busy_percent"].get<double>(), 100.0) << phase;
  }
  EXPECT_GT(j["ops"]["cpu"]["server_us_per_movement"].get<double>(), 0.0);
}

TEST(BenchLevelTest, BatchAndListModesCountMovementsAndBalances) {
  TempDir dir;
  LevelProcess level(dir, "county", "4201");
  ASSERT_TRUE(level.Start());
  nlohmann::json batch =
      RunBenchJson({Bench(), "--target=" + level.address(), "--clients=4", "--batch=100",
                    "--duration=1s", "--warmup=0s", "--warehouses=5", "--mix=receive:60,issue:40",
                    "--reference-data=" + ReferenceDataDir(), "--json"});
  ASSERT_FALSE(batch.is_discarded());
  EXPECT_EQ(batch["errors"].get<uint64_t>(), 0u) << batch.dump(2);
  EXPECT_EQ(batch["ops"]["movements"].get<uint64_t>(), 100 * batch["ops"]["calls"].get<uint64_t>());
  nlohmann::json list = RunBenchJson({Bench(), "--target=" + level.address(), "--mode=list",
                                      "--clients=2", "--duration=1s", "--warmup=0s", "--json"});
  ASSERT_FALSE(list.is_discarded());
  EXPECT_EQ(list["errors"].get<uint64_t>(), 0u) << list.dump(2);
  EXPECT_GT(list["list"]["balances_listed"].get<uint64_t>(), 0u);
}

}  // namespace
}  // namespace stockpile::testing
