// warehouse create | get | list | update
#include "services/common/validation.h"
#include "tools/stockctl/cli_util.h"
#include "tools/stockctl/commands.h"
#include "tools/stockctl/flag_checks.h"

namespace stockpile::stockctl {
namespace {

struct WarehouseFlags {
  std::string code, name, region, kind, address, status;
  double area = -1;
  double longitude = 1000, latitude = 1000;  // 1000: not given
  std::string region_prefix;
  PageFlags page;
};

void AddEditableFlags(CLI::App* cmd, WarehouseFlags& f) {
  cmd->add_option("--name", f.name, "Display name, e.g. 武汉市江岸区救灾物资储备库");
  cmd->add_option("--kind", f.kind, "government | enterprise | social | household");
  // Checked here: the defaults (-1, 1000) mean "not given", so a typed -5 or 1000 must not
  // pass for one.
  cmd->add_option("--area", f.area, "Floor area in m²")->check(NotNegative());
  cmd->add_option("--address", f.address, "Street address");
  cmd->add_option("--longitude", f.longitude, "Location (default: the county seat)")
      ->check(Between(-180, 180));
  cmd->add_option("--latitude", f.latitude, "Location (default: the county seat)")
      ->check(Between(-90, 90));
}

// Copies the given flags into `w`; returns the update-mask paths they set.
absl::StatusOr<std::vector<std::string>> FillWarehouse(const WarehouseFlags& f, v1::Warehouse& w) {
  std::vector<std::string> paths;
  if (!f.name.empty()) w.set_display_name(f.name), paths.push_back("display_name");
  if (!f.kind.empty()) {
    auto kind = ParseKind(f.kind);
    if (!kind.ok()) return kind.status();
    w.set_kind(*kind);
    paths.push_back("kind");
  }
  if (f.area >= 0) w.set_area_m2(f.area), paths.push_back("area_m2");
  if (!f.address.empty()) w.set_address(f.address), paths.push_back("address");
  if ((f.longitude < 1000) != (f.latitude < 1000)) {
    return absl::InvalidArgumentError("--longitude and --latitude go together");
  }
  if (f.longitude < 1000) {
    w.mutable_location()->set_longitude(f.longitude);
    w.mutable_location()->set_latitude(f.latitude);
    paths.push_back("location");
  }
  if (!f.status.empty()) {
    auto status = ParseWarehouseStatus(f.status);
    if (!status.ok()) return status.status();
    w.set_status(*status);
    paths.push_back("status");
  }
  return paths;
}

int Create(Context& ctx, const WarehouseFlags& f) {
  v1::CreateWarehouseRequest request;
  v1::Warehouse& w = *request.mutable_warehouse();
  w.set_code(f.code);
  w.set_region_code(f.region);
  if (auto paths = FillWarehouse(f, w); !paths.ok()) return ctx.UsageError(paths.status());
  if (f.region.empty()) {
    auto region = common::RegionOfWarehouseCode(f.code);
    if (region.ok()) w.set_region_code(*region);
  }
  request.set_request_id(ctx.RequestId());
  request.set_actor(ctx.actor());
  v1::Warehouse created;
  grpc::Status status = Call(ctx, &v1::LevelService::Stub::CreateWarehouse, request, &created);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderWarehouse(created), ToJson(created));
  return 0;
}

int Get(Context& ctx, const WarehouseFlags& f) {
  auto name = WarehouseNameArg(f.code);
  if (!name.ok()) return ctx.UsageError(name.status());
  v1::GetWarehouseRequest request;
  request.set_name(*name);
  v1::Warehouse w;
  grpc::Status status = Call(ctx, &v1::LevelService::Stub::GetWarehouse, request, &w);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderWarehouse(w), ToJson(w));
  return 0;
}

int List(Context& ctx, const WarehouseFlags& f) {
  v1::ListWarehousesResponse all;
  grpc::Status status = FetchPages(f.page, [&](const std::string& token, std::string* next) {
    v1::ListWarehousesRequest request;
    request.set_region_prefix(f.region_prefix);
    request.set_page_size(f.page.page_size);
    request.set_page_token(token);
    v1::ListWarehousesResponse page;
    grpc::Status s = Call(ctx, &v1::LevelService::Stub::ListWarehouses, request, &page);
    all.mutable_warehouses()->MergeFrom(page.warehouses());
    *next = page.next_page_token();
    return s;
  });
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderWarehouses(all.warehouses()), ToJsonArray(all.warehouses()));
  return 0;
}

int Update(Context& ctx, const WarehouseFlags& f) {
  auto name = WarehouseNameArg(f.code);
  if (!name.ok()) return ctx.UsageError(name.status());
  v1::UpdateWarehouseRequest request;
  request.mutable_warehouse()->set_name(*name);
  auto paths = FillWarehouse(f, *request.mutable_warehouse());
  if (!paths.ok()) return ctx.UsageError(paths.status());
  if (paths->empty()) return ctx.UsageError("nothing to update: give at least one field flag");
  for (const auto& path : *paths) request.mutable_update_mask()->add_paths(path);
  request.set_request_id(ctx.RequestId());
  request.set_actor(ctx.actor());
  v1::Warehouse updated;
  grpc::Status status = Call(ctx, &v1::LevelService::Stub::UpdateWarehouse, request, &updated);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderWarehouse(updated), ToJson(updated));
  return 0;
}

}  // namespace

void AddWarehouseCommands(CLI::App& app, Context& ctx, ActionMap& actions) {
  auto* group = app.add_subcommand("warehouse", "Register, show, list and update warehouses");
  auto f = std::make_shared<WarehouseFlags>();

  auto* create = group->add_subcommand("create", "Register a warehouse");
  create->add_option("--code", f->code, "{region code}-W{1-6 digits}, e.g. 420102-W001")
      ->required();
  create->add_option("--region", f->region, "Region code (default: from --code)");
  AddEditableFlags(create, *f);
  actions[create] = [&ctx, f] { return Create(ctx, *f); };

  auto* get = group->add_subcommand("get", "Show one warehouse");
  get->add_option("code", f->code, "Warehouse code or name")->required();
  actions[get] = [&ctx, f] { return Get(ctx, *f); };

  auto* list = group->add_subcommand("list", "List warehouses");
  list->add_option("--region", f->region_prefix, "Region-code prefix, e.g. 4201");
  AddPageFlags(list, f->page);
  actions[list] = [&ctx, f] { return List(ctx, *f); };

  auto* update = group->add_subcommand("update", "Change a warehouse's fields");
  update->add_option("code", f->code, "Warehouse code or name")->required();
  AddEditableFlags(update, *f);
  update->add_option("--status", f->status, "active | suspended | closed");
  actions[update] = [&ctx, f] { return Update(ctx, *f); };
}

}  // namespace stockpile::stockctl
