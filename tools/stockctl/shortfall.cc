#include "tools/stockctl/shortfall.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "services/catalogue/allocation/plan_request.h"

namespace stockpile::stockctl {
namespace {

void AddShortfall(const v1::LineOutcome& outcome, v1::PlanAllocationRequest& request) {
  if (outcome.shortfall() <= 0) return;
  for (auto& line : *request.mutable_lines()) {
    if (line.item() != outcome.item()) continue;
    line.set_quantity(line.quantity() + outcome.shortfall());
    return;
  }
  v1::PlanLine* line = request.add_lines();
  line->set_item(outcome.item());
  line->set_quantity(outcome.shortfall());
}

void Exclude(const std::string& source, v1::PlanAllocationRequest& request) {
  const auto& excluded = request.exclude_sources();
  if (std::find(excluded.begin(), excluded.end(), source) == excluded.end()) {
    request.add_exclude_sources(source);
  }
}

}  // namespace

absl::StatusOr<v1::PlanAllocationRequest> PlanRequestForShortfall(const v1::Transfer& t) {
  v1::PlanAllocationRequest request = catalogue::allocation::PlanRequestBehind(t.plan());
  request.clear_lines();
  for (const auto& outcome : t.short_lines()) AddShortfall(outcome, request);
  if (request.lines().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("transfer ", t.id(), " fell short of nothing: it has no short lines (",
                     v1::TransferState_Name(t.state()), ")"));
  }
  for (const auto& leg : t.legs()) {
    if (leg.state() == v1::LEG_STATE_REPLACED) Exclude(leg.plan().source_warehouse(), request);
  }
  return request;
}

}  // namespace stockpile::stockctl
