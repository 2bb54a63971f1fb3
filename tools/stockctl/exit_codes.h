#pragma once

#include <grpcpp/support/status.h>

#include <string>

namespace stockpile::stockctl {

// Exit codes scripts can rely on (documented in --help and docs/stockctl.md).
enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 1,      // bad flags or arguments, unreadable input file, unwritable output file
  kExitRefused = 2,    // INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE, ALREADY_EXISTS
  kExitNotFound = 3,   // NOT_FOUND
  kExitDenied = 4,     // PERMISSION_DENIED, UNAUTHENTICATED
  kExitRetryable = 5,  // UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED: safe to retry (same request id)
  kExitImportBadRows = 6,  // an import finished but some rows failed
  kExitOther = 7,          // anything else
};

// The exit code for a failed (or OK) gRPC status.
int ExitCodeFor(grpc::StatusCode code);

// The text for --help.
const char* ExitCodeHelp();

}  // namespace stockpile::stockctl
