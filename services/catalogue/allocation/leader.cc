#include "services/catalogue/allocation/leader.h"

#include <algorithm>
#include <iostream>

#include "services/common/etcd/leader_election.h"

namespace stockpile::catalogue::allocation {

ResumeLoop::ResumeLoop(TransferCoordinator* coordinator, absl::Duration interval,
                       std::function<absl::Status()> on_gain)
    : coordinator_(coordinator),
      interval_(interval),
      on_gain_(std::move(on_gain)),
      thread_([this] { Run(); }) {}

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
  synced_ = false;           // a new term (or none): re-list before resuming anything
  if (leader) kick_ = true;  // resume everything at once on gaining leadership
}

int64_t ResumeLoop::rounds() const {
  absl::MutexLock lock(&mu_);
  return rounds_;
}

bool ResumeLoop::synced() const {
  absl::MutexLock lock(&mu_);
  return synced_;
}

// Runs on_gain for the current term; true when the term may resume transfers.
bool ResumeLoop::Sync() {
  absl::Status s = on_gain_ ? on_gain_() : absl::OkStatus();
  if (!s.ok()) std::cerr << "transfers: taking over: " << s << "\n";
  absl::MutexLock lock(&mu_);
  // A kick means the term ended and another began meanwhile: that one re-lists again.
  if (s.ok() && leader_ && !kick_) synced_ = true;
  return synced_;
}

void ResumeLoop::Run() {
  absl::Time next = absl::InfiniteFuture();
  while (true) {
    bool sync = false;
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
      sync = !synced_;
    }
    if (sync && !Sync()) {
      next = absl::Now() + std::min(interval_, absl::Seconds(1));
      continue;
    }
    absl::Status s = coordinator_->ResumeAll();
    if (!s.ok()) std::cerr << "transfers: resume round: " << s << "\n";
    absl::MutexLock lock(&mu_);
    ++rounds_;
    next = absl::Now() + interval_;
  }
}

namespace {

std::unique_ptr<EtcdTransferSharing> MakeSharing(std::shared_ptr<etcd::EtcdClient> client,
                                                 const TransferLeaderOptions& options,
                                                 TransferStore* store,
                                                 std::function<LeaderFence()> fence) {
  if (store == nullptr) return nullptr;
  return std::make_unique<EtcdTransferSharing>(std::move(client), options.shared_prefix, store,
                                               std::move(fence), options.shared_retention);
}

}  // namespace

TransferLeader::TransferLeader(std::shared_ptr<etcd::EtcdClient> client, std::string candidate,
                               TransferCoordinator* coordinator, TransferStore* store,
                               TransferLeaderOptions options)
    : sharing_(MakeSharing(client, options, store, [this] { return Fence(); })),
      attachment_(coordinator, sharing_.get()),
      loop_(coordinator, options.resume_interval,
            [this]() -> absl::Status { return sharing_ ? sharing_->Import() : absl::OkStatus(); }) {
  etcd::LeaderElectionOptions election;
  election.ttl_seconds = options.lease_ttl_seconds;
  election_ = std::make_unique<etcd::LeaderElection>(
      std::move(client), kCatalogueLeaderKey, std::move(candidate), election, [this](bool leader) {
        std::cerr << "transfers: " << (leader ? "became" : "no longer") << " leader\n";
        loop_.SetLeader(leader);
      });
}

TransferLeader::JournalAttachment::JournalAttachment(TransferCoordinator* coordinator,
                                                     TransferJournal* journal)
    : coordinator_(coordinator) {
  if (journal != nullptr) coordinator_->SetJournal(journal);
}

TransferLeader::JournalAttachment::~JournalAttachment() { coordinator_->SetJournal(nullptr); }

TransferLeader::~TransferLeader() {
  Resign();
  if (sharing_) sharing_->StopMirror();
}

LeaderFence TransferLeader::Fence() const {
  if (!election_->IsLeader()) return LeaderFence{};
  return LeaderFence{election_->key(), election_->candidate(), election_->lease_id()};
}

void TransferLeader::Start() {
  if (sharing_) sharing_->StartMirror();
  election_->Start();
}

void TransferLeader::Resign() {
  election_->Resign();
  loop_.SetLeader(false);
}

bool TransferLeader::IsLeader() const { return election_->IsLeader() && loop_.synced(); }

absl::StatusOr<std::string> TransferLeader::Leader() const { return election_->CurrentLeader(); }

}  // namespace stockpile::catalogue::allocation
