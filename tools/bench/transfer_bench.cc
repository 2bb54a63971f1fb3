// stockpile-transfer-bench: N transfers end to end, all at once, against a running catalogue
// with the TransferService and its level services (stockpile-local, or separate processes).
// Each transfer: plan -> create -> approve -> ship every leg -> receive every leg.
// Destinations are fresh, empty warehouses the bench creates (so they are never sources and
// what they gain is exactly what was moved). Afterwards it checks, from GetLedgerTotals of every
// level before and after, that every level conserves stock and that stock only moved.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <ctime>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "services/common/reference_data.h"
#include "services/common/validation.h"
#include "stockpile/v1/level_service.grpc.pb.h"
#include "stockpile/v1/transfer_service.grpc.pb.h"

namespace {

using namespace stockpile::v1;  // NOLINT
using Clock = std::chrono::steady_clock;

struct Flags {
  std::string catalogue = "127.0.0.1:7510";
  // level=host:port, comma-separated (every level that may hold stock or destinations).
  std::string levels =
      "province=127.0.0.1:7501,city=127.0.0.1:7502,county=127.0.0.1:7503,"
      "township=127.0.0.1:7504,village=127.0.0.1:7505";
  std::string region = "4201";  // destinations: counties under this prefix
  int transfers = 200;
  int quantity = 5;
  int destinations = 20;
  int max_items = 5;
  std::string reference_data = stockpile::common::ReferenceData::DefaultDir();
  std::string run_id;  // distinguishes request ids and warehouse codes between runs
  // Take stock only from warehouses at the destination's level (see OtherLevelWarehouses).
  bool same_level_sources = true;
  int64_t min_leg = 0;  // the plans' min_leg_quantity (0: none)
};

std::unique_ptr<grpc::ClientContext> Ctx(int seconds = 60) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return ctx;
}

std::string Check(const grpc::Status& s, absl::string_view what) {
  return s.ok() ? std::string() : absl::StrCat(what, ": ", s.error_message());
}

// Totals per (level, item).
using Totals = std::map<std::string, std::map<std::string, ItemTotals>>;

struct Cluster {
  std::map<std::string, std::unique_ptr<LevelService::Stub>> levels;  // by level name
  std::unique_ptr<TransferService::Stub> transfers;
  std::vector<std::string> excluded;  // sources never to plan from
  int64_t min_leg = 0;                // the plans' min_leg_quantity

  Totals LedgerTotals() {
    Totals out;
    for (auto& [name, stub] : levels) {
      GetLedgerTotalsResponse resp;
      grpc::Status s = stub->GetLedgerTotals(Ctx().get(), {}, &resp);
      if (!s.ok()) std::cerr << "GetLedgerTotals at " << name << ": " << s.error_message() << "\n";
      for (const auto& t : resp.items()) out[name][t.item()] = t;
    }
    return out;
  }
};

struct Outcome {
  bool received = false;
  std::string error;
  std::string destination, item;
  int64_t moved = 0;
  double seconds = 0;
};

