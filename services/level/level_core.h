#pragma once

#include <google/protobuf/message.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/common/clock.h"
#include "services/common/reference_data.h"
#include "services/level/hosting.h"
#include "services/level/ledger.h"
#include "services/level/level_store.h"
#include "services/level/space_guard.h"
#include "stockpile/v1/level_service.pb.h"

namespace stockpile::internal {
class StoreMeta;
}  // namespace stockpile::internal

namespace stockpile::level {

// The outcome of a mutation: the serialized response of its method, first time or replayed.
struct CommandResult {
  absl::Status status;
  std::string response;  // serialized response of a replay of a record stored whole
  // The response of a first execution, or of a replay of a stamped record (StoredResponse).
  std::shared_ptr<google::protobuf::Message> message;
  uint64_t sequence = 0;
  bool replayed = false;

  // The response as bytes, whichever way it came.
  std::string Bytes() const { return message ? message->SerializeAsString() : response; }
};

using CommandCallback = std::function<void(CommandResult)>;

// Counters the metrics page reads.
struct CoreStats {
  std::atomic<uint64_t> commit_groups{0};
  std::atomic<uint64_t> commands_committed{0};
  std::atomic<uint64_t> commands_refused{0};
  std::atomic<uint64_t> replays{0};
  std::atomic<uint64_t> holds_expired{0};
  std::atomic<uint64_t> write_failures{0};
  std::array<std::atomic<uint64_t>, 10> movements_by_type{};
};

// The level service's domain core: validates and applies mutations through one writer thread
// that commits groups of commands in a single synced RocksDB WriteBatch (group commit: many
// callers share one fsync), assigns the dense change-stream sequence, and keeps requests
// idempotent by request_id. Reads go straight to the store (see LevelQueries).
class LevelCore {
 public:
  struct Options {
    std::string instance_id;
    // Commands per commit group, and operations (movements) per group at most.
    size_t max_group_commands = 1024;
    size_t max_group_operations = 16384;
    // How often expired holds are looked for.
    int64_t hold_sweep_interval_ms = 1000;
    bool sync_writes = true;
    // The balances family is flushed early once its memtable holds this many versions and
    // kBalanceVersionsPerKey per balance on average (see VersionChurn).
    size_t balance_flush_min_versions = 5'000;
    // Mutations are refused (RESOURCE_EXHAUSTED) while the database's volume has less free;
    // 0: never (see SpaceGuard).
    uint64_t min_free_bytes = 0;
    // Tests only: runs on the syncer thread before each group is written; a status other than
    // OK is taken as the store's answer to the write (a failed write, the group not written).
    std::function<absl::Status()> before_group_write;
  };

  static absl::StatusOr<std::unique_ptr<LevelCore>> Open(const std::string& db_path,
                                                         const common::ReferenceData* reference,
                                                         Hosting hosting,
                                                         const common::Clock* clock,
                                                         Options options);
  ~LevelCore();

  // Mutations: `done` runs on the writer thread once the command is durable or refused.
  void CreateWarehouse(const stockpile::v1::CreateWarehouseRequest& req, CommandCallback done);
  void UpdateWarehouse(const stockpile::v1::UpdateWarehouseRequest& req, CommandCallback done);
  // `arena`: where the response is built (a gRPC call's arena, alive until its reply is
  // finished); nullptr builds it on the heap.
  void ApplyOperations(absl::string_view method, absl::string_view request_id,
                       absl::string_view actor, std::vector<stockpile::v1::Operation> operations,
                       const google::protobuf::Message& request, CommandCallback done,
                       google::protobuf::Arena* arena = nullptr);
  void SetQuota(const stockpile::v1::SetQuotaRequest& req, CommandCallback done);
  void SetReserve(const stockpile::v1::SetReserveRequest& req, CommandCallback done);

  // Blocking conveniences for tests and tools.
  CommandResult ApplySync(absl::string_view method, absl::string_view request_id,
                          absl::string_view actor, std::vector<stockpile::v1::Operation> ops,
                          const google::protobuf::Message& request);
  // Expires every active hold whose time has passed; returns how many. A hold that cannot be
  // released (its warehouse no longer hosted here, say) is logged once and passed by.
  int SweepExpiredHolds();

  // Waits until the change stream passes `sequence`, or `timeout_ms`; returns the head.
  uint64_t WaitForSequence(uint64_t sequence, int64_t timeout_ms);
  uint64_t last_sequence() const { return published_sequence_.load(); }
  // Calls `listener` (from a notifier thread, after durable groups) with the new head; never
  // after RemoveSequenceListener returns.
  int AddSequenceListener(std::function<void(uint64_t)> listener);
  // Calls every listener now with the current head, as if a group had just committed.
  void NotifySequenceListeners();
  void RemoveSequenceListener(int id);

