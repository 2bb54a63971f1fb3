#pragma once

// ListExpiringLots as the level service and the catalogue both answer it, each over its own
// balances: the same window rule and the same entries.
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "stockpile/v1/level_service.pb.h"

namespace stockpile::common {

// The request's window in days: unset means the default of 30, and 0 today only (a clerk asking
// what expires today); beyond 0..3650 is INVALID_ARGUMENT.
absl::StatusOr<int32_t> ExpiryWindowDays(const stockpile::v1::ListExpiringLotsRequest& req);

// Appends to `resp` every lot of `balance` with stock on hand whose expiry is at most `within`
// days after `today` (days since 1970-01-01; lots already expired included); returns how many.
int AppendExpiringLots(const stockpile::v1::Balance& balance, int32_t today, int32_t within,
                       stockpile::v1::ListExpiringLotsResponse* resp);

// Whether a lot's expiry date (empty: none) is before `today`; the date is its last usable day.
// An unreadable date counts as not expired, as the ledger counts it.
bool ExpiredOn(absl::string_view expiry_date, int32_t today);

// On hand less held in the lots of `balance` not expired on `today`: what a reserve floor
// counts (QuotaStatus.usable), as the ledger's floor check and the planner count it.
int64_t UsableStock(const stockpile::v1::Balance& balance, int32_t today);

}  // namespace stockpile::common
