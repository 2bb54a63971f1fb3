// stockpile-catalogue: wiring only. flags -> reference data -> core (rebuilds the view and the
// planner's stock snapshot from its store) -> transfers (store, coordinator, service) -> metrics
// -> gRPC server -> source discovery (etcd or --source) -> transfer leadership (etcd election, or
// always leader without etcd) -> signal -> drain.
#include <google/protobuf/util/time_util.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/catalogue/allocation/leader.h"
#include "services/catalogue/allocation/routing.h"
#include "services/catalogue/allocation/transfer_metrics.h"
#include "services/catalogue/allocation/transfer_service.h"
#include "services/catalogue/catalogue_core.h"
#include "services/catalogue/catalogue_metrics.h"
#include "services/catalogue/catalogue_service.h"
#include "services/catalogue/config.h"
#include "services/catalogue/source_directory.h"
#include "services/catalogue/stock_index_search.h"
#include "services/common/auth/interceptor.h"
#include "services/common/auth/rules.h"
#include "services/common/auth/service_credentials.h"
#include "services/common/auth/token.h"
#include "services/common/etcd/registration.h"
#include "services/common/health_listener.h"
#include "services/common/metrics/grpc_server_metrics.h"
#include "services/common/metrics/metrics_server.h"
#include "services/common/server_process.h"
#include "services/common/status_macros.h"

#ifndef STOCKPILE_VERSION
#define STOCKPILE_VERSION "dev"
#endif
#ifndef STOCKPILE_COMMIT
#define STOCKPILE_COMMIT "unknown"
#endif

