#include "services/catalogue/catalogue_store.h"

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "services/common/rocks_close.h"
#include "services/common/rocks_open.h"
#include "services/common/rocks_perf.h"
#include "services/common/status_macros.h"
#include "services/common/status_util.h"

namespace stockpile::catalogue {

using stockpile::v1::Balance;
using stockpile::v1::Quota;
using stockpile::v1::ReplicationSource;
using stockpile::v1::Reserve;
using stockpile::v1::Warehouse;

namespace {

template <typename Message>
absl::Status ParseInto(const rocksdb::Slice& value, Message& m, absl::string_view what,
                       const rocksdb::Slice& key) {
  if (!m.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(
        absl::StrCat("stored ", what, " '", key.ToString(), "' is unreadable"));
  }
  return absl::OkStatus();
}

template <typename Message>
absl::StatusOr<Message> Parse(const rocksdb::Slice& value, absl::string_view what,
                              const rocksdb::Slice& key) {
  Message m;
  RETURN_IF_ERROR(ParseInto(value, m, what, key));
  return m;
}

// The next message of `messages` to parse into: chunks are reused, and a message parsed into
// again keeps the memory it had (fewer allocations than fresh messages).
template <typename Message>
Message& NextSlot(std::vector<Message>& messages, size_t& used) {
  if (used == messages.size()) messages.emplace_back();
  return messages[used++];
}

// Records parsed from consecutive keys, kept in key order.
class ParsedChunk {
 public:
  static constexpr size_t kRecords = 1024;

  bool full() const { return kinds_.size() >= kRecords; }

  // Parses one stored record (keys of other kinds are skipped).
  absl::Status Add(const rocksdb::Slice& key, const rocksdb::Slice& value) {
    const char kind = key.size() > 0 ? key[0] : 0;
    switch (kind) {
      case 'w': {
        const char* nul = static_cast<const char*>(std::memchr(value.data(), '\0', value.size()));
        if (nul == nullptr) {
          return absl::DataLossError(
              absl::StrCat("stored warehouse '", key.ToString(), "' lacks its source"));
        }
        const size_t source_size = static_cast<size_t>(nul - value.data());
        SourcedWarehouse& slot = NextSlot(warehouses_, used_.warehouses);
        slot.source.assign(value.data(), source_size);
        RETURN_IF_ERROR(ParseInto(rocksdb::Slice(nul + 1, value.size() - source_size - 1),
                                  slot.warehouse, "warehouse", key));
        break;
      }
      case 'b':
        RETURN_IF_ERROR(ParseInto(value, NextSlot(balances_, used_.balances), "balance", key));
        break;
      case 'q':
        RETURN_IF_ERROR(ParseInto(value, NextSlot(quotas_, used_.quotas), "quota", key));
        break;
      case 'r':
        RETURN_IF_ERROR(ParseInto(value, NextSlot(reserves_, used_.reserves), "reserve", key));
        break;
      case 's':
        RETURN_IF_ERROR(ParseInto(value, NextSlot(sources_, used_.sources), "source", key));
        break;
      default:
        return absl::OkStatus();
    }
    kinds_.push_back(kind);
    return absl::OkStatus();
  }

  // Calls the visitor for each record in the order they were added, then empties the chunk.
  void Visit(const CatalogueStore::Visitor& v) {
    Used next;
    for (const char kind : kinds_) {
      switch (kind) {
        case 'w': {
          const SourcedWarehouse& w = warehouses_[next.warehouses++];
          if (v.warehouse) v.warehouse(w.source, w.warehouse);
          break;
        }
        case 'b':
          if (v.balance) v.balance(balances_[next.balances++]);
          break;
        case 'q':
          if (v.quota) v.quota(quotas_[next.quotas++]);
          break;
        case 'r':
          if (v.reserve) v.reserve(reserves_[next.reserves++]);
          break;
        case 's':
          if (v.source) v.source(sources_[next.sources++]);
          break;
      }
    }
    kinds_.clear();
    used_ = Used{};
  }

 private:
  struct Used {
    size_t warehouses = 0, balances = 0, quotas = 0, reserves = 0, sources = 0;
  };
  std::vector<char> kinds_;
  Used used_;
  struct SourcedWarehouse {
    std::string source;  // the id of the level instance it came from
    Warehouse warehouse;
  };
  std::vector<SourcedWarehouse> warehouses_;
  std::vector<Balance> balances_;
  std::vector<Quota> quotas_;
  std::vector<Reserve> reserves_;
  std::vector<ReplicationSource> sources_;
};

// A fixed set of chunks passed between the reading thread (TakeEmpty, Fill) and the applying
// thread (TakeFilled, GiveBack); the reader waits while every chunk is filled.
class ParsedChunks {
 public:
  explicit ParsedChunks(size_t count) : chunks_(count) {
    for (auto& c : chunks_) empty_.push_back(&c);
  }

