#include "services/catalogue/catalogue_core.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <optional>
#include <thread>
#include <tuple>
#include <type_traits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/time_util.h"
#include "services/catalogue/allocation/stock_snapshot.h"
#include "services/catalogue/stock_streamed.h"
#include "services/common/expiring_lots.h"
#include "services/common/page_token.h"
#include "services/common/status_macros.h"
#include "services/common/validation.h"

namespace stockpile::catalogue {

using google::protobuf::util::TimeUtil;
using stockpile::v1::Balance;
using stockpile::v1::ChangeEntry;
using stockpile::v1::Quota;
using stockpile::v1::ReplicationSource;
using stockpile::v1::Reserve;
using stockpile::v1::WatchChangesResponse;

namespace {

using common::PageSize;

// Digits only, and as long as a region code only when some region has it (a mistyped region
// must not list as "nothing there").
absl::Status CheckPrefix(const common::ReferenceData& reference, absl::string_view prefix) {
  RETURN_IF_ERROR(common::CheckRegionPrefix(prefix));
  return reference.CheckRegionFilter(prefix);
}

// Page tokens are common::PageQuery tokens: bound to the listing and its filters, refused for any
// other query or when damaged. Their position is checked too (below), with the levels' words: a
// position that fails these was not handed out by this query.
absl::Status InvalidPageToken() {
  return absl::InvalidArgumentError(
      "page_token is not valid for this query; start again without it");
}

bool IsWarehouseCodeUnder(absl::string_view code, absl::string_view prefix) {
  return absl::StartsWith(code, prefix) && common::RegionOfWarehouseCode(code).ok();
}

// The item of "{code}/{item}" with the code under `prefix`; nothing when it is not one.
std::optional<absl::string_view> ItemAfterCode(absl::string_view token, absl::string_view prefix) {
  const size_t slash = token.find('/');
  if (slash == absl::string_view::npos || slash + 1 == token.size() ||
      !IsWarehouseCodeUnder(token.substr(0, slash), prefix)) {
    return std::nullopt;
  }
  return token.substr(slash + 1);
}

// ListWarehouseStock: the position is the last warehouse code returned.
absl::Status CheckStockToken(absl::string_view token, absl::string_view prefix) {
  if (token.empty() || IsWarehouseCodeUnder(token, prefix)) return absl::OkStatus();
  return InvalidPageToken();
}

// ListShortages: "{code}/{item}" of the last entry returned; `item` is the query's filter.
absl::Status CheckShortageToken(absl::string_view token, absl::string_view prefix,
                                absl::string_view item, const NationalView& view) {
  if (token.empty()) return absl::OkStatus();
  const auto token_item = ItemAfterCode(token, prefix);
  if (!token_item || view.ItemIndex(*token_item) < 0 || (!item.empty() && *token_item != item)) {
    return InvalidPageToken();
  }
  return absl::OkStatus();
}

// ListExpiringLots: the store key of the last balance read, "b{code}/{item}".
absl::Status CheckBalanceKeyToken(absl::string_view token, absl::string_view prefix) {
  if (token.empty()) return absl::OkStatus();
  if (!absl::ConsumePrefix(&token, "b") || !ItemAfterCode(token, prefix)) return InvalidPageToken();
  return absl::OkStatus();
}

// SearchStock: "{distance_km}:{view warehouse id}" of the last hit returned.
absl::Status ParseSearchToken(absl::string_view token, SearchQuery* query) {
  if (token.empty()) return absl::OkStatus();
  std::vector<absl::string_view> parts = absl::StrSplit(token, ':');
  double distance_km = 0;
  uint32_t warehouse = 0;
  if (parts.size() != 2 || !absl::SimpleAtod(parts[0], &distance_km) ||
      !std::isfinite(distance_km) || distance_km < 0 || !absl::SimpleAtoi(parts[1], &warehouse)) {
    return InvalidPageToken();
  }
  query->after_distance_km = distance_km;
  query->after_warehouse = warehouse;
  return absl::OkStatus();
}

int64_t Micros(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1000000 + t.nanos() / 1000;
}

google::protobuf::Timestamp FromMicros(int64_t micros) {
  return TimeUtil::MicrosecondsToTimestamp(micros);
}

// What the store keeps of a forgotten source: the source as last reported, who forgot it, when
// and under which request id (a retry of that request answers the same).
ReplicationSource Tombstone(const ReplicationSource& last, const std::string& request_id,
                            const std::string& actor, int64_t now_micros) {
  ReplicationSource t = last;
  t.set_forgotten(true);
  t.set_forget_request_id(request_id);
  t.set_forgotten_by(actor);
  *t.mutable_forget_time() = FromMicros(now_micros);
  return t;
}

// The view may lack some of the source's warehouses: nothing came from it yet, or it is being
// streamed from sequence 1 (a first stream or a resync) and is below the head that began at.
bool MayLackWarehousesOf(const ReplicationSource& source) {
  return source.applied_sequence() == 0 || !HoldsAllStockOf(source);
}

std::vector<std::string> Prefixes(const ReplicationSource& source) {
  return {source.region_prefixes().begin(), source.region_prefixes().end()};
}

// What start-up rebuilt from the store. With the national dataset that takes half a minute or
// more, so the operator watching the log is told how far it got every 10 s.
class LoadProgress {
 public:
  void Warehouse() { Count(warehouses_); }
  void Balance() { Count(balances_); }
  void Other() { Count(others_); }
  std::string Summary() const {
    return absl::StrFormat("warehouses: %d, balances: %d, quotas, reserves and sources: %d",
                           warehouses_, balances_, others_);
  }
  absl::Duration elapsed() const { return absl::Now() - started_; }

