#pragma once

// The catalogue's domain core, usable from a library (stockpile-local embeds it):
//   auto core = CatalogueCore::Open(db_path, reference, clock, options);
//   core->AddSource({"county-1", LEVEL_COUNTY, "127.0.0.1:7501", {"42"}});  // starts streaming
//   core->RemoveSource("county-1");  // registration gone: stream stops, data kept, flagged stale
//   core->ForgetSource("county-1", request_id, actor);  // decommissioned: its data dropped
// Every source's change batches are applied exactly once: the records and the source's new
// watermark are written in one synced RocksDB batch, then the in-memory national view is updated.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/catalogue/catalogue_store.h"
#include "services/catalogue/national_view.h"
#include "services/catalogue/replication_source.h"
#include "services/common/clock.h"
#include "services/common/reference_data.h"
#include "stockpile/v1/catalogue_service.pb.h"

namespace stockpile::catalogue {

namespace allocation {
class StockSnapshot;
}

class CatalogueCore {
 public:
  struct Options {
    bool sync_writes = true;
    StreamOptions stream;
    // Nearest-first search index fed by the view; null: full scans.
    std::unique_ptr<StockSearch> search;
    // The transfer planner's stock (not owned; must outlive the core); fed the same records as
    // the view, on load and on every applied batch. Null: no planning in this process.
    allocation::StockSnapshot* snapshot = nullptr;
    // Records a resync drops per write (CatalogueStore::DropSourceStock): bounds its memory.
    size_t resync_chunk_records = 65536;
  };

  static absl::StatusOr<std::unique_ptr<CatalogueCore>> Open(const std::string& db_path,
                                                             const common::ReferenceData* reference,
                                                             const common::Clock* clock,
                                                             Options options);
  ~CatalogueCore();  // stops every stream

  // ---- sources (discovery calls these; safe from any thread)
  // Starts streaming from `spec` (restarts the stream when its address changed).
  void AddSource(const SourceSpec& spec);
  // The source's registration vanished: stop its stream, keep its data, flag it stale.
  void RemoveSource(const std::string& id);
  // Makes the running set equal `specs` (a resync): adds/updates them, removes the others.
  void SetSources(const std::vector<SourceSpec>& specs);
  // Streams again from every source stored as registered, at its stored address, before
  // discovery answers: a catalogue restarted while etcd is away keeps replicating. Discovery
  // then corrects the set. Returns how many it resumed.
  int ResumeStoredSources();
  // An operator's decision that a gone source will not come back (decommissioned, replaced
  // under another id): drops every record replicated from it and stops reporting it. Refused
  // (FAILED_PRECONDITION) while it is registered; NOT_FOUND when unknown or already forgotten,
  // except for a retry of the request that forgot it, which answers the same. Returns the
  // source as last reported, with who forgot it and when. Registering again starts it over.
  absl::StatusOr<stockpile::v1::ReplicationSource> ForgetSource(const std::string& id,
                                                                const std::string& request_id,
                                                                const std::string& actor);

  // Applies one WatchChanges batch of `source_id` exactly once; returns the new watermark.
  // Entries at or below the watermark are skipped; a gap is FAILED_PRECONDITION.
  absl::StatusOr<uint64_t> Apply(const std::string& source_id,
                                 const stockpile::v1::WatchChangesResponse& batch);
  uint64_t Watermark(const std::string& source_id) const;
  StreamPosition Position(const std::string& source_id) const;

