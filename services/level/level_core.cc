#include "services/level/level_core.h"

#include <google/protobuf/util/field_mask_util.h>

#include <chrono>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "services/common/status_macros.h"
#include "services/common/thread_name.h"
#include "services/common/validation.h"
#include "services/level/keys.h"
#include "services/level/proto_util.h"
#include "services/level/storage_migration.h"
#include "services/level/stored_response.h"
#include "stockpile/internal/level_store.pb.h"

namespace stockpile::level {
namespace {

using namespace stockpile::v1;  // NOLINT

// Standard store areas by level (m²): below them a warehouse is reported as under standard.
double StandardArea(Level level) {
  switch (level) {
    case LEVEL_COUNTY:
      return 2000;
    case LEVEL_TOWNSHIP:
      return 200;
    case LEVEL_VILLAGE:
      return 12;
    default:
      return 0;
  }
}

constexpr double kMaxArea = 10'000'000;  // 10 km²

void Log(absl::string_view msg) { std::cerr << "stockpile-level: " << msg << std::endl; }

void AddTotals(ItemTotals& t, const std::string& item, const ItemTotals& d) {
  t.set_item(item);
  t.set_on_hand(t.on_hand() + d.on_hand());
  t.set_held(t.held() + d.held());
  t.set_in_transit(t.in_transit() + d.in_transit());
  t.set_received(t.received() + d.received());
  t.set_issued(t.issued() + d.issued());
  t.set_adjusted(t.adjusted() + d.adjusted());
  t.set_lost(t.lost() + d.lost());
  t.set_transferred_in(t.transferred_in() + d.transferred_in());
  t.set_delivered_out(t.delivered_out() + d.delivered_out());
}

absl::Status CheckLocation(const GeoPoint& p) {
  if (p.longitude() < -180 || p.longitude() > 180 || p.latitude() < -90 || p.latitude() > 90) {
    return absl::InvalidArgumentError(
        absl::StrCat("location (", p.longitude(), ", ", p.latitude(), ") is not a WGS-84 point"));
  }
  return absl::OkStatus();
}

absl::Status CheckWarehouseFields(const Warehouse& w) {
  RETURN_IF_ERROR(
      common::CheckText("display_name", w.display_name(), common::kMaxTextLength, true));
  RETURN_IF_ERROR(common::CheckText("address", w.address(), common::kMaxTextLength, false));
  if (!WarehouseKind_IsValid(w.kind()) || w.kind() == WAREHOUSE_KIND_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        "kind is required: government, enterprise, social or household");
  }
  if (!WarehouseStatus_IsValid(w.status())) {
    return absl::InvalidArgumentError(absl::StrCat("status ", w.status(), " is not valid"));
  }
  if (!(w.area_m2() > 0 && w.area_m2() <= kMaxArea)) {
    return absl::InvalidArgumentError(
        absl::StrCat("area_m2 must be above 0 and at most ", kMaxArea, "; got ", w.area_m2()));
  }
  return CheckLocation(w.location());
}

}  // namespace

LevelCore::LevelCore(std::unique_ptr<LevelStore> store, const common::ReferenceData* reference,
                     Hosting hosting, const common::Clock* clock, Options options)
    : store_(std::move(store)),
      reference_(reference),
      hosting_(std::move(hosting)),
      clock_(clock),
      options_(std::move(options)),
      start_micros_(clock->NowMicros()),
      balance_churn_(Cf::kBalances, options_.balance_flush_min_versions, kBalanceVersionsPerKey) {}

absl::StatusOr<std::unique_ptr<LevelCore>> LevelCore::Open(const std::string& db_path,
                                                           const common::ReferenceData* reference,
                                                           Hosting hosting,
                                                           const common::Clock* clock,
                                                           Options options) {
  ASSIGN_OR_RETURN(auto store, LevelStore::Open(db_path, LevelStore::Options{}));
  std::unique_ptr<LevelCore> core(
      new LevelCore(std::move(store), reference, std::move(hosting), clock, std::move(options)));
  core->space_ = std::make_unique<SpaceGuard>(db_path, core->options_.min_free_bytes, clock);
  RETURN_IF_ERROR(core->LoadState());
  LevelCore* c = core.get();
  auto run = [c](const char* name, void (LevelCore::*loop)()) {
    return std::thread([c, name, loop] {
      common::NameThisThread(name);
      (c->*loop)();
    });
  };
  core->writer_ = run("level-writer", &LevelCore::WriterLoop);
  core->syncer_ = run("level-syncer", &LevelCore::SyncerLoop);
  core->answerer_ = run("level-answer", &LevelCore::AnswererLoop);
  core->sweeper_ = run("level-sweeper", &LevelCore::SweeperLoop);
  core->notifier_ = run("level-notify", &LevelCore::NotifierLoop);
  return core;
}

