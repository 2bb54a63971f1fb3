// stockpile-level: wiring only. flags -> reference data -> ledger core -> metrics -> gRPC server
// -> etcd registration -> wait for a signal -> drain.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "services/common/auth/authorizer.h"
#include "services/common/auth/interceptor.h"
#include "services/common/auth/rules.h"
#include "services/common/auth/tls.h"
#include "services/common/auth/token.h"
#include "services/common/etcd/registration.h"
#include "services/common/health_listener.h"
#include "services/common/metrics/grpc_server_metrics.h"
#include "services/common/metrics/metrics_server.h"
#include "services/common/metrics/scrape_collector.h"
#include "services/common/server_process.h"
#include "services/common/validation.h"
#include "services/level/backup.h"
#include "services/level/config.h"
#include "services/level/level_core.h"
#include "services/level/level_metrics.h"
#include "services/level/level_service.h"

#ifndef STOCKPILE_VERSION
#define STOCKPILE_VERSION "dev"
#endif
#ifndef STOCKPILE_COMMIT
#define STOCKPILE_COMMIT "unknown"
#endif

namespace {

using stockpile::level::LevelConfig;

int Fail(absl::string_view what, const absl::Status& s) {
  std::cerr << "stockpile-level: " << what << ": " << s.message() << std::endl;
  return 2;
}

// Exit code of a start-up that found --db damaged: unlike 2 (a bad flag, a busy lock, etcd),
// restarting will not help, and serving would answer from a ledger missing acknowledged changes.
constexpr int kExitDatabaseDamaged = 3;

int FailDamaged(const LevelConfig& c, const absl::Status& s) {
  std::cerr << "stockpile-level: cannot open the ledger: " << s.message()
            << ". Refusing to start: serving this database could drop acknowledged movements. "
               "Restore "
            << c.db
            << " from its latest backup (--restore-from, see docs/deploy.md, \"Backups and "
               "restore\"), or, if --db names the wrong directory, correct it."
            << std::endl;
  return kExitDatabaseDamaged;
}

std::string DefaultInstanceId(const LevelConfig& c, int port) {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  return absl::StrCat(stockpile::common::LevelName(c.level), "-", host, "-", port);
}

// The name in etcd: --instance-id, or one derived from the bound port.
std::string InstanceId(const LevelConfig& c, int port) {
  return c.instance_id.empty() ? DefaultInstanceId(c, port) : c.instance_id;
}

sigset_t BlockStopSignals() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  return stop_signals;
}

