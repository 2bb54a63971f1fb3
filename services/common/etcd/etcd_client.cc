#include "services/common/etcd/etcd_client.h"

#include <chrono>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "services/common/etcd/etcd_channels.h"
#include "services/common/etcd/etcd_log.h"
#include "services/common/status_macros.h"

namespace stockpile::etcd {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::TxnRequest;
using etcdserverpb::TxnResponse;

// Reconnect fast after etcd comes back: gRPC's default backoff grows to two minutes.
grpc::ChannelArguments ChannelArgs() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // gRPC also uses this as the connect timeout (TCP + HTTP/2 handshake): a small value makes
  // every attempt time out on a loaded machine, so keep it generous.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 3000);
  // Detect a silent etcd (SIGSTOP, dropped link) on long-lived watch streams. etcd's default
  // enforcement policy allows pings every 5 s.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  return args;
}

absl::StatusOr<std::vector<std::string>> ParseEndpoints(absl::string_view list) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    part = absl::StripAsciiWhitespace(part);
    if (!absl::ConsumePrefix(&part, "http://")) absl::ConsumePrefix(&part, "https://");
    if (part.empty() || !absl::StrContains(part, ':')) {
      return absl::InvalidArgumentError(
          absl::StrCat("etcd endpoint '", part, "' is not HOST:PORT (in '", list, "')"));
    }
    out.emplace_back(part);
  }
  if (out.empty()) return absl::InvalidArgumentError("etcd endpoint list is empty");
  return out;
}

absl::StatusOr<std::string> ReadPemFile(const std::string& path, absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", flag, " file '", path, "'"));
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// Plaintext without a CA; otherwise TLS verifying etcd against the CA, with our certificate when
// one is given (etcd's --client-cert-auth asks for it).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const EtcdClientOptions& options) {
  const bool has_cert = !options.tls_cert_file.empty();
  if (has_cert != !options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("etcd TLS client certificate and key go together");
  }
  if (options.tls_ca_file.empty()) {
    if (has_cert) return absl::InvalidArgumentError("etcd TLS client certificate needs a CA");
    EtcdLog(absl::StrCat("WARNING: plaintext connection to etcd at ", options.endpoints,
                         " (no --etcd-tls-ca): registrations and the leader key travel "
                         "unencrypted; use TLS outside local development"));
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPemFile(options.tls_ca_file, "etcd TLS CA"));
  if (has_cert) {
    ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadPemFile(options.tls_cert_file, "etcd TLS cert"));
    ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPemFile(options.tls_key_file, "etcd TLS key"));
  }
  return grpc::SslCredentials(ssl);
}

Compare MakeCompare(absl::string_view key, Compare::CompareTarget target,
                    Compare::CompareResult result) {
  Compare cmp;
  cmp.set_key(std::string(key));
  cmp.set_target(target);
  cmp.set_result(result);
  return cmp;
}

// Lets a call wait for a connection attempt in progress (up to its deadline) instead of failing.
void WaitWhileConnecting(grpc::Channel& channel, std::chrono::system_clock::time_point deadline) {
  grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/true);
  while (state == GRPC_CHANNEL_IDLE || state == GRPC_CHANNEL_CONNECTING) {
    if (!channel.WaitForStateChange(state, deadline)) return;  // deadline: the call will say so
    state = channel.GetState(/*try_to_connect=*/true);
  }
}

}  // namespace

absl::Status FromGrpc(const grpc::Status& status, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat("etcd ", what, ": ", status.error_message()));
}

std::string PrefixRangeEnd(absl::string_view prefix) {
  std::string end(prefix);
  // Drop trailing 0xff bytes (they cannot be incremented), then bump the last byte.
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (end.empty()) return std::string(1, '\0');  // "\0" means: to the end of the keyspace
  end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

absl::Status EtcdClient::Impl::Call(
    const std::function<grpc::Status(Endpoint&, grpc::ClientContext&)>& call) {
  const auto deadline = std::chrono::system_clock::now() + absl::ToChronoMilliseconds(call_timeout);
  const size_t first = preferred.load();
  grpc::Status status;
  for (size_t i = 0; i < endpoints.size(); ++i) {
    const size_t index = (first + i) % endpoints.size();
    WaitWhileConnecting(*endpoints[index].channel, deadline);
    grpc::ClientContext context;
    context.set_deadline(deadline);
    status = call(endpoints[index], context);
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE) {
      if (status.ok()) preferred.store(index);
      return FromGrpc(status, endpoints[index].address);
    }
    if (std::chrono::system_clock::now() >= deadline) break;
  }
  return FromGrpc(
      status, absl::StrCat("unavailable at every endpoint (", absl::StrJoin(addresses, ","), ")"));
}