// Reads the counters and per-item totals; nothing proportional to the data size, so a large
// instance restarts as fast as RocksDB opens.
absl::Status LevelCore::LoadState() {
  ASSIGN_OR_RETURN(auto raw, store_->Get(Cf::kDefault, keys::kMeta));
  internal::StoreMeta meta;
  if (raw.has_value()) {
    if (!meta.ParseFromString(*raw)) return absl::DataLossError("store meta is unreadable");
    const std::string level(common::LevelName(hosting_.level()));
    if (!meta.level().empty() && meta.level() != level) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the database holds a ", meta.level(), " instance; refusing to serve it as ", level));
    }
    if (meta.storage_format() > kStorageFormat) {
      return absl::FailedPreconditionError(
          absl::StrCat("the database was written in storage format ", meta.storage_format(),
                       " by a newer release; this build reads format ", kStorageFormat,
                       " and older. Serve it with that release"));
    }
    if (meta.storage_format() < kFormatKeyedByWarehouseItem && meta.last_movement_id() > 0) {
      RETURN_IF_ERROR(ConvertStorage(meta));
    }
  }
  last_sequence_ = meta.last_sequence();
  last_movement_id_ = meta.last_movement_id();
  last_commit_micros_ = meta.last_commit_micros();
  applied_warehouses_ = meta.warehouse_count();
  warehouse_count_ = static_cast<int64_t>(applied_warehouses_);
  published_sequence_ = last_sequence_;
  auto it = store_->NewIterator(Cf::kDefault);
  absl::MutexLock lock(&totals_mu_);
  for (it->Seek(std::string(keys::kTotalsPrefix)); it->Valid(); it->Next()) {
    if (!it->key().starts_with(
            rocksdb::Slice(keys::kTotalsPrefix.data(), keys::kTotalsPrefix.size()))) {
      break;
    }
    ItemTotals t;
    if (!t.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("stored totals are unreadable");
    }
    totals_[t.item()] = t;
  }
  applied_totals_ = totals_;
  return absl::OkStatus();
}

// Converts an older database in place at start (one pass over the movements; a conversion cut
// short is finished by the next start).
absl::Status LevelCore::ConvertStorage(internal::StoreMeta& meta) {
  Log(absl::StrCat("converting the movements from storage format ", meta.storage_format(), " to ",
                   kStorageFormat, "; this runs once"));
  const auto began = std::chrono::steady_clock::now();
  auto moved = MigrateToFormat2(*store_, meta);
  if (!moved.ok()) {
    return absl::Status(moved.status().code(),
                        absl::StrCat("converting the storage format failed (the next start goes "
                                     "on from where it stopped): ",
                                     moved.status().message()));
  }
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - began;
  Log(absl::StrCat("converted ", *moved, " movements in ", took.count(), " s"));
  return absl::OkStatus();
}

LevelCore::~LevelCore() {
  {
    std::scoped_lock lock(queue_mu_, head_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  sweeper_cv_.notify_all();
  head_cv_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
  if (notifier_.joinable()) notifier_.join();
  if (writer_.joinable()) writer_.join();
  if (syncer_.joinable()) syncer_.join();
  if (answerer_.joinable()) answerer_.join();
}

void LevelCore::OnStorageFailure(std::function<void()> listener) {
  std::lock_guard<std::mutex> lock(storage_failure_mu_);
  storage_failure_listener_ = std::move(listener);
  // A failure before the listener was set has already passed the syncer's call.
  if (storage_failed_) ReportStorageFailure();
}

void LevelCore::ReportStorageFailure() {
  if (storage_failure_reported_ || !storage_failure_listener_) return;
  storage_failure_reported_ = true;
  storage_failure_listener_();
}

void LevelCore::Submit(Command command) {
  if (storage_failed_) {
    command.done({absl::UnavailableError("the database refused a write earlier; restart the "
                                         "level service"),
                  "", nullptr, 0, false});
    return;
  }
  // Before it is applied: a group refused at its write would leave later groups applied on
  // top of it, which only a restart undoes.
  if (absl::Status room = space_->CheckRoom(); !room.ok()) {
    command.done({std::move(room), "", nullptr, 0, false});
    return;
  }
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (!stopping_) {
      queue_.push_back(std::move(command));
      queue_cv_.notify_one();
      return;
    }
  }
  command.done(
      {absl::UnavailableError("the level service is shutting down"), "", nullptr, 0, false});
}

// Group commit without waiting on a timer: the writer applies commands as they arrive into
// the open group and hands it to the syncer only when the syncer is free (or the group is
// full). Everything that arrives while one group is being made durable joins the next, so
// groups are as large as the traffic makes them and each fsync serves as many callers as it
// can; applying overlaps the fsync.
void LevelCore::WriterLoop() {
  std::vector<Command> taken;
  while (true) {
    bool hand_over = false;
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      queue_cv_.wait(
          lock, [&] { return stopping_ || !queue_.empty() || (open_ && syncer_idle_.load()); });
      if (queue_.empty() && stopping_ && !open_) break;
      hand_over = open_ && (syncer_idle_.load() || stopping_);
      TakeCommands(taken);
    }
    if (!taken.empty()) ApplyToOpenGroup(taken);
    taken.clear();
    // A group already large (batches) goes to the syncer's queue at once, so the syncer never
    // waits for the writer to finish applying; small commands keep gathering while it syncs.
    if (open_ && (hand_over || OpenGroupFull() || open_->operations >= kEagerHandOverOperations)) {
      HandOver();
    }
  }
  std::lock_guard<std::mutex> lock(pipeline_mu_);
  writer_done_ = true;
  pipeline_cv_.notify_all();
}

