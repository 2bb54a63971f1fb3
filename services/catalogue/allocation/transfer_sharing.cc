#include "services/catalogue/allocation/transfer_sharing.h"

#include <iostream>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "services/common/etcd/watcher.h"
#include "services/common/status_macros.h"

namespace stockpile::catalogue::allocation {
namespace {

using stockpile::v1::Transfer;

constexpr char kRequests[] = "requests/";

}  // namespace

std::string TransferPrefixFor(absl::string_view registration_prefix) {
  absl::string_view p = registration_prefix;
  absl::ConsumeSuffix(&p, "/");
  const size_t slash = p.rfind('/');
  p = slash == absl::string_view::npos ? absl::string_view() : p.substr(0, slash + 1);
  return absl::StrCat(p.empty() ? "/" : p, "transfers/");
}

EtcdTransferSharing::EtcdTransferSharing(std::shared_ptr<etcd::EtcdClient> client,
                                         std::string prefix, TransferStore* store,
                                         std::function<LeaderFence()> fence,
                                         absl::Duration retention)
    : client_(std::move(client)),
      prefix_(std::move(prefix)),
      store_(store),
      fence_(std::move(fence)),
      retention_(retention) {}

EtcdTransferSharing::~EtcdTransferSharing() { StopMirror(); }

std::string EtcdTransferSharing::TransferKey(absl::string_view id) const {
  return absl::StrCat(prefix_, id);
}

std::string EtcdTransferSharing::RequestKey(absl::string_view request_id) const {
  return absl::StrCat(prefix_, kRequests, request_id);
}

int64_t EtcdTransferSharing::mirrored() const {
  absl::MutexLock lock(&mu_);
  return mirrored_;
}

absl::StatusOr<int64_t> EtcdTransferSharing::Publish(const Transfer& t,
                                                     const RequestRecord* request) {
  const LeaderFence fence = fence_();
  // Not leading (any more): the election lapsed (etcd unreachable) or another replica won it.
  // The step is not done, and a retry of the call reaches whichever replica leads (a follower
  // forwards it), so the caller is told to retry (UNAVAILABLE), as when no leader is elected.
  if (fence.lease == 0) {
    return absl::UnavailableError(
        "this catalogue replica is no longer the transfer leader (it lost its etcd lease); "
        "nothing was written; retry");
  }
  // A request record is only asked for by retries; a finished transfer changes no more.
  const bool finished = Finished(t);
  const int64_t lease = finished || request != nullptr ? RetentionLease() : 0;
  std::vector<etcd::TxnPut> puts = {
      {TransferKey(t.id()), t.SerializeAsString(), finished ? lease : 0}};
  if (request != nullptr) {
    puts.push_back({RequestKey(request->request_id), EncodeRequest(*request), lease});
  }
  size_t bytes = 0;
  for (const auto& put : puts) bytes += put.key.size() + put.value.size();
  if (bytes > kMaxValueBytes) {
    return absl::ResourceExhaustedError(absl::StrCat("transfer ", t.id(), " has grown to ", bytes,
                                                     " bytes, more than etcd takes in one write"));
  }
  ASSIGN_OR_RETURN(int64_t base, BaseRevision(t));
  using Target = etcd::TxnCompare::Target;
  const std::vector<etcd::TxnCompare> fenced = {
      {fence.key, Target::kLease, "", fence.lease},
      {fence.key, Target::kValue, fence.value, 0},
      {TransferKey(t.id()), Target::kModRevision, "", base},
  };
  absl::StatusOr<etcd::TxnResult> result = client_->Txn(fenced, puts);
  if (!result.ok() && lease != 0 && result.status().code() == absl::StatusCode::kNotFound) {
    // etcd no longer knows the lease (restored from a backup, say): the next write gets a new
    // one. Transient for the caller, not a missing transfer.
    absl::MutexLock lock(&lease_mu_);
    if (retention_lease_ == lease) retention_lease_ = 0;
    return absl::UnavailableError(absl::StrCat("transfer ", t.id(),
                                               " not shared: etcd lost its retention lease (",
                                               result.status().message(), "); retry"));
  }
  if (!result.ok()) return result.status();
  if (!result->succeeded) return Refused(fence, t.id());
  return result->revision;
}

int64_t EtcdTransferSharing::RetentionLease() {
  if (retention_ <= absl::ZeroDuration()) return 0;
  absl::MutexLock lock(&lease_mu_);
  const absl::Time now = absl::Now();
  if (retention_lease_ != 0 && now - retention_lease_granted_ < retention_ / 10) {
    return retention_lease_;
  }
  auto lease = client_->LeaseGrant(absl::ToInt64Seconds(retention_));
  if (!lease.ok()) {  // kept for ever rather than not shared: it can still be deleted by hand
    std::cerr << "transfers: no retention lease from etcd (" << lease.status()
              << "); this record stays in etcd\n";
    return 0;
  }
  retention_lease_ = lease->id;
  retention_lease_granted_ = now;
  return retention_lease_;
}

absl::StatusOr<int64_t> EtcdTransferSharing::BaseRevision(const Transfer& t) {
  ASSIGN_OR_RETURN(int64_t stored, store_->Revision(t.id()));
  if (stored != 0) return stored;
  ASSIGN_OR_RETURN(std::optional<Transfer> local, store_->Get(t.id()));
  if (!local.has_value()) return 0;  // a new transfer: its key must not exist yet
  ASSIGN_OR_RETURN(etcd::RangeResult current, client_->Range(TransferKey(t.id())));
  if (current.kvs.empty()) return 0;
  Transfer shared;
  if (shared.ParseFromString(current.kvs.front().value) && !ContentNotOlder(*local, shared)) {
    RETURN_IF_ERROR(Apply(current.kvs.front()));
    return absl::AbortedError(
        absl::StrCat("transfer ", t.id(), " changed on another replica; re-read it and retry"));
  }
  return current.kvs.front().mod_revision;
}

absl::Status EtcdTransferSharing::CheckHistory(int64_t etcd_revision) {
  ASSIGN_OR_RETURN(int64_t stored, store_->MaxRevision());
  if (etcd_revision >= stored) return absl::OkStatus();
  std::cerr << "transfers: etcd is at revision " << etcd_revision << ", behind the " << stored
            << " of copies stored here: it lost history (restored or started empty); the "
               "leader shares its own copies again\n";
  return store_->ForgetRevisions();
}

// Tells a deposed leader (UNAVAILABLE: a retry reaches the new leader) from a stale local copy
// (ABORTED, refreshed). A key that is missing or went back under a leader whose copy is newer is
// etcd's lost history: the revision is forgotten and the retry writes the copy again.
absl::Status EtcdTransferSharing::Refused(const LeaderFence& fence, absl::string_view id) {
  ASSIGN_OR_RETURN(etcd::RangeResult leader, client_->Range(fence.key));
  const bool ours = !leader.kvs.empty() && leader.kvs.front().lease == fence.lease &&
                    leader.kvs.front().value == fence.value;
  if (!ours) {
    std::cerr << "transfers: write of " << id << " refused: no longer the leader\n";
    return absl::UnavailableError(absl::StrCat("transfer ", id,
                                               " not written: this catalogue replica is no longer "
                                               "the transfer leader; retry"));
  }
  ASSIGN_OR_RETURN(etcd::RangeResult current, client_->Range(TransferKey(id)));
  RETURN_IF_ERROR(CheckHistory(current.revision));
  ASSIGN_OR_RETURN(int64_t stored, store_->Revision(id));
  if (current.kvs.empty() || current.kvs.front().mod_revision < stored) {
    std::cerr << "transfers: etcd lost its copy of " << id << "; the leader shares its own\n";
    RETURN_IF_ERROR(store_->ForgetRevision(id));
  }
  for (const etcd::KeyValue& kv : current.kvs) RETURN_IF_ERROR(Apply(kv));
  return absl::AbortedError(
      absl::StrCat("transfer ", id, " changed on another replica; re-read it and retry"));
}

absl::Status EtcdTransferSharing::Apply(const etcd::KeyValue& kv) {
  absl::string_view name = kv.key;
  if (!absl::ConsumePrefix(&name, prefix_)) return absl::OkStatus();
  if (absl::ConsumePrefix(&name, kRequests)) {
    ASSIGN_OR_RETURN(RequestRecord record, DecodeRequest(name, kv.value));
    RETURN_IF_ERROR(store_->SaveRequest(record));
  } else {
    Transfer t;
    if (!t.ParseFromString(kv.value) || t.id() != name) {
      return absl::DataLossError(absl::StrCat("etcd key ", kv.key, " holds no transfer ", name));
    }
    ASSIGN_OR_RETURN(bool newer, store_->SaveIfNewer(t, nullptr, kv.mod_revision));
    if (!newer) return absl::OkStatus();
  }
  absl::MutexLock lock(&mu_);
  ++mirrored_;
  return absl::OkStatus();
}

absl::Status EtcdTransferSharing::Import() {
  ASSIGN_OR_RETURN(etcd::RangeResult all, client_->RangePrefix(prefix_));
  RETURN_IF_ERROR(CheckHistory(all.revision));
  absl::Status first;
  for (const etcd::KeyValue& kv : all.kvs) first.Update(Apply(kv));
  return first;
}

void EtcdTransferSharing::StartMirror() {
  if (watcher_ != nullptr) return;
  auto apply_all = [this](const auto& kvs) {
    for (const etcd::KeyValue& kv : kvs) {
      absl::Status s = Apply(kv);
      if (!s.ok()) std::cerr << "transfers: mirror of " << kv.key << ": " << s << "\n";
    }
  };
  etcd::WatcherOptions options;
  options.prefix = prefix_;
  watcher_ = std::make_unique<etcd::Watcher>(
      client_, options,
      [this, apply_all](const std::vector<etcd::KeyValue>& current, int64_t revision) {
        absl::Status history = CheckHistory(revision);
        if (!history.ok()) std::cerr << "transfers: mirror: " << history << "\n";
        apply_all(current);
      },
      [apply_all](const std::vector<etcd::WatchEvent>& events) {
        std::vector<etcd::KeyValue> puts;
        for (const auto& e : events) {
          if (e.type == etcd::WatchEvent::Type::kPut) puts.push_back(e.kv);
        }
        apply_all(puts);
      });
  watcher_->Start();
}

void EtcdTransferSharing::StopMirror() {
  if (watcher_ != nullptr) watcher_->Stop();
  watcher_.reset();
}

}  // namespace stockpile::catalogue::allocation
