#include "services/level/ledger.h"

#include <algorithm>
#include <limits>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "services/common/enum_words.h"
#include "services/common/expiring_lots.h"
#include "services/common/status_macros.h"
#include "services/common/validation.h"
#include "services/level/keys.h"
#include "services/level/proto_util.h"
#include "stockpile/internal/level_store.pb.h"

namespace stockpile::level {
namespace {

using namespace stockpile::v1;  // NOLINT: the ledger speaks the API's types throughout
using common::CheckId;
using common::CheckPositiveQuantity;
using common::CheckText;
using common::kMaxTextLength;

// 10^15 units of an item in one warehouse, all lots together: far above any reserve, and far
// enough below int64's limit that sums over lots and warehouses cannot wrap around.
constexpr int64_t kMaxBalance = 1'000'000'000'000'000;
constexpr int64_t kDefaultHoldTtlSeconds = 24 * 3600;
constexpr int64_t kMaxHoldTtlSeconds = 30 * 24 * 3600;
constexpr char kDefaultLot[] = "DEFAULT";
constexpr size_t kMaxLinesPerOp = 1000;

// Issue order: earliest expiry first, lots without expiry last, then by lot name.
bool IssuesBefore(const LotBalance& a, const LotBalance& b) {
  if (a.expiry_date().empty() != b.expiry_date().empty()) return b.expiry_date().empty();
  if (a.expiry_date() != b.expiry_date()) return a.expiry_date() < b.expiry_date();
  return a.lot() < b.lot();
}

std::string Describe(const Balance& b) { return absl::StrCat(b.item(), " at ", b.warehouse()); }

// `b` as last normalized (its lots may have changed since): adding `quantity` must keep it
// within kMaxBalance.
absl::Status CheckRoomFor(const Balance& b, int64_t quantity, absl::string_view what) {
  if (quantity > 0 && b.on_hand() > kMaxBalance - quantity) {
    return absl::OutOfRangeError(absl::StrCat(what, " would take ", Describe(b), " to ",
                                              b.on_hand(), " + ", quantity, " units, past the ",
                                              kMaxBalance, " one warehouse can hold of an item"));
  }
  return absl::OkStatus();
}

absl::Status CheckLotLines(const google::protobuf::RepeatedPtrField<HoldLot>& lines) {
  if (lines.empty()) return absl::InvalidArgumentError("lots must list at least one lot");
  if (lines.size() > static_cast<int>(kMaxLinesPerOp)) {
    return absl::InvalidArgumentError(absl::StrCat("at most ", kMaxLinesPerOp, " lots"));
  }
  std::set<std::string> seen;
  for (const auto& l : lines) {
    RETURN_IF_ERROR(CheckId("lot", l.lot(), true));
    if (!seen.insert(l.lot()).second) {
      return absl::InvalidArgumentError(absl::StrCat("lot ", l.lot(), " is listed twice"));
    }
  }
  return absl::OkStatus();
}

// A count without a lot is a count of the DEFAULT lot. Where stock sits in named lots, staff who
// leave the lot empty have counted the whole shelf: taken as DEFAULT, the count would start a
// lot beside the named ones and the shelf would read double. Such a count must name each lot.
absl::Status CheckUnnamedCount(const Balance& b, const StocktakeCount& count) {
  if (!count.lot().empty()) return absl::OkStatus();
  std::vector<std::string> stocked;
  bool named = false;
  for (const auto& l : b.lots()) {
    if (l.on_hand() == 0 && l.held() == 0) continue;
    stocked.push_back(l.lot());
    named = named || l.lot() != kDefaultLot;
  }
  if (!named) return absl::OkStatus();
  std::sort(stocked.begin(), stocked.end());
  return absl::InvalidArgumentError(
      absl::StrCat(Describe(b), " is kept in lots ", absl::StrJoin(stocked, ", "),
                   ": count each lot (a count that names no lot counts lot DEFAULT alone)"));
}

}  // namespace

void NormalizeBalance(Balance* b) {
  auto* lots = b->mutable_lots();
  std::sort(lots->begin(), lots->end(), IssuesBefore);
  int64_t on_hand = 0, held = 0;
  for (auto& lot : *lots) {
    lot.set_available(lot.on_hand() - lot.held());
    on_hand += lot.on_hand();
    held += lot.held();
  }
  b->set_on_hand(on_hand);
  b->set_held(held);
  b->set_available(on_hand - held);
}

int32_t Ledger::ReserveDay(int64_t micros) { return common::ReserveDay(micros); }

absl::Status Ledger::Apply(const Operation& op, MovementResult* result) {
  switch (op.op_case()) {
    case Operation::kReceive:
      return Receive(op.receive(), result);
    case Operation::kIssue:
      return Issue(op.issue(), result);
    case Operation::kStocktake:
      return Stocktake(op.stocktake(), result);
    case Operation::kHold:
      return Hold(op.hold(), result);
    case Operation::kRelease:
      return Release(op.release(), result);
    case Operation::kShip:
      return Ship(op.ship(), result);
    case Operation::kReceiveTransfer:
      return ReceiveTransfer(op.receive_transfer(), result);
    case Operation::kConfirmDelivery:
      return ConfirmDelivery(op.confirm_delivery(), result);
    case Operation::OP_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("operation has no op set");
}

// ---- loading ---------------------------------------------------------------------------------

absl::StatusOr<Warehouse*> Ledger::LoadWarehouse(absl::string_view name) {
  // Only checked codes are loaded, so a name that finds one needs no checking again.
  if (absl::string_view loaded = name; absl::ConsumePrefix(&loaded, common::kWarehousePrefix)) {
    if (auto it = warehouses_.find(loaded); it != warehouses_.end()) return &it->second;
  }
  ASSIGN_OR_RETURN(std::string code, common::WarehouseCodeFromName(name));
  auto at = warehouses_.lower_bound(code);
  ASSIGN_OR_RETURN(std::string region, common::RegionOfWarehouseCode(code));
  RETURN_IF_ERROR(ctx_.hosting->CheckRegion(region));
  ASSIGN_OR_RETURN(auto raw, ctx_.txn->Get(Cf::kWarehouses, code));
  if (!raw.has_value()) {
    return absl::NotFoundError(absl::StrCat("warehouse ", name, " does not exist"));
  }
  Warehouse w;
  if (!w.ParseFromString(*raw)) return absl::DataLossError("stored warehouse is unreadable");
  return &warehouses_.emplace_hint(at, std::move(code), std::move(w))->second;
}

absl::StatusOr<const common::ItemInfo*> Ledger::LoadItem(absl::string_view code) {
  RETURN_IF_ERROR(CheckId("item", code, true));
  const auto* item = ctx_.reference->FindItem(code);
  if (item == nullptr) {
    return absl::NotFoundError(absl::StrCat("item ", code, " is not in the item catalogue"));
  }
  return item;
}

absl::StatusOr<Balance*> Ledger::LoadBalance(const Warehouse& w, absl::string_view item) {
  std::string key = keys::WarehouseItem(w.code(), item);
  auto at = balances_.lower_bound(key);
  if (at != balances_.end() && at->first == key) return &at->second;
  ASSIGN_OR_RETURN(auto raw, ctx_.txn->Get(Cf::kBalances, key));
  Balance b;
  if (raw.has_value()) {
    if (!b.ParseFromString(*raw)) return absl::DataLossError("stored balance is unreadable");
  } else {
    b.set_warehouse(w.name());
    b.set_item(std::string(item));
  }
  // Finish writes every loaded balance back as this command's; stamped now, the copies in
  // replies agree with what is stored.
  *b.mutable_update_time() = ToTimestamp(ctx_.now_micros);
  b.set_sequence(ctx_.sequence);
  return &balances_.emplace_hint(at, std::move(key), std::move(b))->second;
}

absl::StatusOr<v1::Hold*> Ledger::LoadHold(absl::string_view hold_id) {
  RETURN_IF_ERROR(CheckId("hold_id", hold_id, true));
  const std::string key(hold_id);
  if (auto it = holds_.find(key); it != holds_.end()) return &it->second;
  ASSIGN_OR_RETURN(auto raw, ctx_.txn->Get(Cf::kHolds, keys::Hold(hold_id)));
  if (!raw.has_value()) {
    return absl::NotFoundError(absl::StrCat("hold holds/", hold_id, " does not exist"));
  }
  v1::Hold h;
  if (!h.ParseFromString(*raw)) return absl::DataLossError("stored hold is unreadable");
  *h.mutable_update_time() = ToTimestamp(ctx_.now_micros);  // as Finish writes it back
  return &holds_.emplace(key, std::move(h)).first->second;
}

absl::Status Ledger::CheckAcceptsStock(const Warehouse& w) const {
  if (w.status() != WAREHOUSE_STATUS_ACTIVE) {
    return absl::FailedPreconditionError(absl::StrCat(
        "warehouse ", w.name(), " is ", WarehouseStatus_Name(w.status()), " and takes no stock"));
  }
  return absl::OkStatus();
}

absl::Status Ledger::CheckMovesStock(const Warehouse& w) const {
  if (w.status() == WAREHOUSE_STATUS_CLOSED) {
    return absl::FailedPreconditionError(absl::StrCat("warehouse ", w.name(), " is closed"));
  }
  return absl::OkStatus();
}

// A shipment to a warehouse of this instance can be checked now, before stock leaves: one that
// does not exist or takes no stock could never receive it, and it would stay in transit.
absl::Status Ledger::CheckLocalDestination(const v1::Hold& hold, absl::string_view destination) {
  if (destination == hold.warehouse()) {
    return absl::InvalidArgumentError(absl::StrCat("hold ", hold.name(), " cannot be shipped to ",
                                                   destination, ", where it is held"));
  }
  ASSIGN_OR_RETURN(Warehouse * to, LoadWarehouse(destination));
  return CheckAcceptsStock(*to);
}

// A warehouse on another level service cannot be looked up from here, but its region can: a
// shipment to (or receipt from) a region that does not exist could never be received (or was
// never shipped), and would strand the stock in transit.
absl::Status Ledger::CheckOtherWarehouseRegion(absl::string_view code, absl::string_view role) {
  ASSIGN_OR_RETURN(std::string region, common::RegionOfWarehouseCode(code));
  if (ctx_.reference->MayBeRegion(region)) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat(role, " warehouses/", code, " cannot exist: region ",
                                          region, " is not in the reference data"));
}

namespace {

// " expires on 2027-02-01", or " has no expiry date": how a lot's date is named in messages.
std::string ExpiryWords(absl::string_view expiry) {
  return expiry.empty() ? " has no expiry date" : absl::StrCat(" expires on ", expiry);
}

}  // namespace

absl::StatusOr<std::string> Ledger::ResolveLot(const common::ItemInfo& item, absl::string_view lot,
                                               absl::string_view expiry) {
  if (item.expires()) {
    if (expiry.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("item ", item.code, " has a shelf life of ", item.shelf_life_months,
                       " months: expiry_date (YYYY-MM-DD) is required"));
    }
    RETURN_IF_ERROR(common::ParseDate("expiry_date", expiry).status());
    if (lot.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("item ", item.code, " has a shelf life: lot is required"));
    }
  } else if (!expiry.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "item ", item.code, " does not expire: expiry_date must be empty; got ", expiry));
  }
  if (lot.empty()) return std::string(kDefaultLot);
  RETURN_IF_ERROR(CheckId("lot", lot, true));
  return std::string(lot);
}

