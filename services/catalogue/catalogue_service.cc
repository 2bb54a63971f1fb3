#include "services/catalogue/catalogue_service.h"

#include "services/common/status_util.h"

namespace stockpile::catalogue {

namespace {

// Finishes the call with the result of a core read.
template <typename Response>
grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* ctx,
                                absl::StatusOr<Response> result, Response* out) {
  auto* reactor = ctx->DefaultReactor();
  if (result.ok()) *out = *std::move(result);
  reactor->Finish(common::ToGrpc(result.status()));
  return reactor;
}

}  // namespace

using namespace stockpile::v1;  // NOLINT: generated message names, this file only

grpc::ServerUnaryReactor* CatalogueServiceImpl::GetWarehouseStock(
    Ctx* ctx, const GetWarehouseStockRequest* req, WarehouseStock* resp) {
  return Reply(ctx, core_->GetWarehouseStock(*req), resp);
}

grpc::ServerUnaryReactor* CatalogueServiceImpl::ListWarehouseStock(
    Ctx* ctx, const ListWarehouseStockRequest* req, ListWarehouseStockResponse* resp) {
  return Reply(ctx, core_->ListWarehouseStock(*req), resp);
}

grpc::ServerUnaryReactor* CatalogueServiceImpl::GetRollup(Ctx* ctx, const GetRollupRequest* req,
                                                          Rollup* resp) {
  return Reply(ctx, core_->GetRollup(*req), resp);
}

grpc::ServerUnaryReactor* CatalogueServiceImpl::SearchStock(Ctx* ctx,
                                                            const SearchStockRequest* req,
                                                            SearchStockResponse* resp) {
  return Reply(ctx, core_->SearchStock(*req), resp);
}

grpc::ServerUnaryReactor* CatalogueServiceImpl::ListShortages(Ctx* ctx,
                                                              const ListQuotaStatusRequest* req,
                                                              ListQuotaStatusResponse* resp) {
  return Reply(ctx, core_->ListShortages(*req), resp);
}

grpc::ServerUnaryReactor* CatalogueServiceImpl::ListExpiringLots(
    Ctx* ctx, const ListExpiringLotsRequest* req, ListExpiringLotsResponse* resp) {
  return Reply(ctx, core_->ListExpiringLots(*req), resp);
}

grpc::ServerUnaryReactor* CatalogueServiceImpl::GetReplicationStatus(
    Ctx* ctx, const GetReplicationStatusRequest*, GetReplicationStatusResponse* resp) {
  GetReplicationStatusResponse out;
  for (auto& s : core_->ReplicationStatus()) *out.add_sources() = std::move(s);
  return Reply(ctx, absl::StatusOr<GetReplicationStatusResponse>(std::move(out)), resp);
}

}  // namespace stockpile::catalogue