// Warehouses of every level but the county level (the destinations' level), under --region.
// Excluded by default so that the 200 transfers draw on county stores, which hold enough for all
// of them; with --any-level-sources the planner picks the nearest township and village stores
// first (a few units each), transfers contend for them and many fall short by design.
std::vector<std::string> OtherLevelWarehouses(Cluster& c, const Flags& f) {
  std::vector<std::string> out;
  for (auto& [name, stub] : c.levels) {
    if (name == "county") continue;
    ListWarehousesRequest req;
    req.set_region_prefix(f.region.substr(0, 2));
    req.set_page_size(1000);
    while (true) {
      ListWarehousesResponse resp;
      if (!stub->ListWarehouses(Ctx().get(), req, &resp).ok()) break;
      for (const auto& w : resp.warehouses()) out.push_back(w.name());
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
  }
  return out;
}

// One transfer, start to end.
Outcome RunOne(Cluster& c, const std::string& id, const std::string& destination,
               const std::string& item, int64_t quantity) {
  Outcome o;
  o.destination = destination;
  o.item = item;
  const auto start = Clock::now();
  CreateTransferRequest create;
  create.set_request_id("bench-create-" + id);
  create.set_actor("bench-dispatcher");
  PlanAllocationRequest* plan = create.mutable_plan();
  plan->set_destination_warehouse(destination);
  plan->set_priority(PRIORITY_URGENT);
  plan->set_min_leg_quantity(c.min_leg);
  plan->add_lines()->set_item(item);
  plan->mutable_lines(0)->set_quantity(quantity);
  AllocationPlan planned;
  for (const auto& w : c.excluded) plan->add_exclude_sources(w);
  o.error = Check(c.transfers->PlanAllocation(Ctx().get(), *plan, &planned), "plan");
  if (!o.error.empty()) return o;
  Transfer t;
  o.error = Check(c.transfers->CreateTransfer(Ctx().get(), create, &t), "create");
  if (!o.error.empty()) return o;
  ApproveTransferRequest approve;
  approve.set_request_id("bench-approve-" + id);
  approve.set_actor("bench-chief");
  approve.set_name(t.name());
  o.error = Check(c.transfers->ApproveTransfer(Ctx().get(), approve, &t), "approve");
  if (!o.error.empty()) return o;
  if (t.state() != TRANSFER_STATE_READY) {
    o.error = absl::StrCat("approve left ", TransferState_Name(t.state()), " ", t.failure_reason());
    return o;
  }
  std::vector<int> legs;
  for (const auto& leg : t.legs()) {
    if (leg.state() == LEG_STATE_HELD) legs.push_back(leg.index());
  }
  for (int leg : legs) {
    ShipTransferLegRequest ship;
    ship.set_request_id(absl::StrCat("bench-ship-", id, "-", leg));
    ship.set_actor("bench-keeper");
    ship.set_name(t.name());
    ship.set_leg(leg);
    o.error = Check(c.transfers->ShipTransfer(Ctx().get(), ship, &t), "ship");
    if (!o.error.empty()) return o;
  }
  for (int leg : legs) {
    ReceiveTransferLegRequest recv;
    recv.set_request_id(absl::StrCat("bench-recv-", id, "-", leg));
    recv.set_actor("bench-receiver");
    recv.set_name(t.name());
    recv.set_leg(leg);
    o.error = Check(c.transfers->ReceiveTransfer(Ctx().get(), recv, &t), "receive");
    if (!o.error.empty()) return o;
  }
  o.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  o.received = t.state() == TRANSFER_STATE_RECEIVED;
  if (!o.received) o.error = absl::StrCat("ended ", TransferState_Name(t.state()));
  for (const auto& leg : t.legs()) o.moved += leg.received();
  return o;
}

// Fresh empty warehouses at the county level under --region.
std::vector<std::string> CreateDestinations(Cluster& c, const Flags& f,
                                            const stockpile::common::ReferenceData& ref) {
  std::vector<std::string> counties;
  for (const auto& r : ref.regions()) {
    if (r.level == LEVEL_COUNTY && r.code.rfind(f.region, 0) == 0) counties.push_back(r.code);
  }
  std::vector<std::string> out;
  for (int i = 0; i < f.destinations && !counties.empty(); ++i) {
    const std::string& county = counties[size_t(i) % counties.size()];
    CreateWarehouseRequest req;
    req.set_request_id(absl::StrCat("bench-dest-", f.run_id, "-", i));
    req.set_actor("bench");
    Warehouse* w = req.mutable_warehouse();
    w->set_code(absl::StrCat(county, "-W", f.run_id, absl::Dec(i, absl::kZeroPad2)));
    w->set_display_name(absl::StrCat("transfer bench destination ", i));
    w->set_region_code(county);
    w->set_kind(WAREHOUSE_KIND_GOVERNMENT);
    w->set_area_m2(1000);
    Warehouse created;
    grpc::Status s = c.levels["county"]->CreateWarehouse(Ctx().get(), req, &created);
    if (!s.ok()) {
      std::cerr << "cannot create " << w->code() << ": " << s.error_message() << "\n";
      continue;
    }
    out.push_back("warehouses/" + created.code());
  }
  return out;
}

// Items the planner can fill `needed` units of for `destination` (stock it can see).
std::vector<std::string> PlannableItems(Cluster& c, const Flags& f,
                                        const stockpile::common::ReferenceData& ref,
                                        const std::string& destination, int64_t needed) {
  std::vector<std::string> out;
  for (const auto& item : ref.items()) {
    if (int(out.size()) == f.max_items) break;
    PlanAllocationRequest plan;
    plan.set_destination_warehouse(destination);
    plan.set_priority(PRIORITY_URGENT);
    plan.add_lines()->set_item(item.code);
    plan.mutable_lines(0)->set_quantity(needed);
    AllocationPlan planned;
    for (const auto& w : c.excluded) plan.add_exclude_sources(w);
    if (c.transfers->PlanAllocation(Ctx().get(), plan, &planned).ok() &&
        planned.outcomes_size() == 1 && planned.outcomes(0).shortfall() == 0) {
      out.push_back(item.code);
    }
  }
  return out;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * double(v.size())))];
}

