#pragma once

// Only the elected catalogue replica drives transfers. TransferLeader campaigns on
// /stockpile/v1/catalogue/leader (etcd lease + transaction, see LeaderElection); when it becomes
// leader it resumes every unfinished transfer from the store, then keeps resuming them every
// resume_interval (waiting holds, owed releases and confirmations, expired holds). Reads never
// need leadership.

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/catalogue/allocation/saga.h"

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
  // The leader's candidate name (its advertised gRPC address); empty when unknown.
  virtual std::string Leader() const = 0;
};

// Embedded single-process mode: no etcd, this process is the leader.
class AlwaysLeader final : public Leadership {
 public:
  bool IsLeader() const override { return true; }
  std::string Leader() const override { return "self"; }
};

// Runs ResumeAll() on leadership gain and every `interval` while leader, on its own thread.
class ResumeLoop {
 public:
  ResumeLoop(TransferCoordinator* coordinator, absl::Duration interval);
  ~ResumeLoop();  // stops and joins
  void SetLeader(bool leader);
  int64_t rounds() const;

 private:
  void Run();
  TransferCoordinator* const coordinator_;
  const absl::Duration interval_;
  mutable absl::Mutex mu_;
  bool leader_ ABSL_GUARDED_BY(mu_) = false;
  bool kick_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t rounds_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

struct TransferLeaderOptions {
  int64_t lease_ttl_seconds = 10;
  absl::Duration resume_interval = absl::Seconds(30);
};

class TransferLeader final : public Leadership {
 public:
  // `candidate`: this replica's advertised TransferService address (what followers name).
  TransferLeader(std::shared_ptr<etcd::EtcdClient> client, std::string candidate,
                 TransferCoordinator* coordinator, TransferLeaderOptions options = {});
  ~TransferLeader() override;  // resigns

  void Start();
  void Resign();
  bool IsLeader() const override;
  std::string Leader() const override;

 private:
  ResumeLoop loop_;
  std::unique_ptr<etcd::LeaderElection> election_;
};

}  // namespace stockpile::catalogue::allocation
