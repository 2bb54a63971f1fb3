#pragma once

// The ONE place that decides whether a call may proceed.
//
//   Authorizer::Check(authorization header, "/stockpile.v1.LevelService/Receive", request)
//     no / malformed / expired / forged token        -> UNAUTHENTICATED
//     role not allowed, or a scoped field outside
//     the token's region scope                         -> PERMISSION_DENIED (names field and scope)
//     method not in the rules table                    -> PERMISSION_DENIED (deny by default)
//     otherwise                                        -> the caller's Identity
//
// What each method allows is data, not code: the per-method rules tables (rules.h). Scoped fields
// are read from the request by protobuf reflection ("op.warehouse", "warehouse.code", ...).
// Nothing here logs; status messages never contain the token.

#include <google/protobuf/message.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "services/common/auth/token.h"

namespace grpc {
class ServerContextBase;
}

namespace stockpile::auth {

// Who is calling. authenticated == false only when authorization is disabled (development).
struct Identity {
  std::string subject;
  Role role = Role::kViewer;
  std::string scope;  // region-code prefix; "" = national
  bool authenticated = true;
};

// The actor to record for a movement (audit): the token's subject. A service token (the
// catalogue running a transfer for a dispatcher) keeps the request's actor next to it:
// "catalogue-1 for bob". With authorization disabled, the request's actor as before.
std::string AuditActor(const Identity& who, absl::string_view requested_actor);

// "alice (staff, scope 420102)": who was refused, for messages. Never the token.
std::string DescribeCaller(const Identity& who);

using RoleSet = uint32_t;
constexpr RoleSet RoleBit(Role r) { return RoleSet{1} << static_cast<int>(r); }
constexpr RoleSet Roles(std::initializer_list<Role> roles) {
  RoleSet set = 0;
  for (Role r : roles) set |= RoleBit(r);
  return set;
}

// How a request field names a place.
enum class FieldKind {
  kWarehouseName,  // "warehouses/{region}-W001"
  kWarehouseCode,  // "{region}-W001"
  kRegionCode,     // region code or region-code prefix, e.g. "4201"
  kHoldId,         // hold id: the warehouse comes from the hold lookup
  kHoldName,       // "holds/{hold_id}": likewise
};

struct ScopedField {
  const char* path = nullptr;  // dotted path of a string field, e.g. "op.warehouse"
  FieldKind kind = FieldKind::kWarehouseName;
};

class Authorizer;
struct MethodRule;
// For requests whose scope is not a fixed list of fields (ApplyBatch: every operation; transfer
// steps: the warehouses of the transfer the request names). Runs after the role check.
using CustomScopeCheck = absl::Status (*)(const Authorizer& authorizer, const MethodRule& rule,
                                          const Identity& who,
                                          const google::protobuf::Message& request);

inline constexpr int kMaxScopedFields = 4;

struct MethodRule {
  const char* method;      // full gRPC method name, "/stockpile.v1.LevelService/Receive"
  bool is_public = false;  // no token needed (health checks)
  RoleSet roles = 0;       // who may call it
  // Roles that act nationally on this method whatever their token scope (dispatcher reads).
  RoleSet national_roles = 0;
  // No region check at all (reference data, instance info).
  bool unscoped = false;
  // Every field that is set must lie inside the token's scope; when none is set, the request
  // spans every region and needs a national scope.
  ScopedField fields[kMaxScopedFields] = {};
  CustomScopeCheck custom = nullptr;  // replaces `fields` when set
};

// hold_id -> the hold's warehouse ("warehouses/{code}" or a bare code). Provided by the service
// (Release, Ship, ConfirmDelivery and GetHold name only a hold). NOT_FOUND passes through.
using HoldLookup = std::function<absl::StatusOr<std::string>(absl::string_view hold_id)>;

// Where a transfer lies: its destination and each leg's source ("warehouses/{code}").
struct TransferPlaces {
  std::string destination;
  std::vector<std::pair<int32_t, std::string>> leg_sources;  // (leg index, source warehouse)
};
// "transfers/{id}" -> its places. Provided by the catalogue (TransferService steps name only
// the transfer). NOT_FOUND passes through.
using TransferLookup = std::function<absl::StatusOr<TransferPlaces>(absl::string_view name)>;

class Authorizer {
 public:
  // `rules`: one or more tables (LevelServiceRules(), HealthRules(), ...); the first entry for
  // a method wins (a unit test keeps the tables free of duplicates).
  Authorizer(TokenVerifier verifier, std::vector<absl::Span<const MethodRule>> rules,
             HoldLookup hold_lookup = nullptr);

