#include "services/level/level_service.h"

#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/auth/authorizer.h"
#include "services/common/auth/interceptor.h"
#include "services/common/status_util.h"
#include "services/common/validation.h"
#include "services/level/backup.h"
#include "services/level/proto_util.h"

namespace stockpile::level {
namespace {

using namespace stockpile::v1;  // NOLINT
using common::ToGrpc;

constexpr int kMaxBatchOperations = 1000;

absl::Status CheckMutation(absl::string_view request_id, absl::string_view actor) {
  absl::Status s = common::CheckId("request_id", request_id, true);
  if (!s.ok()) return s;
  return common::CheckText("actor", actor, common::kMaxIdLength, true);
}

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx, const absl::Status& s) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpc(s));
  return reactor;
}

template <typename T, typename Response>
grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* ctx, absl::StatusOr<T> result,
                                Response* resp) {
  if (result.ok()) *resp = std::move(*result);
  return Done(ctx, result.status());
}

// Streams the change entries after a sequence, then live ones as groups commit. Reads happen
// in the core's notifier thread or in gRPC's reaction threads, never on the writer thread.
class WatchChangesReactor final : public grpc::ServerWriteReactor<WatchChangesResponse> {
 public:
  WatchChangesReactor(LevelCore* core, const LevelQueries* queries, uint64_t from, size_t max_batch,
                      const std::atomic<bool>* ending)
      : core_(core), queries_(queries), ending_(ending), sent_(from), max_batch_(max_batch) {
    listener_ = core_->AddSequenceListener([this](uint64_t) { SendMore(); });
    SendMore();
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
      if (!ok) {
        FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
        return;
      }
    }
    SendMore();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    if (!writing_) FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    core_->RemoveSequenceListener(listener_);
    delete this;
  }

 private:
  void SendMore() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (writing_ || finished_) return;
      if (cancelled_) {
        FinishLocked(grpc::Status::CANCELLED);
        return;
      }
      if (ending_->load()) {
        FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                  "the level service is shutting down; reconnect"));
        return;
      }
      if (sent_ >= core_->last_sequence()) return;
      std::vector<ChangeEntry> entries;
      absl::Status s = queries_->ReadChanges(sent_, max_batch_, 4 << 20, &entries);
      if (!s.ok()) {
        FinishLocked(ToGrpc(s));
        return;
      }
      if (entries.empty()) return;
      response_.Clear();
      for (auto& e : entries) *response_.add_entries() = std::move(e);
      sent_ = response_.entries(response_.entries_size() - 1).sequence();
      response_.set_head_sequence(core_->last_sequence());
      writing_ = true;
    }
    StartWrite(&response_);  // outside the lock: a reaction may run inline
  }

  void FinishLocked(const grpc::Status& status) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  LevelCore* core_;
  const LevelQueries* queries_;
  const std::atomic<bool>* ending_;
  std::mutex mu_;
  uint64_t sent_;
  size_t max_batch_;
  bool writing_ = false;
  bool finished_ = false;
  bool cancelled_ = false;
  int listener_ = 0;
  WatchChangesResponse response_;
};

