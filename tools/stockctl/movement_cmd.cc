// receive, issue, stocktake, rotate, hold, release, ship, receive-transfer, confirm-delivery, batch
#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/common/expiring_lots.h"
#include "services/common/status_util.h"
#include "services/common/validation.h"
#include "tools/stockctl/cli_util.h"
#include "tools/stockctl/commands.h"
#include "tools/stockctl/csv_import.h"
#include "tools/stockctl/flag_checks.h"
#include "tools/stockctl/rotation.h"

namespace stockpile::stockctl {
namespace {

struct MovementFlags {
  std::string warehouse, item, lot, expiry, note, reference, hold_id, destination, source, reason;
  std::string file;
  int64_t quantity = 0;
  Rotation rotation;
  int64_t ttl_seconds = 0;
  std::vector<std::string> lots;
};

// Sends a movement request (with request id and actor) and prints its result.
template <typename Request>
int SendMovement(Context& ctx,
                 grpc::Status (v1::LevelService::Stub::*method)(grpc::ClientContext*,
                                                                const Request&,
                                                                v1::MovementResult*),
                 Request& request) {
  request.set_request_id(ctx.RequestId());
  request.set_actor(ctx.actor());
  v1::MovementResult result;
  grpc::Status status = Call(ctx, method, request, &result);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderMovementResult(result), ToJson(result));
  return 0;
}

// Resolves --warehouse into a resource name in place; false (after a usage error) when bad.
bool ResolveWarehouse(Context& ctx, std::string& warehouse, int& exit_code) {
  auto name = WarehouseNameArg(warehouse);
  if (!name.ok()) {
    exit_code = ctx.UsageError(name.status());
    return false;
  }
  warehouse = *name;
  return true;
}

// A lot taken in (received, rotated in, counted as new, received from a transfer) whose expiry
// date is already past goes in, since expired stock does arrive, but is never planned or held
// and is issued only when named. Most are a mistyped year: said after it went in.
void WarnIfTakenInExpired(absl::string_view lot, absl::string_view expiry) {
  const int32_t today = common::ReserveDay(absl::ToUnixMicros(absl::Now()));
  if (!common::ExpiredOn(expiry, today)) return;
  std::cerr
      << "stockctl: warning: lot " << lot << " expired on " << expiry << ", before today ("
      << common::FormatDate(today)
      << ", China Standard Time): it is stocked as expired, issued only when named, never "
         "held or planned. A mistyped year? Move it to the right lot with `stockctl rotate`\n";
}

int Receive(Context& ctx, MovementFlags f) {
  int rc = 0;
  if (!ResolveWarehouse(ctx, f.warehouse, rc)) return rc;
  v1::ReceiveRequest request;
  v1::ReceiveOp& op = *request.mutable_op();
  op.set_warehouse(f.warehouse);
  op.set_item(f.item);
  op.set_lot(f.lot);
  op.set_expiry_date(f.expiry);
  op.set_quantity(f.quantity);
  op.set_note(f.note);
  rc = SendMovement(ctx, &v1::LevelService::Stub::Receive, request);
  if (rc == 0) WarnIfTakenInExpired(f.lot.empty() ? "DEFAULT" : f.lot, f.expiry);
  return rc;
}

int Issue(Context& ctx, MovementFlags f) {
  int rc = 0;
  if (!ResolveWarehouse(ctx, f.warehouse, rc)) return rc;
  v1::IssueRequest request;
  v1::IssueOp& op = *request.mutable_op();
  op.set_warehouse(f.warehouse);
  op.set_item(f.item);
  op.set_lot(f.lot);
  op.set_quantity(f.quantity);
  op.set_note(f.note);
  return SendMovement(ctx, &v1::LevelService::Stub::Issue, request);
}

int Stocktake(Context& ctx, MovementFlags f) {
  int rc = 0;
  if (!ResolveWarehouse(ctx, f.warehouse, rc)) return rc;
  v1::StocktakeRequest request;
  v1::StocktakeOp& op = *request.mutable_op();
  op.set_warehouse(f.warehouse);
  op.set_item(f.item);
  op.set_reason(f.reason);
  for (const auto& text : f.lots) {
    auto count = ParseHoldLot(text, "--count", "LOT:COUNTED");
    if (!count.ok()) return ctx.UsageError(count.status());
    v1::StocktakeCount* c = op.add_counts();
    c->set_lot(count->lot());
    c->set_expiry_date(count->expiry_date());
    c->set_counted(count->quantity());
  }
  rc = SendMovement(ctx, &v1::LevelService::Stub::Stocktake, request);
  for (const auto& c : op.counts()) {
    if (rc == 0 && c.counted() > 0) WarnIfTakenInExpired(c.lot(), c.expiry_date());
  }
  return rc;
}

// Reads the balance to find what goes out (the flags may leave lot and quantity open), then
// sends both postings as one batch.
int Rotate(Context& ctx, Rotation r) {
  int rc = 0;
  if (!ResolveWarehouse(ctx, r.warehouse, rc)) return rc;
  if (!ctx.options().request_id.empty()) {  // maybe a retry
    v1::ListMovementsRequest recall;
    recall.set_warehouse(r.warehouse);  // inside the scope of staff who may rotate there
    recall.set_request_id(ctx.options().request_id);
    v1::ListMovementsResponse first;
    grpc::Status status = Call(ctx, &v1::LevelService::Stub::ListMovements, recall, &first);
    if (!status.ok()) return ctx.Fail(status);
    RecallFirstAttempt(first, r);
  }
  v1::GetBalanceRequest read;
  read.set_warehouse(r.warehouse);
  read.set_item(r.item);
  v1::Balance balance;
  grpc::Status status = Call(ctx, &v1::LevelService::Stub::GetBalance, read, &balance);
  if (!status.ok()) return ctx.Fail(status);
  auto request = PlanRotation(r, balance);
  if (!request.ok()) return ctx.Fail(common::ToGrpc(request.status()));
  request->set_request_id(ctx.RequestId());
  request->set_actor(ctx.actor());
  v1::ApplyBatchResponse response;
  status = Call(ctx, &v1::LevelService::Stub::ApplyBatch, *request, &response);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(DescribeRotation(response) + RenderBatchResult(response), ToJson(response));
  WarnIfTakenInExpired(r.new_lot, r.new_expiry);  // a rotation is meant to bring in good stock
  return 0;
}

int Hold(Context& ctx, MovementFlags f) {
  if (f.warehouse.empty() || f.item.empty() || f.hold_id.empty() || f.quantity == 0) {
    return ctx.UsageError(
        "hold needs --warehouse, --item, --quantity and --hold-id "
        "(or a subcommand: hold get | hold list)");
  }
  int rc = 0;
  if (!ResolveWarehouse(ctx, f.warehouse, rc)) return rc;
  v1::HoldRequest request;
  v1::HoldOp& op = *request.mutable_op();
  op.set_warehouse(f.warehouse);
  op.set_item(f.item);
  op.set_quantity(f.quantity);
  op.set_hold_id(f.hold_id);
  op.set_reference(f.reference);
  op.set_ttl_seconds(f.ttl_seconds);
  for (const auto& text : f.lots) {
    auto lot = ParseHoldLot(text);
    if (!lot.ok()) return ctx.UsageError(lot.status());
    *op.add_lots() = *lot;
  }
  return SendMovement(ctx, &v1::LevelService::Stub::Hold, request);
}

int Release(Context& ctx, const MovementFlags& f) {
  v1::ReleaseRequest request;
  request.mutable_op()->set_hold_id(f.hold_id);
  request.mutable_op()->set_note(f.note);
  return SendMovement(ctx, &v1::LevelService::Stub::Release, request);
}

int Ship(Context& ctx, MovementFlags f) {
  int rc = 0;
  if (!ResolveWarehouse(ctx, f.destination, rc)) return rc;
  v1::ShipRequest request;
  request.mutable_op()->set_hold_id(f.hold_id);
  request.mutable_op()->set_destination(f.destination);
  request.mutable_op()->set_note(f.note);
  return SendMovement(ctx, &v1::LevelService::Stub::Ship, request);
}

int ReceiveTransfer(Context& ctx, MovementFlags f) {
  int rc = 0;
  if (!ResolveWarehouse(ctx, f.warehouse, rc) || !ResolveWarehouse(ctx, f.source, rc)) return rc;
  v1::ReceiveTransferRequest request;
  v1::ReceiveTransferOp& op = *request.mutable_op();
  op.set_warehouse(f.warehouse);
  op.set_hold_id(f.hold_id);
  op.set_source_warehouse(f.source);
  op.set_item(f.item);
  op.set_note(f.note);
  for (const auto& text : f.lots) {
    auto lot = ParseDeliveredLot(text);
    if (!lot.ok()) return ctx.UsageError(lot.status());
    *op.add_lots() = *lot;
  }
  rc = SendMovement(ctx, &v1::LevelService::Stub::ReceiveTransfer, request);
  for (const auto& lot : op.lots()) {
    if (rc == 0 && lot.received() > 0) WarnIfTakenInExpired(lot.lot(), lot.expiry_date());
  }
  return rc;
}

int ConfirmDelivery(Context& ctx, const MovementFlags& f) {
  v1::ConfirmDeliveryRequest request;
  request.mutable_op()->set_hold_id(f.hold_id);
  for (const auto& text : f.lots) {
    auto lot = ParseDeliveredLot(text);
    if (!lot.ok()) return ctx.UsageError(lot.status());
    *request.mutable_op()->add_lots() = *lot;
  }
  return SendMovement(ctx, &v1::LevelService::Stub::ConfirmDelivery, request);
}

// Batch files may name warehouses by code, as every other command takes them: each operation's
// `warehouse` (a code or "warehouses/{code}") becomes the name the service expects.
absl::Status NameBatchWarehouses(v1::ApplyBatchRequest& request) {
  const auto* oneof = v1::Operation::descriptor()->FindOneofByName("op");
  for (int i = 0; i < request.operations_size(); ++i) {
    v1::Operation& operation = *request.mutable_operations(i);
    const auto* reflection = operation.GetReflection();
    const auto* set = reflection->GetOneofFieldDescriptor(operation, oneof);
    if (set == nullptr) continue;
    google::protobuf::Message* op = reflection->MutableMessage(&operation, set);
    const auto* field = op->GetDescriptor()->FindFieldByName("warehouse");
    if (field == nullptr) continue;
    const std::string text = op->GetReflection()->GetString(*op, field);
    if (text.empty()) continue;  // the service names what is missing
    auto name = WarehouseNameArg(text);
    if (!name.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("operation ", i + 1, " (", set->name(), "): ", name.status().message()));
    }
    op->GetReflection()->SetString(op, field, *name);
  }
  return absl::OkStatus();
}

