#pragma once

// Transport security for every gRPC listener and client. TLS is the default: plaintext only when
// `insecure` is set explicitly (local development), and then a warning line goes to stderr.

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace stockpile::auth {

// PEM file paths.
struct TlsFiles {
  std::string cert;  // this process's certificate chain
  std::string key;   // its private key
  std::string ca;    // CA bundle that peers' certificates must chain to
  // Server: refuse clients without a certificate from `ca` (mutual TLS between services).
  bool require_client_cert = false;
};

struct TlsOptions {
  TlsFiles files;
  bool insecure = false;  // plaintext; never the default
};

// Server side: cert and key are required; ca is required when require_client_cert is set (and,
// when given without it, a presented client certificate must chain to it). Files are read and
// parsed now, so a missing, unreadable or mismatched file fails here with its path named.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const TlsOptions& options);

// Client side: ca is required (the server's CA; system roots are not used); cert + key are
// optional and, when given together, are presented for mutual TLS.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const TlsOptions& options);

}  // namespace stockpile::auth
