#pragma once

// Where deploy/local/cluster.sh may run during a test. The script puts its processes on fixed
// ports moved by STOCKPILE_PORT_OFFSET; the tests around it bind port 0 and open connections,
// which take ports from the kernel's ephemeral range. An offset that keeps the whole layout
// below that range cannot collide with them; one inside it could lose a port between this check
// and the process binding it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <span>

#include "tests/testutil/process.h"

namespace stockpile::testing {

inline bool PortBindable(int port) {
  if (PortOpen(port)) return false;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// The first port the kernel hands out for port 0 and outgoing connections (32768 by default).
inline int EphemeralPortsStart() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  return in >> low && low > 0 ? low : 32768;
}

// An offset that moves every port of `layout` onto a free port below the ephemeral range (and
// above 1024); -1 when 50 random tries found none.
inline int ClusterPortOffset(std::span<const int> layout) {
  const auto [lowest, highest] = std::minmax_element(layout.begin(), layout.end());
  const int min_offset = std::max(1, 1025 - *lowest);
  const int max_offset = EphemeralPortsStart() - 1 - *highest;
  if (max_offset < min_offset) return -1;
  std::mt19937 rng(std::random_device{}());
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int offset = min_offset + static_cast<int>(rng() % (max_offset - min_offset + 1));
    if (std::all_of(layout.begin(), layout.end(),
                    [&](int port) { return PortBindable(port + offset); })) {
      return offset;
    }
  }
  return -1;
}

}  // namespace stockpile::testing
