#include "services/catalogue/allocation/saga.h"

#include <algorithm>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "services/catalogue/allocation/plan_request.h"
#include "services/catalogue/stock_streamed.h"
#include "services/common/enum_words.h"
#include "services/common/expiring_lots.h"
#include "services/common/status_macros.h"
#include "services/common/transfer_ids.h"
#include "services/common/validation.h"

namespace stockpile::catalogue::allocation {

using namespace stockpile::v1;  // NOLINT: the saga speaks the API's types throughout

namespace {

google::protobuf::Timestamp ToTimestamp(int64_t micros) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(micros / 1'000'000);
  ts.set_nanos(static_cast<int32_t>(micros % 1'000'000) * 1000);
  return ts;
}

int64_t ToMicros(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1'000'000 + ts.nanos() / 1000;
}

const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

// A message without its request_id, serialized deterministically.
std::string Content(const google::protobuf::Message& req) {
  std::unique_ptr<google::protobuf::Message> copy(req.New());
  copy->CopyFrom(req);
  if (const auto* f = copy->GetDescriptor()->FindFieldByName("request_id")) {
    copy->GetReflection()->ClearField(copy.get(), f);
  }
  std::string bytes;
  google::protobuf::io::StringOutputStream out(&bytes);
  google::protobuf::io::CodedOutputStream coded(&out);
  coded.SetSerializationDeterministic(true);
  copy->SerializeToCodedStream(&coded);
  coded.Trim();
  return bytes;
}

// A request's full type name, then its content. By content alone an approval, a cancel without
// a reason, and a ship or a receive of leg 0 without a note are the same bytes (name and actor),
// so one request_id reused across them was taken for a retry of the first: an approval's id
// reused for a cancel cancelled, where other content is INVALID_ARGUMENT.
std::string Fingerprint(const google::protobuf::Message& req) {
  return absl::StrCat(req.GetDescriptor()->full_name(), "\n", Content(req));
}

// Records stored before the fingerprint named the type hold the content alone. A retry across
// the upgrade (in a rolling one, a new leader answers a request its predecessor stored) must
// still be answered as a retry, not refused as other content, so that form still matches. For
// those older records alone, the same id reused for another kind of step goes undetected, as it
// did when they were written; every record stored from now on names its type.
bool SameRequest(const std::string& stored_fingerprint, const google::protobuf::Message& req) {
  return stored_fingerprint == Fingerprint(req) || stored_fingerprint == Content(req);
}

absl::StatusOr<std::string> IdFromName(absl::string_view name) {
  if (!absl::StartsWith(name, "transfers/") || name.size() == strlen("transfers/")) {
    return absl::InvalidArgumentError(
        absl::StrCat("name must be \"transfers/{id}\"; got \"", name, "\""));
  }
  return std::string(name.substr(strlen("transfers/")));
}

// The line of `item` gets `planned` of the `requested` it was to get from a leg (or a re-plan).
// Returns the shortfall.
int64_t AddShortLine(Transfer& t, const std::string& item, int64_t requested, int64_t planned = 0) {
  LineOutcome* shortline = t.add_short_lines();
  shortline->set_item(item);
  shortline->set_requested(requested);
  shortline->set_planned(planned);
  shortline->set_shortfall(requested - planned);
  return shortline->shortfall();
}

bool Active(const TransferLeg& leg) {
  return leg.state() != LEG_STATE_REPLACED && leg.state() != LEG_STATE_RELEASED;
}

// How many refusals in a row led to this leg (a re-planned leg stored before replan_round
// existed counts as the first).
int ReplanRound(const TransferLeg& leg) {
  return std::max(leg.replan_round(), leg.replanned() ? 1 : 0);
}

// An enum value as a person reads it in an error: TRANSFER_STATE_PENDING_APPROVAL -> "pending
// approval" (stockctl's tables show the same word, "pending_approval").
std::string Spoken(const std::string& enum_name, absl::string_view prefix) {
  std::string spoken = common::EnumWord(enum_name, prefix);
  std::replace(spoken.begin(), spoken.end(), '_', ' ');
  return spoken;
}
std::string Spoken(TransferState s) { return Spoken(TransferState_Name(s), "TRANSFER_STATE_"); }
std::string Spoken(LegState s) { return Spoken(LegState_Name(s), "LEG_STATE_"); }
std::string Spoken(HoldState s) { return Spoken(HoldState_Name(s), "HOLD_STATE_"); }
std::string Spoken(WarehouseStatus s) {
  return Spoken(WarehouseStatus_Name(s), "WAREHOUSE_STATUS_");
}

// Shipped from its source: on the road or arrived.
bool Departed(LegState s) {
  return s == LEG_STATE_SHIPPED || s == LEG_STATE_RECEIVED || s == LEG_STATE_DELIVERED;
}

bool AnyShipped(const Transfer& t) {
  for (const auto& leg : t.legs()) {
    if (Departed(leg.state())) return true;
  }
  return false;
}

// What the transfer's own legs take at their sources, for a re-plan to subtract from the stock
// snapshot: it does not show legs still to be held (no hold stands yet), nor perhaps held ones
// (the catalogue sees a hold a moment after it is placed; whether it has seen this one cannot be
// told here). Counting a hold it has seen twice can only make a re-plan take less from that
// source; leaving legs out took the transfer's own stock twice and left sources below their floor.
StockTaken TakenByLegs(const Transfer& t) {
  StockTaken taken;
  for (const TransferLeg& leg : t.legs()) {
    if (leg.state() != LEG_STATE_PLANNED && leg.state() != LEG_STATE_HELD) continue;
    auto code = common::WarehouseCodeFromName(leg.plan().source_warehouse());
    if (!code.ok()) continue;  // planned from a code, so cannot happen
    for (const HoldLot& lot : leg.plan().lots()) {
      taken.Add(leg.plan().item(), *code, lot.lot(), lot.quantity());
    }
  }
  return taken;
}

// The legs that have left their source, as "leg 1" or "legs 0, 2".
std::string ShippedLegs(const Transfer& t) {
  std::vector<std::string> legs;
  for (const auto& leg : t.legs()) {
    if (leg.state() == LEG_STATE_SHIPPED || leg.state() == LEG_STATE_RECEIVED ||
        leg.state() == LEG_STATE_DELIVERED) {
      legs.push_back(absl::StrCat(leg.index()));
    }
  }
  return absl::StrCat(legs.size() == 1 ? "leg " : "legs ", absl::StrJoin(legs, ", "));
}

// An acknowledged hold its source no longer knows: the source's database went back.
constexpr char kHoldUnknownAtSource[] =
    "is no longer known there (its level service lost it, as after a restore from a backup "
    "taken before the hold)";

std::string Describe(const PlanLeg& p) {
  return absl::StrCat(p.quantity(), " ", p.item(), " at ", p.source_warehouse());
}

// The lots of `p` whose expiry date (the last usable day) is before `today` (China Standard
// Time), as "lot B (last usable day 2026-12-05)"; empty when none has expired. The level never
// holds nor ships such a lot.
std::string ExpiredLots(const PlanLeg& p, int32_t today) {
  std::vector<std::string> expired;
  for (const HoldLot& l : p.lots()) {
    if (!common::ExpiredOn(l.expiry_date(), today)) continue;
    expired.push_back(absl::StrCat("lot ", l.lot(), " (last usable day ", l.expiry_date(), ")"));
  }
  return absl::StrJoin(expired, ", ");
}

// (lot, quantity) of each lot, in one order, to compare a hold's lots with a leg's.
std::vector<std::pair<std::string, int64_t>> LotQuantities(
    const google::protobuf::RepeatedPtrField<HoldLot>& lots) {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const HoldLot& l : lots) out.emplace_back(l.lot(), l.quantity());
  std::sort(out.begin(), out.end());
  return out;
}

// How `hold` differs from what leg `plan` of transfer `transfer_id` holds; empty when it does
// not. A released id (closed by a cancel's release) carries no item: only its place is compared.
std::string HoldDiffers(const Hold& hold, const PlanLeg& plan, absl::string_view transfer_id) {
  std::vector<std::string> differs;
  if (hold.warehouse() != plan.source_warehouse()) {
    differs.push_back(absl::StrCat("at ", hold.warehouse()));
  }
  if (hold.state() == HOLD_STATE_RELEASED && hold.item().empty()) {
    return absl::StrJoin(differs, ", ");
  }
  if (hold.item() != plan.item() || hold.quantity() != plan.quantity()) {
    differs.push_back(absl::StrCat("holding ", hold.quantity(), " ", hold.item()));
  }
  if (!plan.lots().empty() && LotQuantities(hold.lots()) != LotQuantities(plan.lots())) {
    differs.push_back("other lots");
  }
  if (hold.reference() != transfer_id) {
    differs.push_back(absl::StrCat("reference \"", hold.reference().substr(0, 64), "\""));
  }
  return absl::StrJoin(differs, ", ");
}

