#include "tools/bench/report.h"

#include "absl/strings/str_format.h"
#include "services/common/status_util.h"
#include "tools/bench/level_client.h"

namespace stockpile::bench {
namespace {

double Ms(uint64_t micros) { return static_cast<double>(micros) / 1000.0; }

nlohmann::json LatencyJson(const Histogram& h) {
  return {{"count", h.count()},
          {"mean_ms", h.mean() / 1000.0},
          {"p50_ms", Ms(h.Quantile(0.5))},
          {"p99_ms", Ms(h.Quantile(0.99))},
          {"p999_ms", Ms(h.Quantile(0.999))},
          {"max_ms", Ms(h.max())}};
}

double Rate(uint64_t n, double seconds) { return seconds > 0 ? n / seconds : 0; }

// CPU microseconds per call (or movement).
double MicrosEach(double cpu_seconds, uint64_t n) { return n > 0 ? cpu_seconds * 1e6 / n : 0; }

}  // namespace

nlohmann::json ResultToJson(const DriverResult& r) {
  nlohmann::json j = {{"seconds", r.seconds},
                      {"calls", r.calls},
                      {"calls_per_s", Rate(r.calls, r.seconds)},
                      {"movements", r.movements},
                      {"movements_per_s", Rate(r.movements, r.seconds)},
                      {"balances_listed", r.balances_listed},
                      {"balances_per_s", Rate(r.balances_listed, r.seconds)},
                      {"errors", r.errors()},
                      {"latency", LatencyJson(r.all)}};
  nlohmann::json codes = nlohmann::json::object();
  for (size_t i = 0; i < r.codes.size(); ++i) {
    if (r.codes[i] > 0)
      codes[common::StatusCodeName(static_cast<grpc::StatusCode>(i))] = r.codes[i];
  }
  j["codes"] = codes;
  nlohmann::json kinds = nlohmann::json::object();
  for (int k = 0; k < kOpKinds; ++k) {
    if (r.latency[k].count() > 0)
      kinds[OpKindName(static_cast<OpKind>(k))] = LatencyJson(r.latency[k]);
  }
  j["by_kind"] = kinds;
  if (r.calls > 0 && r.client_cpu_seconds >= 0) {
    nlohmann::json cpu = {{"bench_seconds", r.client_cpu_seconds},
                          {"bench_us_per_call", MicrosEach(r.client_cpu_seconds, r.calls)}};
    if (r.server_cpu_seconds >= 0) {
      cpu["server_seconds"] = r.server_cpu_seconds;
      cpu["server_us_per_call"] = MicrosEach(r.server_cpu_seconds, r.calls);
      if (r.movements > 0) {
        cpu["server_us_per_movement"] = MicrosEach(r.server_cpu_seconds, r.movements);
      }
    }
    if (r.machine_busy_fraction >= 0) cpu["machine_busy_percent"] = 100 * r.machine_busy_fraction;
    j["cpu"] = cpu;
  }
  return j;
}

std::string ResultToText(const std::string& title, const DriverResult& r) {
  std::string out =
      absl::StrFormat("%s: %.1f s, %llu calls = %.0f calls/s", title, r.seconds,
                      static_cast<unsigned long long>(r.calls), Rate(r.calls, r.seconds));
  if (r.movements > 0)
    absl::StrAppendFormat(&out, ", %.0f movements/s", Rate(r.movements, r.seconds));
  if (r.balances_listed > 0) {
    absl::StrAppendFormat(&out, ", %.0f balances/s", Rate(r.balances_listed, r.seconds));
  }
  absl::StrAppendFormat(&out, "\n  latency ms: p50 %.2f  p99 %.2f  p999 %.2f  max %.2f\n",
                        Ms(r.all.Quantile(0.5)), Ms(r.all.Quantile(0.99)),
                        Ms(r.all.Quantile(0.999)), Ms(r.all.max()));
  for (int k = 0; k < kOpKinds; ++k) {
    const Histogram& h = r.latency[k];
    if (h.count() == 0) continue;
    absl::StrAppendFormat(&out, "  %-8s %9llu calls  p50 %.2f  p99 %.2f  p999 %.2f ms\n",
                          OpKindName(static_cast<OpKind>(k)),
                          static_cast<unsigned long long>(h.count()), Ms(h.Quantile(0.5)),
                          Ms(h.Quantile(0.99)), Ms(h.Quantile(0.999)));
  }
  if (r.calls > 0 && r.client_cpu_seconds >= 0) {
    absl::StrAppendFormat(&out, "  cpu per call: bench %.1f µs",
                          MicrosEach(r.client_cpu_seconds, r.calls));
    if (r.server_cpu_seconds >= 0) {
      absl::StrAppendFormat(&out, ", server %.1f µs", MicrosEach(r.server_cpu_seconds, r.calls));
      if (r.movements > r.calls) {
        absl::StrAppendFormat(&out, " (%.2f µs per movement)",
                              MicrosEach(r.server_cpu_seconds, r.movements));
      }
    } else {
      out += " (server: unknown; start it with --metrics-listen)";
    }
    if (r.machine_busy_fraction >= 0) {
      absl::StrAppendFormat(&out, "; machine %.0f %% busy", 100 * r.machine_busy_fraction);
    }
    out += "\n";
  }
  absl::StrAppendFormat(&out, "  errors: %llu", static_cast<unsigned long long>(r.errors()));
  for (size_t i = 1; i < r.codes.size(); ++i) {
    if (r.codes[i] > 0) {
      absl::StrAppendFormat(&out, "  %s=%llu",
                            common::StatusCodeName(static_cast<grpc::StatusCode>(i)),
                            static_cast<unsigned long long>(r.codes[i]));
    }
  }
  return out + "\n";
}

}  // namespace stockpile::bench
