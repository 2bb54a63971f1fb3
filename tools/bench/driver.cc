#include "tools/bench/driver.h"

#include <grpcpp/generic/generic_stub.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/status_util.h"
#include "tools/bench/level_client.h"
#include "tools/bench/rng.h"

namespace stockpile::bench {

namespace v1 = stockpile::v1;
using Clock = std::chrono::steady_clock;

const char* OpKindName(OpKind kind) {
  static const char* const kNames[] = {"receive", "issue", "hold", "read", "batch", "list", "echo"};
  return kNames[static_cast<int>(kind)];
}

OpKind Mix::Pick(uint64_t random) const {
  int r = static_cast<int>(random % static_cast<uint64_t>(total));
  for (const auto& [kind, weight] : weights) {
    if (r < weight) return kind;
    r -= weight;
  }
  return weights.back().first;
}

bool Mix::HasWrites() const {
  for (const auto& [kind, weight] : weights) {
    if (kind != OpKind::kRead && weight > 0) return true;
  }
  return false;
}

absl::StatusOr<Mix> ParseMix(const std::string& text) {
  Mix mix;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::vector<std::string> kv = absl::StrSplit(part, ':');
    int weight = 0;
    if (kv.size() != 2 || !absl::SimpleAtoi(kv[1], &weight) || weight < 0) {
      return absl::InvalidArgumentError(absl::StrCat("bad mix entry '", part, "'"));
    }
    OpKind kind;
    if (kv[0] == "receive")
      kind = OpKind::kReceive;
    else if (kv[0] == "issue")
      kind = OpKind::kIssue;
    else if (kv[0] == "hold")
      kind = OpKind::kHold;
    else if (kv[0] == "read")
      kind = OpKind::kRead;
    else
      return absl::InvalidArgumentError(absl::StrCat("unknown mix operation '", kv[0], "'"));
    mix.weights.emplace_back(kind, weight);
    mix.total += weight;
  }
  if (mix.total <= 0) return absl::InvalidArgumentError("the mix has no weight");
  return mix;
}

uint64_t DriverResult::errors() const {
  uint64_t n = 0;
  for (size_t i = 1; i < codes.size(); ++i) n += codes[i];
  return n;
}

namespace {

class LoadRun {
 public:
  LoadRun(const std::string& address, const BenchWorld& world, const DriverOptions& options)
      : world_(world), options_(options) {
    for (int i = 0; i < std::max(1, options.channels); ++i) {
      auto channel = MakeChannel(address, i + 1);
      KeepUntilExit(channel);  // see level_client.h
      stubs_.push_back(v1::LevelService::NewStub(channel));
      generic_.push_back(std::make_unique<grpc::GenericStub>(channel));
    }
    grpc::Slice empty("");
    echo_request_ = grpc::ByteBuffer(&empty, 1);  // HealthCheckRequest{service: ""}
    for (int i = 0; i < options.clients; ++i) {
      clients_.push_back(std::make_unique<Client>(i, options.run_id));
    }
  }

  DriverResult Run();

 private:
  struct Client {
    Client(int i, const std::string& run) : index(i), rng(StableHash(run, i)) {}
    int index;
    Rng rng;
    uint64_t n = 0;
    OpKind kind = OpKind::kRead;
    int batch_size = 0;
    Clock::time_point start;
    std::unique_ptr<grpc::ClientContext> ctx;
    v1::ReceiveRequest receive;
    v1::IssueRequest issue;
    v1::HoldRequest hold;
    v1::GetBalanceRequest read;
    v1::ApplyBatchRequest batch;
    v1::ListBalancesRequest list;
    v1::MovementResult result;
    v1::Balance balance;
    v1::ApplyBatchResponse batch_result;
    v1::ListBalancesResponse listed;
    grpc::ByteBuffer echo_response;
    std::string page_token;
    DriverResult stats;
  };

  void StartNext(Client& c);
  void StartOp(Client& c, v1::LevelService::Stub::async_interface* async);
  void FillReceive(Client& c, v1::ReceiveOp* op);
  void FillIssue(Client& c, v1::IssueOp* op);
  void FillHold(Client& c, v1::HoldOp* op);
  void FillBatch(Client& c);
  void OnDone(Client& c, const grpc::Status& status);
  void ClientFinished();
  std::string RequestId(const Client& c) const {
    return absl::StrCat(options_.run_id, "-", c.index, "-", c.n);
  }
  const std::string& RandomWarehouse(Client& c) {
    return world_.warehouses[c.rng.Next() % world_.warehouses.size()];
  }
  const BenchItem& RandomItem(Client& c) {
    return world_.items[c.rng.Next() % world_.items.size()];
  }

