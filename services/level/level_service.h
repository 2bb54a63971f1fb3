#pragma once

#include <google/protobuf/arena.h>
#include <grpcpp/support/message_allocator.h>

#include <atomic>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "services/level/backup.h"
#include "services/level/level_core.h"
#include "services/level/level_queries.h"
#include "stockpile/v1/level_service.grpc.pb.h"

namespace stockpile::level {

struct InstanceIdentity {
  std::string instance_id;
  std::string version;
  std::string metrics_address;  // HOST:PORT of the metrics page, or empty
};

// Request and response of each call on one arena: a batch's thousand results, their movements
// and strings are allocated by bumping a pointer (the writer builds them in place) and freed
// at once when the call ends, instead of one by one on a gRPC thread (which spent 41 % of its
// time destroying batch replies and 14 % destroying requests).
template <typename Request, typename Response>
class ArenaMessageAllocator final : public grpc::MessageAllocator<Request, Response> {
 public:
  grpc::MessageHolder<Request, Response>* AllocateMessages() override { return new Holder(); }

 private:
  class Holder final : public grpc::MessageHolder<Request, Response> {
   public:
    Holder() : arena_(Options()) {
      this->set_request(google::protobuf::Arena::CreateMessage<Request>(&arena_));
      this->set_response(google::protobuf::Arena::CreateMessage<Response>(&arena_));
    }
    void Release() override { delete this; }

   private:
    static google::protobuf::ArenaOptions Options() {
      google::protobuf::ArenaOptions o;
      o.start_block_size = 4 << 10;
      o.max_block_size = 256 << 10;  // a batch reply is a few hundred KB
      return o;
    }
    google::protobuf::Arena arena_;
  };
};

// stockpile.v1.LevelService over gRPC's callback API: each handler validates what only the
// transport knows (request_id, actor, batch size), calls the core and maps its status.
class LevelServiceImpl final : public stockpile::v1::LevelService::CallbackService {
 public:
  LevelServiceImpl(LevelCore* core, InstanceIdentity identity);

  using Ctx = grpc::CallbackServerContext;
  using Unary = grpc::ServerUnaryReactor;
  template <typename T>
  using Writer = grpc::ServerWriteReactor<T>;

  Unary* CreateWarehouse(Ctx*, const stockpile::v1::CreateWarehouseRequest*,
                         stockpile::v1::Warehouse*) override;
  Unary* GetWarehouse(Ctx*, const stockpile::v1::GetWarehouseRequest*,
                      stockpile::v1::Warehouse*) override;
  Unary* ListWarehouses(Ctx*, const stockpile::v1::ListWarehousesRequest*,
                        stockpile::v1::ListWarehousesResponse*) override;
  Unary* UpdateWarehouse(Ctx*, const stockpile::v1::UpdateWarehouseRequest*,
                         stockpile::v1::Warehouse*) override;
  Unary* Receive(Ctx*, const stockpile::v1::ReceiveRequest*,
                 stockpile::v1::MovementResult*) override;
  Unary* Issue(Ctx*, const stockpile::v1::IssueRequest*, stockpile::v1::MovementResult*) override;
  Unary* Stocktake(Ctx*, const stockpile::v1::StocktakeRequest*,
                   stockpile::v1::MovementResult*) override;
  Unary* Hold(Ctx*, const stockpile::v1::HoldRequest*, stockpile::v1::MovementResult*) override;
  Unary* Release(Ctx*, const stockpile::v1::ReleaseRequest*,
                 stockpile::v1::MovementResult*) override;
  Unary* Ship(Ctx*, const stockpile::v1::ShipRequest*, stockpile::v1::MovementResult*) override;
  Unary* ReceiveTransfer(Ctx*, const stockpile::v1::ReceiveTransferRequest*,
                         stockpile::v1::MovementResult*) override;
  Unary* ConfirmDelivery(Ctx*, const stockpile::v1::ConfirmDeliveryRequest*,
                         stockpile::v1::MovementResult*) override;
  Unary* ApplyBatch(Ctx*, const stockpile::v1::ApplyBatchRequest*,
                    stockpile::v1::ApplyBatchResponse*) override;
  Unary* SetQuota(Ctx*, const stockpile::v1::SetQuotaRequest*, stockpile::v1::Quota*) override;
  Unary* ListQuotas(Ctx*, const stockpile::v1::ListQuotasRequest*,
                    stockpile::v1::ListQuotasResponse*) override;
  Unary* SetReserve(Ctx*, const stockpile::v1::SetReserveRequest*,
                    stockpile::v1::Reserve*) override;
  Unary* ListReserves(Ctx*, const stockpile::v1::ListReservesRequest*,
                      stockpile::v1::ListReservesResponse*) override;
  Unary* ListShortages(Ctx*, const stockpile::v1::ListQuotaStatusRequest*,
                       stockpile::v1::ListQuotaStatusResponse*) override;
  Unary* ListOverstock(Ctx*, const stockpile::v1::ListQuotaStatusRequest*,
                       stockpile::v1::ListQuotaStatusResponse*) override;
  Unary* ListExpiringLots(Ctx*, const stockpile::v1::ListExpiringLotsRequest*,
                          stockpile::v1::ListExpiringLotsResponse*) override;
  Unary* GetBalance(Ctx*, const stockpile::v1::GetBalanceRequest*,
                    stockpile::v1::Balance*) override;
  Unary* ListBalances(Ctx*, const stockpile::v1::ListBalancesRequest*,
                      stockpile::v1::ListBalancesResponse*) override;
  Unary* ListMovements(Ctx*, const stockpile::v1::ListMovementsRequest*,
                       stockpile::v1::ListMovementsResponse*) override;
  Unary* GetHold(Ctx*, const stockpile::v1::GetHoldRequest*, stockpile::v1::Hold*) override;
  Unary* ListHolds(Ctx*, const stockpile::v1::ListHoldsRequest*,
                   stockpile::v1::ListHoldsResponse*) override;
  Unary* GetLedgerTotals(Ctx*, const stockpile::v1::GetLedgerTotalsRequest*,
                         stockpile::v1::GetLedgerTotalsResponse*) override;
  Unary* GetInstanceInfo(Ctx*, const stockpile::v1::GetInstanceInfoRequest*,
                         stockpile::v1::InstanceInfo*) override;
  Unary* CreateBackup(Ctx*, const stockpile::v1::CreateBackupRequest*,
                      stockpile::v1::Backup*) override;
  Unary* ListBackups(Ctx*, const stockpile::v1::ListBackupsRequest*,
                     stockpile::v1::ListBackupsResponse*) override;
  Unary* ListItems(Ctx*, const stockpile::v1::ListItemsRequest*,
                   stockpile::v1::ListItemsResponse*) override;
  Unary* GetRegion(Ctx*, const stockpile::v1::GetRegionRequest*, stockpile::v1::Region*) override;
  Writer<stockpile::v1::WatchChangesResponse>* WatchChanges(
      Ctx*, const stockpile::v1::WatchChangesRequest*) override;

