#pragma once

// Keeps this process's instance record in etcd under a lease, from a background thread:
//   <key_prefix><level>/<id>  ->  {"id","level","address","region_prefixes":[..],
//                                  "metrics_address","started_at"}
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

  bool operator==(const InstanceInfo&) const = default;
};

std::string InstanceToJson(const InstanceInfo& info);
// INVALID_ARGUMENT for malformed JSON or missing/mistyped fields.
absl::StatusOr<InstanceInfo> InstanceFromJson(absl::string_view json);

// Live instances of info.level registered under `key_prefix` (other ids than info.id) whose
// region prefixes overlap info's, one starting with the other: a warehouse there would have two
// writers. Each as "<id> at <address> hosts <their prefix>, overlapping <ours>".
absl::StatusOr<std::vector<std::string>> OverlappingInstances(EtcdClient& client,
                                                              const InstanceInfo& info,
                                                              absl::string_view key_prefix);

struct RegistrationOptions {
  std::string key_prefix = kDefaultInstancesPrefix;  // must end with '/'
  int64_t ttl_seconds = 10;
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(5);
};

struct RegistrationState {
  bool registered = false;  // key written under a live lease at the last check
  int64_t lease_id = 0;
  int64_t registrations = 0;  // how many times the key was (re-)put under a new lease
  std::string last_error;     // empty when the last etcd call succeeded
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