absl::StatusOr<LotBalance*> Ledger::FindOrAddEnteredLot(Balance* b, absl::string_view lot,
                                                        absl::string_view expiry) {
  const LotBalance* variant = nullptr;
  for (auto& l : *b->mutable_lots()) {
    if (l.lot() == lot) return &l;
    if (absl::EqualsIgnoreCase(l.lot(), lot)) variant = &l;
  }
  if (variant != nullptr) {
    // Staff typing "default" for DEFAULT would otherwise add a second lot beside the first.
    return absl::InvalidArgumentError(
        absl::StrCat("lot ", lot, " of ", Describe(*b), " does not exist, but lot ", variant->lot(),
                     " does (lot ids are case-sensitive): use ", variant->lot(),
                     ", or another id for a new lot"));
  }
  return FindOrAddLot(b, lot, expiry);
}

LotBalance* Ledger::FindOrAddLot(Balance* b, absl::string_view lot, absl::string_view expiry) {
  for (auto& l : *b->mutable_lots()) {
    if (l.lot() == lot) return &l;
  }
  auto* l = b->add_lots();
  l->set_lot(std::string(lot));
  l->set_expiry_date(std::string(expiry));
  return l;
}

bool Ledger::Expired(const LotBalance& lot) const {
  return common::ExpiredOn(lot.expiry_date(), ReserveDay(ctx_.now_micros));
}

