// quota set | list, reserve set | list, shortages, overstock, expiring
#include <functional>
#include <optional>

#include "tools/stockctl/cli_util.h"
#include "tools/stockctl/commands.h"

namespace stockpile::stockctl {
namespace {

struct QuotaFlags {
  std::string warehouse, item, region_prefix, mode, partner;
  int64_t min = 0, max = 0, quantity = 0;
  int32_t lead_time_hours = 0;
  int32_t within_days = 30;
  PageFlags page;
  // Which optional settings were given: the others keep what the warehouse has.
  bool max_given = false, lead_time_given = false, partner_given = false;
};

// The warehouse's current record of `item` (and `mode`, for reserves), if any: a `set` that
// leaves a setting out keeps it rather than clearing it.
template <typename Request, typename Response, typename Record>
grpc::Status FindCurrent(Context& ctx, const QuotaFlags& f,
                         grpc::Status (v1::LevelService::Stub::*list)(grpc::ClientContext*,
                                                                      const Request&, Response*),
                         const google::protobuf::RepeatedPtrField<Record>& (Response::*records)()
                             const,
                         std::function<bool(const Record&)> matches, std::optional<Record>* out) {
  Request request;
  request.set_warehouse(f.warehouse);
  request.set_item(f.item);
  Response response;
  grpc::Status status = Call(ctx, list, request, &response);
  if (!status.ok()) return status;
  for (const Record& r : (response.*records)()) {
    if (matches(r)) *out = r;
  }
  return grpc::Status::OK;
}

// Optional --warehouse filter: empty stays empty, otherwise it becomes a resource name.
int SetQuota(Context& ctx, QuotaFlags f) {
  int rc = 0;
  if (!ctx.OptionalWarehouse(f.warehouse, rc)) return rc;
  if (!f.max_given) {
    std::optional<v1::Quota> current;
    grpc::Status found =
        FindCurrent(ctx, f, &v1::LevelService::Stub::ListQuotas, &v1::ListQuotasResponse::quotas,
                    std::function<bool(const v1::Quota&)>(
                        [&](const v1::Quota& q) { return q.item() == f.item; }),
                    &current);
    if (!found.ok()) return ctx.Fail(found);
    if (current) f.max = current->max();
  }
  v1::SetQuotaRequest request;
  request.mutable_quota()->set_warehouse(f.warehouse);
  request.mutable_quota()->set_item(f.item);
  request.mutable_quota()->set_min(f.min);
  request.mutable_quota()->set_max(f.max);
  request.set_request_id(ctx.RequestId());
  request.set_actor(ctx.actor());
  v1::Quota quota;
  grpc::Status status = Call(ctx, &v1::LevelService::Stub::SetQuota, request, &quota);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderQuota(quota), ToJson(quota));
  return 0;
}

int ListQuotas(Context& ctx, QuotaFlags f) {
  int rc = 0;
  if (!ctx.OptionalWarehouse(f.warehouse, rc)) return rc;
  v1::ListQuotasResponse all;
  grpc::Status status = FetchPages(f.page, [&](const std::string& token, std::string* next) {
    v1::ListQuotasRequest request;
    request.set_warehouse(f.warehouse);
    request.set_region_prefix(f.region_prefix);
    request.set_item(f.item);
    request.set_page_size(f.page.page_size);
    request.set_page_token(token);
    v1::ListQuotasResponse page;
    grpc::Status s = Call(ctx, &v1::LevelService::Stub::ListQuotas, request, &page);
    all.mutable_quotas()->MergeFrom(page.quotas());
    *next = page.next_page_token();
    return s;
  });
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderQuotas(all.quotas()), ToJsonArray(all.quotas()));
  return 0;
}

