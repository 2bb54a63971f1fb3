#include "tools/bench/catalogue_bench.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/common/reference_data.h"
#include "stockpile/v1/catalogue_service.grpc.pb.h"
#include "tools/bench/histogram.h"
#include "tools/bench/level_client.h"
#include "tools/bench/rng.h"
#include "tools/bench/world.h"

namespace stockpile::bench {
namespace {

namespace v1 = stockpile::v1;
using Clock = std::chrono::steady_clock;

double MillisSince(Clock::time_point start, Clock::time_point t = Clock::now()) {
  return std::chrono::duration<double, std::milli>(t - start).count();
}

size_t Pick(Rng& rng, size_t n) { return size_t(rng.Next() % n); }

double Ms(uint64_t micros) { return static_cast<double>(micros) / 1000.0; }

nlohmann::json Quantiles(const Histogram& h) {
  return {{"count", h.count()},
          {"p50_ms", Ms(h.Quantile(0.5))},
          {"p99_ms", Ms(h.Quantile(0.99))},
          {"p999_ms", Ms(h.Quantile(0.999))},
          {"max_ms", Ms(h.max())},
          {"mean_ms", h.mean() / 1000.0}};
}

std::string QuantileText(const Histogram& h) {
  return absl::StrCat("p50 ", Ms(h.Quantile(0.5)), " ms, p99 ", Ms(h.Quantile(0.99)), " ms, p999 ",
                      Ms(h.Quantile(0.999)), " ms, max ", Ms(h.max()), " ms (", h.count(),
                      " samples)");
}

// VmRSS and VmHWM of a process in KiB (0 when unknown).
struct ProcessMemory {
  int64_t rss_kib = 0;
  int64_t hwm_kib = 0;
};

ProcessMemory ReadProcessMemory(int pid) {
  ProcessMemory m;
  if (pid <= 0) return m;
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  auto field = [&](absl::string_view name, int64_t* out) {
    if (line.rfind(std::string(name), 0) != 0) return;
    std::string digits;
    for (char c : line) {
      if (c >= '0' && c <= '9') digits.push_back(c);
    }
    (void)absl::SimpleAtoi(digits, out);
  };
  while (std::getline(in, line)) {
    field("VmRSS:", &m.rss_kib);
    field("VmHWM:", &m.hwm_kib);
  }
  return m;
}

nlohmann::json MemoryJson(const ProcessMemory& m) {
  return {{"vm_rss_mib", double(m.rss_kib) / 1024.0}, {"vm_hwm_mib", double(m.hwm_kib) / 1024.0}};
}

std::unique_ptr<v1::CatalogueService::Stub> CatalogueStub(const std::string& address, int index) {
  return v1::CatalogueService::NewStub(MakeChannel(address, index));
}

absl::StatusOr<std::vector<v1::ReplicationSource>> FetchStatus(v1::CatalogueService::Stub& stub) {
  v1::GetReplicationStatusResponse resp;
  grpc::Status s = CallWithDeadline(std::chrono::seconds(2), [&](grpc::ClientContext* ctx) {
    return stub.GetReplicationStatus(ctx, {}, &resp);
  });
  if (!s.ok()) return absl::UnavailableError(s.error_message());
  return std::vector<v1::ReplicationSource>(resp.sources().begin(), resp.sources().end());
}

// The catalogue's source streaming from `address` (as given to its --source or registered).
const v1::ReplicationSource* FindSource(const std::vector<v1::ReplicationSource>& sources,
                                        const std::string& address) {
  for (const auto& s : sources) {
    if (s.address() == address) return &s;
  }
  return nullptr;
}

// ---------------------------------------------------------------- catalogue-load

struct LoadSample {
  double ms = 0;         // since the bench started
  uint64_t applied = 0;  // sum of the watched sources' applied sequences
};

// Head sequences of the level services: what the catalogue must reach.
absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>> LevelHeads(
    const CatalogueBenchOptions& o) {
  std::vector<std::pair<std::string, uint64_t>> heads;
  for (const auto& address : o.levels) {
    auto target = ConnectLevel(address, o.timeout);
    if (!target.ok()) return target.status();
    heads.emplace_back(address, (*target)->info.last_sequence());
  }
  return heads;
}

// Entries/s between the last sample before the catalogue made progress and the final one.
double ApplyRate(const std::vector<LoadSample>& samples, double* window_ms) {
  size_t before = 0;
  while (before + 1 < samples.size() && samples[before + 1].applied == samples.front().applied) {
    ++before;
  }
  const LoadSample& a = samples[before];
  const LoadSample& e = samples.back();
  *window_ms = e.ms - a.ms;
  return *window_ms > 0 ? double(e.applied - a.applied) * 1000.0 / *window_ms : 0.0;
}

}  // namespace

int RunCatalogueLoad(const CatalogueBenchOptions& o) {
  const Clock::time_point start = Clock::now();
  auto heads = LevelHeads(o);
  if (!heads.ok()) {
    std::cerr << "stockpile-bench: " << heads.status().message() << "\n";
    return 1;
  }
  uint64_t total_head = 0;
  for (const auto& [address, head] : *heads) total_head += head;
  int64_t peak_rss_kib = 0;
  // A catalogue still starting (loading its store) is asked on fresh channels until it answers.
  auto channel = FirstAnsweringChannel(o.catalogue, o.timeout, [&](const auto& candidate) {
    peak_rss_kib = std::max(peak_rss_kib, ReadProcessMemory(o.pid).rss_kib);
    return FetchStatus(*v1::CatalogueService::NewStub(candidate)).ok();
  });
  if (channel == nullptr) {
    std::cerr << "stockpile-bench: the catalogue at " << o.catalogue << " never answered\n";
    return 1;
  }
  const double first_answer_ms = MillisSince(start);
  auto stub = v1::CatalogueService::NewStub(channel);
  std::vector<LoadSample> samples;
  bool done = false;
  while (!done && Clock::now() - start < o.timeout) {
    auto sources = FetchStatus(*stub);
    peak_rss_kib = std::max(peak_rss_kib, ReadProcessMemory(o.pid).rss_kib);
    if (sources.ok()) {
      uint64_t applied = 0;
      done = true;
      for (const auto& [address, head] : *heads) {
        const v1::ReplicationSource* s = FindSource(*sources, address);
        const uint64_t a = s ? s->applied_sequence() : 0;
        done = done && a >= head;
        applied += a;
      }
      samples.push_back({MillisSince(start), applied});
    }
    if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (samples.empty()) {
    std::cerr << "stockpile-bench: the catalogue at " << o.catalogue << " stopped answering\n";
    return 1;
  }
  double window_ms = 0;
  const double rate = ApplyRate(samples, &window_ms);
  const ProcessMemory mem = ReadProcessMemory(o.pid);
  nlohmann::json j = {{"mode", "catalogue-load"},
                      {"caught_up", done},
                      {"level_heads_total", total_head},
                      {"first_answer_ms", first_answer_ms},
                      {"caught_up_ms", samples.back().ms},
                      {"entries_applied", samples.back().applied - samples.front().applied},
                      {"apply_window_ms", window_ms},
                      {"entries_per_s", rate},
                      {"memory", MemoryJson(mem)},
                      {"peak_sampled_rss_mib", double(peak_rss_kib) / 1024.0}};
  if (o.json) {
    std::cout << j.dump(2) << std::endl;
  } else {
    std::cout << "catalogue-load: " << (done ? "caught up" : "NOT caught up") << " with "
              << total_head << " entries of " << heads->size() << " level(s) after "
              << samples.back().ms / 1000.0 << " s (catalogue answered after "
              << first_answer_ms / 1000.0 << " s)\n"
              << "  applied " << samples.back().applied - samples.front().applied
              << " entries while watched, " << rate << " entries/s over the last "
              << window_ms / 1000.0 << " s\n";
    if (o.pid > 0) {
      std::cout << "  catalogue pid " << o.pid << ": VmRSS " << mem.rss_kib / 1024 << " MiB, VmHWM "
                << mem.hwm_kib / 1024 << " MiB\n";
    }
  }
  return done ? 0 : 3;
}

// ---------------------------------------------------------------- catalogue-rollup

namespace {

struct RollupChoices {
  std::vector<std::string> regions;
  std::vector<std::string> items;
};

absl::StatusOr<RollupChoices> RollupChoicesFor(const CatalogueBenchOptions& o) {
  RollupChoices c;
  if (!o.region.empty()) c.regions.push_back(o.region);
  if (!o.item.empty()) c.items.push_back(o.item);
  if (!c.regions.empty() && !c.items.empty()) return c;
  common::ReferenceData::Options options;
  options.fine_region_prefixes = {"-"};  // provinces and items only: no township or village
  auto ref = common::ReferenceData::Load(o.reference_data, options);
  if (!ref.ok()) return ref.status();
  if (c.regions.empty()) {
    for (const auto& r : (*ref)->regions()) {
      if (r.level == v1::LEVEL_PROVINCE) c.regions.push_back(r.code);
    }
  }
  if (c.items.empty()) {
    for (const auto& i : (*ref)->items()) c.items.push_back(i.code);
  }
  return c;
}

struct RollupWorker {
  Histogram latency;
  uint64_t calls = 0;
  uint64_t errors = 0;
  int64_t last_warehouses = 0;
};

void RollupLoop(const CatalogueBenchOptions& o, const RollupChoices& c, int index,
                Clock::time_point measure_from, Clock::time_point end, RollupWorker* out) {
  auto stub = CatalogueStub(o.catalogue, index);
  Rng rng(0x5eed + uint64_t(index));
  while (Clock::now() < end) {
    v1::GetRollupRequest req;
    req.set_region_code(c.regions[Pick(rng, c.regions.size())]);
    req.set_item(c.items[Pick(rng, c.items.size())]);
    v1::Rollup resp;
    const Clock::time_point t0 = Clock::now();
    grpc::Status s = CallWithDeadline(std::chrono::seconds(5), [&](grpc::ClientContext* ctx) {
      return stub->GetRollup(ctx, req, &resp);
    });
    const Clock::time_point t1 = Clock::now();
    if (t0 < measure_from) continue;
    ++out->calls;
    if (!s.ok()) {
      ++out->errors;
      continue;
    }
    out->last_warehouses = resp.warehouse_count();
    out->latency.Record(
        uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count()));
  }
}

}  // namespace

int RunCatalogueRollup(const CatalogueBenchOptions& o) {
  auto choices = RollupChoicesFor(o);
  if (!choices.ok()) {
    std::cerr << "stockpile-bench: " << choices.status().message() << "\n";
    return 2;
  }
  const Clock::time_point measure_from = Clock::now() + o.warmup;
  const Clock::time_point end = measure_from + o.duration;
  std::vector<RollupWorker> workers(size_t(std::max(1, o.clients)));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < workers.size(); ++i) {
    threads.emplace_back(RollupLoop, std::cref(o), std::cref(*choices), int(i), measure_from, end,
                         &workers[i]);
  }
  for (auto& t : threads) t.join();
  Histogram all;
  uint64_t calls = 0, errors = 0;
  for (const auto& w : workers) {
    all.Merge(w.latency);
    calls += w.calls;
    errors += w.errors;
  }
  const double seconds = std::chrono::duration<double>(o.duration).count();
  const ProcessMemory mem = ReadProcessMemory(o.pid);
  nlohmann::json j = {{"mode", "catalogue-rollup"},
                      {"clients", workers.size()},
                      {"calls_per_s", double(calls) / seconds},
                      {"errors", errors},
                      {"latency", Quantiles(all)},
                      {"regions", choices->regions.size()},
                      {"items", choices->items.size()},
                      {"last_region_warehouses", workers[0].last_warehouses},
                      {"memory", MemoryJson(mem)}};
  if (o.json) {
    std::cout << j.dump(2) << std::endl;
  } else {
    std::cout << "catalogue-rollup: " << workers.size() << " client(s), " << double(calls) / seconds
              << " roll-ups/s, " << errors << " errors\n  latency " << QuantileText(all) << "\n  ("
              << choices->regions.size() << " region(s) x " << choices->items.size()
              << " item(s); last answer covered " << workers[0].last_warehouses << " warehouses)\n";
    if (o.pid > 0) {
      std::cout << "  catalogue pid " << o.pid << ": VmRSS " << mem.rss_kib / 1024 << " MiB, VmHWM "
                << mem.hwm_kib / 1024 << " MiB\n";
    }
  }
  return errors == 0 && calls > 0 ? 0 : 3;
}

