#include "services/common/etcd/registration.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/common/etcd/etcd_log.h"
#include "services/common/status_macros.h"

namespace stockpile::etcd {
namespace {

using nlohmann::json;

// Reads a string field without letting nlohmann throw.
bool ReadString(const json& object, const char* name, std::string* out) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return false;
  *out = it->get<std::string>();
  return true;
}

}  // namespace

absl::StatusOr<Claim> PutClaim(EtcdClient& client, const InstanceInfo& info,
                               absl::string_view key_prefix, int64_t ttl_seconds) {
  ASSIGN_OR_RETURN(Lease lease, client.LeaseGrant(ttl_seconds));
  InstanceInfo planned = info;
  planned.address.clear();  // what marks a claim
  Claim claim;
  claim.lease = lease.id;
  // The lease id is unique in the cluster, so the key is new and its revision is the put's.
  claim.key = absl::StrCat(key_prefix, info.level, "/claim-", absl::Hex(lease.id));
  ASSIGN_OR_RETURN(claim.revision, client.Put(claim.key, InstanceToJson(planned), lease.id));
  return claim;
}

namespace {

absl::StatusOr<std::vector<std::string>> Overlaps(EtcdClient& client, const InstanceInfo& info,
                                                  absl::string_view key_prefix, const Claim* own,
                                                  bool count_claims) {
  ASSIGN_OR_RETURN(RangeResult registered,
                   client.RangePrefix(absl::StrCat(key_prefix, info.level, "/")));
  std::vector<std::string> overlaps;
  for (const KeyValue& kv : registered.kvs) {
    if (own != nullptr && kv.key == own->key) continue;
    auto other = InstanceFromJson(kv.value);
    if (!other.ok() || other->level != info.level) continue;
    const bool claim = other->address.empty();
    if (claim && !count_claims) continue;
    if (claim && own != nullptr && kv.create_revision > own->revision) continue;  // it yields
    const std::string who =
        claim ? absl::StrCat(other->id.empty() ? "an instance" : other->id, " (starting)")
              : absl::StrCat(other->id, " at ", other->address);
    if (!info.id.empty() && other->id == info.id) {
      // From this instance's own database: an earlier run of it (a restart within the lease
      // TTL), since only one process at a time holds a database. Records without a database
      // (older releases) are taken as such too.
      if (other->database_id.empty() || info.database_id.empty() ||
          other->database_id == info.database_id) {
        continue;
      }
      overlaps.push_back(absl::StrCat(who, " runs with this instance id on another database (",
                                      other->database_id, ")"));
      continue;
    }
    for (const std::string& theirs : other->region_prefixes) {
      for (const std::string& ours : info.region_prefixes) {
        if (absl::StartsWith(theirs, ours) || absl::StartsWith(ours, theirs)) {
          overlaps.push_back(absl::StrCat(who, " hosts ", theirs, ", overlapping ", ours));
        }
      }
    }
  }
  return overlaps;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> OverlappingInstances(EtcdClient& client,
                                                              const InstanceInfo& info,
                                                              absl::string_view key_prefix,
                                                              const Claim* own) {
  return Overlaps(client, info, key_prefix, own, /*count_claims=*/true);
}

absl::StatusOr<std::vector<std::string>> SecondWriters(EtcdClient& client, const InstanceInfo& info,
                                                       absl::string_view key_prefix) {
  return Overlaps(client, info, key_prefix, nullptr, /*count_claims=*/false);
}

absl::StatusOr<std::vector<std::string>> SameIdElsewhere(EtcdClient& client,
                                                         const InstanceInfo& info,
                                                         absl::string_view key_prefix) {
  std::vector<std::string> clashes;
  if (info.id.empty()) return clashes;
  ASSIGN_OR_RETURN(RangeResult registered, client.RangePrefix(key_prefix));
  const std::string own_level = absl::StrCat(key_prefix, info.level, "/");
  for (const KeyValue& kv : registered.kvs) {
    if (absl::StartsWith(kv.key, own_level)) continue;  // OverlappingInstances' business
    auto other = InstanceFromJson(kv.value);
    if (!other.ok() || other->id != info.id) continue;
    clashes.push_back(absl::StrCat(other->id, other->address.empty() ? " (starting)" : " at ",
                                   other->address, " is a ", other->level, " instance"));
  }
  return clashes;
}

std::string InstanceToJson(const InstanceInfo& info) {
  json value = {{"id", info.id},
                {"level", info.level},
                {"address", info.address},
                {"region_prefixes", info.region_prefixes},
                {"metrics_address", info.metrics_address},
                {"started_at", info.started_at}};
  if (!info.database_id.empty()) value["database_id"] = info.database_id;
  return value.dump();
}

absl::StatusOr<InstanceInfo> InstanceFromJson(absl::string_view text) {
  json value = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() || !value.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("instance record is not a JSON object: ", text));
  }
  InstanceInfo info;
  if (!ReadString(value, "id", &info.id) || !ReadString(value, "level", &info.level) ||
      !ReadString(value, "address", &info.address)) {
    return absl::InvalidArgumentError(
        absl::StrCat("instance record lacks string id/level/address: ", text));
  }
  ReadString(value, "metrics_address", &info.metrics_address);
  ReadString(value, "started_at", &info.started_at);
  ReadString(value, "database_id", &info.database_id);
  auto prefixes = value.find("region_prefixes");
  if (prefixes != value.end()) {
    if (!prefixes->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat("region_prefixes is not an array: ", text));
    }
    for (const json& prefix : *prefixes) {
      if (!prefix.is_string()) {
        return absl::InvalidArgumentError(absl::StrCat("region prefix is not a string: ", text));
      }
      info.region_prefixes.push_back(prefix.get<std::string>());
    }
  }
  return info;
}

