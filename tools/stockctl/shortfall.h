#pragma once

// Planning again what a transfer fell short of (`transfer plan|create --short-of ID`): a
// transfer that FAILED, or lost a leg after others shipped, lists what will not arrive in its
// short lines; the dispatcher's next step is a plan for exactly that.
#include "absl/status/statusor.h"
#include "stockpile/v1/allocation.pb.h"
#include "stockpile/v1/transfer_service.pb.h"

namespace stockpile::stockctl {

// The short lines summed per item (in the order they first fell short), to the transfer's
// destination at its priority, never from a source the transfer excluded or whose hold was
// refused (a REPLACED leg). FAILED_PRECONDITION when the transfer has no short line.
absl::StatusOr<stockpile::v1::PlanAllocationRequest> PlanRequestForShortfall(
    const stockpile::v1::Transfer& transfer);

}  // namespace stockpile::stockctl
