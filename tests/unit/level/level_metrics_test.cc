// LevelMetrics on a real core and metrics server: the scanned figures (floors, expiring lots,
// warehouses), holds expired and the RocksDB gauges as the page shows them, before and after the
// stock moves, a failed scan that keeps the last good figures, and the storage-failed gauge.
#include "services/level/level_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <filesystem>

#include "services/common/metrics/scrape_client.h"
#include "tests/testutil/process.h"
#include "tests/testutil/status_matchers.h"
#include "tests/unit/level/level_test_env.h"

namespace stockpile::level::testing {
namespace {

using ::stockpile::testing::IsOk;
using ::stockpile::testing::RunCommand;
using ::stockpile::testing::StatusIs;
using ::testing::HasSubstr;
using namespace stockpile::v1;  // NOLINT
using Env = LevelTestEnv;

constexpr char kW[] = "warehouses/420102-W001";
constexpr char kW2[] = "warehouses/420103-W001";
constexpr char kTent[] = "SH-0001";
constexpr char kWater[] = "FW-0001";
constexpr char kQuotaCorrupt[] = "420102-W001/ZZ-CORRUPT";
constexpr char kBalanceCorrupt[] = "420103-W001/ZZ-CORRUPT";
// A length-delimited field 1 of 5 bytes with only 2 present: no message parses from it.
constexpr char kUnparsable[] =
    "\x0a\x05"
    "ab";

class LevelMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = metrics::MetricsServer::Start(
        "127.0.0.1:0", {"stockpile-level", "0.1.0", "abc1234", {{"level", "county"}}});
    ASSERT_THAT(server.status(), IsOk());
    server_ = std::move(*server);
    // refresh_seconds 0: no background thread, the test calls Refresh().
    auto m = LevelMetrics::Register(*server_, env_.core(), 0);
    ASSERT_THAT(m.status(), IsOk());
    metrics_ = std::move(*m);
    ASSERT_THAT(env_.CreateWarehouse("420102-W001").status(), IsOk());
    ASSERT_THAT(env_.CreateWarehouse("420103-W001").status(), IsOk());
  }

  // Floor 50 over 10 tents at kW; water lots expiring in 4, 19 and 202 days.
  void StockBelowFloorAndExpiring() {
    ASSERT_THAT(env_.SetQuota(kW, kTent, 50, 200).status(), IsOk());
    ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 10)).status(), IsOk());
    ASSERT_THAT(env_.Apply(Env::Receive(kW, kWater, 5, "SOON", "2026-06-05")).status(), IsOk());
    ASSERT_THAT(env_.Apply(Env::Receive(kW2, kWater, 5, "MONTH", "2026-06-20")).status(), IsOk());
    ASSERT_THAT(env_.Apply(Env::Receive(kW2, kWater, 5, "LATER", "2026-12-20")).status(), IsOk());
  }

  // Tents up to the floor and the lot expiring within 7 days issued.
  void RestockAndIssueSoonLot() {
    ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 45)).status(), IsOk());
    ASSERT_THAT(env_.Apply(Env::Issue(kW, kWater, 5, "SOON")).status(), IsOk());
  }

  std::vector<metrics::Sample> Scrape() {
    auto page = metrics::FetchMetricsPage("127.0.0.1", server_->port());
    EXPECT_THAT(page.status(), IsOk());
    if (!page.ok()) return {};
    std::string out;
    EXPECT_EQ(RunCommand({"/usr/bin/promtool", "check", "metrics"}, &out, *page), 0) << out << "\n"
                                                                                     << *page;
    auto samples = metrics::ParseMetricsPage(*page);
    EXPECT_THAT(samples.status(), IsOk());
    return samples.ok() ? *samples : std::vector<metrics::Sample>{};
  }

  static double BelowFloor(const std::vector<metrics::Sample>& s, const std::string& item) {
    return metrics::SumSamples(s, "stockpile_warehouses_below_floor",
                               {{"item", item}, {"level", "county"}});
  }
  static double Expiring(const std::vector<metrics::Sample>& s, const std::string& days) {
    return metrics::SumSamples(s, "stockpile_lots_expiring",
                               {{"within_days", days}, {"level", "county"}});
  }

  void PutRaw(Cf cf, const std::string& key, const std::string& value) {
    const LevelStore& store = env_.core().store();
    ASSERT_TRUE(store.db()->Put(rocksdb::WriteOptions(), store.handle(cf), key, value).ok());
  }
  void DeleteRaw(Cf cf, const std::string& key) {
    const LevelStore& store = env_.core().store();
    ASSERT_TRUE(store.db()->Delete(rocksdb::WriteOptions(), store.handle(cf), key).ok());
  }

  // Size of the newest write-ahead log (*.log) and of RocksDB's info LOG.
  uint64_t WalSize() const {
    uint64_t size = 0;
    for (const auto& f : std::filesystem::directory_iterator(env_.db_path())) {
      if (f.path().extension() == ".log") size = std::max<uint64_t>(size, f.file_size());
    }
    return size;
  }
  uint64_t InfoLogSize() const {
    const std::filesystem::path log = std::filesystem::path(env_.db_path()) / "LOG";
    return std::filesystem::exists(log) ? std::filesystem::file_size(log) : 0;
  }
  // Receipts in batches of 500 until the WAL is `margin` bytes larger than the info LOG.
  void GrowWalPastInfoLog(uint64_t margin) {
    for (int n = 0; n < 200 && WalSize() < InfoLogSize() + margin; ++n) {
      std::vector<Operation> ops(500, Env::Receive(kW2, kTent, 1));
      ASSERT_THAT(env_.Batch(ops).status(), IsOk());
    }
    ASSERT_GE(WalSize(), InfoLogSize() + margin);
  }

  Env env_;
  std::unique_ptr<metrics::MetricsServer> server_;
  std::unique_ptr<LevelMetrics> metrics_;
};

