#include "tools/bench/cpu_probe.h"

#include <sys/resource.h>

#include <chrono>

#include "absl/strings/numbers.h"
#include "services/common/metrics/scrape_client.h"
#include "tools/bench/level_client.h"

namespace stockpile::bench {
namespace {

double OwnCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace

CpuProbe CpuProbe::ForTarget(const std::string& target) {
  CpuProbe probe;
  auto level = ConnectLevel(target, std::chrono::seconds(5));
  if (!level.ok()) return probe;
  const std::string& address = (*level)->info.metrics_address();
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) return probe;
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port)) return probe;
  probe.metrics_host_ = address.substr(0, colon);
  probe.metrics_port_ = port;
  return probe;
}

CpuMark CpuProbe::Mark() const {
  CpuMark mark;
  mark.own_seconds = OwnCpuSeconds();
  if (metrics_port_ <= 0) return mark;
  auto page = metrics::FetchMetricsPage(metrics_host_, metrics_port_);
  if (!page.ok()) return mark;
  auto samples = metrics::ParseMetricsPage(*page);
  if (!samples.ok()) return mark;
  for (const auto& s : *samples) {
    if (s.name == "process_cpu_seconds_total") mark.server_seconds = s.value;
  }
  return mark;
}

}  // namespace stockpile::bench
