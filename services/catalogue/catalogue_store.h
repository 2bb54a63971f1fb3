#pragma once

// The catalogue's RocksDB: the latest record of every warehouse, balance, quota and reserve it
// replicated, and one record per source holding its watermark. Records of one applied batch and
// the source's new watermark go in ONE WriteBatch (synced), so after a crash of either side the
// catalogue resumes from exactly the last applied entry.
//
// Keys (one column family, ordered so a region prefix is a key range):
//   "w" + code              -> source id + '\0' + Warehouse
//   "b" + code + "/" + item -> Balance
//   "q" + code + "/" + item -> Quota
//   "r" + code + "/" + item + "/" + mode -> Reserve
//   "s" + source id         -> ReplicationSource (watermark, last commit time, address, ...)

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "stockpile/v1/catalogue.pb.h"
#include "stockpile/v1/stock.pb.h"
#include "stockpile/v1/warehouse.pb.h"

namespace rocksdb {
class DB;
class WriteBatch;
}  // namespace rocksdb

namespace stockpile::catalogue {

// What one applied WatchChanges batch writes: the latest record per key, plus the source state.
class StoreBatch {
 public:
  StoreBatch();
  ~StoreBatch();
  void PutWarehouse(absl::string_view code, absl::string_view source_id,
                    const stockpile::v1::Warehouse& w);
  void PutBalance(absl::string_view code, const stockpile::v1::Balance& b);
  void PutQuota(absl::string_view code, const stockpile::v1::Quota& q);
  void PutReserve(absl::string_view code, const stockpile::v1::Reserve& r);
  void PutSource(const stockpile::v1::ReplicationSource& source);
  size_t count() const;
  rocksdb::WriteBatch& batch() { return *batch_; }

 private:
  std::unique_ptr<rocksdb::WriteBatch> batch_;
  std::string scratch_;
};

class CatalogueStore {
 public:
  static absl::StatusOr<std::unique_ptr<CatalogueStore>> Open(const std::string& path,
                                                              bool sync_writes);
  ~CatalogueStore();

  absl::Status Write(StoreBatch& batch);

  // Start-up: every stored record, in key order, to rebuild the view. The visitor is called on
  // a thread of its own (one thread, in key order) while the caller's thread reads ahead.
  struct Visitor {
    std::function<void(const std::string& source_id, const stockpile::v1::Warehouse&)> warehouse;
    std::function<void(const stockpile::v1::Balance&)> balance;
    std::function<void(const stockpile::v1::Quota&)> quota;
    std::function<void(const stockpile::v1::Reserve&)> reserve;
    std::function<void(const stockpile::v1::ReplicationSource&)> source;
  };
  absl::Status LoadAll(const Visitor& visitor) const;

  // What one write of DropSourceStock took out.
  struct DroppedStock {
    std::vector<std::string> warehouses;  // codes; those streamed again are written again
    std::vector<stockpile::v1::Balance> balances;
    std::vector<stockpile::v1::Quota> quotas;
    std::vector<stockpile::v1::Reserve> reserves;
  };
  // Deletes the warehouses replicated from `source` (its instance_id) with every balance, quota
  // and reserve of theirs, then writes `source` itself: for a source whose history no longer
  // matches, so its data is streamed again from the start. Writes hold whole warehouses and
  // about `chunk_records` records each, so memory stays bounded for a national village source;
  // `dropped` is handed each write's records once it is stored. The source's record goes in
  // the last write: a crash part way leaves it at its old watermark, and the next start meets
  // the same mismatch and drops the rest. Returns the codes of every dropped warehouse.
  absl::StatusOr<std::vector<std::string>> DropSourceStock(
      const stockpile::v1::ReplicationSource& source, size_t chunk_records,
      const std::function<absl::Status(const DroppedStock&)>& dropped);

  // Balances of warehouses whose code starts with `prefix`, in key order strictly after
  // `after_key` (a key this function returned). `fn` returns false to stop; at most
  // `max_scanned` records are read. Returns the key of the last balance read ("" at the end).
  absl::StatusOr<std::string> ScanBalances(
      absl::string_view prefix, absl::string_view after_key, size_t max_scanned,
      const std::function<bool(const stockpile::v1::Balance&)>& fn) const;

 private:
  CatalogueStore(std::unique_ptr<rocksdb::DB> db, bool sync);
  std::unique_ptr<rocksdb::DB> db_;
  const bool sync_;
};

}  // namespace stockpile::catalogue
