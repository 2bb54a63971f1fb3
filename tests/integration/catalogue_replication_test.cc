// The catalogue against a real etcd and real stockpile-level processes: discovery, roll-ups
// within a second, and a killed source marked gone with its data kept.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>

#include "tests/testutil/etcd_process.h"
#include "tests/unit/catalogue/catalogue_processes.h"

namespace stockpile::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kVillage[] = "420102002003";
constexpr char kVillageStore[] = "420102002003-W001";

class CatalogueReplicationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(etcd_.Start(seconds(20), &error)) << error;
    village_ =
        std::make_unique<LevelServer>(dir_, "village-a", "village", "420102", etcd_.endpoint());
    ASSERT_TRUE(village_->Start());
    catalogue_ = std::make_unique<CatalogueServer>(dir_, etcd_.endpoint());
    ASSERT_TRUE(catalogue_->Start());
    ASSERT_TRUE(WaitFor(
        [&] {
          const auto status = catalogue_->Status();  // FindSource points into it
          auto* s = FindSource(status, "village-a");
          return s != nullptr && s->connected();
        },
        seconds(20)))
        << catalogue_->process().Log();
  }

  TempDir dir_;
  EtcdProcess etcd_{dir_.path()};
  std::unique_ptr<LevelServer> village_;
  std::unique_ptr<CatalogueServer> catalogue_;
};

TEST_F(CatalogueReplicationTest, VillageReceiptReachesEveryRollupWithinOneSecond) {
  auto level = village_->Stub();
  ASSERT_TRUE(CreateWarehouse(*level, kVillageStore, kVillage).ok());
  auto cat = catalogue_->Stub();
  const auto sent = std::chrono::steady_clock::now();
  ASSERT_TRUE(Receive(*level, kVillageStore, "SH-0001", 7, "r-1").ok());
  const std::vector<std::string> regions = {"420102002", "420102", "4201", "42"};
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const auto& r : regions) {
          if (RollupOnHand(*cat, r, "SH-0001") != 7) return false;
        }
        return true;
      },
      seconds(5)));
  const auto took = std::chrono::steady_clock::now() - sent;
  EXPECT_LT(took, seconds(1)) << std::chrono::duration_cast<milliseconds>(took).count() << " ms";
  EXPECT_EQ(RollupOnHand(*cat, kVillage, "SH-0001"), 7);
}

TEST_F(CatalogueReplicationTest, KilledSourceIsMarkedGoneAndItsDataKeptStale) {
  auto level = village_->Stub();
  ASSERT_TRUE(CreateWarehouse(*level, kVillageStore, kVillage).ok());
  ASSERT_TRUE(Receive(*level, kVillageStore, "SH-0001", 11, "r-1").ok());
  auto cat = catalogue_->Stub();
  ASSERT_TRUE(WaitFor([&] { return RollupOnHand(*cat, "42", "SH-0001") == 11; }, seconds(5)));
  village_->process().Signal(SIGKILL);
  village_->process().Wait(seconds(5));
  // TTL 3 s: the lease expires, the key vanishes, the catalogue marks the source gone.
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto status = catalogue_->Status();  // FindSource points into it
        auto* s = FindSource(status, "village-a");
        return s != nullptr && s->gone() && !s->connected();
      },
      seconds(15)));
  stockpile::v1::GetWarehouseStockRequest req;
  req.set_warehouse(std::string("warehouses/") + kVillageStore);
  req.set_item("SH-0001");
  stockpile::v1::WarehouseStock stock;
  grpc::ClientContext ctx;
  ASSERT_TRUE(cat->GetWarehouseStock(&ctx, req, &stock).ok());
  EXPECT_EQ(stock.on_hand(), 11);
  EXPECT_TRUE(stock.freshness().stale());
  EXPECT_EQ(stock.freshness().source(), "village-a");
}

}  // namespace
}  // namespace stockpile::testing