// Moves queued commands into `taken` while the open group has room (queue_mu_ held), about
// kEagerHandOverOperations at a time so the writer soon looks again whether the syncer is free.
void LevelCore::TakeCommands(std::vector<Command>& taken) {
  size_t commands = open_ ? open_->prepared->pending.size() : 0;
  size_t operations = open_ ? open_->operations : 0;
  size_t took = 0;
  while (
      !queue_.empty() && commands < options_.max_group_commands &&
      (taken.empty() || took < kEagerHandOverOperations) &&
      (commands == 0 || operations + queue_.front().operations <= options_.max_group_operations)) {
    took += queue_.front().operations;
    operations += queue_.front().operations;
    ++commands;
    taken.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
}

bool LevelCore::OpenGroupFull() const {
  return open_->prepared->pending.size() >= options_.max_group_commands ||
         open_->operations >= options_.max_group_operations;
}

void LevelCore::ApplyToOpenGroup(std::vector<Command>& commands) {
  if (!open_) {
    std::vector<std::shared_ptr<const Overlay>> unsynced;
    {
      std::lock_guard<std::mutex> lock(pipeline_mu_);
      unsynced.assign(unsynced_.begin(), unsynced_.end());
    }
    open_ = std::make_unique<OpenGroup>(*store_, std::move(unsynced), &writer_cache_);
  }
  OpenGroup& g = *open_;
  // Commit times never go backwards, so movement keys stay in time order.
  g.now = std::max(clock_->NowMicros(), last_commit_micros_ + 1);
  last_commit_micros_ = g.now;
  for (Command& cmd : commands) {
    g.prepared->pending.emplace_back();
    Pending& pending = g.prepared->pending.back();
    pending.done = std::move(cmd.done);
    g.prepared->wrote |= ApplyOne(cmd, g.txn, g.now, g.prepared->totals, pending);
    g.operations += cmd.operations;
  }
}

// Closes the open group and queues it for the syncer (one group waits at most).
void LevelCore::HandOver() {
  std::unique_ptr<OpenGroup> g = std::move(open_);
  PreparedGroup& prepared = *g->prepared;
  std::shared_ptr<const Overlay> overlay;
  if (prepared.wrote) {
    WriteGroupMeta(g->txn, prepared.totals, g->now).IgnoreError();
    prepared.batch = g->txn.KeyOrderedBatch();
    prepared.last_sequence = last_sequence_;
    prepared.new_warehouses = group_new_warehouses_;
    overlay = g->txn.TakeOverlay();
    if (balance_churn_.Note(*overlay)) {
      // A failure is not worth stopping for: RocksDB still flushes the memtable once it is full.
      absl::StatusOr<bool> started = store_->FlushInBackground(Cf::kBalances);
      if (started.ok() && *started) balance_churn_.Flushed();
    }
  }
  group_new_warehouses_ = 0;
  std::unique_lock<std::mutex> lock(pipeline_mu_);
  pipeline_cv_.wait(lock, [&] { return to_sync_.empty(); });
  if (overlay) unsynced_.push_back(std::move(overlay));
  to_sync_.push_back(std::move(g->prepared));
  syncer_idle_ = false;
  pipeline_cv_.notify_all();
}

// Makes groups durable in order and only then answers their callers: a reply, a replay or a
// refusal never overtakes an earlier write that is not yet on disk.
void LevelCore::SyncerLoop() {
  while (true) {
    std::unique_ptr<PreparedGroup> g;
    {
      std::unique_lock<std::mutex> lock(pipeline_mu_);
      pipeline_cv_.wait(lock, [&] { return !to_sync_.empty() || writer_done_; });
      if (to_sync_.empty()) break;
      g = std::move(to_sync_.front());
      to_sync_.pop_front();
      pipeline_cv_.notify_all();  // the writer may queue the next group meanwhile
    }
    if (g->wrote) {
      Durable(*g, options_.before_group_write ? options_.before_group_write() : absl::OkStatus());
    }
    // A replay answers from the writes of its own or an earlier group, which may have failed:
    // a group of replays only writes nothing and would otherwise be answered OK.
    if (storage_failed_) RefuseAfterStorageFailure(*g);
    {
      std::lock_guard<std::mutex> lock(pipeline_mu_);
      if (g->wrote) unsynced_.pop_front();
      syncer_idle_ = to_sync_.empty();
      pipeline_cv_.notify_all();
    }
    {
      // The writer may be waiting for a command or for this: either wakes it.
      std::lock_guard<std::mutex> lock(queue_mu_);
      queue_cv_.notify_one();
    }
    std::lock_guard<std::mutex> lock(answer_mu_);
    answers_.push_back(std::move(g->pending));
    answer_cv_.notify_one();
  }
  std::lock_guard<std::mutex> lock(answer_mu_);
  syncer_done_ = true;
  answer_cv_.notify_one();
}

// Answers durable groups in the order they became durable.
void LevelCore::AnswererLoop() {
  while (true) {
    std::vector<Pending> pending;
    {
      std::unique_lock<std::mutex> lock(answer_mu_);
      answer_cv_.wait(lock, [&] { return !answers_.empty() || syncer_done_; });
      if (answers_.empty()) return;
      pending = std::move(answers_.front());
      answers_.pop_front();
    }
    for (auto& p : pending) p.done(std::move(p.result));
  }
}

void LevelCore::Durable(PreparedGroup& g, absl::Status injected) {
  absl::Status s = storage_failed_ ? absl::UnavailableError("the database refused an earlier write")
                   : !injected.ok() ? std::move(injected)
                                    : store_->Write(g.batch, options_.sync_writes);
  if (!s.ok()) {
    // Nothing of the group is durable and RocksDB stops taking writes after a failed WAL
    // write: refuse the group and everything after it until the service is restarted.
    if (!storage_failed_.exchange(true)) {
      Log(absl::StrCat("a commit failed; refusing all writes until restart: ", s.ToString()));
      std::lock_guard<std::mutex> lock(storage_failure_mu_);
      ReportStorageFailure();
    }
    stats_.write_failures++;
    // Replays too: one of this group may answer from a write of this group.
    for (auto& p : g.pending) {
      if (p.result.status.ok()) p.result = {s, "", nullptr, 0, false};
    }
    return;
  }
  stats_.commit_groups++;  // a synced write; groups of replays and refusals write nothing
  {
    absl::MutexLock lock(&totals_mu_);
    for (auto& [item, delta] : g.totals) AddTotals(totals_[item], item, delta);
  }
  warehouse_count_ += static_cast<int64_t>(g.new_warehouses);
  Publish(g.last_sequence);
}

void LevelCore::RefuseAfterStorageFailure(PreparedGroup& g) {
  for (auto& p : g.pending) {
    if (!p.result.status.ok()) continue;
    p.result = {absl::UnavailableError(
                    "the database refused a write this answer depends on, so it cannot be "
                    "confirmed stored; retry with the same request_id once the level service "
                    "has been restarted"),
                "", nullptr, 0, false};
  }
}

bool LevelCore::ApplyOne(Command& cmd, StoreTxn& txn, int64_t now, TotalsDelta& group_totals,
                         Pending& pending) {
  if (!cmd.request_id.empty()) {
    auto raw = txn.Get(Cf::kRequests, cmd.request_id);
    if (!raw.ok()) {
      pending.result.status = raw.status();
      return false;
    }
    if (raw->has_value()) {
      Replay(cmd, **raw, txn, pending);
      return false;
    }
  }
  const uint64_t movement_id_before = last_movement_id_;
  txn.Begin();
  CommandContext ctx{
      &txn,           reference_, &hosting_, now, last_sequence_ + 1, &last_movement_id_,
      cmd.request_id, cmd.actor};
  ChangeEntry change;
  TotalsDelta totals;
  std::shared_ptr<google::protobuf::Message> response;
  absl::Status s = cmd.apply(ctx, &change, &response, &totals);
  if (!s.ok()) {
    txn.Drop();
    last_movement_id_ = movement_id_before;
    stats_.commands_refused++;
    pending.result.status = s;
    return cmd.keep_refusal && KeepRefusal(cmd, s, now, txn);
  }
  ++last_sequence_;
  change.set_sequence(last_sequence_);
  *change.mutable_commit_time() = ToTimestamp(now);
  change.set_request_id(cmd.request_id);
  for (size_t t = 0; t < ctx.movements_by_type.size(); ++t) {
    stats_.movements_by_type[t] += ctx.movements_by_type[t];
  }
  // Put, not appended: a retry of the command within this group or one still being made
  // durable reads its balances back from it (Replay).
  txn.Put(Cf::kChanges, keys::U64(last_sequence_), change.SerializeAsString());
  if (!cmd.request_id.empty()) StoreRequest(cmd, now, response.get(), txn);
  if (cmd.reply_states_balances) TakeBalancesFromChange(&change, response.get());
  txn.Keep();
  for (auto& [item, d] : totals) AddTotals(group_totals[item], item, d);
  stats_.commands_committed++;
  pending.result = {absl::OkStatus(), "", std::move(response), last_sequence_, false};
  return true;
}

// A request_id seen before: the first reply again, or a refusal where the id came with
// other content.
void LevelCore::Replay(const Command& cmd, absl::string_view stored, const StoreTxn& txn,
                       Pending& pending) {
  internal::RequestRecord record;
  if (!record.ParseFromArray(stored.data(), static_cast<int>(stored.size()))) {
    pending.result.status = absl::DataLossError(
        absl::StrCat("the stored record of request_id ", cmd.request_id, " is unreadable"));
    return;
  }
  if (record.fingerprint() != cmd.fingerprint || record.method() != cmd.method) {
    pending.result.status = absl::InvalidArgumentError(
        absl::StrCat("request_id ", cmd.request_id, " was already used for a different request (",
                     record.method(), "); use a new request_id"));
    return;
  }
  if (record.refusal_code() != 0) {
    stats_.replays++;
    pending.result.status = absl::Status(
        static_cast<absl::StatusCode>(record.refusal_code()),
        absl::StrCat(record.refusal_message(), " (the answer kept from the first time request_id ",
                     cmd.request_id, " was sent; to try the batch again, send it under a new ",
                     "request_id)"));
    return;
  }
  if (!record.stamped() && !record.balances_in_change()) {
    stats_.replays++;
    pending.result = {absl::OkStatus(), record.response(), nullptr, record.sequence(), true};
    return;
  }
  ChangeEntry change;
  if (record.balances_in_change()) {
    auto raw = txn.Get(Cf::kChanges, keys::U64(record.sequence()));
    if (!raw.ok()) {
      pending.result.status = raw.status();
      return;
    }
    if (!raw->has_value() || !change.ParseFromString(**raw)) {
      pending.result.status =
          absl::DataLossError(absl::StrCat("change entry ", record.sequence(), " of request_id ",
                                           cmd.request_id, " is missing or unreadable"));
      return;
    }
  }
  auto response = StoredResponse(record, cmd.request_id, &change);
  if (!response.ok()) {
    pending.result.status = response.status();
    return;
  }
  stats_.replays++;
  pending.result = {absl::OkStatus(), "", std::move(*response), record.sequence(), true};
}

// The command's first reply under its request_id, stored without what its records share
// (StripStamp) and, for a stock command, without the balances its change entry states.
void LevelCore::StoreRequest(const Command& cmd, int64_t now, google::protobuf::Message* response,
                             StoreTxn& txn) {
  internal::RequestRecord record;
  record.set_fingerprint(cmd.fingerprint);
  record.set_sequence(last_sequence_);
  record.set_method(cmd.method);
  record.set_commit_micros(now);
  record.set_balances_in_change(cmd.reply_states_balances);
  const CommandStamp stamp{cmd.request_id, cmd.actor, now, last_sequence_};
  if (StripStamp(stamp, response)) {
    record.set_stamped(true);
    record.set_actor(cmd.actor);
  }
  response->SerializeToString(record.mutable_response());
  if (record.stamped()) RestoreStamp(stamp, response);
  txn.Put(Cf::kRequests, cmd.request_id, record.SerializeAsString());
}

// Stores a refusal of what the service found (not of a failure to read or write) under the
// command's request_id; true when it did, so the group is written and made durable before the
// refusal is answered: a client that then sends the batch's operations one by one must never
// find the batch accepted later.
bool LevelCore::KeepRefusal(const Command& cmd, const absl::Status& refusal, int64_t now,
                            StoreTxn& txn) {
  switch (refusal.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAlreadyExists:
      break;
    default:
      return false;
  }
  if (cmd.request_id.empty()) return false;
  internal::RequestRecord record;
  record.set_fingerprint(cmd.fingerprint);
  record.set_method(cmd.method);
  record.set_commit_micros(now);
  record.set_actor(cmd.actor);
  record.set_refusal_code(static_cast<int>(refusal.code()));
  record.set_refusal_message(std::string(refusal.message()));
  txn.Begin();
  txn.Put(Cf::kRequests, cmd.request_id, record.SerializeAsString());
  txn.Keep();
  return true;
}

absl::Status LevelCore::WriteGroupMeta(StoreTxn& txn, const TotalsDelta& group_totals,
                                       int64_t now) {
  txn.Begin();
  internal::StoreMeta meta;
  meta.set_last_sequence(last_sequence_);
  meta.set_last_movement_id(last_movement_id_);
  meta.set_last_commit_micros(now);
  meta.set_level(std::string(common::LevelName(hosting_.level())));
  applied_warehouses_ += group_new_warehouses_;
  meta.set_warehouse_count(applied_warehouses_);
  meta.set_storage_format(kStorageFormat);
  txn.Put(Cf::kDefault, keys::kMeta, meta.SerializeAsString());
  for (const auto& [item, d] : group_totals) {
    ItemTotals& t = applied_totals_[item];
    AddTotals(t, item, d);
    txn.Put(Cf::kDefault, keys::Totals(item), t.SerializeAsString());
  }
  txn.Keep();
  return absl::OkStatus();
}

void LevelCore::Publish(uint64_t head) {
  {
    std::lock_guard<std::mutex> lock(head_mu_);
    published_sequence_ = head;
  }
  head_cv_.notify_all();
}

// Wakes change-stream readers off the writer thread; listeners run under head_mu_ so removing
// one waits for a running call to end.
void LevelCore::NotifierLoop() {
  std::unique_lock<std::mutex> lock(head_mu_);
  while (true) {
    head_cv_.wait(lock,
                  [&] { return stopping_ || published_sequence_.load() != notified_sequence_; });
    if (stopping_) return;
    notified_sequence_ = published_sequence_.load();
    for (auto& [id, listener] : listeners_) listener(notified_sequence_);
  }
}

uint64_t LevelCore::WaitForSequence(uint64_t sequence, int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(head_mu_);
  head_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                    [&] { return published_sequence_.load() > sequence || stopping_; });
  return published_sequence_.load();
}

