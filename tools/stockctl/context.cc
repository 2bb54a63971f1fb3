#include "tools/stockctl/context.h"

#include <chrono>
#include <iostream>

#include "tools/stockctl/cli_util.h"
#include "tools/stockctl/exit_codes.h"

namespace stockpile::stockctl {

v1::LevelService::Stub& Context::stub() {
  if (!stub_) {
    channel_ = grpc::CreateChannel(options_.server, grpc::InsecureChannelCredentials());
    stub_ = v1::LevelService::NewStub(channel_);
  }
  return *stub_;
}

std::unique_ptr<grpc::ClientContext> Context::NewCall() const {
  auto call = std::make_unique<grpc::ClientContext>();
  const auto timeout =
      std::chrono::milliseconds(static_cast<int64_t>(options_.timeout_seconds * 1000.0));
  call->set_deadline(std::chrono::system_clock::now() + timeout);
  return call;
}

const std::string& Context::RequestId() {
  if (!request_id_.empty()) return request_id_;
  request_id_ = options_.request_id.empty() ? NewRequestId() : options_.request_id;
  (json() ? std::cerr : std::cout) << "request-id: " << request_id_ << "\n";
  return request_id_;
}

void Context::Print(const std::string& human, const std::string& json_text) const {
  if (json()) {
    std::cout << json_text << "\n";
  } else {
    std::cout << human;
  }
  std::cout.flush();
}

int Context::Fail(const grpc::Status& status) {
  std::cerr << "stockctl: " << StatusCodeName(status.error_code()) << ": " << status.error_message()
            << "\n";
  const int code = ExitCodeFor(status.error_code());
  if (code == kExitRetryable && !request_id_.empty()) {
    std::cerr << "stockctl: safe to retry with --request-id=" << request_id_ << "\n";
  }
  return code;
}

int Context::UsageError(const std::string& message) const {
  std::cerr << "stockctl: USAGE: " << message << "\n";
  return kExitUsage;
}

}  // namespace stockpile::stockctl