absl::StatusOr<std::vector<Ledger::LotRef>> Ledger::PickLots(const Balance& b,
                                                             absl::string_view lot,
                                                             int64_t quantity,
                                                             absl::string_view what) const {
  if (!lot.empty()) {
    for (int i = 0; i < b.lots_size(); ++i) {
      const auto& l = b.lots(i);
      if (l.lot() != lot) continue;
      const int64_t available = l.on_hand() - l.held();
      if (available < quantity) {
        return absl::FailedPreconditionError(absl::StrCat(
            "cannot ", what, " ", quantity, " of lot ", lot, " of ", Describe(b), ": only ",
            available, " available (", l.on_hand(), " on hand, ", l.held(), " held)"));
      }
      return std::vector<LotRef>{{i, quantity}};
    }
    return absl::NotFoundError(absl::StrCat("lot ", lot, " of ", Describe(b), " does not exist"));
  }
  std::vector<int> order;
  for (int i = 0; i < b.lots_size(); ++i) order.push_back(i);
  std::sort(order.begin(), order.end(),
            [&](int x, int y) { return IssuesBefore(b.lots(x), b.lots(y)); });
  std::vector<LotRef> picks;
  int64_t remaining = quantity, usable = 0, expired = 0;
  for (int i : order) {
    const auto& l = b.lots(i);
    const int64_t available = l.on_hand() - l.held();
    if (available <= 0) continue;
    if (Expired(l)) {
      expired += available;
      continue;
    }
    usable += available;
    if (remaining == 0) continue;
    const int64_t take = std::min(available, remaining);
    picks.push_back({i, take});
    remaining -= take;
  }
  if (remaining > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot ", what, " ", quantity, " of ", Describe(b), ": only ", usable, " available (",
        b.on_hand(), " on hand, ", b.held(), " held, ", expired, " in expired lots)"));
  }
  return picks;
}

// ---- recording -------------------------------------------------------------------------------

Movement* Ledger::Record(MovementType type, const Balance& b, const LotBalance& lot,
                         int64_t quantity, int64_t held_delta, absl::string_view note,
                         absl::string_view reference, MovementResult* result) {
  const uint64_t id = ++*ctx_.last_movement_id;
  Movement* m = result->add_movements();  // in place: the result may live on the call's arena
  m->set_id(id);
  m->set_type(type);
  m->set_lot(lot.lot());
  m->set_expiry_date(lot.expiry_date());
  m->set_quantity(quantity);
  m->set_held_delta(held_delta);
  m->set_on_hand_after(lot.on_hand());
  m->set_held_after(lot.held());
  m->set_request_id(ctx_.request_id);
  m->set_actor(ctx_.actor);
  m->set_note(std::string(note));
  m->set_reference(std::string(reference));
  m->set_sequence(ctx_.sequence);
  // Stored before the fields its key gives back are set (MovementFromRecord).
  const absl::string_view code = absl::StripPrefix(b.warehouse(), common::kWarehousePrefix);
  records_.push_back({m, keys::MovementPrefix(code, b.item()) + keys::TimeId(ctx_.now_micros, id),
                      m->SerializeAsString()});
  m->set_name(common::MovementName(b.warehouse(), id));
  m->set_warehouse(b.warehouse());
  m->set_item(b.item());
  *m->mutable_create_time() = ToTimestamp(ctx_.now_micros);
  const size_t t = static_cast<size_t>(type);
  if (t < movements_by_type_.size()) movements_by_type_[t]++;
  return m;
}

ItemTotals& Ledger::Totals(absl::string_view item) {
  auto& t = totals_[std::string(item)];
  if (t.item().empty()) t.set_item(std::string(item));
  return t;
}

absl::Status Ledger::Finish(ChangeEntry* change) {
  for (auto& [key, b] : balances_) {
    NormalizeBalance(&b);
    ctx_.txn->Put(Cf::kBalances, key, b.SerializeAsString());
    *change->add_balances() = std::move(b);
  }
  for (auto& [id, h] : holds_) {
    ctx_.txn->Put(Cf::kHolds, keys::Hold(id), h.SerializeAsString());
    *change->add_holds() = std::move(h);
  }
  for (auto& [key, record] : arrivals_) ctx_.txn->Put(Cf::kHolds, key, record);
  return WriteMovements();
}

// Movements and their indexes: the group's batch is put in key order before it is written
// (StoreTxn::KeyOrderedBatch), so they are appended here in any order.
absl::Status Ledger::WriteMovements() {
  for (StoredMovement& r : records_) {
    const std::string time_id = r.key.substr(r.key.size() - keys::kTimeIdSize);
    ctx_.txn->Append(Cf::kMovementIndex, keys::ByItem(r.movement->item()) + time_id, r.key);
    if (!r.movement->reference().empty()) {
      ctx_.txn->Append(Cf::kMovementIndex, keys::ByReference(r.movement->reference()) + time_id,
                       r.key);
    }
    ctx_.txn->Append(Cf::kMovements, std::move(r.key), std::move(r.value));
  }
  records_.clear();
  return absl::OkStatus();
}

