#pragma once

// A small etcd v3 client of our own over raw gRPC (see proto/etcd/etcd_rpc.proto).
// Every call has a deadline (EtcdClientOptions::call_timeout); nothing blocks forever, and etcd
// being down shows up as UNAVAILABLE or DEADLINE_EXCEEDED, never as a hang. Thread-safe.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace stockpile::etcd {

struct KeyValue {
  std::string key;
  std::string value;
  int64_t lease = 0;
  int64_t mod_revision = 0;
  int64_t create_revision = 0;
  int64_t version = 0;
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  int64_t revision = 0;  // store revision the read was served at
};

struct Lease {
  int64_t id = 0;
  int64_t ttl_seconds = 0;  // as granted by etcd (minimum 2 s)
};

// One condition of a general transaction (Txn below); always "equal".
struct TxnCompare {
  enum class Target { kValue, kLease, kModRevision, kCreateRevision };
  std::string key;
  Target target = Target::kValue;
  std::string value;   // for kValue
  int64_t number = 0;  // for the others; a missing key compares as 0 (and never equals a value)
};

struct TxnPut {
  std::string key;
  std::string value;
  int64_t lease = 0;
};

struct TxnResult {
  bool succeeded = false;
  int64_t revision = 0;  // store revision after the transaction (the writes' revision)
};

struct EtcdClientOptions {
  // "127.0.0.1:2379,127.0.0.1:22379" (an "http://" or "https://" prefix is accepted and ignored;
  // whether TLS is used depends only on tls_ca_file).
  std::string endpoints;
  absl::Duration call_timeout = absl::Seconds(5);
  // TLS to etcd: PEM files. With tls_ca_file set every channel uses TLS and verifies etcd's
  // certificate against it; empty means plaintext. tls_cert_file + tls_key_file (both or neither,
  // only with tls_ca_file) are our client certificate, for etcd's --client-cert-auth.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
};

// The end of the key range that holds every key starting with `prefix` ("/a/" -> "/a0").
std::string PrefixRangeEnd(absl::string_view prefix);

class EtcdClient {
 public:
  // Channels are created lazily by gRPC, so this succeeds while etcd is down; only a malformed
  // endpoint list or TLS file setup is an error (INVALID_ARGUMENT; an unreadable TLS file is
  // NOT_FOUND).
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Create(const EtcdClientOptions& options);
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Create(absl::string_view endpoints);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // ---- KV ----
  absl::StatusOr<RangeResult> Range(absl::string_view key);
  absl::StatusOr<RangeResult> RangePrefix(absl::string_view prefix);
  // Returns the revision of the write.
  absl::StatusOr<int64_t> Put(absl::string_view key, absl::string_view value, int64_t lease = 0);
  // Return how many keys were deleted.
  absl::StatusOr<int64_t> DeleteRange(absl::string_view key);
  absl::StatusOr<int64_t> DeletePrefix(absl::string_view prefix);

  // ---- transactions (true = the condition held and the write happened) ----
  // Puts only when `key` does not exist (create_revision == 0).
  absl::StatusOr<bool> PutIfAbsent(absl::string_view key, absl::string_view value,
                                   int64_t lease = 0);
  // Puts `new_value` only when the current value equals `expected_value`.
  absl::StatusOr<bool> CompareAndSwap(absl::string_view key, absl::string_view expected_value,
                                      absl::string_view new_value, int64_t lease = 0);
  absl::StatusOr<bool> DeleteIfValue(absl::string_view key, absl::string_view expected_value);
  // Deletes `key` only when it is attached to `lease`.
  absl::StatusOr<bool> DeleteIfLease(absl::string_view key, int64_t lease);
  // Applies every put in one revision only when every compare holds.
  absl::StatusOr<TxnResult> Txn(const std::vector<TxnCompare>& compares,
                                const std::vector<TxnPut>& puts);

  // ---- leases ----
  absl::StatusOr<Lease> LeaseGrant(int64_t ttl_seconds);
  // NOT_FOUND when the lease is unknown (already expired or revoked).
  absl::Status LeaseRevoke(int64_t lease_id);
  // One keepalive round trip; returns the remaining TTL in seconds. 0 means the lease has
  // expired or never existed: that is not an RPC error, the caller must check for it.
  absl::StatusOr<int64_t> KeepAliveOnce(int64_t lease_id);

  const std::vector<std::string>& endpoints() const;
  absl::Duration call_timeout() const;

  // Internal: the gRPC plumbing, shared with Watcher (etcd_channels.h).
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  explicit EtcdClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace stockpile::etcd
