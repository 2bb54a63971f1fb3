#pragma once

// Keeps this process's instance record in etcd under a lease, from a background thread:
//   <key_prefix><level>/<id>  ->  {"id","level","address","region_prefixes":[..],
//                                  "metrics_address","started_at","database_id"}
// The lease is kept alive every TTL/3. When etcd is unreachable the thread retries with backoff;
// when etcd answers again it grants a NEW lease and re-puts the key, so registrations come back
// by themselves. Stop() revokes the lease (the key disappears at once); if the process dies the
// lease expires after TTL and the key vanishes. Start()/Stop() never wait on etcd beyond one
// call timeout, and nothing here is on a caller's write path.

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/etcd/etcd_client.h"

namespace stockpile::etcd {

inline constexpr char kDefaultInstancesPrefix[] = "/stockpile/v1/instances/";

struct InstanceInfo {
  std::string id;
  std::string level;    // province | city | county | township | village | catalogue ...
  std::string address;  // HOST:PORT of the gRPC server
  std::vector<std::string> region_prefixes;
  std::string metrics_address;
  std::string started_at;  // RFC 3339 UTC; filled with "now" by Registration when empty
  // The identity of the database the instance writes (level instances; empty elsewhere and in
  // records of releases before it). Tells a restart of the same instance, whose previous
  // registration may outlive it by a lease TTL, from a second process started with its id.
  std::string database_id;

  bool operator==(const InstanceInfo&) const = default;
};

std::string InstanceToJson(const InstanceInfo& info);
// INVALID_ARGUMENT for malformed JSON or missing/mistyped fields.
absl::StatusOr<InstanceInfo> InstanceFromJson(absl::string_view json);

// A start-up claim on region prefixes. Before a level instance listens, it puts its planned
// record (no address yet) under `<key_prefix><level>/claim-<lease>` with a lease of `ttl_seconds`,
// and only then asks which live instances overlap it. Of two overlapping instances starting at
// the same moment, each sees the other's claim, and the younger claim (higher etcd revision)
// yields: exactly one of them serves. Readers of registrations skip claims (no address).
struct Claim {
  std::string key;
  int64_t revision = 0;  // etcd revision of the put: orders claims
  int64_t lease = 0;     // revoke it when the instance gives up; else it runs out by itself
};
absl::StatusOr<Claim> PutClaim(EtcdClient& client, const InstanceInfo& info,
                               absl::string_view key_prefix, int64_t ttl_seconds);

// Live instances of info.level under `key_prefix` that would make a second writer for
// info's warehouses: another id whose region prefixes overlap info's (one starting with the
// other), or info.id itself registered from another database (two processes started with one
// id; a record of info.id from info's own database is its predecessor's, gone with its lease).
// Counted: registrations, and claims other than `own` that are older than it (all claims when
// `own` is null). Each as "<id> at <address> hosts <their prefix>, overlapping <ours>" or
// "<id> at <address> runs with this instance id on another database (<database_id>)"
// ("<id> (starting) ..." for a claim).
absl::StatusOr<std::vector<std::string>> OverlappingInstances(EtcdClient& client,
                                                              const InstanceInfo& info,
                                                              absl::string_view key_prefix,
                                                              const Claim* own = nullptr);
// The same for a running instance: registrations only (a starting instance's claim yields to
// a registration, so it is no second writer).
absl::StatusOr<std::vector<std::string>> SecondWriters(EtcdClient& client, const InstanceInfo& info,
                                                       absl::string_view key_prefix);

// Registrations (and claims) of info.id by an instance of another level, or another kind,
// under `key_prefix`: the catalogue knows a source by its id alone, so an id names one
// instance across every level. Each as "<id> at <address> is a <level> instance".
absl::StatusOr<std::vector<std::string>> SameIdElsewhere(EtcdClient& client,
                                                         const InstanceInfo& info,
                                                         absl::string_view key_prefix);

struct RegistrationOptions {
  std::string key_prefix = kDefaultInstancesPrefix;  // must end with '/'
  int64_t ttl_seconds = 10;
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(5);
  // Level instances: after each registration and keepalive, ask which other live registrations
  // would write some of the same warehouses (SecondWriters). The start-up check refuses them,
  // so normally none; one appears when this instance lost etcd for longer than its TTL (a
  // partition, a long pause) and another instance took its regions meanwhile. Neither ledger
  // can tell which is right, and warehouse staff must keep working, so it is reported
  // (state().second_writers, the log), not resolved here.
  bool watch_second_writers = false;
};

struct RegistrationState {
  bool registered = false;  // key written under a live lease at the last check
  int64_t lease_id = 0;
  int64_t registrations = 0;                // how many times the key was (re-)put under a new lease
  std::string last_error;                   // empty when the last etcd call succeeded
  std::vector<std::string> second_writers;  // see RegistrationOptions::watch_second_writers
};

class Registration {
 public:
  Registration(std::shared_ptr<EtcdClient> client, InstanceInfo info,
               RegistrationOptions options = {});
  ~Registration();  // Stop()
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;

  // Starts the background thread; returns at once (the first registration happens there).
  void Start();
  // Stops the thread and revokes the lease so the key disappears now.
  void Stop();
  // Stops the thread WITHOUT revoking: the key lives until the lease expires, as when the
  // process dies. For tests and for a crash-like shutdown.
  void Abandon();

  const std::string& key() const { return key_; }
  const std::string& value() const { return value_; }
  RegistrationState state() const;

 private:
  void Run();
  // Grants a lease and puts the key; on failure records the error and returns false.
  bool Register();
  // One keepalive; false when the lease is lost or etcd did not answer.
  bool KeepAlive();
  void RecordError(const absl::Status& status, absl::string_view what);
  void CheckSecondWriters();
  bool SleepUnlessStopped(absl::Duration d);
  void StopThread();

  const std::shared_ptr<EtcdClient> client_;
  const RegistrationOptions options_;
  InstanceInfo info_;
  std::string key_;
  std::string value_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  RegistrationState state_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace stockpile::etcd
