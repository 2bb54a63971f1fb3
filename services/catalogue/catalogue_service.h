#pragma once

#include <functional>

#include "services/catalogue/catalogue_core.h"
#include "stockpile/v1/catalogue_service.grpc.pb.h"

namespace stockpile::catalogue {

// stockpile.v1.CatalogueService over gRPC's callback API: every read is served from memory (or
// one bounded store scan), so handlers answer inline: call the core, map its status.
class CatalogueServiceImpl final : public stockpile::v1::CatalogueService::CallbackService {
 public:
  explicit CatalogueServiceImpl(CatalogueCore* core) : core_(core) {}

  // Tells the other catalogue replicas of a source forgotten here (with etcd: a key each one
  // watches); unset, this replica is the only one.
  using ForgottenPublisher = std::function<absl::Status(const stockpile::v1::ReplicationSource&)>;
  void SetForgottenPublisher(ForgottenPublisher publish) { publish_ = std::move(publish); }

  using Ctx = grpc::CallbackServerContext;
  using Unary = grpc::ServerUnaryReactor;

  Unary* GetWarehouseStock(Ctx*, const stockpile::v1::GetWarehouseStockRequest*,
                           stockpile::v1::WarehouseStock*) override;
  Unary* ListWarehouseStock(Ctx*, const stockpile::v1::ListWarehouseStockRequest*,
                            stockpile::v1::ListWarehouseStockResponse*) override;
  Unary* GetRollup(Ctx*, const stockpile::v1::GetRollupRequest*, stockpile::v1::Rollup*) override;
  Unary* SearchStock(Ctx*, const stockpile::v1::SearchStockRequest*,
                     stockpile::v1::SearchStockResponse*) override;
  Unary* ListShortages(Ctx*, const stockpile::v1::ListQuotaStatusRequest*,
                       stockpile::v1::ListQuotaStatusResponse*) override;
  Unary* ListExpiringLots(Ctx*, const stockpile::v1::ListExpiringLotsRequest*,
                          stockpile::v1::ListExpiringLotsResponse*) override;
  Unary* GetReplicationStatus(Ctx*, const stockpile::v1::GetReplicationStatusRequest*,
                              stockpile::v1::GetReplicationStatusResponse*) override;
  Unary* ForgetReplicationSource(Ctx*, const stockpile::v1::ForgetReplicationSourceRequest*,
                                 stockpile::v1::ReplicationSource*) override;

 private:
  CatalogueCore* core_;
  ForgottenPublisher publish_;
};

}  // namespace stockpile::catalogue