  ParsedChunk* TakeEmpty() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !empty_.empty() || abandoned_; });
    if (abandoned_) return nullptr;
    ParsedChunk* c = empty_.front();
    empty_.pop_front();
    return c;
  }
  void Fill(ParsedChunk* c) {
    std::lock_guard<std::mutex> lock(mu_);
    filled_.push_back(c);
    cv_.notify_all();
  }
  // nullptr once closed and every filled chunk was taken (or at once when abandoned).
  ParsedChunk* TakeFilled() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !filled_.empty() || closed_; });
    if (filled_.empty() || abandoned_) return nullptr;
    ParsedChunk* c = filled_.front();
    filled_.pop_front();
    return c;
  }
  void GiveBack(ParsedChunk* c) {
    std::lock_guard<std::mutex> lock(mu_);
    empty_.push_back(c);
    cv_.notify_all();
  }
  // No more chunks will be filled; `abandon`: drop those not yet applied (a read failed).
  void Close(bool abandon) {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    abandoned_ = abandon;
    cv_.notify_all();
  }

 private:
  std::vector<ParsedChunk> chunks_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<ParsedChunk*> empty_;
  std::deque<ParsedChunk*> filled_;
  bool closed_ = false;
  bool abandoned_ = false;
};

// LoadAll's reading thread: every record of `db` parsed into chunks, in key order.
absl::Status ReadAndParse(rocksdb::DB& db, ParsedChunks& chunks) {
  common::QuietRocksPerfCounters();
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro));
  ParsedChunk* chunk = chunks.TakeEmpty();
  for (it->SeekToFirst(); it->Valid() && chunk != nullptr; it->Next()) {
    RETURN_IF_ERROR(chunk->Add(it->key(), it->value()));
    if (chunk->full()) {
      chunks.Fill(chunk);
      chunk = chunks.TakeEmpty();
    }
  }
  if (chunk != nullptr) chunks.Fill(chunk);
  if (!it->status().ok()) return common::FromRocks(it->status(), "load catalogue");
  return absl::OkStatus();
}

}  // namespace

StoreBatch::StoreBatch() : batch_(std::make_unique<rocksdb::WriteBatch>()) {}
StoreBatch::~StoreBatch() = default;
size_t StoreBatch::count() const { return static_cast<size_t>(batch_->Count()); }

void StoreBatch::PutWarehouse(absl::string_view code, absl::string_view source_id,
                              const Warehouse& w) {
  scratch_ = absl::StrCat(source_id, absl::string_view("\0", 1));
  w.AppendToString(&scratch_);
  batch_->Put(absl::StrCat("w", code), scratch_);
}

void StoreBatch::PutBalance(absl::string_view code, const Balance& b) {
  batch_->Put(absl::StrCat("b", code, "/", b.item()), b.SerializeAsString());
}

void StoreBatch::PutQuota(absl::string_view code, const Quota& q) {
  batch_->Put(absl::StrCat("q", code, "/", q.item()), q.SerializeAsString());
}

void StoreBatch::PutReserve(absl::string_view code, const Reserve& r) {
  batch_->Put(absl::StrCat("r", code, "/", r.item(), "/", int(r.mode())), r.SerializeAsString());
}

void StoreBatch::PutSource(const ReplicationSource& source) {
  batch_->Put(absl::StrCat("s", source.instance_id()), source.SerializeAsString());
}

CatalogueStore::CatalogueStore(std::unique_ptr<rocksdb::DB> db, bool sync)
    : db_(std::move(db)), sync_(sync) {}

CatalogueStore::~CatalogueStore() {
  if (db_) common::FlushBeforeClose(*db_);
}

absl::StatusOr<std::unique_ptr<CatalogueStore>> CatalogueStore::Open(const std::string& path,
                                                                     bool sync_writes) {
  rocksdb::Options options;
  // A point-in-time WAL recovery stays (synced_writes false): what the catalogue holds is the
  // levels' history, with each source's watermark in the same batch, so a store recovered to an
  // earlier point streams the rest again.
  RETURN_IF_ERROR(common::PrepareToOpen(path, /*synced_writes=*/false, options));
  options.IncreaseParallelism(2);
  // Memtables are at most 3 x 32 MB: the catalogue's memory budget (3 GiB with the national
  // dataset) is mostly its in-memory view, index and planner snapshot.
  options.write_buffer_size = 32 << 20;
  options.max_write_buffer_number = 3;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(64 << 20);
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &raw);
  if (!s.ok()) return common::OpenFailure(s, path, options, "the catalogue's store");
  return std::unique_ptr<CatalogueStore>(
      new CatalogueStore(std::unique_ptr<rocksdb::DB>(raw), sync_writes));
}