  // Development only: every call is allowed as an unauthenticated admin with national scope.
  // Prints "WARNING: authorization disabled ..." to stderr.
  static std::unique_ptr<Authorizer> Disabled();

  // Must be set before serving when scoped tokens may call hold-only methods; without it such
  // calls are refused (national tokens need no lookup).
  void set_hold_lookup(HoldLookup lookup) { hold_lookup_ = std::move(lookup); }
  // Likewise for TransferService steps (scoped tokens only; national tokens need no lookup).
  void set_transfer_lookup(TransferLookup lookup) { transfer_lookup_ = std::move(lookup); }

  // `authorization`: the value of the "authorization" metadata ("Bearer <jwt>"), or "" if absent.
  absl::StatusOr<Identity> Check(absl::string_view authorization, absl::string_view full_method,
                                 const google::protobuf::Message& request) const;
  // The same, reading "authorization" from the call's client metadata.
  absl::StatusOr<Identity> CheckCall(const grpc::ServerContextBase& ctx,
                                     absl::string_view full_method,
                                     const google::protobuf::Message& request) const;

  // Building blocks (used by custom scope checks and by the interceptor).
  const MethodRule* FindRule(absl::string_view full_method) const;
  absl::StatusOr<Identity> Authenticate(absl::string_view authorization) const;
  // Role and scope of an authenticated identity against one rule.
  absl::Status CheckRule(const MethodRule& rule, const Identity& who,
                         const google::protobuf::Message& request) const;
  // The rule's scoped fields against who's scope, as for a rule without a custom check: for
  // custom checks that add a condition to the fields.
  absl::Status CheckFieldsInScope(const MethodRule& rule, const Identity& who,
                                  const google::protobuf::Message& request) const;
  bool disabled() const { return !verifier_.has_value(); }
  // True when `who` is not limited by region on this rule (national scope, or a role the rule
  // lets act nationally).
  static bool ActsNationally(const MethodRule& rule, const Identity& who);
  // OK when `warehouse` ("warehouses/{code}" or a code) lies inside who's scope; otherwise
  // PERMISSION_DENIED naming `what` (e.g. "the transfer's source").
  absl::Status CheckWarehouseInScope(const MethodRule& rule, const Identity& who,
                                     absl::string_view what, absl::string_view warehouse) const;
  // The transfer lookup's answer (FAILED_PRECONDITION when this server has none).
  absl::StatusOr<TransferPlaces> LookupTransfer(absl::string_view name) const;

 private:
  Authorizer() = default;
  static absl::Status CheckRole(const MethodRule& rule, const Identity& who);
  absl::Status CheckFields(const MethodRule& rule, const Identity& who,
                           const google::protobuf::Message& request) const;
  static bool AnotherFieldSet(const MethodRule& rule, const ScopedField& except,
                              const google::protobuf::Message& request);
  absl::StatusOr<std::string> RegionOf(const ScopedField& field, absl::string_view value) const;

  friend class AuthInterceptor;
  // `request` may be null (the interceptor never casts the message of a method without a
  // field-scoped rule); a rule that needs fields then refuses.
  absl::StatusOr<Identity> CheckMessage(absl::string_view authorization,
                                        absl::string_view full_method,
                                        const google::protobuf::Message* request) const;

  std::optional<TokenVerifier> verifier_;
  std::vector<absl::Span<const MethodRule>> tables_;
  HoldLookup hold_lookup_;
  TransferLookup transfer_lookup_;
};

}  // namespace stockpile::auth
