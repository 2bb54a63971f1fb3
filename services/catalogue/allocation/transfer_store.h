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
#include "absl/synchronization/mutex.h"
#include "stockpile/v1/allocation.pb.h"
#include "stockpile/v1/transfer_service.pb.h"

namespace rocksdb {
class DB;
}

namespace stockpile::catalogue::allocation {

struct RequestRecord {
  std::string request_id;
  // The request's full type name, "\n", then the request without its request_id serialized
  // deterministically (records stored before the type was part of it: the latter alone).
  std::string fingerprint;
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
  // The same for a copy shared through etcd: written (with `revision`, the etcd mod_revision of
  // that copy) only when `revision` is newer than the one stored for the transfer, so a late
  // watch event never overwrites a newer state. A copy stored with revision 0 (never shared, or
  // its revision forgotten below) is replaced only by one no older in content
  // (ContentNotOlder). False when it was not newer.
  absl::StatusOr<bool> SaveIfNewer(const stockpile::v1::Transfer& transfer,
                                   const RequestRecord* request, int64_t revision);
  // The etcd revision of the stored copy; 0 when it never came from (or went to) etcd, or was
  // forgotten.
  absl::StatusOr<int64_t> Revision(absl::string_view id) const;
  // The highest revision stored (0 when none): an etcd whose current revision is below it has
  // lost history (restored from a snapshot, or started empty).
  absl::StatusOr<int64_t> MaxRevision() const;
  // Forgets the revision of one transfer, or of all: they came from an etcd history that is
  // gone, so they can neither fence a write nor order a copy of the new history.
  absl::Status ForgetRevision(absl::string_view id);
  absl::Status ForgetRevisions();
  // A request record on its own (mirrored from etcd; records never change once written).
  absl::Status SaveRequest(const RequestRecord& request);
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
  absl::Status Write(const stockpile::v1::Transfer& t, const RequestRecord* request,
                     int64_t revision);
  absl::Mutex& StripeFor(absl::string_view id);
  std::unique_ptr<rocksdb::DB> db_;
  const bool sync_;
  // SaveIfNewer checks "newer than stored" and writes under the transfer's stripe, so the
  // mirror and the leader never interleave on one transfer; different transfers write (and
  // sync) in parallel.
  absl::Mutex stripes_[16];
};

// A request record as stored (here and in etcd): fingerprint \0 transfer id.
std::string EncodeRequest(const RequestRecord& request);
absl::StatusOr<RequestRecord> DecodeRequest(absl::string_view request_id, absl::string_view raw);

// Whether copy `a` of a transfer is at least as far along as copy `b`, by content alone: audit
// steps are only ever added, and update_time is set at every save. For copies whose etcd
// revisions cannot be compared (another etcd history).
bool ContentNotOlder(const stockpile::v1::Transfer& a, const stockpile::v1::Transfer& b);

// True while the coordinator still has something to do for the transfer.
bool Unfinished(const stockpile::v1::Transfer& t);
// Ended (received, cancelled or failed) with nothing owed: nothing changes it again.
bool Finished(const stockpile::v1::Transfer& t);

}  // namespace stockpile::catalogue::allocation