  const BenchWorld& world_;
  const DriverOptions& options_;
  std::vector<std::unique_ptr<v1::LevelService::Stub>> stubs_;
  std::vector<std::unique_ptr<grpc::GenericStub>> generic_;
  grpc::ByteBuffer echo_request_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::atomic<bool> measuring_{false};
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> started_{0};
  std::mutex mu_;
  std::condition_variable all_done_;
  int active_ = 0;
  Clock::time_point last_done_;
};

void LoadRun::FillReceive(Client& c, v1::ReceiveOp* op) {
  const BenchItem& item = RandomItem(c);
  op->set_warehouse(RandomWarehouse(c));
  op->set_item(item.code);
  op->set_quantity(c.rng.Uniform(1, 10));
  if (item.expires) {
    op->set_lot(world_.lot);
    op->set_expiry_date(world_.expiry_date);
  }
}

void LoadRun::FillIssue(Client& c, v1::IssueOp* op) {
  op->set_warehouse(RandomWarehouse(c));
  op->set_item(RandomItem(c).code);
  op->set_quantity(1);
}

void LoadRun::FillHold(Client& c, v1::HoldOp* op) {
  op->set_warehouse(RandomWarehouse(c));
  op->set_item(RandomItem(c).code);
  op->set_quantity(1);
  op->set_hold_id(absl::StrCat("h-", RequestId(c)));
  op->set_reference("bench");
  op->set_ttl_seconds(options_.hold_ttl_seconds);
}

void LoadRun::FillBatch(Client& c) {
  c.batch.Clear();
  c.batch.set_request_id(RequestId(c));
  c.batch.set_actor(options_.actor);
  for (int i = 0; i < options_.batch; ++i) {
    OpKind kind = options_.mix.Pick(c.rng.Next());
    while (kind == OpKind::kRead) kind = options_.mix.Pick(c.rng.Next());
    auto* op = c.batch.add_operations();
    if (kind == OpKind::kReceive) FillReceive(c, op->mutable_receive());
    if (kind == OpKind::kIssue) FillIssue(c, op->mutable_issue());
    if (kind == OpKind::kHold) {
      ++c.n;  // hold ids must differ inside one batch
      FillHold(c, op->mutable_hold());
    }
  }
  c.batch_size = options_.batch;
}

void LoadRun::StartNext(Client& c) {
  if (stop_.load(std::memory_order_relaxed) ||
      (options_.max_ops > 0 && started_.fetch_add(1) >= options_.max_ops)) {
    ClientFinished();
    return;
  }
  ++c.n;
  c.ctx = std::make_unique<grpc::ClientContext>();
  c.ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto& stub = stubs_[c.index % stubs_.size()];
  c.start = Clock::now();
  auto done = [this, &c](grpc::Status s) { OnDone(c, s); };
  switch (options_.mode) {
    case DriverOptions::Mode::kEcho:
      c.kind = OpKind::kEcho;
      generic_[c.index % generic_.size()]->UnaryCall(c.ctx.get(), "/grpc.health.v1.Health/Check",
                                                     grpc::StubOptions(), &echo_request_,
                                                     &c.echo_response, done);
      return;
    case DriverOptions::Mode::kList:
      c.kind = OpKind::kList;
      c.list.Clear();
      c.list.set_page_size(options_.list_page_size);
      c.list.set_page_token(c.page_token);
      stub->async()->ListBalances(c.ctx.get(), &c.list, &c.listed, done);
      return;
    case DriverOptions::Mode::kOps:
      StartOp(c, stub->async());
      return;
  }
}

void LoadRun::StartOp(Client& c, v1::LevelService::Stub::async_interface* async) {
  auto done = [this, &c](grpc::Status s) { OnDone(c, s); };
  if (options_.batch > 1) {
    c.kind = OpKind::kBatch;
    FillBatch(c);
    async->ApplyBatch(c.ctx.get(), &c.batch, &c.batch_result, done);
    return;
  }
  c.kind = options_.mix.Pick(c.rng.Next());
  switch (c.kind) {
    case OpKind::kReceive:
      c.receive.Clear();
      c.receive.set_request_id(RequestId(c));
      c.receive.set_actor(options_.actor);
      FillReceive(c, c.receive.mutable_op());
      async->Receive(c.ctx.get(), &c.receive, &c.result, done);
      return;
    case OpKind::kIssue:
      c.issue.Clear();
      c.issue.set_request_id(RequestId(c));
      c.issue.set_actor(options_.actor);
      FillIssue(c, c.issue.mutable_op());
      async->Issue(c.ctx.get(), &c.issue, &c.result, done);
      return;
    case OpKind::kHold:
      c.hold.Clear();
      c.hold.set_request_id(RequestId(c));
      c.hold.set_actor(options_.actor);
      FillHold(c, c.hold.mutable_op());
      async->Hold(c.ctx.get(), &c.hold, &c.result, done);
      return;
    default:
      c.read.set_warehouse(RandomWarehouse(c));
      c.read.set_item(RandomItem(c).code);
      async->GetBalance(c.ctx.get(), &c.read, &c.balance, done);
      return;
  }
}

void LoadRun::OnDone(Client& c, const grpc::Status& status) {
  auto now = Clock::now();
  if (c.kind == OpKind::kList) {
    c.page_token = status.ok() ? c.listed.next_page_token() : "";
  }
  if (measuring_.load(std::memory_order_relaxed)) {
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now - c.start).count();
    c.stats.latency[static_cast<int>(c.kind)].Record(micros);
    c.stats.all.Record(micros);
    ++c.stats.calls;
    ++c.stats.codes[std::min<int>(status.error_code(), 16)];
    if (status.ok()) {
      if (c.kind == OpKind::kBatch) c.stats.movements += c.batch_size;
      if (c.kind == OpKind::kReceive || c.kind == OpKind::kIssue || c.kind == OpKind::kHold) {
        ++c.stats.movements;
      }
      if (c.kind == OpKind::kList) c.stats.balances_listed += c.listed.balances_size();
    } else if (c.stats.errors() <= 3) {
      std::fprintf(stderr, "[bench] %s failed: %s %s\n", OpKindName(c.kind),
                   common::StatusCodeName(status.error_code()), status.error_message().c_str());
    }
  }
  StartNext(c);
}