int LevelCore::AddSequenceListener(std::function<void(uint64_t)> listener) {
  std::lock_guard<std::mutex> lock(head_mu_);
  listeners_[++next_listener_id_] = std::move(listener);
  return next_listener_id_;
}

void LevelCore::NotifySequenceListeners() {
  std::lock_guard<std::mutex> lock(head_mu_);
  for (auto& [id, listener] : listeners_) listener(published_sequence_.load());
}

void LevelCore::RemoveSequenceListener(int id) {
  std::lock_guard<std::mutex> lock(head_mu_);
  listeners_.erase(id);
}

std::vector<ItemTotals> LevelCore::Totals() const {
  absl::MutexLock lock(&totals_mu_);
  std::vector<ItemTotals> out;
  for (const auto& [item, t] : totals_) out.push_back(t);
  return out;
}

// ---- mutations ---------------------------------------------------------------------------------

namespace {

// A new response message for a command: on `arena` when the call has one (the arena owns it
// and outlives the command), else on the heap, owned by `out`.
template <typename T>
T* NewResponse(google::protobuf::Arena* arena, std::shared_ptr<google::protobuf::Message>* out) {
  T* message = google::protobuf::Arena::CreateMessage<T>(arena);
  if (arena == nullptr) {
    *out = std::shared_ptr<google::protobuf::Message>(message);
  } else {
    *out = std::shared_ptr<google::protobuf::Message>(message, [](google::protobuf::Message*) {});
  }
  return message;
}

}  // namespace