// The one message of a stream whose consumer follows another history than this instance's
// (see WatchChangesResponse.history_diverged), then the end of the stream.
class DivergedStream final : public grpc::ServerWriteReactor<WatchChangesResponse> {
 public:
  DivergedStream(uint64_t head, std::string note) {
    response_.set_head_sequence(head);
    response_.set_history_diverged(true);
    response_.set_history_note(std::move(note));
    StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    Finish(ok ? grpc::Status::OK : grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
  }
  void OnDone() override { delete this; }

 private:
  WatchChangesResponse response_;
};

// A change stream refused before it starts.
class RefusedStream final : public grpc::ServerWriteReactor<WatchChangesResponse> {
 public:
  explicit RefusedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

template <typename OpMessage>
Operation MakeOp(const OpMessage& op);
template <>
Operation MakeOp(const ReceiveOp& op) {
  Operation o;
  *o.mutable_receive() = op;
  return o;
}
template <>
Operation MakeOp(const IssueOp& op) {
  Operation o;
  *o.mutable_issue() = op;
  return o;
}
template <>
Operation MakeOp(const StocktakeOp& op) {
  Operation o;
  *o.mutable_stocktake() = op;
  return o;
}
template <>
Operation MakeOp(const HoldOp& op) {
  Operation o;
  *o.mutable_hold() = op;
  return o;
}
template <>
Operation MakeOp(const ReleaseOp& op) {
  Operation o;
  *o.mutable_release() = op;
  return o;
}
template <>
Operation MakeOp(const ShipOp& op) {
  Operation o;
  *o.mutable_ship() = op;
  return o;
}
template <>
Operation MakeOp(const ReceiveTransferOp& op) {
  Operation o;
  *o.mutable_receive_transfer() = op;
  return o;
}
template <>
Operation MakeOp(const ConfirmDeliveryOp& op) {
  Operation o;
  *o.mutable_confirm_delivery() = op;
  return o;
}

}  // namespace

LevelServiceImpl::LevelServiceImpl(LevelCore* core, InstanceIdentity identity)
    : core_(core),
      queries_(core->store(), core->reference(), core->hosting(), core->clock()),
      identity_(std::move(identity)) {
  SetMessageAllocatorFor_ApplyBatch(&batch_allocator_);
}

template <typename Response>
CommandCallback LevelServiceImpl::FinishWith(Unary* reactor, Response* resp) {
  return [reactor, resp](CommandResult r) {
    if (r.status.ok()) {
      if (r.message != nullptr) {
        resp->GetReflection()->Swap(resp, r.message.get());  // no copy of a large batch result
      } else if (!resp->ParseFromString(r.response)) {
        r.status = absl::InternalError("stored response is unreadable");
      }
    }
    reactor->Finish(ToGrpc(r.status));
  };
}

// Every handler starts from the verdict the auth interceptor recorded for the call (who is
// calling, and whether the rules table lets them make this call on these regions); the token's
// subject is what the ledger records as the actor.
template <typename Request, typename Response>
grpc::ServerUnaryReactor* LevelServiceImpl::Mutate(Ctx* ctx, absl::string_view method,
                                                   const Request& req, std::vector<Operation> ops,
                                                   Response* resp, absl::Status request_shape) {
  auto who = auth::CallIdentity(ctx);
  if (!who.ok()) return Done(ctx, who.status());
  // Told only to a caller the verdict allows: a refused caller learns nothing of the request.
  if (!request_shape.ok()) return Done(ctx, request_shape);
  const std::string actor = auth::AuditActor(*who, req.actor());
  absl::Status s = CheckMutation(req.request_id(), actor);
  if (!s.ok()) return Done(ctx, s);
  auto* reactor = ctx->DefaultReactor();
  core_->ApplyOperations(method, req.request_id(), actor, std::move(ops), req,
                         FinishWith(reactor, resp), resp->GetArena());
  return reactor;
}

template <typename Request, typename Submit>
grpc::ServerUnaryReactor* LevelServiceImpl::Admin(Ctx* ctx, const Request& req, Submit submit) {
  auto who = auth::CallIdentity(ctx);
  if (!who.ok()) return Done(ctx, who.status());
  Request with_actor = req;
  with_actor.set_actor(auth::AuditActor(*who, req.actor()));
  absl::Status s = CheckMutation(with_actor.request_id(), with_actor.actor());
  if (!s.ok()) return Done(ctx, s);
  auto* reactor = ctx->DefaultReactor();
  submit(with_actor, reactor);
  return reactor;
}

template <typename Response, typename QueryFn>
grpc::ServerUnaryReactor* LevelServiceImpl::Query(Ctx* ctx, Response* resp, QueryFn query) {
  auto who = auth::CallIdentity(ctx);
  if (!who.ok()) return Done(ctx, who.status());
  return Reply(ctx, query(), resp);
}

#define STOCKPILE_MOVEMENT_METHOD(Method)                                                  \
  grpc::ServerUnaryReactor* LevelServiceImpl::Method(Ctx* ctx, const Method##Request* req, \
                                                     MovementResult* resp) {               \
    return Mutate(ctx, #Method, *req, {MakeOp(req->op())}, resp);                          \
  }
STOCKPILE_MOVEMENT_METHOD(Receive)
STOCKPILE_MOVEMENT_METHOD(Issue)
STOCKPILE_MOVEMENT_METHOD(Stocktake)
STOCKPILE_MOVEMENT_METHOD(Hold)
STOCKPILE_MOVEMENT_METHOD(Release)
STOCKPILE_MOVEMENT_METHOD(Ship)
STOCKPILE_MOVEMENT_METHOD(ReceiveTransfer)
STOCKPILE_MOVEMENT_METHOD(ConfirmDelivery)
#undef STOCKPILE_MOVEMENT_METHOD

grpc::ServerUnaryReactor* LevelServiceImpl::ApplyBatch(Ctx* ctx, const ApplyBatchRequest* req,
                                                       ApplyBatchResponse* resp) {
  const int n = req->operations_size();
  if (n == 0 || n > kMaxBatchOperations) {
    return Mutate(ctx, "ApplyBatch", *req, {}, resp,
                  absl::InvalidArgumentError(absl::StrCat(
                      "a batch holds 1 to ", kMaxBatchOperations, " operations; got ", n)));
  }
  std::vector<Operation> ops(req->operations().begin(), req->operations().end());
  return Mutate(ctx, "ApplyBatch", *req, std::move(ops), resp);
}

grpc::ServerUnaryReactor* LevelServiceImpl::CreateWarehouse(Ctx* ctx,
                                                            const CreateWarehouseRequest* req,
                                                            Warehouse* resp) {
  return Admin(ctx, *req, [&](const auto& r, Unary* reactor) {
    core_->CreateWarehouse(r, FinishWith(reactor, resp));
  });
}

grpc::ServerUnaryReactor* LevelServiceImpl::UpdateWarehouse(Ctx* ctx,
                                                            const UpdateWarehouseRequest* req,
                                                            Warehouse* resp) {
  return Admin(ctx, *req, [&](const auto& r, Unary* reactor) {
    core_->UpdateWarehouse(r, FinishWith(reactor, resp));
  });
}

grpc::ServerUnaryReactor* LevelServiceImpl::SetQuota(Ctx* ctx, const SetQuotaRequest* req,
                                                     Quota* resp) {
  return Admin(ctx, *req, [&](const auto& r, Unary* reactor) {
    core_->SetQuota(r, FinishWith(reactor, resp));
  });
}

grpc::ServerUnaryReactor* LevelServiceImpl::SetReserve(Ctx* ctx, const SetReserveRequest* req,
                                                       Reserve* resp) {
  return Admin(ctx, *req, [&](const auto& r, Unary* reactor) {
    core_->SetReserve(r, FinishWith(reactor, resp));
  });
}

grpc::ServerUnaryReactor* LevelServiceImpl::GetWarehouse(Ctx* ctx, const GetWarehouseRequest* req,
                                                         Warehouse* resp) {
  return Query(ctx, resp, [&] { return queries_.GetWarehouse(req->name()); });
}

grpc::ServerUnaryReactor* LevelServiceImpl::ListWarehouses(Ctx* ctx,
                                                           const ListWarehousesRequest* req,
                                                           ListWarehousesResponse* resp) {
  return Query(ctx, resp, [&] { return queries_.ListWarehouses(*req); });
}

grpc::ServerUnaryReactor* LevelServiceImpl::ListQuotas(Ctx* ctx, const ListQuotasRequest* req,
                                                       ListQuotasResponse* resp) {
  return Query(ctx, resp, [&] { return queries_.ListQuotas(*req); });
}

grpc::ServerUnaryReactor* LevelServiceImpl::ListReserves(Ctx* ctx, const ListReservesRequest* req,
                                                         ListReservesResponse* resp) {
  return Query(ctx, resp, [&] { return queries_.ListReserves(*req); });
}

grpc::ServerUnaryReactor* LevelServiceImpl::ListShortages(Ctx* ctx,
                                                          const ListQuotaStatusRequest* req,
                                                          ListQuotaStatusResponse* resp) {
  return Query(ctx, resp, [&] { return queries_.ListQuotaStatus(*req, /*shortages=*/true); });
}

grpc::ServerUnaryReactor* LevelServiceImpl::ListOverstock(Ctx* ctx,
                                                          const ListQuotaStatusRequest* req,
                                                          ListQuotaStatusResponse* resp) {
  return Query(ctx, resp, [&] { return queries_.ListQuotaStatus(*req, /*shortages=*/false); });
}

grpc::ServerUnaryReactor* LevelServiceImpl::ListExpiringLots(Ctx* ctx,
                                                             const ListExpiringLotsRequest* req,
                                                             ListExpiringLotsResponse* resp) {
  return Query(ctx, resp, [&] { return queries_.ListExpiringLots(*req); });
}

grpc::ServerUnaryReactor* LevelServiceImpl::GetBalance(Ctx* ctx, const GetBalanceRequest* req,
                                                       Balance* resp) {
  return Query(ctx, resp, [&] { return queries_.GetBalance(*req); });
}

grpc::ServerUnaryReactor* LevelServiceImpl::ListBalances(Ctx* ctx, const ListBalancesRequest* req,
                                                         ListBalancesResponse* resp) {
  return Query(ctx, resp, [&] { return queries_.ListBalances(*req); });
}

grpc::ServerUnaryReactor* LevelServiceImpl::ListMovements(Ctx* ctx, const ListMovementsRequest* req,
                                                          ListMovementsResponse* resp) {
  return Query(ctx, resp, [&] { return queries_.ListMovements(*req); });
}

grpc::ServerUnaryReactor* LevelServiceImpl::GetHold(Ctx* ctx, const GetHoldRequest* req,
                                                    v1::Hold* resp) {
  return Query(ctx, resp, [&] { return queries_.GetHold(req->name()); });
}

grpc::ServerUnaryReactor* LevelServiceImpl::ListHolds(Ctx* ctx, const ListHoldsRequest* req,
                                                      ListHoldsResponse* resp) {
  return Query(ctx, resp, [&] { return queries_.ListHolds(*req); });
}

grpc::ServerUnaryReactor* LevelServiceImpl::GetLedgerTotals(Ctx* ctx, const GetLedgerTotalsRequest*,
                                                            GetLedgerTotalsResponse* resp) {
  if (auto who = auth::CallIdentity(ctx); !who.ok()) return Done(ctx, who.status());
  for (auto& t : core_->Totals()) *resp->add_items() = std::move(t);
  return Done(ctx, absl::OkStatus());
}

void LevelServiceImpl::SetBackups(std::string dir, int keep) {
  const Hosting& hosting = core_->hosting();
  BackupOrigin origin{std::string(common::LevelName(hosting.level())), hosting.prefixes(), ""};
  {
    absl::MutexLock lock(&identity_mu_);
    origin.instance_id = identity_.instance_id;  // "": derived from the port, not known yet
  }
  backups_ = std::make_shared<BackupKeeper>(std::move(dir), keep, std::move(origin));
}

grpc::ServerUnaryReactor* LevelServiceImpl::CreateBackup(Ctx* ctx, const CreateBackupRequest* req,
                                                         Backup* resp) {
  if (auto who = auth::CallIdentity(ctx); !who.ok()) return Done(ctx, who.status());
  if (auto s = common::CheckId("request_id", req->request_id(), true); !s.ok()) {
    return Done(ctx, s);
  }
  auto* reactor = ctx->DefaultReactor();
  // Flushing the memtables and linking or copying the files takes from milliseconds to
  // minutes: not on one of gRPC's callback threads. The server's shutdown waits for it.
  std::thread([this, reactor, resp, request_id = req->request_id()] {
    auto backup = backups_->Take(core_->store(), request_id, [this] {
      return BackupPoint{core_->last_sequence(), core_->clock().NowMicros()};
    });
    if (backup.ok()) *resp = std::move(*backup);
    reactor->Finish(ToGrpc(backup.status()));
  }).detach();
  return reactor;
}

grpc::ServerUnaryReactor* LevelServiceImpl::ListBackups(Ctx* ctx, const ListBackupsRequest*,
                                                        ListBackupsResponse* resp) {
  if (auto who = auth::CallIdentity(ctx); !who.ok()) return Done(ctx, who.status());
  if (backups_->dir().empty()) {
    return Done(ctx, absl::FailedPreconditionError(
                         "this instance runs without --backup-dir: it keeps no backups"));
  }
  for (auto& backup : backups_->List()) *resp->add_backups() = std::move(backup);
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* LevelServiceImpl::GetInstanceInfo(Ctx* ctx, const GetInstanceInfoRequest*,
                                                            InstanceInfo* resp) {
  if (auto who = auth::CallIdentity(ctx); !who.ok()) return Done(ctx, who.status());
  {
    absl::MutexLock lock(&identity_mu_);
    resp->set_instance_id(identity_.instance_id);
    resp->set_version(identity_.version);
    resp->set_metrics_address(identity_.metrics_address);
  }
  resp->set_level(core_->hosting().level());
  for (const auto& p : core_->hosting().prefixes()) resp->add_region_prefixes(p);
  resp->set_last_sequence(core_->last_sequence());
  resp->set_first_retained_sequence(1);
  *resp->mutable_start_time() = ToTimestamp(core_->start_micros());
  resp->set_warehouse_count(core_->warehouse_count());
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* LevelServiceImpl::ListItems(Ctx* ctx, const ListItemsRequest*,
                                                      ListItemsResponse* resp) {
  if (auto who = auth::CallIdentity(ctx); !who.ok()) return Done(ctx, who.status());
  for (const auto& item : core_->reference().items()) {
    *resp->add_items() = common::ReferenceData::ToProto(item);
  }
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* LevelServiceImpl::GetRegion(Ctx* ctx, const GetRegionRequest* req,
                                                      Region* resp) {
  if (auto who = auth::CallIdentity(ctx); !who.ok()) return Done(ctx, who.status());
  absl::string_view name = req->name();
  if (!absl::StartsWith(name, "regions/")) {
    return Done(ctx, absl::InvalidArgumentError("region name must be regions/{code}"));
  }
  const auto* region = core_->reference().FindRegion(name.substr(8));
  if (region == nullptr) {
    return Done(ctx, absl::NotFoundError(absl::StrCat(
                         "region ", name.substr(8, 20),
                         " is not known here (townships and villages are loaded only under "
                         "this instance's prefixes)")));
  }
  *resp = core_->reference().ToProto(*region);
  return Done(ctx, absl::OkStatus());
}

grpc::ServerWriteReactor<WatchChangesResponse>* LevelServiceImpl::WatchChanges(
    Ctx* ctx, const WatchChangesRequest* req) {
  if (auto who = auth::CallIdentity(ctx); !who.ok()) return new RefusedStream(ToGrpc(who.status()));
  const size_t max_batch =
      req->max_batch() <= 0 ? 256 : static_cast<size_t>(std::min(req->max_batch(), 4096));
  const uint64_t head = core_->last_sequence();
  auto mismatch = queries_.HistoryMismatch(
      req->from_sequence(), req->has_from_commit_time() ? &req->from_commit_time() : nullptr, head);
  if (!mismatch.ok()) return new RefusedStream(ToGrpc(mismatch.status()));
  if (!mismatch->empty()) return new DivergedStream(head, std::move(*mismatch));
  return new WatchChangesReactor(core_, &queries_, req->from_sequence(), max_batch,
                                 &streams_ending_);
}

void LevelServiceImpl::EndStreams() {
  streams_ending_ = true;
  core_->NotifySequenceListeners();  // each stream looks, and ends
}

}  // namespace stockpile::level
