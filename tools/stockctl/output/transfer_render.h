#pragma once

// Human-readable renderings of allocation plans and transfers (stockctl transfer ...).
#include <google/protobuf/repeated_ptr_field.h>

#include <string>

#include "stockpile/v1/allocation.pb.h"

namespace stockpile::stockctl {

// Destination and priority, the legs (source, lots, quantity, distance, tier, below-floor flag),
// the outcome per line with any shortfall, and contract/capacity options for the shortfalls.
std::string RenderPlan(const stockpile::v1::AllocationPlan& plan);

// State and who/when, the legs with their states, short lines, and the audit trail.
std::string RenderTransfer(const stockpile::v1::Transfer& transfer);
std::string RenderTransfers(
    const google::protobuf::RepeatedPtrField<stockpile::v1::Transfer>& list);

// "same_county", "pending_approval", "critical": enum values as typed on the command line.
std::string TierWord(stockpile::v1::SourceTier tier);
std::string TransferStateWord(stockpile::v1::TransferState state);
std::string PriorityWord(stockpile::v1::Priority priority);

}  // namespace stockpile::stockctl
