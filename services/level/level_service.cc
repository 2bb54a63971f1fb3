#include "services/level/level_service.h"


#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/auth/authorizer.h"
#include "services/common/auth/interceptor.h"
#include "services/common/status_util.h"
#include "services/common/validation.h"
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

using Call = common::UnaryCall;

void Done(Call* call, const absl::Status& s) { call->Finish(ToGrpc(s)); }

template <typename T, typename Response>
void Reply(Call* call, absl::StatusOr<T> result, Response* resp) {
  if (result.ok()) *resp = std::move(*result);
  Done(call, result.status());
}

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
      identity_(std::move(identity)) {}

template <typename Response>
CommandCallback LevelServiceImpl::FinishWith(Call* call, Response* resp) {
  return [call, resp](CommandResult r) {
    if (r.status.ok()) {
      if (r.message != nullptr) {
        resp->GetReflection()->Swap(resp, r.message.get());  // no copy of a large batch result
      } else if (!resp->ParseFromString(r.response)) {
        r.status = absl::InternalError("stored response is unreadable");
      }
    }
    call->Finish(ToGrpc(r.status));
  };
}

// Every handler starts from the verdict the auth interceptor recorded for the call (who is
// calling, and whether the rules table lets them make this call on these regions); the token's
// subject is what the ledger records as the actor.
template <typename Request, typename Response>
void LevelServiceImpl::Mutate(Call* call, absl::string_view method, const Request& req,
                              std::vector<Operation> ops, Response* resp,
                              absl::Status request_shape) {
  auto who = auth::CallIdentity(call->context());
  if (!who.ok()) return Done(call, who.status());
  // Told only to a caller the verdict allows: a refused caller learns nothing of the request.
  if (!request_shape.ok()) return Done(call, request_shape);
  const std::string actor = auth::AuditActor(*who, req.actor());
  absl::Status s = CheckMutation(req.request_id(), actor);
  if (!s.ok()) return Done(call, s);
  core_->ApplyOperations(method, req.request_id(), actor, std::move(ops), req,
                         FinishWith(call, resp), resp->GetArena());
}

template <typename Request, typename Submit>
void LevelServiceImpl::Admin(Call* call, const Request& req, Submit submit) {
  auto who = auth::CallIdentity(call->context());
  if (!who.ok()) return Done(call, who.status());
  Request with_actor = req;
  with_actor.set_actor(auth::AuditActor(*who, req.actor()));
  absl::Status s = CheckMutation(with_actor.request_id(), with_actor.actor());
  if (!s.ok()) return Done(call, s);
  submit(with_actor, call);
}

template <typename Response, typename QueryFn>
void LevelServiceImpl::Query(Call* call, Response* resp, QueryFn query) {
  auto who = auth::CallIdentity(call->context());
  if (!who.ok()) return Done(call, who.status());
  Reply(call, query(), resp);
}