  // ---- reads
  absl::StatusOr<stockpile::v1::WarehouseStock> GetWarehouseStock(
      const stockpile::v1::GetWarehouseStockRequest& req) const;
  absl::StatusOr<stockpile::v1::ListWarehouseStockResponse> ListWarehouseStock(
      const stockpile::v1::ListWarehouseStockRequest& req) const;
  absl::StatusOr<stockpile::v1::Rollup> GetRollup(const stockpile::v1::GetRollupRequest& req) const;
  absl::StatusOr<stockpile::v1::SearchStockResponse> SearchStock(
      const stockpile::v1::SearchStockRequest& req) const;
  absl::StatusOr<stockpile::v1::ListQuotaStatusResponse> ListShortages(
      const stockpile::v1::ListQuotaStatusRequest& req) const;
  absl::StatusOr<stockpile::v1::ListExpiringLotsResponse> ListExpiringLots(
      const stockpile::v1::ListExpiringLotsRequest& req) const;
  std::vector<stockpile::v1::ReplicationSource> ReplicationStatus() const;

  const NationalView& view() const { return *view_; }
  const common::ReferenceData& reference() const { return *reference_; }

 private:
  struct SourceState {
    stockpile::v1::ReplicationSource record;  // persisted part (watermark, spec, gone, ...)
    uint16_t view_index = 0;
    std::unique_ptr<ReplicationStream> stream;
    // What the stream last knew when it was stopped: keeps head and lag visible for a gone source.
    StreamStatus last_status;
  };

  CatalogueCore(std::unique_ptr<CatalogueStore> store, const common::ReferenceData* reference,
                const common::Clock* clock, Options options);
  absl::Status Load();
  std::unique_ptr<ReplicationStream> NewStream(const SourceSpec& spec);
  // Adds the last state of every record key in entries[first..] to `writes`.
  static void WriteLatestStates(const std::string& source_id,
                                const stockpile::v1::WatchChangesResponse& batch, int first,
                                StoreBatch* writes);
  // The source's history no longer matches what is held from it (`signal`, a history_diverged
  // message): drops its stock and restarts its stream from sequence 1. Returns ABORTED (the
  // stream reconnects) saying so, or why the drop failed.
  absl::Status Resync(const std::string& source_id,
                      const stockpile::v1::WatchChangesResponse& signal);
  // Drops everything replicated from the source of `final_record` (store, view, snapshot) and
  // stores `final_record` last; says how much went.
  struct DroppedCounts {
    std::vector<std::string> warehouses;
    size_t balances = 0;
  };
  absl::StatusOr<DroppedCounts> DropStock(const stockpile::v1::ReplicationSource& final_record,
                                          uint16_t view_index);
  // Sets what `dropped` held to zero in the view and the planner's snapshot.
  void DropFromMemory(const CatalogueStore::DroppedStock& dropped, uint16_t view_index);
  // Updates the memory view and the planner's snapshot with entries[first..].
  void ApplyToMemory(const stockpile::v1::WatchChangesResponse& batch, int first,
                     uint16_t view_index);
  // Hands the entries from `first` on to the planner's snapshot (when there is one).
  void FeedSnapshot(const stockpile::v1::WatchChangesResponse& batch, int first);
  // Pushes every source's staleness into the view (cheap: a handful of sources).
  void RefreshFreshness() const;
  static bool Stale(const SourceState& s);
  // The source's record with what its stream knows now (head, lag, connection).
  stockpile::v1::ReplicationSource Reported(const SourceState& s, int64_t now) const;

  std::unique_ptr<CatalogueStore> store_;
  const common::ReferenceData* reference_;
  const common::Clock* clock_;
  const StreamOptions stream_options_;
  const size_t resync_chunk_records_;
  std::unique_ptr<NationalView> view_;
  allocation::StockSnapshot* const snapshot_;

  const int64_t opened_micros_;  // a source not answered since: lagging at least that long
  absl::Mutex discovery_mu_;  // serializes AddSource/RemoveSource (streams start/stop outside mu_)
  mutable absl::Mutex mu_;
  std::map<std::string, SourceState> sources_ ABSL_GUARDED_BY(mu_);
  // Forgotten sources' last records (ForgetSource), kept to answer a retried request.
  std::map<std::string, stockpile::v1::ReplicationSource> forgotten_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stockpile::catalogue
