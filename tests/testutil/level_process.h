#pragma once

// A real stockpile-level process for integration and fault tests: fresh database in a TempDir,
// free loopback ports, restartable on the same ports and database.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "stockpile/v1/level_service.grpc.pb.h"
#include "tests/testutil/process.h"

namespace stockpile::testing {

class LevelProcess {
 public:
  LevelProcess(const TempDir& dir, std::string level, std::string regions,
               std::vector<std::string> extra_flags = {},
               std::map<std::string, std::string> env = {})
      : dir_(dir.Sub(level + "-" + regions)),
        env_(std::move(env)),
        level_(std::move(level)),
        regions_(std::move(regions)),
        extra_flags_(std::move(extra_flags)),
        port_(FreePort()),
        metrics_port_(FreePort()) {}

  // Starts (or restarts) the process and waits until it serves; false after 30 s.
  bool Start() {
    std::remove((dir_ + ".port").c_str());
    std::vector<std::string> argv = {BinaryDir() + "/bin/stockpile-level",
                                     "--level=" + level_,
                                     "--regions=" + regions_,
                                     "--db=" + dir_ + "/db",
                                     "--reference-data=" + ReferenceDataDir(),
                                     "--listen=127.0.0.1:" + std::to_string(port_),
                                     "--metrics-listen=127.0.0.1:" + std::to_string(metrics_port_),
                                     "--port-file=" + dir_ + ".port"};
    argv.insert(argv.end(), extra_flags_.begin(), extra_flags_.end());
    argv.insert(argv.begin(), launcher_.begin(), launcher_.end());
    process_ = std::make_unique<Subprocess>(argv, dir_ + ".log", env_);
    if (!process_->Start()) return false;
    return WaitFor(
        [&] {
          std::ifstream in(dir_ + ".port");
          int p = 0;
          return static_cast<bool>(in >> p) && p == port_;
        },
        std::chrono::seconds(30));
  }
  // Words put before the binary on the next Start (say a shell that sets a limit, then execs
  // "$@"); empty: the binary itself.
  void set_launcher(std::vector<std::string> launcher) { launcher_ = std::move(launcher); }
  int Stop(int sig = 15) { return process_ ? process_->Stop(sig) : -1; }
  void Kill() {
    process_->Signal(9);
    process_->Wait(std::chrono::seconds(10));
  }
  Subprocess& process() { return *process_; }
  std::string Log() const { return process_ ? process_->Log() : ""; }
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::shared_ptr<grpc::Channel> Channel() const {
    return grpc::CreateChannel(address(), grpc::InsecureChannelCredentials());
  }
  std::unique_ptr<stockpile::v1::LevelService::Stub> Stub() const {
    return stockpile::v1::LevelService::NewStub(Channel());
  }

 private:
  std::string dir_;
  std::map<std::string, std::string> env_;
  std::string level_;
  std::string regions_;
  std::vector<std::string> extra_flags_;
  std::vector<std::string> launcher_;
  int port_;
  int metrics_port_;
  std::unique_ptr<Subprocess> process_;
};

// A client context with a deadline (tests never wait forever).
inline std::unique_ptr<grpc::ClientContext> Deadline(int seconds = 10) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return ctx;
}

}  // namespace stockpile::testing
