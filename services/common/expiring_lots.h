#pragma once

// ListExpiringLots as the level service and the catalogue both answer it, each over its own
// balances: the same window rule and the same entries.
#include <cstdint>

#include "absl/status/statusor.h"
#include "stockpile/v1/level_service.pb.h"

namespace stockpile::common {

// The request's window in days: unset means the default of 30, and 0 today only (a clerk asking
// what expires today); beyond 0..3650 is INVALID_ARGUMENT.
absl::StatusOr<int32_t> ExpiryWindowDays(const stockpile::v1::ListExpiringLotsRequest& req);

// Appends to `resp` every lot of `balance` with stock on hand whose expiry is at most `within`
// days after `today` (days since 1970-01-01; lots already expired included); returns how many.
int AppendExpiringLots(const stockpile::v1::Balance& balance, int32_t today, int32_t within,
                       stockpile::v1::ListExpiringLotsResponse* resp);

}  // namespace stockpile::common
