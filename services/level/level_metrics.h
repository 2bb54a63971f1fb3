#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "services/common/metrics/metrics_server.h"
#include "services/level/backup.h"
#include "services/level/level_core.h"
#include "services/level/level_queries.h"

namespace stockpile::level {

// The level service's figures on the metrics page. Cheap values (movements, stock per item,
// sequence, RocksDB sizes) are read at scrape time; values that need a scan (warehouses below
// their floor, lots expiring soon) are refreshed by a background thread every
// `refresh_seconds`, so a scrape never scans the database. Labels stay bounded: item, state,
// movement type, within_days (the server adds level).
//
// A scan that fails (an unreadable record, an iterator error) keeps every scanned figure of the
// last good scan rather than publishing partial counts (a zero would silence the
// WarehouseBelowFloor and LotsExpiringSoon alerts): it logs the error and counts it in
// stockpile_metrics_refresh_failures_total.
class LevelMetrics {
 public:
  // `refresh_seconds` <= 0 starts no background thread: the owner calls Refresh() (tests).
  static absl::StatusOr<std::unique_ptr<LevelMetrics>> Register(metrics::MetricsServer& server,
                                                                const LevelCore& core,
                                                                int refresh_seconds = 30);
  ~LevelMetrics();

  struct ScanCounts {
    std::map<std::string, int64_t> below_floor_by_item;
    int64_t lots_expiring_7 = 0;
    int64_t lots_expiring_30 = 0;
    int64_t lots_expired = 0;  // past their expiry date, stock still on hand
  };
  // Runs the scan now (the background thread calls this). On error the previous figures stay.
  absl::Status Refresh();
  ScanCounts counts() const;
  uint64_t refresh_failures() const { return refresh_failures_.load(); }

 private:
  LevelMetrics(const LevelCore& core, int refresh_seconds);
  absl::Status AddCollectables(metrics::MetricsServer& server);
  absl::Status ScanShortages(ScanCounts& counts) const;
  absl::Status ScanExpiring(ScanCounts& counts) const;
  void Loop();

  const LevelCore& core_;
  LevelQueries queries_;
  const int refresh_seconds_;
  mutable std::mutex mu_;
  ScanCounts counts_;
  std::atomic<uint64_t> refresh_failures_{0};
  bool stopping_ = false;
  std::condition_variable cv_;
  std::thread thread_;
};

// stockpile_backups_total{result} and stockpile_last_backup_time_seconds, for an instance that
// takes backups (--backup-dir): the LevelBackupsStale alert watches the second.
absl::Status RegisterBackupMetrics(metrics::MetricsServer& server,
                                   std::shared_ptr<const BackupKeeper> backups);

}  // namespace stockpile::level