absl::Status CatalogueStore::Write(StoreBatch& batch) {
  common::QuietRocksPerfCounters();
  rocksdb::WriteOptions wo;
  wo.sync = sync_;
  rocksdb::Status s = db_->Write(wo, &batch.batch());
  if (!s.ok()) return common::FromRocks(s, "write applied changes");
  return absl::OkStatus();
}

// Start-up reads tens of millions of records. Reading and parsing them is about half of the
// work and applying them (view, planner snapshot) the other half, so one thread reads and
// parses while another applies what it has parsed, in chunks and in key order.
absl::Status CatalogueStore::LoadAll(const Visitor& v) const {
  ParsedChunks chunks(/*count=*/4);
  std::thread applier([&] {
    while (ParsedChunk* chunk = chunks.TakeFilled()) {
      chunk->Visit(v);
      chunks.GiveBack(chunk);
    }
  });
  absl::Status status = ReadAndParse(*db_, chunks);
  chunks.Close(/*abandon=*/!status.ok());
  applier.join();
  return status;
}

namespace {

// Visits every record whose key starts with `prefix`, reusing `it` (one iterator for a whole
// walk: a source's drop seeks once per warehouse and kind).
absl::Status ScanPrefix(
    rocksdb::Iterator& it, const std::string& prefix,
    const std::function<absl::Status(const rocksdb::Slice& key, const rocksdb::Slice& value)>& fn) {
  for (it.Seek(prefix); it.Valid() && it.key().starts_with(prefix); it.Next()) {
    RETURN_IF_ERROR(fn(it.key(), it.value()));
  }
  return common::FromRocks(it.status(), "scan the catalogue");
}

}  // namespace

absl::StatusOr<std::vector<std::string>> CatalogueStore::DropSourceStock(
    const ReplicationSource& source, size_t chunk_records,
    const std::function<absl::Status(const DroppedStock&)>& dropped) {
  common::QuietRocksPerfCounters();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string owner = absl::StrCat(source.instance_id(), absl::string_view("\0", 1));
  std::vector<std::string> codes;
  RETURN_IF_ERROR(ScanPrefix(*it, "w", [&](const rocksdb::Slice& key, const rocksdb::Slice& v) {
    if (v.starts_with(owner)) codes.push_back(key.ToString().substr(1));
    return absl::OkStatus();
  }));
  DroppedStock chunk;
  auto writes = std::make_unique<StoreBatch>();
  auto drop = [&](char kind, const std::string& code, auto& out, absl::string_view what) {
    return ScanPrefix(*it, absl::StrCat(absl::string_view(&kind, 1), code, "/"),
                      [&](const rocksdb::Slice& key, const rocksdb::Slice& value) {
                        out.emplace_back();
                        RETURN_IF_ERROR(ParseInto(value, out.back(), what, key));
                        writes->batch().Delete(key).PermitUncheckedError();
                        return absl::OkStatus();
                      });
  };
  auto store_chunk = [&]() -> absl::Status {
    RETURN_IF_ERROR(Write(*writes));
    RETURN_IF_ERROR(dropped(chunk));
    chunk = DroppedStock();
    writes = std::make_unique<StoreBatch>();
    return absl::OkStatus();
  };
  for (const std::string& code : codes) {
    writes->batch().Delete(absl::StrCat("w", code)).PermitUncheckedError();
    chunk.warehouses.push_back(code);
    RETURN_IF_ERROR(drop('b', code, chunk.balances, "balance"));
    RETURN_IF_ERROR(drop('q', code, chunk.quotas, "quota"));
    RETURN_IF_ERROR(drop('r', code, chunk.reserves, "reserve"));
    if (chunk.balances.size() + chunk.quotas.size() + chunk.reserves.size() >= chunk_records) {
      RETURN_IF_ERROR(store_chunk());
    }
  }
  writes->PutSource(source);
  RETURN_IF_ERROR(store_chunk());
  return codes;
}

absl::StatusOr<std::string> CatalogueStore::ScanBalances(
    absl::string_view prefix, absl::string_view after_key, size_t max_scanned,
    const std::function<bool(const Balance&)>& fn) const {
  common::QuietRocksPerfCounters();
  const std::string start = absl::StrCat("b", prefix);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  if (after_key.empty()) {
    it->Seek(start);
  } else {
    it->Seek(rocksdb::Slice(after_key.data(), after_key.size()));
    if (it->Valid() && it->key() == rocksdb::Slice(after_key.data(), after_key.size())) it->Next();
  }
  std::string last;
  for (size_t scanned = 0; it->Valid() && it->key().starts_with(start); it->Next()) {
    if (scanned++ == max_scanned) return last;
    ASSIGN_OR_RETURN(auto b, Parse<Balance>(it->value(), "balance", it->key()));
    last = it->key().ToString();
    if (!fn(b)) return last;
  }
  if (!it->status().ok()) return common::FromRocks(it->status(), "scan balances");
  return std::string();
}

}  // namespace stockpile::catalogue