  std::vector<stockpile::v1::ItemTotals> Totals() const;
  const LevelStore& store() const { return *store_; }
  const common::ReferenceData& reference() const { return *reference_; }
  const Hosting& hosting() const { return hosting_; }
  const common::Clock& clock() const { return *clock_; }
  const Options& options() const { return options_; }
  const CoreStats& stats() const { return stats_; }
  // Calls `listener` once (from the syncer thread, or at once if it already happened) when the
  // database refuses a write, after which every mutation is refused until restart: the process
  // is no longer able to serve, and health checks must say so.
  void OnStorageFailure(std::function<void()> listener);
  // True from that refused write on (stockpile_storage_failed): every mutation is refused.
  bool storage_failed() const { return storage_failed_.load(); }
  // The database volume's free space as last read, and what is kept back (--min-free-mb).
  const SpaceGuard& space() const { return *space_; }
  int64_t start_micros() const { return start_micros_; }
  // Durable warehouses; kept with the commit meta, so no scan.
  int64_t warehouse_count() const { return warehouse_count_.load(); }

 private:
  struct Command {
    std::string method;
    std::string request_id;
    std::string actor;
    std::string fingerprint;
    size_t operations = 1;
    // Applies the command to the group transaction: fills the change entry and the response.
    std::function<absl::Status(CommandContext&, stockpile::v1::ChangeEntry*,
                               std::shared_ptr<google::protobuf::Message>*, TotalsDelta*)>
        apply;
    CommandCallback done;
    // A stock command: its reply states the balances of its change entry, which its stored
    // request record then leaves out (RequestRecord.balances_in_change).
    bool reply_states_balances = false;
    // A batch that asked to have a refusal kept under its request_id (keep_refusal).
    bool keep_refusal = false;
  };
  struct Pending {
    CommandCallback done;
    CommandResult result;
  };
  // A group applied by the writer thread, waiting for the syncer to make it durable.
  struct PreparedGroup {
    bool wrote = false;
    rocksdb::WriteBatch batch;
    std::vector<Pending> pending;
    TotalsDelta totals;
    uint64_t last_sequence = 0;
    uint64_t new_warehouses = 0;
  };
  // An open group of at least this many operations is queued for the syncer without waiting
  // for it to be free.
  static constexpr size_t kEagerHandOverOperations = 2048;
  // The group the writer is applying commands into, until the syncer is free to take it.
  struct OpenGroup {
    OpenGroup(const LevelStore& store, std::vector<std::shared_ptr<const Overlay>> unsynced,
              WriterCache* cache)
        : txn(store, std::move(unsynced), cache), prepared(std::make_unique<PreparedGroup>()) {}
    StoreTxn txn;
    std::unique_ptr<PreparedGroup> prepared;
    int64_t now = 0;  // commit time of the latest commands applied
    size_t operations = 0;
  };

  LevelCore(std::unique_ptr<LevelStore> store, const common::ReferenceData* reference,
            Hosting hosting, const common::Clock* clock, Options options);
  absl::Status LoadState();
  absl::Status ConvertStorage(internal::StoreMeta& meta);
  void Submit(Command command);
  void WriterLoop();
  void TakeCommands(std::vector<Command>& taken);
  bool OpenGroupFull() const;
  void ApplyToOpenGroup(std::vector<Command>& commands);
  void HandOver();
  void SyncerLoop();
  void AnswererLoop();
  void Durable(PreparedGroup& g, absl::Status injected);
  // Once a write has failed, no OK answer of a later group can be trusted to be on disk.
  static void RefuseAfterStorageFailure(PreparedGroup& g);
  bool ApplyOne(Command& cmd, StoreTxn& txn, int64_t now, TotalsDelta& group_totals,
                Pending& pending);
  void Replay(const Command& cmd, absl::string_view stored, const StoreTxn& txn, Pending& pending);
  void StoreRequest(const Command& cmd, int64_t now, google::protobuf::Message* response,
                    StoreTxn& txn);
  bool KeepRefusal(const Command& cmd, const absl::Status& refusal, int64_t now, StoreTxn& txn);
  absl::Status WriteGroupMeta(StoreTxn& txn, const TotalsDelta& group_totals, int64_t now);
  void SweeperLoop();
  void Publish(uint64_t head);
  void NotifierLoop();

