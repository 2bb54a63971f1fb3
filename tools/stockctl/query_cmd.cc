// balance get | list, movements, hold get | list, totals, info, items, region get
#include "absl/time/clock.h"
#include "services/common/validation.h"
#include "tools/stockctl/cli_util.h"
#include "tools/stockctl/commands.h"

namespace stockpile::stockctl {
namespace {

struct QueryFlags {
  std::string warehouse, item, region_prefix, as_of, since, until, reference, request, state;
  std::string hold_id, region_code;
  bool skip_zero = false;
  PageFlags page;
};

int GetBalance(Context& ctx, QueryFlags f) {
  int rc = 0;
  if (!ctx.OptionalWarehouse(f.warehouse, rc)) return rc;
  v1::GetBalanceRequest request;
  request.set_warehouse(f.warehouse);
  request.set_item(f.item);
  if (!f.as_of.empty()) {
    auto when = ParseTimeArg("--as-of", f.as_of);
    if (!when.ok()) return ctx.UsageError(when.status());
    *request.mutable_as_of_time() = *when;
    // Tables print times to the second: a time copied from one must count every movement
    // printed with it, so a time to the second reads to the end of that second.
    if (f.as_of.size() != 10 && f.as_of.find('.') == std::string::npos) {
      request.mutable_as_of_time()->set_nanos(999'999'000);
    }
  }
  v1::Balance balance;
  grpc::Status status = Call(ctx, &v1::LevelService::Stub::GetBalance, request, &balance);
  if (!status.ok()) return ctx.Fail(status);
  const int64_t when_micros = request.has_as_of_time() ? request.as_of_time().seconds() * 1'000'000
                                                       : absl::ToUnixMicros(absl::Now());
  ctx.Print(RenderBalance(balance, common::ReserveDay(when_micros), request.has_as_of_time()),
            ToJson(balance));
  return 0;
}

int ListBalances(Context& ctx, QueryFlags f) {
  int rc = 0;
  if (!ctx.OptionalWarehouse(f.warehouse, rc)) return rc;
  v1::ListBalancesResponse all;
  grpc::Status status = FetchPages(f.page, [&](const std::string& token, std::string* next) {
    v1::ListBalancesRequest request;
    request.set_warehouse(f.warehouse);
    request.set_region_prefix(f.region_prefix);
    request.set_item(f.item);
    request.set_skip_zero(f.skip_zero);
    request.set_page_size(f.page.page_size);
    request.set_page_token(token);
    v1::ListBalancesResponse page;
    grpc::Status s = Call(ctx, &v1::LevelService::Stub::ListBalances, request, &page);
    all.mutable_balances()->MergeFrom(page.balances());
    *next = page.next_page_token();
    return s;
  });
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderBalances(all.balances()), ToJsonArray(all.balances()));
  return 0;
}

int ListMovements(Context& ctx, QueryFlags f) {
  int rc = 0;
  if (!ctx.OptionalWarehouse(f.warehouse, rc)) return rc;
  if (f.warehouse.empty() && f.item.empty()) return ctx.UsageError("give --warehouse or --item");
  v1::ListMovementsRequest base;
  base.set_warehouse(f.warehouse);
  base.set_item(f.item);
  base.set_reference(f.reference);
  base.set_request_id(f.request);
  base.set_page_size(f.page.page_size);
  if (auto range = SetTimeRange(f.since, f.until, &base); !range.ok()) {
    return ctx.UsageError(range);
  }
  v1::ListMovementsResponse all;
  grpc::Status status = FetchPages(f.page, [&](const std::string& token, std::string* next) {
    v1::ListMovementsRequest request = base;
    request.set_page_token(token);
    v1::ListMovementsResponse page;
    grpc::Status s = Call(ctx, &v1::LevelService::Stub::ListMovements, request, &page);
    all.mutable_movements()->MergeFrom(page.movements());
    *next = page.next_page_token();
    return s;
  });
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderMovements(all.movements()), ToJsonArray(all.movements()));
  return 0;
}

int GetHold(Context& ctx, const QueryFlags& f) {
  v1::GetHoldRequest request;
  request.set_name(f.hold_id.rfind("holds/", 0) == 0 ? f.hold_id : "holds/" + f.hold_id);
  v1::Hold hold;
  grpc::Status status = Call(ctx, &v1::LevelService::Stub::GetHold, request, &hold);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderHold(hold), ToJson(hold));
  return 0;
}

int ListHolds(Context& ctx, QueryFlags f) {
  int rc = 0;
  if (!ctx.OptionalWarehouse(f.warehouse, rc)) return rc;
  v1::HoldState state = v1::HOLD_STATE_UNSPECIFIED;
  if (!f.state.empty()) {
    auto parsed = ParseHoldState(f.state);
    if (!parsed.ok()) return ctx.UsageError(parsed.status());
    state = *parsed;
  }
  v1::ListHoldsResponse all;
  grpc::Status status = FetchPages(f.page, [&](const std::string& token, std::string* next) {
    v1::ListHoldsRequest request;
    request.set_warehouse(f.warehouse);
    request.set_state(state);
    request.set_page_size(f.page.page_size);
    request.set_page_token(token);
    v1::ListHoldsResponse page;
    grpc::Status s = Call(ctx, &v1::LevelService::Stub::ListHolds, request, &page);
    all.mutable_holds()->MergeFrom(page.holds());
    *next = page.next_page_token();
    return s;
  });
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderHolds(all.holds()), ToJsonArray(all.holds()));
  return 0;
}

