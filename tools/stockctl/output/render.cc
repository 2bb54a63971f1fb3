#include "tools/stockctl/output/render.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "services/common/expiring_lots.h"
#include "services/common/validation.h"
#include "tools/stockctl/output/format.h"
#include "tools/stockctl/output/table.h"

namespace stockpile::stockctl {
namespace {

using google::protobuf::RepeatedPtrField;
using KeyValues = std::vector<std::pair<std::string, std::string>>;

// A delivered hold states every lot's received count: a lot that arrived with nothing (all of it
// lost in transit) must not read as delivered in full.
std::string HoldLots(const v1::Hold& hold) {
  const bool delivered = hold.state() == v1::HOLD_STATE_DELIVERED;
  std::vector<std::string> parts;
  for (const auto& lot : hold.lots()) {
    std::string part = absl::StrCat(lot.lot(), ":", lot.quantity());
    if (delivered || lot.received() != 0) {
      absl::StrAppend(&part, " (received ", lot.received(), ")");
    }
    parts.push_back(part);
  }
  return absl::StrJoin(parts, ", ");
}

std::string MiB(int64_t bytes) {
  return absl::StrCat(Fixed(static_cast<double>(bytes) / (1 << 20), 1), " MiB");
}

}  // namespace

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

std::string FormatTime(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "";
  google::protobuf::Timestamp whole = t;
  whole.set_nanos(0);  // seconds are enough on a terminal
  return google::protobuf::util::TimeUtil::ToString(whole);
}

std::string ShortWarehouse(const std::string& name) {
  absl::string_view code = name;
  absl::ConsumePrefix(&code, "warehouses/");
  return std::string(code);
}

std::string RenderWarehouse(const v1::Warehouse& w) {
  std::string area = Decimal(w.area_m2()) + " m²";
  if (w.below_standard_area()) area += " (below the level's standard area)";
  std::string location =
      absl::StrCat(Decimal(w.location().longitude()), ", ", Decimal(w.location().latitude()));
  // A city's or province's region has no seat of its own: the reference data places it at the
  // centre of its counties' seats, which can be far from its capital.
  if (w.location_defaulted()) {
    location += common::LevelOfRegionCode(w.region_code()) >= v1::LEVEL_COUNTY
                    ? " (not given: the county seat)"
                    : " (not given: the centre of its counties' seats)";
  }
  return RenderKeyValues(KeyValues{
      {"name", w.name()},
      {"display name", w.display_name()},
      {"level", EnumWord(v1::Level_Name(w.level()), "LEVEL_")},
      {"region", w.region_code()},
      {"kind", EnumWord(v1::WarehouseKind_Name(w.kind()), "WAREHOUSE_KIND_")},
      {"area", area},
      {"address", w.address()},
      {"location", location},
      {"status", EnumWord(v1::WarehouseStatus_Name(w.status()), "WAREHOUSE_STATUS_")},
      {"created", FormatTime(w.create_time())},
      {"updated", FormatTime(w.update_time())},
  });
}

std::string RenderWarehouses(const RepeatedPtrField<v1::Warehouse>& list) {
  Table table({"CODE", "NAME", "LEVEL", "REGION", "KIND", "AREA_M2", "STATUS", "NOTE"});
  table.AlignRight(5);
  for (const auto& w : list) {
    table.AddRow({w.code(), w.display_name(), EnumWord(v1::Level_Name(w.level()), "LEVEL_"),
                  w.region_code(), EnumWord(v1::WarehouseKind_Name(w.kind()), "WAREHOUSE_KIND_"),
                  Decimal(w.area_m2()),
                  EnumWord(v1::WarehouseStatus_Name(w.status()), "WAREHOUSE_STATUS_"),
                  w.below_standard_area() ? "below standard area" : ""});
  }
  return table.Render();
}

std::string RenderMovements(const RepeatedPtrField<v1::Movement>& list) {
  Table table({"ID", "TIME", "TYPE", "WAREHOUSE", "ITEM", "LOT", "EXPIRY", "QTY", "HELD",
               "ON_HAND_AFTER", "REQUEST_ID", "ACTOR", "NOTE"});
  table.AlignRight(0).AlignRight(7).AlignRight(8).AlignRight(9);
  for (const auto& m : list) {
    std::string note = m.note();
    if (!m.reference().empty())
      note = absl::StrCat(note, note.empty() ? "" : " ", "[", m.reference(), "]");
    table.AddRow({Num(static_cast<int64_t>(m.id())), FormatTime(m.create_time()),
                  EnumWord(v1::MovementType_Name(m.type()), "MOVEMENT_TYPE_"),
                  ShortWarehouse(m.warehouse()), m.item(), m.lot(), m.expiry_date(),
                  Signed(m.quantity()), Signed(m.held_delta()), Num(m.on_hand_after()),
                  m.request_id(), m.actor(), note});
  }
  return table.Render();
}

std::string RenderBalances(const RepeatedPtrField<v1::Balance>& list) {
  Table table({"WAREHOUSE", "ITEM", "ON_HAND", "HELD", "AVAILABLE", "IN_TRANSIT", "LOTS"});
  table.AlignRight(2).AlignRight(3).AlignRight(4).AlignRight(5).AlignRight(6);
  for (const auto& b : list) {
    table.AddRow({ShortWarehouse(b.warehouse()), b.item(), Num(b.on_hand()), Num(b.held()),
                  Num(b.available()), Num(b.in_transit()), Num(b.lots_size())});
  }
  return table.Render();
}

// Available stock in lots past their expiry is not what it seems: it is issued only when its lot
// is named, never held or planned, and no reserve floor counts it. Said next to the figure.
std::string UsableLine(const v1::Balance& b, int32_t reserve_day) {
  const int64_t usable = common::UsableStock(b, reserve_day);
  if (usable == b.available()) return Num(usable);
  return absl::StrCat(Num(usable), " (", Num(b.available() - usable),
                      " available in expired lots: not issued, held or planned)");
}

std::string RenderBalance(const v1::Balance& b, int32_t reserve_day, bool past) {
  std::string out = RenderKeyValues(KeyValues{
      {"warehouse", ShortWarehouse(b.warehouse())},
      {"item", b.item()},
      {"on hand", Num(b.on_hand())},
      {"held", Num(b.held())},
      {"available", Num(b.available())},
      {"usable", UsableLine(b, reserve_day)},
      // The level does not rebuild in-transit stock for a past time; 0 would read as a fact.
      {"in transit", past ? std::string("(not kept for past times)") : Num(b.in_transit())},
      {past ? "as of" : "updated", FormatTime(b.update_time())},
  });
  if (b.lots_size() == 0) return out;
  Table lots({"LOT", "EXPIRY", "ON_HAND", "HELD", "AVAILABLE"});
  lots.AlignRight(2).AlignRight(3).AlignRight(4);
  for (const auto& l : b.lots()) {
    const bool expired = common::ExpiredOn(l.expiry_date(), reserve_day);
    lots.AddRow({l.lot(), expired ? l.expiry_date() + " expired" : l.expiry_date(),
                 Num(l.on_hand()), Num(l.held()), Num(l.available())});
  }
  return out + "\n" + lots.Render();
}

std::string RenderHold(const v1::Hold& h) {
  return RenderKeyValues(KeyValues{
      {"hold", h.name()},
      {"warehouse", ShortWarehouse(h.warehouse())},
      {"item", h.item()},
      {"quantity", Num(h.quantity())},
      {"lots", HoldLots(h)},
      {"state", EnumWord(v1::HoldState_Name(h.state()), "HOLD_STATE_")},
      {"reference", h.reference()},
      {"destination", ShortWarehouse(h.destination())},
      {"expires", FormatTime(h.expire_time())},
      {"created", FormatTime(h.create_time())},
      {"updated", FormatTime(h.update_time())},
  });
}

std::string RenderHolds(const RepeatedPtrField<v1::Hold>& list) {
  Table table({"HOLD", "WAREHOUSE", "ITEM", "QTY", "STATE", "REFERENCE", "EXPIRES", "DESTINATION"});
  table.AlignRight(3);
  for (const auto& h : list) {
    table.AddRow({h.hold_id(), ShortWarehouse(h.warehouse()), h.item(), Num(h.quantity()),
                  EnumWord(v1::HoldState_Name(h.state()), "HOLD_STATE_"), h.reference(),
                  FormatTime(h.expire_time()), ShortWarehouse(h.destination())});
  }
  return table.Render();
}

std::string RenderMovementResult(const v1::MovementResult& result) {
  std::string out;
  if (result.movements_size() > 0) out += RenderMovements(result.movements()) + "\n";
  if (result.balances_size() > 0) out += RenderBalances(result.balances()) + "\n";
  if (!result.hold().name().empty()) out += RenderHold(result.hold()) + "\n";
  return out + absl::StrCat("sequence: ", result.sequence(), "\n");
}

std::string RenderBatchResult(const v1::ApplyBatchResponse& response) {
  RepeatedPtrField<v1::Movement> movements;
  for (const auto& r : response.results()) {
    for (const auto& m : r.movements()) *movements.Add() = m;
  }
  return absl::StrCat(RenderMovements(movements), "\noperations: ", response.results_size(),
                      "\nsequence: ", response.sequence(), "\n");
}

std::string RenderQuota(const v1::Quota& q) {
  RepeatedPtrField<v1::Quota> one;
  *one.Add() = q;
  return RenderQuotas(one);
}

std::string RenderQuotas(const RepeatedPtrField<v1::Quota>& list) {
  Table table({"WAREHOUSE", "ITEM", "MIN", "MAX", "UPDATED"});
  table.AlignRight(2).AlignRight(3);
  for (const auto& q : list) {
    table.AddRow({ShortWarehouse(q.warehouse()), q.item(), Num(q.min()),
                  q.max() == 0 ? "-" : Num(q.max()), FormatTime(q.update_time())});
  }
  return table.Render();
}

std::string RenderReserve(const v1::Reserve& r) {
  RepeatedPtrField<v1::Reserve> one;
  *one.Add() = r;
  return RenderReserves(one);
}

std::string RenderReserves(const RepeatedPtrField<v1::Reserve>& list) {
  Table table({"WAREHOUSE", "ITEM", "MODE", "QTY", "LEAD_TIME_H", "PARTNER", "UPDATED"});
  table.AlignRight(3).AlignRight(4);
  for (const auto& r : list) {
    table.AddRow({ShortWarehouse(r.warehouse()), r.item(),
                  EnumWord(v1::ReserveMode_Name(r.mode()), "RESERVE_MODE_"), Num(r.quantity()),
                  Num(r.lead_time_hours()), r.partner(), FormatTime(r.update_time())});
  }
  return table.Render();
}

std::string RenderQuotaStatus(const RepeatedPtrField<v1::QuotaStatus>& list) {
  Table table({"WAREHOUSE", "ITEM", "ON_HAND", "AVAILABLE", "USABLE", "MIN", "MAX", "GAP"});
  for (size_t c = 2; c < 8; ++c) table.AlignRight(c);
  for (const auto& s : list) {
    table.AddRow({ShortWarehouse(s.warehouse()), s.item(), Num(s.on_hand()), Num(s.available()),
                  Num(s.usable()), Num(s.min()), s.max() == 0 ? "-" : Num(s.max()), Num(s.gap())});
  }
  return table.Render();
}

std::string RenderExpiring(const RepeatedPtrField<v1::ExpiringLot>& list) {
  Table table({"WAREHOUSE", "ITEM", "LOT", "EXPIRY", "ON_HAND", "DAYS_LEFT"});
  table.AlignRight(4).AlignRight(5);
  for (const auto& l : list) {
    table.AddRow({ShortWarehouse(l.warehouse()), l.item(), l.lot(), l.expiry_date(),
                  Num(l.on_hand()), Num(l.days_left())});
  }
  return table.Render();
}

std::string RenderTotals(const RepeatedPtrField<v1::ItemTotals>& list) {
  Table table({"ITEM", "ON_HAND", "HELD", "IN_TRANSIT", "RECEIVED", "ISSUED", "ADJUSTED", "LOST",
               "TRANSFERRED_IN", "DELIVERED_OUT"});
  for (size_t c = 1; c < 10; ++c) table.AlignRight(c);
  for (const auto& t : list) {
    table.AddRow({t.item(), Num(t.on_hand()), Num(t.held()), Num(t.in_transit()), Num(t.received()),
                  Num(t.issued()), Num(t.adjusted()), Num(t.lost()), Num(t.transferred_in()),
                  Num(t.delivered_out())});
  }
  return table.Render();
}

std::string RenderInstanceInfo(const v1::InstanceInfo& info) {
  return RenderKeyValues(KeyValues{
      {"instance", info.instance_id()},
      {"level", EnumWord(v1::Level_Name(info.level()), "LEVEL_")},
      {"regions", absl::StrJoin(info.region_prefixes(), ",")},
      {"warehouses", Num(info.warehouse_count())},
      {"last sequence", absl::StrCat(info.last_sequence())},
      {"first retained sequence", absl::StrCat(info.first_retained_sequence())},
      {"version", info.version()},
      {"started", FormatTime(info.start_time())},
  });
}

std::string RenderBackup(const v1::Backup& backup) {
  return RenderKeyValues(KeyValues{
      {"backup", backup.path()},
      {"holds changes up to at least sequence", absl::StrCat(backup.sequence())},
      {"taken", FormatTime(backup.create_time())},
      {"size", MiB(backup.size_bytes())},
  });
}

std::string RenderBackups(const RepeatedPtrField<v1::Backup>& backups) {
  Table table({"TAKEN", "SEQUENCE", "SIZE", "REQUEST_ID", "PATH"});
  table.AlignRight(1);
  table.AlignRight(2);
  for (const auto& b : backups) {
    table.AddRow({FormatTime(b.create_time()), absl::StrCat(b.sequence()), MiB(b.size_bytes()),
                  b.request_id().empty() ? "-" : b.request_id(), b.path()});
  }
  return table.Render();
}

std::string RenderItems(const RepeatedPtrField<v1::Item>& list) {
  Table table({"CODE", "名称", "NAME", "CATEGORY", "UNIT", "SHELF_LIFE_MONTHS"});
  table.AlignRight(5);
  for (const auto& i : list) {
    table.AddRow({i.code(), i.name_zh(), i.name_en(), i.category(),
                  absl::StrCat(i.unit_zh(), " (", i.unit_en(), ")"),
                  i.shelf_life_months() == 0 ? "-" : Num(i.shelf_life_months())});
  }
  return table.Render();
}

std::string RenderRegion(const v1::Region& r) {
  std::string location =
      absl::StrCat(Decimal(r.location().longitude()), ", ", Decimal(r.location().latitude()));
  if (r.location_estimated()) location += " (estimated)";
  return RenderKeyValues(KeyValues{
      {"region", r.code()},
      {"name", r.display_name()},
      {"level", EnumWord(v1::Level_Name(r.level()), "LEVEL_")},
      {"parent", r.parent_code()},
      {"location", location},
  });
}

std::string RenderChangeEntry(const v1::ChangeEntry& e) {
  std::string out = absl::StrCat("#", e.sequence(), " ", FormatTime(e.commit_time()), " ",
                                 e.request_id().empty() ? "-" : e.request_id());
  if (e.snapshot()) out += " [snapshot]";
  absl::StrAppend(&out, " warehouses=", e.warehouses_size(), " balances=", e.balances_size());
  // Entries carry balances, not movements: "movements=0" would read as "nothing moved".
  if (e.movements_size() > 0) absl::StrAppend(&out, " movements=", e.movements_size());
  absl::StrAppend(&out, " holds=", e.holds_size(), " quotas=", e.quotas_size(),
                  " reserves=", e.reserves_size(), "\n");
  for (const auto& m : e.movements()) {
    absl::StrAppend(&out, "  ", EnumWord(v1::MovementType_Name(m.type()), "MOVEMENT_TYPE_"), " ",
                    ShortWarehouse(m.warehouse()), " ", m.item(), " ", m.lot(), " ",
                    Signed(m.quantity()), " -> ", m.on_hand_after(), "\n");
  }
  return out;
}

}  // namespace stockpile::stockctl
