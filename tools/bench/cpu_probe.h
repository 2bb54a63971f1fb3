#pragma once

#include <cstdint>
#include <string>

namespace stockpile::bench {

// The machine's CPU time from the "cpu" line of /proc/stat, in clock ticks: all of it, and the
// part not idle (idle and iowait excluded). Negative when unreadable.
struct MachineTicks {
  int64_t busy = -1;
  int64_t total = -1;
};
MachineTicks ParseMachineCpuLine(const std::string& line);

// CPU used so far by the target level service (its process_cpu_seconds_total, scraped from the
// metrics address it gives in GetInstanceInfo; negative when it has none or the scrape fails)
// and by this process (getrusage). Per-call CPU moves far less than calls/s when the speed of a
// shared VM drifts, so builds compare better by it.
struct CpuMark {
  double server_seconds = -1;
  double own_seconds = 0;
  // Whether the machine had CPU to spare: a closed loop short of the target on a machine that
  // is not fully busy is bound by latency, not by CPU.
  MachineTicks machine;
};

// The share of the machine's CPU time that was busy between two marks; negative if unknown.
double MachineBusyFraction(const CpuMark& begin, const CpuMark& end);

class CpuProbe {
 public:
  // Asks `target` for its metrics address; without one only the bench's own CPU is measured.
  static CpuProbe ForTarget(const std::string& target);
  CpuMark Mark() const;

 private:
  std::string metrics_host_;
  int metrics_port_ = 0;
};

}  // namespace stockpile::bench
