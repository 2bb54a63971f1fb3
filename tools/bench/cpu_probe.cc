#include "tools/bench/cpu_probe.h"

#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>

#include "services/common/metrics/scrape_client.h"
#include "services/common/tcp_connect.h"
#include "tools/bench/level_client.h"
#include "tools/bench/own_cpu.h"

namespace stockpile::bench {
namespace {

MachineTicks ReadMachineTicks() {
  std::ifstream in("/proc/stat");
  std::string line;
  if (!std::getline(in, line)) return {};
  return ParseMachineCpuLine(line);
}

}  // namespace

MachineTicks ParseMachineCpuLine(const std::string& line) {
  // cpu  user nice system idle iowait irq softirq steal (guest time is already in user)
  std::istringstream in(line);
  std::string label;
  if (!(in >> label) || label != "cpu") return {};
  MachineTicks m{0, 0};
  int fields = 0;
  for (int64_t ticks = 0; fields < 8 && in >> ticks; ++fields) {
    m.total += ticks;
    if (fields != 3 && fields != 4) m.busy += ticks;  // idle, iowait
  }
  return fields >= 5 ? m : MachineTicks{};
}

double MachineBusyFraction(const CpuMark& begin, const CpuMark& end) {
  if (begin.machine.total < 0 || end.machine.total <= begin.machine.total) return -1;
  return double(end.machine.busy - begin.machine.busy) /
         double(end.machine.total - begin.machine.total);
}

CpuProbe CpuProbe::ForTarget(const std::string& target) {
  CpuProbe probe;
  auto level = ConnectLevel(target, std::chrono::seconds(5));
  if (!level.ok()) return probe;
  const std::optional<common::HostPort> metrics =
      common::SplitHostPort((*level)->info.metrics_address());
  if (!metrics.has_value() || metrics->host.empty()) return probe;
  probe.metrics_host_ = metrics->host;
  probe.metrics_port_ = metrics->port;
  return probe;
}

CpuMark CpuProbe::Mark() const {
  CpuMark mark;
  mark.own_seconds = OwnCpuSeconds();
  mark.machine = ReadMachineTicks();
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