 private:
  void Count(int64_t& counter) {
    ++counter;
    const int64_t records = warehouses_ + balances_ + others_;
    if (records % kCheckEvery != 0 || absl::Now() - last_report_ < absl::Seconds(10)) return;
    last_report_ = absl::Now();
    std::cerr << "stockpile-catalogue: rebuilding the view from its store: " << Summary()
              << " so far" << std::endl;
  }
  static constexpr int64_t kCheckEvery = 1 << 16;
  const absl::Time started_ = absl::Now();
  absl::Time last_report_ = started_;
  int64_t warehouses_ = 0, balances_ = 0, others_ = 0;
};

}  // namespace

CatalogueCore::CatalogueCore(std::unique_ptr<CatalogueStore> store,
                             const common::ReferenceData* reference, const common::Clock* clock,
                             Options options)
    : store_(std::move(store)),
      reference_(reference),
      clock_(clock),
      stream_options_(options.stream),
      resync_chunk_records_(options.resync_chunk_records),
      view_(std::make_unique<NationalView>(reference, std::move(options.search))),
      snapshot_(options.snapshot),
      opened_micros_(clock->NowMicros()) {}

absl::StatusOr<std::unique_ptr<CatalogueCore>> CatalogueCore::Open(
    const std::string& db_path, const common::ReferenceData* reference, const common::Clock* clock,
    Options options) {
  ASSIGN_OR_RETURN(auto store, CatalogueStore::Open(db_path, options.sync_writes));
  std::unique_ptr<CatalogueCore> core(
      new CatalogueCore(std::move(store), reference, clock, std::move(options)));
  RETURN_IF_ERROR(core->Load());
  return core;
}

CatalogueCore::~CatalogueCore() {
  std::vector<std::unique_ptr<ReplicationStream>> streams;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, s] : sources_) {
      if (s.stream) streams.push_back(std::move(s.stream));
    }
  }
  streams.clear();  // each destructor stops and joins its threads
}

// Rebuilds the view from the catalogue's own store: sources first (their index), then records.
absl::Status CatalogueCore::Load() {
  LoadProgress progress;
  CatalogueStore::Visitor v;
  v.source = [&](const ReplicationSource& s) {
    absl::MutexLock lock(&mu_);
    if (s.forgotten()) {  // its records were dropped with it
      forgotten_[s.instance_id()] = s;
      return;
    }
    SourceState& state = sources_[s.instance_id()];
    state.record = s;
    state.view_index = view_->SourceIndex(s.instance_id());
    view_->SetSourceFreshness(state.view_index, Micros(s.last_commit_time()), true,
                              MayLackWarehousesOf(s));
    view_->SetSourceHosting(state.view_index, s.level(), Prefixes(s));
    progress.Other();
  };
  // Sources sort after warehouses ('s' > 'r' > 'q' > 'b'), so map ids on first sight.
  auto source_of = [&](const std::string& id) { return view_->SourceIndex(id); };
  v.warehouse = [&](const std::string& source_id, const stockpile::v1::Warehouse& w) {
    view_->UpsertWarehouse(w, source_of(source_id));
    if (snapshot_) snapshot_->Apply(w);
    progress.Warehouse();
  };
  v.balance = [&](const stockpile::v1::Balance& b) {
    view_->SetBalance(b, 0);
    if (snapshot_) snapshot_->Apply(b);
    progress.Balance();
  };
  v.quota = [&](const stockpile::v1::Quota& q) {
    view_->SetQuota(q, 0);
    if (snapshot_) snapshot_->Apply(q);
    progress.Other();
  };
  v.reserve = [&](const stockpile::v1::Reserve& r) {
    view_->SetReserve(r, 0);
    if (snapshot_) snapshot_->Apply(r);
    progress.Other();
  };
  RETURN_IF_ERROR(store_->LoadAll(v));
  std::cerr << "stockpile-catalogue: rebuilt the view from its store: " << progress.Summary()
            << " in "
            << absl::FormatDuration(absl::Trunc(progress.elapsed(), absl::Milliseconds(100)))
            << std::endl;
  return absl::OkStatus();
}

