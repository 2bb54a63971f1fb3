#include "services/catalogue/config.h"

#include <CLI/CLI.hpp>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/reference_data.h"
#include "services/common/status_macros.h"
#include "services/common/validation.h"

namespace stockpile::catalogue {

absl::Status CatalogueConfig::Validate() const {
  if (db.empty()) return absl::InvalidArgumentError("--db (database directory) is required");
  if (listen.empty()) return absl::InvalidArgumentError("--listen is required");
  if (etcd_ttl_seconds < 2 || etcd_ttl_seconds > 600) {
    return absl::InvalidArgumentError("--etcd-ttl must be between 2 and 600 seconds");
  }
  if (!etcd_prefix.empty() && !absl::EndsWith(etcd_prefix, "/")) {
    return absl::InvalidArgumentError(
        absl::StrCat("--etcd-prefix must end with '/'; got '", etcd_prefix, "'"));
  }
  if (max_batch < 1 || max_batch > 100000) {
    return absl::InvalidArgumentError("--max-batch must be between 1 and 100000");
  }
  if (hold_ttl_seconds < 60 || hold_ttl_seconds > 30 * 86400) {
    return absl::InvalidArgumentError("--hold-ttl must be between 60 seconds and 30 days");
  }
  if (transfer_retry_seconds < 1 || transfer_retry_seconds > 3600) {
    return absl::InvalidArgumentError("--transfer-retry must be between 1 and 3600 seconds");
  }
  if (transfer_replan_rounds < 0 || transfer_replan_rounds > 10) {
    return absl::InvalidArgumentError("--transfer-replan-rounds must be between 0 and 10");
  }
  if (transfer_etcd_retention_days < 0 || transfer_etcd_retention_days > 3650) {
    return absl::InvalidArgumentError("--transfer-etcd-retention must be 0 to 3650 days");
  }
  if (transfer_resume_seconds < 1 || transfer_resume_seconds > 3600) {
    return absl::InvalidArgumentError("--transfer-resume must be between 1 and 3600 seconds");
  }
  if (unreachable_after_seconds < 1 || unreachable_after_seconds > 86400) {
    return absl::InvalidArgumentError("--unreachable-after must be between 1 and 86400 seconds");
  }
  if (insecure) {
    RETURN_IF_ERROR(common::CheckInsecureAlone({{"--tls-cert", tls_cert},
                                                {"--tls-key", tls_key},
                                                {"--tls-ca", tls_ca},
                                                {"--auth-key-file", auth_key_file},
                                                {"--service-token-file", service_token_file}}));
  }
  if (!insecure && (tls_cert.empty() || tls_key.empty() || tls_ca.empty())) {
    return absl::InvalidArgumentError(
        "TLS is required: give --tls-cert, --tls-key and --tls-ca (the CA of the level services "
        "and of client certificates), or --insecure for local development");
  }
  if (!insecure && auth_key_file.empty()) {
    return absl::InvalidArgumentError(
        "--auth-key-file (the token signing key) is required unless --insecure is given");
  }
  if (!insecure && service_token_file.empty()) {
    return absl::InvalidArgumentError(
        "--service-token-file (a `service` token for the level services) is required unless "
        "--insecure is given");
  }
  if (!etcd_endpoints.empty() && !static_sources.empty()) {
    return absl::InvalidArgumentError("give either --etcd-endpoints or --source, not both");
  }
  return absl::OkStatus();
}

absl::StatusOr<SourceSpec> ParseStaticSource(const std::string& text) {
  const size_t eq = text.find('=');
  const size_t at = text.find('@');
  if (eq == std::string::npos || at == std::string::npos || at < eq || eq == 0 ||
      at + 1 == text.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--source must look like id=level@host:port; got '", text, "'"));
  }
  auto level = common::ParseLevel(text.substr(eq + 1, at - eq - 1));
  if (!level || *level == stockpile::v1::LEVEL_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat("--source '", text, "': unknown level"));
  }
  return SourceSpec{text.substr(0, eq), *level, text.substr(at + 1), {}};
}

