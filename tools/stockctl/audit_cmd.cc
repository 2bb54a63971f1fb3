// audit --warehouse=CODE | --transfer=ID: who did what, when.
#include "absl/strings/match.h"
#include "tools/stockctl/cli_util.h"
#include "tools/stockctl/commands.h"
#include "tools/stockctl/output/audit_render.h"

namespace stockpile::stockctl {
namespace {

struct AuditFlags {
  std::string warehouse, transfer, since, until;
};

// Every page of one warehouse's listing.
template <typename Request, typename Response, typename Stub>
grpc::Status AllPages(Context& ctx,
                      grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                      Request request, Response* all,
                      void (*merge)(Response* all, const Response& page)) {
  PageFlags every;
  every.all = true;
  return FetchPages(every, [&](const std::string& token, std::string* next) {
    request.set_page_token(token);
    Response page;
    grpc::Status s = Call(ctx, method, request, &page);
    merge(all, page);
    *next = page.next_page_token();
    return s;
  });
}

int WarehouseAudit(Context& ctx, AuditFlags f) {
  int rc = 0;
  if (!ctx.OptionalWarehouse(f.warehouse, rc)) return rc;
  v1::GetWarehouseRequest get;
  get.set_name(f.warehouse);
  v1::Warehouse warehouse;
  grpc::Status s = Call(ctx, &v1::LevelService::Stub::GetWarehouse, get, &warehouse);
  if (!s.ok()) return ctx.Fail(s);

  v1::ListQuotasRequest quotas_request;
  quotas_request.set_warehouse(f.warehouse);
  v1::ListQuotasResponse quotas;
  s = AllPages(
      ctx, &v1::LevelService::Stub::ListQuotas, quotas_request, &quotas,
      +[](v1::ListQuotasResponse* all, const v1::ListQuotasResponse& page) {
        all->mutable_quotas()->MergeFrom(page.quotas());
      });
  if (!s.ok()) return ctx.Fail(s);

  v1::ListReservesRequest reserves_request;
  reserves_request.set_warehouse(f.warehouse);
  v1::ListReservesResponse reserves;
  s = AllPages(
      ctx, &v1::LevelService::Stub::ListReserves, reserves_request, &reserves,
      +[](v1::ListReservesResponse* all, const v1::ListReservesResponse& page) {
        all->mutable_reserves()->MergeFrom(page.reserves());
      });
  if (!s.ok()) return ctx.Fail(s);

  v1::ListMovementsRequest movements_request;
  movements_request.set_warehouse(f.warehouse);
  if (auto range = SetTimeRange(f.since, f.until, &movements_request); !range.ok()) {
    return ctx.UsageError(range);
  }
  v1::ListMovementsResponse movements;
  s = AllPages(
      ctx, &v1::LevelService::Stub::ListMovements, movements_request, &movements,
      +[](v1::ListMovementsResponse* all, const v1::ListMovementsResponse& page) {
        all->mutable_movements()->MergeFrom(page.movements());
      });
  if (!s.ok()) return ctx.Fail(s);

  // Admin entries (creation, quotas, reserves) by the same range as the movements.
  auto entries =
      WithinTimes(stockctl::WarehouseAudit(warehouse, quotas.quotas(), reserves.reserves(),
                                           movements.movements()),
                  movements_request.has_start_time() ? &movements_request.start_time() : nullptr,
                  movements_request.has_end_time() ? &movements_request.end_time() : nullptr);
  ctx.Print(RenderAudit(entries), AuditJson(entries));
  return 0;
}

int TransferAudit(Context& ctx, const AuditFlags& f) {
  v1::GetTransferRequest request;
  request.set_name(absl::StartsWith(f.transfer, "transfers/") ? f.transfer
                                                              : "transfers/" + f.transfer);
  v1::Transfer transfer;
  grpc::Status s = Call(ctx, &v1::TransferService::Stub::GetTransfer, request, &transfer);
  if (!s.ok()) return ctx.Fail(s);
  auto entries = stockctl::TransferAudit(transfer);
  ctx.Print(RenderAudit(entries), AuditJson(entries));
  return 0;
}

}  // namespace

void AddAuditCommand(CLI::App& app, Context& ctx, ActionMap& actions) {
  auto f = std::make_shared<AuditFlags>();
  auto* audit = app.add_subcommand(
      "audit",
      "Who did what, when: a warehouse's movements and admin changes (--server), or every step "
      "of a transfer (--catalogue)");
  auto* warehouse = audit->add_option("--warehouse", f->warehouse, "Warehouse code or name");
  auto* transfer = audit->add_option("--transfer", f->transfer, "Transfer id (or transfers/ID)");
  warehouse->excludes(transfer);
  audit->add_option("--since", f->since, "Entries from this time (RFC 3339, or YYYY-MM-DD)");
  audit->add_option("--until", f->until, "Entries before this time (RFC 3339, or YYYY-MM-DD)");
  actions[audit] = [&ctx, f] {
    if (!f->transfer.empty()) return TransferAudit(ctx, *f);
    if (f->warehouse.empty()) return ctx.UsageError("give --warehouse or --transfer");
    return WarehouseAudit(ctx, *f);
  };
}

}  // namespace stockpile::stockctl
