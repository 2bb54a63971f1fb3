#pragma once

// Transfers in RocksDB: one record per transfer, an index by destination region for listing,
// an index of unfinished transfers for a new leader to resume, and the TransferService
// idempotency records. Every Save is one synced WriteBatch: acknowledged means durable.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "stockpile/v1/allocation.pb.h"
#include "stockpile/v1/transfer_service.pb.h"

namespace rocksdb {
class DB;
}

namespace stockpile::catalogue::allocation {

struct RequestRecord {
  std::string request_id;
  std::string fingerprint;  // the request without its request_id, serialized deterministically
  std::string transfer_id;
};

class TransferStore {
 public:
  static absl::StatusOr<std::unique_ptr<TransferStore>> Open(const std::string& path,
                                                             bool sync = true);
  ~TransferStore();

  // Writes the transfer, its indexes and (optionally) a request record in one batch.
  absl::Status Save(const stockpile::v1::Transfer& transfer,
                    const RequestRecord* request = nullptr);
  absl::StatusOr<std::optional<stockpile::v1::Transfer>> Get(absl::string_view id) const;
  absl::StatusOr<std::optional<RequestRecord>> GetRequest(absl::string_view request_id) const;
  // Transfers whose destination region starts with `prefix`, in (region, id) order after
  // `page_token`; fills next_page_token when more may follow.
  absl::StatusOr<stockpile::v1::ListTransfersResponse> List(
      const stockpile::v1::ListTransfersRequest& req) const;
  absl::StatusOr<std::vector<std::string>> UnfinishedIds() const;
  // A new unique transfer id "T{unix seconds}-{sequence}-{10 random hex digits}" (the sequence
  // persisted; the random part tells replicas apart).
  absl::StatusOr<std::string> NewId(int64_t now_micros);

 private:
  TransferStore(std::unique_ptr<rocksdb::DB> db, bool sync);
  std::unique_ptr<rocksdb::DB> db_;
  const bool sync_;
};

// True while the coordinator still has something to do for the transfer.
bool Unfinished(const stockpile::v1::Transfer& t);

}  // namespace stockpile::catalogue::allocation