std::unique_ptr<ReplicationStream> CatalogueCore::NewStream(const SourceSpec& spec) {
  const std::string id = spec.id;
  return std::make_unique<ReplicationStream>(
      spec, stream_options_, clock_, [this, id] { return Position(id); },
      [this, id](const WatchChangesResponse& batch) { return Apply(id, batch); });
}

void CatalogueCore::AddSource(const SourceSpec& spec) {
  absl::MutexLock discovery(&discovery_mu_);
  std::unique_ptr<ReplicationStream> old;
  {
    absl::MutexLock lock(&mu_);
    SourceState& s = sources_[spec.id];
    if (s.stream && s.stream->spec() == spec && !s.record.gone()) return;
    old = std::move(s.stream);
  }
  old.reset();  // stop the previous stream outside mu_: its thread may be applying
  StoreBatch batch;
  {
    absl::MutexLock lock(&mu_);
    forgotten_.erase(spec.id);  // registered again: a new source, from sequence 1
    SourceState& s = sources_[spec.id];
    s.view_index = view_->SourceIndex(spec.id);
    ReplicationSource& r = s.record;
    r.set_name(absl::StrCat("sources/", spec.id));
    r.set_instance_id(spec.id);
    r.set_level(spec.level);
    r.set_address(spec.address);
    r.mutable_region_prefixes()->Assign(spec.region_prefixes.begin(), spec.region_prefixes.end());
    r.set_gone(false);
    view_->SetSourceHosting(s.view_index, r.level(), Prefixes(r));
    batch.PutSource(r);
  }
  if (absl::Status st = store_->Write(batch); !st.ok()) {
    std::cerr << "stockpile-catalogue: cannot record source " << spec.id << ": " << st << std::endl;
  }
  auto stream = NewStream(spec);
  ReplicationStream* raw = stream.get();
  {
    absl::MutexLock lock(&mu_);
    sources_[spec.id].stream = std::move(stream);
  }
  raw->Start();
  std::cerr << "stockpile-catalogue: streaming from " << spec.id << " at " << spec.address
            << " after sequence " << Watermark(spec.id) << std::endl;
}

void CatalogueCore::RemoveSource(const std::string& id) {
  absl::MutexLock discovery(&discovery_mu_);
  std::unique_ptr<ReplicationStream> old;
  StoreBatch batch;
  {
    absl::MutexLock lock(&mu_);
    auto it = sources_.find(id);
    if (it == sources_.end() || it->second.record.gone()) return;
    old = std::move(it->second.stream);
    if (old) it->second.last_status = old->status();
    it->second.last_status.connected = false;
    it->second.record.set_gone(true);
    batch.PutSource(it->second.record);
  }
  old.reset();
  if (absl::Status st = store_->Write(batch); !st.ok()) {
    std::cerr << "stockpile-catalogue: cannot record source " << id << " gone: " << st << std::endl;
  }
  std::cerr << "stockpile-catalogue: source " << id << " is gone; its data is kept, flagged stale"
            << std::endl;
}

int CatalogueCore::ResumeStoredSources() {
  std::vector<SourceSpec> specs;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, s] : sources_) {
      const ReplicationSource& r = s.record;
      if (r.gone() || s.stream || r.address().empty()) continue;
      // Another instance may serve that address by now: stream once it answers as this one.
      specs.push_back(SourceSpec{id,
                                 r.level(),
                                 r.address(),
                                 {r.region_prefixes().begin(), r.region_prefixes().end()},
                                 /*verify_instance_id=*/true});
    }
  }
  for (const auto& spec : specs) AddSource(spec);
  return int(specs.size());
}

