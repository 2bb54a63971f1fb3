#pragma once

#include <optional>
#include <string>
#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace stockpile::metrics {

// What /proc/self/stat says about this process (Linux). Times in seconds, sizes in bytes.
struct ProcessStat {
  double cpu_seconds = 0;         // utime + stime
  double start_time_seconds = 0;  // since the Unix epoch
  double virtual_bytes = 0;
  double resident_bytes = 0;
};

// Parses the text of /proc/self/stat given the clock tick rate, page size and boot time
// (btime of /proc/stat); nullopt when the text is not in the expected shape.
std::optional<ProcessStat> ParseProcStat(const std::string& stat_text, long ticks_per_second,
                                         long page_size, double boot_time_seconds);

// The standard process metrics that Prometheus client libraries export, read at scrape time:
// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_start_time_seconds, process_open_fds, process_max_fds. Families whose source cannot
// be read are left out of that scrape rather than reported as zero.
class ProcessCollector : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace stockpile::metrics