// A batch file is an ApplyBatchRequest in JSON ({"operations": [...]}) or a bare array of
// operations; --request-id / --actor fill in what the file leaves out.
int Batch(Context& ctx, const MovementFlags& f) {
  std::ifstream in(f.file);
  if (!in) return ctx.UsageError("cannot read " + f.file);
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json doc = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return ctx.UsageError(f.file + " is not valid JSON");
  if (doc.is_array()) doc = nlohmann::json{{"operations", doc}};
  v1::ApplyBatchRequest request;
  auto parsed = google::protobuf::util::JsonStringToMessage(doc.dump(), &request);
  if (!parsed.ok()) return ctx.UsageError(f.file + ": " + std::string(parsed.message()));
  if (absl::Status named = NameBatchWarehouses(request); !named.ok()) {
    return ctx.UsageError(f.file + ": " + std::string(named.message()));
  }
  if (request.request_id().empty()) request.set_request_id(ctx.RequestId());
  if (request.actor().empty()) request.set_actor(ctx.actor());
  v1::ApplyBatchResponse response;
  grpc::Status status = Call(ctx, &v1::LevelService::Stub::ApplyBatch, request, &response);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderBatchResult(response), ToJson(response));
  return 0;
}

void WarehouseItem(CLI::App* cmd, MovementFlags& f, bool required = true) {
  auto* w = cmd->add_option("--warehouse", f.warehouse, "Warehouse code, e.g. 420102-W001");
  auto* i = cmd->add_option("--item", f.item, "Item code, e.g. SH-0001");
  if (required) w->required(), i->required();
}

}  // namespace