TEST_F(LevelMetricsTest, FloorsAndExpiringLotsFollowTheStockAtEachRefresh) {
  ASSERT_NO_FATAL_FAILURE(StockBelowFloorAndExpiring());
  auto before = Scrape();  // nothing scanned yet
  EXPECT_EQ(BelowFloor(before, kTent), 0);
  EXPECT_EQ(Expiring(before, "30"), 0);

  ASSERT_THAT(metrics_->Refresh(), IsOk());
  auto short_of_tents = Scrape();
  EXPECT_EQ(BelowFloor(short_of_tents, kTent), 1);
  EXPECT_EQ(Expiring(short_of_tents, "7"), 1);   // SOON, 4 days
  EXPECT_EQ(Expiring(short_of_tents, "30"), 2);  // SOON and MONTH (19 days), not LATER
  EXPECT_EQ(metrics::SumSamples(short_of_tents, "stockpile_warehouses", {{"level", "county"}}), 2);

  ASSERT_NO_FATAL_FAILURE(RestockAndIssueSoonLot());
  EXPECT_EQ(BelowFloor(Scrape(), kTent), 1);  // scanned figures change only at a refresh
  ASSERT_THAT(metrics_->Refresh(), IsOk());
  auto restocked = Scrape();
  EXPECT_EQ(BelowFloor(restocked, kTent), 0);
  EXPECT_EQ(Expiring(restocked, "7"), 0);
  EXPECT_EQ(Expiring(restocked, "30"), 1);
  EXPECT_EQ(metrics::SumSamples(restocked, "stockpile_metrics_refresh_failures_total"), 0);
}

// A lot past its expiry date is counted as expired, not as expiring within 7 days (it was:
// expired medicine read as "expiring soon", with no count of its own).
TEST_F(LevelMetricsTest, ExpiredLotsAreCountedApartFromExpiringOnes) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kWater, 5, "WEEK", "2026-06-03")).status(), IsOk());
  ASSERT_THAT(metrics_->Refresh(), IsOk());
  auto fresh = Scrape();
  EXPECT_EQ(Expiring(fresh, "7"), 1);
  EXPECT_EQ(metrics::SumSamples(fresh, "stockpile_lots_expired", {{"level", "county"}}), 0);
  env_.clock().Advance(int64_t{5} * 86'400'000'000);  // two days past its expiry
  ASSERT_THAT(metrics_->Refresh(), IsOk());
  auto later = Scrape();
  EXPECT_EQ(Expiring(later, "7"), 0);
  EXPECT_EQ(Expiring(later, "30"), 0);
  EXPECT_EQ(metrics::SumSamples(later, "stockpile_lots_expired", {{"level", "county"}}), 1);
}

