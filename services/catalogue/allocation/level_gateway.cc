#include "services/catalogue/allocation/level_gateway.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "services/common/status_macros.h"
#include "services/common/status_util.h"
#include "services/common/validation.h"
#include "stockpile/v1/level_service.grpc.pb.h"

namespace stockpile::catalogue::allocation {

using namespace stockpile::v1;  // NOLINT

class GrpcLevelGateway::Stubs {
 public:
  Stubs(std::shared_ptr<grpc::Channel> channel, std::string address)
      : stub(LevelService::NewStub(std::move(channel))), address(std::move(address)) {}
  std::unique_ptr<LevelService::Stub> stub;
  const std::string address;
};

GrpcLevelGateway::GrpcLevelGateway(LevelRouter router, GrpcLevelGatewayOptions options)
    : router_(std::move(router)), options_(std::move(options)) {}
GrpcLevelGateway::~GrpcLevelGateway() = default;

absl::StatusOr<std::string> GrpcLevelGateway::AddressOf(absl::string_view warehouse_name) {
  ASSIGN_OR_RETURN(std::string code, common::WarehouseCodeFromName(warehouse_name));
  ASSIGN_OR_RETURN(std::string region, common::RegionOfWarehouseCode(code));
  return router_(region);
}

absl::StatusOr<std::shared_ptr<GrpcLevelGateway::Stubs>> GrpcLevelGateway::StubFor(
    absl::string_view warehouse_name) {
  ASSIGN_OR_RETURN(std::string address, AddressOf(warehouse_name));
  absl::MutexLock lock(&mu_);
  auto& slot = stubs_[address];
  if (slot == nullptr) {
    auto channel = options_.channel_factory
                       ? options_.channel_factory(address)
                       : grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    slot = std::make_shared<Stubs>(std::move(channel), address);
  }
  return slot;
}

namespace {

// A dispatcher reading "Deadline Exceeded" cannot tell which of a transfer's levels is slow or
// down: transient failures name the warehouse and the level service's address. The level's own
// refusals pass through as it worded them.
absl::Status NamingTheLevel(const grpc::Status& s, absl::string_view warehouse_name,
                            absl::string_view address) {
  const std::string warehouse =
      common::WarehouseCodeFromName(warehouse_name).value_or(std::string(warehouse_name));
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::DeadlineExceededError(absl::StrCat("the level service of ", warehouse, " at ",
                                                    address, " did not answer in time"));
  }
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return absl::UnavailableError(absl::StrCat("the level service of ", warehouse, " at ", address,
                                               " is unavailable: ", s.error_message()));
  }
  return common::FromGrpc(s);
}

template <typename Req, typename Resp, typename Call>
absl::StatusOr<Resp> Invoke(const GrpcLevelGateway::Stubs& stubs, absl::string_view warehouse,
                            absl::Duration timeout, const Req& req, Call call) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  Resp resp;
  grpc::Status s = call(&ctx, req, &resp);
  if (!s.ok()) return NamingTheLevel(s, warehouse, stubs.address);
  return resp;
}

}  // namespace

#define STOCKPILE_LEVEL_CALL(Method, Req, Resp, warehouse, req)                              \
  ASSIGN_OR_RETURN(auto stubs, StubFor(warehouse));                                          \
  ASSIGN_OR_RETURN(Resp resp,                                                                \
                   (Invoke<Req, Resp>(*stubs, warehouse, options_.call_timeout, req,         \
                                      [&](grpc::ClientContext* c, const Req& r, Resp* out) { \
                                        return stubs->stub->Method(c, r, out);               \
                                      })))

absl::StatusOr<v1::Hold> GrpcLevelGateway::Hold(const HoldRequest& req) {
  STOCKPILE_LEVEL_CALL(Hold, HoldRequest, MovementResult, req.op().warehouse(), req);
  return resp.hold();
}

absl::StatusOr<v1::Hold> GrpcLevelGateway::Release(absl::string_view source,
                                                   const ReleaseRequest& req) {
  STOCKPILE_LEVEL_CALL(Release, ReleaseRequest, MovementResult, source, req);
  return resp.hold();
}

absl::StatusOr<v1::Hold> GrpcLevelGateway::Ship(absl::string_view source, const ShipRequest& req) {
  STOCKPILE_LEVEL_CALL(Ship, ShipRequest, MovementResult, source, req);
  return resp.hold();
}

absl::Status GrpcLevelGateway::ReceiveTransfer(const ReceiveTransferRequest& req) {
  STOCKPILE_LEVEL_CALL(ReceiveTransfer, ReceiveTransferRequest, MovementResult,
                       req.op().warehouse(), req);
  return absl::OkStatus();
}

absl::StatusOr<v1::Hold> GrpcLevelGateway::ConfirmDelivery(absl::string_view source,
                                                           const ConfirmDeliveryRequest& req) {
  STOCKPILE_LEVEL_CALL(ConfirmDelivery, ConfirmDeliveryRequest, MovementResult, source, req);
  return resp.hold();
}

absl::StatusOr<v1::Hold> GrpcLevelGateway::GetHold(absl::string_view source,
                                                   absl::string_view hold_id) {
  GetHoldRequest req;
  req.set_name(absl::StrCat("holds/", hold_id));
  STOCKPILE_LEVEL_CALL(GetHold, GetHoldRequest, v1::Hold, source, req);
  return resp;
}

// Every page: a leg's receipt of up to 1,000 lots records up to 2,000 movements (receipt and
// transit loss per lot), and the level pages a request's movements like any listing.
absl::StatusOr<std::vector<Movement>> GrpcLevelGateway::MovementsOfRequest(
    absl::string_view warehouse, absl::string_view request_id) {
  ListMovementsRequest req;
  req.set_warehouse(std::string(warehouse));
  req.set_request_id(std::string(request_id));
  req.set_page_size(1000);
  std::vector<Movement> movements;
  for (int page = 0; page < 100; ++page) {
    ASSIGN_OR_RETURN(ListMovementsResponse resp, MovementsPage(warehouse, req));
    movements.insert(movements.end(), resp.movements().begin(), resp.movements().end());
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  return movements;
}

absl::StatusOr<ListMovementsResponse> GrpcLevelGateway::MovementsPage(
    absl::string_view warehouse, const ListMovementsRequest& req) {
  STOCKPILE_LEVEL_CALL(ListMovements, ListMovementsRequest, ListMovementsResponse, warehouse, req);
  return resp;
}

absl::StatusOr<v1::Warehouse> GrpcLevelGateway::GetWarehouse(absl::string_view warehouse_name) {
  GetWarehouseRequest req;
  req.set_name(std::string(warehouse_name));
  STOCKPILE_LEVEL_CALL(GetWarehouse, GetWarehouseRequest, v1::Warehouse, warehouse_name, req);
  return resp;
}

#undef STOCKPILE_LEVEL_CALL

absl::StatusOr<bool> GrpcLevelGateway::SameInstance(absl::string_view a, absl::string_view b) {
  ASSIGN_OR_RETURN(std::string address_a, AddressOf(a));
  ASSIGN_OR_RETURN(std::string address_b, AddressOf(b));
  return address_a == address_b;
}

}  // namespace stockpile::catalogue::allocation
