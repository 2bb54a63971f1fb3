#include "services/level/level_store.h"

#include <rocksdb/convenience.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>

#include <algorithm>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "services/common/rocks_close.h"
#include "services/common/rocks_open.h"
#include "services/common/rocks_perf.h"
#include "services/common/status_macros.h"
#include "services/common/status_util.h"

namespace stockpile::level {
namespace {

const std::array<const char*, static_cast<int>(Cf::kCount)> kCfNames = {
    "default", "warehouses", "balances", "movements", "movement_index",
    "changes", "requests",   "holds",    "quotas",    "reserves"};

rocksdb::CompressionType BestCompression() {
  for (auto c : rocksdb::GetSupportedCompressions()) {
    if (c == rocksdb::kLZ4Compression) return c;
  }
  for (auto c : rocksdb::GetSupportedCompressions()) {
    if (c == rocksdb::kSnappyCompression) return c;
  }
  return rocksdb::kNoCompression;
}

// Movement, index and change keys end in a time-ordered 16-byte suffix (micros + id, or the
// sequence), so each key sorts right after the last one written with the same prefix. Given
// the prefix, the memtable remembers where it inserted last and skips the skip-list search from
// the top: that search was a quarter of the writer's CPU.
class TimeOrderedSuffix final : public rocksdb::SliceTransform {
 public:
  static constexpr size_t kSuffix = 16;
  const char* Name() const override { return "stockpile.TimeOrderedSuffix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), key.size() - kSuffix);
  }
  bool InDomain(const rocksdb::Slice& key) const override { return key.size() >= kSuffix; }
};

// One hint (empty prefix) for a whole column family: change keys (the 8-byte sequence) arrive
// in order, and the other families' keys arrive sorted within each group
// (StoreTxn::KeyOrderedBatch), so each insert starts from the splice the previous one left.
class WholeFamily final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "stockpile.WholeFamily"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), 0);
  }
  bool InDomain(const rocksdb::Slice&) const override { return true; }
};

std::shared_ptr<const rocksdb::SliceTransform> InsertHintFor(Cf cf) {
  switch (cf) {
    case Cf::kMovements:
    case Cf::kMovementIndex:
      return std::make_shared<TimeOrderedSuffix>();
    default:
      return std::make_shared<WholeFamily>();
  }
}

rocksdb::ColumnFamilyOptions CfOptions(const std::shared_ptr<rocksdb::Cache>& cache, Cf family,
                                       bool point_lookups) {
  rocksdb::ColumnFamilyOptions cf;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  if (point_lookups) table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = false;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf.compression = BestCompression();
  cf.write_buffer_size = 64 << 20;
  cf.level_compaction_dynamic_level_bytes = true;
  cf.memtable_insert_with_hint_prefix_extractor = InsertHintFor(family);
  if (family == Cf::kRequests) {
    // The writer looks up every new command's request id, which is almost never there; a
    // filter answers that miss without searching the memtable's skip list.
    cf.memtable_whole_key_filtering = true;
    cf.memtable_prefix_bloom_size_ratio = 0.02;
  }
  return cf;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LevelStore>> LevelStore::Open(const std::string& path,
                                                             const Options& options) {
  rocksdb::DBOptions db_options;
  // Every commit is synced before it is answered (LevelCore).
  RETURN_IF_ERROR(common::PrepareToOpen(path, /*synced_writes=*/true, db_options));
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  db_options.bytes_per_sync = 1 << 20;
  // Keep the WAL small so a restart replays little: flush memtables once the WAL passes 256 MB.
  db_options.max_total_wal_size = 256 << 20;
  auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (int i = 0; i < static_cast<int>(Cf::kCount); ++i) {
    const bool point = i != static_cast<int>(Cf::kChanges) && i != static_cast<int>(Cf::kMovements);
    descriptors.emplace_back(kCfNames[i], CfOptions(cache, static_cast<Cf>(i), point));
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, path, descriptors, &handles, &raw);
  if (!s.ok()) return common::OpenFailure(s, path, db_options, "the ledger");
  std::unique_ptr<LevelStore> store(new LevelStore());
  store->db_.reset(raw);
  for (size_t i = 0; i < handles.size(); ++i) store->handles_[i] = handles[i];
  return store;
}

LevelStore::~LevelStore() {
  if (!db_) return;
  std::vector<rocksdb::ColumnFamilyHandle*> families;
  for (auto* h : handles_) {
    if (h != nullptr) families.push_back(h);
  }
  if (!write_failed_) common::FlushBeforeClose(*db_, families);  // a clean stop leaves no WAL
  for (auto* h : handles_) {
    if (h != nullptr) db_->DestroyColumnFamilyHandle(h);
  }
  db_->Close();
}

absl::StatusOr<std::optional<std::string>> LevelStore::Get(Cf cf, absl::string_view key) const {
  common::QuietRocksPerfCounters();
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), handle(cf), rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return common::FromRocks(s, "read");
  return std::optional<std::string>(std::move(value));
}

absl::Status LevelStore::Write(rocksdb::WriteBatch& batch, bool sync) {
  common::QuietRocksPerfCounters();
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  absl::Status s = common::FromRocks(db_->Write(wo, &batch), "write batch");
  if (!s.ok()) write_failed_ = true;
  return s;
}