// Why a thread: our calls are not wait-for-ready, so while etcd is down they fail fast and no
// thread polls gRPC's sockets. A reconnect attempt then only advances on gRPC's 5 s backup
// poller, times out before etcd's HTTP/2 SETTINGS frame is read, and the channel never recovers
// (seen with gRPC 1.51). Watching connectivity keeps one thread polling, and try_to_connect keeps
// an idle channel connecting.
void EtcdClient::Impl::StartPoller() {
  poller = std::thread([this] {
    while (!stop_poller.load()) {
      for (Endpoint& endpoint : endpoints) {
        const auto state = endpoint.channel->GetState(/*try_to_connect=*/true);
        endpoint.channel->WaitForStateChange(
            state, std::chrono::system_clock::now() + std::chrono::milliseconds(100));
      }
    }
  });
}

EtcdClient::Impl::~Impl() {
  stop_poller.store(true);
  if (poller.joinable()) poller.join();
}

Endpoint& EtcdClient::Impl::StreamEndpoint(bool rotate) {
  size_t index = preferred.load() % endpoints.size();
  if (rotate) {
    index = (index + 1) % endpoints.size();
    preferred.store(index);
  }
  return endpoints[index];
}

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(absl::string_view endpoints) {
  EtcdClientOptions options;
  options.endpoints = std::string(endpoints);
  return Create(options);
}

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(const EtcdClientOptions& options) {
  auto addresses = ParseEndpoints(options.endpoints);
  if (!addresses.ok()) return addresses.status();
  if (options.call_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("etcd call timeout must be positive");
  }
  auto credentials = ChannelCredentials(options);
  if (!credentials.ok()) return credentials.status();
  auto impl = std::make_unique<Impl>();
  impl->addresses = *addresses;
  impl->call_timeout = options.call_timeout;
  for (const std::string& address : *addresses) {
    Endpoint endpoint;
    endpoint.address = address;
    endpoint.channel = grpc::CreateCustomChannel(address, *credentials, ChannelArgs());
    endpoint.kv = etcdserverpb::KV::NewStub(endpoint.channel);
    endpoint.lease = etcdserverpb::Lease::NewStub(endpoint.channel);
    endpoint.watch = etcdserverpb::Watch::NewStub(endpoint.channel);
    impl->endpoints.push_back(std::move(endpoint));
  }
  impl->StartPoller();
  return std::unique_ptr<EtcdClient>(new EtcdClient(std::move(impl)));
}

EtcdClient::EtcdClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EtcdClient::~EtcdClient() = default;

const std::vector<std::string>& EtcdClient::endpoints() const { return impl_->addresses; }
absl::Duration EtcdClient::call_timeout() const { return impl_->call_timeout; }

namespace {

RangeResult ToRangeResult(const etcdserverpb::RangeResponse& response) {
  RangeResult result;
  result.revision = response.header().revision();
  result.kvs.reserve(response.kvs_size());
  for (const auto& kv : response.kvs()) {
    result.kvs.push_back(KeyValue{kv.key(), kv.value(), kv.lease(), kv.mod_revision(),
                                  kv.create_revision(), kv.version()});
  }
  return result;
}

}  // namespace

absl::StatusOr<RangeResult> EtcdClient::Range(absl::string_view key) {
  etcdserverpb::RangeRequest request;
  request.set_key(std::string(key));
  etcdserverpb::RangeResponse response;
  absl::Status status = impl_->Call(
      [&](Endpoint& e, grpc::ClientContext& ctx) { return e.kv->Range(&ctx, request, &response); });
  if (!status.ok()) return status;
  return ToRangeResult(response);
}

