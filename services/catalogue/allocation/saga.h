#pragma once

// TransferCoordinator: drives a transfer through PENDING_APPROVAL → HOLDING → READY →
// IN_TRANSIT → RECEIVED (or CANCELLED / FAILED) against the owning level services.
//
// Crash safety: every state change and audit step is saved (synced) before the next external
// call, and every level call uses ids derived from the transfer: hold "{id}.L{leg}", request
// "{id}.L{leg}.{step}", the step's actor and notes, and parameters (lots, TTL) read back from the
// stored transfer. A new leader that repeats a call gets the level service's stored first answer,
// so no hold is ever placed twice.
//
// A source that cannot be reached during approval is retried with backoff up to
// retry_deadline; then the transfer stays HOLDING (the waiting is written to its audit) and the
// leader's periodic ResumeAll() tries again. A dispatcher may cancel it meanwhile: holds placed
// so far are released (a release that cannot reach its source is retried the same way; the
// hold's TTL is the last resort).

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/catalogue/allocation/level_gateway.h"
#include "services/catalogue/allocation/planner.h"
#include "services/catalogue/allocation/transfer_journal.h"
#include "services/catalogue/allocation/transfer_store.h"
#include "services/common/clock.h"
#include "stockpile/v1/allocation.pb.h"
#include "stockpile/v1/transfer_service.pb.h"

namespace stockpile::catalogue::allocation {

// A level service instance as the catalogue's replication sees it.
struct SourceContact {
  std::string id;
  SourceScope scope;
  bool connected = false;
  bool gone = false;                // no longer registered
  int64_t last_contact_micros = 0;  // 0: has not answered since this process started
  int64_t stream_start_micros = 0;  // since when it is being followed (0: not known)
  // The catalogue holds only part of the source's stock while applied_sequence is below
  // complete_at_sequence (its first stream, or one again from 1 after its history changed).
  uint64_t applied_sequence = 0;
  uint64_t complete_at_sequence = 0;
};

// Which sources plans must do without: gone, not answering for `after` or longer (counted
// from the latest of their last answer, the start of their stream and `started_micros`: a
// restarted catalogue, or a source registering again, gets the grace again before it is given
// up on), or still streaming their stock from the start (a plan from part of it would miss
// stock or hold what has moved); each with a line saying so, unless answering sources with
// all their stock host all it hosted.
struct UnreachableSources {
  SourceReach reach;
  std::vector<std::string> described;  // "county-b (county 4202): not answering for 12 s"
};
UnreachableSources FindUnreachable(const std::vector<SourceContact>& sources, int64_t now_micros,
                                   int64_t started_micros, absl::Duration after);

struct CoordinatorOptions {
  // Actor of the level calls the coordinator makes on its own (releases after a failure or an
  // expiry), and of every level call of transfers created before steps named their actor. Part
  // of the level's request fingerprint: keep it fixed.
  std::string level_actor = "catalogue-transfers";
  // Holds must outlive the approval-to-ship window.
  int64_t hold_ttl_seconds = 72 * 3600;
  // Four eyes: the actor who created a transfer may not approve it (--require-second-approver).
  // Off by default: in the first hours of a disaster one dispatcher may be all there is.
  bool require_second_approver = false;
  // Retries of UNAVAILABLE / DEADLINE_EXCEEDED level calls inside one drive.
  absl::Duration retry_deadline = absl::Seconds(20);
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(2);
  // With a journal (transfers shared through etcd): a new transfer larger than this is refused,
  // leaving room under etcd's request limit (1.5 MiB) for the audit steps it will gain.
  size_t max_shared_transfer_bytes = 256 * 1024;
  // With a journal: a re-plan that would grow a transfer past this is not made (the leg's
  // quantity falls short and the transfer fails), so its writes stay under the journal's 1 MiB
  // with room for the audit steps of failing.
  size_t max_replanned_transfer_bytes = 768 * 1024;
  // The catalogue's sources, so that plans (and re-plans) leave out the warehouses of level
  // instances it cannot reach: a hold there would only wait. Null: all count as reachable.
  std::function<std::vector<SourceContact>()> sources;
  absl::Duration unreachable_after = absl::Seconds(10);
  // Whether the catalogue's view has a warehouse of this code: a source a dispatcher excludes
  // must be one, or a mistyped code would leave the warehouse meant in the plan. Null: all are.
  std::function<bool(absl::string_view code)> known_warehouse;
  // How many times in a row a refused hold's quantity is planned again, each time without the
  // sources already refused for the item. The catalogue sees another transfer's hold a moment
  // after it is placed, so concurrent transfers near the same small stores collide; a second
  // re-plan usually finds what the first collided on. Then the transfer fails (short lines).
  int replan_rounds = 3;
};

class TransferCoordinator {
 public:
  TransferCoordinator(TransferStore* store, LevelGateway* gateway, const Planner* planner,
                      const StockSnapshot* stock, const common::Clock* clock,
                      CoordinatorOptions options = {});

