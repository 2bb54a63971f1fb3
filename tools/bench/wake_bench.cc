// stockpile-wake-bench: what handing work to another thread costs on this machine. Two threads
// pass a token back and forth over two eventfds; prints the mean round trip and the CPU the
// process was charged per round trip. Run it free, then pinned to one CPU (taskset -c 0): on
// the development VM a wake-up that has to bring a halted vCPU back cost ~90 µs, one on the
// same CPU ~3 µs (docs/bench.md, session 16). A diagnostic of the machine, not of Stockpile.
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "tools/bench/own_cpu.h"

namespace {

bool Pass(int to, int from) {
  uint64_t token = 1;
  return write(to, &token, sizeof(token)) == sizeof(token) &&
         read(from, &token, sizeof(token)) == sizeof(token);
}

}  // namespace

int main(int argc, char** argv) {
  const long round_trips = argc > 1 ? std::atol(argv[1]) : 100'000;
  if (round_trips <= 0) {
    std::fprintf(stderr, "usage: stockpile-wake-bench [ROUND_TRIPS]\n");
    return 2;
  }
  const int ping = eventfd(0, 0), pong = eventfd(0, 0);
  if (ping < 0 || pong < 0) {
    std::perror("eventfd");
    return 1;
  }
  std::thread peer([&] {
    uint64_t token = 0;
    for (long i = 0; i < round_trips; ++i) {
      if (read(ping, &token, sizeof(token)) != sizeof(token)) return;
      if (write(pong, &token, sizeof(token)) != sizeof(token)) return;
    }
  });
  const double cpu_start = stockpile::bench::OwnCpuSeconds();
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < round_trips; ++i) {
    if (!Pass(ping, pong)) {
      std::perror("eventfd");
      return 1;
    }
  }
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = stockpile::bench::OwnCpuSeconds() - cpu_start;
  peer.join();
  std::printf("%ld round trips: %.2f µs each, %.2f µs of CPU each\n", round_trips,
              wall / double(round_trips) * 1e6, cpu / double(round_trips) * 1e6);
  return 0;
}