void CatalogueCore::SetSources(const std::vector<SourceSpec>& specs) {
  std::vector<std::string> missing;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, s] : sources_) {
      const bool listed = std::any_of(specs.begin(), specs.end(),
                                      [&](const SourceSpec& spec) { return spec.id == id; });
      if (!listed && !s.record.gone()) missing.push_back(id);
    }
  }
  for (const auto& spec : specs) AddSource(spec);
  for (const auto& id : missing) RemoveSource(id);
}

uint64_t CatalogueCore::Watermark(const std::string& source_id) const {
  absl::MutexLock lock(&mu_);
  auto it = sources_.find(source_id);
  return it == sources_.end() ? 0 : it->second.record.applied_sequence();
}

StreamPosition CatalogueCore::Position(const std::string& source_id) const {
  absl::MutexLock lock(&mu_);
  auto it = sources_.find(source_id);
  if (it == sources_.end()) return {};
  return {it->second.record.applied_sequence(), it->second.record.last_commit_time()};
}

absl::StatusOr<uint64_t> CatalogueCore::Apply(const std::string& source_id,
                                              const WatchChangesResponse& batch) {
  if (batch.history_diverged()) return Resync(source_id, batch);
  ReplicationSource record;
  uint16_t view_index = 0;
  {
    absl::MutexLock lock(&mu_);
    SourceState& s = sources_[source_id];
    if (s.record.instance_id().empty()) {
      s.record.set_instance_id(source_id);
      s.record.set_name(absl::StrCat("sources/", source_id));
      s.view_index = view_->SourceIndex(source_id);
    }
    record = s.record;
    view_index = s.view_index;
  }
  uint64_t watermark = record.applied_sequence();
  int first = 0;
  while (first < batch.entries_size() && batch.entries(first).sequence() <= watermark) ++first;
  if (first == batch.entries_size()) return watermark;  // all seen before: idempotent skip
  size_t records = 0;
  for (int i = first; i < batch.entries_size(); ++i) {
    const auto& e = batch.entries(i);
    if (e.sequence() != watermark + i - first + 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("gap in the stream of ", source_id, ": expected sequence ",
                       watermark + i - first + 1, ", got ", e.sequence()));
    }
    records +=
        size_t(e.warehouses_size() + e.balances_size() + e.quotas_size() + e.reserves_size());
  }
  // A large batch updates memory on a second thread while this one encodes and syncs it. Memory
  // may then show the batch a moment before it is durable; if the write fails the stream
  // resumes from the old watermark and the same states are applied again (state-based, so the
  // view ends up the same). The watermark is published only after both halves are done.
  constexpr size_t kParallelRecords = 256;
  std::thread memory;
  if (records >= kParallelRecords) {
    memory = std::thread([&] { ApplyToMemory(batch, first, view_index); });
  }
  StoreBatch writes;
  WriteLatestStates(source_id, batch, first, &writes);
  const auto& last = batch.entries(batch.entries_size() - 1);
  if (record.applied_sequence() == 0 && record.resync_until_sequence() == 0) {
    // The first stream from this source: until it reaches the head it had when it began, the
    // catalogue holds only part of the source's stock (reported stale, not planned from).
    record.set_resync_until_sequence(batch.head_sequence());
  }
  watermark = last.sequence();
  record.set_applied_sequence(watermark);
  *record.mutable_last_commit_time() = last.commit_time();
  record.set_entries_applied(record.entries_applied() + uint64_t(batch.entries_size() - first));
  writes.PutSource(record);
  absl::Status written = store_->Write(writes);
  if (memory.joinable()) {
    memory.join();
  } else if (written.ok()) {
    ApplyToMemory(batch, first, view_index);
  }
  RETURN_IF_ERROR(written);
  {
    absl::MutexLock lock(&mu_);
    SourceState& s = sources_[source_id];
    s.record.set_applied_sequence(watermark);
    *s.record.mutable_last_commit_time() = last.commit_time();
    s.record.set_entries_applied(record.entries_applied());
    s.record.set_resync_until_sequence(record.resync_until_sequence());
  }
  return watermark;
}

