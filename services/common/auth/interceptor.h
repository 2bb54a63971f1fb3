#pragma once

// gRPC wiring of the Authorizer.
//
// gRPC 1.51 server interceptors cannot refuse a call: Hijack() is client-only (it asserts on a
// server), ModifySendStatus runs only after the handler, and TryCancel reports CANCELLED while
// the callback handler still runs (docs/security.md cites the sources). So the interceptor only
// DECIDES, before the handler runs (POST_RECV_MESSAGE: the deserialized request and the
// "authorization" metadata are both there), and records the verdict for the call; the handler
// ENFORCES by reading it with CallIdentity(ctx) before it touches anything:
//
//   builder.experimental().SetInterceptorCreators(...,  MakeAuthInterceptorFactory(authorizer));
//   ...
//   ASSIGN_OR_RETURN / if (!who.ok()) finish with who.status()   <- in the handler
//
// A call with no recorded verdict (interceptor not installed, client-streaming method) is
// refused by CallIdentity: the failure mode is "denied", never "allowed".

#include <grpcpp/support/server_interceptor.h>

#include <memory>

#include "absl/status/statusor.h"
#include "services/common/auth/authorizer.h"

namespace grpc {
class ServerContextBase;
}

namespace stockpile::auth {

// One interceptor per call; `authorizer` must outlive the server.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeAuthInterceptorFactory(
    std::shared_ptr<const Authorizer> authorizer);

// The verdict recorded for this call: the caller's Identity, or the refusal status
// (UNAUTHENTICATED / PERMISSION_DENIED / NOT_FOUND for an unknown hold). Cheap: one mutex and
// one hash lookup.
absl::StatusOr<Identity> CallIdentity(const grpc::ServerContextBase* ctx);

}  // namespace stockpile::auth