absl::StatusOr<RangeResult> EtcdClient::RangePrefix(absl::string_view prefix) {
  etcdserverpb::RangeRequest request;
  request.set_key(std::string(prefix));
  request.set_range_end(PrefixRangeEnd(prefix));
  request.set_sort_target(etcdserverpb::RangeRequest::KEY);
  request.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
  etcdserverpb::RangeResponse response;
  absl::Status status = impl_->Call(
      [&](Endpoint& e, grpc::ClientContext& ctx) { return e.kv->Range(&ctx, request, &response); });
  if (!status.ok()) return status;
  return ToRangeResult(response);
}

absl::StatusOr<int64_t> EtcdClient::Put(absl::string_view key, absl::string_view value,
                                        int64_t lease) {
  etcdserverpb::PutRequest request;
  request.set_key(std::string(key));
  request.set_value(std::string(value));
  request.set_lease(lease);
  etcdserverpb::PutResponse response;
  absl::Status status = impl_->Call(
      [&](Endpoint& e, grpc::ClientContext& ctx) { return e.kv->Put(&ctx, request, &response); });
  if (!status.ok()) return status;
  return response.header().revision();
}

namespace {

absl::StatusOr<int64_t> Delete(EtcdClient::Impl& impl, etcdserverpb::DeleteRangeRequest request) {
  etcdserverpb::DeleteRangeResponse response;
  absl::Status status = impl.Call([&](Endpoint& e, grpc::ClientContext& ctx) {
    return e.kv->DeleteRange(&ctx, request, &response);
  });
  if (!status.ok()) return status;
  return response.deleted();
}

absl::StatusOr<bool> RunTxn(EtcdClient::Impl& impl, const TxnRequest& request) {
  TxnResponse response;
  absl::Status status = impl.Call(
      [&](Endpoint& e, grpc::ClientContext& ctx) { return e.kv->Txn(&ctx, request, &response); });
  if (!status.ok()) return status;
  return response.succeeded();
}

void AddPut(TxnRequest& txn, absl::string_view key, absl::string_view value, int64_t lease) {
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(std::string(key));
  put->set_value(std::string(value));
  put->set_lease(lease);
}

void AddDelete(TxnRequest& txn, absl::string_view key) {
  txn.add_success()->mutable_request_delete_range()->set_key(std::string(key));
}

}  // namespace

absl::StatusOr<int64_t> EtcdClient::DeleteRange(absl::string_view key) {
  etcdserverpb::DeleteRangeRequest request;
  request.set_key(std::string(key));
  return Delete(*impl_, std::move(request));
}

absl::StatusOr<int64_t> EtcdClient::DeletePrefix(absl::string_view prefix) {
  etcdserverpb::DeleteRangeRequest request;
  request.set_key(std::string(prefix));
  request.set_range_end(PrefixRangeEnd(prefix));
  return Delete(*impl_, std::move(request));
}

absl::StatusOr<bool> EtcdClient::PutIfAbsent(absl::string_view key, absl::string_view value,
                                             int64_t lease) {
  TxnRequest txn;
  *txn.add_compare() = MakeCompare(key, Compare::CREATE, Compare::EQUAL);
  txn.mutable_compare(0)->set_create_revision(0);
  AddPut(txn, key, value, lease);
  return RunTxn(*impl_, txn);
}

absl::StatusOr<bool> EtcdClient::CompareAndSwap(absl::string_view key,
                                                absl::string_view expected_value,
                                                absl::string_view new_value, int64_t lease) {
  TxnRequest txn;
  *txn.add_compare() = MakeCompare(key, Compare::VALUE, Compare::EQUAL);
  txn.mutable_compare(0)->set_value(std::string(expected_value));
  AddPut(txn, key, new_value, lease);
  return RunTxn(*impl_, txn);
}

absl::StatusOr<bool> EtcdClient::DeleteIfValue(absl::string_view key,
                                               absl::string_view expected_value) {
  TxnRequest txn;
  *txn.add_compare() = MakeCompare(key, Compare::VALUE, Compare::EQUAL);
  txn.mutable_compare(0)->set_value(std::string(expected_value));
  AddDelete(txn, key);
  return RunTxn(*impl_, txn);
}

