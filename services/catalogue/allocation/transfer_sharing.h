#pragma once

// Transfers shared between catalogue replicas through etcd (docs/allocation.md, "Takeover").
//
// Keys under `prefix` ("/stockpile/v1/transfers/"):
//   {prefix}{id}                    -> the Transfer (states, legs, audit), serialized
//   {prefix}requests/{request_id}   -> a TransferService request record (idempotency)
// The leader publishes each change in one transaction that holds only while the election key
// is still held under its lease with its value (the fence) and the transfer's key is still at
// the revision its local copy came from; a deposed leader's write is refused and it stops
// before calling a level service. Every replica mirrors the prefix into its own TransferStore
// (watch), keeping per transfer the etcd revision of its copy so only newer copies land; a
// replica that becomes leader re-lists the prefix (Import) before it resumes anything.
//
// etcd losing history (restored from a snapshot, or started empty) leaves the replicas' copies
// newer than etcd's, under revisions of a history that is gone: a fenced write comparing them
// would be refused for ever. A replica that sees etcd's revision below the highest it stored,
// or a transfer key gone back or missing under the leader, forgets those revisions; copies are
// then ordered by content (ContentNotOlder) and the leader's next write of a transfer puts its
// own copy back over whatever older one etcd holds.
//
// Retention: etcd's space quota (2 GB by default) is shared with every registration and lease,
// so finished transfers (received and settled, cancelled or failed, nothing owed) and request
// records are put under a lease of the retention period: etcd drops them by itself after it.
// The mirror ignores deletions, so every replica's TransferStore keeps them; a replica set up
// later from an empty disk sees only what etcd still holds.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/catalogue/allocation/transfer_journal.h"
#include "services/catalogue/allocation/transfer_store.h"
#include "services/common/etcd/etcd_client.h"

namespace stockpile::etcd {
class Watcher;
}

namespace stockpile::catalogue::allocation {

// Transfers live next to the instance registrations: "/stockpile/v1/instances/" ->
// "/stockpile/v1/transfers/" (the registration prefix's parent + "transfers/").
std::string TransferPrefixFor(absl::string_view registration_prefix);

// What the leader's writes are fenced on: the election key held under `lease` with `value`.
struct LeaderFence {
  std::string key;
  std::string value;
  int64_t lease = 0;  // 0: not leading now
};

class EtcdTransferSharing final : public TransferJournal {
 public:
  // etcd refuses requests above 1.5 MiB by default; stay well below.
  static constexpr size_t kMaxValueBytes = 1 << 20;

  // `retention`: how long finished transfers and request records stay in etcd (zero: for
  // ever).
  EtcdTransferSharing(std::shared_ptr<etcd::EtcdClient> client, std::string prefix,
                      TransferStore* store, std::function<LeaderFence()> fence,
                      absl::Duration retention = absl::ZeroDuration());
  ~EtcdTransferSharing() override;  // StopMirror()

  absl::StatusOr<int64_t> Publish(const stockpile::v1::Transfer& transfer,
                                  const RequestRecord* request) override;
  // Lists the prefix and saves every copy newer than the local one (a new leader, first).
  absl::Status Import();
  // Follows the prefix on a watcher thread, saving newer copies locally (every replica).
  void StartMirror();
  void StopMirror();
  // Copies saved locally from etcd by Import or the mirror (for tests and logs).
  int64_t mirrored() const;

  std::string TransferKey(absl::string_view id) const;
  std::string RequestKey(absl::string_view request_id) const;

 private:
  absl::Status Apply(const etcd::KeyValue& kv);
  absl::Status Refused(const LeaderFence& fence, absl::string_view id);
  // The mod_revision a write of `t` must find in etcd. Normally the local copy's revision; for a
  // copy without one (its etcd history lost), what etcd holds now, when that is not newer in
  // content (ABORTED, and the local copy refreshed, when it is).
  absl::StatusOr<int64_t> BaseRevision(const stockpile::v1::Transfer& t);
  // etcd at `etcd_revision` while this replica stored copies of later revisions: etcd lost
  // history (restored from a snapshot, or started empty), so the stored revisions are forgotten.
  absl::Status CheckHistory(int64_t etcd_revision);
  // The lease records that may leave etcd are put under (0: keep them). One lease serves
  // a tenth of the retention, so a record stays 90-100 % of it.
  int64_t RetentionLease();

  const std::shared_ptr<etcd::EtcdClient> client_;
  const std::string prefix_;
  TransferStore* const store_;
  const std::function<LeaderFence()> fence_;
  const absl::Duration retention_;
  std::unique_ptr<etcd::Watcher> watcher_;
  mutable absl::Mutex mu_;
  int64_t mirrored_ ABSL_GUARDED_BY(mu_) = 0;
  // Apart from mu_: a lease grant may wait for etcd, and the mirror must not wait for it.
  absl::Mutex lease_mu_;
  int64_t retention_lease_ ABSL_GUARDED_BY(lease_mu_) = 0;
  absl::Time retention_lease_granted_ ABSL_GUARDED_BY(lease_mu_);
};

}  // namespace stockpile::catalogue::allocation