absl::StatusOr<Movement> MovementFromRecord(absl::string_view key, absl::string_view value) {
  Movement m;
  if (!m.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError("stored movement is unreadable");
  }
  if (!m.warehouse().empty()) return m;  // stored whole (before the key gave fields back)
  // "{code}/{item}/" + micros + id
  if (key.size() < keys::kTimeIdSize + 4) return absl::DataLossError("movement key is malformed");
  const absl::string_view time_id = key.substr(key.size() - keys::kTimeIdSize);
  const absl::string_view code_item = key.substr(0, key.size() - keys::kTimeIdSize - 1);
  const size_t slash = code_item.find('/');
  if (slash == absl::string_view::npos) return absl::DataLossError("movement key is malformed");
  m.set_warehouse(common::WarehouseName(code_item.substr(0, slash)));
  m.set_item(std::string(code_item.substr(slash + 1)));
  m.set_name(common::MovementName(m.warehouse(), m.id()));
  *m.mutable_create_time() = ToTimestamp(static_cast<int64_t>(keys::ReadU64(time_id)));
  return m;
}

// ---- operations ------------------------------------------------------------------------------

absl::Status Ledger::Receive(const ReceiveOp& op, MovementResult* result) {
  ASSIGN_OR_RETURN(Warehouse * w, LoadWarehouse(op.warehouse()));
  RETURN_IF_ERROR(CheckAcceptsStock(*w));
  ASSIGN_OR_RETURN(const common::ItemInfo* item, LoadItem(op.item()));
  RETURN_IF_ERROR(CheckPositiveQuantity("quantity", op.quantity()));
  RETURN_IF_ERROR(CheckText("note", op.note(), kMaxTextLength, false));
  ASSIGN_OR_RETURN(std::string lot_name, ResolveLot(*item, op.lot(), op.expiry_date()));
  ASSIGN_OR_RETURN(Balance * b, LoadBalance(*w, item->code));
  ASSIGN_OR_RETURN(LotBalance * lot, FindOrAddEnteredLot(b, lot_name, op.expiry_date()));
  if (lot->expiry_date() != op.expiry_date()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "lot ", lot_name, " of ", Describe(*b), ExpiryWords(lot->expiry_date()),
        op.expiry_date().empty() ? "; the receipt gives none"
                                 : absl::StrCat("; the receipt says ", op.expiry_date())));
  }
  RETURN_IF_ERROR(CheckRoomFor(*b, op.quantity(), "receiving"));
  lot->set_on_hand(lot->on_hand() + op.quantity());
  Record(MOVEMENT_TYPE_RECEIVE, *b, *lot, op.quantity(), 0, op.note(), "", result);
  auto& t = Totals(item->code);
  t.set_received(t.received() + op.quantity());
  t.set_on_hand(t.on_hand() + op.quantity());
  NormalizeBalance(b);
  return absl::OkStatus();
}

absl::Status Ledger::Issue(const IssueOp& op, MovementResult* result) {
  ASSIGN_OR_RETURN(Warehouse * w, LoadWarehouse(op.warehouse()));
  RETURN_IF_ERROR(CheckMovesStock(*w));
  ASSIGN_OR_RETURN(const common::ItemInfo* item, LoadItem(op.item()));
  RETURN_IF_ERROR(CheckPositiveQuantity("quantity", op.quantity()));
  RETURN_IF_ERROR(CheckId("lot", op.lot(), false));
  RETURN_IF_ERROR(CheckText("note", op.note(), kMaxTextLength, false));
  ASSIGN_OR_RETURN(Balance * b, LoadBalance(*w, item->code));
  ASSIGN_OR_RETURN(auto picks, PickLots(*b, op.lot(), op.quantity(), "issue"));
  for (const auto& pick : picks) {
    LotBalance* lot = b->mutable_lots(pick.index);
    lot->set_on_hand(lot->on_hand() - pick.quantity);
    Record(MOVEMENT_TYPE_ISSUE, *b, *lot, -pick.quantity, 0, op.note(), "", result);
  }
  auto& t = Totals(item->code);
  t.set_issued(t.issued() + op.quantity());
  t.set_on_hand(t.on_hand() - op.quantity());
  NormalizeBalance(b);
  return absl::OkStatus();
}

absl::Status Ledger::Stocktake(const StocktakeOp& op, MovementResult* result) {
  ASSIGN_OR_RETURN(Warehouse * w, LoadWarehouse(op.warehouse()));
  RETURN_IF_ERROR(CheckMovesStock(*w));
  ASSIGN_OR_RETURN(const common::ItemInfo* item, LoadItem(op.item()));
  RETURN_IF_ERROR(CheckText("reason", op.reason(), kMaxTextLength, false));
  if (op.counts().empty()) return absl::InvalidArgumentError("counts must list at least one lot");
  if (op.counts_size() > static_cast<int>(kMaxLinesPerOp)) {
    return absl::InvalidArgumentError(absl::StrCat("at most ", kMaxLinesPerOp, " counts"));
  }
  ASSIGN_OR_RETURN(Balance * b, LoadBalance(*w, item->code));
  std::set<std::string> seen;
  int64_t adjusted = 0;
  for (const auto& count : op.counts()) {
    if (count.counted() < 0 || count.counted() > kMaxBalance) {
      return absl::InvalidArgumentError(
          absl::StrCat("counted must be between 0 and ", kMaxBalance, "; got ", count.counted()));
    }
    RETURN_IF_ERROR(CheckUnnamedCount(*b, count));
    const LotBalance* known = nullptr;
    for (const auto& l : b->lots()) {
      if (l.lot() == (count.lot().empty() && !item->expires() ? kDefaultLot : count.lot())) {
        known = &l;
      }
    }
    std::string expiry = known != nullptr ? known->expiry_date() : count.expiry_date();
    if (known != nullptr && !count.expiry_date().empty() &&
        count.expiry_date() != known->expiry_date()) {
      return absl::InvalidArgumentError(absl::StrCat("lot ", known->lot(), " of ", Describe(*b),
                                                     ExpiryWords(known->expiry_date()),
                                                     "; the count says ", count.expiry_date()));
    }
    // A lot already in the ledger is counted as it is stored, whatever the item's shelf life
    // says now (the item catalogue may have changed since it came in): a count must always be
    // recordable. A new lot follows the item's rules.
    std::string lot_name = known != nullptr ? known->lot() : "";
    if (known == nullptr) {
      ASSIGN_OR_RETURN(lot_name, ResolveLot(*item, count.lot(), expiry));
    }
    if (!seen.insert(lot_name).second) {
      return absl::InvalidArgumentError(absl::StrCat("lot ", lot_name, " is counted twice"));
    }
    ASSIGN_OR_RETURN(LotBalance * lot, FindOrAddEnteredLot(b, lot_name, expiry));
    const int64_t diff = count.counted() - lot->on_hand();
    if (diff != 0 && op.reason().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("reason is required: the count of lot ", lot_name, " (", count.counted(),
                       ") differs from the ledger (", lot->on_hand(), ")"));
    }
    if (count.counted() < lot->held()) {
      return absl::FailedPreconditionError(
          absl::StrCat("lot ", lot_name, " of ", Describe(*b), " has ", lot->held(),
                       " held for transfers, more than the ", count.counted(),
                       " counted; release or ship those holds first"));
    }
    lot->set_on_hand(count.counted());
    Record(MOVEMENT_TYPE_ADJUST, *b, *lot, diff, 0, op.reason(), "", result);
    adjusted += diff;
  }
  RETURN_IF_ERROR(CheckRoomFor(*b, adjusted, "the count"));
  auto& t = Totals(item->code);
  t.set_adjusted(t.adjusted() + adjusted);
  t.set_on_hand(t.on_hand() + adjusted);
  NormalizeBalance(b);
  return absl::OkStatus();
}

