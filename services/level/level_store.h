#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stockpile::level {

// Column families of a level instance's database.
enum class Cf : int {
  kDefault = 0,    // meta, per-item totals
  kWarehouses,     // code -> Warehouse
  kBalances,       // code/item -> Balance (with lots)
  kMovements,      // code/item/micros/id -> Movement
  kMovementIndex,  // secondary indexes of movements
  kChanges,        // sequence -> ChangeEntry
  kRequests,       // request_id -> RequestRecord
  kHolds,          // holds, hold expiry queue, arrivals
  kQuotas,         // code/item -> Quota
  kReserves,       // code/item/mode -> Reserve
  kCount
};

// RocksDB behind our own class. Writes go through WriteBatch only; `sync` makes the WAL durable
// before returning (RocksDB groups concurrent synced writes into one fsync).
class LevelStore {
 public:
  struct Options {
    size_t block_cache_bytes = 256 << 20;
  };

  // Opens the database at `path`, or creates it where the directory is missing or holds no
  // files (common::PrepareToOpen). One that is there but damaged (WAL corruption other than a
  // torn last record, no CURRENT, a truncated or missing file) is DATA_LOSS, left as it is.
  static absl::StatusOr<std::unique_ptr<LevelStore>> Open(const std::string& path,
                                                          const Options& options);
  ~LevelStore();

  absl::StatusOr<std::optional<std::string>> Get(Cf cf, absl::string_view key) const;
  absl::Status Write(rocksdb::WriteBatch& batch, bool sync);
  std::unique_ptr<rocksdb::Iterator> NewIterator(Cf cf,
                                                 const rocksdb::Snapshot* snapshot = nullptr) const;
  // Keys in [begin, end) in one column family (compaction-friendly range delete).
  absl::Status DeleteRange(Cf cf, absl::string_view begin, absl::string_view end);

  // Switches the family to a new memtable and flushes the old one in the background, unless
  // an earlier one of the family is still being flushed, or a write has failed: true when it
  // started a flush.
  absl::StatusOr<bool> FlushInBackground(Cf cf);

  rocksdb::ColumnFamilyHandle* handle(Cf cf) const { return handles_[static_cast<int>(cf)]; }
  rocksdb::DB* db() const { return db_.get(); }
  uint64_t IntProperty(const std::string& name) const;
  // RocksDB's IDENTITY of this database: made once when the database is created, the same on
  // every open. Only the process holding the database's lock can be serving it.
  absl::StatusOr<std::string> Identity() const;

 private:
  LevelStore() = default;
  std::unique_ptr<rocksdb::DB> db_;
  std::array<rocksdb::ColumnFamilyHandle*, static_cast<int>(Cf::kCount)> handles_{};
  // After a failed write RocksDB's WAL writer is broken: Debian's librocksdb asserts (aborts
  // the process) when a flush touches it, so nothing is flushed any more, not even on close
  // (the WAL, replayed on the next start, has every acknowledged write).
  std::atomic<bool> write_failed_{false};
};

// Writes of a group not yet durable, keyed by column family byte + key; nullopt = deleted.
using Overlay = absl::flat_hash_map<std::string, std::optional<std::string>>;

// Counts the versions one column family's memtable gathers against the distinct keys they
// belong to. An iterator steps over every version not yet flushed, so a few balances updated
// many times list slowly until RocksDB flushes the memtable for being full; a flush keeps one
// version per key (4,200 balances after 10 s of batched receipts listed at 112,000-160,000
// balances/s; flushed early at 5,000 versions and 2 per key, at 411,000-1,008,000). Past
// `versions_per_key` versions per key on average, and at least `min_versions`, the family is
// worth flushing early. A spread-out workload (about one version per key) never gets there
// and is left to RocksDB's own flushes.
class VersionChurn {
 public:
  VersionChurn(Cf cf, size_t min_versions, size_t versions_per_key)
      : cf_(cf), min_versions_(min_versions), versions_per_key_(versions_per_key) {}
  // Notes the keys of the family that one group wrote (each once, as the group's overlay has
  // them); true when the family should be flushed now. It keeps saying so until Flushed():
  // a flush that could not start yet (an earlier one still running) is asked for again with
  // the next group, instead of letting the memtable gather twice the versions meanwhile.
  bool Note(const Overlay& group);
  // A flush of the family started: counting starts again.
  void Flushed() { Reset(); }
  size_t versions() const { return versions_; }

