// catalogue stock get | stock list | rollup | search | shortages | expiring | status |
// forget-source
// The national view, read from the catalogue (--catalogue), not from a level service.
#include <algorithm>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/validation.h"
#include "tools/stockctl/cli_util.h"
#include "tools/stockctl/commands.h"
#include "tools/stockctl/output/catalogue_render.h"

namespace stockpile::stockctl {
namespace {

struct CatalogueFlags {
  std::string warehouse, item, region_prefix, region_code;
  std::string near_region, near_point;
  int64_t min_available = 0;
  double radius_km = 0;
  int32_t limit = 0;
  int32_t within_days = 30;
  bool skip_zero = false;
  PageFlags page;
  std::string source;
};

int GetStock(Context& ctx, const CatalogueFlags& f) {
  auto name = WarehouseNameArg(f.warehouse);
  if (!name.ok()) return ctx.UsageError(name.status());
  v1::GetWarehouseStockRequest request;
  request.set_warehouse(*name);
  request.set_item(f.item);
  v1::WarehouseStock stock;
  grpc::Status status = Call(ctx, &v1::CatalogueService::Stub::GetWarehouseStock, request, &stock);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderWarehouseStock(stock), ToJson(stock));
  return 0;
}

// Pages of one item's stock under the prefix, appended to `all`.
grpc::Status ListItemStock(Context& ctx, const CatalogueFlags& f, const std::string& item,
                           const PageFlags& page, bool skip_zero,
                           v1::ListWarehouseStockResponse& all) {
  return FetchPages(page, [&](const std::string& token, std::string* next) {
    v1::ListWarehouseStockRequest request;
    request.set_region_prefix(f.region_prefix);
    request.set_item(item);
    request.set_skip_zero(skip_zero);
    request.set_page_size(f.page.page_size);
    request.set_page_token(token);
    v1::ListWarehouseStockResponse one;
    grpc::Status s = Call(ctx, &v1::CatalogueService::Stub::ListWarehouseStock, request, &one);
    all.mutable_stock()->MergeFrom(one.stock());
    *next = one.next_page_token();
    return s;
  });
}

// Without --item the catalogue lists one item at a time, so ask the region's roll-up which
// items have any stock there and list those (every page, warehouses with stock only).
int ListStockOfEveryItem(Context& ctx, const CatalogueFlags& f) {
  if (!f.page.page_token.empty()) {
    // A token continues one item's listing; applied to every item it started each one after
    // the token's warehouse and silently left the warehouses before it out.
    return ctx.UsageError(
        "--page-token continues the listing of one item: give that --item with it (without "
        "--item every item's stock is listed in full)");
  }
  if (common::LevelOfRegionCode(f.region_prefix) == v1::LEVEL_UNSPECIFIED) {
    return ctx.UsageError(
        "without --item, --region must be a whole region code (2, 4, 6, 9 or 12 digits)");
  }
  v1::GetRollupRequest rollup_request;
  rollup_request.set_region_code(f.region_prefix);
  v1::Rollup rollup;
  grpc::Status status = Call(ctx, &v1::CatalogueService::Stub::GetRollup, rollup_request, &rollup);
  if (!status.ok()) return ctx.Fail(status);
  v1::ListWarehouseStockResponse all;
  PageFlags every_page = f.page;
  every_page.all = true;
  for (const auto& item : rollup.items()) {
    if (item.on_hand() == 0 && item.in_transit() == 0) continue;
    status = ListItemStock(ctx, f, item.item(), every_page, /*skip_zero=*/true, all);
    if (!status.ok()) return ctx.Fail(status);
  }
  ctx.Print(RenderWarehouseStocks(all.stock()), ToJsonArray(all.stock()));
  return 0;
}

int ListStock(Context& ctx, const CatalogueFlags& f) {
  if (f.item.empty()) return ListStockOfEveryItem(ctx, f);
  v1::ListWarehouseStockResponse all;
  grpc::Status status = ListItemStock(ctx, f, f.item, f.page, f.skip_zero, all);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderWarehouseStocks(all.stock()), ToJsonArray(all.stock()));
  return 0;
}

int Rollup(Context& ctx, const CatalogueFlags& f) {
  v1::GetRollupRequest request;
  request.set_region_code(f.region_code);
  request.set_item(f.item);
  v1::Rollup rollup;
  grpc::Status status = Call(ctx, &v1::CatalogueService::Stub::GetRollup, request, &rollup);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderRollup(rollup), ToJson(rollup));
  return 0;
}

