#pragma once

// Leader election on one etcd key: every candidate holds a lease and tries to create the key
// (Txn: create_revision == 0) with its own value under that lease. The key's holder is the
// leader. Each tick (TTL/3) a candidate keeps its lease alive and checks the key; a leader that
// cannot reach etcd, loses its lease or finds the key gone or held by another lease stops being
// leader at once (conservative), and followers re-campaign as soon as the key is free.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/etcd/etcd_client.h"

namespace stockpile::etcd {

struct LeaderElectionOptions {
  int64_t ttl_seconds = 10;
  // How often to keep alive and re-check; zero means TTL/3.
  absl::Duration tick = absl::ZeroDuration();
};

class LeaderElection {
 public:
  // Called whenever leadership changes: on the election thread, or in Resign() (to false).
  using LeadershipCallback = std::function<void(bool is_leader)>;

  LeaderElection(std::shared_ptr<EtcdClient> client, std::string key, std::string candidate,
                 LeaderElectionOptions options = {}, LeadershipCallback on_change = nullptr);
  ~LeaderElection();  // Resign()
  LeaderElection(const LeaderElection&) = delete;
  LeaderElection& operator=(const LeaderElection&) = delete;

  void Start();
  // Stops campaigning and revokes the lease, so another candidate can take over immediately.
  void Resign();
  bool IsLeader() const;
  // The value (candidate name) of the current leader; NOT_FOUND when there is none.
  absl::StatusOr<std::string> CurrentLeader() const;
  int64_t lease_id() const;
  // The election key and this candidate's value: with lease_id(), what a leader's writes can be
  // fenced on (Txn: key's lease == lease_id() and value == candidate()).
  const std::string& key() const { return key_; }
  const std::string& candidate() const { return candidate_; }

 private:
  void Run();
  void Tick();
  bool EnsureLease();
  absl::StatusOr<bool> Campaign(int64_t lease);
  void SetLeader(bool leader);
  bool SleepUnlessStopped(absl::Duration d);

  const std::shared_ptr<EtcdClient> client_;
  const std::string key_;
  const std::string candidate_;
  const LeaderElectionOptions options_;
  const LeadershipCallback on_change_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool leader_ ABSL_GUARDED_BY(mu_) = false;
  int64_t lease_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace stockpile::etcd