absl::StatusOr<bool> LevelStore::FlushInBackground(Cf cf) {
  // While an earlier memtable is still being flushed, another switch could reach
  // max_write_buffer_number and stall every write until both are on disk.
  if (write_failed_) return false;
  uint64_t unflushed = 0;
  if (db_->GetIntProperty(handle(cf), "rocksdb.num-immutable-mem-table", &unflushed) &&
      unflushed > 0) {
    return false;
  }
  rocksdb::FlushOptions options;
  options.wait = false;
  options.allow_write_stall = true;
  RETURN_IF_ERROR(common::FromRocks(db_->Flush(options, handle(cf)), "flush"));
  return true;
}

bool VersionChurn::Note(const Overlay& group) {
  for (const auto& [key, value] : group) {
    if (key.empty() || static_cast<Cf>(key[0]) != cf_) continue;
    ++versions_;
    keys_.insert(absl::HashOf(key));
  }
  if (versions_ >= min_versions_ && versions_ >= versions_per_key_ * keys_.size()) return true;
  if (versions_ >= kForgetAfter) Reset();
  return false;
}

void VersionChurn::Reset() {
  versions_ = 0;
  keys_.clear();
}

std::unique_ptr<rocksdb::Iterator> LevelStore::NewIterator(
    Cf cf, const rocksdb::Snapshot* snapshot) const {
  common::QuietRocksPerfCounters();
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  return std::unique_ptr<rocksdb::Iterator>(db_->NewIterator(ro, handle(cf)));
}

absl::Status LevelStore::DeleteRange(Cf cf, absl::string_view begin, absl::string_view end) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return common::FromRocks(
      db_->DeleteRange(wo, handle(cf), rocksdb::Slice(begin.data(), begin.size()),
                       rocksdb::Slice(end.data(), end.size())),
      "delete range");
}

absl::StatusOr<std::string> LevelStore::Identity() const {
  std::string identity;
  RETURN_IF_ERROR(common::FromRocks(db_->GetDbIdentity(identity), "read the database identity"));
  return identity;
}

uint64_t LevelStore::IntProperty(const std::string& name) const {
  uint64_t total = 0;
  for (auto* h : handles_) {
    uint64_t v = 0;
    if (db_->GetIntProperty(h, name, &v)) total += v;
  }
  return total;
}

std::string StoreTxn::OverlayKey(Cf cf, absl::string_view key) {
  std::string k(1, static_cast<char>(cf));
  k.append(key.data(), key.size());
  return k;
}

absl::StatusOr<std::optional<std::string>> StoreTxn::Get(Cf cf, absl::string_view key) const {
  const std::string k = OverlayKey(cf, key);
  if (auto it = command_.find(k); it != command_.end()) return it->second;
  if (auto it = group_.find(k); it != group_.end()) return it->second;
  for (auto o = unsynced_.rbegin(); o != unsynced_.rend(); ++o) {
    if (auto it = (*o)->find(k); it != (*o)->end()) return it->second;
  }
  if (cache_ == nullptr || !WriterCache::Caches(cf)) return store_.Get(cf, key);
  if (const auto* cached = cache_->Find(k)) return *cached;
  ASSIGN_OR_RETURN(std::optional<std::string> stored, store_.Get(cf, key));
  cache_->Set(k, stored);
  return stored;
}

std::shared_ptr<const Overlay> StoreTxn::TakeOverlay() {
  if (cache_ != nullptr) {
    for (const auto& [k, v] : group_) {
      if (WriterCache::Caches(static_cast<Cf>(k[0]))) cache_->Set(k, v);
    }
  }
  return std::make_shared<const Overlay>(std::move(group_));
}

void StoreTxn::Begin() {
  kept_appends_ = appended_.size();
  command_.clear();
}

void StoreTxn::Put(Cf cf, absl::string_view key, std::string value) {
  command_[OverlayKey(cf, key)] = std::move(value);
}

void StoreTxn::Delete(Cf cf, absl::string_view key) {
  command_[OverlayKey(cf, key)] = std::nullopt;
}

void StoreTxn::Append(Cf cf, std::string key, std::string value) {
  appended_.push_back({cf, std::move(key), std::move(value)});
}

void StoreTxn::Keep() {
  for (auto& [k, v] : command_) group_[k] = std::move(v);
  command_.clear();
  kept_appends_ = appended_.size();
}

void StoreTxn::Drop() {
  appended_.resize(kept_appends_);
  command_.clear();
}

rocksdb::WriteBatch StoreTxn::KeyOrderedBatch() const {
  struct Record {
    Cf cf;
    absl::string_view key;
    const std::string* value;  // nullptr: delete
  };
  std::vector<Record> records;
  records.reserve(kept_appends_ + group_.size());
  size_t bytes = 0;
  for (size_t i = 0; i < kept_appends_; ++i) {
    const Appended& a = appended_[i];
    records.push_back({a.cf, a.key, &a.value});
    bytes += a.key.size() + a.value.size() + 8;
  }
  for (const auto& [k, v] : group_) {
    records.push_back(
        {static_cast<Cf>(k[0]), absl::string_view(k).substr(1), v.has_value() ? &*v : nullptr});
    bytes += k.size() + (v.has_value() ? v->size() : 0) + 8;
  }
  std::sort(records.begin(), records.end(), [](const Record& a, const Record& b) {
    if (a.cf != b.cf) return a.cf < b.cf;
    return a.key < b.key;
  });
  rocksdb::WriteBatch batch(bytes + 64);
  for (const Record& r : records) {
    const rocksdb::Slice key(r.key.data(), r.key.size());
    if (r.value == nullptr) {
      batch.Delete(store_.handle(r.cf), key).PermitUncheckedError();
    } else {
      batch.Put(store_.handle(r.cf), key, *r.value).PermitUncheckedError();
    }
  }
  return batch;
}

}  // namespace stockpile::level
