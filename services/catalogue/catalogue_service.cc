#include "services/catalogue/catalogue_service.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/auth/authorizer.h"
#include "services/common/auth/interceptor.h"
#include "services/common/status_macros.h"
#include "services/common/status_util.h"
#include "services/common/validation.h"

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

// "sources/{instance_id}" -> instance_id.
absl::StatusOr<std::string> SourceIdFromName(absl::string_view name) {
  constexpr absl::string_view kPrefix = "sources/";
  if (!absl::StartsWith(name, kPrefix) || name.size() == kPrefix.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("name must be 'sources/{instance id}'; got '", name, "'"));
  }
  return std::string(name.substr(kPrefix.size()));
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

grpc::ServerUnaryReactor* CatalogueServiceImpl::ForgetReplicationSource(
    Ctx* ctx, const ForgetReplicationSourceRequest* req, ReplicationSource* resp) {
  absl::StatusOr<auth::Identity> who = auth::CallIdentity(ctx);
  auto forget = [&]() -> absl::StatusOr<ReplicationSource> {
    RETURN_IF_ERROR(who.status());
    RETURN_IF_ERROR(common::CheckId("request_id", req->request_id(), true));
    RETURN_IF_ERROR(common::CheckText("actor", req->actor(), common::kMaxIdLength, false));
    ASSIGN_OR_RETURN(std::string id, SourceIdFromName(req->name()));
    ASSIGN_OR_RETURN(
        ReplicationSource forgotten,
        core_->ForgetSource(id, req->request_id(), auth::AuditActor(*who, req->actor())));
    // A retry of the same request publishes again: a failed publish is mended by retrying.
    if (publish_) {
      if (absl::Status st = publish_(forgotten); !st.ok()) {
        return absl::UnavailableError(
            absl::StrCat("forgot ", id, " on this replica, but could not tell the other replicas (",
                         st.message(), "): retry with the same request_id"));
      }
    }
    return forgotten;
  };
  return Reply(ctx, forget(), resp);
}

}  // namespace stockpile::catalogue