  // Mutations (leader only; the service checks leadership).
  absl::StatusOr<stockpile::v1::Transfer> Create(const stockpile::v1::CreateTransferRequest& req);
  // `approver_scope`: the region scope of the approver's token ("" national). Re-plans of the
  // transfer take sources only inside it (the approval checked its legs' sources against it).
  absl::StatusOr<stockpile::v1::Transfer> Approve(const stockpile::v1::ApproveTransferRequest& req,
                                                  absl::string_view approver_scope);
  absl::StatusOr<stockpile::v1::Transfer> Ship(const stockpile::v1::ShipTransferLegRequest& req);
  absl::StatusOr<stockpile::v1::Transfer> Receive(
      const stockpile::v1::ReceiveTransferLegRequest& req);
  absl::StatusOr<stockpile::v1::Transfer> Cancel(const stockpile::v1::CancelTransferRequest& req);

  // Shares every change through `journal` (published first, fenced by leadership, then saved
  // locally); nullptr: local store only. Set before leading; the journal must outlive its use.
  void SetJournal(TransferJournal* journal) { journal_.store(journal); }

  // Reads (any replica).
  absl::StatusOr<stockpile::v1::Transfer> Get(absl::string_view name) const;
  absl::StatusOr<stockpile::v1::ListTransfersResponse> List(
      const stockpile::v1::ListTransfersRequest& req) const;
  absl::StatusOr<stockpile::v1::AllocationPlan> Plan(
      const stockpile::v1::PlanAllocationRequest& req) const;
  // A dispatcher's plan (PlanAllocation): as Plan, but a destination warehouse that does not
  // exist, or takes no stock, is refused now rather than when the transfer is created.
  absl::StatusOr<stockpile::v1::AllocationPlan> PlanAllocation(
      const stockpile::v1::PlanAllocationRequest& req);

  // Drives every unfinished transfer as far as it can go now: holds still to place, releases
  // still owed, deliveries still to confirm, expired holds. On leader takeover and periodically.
  absl::Status ResumeAll();
  absl::StatusOr<stockpile::v1::Transfer> Resume(absl::string_view id);

 private:
  using Transfer = stockpile::v1::Transfer;
  using TransferLeg = stockpile::v1::TransferLeg;

  // Per-transfer serialization: one driver at a time.
  std::shared_ptr<absl::Mutex> LockFor(absl::string_view id);
  // Idempotency: the stored record for request_id, checked against this request's content.
  // True when this exact request was seen before (a retry); INVALID_ARGUMENT when the id was
  // used for different content.
  absl::StatusOr<bool> Replay(absl::string_view request_id, const google::protobuf::Message& req);
  // Plan() with the stock `taken` lists counted as gone, from sources under `only_under` ("":
  // anywhere).
  absl::StatusOr<stockpile::v1::AllocationPlan> PlanWithout(
      const stockpile::v1::PlanAllocationRequest& req, const StockTaken& taken,
      absl::string_view only_under) const;
  absl::StatusOr<Transfer> Load(absl::string_view name) const;
  absl::Status Save(Transfer& t, const RequestRecord* request = nullptr);
  absl::Status Share(TransferJournal& journal, Transfer& t, const RequestRecord* request);
  // False when `t` differs from the stored copy only in update_time (nothing to share).
  absl::StatusOr<bool> ChangedSinceStored(const Transfer& t) const;
  void Audit(Transfer& t, absl::string_view actor, std::string what);
  // Same, unless the last step already says it (waiting notes repeated by every resume).
  void AuditOnce(Transfer& t, std::string what);
  absl::StatusOr<Transfer> Finish(Transfer& t, absl::Status s);
  RequestRecord Record(absl::string_view request_id, const google::protobuf::Message& req,
                       const Transfer& t) const;

