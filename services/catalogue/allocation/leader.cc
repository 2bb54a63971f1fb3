#include "services/catalogue/allocation/leader.h"

#include <iostream>

#include "services/common/etcd/leader_election.h"

namespace stockpile::catalogue::allocation {

ResumeLoop::ResumeLoop(TransferCoordinator* coordinator, absl::Duration interval)
    : coordinator_(coordinator), interval_(interval), thread_([this] { Run(); }) {}

ResumeLoop::~ResumeLoop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void ResumeLoop::SetLeader(bool leader) {
  absl::MutexLock lock(&mu_);
  leader_ = leader;
  if (leader) kick_ = true;  // resume everything at once on gaining leadership
}

int64_t ResumeLoop::rounds() const {
  absl::MutexLock lock(&mu_);
  return rounds_;
}

void ResumeLoop::Run() {
  absl::Time next = absl::InfiniteFuture();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto wake = [this] { return stopping_ || kick_; };
      mu_.AwaitWithDeadline(absl::Condition(&wake), next);
      if (stopping_) return;
      const bool due = kick_ || absl::Now() >= next;
      kick_ = false;
      if (!leader_ || !due) {
        next = leader_ ? absl::Now() + interval_ : absl::InfiniteFuture();
        continue;
      }
    }
    absl::Status s = coordinator_->ResumeAll();
    if (!s.ok()) std::cerr << "transfers: resume round: " << s << "\n";
    absl::MutexLock lock(&mu_);
    ++rounds_;
    next = absl::Now() + interval_;
  }
}

TransferLeader::TransferLeader(std::shared_ptr<etcd::EtcdClient> client, std::string candidate,
                               TransferCoordinator* coordinator, TransferLeaderOptions options)
    : loop_(coordinator, options.resume_interval) {
  etcd::LeaderElectionOptions election;
  election.ttl_seconds = options.lease_ttl_seconds;
  election_ = std::make_unique<etcd::LeaderElection>(
      std::move(client), kCatalogueLeaderKey, std::move(candidate), election, [this](bool leader) {
        std::cerr << "transfers: " << (leader ? "became" : "no longer") << " leader\n";
        loop_.SetLeader(leader);
      });
}

TransferLeader::~TransferLeader() { Resign(); }

void TransferLeader::Start() { election_->Start(); }

void TransferLeader::Resign() {
  election_->Resign();
  loop_.SetLeader(false);
}

bool TransferLeader::IsLeader() const { return election_->IsLeader(); }

std::string TransferLeader::Leader() const {
  auto leader = election_->CurrentLeader();
  return leader.ok() ? *leader : std::string();
}

}  // namespace stockpile::catalogue::allocation
