#include "tools/stockctl/exit_codes.h"

namespace stockpile::stockctl {

int ExitCodeFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return kExitOk;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::ALREADY_EXISTS:
      return kExitRefused;
    case grpc::StatusCode::NOT_FOUND:
      return kExitNotFound;
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      return kExitDenied;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::ABORTED:
      return kExitRetryable;
    default:
      return kExitOther;
  }
}

const char* ExitCodeHelp() {
  return "Exit codes:\n"
         "  0  ok\n"
         "  1  usage error (bad flags or arguments, unreadable input file, an import's\n"
         "     --errors-out / --rejected-out that cannot be written)\n"
         "  2  the server refused the request (INVALID_ARGUMENT, FAILED_PRECONDITION,\n"
         "     OUT_OF_RANGE, ALREADY_EXISTS)\n"
         "  3  not found (NOT_FOUND)\n"
         "  4  permission denied (PERMISSION_DENIED, UNAUTHENTICATED)\n"
         "  5  server unavailable or deadline exceeded (UNAVAILABLE, DEADLINE_EXCEEDED,\n"
         "     ABORTED): retry with the same --request-id\n"
         "  6  import finished with some bad rows\n"
         "  7  other errors\n"
         "Errors are printed on stderr as 'stockctl: <CODE>: <message>'.\n"
         "Environment: STOCKPILE_SERVER (default --server), STOCKPILE_CATALOGUE (default\n"
         "  --catalogue), STOCKPILE_ACTOR (default --actor), STOCKPILE_TOKEN_FILE or\n"
         "  STOCKPILE_TOKEN (bearer token), STOCKPILE_TLS_CA / STOCKPILE_TLS_CERT /\n"
         "  STOCKPILE_TLS_KEY (default --tls-ca / --tls-cert / --tls-key).";
}

}  // namespace stockpile::stockctl