absl::Status Ledger::Hold(const HoldOp& op, MovementResult* result) {
  RETURN_IF_ERROR(CheckId("hold_id", op.hold_id(), true));
  RETURN_IF_ERROR(CheckId("reference", op.reference(), false));
  if (op.ttl_seconds() < 0 || op.ttl_seconds() > kMaxHoldTtlSeconds) {
    return absl::InvalidArgumentError(absl::StrCat("ttl_seconds must be between 0 and ",
                                                   kMaxHoldTtlSeconds, "; got ", op.ttl_seconds()));
  }
  if (LoadHold(op.hold_id()).ok()) {
    return absl::AlreadyExistsError(absl::StrCat("hold holds/", op.hold_id(), " already exists"));
  }
  ASSIGN_OR_RETURN(Warehouse * w, LoadWarehouse(op.warehouse()));
  RETURN_IF_ERROR(CheckMovesStock(*w));
  ASSIGN_OR_RETURN(const common::ItemInfo* item, LoadItem(op.item()));
  ASSIGN_OR_RETURN(Balance * b, LoadBalance(*w, item->code));
  std::vector<LotRef> picks;
  int64_t quantity = op.quantity();
  if (op.lots().empty()) {
    RETURN_IF_ERROR(CheckPositiveQuantity("quantity", quantity));
    ASSIGN_OR_RETURN(picks, PickLots(*b, "", quantity, "hold"));
  } else {
    RETURN_IF_ERROR(CheckLotLines(op.lots()));
    int64_t sum = 0;
    for (const auto& line : op.lots()) {
      RETURN_IF_ERROR(CheckPositiveQuantity("lot quantity", line.quantity()));
      ASSIGN_OR_RETURN(auto pick, PickLots(*b, line.lot(), line.quantity(), "hold"));
      if (Expired(b->lots(pick[0].index))) {
        return absl::FailedPreconditionError(
            absl::StrCat("lot ", line.lot(), " of ", Describe(*b), " has expired"));
      }
      picks.push_back(pick[0]);
      sum += line.quantity();
    }
    if (quantity != 0 && quantity != sum) {
      return absl::InvalidArgumentError(
          absl::StrCat("quantity ", quantity, " differs from the sum of lots ", sum));
    }
    quantity = sum;
  }
  if (op.keep_reserve_floor()) RETURN_IF_ERROR(CheckKeepsReserveFloor(*w, *b, quantity));
  v1::Hold& hold = holds_[op.hold_id()];
  const int64_t ttl = op.ttl_seconds() == 0 ? kDefaultHoldTtlSeconds : op.ttl_seconds();
  hold.set_name(absl::StrCat("holds/", op.hold_id()));
  hold.set_hold_id(op.hold_id());
  hold.set_warehouse(w->name());
  hold.set_item(item->code);
  hold.set_quantity(quantity);
  hold.set_reference(op.reference());
  hold.set_state(HOLD_STATE_ACTIVE);
  const int64_t expire = ctx_.now_micros + ttl * 1'000'000;
  *hold.mutable_expire_time() = ToTimestamp(expire);
  *hold.mutable_create_time() = ToTimestamp(ctx_.now_micros);
  *hold.mutable_update_time() = ToTimestamp(ctx_.now_micros);
  const std::string ref = op.reference().empty() ? op.hold_id() : op.reference();
  for (const auto& pick : picks) {
    LotBalance* lot = b->mutable_lots(pick.index);
    lot->set_held(lot->held() + pick.quantity);
    auto* hl = hold.add_lots();
    hl->set_lot(lot->lot());
    hl->set_expiry_date(lot->expiry_date());
    hl->set_quantity(pick.quantity);
    Record(MOVEMENT_TYPE_HOLD, *b, *lot, 0, pick.quantity, "", ref, result);
  }
  ctx_.txn->Put(Cf::kHolds, keys::HoldExpiry(expire, op.hold_id()), "");
  auto& t = Totals(item->code);
  t.set_held(t.held() + quantity);
  NormalizeBalance(b);
  *result->mutable_hold() = hold;
  return absl::OkStatus();
}