namespace {

using stockpile::catalogue::CatalogueConfig;

int Fail(absl::string_view what, const absl::Status& s) {
  std::cerr << "stockpile-catalogue: " << what << ": " << s.message() << std::endl;
  return 2;
}

std::unique_ptr<stockpile::catalogue::SourceDirectory> StartDirectory(
    const CatalogueConfig& c, stockpile::catalogue::CatalogueCore* core,
    std::shared_ptr<stockpile::etcd::EtcdClient> etcd) {
  std::unique_ptr<stockpile::catalogue::SourceDirectory> dir;
  if (etcd) {
    // etcd may be away at start: stream from the sources stored as registered meanwhile.
    const int resumed = core->ResumeStoredSources();
    if (resumed > 0) {
      std::cerr << "stockpile-catalogue: streaming again from " << resumed
                << " stored sources at their stored addresses until etcd answers" << std::endl;
    }
    dir = std::make_unique<stockpile::catalogue::EtcdSourceDirectory>(core, etcd, c.etcd_prefix);
  } else {
    dir = std::make_unique<stockpile::catalogue::StaticSourceDirectory>(core, c.static_sources);
  }
  dir->Start();
  return dir;
}

// The catalogue registers itself too (level "catalogue"), so dashboards and tools find it.
std::unique_ptr<stockpile::etcd::Registration> Register(
    const CatalogueConfig& c, std::shared_ptr<stockpile::etcd::EtcdClient> etcd,
    const std::string& id, int port, int metrics_port) {
  if (!etcd) return nullptr;
  stockpile::etcd::InstanceInfo info;
  info.id = id;
  info.level = "catalogue";
  info.address =
      c.advertise.empty() ? stockpile::common::BoundAddress(c.listen, port) : c.advertise;
  if (metrics_port > 0) {
    info.metrics_address = stockpile::common::BoundAddress(c.metrics_listen, metrics_port);
  }
  stockpile::etcd::RegistrationOptions options;
  options.key_prefix = c.etcd_prefix;
  options.ttl_seconds = c.etcd_ttl_seconds;
  auto registration = std::make_unique<stockpile::etcd::Registration>(etcd, info, options);
  registration->Start();
  return registration;
}

namespace alloc = stockpile::catalogue::allocation;
namespace auth = stockpile::auth;

// Transport and tokens (docs/security.md): the listener's credentials, the channel credentials
// for level services (mutual TLS + service token) and the authorizer of incoming calls.
struct Security {
  std::shared_ptr<grpc::ServerCredentials> server;
  std::shared_ptr<grpc::ChannelCredentials> levels;
  // For the transfer leader: TLS only, since a forwarded call carries its caller's token.
  std::shared_ptr<grpc::ChannelCredentials> peers;
  std::shared_ptr<auth::Authorizer> authorizer;
};

absl::StatusOr<Security> MakeSecurity(const CatalogueConfig& c) {
  auth::TlsOptions tls;
  tls.insecure = c.insecure;
  tls.files = {c.tls_cert, c.tls_key, c.tls_ca, c.tls_require_client_cert};
  Security s;
  ASSIGN_OR_RETURN(s.server, auth::ServerCredentials(tls));
  ASSIGN_OR_RETURN(s.levels, auth::ServiceChannelCredentials(tls, c.service_token_file));
  if (c.insecure) {
    s.peers = grpc::InsecureChannelCredentials();  // the warning was given once above
  } else {
    ASSIGN_OR_RETURN(s.peers, auth::ChannelCredentials(tls));
  }
  if (c.insecure) {
    s.authorizer = auth::Authorizer::Disabled();
    return s;
  }
  ASSIGN_OR_RETURN(auth::TokenKey key, auth::TokenKey::FromFile(c.auth_key_file));
  s.authorizer = std::make_shared<auth::Authorizer>(
      auth::TokenVerifier(std::move(key), stockpile::common::SystemClock::Get()),
      std::vector<absl::Span<const auth::MethodRule>>{
          auth::CatalogueServiceRules(), auth::TransferServiceRules(), auth::HealthRules()});
  return s;
}

// Routes a region to the level instance the catalogue replicates from (gone ones skipped). A
// --source without region prefixes hosts every region of its level.
alloc::LevelRouter RouterFrom(const stockpile::catalogue::CatalogueCore* core) {
  return [core](absl::string_view region) -> absl::StatusOr<std::string> {
    std::vector<alloc::LevelInstance> instances;
    for (const auto& s : core->ReplicationStatus()) {
      if (s.gone()) continue;
      alloc::LevelInstance instance{
          s.level(), s.address(), {s.region_prefixes().begin(), s.region_prefixes().end()}};
      if (instance.region_prefixes.empty()) instance.region_prefixes.push_back("");
      instances.push_back(std::move(instance));
    }
    return alloc::RouteRegion(instances, region);
  };
}

// What the transfer planner needs of the replication status: which instances answer, and
// which have streamed all their stock.
std::function<std::vector<alloc::SourceContact>()> ContactsFrom(
    const stockpile::catalogue::CatalogueCore* core) {
  using google::protobuf::util::TimeUtil;
  return [core] {
    std::vector<alloc::SourceContact> contacts;
    for (const auto& s : core->ReplicationStatus()) {
      alloc::SourceContact c;
      c.id = s.instance_id();
      c.scope = {s.level(), {s.region_prefixes().begin(), s.region_prefixes().end()}};
      if (c.scope.prefixes.empty()) c.scope.prefixes.push_back("");  // hosts every region
      c.connected = s.connected();
      c.gone = s.gone();
      c.last_contact_micros = TimeUtil::TimestampToMicroseconds(s.last_contact_time());
      c.stream_start_micros = TimeUtil::TimestampToMicroseconds(s.stream_start_time());
      c.applied_sequence = s.applied_sequence();
      c.complete_at_sequence = s.resync_until_sequence();
      contacts.push_back(std::move(c));
    }
    return contacts;
  };
}

// The service is registered before the port (and so the election candidate) is known; it asks
// this, which answers "not leader" until the real leadership is attached.
class LateLeadership final : public alloc::Leadership {
 public:
  void Attach(const alloc::Leadership* target) { target_.store(target); }
  bool IsLeader() const override {
    const alloc::Leadership* t = target_.load();
    return t != nullptr && t->IsLeader();
  }
  absl::StatusOr<std::string> Leader() const override {
    const alloc::Leadership* t = target_.load();
    if (t == nullptr) return absl::NotFoundError("this replica has not joined the election yet");
    return t->Leader();
  }

 private:
  std::atomic<const alloc::Leadership*> target_{nullptr};
};

// The transfer machinery of this replica (docs/allocation.md). Destroyed in reverse order of
// the members: service (joins its workers), leadership (resigns, stops resuming), coordinator,
// gateway, store.
struct Transfers {
  std::unique_ptr<alloc::TransferStore> store;
  std::unique_ptr<alloc::GrpcLevelGateway> gateway;
  std::unique_ptr<alloc::Planner> planner;
  std::unique_ptr<alloc::TransferCoordinator> coordinator;
  std::unique_ptr<alloc::AlwaysLeader> always;
  std::unique_ptr<alloc::ResumeLoop> loop;
  std::unique_ptr<alloc::TransferLeader> leader;
  LateLeadership leadership;
  std::unique_ptr<alloc::TransferServiceImpl> service;