TEST_F(LevelMetricsTest, HoldsExpiredCountsTheSweep) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 10)).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Hold(kW, kTent, 6, "h1", 60)).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Hold(kW, kTent, 2, "h2", 3600)).status(), IsOk());
  EXPECT_EQ(metrics::SumSamples(Scrape(), "stockpile_holds_expired_total"), 0);
  env_.clock().Advance(61'000'000);
  ASSERT_EQ(env_.core().SweepExpiredHolds(), 1);
  auto after = Scrape();
  EXPECT_EQ(metrics::SumSamples(after, "stockpile_holds_expired_total", {{"level", "county"}}), 1);
  EXPECT_EQ(
      metrics::SumSamples(after, "stockpile_stock_units", {{"item", kTent}, {"state", "held"}}), 2);
}

TEST_F(LevelMetricsTest, RocksDbGaugesReadTheStore) {
  const LevelStore& store = env_.core().store();
  rocksdb::DB* db = store.db();
  // Compaction off for balances, so flushed L0 files pile up and compaction becomes pending.
  ASSERT_TRUE(
      db->SetOptions(store.handle(Cf::kBalances), {{"disable_auto_compactions", "true"}}).ok());
  EXPECT_EQ(metrics::SumSamples(Scrape(), "stockpile_rocksdb_live_data_bytes"), 0);
  for (int i = 0; i < 6; ++i) {
    ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 1 + i)).status(), IsOk());
    ASSERT_TRUE(db->Flush(rocksdb::FlushOptions(), store.handle(Cf::kBalances)).ok());
  }
  auto after = Scrape();
  const double live = metrics::SumSamples(after, "stockpile_rocksdb_live_data_bytes");
  const double pending = metrics::SumSamples(after, "stockpile_rocksdb_pending_compaction_bytes");
  EXPECT_GT(live, 0);
  EXPECT_EQ(live, double(store.IntProperty("rocksdb.estimate-live-data-size")));
  EXPECT_GT(pending, 0);
  EXPECT_EQ(pending, double(store.IntProperty("rocksdb.estimate-pending-compaction-bytes")));
}

// What the LevelBackupsStale alert reads: the newest backup's time (one already in the directory
// at the start counts), and backups taken or failed since.
TEST_F(LevelMetricsTest, BackupGaugesFollowTheBackupsTaken) {
  constexpr int64_t kEarlier = 1'764'806'400'000'000;  // 2025-12-04T00:00:00Z
  const std::string dir = env_.db_path() + "-backups";
  ASSERT_THAT(CreateBackup(env_.core().store(), dir, 1, kEarlier).status(), IsOk());
  auto backups = std::make_shared<BackupKeeper>(dir, 0);
  ASSERT_THAT(RegisterBackupMetrics(*server_, backups), IsOk());
  auto at_start = Scrape();
  EXPECT_EQ(
      metrics::SumSamples(at_start, "stockpile_last_backup_time_seconds", {{"level", "county"}}),
      kEarlier / 1e6);
  EXPECT_EQ(metrics::SumSamples(at_start, "stockpile_backups_total", {{"result", "ok"}}), 0);

  const int64_t now = kEarlier + 3'600'000'000;  // an hour later
  ASSERT_THAT(backups->Take(env_.core().store(), "b-1",
                            [&] {
                              return BackupPoint{2, now};
                            }),
              IsOk());
  // A copy whose directory is already there fails (RocksDB will not write into it).
  std::filesystem::create_directories(dir + "/backup-20251204T010000.000Z-seq3");
  EXPECT_FALSE(backups->Take(env_.core().store(), "b-2", [&] { return BackupPoint{3, now}; }).ok());
  auto after = Scrape();
  EXPECT_EQ(metrics::SumSamples(after, "stockpile_last_backup_time_seconds"), now / 1e6);
  EXPECT_EQ(metrics::SumSamples(after, "stockpile_backups_total", {{"result", "ok"}}), 1);
  EXPECT_EQ(metrics::SumSamples(after, "stockpile_backups_total", {{"result", "failed"}}), 1);
}

