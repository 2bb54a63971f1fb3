#pragma once

// A plain TCP connection, for the few places that talk to a port below gRPC: the metrics page
// fetch (tests and tools) and stockctl's "does anything still listen there?" after a failed call.

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stockpile::common {

// A connected socket descriptor (the caller closes it). UNAVAILABLE, naming host and port, when
// the name does not resolve or no address accepts within `timeout`.
absl::StatusOr<int> ConnectTcp(const std::string& host, int port,
                               absl::Duration timeout = absl::Seconds(5));

// Whether something accepts a TCP connection at "host:port" ("[::1]:port" for IPv6) within
// `timeout`. An address of another form (a gRPC target such as "dns:///x:1" or "unix:path")
// reads as listening: only a definite refusal says no.
bool AcceptsTcp(const std::string& address, absl::Duration timeout = absl::Seconds(1));

}  // namespace stockpile::common
