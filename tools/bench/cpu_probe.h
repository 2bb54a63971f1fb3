#pragma once

#include <string>

namespace stockpile::bench {

// CPU used so far by the target level service (its process_cpu_seconds_total, scraped from the
// metrics address it gives in GetInstanceInfo; negative when it has none or the scrape fails)
// and by this process (getrusage). Per-call CPU moves far less than calls/s when the speed of a
// shared VM drifts, so builds compare better by it.
struct CpuMark {
  double server_seconds = -1;
  double own_seconds = 0;
};

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