void LevelCore::ApplyOperations(absl::string_view method, absl::string_view request_id,
                                absl::string_view actor, std::vector<Operation> operations,
                                const google::protobuf::Message& request, CommandCallback done,
                                google::protobuf::Arena* arena) {
  Command cmd;
  cmd.method = std::string(method);
  cmd.request_id = std::string(request_id);
  cmd.actor = std::string(actor);
  cmd.fingerprint = RequestFingerprint(request);
  cmd.operations = std::max<size_t>(1, operations.size());
  const bool batch = method == "ApplyBatch";
  cmd.apply = [ops = std::move(operations), batch, arena](
                  CommandContext& ctx, ChangeEntry* change,
                  std::shared_ptr<google::protobuf::Message>* response,
                  TotalsDelta* totals) -> absl::Status {
    Ledger ledger(ctx);
    // Results are built in place in the response: on the call's arena nothing is copied.
    ApplyBatchResponse* batch_response =
        batch ? NewResponse<ApplyBatchResponse>(arena, response) : nullptr;
    MovementResult* single = batch ? nullptr : NewResponse<MovementResult>(arena, response);
    for (size_t i = 0; i < ops.size(); ++i) {
      MovementResult* result = batch ? batch_response->add_results() : single;
      absl::Status s = ledger.Apply(ops[i], result);
      if (!s.ok()) {
        if (!batch) return s;
        return absl::Status(s.code(), absl::StrCat("operation ", i, ": ", s.message()));
      }
      result->set_sequence(ctx.sequence);
    }
    RETURN_IF_ERROR(ledger.Finish(change));
    *totals = ledger.totals_delta();
    ctx.movements_by_type = ledger.movements_by_type();
    // The reply's balances, each as the command leaves it, are the change entry's: ApplyOne
    // moves them in once the request record is stored without them.
    if (batch) batch_response->set_sequence(ctx.sequence);
    return absl::OkStatus();
  };
  cmd.done = std::move(done);
  cmd.reply_states_balances = true;
  if (batch) {
    const auto* batch_request = dynamic_cast<const ApplyBatchRequest*>(&request);
    cmd.keep_refusal = batch_request != nullptr && batch_request->keep_refusal();
  }
  Submit(std::move(cmd));
}