// What a plan counts as givable: unexpired stock not held, above the quota's floor. Holding
// from expired lots is refused above, so the hold takes all of `quantity` from that stock.
absl::Status Ledger::CheckKeepsReserveFloor(const Warehouse& w, const Balance& b,
                                            int64_t quantity) {
  ASSIGN_OR_RETURN(auto raw, ctx_.txn->Get(Cf::kQuotas, keys::WarehouseItem(w.code(), b.item())));
  if (!raw.has_value()) return absl::OkStatus();
  v1::Quota quota;
  if (!quota.ParseFromString(*raw)) return absl::DataLossError("stored quota is unreadable");
  const int64_t usable = common::UsableStock(b, ReserveDay(ctx_.now_micros));
  if (usable - quantity >= quota.min()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("holding ", quantity, " of ", Describe(b), " would leave ", usable - quantity,
                   " available, below its reserve floor of ", quota.min(), " (",
                   std::max<int64_t>(0, usable - quota.min()),
                   " can be given above it); only a CRITICAL transfer may draw a reserve down"));
}

namespace {
std::string HoldReference(const v1::Hold& h) {
  return h.reference().empty() ? h.hold_id() : h.reference();
}
absl::Status CheckHoldState(const v1::Hold& h, HoldState want, absl::string_view action) {
  if (h.state() == want) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("cannot ", action, " hold ", h.name(), ": it is ",
                   common::EnumWord(HoldState_Name(h.state()), "HOLD_STATE_")));
}
}  // namespace

absl::Status Ledger::Release(const ReleaseOp& op, MovementResult* result) {
  RETURN_IF_ERROR(CheckText("note", op.note(), kMaxTextLength, false));
  absl::StatusOr<v1::Hold*> found = LoadHold(op.hold_id());
  if (absl::IsNotFound(found.status()) && !op.warehouse_if_absent().empty()) {
    return ReleaseAbsent(op, result);
  }
  ASSIGN_OR_RETURN(v1::Hold * hold, std::move(found));
  RETURN_IF_ERROR(CheckHoldState(*hold, HOLD_STATE_ACTIVE, "release"));
  ASSIGN_OR_RETURN(Warehouse * w, LoadWarehouse(hold->warehouse()));
  ASSIGN_OR_RETURN(Balance * b, LoadBalance(*w, hold->item()));
  for (const auto& hl : hold->lots()) {
    LotBalance* lot = FindOrAddLot(b, hl.lot(), hl.expiry_date());
    lot->set_held(lot->held() - hl.quantity());
    Record(MOVEMENT_TYPE_RELEASE, *b, *lot, 0, -hl.quantity(), op.note(), HoldReference(*hold),
           result);
  }
  hold->set_state(HOLD_STATE_RELEASED);
  ctx_.txn->Delete(Cf::kHolds, keys::HoldExpiry(ToMicros(hold->expire_time()), hold->hold_id()));
  auto& t = Totals(hold->item());
  t.set_held(t.held() - hold->quantity());
  NormalizeBalance(b);
  *result->mutable_hold() = *hold;
  return absl::OkStatus();
}

// Records a hold id as released before any hold with it exists: a hold request with that id
// arriving later finds it and is refused (ALREADY_EXISTS), so a cancelled transfer's late hold
// never stands. Moves no stock.
absl::Status Ledger::ReleaseAbsent(const ReleaseOp& op, MovementResult* result) {
  RETURN_IF_ERROR(CheckId("hold_id", op.hold_id(), true));
  ASSIGN_OR_RETURN(Warehouse * w, LoadWarehouse(op.warehouse_if_absent()));
  v1::Hold& hold = holds_[op.hold_id()];
  hold.set_name(absl::StrCat("holds/", op.hold_id()));
  hold.set_hold_id(op.hold_id());
  hold.set_warehouse(w->name());
  hold.set_state(HOLD_STATE_RELEASED);
  *hold.mutable_create_time() = ToTimestamp(ctx_.now_micros);
  *hold.mutable_update_time() = ToTimestamp(ctx_.now_micros);
  *result->mutable_hold() = hold;
  return absl::OkStatus();
}

absl::StatusOr<Balance*> Ledger::LoadHoldBalance(const v1::Hold& hold) {
  ASSIGN_OR_RETURN(Warehouse * w, LoadWarehouse(hold.warehouse()));
  return LoadBalance(*w, hold.item());
}

absl::Status Ledger::ExpireHold(absl::string_view hold_id, MovementResult* result) {
  const bool loaded_before = holds_.contains(std::string(hold_id));
  ASSIGN_OR_RETURN(v1::Hold * hold, LoadHold(hold_id));
  if (!ActiveHoldExpired(*hold, ctx_.now_micros)) {
    return absl::OkStatus();  // shipped, released or renewed meanwhile: nothing to do
  }
  auto balance = LoadHoldBalance(*hold);
  if (!balance.ok()) {
    // Nothing has changed yet: forget the hold, so that Finish does not write it back and
    // the rest of the sweep goes on without it.
    if (!loaded_before) holds_.erase(std::string(hold_id));
    return balance.status();
  }
  Balance* b = *balance;
  for (const auto& hl : hold->lots()) {
    LotBalance* lot = FindOrAddLot(b, hl.lot(), hl.expiry_date());
    lot->set_held(lot->held() - hl.quantity());
    Record(MOVEMENT_TYPE_RELEASE, *b, *lot, 0, -hl.quantity(), "hold expired", HoldReference(*hold),
           result);
  }
  hold->set_state(HOLD_STATE_EXPIRED);
  ctx_.txn->Delete(Cf::kHolds, keys::HoldExpiry(ToMicros(hold->expire_time()), hold->hold_id()));
  auto& t = Totals(hold->item());
  t.set_held(t.held() - hold->quantity());
  NormalizeBalance(b);
  *result->mutable_hold() = *hold;
  return absl::OkStatus();
}

