#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "stockpile/v1/level_service.grpc.pb.h"

namespace stockpile::bench {

// A connection to one level instance and what it says about itself.
struct LevelTarget {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<stockpile::v1::LevelService::Stub> stub;
  stockpile::v1::InstanceInfo info;
};

// Opens a channel of its own (separate TCP connection when `index` differs) to `address`.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address, int index);

// What every channel MakeChannel opens presents (default: plaintext, for a service run with
// --insecure). Set once, before the first channel: the bench's TLS and token flags.
void SetChannelCredentials(std::shared_ptr<grpc::ChannelCredentials> credentials);

// Keeps `channel` open until the process ends. A load run ends from inside its last completion
// callback; a channel whose last reference then went away on a gRPC callback thread would make
// gRPC 1.51 tear those threads down from one of them (grpc/grpc#32584; the catalogue-lag mode
// hit it as a double free under ASan).
void KeepUntilExit(std::shared_ptr<grpc::Channel> channel);

// The first channel to `address` on which `answers` returns true, trying a fresh channel every
// few milliseconds until `timeout` passes (then nullptr). A start-up probe needs a fresh one:
// a channel that failed to connect waits out gRPC's reconnect backoff (1 s, x1.6, ... up to
// 2 min) before it tries again, so a server that came up meanwhile would be seen seconds late,
// and minutes late after a long start.
std::shared_ptr<grpc::Channel> FirstAnsweringChannel(
    const std::string& address, std::chrono::milliseconds timeout,
    const std::function<bool(const std::shared_ptr<grpc::Channel>&)>& answers);

// Connects and calls GetInstanceInfo (waits up to `timeout` for the server to answer).
absl::StatusOr<std::unique_ptr<LevelTarget>> ConnectLevel(const std::string& address,
                                                          std::chrono::milliseconds timeout);

// Days since 1970-01-01 today (UTC).
int32_t TodayDays();

// True when `code` starts with one of `prefixes` (an empty list hosts everything).
bool CoveredBy(absl::string_view code, const std::vector<std::string>& prefixes);

// Longest prefix among `prefixes` covering `code`; -1 if none.
int LongestCoveringPrefix(absl::string_view code, const std::vector<std::string>& prefixes);

inline grpc::Status CallWithDeadline(std::chrono::milliseconds timeout, auto&& call) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  return call(&ctx);
}

}  // namespace stockpile::bench