CommandResult LevelCore::ApplySync(absl::string_view method, absl::string_view request_id,
                                   absl::string_view actor, std::vector<Operation> ops,
                                   const google::protobuf::Message& request) {
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  CommandResult out;
  ApplyOperations(method, request_id, actor, std::move(ops), request, [&](CommandResult r) {
    std::lock_guard<std::mutex> lock(mu);
    out = std::move(r);
    ready = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return ready; });
  return out;
}

absl::StatusOr<Warehouse> LevelCore::LoadWarehouseForWrite(StoreTxn& txn, absl::string_view name) {
  ASSIGN_OR_RETURN(std::string code, common::WarehouseCodeFromName(name));
  ASSIGN_OR_RETURN(std::string region, common::RegionOfWarehouseCode(code));
  RETURN_IF_ERROR(hosting_.CheckRegion(region));
  ASSIGN_OR_RETURN(auto raw, txn.Get(Cf::kWarehouses, code));
  if (!raw.has_value()) {
    return absl::NotFoundError(absl::StrCat("warehouse ", name, " does not exist"));
  }
  Warehouse w;
  if (!w.ParseFromString(*raw)) return absl::DataLossError("stored warehouse is unreadable");
  return w;
}

void LevelCore::CreateWarehouse(const CreateWarehouseRequest& req, CommandCallback done) {
  Command cmd{"CreateWarehouse", req.request_id(), req.actor(), RequestFingerprint(req), 1,
              nullptr,           std::move(done)};
  cmd.apply = [this, req](CommandContext& ctx, ChangeEntry* change,
                          std::shared_ptr<google::protobuf::Message>* response, TotalsDelta*) {
    return ApplyCreateWarehouse(req, ctx, change, response);
  };
  Submit(std::move(cmd));
}

absl::Status LevelCore::ApplyCreateWarehouse(const CreateWarehouseRequest& req, CommandContext& ctx,
                                             ChangeEntry* change,
                                             std::shared_ptr<google::protobuf::Message>* response) {
  Warehouse w = req.warehouse();
  ASSIGN_OR_RETURN(std::string region, common::RegionOfWarehouseCode(w.code()));
  if (!w.region_code().empty() && w.region_code() != region) {
    return absl::InvalidArgumentError(absl::StrCat(
        "warehouse code ", w.code(), " does not start with its region_code ", w.region_code()));
  }
  if (!w.name().empty() && w.name() != common::WarehouseName(w.code())) {
    return absl::InvalidArgumentError(absl::StrCat("name must be ", common::WarehouseName(w.code()),
                                                   " or empty; got ", w.name()));
  }
  RETURN_IF_ERROR(hosting_.CheckRegion(region));
  const common::RegionInfo* info = reference_->FindRegion(region);
  if (info == nullptr) {
    return absl::NotFoundError(absl::StrCat("region ", region, " is not in the reference data"));
  }
  if (w.status() == WAREHOUSE_STATUS_UNSPECIFIED) w.set_status(WAREHOUSE_STATUS_ACTIVE);
  RETURN_IF_ERROR(CheckWarehouseFields(w));
  ASSIGN_OR_RETURN(auto existing, ctx.txn->Get(Cf::kWarehouses, w.code()));
  if (existing.has_value()) {
    return absl::AlreadyExistsError(absl::StrCat("warehouse ", w.code(), " already exists"));
  }
  w.set_name(common::WarehouseName(w.code()));
  w.set_region_code(region);
  w.set_level(hosting_.level());
  const bool no_location = w.location().longitude() == 0 && w.location().latitude() == 0;
  w.set_location_defaulted(no_location);
  if (no_location) {
    w.mutable_location()->set_longitude(info->longitude);
    w.mutable_location()->set_latitude(info->latitude);
  }
  w.set_below_standard_area(w.area_m2() < StandardArea(w.level()));
  *w.mutable_create_time() = ToTimestamp(ctx.now_micros);
  *w.mutable_update_time() = ToTimestamp(ctx.now_micros);
  w.set_created_by(ctx.actor);
  w.set_updated_by(ctx.actor);
  ctx.txn->Put(Cf::kWarehouses, w.code(), w.SerializeAsString());
  *change->add_warehouses() = w;
  *response = std::make_unique<Warehouse>(w);
  ++group_new_warehouses_;  // the last step: nothing after it can refuse the command
  return absl::OkStatus();
}