  absl::Status ApplyCreateWarehouse(const stockpile::v1::CreateWarehouseRequest& req,
                                    CommandContext& ctx, stockpile::v1::ChangeEntry* change,
                                    std::shared_ptr<google::protobuf::Message>* response);
  absl::Status ApplyUpdateWarehouse(const stockpile::v1::UpdateWarehouseRequest& req,
                                    CommandContext& ctx, stockpile::v1::ChangeEntry* change,
                                    std::shared_ptr<google::protobuf::Message>* response);
  absl::Status ApplySetQuota(const stockpile::v1::SetQuotaRequest& req, CommandContext& ctx,
                             stockpile::v1::ChangeEntry* change,
                             std::shared_ptr<google::protobuf::Message>* response);
  absl::Status ApplySetReserve(const stockpile::v1::SetReserveRequest& req, CommandContext& ctx,
                               stockpile::v1::ChangeEntry* change,
                               std::shared_ptr<google::protobuf::Message>* response);
  absl::StatusOr<stockpile::v1::Warehouse> LoadWarehouseForWrite(StoreTxn& txn,
                                                                 absl::string_view name);
  std::vector<std::string> DueHolds(size_t limit);
  bool HoldIsHosted(const std::string& hold_id) const;
  void ReportStorageFailure();  // with storage_failure_mu_ held

  std::unique_ptr<LevelStore> store_;
  const common::ReferenceData* reference_;
  const Hosting hosting_;
  const common::Clock* clock_;
  const Options options_;
  const int64_t start_micros_;
  CoreStats stats_;

  // Writer-thread state (also read at start-up before the thread runs). It runs ahead of what
  // is durable by the groups in flight.
  std::map<std::string, stockpile::v1::ItemTotals> applied_totals_;
  uint64_t applied_warehouses_ = 0;
  uint64_t group_new_warehouses_ = 0;  // created by the group being applied
  uint64_t last_sequence_ = 0;
  uint64_t last_movement_id_ = 0;
  int64_t last_commit_micros_ = 0;
  std::atomic<uint64_t> published_sequence_{0};
  std::atomic<int64_t> warehouse_count_{0};

  mutable absl::Mutex totals_mu_;
  std::map<std::string, stockpile::v1::ItemTotals> totals_ ABSL_GUARDED_BY(totals_mu_);

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::condition_variable sweeper_cv_;  // separate, so a sweeper never takes the writer's wake-up
  std::deque<Command> queue_;
  bool stopping_ = false;

  std::mutex head_mu_;
  std::condition_variable head_cv_;
  std::map<int, std::function<void(uint64_t)>> listeners_;
  int next_listener_id_ = 0;

  uint64_t notified_sequence_ = 0;  // guarded by head_mu_
  // Writer -> syncer hand-over. Overlays of groups in flight, oldest first, let the writer read
  // its own not-yet-durable writes.
  std::mutex pipeline_mu_;
  std::condition_variable pipeline_cv_;
  std::deque<std::unique_ptr<PreparedGroup>> to_sync_;
  std::deque<std::shared_ptr<const Overlay>> unsynced_;
  bool writer_done_ = false;
  // Nothing synced or waiting to be (set under pipeline_mu_; the writer also reads it under
  // queue_mu_, and the syncer notifies queue_cv_ after setting it).
  std::atomic<bool> syncer_idle_{true};
  std::unique_ptr<OpenGroup> open_;  // writer thread only
  // Writer thread only: ~2^18 balances and warehouses (tens of MB) spare most memtable searches.
  WriterCache writer_cache_{1 << 18};
  static constexpr size_t kBalanceVersionsPerKey = 2;
  VersionChurn balance_churn_;  // writer thread only
  // A write failed: RocksDB is in an error state, so every later mutation is refused.
  std::atomic<bool> storage_failed_{false};
  std::unique_ptr<SpaceGuard> space_;
  std::mutex storage_failure_mu_;
  std::function<void()> storage_failure_listener_;  // guarded by storage_failure_mu_
  bool storage_failure_reported_ = false;           // guarded by storage_failure_mu_
  // Syncer -> answerer hand-over: durable groups whose callers are still to be answered.
  // Answering (serializing replies, finishing calls) on its own thread lets the syncer start the
  // next write at once.
  std::mutex answer_mu_;
  std::condition_variable answer_cv_;
  std::deque<std::vector<Pending>> answers_;
  bool syncer_done_ = false;
  std::thread syncer_;
  std::thread answerer_;
  std::thread writer_;
  std::thread sweeper_;
  std::thread notifier_;
  std::mutex sweep_mu_;                       // one sweep at a time (the sweeper thread, or a test)
  std::set<std::string> unreleasable_holds_;  // guarded by sweep_mu_
};

}  // namespace stockpile::level