// --restore-from: the backup in place of --db before the ledger opens it.
absl::Status RestoreFromBackup(const stockpile::level::LevelConfig& c) {
  const stockpile::level::RestoreTarget target{c.db,
                                               std::string(stockpile::common::LevelName(c.level)),
                                               c.regions, c.instance_id, c.restore_any_instance};
  auto restored = stockpile::level::RestoreBackup(
      c.restore_from, target, stockpile::common::SystemClock::Get()->NowMicros());
  if (!restored.ok()) return restored.status();
  for (const auto& warning : restored->warnings) {
    std::cerr << "stockpile-level: warning: " << warning << std::endl;
  }
  const std::string what = absl::StrCat(restored->backup.path(), " (changes up to sequence ",
                                        restored->backup.sequence(), ")");
  if (restored->already && restored->changes_since > 0) {
    std::cerr << "stockpile-level: warning: " << c.db << " was restored from " << what
              << " and has committed " << restored->changes_since
              << " changes since; they are kept and served, not restored over. Take "
                 "--restore-from off the command line; to go back to the backup all the same, "
                 "stop the level and move "
              << c.db << " aside first" << std::endl;
  } else if (restored->already) {
    std::cerr << "stockpile-level: " << c.db << " was restored from " << what
              << " and has taken no change since; nothing to do (take --restore-from off the "
                 "command line)"
              << std::endl;
  } else {
    std::cerr << "stockpile-level: restored " << c.db << " from " << what << "; "
              << (restored->replaced.empty()
                      ? std::string("there was no database before")
                      : "the database it replaced is at " + restored->replaced)
              << std::endl;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<stockpile::metrics::MetricsServer>> StartMetrics(
    const LevelConfig& c) {
  if (c.metrics_listen.empty()) return std::unique_ptr<stockpile::metrics::MetricsServer>();
  stockpile::metrics::ProcessInfo info{
      "stockpile-level",
      STOCKPILE_VERSION,
      STOCKPILE_COMMIT,
      {{"level", std::string(stockpile::common::LevelName(c.level))}}};
  return stockpile::metrics::MetricsServer::Start(c.metrics_listen, info);
}

// Registers in etcd in the background; stock keeps moving whatever etcd does.
// The etcd client, checked at start (unreadable TLS files or half a certificate pair stop the
// process); etcd itself being down does not: registration retries in the background.
absl::StatusOr<std::shared_ptr<stockpile::etcd::EtcdClient>> EtcdClientFor(const LevelConfig& c) {
  if (c.etcd_endpoints.empty()) return nullptr;
  stockpile::etcd::EtcdClientOptions etcd_options;
  etcd_options.endpoints = absl::StrJoin(c.etcd_endpoints, ",");
  etcd_options.tls_ca_file = c.etcd_tls_ca;
  etcd_options.tls_cert_file = c.etcd_tls_cert;
  etcd_options.tls_key_file = c.etcd_tls_key;
  auto client = stockpile::etcd::EtcdClient::Create(etcd_options);
  if (!client.ok()) return client.status();
  return std::shared_ptr<stockpile::etcd::EtcdClient>(std::move(*client));
}

std::string InstancesPrefix(const LevelConfig& c) {
  return c.etcd_prefix + (c.etcd_prefix.ends_with('/') ? "" : "/");
}

stockpile::etcd::InstanceInfo InstanceFor(const LevelConfig& c, const std::string& id, int port,
                                          const std::string& metrics_address,
                                          const std::string& database_id) {
  stockpile::etcd::InstanceInfo info;
  info.id = id;
  info.database_id = database_id;
  info.level = std::string(stockpile::common::LevelName(c.level));
  info.address =
      c.advertise.empty() ? stockpile::common::BoundAddress(c.listen, port) : c.advertise;
  info.region_prefixes = c.regions;
  info.metrics_address = metrics_address;
  return info;
}

// What this instance will register as, as far as it is known before it listens: the id is
// --instance-id, or derived from a fixed --listen port; with port 0 the derived id is new, so no
// earlier registration can be this instance's own.
stockpile::etcd::InstanceInfo PlannedInstance(const LevelConfig& c,
                                              const std::string& database_id) {
  int listen_port = 0;
  (void)absl::SimpleAtoi(c.listen.substr(c.listen.rfind(':') + 1), &listen_port);
  const bool known = !c.instance_id.empty() || listen_port > 0;
  return InstanceFor(c, known ? InstanceId(c, listen_port) : "", listen_port, "", database_id);
}

// One writer per warehouse: refuses to serve regions another live instance of this level
// already hosts, or is starting to host (its claim is older than ours; see etcd::PutClaim), and
// refuses our --instance-id while a process on another database, or an instance of another
// level, runs with it (the catalogue knows sources by id alone). A registration
// that is gone within our lease TTL was a crashed predecessor's (its lease expiring), so the
// check is repeated until then, our claim kept alive meanwhile; our own id registered from this
// database is our own predecessor's and does not wait. Unreachable
// etcd does not stop the start (stock keeps moving while etcd is down); it is said on stderr.
absl::Status CheckNoOverlap(const LevelConfig& c, stockpile::etcd::EtcdClient* client,
                            const stockpile::etcd::InstanceInfo& info) {
  if (client == nullptr) return absl::OkStatus();
  auto warn = [](const absl::Status& s) {
    std::cerr << "stockpile-level: warning: cannot ask etcd which regions other instances host ("
              << s.message() << "); starting anyway" << std::endl;
    return absl::OkStatus();
  };
  const std::string prefix = InstancesPrefix(c);
  auto claim = stockpile::etcd::PutClaim(*client, info, prefix, c.etcd_ttl_seconds);
  if (!claim.ok()) return warn(claim.status());
  const absl::Time give_up = absl::Now() + absl::Seconds(c.etcd_ttl_seconds + 1);
  while (true) {
    auto overlaps = stockpile::etcd::OverlappingInstances(*client, info, prefix, &*claim);
    if (!overlaps.ok()) return warn(overlaps.status());
    auto same_id = stockpile::etcd::SameIdElsewhere(*client, info, prefix);
    if (!same_id.ok()) return warn(same_id.status());
    overlaps->insert(overlaps->end(), same_id->begin(), same_id->end());
    // On success the claim runs out by itself, after the registration has taken its place.
    if (overlaps->empty()) return absl::OkStatus();
    if (absl::Now() >= give_up) {
      client->LeaseRevoke(claim->lease).IgnoreError();  // others need not wait for it
      return absl::FailedPreconditionError(absl::StrCat(
          "another live instance would write these warehouses or goes by this instance id, "
          "and a warehouse must have exactly one writer (and a source one id): ",
          absl::StrJoin(*overlaps, "; "),
          ". Stop it, or change --regions or --instance-id; the registration of an instance "
          "that died lasts until its --etcd-ttl runs out"));
    }
    absl::SleepFor(absl::Seconds(1));
    client->KeepAliveOnce(claim->lease).IgnoreError();
  }
}

std::shared_ptr<stockpile::etcd::Registration> Register(
    const LevelConfig& c, std::shared_ptr<stockpile::etcd::EtcdClient> client,
    const stockpile::etcd::InstanceInfo& info) {
  if (client == nullptr) return nullptr;
  stockpile::etcd::RegistrationOptions options;
  options.key_prefix = InstancesPrefix(c);
  options.ttl_seconds = c.etcd_ttl_seconds;
  options.watch_second_writers = true;
  auto registration =
      std::make_shared<stockpile::etcd::Registration>(std::move(client), info, options);
  registration->Start();
  return registration;
}

// stockpile_second_writers: live instances that write some of this instance's warehouses too
// (see RegistrationOptions::watch_second_writers); the LevelSecondWriter alert fires above 0.
absl::Status ExportSecondWriters(
    stockpile::metrics::MetricsServer& server,
    std::shared_ptr<const stockpile::etcd::Registration> registration) {
  using stockpile::metrics::ScrapeCollector;
  auto collector = ScrapeCollector::Create(
      "stockpile_second_writers",
      "Other live instances registered in etcd that write some of this instance's warehouses "
      "(overlapping regions, or this instance id on another database). Above 0: two ledgers "
      "for one warehouse.",
      prometheus::MetricType::Gauge, {}, [registration] {
        const double n =
            registration ? static_cast<double>(registration->state().second_writers.size()) : 0;
        return std::vector<ScrapeCollector::Sample>{{{}, n}};
      });
  if (!collector.ok()) return collector.status();
  server.AddCollectable(*collector);
  return absl::OkStatus();
}

// Who may call what: tokens signed with the deployment's key, checked against the rules table.
absl::StatusOr<std::shared_ptr<stockpile::auth::Authorizer>> MakeAuthorizer(
    const LevelConfig& c, const stockpile::level::LevelCore& core) {
  if (c.insecure)
    return std::shared_ptr<stockpile::auth::Authorizer>(stockpile::auth::Authorizer::Disabled());
  auto key = stockpile::auth::TokenKey::FromFile(c.auth_key_file);
  if (!key.ok()) return key.status();
  auto authorizer = std::make_shared<stockpile::auth::Authorizer>(
      stockpile::auth::TokenVerifier(std::move(*key), stockpile::common::SystemClock::Get()),
      std::vector<absl::Span<const stockpile::auth::MethodRule>>{
          stockpile::auth::LevelServiceRules(), stockpile::auth::HealthRules()});
  // Release/Ship/ConfirmDelivery name only a hold: its warehouse decides the scope.
  auto queries = std::make_shared<stockpile::level::LevelQueries>(core.store(), core.reference(),
                                                                  core.hosting(), core.clock());
  authorizer->set_hold_lookup([queries](absl::string_view id) -> absl::StatusOr<std::string> {
    auto hold = queries->GetHold(absl::StrCat("holds/", id));
    if (!hold.ok()) return hold.status();
    return hold->warehouse();
  });
  return authorizer;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const LevelConfig& c) {
  stockpile::auth::TlsOptions tls;
  tls.insecure = c.insecure;
  tls.files = {c.tls_cert, c.tls_key, c.tls_ca, !c.tls_ca.empty()};
  return stockpile::auth::ServerCredentials(tls);
}

}  // namespace

int main(int argc, char** argv) {
  stockpile::common::PrepareServerProcess();
  auto config = stockpile::level::ParseLevelConfig(argc, argv);
  if (!config.ok()) {
    if (absl::IsCancelled(config.status())) {
      std::cout << config.status().message();
      return 0;
    }
    return Fail("bad configuration", config.status());
  }
  // Block the stop signals before any thread starts; main waits for them below.
  sigset_t stop_signals = BlockStopSignals();

  stockpile::common::ReferenceData::Options ref_options;
  ref_options.fine_region_prefixes = config->regions;
  auto reference = stockpile::common::ReferenceData::Load(config->reference_data, ref_options);
  if (!reference.ok()) return Fail("cannot load reference data", reference.status());
  // A mistyped region (99, 4021) would serve an empty instance without a word.
  for (const std::string& region : config->regions) {
    if (absl::Status s = (*reference)->CheckRegionFilter(region); !s.ok())
      return Fail("--regions", s);
  }

  if (!config->restore_from.empty()) {
    if (absl::Status s = RestoreFromBackup(*config); !s.ok()) return Fail("cannot restore", s);
  }
  stockpile::level::LevelCore::Options core_options;
  core_options.hold_sweep_interval_ms = config->hold_sweep_interval_ms;
  core_options.max_group_commands = static_cast<size_t>(config->max_group_commands);
  core_options.min_free_bytes = uint64_t(config->min_free_mb) << 20;
  std::error_code no_db;
  const bool db_was_there =
      std::filesystem::exists(std::filesystem::path(config->db) / "CURRENT", no_db);
  auto core = stockpile::level::LevelCore::Open(
      config->db, reference->get(), stockpile::level::Hosting(config->level, config->regions),
      stockpile::common::SystemClock::Get(), core_options);
  if (absl::IsDataLoss(core.status())) return FailDamaged(*config, core.status());
  if (!core.ok()) return Fail("cannot open the ledger", core.status());
  // The ledger holds --db's lock now: no restore into it can be under way.
  if (auto removed = stockpile::level::RemoveInterruptedRestore(config->db, db_was_there);
      !removed.ok()) {
    std::cerr << "stockpile-level: warning: " << removed.status().message() << std::endl;
  } else if (!removed->empty()) {
    std::cerr << "stockpile-level: removed " << *removed
              << ", the copy of a restore that did not finish (" << config->db
              << " was never replaced by it)" << std::endl;
  }

  auto metrics = StartMetrics(*config);
  if (!metrics.ok()) return Fail("cannot serve metrics", metrics.status());
  std::unique_ptr<stockpile::level::LevelMetrics> level_metrics;
  if (*metrics) {
    auto registered = stockpile::level::LevelMetrics::Register(**metrics, **core,
                                                               config->metrics_refresh_seconds);
    if (!registered.ok()) return Fail("cannot register metrics", registered.status());
    level_metrics = std::move(*registered);
  }

  auto etcd = EtcdClientFor(*config);
  if (!etcd.ok()) return Fail("bad --etcd-endpoints or --etcd-tls-*", etcd.status());
  auto database_id = (*core)->store().Identity();
  if (!database_id.ok()) return Fail("cannot open the ledger", database_id.status());
  // Before serving anything: an instance refused here must not take a single write.
  if (absl::Status s = CheckNoOverlap(*config, etcd->get(), PlannedInstance(*config, *database_id));
      !s.ok()) {
    return Fail("refusing to start", s);
  }
  auto authorizer = MakeAuthorizer(*config, **core);
  if (!authorizer.ok()) return Fail("cannot set up authorization", authorizer.status());
  auto credentials = Credentials(*config);
  if (!credentials.ok()) return Fail("cannot set up TLS", credentials.status());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  const std::string metrics_address =
      *metrics ? stockpile::common::BoundAddress(config->metrics_listen, (*metrics)->port()) : "";
  stockpile::level::LevelServiceImpl service(
      core->get(), {config->instance_id, STOCKPILE_VERSION, metrics_address});
  service.SetBackups(config->backup_dir, config->backup_keep);
  if (*metrics && !config->backup_dir.empty()) {
    if (absl::Status s = stockpile::level::RegisterBackupMetrics(**metrics, service.backups());
        !s.ok()) {
      return Fail("cannot register metrics", s);
    }
  }
  grpc::ServerBuilder builder;
  stockpile::common::ListenExclusively(builder);
  int port = 0;
  builder.AddListeningPort(config->listen, *credentials, &port);
  builder.SetMaxReceiveMessageSize(16 << 20);
  builder.RegisterService(&service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  if (*metrics) {
    creators.push_back(stockpile::metrics::MakeGrpcServerMetricsFactory((*metrics)->registry()));
  }
  creators.push_back(stockpile::auth::MakeAuthInterceptorFactory(*authorizer));
  builder.experimental().SetInterceptorCreators(std::move(creators));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) return Fail("cannot listen", absl::UnavailableError(config->listen));
  const std::string instance_id = InstanceId(*config, port);
  service.SetInstanceId(instance_id);
  server->GetHealthCheckService()->SetServingStatus("stockpile.v1.LevelService", true);
  std::unique_ptr<grpc::Server> health;
  int health_port = 0;
  if (!config->health_listen.empty()) {
    health = stockpile::common::ServeHealthOnly(config->health_listen,
                                                {"stockpile.v1.LevelService"}, &health_port);
    if (!health) return Fail("cannot listen", absl::UnavailableError(config->health_listen));
  }
  // A database that refused a write refuses every mutation until restart: probes must see
  // NOT_SERVING (Kubernetes then restarts the pod) rather than a healthy-looking instance.
  (*core)->OnStorageFailure([&server, &health] {
    server->GetHealthCheckService()->SetServingStatus(false);
    if (health) health->GetHealthCheckService()->SetServingStatus(false);
  });
  if (!config->port_file.empty()) std::ofstream(config->port_file) << port << "\n";
  auto registration = Register(
      *config, *etcd, InstanceFor(*config, instance_id, port, metrics_address, *database_id));
  if (*metrics) {
    if (absl::Status s = ExportSecondWriters(**metrics, registration); !s.ok()) {
      return Fail("cannot register metrics", s);
    }
  }
  std::cout << "stockpile-level listening on "
            << stockpile::common::BoundAddress(config->listen, port) << " (level "
            << stockpile::common::LevelName(config->level) << ", regions "
            << absl::StrJoin(config->regions, ",") << ", " << (*core)->last_sequence()
            << " changes";
  if (*metrics) std::cout << ", metrics on port " << (*metrics)->port();
  if (health) std::cout << ", health on port " << health_port;  // --health-listen=...:0 too
  std::cout << ")" << std::endl;

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cout << "stockpile-level: signal " << sig << ", draining" << std::endl;
  (*core)->OnStorageFailure(nullptr);  // the servers it reports to are about to go
  service.EndStreams();
  if (registration) registration->Stop();
  server->GetHealthCheckService()->Shutdown();
  if (health) health->GetHealthCheckService()->Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server->Wait();
  server.reset();
  if (health) health->Shutdown(std::chrono::system_clock::now());
  level_metrics.reset();
  core->reset();
  std::cout << "stockpile-level: stopped" << std::endl;
  return 0;
}
