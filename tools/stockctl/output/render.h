#pragma once

#include <google/protobuf/message.h>
#include <google/protobuf/repeated_ptr_field.h>

#include <string>

#include "stockpile/v1/level_service.pb.h"

namespace stockpile::stockctl {

namespace v1 = stockpile::v1;

// Protobuf JSON of one message: proto field names, defaults included, one line.
std::string ToJson(const google::protobuf::Message& message);

// A JSON array of messages.
template <typename M>
std::string ToJsonArray(const google::protobuf::RepeatedPtrField<M>& messages) {
  std::string out = "[";
  for (int i = 0; i < messages.size(); ++i) {
    if (i > 0) out += ",";
    out += ToJson(messages.Get(i));
  }
  return out + "]";
}

// Human-readable renderings: aligned tables or "key: value" blocks, each ending in '\n'.
std::string RenderWarehouse(const v1::Warehouse& w);
std::string RenderWarehouses(const google::protobuf::RepeatedPtrField<v1::Warehouse>& list);
std::string RenderMovementResult(const v1::MovementResult& result);
std::string RenderBatchResult(const v1::ApplyBatchResponse& response);
std::string RenderMovements(const google::protobuf::RepeatedPtrField<v1::Movement>& list);
// `past`: the balance as of a past time (--as-of), whose in-transit stock is not known.
// `reserve_day`: the China calendar day (common::ReserveDay) lots are judged expired on, today's
// or the --as-of time's; `past`: the balance is as of a past time.
std::string RenderBalance(const v1::Balance& balance, int32_t reserve_day, bool past = false);
std::string RenderBalances(const google::protobuf::RepeatedPtrField<v1::Balance>& list);
std::string RenderHold(const v1::Hold& hold);
std::string RenderHolds(const google::protobuf::RepeatedPtrField<v1::Hold>& list);
std::string RenderQuota(const v1::Quota& quota);
std::string RenderQuotas(const google::protobuf::RepeatedPtrField<v1::Quota>& list);
std::string RenderReserve(const v1::Reserve& reserve);
std::string RenderReserves(const google::protobuf::RepeatedPtrField<v1::Reserve>& list);
std::string RenderQuotaStatus(const google::protobuf::RepeatedPtrField<v1::QuotaStatus>& list);
std::string RenderExpiring(const google::protobuf::RepeatedPtrField<v1::ExpiringLot>& list);
std::string RenderTotals(const google::protobuf::RepeatedPtrField<v1::ItemTotals>& list);
std::string RenderInstanceInfo(const v1::InstanceInfo& info);
std::string RenderBackup(const v1::Backup& backup);
std::string RenderBackups(const google::protobuf::RepeatedPtrField<v1::Backup>& backups);
std::string RenderItems(const google::protobuf::RepeatedPtrField<v1::Item>& list);
std::string RenderRegion(const v1::Region& region);
// One line per change entry plus one indented line per movement in it.
std::string RenderChangeEntry(const v1::ChangeEntry& entry);

// "2024-05-01T08:00:00Z", or "" for an unset timestamp.
std::string FormatTime(const google::protobuf::Timestamp& t);
// "warehouses/4201-W001" -> "4201-W001".
std::string ShortWarehouse(const std::string& name);

}  // namespace stockpile::stockctl
