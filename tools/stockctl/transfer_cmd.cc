// transfer plan | create | approve | ship | receive | cancel | show | list
// The dispatchers' commands, served by the catalogue's TransferService (--catalogue).
#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "services/catalogue/allocation/plan_request.h"
#include "services/common/status_util.h"
#include "services/common/validation.h"
#include "tools/stockctl/cli_util.h"
#include "tools/stockctl/commands.h"
#include "tools/stockctl/output/transfer_render.h"
#include "tools/stockctl/shortfall.h"

namespace stockpile::stockctl {
namespace {

struct TransferFlags {
  std::string to, priority, from_plan, short_of, note, reason, region_prefix, state;
  std::vector<std::string> lines, exclude, received;
  std::string id;
  int32_t leg = -1;
  int64_t min_leg = -1;  // -1: not given (none, or the --short-of transfer's)
  PageFlags page;
};

// "critical" -> PRIORITY_CRITICAL, "in-transit" -> TRANSFER_STATE_IN_TRANSIT, ...
template <typename Enum>
absl::StatusOr<Enum> ParseWord(absl::string_view flag, absl::string_view word,
                               absl::string_view prefix,
                               const google::protobuf::EnumDescriptor* descriptor) {
  const std::string wanted =
      absl::StrCat(prefix, absl::AsciiStrToUpper(absl::StrReplaceAll(word, {{"-", "_"}})));
  const google::protobuf::EnumValueDescriptor* value = descriptor->FindValueByName(wanted);
  if (value != nullptr && value->number() != 0) return static_cast<Enum>(value->number());
  std::string choices;
  for (int i = 1; i < descriptor->value_count(); ++i) {
    absl::string_view name = descriptor->value(i)->name();
    absl::ConsumePrefix(&name, prefix);
    absl::StrAppend(&choices, i > 1 ? ", " : "", absl::AsciiStrToLower(name));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(flag, " must be one of ", choices, "; got \"", word, "\""));
}

// "SH-0001=20" -> PlanLine.
absl::StatusOr<v1::PlanLine> ParseLine(absl::string_view text) {
  std::vector<std::string> parts = absl::StrSplit(text, '=');
  int64_t quantity = 0;
  if (parts.size() != 2 || parts[0].empty() || !absl::SimpleAtoi(parts[1], &quantity) ||
      quantity <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--line must be ITEM=QUANTITY with a positive quantity; got \"", text, "\""));
  }
  v1::PlanLine line;
  line.set_item(parts[0]);
  line.set_quantity(quantity);
  return line;
}

// "B2405=19" -> HoldLot{lot, received}: what arrived of a shipped lot.
absl::StatusOr<v1::HoldLot> ParseReceived(absl::string_view text) {
  std::vector<std::string> parts = absl::StrSplit(text, '=');
  int64_t received = 0;
  if (parts.size() != 2 || parts[0].empty() || !absl::SimpleAtoi(parts[1], &received) ||
      received < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--received must be LOT=QUANTITY (0 or more); got \"", text, "\""));
  }
  v1::HoldLot lot;
  lot.set_lot(parts[0]);
  lot.set_received(received);
  return lot;
}

// --to: a warehouse ("420103-W002", "warehouses/...") or a region code ("420103").
absl::Status SetDestination(absl::string_view to, v1::PlanAllocationRequest& request) {
  if (absl::StrContains(to, "-W") || absl::StartsWith(to, "warehouses/")) {
    auto name = WarehouseNameArg(to);
    if (!name.ok()) return name.status();
    request.set_destination_warehouse(*name);
    return absl::OkStatus();
  }
  if (common::LevelOfRegionCode(to) == v1::LEVEL_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--to must be a warehouse code (420103-W002) or a region code (2, 4, 6, 9 or 12 digits); "
        "got \"",
        to, "\""));
  }
  request.set_destination_region(std::string(to));
  return absl::OkStatus();
}

// --priority, --exclude and --min-leg on top of a request (from the flags or from --short-of).
absl::Status ApplyPlanChoices(const TransferFlags& f, v1::PlanAllocationRequest& request) {
  if (!f.priority.empty() || request.priority() == v1::PRIORITY_UNSPECIFIED) {
    auto priority =
        ParseWord<v1::Priority>("--priority", f.priority.empty() ? "routine" : f.priority,
                                "PRIORITY_", v1::Priority_descriptor());
    if (!priority.ok()) return priority.status();
    request.set_priority(*priority);
  }
  for (const auto& code : f.exclude) {
    auto name = WarehouseNameArg(code);
    if (!name.ok()) return name.status();
    request.add_exclude_sources(*name);
  }
  if (f.min_leg >= 0) request.set_min_leg_quantity(f.min_leg);
  return absl::OkStatus();
}