// Records are states (the latest wins), and the watermark moves to the batch's end in the same
// write, so only the last state of each key in the batch needs storing: a batch often carries
// many states of one busy balance, and every extra version costs a memtable insert.
void CatalogueCore::WriteLatestStates(const std::string& source_id,
                                      const WatchChangesResponse& batch, int first,
                                      StoreBatch* writes) {
  using Key = std::tuple<char, absl::string_view, absl::string_view, int>;
  absl::flat_hash_set<Key> seen;
  // Walked backwards, so the first sight of a key is its latest state; later sights are older.
  auto latest = [&](Key key) { return seen.insert(key).second; };
  for (int i = batch.entries_size() - 1; i >= first; --i) {
    const auto& e = batch.entries(i);
    for (int k = e.warehouses_size() - 1; k >= 0; --k) {
      const auto& w = e.warehouses(k);
      if (latest({'w', w.code(), "", 0})) writes->PutWarehouse(w.code(), source_id, w);
    }
    for (int k = e.balances_size() - 1; k >= 0; --k) {
      const auto& b = e.balances(k);
      if (latest({'b', b.warehouse(), b.item(), 0})) {
        writes->PutBalance(WarehouseCodeView(b.warehouse()), b);
      }
    }
    for (int k = e.quotas_size() - 1; k >= 0; --k) {
      const auto& q = e.quotas(k);
      if (latest({'q', q.warehouse(), q.item(), 0})) {
        writes->PutQuota(WarehouseCodeView(q.warehouse()), q);
      }
    }
    for (int k = e.reserves_size() - 1; k >= 0; --k) {
      const auto& r = e.reserves(k);
      if (latest({'r', r.warehouse(), r.item(), int(r.mode())})) {
        writes->PutReserve(WarehouseCodeView(r.warehouse()), r);
      }
    }
  }
}

// A level instance numbers its entries from 1 in its own database. Restored from a backup,
// copied back or re-created under the same instance id, it numbers new entries again from
// where that database stands: by sequence alone they would be skipped as already applied, and
// records only the old history had would stay here for good. So everything held from it is
// dropped (its warehouses too: those it still has come back with the stream) and streamed
// again; it reads as stale until it has caught up with the head it had when this began.
absl::StatusOr<CatalogueCore::DroppedCounts> CatalogueCore::DropStock(
    const ReplicationSource& final_record, uint16_t view_index) {
  DroppedCounts counts;
  ASSIGN_OR_RETURN(counts.warehouses,
                   store_->DropSourceStock(final_record, resync_chunk_records_,
                                           [&](const CatalogueStore::DroppedStock& chunk) {
                                             DropFromMemory(chunk, view_index);
                                             counts.balances += chunk.balances.size();
                                             return absl::OkStatus();
                                           }));
  return counts;
}

absl::Status CatalogueCore::Resync(const std::string& source_id,
                                   const WatchChangesResponse& signal) {
  ReplicationSource record;
  uint16_t view_index = 0;
  {
    absl::MutexLock lock(&mu_);
    const SourceState& state = sources_[source_id];
    record = state.record;
    view_index = state.view_index;
  }
  const uint64_t previous = record.applied_sequence();
  record.set_applied_sequence(0);
  record.clear_last_commit_time();
  record.set_resyncs(record.resyncs() + 1);
  record.set_last_resync_reason(signal.history_note());
  *record.mutable_last_resync_time() = FromMicros(clock_->NowMicros());
  record.set_resync_until_sequence(signal.head_sequence());
  ASSIGN_OR_RETURN(const DroppedCounts dropped, DropStock(record, view_index));
  const std::vector<std::string>& warehouses = dropped.warehouses;
  const size_t balances = dropped.balances;
  {
    absl::MutexLock lock(&mu_);
    ReplicationSource& r = sources_[source_id].record;
    r.set_applied_sequence(0);
    r.clear_last_commit_time();
    r.set_resyncs(record.resyncs());
    r.set_last_resync_reason(record.last_resync_reason());
    *r.mutable_last_resync_time() = record.last_resync_time();
    r.set_resync_until_sequence(record.resync_until_sequence());
  }
  const std::string what = absl::StrCat(
      "the history of ", source_id, " no longer matches the one applied up to sequence ", previous,
      " (", signal.history_note(), "): dropped its ", warehouses.size(),
      warehouses.size() == 1 ? " warehouse (" : " warehouses (", balances,
      balances == 1 ? " balance" : " balances", ") and streaming it again from sequence 1");
  std::cerr << "stockpile-catalogue: " << what << std::endl;
  return absl::AbortedError(what);
}