Registration::Registration(std::shared_ptr<EtcdClient> client, InstanceInfo info,
                           RegistrationOptions options)
    : client_(std::move(client)), options_(std::move(options)), info_(std::move(info)) {
  if (info_.started_at.empty()) {
    info_.started_at = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
  }
  key_ = absl::StrCat(options_.key_prefix, info_.level, "/", info_.id);
  value_ = InstanceToJson(info_);
}

Registration::~Registration() { Stop(); }

void Registration::Start() {
  if (thread_.joinable()) return;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { Run(); });
}

void Registration::StopThread() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Registration::Stop() {
  StopThread();
  int64_t lease = 0;
  {
    absl::MutexLock lock(&mu_);
    lease = state_.lease_id;
    state_.lease_id = 0;
    state_.registered = false;
  }
  if (lease == 0) return;
  absl::Status revoked = client_->LeaseRevoke(lease);
  if (!revoked.ok() && !absl::IsNotFound(revoked)) {
    EtcdLog(absl::StrCat("registration ", key_,
                         ": revoke failed (key expires after TTL): ", revoked.ToString()));
  }
}

void Registration::Abandon() {
  StopThread();
  // Forget the lease so that destruction does not revoke it: the key must expire on its own.
  absl::MutexLock lock(&mu_);
  state_.lease_id = 0;
  state_.registered = false;
}

RegistrationState Registration::state() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

bool Registration::SleepUnlessStopped(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopping_), d);
  return !stopping_;
}

void Registration::RecordError(const absl::Status& status, absl::string_view what) {
  std::string error = absl::StrCat(what, ": ", status.ToString());
  bool changed = false;
  {
    absl::MutexLock lock(&mu_);
    state_.registered = false;
    changed = state_.last_error != error;
    state_.last_error = error;
  }
  // Log transitions only: a long etcd outage must not flood the log.
  if (changed) EtcdLog(absl::StrCat("registration ", key_, ": ", error));
}

bool Registration::Register() {
  auto lease = client_->LeaseGrant(options_.ttl_seconds);
  if (!lease.ok()) {
    RecordError(lease.status(), "lease grant failed");
    return false;
  }
  auto put = client_->Put(key_, value_, lease->id);
  if (!put.ok()) {
    RecordError(put.status(), "put failed");
    client_->LeaseRevoke(lease->id).IgnoreError();  // best effort; it expires anyway
    return false;
  }
  int64_t old_lease = 0;
  {
    absl::MutexLock lock(&mu_);
    old_lease = state_.lease_id;
    state_.lease_id = lease->id;
    state_.registered = true;
    state_.last_error.clear();
    ++state_.registrations;
  }
  EtcdLog(absl::StrCat("registered ", key_, " under lease ", lease->id, " (TTL ",
                       lease->ttl_seconds, " s)"));
  // The key now lives on the new lease; the old one holds nothing.
  if (old_lease != 0) client_->LeaseRevoke(old_lease).IgnoreError();
  return true;
}

bool Registration::KeepAlive() {
  int64_t lease = 0;
  {
    absl::MutexLock lock(&mu_);
    lease = state_.lease_id;
  }
  auto ttl = client_->KeepAliveOnce(lease);
  if (!ttl.ok()) {
    RecordError(ttl.status(), "keepalive failed");
    return false;
  }
  if (*ttl <= 0) {
    RecordError(absl::NotFoundError(absl::StrCat("lease ", lease, " expired")), "keepalive");
    return false;
  }
  absl::MutexLock lock(&mu_);
  state_.registered = true;
  state_.last_error.clear();
  return true;
}

void Registration::CheckSecondWriters() {
  auto found = SecondWriters(*client_, info_, options_.key_prefix);
  if (!found.ok()) return;  // asked again at the next keepalive
  absl::MutexLock lock(&mu_);
  if (*found == state_.second_writers) return;
  if (found->empty()) {
    EtcdLog(absl::StrCat(key_, ": no other live instance writes its warehouses any more"));
  } else {
    EtcdLog(absl::StrCat(key_, ": SECOND WRITER: ", absl::StrJoin(*found, "; "),
                         ". These warehouses now have two ledgers: stop one instance and "
                         "reconcile the movements it took"));
  }
  state_.second_writers = std::move(*found);
}

void Registration::Run() {
  const absl::Duration interval = absl::Seconds(options_.ttl_seconds) / 3;
  absl::Duration backoff = options_.initial_backoff;
  bool have_lease = false;
  while (true) {
    // After any failure start over with a new lease: the old one may have expired meanwhile.
    have_lease = have_lease ? KeepAlive() : Register();
    if (have_lease && options_.watch_second_writers) CheckSecondWriters();
    const absl::Duration wait = have_lease ? interval : backoff;
    backoff = have_lease ? options_.initial_backoff : std::min(backoff * 2, options_.max_backoff);
    if (!SleepUnlessStopped(wait)) return;
  }
}

}  // namespace stockpile::etcd
