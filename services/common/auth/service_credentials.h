#pragma once

// Credentials of a service calling another service (the catalogue calling level services):
// mutual TLS plus a `service` bearer token read from a file and sent with every call. The token
// file is re-read when it changes, so a rotated token is picked up without a restart.

#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "services/common/auth/tls.h"

namespace stockpile::auth {

// tls.insecure: plaintext and no token (development; logs a warning). Otherwise tls.files.ca is
// required, cert + key are presented, and `token_file` must hold a token (checked now: a missing
// or empty file fails here, naming the path; the token itself is never in a message).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ServiceChannelCredentials(
    const TlsOptions& tls, const std::string& token_file);

// The first whitespace-delimited word of `path` (a token file as `stockctl token issue` writes
// it): NOT_FOUND naming the path when unreadable, INVALID_ARGUMENT when empty.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

}  // namespace stockpile::auth
