#pragma once

// The transfer saga's view of the level services: each call is routed to the instance owning
// the warehouse it names. Every mutation carries a deterministic request_id, so a retry (or a
// new leader resuming) is answered from the level service's idempotency record.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "stockpile/v1/level_service.pb.h"

namespace grpc {
class Channel;
}

namespace stockpile::catalogue::allocation {

class LevelGateway {
 public:
  virtual ~LevelGateway() = default;
  // Routed by op.warehouse (the source).
  virtual absl::StatusOr<stockpile::v1::Hold> Hold(const stockpile::v1::HoldRequest& req) = 0;
  virtual absl::StatusOr<stockpile::v1::Hold> Release(absl::string_view source_warehouse,
                                                      const stockpile::v1::ReleaseRequest& req) = 0;
  virtual absl::StatusOr<stockpile::v1::Hold> Ship(absl::string_view source_warehouse,
                                                   const stockpile::v1::ShipRequest& req) = 0;
  // Routed by op.warehouse (the destination).
  virtual absl::Status ReceiveTransfer(const stockpile::v1::ReceiveTransferRequest& req) = 0;
  virtual absl::StatusOr<stockpile::v1::Hold> ConfirmDelivery(
      absl::string_view source_warehouse, const stockpile::v1::ConfirmDeliveryRequest& req) = 0;
  virtual absl::StatusOr<stockpile::v1::Hold> GetHold(absl::string_view source_warehouse,
                                                      absl::string_view hold_id) = 0;
  // What request `request_id` wrote at `warehouse` (ListMovements by request_id, answered from
  // the level's stored first result); empty when the level has no request under that id.
  virtual absl::StatusOr<std::vector<stockpile::v1::Movement>> MovementsOfRequest(
      absl::string_view warehouse, absl::string_view request_id) = 0;
  // Routed by the warehouse named: whether it exists and what it takes (its status).
  virtual absl::StatusOr<stockpile::v1::Warehouse> GetWarehouse(
      absl::string_view warehouse_name) = 0;
  // True when both warehouses live on one level instance (then ReceiveTransfer settles the
  // source's hold itself and no ConfirmDelivery is needed).
  virtual absl::StatusOr<bool> SameInstance(absl::string_view warehouse_a,
                                            absl::string_view warehouse_b) = 0;
};

// Region code -> "host:port" of the level instance hosting it; the catalogue builds it from its
// source registry (longest registered prefix at the region's level).
using LevelRouter = std::function<absl::StatusOr<std::string>(absl::string_view region_code)>;

struct GrpcLevelGatewayOptions {
  absl::Duration call_timeout = absl::Seconds(5);
  // Channel factory (TLS credentials, tests); default: insecure channel.
  std::function<std::shared_ptr<grpc::Channel>(const std::string& address)> channel_factory;
};

class GrpcLevelGateway final : public LevelGateway {
 public:
  GrpcLevelGateway(LevelRouter router, GrpcLevelGatewayOptions options = {});
  ~GrpcLevelGateway() override;

  absl::StatusOr<stockpile::v1::Hold> Hold(const stockpile::v1::HoldRequest& req) override;
  absl::StatusOr<stockpile::v1::Hold> Release(absl::string_view source_warehouse,
                                              const stockpile::v1::ReleaseRequest& req) override;
  absl::StatusOr<stockpile::v1::Hold> Ship(absl::string_view source_warehouse,
                                           const stockpile::v1::ShipRequest& req) override;
  absl::Status ReceiveTransfer(const stockpile::v1::ReceiveTransferRequest& req) override;
  absl::StatusOr<stockpile::v1::Hold> ConfirmDelivery(
      absl::string_view source_warehouse,
      const stockpile::v1::ConfirmDeliveryRequest& req) override;
  absl::StatusOr<stockpile::v1::Hold> GetHold(absl::string_view source_warehouse,
                                              absl::string_view hold_id) override;
  absl::StatusOr<std::vector<stockpile::v1::Movement>> MovementsOfRequest(
      absl::string_view warehouse, absl::string_view request_id) override;
  absl::StatusOr<stockpile::v1::Warehouse> GetWarehouse(absl::string_view warehouse_name) override;
  absl::StatusOr<bool> SameInstance(absl::string_view warehouse_a,
                                    absl::string_view warehouse_b) override;

  class Stubs;  // the generated stub of one instance (kept out of this header)

 private:
  absl::StatusOr<std::string> AddressOf(absl::string_view warehouse_name);
  absl::StatusOr<std::shared_ptr<Stubs>> StubFor(absl::string_view warehouse_name);
  absl::StatusOr<stockpile::v1::ListMovementsResponse> MovementsPage(
      absl::string_view warehouse, const stockpile::v1::ListMovementsRequest& req);

  const LevelRouter router_;
  const GrpcLevelGatewayOptions options_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Stubs>> stubs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stockpile::catalogue::allocation
