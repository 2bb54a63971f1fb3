#pragma once

#include <pthread.h>

#include <string>

namespace stockpile::common {

// Names the calling thread (at most 15 characters are kept), so top -H, perf and /proc show
// which of a service's threads is busy.
inline void NameThisThread(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace stockpile::common