void LevelCore::UpdateWarehouse(const UpdateWarehouseRequest& req, CommandCallback done) {
  Command cmd{"UpdateWarehouse", req.request_id(), req.actor(), RequestFingerprint(req), 1,
              nullptr,           std::move(done)};
  cmd.apply = [this, req](CommandContext& ctx, ChangeEntry* change,
                          std::shared_ptr<google::protobuf::Message>* response, TotalsDelta*) {
    return ApplyUpdateWarehouse(req, ctx, change, response);
  };
  Submit(std::move(cmd));
}

absl::Status LevelCore::ApplyUpdateWarehouse(const UpdateWarehouseRequest& req, CommandContext& ctx,
                                             ChangeEntry* change,
                                             std::shared_ptr<google::protobuf::Message>* response) {
  ASSIGN_OR_RETURN(Warehouse w, LoadWarehouseForWrite(*ctx.txn, req.warehouse().name()));
  static const std::vector<std::string> kMutable = {"display_name", "kind",     "area_m2",
                                                    "address",      "location", "status"};
  std::vector<std::string> paths(req.update_mask().paths().begin(),
                                 req.update_mask().paths().end());
  if (paths.empty()) paths = kMutable;
  const Warehouse& in = req.warehouse();
  for (const auto& path : paths) {
    if (path == "display_name")
      w.set_display_name(in.display_name());
    else if (path == "kind")
      w.set_kind(in.kind());
    else if (path == "area_m2")
      w.set_area_m2(in.area_m2());
    else if (path == "address")
      w.set_address(in.address());
    else if (path == "status")
      w.set_status(in.status());
    else if (path == "location") {
      *w.mutable_location() = in.location();
      w.set_location_defaulted(false);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "update_mask path \"", path.substr(0, 64),
          "\" cannot be changed; allowed: display_name, kind, area_m2, address, location, status"));
    }
  }
  if (w.status() == WAREHOUSE_STATUS_UNSPECIFIED) {
    return absl::InvalidArgumentError("status must be active, suspended or closed");
  }
  RETURN_IF_ERROR(CheckWarehouseFields(w));
  w.set_below_standard_area(w.area_m2() < StandardArea(w.level()));
  *w.mutable_update_time() = ToTimestamp(ctx.now_micros);
  w.set_updated_by(ctx.actor);
  ctx.txn->Put(Cf::kWarehouses, w.code(), w.SerializeAsString());
  *change->add_warehouses() = w;
  *response = std::make_unique<Warehouse>(w);
  return absl::OkStatus();
}

void LevelCore::SetQuota(const SetQuotaRequest& req, CommandCallback done) {
  Command cmd{"SetQuota", req.request_id(), req.actor(),    RequestFingerprint(req),
              1,          nullptr,          std::move(done)};
  cmd.apply = [this, req](CommandContext& ctx, ChangeEntry* change,
                          std::shared_ptr<google::protobuf::Message>* response,
                          TotalsDelta*) { return ApplySetQuota(req, ctx, change, response); };
  Submit(std::move(cmd));
}

absl::Status LevelCore::ApplySetQuota(const SetQuotaRequest& req, CommandContext& ctx,
                                      ChangeEntry* change,
                                      std::shared_ptr<google::protobuf::Message>* response) {
  Quota q = req.quota();
  ASSIGN_OR_RETURN(Warehouse w, LoadWarehouseForWrite(*ctx.txn, q.warehouse()));
  if (reference_->FindItem(q.item()) == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("item ", q.item().substr(0, 64), " is not in the item catalogue"));
  }
  if (q.min() < 0 || q.max() < 0 || q.min() > common::kMaxQuantity ||
      q.max() > common::kMaxQuantity) {
    return absl::InvalidArgumentError(
        absl::StrCat("min and max must be between 0 and ", common::kMaxQuantity));
  }
  if (q.max() != 0 && q.max() < q.min()) {
    return absl::InvalidArgumentError(absl::StrCat("max ", q.max(), " is below min ", q.min()));
  }
  *q.mutable_update_time() = ToTimestamp(ctx.now_micros);
  q.set_updated_by(ctx.actor);
  ctx.txn->Put(Cf::kQuotas, keys::WarehouseItem(w.code(), q.item()), q.SerializeAsString());
  *change->add_quotas() = q;
  *response = std::make_unique<Quota>(q);
  return absl::OkStatus();
}

void LevelCore::SetReserve(const SetReserveRequest& req, CommandCallback done) {
  Command cmd{"SetReserve", req.request_id(), req.actor(), RequestFingerprint(req), 1,
              nullptr,      std::move(done)};
  cmd.apply = [this, req](CommandContext& ctx, ChangeEntry* change,
                          std::shared_ptr<google::protobuf::Message>* response,
                          TotalsDelta*) { return ApplySetReserve(req, ctx, change, response); };
  Submit(std::move(cmd));
}