  ~Transfers() {
    service.reset();
    leader.reset();
    loop.reset();
  }
};

absl::StatusOr<std::unique_ptr<Transfers>> OpenTransfers(
    const CatalogueConfig& c, const stockpile::common::ReferenceData* reference,
    const stockpile::catalogue::CatalogueCore* core, const alloc::StockSnapshot* snapshot,
    std::shared_ptr<grpc::ChannelCredentials> level_credentials,
    std::shared_ptr<grpc::ChannelCredentials> peer_credentials) {
  auto t = std::make_unique<Transfers>();
  auto store = alloc::TransferStore::Open(c.db + "/transfers", c.sync_writes);
  if (!store.ok()) return store.status();
  t->store = std::move(*store);
  alloc::GrpcLevelGatewayOptions gateway_options;
  gateway_options.channel_factory = [level_credentials](const std::string& address) {
    return grpc::CreateChannel(address, level_credentials);
  };
  t->gateway = std::make_unique<alloc::GrpcLevelGateway>(RouterFrom(core), gateway_options);
  t->planner = std::make_unique<alloc::Planner>(reference);
  alloc::CoordinatorOptions options;
  options.hold_ttl_seconds = c.hold_ttl_seconds;
  options.require_second_approver = c.require_second_approver;
  options.retry_deadline = absl::Seconds(c.transfer_retry_seconds);
  options.sources = ContactsFrom(core);
  options.known_warehouse = [core](absl::string_view code) {
    return core->view().HasWarehouse(code);
  };
  options.unreachable_after = absl::Seconds(c.unreachable_after_seconds);
  options.replan_rounds = c.transfer_replan_rounds;
  t->coordinator = std::make_unique<alloc::TransferCoordinator>(
      t->store.get(), t->gateway.get(), t->planner.get(), snapshot,
      stockpile::common::SystemClock::Get(), options);
  t->service = std::make_unique<alloc::TransferServiceImpl>(t->coordinator.get(), &t->leadership);
  // The chart's Service spreads calls over every replica: a follower hands mutations on.
  alloc::TransferServiceImpl::LeaderForwarding forwarding;
  forwarding.channel_factory = [peer_credentials](const std::string& address) {
    return grpc::CreateChannel(address, peer_credentials);
  };
  t->service->SetLeaderForwarding(std::move(forwarding));
  return t;
}

// With etcd: campaign on the leader key as `candidate`; without: lead alone.
void LeadTransfers(const CatalogueConfig& c, Transfers& t,
                   std::shared_ptr<stockpile::etcd::EtcdClient> etcd,
                   const std::string& candidate) {
  const absl::Duration interval = absl::Seconds(c.transfer_resume_seconds);
  if (etcd) {
    alloc::TransferLeaderOptions options;
    options.resume_interval = interval;
    options.shared_prefix = alloc::TransferPrefixFor(c.etcd_prefix);  // transfers shared in etcd
    options.shared_retention = absl::Hours(24 * c.transfer_etcd_retention_days);
    t.leader = std::make_unique<alloc::TransferLeader>(etcd, candidate, t.coordinator.get(),
                                                       t.store.get(), options);
    t.leadership.Attach(t.leader.get());
    t.leader->Start();
    return;
  }
  t.always = std::make_unique<alloc::AlwaysLeader>();
  t.loop = std::make_unique<alloc::ResumeLoop>(t.coordinator.get(), interval);
  t.leadership.Attach(t.always.get());
  t.loop->SetLeader(true);
}

}  // namespace

