#include "tools/stockctl/output/audit_render.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/stockctl/output/format.h"
#include "tools/stockctl/output/render.h"
#include "tools/stockctl/output/table.h"

namespace stockpile::stockctl {
namespace {

using google::protobuf::Timestamp;

bool Set(const Timestamp& t) { return t.seconds() != 0 || t.nanos() != 0; }

// Records written before the level service kept who changed them carry no name.
std::string ActorOr(const std::string& actor) {
  return actor.empty() ? std::string(kActorNotRecorded) : actor;
}

bool Earlier(const AuditEntry& a, const AuditEntry& b) {
  return std::make_pair(a.time.seconds(), a.time.nanos()) <
         std::make_pair(b.time.seconds(), b.time.nanos());
}

std::string JoinSet(std::initializer_list<std::string> parts) {
  std::vector<std::string> set;
  for (const auto& p : parts) {
    if (!p.empty()) set.push_back(p);
  }
  return absl::StrJoin(set, " ");
}

AuditEntry FromMovement(const stockpile::v1::Movement& m) {
  AuditEntry e;
  e.time = m.create_time();
  e.actor = ActorOr(m.actor());
  e.what = EnumWord(stockpile::v1::MovementType_Name(m.type()), "MOVEMENT_TYPE_");
  e.item = m.item();
  e.quantity = m.quantity() != 0 || m.held_delta() == 0
                   ? Signed(m.quantity())
                   : absl::StrCat("held ", Signed(m.held_delta()));
  e.detail = JoinSet({m.lot().empty() ? "" : absl::StrCat("lot ", m.lot()),
                      m.reference().empty() ? "" : absl::StrCat("[", m.reference(), "]"), m.note(),
                      m.request_id().empty() ? "" : absl::StrCat("request ", m.request_id())});
  return e;
}

}  // namespace

std::vector<AuditEntry> WarehouseAudit(
    const stockpile::v1::Warehouse& warehouse,
    const google::protobuf::RepeatedPtrField<stockpile::v1::Quota>& quotas,
    const google::protobuf::RepeatedPtrField<stockpile::v1::Reserve>& reserves,
    const google::protobuf::RepeatedPtrField<stockpile::v1::Movement>& movements) {
  std::vector<AuditEntry> out;
  if (Set(warehouse.create_time())) {
    out.push_back({warehouse.create_time(), ActorOr(warehouse.created_by()), "warehouse created",
                   "", "", warehouse.display_name()});
  }
  if (Set(warehouse.update_time()) &&
      google::protobuf::util::TimeUtil::TimestampToNanoseconds(warehouse.update_time()) !=
          google::protobuf::util::TimeUtil::TimestampToNanoseconds(warehouse.create_time())) {
    out.push_back({warehouse.update_time(), ActorOr(warehouse.updated_by()),
                   "warehouse updated (last)", "", "", ""});
  }
  for (const auto& q : quotas) {
    out.push_back({q.update_time(), ActorOr(q.updated_by()), "quota set (last)", q.item(), "",
                   absl::StrCat("min ", q.min(), " max ", q.max())});
  }
  for (const auto& r : reserves) {
    out.push_back({r.update_time(), ActorOr(r.updated_by()), "reserve set (last)", r.item(),
                   Num(r.quantity()),
                   EnumWord(stockpile::v1::ReserveMode_Name(r.mode()), "RESERVE_MODE_")});
  }
  for (const auto& m : movements) out.push_back(FromMovement(m));
  std::stable_sort(out.begin(), out.end(), Earlier);
  return out;
}

std::vector<AuditEntry> TransferAudit(const stockpile::v1::Transfer& transfer) {
  std::vector<AuditEntry> out;
  for (const auto& step : transfer.audit()) {
    out.push_back({step.time(), ActorOr(step.actor()), step.what(), "", "", ""});
  }
  std::stable_sort(out.begin(), out.end(), Earlier);
  return out;
}

std::vector<AuditEntry> WithinTimes(std::vector<AuditEntry> entries,
                                    const google::protobuf::Timestamp* since,
                                    const google::protobuf::Timestamp* until) {
  std::erase_if(entries, [&](const AuditEntry& e) {
    return (since != nullptr && e.time < *since) || (until != nullptr && !(e.time < *until));
  });
  return entries;
}

std::string RenderAudit(const std::vector<AuditEntry>& entries) {
  // A transfer's steps carry only time, actor and what: leave the stock columns out then.
  const bool stock = std::any_of(entries.begin(), entries.end(), [](const AuditEntry& e) {
    return !e.item.empty() || !e.quantity.empty() || !e.detail.empty();
  });
  Table table = stock ? Table({"TIME", "ACTOR", "WHAT", "ITEM", "QTY", "DETAIL"})
                      : Table({"TIME", "ACTOR", "WHAT"});
  if (stock) table.AlignRight(4);
  for (const auto& e : entries) {
    table.AddRow({FormatTime(e.time), e.actor, e.what, e.item, e.quantity, e.detail});
  }
  return table.Render();
}

std::string AuditJson(const std::vector<AuditEntry>& entries) {
  nlohmann::json array = nlohmann::json::array();
  for (const auto& e : entries) {
    nlohmann::json row;
    row["time"] = google::protobuf::util::TimeUtil::ToString(e.time);
    row["actor"] = e.actor;
    row["what"] = e.what;
    if (!e.item.empty()) row["item"] = e.item;
    if (!e.quantity.empty()) row["quantity"] = e.quantity;
    if (!e.detail.empty()) row["detail"] = e.detail;
    array.push_back(std::move(row));
  }
  return array.dump();  // compact, like the other --json output
}

}  // namespace stockpile::stockctl