int SetReserve(Context& ctx, QuotaFlags f) {
  int rc = 0;
  if (!ctx.OptionalWarehouse(f.warehouse, rc)) return rc;
  auto mode = ParseReserveMode(f.mode);
  if (!mode.ok()) return ctx.UsageError(mode.status());
  if (!f.lead_time_given || !f.partner_given) {
    std::optional<v1::Reserve> current;
    grpc::Status found = FindCurrent(
        ctx, f, &v1::LevelService::Stub::ListReserves, &v1::ListReservesResponse::reserves,
        std::function<bool(const v1::Reserve&)>(
            [&](const v1::Reserve& r) { return r.item() == f.item && r.mode() == *mode; }),
        &current);
    if (!found.ok()) return ctx.Fail(found);
    if (current && !f.lead_time_given) f.lead_time_hours = current->lead_time_hours();
    if (current && !f.partner_given) f.partner = current->partner();
  }
  v1::SetReserveRequest request;
  v1::Reserve& r = *request.mutable_reserve();
  r.set_warehouse(f.warehouse);
  r.set_item(f.item);
  r.set_mode(*mode);
  r.set_quantity(f.quantity);
  r.set_lead_time_hours(f.lead_time_hours);
  r.set_partner(f.partner);
  request.set_request_id(ctx.RequestId());
  request.set_actor(ctx.actor());
  v1::Reserve reserve;
  grpc::Status status = Call(ctx, &v1::LevelService::Stub::SetReserve, request, &reserve);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderReserve(reserve), ToJson(reserve));
  return 0;
}

int ListReserves(Context& ctx, QuotaFlags f) {
  int rc = 0;
  if (!ctx.OptionalWarehouse(f.warehouse, rc)) return rc;
  v1::ListReservesResponse all;
  grpc::Status status = FetchPages(f.page, [&](const std::string& token, std::string* next) {
    v1::ListReservesRequest request;
    request.set_warehouse(f.warehouse);
    request.set_region_prefix(f.region_prefix);
    request.set_item(f.item);
    request.set_page_size(f.page.page_size);
    request.set_page_token(token);
    v1::ListReservesResponse page;
    grpc::Status s = Call(ctx, &v1::LevelService::Stub::ListReserves, request, &page);
    all.mutable_reserves()->MergeFrom(page.reserves());
    *next = page.next_page_token();
    return s;
  });
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderReserves(all.reserves()), ToJsonArray(all.reserves()));
  return 0;
}

using QuotaStatusMethod = grpc::Status (v1::LevelService::Stub::*)(
    grpc::ClientContext*, const v1::ListQuotaStatusRequest&, v1::ListQuotaStatusResponse*);

int ListQuotaStatus(Context& ctx, const QuotaFlags& f, QuotaStatusMethod method) {
  v1::ListQuotaStatusResponse all;
  grpc::Status status = FetchPages(f.page, [&](const std::string& token, std::string* next) {
    v1::ListQuotaStatusRequest request;
    request.set_region_prefix(f.region_prefix);
    request.set_item(f.item);
    request.set_page_size(f.page.page_size);
    request.set_page_token(token);
    v1::ListQuotaStatusResponse page;
    grpc::Status s = Call(ctx, method, request, &page);
    all.mutable_entries()->MergeFrom(page.entries());
    *next = page.next_page_token();
    return s;
  });
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderQuotaStatus(all.entries()), ToJsonArray(all.entries()));
  return 0;
}

int ListExpiring(Context& ctx, const QuotaFlags& f) {
  v1::ListExpiringLotsResponse all;
  grpc::Status status = FetchPages(f.page, [&](const std::string& token, std::string* next) {
    v1::ListExpiringLotsRequest request;
    request.set_region_prefix(f.region_prefix);
    request.set_within_days(f.within_days);
    request.set_page_size(f.page.page_size);
    request.set_page_token(token);
    v1::ListExpiringLotsResponse page;
    grpc::Status s = Call(ctx, &v1::LevelService::Stub::ListExpiringLots, request, &page);
    all.mutable_lots()->MergeFrom(page.lots());
    *next = page.next_page_token();
    return s;
  });
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderExpiring(all.lots()), ToJsonArray(all.lots()));
  return 0;
}

