#include "services/common/auth/rules.h"

#include <google/protobuf/message.h>

#include "absl/strings/str_cat.h"
#include "services/common/status_macros.h"
#include "services/common/transfer_ids.h"
#include "stockpile/v1/level_service.pb.h"

namespace stockpile::auth {
namespace {

using R = Role;
using K = FieldKind;

constexpr RoleSet kEveryone =
    Roles({R::kStaff, R::kDispatcher, R::kViewer, R::kService, R::kAdmin});
constexpr RoleSet kStockRoles = Roles({R::kStaff, R::kService, R::kAdmin});
constexpr RoleSet kTransferRoles = Roles({R::kDispatcher, R::kService, R::kAdmin});
constexpr RoleSet kBatchRoles = kStockRoles | kTransferRoles;
constexpr RoleSet kAdminRoles = Roles({R::kService, R::kAdmin});
constexpr RoleSet kNationalReaders = Roles({R::kDispatcher});

#define LEVEL(name) "/stockpile.v1.LevelService/" name

absl::Status CheckBatch(const Authorizer& authorizer, const MethodRule& rule, const Identity& who,
                        const google::protobuf::Message& request);
absl::Status CheckApprove(const Authorizer& authorizer, const MethodRule& rule, const Identity& who,
                          const google::protobuf::Message& request);
absl::Status CheckShipLeg(const Authorizer& authorizer, const MethodRule& rule, const Identity& who,
                          const google::protobuf::Message& request);
absl::Status CheckReceiveLeg(const Authorizer& authorizer, const MethodRule& rule,
                             const Identity& who, const google::protobuf::Message& request);
absl::Status CheckAnyPlace(const Authorizer& authorizer, const MethodRule& rule,
                           const Identity& who, const google::protobuf::Message& request);
absl::Status CheckHoldIdClaim(const Authorizer& authorizer, const MethodRule& rule,
                              const Identity& who, const google::protobuf::Message& request);
absl::Status CheckRelease(const Authorizer& authorizer, const MethodRule& rule, const Identity& who,
                          const google::protobuf::Message& request);

// Reads inside scope for everyone; dispatchers read nationally.
constexpr MethodRule Read(const char* method, ScopedField a = {}, ScopedField b = {}) {
  return {
      .method = method, .roles = kEveryone, .national_roles = kNationalReaders, .fields = {a, b}};
}
constexpr MethodRule Write(const char* method, RoleSet roles, ScopedField a, ScopedField b = {},
                           ScopedField c = {}) {
  return {.method = method, .roles = roles, .fields = {a, b, c}};
}
// `rule`'s fields, and `check` first (it calls Authorizer::CheckFieldsInScope for the fields).
constexpr MethodRule AlsoChecking(MethodRule rule, CustomScopeCheck check) {
  rule.custom = check;
  return rule;
}

constexpr MethodRule kLevelRules[] = {
    // Warehouses: admin (and service) inside scope.
    Write(LEVEL("CreateWarehouse"), kAdminRoles, {"warehouse.code", K::kWarehouseCode},
          {"warehouse.region_code", K::kRegionCode}, {"warehouse.name", K::kWarehouseName}),
    Read(LEVEL("GetWarehouse"), {"name", K::kWarehouseName}),
    Read(LEVEL("ListWarehouses"), {"region_prefix", K::kRegionCode}),
    Write(LEVEL("UpdateWarehouse"), kAdminRoles, {"warehouse.name", K::kWarehouseName},
          {"warehouse.code", K::kWarehouseCode}),
    // Stock movements and stocktakes: staff at warehouses inside scope.
    Write(LEVEL("Receive"), kStockRoles, {"op.warehouse", K::kWarehouseName}),
    Write(LEVEL("Issue"), kStockRoles, {"op.warehouse", K::kWarehouseName}),
    Write(LEVEL("Stocktake"), kStockRoles, {"op.warehouse", K::kWarehouseName}),
    // Transfer steps: dispatchers, at the warehouse the step touches (source for hold, release,
    // ship and confirm-delivery; destination for receive-transfer). Hold ids of the catalogue's
    // transfer legs, and closing an id before its hold exists, are the catalogue's (and admins').
    AlsoChecking(Write(LEVEL("Hold"), kTransferRoles, {"op.warehouse", K::kWarehouseName}),
                 &CheckHoldIdClaim),
    AlsoChecking(Write(LEVEL("Release"), kTransferRoles, {"op.hold_id", K::kHoldId},
                       {"op.warehouse_if_absent", K::kWarehouseName}),
                 &CheckRelease),
    Write(LEVEL("Ship"), kTransferRoles, {"op.hold_id", K::kHoldId}),
    AlsoChecking(
        Write(LEVEL("ReceiveTransfer"), kTransferRoles, {"op.warehouse", K::kWarehouseName}),
        &CheckHoldIdClaim),
    Write(LEVEL("ConfirmDelivery"), kTransferRoles, {"op.hold_id", K::kHoldId}),
    // Every operation is checked against the rule of its single-operation method.
    {.method = LEVEL("ApplyBatch"), .roles = kBatchRoles, .custom = &CheckBatch},
    // Quotas and reserves: admin; reads for everyone inside scope.
    Write(LEVEL("SetQuota"), kAdminRoles, {"quota.warehouse", K::kWarehouseName}),
    Read(LEVEL("ListQuotas"), {"warehouse", K::kWarehouseName}, {"region_prefix", K::kRegionCode}),
    Write(LEVEL("SetReserve"), kAdminRoles, {"reserve.warehouse", K::kWarehouseName}),
    Read(LEVEL("ListReserves"), {"warehouse", K::kWarehouseName},
         {"region_prefix", K::kRegionCode}),
    Read(LEVEL("ListShortages"), {"region_prefix", K::kRegionCode}),
    Read(LEVEL("ListOverstock"), {"region_prefix", K::kRegionCode}),
    Read(LEVEL("ListExpiringLots"), {"region_prefix", K::kRegionCode}),
    // Queries.
    Read(LEVEL("GetBalance"), {"warehouse", K::kWarehouseName}),
    Read(LEVEL("ListBalances"), {"warehouse", K::kWarehouseName},
         {"region_prefix", K::kRegionCode}),
    Read(LEVEL("ListMovements"), {"warehouse", K::kWarehouseName}),
    Read(LEVEL("GetHold"), {"name", K::kHoldName}),
    Read(LEVEL("ListHolds"), {"warehouse", K::kWarehouseName}),
    Read(LEVEL("GetLedgerTotals")),  // instance-wide: national scope (or a dispatcher)
    {.method = LEVEL("GetInstanceInfo"), .roles = kEveryone, .unscoped = true},
    // A copy of the whole database: a national admin (or the service account of a backup job).
    {.method = LEVEL("CreateBackup"), .roles = kAdminRoles},
    {.method = LEVEL("ListBackups"), .roles = kAdminRoles},
    // Reference data.
    {.method = LEVEL("ListItems"), .roles = kEveryone, .unscoped = true},
    {.method = LEVEL("GetRegion"), .roles = kEveryone, .unscoped = true},
    // The change stream spans the instance: catalogue (service) or a national admin.
    {.method = LEVEL("WatchChanges"), .roles = kAdminRoles},
};

#define CATALOGUE(name) "/stockpile.v1.CatalogueService/" name
#define TRANSFER(name) "/stockpile.v1.TransferService/" name

// The national view: reads inside scope for everyone, dispatchers nationally.
constexpr MethodRule kCatalogueRules[] = {
    Read(CATALOGUE("GetWarehouseStock"), {"warehouse", K::kWarehouseName}),
    Read(CATALOGUE("ListWarehouseStock"), {"region_prefix", K::kRegionCode}),
    Read(CATALOGUE("GetRollup"), {"region_code", K::kRegionCode}),
    // Only region_prefix bounds the answer (the origin only orders it).
    Read(CATALOGUE("SearchStock"), {"region_prefix", K::kRegionCode}),
    Read(CATALOGUE("ListShortages"), {"region_prefix", K::kRegionCode}),
    Read(CATALOGUE("ListExpiringLots"), {"region_prefix", K::kRegionCode}),
    // Replication health (sources, sequences, lag): no stock figures.
    {.method = CATALOGUE("GetReplicationStatus"), .roles = kEveryone, .unscoped = true},
    // Dropping everything replicated from a gone source: a national admin.
    {.method = CATALOGUE("ForgetReplicationSource"), .roles = Roles({R::kAdmin})},
};

constexpr RoleSet kLegRoles = Roles({R::kStaff, R::kDispatcher, R::kService, R::kAdmin});

// Transfers: dispatchers plan and create for destinations inside scope, approve when every source
// is inside scope (a county dispatcher cannot commit another province's stock), cancel and read
// when the destination or any source is. Staff ship a leg from their own warehouse and receive
// one at theirs. Steps that name only the transfer are placed by the transfer lookup.
constexpr MethodRule kTransferRules[] = {
    Write(TRANSFER("PlanAllocation"), kTransferRoles, {"destination_warehouse", K::kWarehouseName},
          {"destination_region", K::kRegionCode}),
    Write(TRANSFER("CreateTransfer"), kTransferRoles,
          {"plan.destination_warehouse", K::kWarehouseName},
          {"plan.destination_region", K::kRegionCode}),
    {.method = TRANSFER("ApproveTransfer"), .roles = kTransferRoles, .custom = &CheckApprove},
    {.method = TRANSFER("ShipTransfer"), .roles = kLegRoles, .custom = &CheckShipLeg},
    {.method = TRANSFER("ReceiveTransfer"), .roles = kLegRoles, .custom = &CheckReceiveLeg},
    {.method = TRANSFER("CancelTransfer"), .roles = kTransferRoles, .custom = &CheckAnyPlace},
    {.method = TRANSFER("GetTransfer"),
     .roles = kEveryone,
     .national_roles = kNationalReaders,
     .custom = &CheckAnyPlace},
    Read(TRANSFER("ListTransfers"), {"region_prefix", K::kRegionCode}),
};

constexpr MethodRule kHealthRules[] = {
    {.method = "/grpc.health.v1.Health/Check", .is_public = true},
    {.method = "/grpc.health.v1.Health/Watch", .is_public = true},
};

template <typename Request, typename Op>
std::unique_ptr<google::protobuf::Message> Single(const Op& op) {
  auto request = std::make_unique<Request>();
  *request->mutable_op() = op;
  return request;
}

// The single-operation method an operation corresponds to, and a request carrying it.
std::pair<const char*, std::unique_ptr<google::protobuf::Message>> AsSingle(
    const v1::Operation& op) {
  using namespace stockpile::v1;  // NOLINT
  switch (op.op_case()) {
    case Operation::kReceive:
      return {LEVEL("Receive"), Single<ReceiveRequest>(op.receive())};
    case Operation::kIssue:
      return {LEVEL("Issue"), Single<IssueRequest>(op.issue())};
    case Operation::kStocktake:
      return {LEVEL("Stocktake"), Single<StocktakeRequest>(op.stocktake())};
    case Operation::kHold:
      return {LEVEL("Hold"), Single<HoldRequest>(op.hold())};
    case Operation::kRelease:
      return {LEVEL("Release"), Single<ReleaseRequest>(op.release())};
    case Operation::kShip:
      return {LEVEL("Ship"), Single<ShipRequest>(op.ship())};
    case Operation::kReceiveTransfer:
      return {LEVEL("ReceiveTransfer"), Single<ReceiveTransferRequest>(op.receive_transfer())};
    case Operation::kConfirmDelivery:
      return {LEVEL("ConfirmDelivery"), Single<ConfirmDeliveryRequest>(op.confirm_delivery())};
    case Operation::OP_NOT_SET:
      break;
  }
  return {nullptr, nullptr};
}

absl::Status CheckBatch(const Authorizer& authorizer, const MethodRule&, const Identity& who,
                        const google::protobuf::Message& request) {
  const auto* batch = google::protobuf::DynamicCastToGenerated<v1::ApplyBatchRequest>(&request);
  if (batch == nullptr) return absl::InternalError("ApplyBatch rule got another request type");
  for (int i = 0; i < batch->operations_size(); ++i) {
    auto [method, single] = AsSingle(batch->operations(i));
    if (method == nullptr) continue;  // empty operation: touches nothing; the service refuses it
    const MethodRule* rule = authorizer.FindRule(method);
    absl::Status s = rule == nullptr
                         ? absl::PermissionDeniedError(absl::StrCat(method, " has no rule"))
                         : authorizer.CheckRule(*rule, who, *single);
    if (!s.ok()) return absl::Status(s.code(), absl::StrCat("operations[", i, "]: ", s.message()));
  }
  return absl::OkStatus();
}

// Who may use hold ids of the catalogue's transfer legs and close ids before a hold exists.
constexpr RoleSet kTransferOwners = kAdminRoles;

bool OwnsTransferIds(const Identity& who) { return (kTransferOwners & RoleBit(who.role)) != 0; }

// The hold id a Hold or ReceiveTransfer request uses.
std::string ClaimedHoldId(const google::protobuf::Message& request) {
  using google::protobuf::DynamicCastToGenerated;
  if (const auto* hold = DynamicCastToGenerated<v1::HoldRequest>(&request)) {
    return hold->op().hold_id();
  }
  if (const auto* arrival = DynamicCastToGenerated<v1::ReceiveTransferRequest>(&request)) {
    return arrival->op().hold_id();
  }
  return std::string();
}

// Hold ids are instance-wide and caller-chosen. A hold (or, at a destination, an arrival) with
// the id a transfer's leg will use makes that leg's real hold fail with ALREADY_EXISTS, from any
// warehouse, so the form "{transfer id}.L{leg}" is the catalogue's whatever the caller's scope.
absl::Status CheckHoldIdClaim(const Authorizer& authorizer, const MethodRule& rule,
                              const Identity& who, const google::protobuf::Message& request) {
  const std::string hold_id = ClaimedHoldId(request);
  if (!OwnsTransferIds(who) && common::IsTransferLegHoldId(hold_id)) {
    return absl::PermissionDeniedError(absl::StrCat(
        DescribeCaller(who), " may not call ", rule.method, " with hold id \"", hold_id,
        "\": ids of the form {transfer id}.L{leg} belong to the catalogue's transfers (only "
        "the catalogue's service account and admins use them); choose another hold id"));
  }
  return authorizer.CheckFieldsInScope(rule, who, request);
}

// Closing a hold id before any hold has it (warehouse_if_absent) is how a cancelled transfer
// keeps its late hold request from standing; anyone else closing an id takes it from whoever
// would use it, a transfer's leg included. No person needs it: a release of one's own hold
// names an existing hold.
absl::Status CheckRelease(const Authorizer& authorizer, const MethodRule& rule, const Identity& who,
                          const google::protobuf::Message& request) {
  const auto* release = google::protobuf::DynamicCastToGenerated<v1::ReleaseRequest>(&request);
  if (release == nullptr) return absl::InternalError("Release rule got another request type");
  if (!OwnsTransferIds(who) && !release->op().warehouse_if_absent().empty()) {
    return absl::PermissionDeniedError(absl::StrCat(
        DescribeCaller(who), " may not call ", rule.method,
        " with op.warehouse_if_absent: releasing a hold id before any hold exists is for the "
        "catalogue's transfers (its service account) and admins; leave it unset to release an "
        "existing hold"));
  }
  return authorizer.CheckFieldsInScope(rule, who, request);
}

// The transfer a step names ("name"), placed by the authorizer's transfer lookup; national
// identities never need it.
absl::StatusOr<TransferPlaces> PlacesOf(const Authorizer& authorizer,
                                        const google::protobuf::Message& request) {
  const auto* field = request.GetDescriptor()->FindFieldByName("name");
  if (field == nullptr || field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_STRING) {
    return absl::InternalError("transfer rule on a request without a name");
  }
  const std::string name = request.GetReflection()->GetString(request, field);
  if (name.empty()) return absl::PermissionDeniedError("the request names no transfer");
  return authorizer.LookupTransfer(name);
}

absl::Status CheckApprove(const Authorizer& authorizer, const MethodRule& rule, const Identity& who,
                          const google::protobuf::Message& request) {
  if (Authorizer::ActsNationally(rule, who)) return absl::OkStatus();
  ASSIGN_OR_RETURN(TransferPlaces places, PlacesOf(authorizer, request));
  for (const auto& [leg, source] : places.leg_sources) {
    RETURN_IF_ERROR(authorizer.CheckWarehouseInScope(
        rule, who, absl::StrCat("leg ", leg, "'s source"), source));
  }
  return absl::OkStatus();
}

absl::Status CheckShipLeg(const Authorizer& authorizer, const MethodRule& rule, const Identity& who,
                          const google::protobuf::Message& request) {
  if (Authorizer::ActsNationally(rule, who)) return absl::OkStatus();
  ASSIGN_OR_RETURN(TransferPlaces places, PlacesOf(authorizer, request));
  const auto* field = request.GetDescriptor()->FindFieldByName("leg");
  if (field == nullptr || field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_INT32) {
    return absl::InternalError("ship rule on a request without a leg");
  }
  const int32_t leg = request.GetReflection()->GetInt32(request, field);
  for (const auto& [index, source] : places.leg_sources) {
    if (index == leg)
      return authorizer.CheckWarehouseInScope(rule, who, "the leg's source", source);
  }
  // An unknown leg: let the service say so only to those who may see the transfer.
  RETURN_IF_ERROR(authorizer.CheckWarehouseInScope(rule, who, "the transfer's destination",
                                                   places.destination));
  return absl::OkStatus();
}

absl::Status CheckReceiveLeg(const Authorizer& authorizer, const MethodRule& rule,
                             const Identity& who, const google::protobuf::Message& request) {
  if (Authorizer::ActsNationally(rule, who)) return absl::OkStatus();
  ASSIGN_OR_RETURN(TransferPlaces places, PlacesOf(authorizer, request));
  return authorizer.CheckWarehouseInScope(rule, who, "the transfer's destination",
                                          places.destination);
}

absl::Status CheckAnyPlace(const Authorizer& authorizer, const MethodRule& rule,
                           const Identity& who, const google::protobuf::Message& request) {
  if (Authorizer::ActsNationally(rule, who)) return absl::OkStatus();
  ASSIGN_OR_RETURN(TransferPlaces places, PlacesOf(authorizer, request));
  absl::Status refused =
      authorizer.CheckWarehouseInScope(rule, who, "the transfer's destination", places.destination);
  if (refused.ok()) return refused;
  for (const auto& [leg, source] : places.leg_sources) {
    if (authorizer.CheckWarehouseInScope(rule, who, "source", source).ok()) {
      return absl::OkStatus();
    }
  }
  return absl::PermissionDeniedError(
      absl::StrCat(refused.message(), "; no source of the transfer is inside the scope either"));
}

#undef LEVEL
#undef CATALOGUE
#undef TRANSFER

}  // namespace

absl::Span<const MethodRule> LevelServiceRules() { return kLevelRules; }
absl::Span<const MethodRule> CatalogueServiceRules() { return kCatalogueRules; }
absl::Span<const MethodRule> TransferServiceRules() { return kTransferRules; }
absl::Span<const MethodRule> HealthRules() { return kHealthRules; }

}  // namespace stockpile::auth