// What the LevelWritesRefused alert reads: the write-failure counter steps once, at the group
// the database refused, and stays there while every later mutation is refused before it reaches
// the database; stockpile_storage_failed says 1 for as long as the instance refuses writes.
TEST_F(LevelMetricsTest, StorageFailedStaysOneWhileEveryWriteIsRefused) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, kTent, 10)).status(), IsOk());
  auto healthy = Scrape();
  ASSERT_EQ(
      std::count_if(healthy.begin(), healthy.end(),
                    [](const metrics::Sample& s) { return s.name == "stockpile_storage_failed"; }),
      1);  // there, and 0: not missing
  EXPECT_EQ(metrics::SumSamples(healthy, "stockpile_storage_failed"), 0);
  EXPECT_EQ(metrics::SumSamples(healthy, "stockpile_write_failures_total"), 0);

  // A full disk for the write-ahead log: no file of this process may grow past the log's
  // present size (EFBIG; SIGXFSZ ignored), so the next group's append fails. RocksDB's own LOG
  // must stay under that size (a second failed append to it trips an assert in librocksdb), so
  // the WAL is first made larger than it by a margin. The limit is lifted at once afterwards.
  ASSERT_NO_FATAL_FAILURE(GrowWalPastInfoLog(512 << 10));
  struct rlimit before;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &before), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit full = before;
  full.rlim_cur = WalSize();
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &full), 0);
  auto refused = env_.Apply(Env::Receive(kW, kTent, 1));
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &before), 0);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_THAT(refused.status(), StatusIs(absl::StatusCode::kUnavailable));

  // Space is back, but the instance refuses until restart; the counter no longer moves.
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(env_.Apply(Env::Receive(kW, kTent, 1)).status(),
                StatusIs(absl::StatusCode::kUnavailable, HasSubstr("restart")));
  }
  auto refusing = Scrape();
  EXPECT_EQ(metrics::SumSamples(refusing, "stockpile_write_failures_total"), 1);
  EXPECT_EQ(metrics::SumSamples(refusing, "stockpile_storage_failed", {{"level", "county"}}), 1);
}

TEST_F(LevelMetricsTest, FailedScanKeepsThePreviousFiguresLogsAndCounts) {
  ASSERT_NO_FATAL_FAILURE(StockBelowFloorAndExpiring());
  ASSERT_THAT(metrics_->Refresh(), IsOk());
  ASSERT_NO_FATAL_FAILURE(RestockAndIssueSoonLot());  // a good scan would now read 0, 0, 1

  // An unreadable quota: the floor scan fails.
  ASSERT_NO_FATAL_FAILURE(PutRaw(Cf::kQuotas, kQuotaCorrupt, kUnparsable));
  ::testing::internal::CaptureStderr();
  EXPECT_THAT(metrics_->Refresh(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("quota")));
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              HasSubstr("metrics refresh failed, keeping the previous"));
  auto kept = Scrape();
  EXPECT_EQ(BelowFloor(kept, kTent), 1);
  EXPECT_EQ(Expiring(kept, "7"), 1);
  EXPECT_EQ(Expiring(kept, "30"), 2);
  EXPECT_EQ(metrics::SumSamples(kept, "stockpile_warehouses"), 2);
  EXPECT_EQ(metrics::SumSamples(kept, "stockpile_metrics_refresh_failures_total"), 1);

  // An unreadable balance: the floor scan succeeds, the expiry scan fails; nothing partial.
  ASSERT_NO_FATAL_FAILURE(DeleteRaw(Cf::kQuotas, kQuotaCorrupt));
  ASSERT_NO_FATAL_FAILURE(PutRaw(Cf::kBalances, kBalanceCorrupt, kUnparsable));
  ::testing::internal::CaptureStderr();
  EXPECT_THAT(metrics_->Refresh(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("balance")));
  ::testing::internal::GetCapturedStderr();
  kept = Scrape();
  EXPECT_EQ(BelowFloor(kept, kTent), 1);
  EXPECT_EQ(Expiring(kept, "7"), 1);
  EXPECT_EQ(metrics::SumSamples(kept, "stockpile_metrics_refresh_failures_total"), 2);
  EXPECT_EQ(metrics_->refresh_failures(), 2u);

  ASSERT_NO_FATAL_FAILURE(DeleteRaw(Cf::kBalances, kBalanceCorrupt));
  ASSERT_THAT(metrics_->Refresh(), IsOk());
  auto recovered = Scrape();
  EXPECT_EQ(BelowFloor(recovered, kTent), 0);
  EXPECT_EQ(Expiring(recovered, "7"), 0);
  EXPECT_EQ(Expiring(recovered, "30"), 1);
  EXPECT_EQ(metrics::SumSamples(recovered, "stockpile_metrics_refresh_failures_total"), 2);
}

}  // namespace
}  // namespace stockpile::level::testing