 private:
  // By this many versions the memtable has filled and been flushed on its own.
  static constexpr size_t kForgetAfter = 400'000;
  void Reset();

  const Cf cf_;
  const size_t min_versions_;
  const size_t versions_per_key_;
  size_t versions_ = 0;
  absl::flat_hash_set<uint64_t> keys_;  // hashes of the keys written since counting started
};

// The writer thread's copy of the records its commands read back most (balances, warehouses),
// so a command does not search RocksDB's memtable, which holds every version written since the
// last flush: those searches were a quarter of the writer's CPU. It holds the writer's view,
// groups not yet durable included (a failed write stops all writes until restart, so it never
// outlives a write that did not happen). Writer thread only; cleared when it outgrows its bound.
class WriterCache {
 public:
  explicit WriterCache(size_t max_entries) : max_entries_(max_entries) {}
  static bool Caches(Cf cf) { return cf == Cf::kBalances || cf == Cf::kWarehouses; }
  // Keys are overlay keys (column family byte + key).
  const std::optional<std::string>* Find(const std::string& key) const {
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : &it->second;
  }
  void Set(const std::string& key, const std::optional<std::string>& value) {
    if (entries_.size() >= max_entries_ && !entries_.contains(key)) entries_.clear();
    entries_[key] = value;
  }
  size_t size() const { return entries_.size(); }

 private:
  size_t max_entries_;
  Overlay entries_;
};

// The writes of one commit group, with reads that see them. A command's writes are kept
// (Keep) or forgotten (Drop) as a whole, so a refused command leaves nothing behind while
// earlier commands of the group stay. Put/Delete are for records the writer reads back
// (balances, holds, requests, change entries ...): they live in the group's overlay, the last
// write of a key replacing earlier ones. Append is for records it never reads (movements,
// indexes) and skips the overlay. Nothing is copied into a RocksDB batch until the group is
// sealed (KeyOrderedBatch), which writes each record once, in order.
class StoreTxn {
 public:
  // `unsynced`: overlays of earlier groups whose write is still in flight, oldest first.
  // `cache`: the writer's cache, read after the overlays and kept up to date by TakeOverlay.
  StoreTxn(const LevelStore& store, std::vector<std::shared_ptr<const Overlay>> unsynced = {},
           WriterCache* cache = nullptr)
      : store_(store), unsynced_(std::move(unsynced)), cache_(cache) {}

  absl::StatusOr<std::optional<std::string>> Get(Cf cf, absl::string_view key) const;
  void Begin();  // starts a command's writes
  void Put(Cf cf, absl::string_view key, std::string value);
  void Delete(Cf cf, absl::string_view key);
  // A record nothing reads back in this group; a key is appended at most once per group and
  // never also put or deleted in it.
  void Append(Cf cf, std::string key, std::string value);

  void Keep();  // the current command's writes join the group
  void Drop();  // the current command's writes are forgotten

  // The group's kept writes in column-family and key order. RocksDB inserts a batch into the
  // memtable skip lists in batch order; in key order each insert starts from where the
  // previous one ended instead of searching from the top, which was a third of the service's
  // CPU under batched load, and neighbouring keys sit side by side in the memtable's arena,
  // which flushes read faster (appends left in prefix order: flushes +0.5 µs per movement).
  // Call before TakeOverlay.
  rocksdb::WriteBatch KeyOrderedBatch() const;
  // The group's writes, for later groups to read until this one is durable.
  std::shared_ptr<const Overlay> TakeOverlay();
  // An overlay's key: the column family's byte, then the key.
  static std::string OverlayKey(Cf cf, absl::string_view key);

 private:
  struct Appended {
    Cf cf;
    std::string key;
    std::string value;
  };

  const LevelStore& store_;
  std::vector<std::shared_ptr<const Overlay>> unsynced_;
  WriterCache* cache_;
  std::vector<Appended> appended_;
  size_t kept_appends_ = 0;  // appends of kept commands; the current command's follow them
  Overlay group_;
  Overlay command_;  // the current command's read-back writes
};

}  // namespace stockpile::level
