#pragma once

#include <grpcpp/server_builder.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "services/common/log_lines.h"

namespace stockpile::common {

// Settings every server process (and the load generator) applies first thing in main().
inline void PrepareServerProcess() {
  // Debian's Abseil is built with absl::Mutex deadlock detection on: it records every lock
  // order in a global graph, a few per cent of a level service's CPU under load. That is a
  // debugging aid, not something a production server should pay for on every lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  TimestampStandardError();
}

// Every gRPC listener of ours takes its port alone. gRPC's default (SO_REUSEPORT) lets a second
// server bind a port another process already listens on, and the kernel then splits the
// connections between them: a second level instance started on a busy address would silently
// answer half the callers from another database. Without it the second process fails to start
// ("cannot listen") and says so.
inline void ListenExclusively(grpc::ServerBuilder& builder) {
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
}

// "host:port" of a listener started on `listen` ("host:port", port 0 for any free port) that
// bound `port`: what the process prints and advertises once it listens.
inline std::string BoundAddress(const std::string& listen, int port) {
  return absl::StrCat(listen.substr(0, listen.rfind(':')), ":", port);
}

}  // namespace stockpile::common
