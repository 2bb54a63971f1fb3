#include "tools/stockctl/context.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "services/common/auth/tls.h"
#include "services/common/status_util.h"
#include "services/common/tcp_connect.h"
#include "tools/stockctl/cli_util.h"
#include "tools/stockctl/exit_codes.h"

namespace stockpile::stockctl {

namespace {

// A bearer token goes into an HTTP/2 header, where gRPC aborts the process on a control
// character and logs the whole value: check it first, and never echo it.
bool IsSendableToken(absl::string_view token) {
  return std::all_of(token.begin(), token.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

// --token-file, else STOCKPILE_TOKEN_FILE, else STOCKPILE_TOKEN; surrounding whitespace (the
// newline of `$(cat token)`) is dropped. A token that still cannot be sent is a usage error.
std::string ReadToken(const GlobalOptions& o) {
  std::string path = o.token_file;
  if (path.empty()) {
    if (const char* env = std::getenv("STOCKPILE_TOKEN_FILE"); env != nullptr) path = env;
  }
  std::string token, source;
  if (path.empty()) {
    const char* env = std::getenv("STOCKPILE_TOKEN");
    token = std::string(absl::StripAsciiWhitespace(env != nullptr ? env : ""));
    source = "STOCKPILE_TOKEN";
  } else {
    std::ifstream in(path);
    in >> token;
    if (token.empty()) {  // a mistyped path is not a permission problem: stop before calling
      std::cerr << "stockctl: cannot read a token from " << path << " (missing or empty)\n";
      std::exit(kExitUsage);
    }
    source = "the token file " + path;
  }
  if (!IsSendableToken(token)) {
    std::cerr << "stockctl: the token in " << source
              << " contains a space or control character and cannot be sent; check it\n";
    std::exit(kExitUsage);
  }
  return token;
}

// A flag, else its environment variable, else "".
std::string FlagOrEnv(const std::string& flag, const char* env) {
  if (!flag.empty()) return flag;
  const char* value = std::getenv(env);
  return value != nullptr ? value : "";
}

std::shared_ptr<grpc::ChannelCredentials> Credentials(const GlobalOptions& o) {
  const std::string ca = FlagOrEnv(o.tls_ca, "STOCKPILE_TLS_CA");
  const std::string cert = FlagOrEnv(o.tls_cert, "STOCKPILE_TLS_CERT");
  const std::string key = FlagOrEnv(o.tls_key, "STOCKPILE_TLS_KEY");
  if (ca.empty() && !(cert.empty() && key.empty())) {
    // Without the CA there is no TLS at all: refuse rather than send in plaintext.
    std::cerr << "stockctl: --tls-cert/--tls-key (STOCKPILE_TLS_CERT/KEY) need --tls-ca "
                 "(STOCKPILE_TLS_CA), the CA that signed the server's certificate\n";
    return nullptr;
  }
  if (ca.empty()) return grpc::InsecureChannelCredentials();
  auth::TlsOptions tls;
  tls.files = {cert, key, ca, false};
  auto creds = auth::ChannelCredentials(tls);
  if (!creds.ok()) {
    std::cerr << "stockctl: TLS: " << creds.status().message() << "\n";
    return nullptr;
  }
  return *creds;
}

}  // namespace

v1::LevelService::Stub& Context::stub() {
  if (!stub_) {
    auto creds = Credentials(options_);
    if (creds == nullptr) std::exit(kExitUsage);
    channel_ = grpc::CreateChannel(options_.server, creds);
    stub_ = v1::LevelService::NewStub(channel_);
  }
  last_service_ = Service::kLevel;
  return *stub_;
}

grpc::Channel& Context::CatalogueChannel() {
  if (!catalogue_channel_) {
    auto creds = Credentials(options_);
    if (creds == nullptr) std::exit(kExitUsage);
    catalogue_channel_ = grpc::CreateChannel(options_.catalogue, creds);
  }
  return *catalogue_channel_;
}

v1::CatalogueService::Stub& Context::catalogue_stub() {
  if (!catalogue_stub_) {
    CatalogueChannel();
    catalogue_stub_ = v1::CatalogueService::NewStub(catalogue_channel_);
  }
  last_service_ = Service::kCatalogue;
  return *catalogue_stub_;
}

v1::TransferService::Stub& Context::transfer_stub() {
  if (!transfer_stub_) {
    CatalogueChannel();
    transfer_stub_ = v1::TransferService::NewStub(catalogue_channel_);
  }
  last_service_ = Service::kCatalogue;
  return *transfer_stub_;
}

std::unique_ptr<grpc::ClientContext> Context::NewCall() const {
  auto call = NewStream();
  const auto timeout =
      std::chrono::milliseconds(static_cast<int64_t>(options_.timeout_seconds * 1000.0));
  call->set_deadline(std::chrono::system_clock::now() + timeout);
  return call;
}

std::unique_ptr<grpc::ClientContext> Context::NewStream() const {
  auto call = std::make_unique<grpc::ClientContext>();
  if (!token_loaded_) {
    token_ = ReadToken(options_);
    token_loaded_ = true;
    // A bearer token on a plaintext channel can be read off the wire: say so, once.
    if (!token_.empty() && FlagOrEnv(options_.tls_ca, "STOCKPILE_TLS_CA").empty()) {
      std::cerr << "stockctl: warning: no --tls-ca (STOCKPILE_TLS_CA): the bearer token is sent "
                   "over plaintext; use this only against a local development server\n";
    }
  }
  if (!token_.empty()) call->AddMetadata("authorization", "Bearer " + token_);
  return call;
}

const std::string& Context::RequestId() {
  if (!request_id_.empty()) return request_id_;
  request_id_ = options_.request_id.empty() ? NewRequestId() : options_.request_id;
  (json() ? std::cerr : std::cout) << "request-id: " << request_id_ << "\n";
  return request_id_;
}

void Context::Print(const std::string& human, const std::string& json_text) const {
  if (json()) {
    std::cout << json_text << "\n";
  } else {
    std::cout << human;
    if (!human.empty() && human.back() != '\n') std::cout << "\n";
  }
  std::cout.flush();
}

int Context::Fail(const grpc::Status& status) {
  std::cerr << "stockctl: " << common::StatusCodeName(status.error_code()) << ": "
            << status.error_message() << "\n";
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) HintAfterUnavailable(status);
  const int code = ExitCodeFor(status.error_code());
  if (code == kExitRetryable && !request_id_.empty()) {
    std::cerr << "stockctl: safe to retry with --request-id=" << request_id_ << "\n";
  }
  // A service out of room (a level's volume below --min-free-mb) refuses before it applies
  // anything: the same request goes through once there is room, and only once.
  if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED && !request_id_.empty()) {
    std::cerr << "stockctl: nothing was applied: retry with --request-id=" << request_id_
              << " once the service has room again\n";
  }
  return code;
}

// After UNAVAILABLE, says where to look. Whether this process's own channel connected tells a
// failure of the address stockctl was given from one the service relays (a level service or
// etcd behind the catalogue is down): only the first is fixed with --server or --catalogue. A
// connection closed at once, or a failed handshake, is TLS configured differently at the two
// ends, not a wrong address; unless the address refuses connections since: then the service
// went away during the call.
void Context::HintAfterUnavailable(const grpc::Status& status) const {
  const bool level = last_service_ == Service::kLevel;
  const std::shared_ptr<grpc::Channel>& channel = level ? channel_ : catalogue_channel_;
  if (last_service_ == Service::kNone || channel == nullptr) return;
  const std::string& address = level ? options_.server : options_.catalogue;
  const char* what = level ? "level service" : "catalogue";
  const std::string& message = status.error_message();
  if (channel->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY) {
    std::cerr << "stockctl: the " << what << " at " << address
              << " answered: a service it needs is unavailable (above); retry once it is back\n";
  } else if (message.find("Socket closed") != std::string::npos && !common::AcceptsTcp(address)) {
    std::cerr << "stockctl: the " << what << " at " << address
              << " closed the connection and accepts no other: it stopped or is restarting; "
                 "retry once it is back\n";
  } else if (message.find("Ssl handshake failed") != std::string::npos ||
             message.find("Socket closed") != std::string::npos) {
    std::cerr << "stockctl: something listens at " << address
              << " but the TLS handshake failed: check --tls-ca, --tls-cert and --tls-key "
                 "(STOCKPILE_TLS_CA/CERT/KEY) against how the service runs (TLS or not, client "
                 "certificates required or not)\n";
  } else if (message.find("failed to connect") == std::string::npos) {
    return;
  } else if (level) {
    std::cerr << "stockctl: no level service answers at " << address
              << ": give its address with --server or STOCKPILE_SERVER (stockpile-local: "
                 "province 7501, city 7502, county 7503, township 7504, village 7505)\n";
  } else {
    std::cerr << "stockctl: no catalogue answers at " << address
              << ": give its address with --catalogue or STOCKPILE_CATALOGUE\n";
  }
}

bool Context::OptionalWarehouse(std::string& warehouse, int& rc) const {
  if (warehouse.empty()) return true;
  auto name = WarehouseNameArg(warehouse);
  if (!name.ok()) {
    rc = UsageError(name.status());
    return false;
  }
  warehouse = *name;
  return true;
}

int Context::UsageError(const std::string& message) const {
  std::cerr << "stockctl: USAGE: " << message << "\n";
  return kExitUsage;
}

}  // namespace stockpile::stockctl
