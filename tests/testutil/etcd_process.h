#pragma once

// A real etcd server for tests: free loopback ports, its own data dir, started and stopped by PID.
// Restart() reuses the same ports and data dir, as an operator restarting etcd would.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/testutil/process.h"

namespace stockpile::testing {

// PEM files for an etcd that serves clients over TLS and requires client certificates.
struct EtcdTlsFiles {
  std::string ca;           // --trusted-ca-file (and etcdctl --cacert)
  std::string server_cert;  // --cert-file
  std::string server_key;   // --key-file
  std::string client_cert;  // for etcdctl's health checks
  std::string client_key;
};

class EtcdProcess {
 public:
  // Data dir and log live under `base_dir` (normally a TempDir's path).
  explicit EtcdProcess(std::string base_dir);
  ~EtcdProcess();  // kills etcd if still running
  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;

  // Call before Start(): serve clients over https with --client-cert-auth.
  void set_tls(EtcdTlsFiles tls) { tls_ = std::move(tls); }
  // Call before Start(): more etcd flags, appended after ours.
  void set_extra_args(std::vector<std::string> args) { extra_args_ = std::move(args); }

  // Starts etcd and waits until it serves requests; false (with the log in `error`) otherwise.
  bool Start(std::chrono::milliseconds timeout = std::chrono::seconds(15),
             std::string* error = nullptr);
  bool Restart(std::chrono::milliseconds timeout = std::chrono::seconds(15),
               std::string* error = nullptr) {
    return Start(timeout, error);
  }
  void Kill();  // SIGKILL and reap
  void Stop();  // SIGTERM, then SIGKILL after 10 s
  bool running();
  pid_t pid() const;

  std::string endpoint() const;  // "127.0.0.1:<client port>"
  int client_port() const { return client_port_; }
  const std::string& log_path() const { return log_path_; }
  std::string Log() const;

  // Runs etcdctl against this server; returns its exit code, output in `output`.
  int Etcdctl(const std::vector<std::string>& args, std::string* output) const;
  // True when `etcdctl endpoint health` says so.
  bool Healthy() const;

 private:
  std::string base_dir_;
  std::string data_dir_;
  std::string log_path_;
  int client_port_ = 0;
  int peer_port_ = 0;
  std::unique_ptr<Subprocess> process_;
  std::optional<EtcdTlsFiles> tls_;
  std::vector<std::string> extra_args_;
};

}  // namespace stockpile::testing