void AddMovementCommands(CLI::App& app, Context& ctx, ActionMap& actions) {
  auto f = std::make_shared<MovementFlags>();

  auto* receive = app.add_subcommand("receive", "Receive stock into a warehouse");
  WarehouseItem(receive, *f);
  receive->add_option("--lot", f->lot, "Lot (required for items with a shelf life)");
  receive->add_option("--expiry", f->expiry, "Expiry date YYYY-MM-DD (shelf-life items)");
  // A number past int64 must not be clamped to a different quantity.
  const CLI::Validator quantities = FitsInt64();
  receive->add_option("--quantity", f->quantity, "Quantity in the item's unit")
      ->required()
      ->check(quantities);
  receive->add_option("--note", f->note, "Source: donor, supplier, purchase order");
  actions[receive] = [&ctx, f] { return Receive(ctx, *f); };

  auto* issue = app.add_subcommand("issue", "Issue stock (earliest expiry first without --lot)");
  WarehouseItem(issue, *f);
  issue->add_option("--lot", f->lot, "Take from this lot only");
  issue->add_option("--quantity", f->quantity, "Quantity")->required()->check(quantities);
  issue->add_option("--note", f->note, "Recipient, purpose");
  actions[issue] = [&ctx, f] { return Issue(ctx, *f); };

  auto* take =
      app.add_subcommand("stocktake", "Record counted quantities (adjusts the difference)");
  WarehouseItem(take, *f);
  take->add_option("--count", f->lots, "LOT:COUNTED[:YYYY-MM-DD], repeatable (LOT may hold ':')")
      ->required();
  take->add_option("--reason", f->reason, "Why the count differs");
  actions[take] = [&ctx, f] { return Stocktake(ctx, *f); };

  auto* rotate = app.add_subcommand(
      "rotate", "Replace a lot (near or past expiry) with a new one, both at once");
  Rotation& r = f->rotation;
  rotate->add_option("--warehouse", r.warehouse, "Warehouse code, e.g. 420102-W001")->required();
  rotate->add_option("--item", r.item, "Item code, e.g. FW-0001")->required();
  rotate->add_option("--lot", r.lot,
                     "Lot going out (default: the earliest-expiring with stock free)");
  rotate
      ->add_option("--quantity", r.quantity, "How much goes out (default: all of the lot not held)")
      ->check(CLI::PositiveNumber);
  rotate->add_option("--new-lot", r.new_lot,
                     "Lot coming in (required for items with a shelf life)");
  rotate->add_option("--new-expiry", r.new_expiry, "Its expiry date YYYY-MM-DD (shelf-life items)");
  rotate
      ->add_option("--new-quantity", r.new_quantity,
                   "How much comes in (default: as much as goes out)")
      ->check(CLI::PositiveNumber);
  rotate->add_option("--note", r.note, "Where the old lot goes: sold, donated, destroyed");
  rotate->add_option("--new-note", r.new_note, "Where the new lot comes from: supplier, order");
  actions[rotate] = [&ctx, f] { return Rotate(ctx, f->rotation); };

  auto* hold = app.add_subcommand("hold", "Reserve stock for a transfer (or: hold get | list)");
  WarehouseItem(hold, *f, /*required=*/false);
  hold->add_option("--quantity", f->quantity, "Quantity to hold");
  hold->add_option("--hold-id", f->hold_id, "Caller-chosen id; the hold is holds/{id}");
  hold->add_option("--reference", f->reference, "Transfer reference");
  hold->add_option("--ttl", f->ttl_seconds, "Seconds until it releases itself (default 24 h)");
  hold->add_option("--lot", f->lots,
                   "LOT:QUANTITY, repeatable (default: earliest expiry; LOT may hold ':')");
  actions[hold] = [&ctx, f] { return Hold(ctx, *f); };

  auto* release = app.add_subcommand("release", "Release a hold");
  release->add_option("hold_id", f->hold_id, "Hold id")->required();
  release->add_option("--note", f->note, "Why");
  actions[release] = [&ctx, f] { return Release(ctx, *f); };

  auto* ship = app.add_subcommand("ship", "Ship a hold: stock leaves and is in transit");
  ship->add_option("hold_id", f->hold_id, "Hold id")->required();
  ship->add_option("--destination", f->destination, "Destination warehouse")->required();
  ship->add_option("--note", f->note, "Note");
  actions[ship] = [&ctx, f] { return Ship(ctx, *f); };

  auto* rt = app.add_subcommand("receive-transfer", "Record a shipment's arrival here");
  WarehouseItem(rt, *f);
  rt->add_option("--hold-id", f->hold_id, "The shipment (hold id at the source)")->required();
  rt->add_option("--source", f->source, "Source warehouse")->required();
  rt->add_option("--lot", f->lots,
                 "LOT:SHIPPED:RECEIVED[:YYYY-MM-DD], repeatable (LOT may hold ':')")
      ->required();
  rt->add_option("--note", f->note, "Note");
  actions[rt] = [&ctx, f] { return ReceiveTransfer(ctx, *f); };

  auto* cd = app.add_subcommand("confirm-delivery", "At the source: a shipment arrived elsewhere");
  cd->add_option("hold_id", f->hold_id, "Hold id")->required();
  cd->add_option("--lot", f->lots,
                 "LOT:SHIPPED:RECEIVED[:YYYY-MM-DD], repeatable (LOT may hold ':')")
      ->required();
  actions[cd] = [&ctx, f] { return ConfirmDelivery(ctx, *f); };

  auto* batch = app.add_subcommand("batch", "Apply a JSON file of up to 1,000 operations at once");
  batch->add_option("file", f->file, "JSON: {\"operations\": [...]} or [...]")->required();
  actions[batch] = [&ctx, f] { return Batch(ctx, *f); };
}

}  // namespace stockpile::stockctl
