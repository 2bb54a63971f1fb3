#include "services/common/metrics/process_collector.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace stockpile::metrics {
namespace {

std::string ReadFile(const char* path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// "btime <seconds>" line of /proc/stat; 0 when missing.
double BootTimeSeconds() {
  for (absl::string_view line : absl::StrSplit(ReadFile("/proc/stat"), '\n')) {
    double seconds = 0;
    if (absl::ConsumePrefix(&line, "btime ") && absl::SimpleAtod(line, &seconds)) return seconds;
  }
  return 0;
}

prometheus::MetricFamily OneValue(const char* name, const char* help, prometheus::MetricType type,
                                  double value) {
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return prometheus::MetricFamily{name, help, type, {metric}};
}

std::optional<double> OpenFileDescriptors() {
  std::error_code error;
  std::filesystem::directory_iterator it("/proc/self/fd", error);
  if (error) return std::nullopt;
  double count = 0;
  for (; it != std::filesystem::directory_iterator(); it.increment(error)) {
    if (error) return std::nullopt;
    ++count;
  }
  return count;
}

}  // namespace

std::optional<ProcessStat> ParseProcStat(const std::string& stat_text, long ticks_per_second,
                                         long page_size, double boot_time_seconds) {
  // The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
  const size_t close = stat_text.rfind(')');
  if (close == std::string::npos || ticks_per_second <= 0) return std::nullopt;
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(stat_text).substr(close + 1), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state); field N of proc(5) is fields[N - 3].
  constexpr size_t kUtime = 14 - 3, kStime = 15 - 3, kStartTime = 22 - 3, kVsize = 23 - 3,
                   kRss = 24 - 3;
  if (fields.size() <= kRss) return std::nullopt;
  double utime, stime, start_ticks, vsize, rss_pages;
  if (!absl::SimpleAtod(fields[kUtime], &utime) || !absl::SimpleAtod(fields[kStime], &stime) ||
      !absl::SimpleAtod(fields[kStartTime], &start_ticks) ||
      !absl::SimpleAtod(fields[kVsize], &vsize) || !absl::SimpleAtod(fields[kRss], &rss_pages)) {
    return std::nullopt;
  }
  const double ticks = static_cast<double>(ticks_per_second);
  return ProcessStat{(utime + stime) / ticks, boot_time_seconds + start_ticks / ticks, vsize,
                     rss_pages * static_cast<double>(page_size)};
}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> families;
  std::optional<ProcessStat> stat = ParseProcStat(ReadFile("/proc/self/stat"), sysconf(_SC_CLK_TCK),
                                                  sysconf(_SC_PAGESIZE), BootTimeSeconds());
  if (stat) {
    families.push_back(OneValue("process_cpu_seconds_total",
                                "Total user and system CPU time spent in seconds.",
                                MetricType::Counter, stat->cpu_seconds));
    families.push_back(OneValue("process_resident_memory_bytes", "Resident memory size in bytes.",
                                MetricType::Gauge, stat->resident_bytes));
    families.push_back(OneValue("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                                MetricType::Gauge, stat->virtual_bytes));
    families.push_back(OneValue("process_start_time_seconds",
                                "Start time of the process since unix epoch in seconds.",
                                MetricType::Gauge, stat->start_time_seconds));
  }
  if (std::optional<double> open_fds = OpenFileDescriptors()) {
    families.push_back(OneValue("process_open_fds", "Number of open file descriptors.",
                                MetricType::Gauge, *open_fds));
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    families.push_back(OneValue("process_max_fds", "Maximum number of open file descriptors.",
                                MetricType::Gauge, static_cast<double>(limit.rlim_cur)));
  }
  return families;
}

}  // namespace stockpile::metrics