// "114.3,30.6" -> GeoPoint (longitude first, as in the warehouse flags).
absl::StatusOr<v1::GeoPoint> ParsePoint(absl::string_view text) {
  std::vector<std::string> parts = absl::StrSplit(text, ',');
  double longitude = 0, latitude = 0;
  if (parts.size() != 2 || !absl::SimpleAtod(parts[0], &longitude) ||
      !absl::SimpleAtod(parts[1], &latitude) || longitude < -180 || longitude > 180 ||
      latitude < -90 || latitude > 90) {
    // A region code here is the likely slip: say where it goes.
    const bool region_code =
        !text.empty() && std::all_of(text.begin(), text.end(), absl::ascii_isdigit);
    return absl::InvalidArgumentError(absl::StrCat(
        "--near must be LONGITUDE,LATITUDE in degrees; got \"", text, "\"",
        region_code ? absl::StrCat("; to measure from a region's seat use --near-region ", text)
                    : ""));
  }
  v1::GeoPoint point;
  point.set_longitude(longitude);
  point.set_latitude(latitude);
  return point;
}

int Search(Context& ctx, const CatalogueFlags& f) {
  if (f.near_region.empty() == f.near_point.empty()) {
    return ctx.UsageError("give exactly one of --near-region CODE or --near LON,LAT");
  }
  v1::SearchStockRequest request;
  request.set_item(f.item);
  request.set_min_available(f.min_available);
  if (!f.near_region.empty()) {
    request.set_region_code(f.near_region);
  } else {
    auto point = ParsePoint(f.near_point);
    if (!point.ok()) return ctx.UsageError(point.status());
    *request.mutable_point() = *point;
  }
  request.set_radius_km(f.radius_km);
  request.set_region_prefix(f.region_prefix);
  request.set_page_size(f.limit);
  request.set_page_token(f.page.page_token);
  v1::SearchStockResponse response;
  grpc::Status status = Call(ctx, &v1::CatalogueService::Stub::SearchStock, request, &response);
  if (!status.ok()) return ctx.Fail(status);
  // Search takes no --all (AddPageFlags is not used): the next page is only --page-token.
  AnnounceNextPage(response.next_page_token(), /*offer_all=*/false);
  ctx.Print(RenderStockHits(response.hits()), ToJsonArray(response.hits()));
  return 0;
}

int Shortages(Context& ctx, const CatalogueFlags& f) {
  v1::ListQuotaStatusResponse all;
  grpc::Status status = FetchPages(f.page, [&](const std::string& token, std::string* next) {
    v1::ListQuotaStatusRequest request;
    request.set_region_prefix(f.region_prefix);
    request.set_item(f.item);
    request.set_page_size(f.page.page_size);
    request.set_page_token(token);
    v1::ListQuotaStatusResponse one;
    grpc::Status s = Call(ctx, &v1::CatalogueService::Stub::ListShortages, request, &one);
    all.mutable_entries()->MergeFrom(one.entries());
    *next = one.next_page_token();
    return s;
  });
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderQuotaStatus(all.entries()), ToJsonArray(all.entries()));
  return 0;
}

int Expiring(Context& ctx, const CatalogueFlags& f) {
  v1::ListExpiringLotsResponse all;
  grpc::Status status = FetchPages(f.page, [&](const std::string& token, std::string* next) {
    v1::ListExpiringLotsRequest request;
    request.set_region_prefix(f.region_prefix);
    request.set_within_days(f.within_days);
    request.set_page_size(f.page.page_size);
    request.set_page_token(token);
    v1::ListExpiringLotsResponse one;
    grpc::Status s = Call(ctx, &v1::CatalogueService::Stub::ListExpiringLots, request, &one);
    all.mutable_lots()->MergeFrom(one.lots());
    *next = one.next_page_token();
    return s;
  });
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderExpiring(all.lots()), ToJsonArray(all.lots()));
  return 0;
}

int Status(Context& ctx) {
  v1::GetReplicationStatusResponse response;
  grpc::Status status = Call(ctx, &v1::CatalogueService::Stub::GetReplicationStatus,
                             v1::GetReplicationStatusRequest(), &response);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderReplicationStatus(response.sources()), ToJsonArray(response.sources()));
  return 0;
}

