// stockpile-bench's catalogue-lag mode against real processes: two level services and a
// catalogue following them (static --source, no etcd). The open-loop writer must keep the
// asked rate, every acknowledged receipt must be seen applied by the catalogue, and the lag it
// reports must be a measured figure.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

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

}  // namespace
}  // namespace stockpile::testing