  // Create's steps: the stored answer to a retry; the plan of a new transfer, its request
  // checked; the transfer made of it.
  absl::StatusOr<Transfer> StoredCreate(absl::string_view request_id);
  absl::StatusOr<stockpile::v1::AllocationPlan> PlanNewTransfer(
      const stockpile::v1::CreateTransferRequest& req);
  Transfer NewTransfer(const std::string& id, const stockpile::v1::CreateTransferRequest& req,
                       stockpile::v1::AllocationPlan plan);
  // OK when `destination` exists and takes stock, as its level service says. Otherwise NOT_FOUND
  // or FAILED_PRECONDITION saying so and `consequence`, or why it could not be asked.
  absl::Status CheckDestination(absl::string_view destination, absl::string_view consequence);
  // NOT_FOUND for an excluded source the catalogue has never seen (after the planner checked
  // the names' form).
  absl::Status CheckExcludedSources(const stockpile::v1::PlanAllocationRequest& req) const;

  // Before leg `leg`'s first shipment attempt: the destination must still take stock; `actor`
  // becomes the leg's shipper.
  absl::Status BeforeFirstShipment(Transfer& t, int leg, absl::string_view actor);

  // Saga steps; each saves before its next external call.
  absl::Status DriveHolds(Transfer& t);
  absl::StatusOr<bool> PlaceHold(Transfer& t, int leg);  // false: waiting for the source
  // After ALREADY_EXISTS: the hold with leg `leg`'s id, if it is that leg's own and active;
  // FAILED_PRECONDITION saying why not otherwise.
  absl::StatusOr<stockpile::v1::Hold> ExistingHold(const Transfer& t, int leg);
  // Leg `leg` was refused (`refused`: "hold of 5 SH-0001 at ... refused (why)"): it is REPLACED
  // and its quantity planned again, as re-plan round `round`, without the sources refused
  // before for the item (but those refused only because a planned lot had expired:
  // `lot_expired`, this leg included).
  absl::Status Replan(Transfer& t, int leg, absl::string_view refused, bool lot_expired, int round);
  // The line of leg `leg` falls short (`reason`): with nothing shipped the transfer fails and
  // its holds are released; otherwise the legs on their way go on without that quantity.
  absl::Status FallShort(Transfer& t, int leg, std::string reason);
  // Leg `leg`'s shipment was refused (`refusal`) and its planned lots `expired` have expired
  // since it was held: its hold is released and the leg re-planned, its source included; the
  // transfer holds again until the new legs' holds stand. Returns FAILED_PRECONDITION saying
  // what became of the leg (the legs to ship instead, or why none).
  absl::Status ReplanExpiredShipment(Transfer& t, int leg, const absl::Status& refusal,
                                     const std::string& expired);
  absl::Status FailAndRelease(Transfer& t, std::string reason);
  absl::Status ReleaseAll(Transfer& t);
  // Leg `leg`'s source refused to release its hold: asks it what became of the hold.
  void ReleaseRefused(Transfer& t, int leg, const absl::Status& refusal);
  // A cancelled or failed transfer with a leg found shipped goes back in transit.
  void InTransitAfterAll(Transfer& t);
  // Held legs whose shipment request went unanswered: records the ones their source shipped.
  // Another error than NOT_FOUND from a source leaves whether it shipped unknown: returned.
  absl::Status FindLostShipments(Transfer& t);
  // FAILED_PRECONDITION: `t` has shipped legs, which must be received (`released`: the cancel
  // released the holds of the others first).
  static absl::Status CannotCancelInTransit(const Transfer& t, bool released);
  absl::Status ConfirmPending(Transfer& t);