absl::Status CheckActor(absl::string_view actor) {
  return common::CheckText("actor", actor, 200, true);
}

absl::StatusOr<int> LegIndex(const Transfer& t, int leg) {
  if (leg < 0 || leg >= t.legs_size()) {
    return absl::InvalidArgumentError(absl::StrCat("transfer ", t.name(), " has no leg ", leg,
                                                   " (legs 0..", t.legs_size() - 1, ")"));
  }
  return leg;
}

// The audit line of a leg's release: released, nothing to release, or no hold yet (its id is
// now closed at the source, so a hold request arriving late is refused).
std::string ReleaseNote(int leg, absl::string_view source,
                        const absl::StatusOr<stockpile::v1::Hold>& released) {
  if (!released.ok()) {
    return absl::StrCat("leg ", leg, ": nothing to release at ", source, " (",
                        released.status().message(), ")");
  }
  if (released->quantity() == 0) {
    return absl::StrCat("leg ", leg, ": no hold at ", source,
                        "; its id is closed there, so a late hold request is refused");
  }
  return absl::StrCat("leg ", leg, ": hold at ", source, " released");
}

int64_t SilentMicros(const SourceContact& s, int64_t now_micros, int64_t started_micros) {
  return now_micros - std::max({s.last_contact_micros, s.stream_start_micros, started_micros});
}

// Every region `scope` hosts is hosted by one of `others` too.
bool CoveredBy(const SourceScope& scope, const std::vector<SourceScope>& others) {
  return std::all_of(scope.prefixes.begin(), scope.prefixes.end(), [&](const std::string& p) {
    return std::any_of(others.begin(), others.end(), [&](const SourceScope& o) {
      return o.level == scope.level &&
             std::any_of(o.prefixes.begin(), o.prefixes.end(),
                         [&](const std::string& q) { return absl::StartsWith(p, q); });
    });
  });
}

}  // namespace

UnreachableSources FindUnreachable(const std::vector<SourceContact>& sources, int64_t now_micros,
                                   int64_t started_micros, absl::Duration after) {
  const int64_t after_micros = absl::ToInt64Microseconds(after);
  auto answering = [&](const SourceContact& s) {
    return !s.gone && (s.connected || SilentMicros(s, now_micros, started_micros) < after_micros);
  };
  auto complete = [](const SourceContact& s) {
    return HoldsAllStock(s.applied_sequence, s.complete_at_sequence);
  };
  auto reachable = [&](const SourceContact& s) { return answering(s) && complete(s); };
  UnreachableSources out;
  for (const SourceContact& s : sources) {
    if (reachable(s)) out.reach.reachable.push_back(s.scope);
  }
  for (const SourceContact& s : sources) {
    if (reachable(s) || CoveredBy(s.scope, out.reach.reachable)) continue;
    std::string why;
    if (s.gone) {
      why = "no longer registered";
    } else if (!answering(s)) {
      why = absl::StrCat("not answering for ",
                         SilentMicros(s, now_micros, started_micros) / 1'000'000, " s");
    } else {
      why = absl::StrCat("its stock is still being streamed (change ", s.applied_sequence, " of ",
                         s.complete_at_sequence, ")");
    }
    out.described.push_back(absl::StrCat(s.id, " (", common::LevelName(s.scope.level), " ",
                                         absl::StrJoin(s.scope.prefixes, ","), "): ", why));
    out.reach.unreachable.push_back(s.scope);
  }
  return out;
}

bool Transient(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded;
}

TransferCoordinator::TransferCoordinator(TransferStore* store, LevelGateway* gateway,
                                         const Planner* planner, const StockSnapshot* stock,
                                         const common::Clock* clock, CoordinatorOptions options)
    : store_(store),
      gateway_(gateway),
      planner_(planner),
      stock_(stock),
      clock_(clock),
      options_(std::move(options)),
      started_micros_(clock->NowMicros()) {}

// ---- helpers ---------------------------------------------------------------------------------

std::string TransferCoordinator::LevelActor(const Transfer& t, absl::string_view step_actor) const {
  if (!t.level_calls_name_step_actor() || step_actor.empty() ||
      step_actor.size() > common::kMaxIdLength) {
    return options_.level_actor;
  }
  return std::string(step_actor);
}

std::string TransferCoordinator::HoldId(const Transfer& t, int leg) {
  return common::TransferLegHoldId(t.id(), leg);  // a form the level services reserve to us
}

std::string TransferCoordinator::RequestId(const Transfer& t, int leg, absl::string_view step) {
  return absl::StrCat(t.id(), ".L", leg, ".", step);
}

std::shared_ptr<absl::Mutex> TransferCoordinator::LockFor(absl::string_view id) {
  absl::MutexLock lock(&locks_mu_);
  auto& slot = locks_[id];
  if (slot == nullptr) slot = std::make_shared<absl::Mutex>();
  return slot;
}

