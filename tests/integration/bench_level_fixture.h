#pragma once

// Starts a real stockpile-level process for the bench/demo integration tests.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "stockpile/v1/level_service.grpc.pb.h"
#include "tests/testutil/process.h"

namespace stockpile::testing {

class LevelProcess {
 public:
  LevelProcess(const TempDir& dir, const std::string& level, const std::string& regions)
      : port_file_(dir.Sub(level + ".port")),
        process_(
            {BinaryDir() + "/bin/stockpile-level", "--level=" + level, "--regions=" + regions,
             "--db=" + dir.Sub(level + "-db"), "--reference-data=" + ReferenceDataDir(),
             "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--port-file=" + port_file_},
            dir.Sub(level + ".log")) {}

  // Starts the process and waits until it wrote its port; false on failure.
  bool Start() {
    if (!process_.Start()) return false;
    bool ready = WaitFor(
        [&] {
          std::ifstream in(port_file_);
          return static_cast<bool>(in >> port_) && port_ > 0;
        },
        std::chrono::seconds(30));
    if (!ready) ADD_FAILURE() << "stockpile-level did not start:\n" << process_.Log();
    return ready;
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::unique_ptr<stockpile::v1::LevelService::Stub> Stub() const {
    return stockpile::v1::LevelService::NewStub(
        grpc::CreateChannel(address(), grpc::InsecureChannelCredentials()));
  }
  Subprocess& process() { return process_; }

 private:
  std::string port_file_;
  Subprocess process_;
  int port_ = 0;
};

// The JSON document a tool printed last (with --json it starts on a line holding only "{").
inline nlohmann::json LastJsonDocument(const std::string& output) {
  size_t start = output.rfind("\n{\n");
  start = start == std::string::npos ? (output.rfind("{\n", 0) == 0 ? 0 : start) : start + 1;
  size_t end = output.rfind('}');
  if (start == std::string::npos || end == std::string::npos || end < start) {
    ADD_FAILURE() << "no JSON in output:\n" << output;
    return nlohmann::json::value_t::discarded;
  }
  return nlohmann::json::parse(output.substr(start, end - start + 1), nullptr, false);
}

}  // namespace stockpile::testing