// ---------------------------------------------------------------- catalogue-lag

namespace {

struct Acked {
  uint64_t sequence = 0;
  Clock::time_point at;
  bool measured = false;
};

// One level service: its bench warehouses and the acknowledged writes the catalogue has not
// yet reported applied (in sequence order per writer; the observer pops what is applied).
struct Lane {
  std::unique_ptr<LevelTarget> target;
  BenchWorld world;
  std::mutex mu;
  std::vector<Acked> pending;
};

struct WriterStats {
  Histogram latency;
  uint64_t ok = 0;
  uint64_t errors = 0;
  uint64_t late = 0;  // calls started more than one period behind the schedule
};

struct LagRun {
  const CatalogueBenchOptions* options = nullptr;
  std::vector<std::unique_ptr<Lane>> lanes;
  Clock::time_point start, measure_from, end;
  std::string run_id;
  std::atomic<int> writers_left{0};
};

v1::ReceiveRequest NextReceipt(const Lane& lane, const std::string& id, Rng& rng) {
  v1::ReceiveRequest req;
  req.set_request_id(id);
  req.set_actor("stockpile-bench");
  auto* op = req.mutable_op();
  op->set_warehouse(lane.world.warehouses[Pick(rng, lane.world.warehouses.size())]);
  const BenchItem& item = lane.world.items[Pick(rng, lane.world.items.size())];
  op->set_item(item.code);
  if (item.expires) {
    op->set_lot(lane.world.lot);
    op->set_expiry_date(lane.world.expiry_date);
  }
  op->set_quantity(rng.Uniform(1, 10));
  op->set_note("catalogue lag bench");
  return req;
}

// One receipt in flight: what the async call needs alive until its callback.
struct ReceiptCall {
  grpc::ClientContext ctx;
  v1::ReceiveRequest request;
  v1::MovementResult result;
  Clock::time_point started;
};

// Open loop, one pacer per lane: receipt k of the lane is due at start + k * interval and is
// sent then without waiting for earlier answers (gRPC callback API: no thread per call), so
// the load generator costs little of the machine the levels and catalogue share. At most
// `max_in_flight` calls are outstanding; a receipt sent more than one interval after its due
// time (the levels fell behind, or the cap was reached) counts as late. Nothing starts after
// the end, so the rate is what the levels accepted.
void PaceLane(LagRun* run, Lane* lane, size_t lane_index, int max_in_flight, double rate,
              WriterStats* stats) {
  // The lane's own channel, kept open to the end of the process (see KeepUntilExit): channels
  // made and dropped here made gRPC free its callback queue twice under ASan.
  KeepUntilExit(lane->target->channel);
  v1::LevelService::Stub& stub = *lane->target->stub;
  Rng rng(0xbe11 + lane_index * 7919);
  const auto interval = std::chrono::duration<double>(1.0 / rate);
  std::mutex mu;  // guards in_flight and stats, shared with the callbacks
  std::condition_variable settled;
  int in_flight = 0;
  for (uint64_t k = 0;; ++k) {
    const auto due = run->start + std::chrono::duration_cast<Clock::duration>(interval * double(k));
    if (due >= run->end) break;
    {
      std::unique_lock<std::mutex> lock(mu);
      settled.wait(lock, [&] { return in_flight < max_in_flight; });
      ++in_flight;
    }
    std::this_thread::sleep_until(due);
    const Clock::time_point now = Clock::now();
    if (now >= run->end) {
      std::lock_guard<std::mutex> lock(mu);
      --in_flight;
      break;
    }
    auto* call = new ReceiptCall;
    call->request = NextReceipt(*lane, absl::StrCat(run->run_id, "-", lane_index, "-", k), rng);
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    call->started = now;
    const bool late = now - due > interval;
    stub.async()->Receive(
        &call->ctx, &call->request, &call->result, [&, call, late](grpc::Status s) {
          const Clock::time_point acked = Clock::now();
          const bool measured = call->started >= run->measure_from;
          if (s.ok()) {
            std::lock_guard<std::mutex> lock(lane->mu);
            lane->pending.push_back({call->result.sequence(), acked, measured});
          }
          {
            std::lock_guard<std::mutex> lock(mu);
            if (measured && late) ++stats->late;
            if (measured && !s.ok()) ++stats->errors;
            if (measured && s.ok()) {
              ++stats->ok;
              stats->latency.Record(uint64_t(
                  std::chrono::duration_cast<std::chrono::microseconds>(acked - call->started)
                      .count()));
            }
            --in_flight;
            settled.notify_all();
          }
          delete call;
        });
  }
  std::unique_lock<std::mutex> lock(mu);
  settled.wait(lock, [&] { return in_flight == 0; });
  --run->writers_left;
}

struct ObserverStats {
  Histogram lag;         // acknowledgement -> seen applied in the catalogue's status, µs
  Histogram status_lag;  // the catalogue's own lag_seconds (max over the lanes), µs
  uint64_t polls = 0;
  uint64_t unapplied = 0;  // left when the observer gave up
};

// Pops every pending write of `lane` at or below `applied`, recording its lag.
void Settle(Lane& lane, uint64_t applied, Clock::time_point now, Histogram* lag) {
  std::lock_guard<std::mutex> lock(lane.mu);
  auto keep = std::remove_if(lane.pending.begin(), lane.pending.end(), [&](const Acked& a) {
    if (a.sequence > applied) return false;
    if (a.measured) {
      lag->Record(uint64_t(std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::microseconds>(now - a.at).count())));
    }
    return true;
  });
  lane.pending.erase(keep, lane.pending.end());
}

