#pragma once

// The request a plan answers, as the plan echoes it. Everything that plans again from an earlier
// plan (a refused hold re-planned, `stockctl transfer plan|create --short-of` and `--from-plan`)
// starts here, so a request field the plan echoes is carried by all of them.

#include "stockpile/v1/allocation.pb.h"
#include "stockpile/v1/transfer_service.pb.h"

namespace stockpile::catalogue::allocation {

// Destination (the warehouse, or the region of a plan made for a region only), lines, priority,
// exclusions and minimum leg of the request behind `plan`.
inline stockpile::v1::PlanAllocationRequest PlanRequestBehind(
    const stockpile::v1::AllocationPlan& plan) {
  stockpile::v1::PlanAllocationRequest request;
  if (plan.destination_warehouse().empty()) {
    request.set_destination_region(plan.destination_region());
  } else {
    request.set_destination_warehouse(plan.destination_warehouse());
  }
  *request.mutable_lines() = plan.lines();
  request.set_priority(plan.priority());
  *request.mutable_exclude_sources() = plan.excluded_sources();
  request.set_min_leg_quantity(plan.min_leg_quantity());
  return request;
}

}  // namespace stockpile::catalogue::allocation