absl::StatusOr<v1::PlanAllocationRequest> PlanRequestFromFlags(const TransferFlags& f) {
  v1::PlanAllocationRequest request;
  if (f.to.empty()) return absl::InvalidArgumentError("--to is required");
  if (f.lines.empty()) return absl::InvalidArgumentError("give at least one --line ITEM=QTY");
  if (auto s = SetDestination(f.to, request); !s.ok()) return s;
  for (const auto& text : f.lines) {
    auto line = ParseLine(text);
    if (!line.ok()) return line.status();
    *request.add_lines() = *line;
  }
  if (auto s = ApplyPlanChoices(f, request); !s.ok()) return s;
  return request;
}

// The request behind a plan printed by `transfer plan --json`. The catalogue plans again when
// the transfer is created, so the legs follow the stock of that moment.
absl::StatusOr<v1::PlanAllocationRequest> PlanRequestFromFile(const TransferFlags& f) {
  std::ifstream in(f.from_plan);
  if (!in) return absl::InvalidArgumentError("cannot read " + f.from_plan);
  std::stringstream text;
  text << in.rdbuf();
  v1::AllocationPlan plan;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto parsed = google::protobuf::util::JsonStringToMessage(text.str(), &plan, options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(f.from_plan,
                                                   " is not a plan from 'transfer "
                                                   "plan --json': ",
                                                   std::string(parsed.message())));
  }
  v1::PlanAllocationRequest request = catalogue::allocation::PlanRequestBehind(plan);
  if (!f.to.empty()) {  // e.g. a plan made for a region, sent to one of its warehouses
    request.clear_destination_region();
    if (auto s = SetDestination(f.to, request); !s.ok()) return s;
  }
  return request;
}

// "transfers/T-..." or the bare id.
std::string TransferName(const std::string& id) {
  return absl::StartsWith(id, "transfers/") ? id : "transfers/" + id;
}

// --short-of: what the transfer fell short of, again (--to, --priority and --exclude change
// or add to it). Returns 0, or the exit code of a failure already reported.
int PlanRequestForShortOf(Context& ctx, const TransferFlags& f,
                          v1::PlanAllocationRequest& request) {
  if (!f.lines.empty() || !f.from_plan.empty()) {
    return ctx.UsageError(
        "--short-of plans the transfer's short lines: leave out --line and --from-plan");
  }
  v1::GetTransferRequest get;
  get.set_name(TransferName(f.short_of));
  v1::Transfer transfer;
  grpc::Status status = Call(ctx, &v1::TransferService::Stub::GetTransfer, get, &transfer);
  if (!status.ok()) return ctx.Fail(status);
  auto wanted = PlanRequestForShortfall(transfer);
  if (!wanted.ok()) return ctx.Fail(common::ToGrpc(wanted.status()));
  request = *std::move(wanted);
  absl::Status changed = f.to.empty() ? absl::OkStatus() : SetDestination(f.to, request);
  if (changed.ok() && !f.to.empty() && !request.destination_region().empty()) {
    request.clear_destination_warehouse();
  }
  if (changed.ok()) changed = ApplyPlanChoices(f, request);
  return changed.ok() ? 0 : ctx.UsageError(changed);
}

// The plan request of `transfer plan` and `transfer create`: --short-of, --from-plan or the
// flags. Returns 0, or the exit code of a failure already reported.
int PlanRequestOf(Context& ctx, const TransferFlags& f, v1::PlanAllocationRequest& request) {
  if (!f.short_of.empty()) return PlanRequestForShortOf(ctx, f, request);
  auto made = f.from_plan.empty() ? PlanRequestFromFlags(f) : PlanRequestFromFile(f);
  if (!made.ok()) return ctx.UsageError(made.status());
  request = *std::move(made);
  return 0;
}

int PrintTransfer(Context& ctx, const grpc::Status& status, const v1::Transfer& transfer) {
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderTransfer(transfer), ToJson(transfer));
  return 0;
}