// Every level: on_hand + in_transit = received - issued + adjusted - lost + transferred_in -
// delivered_out. Across levels, per item: stock in the system unchanged (nothing was received
// from outside or issued by the bench; losses counted), transfers in = deliveries out, nothing
// left held. Returns the number of violations (printed).
int VerifyTotals(const Totals& before, const Totals& after) {
  int bad = 0;
  std::map<std::string, std::array<int64_t, 6>> delta;  // stock, lost, in, out, held, transit
  for (const auto& [level, items] : after) {
    for (const auto& [item, t] : items) {
      if (t.on_hand() + t.in_transit() != t.received() - t.issued() + t.adjusted() - t.lost() +
                                              t.transferred_in() - t.delivered_out()) {
        std::cout << "  NOT CONSERVED at " << level << ": " << t.ShortDebugString() << "\n";
        ++bad;
      }
      ItemTotals b;
      auto l = before.find(level);
      if (l != before.end() && l->second.count(item)) b = l->second.at(item);
      auto& d = delta[item];
      d[0] += (t.on_hand() + t.in_transit()) - (b.on_hand() + b.in_transit());
      d[1] += t.lost() - b.lost();
      d[2] += t.transferred_in() - b.transferred_in();
      d[3] += t.delivered_out() - b.delivered_out();
      d[4] += t.held() - b.held();
      d[5] += t.in_transit() - b.in_transit();
    }
  }
  for (const auto& [item, d] : delta) {
    if (d[0] != -d[1] || d[2] != d[3] || d[4] != 0 || d[5] != 0) {
      std::cout << "  " << item << " does not add up across levels: stock " << d[0] << ", lost "
                << d[1] << ", transferred in " << d[2] << ", delivered out " << d[3] << ", held "
                << d[4] << ", in transit " << d[5] << "\n";
      ++bad;
    }
  }
  return bad;
}

int64_t OnHand(Cluster& c, const std::string& warehouse, const std::string& item) {
  GetBalanceRequest req;
  req.set_warehouse(warehouse);
  req.set_item(item);
  Balance b;
  return c.levels["county"]->GetBalance(Ctx().get(), req, &b).ok() ? b.on_hand() : 0;
}

