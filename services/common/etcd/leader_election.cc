#include "services/common/etcd/leader_election.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "services/common/etcd/etcd_log.h"

namespace stockpile::etcd {

LeaderElection::LeaderElection(std::shared_ptr<EtcdClient> client, std::string key,
                               std::string candidate, LeaderElectionOptions options,
                               LeadershipCallback on_change)
    : client_(std::move(client)),
      key_(std::move(key)),
      candidate_(std::move(candidate)),
      options_(options),
      on_change_(std::move(on_change)) {}

LeaderElection::~LeaderElection() { Resign(); }

void LeaderElection::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void LeaderElection::Resign() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  int64_t lease = 0;
  {
    absl::MutexLock lock(&mu_);
    lease = lease_;
    lease_ = 0;
  }
  SetLeader(false);
  // Revoking deletes the key if we held it, which lets a follower win at its next tick.
  if (lease != 0) client_->LeaseRevoke(lease).IgnoreError();
}

bool LeaderElection::IsLeader() const {
  absl::MutexLock lock(&mu_);
  return leader_;
}

int64_t LeaderElection::lease_id() const {
  absl::MutexLock lock(&mu_);
  return lease_;
}

absl::StatusOr<std::string> LeaderElection::CurrentLeader() const {
  auto range = client_->Range(key_);
  if (!range.ok()) return range.status();
  if (range->kvs.empty()) return absl::NotFoundError(absl::StrCat("no leader at ", key_));
  return range->kvs.front().value;
}

void LeaderElection::SetLeader(bool leader) {
  {
    absl::MutexLock lock(&mu_);
    if (leader_ == leader) return;
    leader_ = leader;
  }
  EtcdLog(
      absl::StrCat("election ", key_, ": ", candidate_, leader ? " is leader" : " is follower"));
  if (on_change_) on_change_(leader);
}

bool LeaderElection::SleepUnlessStopped(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopping_), d);
  return !stopping_;
}

// Grants a lease when we have none, otherwise keeps ours alive. False when we hold no live lease.
bool LeaderElection::EnsureLease() {
  const int64_t lease = lease_id();
  if (lease != 0) {
    auto ttl = client_->KeepAliveOnce(lease);
    if (ttl.ok() && *ttl > 0) return true;
    EtcdLog(absl::StrCat("election ", key_, ": lease ", lease,
                         " lost: ", ttl.ok() ? "expired" : ttl.status().ToString()));
    absl::MutexLock lock(&mu_);
    lease_ = 0;
    return false;
  }
  auto granted = client_->LeaseGrant(options_.ttl_seconds);
  if (!granted.ok()) return false;
  absl::MutexLock lock(&mu_);
  lease_ = granted->id;
  return true;
}

// True when, after this call, the key is held under `lease`.
absl::StatusOr<bool> LeaderElection::Campaign(int64_t lease) {
  auto won = client_->PutIfAbsent(key_, candidate_, lease);
  if (!won.ok() || *won) return won;
  auto range = client_->Range(key_);
  if (!range.ok()) return range.status();
  return !range->kvs.empty() && range->kvs.front().lease == lease;
}

void LeaderElection::Tick() {
  if (!EnsureLease()) {
    SetLeader(false);
    return;
  }
  auto holding = Campaign(lease_id());
  SetLeader(holding.ok() && *holding);
}

void LeaderElection::Run() {
  const absl::Duration tick = options_.tick > absl::ZeroDuration()
                                  ? options_.tick
                                  : absl::Seconds(options_.ttl_seconds) / 3;
  do {
    Tick();
  } while (SleepUnlessStopped(tick));
}

}  // namespace stockpile::etcd
