#pragma once

// Only the elected catalogue replica drives transfers. TransferLeader campaigns on
// /stockpile/v1/catalogue/leader (etcd lease + transaction, see LeaderElection). Transfers are
// shared through etcd (EtcdTransferSharing): every replica mirrors them into its store, so reads
// work anywhere; a replica that becomes leader first re-lists them from etcd, then resumes every
// unfinished one, then keeps resuming them every resume_interval (waiting holds, owed releases
// and confirmations, expired holds). It answers as leader only once that re-list is done.

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/catalogue/allocation/saga.h"
#include "services/catalogue/allocation/transfer_sharing.h"

namespace stockpile::etcd {
class EtcdClient;
class LeaderElection;
}  // namespace stockpile::etcd

namespace stockpile::catalogue::allocation {

inline constexpr char kCatalogueLeaderKey[] = "/stockpile/v1/catalogue/leader";

// Who may drive transfers, as the service asks it.
class Leadership {
 public:
  virtual ~Leadership() = default;
  virtual bool IsLeader() const = 0;
  // The leader's candidate name (its advertised gRPC address). NOT_FOUND: no replica leads
  // now (an election is under way); another error: it cannot be told (etcd does not answer).
  virtual absl::StatusOr<std::string> Leader() const = 0;
};

// Embedded single-process mode: no etcd, this process is the leader.
class AlwaysLeader final : public Leadership {
 public:
  bool IsLeader() const override { return true; }
  absl::StatusOr<std::string> Leader() const override { return std::string("self"); }
};

// Runs ResumeAll() on leadership gain and every `interval` while leader, on its own thread.
class ResumeLoop {
 public:
  // `on_gain` (optional) runs once per leadership term before anything is resumed (a new
  // leader's re-list of the shared transfers); while it fails it is retried every second and
  // nothing is resumed.
  ResumeLoop(TransferCoordinator* coordinator, absl::Duration interval,
             std::function<absl::Status()> on_gain = nullptr);
  ~ResumeLoop();  // stops and joins
  void SetLeader(bool leader);
  int64_t rounds() const;
  // True once on_gain has succeeded in the current leadership term.
  bool synced() const;

 private:
  void Run();
  bool Sync();
  TransferCoordinator* const coordinator_;
  const absl::Duration interval_;
  const std::function<absl::Status()> on_gain_;
  mutable absl::Mutex mu_;
  bool leader_ ABSL_GUARDED_BY(mu_) = false;
  bool synced_ ABSL_GUARDED_BY(mu_) = false;
  bool kick_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t rounds_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

struct TransferLeaderOptions {
  int64_t lease_ttl_seconds = 10;
  absl::Duration resume_interval = absl::Seconds(30);
  // Where transfers are shared between replicas (TransferPrefixFor(--etcd-prefix)).
  std::string shared_prefix = "/stockpile/v1/transfers/";
  // How long finished transfers and request records stay in etcd (zero: for ever); every
  // replica's own store keeps them (see transfer_sharing.h).
  absl::Duration shared_retention = absl::Hours(30 * 24);
};

class TransferLeader final : public Leadership {
 public:
  // `candidate`: this replica's advertised TransferService address (what followers name).
  // `store`: this replica's transfer store, mirrored from etcd; nullptr: transfers are not
  // shared (each replica drives only what is in its own store).
  TransferLeader(std::shared_ptr<etcd::EtcdClient> client, std::string candidate,
                 TransferCoordinator* coordinator, TransferStore* store,
                 TransferLeaderOptions options = {});
  ~TransferLeader() override;  // resigns

  // Starts mirroring the shared transfers, then campaigning.
  void Start();
  void Resign();
  // Leading, and the shared transfers have been re-listed in this term.
  bool IsLeader() const override;
  absl::StatusOr<std::string> Leader() const override;
  EtcdTransferSharing* sharing() { return sharing_.get(); }

 private:
  LeaderFence Fence() const;

  // Points the coordinator's writes at the journal for as long as it lives (declared between
  // the journal and the loop: detached after the loop has stopped, before the journal goes).
  class JournalAttachment {
   public:
    JournalAttachment(TransferCoordinator* coordinator, TransferJournal* journal);
    ~JournalAttachment();

   private:
    TransferCoordinator* const coordinator_;
  };

  std::unique_ptr<EtcdTransferSharing> sharing_;
  JournalAttachment attachment_;
  ResumeLoop loop_;
  std::unique_ptr<etcd::LeaderElection> election_;
};

}  // namespace stockpile::catalogue::allocation
