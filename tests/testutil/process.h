#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace stockpile::testing {

// Directory of the built binaries and of the source tree (set by CMake).
std::string BinaryDir();
std::string SourceDir();
// ../shared/data next to the repository.
std::string ReferenceDataDir();

// A fresh directory under $TMPDIR, removed when the object dies (unless STOCKPILE_KEEP_TMP=1).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A free TCP port on 127.0.0.1, outside the kernel's range for outgoing connections (bound and
// released; another test can take it only by picking the same one at the same moment), and
// never one this process was given before.
int FreePort();

// For deploy/local/cluster.sh, which puts its processes on fixed ports moved by
// STOCKPILE_PORT_OFFSET: an offset that moves every port of `layout` onto a free port above
// 1024 and, for the reason FreePort gives, below the kernel's ephemeral range; -1 when 50
// random tries found none.
int ClusterPortOffset(std::span<const int> layout);

// Ports are probed free, then bound by the cluster's processes: a parallel test may take one in
// between, and the start then fails. Calls `start(offset)` on a new ClusterPortOffset layout
// until it succeeds, `undo()` after each failed attempt, at most `attempts` times. Returns the
// offset that started, or -1.
int StartOnFreePortLayout(std::span<const int> layout, const std::function<bool(int)>& start,
                          const std::function<void()>& undo, int attempts = 3);

// Polls `ready` every 20 ms until it returns true or `timeout` passes.
bool WaitFor(const std::function<bool()>& ready, std::chrono::milliseconds timeout);

// A child process started with execv; stdout and stderr go to `log_path`.
// The destructor kills it (SIGKILL) if it is still running.
class Subprocess {
 public:
  Subprocess(std::vector<std::string> argv, std::string log_path,
             std::map<std::string, std::string> extra_env = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  bool Start();
  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int sig);
  // Sends `sig` and waits up to `timeout`; returns the exit status (or -1 if still running).
  int Stop(int sig = 15, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Waits for exit; returns the raw wait status, or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  std::string Log() const;
  const std::string& log_path() const { return log_path_; }

 private:
  std::vector<std::string> argv_;
  std::string log_path_;
  std::map<std::string, std::string> extra_env_;
  pid_t pid_ = -1;
  int wait_status_ = -1;
};

// Runs a command to completion; returns its exit code and fills `output` (stdout+stderr).
int RunCommand(const std::vector<std::string>& argv, std::string* output,
               const std::string& stdin_text = "",
               std::chrono::milliseconds timeout = std::chrono::seconds(120));

// True when a TCP connection to 127.0.0.1:port succeeds.
bool PortOpen(int port);

}  // namespace stockpile::testing