namespace {

// The record with only its key: zero is what the view holds for a record it never had (a
// quota or reserve at zero is removed, a balance at zero adds nothing to a roll-up or search).
template <typename Record>
void AddZeroed(const std::vector<Record>& records,
               google::protobuf::RepeatedPtrField<Record>* out) {
  for (const Record& r : records) {
    Record& zero = *out->Add();
    zero.set_warehouse(r.warehouse());
    zero.set_item(r.item());
    if constexpr (std::is_same_v<Record, Reserve>) zero.set_mode(r.mode());
  }
}

}  // namespace

// As one entry of zeroed records, through the path every applied batch takes (view and
// planner's snapshot).
void CatalogueCore::DropFromMemory(const CatalogueStore::DroppedStock& dropped,
                                   uint16_t view_index) {
  WatchChangesResponse zeroed;
  ChangeEntry& entry = *zeroed.add_entries();
  AddZeroed(dropped.balances, entry.mutable_balances());
  AddZeroed(dropped.quotas, entry.mutable_quotas());
  AddZeroed(dropped.reserves, entry.mutable_reserves());
  ApplyToMemory(zeroed, 0, view_index);
  view_->ForgetWarehouses(dropped.warehouses);
}

void CatalogueCore::ApplyToMemory(const WatchChangesResponse& batch, int first,
                                  uint16_t view_index) {
  view_->ApplyEntries(batch.entries(), first, view_index);
  FeedSnapshot(batch, first);
}

void CatalogueCore::FeedSnapshot(const WatchChangesResponse& batch, int first) {
  if (snapshot_ == nullptr) return;
  for (int i = first; i < batch.entries_size(); ++i) {
    const auto& e = batch.entries(i);
    for (const auto& w : e.warehouses()) snapshot_->Apply(w);
    for (const auto& b : e.balances()) snapshot_->Apply(b);
    for (const auto& q : e.quotas()) snapshot_->Apply(q);
    for (const auto& r : e.reserves()) snapshot_->Apply(r);
  }
}

bool CatalogueCore::Stale(const SourceState& s) {
  return s.record.gone() || !s.stream || !s.stream->status().connected ||
         !HoldsAllStockOf(s.record);
}

void CatalogueCore::RefreshFreshness() const {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, s] : sources_) {
    view_->SetSourceFreshness(s.view_index, Micros(s.record.last_commit_time()), Stale(s),
                              MayLackWarehousesOf(s.record));
  }
}

ReplicationSource CatalogueCore::Reported(const SourceState& s, int64_t now) const {
  ReplicationSource r = s.record;
  StreamStatus st = s.stream ? s.stream->status() : s.last_status;
  const uint64_t head = std::max(st.head_sequence, r.applied_sequence());
  r.set_head_sequence(head);
  r.set_lag_entries(head - r.applied_sequence());
  r.set_connected(st.connected && !r.gone());
  r.set_last_error(r.gone() ? "registration gone" : st.last_error);
  double lag = 0;
  if (head > r.applied_sequence()) {
    // The oldest unapplied entry committed after the last applied one and before we saw it.
    const int64_t since = std::max(Micros(r.last_commit_time()), st.behind_since_micros);
    lag = double(now - since) / 1e6;
  }
  if (!r.connected()) {
    // Not answered since this process began (or since its stream began): whatever the
    // source took meanwhile is missing here, so the lag is at least that long.
    const int64_t answered = st.last_contact_micros > 0
                                 ? st.last_contact_micros
                                 : std::max(opened_micros_, st.started_micros);
    lag = std::max(lag, double(now - answered) / 1e6);
  }
  r.set_lag_seconds(std::max(0.0, lag));
  if (st.last_contact_micros > 0)
    *r.mutable_last_contact_time() = FromMicros(st.last_contact_micros);
  if (st.started_micros > 0) *r.mutable_stream_start_time() = FromMicros(st.started_micros);
  return r;
}

std::vector<ReplicationSource> CatalogueCore::ReplicationStatus() const {
  std::vector<ReplicationSource> out;
  const int64_t now = clock_->NowMicros();
  absl::MutexLock lock(&mu_);
  for (const auto& [id, s] : sources_) out.push_back(Reported(s, now));
  return out;
}

