// stockpile-demo against two real stockpile-level processes (township + village) for one county.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <set>

#include "services/common/reference_data.h"
#include "services/common/validation.h"
#include "tests/integration/bench_level_fixture.h"
#include "tools/bench/level_client.h"
#include "tools/demo/demo_plan.h"

namespace stockpile::testing {
namespace {

namespace v1 = stockpile::v1;
constexpr char kCounty[] = "420102";

nlohmann::json RunDemo(const LevelProcess& township, const LevelProcess& village) {
  std::string output;
  int rc = RunCommand({BinaryDir() + "/bin/stockpile-demo",
                       "--target=township=" + township.address() + ",village=" + village.address(),
                       std::string("--provinces=") + kCounty, "--levels=township,village",
                       "--seed=7", "--reference-data=" + ReferenceDataDir(), "--json", "--quiet"},
                      &output, "", std::chrono::seconds(50));
  EXPECT_EQ(rc, 0) << output;
  return LastJsonDocument(output);
}

int CountWarehouses(v1::LevelService::Stub& stub) {
  int n = 0;
  v1::ListWarehousesRequest request;
  request.set_region_prefix(kCounty);
  request.set_page_size(1000);
  do {
    grpc::ClientContext ctx;
    v1::ListWarehousesResponse response;
    EXPECT_TRUE(stub.ListWarehouses(&ctx, request, &response).ok());
    n += response.warehouses_size();
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty());
  return n;
}

int CountBalances(v1::LevelService::Stub& stub) {
  int n = 0;
  v1::ListBalancesRequest request;
  request.set_region_prefix(kCounty);
  request.set_page_size(10000);
  do {
    grpc::ClientContext ctx;
    v1::ListBalancesResponse response;
    EXPECT_TRUE(stub.ListBalances(&ctx, request, &response).ok());
    n += response.balances_size();
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty());
  return n;
}

v1::GetLedgerTotalsResponse Totals(v1::LevelService::Stub& stub) {
  grpc::ClientContext ctx;
  v1::GetLedgerTotalsResponse totals;
  EXPECT_TRUE(stub.GetLedgerTotals(&ctx, {}, &totals).ok());
  return totals;
}

struct Expected {
  int warehouses = 0;
  int balances = 0;  // warehouse x item with at least one lot the service accepts
};

// What the demo should have made at `level`, recomputed from the same deterministic plan.
Expected ExpectedAt(const common::ReferenceData& refdata, v1::Level level, bool expired_ok) {
  Expected e;
  demo::PlanOptions options;
  options.seed = 7;
  for (const auto& region : refdata.regions()) {
    if (region.level != level || region.code.rfind(kCounty, 0) != 0) continue;
    ++e.warehouses;
    demo::WarehousePlan plan = demo::PlanWarehouse(region, refdata.items(), options);
    std::vector<v1::Operation> fresh, expired;
    demo::AppendStockOperations(plan, bench::TodayDays(), &fresh, &expired);
    std::set<std::string> items;
    for (const auto& op : fresh) items.insert(op.receive().item());
    if (expired_ok) {
      for (const auto& op : expired) items.insert(op.receive().item());
    }
    e.balances += static_cast<int>(items.size());
  }
  return e;
}

TEST(DemoLevelTest, SeedsOneCountyAndASecondRunChangesNothing) {
  TempDir dir;
  LevelProcess township(dir, "township", kCounty);
  LevelProcess village(dir, "village", kCounty);
  ASSERT_TRUE(township.Start());
  ASSERT_TRUE(village.Start());

  nlohmann::json first = RunDemo(township, village);
  ASSERT_FALSE(first.is_discarded());
  EXPECT_EQ(first["errors"].get<int>(), 0) << first.dump(2);
  EXPECT_EQ(first["warehouses_existing"].get<int>(), 0);
  EXPECT_GT(first["quotas"].get<int>(), 0);

  common::ReferenceData::Options load;
  load.fine_region_prefixes = {kCounty};
  auto refdata = common::ReferenceData::Load(ReferenceDataDir(), load);
  ASSERT_TRUE(refdata.ok()) << refdata.status();
  bool expired_ok = first["expired_lots_refused"].get<int>() == 0;
  Expected townships = ExpectedAt(**refdata, v1::LEVEL_TOWNSHIP, expired_ok);
  Expected villages = ExpectedAt(**refdata, v1::LEVEL_VILLAGE, expired_ok);
  ASSERT_GT(townships.warehouses, 5);
  ASSERT_GT(villages.warehouses, 50);
  EXPECT_EQ(first["warehouses_created"].get<int>(), townships.warehouses + villages.warehouses);

  auto township_stub = township.Stub();
  auto village_stub = village.Stub();
  EXPECT_EQ(CountWarehouses(*township_stub), townships.warehouses);
  EXPECT_EQ(CountWarehouses(*village_stub), villages.warehouses);
  EXPECT_EQ(CountBalances(*township_stub), townships.balances);
  EXPECT_EQ(CountBalances(*village_stub), villages.balances);

  // Some quotas are deliberately above what is on hand: shortages must show.
  grpc::ClientContext shortage_ctx;
  v1::ListQuotaStatusRequest shortage_request;
  shortage_request.set_region_prefix(kCounty);
  v1::ListQuotaStatusResponse shortages;
  ASSERT_TRUE(village_stub->ListShortages(&shortage_ctx, shortage_request, &shortages).ok());
  EXPECT_GT(shortages.entries_size(), 0);

  v1::GetLedgerTotalsResponse township_before = Totals(*township_stub);
  v1::GetLedgerTotalsResponse village_before = Totals(*village_stub);
  nlohmann::json second = RunDemo(township, village);
  ASSERT_FALSE(second.is_discarded());
  EXPECT_EQ(second["errors"].get<int>(), 0) << second.dump(2);
  EXPECT_EQ(second["warehouses_created"].get<int>(), 0);
  EXPECT_EQ(second["warehouses_existing"].get<int>(), townships.warehouses + villages.warehouses);
  using google::protobuf::util::MessageDifferencer;
  EXPECT_TRUE(MessageDifferencer::Equals(Totals(*township_stub), township_before));
  EXPECT_TRUE(MessageDifferencer::Equals(Totals(*village_stub), village_before));
  EXPECT_EQ(CountWarehouses(*village_stub), villages.warehouses);
}

// Region prefixes that name nothing (a typo, or letters) are refused before anything is sent:
// the demo had created nothing and exited 0.
TEST(DemoLevelTest, PrefixesThatNameNoRegionAreRefused) {
  TempDir dir;
  LevelProcess township(dir, "township", kCounty);
  ASSERT_TRUE(township.Start());
  for (const char* prefix : {"99", "abc"}) {
    std::string output;
    const int rc =
        RunCommand({BinaryDir() + "/bin/stockpile-demo", "--target=township=" + township.address(),
                    std::string("--provinces=") + prefix, "--levels=township",
                    "--reference-data=" + ReferenceDataDir(), "--quiet"},
                   &output, "", std::chrono::seconds(50));
    EXPECT_NE(rc, 0) << prefix << ": " << output;
    EXPECT_NE(output.find(prefix), std::string::npos) << output;
  }
}

}  // namespace
}  // namespace stockpile::testing
