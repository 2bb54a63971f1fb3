#pragma once

// A plain TCP connection, for the few places that talk to a port below gRPC: the metrics page
// fetch (tests and tools) and stockctl's "does anything still listen there?" after a failed call.

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace stockpile::common {

// "host:port" or "[v6]:port" (":port" gives an empty host) split; nullopt when there is no
// numeric port after the last ':' or the address is a gRPC target ("dns:///x:1", "unix:path").
struct HostPort {
  std::string host;
  int port = 0;
};
std::optional<HostPort> SplitHostPort(absl::string_view address);

// A connected socket descriptor (the caller closes it). UNAVAILABLE, naming host and port, when
// the name does not resolve or no address accepts within `timeout`.
absl::StatusOr<int> ConnectTcp(const std::string& host, int port,
                               absl::Duration timeout = absl::Seconds(5));

// Whether something accepts a TCP connection at "host:port" ("[::1]:port" for IPv6) within
// `timeout`. An address of another form (a gRPC target such as "dns:///x:1" or "unix:path")
// reads as listening: only a definite refusal says no.
bool AcceptsTcp(const std::string& address, absl::Duration timeout = absl::Seconds(1));

}  // namespace stockpile::common