absl::Status LevelCore::ApplySetReserve(const SetReserveRequest& req, CommandContext& ctx,
                                        ChangeEntry* change,
                                        std::shared_ptr<google::protobuf::Message>* response) {
  Reserve r = req.reserve();
  ASSIGN_OR_RETURN(Warehouse w, LoadWarehouseForWrite(*ctx.txn, r.warehouse()));
  if (reference_->FindItem(r.item()) == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("item ", r.item().substr(0, 64), " is not in the item catalogue"));
  }
  if (r.mode() != RESERVE_MODE_CONTRACT && r.mode() != RESERVE_MODE_CAPACITY) {
    return absl::InvalidArgumentError("mode must be contract or capacity");
  }
  if (r.quantity() < 0 || r.quantity() > common::kMaxQuantity) {
    return absl::InvalidArgumentError(absl::StrCat("quantity must be between 0 and ",
                                                   common::kMaxQuantity, "; got ", r.quantity()));
  }
  if (r.lead_time_hours() < 0 || r.lead_time_hours() > 24 * 365) {
    return absl::InvalidArgumentError("lead_time_hours must be between 0 and 8760");
  }
  RETURN_IF_ERROR(common::CheckText("partner", r.partner(), common::kMaxTextLength, false));
  *r.mutable_update_time() = ToTimestamp(ctx.now_micros);
  r.set_updated_by(ctx.actor);
  const std::string key = keys::Reserve(w.code(), r.item(), r.mode());
  if (r.quantity() == 0) {
    ctx.txn->Delete(Cf::kReserves, key);
  } else {
    ctx.txn->Put(Cf::kReserves, key, r.SerializeAsString());
  }
  *change->add_reserves() = r;
  *response = std::make_unique<Reserve>(r);
  return absl::OkStatus();
}

// ---- hold expiry -------------------------------------------------------------------------------

int LevelCore::SweepExpiredHolds() {
  std::lock_guard<std::mutex> sweeping(sweep_mu_);
  const std::vector<std::string> due = DueHolds(1000);
  if (due.empty()) return 0;
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  int expired = 0;
  std::vector<std::pair<std::string, absl::Status>> refused;
  Command cmd{"ExpireHolds", "", "system", "", due.size(), nullptr, nullptr};
  cmd.apply = [&due, &expired, &refused](CommandContext& ctx, ChangeEntry* change,
                                         std::shared_ptr<google::protobuf::Message>* response,
                                         TotalsDelta* totals) -> absl::Status {
    Ledger ledger(ctx);
    std::vector<MovementResult> results(due.size());  // alive until Finish: they hold the movements
    for (size_t i = 0; i < due.size(); ++i) {
      // One hold that cannot expire must not keep the others held: it is set aside.
      if (absl::Status s = ledger.ExpireHold(due[i], &results[i]); !s.ok()) {
        refused.emplace_back(due[i], std::move(s));
      } else if (results[i].movements_size() > 0) {
        ++expired;
      }
    }
    RETURN_IF_ERROR(ledger.Finish(change));
    *totals = ledger.totals_delta();
    ctx.movements_by_type = ledger.movements_by_type();
    *response = std::make_unique<MovementResult>();
    return absl::OkStatus();
  };
  bool applied = false;
  cmd.done = [&](CommandResult r) {
    if (!r.status.ok()) Log(absl::StrCat("hold expiry failed: ", r.status.ToString()));
    std::lock_guard<std::mutex> lock(mu);
    applied = r.status.ok();
    ready = true;
    cv.notify_one();
  };
  Submit(std::move(cmd));
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return ready; });
  if (!applied) return 0;
  for (auto& [hold_id, status] : refused) {
    Log(absl::StrCat("hold holds/", hold_id, " is past its expiry but cannot be released here (",
                     status.ToString(), "); it stays held and later sweeps pass it by"));
    unreleasable_holds_.insert(std::move(hold_id));
  }
  stats_.holds_expired += expired;
  return expired;
}

// Whether a hold's warehouse is hosted here. One that is not (--regions narrowed since it was
// placed) can be released only by the instance that hosts it now, so it is set aside before the
// sweep rather than refused in it: a sweep with nothing to release writes no change entry.
bool LevelCore::HoldIsHosted(const std::string& hold_id) const {
  absl::StatusOr<std::optional<std::string>> raw = store_->Get(Cf::kHolds, keys::Hold(hold_id));
  v1::Hold hold;
  if (!raw.ok() || !raw->has_value() || !hold.ParseFromString(**raw)) return true;  // told later
  if (hosting_.HostsWarehouseName(hold.warehouse())) return true;
  Log(absl::StrCat("hold holds/", hold_id, " is past its expiry but its warehouse ",
                   hold.warehouse(), " is not hosted here; it stays held and sweeps pass it by"));
  return false;
}

// Up to `limit` ids of active holds whose expiry has passed, oldest first, leaving out those a
// sweep already found it cannot release.
std::vector<std::string> LevelCore::DueHolds(size_t limit) {
  const int64_t now = clock_->NowMicros();
  std::vector<std::string> due;
  auto it = store_->NewIterator(Cf::kHolds);
  for (it->Seek("x"); it->Valid() && due.size() < limit; it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    if (key.empty() || key[0] != 'x' || key.size() < 9) break;
    if (static_cast<int64_t>(keys::ReadU64(key.substr(1, 8))) > now) break;
    std::string hold_id(key.substr(9));
    if (unreleasable_holds_.contains(hold_id)) continue;
    if (!HoldIsHosted(hold_id)) {
      unreleasable_holds_.insert(std::move(hold_id));
      continue;
    }
    due.push_back(std::move(hold_id));
  }
  return due;
}

void LevelCore::SweeperLoop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      sweeper_cv_.wait_for(lock, std::chrono::milliseconds(options_.hold_sweep_interval_ms),
                           [&] { return stopping_; });
      if (stopping_) return;
    }
    SweepExpiredHolds();
  }
}

}  // namespace stockpile::level