void Filters(CLI::App* cmd, QuotaFlags& f, bool with_warehouse) {
  auto* region = cmd->add_option("--region", f.region_prefix, "Region-code prefix");
  // One or the other (the service refuses both): a usage error before any call.
  if (with_warehouse)
    cmd->add_option("--warehouse", f.warehouse, "One warehouse")->excludes(region);
  cmd->add_option("--item", f.item, "Item code");
  AddPageFlags(cmd, f.page);
}

}  // namespace

void AddQuotaCommands(CLI::App& app, Context& ctx, ActionMap& actions) {
  auto f = std::make_shared<QuotaFlags>();

  auto* quota = app.add_subcommand("quota", "Reserve floor (min) and ceiling (max) per item");
  auto* qset = quota->add_subcommand("set", "Set a warehouse's quota for an item");
  qset->add_option("--warehouse", f->warehouse, "Warehouse code")->required();
  qset->add_option("--item", f->item, "Item code")->required();
  qset->add_option("--min", f->min, "Floor: stock below it is a shortage")->required();
  qset->add_option("--max", f->max, "Ceiling: 0 means none (left out: the current one stays)");
  actions[qset] = [&ctx, f, qset] {
    f->max_given = qset->get_option("--max")->count() > 0;
    return SetQuota(ctx, *f);
  };
  auto* qlist = quota->add_subcommand("list", "List quotas");
  Filters(qlist, *f, true);
  actions[qlist] = [&ctx, f] { return ListQuotas(ctx, *f); };

  auto* reserve = app.add_subcommand("reserve", "Contract stock and production capacity");
  auto* rset = reserve->add_subcommand("set", "Record a non-physical reserve (0 removes it)");
  rset->add_option("--warehouse", f->warehouse, "Warehouse code")->required();
  rset->add_option("--item", f->item, "Item code")->required();
  rset->add_option("--mode", f->mode, "contract | capacity")->required();
  rset->add_option("--quantity", f->quantity, "Quantity")->required();
  rset->add_option("--lead-time-hours", f->lead_time_hours,
                   "Delivery lead time (left out: the current one stays)");
  rset->add_option("--partner", f->partner,
                   "Supplier or factory (left out: the current one stays)");
  actions[rset] = [&ctx, f, rset] {
    f->lead_time_given = rset->get_option("--lead-time-hours")->count() > 0;
    f->partner_given = rset->get_option("--partner")->count() > 0;
    return SetReserve(ctx, *f);
  };
  auto* rlist = reserve->add_subcommand("list", "List non-physical reserves");
  Filters(rlist, *f, true);
  actions[rlist] = [&ctx, f] { return ListReserves(ctx, *f); };

  auto* shortages = app.add_subcommand("shortages", "Items below their quota floor");
  Filters(shortages, *f, false);
  actions[shortages] = [&ctx, f] {
    return ListQuotaStatus(ctx, *f, &v1::LevelService::Stub::ListShortages);
  };
  auto* overstock = app.add_subcommand("overstock", "Items above their quota ceiling");
  Filters(overstock, *f, false);
  actions[overstock] = [&ctx, f] {
    return ListQuotaStatus(ctx, *f, &v1::LevelService::Stub::ListOverstock);
  };

  auto* expiring = app.add_subcommand("expiring", "Lots expiring soon (or already expired)");
  expiring->add_option("--within-days", f->within_days,
                       "Days ahead: lots expiring at most N days from today, and expired ones (0: "
                       "today; default 30)");
  expiring->add_option("--region", f->region_prefix, "Region-code prefix");
  AddPageFlags(expiring, f->page);
  actions[expiring] = [&ctx, f] { return ListExpiring(ctx, *f); };
}

}  // namespace stockpile::stockctl