template <typename F>
auto TransferCoordinator::WithRetry(F call) -> decltype(call()) {
  const absl::Time deadline = absl::Now() + options_.retry_deadline;
  absl::Duration backoff = options_.initial_backoff;
  while (true) {
    auto result = call();
    if (!Transient(StatusOf(result)) || absl::Now() + backoff > deadline) return result;
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

absl::StatusOr<bool> TransferCoordinator::Replay(absl::string_view request_id,
                                                 const google::protobuf::Message& req) {
  RETURN_IF_ERROR(common::CheckId("request_id", request_id, true));
  ASSIGN_OR_RETURN(auto record, store_->GetRequest(request_id));
  if (!record.has_value()) return false;
  if (!SameRequest(record->fingerprint, req)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request_id ", request_id, " was already used for a different request; use a new one"));
  }
  return true;
}

RequestRecord TransferCoordinator::Record(absl::string_view request_id,
                                          const google::protobuf::Message& req,
                                          const Transfer& t) const {
  return RequestRecord{std::string(request_id), Fingerprint(req), t.id()};
}

absl::StatusOr<Transfer> TransferCoordinator::Load(absl::string_view name) const {
  ASSIGN_OR_RETURN(std::string id, IdFromName(name));
  ASSIGN_OR_RETURN(auto t, store_->Get(id));
  if (!t.has_value())
    return absl::NotFoundError(absl::StrCat("transfer ", name, " does not exist"));
  return *t;
}

// A resume round that finds nothing new writes nothing: the transfer keeps its update time,
// which the TransferStuck alert measures (saved anyway, a READY transfer looked a resume
// interval old for ever), and etcd gets one write per change.
absl::Status TransferCoordinator::Save(Transfer& t, const RequestRecord* request) {
  if (request == nullptr) {
    ASSIGN_OR_RETURN(bool changed, ChangedSinceStored(t));
    if (!changed) return absl::OkStatus();
  }
  TransferJournal* journal = journal_.load();
  if (journal != nullptr) return Share(*journal, t, request);
  *t.mutable_update_time() = ToTimestamp(Now());
  return store_->Save(t, request);
}

// Shared: the etcd write comes first so a deposed leader stops here, before its next level
// call.
absl::Status TransferCoordinator::Share(TransferJournal& journal, Transfer& t,
                                        const RequestRecord* request) {
  *t.mutable_update_time() = ToTimestamp(Now());
  ASSIGN_OR_RETURN(int64_t revision, journal.Publish(t, request));
  return store_->SaveIfNewer(t, request, revision).status();
}

absl::StatusOr<bool> TransferCoordinator::ChangedSinceStored(const Transfer& t) const {
  ASSIGN_OR_RETURN(auto stored, store_->Get(t.id()));
  if (!stored.has_value()) return true;
  Transfer now = t;
  now.clear_update_time();
  stored->clear_update_time();
  return Content(now) != Content(*stored);
}

void TransferCoordinator::Audit(Transfer& t, absl::string_view actor, std::string what) {
  AuditStep* step = t.add_audit();
  *step->mutable_time() = ToTimestamp(Now());
  step->set_actor(std::string(actor));
  step->set_what(std::move(what));
}

void TransferCoordinator::AuditOnce(Transfer& t, std::string what) {
  if (!t.audit().empty() && t.audit().rbegin()->what() == what) return;
  Audit(t, "coordinator", std::move(what));
}

absl::StatusOr<Transfer> TransferCoordinator::Finish(Transfer& t, absl::Status s) {
  if (!s.ok()) return s;
  return t;
}

void TransferCoordinator::UpdateState(Transfer& t) {
  if (t.state() != TRANSFER_STATE_READY && t.state() != TRANSFER_STATE_IN_TRANSIT) return;
  int active = 0, arrived = 0;
  for (const auto& leg : t.legs()) {
    if (!Active(leg)) continue;
    ++active;
    if (leg.state() == LEG_STATE_RECEIVED || leg.state() == LEG_STATE_DELIVERED) ++arrived;
  }
  if (active > 0 && arrived == active) {
    t.set_state(TRANSFER_STATE_RECEIVED);
    Audit(t, "coordinator", "every leg received");
  } else if (AnyShipped(t) && t.state() == TRANSFER_STATE_READY) {
    t.set_state(TRANSFER_STATE_IN_TRANSIT);
  }
}

// ---- reads -----------------------------------------------------------------------------------

absl::StatusOr<Transfer> TransferCoordinator::Get(absl::string_view name) const {
  return Load(name);
}

absl::StatusOr<ListTransfersResponse> TransferCoordinator::List(
    const ListTransfersRequest& req) const {
  // A mistyped region must not read as "no transfers under way there".
  RETURN_IF_ERROR(common::CheckRegionPrefix(req.region_prefix()));
  RETURN_IF_ERROR(planner_->reference().CheckRegionFilter(req.region_prefix()));
  return store_->List(req);
}

absl::StatusOr<AllocationPlan> TransferCoordinator::PlanAllocation(
    const PlanAllocationRequest& req) {
  ASSIGN_OR_RETURN(AllocationPlan plan, Plan(req));
  RETURN_IF_ERROR(CheckExcludedSources(req));
  if (!req.destination_warehouse().empty()) {
    RETURN_IF_ERROR(CheckDestination(req.destination_warehouse(),
                                     "no transfer could be received there; check the code"));
  }
  return plan;
}

absl::StatusOr<AllocationPlan> TransferCoordinator::Plan(const PlanAllocationRequest& req) const {
  return PlanWithout(req, StockTaken(), "");
}

absl::StatusOr<AllocationPlan> TransferCoordinator::PlanWithout(
    const PlanAllocationRequest& req, const StockTaken& taken, absl::string_view only_under) const {
  UnreachableSources unreachable;
  if (options_.sources) {
    unreachable =
        FindUnreachable(options_.sources(), Now(), started_micros_, options_.unreachable_after);
  }
  unreachable.reach.only_under = std::string(only_under);
  ASSIGN_OR_RETURN(AllocationPlan plan, planner_->Plan(req, *stock_, Planner::ReserveDay(Now()),
                                                       unreachable.reach, taken));
  for (auto& line : unreachable.described) plan.add_unreachable_sources(std::move(line));
  *plan.mutable_plan_time() = ToTimestamp(Now());
  return plan;
}

// ---- create / approve ------------------------------------------------------------------------

// Planned, and the destination asked about, before create_mu_ is taken: that level call may wait
// out an unreachable level service (retry_deadline) and must not hold up every other create
// meanwhile. A retry of a stored create is answered without either.
absl::StatusOr<Transfer> TransferCoordinator::Create(const CreateTransferRequest& req) {
  ASSIGN_OR_RETURN(bool replay, Replay(req.request_id(), req));
  if (replay) return StoredCreate(req.request_id());
  ASSIGN_OR_RETURN(AllocationPlan plan, PlanNewTransfer(req));
  absl::MutexLock lock(&create_mu_);
  // The same request, retried while this one planned, may have been stored meanwhile.
  ASSIGN_OR_RETURN(replay, Replay(req.request_id(), req));
  if (replay) return StoredCreate(req.request_id());
  ASSIGN_OR_RETURN(std::string id, store_->NewId(Now()));
  Transfer t = NewTransfer(id, req, std::move(plan));
  if (journal_.load() != nullptr && t.ByteSizeLong() > options_.max_shared_transfer_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("a transfer of ", t.legs_size(),
                     " legs is too large to share between catalogue replicas (", t.ByteSizeLong(),
                     " bytes, limit ", options_.max_shared_transfer_bytes, "); split the request"));
  }
  const RequestRecord record = Record(req.request_id(), req, t);
  RETURN_IF_ERROR(Save(t, &record));
  return t;
}

absl::StatusOr<Transfer> TransferCoordinator::StoredCreate(absl::string_view request_id) {
  ASSIGN_OR_RETURN(auto record, store_->GetRequest(request_id));
  const std::string id = record.has_value() ? record->transfer_id : std::string();
  return Load(absl::StrCat("transfers/", id));
}

absl::StatusOr<AllocationPlan> TransferCoordinator::PlanNewTransfer(
    const CreateTransferRequest& req) {
  RETURN_IF_ERROR(CheckActor(req.actor()));
  RETURN_IF_ERROR(common::CheckText("note", req.note(), 1000, false));
  if (req.plan().destination_warehouse().empty()) {
    return absl::InvalidArgumentError("plan.destination_warehouse is required for a transfer");
  }
  ASSIGN_OR_RETURN(AllocationPlan plan, Plan(req.plan()));
  RETURN_IF_ERROR(CheckExcludedSources(req.plan()));
  RETURN_IF_ERROR(CheckDestination(plan.destination_warehouse(),
                                   "a transfer there could not be received; nothing was created"));
  if (plan.legs().empty()) {
    std::string left_out;
    if (!plan.unreachable_sources().empty()) {
      left_out = absl::StrCat(
          " (not planned from: ", absl::StrJoin(plan.unreachable_sources(), "; "), ")");
    }
    return absl::FailedPreconditionError(
        absl::StrCat("no source can give any of the requested items", left_out,
                     "; see PlanAllocation for reserve options"));
  }
  return plan;
}

Transfer TransferCoordinator::NewTransfer(const std::string& id, const CreateTransferRequest& req,
                                          AllocationPlan plan) {
  Transfer t;
  t.set_id(id);
  t.set_name(absl::StrCat("transfers/", id));
  t.set_destination_warehouse(plan.destination_warehouse());
  t.set_destination_region(plan.destination_region());
  t.set_priority(plan.priority());
  t.set_state(TRANSFER_STATE_PENDING_APPROVAL);
  t.set_created_by(req.actor());
  t.set_note(req.note());
  t.set_level_calls_name_step_actor(true);
  t.set_holds_keep_reserve_floor(true);
  *t.mutable_create_time() = ToTimestamp(Now());
  for (const PlanLeg& p : plan.legs()) {
    TransferLeg* leg = t.add_legs();
    leg->set_index(t.legs_size() - 1);
    *leg->mutable_plan() = p;
    leg->set_state(LEG_STATE_PLANNED);
    leg->set_hold_id(HoldId(t, leg->index()));
    leg->set_hold_ttl_seconds(options_.hold_ttl_seconds);
  }
  int64_t shortfall = 0;
  for (const auto& o : plan.outcomes()) shortfall += o.shortfall();
  *t.mutable_plan() = std::move(plan);
  Audit(t, req.actor(),
        absl::StrCat("created with ", t.legs_size(), " legs",
                     shortfall > 0 ? absl::StrCat(", short by ", shortfall) : ""));
  return t;
}

// Asked of the destination's own level service, which is where a receipt would be refused (the
// catalogue's copy of its warehouses may lag one just created or closed). A transfer shipped to a
// warehouse that takes no stock could neither be received nor cancelled: it stayed in transit.
// Only a definite answer refuses. A destination whose level service does not answer is where
// relief is needed most (the region that was hit): asked once, not retried, and not waited for,
// so dispatch goes on; its receipt is recorded when that level is back.
absl::Status TransferCoordinator::CheckDestination(absl::string_view destination,
                                                   absl::string_view consequence) {
  auto w = gateway_->GetWarehouse(destination);
  if (w.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(absl::StrCat("destination ", destination, " does not exist (",
                                            w.status().message(), "): ", consequence));
  }
  if (!w.ok()) return absl::OkStatus();
  // The level receives stock only at an ACTIVE warehouse (suspended ones take none either).
  if (w->status() != WAREHOUSE_STATUS_ACTIVE) {
    return absl::FailedPreconditionError(absl::StrCat("destination ", destination, " is ",
                                                      Spoken(w->status()),
                                                      " and takes no stock: ", consequence));
  }
  return absl::OkStatus();
}

absl::Status TransferCoordinator::CheckExcludedSources(const PlanAllocationRequest& req) const {
  if (!options_.known_warehouse) return absl::OkStatus();
  for (const auto& name : req.exclude_sources()) {
    ASSIGN_OR_RETURN(std::string code, common::WarehouseCodeFromName(name));
    if (!options_.known_warehouse(code)) {
      return absl::NotFoundError(absl::StrCat(
          "excluded source ", name,
          " is not a warehouse the catalogue knows, so it would exclude nothing; check the code"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Transfer> TransferCoordinator::Approve(const ApproveTransferRequest& req,
                                                      absl::string_view approver_scope) {
  ASSIGN_OR_RETURN(std::string id, IdFromName(req.name()));
  auto mu = LockFor(id);
  absl::MutexLock lock(mu.get());
  ASSIGN_OR_RETURN(bool replay, Replay(req.request_id(), req));
  RETURN_IF_ERROR(CheckActor(req.actor()));
  ASSIGN_OR_RETURN(Transfer t, Load(req.name()));
  if (replay) {
    if (t.state() == TRANSFER_STATE_HOLDING) return Finish(t, DriveHolds(t));
    return t;
  }
  if (t.state() != TRANSFER_STATE_PENDING_APPROVAL) {
    return absl::FailedPreconditionError(
        absl::StrCat("transfer ", t.name(), " is ", Spoken(t.state()),
                     "; only a transfer pending approval can be approved"));
  }
  if (options_.require_second_approver && req.actor() == t.created_by()) {
    return absl::PermissionDeniedError(
        absl::StrCat("transfer ", t.name(), " was created by ", t.created_by(),
                     "; another dispatcher must approve it (this catalogue requires a second "
                     "approver)"));
  }
  // Closed since it was created: holds would only tie up stock that cannot go there.
  RETURN_IF_ERROR(CheckDestination(
      t.destination_warehouse(),
      absl::StrCat("nothing was held for ", t.name(), " (reopen it, or cancel the transfer)")));
  t.set_state(TRANSFER_STATE_HOLDING);
  t.set_approved_by(req.actor());
  // Saved with the transfer (and shared with the other replicas) before any hold: a re-plan, by
  // this leader or the next, must not commit stock outside what this approver may commit.
  t.set_approver_scope(std::string(approver_scope));
  Audit(t, req.actor(), "approved");  // exactly: transfer_metrics reads this step
  const RequestRecord record = Record(req.request_id(), req, t);
  RETURN_IF_ERROR(Save(t, &record));
  return Finish(t, DriveHolds(t));
}

absl::Status TransferCoordinator::DriveHolds(Transfer& t) {
  for (int i = 0; i < t.legs_size(); ++i) {  // re-planning appends legs: size is re-read
    if (t.state() != TRANSFER_STATE_HOLDING) return absl::OkStatus();
    if (t.legs(i).state() != LEG_STATE_PLANNED) continue;
    ASSIGN_OR_RETURN(bool go_on, PlaceHold(t, i));
    if (!go_on) return absl::OkStatus();
  }
  if (t.state() != TRANSFER_STATE_HOLDING) return absl::OkStatus();
  t.set_state(TRANSFER_STATE_READY);
  Audit(t, "coordinator", "every hold stands: ready to ship");
  UpdateState(t);  // holding again after a re-plan at shipment: legs may be on their way
  return Save(t);
}

absl::StatusOr<bool> TransferCoordinator::PlaceHold(Transfer& t, int i) {
  const TransferLeg& leg = t.legs(i);
  HoldRequest req;
  req.set_request_id(RequestId(t, i, "hold"));
  req.set_actor(LevelActor(t, t.approved_by()));
  HoldOp* op = req.mutable_op();
  op->set_warehouse(leg.plan().source_warehouse());
  op->set_item(leg.plan().item());
  op->set_quantity(leg.plan().quantity());
  op->set_hold_id(leg.hold_id());
  op->set_reference(t.id());
  op->set_ttl_seconds(leg.hold_ttl_seconds());
  // The plan kept the floor from what the catalogue saw; the level keeps it against what it
  // has now (another transfer's holds, stock issued since). Refused, the leg is re-planned.
  op->set_keep_reserve_floor(t.holds_keep_reserve_floor() && t.priority() != PRIORITY_CRITICAL);
  for (const auto& l : leg.plan().lots()) {
    HoldLot* hl = op->add_lots();
    hl->set_lot(l.lot());
    hl->set_expiry_date(l.expiry_date());
    hl->set_quantity(l.quantity());
  }
  auto hold = WithRetry([&] { return gateway_->Hold(req); });
  if (!hold.ok() && hold.status().code() == absl::StatusCode::kAlreadyExists) {
    hold = ExistingHold(t, i);
  }
  if (hold.ok()) {
    TransferLeg* m = t.mutable_legs(i);
    m->set_state(LEG_STATE_HELD);
    *m->mutable_hold_expire_time() = hold->expire_time();
    Audit(t, "coordinator", absl::StrCat("leg ", i, ": held ", Describe(leg.plan())));
    RETURN_IF_ERROR(Save(t));
    return true;
  }
  const absl::Status& s = hold.status();
  if (Transient(s)) {
    AuditOnce(t, absl::StrCat("leg ", i, ": source ", leg.plan().source_warehouse(),
                              " unreachable (", s.message(), "); waiting, will retry"));
    RETURN_IF_ERROR(Save(t));
    return false;
  }
  const bool stock_changed =
      s.code() == absl::StatusCode::kFailedPrecondition || s.code() == absl::StatusCode::kNotFound;
  if (stock_changed && ReplanRound(leg) < options_.replan_rounds) {
    // A lot planned before a China midnight may have expired since: the source is still asked
    // for its other lots.
    const bool lot_expired = !ExpiredLots(leg.plan(), Planner::ReserveDay(Now())).empty();
    RETURN_IF_ERROR(
        Replan(t, i, absl::StrCat("hold of ", Describe(leg.plan()), " refused (", s.message(), ")"),
               lot_expired, ReplanRound(leg) + 1));
    return true;
  }
  // Refused again after the last re-plan: the line falls short by the leg. So it does when legs
  // have shipped and the transfer goes on without this one.
  if (stock_changed || AnyShipped(t)) AddShortLine(t, leg.plan().item(), leg.plan().quantity());
  RETURN_IF_ERROR(
      FallShort(t, i,
                absl::StrCat(stock_changed ? absl::StrCat(leg.plan().item(), " fell short: ") : "",
                             "hold of ", Describe(leg.plan()), " refused: ", s.message())));
  return t.state() == TRANSFER_STATE_HOLDING;  // legs shipped: the others' holds still go on
}

// The leg's hold id is taken at its source's level service. That is the leg's own hold when an
// earlier request from here placed it (its reply lost); but hold ids are instance-wide and
// caller-chosen, so anyone's hold may carry it. Taken as the leg's, a 1-unit hold at another
// warehouse showed the leg's 30 as held and the transfer went READY: it must hold what the leg
// asks for, where it asks, for this transfer. Any other hold refuses the leg (FAILED_PRECONDITION,
// re-planned like a hold refused for lack of stock), and is left alone: it is not ours.
absl::StatusOr<Hold> TransferCoordinator::ExistingHold(const Transfer& t, int i) {
  const TransferLeg& leg = t.legs(i);
  ASSIGN_OR_RETURN(Hold hold, gateway_->GetHold(leg.plan().source_warehouse(), leg.hold_id()));
  const std::string differs = HoldDiffers(hold, leg.plan(), t.id());
  if (!differs.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("hold id ", leg.hold_id(), " is taken by a hold that is not this leg's (",
                     differs, "); that hold was left as it is"));
  }
  if (hold.state() != HOLD_STATE_ACTIVE) {
    return absl::FailedPreconditionError(
        absl::StrCat("hold ", leg.hold_id(), " exists but is ", Spoken(hold.state())));
  }
  return hold;
}

absl::Status TransferCoordinator::Replan(Transfer& t, int i, absl::string_view refused,
                                         bool lot_expired, int round) {
  const PlanLeg failed = t.legs(i).plan();
  t.mutable_legs(i)->set_state(LEG_STATE_REPLACED);
  t.mutable_legs(i)->set_lot_expired(lot_expired);
  Audit(t, "coordinator",
        absl::StrCat("leg ", i, ": ", refused, "; re-planning it (", round, " of ",
                     options_.replan_rounds, ")",
                     lot_expired ? " from unexpired lots, its source included" : ""));
  PlanAllocationRequest req = PlanRequestBehind(t.plan());
  req.clear_lines();
  auto* line = req.add_lines();
  line->set_item(failed.item());
  line->set_quantity(failed.quantity());
  // A source refused for lack of stock is left out; one refused only because a planned lot
  // expired (a transfer planned before a China midnight and approved after it) may still hold
  // unexpired lots, which the planner takes (it leaves expired lots out).
  for (const auto& leg : t.legs()) {
    if (leg.state() == LEG_STATE_REPLACED && leg.plan().item() == failed.item() &&
        !leg.lot_expired()) {
      req.add_exclude_sources(leg.plan().source_warehouse());
    }
  }
  // Only inside the approver's scope: approval checked every leg's source against it, and the
  // legs planned now are held on the strength of that approval.
  auto plan = PlanWithout(req, TakenByLegs(t), t.approver_scope());
  if (!plan.ok() || plan->outcomes(0).shortfall() > 0) {
    const int64_t shortfall = AddShortLine(t, failed.item(), failed.quantity(),
                                           plan.ok() ? plan->outcomes(0).planned() : 0);
    return FallShort(t, i,
                     absl::StrCat(failed.item(), " fell short by ", shortfall, " after re-planning",
                                  t.approver_scope().empty()
                                      ? ""
                                      : absl::StrCat(" from sources inside the approver's scope ",
                                                     t.approver_scope())));
  }
  const int first_new_leg = t.legs_size();
  std::vector<std::string> sources;
  for (const PlanLeg& p : plan->legs()) {
    TransferLeg* leg = t.add_legs();
    leg->set_index(t.legs_size() - 1);
    *leg->mutable_plan() = p;
    leg->set_state(LEG_STATE_PLANNED);
    leg->set_hold_id(HoldId(t, leg->index()));
    leg->set_hold_ttl_seconds(options_.hold_ttl_seconds);
    leg->set_replanned(true);
    leg->set_replan_round(round);
    sources.push_back(Describe(p));
  }
  // Shared through etcd, a transfer that outgrew what one write takes could never be saved
  // again, not even as failed: it would hang with its holds until they expire.
  const size_t grown_to = journal_.load() != nullptr ? t.ByteSizeLong() : 0;
  if (grown_to > options_.max_replanned_transfer_bytes) {
    t.mutable_legs()->DeleteSubrange(first_new_leg, t.legs_size() - first_new_leg);
    AddShortLine(t, failed.item(), failed.quantity());
    return FallShort(
        t, i,
        absl::StrCat(failed.item(), " fell short by ", failed.quantity(), ": re-planning leg ", i,
                     " into ", plan->legs_size(), " legs would grow the transfer to ", grown_to,
                     " bytes, more than catalogue replicas share (limit ",
                     options_.max_replanned_transfer_bytes, "); split the request"));
  }
  Audit(t, "coordinator", absl::StrCat("leg ", i, " re-planned: ", absl::StrJoin(sources, "; ")));
  return Save(t);
}

// Before a re-plan at shipment, nothing of a transfer had shipped when a line fell short; now
// legs may be on their way, and failing would release the holds of legs that are fine.
absl::Status TransferCoordinator::FallShort(Transfer& t, int i, std::string reason) {
  if (!AnyShipped(t)) return FailAndRelease(t, std::move(reason));
  // A leg whose hold was refused holds nothing; a replaced one was released or refused.
  if (t.legs(i).state() == LEG_STATE_PLANNED) t.mutable_legs(i)->set_state(LEG_STATE_RELEASED);
  Audit(t, "coordinator", absl::StrCat(reason, "; ", ShippedLegs(t), " shipped and go on"));
  return Save(t);
}

absl::Status TransferCoordinator::FailAndRelease(Transfer& t, std::string reason) {
  t.set_state(TRANSFER_STATE_FAILED);
  t.set_failure_reason(reason);
  Audit(t, "coordinator", absl::StrCat("failed: ", reason));
  RETURN_IF_ERROR(Save(t));
  return ReleaseAll(t);
}

absl::Status TransferCoordinator::ReleaseAll(Transfer& t) {
  for (int i = 0; i < t.legs_size(); ++i) {
    const TransferLeg& leg = t.legs(i);
    const bool maybe_held = leg.state() == LEG_STATE_HELD ||
                            (leg.state() == LEG_STATE_PLANNED && !t.approved_by().empty());
    if (leg.state() == LEG_STATE_PLANNED && !maybe_held) {
      t.mutable_legs(i)->set_state(LEG_STATE_RELEASED);
      continue;
    }
    if (!maybe_held) continue;
    ReleaseRequest req;
    req.set_request_id(RequestId(t, i, "release"));
    // A cancelled transfer's holds are let go for whoever cancelled it; a failed one's by the
    // coordinator. Neither state changes again (but to in transit, after which nothing is
    // released), so a retry names the same actor.
    req.set_actor(LevelActor(t, t.state() == TRANSFER_STATE_CANCELLED ? t.cancelled_by() : ""));
    req.mutable_op()->set_hold_id(leg.hold_id());
    req.mutable_op()->set_note(absl::StrCat("transfer ", t.id(), " ended"));
    // A hold whose request timed out may still arrive: closing its id at the source makes
    // that late request fail instead of holding stock until its TTL.
    req.mutable_op()->set_warehouse_if_absent(leg.plan().source_warehouse());
    auto r = WithRetry([&] { return gateway_->Release(leg.plan().source_warehouse(), req); });
    const absl::StatusCode code = r.status().code();
    if (r.ok() || code == absl::StatusCode::kNotFound) {
      t.mutable_legs(i)->set_state(LEG_STATE_RELEASED);
      Audit(t, "coordinator", ReleaseNote(i, leg.plan().source_warehouse(), r));
    } else if (code == absl::StatusCode::kFailedPrecondition) {
      ReleaseRefused(t, i, r.status());
    } else {
      AuditOnce(t, absl::StrCat("leg ", i, ": release at ", leg.plan().source_warehouse(),
                                " failed (", r.status().message(), "); will retry"));
    }
    RETURN_IF_ERROR(Save(t));
  }
  InTransitAfterAll(t);
  return Save(t);
}

// Refused because the hold is no longer active: only a hold its source released or let expire
// counts as released. Counted as released, a shipped one (a shipment whose reply was lost)
// left its stock in transit with nothing to receive it.
void TransferCoordinator::ReleaseRefused(Transfer& t, int i, const absl::Status& refusal) {
  const TransferLeg& leg = t.legs(i);
  const std::string& source = leg.plan().source_warehouse();
  auto hold = WithRetry([&] { return gateway_->GetHold(source, leg.hold_id()); });
  const HoldState state = hold.ok() ? hold->state() : HOLD_STATE_UNSPECIFIED;
  if (state == HOLD_STATE_RELEASED || state == HOLD_STATE_EXPIRED) {
    t.mutable_legs(i)->set_state(LEG_STATE_RELEASED);
    Audit(t, "coordinator",
          absl::StrCat("leg ", i, ": hold at ", source, " already ", Spoken(state)));
  } else if (state == HOLD_STATE_SHIPPED) {
    t.mutable_legs(i)->set_state(LEG_STATE_SHIPPED);
    Audit(t, "coordinator",
          absl::StrCat("leg ", i, ": found shipped at ", source, " when releasing it (",
                       refusal.message(), "): in transit, to be received"));
  } else {
    AuditOnce(t, absl::StrCat("leg ", i, ": release at ", source, " refused (", refusal.message(),
                              "), its hold there ",
                              hold.ok() ? Spoken(state) : std::string(hold.status().message()),
                              "; will retry"));
  }
}

// A cancelled or failed transfer a leg of which turns out to have shipped is in transit: its
// stock is on the way and the leg is received as any other. Legs released meanwhile stay so.
void TransferCoordinator::InTransitAfterAll(Transfer& t) {
  const bool ended = t.state() == TRANSFER_STATE_CANCELLED || t.state() == TRANSFER_STATE_FAILED;
  if (!ended || !AnyShipped(t)) return;
  Audit(t, "coordinator",
        absl::StrCat("in transit after all, not ", Spoken(t.state()), ": ", ShippedLegs(t),
                     " had shipped and must be received"));
  t.set_state(TRANSFER_STATE_IN_TRANSIT);
}

// A shipment request whose reply never came leaves its leg HELD here, though the source may
// have shipped it (shipped_by is saved before the request is sent, so only such legs are asked).
absl::Status TransferCoordinator::FindLostShipments(Transfer& t) {
  absl::Status unknown;
  bool found = false;
  for (int i = 0; i < t.legs_size(); ++i) {
    const TransferLeg& leg = t.legs(i);
    if (leg.state() != LEG_STATE_HELD || leg.shipped_by().empty()) continue;
    const std::string& source = leg.plan().source_warehouse();
    auto hold = WithRetry([&] { return gateway_->GetHold(source, leg.hold_id()); });
    if (hold.ok() && hold->state() == HOLD_STATE_SHIPPED) {
      found = true;
      t.mutable_legs(i)->set_state(LEG_STATE_SHIPPED);
      Audit(t, "coordinator",
            absl::StrCat("leg ", i, ": found shipped at ", source,
                         " (its shipment went through; the reply was lost)"));
    } else if (!hold.ok() && hold.status().code() != absl::StatusCode::kNotFound && unknown.ok()) {
      unknown =
          absl::Status(hold.status().code(),
                       absl::StrCat("cannot tell whether leg ", i, " of ", t.name(),
                                    " has shipped: its shipment request to ", source,
                                    " went unanswered and its hold cannot be read there now (",
                                    hold.status().message(), "); try again"));
    }
  }
  if (found) {
    UpdateState(t);
    RETURN_IF_ERROR(Save(t));
  }
  return unknown;
}

// ---- cancel / ship / receive -----------------------------------------------------------------

absl::StatusOr<Transfer> TransferCoordinator::Cancel(const CancelTransferRequest& req) {
  ASSIGN_OR_RETURN(std::string id, IdFromName(req.name()));
  auto mu = LockFor(id);
  absl::MutexLock lock(mu.get());
  ASSIGN_OR_RETURN(bool replay, Replay(req.request_id(), req));
  RETURN_IF_ERROR(CheckActor(req.actor()));
  // The reason goes into the transfer's audit trail: bounded like a transfer's note.
  RETURN_IF_ERROR(common::CheckText("reason", req.reason(), 1000, false));
  ASSIGN_OR_RETURN(Transfer t, Load(req.name()));
  if (replay && t.state() == TRANSFER_STATE_CANCELLED) return Finish(t, ReleaseAll(t));
  const bool cancellable = t.state() == TRANSFER_STATE_PENDING_APPROVAL ||
                           t.state() == TRANSFER_STATE_HOLDING || t.state() == TRANSFER_STATE_READY;
  if (!cancellable || AnyShipped(t)) {
    return absl::FailedPreconditionError(
        absl::StrCat("transfer ", t.name(), " is ", Spoken(t.state()),
                     "; only a transfer with nothing shipped can be cancelled"));
  }
  // Asked before anything is released, so a refusal lets go of nothing.
  RETURN_IF_ERROR(FindLostShipments(t));
  if (AnyShipped(t)) return CannotCancelInTransit(t, /*released=*/false);
  t.set_state(TRANSFER_STATE_CANCELLED);
  t.set_cancelled_by(req.actor());
  Audit(t, req.actor(), absl::StrCat("cancelled", req.reason().empty() ? "" : ": ", req.reason()));
  const RequestRecord record = Record(req.request_id(), req, t);
  RETURN_IF_ERROR(Save(t, &record));
  RETURN_IF_ERROR(ReleaseAll(t));
  // A release found a leg shipped that had no shipment on record (shipped at its level directly).
  if (t.state() == TRANSFER_STATE_IN_TRANSIT) return CannotCancelInTransit(t, /*released=*/true);
  return t;
}

absl::Status TransferCoordinator::CannotCancelInTransit(const Transfer& t, bool released) {
  const std::string legs = ShippedLegs(t);
  return absl::FailedPreconditionError(absl::StrCat(
      "transfer ", t.name(), " cannot be cancelled: ", legs,
      absl::StartsWith(legs, "legs") ? " are" : " is",
      " in transit (shipped at the source, which the transfer had not recorded) and must be "
      "received",
      released ? "; the holds of its legs not shipped were released" : ""));
}

absl::StatusOr<Transfer> TransferCoordinator::Ship(const ShipTransferLegRequest& req) {
  ASSIGN_OR_RETURN(std::string id, IdFromName(req.name()));
  auto mu = LockFor(id);
  absl::MutexLock lock(mu.get());
  ASSIGN_OR_RETURN(bool replay, Replay(req.request_id(), req));
  RETURN_IF_ERROR(CheckActor(req.actor()));
  ASSIGN_OR_RETURN(Transfer t, Load(req.name()));
  ASSIGN_OR_RETURN(int i, LegIndex(t, req.leg()));
  // A retry is answered OK only if the leg did leave; one released meanwhile (the transfer
  // cancelled or failed after the first try went unanswered) is refused below.
  if (replay && Departed(t.legs(i).state())) return t;
  if ((t.state() != TRANSFER_STATE_READY && t.state() != TRANSFER_STATE_IN_TRANSIT) ||
      t.legs(i).state() != LEG_STATE_HELD) {
    return absl::FailedPreconditionError(absl::StrCat(
        "leg ", i, " of ", t.name(), " is ", Spoken(t.legs(i).state()), " and the transfer ",
        Spoken(t.state()), "; only a held leg of a ready or in-transit transfer can be shipped"));
  }
  RETURN_IF_ERROR(BeforeFirstShipment(t, i, req.actor()));
  const TransferLeg leg = t.legs(i);
  Audit(t, req.actor(),
        absl::StrCat("leg ", i, ": shipping ", Describe(leg.plan()),
                     req.note().empty() ? "" : " — ", req.note()));
  const RequestRecord record = Record(req.request_id(), req, t);
  RETURN_IF_ERROR(Save(t, &record));
  ShipRequest ship;
  ship.set_request_id(RequestId(t, i, "ship"));
  ship.set_actor(LevelActor(t, leg.shipped_by()));
  ship.mutable_op()->set_hold_id(leg.hold_id());
  ship.mutable_op()->set_destination(t.destination_warehouse());
  ship.mutable_op()->set_note(absl::StrCat("transfer ", t.id()));
  auto r = WithRetry([&] { return gateway_->Ship(leg.plan().source_warehouse(), ship); });
  if (!r.ok() && r.status().code() == absl::StatusCode::kFailedPrecondition) {
    RETURN_IF_ERROR(CheckExpiry(t));
    // The level never ships a lot past its last usable day (China Standard Time), though the
    // hold took it while it was good. Left so, the leg could never ship.
    const std::string expired = ExpiredLots(leg.plan(), Planner::ReserveDay(Now()));
    if (t.legs(i).state() == LEG_STATE_HELD && !expired.empty()) {
      return ReplanExpiredShipment(t, i, r.status(), expired);
    }
    return r.status();
  }
  if (!r.ok() && r.status().code() == absl::StatusCode::kNotFound && HoldUnknown(t, i)) {
    const std::string why = LetGoOfLeg(t, i, kHoldUnknownAtSource);
    RETURN_IF_ERROR(SettleLegsLetGo(t, why));
    return absl::FailedPreconditionError(
        absl::StrCat("leg ", i, " cannot ship: ", why, ". ",
                     t.state() == TRANSFER_STATE_FAILED
                         ? "The transfer failed and its other holds were released: plan it again"
                         : "The leg was dropped; the rest of the transfer goes on"));
  }
  if (!r.ok()) return r.status();
  t.mutable_legs(i)->set_state(LEG_STATE_SHIPPED);
  Audit(t, "coordinator",
        absl::StrCat("leg ", i, ": shipped from ", leg.plan().source_warehouse()));
  UpdateState(t);
  RETURN_IF_ERROR(Save(t));
  return t;
}

// A transfer's holds stand for days (72 h by default) and their lots were fixed when they were
// placed: a lot's last usable day can pass before the leg ships, and the level then refuses the
// shipment (expired stock never leaves). Before, it shipped and the destination received stock it
// could never issue. The hold is released and the leg's quantity planned again like a refused
// hold (its source still allowed: it may have unexpired lots), as a first round. The transfer
// holds again (HOLDING) until the new legs' holds stand; legs already shipped stay on their way.
absl::Status TransferCoordinator::ReplanExpiredShipment(Transfer& t, int i,
                                                        const absl::Status& refusal,
                                                        const std::string& expired) {
  const PlanLeg planned = t.legs(i).plan();
  const std::string& source = planned.source_warehouse();
  const std::string not_shipped =
      absl::StrCat("leg ", i, " of ", t.name(), " was not shipped from ", source, ": its ", expired,
                   " expired after it was held, and expired stock never leaves");
  Audit(t, "coordinator",
        absl::StrCat("leg ", i, ": shipment of ", Describe(planned), " refused: ", expired,
                     " expired after it was held; releasing the hold to re-plan the leg"));
  RETURN_IF_ERROR(Save(t));
  // Its own request id: a release of the leg under "{leg}.release" (a cancel's, a failure's) has
  // other content, and the level would refuse one of the two as a reused id.
  ReleaseRequest release;
  release.set_request_id(RequestId(t, i, "release-expired"));
  release.set_actor(LevelActor(t, ""));
  release.mutable_op()->set_hold_id(t.legs(i).hold_id());
  release.mutable_op()->set_note(
      absl::StrCat("transfer ", t.id(), ": lot expired before shipping"));
  auto released = WithRetry([&] { return gateway_->Release(source, release); });
  if (!released.ok()) {
    AuditOnce(t, absl::StrCat("leg ", i, ": its hold at ", source, " could not be released (",
                              released.status().message(), "); ship the leg again to retry"));
    RETURN_IF_ERROR(Save(t));
    return absl::Status(
        released.status().code(),
        absl::StrCat(not_shipped, "; releasing its hold at ", source, " to re-plan it failed (",
                     released.status().message(), "): ship the leg again to retry"));
  }
  Audit(t, "coordinator", absl::StrCat("leg ", i, ": hold at ", source, " released"));
  if (options_.replan_rounds == 0) {  // never re-planned: the leg is let go
    const std::string why = LetGoOfLeg(t, i, absl::StrCat("was let go: ", expired, " expired"));
    RETURN_IF_ERROR(SettleLegsLetGo(t, why));
    return absl::FailedPreconditionError(absl::StrCat(
        not_shipped, ". Its hold was released and the leg dropped (re-planning is off): ",
        t.state() == TRANSFER_STATE_FAILED ? "the transfer failed; plan it again"
                                           : "plan its quantity again (--short-of)"));
  }
  const int first_new_leg = t.legs_size();
  RETURN_IF_ERROR(Replan(
      t, i, absl::StrCat("shipment of ", Describe(planned), " refused (", refusal.message(), ")"),
      /*lot_expired=*/true, /*round=*/1));
  const bool ongoing = t.state() == TRANSFER_STATE_READY || t.state() == TRANSFER_STATE_IN_TRANSIT;
  if (ongoing && t.legs_size() > first_new_leg) {
    t.set_state(TRANSFER_STATE_HOLDING);
    Audit(t, "coordinator", "holding again: the re-planned legs' holds are placed");
    RETURN_IF_ERROR(Save(t));
    RETURN_IF_ERROR(DriveHolds(t));
  } else if (ongoing) {  // fell short with legs on their way: the rest goes on
    UpdateState(t);
    RETURN_IF_ERROR(Save(t));
  }
  std::vector<std::string> instead;
  for (int k = first_new_leg; k < t.legs_size(); ++k) {
    if (!Active(t.legs(k))) continue;
    instead.push_back(absl::StrCat("leg ", k, " (", Describe(t.legs(k).plan()), ", ",
                                   Spoken(t.legs(k).state()), ")"));
  }
  std::string outcome;
  if (t.state() == TRANSFER_STATE_FAILED) {
    outcome = absl::StrCat("re-planning it failed the transfer (", t.failure_reason(),
                           ") and its other holds were released: plan it again");
  } else if (instead.empty()) {
    outcome =
        "re-planning it fell short (see the transfer's short lines); the legs on their way "
        "go on";
  } else {
    outcome = absl::StrCat("it was re-planned as ", absl::StrJoin(instead, ", "),
                           t.state() == TRANSFER_STATE_HOLDING
                               ? "; the transfer is holding until every new hold stands"
                           : instead.size() == 1 ? ": ship it instead"
                                                 : ": ship them instead");
  }
  return absl::FailedPreconditionError(
      absl::StrCat(not_shipped, ". Its hold was released and ", outcome));
}

// A later attempt neither checks nor renames: its first request may have landed at the source.
// The first to ask stays the shipper, and the retry must be able to learn that it shipped (the
// level answers it from its record) even if the destination closed meanwhile.
absl::Status TransferCoordinator::BeforeFirstShipment(Transfer& t, int i, absl::string_view actor) {
  if (!t.legs(i).shipped_by().empty()) return absl::OkStatus();
  RETURN_IF_ERROR(CheckDestination(
      t.destination_warehouse(),
      absl::StrCat("leg ", i, " was not shipped, since stock sent there could not be received ",
                   "(reopen it", AnyShipped(t) ? "" : ", or cancel the transfer", ")")));
  t.mutable_legs(i)->set_shipped_by(std::string(actor));
  return absl::OkStatus();
}

absl::StatusOr<Transfer> TransferCoordinator::Receive(const ReceiveTransferLegRequest& req) {
  ASSIGN_OR_RETURN(std::string id, IdFromName(req.name()));
  auto mu = LockFor(id);
  absl::MutexLock lock(mu.get());
  ASSIGN_OR_RETURN(bool replay, Replay(req.request_id(), req));
  RETURN_IF_ERROR(CheckActor(req.actor()));
  ASSIGN_OR_RETURN(Transfer t, Load(req.name()));
  ASSIGN_OR_RETURN(int i, LegIndex(t, req.leg()));
  const LegState state = t.legs(i).state();
  if (replay && (state == LEG_STATE_RECEIVED || state == LEG_STATE_DELIVERED)) {
    return ReceivedAgain(t, i, req);
  }
  if (state != LEG_STATE_SHIPPED) {
    return absl::FailedPreconditionError(absl::StrCat("leg ", i, " of ", t.name(), " is ",
                                                      Spoken(state),
                                                      "; only a shipped leg can be received"));
  }
  ASSIGN_OR_RETURN(HoldLots arrived, ArrivedLots(t.legs(i), req));
  TransferLeg* leg = t.mutable_legs(i);
  if (leg->received_by().empty()) leg->set_received_by(req.actor());  // first to ask, as Ship
  Audit(t, req.actor(),
        absl::StrCat("leg ", i, ": receiving ", Arrived(arrived), " of ", leg->plan().quantity(),
                     " ", leg->plan().item(), req.note().empty() ? "" : " — ", req.note()));
  const RequestRecord record = Record(req.request_id(), req, t);
  RETURN_IF_ERROR(Save(t, &record));
  ASSIGN_OR_RETURN(bool as_asked, RecordArrival(t, i, arrived));
  SettleOrLeaveToResume(t, i);
  if (!as_asked) return AlreadyReceived(t, i);
  return t;
}

// A retry of a receipt whose leg is received: answered as the first time, unless the leg was
// recorded with other figures than it gives (another attempt's, found at the destination).
absl::StatusOr<Transfer> TransferCoordinator::ReceivedAgain(Transfer& t, int i,
                                                            const ReceiveTransferLegRequest& req) {
  ASSIGN_OR_RETURN(HoldLots arrived, ArrivedLots(t.legs(i), req));
  if (!SameFigures(arrived, t.legs(i).received_lots())) return AlreadyReceived(t, i);
  SettleOrLeaveToResume(t, i);
  return t;
}

// Per planned lot: shipped, and received as the request says (a lot it leaves out all arrived).
absl::StatusOr<TransferCoordinator::HoldLots> TransferCoordinator::ArrivedLots(
    const TransferLeg& leg, const ReceiveTransferLegRequest& req) {
  for (const auto& l : req.lots()) {
    const auto& lots = leg.plan().lots();
    auto it = std::find_if(lots.begin(), lots.end(),
                           [&](const HoldLot& p) { return p.lot() == l.lot(); });
    if (it == lots.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("lot ", l.lot(), " is not part of leg ", leg.index()));
    }
    if (l.received() < 0 || l.received() > it->quantity()) {
      return absl::InvalidArgumentError(absl::StrCat("received of lot ", l.lot(),
                                                     " must be between 0 and ", it->quantity(),
                                                     "; got ", l.received()));
    }
  }
  HoldLots arrived;
  for (const auto& p : leg.plan().lots()) {
    HoldLot* r = arrived.Add();
    *r = p;
    r->set_received(p.quantity());
    for (const auto& l : req.lots()) {
      if (l.lot() == p.lot()) r->set_received(l.received());
    }
  }
  return arrived;
}

int64_t TransferCoordinator::Arrived(const HoldLots& lots) {
  int64_t received = 0;
  for (const auto& l : lots) received += l.received();
  return received;
}

bool TransferCoordinator::SameFigures(const HoldLots& a, const HoldLots& b) {
  if (a.size() != b.size()) return false;
  for (int k = 0; k < a.size(); ++k) {
    if (a[k].lot() != b[k].lot() || a[k].received() != b[k].received()) return false;
  }
  return true;
}

// The leg's figures are stored only once the destination's ledger has them, so the transfer
// never shows an arrival its ledger does not have.
absl::StatusOr<bool> TransferCoordinator::RecordArrival(Transfer& t, int i,
                                                        const HoldLots& arrived) {
  const TransferLeg& leg = t.legs(i);
  ReceiveTransferRequest req;
  req.set_request_id(RequestId(t, i, "receive"));
  req.set_actor(LevelActor(t, leg.received_by()));
  ReceiveTransferOp* op = req.mutable_op();
  op->set_warehouse(t.destination_warehouse());
  op->set_hold_id(leg.hold_id());
  op->set_source_warehouse(leg.plan().source_warehouse());
  op->set_item(leg.plan().item());
  *op->mutable_lots() = arrived;
  op->set_note(absl::StrCat("transfer ", t.id()));
  const absl::Status s = WithRetry([&] { return gateway_->ReceiveTransfer(req); });
  if (s.code() == absl::StatusCode::kInvalidArgument) {
    // The leg's request id is fixed: the level refuses it with other figures when an earlier
    // attempt (its reply lost) was recorded there. That receipt is the leg's.
    ASSIGN_OR_RETURN(std::optional<HoldLots> recorded, RecordedArrival(t, i));
    if (!recorded.has_value()) return s;
    RETURN_IF_ERROR(
        MarkReceived(t, i, *recorded, "received", ", as an earlier attempt recorded it there"));
    return SameFigures(*recorded, arrived);
  }
  RETURN_IF_ERROR(s);
  RETURN_IF_ERROR(MarkReceived(t, i, arrived, "received", ""));
  return true;
}

// What the destination's ledger recorded under leg `i`'s receipt request, per planned lot;
// nullopt when it recorded no receipt under that id.
absl::StatusOr<std::optional<TransferCoordinator::HoldLots>> TransferCoordinator::RecordedArrival(
    const Transfer& t, int i) {
  const std::string request_id = RequestId(t, i, "receive");
  ASSIGN_OR_RETURN(std::vector<Movement> movements, WithRetry([&] {
                     return gateway_->MovementsOfRequest(t.destination_warehouse(), request_id);
                   }));
  bool receipt = false;
  HoldLots recorded = t.legs(i).plan().lots();
  for (HoldLot& lot : recorded) {
    lot.set_received(0);
    for (const Movement& m : movements) {
      if (m.type() != MOVEMENT_TYPE_RECEIVE_TRANSFER) continue;
      receipt = true;
      if (absl::EqualsIgnoreCase(m.lot(), lot.lot()))
        lot.set_received(lot.received() + m.quantity());
    }
  }
  if (!receipt) return std::nullopt;
  return recorded;
}

absl::Status TransferCoordinator::MarkReceived(Transfer& t, int i, const HoldLots& arrived,
                                               absl::string_view what, absl::string_view how) {
  TransferLeg* leg = t.mutable_legs(i);
  *leg->mutable_received_lots() = arrived;
  leg->set_received(Arrived(arrived));
  leg->set_lost(leg->plan().quantity() - leg->received());
  leg->set_state(LEG_STATE_RECEIVED);
  Audit(t, "coordinator",
        absl::StrCat("leg ", i, ": ", what, " at ", t.destination_warehouse(), " (",
                     leg->received(), " arrived, ", leg->lost(), " lost)", how));
  UpdateState(t);
  return Save(t);
}

// A receipt request whose reply never came (the leader died, a timeout) leaves its leg SHIPPED
// here, though the destination may have recorded it: the stock then counts at the destination
// and in transit at once until someone retries. received_by is saved before the request is
// sent, so only such legs are asked, by the leg's fixed request id, and the leg takes the
// figures the destination's ledger has. A destination down now is asked again next round.
absl::Status TransferCoordinator::FindLostReceipts(Transfer& t) {
  for (int i = 0; i < t.legs_size(); ++i) {
    const TransferLeg& leg = t.legs(i);
    if (leg.state() != LEG_STATE_SHIPPED || leg.received_by().empty()) continue;
    absl::StatusOr<std::optional<HoldLots>> recorded = RecordedArrival(t, i);
    if (!recorded.ok() || !recorded->has_value()) continue;
    RETURN_IF_ERROR(MarkReceived(t, i, **recorded, "found received",
                                 ": its receipt went through; the reply was lost"));
  }
  return absl::OkStatus();
}

absl::Status TransferCoordinator::AlreadyReceived(const Transfer& t, int i) {
  const TransferLeg& leg = t.legs(i);
  return absl::FailedPreconditionError(
      absl::StrCat("leg ", i, " was already received at ", t.destination_warehouse(), ": ",
                   leg.received(), " of ", leg.plan().quantity(), " arrived, ", leg.lost(),
                   " lost (not the figures given now); correct it with a stocktake there"));
}

// The receipt is saved (leg RECEIVED): what is left, the delivery confirmation at the source, is
// retried by the resume loop when it cannot be done now (Settle audits that it is owed). The
// caller has nothing left to do, so it is answered from the receipt: an error here (the source
// down) made a recorded receipt look failed, "safe to retry", and every retry failed the same
// while the source stayed down. Asked once: retrying for retry_deadline (20 s) kept the caller
// waiting past stockctl's 10 s, so a recorded receipt still answered DEADLINE_EXCEEDED.
void TransferCoordinator::SettleOrLeaveToResume(Transfer& t, int i) {
  Settle(t, i, /*patient=*/false).IgnoreError();
}

absl::Status TransferCoordinator::Settle(Transfer& t, int i, bool patient) {
  const TransferLeg leg = t.legs(i);
  const std::string& source = leg.plan().source_warehouse();
  if (leg.state() != LEG_STATE_RECEIVED) return absl::OkStatus();
  ASSIGN_OR_RETURN(bool same, gateway_->SameInstance(source, t.destination_warehouse()));
  if (!same) {
    ConfirmDeliveryRequest req;
    req.set_request_id(RequestId(t, i, "confirm"));
    req.set_actor(LevelActor(t, leg.received_by()));
    req.mutable_op()->set_hold_id(leg.hold_id());
    for (const auto& l : leg.received_lots()) {
      HoldLot* c = req.mutable_op()->add_lots();
      c->set_lot(l.lot());
      c->set_received(l.received());
    }
    auto confirm = [&] { return gateway_->ConfirmDelivery(source, req); };
    auto r = patient ? WithRetry(confirm) : confirm();
    if (!r.ok()) {
      AuditOnce(t, absl::StrCat("leg ", i, ": delivery confirmation at ", source, " failed (",
                                r.status().message(), "); will retry"));
      RETURN_IF_ERROR(Save(t));
      return r.status();
    }
  }
  t.mutable_legs(i)->set_state(LEG_STATE_DELIVERED);
  Audit(t, "coordinator", absl::StrCat("leg ", i, ": delivery settled at ", source));
  UpdateState(t);
  return Save(t);
}

// ---- resume ----------------------------------------------------------------------------------

absl::Status TransferCoordinator::CheckExpiry(Transfer& t) {
  std::string reason;
  for (int i = 0; i < t.legs_size(); ++i) {
    const TransferLeg& leg = t.legs(i);
    if (leg.state() != LEG_STATE_HELD || ToMicros(leg.hold_expire_time()) > Now()) continue;
    auto hold =
        WithRetry([&] { return gateway_->GetHold(leg.plan().source_warehouse(), leg.hold_id()); });
    if (!hold.ok()) {
      if (hold.status().code() == absl::StatusCode::kNotFound) {
        reason = LetGoOfLeg(t, i, kHoldUnknownAtSource);
      }
      continue;  // otherwise unknown for now: asked again on the next resume
    }
    if (hold->state() == HOLD_STATE_SHIPPED) {
      t.mutable_legs(i)->set_state(LEG_STATE_SHIPPED);
      Audit(t, "coordinator", absl::StrCat("leg ", i, ": found shipped at the source"));
      continue;
    }
    if (hold->state() != HOLD_STATE_EXPIRED && hold->state() != HOLD_STATE_RELEASED) continue;
    reason = LetGoOfLeg(t, i, "expired before shipping");
  }
  return SettleLegsLetGo(t, reason);
}

bool TransferCoordinator::HoldUnknown(const Transfer& t, int i) {
  const TransferLeg& leg = t.legs(i);
  auto hold =
      WithRetry([&] { return gateway_->GetHold(leg.plan().source_warehouse(), leg.hold_id()); });
  return hold.status().code() == absl::StatusCode::kNotFound;
}

std::string TransferCoordinator::LetGoOfLeg(Transfer& t, int i, absl::string_view how) {
  const PlanLeg& lost = t.legs(i).plan();
  const std::string where = lost.source_warehouse();
  t.mutable_legs(i)->set_state(LEG_STATE_RELEASED);
  // The destination gets that much less, whether the rest goes on or fails: say so where a
  // dispatcher looks for what to plan again, not only in the audit.
  AddShortLine(t, lost.item(), lost.quantity());
  Audit(t, "coordinator", absl::StrCat("leg ", i, ": hold at ", where, " ", how));
  return absl::StrCat("the hold at ", where, " ", how);
}

absl::Status TransferCoordinator::SettleLegsLetGo(Transfer& t, const std::string& reason) {
  UpdateState(t);
  if (!reason.empty() && t.state() == TRANSFER_STATE_READY && !AnyShipped(t)) {
    // A leg shipped though its reply was lost means the rest goes on. A source that cannot be
    // asked now tells later, when it refuses to release that hold (ReleaseAll).
    FindLostShipments(t).IgnoreError();
    if (!AnyShipped(t)) return FailAndRelease(t, reason);
  }
  return Save(t);
}

absl::StatusOr<Transfer> TransferCoordinator::Resume(absl::string_view id) {
  auto mu = LockFor(id);
  absl::MutexLock lock(mu.get());
  ASSIGN_OR_RETURN(Transfer t, Load(absl::StrCat("transfers/", id)));
  switch (t.state()) {
    case TRANSFER_STATE_HOLDING:
      RETURN_IF_ERROR(DriveHolds(t));
      break;
    case TRANSFER_STATE_READY:
    case TRANSFER_STATE_IN_TRANSIT:
    case TRANSFER_STATE_RECEIVED:
      RETURN_IF_ERROR(CheckExpiry(t));
      // A shipment whose reply was lost shows as in transit here by the next resume, not only
      // when someone retries it or cancels. A source down now is asked again next time.
      FindLostShipments(t).IgnoreError();
      // The same for a receipt, before the legs received are settled at their source.
      RETURN_IF_ERROR(FindLostReceipts(t));
      for (int i = 0; i < t.legs_size(); ++i) {
        if (t.legs(i).state() == LEG_STATE_RECEIVED) RETURN_IF_ERROR(Settle(t, i));
      }
      break;
    case TRANSFER_STATE_CANCELLED:
    case TRANSFER_STATE_FAILED:
      RETURN_IF_ERROR(ReleaseAll(t));
      break;
    default:
      break;
  }
  return t;
}

absl::Status TransferCoordinator::ResumeAll() {
  ASSIGN_OR_RETURN(std::vector<std::string> ids, store_->UnfinishedIds());
  absl::Status first;
  for (const std::string& id : ids) {
    auto r = Resume(id);
    if (!r.ok() && first.ok()) first = r.status();
  }
  return first;
}

}  // namespace stockpile::catalogue::allocation
