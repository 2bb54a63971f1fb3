#include "tools/stockctl/output/transfer_render.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/stockctl/output/format.h"
#include "tools/stockctl/output/render.h"
#include "tools/stockctl/output/table.h"

namespace stockpile::stockctl {
namespace {

using google::protobuf::RepeatedPtrField;
using KeyValues = std::vector<std::pair<std::string, std::string>>;

// "B2405:30 (2025-05-31), DEFAULT:10"; received quantities when known.
std::string Lots(const RepeatedPtrField<v1::HoldLot>& lots) {
  std::vector<std::string> parts;
  for (const auto& l : lots) {
    std::string part = absl::StrCat(l.lot(), ":", l.quantity());
    if (!l.expiry_date().empty()) absl::StrAppend(&part, " (", l.expiry_date(), ")");
    parts.push_back(std::move(part));
  }
  return absl::StrJoin(parts, ", ");
}

std::string ReceivedLots(const RepeatedPtrField<v1::HoldLot>& lots) {
  std::vector<std::string> parts;
  for (const auto& l : lots) parts.push_back(absl::StrCat(l.lot(), ":", l.received()));
  return absl::StrJoin(parts, ", ");
}

std::string LegStateWord(v1::LegState s) { return EnumWord(v1::LegState_Name(s), "LEG_STATE_"); }

std::string RenderOutcomes(const RepeatedPtrField<v1::LineOutcome>& outcomes) {
  Table table({"ITEM", "REQUESTED", "PLANNED", "SHORTFALL"});
  table.AlignRight(1).AlignRight(2).AlignRight(3);
  for (const auto& o : outcomes) {
    table.AddRow({o.item(), Num(o.requested()), Num(o.planned()),
                  o.shortfall() == 0 ? "-" : Num(o.shortfall())});
  }
  return table.Render();
}

std::string RenderReserveOptions(const RepeatedPtrField<v1::ReserveOption>& options) {
  Table table({"WAREHOUSE", "ITEM", "MODE", "QTY", "LEAD_TIME_H", "DISTANCE_KM", "TIER"});
  table.AlignRight(3).AlignRight(4).AlignRight(5);
  for (const auto& o : options) {
    table.AddRow({ShortWarehouse(o.warehouse()), o.item(),
                  EnumWord(v1::ReserveMode_Name(o.mode()), "RESERVE_MODE_"), Num(o.quantity()),
                  Num(o.lead_time_hours()), Fixed(o.distance_km(), 1), TierWord(o.tier())});
  }
  return table.Render();
}

std::string RenderPlanLegs(const RepeatedPtrField<v1::PlanLeg>& legs) {
  Table table({"#", "SOURCE", "REGION", "ITEM", "QTY", "LOTS", "DISTANCE_KM", "TIER", "FLOOR"});
  table.AlignRight(0).AlignRight(4).AlignRight(6);
  int index = 0;
  for (const auto& leg : legs) {
    table.AddRow({Num(index++), ShortWarehouse(leg.source_warehouse()), leg.source_region(),
                  leg.item(), Num(leg.quantity()), Lots(leg.lots()), Fixed(leg.distance_km(), 1),
                  TierWord(leg.tier()), leg.below_floor() ? "BELOW FLOOR" : "ok"});
  }
  return table.Render();
}

std::string RenderTransferLegs(const RepeatedPtrField<v1::TransferLeg>& legs) {
  Table table({"LEG", "STATE", "SOURCE", "ITEM", "QTY", "LOTS", "DISTANCE_KM", "TIER", "HOLD",
               "RECEIVED", "LOST", "NOTE"});
  table.AlignRight(0).AlignRight(4).AlignRight(6).AlignRight(9).AlignRight(10);
  for (const auto& leg : legs) {
    const v1::PlanLeg& p = leg.plan();
    std::vector<std::string> notes;
    if (p.below_floor()) notes.push_back("below floor");
    if (leg.replan_round() > 1) {
      notes.push_back(absl::StrCat("re-planned (round ", leg.replan_round(), ")"));
    } else if (leg.replanned()) {
      notes.push_back("re-planned");
    }
    if (leg.received_lots_size() > 0) {
      notes.push_back("received " + ReceivedLots(leg.received_lots()));
    }
    const bool arrived =
        leg.state() == v1::LEG_STATE_RECEIVED || leg.state() == v1::LEG_STATE_DELIVERED;
    table.AddRow({Num(leg.index()), LegStateWord(leg.state()), ShortWarehouse(p.source_warehouse()),
                  p.item(), Num(p.quantity()), Lots(p.lots()), Fixed(p.distance_km(), 1),
                  TierWord(p.tier()), leg.hold_id(), arrived ? Num(leg.received()) : "-",
                  arrived ? Num(leg.lost()) : "-", absl::StrJoin(notes, "; ")});
  }
  return table.Render();
}

std::string RenderAudit(const RepeatedPtrField<v1::AuditStep>& audit) {
  Table table({"TIME", "WHO", "WHAT"});
  for (const auto& step : audit) table.AddRow({FormatTime(step.time()), step.actor(), step.what()});
  return table.Render();
}

// "SH-0001×20, FW-0001×5" from the requested lines.
std::string LinesSummary(const RepeatedPtrField<v1::PlanLine>& lines) {
  std::vector<std::string> parts;
  for (const auto& l : lines) parts.push_back(absl::StrCat(l.item(), "×", l.quantity()));
  return absl::StrJoin(parts, ", ");
}

}  // namespace

std::string TierWord(v1::SourceTier tier) {
  return EnumWord(v1::SourceTier_Name(tier), "SOURCE_TIER_");
}

std::string TransferStateWord(v1::TransferState state) {
  return EnumWord(v1::TransferState_Name(state), "TRANSFER_STATE_");
}

std::string PriorityWord(v1::Priority priority) {
  return EnumWord(v1::Priority_Name(priority), "PRIORITY_");
}

std::string RenderPlan(const v1::AllocationPlan& plan) {
  std::string destination = plan.destination_region();
  if (!plan.destination_warehouse().empty()) {
    absl::StrAppend(&destination, " (", ShortWarehouse(plan.destination_warehouse()), ")");
  }
  KeyValues header = {{"destination", destination},
                      {"priority", PriorityWord(plan.priority())},
                      {"requested", LinesSummary(plan.lines())},
                      {"planned at", FormatTime(plan.plan_time())}};
  if (plan.excluded_sources_size() > 0) {
    std::vector<std::string> codes;
    for (const auto& w : plan.excluded_sources()) codes.push_back(ShortWarehouse(w));
    header.push_back({"excluded", absl::StrJoin(codes, ", ")});
  }
  if (plan.min_leg_quantity() > 0) {
    header.push_back(
        {"min leg", absl::StrCat(plan.min_leg_quantity(), " (smaller only to fill a line)")});
  }
  std::string out = RenderKeyValues(header);
  absl::StrAppend(&out, "\nlegs:\n",
                  plan.legs_size() == 0 ? "(none: no source has stock to give)\n"
                                        : RenderPlanLegs(plan.legs()));
  absl::StrAppend(&out, "\nlines:\n", RenderOutcomes(plan.outcomes()));
  if (plan.reserve_options_size() > 0) {
    absl::StrAppend(&out, "\ncontract and capacity reserves that could cover the shortfall:\n",
                    RenderReserveOptions(plan.reserve_options()));
  }
  if (plan.unreachable_sources_size() > 0) {
    absl::StrAppend(&out,
                    "\nnot planned from (out of reach, or their stock not all streamed yet):\n");
    for (const auto& source : plan.unreachable_sources()) absl::StrAppend(&out, "  ", source, "\n");
  }
  return out;
}

namespace {

// The approver, with the region scope that bounds the transfer's re-plans when it had one.
std::string ApprovedBy(const v1::Transfer& t) {
  if (t.approved_by().empty()) return "-";
  if (t.approver_scope().empty()) return t.approved_by();
  return absl::StrCat(t.approved_by(), " (scope ", t.approver_scope(),
                      ": re-plans take sources only there)");
}

}  // namespace

std::string RenderTransfer(const v1::Transfer& t) {
  KeyValues header = {
      {"transfer", t.name()},
      {"state", TransferStateWord(t.state())},
      {"destination",
       absl::StrCat(ShortWarehouse(t.destination_warehouse()), " (", t.destination_region(), ")")},
      {"priority", PriorityWord(t.priority())},
      {"requested", LinesSummary(t.plan().lines())},
      {"created", absl::StrCat(FormatTime(t.create_time()), " by ", t.created_by())},
      {"approved by", ApprovedBy(t)},
      {"updated", FormatTime(t.update_time())},
  };
  if (t.plan().min_leg_quantity() > 0) {
    header.push_back({"min leg", absl::StrCat(t.plan().min_leg_quantity())});
  }
  if (!t.note().empty()) header.push_back({"note", t.note()});
  if (!t.failure_reason().empty()) header.push_back({"failure", t.failure_reason()});
  std::string out = RenderKeyValues(header);
  absl::StrAppend(&out, "\nlegs:\n", RenderTransferLegs(t.legs()));
  if (t.short_lines_size() > 0) {
    absl::StrAppend(&out, "\nshort lines:\n", RenderOutcomes(t.short_lines()));
  }
  absl::StrAppend(&out, "\naudit:\n", RenderAudit(t.audit()));
  return out;
}

std::string RenderTransfers(const RepeatedPtrField<v1::Transfer>& list) {
  Table table({"ID", "STATE", "DESTINATION", "PRIORITY", "LEGS", "REQUESTED", "CREATED_BY",
               "CREATED", "UPDATED"});
  table.AlignRight(4);
  for (const auto& t : list) {
    table.AddRow({t.id(), TransferStateWord(t.state()), ShortWarehouse(t.destination_warehouse()),
                  PriorityWord(t.priority()), Num(t.legs_size()), LinesSummary(t.plan().lines()),
                  t.created_by(), FormatTime(t.create_time()), FormatTime(t.update_time())});
  }
  return table.Render();
}

}  // namespace stockpile::stockctl