void LoadRun::ClientFinished() {
  std::lock_guard<std::mutex> lock(mu_);
  last_done_ = Clock::now();
  if (--active_ == 0) all_done_.notify_all();
}

DriverResult LoadRun::Run() {
  bool by_count = options_.max_ops > 0;
  active_ = static_cast<int>(clients_.size());
  auto notify = [](const std::function<void()>& hook) {
    if (hook) hook();
  };
  if (by_count) {
    notify(options_.on_measure_start);
    measuring_ = true;
  }
  auto start = Clock::now();
  for (auto& c : clients_) StartNext(*c);
  if (!by_count) {
    std::this_thread::sleep_for(options_.warmup);
    notify(options_.on_measure_start);
    start = Clock::now();
    measuring_ = true;
    std::this_thread::sleep_for(options_.duration);
    measuring_ = false;
    notify(options_.on_measure_end);
    stop_ = true;
  }
  auto end = Clock::now();
  {
    std::unique_lock<std::mutex> lock(mu_);
    all_done_.wait(lock, [this] { return active_ == 0; });
    if (by_count) end = last_done_;
  }
  if (by_count) notify(options_.on_measure_end);
  DriverResult result;
  result.seconds = std::chrono::duration<double>(end - start).count();
  for (const auto& c : clients_) {
    result.calls += c->stats.calls;
    result.movements += c->stats.movements;
    result.balances_listed += c->stats.balances_listed;
    for (size_t i = 0; i < result.codes.size(); ++i) result.codes[i] += c->stats.codes[i];
    for (int k = 0; k < kOpKinds; ++k) result.latency[k].Merge(c->stats.latency[k]);
    result.all.Merge(c->stats.all);
  }
  return result;
}

}  // namespace

DriverResult RunLoad(const std::string& address, const BenchWorld& world,
                     const DriverOptions& options) {
  LoadRun run(address, world, options);
  return run.Run();
}

}  // namespace stockpile::bench