// A hold's lots are fixed when it is placed, and a hold may stand for days (a transfer's 72 h,
// up to 30 days): a lot whose last usable day has passed since must not leave all the same. The
// destination could never issue it, and a transfer would read received in full.
absl::Status Ledger::CheckHeldLotsUnexpired(const v1::Hold& hold) const {
  const int32_t today = ReserveDay(ctx_.now_micros);
  for (const auto& hl : hold.lots()) {
    if (!common::ExpiredOn(hl.expiry_date(), today)) continue;
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot ship hold ", hold.name(), ": its lot ", hl.lot(), " of ", hold.item(), " at ",
        hold.warehouse(), " expired on ", hl.expiry_date(),
        " (its last usable day, China Standard Time) after the hold was placed, and expired "
        "stock never leaves; release the hold and hold unexpired stock instead"));
  }
  return absl::OkStatus();
}

absl::Status Ledger::Ship(const ShipOp& op, MovementResult* result) {
  RETURN_IF_ERROR(CheckText("note", op.note(), kMaxTextLength, false));
  // Only the named warehouse may receive the shipment (ReceiveTransfer checks it), so a caller
  // scoped to some other warehouse of this instance cannot take in stock meant elsewhere.
  if (op.destination().empty()) {
    return absl::InvalidArgumentError(
        "destination is required: name the warehouse the shipment goes to "
        "(warehouses/{code}, on this or another level service)");
  }
  ASSIGN_OR_RETURN(std::string destination_code, common::WarehouseCodeFromName(op.destination()));
  ASSIGN_OR_RETURN(v1::Hold * hold, LoadHold(op.hold_id()));
  RETURN_IF_ERROR(CheckHoldState(*hold, HOLD_STATE_ACTIVE, "ship"));
  if (ActiveHoldExpired(*hold, ctx_.now_micros)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot ship hold ", hold->name(), ": it expired; place a new hold"));
  }
  RETURN_IF_ERROR(CheckHeldLotsUnexpired(*hold));
  if (ctx_.hosting->HostsCode(destination_code)) {
    RETURN_IF_ERROR(CheckLocalDestination(*hold, op.destination()));
  } else {
    RETURN_IF_ERROR(CheckOtherWarehouseRegion(destination_code, "destination"));
  }
  ASSIGN_OR_RETURN(Warehouse * w, LoadWarehouse(hold->warehouse()));
  RETURN_IF_ERROR(CheckMovesStock(*w));
  ASSIGN_OR_RETURN(Balance * b, LoadBalance(*w, hold->item()));
  for (const auto& hl : hold->lots()) {
    LotBalance* lot = FindOrAddLot(b, hl.lot(), hl.expiry_date());
    lot->set_on_hand(lot->on_hand() - hl.quantity());
    lot->set_held(lot->held() - hl.quantity());
    Record(MOVEMENT_TYPE_SHIP, *b, *lot, -hl.quantity(), -hl.quantity(), op.note(),
           HoldReference(*hold), result);
  }
  b->set_in_transit(b->in_transit() + hold->quantity());
  hold->set_state(HOLD_STATE_SHIPPED);
  hold->set_destination(op.destination());
  ctx_.txn->Delete(Cf::kHolds, keys::HoldExpiry(ToMicros(hold->expire_time()), hold->hold_id()));
  auto& t = Totals(hold->item());
  t.set_on_hand(t.on_hand() - hold->quantity());
  t.set_held(t.held() - hold->quantity());
  t.set_in_transit(t.in_transit() + hold->quantity());
  NormalizeBalance(b);
  *result->mutable_hold() = *hold;
  return absl::OkStatus();
}

