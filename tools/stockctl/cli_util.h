#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "stockpile/v1/level_service.pb.h"
#include "stockpile/v1/stock.pb.h"
#include "stockpile/v1/warehouse.pb.h"

namespace stockpile::stockctl {

// RFC 3339 ("2024-05-01T08:00:00Z", "2024-05-01T16:00:00+08:00") or a date "YYYY-MM-DD",
// which means 00:00 of that day in the local time zone (TZ).
absl::StatusOr<google::protobuf::Timestamp> ParseTimeArg(absl::string_view flag,
                                                         absl::string_view text);

// --since / --until of a movement listing (either may be empty). Only a given bound is set: an
// unset Timestamp means "no bound", a zero one the epoch.
absl::Status SetTimeRange(absl::string_view since, absl::string_view until,
                          stockpile::v1::ListMovementsRequest* request);

// A request id unique enough for one operator: "stockctl-<utc time>-<random hex>".
std::string NewRequestId();

// Accepts a code ("4201-W001") or a name ("warehouses/4201-W001"); returns the name.
absl::StatusOr<std::string> WarehouseNameArg(absl::string_view text);

// Enum words as typed on the command line ("government", "active", "contract", ...).
absl::StatusOr<stockpile::v1::WarehouseKind> ParseKind(absl::string_view word);
absl::StatusOr<stockpile::v1::WarehouseStatus> ParseWarehouseStatus(absl::string_view word);
absl::StatusOr<stockpile::v1::ReserveMode> ParseReserveMode(absl::string_view word);
absl::StatusOr<stockpile::v1::HoldState> ParseHoldState(absl::string_view word);

// "LOT:QTY[:YYYY-MM-DD]" -> HoldLot (--lot of hold, --count of stocktake: `flag` and `form`
// name them in errors). The lot may hold ':' itself: it is everything before the quantity
// ("2024:B1:20" is lot 2024:B1). An expiry typed without dashes is refused, not read as a count.
absl::StatusOr<stockpile::v1::HoldLot> ParseHoldLot(absl::string_view text,
                                                    absl::string_view flag = "--lot",
                                                    absl::string_view form = "LOT:QUANTITY");

// "LOT:SHIPPED:RECEIVED[:YYYY-MM-DD]" -> HoldLot (receive-transfer, confirm-delivery); the lot
// is everything before the two numbers.
absl::StatusOr<stockpile::v1::HoldLot> ParseDeliveredLot(absl::string_view text);

}  // namespace stockpile::stockctl
