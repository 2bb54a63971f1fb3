#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "stockpile/v1/catalogue_service.grpc.pb.h"
#include "stockpile/v1/level_service.grpc.pb.h"
#include "stockpile/v1/transfer_service.grpc.pb.h"
#include "tools/stockctl/output/render.h"

namespace CLI {
class App;
}

namespace stockpile::stockctl {

struct GlobalOptions {
  std::string server;
  // The catalogue (national view and transfers): --catalogue, $STOCKPILE_CATALOGUE.
  std::string catalogue;
  std::string actor;
  std::string request_id;  // empty: generate one per invocation
  bool json = false;
  double timeout_seconds = 10;
  // Transport: TLS when a CA is given (client certificate optional); plaintext otherwise.
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  // Bearer token: --token-file, else $STOCKPILE_TOKEN_FILE, else $STOCKPILE_TOKEN.
  std::string token_file;
};

// What every command needs: the stub, deadlines, the actor and request id, and output.
class Context {
 public:
  GlobalOptions& options() { return options_; }
  bool json() const { return options_.json; }

  v1::LevelService::Stub& stub();
  // Stubs on the catalogue's channel (--catalogue), with the same TLS and token settings.
  v1::CatalogueService::Stub& catalogue_stub();
  v1::TransferService::Stub& transfer_stub();
  // A fresh ClientContext whose deadline is --timeout from now.
  std::unique_ptr<grpc::ClientContext> NewCall() const;
  // The same without a deadline, for a stream that lives until stopped (watch).
  std::unique_ptr<grpc::ClientContext> NewStream() const;

  // The mutation's request id: --request-id, or one generated for this invocation and
  // announced ("request-id: ..." on stdout, or on stderr with --json) so a retry can reuse it.
  const std::string& RequestId();
  const std::string& actor() const { return options_.actor; }

  // Prints a rendering (human) or JSON to stdout.
  void Print(const std::string& human, const std::string& json_text) const;

  // Prints "stockctl: <CODE>: <message>" on stderr and returns the exit code for it.
  int Fail(const grpc::Status& status);
  // Turns an optional --warehouse (code or name) into "warehouses/{code}"; on a bad value sets
  // `rc` to the usage exit code and returns false.
  bool OptionalWarehouse(std::string& warehouse, int& rc) const;
  // Local argument errors (exit code 1).
  int UsageError(const std::string& message) const;
  int UsageError(const absl::Status& status) const {
    return UsageError(std::string(status.message()));
  }

 private:
  GlobalOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::LevelService::Stub> stub_;
  std::shared_ptr<grpc::Channel> catalogue_channel_;
  std::unique_ptr<v1::CatalogueService::Stub> catalogue_stub_;
  std::unique_ptr<v1::TransferService::Stub> transfer_stub_;

  grpc::Channel& CatalogueChannel();
  // After UNAVAILABLE: says whether to fix the address, the TLS settings, or wait for a service
  // behind the one that answered.
  void HintAfterUnavailable(const grpc::Status& status) const;
  // The service of the latest stub handed out: where a failed call went.
  enum class Service { kNone, kLevel, kCatalogue };
  Service last_service_ = Service::kNone;
  mutable std::string token_;  // read once, on the first call; never printed
  mutable bool token_loaded_ = false;
  std::string request_id_;
};

// The stub a generated method belongs to (overloads chosen by the stub type).
inline v1::LevelService::Stub& StubOf(Context& ctx, v1::LevelService::Stub*) { return ctx.stub(); }
inline v1::CatalogueService::Stub& StubOf(Context& ctx, v1::CatalogueService::Stub*) {
  return ctx.catalogue_stub();
}
inline v1::TransferService::Stub& StubOf(Context& ctx, v1::TransferService::Stub*) {
  return ctx.transfer_stub();
}

// Calls one unary RPC of any of the services with the --timeout deadline.
template <typename Stub, typename Request, typename Response>
grpc::Status Call(Context& ctx,
                  grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                  const Request& request, Response* response) {
  auto call = ctx.NewCall();
  Stub& stub = StubOf(ctx, static_cast<Stub*>(nullptr));
  return (stub.*method)(call.get(), request, response);
}

// Leaf subcommand -> what it does (returns the exit code).
using Action = std::function<int()>;
using ActionMap = std::map<const CLI::App*, Action>;

}  // namespace stockpile::stockctl
