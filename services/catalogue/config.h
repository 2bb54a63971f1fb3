#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/catalogue/replication_source.h"

namespace stockpile::catalogue {

// Start-up settings of stockpile-catalogue; Validate() refuses bad values before start-up.
struct CatalogueConfig {
  std::string db;
  std::string reference_data;
  std::string listen = "127.0.0.1:7600";
  std::string metrics_listen;  // empty: no metrics endpoint
  std::string port_file;
  std::string instance_id;  // default catalogue-host-port
  std::string advertise;    // address registered in etcd; default --listen
  std::vector<std::string> etcd_endpoints;
  std::string etcd_prefix = "/stockpile/v1/instances/";
  int etcd_ttl_seconds = 10;
  // TLS to etcd (PEM files): CA that signed etcd's certificate (empty: plaintext), and our
  // client certificate + key for etcd's --client-cert-auth.
  std::string etcd_tls_ca;
  std::string etcd_tls_cert;
  std::string etcd_tls_key;
  // Without etcd: fixed sources "id=level@host:port" (region prefixes are not needed).
  std::vector<SourceSpec> static_sources;
  int max_batch = 1024;
  bool sync_writes = true;
  // Transfers (docs/allocation.md): hold TTL (the approval-to-ship window), how long one drive
  // retries an unreachable source before the transfer waits, how often the leader resumes
  // unfinished transfers.
  int64_t hold_ttl_seconds = 72 * 3600;
  bool require_second_approver = false;
  int transfer_retry_seconds = 20;
  int transfer_resume_seconds = 30;
  // Times in a row a refused hold's quantity is planned again before the transfer fails.
  int transfer_replan_rounds = 3;
  // Plans leave out the warehouses of a level instance silent this long (or unregistered).
  int unreachable_after_seconds = 10;
  // Days finished transfers and request records stay in etcd (0: for ever).
  int transfer_etcd_retention_days = 30;
  // Transport security and tokens (docs/security.md). Without --insecure, TLS files, the token
  // key and the service token are required. The certificate and key serve the listener and are
  // presented to level services (mutual TLS); --tls-ca verifies level services and, for the
  // listener, clients that present a certificate.
  bool insecure = false;  // plaintext, no token checks: local development only
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
  bool tls_require_client_cert = false;  // listener: every client needs a certificate
  std::string auth_key_file;             // HMAC key that signs the bearer tokens it checks
  std::string service_token_file;        // `service` token sent to level services
  // Plaintext listener serving only grpc.health.v1 (Kubernetes gRPC probes cannot speak TLS);
  // empty: none. Health carries no data and no stock-changing capability.
  std::string health_listen;

  absl::Status Validate() const;
};

// "county-1=county@127.0.0.1:7501" -> SourceSpec.
absl::StatusOr<SourceSpec> ParseStaticSource(const std::string& text);

// Parses argv; returns the usage text as a kCancelled status for --help.
absl::StatusOr<CatalogueConfig> ParseCatalogueConfig(int argc, char** argv);

}  // namespace stockpile::catalogue
