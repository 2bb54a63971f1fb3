#include "services/level/level_metrics.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "services/common/enum_words.h"
#include "services/common/metrics/scrape_collector.h"
#include "services/common/status_macros.h"

namespace stockpile::level {
namespace {

using metrics::ScrapeCollector;
using prometheus::MetricType;
using Samples = std::vector<ScrapeCollector::Sample>;

std::string TypeLabel(int type) {
  return common::EnumWord(v1::MovementType_Name(static_cast<v1::MovementType>(type)),
                          "MOVEMENT_TYPE_");
}

// A scrape-time family on the metrics page.
absl::Status AddScraped(metrics::MetricsServer& server, std::string name, std::string help,
                        MetricType type, std::vector<std::string> labels,
                        ScrapeCollector::Producer producer) {
  auto c = ScrapeCollector::Create(std::move(name), std::move(help), type, std::move(labels),
                                   std::move(producer));
  if (!c.ok()) return c.status();
  server.AddCollectable(*c);
  return absl::OkStatus();
}

}  // namespace

LevelMetrics::LevelMetrics(const LevelCore& core, int refresh_seconds)
    : core_(core),
      queries_(core.store(), core.reference(), core.hosting(), core.clock()),
      refresh_seconds_(refresh_seconds) {}

absl::StatusOr<std::unique_ptr<LevelMetrics>> LevelMetrics::Register(metrics::MetricsServer& server,
                                                                     const LevelCore& core,
                                                                     int refresh_seconds) {
  std::unique_ptr<LevelMetrics> m(new LevelMetrics(core, refresh_seconds));
  RETURN_IF_ERROR(m->AddCollectables(server));
  if (refresh_seconds > 0) m->thread_ = std::thread([p = m.get()] { p->Loop(); });
  return m;
}

LevelMetrics::~LevelMetrics() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::Status LevelMetrics::AddCollectables(metrics::MetricsServer& server) {
  const LevelCore* core = &core_;
  auto add = [&](std::string name, std::string help, MetricType type,
                 std::vector<std::string> labels, ScrapeCollector::Producer producer) {
    return AddScraped(server, std::move(name), std::move(help), type, std::move(labels),
                      std::move(producer));
  };
  RETURN_IF_ERROR(add("stockpile_movements_total", "Movements posted, by type.",
                      MetricType::Counter, {"type"}, [core] {
                        Samples s;
                        const auto& by_type = core->stats().movements_by_type;
                        for (int t = 1; t < static_cast<int>(by_type.size()); ++t) {
                          s.push_back({{TypeLabel(t)}, double(by_type[t].load())});
                        }
                        return s;
                      }));
  RETURN_IF_ERROR(add("stockpile_stock_units", "Units of each item at this level, by state.",
                      MetricType::Gauge, {"item", "state"}, [core] {
                        Samples s;
                        for (const auto& t : core->Totals()) {
                          s.push_back({{t.item(), "on_hand"}, double(t.on_hand())});
                          s.push_back({{t.item(), "held"}, double(t.held())});
                          s.push_back({{t.item(), "available"}, double(t.on_hand() - t.held())});
                          s.push_back({{t.item(), "in_transit"}, double(t.in_transit())});
                        }
                        return s;
                      }));
  RETURN_IF_ERROR(add("stockpile_holds_expired_total", "Holds released by their expiry.",
                      MetricType::Counter, {}, [core] {
                        return Samples{{{}, double(core->stats().holds_expired.load())}};
                      }));
  RETURN_IF_ERROR(add("stockpile_commit_groups_total",
                      "Synced writes; each carries one or more commands (group commit).",
                      MetricType::Counter, {}, [core] {
                        return Samples{{{}, double(core->stats().commit_groups.load())}};
                      }));
  RETURN_IF_ERROR(add("stockpile_write_failures_total",
                      "Commit groups the database refused; after the first, every mutation is "
                      "refused and health reports NOT_SERVING until restart.",
                      MetricType::Counter, {}, [core] {
                        return Samples{{{}, double(core->stats().write_failures.load())}};
                      }));
  // The LevelWritesRefused alert reads this, not the counter: after the first failed group,
  // mutations are refused before they reach the database and the counter stays where it was.
  RETURN_IF_ERROR(add("stockpile_storage_failed",
                      "1 while the database has refused a write: every mutation is refused and "
                      "health reports NOT_SERVING until restart.",
                      MetricType::Gauge, {}, [core] {
                        return Samples{{{}, core->storage_failed() ? 1.0 : 0.0}};
                      }));
  // LevelVolumeFull compares the two: at or below the floor every mutation is refused.
  RETURN_IF_ERROR(add("stockpile_db_volume_free_bytes",
                      "Bytes free on the database volume (read at most 100 ms ago).",
                      MetricType::Gauge, {}, [core] {
                        return Samples{{{}, double(core->space().free_bytes())}};
                      }));
  RETURN_IF_ERROR(add("stockpile_db_volume_min_free_bytes",
                      "Free bytes kept back on the database volume (--min-free-mb): below it "
                      "every mutation is refused with RESOURCE_EXHAUSTED; 0: never.",
                      MetricType::Gauge, {}, [core] {
                        return Samples{{{}, double(core->space().min_free_bytes())}};
                      }));
  RETURN_IF_ERROR(add("stockpile_idempotent_replays_total",
                      "Retried requests answered with their first result.", MetricType::Counter, {},
                      [core] {
                        return Samples{{{}, double(core->stats().replays.load())}};
                      }));
  RETURN_IF_ERROR(add("stockpile_change_sequence", "Last committed change-stream sequence.",
                      MetricType::Gauge, {}, [core] {
                        return Samples{{{}, double(core->last_sequence())}};
                      }));
  RETURN_IF_ERROR(add(
      "stockpile_rocksdb_live_data_bytes", "Estimated live data in RocksDB.", MetricType::Gauge, {},
      [core] {
        return Samples{{{}, double(core->store().IntProperty("rocksdb.estimate-live-data-size"))}};
      }));
  RETURN_IF_ERROR(add(
      "stockpile_rocksdb_pending_compaction_bytes",
      "Bytes RocksDB estimates it must rewrite in compaction.", MetricType::Gauge, {}, [core] {
        return Samples{
            {{}, double(core->store().IntProperty("rocksdb.estimate-pending-compaction-bytes"))}};
      }));
  RETURN_IF_ERROR(
      add("stockpile_warehouses_below_floor",
          "Warehouses whose usable stock of the item (unexpired, not held) is under its floor.",
          MetricType::Gauge, {"item"}, [this] {
            Samples s;
            for (const auto& [item, n] : counts().below_floor_by_item) {
              s.push_back({{item}, double(n)});
            }
            return s;
          }));
  RETURN_IF_ERROR(add(
      "stockpile_lots_expiring", "Lots with stock expiring within N days (not yet expired).",
      MetricType::Gauge, {"within_days"}, [this] {
        auto c = counts();
        return Samples{{{"7"}, double(c.lots_expiring_7)}, {{"30"}, double(c.lots_expiring_30)}};
      }));
  RETURN_IF_ERROR(add("stockpile_lots_expired",
                      "Lots past their expiry date that still hold stock: no plan or hold takes "
                      "them; they are to be disposed of and replaced.",
                      MetricType::Gauge, {}, [this] {
                        return Samples{{{}, double(counts().lots_expired)}};
                      }));
  RETURN_IF_ERROR(add("stockpile_metrics_refresh_failures_total",
                      "Background scans (floors, expiring lots) that failed; the previous figures "
                      "were kept.",
                      MetricType::Counter, {}, [this] {
                        return Samples{{{}, double(refresh_failures_.load())}};
                      }));
  return add("stockpile_warehouses", "Warehouses hosted by this instance.", MetricType::Gauge, {},
             [this] {
               return Samples{{{}, double(core_.warehouse_count())}};  // a counter, no scan
             });
}

absl::Status LevelMetrics::ScanShortages(ScanCounts& counts) const {
  v1::ListQuotaStatusRequest req;
  req.set_page_size(10000);
  do {
    ASSIGN_OR_RETURN(auto page, queries_.ListQuotaStatus(req, /*shortages=*/true));
    for (const auto& e : page.entries()) counts.below_floor_by_item[e.item()]++;
    req.set_page_token(page.next_page_token());
  } while (!req.page_token().empty());
  return absl::OkStatus();
}

absl::Status LevelMetrics::ScanExpiring(ScanCounts& counts) const {
  v1::ListExpiringLotsRequest req;
  req.set_within_days(30);
  req.set_page_size(10000);
  do {
    ASSIGN_OR_RETURN(auto page, queries_.ListExpiringLots(req));
    for (const auto& lot : page.lots()) {
      // Expired stock is not "expiring soon": it cannot be planned or held any more.
      if (lot.days_left() < 0) {
        counts.lots_expired++;
        continue;
      }
      counts.lots_expiring_30++;
      if (lot.days_left() <= 7) counts.lots_expiring_7++;
    }
    req.set_page_token(page.next_page_token());
  } while (!req.page_token().empty());
  return absl::OkStatus();
}

// All or nothing: a failed scan keeps the last good figures (partial counts would read as "no
// shortage" and silence the alerts), logs, and counts the failure.
absl::Status LevelMetrics::Refresh() {
  ScanCounts fresh;
  absl::Status status = ScanShortages(fresh);
  if (status.ok()) status = ScanExpiring(fresh);
  std::lock_guard<std::mutex> lock(mu_);
  if (!status.ok()) {
    refresh_failures_++;
    std::cerr << "stockpile-level: metrics refresh failed, keeping the previous shortage and "
                 "expiry figures: "
              << status << std::endl;
    return status;
  }
  counts_ = std::move(fresh);
  return absl::OkStatus();
}

LevelMetrics::ScanCounts LevelMetrics::counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_;
}

// The first scan runs here, not at start-up, so a large instance serves at once.
void LevelMetrics::Loop() {
  Refresh().IgnoreError();  // logged and counted by Refresh
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, std::chrono::seconds(refresh_seconds_), [&] { return stopping_; })) {
    lock.unlock();
    Refresh().IgnoreError();
    lock.lock();
  }
}

absl::Status RegisterBackupMetrics(metrics::MetricsServer& server,
                                   std::shared_ptr<const BackupKeeper> backups) {
  RETURN_IF_ERROR(AddScraped(
      server, "stockpile_backups_total", "Backups taken (CreateBackup) since the start, by result.",
      MetricType::Counter, {"result"}, [backups] {
        return Samples{{{"ok"}, double(backups->taken())}, {{"failed"}, double(backups->failed())}};
      }));
  return AddScraped(server, "stockpile_last_backup_time_seconds",
                    "Unix time of the newest backup under --backup-dir (0: none yet).",
                    MetricType::Gauge, {}, [backups] {
                      return Samples{{{}, double(backups->newest_micros()) / 1e6}};
                    });
}

}  // namespace stockpile::level
