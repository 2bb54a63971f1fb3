#include "tests/testutil/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

namespace stockpile::testing {

std::string BinaryDir() { return STOCKPILE_BINARY_DIR; }
std::string SourceDir() { return STOCKPILE_SOURCE_DIR; }
std::string ReferenceDataDir() {
  if (const char* env = std::getenv("STOCKPILE_REFERENCE_DATA"); env != nullptr && *env) {
    return env;
  }
  return SourceDir() + "/../shared/data";
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/stockpile-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) std::abort();
  path_ = buf.data();
}

TempDir::~TempDir() {
  const char* keep = std::getenv("STOCKPILE_KEEP_TMP");
  if (keep != nullptr && std::string(keep) == "1") return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

namespace {

// Binds 127.0.0.1:port (0: any) and releases it; the port bound, or 0.
int TryBind(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return 0;
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// The kernel's range for outgoing connections' local ports.
int EphemeralLow() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  return in >> low ? low : 0;
}

// Ports this process handed out (FreePort, ClusterPortOffset); see FreePort.
std::mutex handed_out_mu;
std::set<int> handed_out;

}  // namespace

int ClusterPortOffset(std::span<const int> layout) {
  const auto [lowest, highest] = std::minmax_element(layout.begin(), layout.end());
  const int ephemeral = EphemeralLow() > 0 ? EphemeralLow() : 32768;
  const int min_offset = std::max(1, 1025 - *lowest);
  const int max_offset = ephemeral - 1 - *highest;
  if (max_offset < min_offset) return -1;
  std::mt19937 rng(std::random_device{}());
  std::lock_guard<std::mutex> lock(handed_out_mu);
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int offset = min_offset + static_cast<int>(rng() % (max_offset - min_offset + 1));
    if (std::all_of(layout.begin(), layout.end(), [&](int port) {
          return !handed_out.contains(port + offset) && !PortOpen(port + offset) &&
                 TryBind(port + offset) != 0;
        })) {
      for (int port : layout) handed_out.insert(port + offset);
      return offset;
    }
  }
  return -1;
}

int StartOnFreePortLayout(std::span<const int> layout, const std::function<bool(int)>& start,
                          const std::function<void()>& undo, int attempts) {
  for (int attempt = 0; attempt < attempts; ++attempt) {
    const int offset = ClusterPortOffset(layout);
    if (offset < 0) return -1;
    if (start(offset)) return offset;
    undo();
  }
  return -1;
}

// Ports below the kernel's ephemeral range: a port taken from that range (bind to 0) can be
// handed to any outgoing connection of a parallel test between its release here and the
// server's bind, and the server then fails to start (seen as a 30 s start-up timeout). For
// the same reason a port handed out once is never handed out again by this process: a test
// asks for several before anything binds them (a level's gRPC and metrics ports), and two
// alike made one server fail to start.
int FreePort() {
  constexpr int kFirst = 10000;
  std::lock_guard<std::mutex> lock(handed_out_mu);
  auto hand_out = [](int port) {
    if (port == 0 || !handed_out.insert(port).second) return 0;
    return port;
  };
  const int end = EphemeralLow();
  if (end > kFirst + 1000) {
    static std::mt19937 random(std::random_device{}() ^ static_cast<unsigned>(getpid()));
    std::uniform_int_distribution<int> pick(kFirst, end - 1);
    for (int attempt = 0; attempt < 200; ++attempt) {
      const int port = pick(random);
      if (handed_out.contains(port)) continue;
      if (hand_out(TryBind(port)) != 0) return port;
    }
  }
  for (int attempt = 0; attempt < 200; ++attempt) {
    if (int port = hand_out(TryBind(0)); port != 0) return port;
  }
  return -1;
}

bool PortOpen(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

bool WaitFor(const std::function<bool()>& ready, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (ready()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Subprocess::Subprocess(std::vector<std::string> argv, std::string log_path,
                       std::map<std::string, std::string> extra_env)
    : argv_(std::move(argv)), log_path_(std::move(log_path)), extra_env_(std::move(extra_env)) {}

Subprocess::~Subprocess() {
  if (pid_ > 0 && running()) {
    kill(pid_, SIGKILL);
    Wait(std::chrono::seconds(10));
  }
}

bool Subprocess::Start() {
  wait_status_ = -1;
  pid_ = fork();
  if (pid_ < 0) return false;
  if (pid_ == 0) {
    int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    // Servers started by tests run in development mode (plaintext, no tokens) unless a test
    // asks otherwise with STOCKPILE_INSECURE=0: TLS and token tests set it themselves.
    setenv("STOCKPILE_INSECURE", "1", 0);
    for (const auto& [k, v] : extra_env_) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (auto& a : argv_) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  return true;
}

bool Subprocess::running() {
  if (pid_ <= 0 || wait_status_ != -1) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    wait_status_ = status;
    return false;
  }
  return r == 0;
}

void Subprocess::Signal(int sig) {
  if (pid_ > 0 && wait_status_ == -1) kill(pid_, sig);
}

int Subprocess::Wait(std::chrono::milliseconds timeout) {
  if (wait_status_ != -1) return wait_status_;
  WaitFor([&] { return !running(); }, timeout);
  return wait_status_;
}

int Subprocess::Stop(int sig, std::chrono::milliseconds timeout) {
  Signal(sig);
  int st = Wait(timeout);
  if (st == -1) {
    Signal(SIGKILL);
    st = Wait(std::chrono::seconds(5));
  }
  return st;
}

std::string Subprocess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int RunCommand(const std::vector<std::string>& argv, std::string* output,
               const std::string& stdin_text, std::chrono::milliseconds timeout) {
  int in_pipe[2], out_pipe[2];
  if (pipe(in_pipe) != 0 || pipe(out_pipe) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(out_pipe[1], 2);
    // Only 0-2 may refer to the pipes: a daemon the command starts must not keep them open.
    close(in_pipe[0]);
    close(in_pipe[1]);
    close(out_pipe[0]);
    close(out_pipe[1]);
    std::vector<char*> args;
    std::vector<std::string> copy = argv;
    for (auto& a : copy) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  std::thread writer([&] {
    size_t off = 0;
    while (off < stdin_text.size()) {
      ssize_t n = write(in_pipe[1], stdin_text.data() + off, stdin_text.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(in_pipe[1]);
  });
  std::string out;
  char buf[65536];
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
  int status = -1;
  bool exited = false;
  while (true) {
    ssize_t n = read(out_pipe[0], buf, sizeof(buf));
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      continue;  // read once more: the pipe may still hold output
    }
    // Done at end of file, or once the command has exited and nothing more is buffered (a
    // process it left running may hold the pipe open).
    if (n == 0 || (exited && n < 0 && errno == EAGAIN)) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  close(out_pipe[0]);
  if (!exited) waitpid(pid, &status, 0);  // end of output: the command is finishing
  writer.join();
  if (output != nullptr) *output = std::move(out);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

}  // namespace stockpile::testing
