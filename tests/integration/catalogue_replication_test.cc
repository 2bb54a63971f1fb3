// The catalogue against a real etcd and real stockpile-level processes: discovery, roll-ups
// within a second, a killed source marked gone with its data kept, and forgotten on request.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>

#include "services/common/etcd/etcd_client.h"
#include "services/common/etcd/registration.h"
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

// How a replica answers for the village store's stock: OK while it has it, NOT_FOUND once not.
grpc::StatusCode VillageStoreLookup(stockpile::v1::CatalogueService::Stub& stub) {
  stockpile::v1::GetWarehouseStockRequest req;
  req.set_warehouse(std::string("warehouses/") + kVillageStore);
  req.set_item("SH-0001");
  stockpile::v1::WarehouseStock out;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + seconds(2));
  return stub.GetWarehouseStock(&ctx, req, &out).error_code();
}

// Every replica's view of the village source: "absent", "gone" or "live", and the roll-up.
std::string SourceState(const CatalogueServer& catalogue) {
  const auto status = catalogue.Status();
  auto* s = FindSource(status, "village-a");
  if (s == nullptr) return "absent";
  return s->gone() ? "gone" : (s->connected() ? "live" : "down");
}

stockpile::v1::ForgetReplicationSourceRequest ForgetVillage(const std::string& request_id) {
  stockpile::v1::ForgetReplicationSourceRequest req;
  req.set_request_id(request_id);
  req.set_actor("ops");
  req.set_name("sources/village-a");
  return req;
}

// A decommissioned level stays reported (gone, its stock stale, alerting) until an operator
// forgets it. Then every replica drops it and its stock, a retry answers the same, and the
// instance registering again is streamed from the start.
TEST_F(CatalogueReplicationTest, AForgottenSourceIsDroppedByEveryReplicaUntilItRegistersAgain) {
  TempDir other;
  CatalogueServer second(other, etcd_.endpoint(), {}, "catalogue-second");
  ASSERT_TRUE(second.Start());
  auto level = village_->Stub();
  ASSERT_TRUE(CreateWarehouse(*level, kVillageStore, kVillage).ok());
  ASSERT_TRUE(Receive(*level, kVillageStore, "SH-0001", 11, "r-1").ok());
  auto a = catalogue_->Stub();
  auto b = second.Stub();
  ASSERT_TRUE(WaitFor(
      [&] {
        return RollupOnHand(*a, "42", "SH-0001") == 11 && RollupOnHand(*b, "42", "SH-0001") == 11;
      },
      seconds(20)))
      << second.process().Log();

  stockpile::v1::ReplicationSource out;
  grpc::ClientContext registered;
  grpc::Status refused = a->ForgetReplicationSource(&registered, ForgetVillage("f-0"), &out);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << refused.error_message();
  EXPECT_EQ(RollupOnHand(*a, "42", "SH-0001"), 11);

  village_->process().Signal(SIGKILL);
  village_->process().Wait(seconds(5));
  ASSERT_TRUE(
      WaitFor([&] { return SourceState(*catalogue_) == "gone" && SourceState(second) == "gone"; },
              seconds(15)));
  std::string said;
  ASSERT_EQ(RunCommand({BinaryDir() + "/bin/stockctl", "--catalogue", catalogue_->address(),
                        "--request-id", "f-1", "--actor", "ops", "catalogue", "forget-source",
                        "village-a"},
                       &said),
            0)
      << said;
  EXPECT_THAT(said, ::testing::HasSubstr("forgot village-a (village, 420102)"));
  // Both replicas: no source, no stock (the other one learns it through etcd).
  ASSERT_TRUE(WaitFor(
      [&] {
        return SourceState(*catalogue_) == "absent" && SourceState(second) == "absent" &&
               VillageStoreLookup(*a) == grpc::StatusCode::NOT_FOUND &&
               VillageStoreLookup(*b) == grpc::StatusCode::NOT_FOUND;
      },
      seconds(10)))
      << second.process().Log();
  grpc::ClientContext retry;
  ASSERT_TRUE(b->ForgetReplicationSource(&retry, ForgetVillage("f-1"), &out).ok());
  EXPECT_EQ(out.forgotten_by(), "ops");  // the first request's actor, as every replica has it
  grpc::ClientContext again;
  EXPECT_EQ(a->ForgetReplicationSource(&again, ForgetVillage("f-2"), &out).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // The same instance back: a new source on both replicas, its stock streamed from the start.
  ASSERT_TRUE(village_->Start());
  ASSERT_TRUE(WaitFor(
      [&] {
        return SourceState(*catalogue_) == "live" && SourceState(second) == "live" &&
               RollupOnHand(*a, "42", "SH-0001") == 11 && RollupOnHand(*b, "42", "SH-0001") == 11;
      },
      seconds(20)))
      << catalogue_->process().Log();
}

// A catalogue restarted while etcd is away streams again from the sources it stored, at their
// stored addresses: the national view does not freeze until etcd comes back.
TEST_F(CatalogueReplicationTest, ACatalogueRestartedWhileEtcdIsDownKeepsReplicating) {
  auto level = village_->Stub();
  ASSERT_TRUE(CreateWarehouse(*level, kVillageStore, kVillage).ok());
  ASSERT_TRUE(Receive(*level, kVillageStore, "SH-0001", 11, "r-1").ok());
  ASSERT_TRUE(WaitFor([&] { return RollupOnHand(*catalogue_->Stub(), "42", "SH-0001") == 11; },
                      seconds(5)));
  etcd_.Stop();
  ASSERT_EQ(catalogue_->process().Stop(SIGTERM), 0) << catalogue_->process().Log();
  ASSERT_TRUE(catalogue_->Start());
  ASSERT_TRUE(Receive(*level, kVillageStore, "SH-0001", 5, "r-2").ok());  // the level goes on
  ASSERT_TRUE(WaitFor([&] { return RollupOnHand(*catalogue_->Stub(), "42", "SH-0001") == 16; },
                      seconds(10)))
      << catalogue_->process().Log();
  EXPECT_EQ(SourceState(*catalogue_), "live");
}

// The catalogue knows a source by its id alone. A township instance started under the village
// instance's id is refused, and a registration under that id at another level (say, put while
// etcd was away) does not take the village instance's place in the national view.
TEST_F(CatalogueReplicationTest, AnInstanceIdTakenAtAnotherLevelIsRefusedAndIgnored) {
  auto level = village_->Stub();
  ASSERT_TRUE(CreateWarehouse(*level, kVillageStore, kVillage).ok());
  ASSERT_TRUE(Receive(*level, kVillageStore, "SH-0001", 11, "r-1").ok());
  auto cat = catalogue_->Stub();
  ASSERT_TRUE(WaitFor([&] { return RollupOnHand(*cat, "42", "SH-0001") == 11; }, seconds(5)));

  TempDir other;
  Subprocess township(
      {BinaryDir() + "/bin/stockpile-level", "--level=township", "--regions=420102",
       "--db=" + other.Sub("db"), "--reference-data=" + ReferenceDataDir(), "--listen=127.0.0.1:0",
       "--instance-id=village-a", "--etcd-endpoints=" + etcd_.endpoint(), "--etcd-ttl=3"},
      other.Sub("township.log"));
  ASSERT_TRUE(township.Start());
  const int status = township.Wait(std::chrono::seconds(30));
  ASSERT_NE(status, -1) << "the township instance is serving under the village instance's id";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status;
  EXPECT_THAT(township.Log(), ::testing::HasSubstr("village-a at "));
  EXPECT_THAT(township.Log(), ::testing::HasSubstr("is a village instance"));

  auto etcd = etcd::EtcdClient::Create(etcd_.endpoint());
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  etcd::InstanceInfo impostor{"village-a", "township", "127.0.0.1:1", {"420102"}, "", "", ""};
  ASSERT_TRUE((*etcd)
                  ->Put(std::string(etcd::kDefaultInstancesPrefix) + "township/village-a",
                        etcd::InstanceToJson(impostor))
                  .ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        return catalogue_->process().Log().find("ignoring the registration") != std::string::npos;
      },
      seconds(10)))
      << catalogue_->process().Log();
  EXPECT_EQ(RollupOnHand(*cat, "42", "SH-0001"), 11);
  const auto sources = catalogue_->Status();
  const auto* s = FindSource(sources, "village-a");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->level(), stockpile::v1::LEVEL_VILLAGE);
  EXPECT_EQ(s->address(), village_->address());
  EXPECT_TRUE(s->connected());
}