absl::StatusOr<ReplicationSource> CatalogueCore::ForgetSource(const std::string& id,
                                                              const std::string& request_id,
                                                              const std::string& actor) {
  absl::MutexLock discovery(&discovery_mu_);  // no registration comes or goes meanwhile
  ReplicationSource last;
  uint16_t view_index = 0;
  {
    absl::MutexLock lock(&mu_);
    if (auto f = forgotten_.find(id); f != forgotten_.end()) {
      if (!request_id.empty() && f->second.forget_request_id() == request_id) return f->second;
      return absl::NotFoundError(absl::StrCat(
          "replication source '", id, "' was already forgotten, at ",
          TimeUtil::ToString(f->second.forget_time()), " by ", f->second.forgotten_by()));
    }
    auto it = sources_.find(id);
    if (it == sources_.end()) {
      return absl::NotFoundError(absl::StrCat("no replication source '", id,
                                              "' (`stockctl catalogue status` lists them)"));
    }
    if (!it->second.record.gone()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "replication source '", id, "' is registered (", it->second.record.address(),
          "): only a source whose registration is gone can be forgotten; stop that instance "
          "first (with etcd its lease must lapse; without, leave it out of --source)"));
    }
    last = Reported(it->second, clock_->NowMicros());
    view_index = it->second.view_index;
  }
  ReplicationSource tombstone = Tombstone(last, request_id, actor, clock_->NowMicros());
  ASSIGN_OR_RETURN(const DroppedCounts dropped, DropStock(tombstone, view_index));
  const std::vector<std::string>& warehouses = dropped.warehouses;
  const size_t balances = dropped.balances;
  {
    absl::MutexLock lock(&mu_);
    sources_.erase(id);
    forgotten_[id] = tombstone;
    // Its prefixes no longer make any region look partly unseen or stale.
    view_->SetSourceFreshness(view_index, 0, false, false);
    view_->SetSourceHosting(view_index, stockpile::v1::LEVEL_UNSPECIFIED, {});
  }
  std::cerr << "stockpile-catalogue: forgot source " << id << " (asked by " << actor
            << "): dropped its " << warehouses.size() << " warehouses (" << balances << " balances)"
            << std::endl;
  return tombstone;
}

absl::StatusOr<stockpile::v1::WarehouseStock> CatalogueCore::GetWarehouseStock(
    const stockpile::v1::GetWarehouseStockRequest& req) const {
  const std::string code = WarehouseCode(req.warehouse());
  if (code.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("warehouse must be 'warehouses/{code}'; got '", req.warehouse(), "'"));
  }
  RefreshFreshness();
  return view_->GetStock(code, req.item());
}

absl::StatusOr<stockpile::v1::ListWarehouseStockResponse> CatalogueCore::ListWarehouseStock(
    const stockpile::v1::ListWarehouseStockRequest& req) const {
  RETURN_IF_ERROR(CheckPrefix(*reference_, req.region_prefix()));
  ASSIGN_OR_RETURN(size_t limit, PageSize(req.page_size(), 100, 10000));
  common::PageQuery query("catalogue ListWarehouseStock");
  query.Add("region_prefix", req.region_prefix())
      .Add("item", req.item())
      .AddInt("skip_zero", req.skip_zero());
  ASSIGN_OR_RETURN(const std::string after, query.Position(req.page_token()));
  RETURN_IF_ERROR(CheckStockToken(after, req.region_prefix()));
  RefreshFreshness();
  stockpile::v1::ListWarehouseStockResponse resp;
  std::string next;
  ASSIGN_OR_RETURN(auto stock, view_->ListStock(req.region_prefix(), req.item(), req.skip_zero(),
                                                limit, after, &next));
  for (auto& s : stock) *resp.add_stock() = std::move(s);
  resp.set_next_page_token(query.Token(next));
  return resp;
}

absl::StatusOr<stockpile::v1::Rollup> CatalogueCore::GetRollup(
    const stockpile::v1::GetRollupRequest& req) const {
  if (common::LevelOfRegionCode(req.region_code()) == stockpile::v1::LEVEL_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat(
        "region_code must have 2, 4, 6, 9 or 12 digits; got '", req.region_code(), "'"));
  }
  RefreshFreshness();
  return view_->Rollup(req.region_code(), req.item());
}