int main(int argc, char** argv) {
  stockpile::common::PrepareServerProcess();
  auto config = stockpile::catalogue::ParseCatalogueConfig(argc, argv);
  if (!config.ok()) {
    if (absl::IsCancelled(config.status())) {
      std::cout << config.status().message();
      return 0;
    }
    return Fail("bad configuration", config.status());
  }
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto security = MakeSecurity(*config);
  if (!security.ok()) return Fail("cannot set up TLS and tokens", security.status());
  auto reference = stockpile::common::ReferenceData::Load(config->reference_data);
  if (!reference.ok()) return Fail("cannot load reference data", reference.status());
  stockpile::catalogue::CatalogueCore::Options options;
  options.sync_writes = config->sync_writes;
  options.stream.max_batch = config->max_batch;
  options.stream.credentials = security->levels;
  options.search = stockpile::catalogue::NewStockIndexSearch(int((*reference)->items().size()));
  alloc::StockSnapshot snapshot(reference->get());  // outlives the core that feeds it
  options.snapshot = &snapshot;
  auto core = stockpile::catalogue::CatalogueCore::Open(
      config->db, reference->get(), stockpile::common::SystemClock::Get(), std::move(options));
  if (!core.ok()) return Fail("cannot open the catalogue", core.status());

  auto transfers = OpenTransfers(*config, reference->get(), core->get(), &snapshot,
                                 security->levels, security->peers);
  if (!transfers.ok()) return Fail("cannot open the transfer store", transfers.status());
  security->authorizer->set_transfer_lookup(
      alloc::MakeTransferLookup((*transfers)->coordinator.get()));

  std::unique_ptr<stockpile::metrics::MetricsServer> metrics;
  if (!config->metrics_listen.empty()) {
    auto started = stockpile::metrics::MetricsServer::Start(
        config->metrics_listen, {"stockpile-catalogue", STOCKPILE_VERSION, STOCKPILE_COMMIT, {}});
    if (!started.ok()) return Fail("cannot serve metrics", started.status());
    metrics = std::move(*started);
    metrics->AddCollectable(stockpile::catalogue::MakeReplicationCollectable(core->get()));
    Transfers* t = transfers->get();
    metrics->AddCollectable(
        alloc::MakeTransferCollectable(t->store.get(), stockpile::common::SystemClock::Get(),
                                       [t] { return t->leadership.IsLeader(); }));
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  std::shared_ptr<stockpile::etcd::EtcdClient> etcd;
  if (!config->etcd_endpoints.empty()) {
    stockpile::etcd::EtcdClientOptions etcd_options;
    etcd_options.endpoints = absl::StrJoin(config->etcd_endpoints, ",");
    etcd_options.tls_ca_file = config->etcd_tls_ca;
    etcd_options.tls_cert_file = config->etcd_tls_cert;
    etcd_options.tls_key_file = config->etcd_tls_key;
    auto client = stockpile::etcd::EtcdClient::Create(etcd_options);
    if (!client.ok()) return Fail("bad --etcd-endpoints or --etcd-tls-*", client.status());
    etcd = std::move(*client);
  }
  stockpile::catalogue::CatalogueServiceImpl service(core->get());
  if (etcd) {  // a source forgotten on this replica is forgotten on every other one too
    service.SetForgottenPublisher([etcd, prefix = config->etcd_prefix](const auto& source) {
      return stockpile::catalogue::PublishForgotten(*etcd, prefix, source);
    });
  }
  grpc::ServerBuilder builder;
  stockpile::common::ListenExclusively(builder);
  int port = 0;
  builder.AddListeningPort(config->listen, security->server, &port);
  builder.RegisterService(&service);
  builder.RegisterService((*transfers)->service.get());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  if (metrics) {
    creators.push_back(stockpile::metrics::MakeGrpcServerMetricsFactory(metrics->registry()));
  }
  creators.push_back(auth::MakeAuthInterceptorFactory(security->authorizer));
  builder.experimental().SetInterceptorCreators(std::move(creators));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) return Fail("cannot listen", absl::UnavailableError(config->listen));
  server->GetHealthCheckService()->SetServingStatus("stockpile.v1.CatalogueService", true);
  server->GetHealthCheckService()->SetServingStatus("stockpile.v1.TransferService", true);
  std::unique_ptr<grpc::Server> health;  // plaintext, health only: for Kubernetes probes
  int health_port = 0;
  if (!config->health_listen.empty()) {
    health = stockpile::common::ServeHealthOnly(
        config->health_listen, {"stockpile.v1.CatalogueService", "stockpile.v1.TransferService"},
        &health_port);
    if (!health) return Fail("cannot listen", absl::UnavailableError(config->health_listen));
  }

  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  const std::string id = config->instance_id.empty() ? absl::StrCat("catalogue-", host, "-", port)
                                                     : config->instance_id;
  auto directory = StartDirectory(*config, core->get(), etcd);
  auto registration = Register(*config, etcd, id, port, metrics ? metrics->port() : 0);
  const std::string advertised = config->advertise.empty()
                                     ? stockpile::common::BoundAddress(config->listen, port)
                                     : config->advertise;
  LeadTransfers(*config, **transfers, etcd, advertised);

  if (!config->port_file.empty()) std::ofstream(config->port_file) << port << "\n";
  std::cout << "stockpile-catalogue listening on "
            << stockpile::common::BoundAddress(config->listen, port) << " ("
            << (*core)->view().warehouse_count() << " warehouses loaded";
  if (metrics) std::cout << ", metrics on port " << metrics->port();
  if (health) std::cout << ", health on port " << health_port;  // --health-listen=...:0 too
  std::cout << ")" << std::endl;

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cout << "stockpile-catalogue: signal " << sig << ", draining" << std::endl;
  directory->Stop();
  if (registration) registration->Stop();
  server->GetHealthCheckService()->Shutdown();
  if (health) health->GetHealthCheckService()->Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server->Wait();
  server.reset();
  if (health) health->Shutdown(std::chrono::system_clock::now());  // Watch streams: end now
  metrics.reset();     // its collectables read the transfer store and the core
  transfers->reset();  // service workers, then leadership (resigns), coordinator, store
  core->reset();
  std::cout << "stockpile-catalogue: stopped" << std::endl;
  return 0;
}
