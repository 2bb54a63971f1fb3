#include "services/catalogue/catalogue_store.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
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
absl::StatusOr<Message> Parse(const rocksdb::Slice& value, absl::string_view what,
                              const rocksdb::Slice& key) {
  Message m;
  if (!m.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(
        absl::StrCat("stored ", what, " '", key.ToString(), "' is unreadable"));
  }
  return m;
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

CatalogueStore::~CatalogueStore() = default;

absl::StatusOr<std::unique_ptr<CatalogueStore>> CatalogueStore::Open(const std::string& path,
                                                                     bool sync_writes) {
  rocksdb::Options options;
  options.create_if_missing = true;
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
  if (!s.ok()) return common::FromRocks(s, absl::StrCat("open catalogue db ", path));
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

absl::Status CatalogueStore::LoadAll(const Visitor& v) const {
  common::QuietRocksPerfCounters();
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const rocksdb::Slice key = it->key();
    const rocksdb::Slice value = it->value();
    switch (key.size() > 0 ? key[0] : 0) {
      case 'w': {
        const std::string raw = value.ToString();
        const size_t nul = raw.find('\0');
        if (nul == std::string::npos) return absl::DataLossError("stored warehouse lacks source");
        ASSIGN_OR_RETURN(
            auto w, Parse<Warehouse>(rocksdb::Slice(raw.data() + nul + 1, raw.size() - nul - 1),
                                     "warehouse", key));
        if (v.warehouse) v.warehouse(raw.substr(0, nul), w);
        break;
      }
      case 'b': {
        ASSIGN_OR_RETURN(auto b, Parse<Balance>(value, "balance", key));
        if (v.balance) v.balance(b);
        break;
      }
      case 'q': {
        ASSIGN_OR_RETURN(auto q, Parse<Quota>(value, "quota", key));
        if (v.quota) v.quota(q);
        break;
      }
      case 'r': {
        ASSIGN_OR_RETURN(auto r, Parse<Reserve>(value, "reserve", key));
        if (v.reserve) v.reserve(r);
        break;
      }
      case 's': {
        ASSIGN_OR_RETURN(auto s, Parse<ReplicationSource>(value, "source", key));
        if (v.source) v.source(s);
        break;
      }
      default:
        break;
    }
  }
  if (!it->status().ok()) return common::FromRocks(it->status(), "load catalogue");
  return absl::OkStatus();
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