absl::StatusOr<CatalogueConfig> ParseCatalogueConfig(int argc, char** argv) {
  CatalogueConfig c;
  c.reference_data = common::ReferenceData::DefaultDir();
  std::string etcd;
  std::vector<std::string> sources;
  bool no_sync = false;
  CLI::App app{"stockpile-catalogue: the national view replicated from every level service"};
  app.set_config("--config", "", "INI/TOML file with the same keys as the flags");
  app.add_option("--db", c.db, "RocksDB directory (created if missing)")->required();
  app.add_option("--reference-data", c.reference_data,
                 "folder with regions/ and items/ (default ../shared/data)");
  app.add_option("--listen", c.listen, "gRPC address HOST:PORT (port 0: any free port)");
  app.add_option("--metrics-listen", c.metrics_listen, "Prometheus /metrics HOST:PORT");
  app.add_option("--port-file", c.port_file, "write the bound gRPC port to this file");
  app.add_option("--instance-id", c.instance_id, "name in etcd (default catalogue-host-port)");
  app.add_option("--advertise", c.advertise, "address registered in etcd (default --listen)");
  app.add_option("--etcd-endpoints", etcd, "comma-separated etcd endpoints; empty: --source");
  app.add_option("--etcd-prefix", c.etcd_prefix, "etcd key prefix of registrations");
  app.add_option("--etcd-ttl", c.etcd_ttl_seconds, "own registration lease TTL in seconds");
  app.add_option("--etcd-tls-ca", c.etcd_tls_ca,
                 "PEM CA of etcd's certificate; set: TLS to etcd (default: plaintext)");
  app.add_option("--etcd-tls-cert", c.etcd_tls_cert,
                 "PEM client cert for etcd --client-cert-auth (with --etcd-tls-ca)");
  app.add_option("--etcd-tls-key", c.etcd_tls_key, "PEM private key of --etcd-tls-cert");
  app.add_option("--source", sources, "without etcd: a level instance id=level@host:port");
  app.add_option("--max-batch", c.max_batch, "change entries asked for per stream message");
  app.add_option("--hold-ttl", c.hold_ttl_seconds,
                 "transfer holds expire after this many seconds (default 72 h)");
  app.add_flag("--require-second-approver", c.require_second_approver,
               "a transfer must be approved by someone other than its creator");
  app.add_option("--transfer-retry", c.transfer_retry_seconds,
                 "seconds one transfer step retries an unreachable level service before waiting");
  app.add_option("--transfer-resume", c.transfer_resume_seconds,
                 "seconds between the leader's rounds over unfinished transfers");
  app.add_option("--transfer-replan-rounds", c.transfer_replan_rounds,
                 "times in a row a refused hold's quantity is planned again (without the sources "
                 "refused so far) before the transfer fails; 0: never");
  app.add_option("--unreachable-after", c.unreachable_after_seconds,
                 "plans leave out the warehouses of a level instance that has not answered for "
                 "this many seconds, or is no longer registered");
  app.add_option("--transfer-etcd-retention", c.transfer_etcd_retention_days,
                 "days finished transfers stay in etcd (every replica's store keeps them; "
                 "0: for ever)");
  app.add_flag("--no-sync", no_sync, "do not fsync applied batches (benchmarks only)");
  app.add_flag("--insecure", c.insecure,
               "plaintext gRPC and no token checks (local development; also STOCKPILE_INSECURE=1)");
  app.add_option("--tls-cert", c.tls_cert,
                 "certificate chain (PEM): served to clients, presented to level services");
  app.add_option("--tls-key", c.tls_key, "private key (PEM) of --tls-cert");
  app.add_option("--tls-ca", c.tls_ca,
                 "CA bundle (PEM) of the level services and of client certificates");
  app.add_flag("--tls-require-client-cert", c.tls_require_client_cert,
               "refuse clients without a certificate from --tls-ca");
  app.add_option("--auth-key-file", c.auth_key_file, "HMAC-SHA256 key that signs bearer tokens");
  app.add_option("--health-listen", c.health_listen,
                 "plaintext HOST:PORT serving only gRPC health checks (for probes)");
  app.add_option("--service-token-file", c.service_token_file,
                 "file with the `service` bearer token sent to level services (re-read on change)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return absl::CancelledError(app.help());
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  c.sync_writes = !no_sync;
  if (const char* env = std::getenv("STOCKPILE_INSECURE");
      env != nullptr && std::string(env) == "1") {
    c.insecure = true;
  }
  c.etcd_endpoints = absl::StrSplit(etcd, ',', absl::SkipWhitespace());
  for (const auto& s : sources) {
    auto spec = ParseStaticSource(s);
    if (!spec.ok()) return spec.status();
    c.static_sources.push_back(*std::move(spec));
  }
  if (absl::Status s = c.Validate(); !s.ok()) return s;
  return c;
}

}  // namespace stockpile::catalogue