int Run(const Flags& f) {
  auto ref = stockpile::common::ReferenceData::Load(f.reference_data);
  if (!ref.ok()) {
    std::cerr << "reference data: " << ref.status() << "\n";
    return 2;
  }
  Cluster c;
  for (absl::string_view part : absl::StrSplit(f.levels, ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    c.levels[kv.first] =
        LevelService::NewStub(grpc::CreateChannel(kv.second, grpc::InsecureChannelCredentials()));
  }
  if (!c.levels.count("county")) {
    std::cerr << "--levels must name the county level (destinations live there)\n";
    return 2;
  }
  c.transfers = TransferService::NewStub(
      grpc::CreateChannel(f.catalogue, grpc::InsecureChannelCredentials()));

  if (f.same_level_sources) c.excluded = OtherLevelWarehouses(c, f);
  c.min_leg = f.min_leg;
  const auto destinations = CreateDestinations(c, f, **ref);
  if (destinations.empty()) return 2;
  // Wait for the catalogue to replicate the new warehouses and find items with stock nearby.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const int64_t per_item = int64_t(f.transfers) * f.quantity / std::max(1, f.max_items);
  auto items = PlannableItems(c, f, **ref, destinations[0], per_item);
  if (items.empty()) {
    std::cerr << "no item has " << per_item << " units the planner can reach from "
              << destinations[0] << "; seed stock first (stockpile-demo)\n";
    return 2;
  }
  std::cout << "transfers: " << f.transfers << " x " << f.quantity << " units, "
            << destinations.size() << " destinations, items " << absl::StrJoin(items, ",") << "\n";

  const Totals before = c.LedgerTotals();
  std::map<std::pair<std::string, std::string>, int64_t> dest_before;
  for (const auto& d : destinations) {
    for (const auto& i : items) dest_before[{d, i}] = OnHand(c, d, i);
  }
  std::vector<Outcome> outcomes(size_t(f.transfers));
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int n = 0; n < f.transfers; ++n) {
    threads.emplace_back([&, n] {
      outcomes[size_t(n)] =
          RunOne(c, absl::StrCat(f.run_id, "-", n), destinations[size_t(n) % destinations.size()],
                 items[size_t(n) % items.size()], f.quantity);
    });
  }
  for (auto& t : threads) t.join();
  const double total = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<double> latencies;
  std::map<std::pair<std::string, std::string>, int64_t> moved;
  int64_t moved_total = 0;
  std::map<std::string, int> errors;
  for (const auto& o : outcomes) {
    if (o.received) {
      latencies.push_back(o.seconds * 1000);
      moved[{o.destination, o.item}] += o.moved;
      moved_total += o.moved;
    } else {
      ++errors[o.error.substr(0, 120)];
    }
  }
  std::cout << absl::StrFormat(
      "%d transfers end to end in %.2f s: %.1f transfers/s; %zu RECEIVED, %d not\n", f.transfers,
      total, f.transfers / total, latencies.size(), f.transfers - int(latencies.size()));
  std::cout << absl::StrFormat(
      "latency per transfer (plan..last receive): p50 %.0f ms, p90 %.0f "
      "ms, p99 %.0f ms, max %.0f ms\n",
      Percentile(latencies, 0.5), Percentile(latencies, 0.9), Percentile(latencies, 0.99),
      Percentile(latencies, 1.0));
  for (const auto& [e, n] : errors) std::cout << "  " << n << " x " << e << "\n";

  int bad = VerifyTotals(before, c.LedgerTotals());
  for (const auto& [key, before_qty] : dest_before) {
    const int64_t got = OnHand(c, key.first, key.second) - before_qty;
    if (got != moved[key]) {
      std::cout << "  " << key.first << " " << key.second << " gained " << got << ", transfers say "
                << moved[key] << "\n";
      ++bad;
    }
  }
  std::cout << "moved " << moved_total << " units; balances: "
            << (bad == 0 ? "every level conserves stock, totals add up across levels, "
                           "destinations gained exactly what was moved"
                         : absl::StrCat(bad, " violations"))
            << "\n";
  return bad == 0 && errors.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  f.run_id = std::to_string(std::time(nullptr) % 10000);
  CLI::App app{"stockpile-transfer-bench: N concurrent transfers end to end, balances verified"};
  app.add_option("--catalogue", f.catalogue, "catalogue with the TransferService")
      ->capture_default_str();
  app.add_option("--levels", f.levels, "level=host:port,... of every level service")
      ->capture_default_str();
  app.add_option("--region", f.region, "destinations: counties under this prefix")
      ->capture_default_str();
  app.add_option("--transfers", f.transfers, "transfers run at once")->capture_default_str();
  app.add_option("--quantity", f.quantity, "units per transfer")->capture_default_str();
  app.add_option("--destinations", f.destinations, "fresh destination warehouses")
      ->capture_default_str();
  app.add_option("--items", f.max_items, "at most this many items")->capture_default_str();
  app.add_flag("--same-level-sources,!--any-level-sources", f.same_level_sources,
               "exclude sources at other levels than the destination (default: on; "
               "--any-level-sources lets legs come from every level)");
  app.add_option("--min-leg", f.min_leg,
                 "plans pass over sources that could give fewer units (min_leg_quantity)")
      ->capture_default_str();
  app.add_option("--run-id", f.run_id,
                 "digits in warehouse codes and request ids (default: clock)");
  app.add_option("--reference-data", f.reference_data, "folder with regions/ and items/");
  CLI11_PARSE(app, argc, argv);
  return Run(f);
}
