#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "stockpile/v1/warehouse.pb.h"

namespace stockpile::level {

// Start-up settings of stockpile-level. Parse() reads flags (and an optional --config INI file
// with the same keys); Validate() refuses anything unknown or out of range before start-up.
struct LevelConfig {
  stockpile::v1::Level level = stockpile::v1::LEVEL_UNSPECIFIED;
  std::vector<std::string> regions;
  std::string db;
  std::string backup_dir;             // where CreateBackup writes checkpoints; empty: no backups
  std::string restore_from;           // a backup to put in place of --db before opening it
  bool restore_any_instance = false;  // --restore-from may name another instance's backup
  int backup_keep = 0;                // the newest this many are kept; 0: every one
  std::string reference_data;
  std::string listen = "127.0.0.1:7500";
  std::string metrics_listen;  // empty: no metrics endpoint
  std::string health_listen;   // empty: health checks on --listen only
  std::string port_file;
  std::string instance_id;
  std::string advertise;  // address registered in etcd; default: the listen address
  std::vector<std::string> etcd_endpoints;
  std::string etcd_prefix = "/stockpile/v1/instances";
  int etcd_ttl_seconds = 10;
  // TLS to etcd (PEM files): CA that signed etcd's certificate (empty: plaintext), and our
  // client certificate + key for etcd's --client-cert-auth.
  std::string etcd_tls_ca;
  std::string etcd_tls_cert;
  std::string etcd_tls_key;
  int hold_sweep_interval_ms = 1000;
  int max_group_commands = 1024;
  // Mutations are refused while the --db volume has less free (MiB); 0: never.
  int min_free_mb = 64;
  int metrics_refresh_seconds = 30;
  // Transport security and tokens. Without --insecure, TLS files and the token key are required.
  bool insecure = false;  // plaintext, no token checks: local development only
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;  // with it, clients must present a certificate from this CA
  std::string auth_key_file;

  absl::Status Validate() const;
};

// Parses argv; returns the usage text as a kCancelled status for --help.
absl::StatusOr<LevelConfig> ParseLevelConfig(int argc, char** argv);

}  // namespace stockpile::level