int Totals(Context& ctx) {
  v1::GetLedgerTotalsResponse totals;
  grpc::Status status =
      Call(ctx, &v1::LevelService::Stub::GetLedgerTotals, v1::GetLedgerTotalsRequest(), &totals);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderTotals(totals.items()), ToJsonArray(totals.items()));
  return 0;
}

int Info(Context& ctx) {
  v1::InstanceInfo info;
  grpc::Status status =
      Call(ctx, &v1::LevelService::Stub::GetInstanceInfo, v1::GetInstanceInfoRequest(), &info);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderInstanceInfo(info), ToJson(info));
  return 0;
}

int Backup(Context& ctx) {
  v1::CreateBackupRequest req;
  req.set_request_id(ctx.RequestId());
  v1::Backup backup;
  grpc::Status status = Call(ctx, &v1::LevelService::Stub::CreateBackup, req, &backup);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderBackup(backup), ToJson(backup));
  return 0;
}

int ListBackups(Context& ctx) {
  v1::ListBackupsResponse backups;
  grpc::Status status =
      Call(ctx, &v1::LevelService::Stub::ListBackups, v1::ListBackupsRequest(), &backups);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderBackups(backups.backups()), ToJsonArray(backups.backups()));
  return 0;
}

int Items(Context& ctx) {
  v1::ListItemsResponse items;
  grpc::Status status =
      Call(ctx, &v1::LevelService::Stub::ListItems, v1::ListItemsRequest(), &items);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderItems(items.items()), ToJsonArray(items.items()));
  return 0;
}

int GetRegion(Context& ctx, const QueryFlags& f) {
  v1::GetRegionRequest request;
  request.set_name(f.region_code.rfind("regions/", 0) == 0 ? f.region_code
                                                           : "regions/" + f.region_code);
  v1::Region region;
  grpc::Status status = Call(ctx, &v1::LevelService::Stub::GetRegion, request, &region);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderRegion(region), ToJson(region));
  return 0;
}

void AddBalanceCommands(CLI::App& app, Context& ctx, ActionMap& actions,
                        std::shared_ptr<QueryFlags> f) {
  auto* balance = app.add_subcommand("balance", "Stock balances");
  auto* get = balance->add_subcommand("get", "One warehouse × item, by lot");
  get->add_option("--warehouse", f->warehouse, "Warehouse code")->required();
  get->add_option("--item", f->item, "Item code")->required();
  get->add_option("--as-of", f->as_of, "As it stood at RFC 3339 time or YYYY-MM-DD");
  actions[get] = [&ctx, f] { return GetBalance(ctx, *f); };
  auto* list = balance->add_subcommand("list", "List balances");
  // One or the other (the service refuses both): a usage error before any call.
  list->add_option("--warehouse", f->warehouse, "One warehouse")
      ->excludes(list->add_option("--region", f->region_prefix, "Region-code prefix"));
  list->add_option("--item", f->item, "Item code");
  list->add_flag("--skip-zero", f->skip_zero, "Leave out empty balances");
  AddPageFlags(list, f->page);
  actions[list] = [&ctx, f] { return ListBalances(ctx, *f); };
}

}  // namespace

void AddQueryCommands(CLI::App& app, Context& ctx, ActionMap& actions) {
  auto f = std::make_shared<QueryFlags>();
  AddBalanceCommands(app, ctx, actions, f);

  auto* movements = app.add_subcommand("movements", "Movement history");
  movements->add_option("--warehouse", f->warehouse, "Warehouse code");
  movements->add_option("--item", f->item, "Item code");
  movements->add_option("--since", f->since, "From (inclusive): RFC 3339 or YYYY-MM-DD");
  movements->add_option("--until", f->until, "To (exclusive): RFC 3339 or YYYY-MM-DD");
  movements->add_option("--reference", f->reference, "Transfer / hold reference");
  movements->add_option("--request", f->request, "Only movements of this request id");
  AddPageFlags(movements, f->page);
  actions[movements] = [&ctx, f] { return ListMovements(ctx, *f); };

  // `hold` itself (the mutation) is added by AddMovementCommands.
  CLI::App* hold = app.get_subcommand("hold");
  auto* hget = hold->add_subcommand("get", "Show a hold");
  hget->add_option("hold_id", f->hold_id, "Hold id or holds/{id}")->required();
  actions[hget] = [&ctx, f] { return GetHold(ctx, *f); };
  auto* hlist = hold->add_subcommand("list", "List holds");
  hlist->add_option("--warehouse", f->warehouse, "Warehouse code");
  hlist->add_option("--state", f->state, "active | released | expired | shipped | delivered");
  AddPageFlags(hlist, f->page);
  actions[hlist] = [&ctx, f] { return ListHolds(ctx, *f); };

  actions[app.add_subcommand("totals", "Per-item ledger totals of the instance")] = [&ctx] {
    return Totals(ctx);
  };
  actions[app.add_subcommand("info", "Instance: level, regions, sequence")] = [&ctx] {
    return Info(ctx);
  };
  auto* backup = app.add_subcommand("backup",
                                    "Copy the instance's database while it serves (under its "
                                    "--backup-dir; a large one may need --timeout)");
  actions[backup] = [&ctx] { return Backup(ctx); };
  actions[backup->add_subcommand("list", "The instance's backups, newest first")] = [&ctx] {
    return ListBackups(ctx);
  };
  actions[app.add_subcommand("items", "The item catalogue")] = [&ctx] { return Items(ctx); };
  auto* region = app.add_subcommand("region", "Reference regions");
  auto* rget = region->add_subcommand("get", "Show a region");
  rget->add_option("code", f->region_code, "Region code, e.g. 420102")->required();
  actions[rget] = [&ctx, f] { return GetRegion(ctx, *f); };
}

}  // namespace stockpile::stockctl
