#include "services/level/config.h"

#include <CLI/CLI.hpp>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/reference_data.h"
#include "services/common/status_macros.h"
#include "services/common/validation.h"

namespace stockpile::level {

absl::Status LevelConfig::Validate() const {
  if (level == stockpile::v1::LEVEL_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        "--level is required: province, city, county, township or village");
  }
  if (regions.empty()) {
    return absl::InvalidArgumentError("--regions needs at least one region-code prefix");
  }
  const int max_len = common::RegionCodeLength(level);
  for (const auto& r : regions) {
    const bool digits = !r.empty() && r.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || static_cast<int>(r.size()) > max_len) {
      return absl::InvalidArgumentError(
          absl::StrCat("--regions: \"", r, "\" is not a region-code prefix of at most ", max_len,
                       " digits (the ", common::LevelName(level), " code length)"));
    }
  }
  if (db.empty()) return absl::InvalidArgumentError("--db (database directory) is required");
  if (listen.empty()) return absl::InvalidArgumentError("--listen is required");
  if (etcd_ttl_seconds < 2 || etcd_ttl_seconds > 600) {
    return absl::InvalidArgumentError("--etcd-ttl must be between 2 and 600 seconds");
  }
  if (hold_sweep_interval_ms < 10 || hold_sweep_interval_ms > 600000) {
    return absl::InvalidArgumentError("--hold-sweep-interval-ms must be between 10 and 600000");
  }
  if (max_group_commands < 1 || max_group_commands > 100000) {
    return absl::InvalidArgumentError("--max-group-commands must be between 1 and 100000");
  }
  if (min_free_mb < 0 || min_free_mb > 1'000'000) {
    return absl::InvalidArgumentError("--min-free-mb must be between 0 and 1000000");
  }
  if (insecure) {
    RETURN_IF_ERROR(common::CheckInsecureAlone({{"--tls-cert", tls_cert},
                                                {"--tls-key", tls_key},
                                                {"--tls-ca", tls_ca},
                                                {"--auth-key-file", auth_key_file}}));
  }
  if (!insecure && (tls_cert.empty() || tls_key.empty())) {
    return absl::InvalidArgumentError(
        "TLS is required: give --tls-cert and --tls-key (and --tls-ca for mutual TLS), or "
        "--insecure for local development");
  }
  if (!insecure && auth_key_file.empty()) {
    return absl::InvalidArgumentError(
        "--auth-key-file (the token signing key) is required unless --insecure is given");
  }
  if (metrics_refresh_seconds < 1 || metrics_refresh_seconds > 3600) {
    return absl::InvalidArgumentError("--metrics-refresh-seconds must be between 1 and 3600");
  }
  return absl::OkStatus();
}

absl::StatusOr<LevelConfig> ParseLevelConfig(int argc, char** argv) {
  LevelConfig c;
  c.reference_data = common::ReferenceData::DefaultDir();
  std::string level, regions, etcd;
  CLI::App app{"stockpile-level: the stock ledger of one administrative level"};
  app.set_config("--config", "", "INI/TOML file with the same keys as the flags");
  app.add_option("--level", level, "province|city|county|township|village")->required();
  app.add_option("--regions", regions, "comma-separated region-code prefixes hosted here")
      ->required();
  app.add_option("--db", c.db, "RocksDB directory (created if missing)")->required();
  app.add_option("--backup-dir", c.backup_dir,
                 "where CreateBackup (stockctl backup) writes checkpoints of --db; best on "
                 "another volume");
  app.add_option("--restore-from", c.restore_from,
                 "before serving, put a copy of this backup in place of --db (the database "
                 "there is moved aside, never deleted); refused while --db is in use, for a "
                 "backup that does not open cleanly, or one of another level, other regions or "
                 "another instance id; again with the same backup: nothing, while --db has "
                 "taken no change since");
  app.add_flag("--restore-any-instance", c.restore_any_instance,
               "let --restore-from take a backup of another level's instance, other regions or "
               "another instance id (its level must still match the database's)");
  app.add_option("--backup-keep", c.backup_keep,
                 "after each backup, delete all but the newest N under --backup-dir (0: keep "
                 "every one)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--reference-data", c.reference_data,
                 "folder with regions/ and items/ (default ../shared/data)");
  app.add_option("--listen", c.listen, "gRPC address HOST:PORT (port 0: any free port)");
  app.add_option("--metrics-listen", c.metrics_listen, "Prometheus /metrics HOST:PORT");
  app.add_option("--health-listen", c.health_listen,
                 "plaintext HOST:PORT serving only gRPC health checks (for probes)");
  app.add_option("--port-file", c.port_file, "write the bound gRPC port to this file");
  app.add_option("--instance-id", c.instance_id, "name in etcd (default level-host-port)");
  app.add_option("--advertise", c.advertise, "address registered in etcd (default --listen)");
  app.add_option("--etcd-endpoints", etcd, "comma-separated etcd endpoints; empty: no etcd");
  app.add_option("--etcd-prefix", c.etcd_prefix, "etcd key prefix of registrations");
  app.add_option("--etcd-ttl", c.etcd_ttl_seconds, "registration lease TTL in seconds");
  app.add_option("--etcd-tls-ca", c.etcd_tls_ca,
                 "PEM CA of etcd's certificate; set: TLS to etcd (default: plaintext)");
  app.add_option("--etcd-tls-cert", c.etcd_tls_cert,
                 "PEM client cert for etcd --client-cert-auth (with --etcd-tls-ca)");
  app.add_option("--etcd-tls-key", c.etcd_tls_key, "PEM private key of --etcd-tls-cert");
  app.add_option("--hold-sweep-interval-ms", c.hold_sweep_interval_ms,
                 "how often expired holds are released");
  app.add_option("--max-group-commands", c.max_group_commands,
                 "commands committed together in one synced write at most");
  app.add_option("--min-free-mb", c.min_free_mb,
                 "refuse mutations (RESOURCE_EXHAUSTED) while the --db volume has less free, in "
                 "MiB, rather than let RocksDB fill it; 0: never (default 64)");
  app.add_option("--metrics-refresh-seconds", c.metrics_refresh_seconds,
                 "how often scanned metrics (shortages, expiring lots) are recomputed");
  app.add_flag("--insecure", c.insecure,
               "plaintext gRPC and no token checks (local development; also STOCKPILE_INSECURE=1)");
  app.add_option("--tls-cert", c.tls_cert, "server certificate chain (PEM)");
  app.add_option("--tls-key", c.tls_key, "server private key (PEM)");
  app.add_option("--tls-ca", c.tls_ca, "CA bundle; when given, clients need a certificate from it");
  app.add_option("--auth-key-file", c.auth_key_file, "HMAC-SHA256 key that signs bearer tokens");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return absl::CancelledError(app.help());
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  auto parsed = common::ParseLevel(level);
  if (!parsed.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--level: \"", level, "\" is not one of province, city, county, township, village"));
  }
  c.level = *parsed;
  c.regions = absl::StrSplit(regions, ',', absl::SkipWhitespace());
  c.etcd_endpoints = absl::StrSplit(etcd, ',', absl::SkipWhitespace());
  if (const char* env = std::getenv("STOCKPILE_INSECURE");
      env != nullptr && std::string(env) == "1") {
    c.insecure = true;
  }
  absl::Status s = c.Validate();
  if (!s.ok()) return s;
  return c;
}

}  // namespace stockpile::level
