#pragma once

#include <memory>
#include <type_traits>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "services/common/async_server.h"
#include "services/level/level_core.h"
#include "services/level/level_queries.h"
#include "stockpile/v1/level_service.grpc.pb.h"

namespace stockpile::level {

namespace v1 = stockpile::v1;

struct InstanceIdentity {
  std::string instance_id;
  std::string version;
  std::string metrics_address;  // HOST:PORT of the metrics page, or empty
};

// stockpile.v1.LevelService on gRPC's async API (services/common/async_server.h says why):
// each handler validates what only the transport knows (request_id, actor, batch size), calls
// the core and maps its status. Handlers run on the completion-queue threads; a mutation's
// answer goes out from the core's answering thread once it is durable.
class LevelServiceImpl final : public stockpile::v1::LevelService::AsyncService {
 public:
  LevelServiceImpl(LevelCore* core, InstanceIdentity identity);

  using Call = common::UnaryCall;

  // Awaits every method on every queue of `threads` (after the server is built).
  void Serve(common::AsyncServerThreads& threads);

  void CreateWarehouse(Call*, const v1::CreateWarehouseRequest&, v1::Warehouse*);
  void GetWarehouse(Call*, const v1::GetWarehouseRequest&, v1::Warehouse*);
  void ListWarehouses(Call*, const v1::ListWarehousesRequest&, v1::ListWarehousesResponse*);
  void UpdateWarehouse(Call*, const v1::UpdateWarehouseRequest&, v1::Warehouse*);
  void Receive(Call*, const v1::ReceiveRequest&, v1::MovementResult*);
  void Issue(Call*, const v1::IssueRequest&, v1::MovementResult*);
  void Stocktake(Call*, const v1::StocktakeRequest&, v1::MovementResult*);
  void Hold(Call*, const v1::HoldRequest&, v1::MovementResult*);
  void Release(Call*, const v1::ReleaseRequest&, v1::MovementResult*);
  void Ship(Call*, const v1::ShipRequest&, v1::MovementResult*);
  void ReceiveTransfer(Call*, const v1::ReceiveTransferRequest&, v1::MovementResult*);
  void ConfirmDelivery(Call*, const v1::ConfirmDeliveryRequest&, v1::MovementResult*);
  void ApplyBatch(Call*, const v1::ApplyBatchRequest&, v1::ApplyBatchResponse*);
  void SetQuota(Call*, const v1::SetQuotaRequest&, v1::Quota*);
  void ListQuotas(Call*, const v1::ListQuotasRequest&, v1::ListQuotasResponse*);
  void SetReserve(Call*, const v1::SetReserveRequest&, v1::Reserve*);
  void ListReserves(Call*, const v1::ListReservesRequest&, v1::ListReservesResponse*);
  void ListShortages(Call*, const v1::ListQuotaStatusRequest&, v1::ListQuotaStatusResponse*);
  void ListOverstock(Call*, const v1::ListQuotaStatusRequest&, v1::ListQuotaStatusResponse*);
  void ListExpiringLots(Call*, const v1::ListExpiringLotsRequest&, v1::ListExpiringLotsResponse*);
  void GetBalance(Call*, const v1::GetBalanceRequest&, v1::Balance*);
  void ListBalances(Call*, const v1::ListBalancesRequest&, v1::ListBalancesResponse*);
  void ListMovements(Call*, const v1::ListMovementsRequest&, v1::ListMovementsResponse*);
  void GetHold(Call*, const v1::GetHoldRequest&, v1::Hold*);
  void ListHolds(Call*, const v1::ListHoldsRequest&, v1::ListHoldsResponse*);
  void GetLedgerTotals(Call*, const v1::GetLedgerTotalsRequest&, v1::GetLedgerTotalsResponse*);
  void GetInstanceInfo(Call*, const v1::GetInstanceInfoRequest&, v1::InstanceInfo*);
  void ListItems(Call*, const v1::ListItemsRequest&, v1::ListItemsResponse*);
  void GetRegion(Call*, const v1::GetRegionRequest&, v1::Region*);

  // The id is known only once the port is bound (default level-host-port).
  void SetInstanceId(std::string id) {
    absl::MutexLock lock(&identity_mu_);
    identity_.instance_id = std::move(id);
  }

 private:
  class WatchChangesCall;

  using AsyncService = stockpile::v1::LevelService::AsyncService;
  template <typename Request, typename Response>
  using RequestFn = typename common::AsyncUnary<AsyncService, Request, Response>::RequestFn;
  // Awaits one method on every queue; its handler is kept for as long as the service lives.
  template <typename Request, typename Response>
  void Await(std::type_identity_t<RequestFn<Request, Response>> request,
             void (LevelServiceImpl::*handler)(Call*, const Request&, Response*),
             common::AsyncServerThreads& threads);

  // Submits stock operations; the call finishes when the command is durable or refused.
  // `request_shape`: what is wrong with the request itself, answered after the caller's verdict.
  template <typename Request, typename Response>
  void Mutate(Call* call, absl::string_view method, const Request& req,
              std::vector<stockpile::v1::Operation> ops, Response* resp,
              absl::Status request_shape = absl::OkStatus());
  template <typename Response>
  static CommandCallback FinishWith(Call* call, Response* resp);
  // Runs a query after the call's authorization verdict allows it.
  template <typename Response, typename QueryFn>
  void Query(Call* call, Response* resp, QueryFn query);
  // Runs an admin mutation (warehouses, quotas, reserves) with the token's subject as actor.
  template <typename Request, typename Submit>
  void Admin(Call* call, const Request& req, Submit submit);

  LevelCore* core_;
  LevelQueries queries_;
  std::vector<std::shared_ptr<void>> handlers_;  // the AsyncUnary handlers the queues use
  absl::Mutex identity_mu_;
  InstanceIdentity identity_ ABSL_GUARDED_BY(identity_mu_);
};

}  // namespace stockpile::level