// A stored address may be served by another instance by the time the catalogue restarts (a
// port or pod IP reused): without etcd to say where the source went, the catalogue does not
// stream from it under the old id, and keeps what it had (stale) rather than dropping it.
TEST_F(CatalogueReplicationTest, AStoredAddressServedByAnotherInstanceIsNotStreamed) {
  auto level = village_->Stub();
  ASSERT_TRUE(CreateWarehouse(*level, kVillageStore, kVillage).ok());
  ASSERT_TRUE(Receive(*level, kVillageStore, "SH-0001", 11, "r-1").ok());
  ASSERT_TRUE(WaitFor([&] { return RollupOnHand(*catalogue_->Stub(), "42", "SH-0001") == 11; },
                      seconds(5)));
  const std::string address = village_->address();
  etcd_.Stop();
  ASSERT_EQ(catalogue_->process().Stop(SIGTERM), 0) << catalogue_->process().Log();
  ASSERT_EQ(village_->process().Stop(SIGTERM), 0);
  TempDir other;
  Subprocess stranger(
      {BinaryDir() + "/bin/stockpile-level", "--level=village", "--regions=420102",
       "--db=" + other.Sub("db"), "--reference-data=" + ReferenceDataDir(), "--listen=" + address,
       "--instance-id=village-z", "--port-file=" + other.Sub("port")},
      other.Sub("stranger.log"));
  ASSERT_TRUE(stranger.Start());
  ASSERT_TRUE(WaitFor([&] { return ReadPort(other.Sub("port")) > 0; }, seconds(30)))
      << stranger.Log();
  ASSERT_TRUE(catalogue_->Start());
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto sources = catalogue_->Status();
        const auto* s = FindSource(sources, "village-a");
        return s != nullptr && !s->connected() &&
               s->last_error().find("now serves instance village-z") != std::string::npos;
      },
      seconds(15)))
      << catalogue_->process().Log();
  EXPECT_EQ(RollupOnHand(*catalogue_->Stub(), "42", "SH-0001"), 11);  // kept, not dropped
  EXPECT_EQ(catalogue_->process().Log().find("dropped its"), std::string::npos);
  stranger.Stop(SIGTERM);
}

}  // namespace
}  // namespace stockpile::testing
