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
//   stockpile_transfers_short{state}                of those, the ones with a short line
//   stockpile_transfer_oldest_age_seconds{state}    age (since its last change) of the oldest
//   stockpile_transfer_approval_to_receipt_seconds  histogram over every received transfer
//   stockpile_is_leader                             1 on the replica that drives transfers
//   stockpile_transfer_metrics_read_errors_total    scrapes whose store read failed
// A scrape whose read of the store fails publishes none of the per-state figures (partial
// counts would read as "nothing stuck" and silence the alerts): the series go stale, the error
// is logged and counted.
std::shared_ptr<prometheus::Collectable> MakeTransferCollectable(const TransferStore* store,
                                                                 const common::Clock* clock,
                                                                 std::function<bool()> is_leader);

}  // namespace stockpile::catalogue::allocation
