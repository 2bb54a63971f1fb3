#include "tests/testutil/etcd_process.h"

#include <signal.h>

#include <fstream>
#include <sstream>

namespace stockpile::testing {

EtcdProcess::EtcdProcess(std::string base_dir)
    : base_dir_(std::move(base_dir)),
      data_dir_(base_dir_ + "/etcd-data"),
      log_path_(base_dir_ + "/etcd.log") {}

EtcdProcess::~EtcdProcess() { Kill(); }

std::string EtcdProcess::endpoint() const { return "127.0.0.1:" + std::to_string(client_port_); }

bool EtcdProcess::Start(std::chrono::milliseconds timeout, std::string* error) {
  if (running()) return true;
  if (client_port_ == 0) {
    client_port_ = FreePort();
    peer_port_ = FreePort();
  }
  const std::string client_url = (tls_ ? "https://" : "http://") + endpoint();
  const std::string peer_url = "http://127.0.0.1:" + std::to_string(peer_port_);
  std::vector<std::string> argv = {"etcd", "--name", "test", "--data-dir", data_dir_};
  argv.insert(argv.end(), {"--listen-client-urls", client_url, "--advertise-client-urls",
                           client_url, "--listen-peer-urls", peer_url,
                           "--initial-advertise-peer-urls", peer_url, "--initial-cluster",
                           "test=" + peer_url, "--logger", "zap", "--log-outputs", "stderr"});
  if (tls_) {
    argv.insert(argv.end(), {"--cert-file", tls_->server_cert, "--key-file", tls_->server_key,
                             "--trusted-ca-file", tls_->ca, "--client-cert-auth"});
  }
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  process_ = std::make_unique<Subprocess>(std::move(argv), log_path_);
  if (!process_->Start()) {
    if (error != nullptr) *error = "fork failed";
    return false;
  }
  const bool healthy =
      WaitFor([&] { return !process_->running() || Healthy(); }, timeout) && process_->running();
  if (!healthy && error != nullptr) *error = "etcd did not become healthy; log:\n" + Log();
  return healthy;
}

void EtcdProcess::Kill() {
  if (process_ && process_->running()) {
    process_->Signal(SIGKILL);
    process_->Wait(std::chrono::seconds(10));
  }
}

void EtcdProcess::Stop() {
  if (process_ && process_->running()) process_->Stop(SIGTERM, std::chrono::seconds(10));
}

bool EtcdProcess::running() { return process_ && process_->running(); }

pid_t EtcdProcess::pid() const { return process_ ? process_->pid() : -1; }

std::string EtcdProcess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int EtcdProcess::Etcdctl(const std::vector<std::string>& args, std::string* output) const {
  std::vector<std::string> argv = {"etcdctl", "--endpoints=" + endpoint(), "--dial-timeout=1s",
                                   "--command-timeout=3s"};
  if (tls_) {
    argv.insert(argv.end(), {"--cacert=" + tls_->ca, "--cert=" + tls_->client_cert,
                             "--key=" + tls_->client_key});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, output, "", std::chrono::seconds(10));
}

bool EtcdProcess::Healthy() const {
  if (client_port_ == 0 || !PortOpen(client_port_)) return false;
  std::string output;
  return Etcdctl({"endpoint", "health"}, &output) == 0;
}

}  // namespace stockpile::testing