absl::StatusOr<stockpile::v1::SearchStockResponse> CatalogueCore::SearchStock(
    const stockpile::v1::SearchStockRequest& req) const {
  RETURN_IF_ERROR(CheckPrefix(*reference_, req.region_prefix()));
  ASSIGN_OR_RETURN(size_t limit, PageSize(req.page_size(), 10, 1000));
  const int item = view_->ItemIndex(req.item());
  if (item < 0) return UnknownItem(req.item());
  if (req.min_available() < 1)
    return absl::InvalidArgumentError("min_available must be at least 1");
  if (req.radius_km() < 0) return absl::InvalidArgumentError("radius_km must not be negative");
  SearchQuery q;
  q.item = uint32_t(item);
  q.min_available = req.min_available();
  q.radius_km = req.radius_km();
  q.region_prefix = req.region_prefix();
  q.limit = limit;
  if (req.has_point()) {
    q.longitude = req.point().longitude();
    q.latitude = req.point().latitude();
  } else if (const auto* region = reference_->FindRegion(req.region_code())) {
    q.longitude = region->longitude;
    q.latitude = region->latitude;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "origin must be a known region_code or a point; got '", req.region_code(), "'"));
  }
  common::PageQuery query("catalogue SearchStock");
  query.Add("item", req.item())
      .AddInt("min_available", req.min_available())
      .AddDouble("longitude", q.longitude)
      .AddDouble("latitude", q.latitude)
      .AddDouble("radius_km", req.radius_km())
      .Add("region_prefix", req.region_prefix());
  ASSIGN_OR_RETURN(const std::string after, query.Position(req.page_token()));
  RETURN_IF_ERROR(ParseSearchToken(after, &q));
  RefreshFreshness();
  uint32_t last_index = 0;
  ASSIGN_OR_RETURN(auto hits, view_->Search(q, &last_index));
  stockpile::v1::SearchStockResponse resp;
  if (hits.size() == limit) {
    // Resume after the last hit (its distance, then its dense index).
    resp.set_next_page_token(query.Token(
        absl::StrCat(absl::StrFormat("%.17g", hits.back().distance_km()), ":", last_index)));
  }
  for (auto& h : hits) *resp.add_hits() = std::move(h);
  return resp;
}

absl::StatusOr<stockpile::v1::ListQuotaStatusResponse> CatalogueCore::ListShortages(
    const stockpile::v1::ListQuotaStatusRequest& req) const {
  RETURN_IF_ERROR(CheckPrefix(*reference_, req.region_prefix()));
  ASSIGN_OR_RETURN(size_t limit, PageSize(req.page_size(), 100, 10000));
  common::PageQuery query("catalogue ListShortages");
  query.Add("region_prefix", req.region_prefix()).Add("item", req.item());
  ASSIGN_OR_RETURN(const std::string after, query.Position(req.page_token()));
  RETURN_IF_ERROR(CheckShortageToken(after, req.region_prefix(), req.item(), *view_));
  std::string next;
  const int32_t today = common::ReserveDay(clock_->NowMicros());
  NationalView::ExpiredStock expired;
  if (snapshot_ != nullptr) {
    expired = [&](absl::string_view code, int item) {
      return snapshot_->ExpiredAvailable(code, reference_->items()[size_t(item)].code, today);
    };
  }
  ASSIGN_OR_RETURN(auto entries,
                   view_->Shortages(req.region_prefix(), req.item(), limit, after, &next, expired));
  stockpile::v1::ListQuotaStatusResponse resp;
  for (auto& e : entries) *resp.add_entries() = std::move(e);
  resp.set_next_page_token(query.Token(next));
  return resp;
}

absl::StatusOr<stockpile::v1::ListExpiringLotsResponse> CatalogueCore::ListExpiringLots(
    const stockpile::v1::ListExpiringLotsRequest& req) const {
  RETURN_IF_ERROR(CheckPrefix(*reference_, req.region_prefix()));
  ASSIGN_OR_RETURN(size_t limit, PageSize(req.page_size(), 100, 10000));
  ASSIGN_OR_RETURN(const int32_t within, common::ExpiryWindowDays(req));
  common::PageQuery query("catalogue ListExpiringLots");
  query.Add("region_prefix", req.region_prefix()).AddInt("within_days", within);
  ASSIGN_OR_RETURN(const std::string after, query.Position(req.page_token()));
  RETURN_IF_ERROR(CheckBalanceKeyToken(after, req.region_prefix()));
  const int32_t today = common::ReserveDay(clock_->NowMicros());
  stockpile::v1::ListExpiringLotsResponse resp;
  constexpr size_t kMaxScanned = 200'000;  // a page may come back short; the token goes on
  ASSIGN_OR_RETURN(std::string last, store_->ScanBalances(req.region_prefix(), after, kMaxScanned,
                                                          [&](const stockpile::v1::Balance& b) {
                                                            common::AppendExpiringLots(
                                                                b, today, within, &resp);
                                                            return size_t(resp.lots_size()) < limit;
                                                          }));
  resp.set_next_page_token(query.Token(last));
  return resp;
}

}  // namespace stockpile::catalogue