  // Receive's steps. The leg's request id at the destination is fixed ("{id}.L{leg}.receive"),
  // so a receipt that landed there (its reply lost) is found again whatever a later attempt
  // says, and the leg is recorded with what the destination's ledger has.
  using HoldLots = google::protobuf::RepeatedPtrField<stockpile::v1::HoldLot>;
  absl::StatusOr<Transfer> ReceivedAgain(Transfer& t, int leg,
                                         const stockpile::v1::ReceiveTransferLegRequest& req);
  // Per planned lot, shipped and received as `req` says; INVALID_ARGUMENT for a lot not planned
  // or a received quantity out of range.
  static absl::StatusOr<HoldLots> ArrivedLots(const TransferLeg& leg,
                                              const stockpile::v1::ReceiveTransferLegRequest& req);
  static int64_t Arrived(const HoldLots& lots);
  static bool SameFigures(const HoldLots& a, const HoldLots& b);
  // ReceiveTransfer at the destination; the leg RECEIVED and saved once its ledger has it. True
  // with `arrived`; false when an earlier attempt had recorded other figures, which the leg
  // then takes.
  absl::StatusOr<bool> RecordArrival(Transfer& t, int leg, const HoldLots& arrived);
  absl::StatusOr<std::optional<HoldLots>> RecordedArrival(const Transfer& t, int leg);
  // The leg RECEIVED with `arrived`, audited as "leg N: {what} at {destination} (...){how}".
  absl::Status MarkReceived(Transfer& t, int leg, const HoldLots& arrived, absl::string_view what,
                            absl::string_view how);
  // Shipped legs whose receipt request went unanswered: records the ones their destination
  // received. A destination that cannot be asked now is asked again next round; only a failed
  // save is returned.
  absl::Status FindLostReceipts(Transfer& t);
  // FAILED_PRECONDITION saying what leg `leg`'s destination recorded.
  static absl::Status AlreadyReceived(const Transfer& t, int leg);
  // Settle, its failure left to the resume loop (the receipt itself is saved).
  void SettleOrLeaveToResume(Transfer& t, int leg);
  // ConfirmDelivery at the source of a RECEIVED leg (other instance) → DELIVERED. A failure is
  // audited as owed (the resume loop retries it) and returned. `patient`: transient failures
  // are retried up to retry_deadline; otherwise asked once.
  absl::Status Settle(Transfer& t, int leg, bool patient = true);
  absl::Status CheckExpiry(Transfer& t);
  // The source answers NOT_FOUND for leg `leg`'s hold (not: it cannot be reached).
  bool HoldUnknown(const Transfer& t, int leg);
  // Leg `leg`'s hold is gone at its source (`how`: "expired before shipping", ...): the leg is
  // released. Returns the reason the transfer fails with should nothing of it have shipped.
  std::string LetGoOfLeg(Transfer& t, int leg, absl::string_view how);
  // After legs were let go: fails the transfer (`reason`) where nothing of it shipped.
  absl::Status SettleLegsLetGo(Transfer& t, const std::string& reason);
  void UpdateState(Transfer& t);

  // A level call retried while the source is unreachable, until retry_deadline.
  template <typename F>
  auto WithRetry(F call) -> decltype(call());

  // The actor a level call of `t` names for a step done by `step_actor` (stored with the
  // transfer, so every retry names the same one); the coordinator's own name for automatic
  // steps, for older transfers and for a name too long for the level's actor field.
  std::string LevelActor(const Transfer& t, absl::string_view step_actor) const;
  static std::string HoldId(const Transfer& t, int leg);
  static std::string RequestId(const Transfer& t, int leg, absl::string_view step);
  int64_t Now() const { return clock_->NowMicros(); }

  TransferStore* const store_;
  LevelGateway* const gateway_;
  const Planner* const planner_;
  const StockSnapshot* const stock_;
  const common::Clock* const clock_;
  const CoordinatorOptions options_;
  const int64_t started_micros_;  // a source silent since then is as silent as one that stopped
  std::atomic<TransferJournal*> journal_{nullptr};

  absl::Mutex locks_mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<absl::Mutex>> locks_ ABSL_GUARDED_BY(locks_mu_);
  absl::Mutex create_mu_;  // one Create at a time (ids and request records)
};

// Transient failures worth retrying (source unreachable or slow).
bool Transient(const absl::Status& s);

}  // namespace stockpile::catalogue::allocation