int ForgetSource(Context& ctx, const CatalogueFlags& f) {
  v1::ForgetReplicationSourceRequest request;
  request.set_name(absl::StartsWith(f.source, "sources/") ? f.source
                                                          : absl::StrCat("sources/", f.source));
  request.set_request_id(ctx.RequestId());
  request.set_actor(ctx.actor());
  v1::ReplicationSource forgotten;
  grpc::Status status =
      Call(ctx, &v1::CatalogueService::Stub::ForgetReplicationSource, request, &forgotten);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderForgottenSource(forgotten), ToJson(forgotten));
  return 0;
}

void AddStockCommands(CLI::App* group, Context& ctx, ActionMap& actions,
                      std::shared_ptr<CatalogueFlags> f) {
  auto* stock = group->add_subcommand("stock", "One warehouse's stock, or a region's warehouses");
  auto* get = stock->add_subcommand("get", "Stock of one item at one warehouse, with freshness");
  get->add_option("--warehouse", f->warehouse, "Warehouse code or name")->required();
  get->add_option("--item", f->item, "Item code")->required();
  actions[get] = [&ctx, f] { return GetStock(ctx, *f); };

  auto* list = stock->add_subcommand("list", "Warehouses under a region with their stock");
  list->add_option("--region", f->region_prefix, "Region-code prefix (empty: nationally)");
  list->add_option("--item", f->item,
                   "Item code (without it: every item with stock under --region)");
  list->add_flag("--skip-zero", f->skip_zero, "Leave out warehouses with nothing of the item");
  AddPageFlags(list, f->page);
  actions[list] = [&ctx, f] { return ListStock(ctx, *f); };
}

}  // namespace

void AddCatalogueCommands(CLI::App& app, Context& ctx, ActionMap& actions) {
  auto* group = app.add_subcommand(
      "catalogue", "The national view from the catalogue (--catalogue): stock, roll-ups, search");
  auto f = std::make_shared<CatalogueFlags>();
  AddStockCommands(group, ctx, actions, f);

  auto* rollup =
      group->add_subcommand("rollup", "Totals per item of every warehouse under a region");
  rollup->add_option("--region", f->region_code, "Region code: 2, 4, 6, 9 or 12 digits")
      ->required();
  rollup->add_option("--item", f->item, "One item (default: every item)");
  actions[rollup] = [&ctx, f] { return Rollup(ctx, *f); };

  auto* search =
      group->add_subcommand("search", "Warehouses with enough of an item, nearest first");
  search->add_option("--item", f->item, "Item code")->required();
  search->add_option("--min", f->min_available, "At least this much available")
      ->required()
      ->check(CLI::PositiveNumber);
  search->add_option("--near-region", f->near_region, "Measure from this region's seat");
  search->add_option("--near", f->near_point, "Measure from LONGITUDE,LATITUDE");
  search->add_option("--radius-km", f->radius_km, "Only within this distance (0: no limit)");
  search->add_option("--region", f->region_prefix, "Only warehouses under this region prefix");
  search->add_option("--limit", f->limit, "How many (server default 10, max 1000)");
  search->add_option("--page-token", f->page.page_token, "Continue from a previous search");
  actions[search] = [&ctx, f] { return Search(ctx, *f); };

  auto* shortages = group->add_subcommand("shortages", "Stock below its quota floor, nationally");
  shortages->add_option("--region", f->region_prefix, "Region-code prefix");
  shortages->add_option("--item", f->item, "Item code");
  AddPageFlags(shortages, f->page);
  actions[shortages] = [&ctx, f] { return Shortages(ctx, *f); };

  auto* expiring = group->add_subcommand("expiring", "Lots expiring soon (or expired), nationally");
  expiring->add_option("--region", f->region_prefix, "Region-code prefix");
  expiring->add_option("--within-days", f->within_days,
                       "Days ahead: lots expiring at most N days from today, and expired ones (0: "
                       "today; default 30)");
  AddPageFlags(expiring, f->page);
  actions[expiring] = [&ctx, f] { return Expiring(ctx, *f); };

  auto* status = group->add_subcommand("status", "Replication status of every level instance");
  actions[status] = [&ctx] { return Status(ctx); };

  auto* forget = group->add_subcommand(
      "forget-source",
      "Drop a gone level instance (decommissioned, or replaced under another id) and the stock "
      "replicated from it; a national admin's call");
  forget->add_option("source", f->source, "Instance id (or sources/ID), as `status` lists it")
      ->required();
  actions[forget] = [&ctx, f] { return ForgetSource(ctx, *f); };
}

}  // namespace stockpile::stockctl
