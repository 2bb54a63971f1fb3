#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/bench/histogram.h"
#include "tools/bench/world.h"

namespace stockpile::bench {

// What one call of the load does.
enum class OpKind { kReceive, kIssue, kHold, kRead, kBatch, kList, kEcho };
inline constexpr int kOpKinds = 7;
const char* OpKindName(OpKind kind);

// Weights of the single operations, e.g. "receive:40,issue:30,hold:10,read:20".
struct Mix {
  std::vector<std::pair<OpKind, int>> weights;
  int total = 0;
  OpKind Pick(uint64_t random) const;
  bool HasWrites() const;
};
absl::StatusOr<Mix> ParseMix(const std::string& text);

struct DriverOptions {
  enum class Mode { kOps, kList, kEcho };
  Mode mode = Mode::kOps;
  int clients = 64;
  int channels = 4;
  std::chrono::milliseconds duration{10'000};
  std::chrono::milliseconds warmup{1'000};
  int64_t max_ops = 0;  // > 0: stop after this many calls instead of the duration
  Mix mix;
  int batch = 1;  // > 1: ApplyBatch calls of `batch` writes drawn from the mix
  int list_page_size = 10'000;
  std::string run_id;  // makes request and hold ids unique per run
  std::string actor = "stockpile-bench";
  int64_t hold_ttl_seconds = 600;
  // Called when the measured phase starts and ends (after the warm-up; the whole run with
  // --ops), e.g. to read CPU counters over exactly that phase.
  std::function<void()> on_measure_start;
  std::function<void()> on_measure_end;
};

struct DriverResult {
  double seconds = 0;
  uint64_t calls = 0;
  uint64_t movements = 0;  // writes acknowledged (batched ones counted each)
  uint64_t balances_listed = 0;
  std::array<uint64_t, 17> codes{};         // calls by final status code (index 0 = OK)
  std::array<Histogram, kOpKinds> latency;  // per kind, µs
  Histogram all;
  // CPU seconds over the measured phase: the target's (negative: not known) and this process's.
  double server_cpu_seconds = -1;
  double client_cpu_seconds = -1;
  double machine_busy_fraction = -1;  // of the whole machine's CPU time; negative: not known
  uint64_t errors() const;
};

// Closed-loop load: `clients` concurrent calls (each starts its next call when the previous one
// completes), through gRPC's callback API so no thread per client is needed.
DriverResult RunLoad(const std::string& address, const BenchWorld& world,
                     const DriverOptions& options);

}  // namespace stockpile::bench
