// stockpile-bench's catalogue-lag mode against real processes: two level services and a
// catalogue following them (static --source, no etcd). The open-loop writer must keep the
// asked rate, every acknowledged receipt must be seen applied by the catalogue, and the lag it
// reports must be a measured figure. Its catalogue-load mode must time a catalogue that is
// still starting by when it first answers.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/integration/bench_level_fixture.h"
#include "tests/unit/catalogue/catalogue_processes.h"

namespace stockpile::testing {
namespace {

TEST(BenchCatalogueTest, LagModeKeepsTheRateAndSeesEveryReceiptApplied) {
  TempDir dir;
  LevelServer county(dir, "county-a", "county", "4201", "");
  LevelServer township(dir, "township-a", "township", "4201", "");
  ASSERT_TRUE(county.Start());
  ASSERT_TRUE(township.Start());
  CatalogueServer catalogue(
      dir, "",
      {"county-a=county@" + county.address(), "township-a=township@" + township.address()});
  ASSERT_TRUE(catalogue.Start());

  std::string output;
  const int rc = RunCommand(
      {BinaryDir() + "/bin/stockpile-bench", "--mode=catalogue-lag",
       "--target=" + catalogue.address(), "--levels=" + county.address() + "," + township.address(),
       "--rate=200", "--clients=8", "--duration=3s", "--warmup=0s", "--warehouses=4",
       "--reference-data=" + ReferenceDataDir(), "--json"},
      &output, "", std::chrono::seconds(60));
  ASSERT_EQ(rc, 0) << output;
  nlohmann::json j = LastJsonDocument(output);
  ASSERT_FALSE(j.is_discarded()) << output;
  // 200/s for 3 s, paced: about 600 receipts, neither a burst nor a trickle.
  const double rate = j["movements_per_s"].get<double>();
  EXPECT_GT(rate, 150.0) << j.dump(2);
  EXPECT_LT(rate, 215.0) << j.dump(2);
  EXPECT_EQ(j["write_errors"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["unapplied"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["lag"]["count"].get<uint64_t>(), j["write_latency"]["count"].get<uint64_t>());
  EXPECT_GT(j["lag"]["p99_ms"].get<double>(), 0.0);
  EXPECT_LT(j["lag"]["p50_ms"].get<double>(), 5000.0);
}

// The catalogue comes up while catalogue-load is already asking for it. Asked on one channel,
// the answer came only when gRPC's reconnect backoff let that channel try again: here 10.0 s
// after the bench started for a catalogue listening after 5.0 s (the national restart figures
// of 113-311 s were such steps).
TEST(BenchCatalogueTest, LoadModeTimesALateCatalogueByWhenItFirstAnswers) {
  TempDir dir;
  LevelServer county(dir, "county-a", "county", "4201", "");
  ASSERT_TRUE(county.Start());
  const std::string catalogue_address = "127.0.0.1:" + std::to_string(FreePort());

  const auto bench_started = std::chrono::steady_clock::now();
  Subprocess bench(
      {BinaryDir() + "/bin/stockpile-bench", "--mode=catalogue-load",
       "--target=" + catalogue_address, "--levels=" + county.address(), "--timeout=60s", "--json"},
      dir.Sub("bench.log"));
  ASSERT_TRUE(bench.Start());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // refused meanwhile
  Subprocess catalogue(
      {BinaryDir() + "/bin/stockpile-catalogue", "--db=" + dir.Sub("catalogue-db"),
       "--reference-data=" + ReferenceDataDir(), "--listen=" + catalogue_address,
       "--port-file=" + dir.Sub("catalogue.port"), "--source=county-a=county@" + county.address()},
      dir.Sub("catalogue.log"));
  ASSERT_TRUE(catalogue.Start());
  ASSERT_TRUE(
      WaitFor([&] { return ReadPort(dir.Sub("catalogue.port")) > 0; }, std::chrono::seconds(30)))
      << catalogue.Log();
  const double listening_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - bench_started)
          .count();

  ASSERT_EQ(bench.Wait(std::chrono::seconds(60)), 0) << bench.Log();
  nlohmann::json j = LastJsonDocument(bench.Log());
  ASSERT_FALSE(j.is_discarded()) << bench.Log();
  EXPECT_TRUE(j["caught_up"].get<bool>()) << j.dump(2);
  // Measured from the bench's own start, a little after bench_started.
  EXPECT_LT(j["first_answer_ms"].get<double>(), listening_ms + 500) << j.dump(2);
  EXPECT_GT(j["first_answer_ms"].get<double>(), 1500.0) << j.dump(2);
}

}  // namespace
}  // namespace stockpile::testing