int Plan(Context& ctx, const TransferFlags& f) {
  v1::PlanAllocationRequest request;
  if (int rc = PlanRequestOf(ctx, f, request); rc != 0) return rc;
  v1::AllocationPlan plan;
  grpc::Status status = Call(ctx, &v1::TransferService::Stub::PlanAllocation, request, &plan);
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderPlan(plan), ToJson(plan));
  return 0;
}

int Create(Context& ctx, const TransferFlags& f) {
  v1::CreateTransferRequest request;
  if (int rc = PlanRequestOf(ctx, f, *request.mutable_plan()); rc != 0) return rc;
  if (request.plan().destination_warehouse().empty()) {
    return ctx.UsageError("a transfer goes to a warehouse: give --to WAREHOUSE (e.g. 420103-W002)");
  }
  const bool default_note = f.note.empty() && !f.short_of.empty();
  request.set_note(default_note ? "what " + f.short_of + " fell short of" : f.note);
  request.set_request_id(ctx.RequestId());
  request.set_actor(ctx.actor());
  v1::Transfer transfer;
  return PrintTransfer(
      ctx, Call(ctx, &v1::TransferService::Stub::CreateTransfer, request, &transfer), transfer);
}

int Approve(Context& ctx, const TransferFlags& f) {
  v1::ApproveTransferRequest request;
  request.set_name(TransferName(f.id));
  request.set_request_id(ctx.RequestId());
  request.set_actor(ctx.actor());
  v1::Transfer transfer;
  return PrintTransfer(
      ctx, Call(ctx, &v1::TransferService::Stub::ApproveTransfer, request, &transfer), transfer);
}

int Ship(Context& ctx, const TransferFlags& f) {
  v1::ShipTransferLegRequest request;
  request.set_name(TransferName(f.id));
  request.set_leg(f.leg);
  request.set_note(f.note);
  request.set_request_id(ctx.RequestId());
  request.set_actor(ctx.actor());
  v1::Transfer transfer;
  return PrintTransfer(ctx, Call(ctx, &v1::TransferService::Stub::ShipTransfer, request, &transfer),
                       transfer);
}

int Receive(Context& ctx, const TransferFlags& f) {
  v1::ReceiveTransferLegRequest request;
  request.set_name(TransferName(f.id));
  request.set_leg(f.leg);
  for (const auto& text : f.received) {
    auto lot = ParseReceived(text);
    if (!lot.ok()) return ctx.UsageError(lot.status());
    *request.add_lots() = *lot;
  }
  request.set_note(f.note);
  request.set_request_id(ctx.RequestId());
  request.set_actor(ctx.actor());
  v1::Transfer transfer;
  return PrintTransfer(
      ctx, Call(ctx, &v1::TransferService::Stub::ReceiveTransfer, request, &transfer), transfer);
}

int Cancel(Context& ctx, const TransferFlags& f) {
  v1::CancelTransferRequest request;
  request.set_name(TransferName(f.id));
  request.set_reason(f.reason);
  request.set_request_id(ctx.RequestId());
  request.set_actor(ctx.actor());
  v1::Transfer transfer;
  return PrintTransfer(
      ctx, Call(ctx, &v1::TransferService::Stub::CancelTransfer, request, &transfer), transfer);
}

int Show(Context& ctx, const TransferFlags& f) {
  v1::GetTransferRequest request;
  request.set_name(TransferName(f.id));
  v1::Transfer transfer;
  return PrintTransfer(ctx, Call(ctx, &v1::TransferService::Stub::GetTransfer, request, &transfer),
                       transfer);
}

int List(Context& ctx, const TransferFlags& f) {
  v1::TransferState state = v1::TRANSFER_STATE_UNSPECIFIED;
  if (!f.state.empty()) {
    auto parsed = ParseWord<v1::TransferState>("--state", f.state, "TRANSFER_STATE_",
                                               v1::TransferState_descriptor());
    if (!parsed.ok()) return ctx.UsageError(parsed.status());
    state = *parsed;
  }
  v1::ListTransfersResponse all;
  grpc::Status status = FetchPages(f.page, [&](const std::string& token, std::string* next) {
    v1::ListTransfersRequest request;
    request.set_region_prefix(f.region_prefix);
    request.set_state(state);
    request.set_page_size(f.page.page_size);
    request.set_page_token(token);
    v1::ListTransfersResponse one;
    grpc::Status s = Call(ctx, &v1::TransferService::Stub::ListTransfers, request, &one);
    all.mutable_transfers()->MergeFrom(one.transfers());
    *next = one.next_page_token();
    return s;
  });
  if (!status.ok()) return ctx.Fail(status);
  ctx.Print(RenderTransfers(all.transfers()), ToJsonArray(all.transfers()));
  return 0;
}

