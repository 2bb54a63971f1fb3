#pragma once

// CPU time this process has used so far (user + system), for the bench tools' per-call figures.
#include <sys/resource.h>

namespace stockpile::bench {

inline double OwnCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace stockpile::bench
