#pragma once

// stockpile-bench's catalogue modes (docs/bench.md, "Catalogue"):
//   catalogue-load    time until a catalogue has applied everything its level services hold
//                     (the national load, or a catch-up from a backlog), entries/s, its RSS;
//   catalogue-rollup  GetRollup latency (a province and one item by default);
//   catalogue-lag     single receipts at a fixed rate spread over the level services, and the
//                     time from each acknowledgement until the catalogue reports that sequence
//                     applied (replication lag).

#include <chrono>
#include <string>
#include <vector>

namespace stockpile::bench {

struct CatalogueBenchOptions {
  std::string catalogue;            // HOST:PORT of stockpile-catalogue
  std::vector<std::string> levels;  // HOST:PORT of level services (load: heads; lag: writes)
  int clients = 1;
  std::chrono::milliseconds duration{10'000};
  std::chrono::milliseconds warmup{1'000};
  std::chrono::milliseconds timeout{600'000};
  double rate = 5000;   // lag: receipts per second over all levels
  int warehouses = 20;  // lag: bench warehouses per level
  int pid = 0;          // the catalogue's process id, for VmRSS / VmHWM
  std::string region;   // rollup: fixed region ("" = a random province per call)
  std::string item;     // rollup: fixed item ("" = a random item per call)
  std::string reference_data;
  bool json = false;
};

int RunCatalogueLoad(const CatalogueBenchOptions& options);
int RunCatalogueRollup(const CatalogueBenchOptions& options);
int RunCatalogueLag(const CatalogueBenchOptions& options);

}  // namespace stockpile::bench