void AddPlanFlags(CLI::App* cmd, TransferFlags& f) {
  cmd->add_option("--to", f.to, "Destination warehouse (420103-W002) or region code (420103)");
  cmd->add_option("--line", f.lines, "ITEM=QUANTITY, e.g. SH-0001=200 (repeat for more items)");
  cmd->add_option("--priority", f.priority,
                  "routine | urgent | critical (below floors); default routine, or the --short-of "
                  "transfer's");
  cmd->add_option("--exclude", f.exclude, "Source warehouses never to take from: W1,W2,...")
      ->delimiter(',');
  cmd->add_option("--min-leg", f.min_leg,
                  "Pass over sources that could give fewer units than this, unless the line "
                  "would fall short without them (fewer, larger legs); default none, or the "
                  "--short-of transfer's")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--short-of", f.short_of,
                  "Plan again what this transfer fell short of (its short lines, destination and "
                  "priority)");
}

CLI::App* AddIdCommand(CLI::App* group, const char* name, const char* help, TransferFlags& f) {
  auto* cmd = group->add_subcommand(name, help);
  cmd->add_option("id", f.id, "Transfer id (or transfers/ID)")->required();
  return cmd;
}

}  // namespace

void AddTransferCommands(CLI::App& app, Context& ctx, ActionMap& actions) {
  auto* group = app.add_subcommand(
      "transfer", "Dispatchers: plan, create and follow transfers between regions (--catalogue)");
  auto f = std::make_shared<TransferFlags>();

  auto* plan = group->add_subcommand("plan", "Where the stock would come from (nothing is held)");
  AddPlanFlags(plan, *f);
  actions[plan] = [&ctx, f] { return Plan(ctx, *f); };

  auto* create = group->add_subcommand("create", "Plan and store a transfer awaiting approval");
  AddPlanFlags(create, *f);
  create->add_option("--from-plan", f->from_plan,
                     "Use the request of a saved 'transfer plan --json' output");
  create->add_option("--note", f->note, "Free text kept with the transfer");
  actions[create] = [&ctx, f] { return Create(ctx, *f); };

  auto* approve = AddIdCommand(group, "approve", "Approve: hold the stock at every source", *f);
  actions[approve] = [&ctx, f] { return Approve(ctx, *f); };

  auto* ship = AddIdCommand(group, "ship", "A source ships its leg", *f);
  ship->add_option("--leg", f->leg, "Leg number (LEG column of 'transfer show')")->required();
  ship->add_option("--note", f->note, "e.g. the truck");
  actions[ship] = [&ctx, f] { return Ship(ctx, *f); };

  auto* receive = AddIdCommand(group, "receive", "The destination receives a leg", *f);
  receive->add_option("--leg", f->leg, "Leg number")->required();
  receive->add_option("--received", f->received,
                      "LOT=QUANTITY that arrived, per lot with a loss (default: all of it)");
  receive->add_option("--note", f->note, "e.g. damage found");
  actions[receive] = [&ctx, f] { return Receive(ctx, *f); };

  auto* cancel = AddIdCommand(group, "cancel", "Cancel before shipping: release every hold", *f);
  cancel->add_option("--reason", f->reason, "Why (kept in the audit trail)");
  actions[cancel] = [&ctx, f] { return Cancel(ctx, *f); };

  auto* show = AddIdCommand(group, "show", "State, legs and audit trail of a transfer", *f);
  actions[show] = [&ctx, f] { return Show(ctx, *f); };

  auto* list = group->add_subcommand("list", "List transfers, by destination region and state");
  list->add_option("--region", f->region_prefix, "Destination region-code prefix");
  list->add_option("--state", f->state,
                   "pending_approval | holding | ready | in_transit | received | cancelled | "
                   "failed");
  AddPageFlags(list, f->page);
  actions[list] = [&ctx, f] { return List(ctx, *f); };
}

}  // namespace stockpile::stockctl