absl::StatusOr<bool> EtcdClient::DeleteIfLease(absl::string_view key, int64_t lease) {
  TxnRequest txn;
  *txn.add_compare() = MakeCompare(key, Compare::LEASE, Compare::EQUAL);
  txn.mutable_compare(0)->set_lease(lease);
  AddDelete(txn, key);
  return RunTxn(*impl_, txn);
}

namespace {

Compare ToCompare(const TxnCompare& c) {
  switch (c.target) {
    case TxnCompare::Target::kValue: {
      Compare cmp = MakeCompare(c.key, Compare::VALUE, Compare::EQUAL);
      cmp.set_value(c.value);
      return cmp;
    }
    case TxnCompare::Target::kLease: {
      Compare cmp = MakeCompare(c.key, Compare::LEASE, Compare::EQUAL);
      cmp.set_lease(c.number);
      return cmp;
    }
    case TxnCompare::Target::kModRevision: {
      Compare cmp = MakeCompare(c.key, Compare::MOD, Compare::EQUAL);
      cmp.set_mod_revision(c.number);
      return cmp;
    }
    case TxnCompare::Target::kCreateRevision:
      break;
  }
  Compare cmp = MakeCompare(c.key, Compare::CREATE, Compare::EQUAL);
  cmp.set_create_revision(c.number);
  return cmp;
}

}  // namespace

absl::StatusOr<TxnResult> EtcdClient::Txn(const std::vector<TxnCompare>& compares,
                                          const std::vector<TxnPut>& puts) {
  TxnRequest txn;
  for (const TxnCompare& c : compares) *txn.add_compare() = ToCompare(c);
  for (const TxnPut& p : puts) AddPut(txn, p.key, p.value, p.lease);
  TxnResponse response;
  absl::Status status = impl_->Call(
      [&](Endpoint& e, grpc::ClientContext& ctx) { return e.kv->Txn(&ctx, txn, &response); });
  if (!status.ok()) return status;
  return TxnResult{response.succeeded(), response.header().revision()};
}

absl::StatusOr<Lease> EtcdClient::LeaseGrant(int64_t ttl_seconds) {
  if (ttl_seconds <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("lease TTL must be > 0, got ", ttl_seconds));
  }
  etcdserverpb::LeaseGrantRequest request;
  request.set_ttl(ttl_seconds);
  etcdserverpb::LeaseGrantResponse response;
  absl::Status status = impl_->Call([&](Endpoint& e, grpc::ClientContext& ctx) {
    return e.lease->LeaseGrant(&ctx, request, &response);
  });
  if (!status.ok()) return status;
  if (!response.error().empty()) {
    return absl::FailedPreconditionError(absl::StrCat("etcd lease grant: ", response.error()));
  }
  return Lease{response.id(), response.ttl()};
}

absl::Status EtcdClient::LeaseRevoke(int64_t lease_id) {
  etcdserverpb::LeaseRevokeRequest request;
  request.set_id(lease_id);
  etcdserverpb::LeaseRevokeResponse response;
  return impl_->Call([&](Endpoint& e, grpc::ClientContext& ctx) {
    return e.lease->LeaseRevoke(&ctx, request, &response);
  });
}

absl::StatusOr<int64_t> EtcdClient::KeepAliveOnce(int64_t lease_id) {
  etcdserverpb::LeaseKeepAliveRequest request;
  request.set_id(lease_id);
  etcdserverpb::LeaseKeepAliveResponse response;
  absl::Status status = impl_->Call([&](Endpoint& e, grpc::ClientContext& ctx) {
    auto stream = e.lease->LeaseKeepAlive(&ctx);
    const bool exchanged = stream->Write(request) && stream->Read(&response);
    if (exchanged) {
      stream->WritesDone();
      ctx.TryCancel();  // we have our answer; do not wait for etcd to close its side
    }
    grpc::Status finish = stream->Finish();
    if (exchanged) return grpc::Status::OK;
    if (finish.ok()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "keepalive stream closed");
    return finish;
  });
  if (!status.ok()) return status;
  return response.ttl();
}

}  // namespace stockpile::etcd
