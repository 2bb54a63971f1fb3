#include "services/common/metrics/scrape_client.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/tcp_connect.h"

namespace stockpile::metrics {
namespace {

// Owns a socket descriptor.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

absl::StatusOr<std::string> ReadAll(int fd, absl::Time deadline) {
  std::string response;
  char buffer[16384];
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    pollfd waiting{fd, POLLIN, 0};
    if (left <= absl::ZeroDuration() ||
        poll(&waiting, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) == 0) {
      return absl::DeadlineExceededError("metrics page not received in time");
    }
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::UnavailableError(absl::StrCat("read: ", std::strerror(errno)));
    if (n == 0) return response;
    response.append(buffer, static_cast<size_t>(n));
  }
}

// Reads `name{a="x",b="y"}` or `name` from the front of `line`.
bool ConsumeNameAndLabels(absl::string_view& line, Sample& sample) {
  size_t end = 0;
  while (end < line.size() && line[end] != '{' && line[end] != ' ') ++end;
  sample.name = std::string(line.substr(0, end));
  line.remove_prefix(end);
  if (line.empty() || line.front() != '{') return !sample.name.empty();
  line.remove_prefix(1);
  while (!line.empty() && line.front() != '}') {
    const size_t eq = line.find("=\"");
    if (eq == absl::string_view::npos) return false;
    std::string label(line.substr(0, eq));
    line.remove_prefix(eq + 2);
    std::string value;
    while (!line.empty() && line.front() != '"') {
      if (line.front() == '\\' && line.size() > 1) {
        line.remove_prefix(1);
        value.push_back(line.front() == 'n' ? '\n' : line.front());
      } else {
        value.push_back(line.front());
      }
      line.remove_prefix(1);
    }
    if (line.empty()) return false;
    line.remove_prefix(1);  // closing quote
    if (!line.empty() && line.front() == ',') line.remove_prefix(1);
    sample.labels.emplace(std::move(label), std::move(value));
  }
  if (line.empty()) return false;
  line.remove_prefix(1);  // '}'
  return true;
}

bool ParseValue(absl::string_view text, double& value) {
  if (text == "+Inf" || text == "-Inf" || text == "NaN") {
    value = text == "NaN" ? NAN : (text.front() == '+' ? HUGE_VAL : -HUGE_VAL);
    return true;
  }
  return absl::SimpleAtod(text, &value);
}

}  // namespace

absl::StatusOr<std::string> FetchMetricsPage(const std::string& host, int port,
                                             absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<int> fd = common::ConnectTcp(host, port, timeout);
  if (!fd.ok()) return fd.status();
  Socket socket(*fd);
  const std::string request = absl::StrCat("GET /metrics HTTP/1.0\r\nHost: ", host, "\r\n\r\n");
  if (send(socket.fd(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return absl::UnavailableError(absl::StrCat("send: ", std::strerror(errno)));
  }
  absl::StatusOr<std::string> response = ReadAll(socket.fd(), deadline);
  if (!response.ok()) return response.status();
  const size_t body = response->find("\r\n\r\n");
  if (!absl::StartsWith(*response, "HTTP/1.") || body == std::string::npos ||
      response->substr(9, 3) != "200") {
    return absl::InternalError(
        absl::StrCat("unexpected answer from /metrics: ", response->substr(0, 200)));
  }
  return response->substr(body + 4);
}

absl::StatusOr<std::vector<Sample>> ParseMetricsPage(absl::string_view page) {
  std::vector<Sample> samples;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    Sample sample;
    std::vector<absl::string_view> rest;
    if (ConsumeNameAndLabels(line, sample)) {
      rest = absl::StrSplit(line, ' ', absl::SkipEmpty());
    }
    if (rest.empty() || !ParseValue(rest[0], sample.value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics page line ", line_number, " is not a sample: ", line));
    }
    samples.push_back(std::move(sample));
  }
  return samples;
}

double SumSamples(const std::vector<Sample>& samples, absl::string_view name,
                  const std::map<std::string, std::string>& labels) {
  double sum = 0;
  for (const Sample& sample : samples) {
    if (sample.name != name) continue;
    bool match = true;
    for (const auto& [label, value] : labels) {
      auto it = sample.labels.find(label);
      match = match && it != sample.labels.end() && it->second == value;
    }
    if (match) sum += sample.value;
  }
  return sum;
}

}  // namespace stockpile::metrics