size_t PendingCount(LagRun& run) {
  size_t n = 0;
  for (auto& lane : run.lanes) {
    std::lock_guard<std::mutex> lock(lane->mu);
    n += lane->pending.size();
  }
  return n;
}

void ObserveLoop(LagRun* run, ObserverStats* out) {
  auto stub = CatalogueStub(run->options->catalogue, 7);
  const Clock::time_point give_up = run->end + std::chrono::seconds(30);
  while (Clock::now() < give_up) {
    auto sources = FetchStatus(*stub);
    const Clock::time_point now = Clock::now();
    if (sources.ok()) {
      ++out->polls;
      double worst = 0;
      for (auto& lane : run->lanes) {
        const v1::ReplicationSource* s = FindSource(*sources, lane->target->address);
        if (s == nullptr) continue;
        worst = std::max(worst, s->lag_seconds());
        Settle(*lane, s->applied_sequence(), now, &out->lag);
      }
      if (now >= run->measure_from && now < run->end) out->status_lag.Record(uint64_t(worst * 1e6));
    }
    if (run->writers_left == 0 && PendingCount(*run) == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  out->unapplied = PendingCount(*run);
}

absl::Status PrepareLanes(const CatalogueBenchOptions& o, LagRun* run) {
  for (const auto& address : o.levels) {
    auto lane = std::make_unique<Lane>();
    auto target = ConnectLevel(address, std::chrono::seconds(30));
    if (!target.ok()) return target.status();
    lane->target = std::move(*target);
    WorldOptions w;
    w.warehouses = o.warehouses;
    w.seed_quantity = 1000;
    w.concurrency = 8;
    w.reference_data = o.reference_data;
    w.verbose = false;
    auto world = PrepareWorld(*lane->target, w);
    if (!world.ok()) return world.status();
    lane->world = std::move(*world);
    run->lanes.push_back(std::move(lane));
  }
  return absl::OkStatus();
}

}  // namespace

int RunCatalogueLag(const CatalogueBenchOptions& o) {
  if (o.levels.empty()) {
    std::cerr << "stockpile-bench: catalogue-lag needs --levels=HOST:PORT,...\n";
    return 2;
  }
  LagRun run;
  run.options = &o;
  if (absl::Status s = PrepareLanes(o, &run); !s.ok()) {
    std::cerr << "stockpile-bench: setup failed: " << s.message() << "\n";
    return 1;
  }
  run.run_id = absl::StrCat("lag-", std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
  const int per_lane = std::max(1, o.clients / int(run.lanes.size()));
  const double per_lane_rate = o.rate / double(run.lanes.size());
  run.start = Clock::now();
  run.measure_from = run.start + o.warmup;
  run.end = run.measure_from + o.duration;
  run.writers_left = int(run.lanes.size());
  std::vector<WriterStats> writer_stats(run.lanes.size());
  std::vector<std::thread> threads;
  for (size_t l = 0; l < run.lanes.size(); ++l) {
    threads.emplace_back(PaceLane, &run, run.lanes[l].get(), l, per_lane, per_lane_rate,
                         &writer_stats[l]);
  }
  ObserverStats observed;
  std::thread observer(ObserveLoop, &run, &observed);
  for (auto& t : threads) t.join();
  observer.join();
  WriterStats writes;
  for (const auto& w : writer_stats) {
    writes.latency.Merge(w.latency);
    writes.ok += w.ok;
    writes.errors += w.errors;
    writes.late += w.late;
  }
  const double seconds = std::chrono::duration<double>(o.duration).count();
  const double poll_ms = observed.polls > 0 ? MillisSince(run.start) / double(observed.polls) : 0;
  nlohmann::json j = {{"mode", "catalogue-lag"},
                      {"levels", run.lanes.size()},
                      {"target_rate", o.rate},
                      {"max_in_flight", per_lane * int(run.lanes.size())},
                      {"movements_per_s", double(writes.ok) / seconds},
                      {"write_errors", writes.errors},
                      {"late_starts", writes.late},
                      {"write_latency", Quantiles(writes.latency)},
                      {"lag", Quantiles(observed.lag)},
                      {"catalogue_reported_lag", Quantiles(observed.status_lag)},
                      {"status_polls", observed.polls},
                      {"mean_poll_interval_ms", poll_ms},
                      {"unapplied", observed.unapplied},
                      {"memory", MemoryJson(ReadProcessMemory(o.pid))}};
  if (o.json) {
    std::cout << j.dump(2) << std::endl;
  } else {
    std::cout << "catalogue-lag: " << double(writes.ok) / seconds << " receipts/s (target "
              << o.rate << ") over " << run.lanes.size() << " level(s), " << writes.errors
              << " errors, " << writes.late << " late starts\n  write latency "
              << QuantileText(writes.latency) << "\n  lag (ack -> applied in catalogue status) "
              << QuantileText(observed.lag) << "\n  catalogue's own lag_seconds "
              << QuantileText(observed.status_lag) << "\n  status polled every " << poll_ms
              << " ms; " << observed.unapplied << " writes never seen applied\n";
  }
  return writes.errors == 0 && observed.unapplied == 0 && writes.ok > 0 ? 0 : 3;
}

}  // namespace stockpile::bench
