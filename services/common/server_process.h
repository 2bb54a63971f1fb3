#pragma once

#include "absl/synchronization/mutex.h"

namespace stockpile::common {

// Settings every server process (and the load generator) applies first thing in main().
inline void PrepareServerProcess() {
  // Debian's Abseil is built with absl::Mutex deadlock detection on: it records every lock
  // order in a global graph, a few per cent of a level service's CPU under load. That is a
  // debugging aid, not something a production server should pay for on every lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace stockpile::common