absl::Status Ledger::ReceiveTransfer(const ReceiveTransferOp& op, MovementResult* result) {
  ASSIGN_OR_RETURN(Warehouse * w, LoadWarehouse(op.warehouse()));
  RETURN_IF_ERROR(CheckAcceptsStock(*w));
  ASSIGN_OR_RETURN(const common::ItemInfo* item, LoadItem(op.item()));
  RETURN_IF_ERROR(CheckId("hold_id", op.hold_id(), true));
  ASSIGN_OR_RETURN(std::string source_code, common::WarehouseCodeFromName(op.source_warehouse()));
  RETURN_IF_ERROR(CheckText("note", op.note(), kMaxTextLength, false));
  RETURN_IF_ERROR(CheckLotLines(op.lots()));
  const bool local_source = ctx_.hosting->HostsCode(source_code);
  // Shipped quantity per lot: from the local hold, or as the caller states it.
  std::vector<HoldLot> lines;
  v1::Hold* hold = nullptr;
  if (local_source) {
    ASSIGN_OR_RETURN(hold, LoadHold(op.hold_id()));
    RETURN_IF_ERROR(CheckHoldState(*hold, HOLD_STATE_SHIPPED, "receive"));
    if (hold->warehouse() != op.source_warehouse() || hold->item() != item->code) {
      return absl::InvalidArgumentError(absl::StrCat("hold ", hold->name(), " ships ", hold->item(),
                                                     " from ", hold->warehouse()));
    }
    // Holds shipped before a destination was required may have none.
    if (!hold->destination().empty() && hold->destination() != w->name()) {
      return absl::FailedPreconditionError(
          absl::StrCat("hold ", hold->name(), " was shipped to ", hold->destination()));
    }
    if (op.lots_size() != hold->lots_size()) {
      return absl::InvalidArgumentError(absl::StrCat("the receipt must list every lot of ",
                                                     hold->name(), " (", hold->lots_size(), ")"));
    }
    for (const auto& hl : hold->lots()) {
      auto it = std::find_if(op.lots().begin(), op.lots().end(),
                             [&](const HoldLot& l) { return l.lot() == hl.lot(); });
      if (it == op.lots().end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("lot ", hl.lot(), " of ", hold->name(), " is missing from the receipt"));
      }
      if (it->quantity() != 0 && it->quantity() != hl.quantity()) {
        return absl::InvalidArgumentError(
            absl::StrCat("lot ", hl.lot(), " shipped ", hl.quantity(), ", not ", it->quantity()));
      }
      HoldLot line = hl;
      line.set_received(it->received());
      lines.push_back(line);
    }
  } else {
    RETURN_IF_ERROR(CheckOtherWarehouseRegion(source_code, "source"));
    const std::string arrival = keys::Arrival(op.source_warehouse(), op.hold_id());
    ASSIGN_OR_RETURN(auto seen, ctx_.txn->Get(Cf::kHolds, arrival));
    if (seen.has_value() || arrivals_.contains(arrival)) {
      return absl::FailedPreconditionError(absl::StrCat("shipment holds/", op.hold_id(), " from ",
                                                        op.source_warehouse(),
                                                        " was already received"));
    }
    for (const auto& l : op.lots()) {
      RETURN_IF_ERROR(CheckPositiveQuantity("shipped quantity", l.quantity()));
      ASSIGN_OR_RETURN(std::string lot_name, ResolveLot(*item, l.lot(), l.expiry_date()));
      lines.push_back(l);
    }
    internal::ArrivalRecord record;
    record.set_source_warehouse(op.source_warehouse());
    record.set_hold_id(op.hold_id());
    record.set_request_id(ctx_.request_id);
    record.set_sequence(ctx_.sequence);
    arrivals_[arrival] = record.SerializeAsString();
  }
  ASSIGN_OR_RETURN(Balance * b, LoadBalance(*w, item->code));
  int64_t shipped = 0, received = 0;
  const std::string ref = hold != nullptr ? HoldReference(*hold) : op.hold_id();
  for (const auto& line : lines) {
    if (line.received() < 0 || line.received() > line.quantity()) {
      return absl::InvalidArgumentError(absl::StrCat("received of lot ", line.lot(),
                                                     " must be between 0 and the ", line.quantity(),
                                                     " shipped; got ", line.received()));
    }
    LotBalance* lot = FindOrAddLot(b, line.lot(), line.expiry_date());
    if (lot->expiry_date() != line.expiry_date()) {
      return absl::FailedPreconditionError(
          absl::StrCat("lot ", line.lot(), " at ", w->name(), ExpiryWords(lot->expiry_date()),
                       "; the shipment's lot", ExpiryWords(line.expiry_date())));
    }
    lot->set_on_hand(lot->on_hand() + line.received());
    Record(MOVEMENT_TYPE_RECEIVE_TRANSFER, *b, *lot, line.received(), 0, op.note(), ref, result);
    if (line.quantity() > line.received()) {
      Record(MOVEMENT_TYPE_TRANSIT_LOSS, *b, *lot, -(line.quantity() - line.received()), 0,
             absl::StrCat("lost in transit from ", op.source_warehouse()), ref, result);
    }
    shipped += line.quantity();
    received += line.received();
  }
  RETURN_IF_ERROR(CheckRoomFor(*b, received, "receiving the shipment"));
  auto& t = Totals(item->code);
  t.set_on_hand(t.on_hand() + received);
  t.set_lost(t.lost() + (shipped - received));
  if (hold != nullptr) {
    ASSIGN_OR_RETURN(Warehouse * source, LoadWarehouse(hold->warehouse()));
    ASSIGN_OR_RETURN(Balance * sb, LoadBalance(*source, hold->item()));
    sb->set_in_transit(sb->in_transit() - shipped);
    hold->set_state(HOLD_STATE_DELIVERED);
    hold->set_destination(w->name());
    for (auto& hl : *hold->mutable_lots()) {
      for (const auto& line : lines) {
        if (line.lot() == hl.lot()) hl.set_received(line.received());
      }
    }
    t.set_in_transit(t.in_transit() - shipped);
    NormalizeBalance(sb);
    *result->mutable_hold() = *hold;
  } else {
    t.set_transferred_in(t.transferred_in() + shipped);
  }
  NormalizeBalance(b);
  return absl::OkStatus();
}

absl::Status Ledger::ConfirmDelivery(const ConfirmDeliveryOp& op, MovementResult* result) {
  ASSIGN_OR_RETURN(v1::Hold * hold, LoadHold(op.hold_id()));
  RETURN_IF_ERROR(CheckHoldState(*hold, HOLD_STATE_SHIPPED, "confirm delivery of"));
  // Stock shipped to a warehouse of this instance arrives by ReceiveTransfer, which puts it on
  // that warehouse's shelves; confirming it here would close the hold with the stock nowhere.
  if (absl::StatusOr<std::string> to = common::WarehouseCodeFromName(hold->destination());
      to.ok() && ctx_.hosting->HostsCode(*to)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "hold ", hold->name(), " was shipped to ", hold->destination(),
        ", a warehouse of this level service: receive it there (ReceiveTransfer) instead"));
  }
  for (const auto& l : op.lots()) {
    bool known = false;
    for (auto& hl : *hold->mutable_lots()) {
      if (hl.lot() != l.lot()) continue;
      if (l.received() < 0 || l.received() > hl.quantity()) {
        return absl::InvalidArgumentError(
            absl::StrCat("received of lot ", l.lot(), " must be between 0 and ", hl.quantity()));
      }
      hl.set_received(l.received());
      known = true;
    }
    if (!known) {
      return absl::InvalidArgumentError(
          absl::StrCat("lot ", l.lot(), " is not part of ", hold->name()));
    }
  }
  ASSIGN_OR_RETURN(Warehouse * w, LoadWarehouse(hold->warehouse()));
  ASSIGN_OR_RETURN(Balance * b, LoadBalance(*w, hold->item()));
  b->set_in_transit(b->in_transit() - hold->quantity());
  hold->set_state(HOLD_STATE_DELIVERED);
  for (const auto& hl : hold->lots()) {
    LotBalance* lot = FindOrAddLot(b, hl.lot(), hl.expiry_date());
    Record(MOVEMENT_TYPE_DELIVERED, *b, *lot, 0, 0,
           absl::StrCat("delivered to ", hold->destination()), HoldReference(*hold), result);
  }
  auto& t = Totals(hold->item());
  t.set_in_transit(t.in_transit() - hold->quantity());
  t.set_delivered_out(t.delivered_out() + hold->quantity());
  NormalizeBalance(b);
  *result->mutable_hold() = *hold;
  return absl::OkStatus();
}

}  // namespace stockpile::level