#define STOCKPILE_MOVEMENT_METHOD(Method)                                                       \
  void LevelServiceImpl::Method(Call* call, const Method##Request& req, MovementResult* resp) { \
    Mutate(call, #Method, req, {MakeOp(req.op())}, resp);                                       \
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

void LevelServiceImpl::ApplyBatch(Call* call, const ApplyBatchRequest& req,
                                  ApplyBatchResponse* resp) {
  const int n = req.operations_size();
  if (n == 0 || n > kMaxBatchOperations) {
    return Mutate(call, "ApplyBatch", req, {}, resp,
                  absl::InvalidArgumentError(absl::StrCat(
                      "a batch holds 1 to ", kMaxBatchOperations, " operations; got ", n)));
  }
  std::vector<Operation> ops(req.operations().begin(), req.operations().end());
  Mutate(call, "ApplyBatch", req, std::move(ops), resp);
}

void LevelServiceImpl::CreateWarehouse(Call* call, const CreateWarehouseRequest& req,
                                       Warehouse* resp) {
  Admin(call, req, [&](const auto& r, Call* c) { core_->CreateWarehouse(r, FinishWith(c, resp)); });
}

void LevelServiceImpl::UpdateWarehouse(Call* call, const UpdateWarehouseRequest& req,
                                       Warehouse* resp) {
  Admin(call, req, [&](const auto& r, Call* c) { core_->UpdateWarehouse(r, FinishWith(c, resp)); });
}

void LevelServiceImpl::SetQuota(Call* call, const SetQuotaRequest& req, Quota* resp) {
  Admin(call, req, [&](const auto& r, Call* c) { core_->SetQuota(r, FinishWith(c, resp)); });
}

void LevelServiceImpl::SetReserve(Call* call, const SetReserveRequest& req, Reserve* resp) {
  Admin(call, req, [&](const auto& r, Call* c) { core_->SetReserve(r, FinishWith(c, resp)); });
}

void LevelServiceImpl::GetWarehouse(Call* call, const GetWarehouseRequest& req, Warehouse* resp) {
  Query(call, resp, [&] { return queries_.GetWarehouse(req.name()); });
}

void LevelServiceImpl::ListWarehouses(Call* call, const ListWarehousesRequest& req,
                                      ListWarehousesResponse* resp) {
  Query(call, resp, [&] { return queries_.ListWarehouses(req); });
}

void LevelServiceImpl::ListQuotas(Call* call, const ListQuotasRequest& req,
                                  ListQuotasResponse* resp) {
  Query(call, resp, [&] { return queries_.ListQuotas(req); });
}

void LevelServiceImpl::ListReserves(Call* call, const ListReservesRequest& req,
                                    ListReservesResponse* resp) {
  Query(call, resp, [&] { return queries_.ListReserves(req); });
}

void LevelServiceImpl::ListShortages(Call* call, const ListQuotaStatusRequest& req,
                                     ListQuotaStatusResponse* resp) {
  Query(call, resp, [&] { return queries_.ListQuotaStatus(req, /*shortages=*/true); });
}

void LevelServiceImpl::ListOverstock(Call* call, const ListQuotaStatusRequest& req,
                                     ListQuotaStatusResponse* resp) {
  Query(call, resp, [&] { return queries_.ListQuotaStatus(req, /*shortages=*/false); });
}

void LevelServiceImpl::ListExpiringLots(Call* call, const ListExpiringLotsRequest& req,
                                        ListExpiringLotsResponse* resp) {
  Query(call, resp, [&] { return queries_.ListExpiringLots(req); });
}

void LevelServiceImpl::GetBalance(Call* call, const GetBalanceRequest& req, Balance* resp) {
  Query(call, resp, [&] { return queries_.GetBalance(req); });
}

void LevelServiceImpl::ListBalances(Call* call, const ListBalancesRequest& req,
                                    ListBalancesResponse* resp) {
  Query(call, resp, [&] { return queries_.ListBalances(req); });
}

void LevelServiceImpl::ListMovements(Call* call, const ListMovementsRequest& req,
                                     ListMovementsResponse* resp) {
  Query(call, resp, [&] { return queries_.ListMovements(req); });
}

void LevelServiceImpl::GetHold(Call* call, const GetHoldRequest& req, v1::Hold* resp) {
  Query(call, resp, [&] { return queries_.GetHold(req.name()); });
}

void LevelServiceImpl::ListHolds(Call* call, const ListHoldsRequest& req, ListHoldsResponse* resp) {
  Query(call, resp, [&] { return queries_.ListHolds(req); });
}

void LevelServiceImpl::GetLedgerTotals(Call* call, const GetLedgerTotalsRequest&,
                                       GetLedgerTotalsResponse* resp) {
  if (auto who = auth::CallIdentity(call->context()); !who.ok()) return Done(call, who.status());
  for (auto& t : core_->Totals()) *resp->add_items() = std::move(t);
  Done(call, absl::OkStatus());
}

void LevelServiceImpl::GetInstanceInfo(Call* call, const GetInstanceInfoRequest&,
                                       InstanceInfo* resp) {
  if (auto who = auth::CallIdentity(call->context()); !who.ok()) return Done(call, who.status());
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
  Done(call, absl::OkStatus());
}

void LevelServiceImpl::ListItems(Call* call, const ListItemsRequest&, ListItemsResponse* resp) {
  if (auto who = auth::CallIdentity(call->context()); !who.ok()) return Done(call, who.status());
  for (const auto& item : core_->reference().items()) {
    *resp->add_items() = common::ReferenceData::ToProto(item);
  }
  Done(call, absl::OkStatus());
}

void LevelServiceImpl::GetRegion(Call* call, const GetRegionRequest& req, Region* resp) {
  if (auto who = auth::CallIdentity(call->context()); !who.ok()) return Done(call, who.status());
  absl::string_view name = req.name();
  if (!absl::StartsWith(name, "regions/")) {
    return Done(call, absl::InvalidArgumentError("region name must be regions/{code}"));
  }
  const auto* region = core_->reference().FindRegion(name.substr(8));
  if (region == nullptr) {
    return Done(call, absl::NotFoundError(absl::StrCat(
                          "region ", name.substr(8, 20),
                          " is not known here (townships and villages are loaded only under "
                          "this instance's prefixes)")));
  }
  *resp = core_->reference().ToProto(*region);
  Done(call, absl::OkStatus());
}

// Streams the change entries after a sequence, then live ones as groups commit. Reads happen
// on the core's notifier thread or the queue's thread, never on the writer thread.
class LevelServiceImpl::WatchChangesCall final : public common::AsyncStream<WatchChangesResponse> {
 public:
  WatchChangesCall(LevelServiceImpl* service, grpc::ServerCompletionQueue* cq,
                   common::AsyncServerThreads* threads)
      : AsyncStream(threads), service_(service), cq_(cq), threads_(threads) {
    service_->RequestWatchChanges(context(), &request_, writer(), cq, cq, arrived_tag());
  }

 private:
  void AwaitAnother() override { new WatchChangesCall(service_, cq_, threads_); }

  void Started() override {
    if (auto who = auth::CallIdentity(context()); !who.ok()) {
      refused_ = ToGrpc(who.status());
      return;
    }
    sent_ = request_.from_sequence();
    max_batch_ =
        request_.max_batch() <= 0 ? 256 : static_cast<size_t>(std::min(request_.max_batch(), 4096));
    listener_ = service_->core_->AddSequenceListener([this](uint64_t) { Poke(); });
  }

  NextResult Next(WatchChangesResponse* out, grpc::Status* end_status) override {
    if (!refused_.ok()) {
      *end_status = refused_;
      return NextResult::kEnd;
    }
    LevelCore* core = service_->core_;
    if (sent_ >= core->last_sequence()) return NextResult::kNothingYet;
    std::vector<ChangeEntry> entries;
    absl::Status s = service_->queries_.ReadChanges(sent_, max_batch_, 4 << 20, &entries);
    if (!s.ok()) {
      *end_status = ToGrpc(s);
      return NextResult::kEnd;
    }
    if (entries.empty()) return NextResult::kNothingYet;
    out->Clear();
    for (auto& e : entries) *out->add_entries() = std::move(e);
    sent_ = out->entries(out->entries_size() - 1).sequence();
    out->set_head_sequence(core->last_sequence());
    return NextResult::kSend;
  }

  void Stopping() override {
    if (listener_ != 0) service_->core_->RemoveSequenceListener(listener_);
  }

  LevelServiceImpl* service_;
  grpc::ServerCompletionQueue* cq_;
  common::AsyncServerThreads* threads_;
  WatchChangesRequest request_;
  grpc::Status refused_;
  uint64_t sent_ = 0;
  size_t max_batch_ = 256;
  int listener_ = 0;
};

template <typename Request, typename Response>
void LevelServiceImpl::Await(std::type_identity_t<RequestFn<Request, Response>> request,
                             void (LevelServiceImpl::*handler)(Call*, const Request&, Response*),
                             common::AsyncServerThreads& threads) {
  using Unary = common::AsyncUnary<AsyncService, Request, Response>;
  auto kept = std::make_shared<typename Unary::Handler>(
      [this, handler](Call* call, const Request& req, Response* resp) {
        (this->*handler)(call, req, resp);
      });
  handlers_.push_back(kept);
  for (grpc::ServerCompletionQueue* cq : threads.queues()) {
    Unary::Await(this, request, kept.get(), cq, &threads);
  }
}

void LevelServiceImpl::Serve(common::AsyncServerThreads& threads) {
  using S = LevelServiceImpl;
  using A = AsyncService;
  Await<CreateWarehouseRequest, Warehouse>(&A::RequestCreateWarehouse, &S::CreateWarehouse,
                                           threads);
  Await<GetWarehouseRequest, Warehouse>(&A::RequestGetWarehouse, &S::GetWarehouse, threads);
  Await<ListWarehousesRequest, ListWarehousesResponse>(&A::RequestListWarehouses,
                                                       &S::ListWarehouses, threads);
  Await<UpdateWarehouseRequest, Warehouse>(&A::RequestUpdateWarehouse, &S::UpdateWarehouse,
                                           threads);
  Await<ReceiveRequest, MovementResult>(&A::RequestReceive, &S::Receive, threads);
  Await<IssueRequest, MovementResult>(&A::RequestIssue, &S::Issue, threads);
  Await<StocktakeRequest, MovementResult>(&A::RequestStocktake, &S::Stocktake, threads);
  Await<HoldRequest, MovementResult>(&A::RequestHold, &S::Hold, threads);
  Await<ReleaseRequest, MovementResult>(&A::RequestRelease, &S::Release, threads);
  Await<ShipRequest, MovementResult>(&A::RequestShip, &S::Ship, threads);
  Await<ReceiveTransferRequest, MovementResult>(&A::RequestReceiveTransfer, &S::ReceiveTransfer,
                                                threads);
  Await<ConfirmDeliveryRequest, MovementResult>(&A::RequestConfirmDelivery, &S::ConfirmDelivery,
                                                threads);
  Await<ApplyBatchRequest, ApplyBatchResponse>(&A::RequestApplyBatch, &S::ApplyBatch, threads);
  Await<SetQuotaRequest, Quota>(&A::RequestSetQuota, &S::SetQuota, threads);
  Await<ListQuotasRequest, ListQuotasResponse>(&A::RequestListQuotas, &S::ListQuotas, threads);
  Await<SetReserveRequest, Reserve>(&A::RequestSetReserve, &S::SetReserve, threads);
  Await<ListReservesRequest, ListReservesResponse>(&A::RequestListReserves, &S::ListReserves,
                                                   threads);
  Await<ListQuotaStatusRequest, ListQuotaStatusResponse>(&A::RequestListShortages,
                                                         &S::ListShortages, threads);
  Await<ListQuotaStatusRequest, ListQuotaStatusResponse>(&A::RequestListOverstock,
                                                         &S::ListOverstock, threads);
  Await<ListExpiringLotsRequest, ListExpiringLotsResponse>(&A::RequestListExpiringLots,
                                                           &S::ListExpiringLots, threads);
  Await<GetBalanceRequest, Balance>(&A::RequestGetBalance, &S::GetBalance, threads);
  Await<ListBalancesRequest, ListBalancesResponse>(&A::RequestListBalances, &S::ListBalances,
                                                   threads);
  Await<ListMovementsRequest, ListMovementsResponse>(&A::RequestListMovements, &S::ListMovements,
                                                     threads);
  Await<GetHoldRequest, v1::Hold>(&A::RequestGetHold, &S::GetHold, threads);
  Await<ListHoldsRequest, ListHoldsResponse>(&A::RequestListHolds, &S::ListHolds, threads);
  Await<GetLedgerTotalsRequest, GetLedgerTotalsResponse>(&A::RequestGetLedgerTotals,
                                                         &S::GetLedgerTotals, threads);
  Await<GetInstanceInfoRequest, InstanceInfo>(&A::RequestGetInstanceInfo, &S::GetInstanceInfo,
                                              threads);
  Await<ListItemsRequest, ListItemsResponse>(&A::RequestListItems, &S::ListItems, threads);
  Await<GetRegionRequest, Region>(&A::RequestGetRegion, &S::GetRegion, threads);
  for (grpc::ServerCompletionQueue* cq : threads.queues()) {
    new WatchChangesCall(this, cq, &threads);
  }
}

}  // namespace stockpile::level
