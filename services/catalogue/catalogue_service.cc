#include "services/catalogue/catalogue_service.h"

#include "services/common/auth/interceptor.h"
#include "services/common/status_util.h"

namespace stockpile::catalogue {

namespace {

// Finishes the call with the result of a core read.
template <typename Response>
grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* ctx, absl::StatusOr<Response> result,
                                Response* out) {
  auto* reactor = ctx->DefaultReactor();
  if (result.ok()) *out = *std::move(result);
  reactor->Finish(common::ToGrpc(result.status()));
  return reactor;
}

// The call's authorization verdict (docs/security.md): a refusal finishes the call before the
// core is asked anything.
grpc::ServerUnaryReactor* Refused(grpc::CallbackServerContext* ctx) {
  absl::StatusOr<auth::Identity> who = auth::CallIdentity(ctx);
  if (who.ok()) return nullptr;
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(common::ToGrpc(who.status()));
  return reactor;
}

}  // namespace

using namespace stockpile::v1;  // NOLINT: generated message names, this file only

grpc::ServerUnaryReactor* CatalogueServiceImpl::GetWarehouseStock(
    Ctx* ctx, const GetWarehouseStockRequest* req, WarehouseStock* resp) {
  if (auto* refused = Refused(ctx)) return refused;
  return Reply(ctx, core_->GetWarehouseStock(*req), resp);
}

grpc::ServerUnaryReactor* CatalogueServiceImpl::ListWarehouseStock(
    Ctx* ctx, const ListWarehouseStockRequest* req, ListWarehouseStockResponse* resp) {
  if (auto* refused = Refused(ctx)) return refused;
  return Reply(ctx, core_->ListWarehouseStock(*req), resp);
}

grpc::ServerUnaryReactor* CatalogueServiceImpl::GetRollup(Ctx* ctx, const GetRollupRequest* req,
                                                          Rollup* resp) {
  if (auto* refused = Refused(ctx)) return refused;
  return Reply(ctx, core_->GetRollup(*req), resp);
}

grpc::ServerUnaryReactor* CatalogueServiceImpl::SearchStock(Ctx* ctx, const SearchStockRequest* req,
                                                            SearchStockResponse* resp) {
  if (auto* refused = Refused(ctx)) return refused;
  return Reply(ctx, core_->SearchStock(*req), resp);
}

grpc::ServerUnaryReactor* CatalogueServiceImpl::ListShortages(Ctx* ctx,
                                                              const ListQuotaStatusRequest* req,
                                                              ListQuotaStatusResponse* resp) {
  if (auto* refused = Refused(ctx)) return refused;
  return Reply(ctx, core_->ListShortages(*req), resp);
}

grpc::ServerUnaryReactor* CatalogueServiceImpl::ListExpiringLots(Ctx* ctx,
                                                                 const ListExpiringLotsRequest* req,
                                                                 ListExpiringLotsResponse* resp) {
  if (auto* refused = Refused(ctx)) return refused;
  return Reply(ctx, core_->ListExpiringLots(*req), resp);
}

grpc::ServerUnaryReactor* CatalogueServiceImpl::GetReplicationStatus(
    Ctx* ctx, const GetReplicationStatusRequest*, GetReplicationStatusResponse* resp) {
  if (auto* refused = Refused(ctx)) return refused;
  GetReplicationStatusResponse out;
  for (auto& s : core_->ReplicationStatus()) *out.add_sources() = std::move(s);
  return Reply(ctx, absl::StatusOr<GetReplicationStatusResponse>(std::move(out)), resp);
}

}  // namespace stockpile::catalogue
