// stockpile-bench: closed-loop load generator for one level service (see docs/bench.md).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/common/auth/service_credentials.h"
#include "services/common/reference_data.h"
#include "services/common/server_process.h"
#include "tools/bench/catalogue_bench.h"
#include "tools/bench/cpu_probe.h"
#include "tools/bench/driver.h"
#include "tools/bench/level_client.h"
#include "tools/bench/report.h"
#include "tools/bench/world.h"

namespace stockpile::bench {
namespace {

struct Flags {
  std::string target;
  std::string mode = "ops";
  int clients = 64;
  int channels = 4;
  std::string duration = "10s";
  std::string warmup = "1s";
  int64_t ops = 0;
  std::string mix = "receive:40,issue:30,hold:10,read:20";
  int batch = 1;
  int warehouses = 100;
  int64_t seed_quantity = 1'000'000;
  int setup_concurrency = 16;
  std::string reference_data = common::ReferenceData::DefaultDir();
  bool json = false;
  std::string baseline;
  int64_t balances = 1'000'000;
  int64_t movements = 10'000'000;
  std::string timeout = "30s";
  int page_size = 10'000;
  // catalogue modes
  std::vector<std::string> levels;
  double rate = 5000;
  int pid = 0;
  std::string region;
  std::string item;
  // A level service run with TLS and tokens (not --insecure).
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string token_file;
};

// Plaintext unless --tls-ca is given; a token travels only over TLS.
absl::Status UseSecurityFlags(const Flags& flags) {
  if (flags.tls_ca.empty()) {
    if (!flags.token_file.empty() || !flags.tls_cert.empty() || !flags.tls_key.empty()) {
      return absl::InvalidArgumentError(
          "--token-file, --tls-cert and --tls-key need --tls-ca (TLS)");
    }
    return absl::OkStatus();
  }
  auth::TlsOptions tls;
  tls.files.ca = flags.tls_ca;
  tls.files.cert = flags.tls_cert;
  tls.files.key = flags.tls_key;
  auto credentials = flags.token_file.empty()
                         ? auth::ChannelCredentials(tls)
                         : auth::ServiceChannelCredentials(tls, flags.token_file);
  if (!credentials.ok()) return credentials.status();
  SetChannelCredentials(*credentials);
  return absl::OkStatus();
}

// "10s", "500ms", "2m", or plain seconds.
absl::StatusOr<std::chrono::milliseconds> ParseDuration(const std::string& text) {
  double value = 0;
  std::string number = text;
  double scale = 1000;
  if (absl::EndsWith(text, "ms")) {
    number = text.substr(0, text.size() - 2);
    scale = 1;
  } else if (absl::EndsWith(text, "s")) {
    number = text.substr(0, text.size() - 1);
  } else if (absl::EndsWith(text, "m")) {
    number = text.substr(0, text.size() - 1);
    scale = 60'000;
  }
  if (!absl::SimpleAtod(number, &value) || value < 0) {
    return absl::InvalidArgumentError(absl::StrCat("bad duration '", text, "'"));
  }
  return std::chrono::milliseconds(static_cast<int64_t>(value * scale));
}

// Runs one load phase and records the CPU the target and this process spent in its measured
// part.
DriverResult RunMeasured(const std::string& target, const BenchWorld& world, DriverOptions options,
                         const CpuProbe& probe) {
  CpuMark begin, end;
  options.on_measure_start = [&] { begin = probe.Mark(); };
  options.on_measure_end = [&] { end = probe.Mark(); };
  DriverResult result = RunLoad(target, world, options);
  result.client_cpu_seconds = end.own_seconds - begin.own_seconds;
  result.machine_busy_fraction = MachineBusyFraction(begin, end);
  if (begin.server_seconds >= 0 && end.server_seconds >= 0) {
    result.server_cpu_seconds = end.server_seconds - begin.server_seconds;
  }
  return result;
}

void Emit(const Flags& flags, const std::string& title, const DriverResult& result,
          nlohmann::json* json) {
  if (!flags.json) std::cout << ResultToText(title, result) << std::flush;
  (*json)[title] = ResultToJson(result);
}

// Polls the target until it answers GetInstanceInfo and a ListBalances page: the restart probe.
int WaitReady(const Flags& flags, std::chrono::milliseconds timeout) {
  const auto start = std::chrono::steady_clock::now();
  stockpile::v1::InstanceInfo info;
  auto channel = FirstAnsweringChannel(flags.target, timeout, [&](const auto& candidate) {
    return CallWithDeadline(
               std::chrono::milliseconds(200),
               [&](grpc::ClientContext* ctx) {
                 return stockpile::v1::LevelService::NewStub(candidate)->GetInstanceInfo(ctx, {},
                                                                                         &info);
               })
        .ok();
  });
  if (channel == nullptr) {
    std::cerr << "stockpile-bench: " << flags.target << " not ready within timeout\n";
    return 1;
  }
  grpc::ClientContext list_ctx;
  stockpile::v1::ListBalancesRequest request;
  request.set_page_size(1);
  stockpile::v1::ListBalancesResponse response;
  grpc::Status s =
      stockpile::v1::LevelService::NewStub(channel)->ListBalances(&list_ctx, request, &response);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  nlohmann::json j = {{"ready_ms", ms},
                      {"list_ok", s.ok()},
                      {"last_sequence", info.last_sequence()},
                      {"warehouses", info.warehouse_count()}};
  std::cout << (flags.json
                    ? j.dump()
                    : absl::StrCat("ready after ", ms, " ms (sequence ", info.last_sequence(), ")"))
            << std::endl;
  return s.ok() ? 0 : 1;
}

// --target is the catalogue; --levels the level services it follows.
int RunCatalogueMode(const Flags& flags, std::chrono::milliseconds duration,
                     std::chrono::milliseconds warmup, std::chrono::milliseconds timeout) {
  CatalogueBenchOptions o;
  o.catalogue = flags.target;
  o.levels = flags.levels;
  o.clients = flags.clients;
  o.duration = duration;
  o.warmup = warmup;
  o.timeout = timeout;
  o.rate = flags.rate;
  o.warehouses = flags.warehouses;
  o.pid = flags.pid;
  o.region = flags.region;
  o.item = flags.item;
  o.reference_data = flags.reference_data;
  o.json = flags.json;
  if (flags.mode == "catalogue-load") return RunCatalogueLoad(o);
  if (flags.mode == "catalogue-rollup") return RunCatalogueRollup(o);
  return RunCatalogueLag(o);
}

int Run(const Flags& flags) {
  auto duration = ParseDuration(flags.duration);
  auto warmup = ParseDuration(flags.warmup);
  auto timeout = ParseDuration(flags.timeout);
  auto mix = ParseMix(flags.mode == "seed-large" ? "receive:1" : flags.mix);
  for (const absl::Status& s :
       {duration.status(), warmup.status(), timeout.status(), mix.status()}) {
    if (!s.ok()) {
      std::cerr << "stockpile-bench: " << s.message() << "\n";
      return 2;
    }
  }
  if (absl::Status s = UseSecurityFlags(flags); !s.ok()) {
    std::cerr << "stockpile-bench: " << s.message() << "\n";
    return 2;
  }
  if (flags.mode == "wait-ready") return WaitReady(flags, *timeout);
  if (absl::StartsWith(flags.mode, "catalogue-")) {
    return RunCatalogueMode(flags, *duration, *warmup, *timeout);
  }

  auto target = ConnectLevel(flags.target, *timeout);
  if (!target.ok()) {
    std::cerr << "stockpile-bench: " << target.status().message() << "\n";
    return 1;
  }
  WorldOptions world_options;
  world_options.warehouses = flags.warehouses;
  world_options.seed_quantity = flags.seed_quantity;
  world_options.concurrency = flags.setup_concurrency;
  world_options.reference_data = flags.reference_data;
  DriverOptions options;
  options.clients = flags.clients;
  options.channels = flags.channels;
  options.duration = *duration;
  options.warmup = *warmup;
  options.max_ops = flags.ops;
  options.mix = *mix;
  options.batch = flags.batch;
  options.list_page_size = flags.page_size;
  options.run_id = absl::StrCat("bench-", std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
  if (flags.mode == "list") options.mode = DriverOptions::Mode::kList;
  if (flags.mode == "echo") options.mode = DriverOptions::Mode::kEcho;
  if (flags.mode == "seed-large") {
    world_options.seed_quantity = 1000;
    world_options.warehouses = static_cast<int>((flags.balances + 41) / 42);
    options.batch = std::max(flags.batch, 1000);
  }
  bool needs_world = options.mode == DriverOptions::Mode::kOps;
  BenchWorld world;
  if (needs_world) {
    auto prepared = PrepareWorld(**target, world_options);
    if (!prepared.ok()) {
      std::cerr << "stockpile-bench: setup failed: " << prepared.status().message() << "\n";
      return 1;
    }
    world = std::move(*prepared);
    std::cerr << "[bench] setup took " << world.setup_seconds << " s\n";
  }
  if (flags.mode == "seed-large") {
    int64_t remaining = flags.movements - static_cast<int64_t>(world.seeded_balances);
    options.max_ops = std::max<int64_t>(0, (remaining + options.batch - 1) / options.batch);
    options.clients = std::min(flags.clients, 8);
    if (options.max_ops == 0) return 0;
  }
  nlohmann::json json = {{"target", flags.target},     {"mode", flags.mode},
                         {"clients", options.clients}, {"batch", options.batch},
                         {"mix", flags.mix},           {"warehouses", world.warehouses.size()}};
  const CpuProbe probe = CpuProbe::ForTarget(flags.target);
  DriverResult result = RunMeasured(flags.target, world, options, probe);
  Emit(flags, flags.mode, result, &json);
  json["errors"] = result.errors();
  if (flags.baseline == "echo") {
    options.mode = DriverOptions::Mode::kEcho;
    DriverResult echo = RunMeasured(flags.target, world, options, probe);
    Emit(flags, "echo", echo, &json);
    double ratio =
        echo.calls > 0 ? (result.calls / result.seconds) / (echo.calls / echo.seconds) : 0;
    json["ratio_to_echo"] = ratio;
    if (!flags.json) std::cout << "calls/s relative to health-check echo: " << ratio << "\n";
  }
  if (flags.json) std::cout << json.dump(2) << std::endl;
  return result.errors() == 0 && result.calls > 0 ? 0 : 3;
}

}  // namespace
}  // namespace stockpile::bench

int main(int argc, char** argv) {
  // gRPC locks absl::Mutex on every call; deadlock detection (on in Debian's Abseil) cost the
  // bench ~7 % of its CPU, taken from the service it measures on the same two cores.
  stockpile::common::PrepareServerProcess();
  stockpile::bench::Flags f;
  CLI::App app{"stockpile-bench: load generator for a stockpile level service"};
  app.add_option("--target", f.target, "level service HOST:PORT")->required();
  app.add_option("--mode", f.mode,
                 "ops | list | echo | seed-large | wait-ready | catalogue-load | "
                 "catalogue-rollup | catalogue-lag")
      ->check(CLI::IsMember({"ops", "list", "echo", "seed-large", "wait-ready", "catalogue-load",
                             "catalogue-rollup", "catalogue-lag"}));
  app.add_option("--clients", f.clients, "concurrent calls in flight")->check(CLI::Range(1, 4096));
  app.add_option("--channels", f.channels, "TCP connections to spread clients over")
      ->check(CLI::Range(1, 256));
  app.add_option("--duration", f.duration, "measured time, e.g. 10s");
  app.add_option("--warmup", f.warmup, "unmeasured time before it");
  app.add_option("--ops", f.ops, "stop after this many calls (instead of --duration)");
  app.add_option("--mix", f.mix, "weights of receive/issue/hold/read");
  app.add_option("--batch", f.batch, "ApplyBatch with N movements per call")
      ->check(CLI::Range(1, 1000));
  app.add_option("--warehouses", f.warehouses, "bench warehouses to create and seed");
  app.add_option("--seed-quantity", f.seed_quantity, "stock received per warehouse x item");
  app.add_option("--setup-concurrency", f.setup_concurrency, "parallel calls during setup");
  app.add_option("--reference-data", f.reference_data, "folder with regions/ and items/");
  app.add_flag("--json", f.json, "print one JSON document");
  app.add_option("--baseline", f.baseline, "echo: also measure grpc.health.v1 Check")
      ->check(CLI::IsMember({"", "echo"}));
  app.add_option("--balances", f.balances, "seed-large: balances to create");
  app.add_option("--movements", f.movements, "seed-large: movements in total");
  app.add_option("--timeout", f.timeout, "connect / wait-ready timeout");
  app.add_option("--page-size", f.page_size, "list mode page size");
  app.add_option("--levels", f.levels,
                 "catalogue modes: level services HOST:PORT (as the "
                 "catalogue knows them)")
      ->delimiter(',');
  app.add_option("--rate", f.rate, "catalogue-lag: receipts per second over all levels");
  app.add_option("--pid", f.pid, "catalogue modes: the catalogue's pid (VmRSS / VmHWM)");
  app.add_option("--region", f.region, "catalogue-rollup: region code (default: any province)");
  app.add_option("--item", f.item, "catalogue-rollup: item code (default: any item)");
  app.add_option("--tls-ca", f.tls_ca, "CA of a service run with TLS (default: plaintext)");
  app.add_option("--tls-cert", f.tls_cert, "client certificate, for mutual TLS (with --tls-key)");
  app.add_option("--tls-key", f.tls_key, "private key of --tls-cert");
  app.add_option(
      "--token-file", f.token_file,
      "bearer token sent with every call (e.g. an admin token from stockctl token issue)");
  CLI11_PARSE(app, argc, argv);
  return stockpile::bench::Run(f);
}
