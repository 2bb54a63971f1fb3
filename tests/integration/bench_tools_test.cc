// Unit tests of the bench/demo tools' pure parts: histogram, mix parsing, demo plans.
#include <gtest/gtest.h>

#include "services/common/reference_data.h"
#include "tests/testutil/process.h"
#include "tools/bench/cpu_probe.h"
#include "tools/bench/driver.h"
#include "tools/bench/histogram.h"
#include "tools/demo/demo_plan.h"
#include "tools/demo/demo_runner.h"

namespace stockpile::bench {
namespace {

namespace v1 = stockpile::v1;

// stockpile-wake-bench passes its token the asked number of times and reports both costs; a
// count that is not a positive number is a usage error.
TEST(WakeBenchTest, ReportsRoundTripsAndRefusesABadCount) {
  const std::string bin = testing::BinaryDir() + "/bin/stockpile-wake-bench";
  std::string out;
  ASSERT_EQ(testing::RunCommand({bin, "2000"}, &out), 0) << out;
  EXPECT_NE(out.find("2000 round trips: "), std::string::npos) << out;
  EXPECT_NE(out.find(" µs of CPU each"), std::string::npos) << out;
  EXPECT_EQ(testing::RunCommand({bin, "zero"}, &out), 2) << out;
}

// A bearer token or a client certificate without TLS would go out in plaintext: usage error.
TEST(BenchFlagsTest, TokenOrClientCertificateWithoutTlsIsAUsageError) {
  const std::string bin = testing::BinaryDir() + "/bin/stockpile-bench";
  std::string out;
  EXPECT_EQ(testing::RunCommand({bin, "--target=127.0.0.1:1", "--token-file=admin.token"}, &out),
            2);
  EXPECT_NE(out.find("need --tls-ca"), std::string::npos) << out;
  EXPECT_EQ(testing::RunCommand({bin, "--target=127.0.0.1:1", "--tls-key=c.key"}, &out), 2);
}

// How busy the machine was comes from /proc/stat's "cpu" line: idle and iowait are not busy.
TEST(CpuProbeTest, MachineBusyShareCountsAllButIdleAndIowait) {
  const bench::MachineTicks before = bench::ParseMachineCpuLine("cpu  100 0 50 800 50 0 0 0 0 0");
  const bench::MachineTicks after =
      bench::ParseMachineCpuLine("cpu  400 0 150 1100 50 10 40 0 0 0");
  EXPECT_EQ(before.busy, 150);
  EXPECT_EQ(before.total, 1000);
  bench::CpuMark begin, end;
  begin.machine = before;
  end.machine = after;
  EXPECT_DOUBLE_EQ(bench::MachineBusyFraction(begin, end), 450.0 / 750.0);
  EXPECT_LT(bench::ParseMachineCpuLine("cpu0 1 2 3 4 5 6 7 8").total, 0);  // one CPU's line
  EXPECT_LT(bench::ParseMachineCpuLine("intr 12").total, 0);
  EXPECT_LT(bench::MachineBusyFraction(end, begin), 0);  // no time passed: unknown
}

// Only a refusal that names the expiry counts as "expired lots refused": a batch refused for
// anything else (a bad item, a closed warehouse) is reported as an error.
TEST(DemoRunnerTest, OnlyAnExpiryRefusalIsCountedAsOne) {
  using grpc::StatusCode;
  EXPECT_TRUE(demo::IsExpiryRefusal({StatusCode::INVALID_ARGUMENT, "lot L1 has expired"}));
  EXPECT_TRUE(demo::IsExpiryRefusal({StatusCode::FAILED_PRECONDITION, "lot L1 has expired"}));
  EXPECT_FALSE(demo::IsExpiryRefusal(
      {StatusCode::INVALID_ARGUMENT, "item XX-9999 is not in the item catalogue"}));
  EXPECT_FALSE(demo::IsExpiryRefusal({StatusCode::UNAVAILABLE, "expired deadline"}));
  EXPECT_FALSE(demo::IsExpiryRefusal(grpc::Status::OK));
}

TEST(HistogramTest, QuantilesStayWithinTwoPercent) {
  Histogram h;
  for (uint64_t v = 1; v <= 100'000; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 100'000u);
  EXPECT_NEAR(static_cast<double>(h.Quantile(0.5)), 50'000, 50'000 * 0.02);
  EXPECT_NEAR(static_cast<double>(h.Quantile(0.99)), 99'000, 99'000 * 0.02);
  EXPECT_EQ(h.Quantile(1.0), 100'000u);
}

TEST(HistogramTest, BucketsAreMonotonicAndCoverTheirValues) {
  for (uint64_t v : {0ull, 1ull, 127ull, 128ull, 129ull, 1000ull, 123456789ull}) {
    int b = Histogram::BucketOf(v);
    EXPECT_GE(Histogram::UpperEdge(b), v);
    if (b > 0) {
      EXPECT_LT(Histogram::UpperEdge(b - 1), v);
    }
  }
}

TEST(HistogramTest, MergeAddsCounts) {
  Histogram a, b;
  a.Record(10);
  b.Record(1000);
  a.Merge(b);
  EXPECT_EQ(a.count(), 2u);
  EXPECT_EQ(a.max(), 1000u);
}

TEST(MixTest, ParsesWeightsAndRejectsUnknownOps) {
  auto mix = ParseMix("receive:40,issue:30,hold:10,read:20");
  ASSERT_TRUE(mix.ok());
  EXPECT_EQ(mix->total, 100);
  EXPECT_EQ(mix->Pick(0), OpKind::kReceive);
  EXPECT_EQ(mix->Pick(99), OpKind::kRead);
  EXPECT_FALSE(ParseMix("steal:10").ok());
  EXPECT_FALSE(ParseMix("receive:x").ok());
  EXPECT_FALSE(ParseMix("read:0").ok());
}

class DemoPlanTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    common::ReferenceData::Options load;
    load.fine_region_prefixes = {"420102"};
    auto loaded = common::ReferenceData::Load(stockpile::testing::ReferenceDataDir(), load);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    refdata_ = loaded->release();
  }
  static const common::RegionInfo& Region(const std::string& code) {
    return *refdata_->FindRegion(code);
  }
  static common::ReferenceData* refdata_;
};
common::ReferenceData* DemoPlanTest::refdata_ = nullptr;

TEST_F(DemoPlanTest, SameSeedSamePlanOtherSeedOtherPlan) {
  demo::PlanOptions options;
  options.seed = 5;
  auto a = demo::PlanWarehouse(Region("420102"), refdata_->items(), options);
  auto b = demo::PlanWarehouse(Region("420102"), refdata_->items(), options);
  std::vector<v1::Operation> ops_a, ops_b, expired;
  demo::AppendStockOperations(a, 20000, &ops_a, &expired);
  demo::AppendStockOperations(b, 20000, &ops_b, &expired);
  ASSERT_EQ(ops_a.size(), ops_b.size());
  for (size_t i = 0; i < ops_a.size(); ++i) {
    EXPECT_EQ(ops_a[i].SerializeAsString(), ops_b[i].SerializeAsString());
  }
  options.seed = 6;
  auto c = demo::PlanWarehouse(Region("420102"), refdata_->items(), options);
  std::vector<v1::Operation> ops_c;
  demo::AppendStockOperations(c, 20000, &ops_c, &expired);
  bool differs = ops_c.size() != ops_a.size();
  for (size_t i = 0; !differs && i < ops_a.size(); ++i) {
    differs = ops_a[i].SerializeAsString() != ops_c[i].SerializeAsString();
  }
  EXPECT_TRUE(differs);
}

TEST_F(DemoPlanTest, WarehouseFollowsLevelStandards) {
  demo::PlanOptions options;
  auto county = demo::PlanWarehouse(Region("420102"), refdata_->items(), options);
  EXPECT_EQ(county.warehouse.code(), "420102-W001");
  EXPECT_EQ(county.warehouse.kind(), v1::WAREHOUSE_KIND_GOVERNMENT);
  EXPECT_GE(county.warehouse.area_m2(), 2000);
  EXPECT_GE(county.stock.size(), 15u);
  const common::RegionInfo* village = nullptr;
  for (const auto& r : refdata_->regions()) {
    if (r.level == v1::LEVEL_VILLAGE) village = &r;
  }
  ASSERT_NE(village, nullptr);
  auto v = demo::PlanWarehouse(*village, refdata_->items(), options);
  EXPECT_EQ(v.warehouse.kind(), v1::WAREHOUSE_KIND_SOCIAL);
  EXPECT_LE(v.stock.size(), 8u);
  EXPECT_LE(v.quotas.size(), 3u);
  EXPECT_TRUE(v.reserves.empty());
}

TEST_F(DemoPlanTest, AllItemsModeHoldsEveryItemWithAboutAThirdAtZero) {
  demo::PlanOptions options;
  options.all_items = true;
  int zero = 0, total = 0;
  for (const auto& r : refdata_->regions()) {
    if (r.level != v1::LEVEL_VILLAGE) continue;
    auto plan = demo::PlanWarehouse(r, refdata_->items(), options);
    EXPECT_EQ(plan.stock.size(), refdata_->items().size());
    for (const auto& s : plan.stock) {
      zero += s.zero;
      ++total;
    }
  }
  ASSERT_GT(total, 1000);
  EXPECT_NEAR(static_cast<double>(zero) / total, 0.3, 0.03);
}

TEST_F(DemoPlanTest, ZeroBalanceIsReceivedAndIssuedBack) {
  demo::PlanOptions options;
  options.all_items = true;
  auto plan = demo::PlanWarehouse(Region("420102"), refdata_->items(), options);
  std::vector<v1::Operation> fresh, expired;
  demo::AppendStockOperations(plan, 20000, &fresh, &expired);
  int64_t issued = 0, received_for_zero = 0;
  for (const auto& op : fresh) {
    if (op.has_issue()) issued += op.issue().quantity();
  }
  for (const auto& s : plan.stock) {
    if (s.zero) received_for_zero += s.lots[0].quantity;
  }
  EXPECT_GT(issued, 0);
  EXPECT_EQ(issued, received_for_zero);
}

}  // namespace
}  // namespace stockpile::bench
