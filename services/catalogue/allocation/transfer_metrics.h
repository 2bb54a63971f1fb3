#pragma once

#include <functional>
#include <memory>

#include "prometheus/collectable.h"
#include "services/catalogue/allocation/transfer_store.h"
#include "services/common/clock.h"

namespace stockpile::catalogue::allocation {

// Transfer figures for dashboards and alerts, computed from the transfer store at scrape time
// (so they survive restarts and never go stale):
//   stockpile_transfers{state}                      transfers in each state
//   stockpile_transfer_oldest_age_seconds{state}    age (since its last change) of the oldest
//   stockpile_transfer_approval_to_receipt_seconds  histogram over every received transfer
//   stockpile_is_leader                             1 on the replica that drives transfers
std::shared_ptr<prometheus::Collectable> MakeTransferCollectable(
    const TransferStore* store, const common::Clock* clock, std::function<bool()> is_leader);

}  // namespace stockpile::catalogue::allocation
