#pragma once

// `stockctl audit`: who did what, when, for one warehouse or one transfer, as one time-ordered
// list built from what the services keep (movements and admin records at the level service,
// the step history of a transfer at the catalogue).

#include <google/protobuf/repeated_field.h>
#include <google/protobuf/timestamp.pb.h>

#include <string>
#include <vector>

#include "stockpile/v1/allocation.pb.h"
#include "stockpile/v1/stock.pb.h"
#include "stockpile/v1/warehouse.pb.h"

namespace stockpile::stockctl {

// Shown when the service keeps the time of a change but not who made it.
inline constexpr char kActorNotRecorded[] = "(not recorded)";

struct AuditEntry {
  google::protobuf::Timestamp time;
  std::string actor;
  std::string what;  // "receive", "ship", "warehouse created", "quota set", ...
  std::string item;
  std::string quantity;  // signed change, when the entry moves stock
  std::string detail;    // lot, reference, note, request id
};

// One warehouse: its creation and last update, its quotas and reserves (times only: the level
// service does not keep their actor) and every movement, oldest first.
std::vector<AuditEntry> WarehouseAudit(
    const stockpile::v1::Warehouse& warehouse,
    const google::protobuf::RepeatedPtrField<stockpile::v1::Quota>& quotas,
    const google::protobuf::RepeatedPtrField<stockpile::v1::Reserve>& reserves,
    const google::protobuf::RepeatedPtrField<stockpile::v1::Movement>& movements);

// One transfer: every step of its audit trail, oldest first.
std::vector<AuditEntry> TransferAudit(const stockpile::v1::Transfer& transfer);

// The entries at or after `since` and before `until` (unset: unbounded on that side).
std::vector<AuditEntry> WithinTimes(std::vector<AuditEntry> entries,
                                    const google::protobuf::Timestamp* since,
                                    const google::protobuf::Timestamp* until);

std::string RenderAudit(const std::vector<AuditEntry>& entries);
// A JSON array of {"time", "actor", "what", "item", "quantity", "detail"} (empty fields left out).
std::string AuditJson(const std::vector<AuditEntry>& entries);

}  // namespace stockpile::stockctl
