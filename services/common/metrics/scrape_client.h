#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace stockpile::metrics {

// Fetches http://host:port/metrics with a plain HTTP/1.0 GET (for tests and tools; Prometheus
// is the real scraper). UNAVAILABLE when the connection fails, DEADLINE_EXCEEDED on timeout,
// INTERNAL for a non-200 answer.
absl::StatusOr<std::string> FetchMetricsPage(const std::string& host, int port,
                                             absl::Duration timeout = absl::Seconds(5));

// One line of the text exposition format: name{labels} value.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Parses every sample line of a page (comments skipped); INVALID_ARGUMENT with the line number
// for a line that is not a sample.
absl::StatusOr<std::vector<Sample>> ParseMetricsPage(absl::string_view page);

// Sum of the samples called `name` whose labels include all of `labels` (0 when none match):
//   SumSamples(samples, "grpc_server_handled_total", {{"grpc_method", "Check"},
//                                                     {"grpc_code", "NOT_FOUND"}})
double SumSamples(const std::vector<Sample>& samples, absl::string_view name,
                  const std::map<std::string, std::string>& labels = {});

}  // namespace stockpile::metrics