  // Where CreateBackup writes (--backup-dir; empty: it refuses) and how many it keeps
  // (--backup-keep; 0: all). Each backup names this instance's level, regions and configured
  // instance id, for --restore-from to check.
  void SetBackups(std::string dir, int keep);
  // Shared with the metrics page, which may be scraped while the service goes away.
  std::shared_ptr<const BackupKeeper> backups() const { return backups_; }

  // Ends every open change stream (UNAVAILABLE, "shutting down") and any opened later, so a
  // drain does not wait out its deadline for streams that never end by themselves; their
  // consumers reconnect to whichever instance serves next.
  void EndStreams();

  // The id is known only once the port is bound (default level-host-port).
  void SetInstanceId(std::string id) {
    absl::MutexLock lock(&identity_mu_);
    identity_.instance_id = std::move(id);
  }

 private:
  std::atomic<bool> streams_ending_{false};
  // Submits stock operations; the reactor finishes when the command is durable or refused.
  // `request_shape`: what is wrong with the request itself, answered after the caller's verdict.
  template <typename Request, typename Response>
  Unary* Mutate(Ctx* ctx, absl::string_view method, const Request& req,
                std::vector<stockpile::v1::Operation> ops, Response* resp,
                absl::Status request_shape = absl::OkStatus());
  template <typename Response>
  static CommandCallback FinishWith(Unary* reactor, Response* resp);
  // Runs a query after the call's authorization verdict allows it.
  template <typename Response, typename QueryFn>
  Unary* Query(Ctx* ctx, Response* resp, QueryFn query);
  // Runs an admin mutation (warehouses, quotas, reserves) with the token's subject as actor.
  template <typename Request, typename Submit>
  Unary* Admin(Ctx* ctx, const Request& req, Submit submit);

  LevelCore* core_;
  LevelQueries queries_;
  ArenaMessageAllocator<stockpile::v1::ApplyBatchRequest, stockpile::v1::ApplyBatchResponse>
      batch_allocator_;
  std::shared_ptr<BackupKeeper> backups_ =
      std::make_shared<BackupKeeper>("", 0);  // set before serving
  absl::Mutex identity_mu_;
  InstanceIdentity identity_ ABSL_GUARDED_BY(identity_mu_);
};

}  // namespace stockpile::level
