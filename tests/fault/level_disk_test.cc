// A level whose disk refuses a write (here: a file-size limit on the process, so the WAL cannot
// grow) refuses every mutation until restart. Probes must then see NOT_SERVING on both health
// ports so the orchestrator restarts it, the failure must be counted on /metrics, and the
// restart must find every acknowledged batch.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "services/common/metrics/scrape_client.h"
#include "tests/testutil/level_process.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::testing {
namespace {

using namespace stockpile::v1;  // NOLINT
using grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kWarehouse[] = "warehouses/420102-W001";
constexpr int kBatch = 1000;

HealthCheckResponse::ServingStatus Health(
    const std::string& address, const std::string& service = "stockpile.v1.LevelService") {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  HealthCheckResponse resp;
  if (!stub->Check(Deadline(5).get(), req, &resp).ok()) return HealthCheckResponse::UNKNOWN;
  return resp.status();
}

grpc::Status CreateTheWarehouse(LevelService::Stub& stub) {
  CreateWarehouseRequest create;
  create.set_request_id("create");
  create.set_actor("disk-test");
  create.mutable_warehouse()->set_code("420102-W001");
  create.mutable_warehouse()->set_region_code("420102");
  create.mutable_warehouse()->set_display_name("disk test store");
  create.mutable_warehouse()->set_kind(WAREHOUSE_KIND_GOVERNMENT);
  create.mutable_warehouse()->set_area_m2(2000);
  Warehouse w;
  return stub.CreateWarehouse(Deadline().get(), create, &w);
}

ApplyBatchRequest Receipts(int n) {
  ApplyBatchRequest req;
  req.set_request_id(absl::StrCat("batch-", n));
  req.set_actor("disk-test");
  for (int i = 0; i < kBatch; ++i) {
    auto* op = req.add_operations()->mutable_receive();
    op->set_warehouse(kWarehouse);
    op->set_item("SH-0001");
    op->set_quantity(1);
  }
  return req;
}

TEST(LevelDiskTest, AWriteTheDiskRefusesTurnsHealthNotServingAndLosesNothingAcknowledged) {
  TempDir dir;
  const std::string health = "127.0.0.1:" + std::to_string(FreePort());
  LevelProcess level(dir, "county", "4201", {"--health-listen=" + health});
  // 4 MiB per file: the open and a few batches fit, then a WAL append fails (EFBIG; SIGXFSZ is
  // ignored so the write fails instead of killing the process).
  level.set_launcher({"/bin/bash", "-c", "trap '' XFSZ; ulimit -f 4096; exec \"$@\"", "limited"});
  ASSERT_TRUE(level.Start()) << level.Log();
  auto stub = level.Stub();
  ASSERT_THAT(CreateTheWarehouse(*stub), IsOk());
  ASSERT_EQ(Health(level.address()), HealthCheckResponse::SERVING);
  ASSERT_EQ(Health(health), HealthCheckResponse::SERVING);

  int acknowledged = 0;
  grpc::Status refused;
  for (int n = 0; n < 200 && refused.ok(); ++n) {
    ApplyBatchResponse resp;
    refused = stub->ApplyBatch(Deadline(10).get(), Receipts(n), &resp);
    if (refused.ok()) ++acknowledged;
  }
  ASSERT_FALSE(refused.ok()) << "200 batches fit under the file-size limit";
  // The client's retry of the refused batch is refused too: nothing of it is stored.
  ApplyBatchResponse retried;
  EXPECT_FALSE(stub->ApplyBatch(Deadline(10).get(), Receipts(acknowledged), &retried).ok());
  ASSERT_GT(acknowledged, 0);
  EXPECT_EQ(Health(level.address()), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health(health), HealthCheckResponse::NOT_SERVING);
  // Kubernetes' gRPC liveness probe asks for the whole server (""): it must fail too.
  EXPECT_EQ(Health(health, ""), HealthCheckResponse::NOT_SERVING);
  auto page = metrics::FetchMetricsPage("127.0.0.1", level.metrics_port());
  ASSERT_THAT(page.status(), IsOk());
  auto samples = metrics::ParseMetricsPage(*page);
  ASSERT_THAT(samples.status(), IsOk());
  EXPECT_GE(metrics::SumSamples(*samples, "stockpile_write_failures_total", {}), 1);
  ReceiveRequest one;
  one.set_request_id("after-the-failure");
  one.set_actor("disk-test");
  one.mutable_op()->set_warehouse(kWarehouse);
  one.mutable_op()->set_item("SH-0001");
  one.mutable_op()->set_quantity(1);
  MovementResult out;
  EXPECT_EQ(stub->Receive(Deadline().get(), one, &out).error_code(), grpc::StatusCode::UNAVAILABLE);

  // It stops cleanly (exit 0): nothing flushes through the log writer that failed.
  EXPECT_EQ(level.Stop(), 0) << level.Log();
  level.set_launcher({});
  ASSERT_TRUE(level.Start()) << level.Log();
  EXPECT_EQ(Health(level.address()), HealthCheckResponse::SERVING);
  GetBalanceRequest get;
  get.set_warehouse(kWarehouse);
  get.set_item("SH-0001");
  Balance b;
  ASSERT_THAT(level.Stub()->GetBalance(Deadline().get(), get, &b), IsOk());
  // Every acknowledged batch is there; the refused one is not.
  EXPECT_EQ(b.on_hand(), int64_t{acknowledged} * kBatch);
}

// A volume that really fills (ENOSPC: a small tmpfs in a mount namespace of the level's own,
// where root may mount; skipped where that is not allowed). Left to RocksDB, the WAL append
// that fails for want of space broke its log writer and Debian's librocksdb aborted the
// process (an assertion, exit 134): a crash loop on a full volume. With --min-free-mb the
// level refuses writes before they are applied while the volume has less free, stays up and
// SERVING for reads, and takes writes again once space is freed, the refused one exactly once.
TEST(LevelDiskTest, ALevelNearlyOutOfSpaceRefusesWritesUntilSpaceIsFreed) {
  if (std::system("unshare -rm true >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "no mount namespace here (unshare -rm)";
  }
  TempDir dir;
  LevelProcess level(dir, "county", "4201", {"--min-free-mb=4"});
  const std::string volume = dir.Sub("county-4201");
  level.set_launcher({"unshare", "-rm", "/bin/bash", "-c",
                      "mkdir -p " + volume + " && mount -t tmpfs -o size=16m tmpfs " + volume +
                          " && dd if=/dev/zero of=" + volume +
                          "/filler bs=1M count=6 status=none && exec \"$@\"",
                      "small-volume"});
  ASSERT_TRUE(level.Start()) << level.Log();
  auto stub = level.Stub();
  ASSERT_THAT(CreateTheWarehouse(*stub), IsOk());
  grpc::Status refused;
  int acknowledged = 0;
  for (int n = 0; n < 400 && refused.ok(); ++n) {
    ApplyBatchResponse resp;
    refused = stub->ApplyBatch(Deadline(10).get(), Receipts(n), &resp);
    if (refused.ok()) ++acknowledged;
  }
  ASSERT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << refused.error_message() << level.Log();
  EXPECT_THAT(refused.error_message(), HasSubstr("writes are refused until space is freed"));
  ASSERT_GT(acknowledged, 0);
  EXPECT_EQ(Health(level.address()), HealthCheckResponse::SERVING) << level.Log();
  auto page = metrics::FetchMetricsPage("127.0.0.1", level.metrics_port());
  ASSERT_THAT(page.status(), IsOk());
  auto samples = metrics::ParseMetricsPage(*page);
  ASSERT_THAT(samples.status(), IsOk());
  EXPECT_LT(metrics::SumSamples(*samples, "stockpile_db_volume_free_bytes", {}), 4 << 20);
  EXPECT_EQ(metrics::SumSamples(*samples, "stockpile_db_volume_min_free_bytes", {}), 4 << 20);
  EXPECT_EQ(metrics::SumSamples(*samples, "stockpile_storage_failed", {}), 0);

  // The operator frees space (seen through the level's own mount namespace).
  const std::string filler =
      "/proc/" + std::to_string(level.process().pid()) + "/root" + volume + "/filler";
  ASSERT_EQ(std::remove(filler.c_str()), 0) << filler;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the guard's next look
  ApplyBatchResponse retried;
  ASSERT_THAT(stub->ApplyBatch(Deadline(10).get(), Receipts(acknowledged), &retried), IsOk());
  GetBalanceRequest get;
  get.set_warehouse(kWarehouse);
  get.set_item("SH-0001");
  Balance b;
  ASSERT_THAT(stub->GetBalance(Deadline().get(), get, &b), IsOk());
  EXPECT_EQ(b.on_hand(), int64_t{acknowledged + 1} * kBatch);
  EXPECT_EQ(level.Stop(), 0) << level.Log();
  EXPECT_THAT(level.Log(), Not(HasSubstr("Assertion")));
}

}  // namespace
}  // namespace stockpile::testing
