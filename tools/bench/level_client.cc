#include "tools/bench/level_client.h"

#include <ctime>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/status_util.h"

namespace stockpile::bench {

namespace {
std::shared_ptr<grpc::ChannelCredentials>& Credentials() {
  static auto* credentials =
      new std::shared_ptr<grpc::ChannelCredentials>(grpc::InsecureChannelCredentials());
  return *credentials;
}
}  // namespace

void SetChannelCredentials(std::shared_ptr<grpc::ChannelCredentials> credentials) {
  Credentials() = std::move(credentials);
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address, int index) {
  grpc::ChannelArguments args;
  // A private subchannel pool plus a distinct argument gives each index its own connection,
  // so load is not funnelled through one HTTP/2 connection.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("stockpile.bench.channel_index", index);
  args.SetMaxReceiveMessageSize(256 * 1024 * 1024);
  args.SetMaxSendMessageSize(256 * 1024 * 1024);
  return grpc::CreateCustomChannel(address, Credentials(), args);
}

void KeepUntilExit(std::shared_ptr<grpc::Channel> channel) {
  static auto* kept = new std::vector<std::shared_ptr<grpc::Channel>>();  // never freed
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  kept->push_back(std::move(channel));
}

std::shared_ptr<grpc::Channel> FirstAnsweringChannel(
    const std::string& address, std::chrono::milliseconds timeout,
    const std::function<bool(const std::shared_ptr<grpc::Channel>&)>& answers) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  for (int attempt = 1; std::chrono::steady_clock::now() < give_up; ++attempt) {
    auto channel = MakeChannel(address, attempt);
    if (answers(channel)) return channel;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return nullptr;
}

absl::StatusOr<std::unique_ptr<LevelTarget>> ConnectLevel(const std::string& address,
                                                          std::chrono::milliseconds timeout) {
  auto target = std::make_unique<LevelTarget>();
  target->address = address;
  target->channel = MakeChannel(address, 0);
  target->stub = stockpile::v1::LevelService::NewStub(target->channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  ctx.set_wait_for_ready(true);
  grpc::Status s = target->stub->GetInstanceInfo(&ctx, {}, &target->info);
  if (!s.ok()) {
    return absl::UnavailableError(absl::StrCat("GetInstanceInfo on ", address,
                                               " failed: ", common::StatusCodeName(s.error_code()),
                                               " ", s.error_message()));
  }
  return target;
}

int32_t TodayDays() { return static_cast<int32_t>(std::time(nullptr) / 86400); }

bool CoveredBy(absl::string_view code, const std::vector<std::string>& prefixes) {
  return prefixes.empty() || LongestCoveringPrefix(code, prefixes) >= 0;
}

int LongestCoveringPrefix(absl::string_view code, const std::vector<std::string>& prefixes) {
  int best = -1;
  for (size_t i = 0; i < prefixes.size(); ++i) {
    if (absl::StartsWith(code, prefixes[i]) &&
        (best < 0 || prefixes[i].size() > prefixes[best].size())) {
      best = static_cast<int>(i);
    }
  }
  return best;
}

}  // namespace stockpile::bench
