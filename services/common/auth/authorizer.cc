#include "services/common/auth/authorizer.h"

#include <grpcpp/server_context.h>

#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "services/common/status_macros.h"
#include "services/common/validation.h"

namespace stockpile::auth {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

constexpr absl::string_view kBearer = "Bearer ";
constexpr absl::string_view kHoldPrefix = "holds/";

std::string ScopeText(absl::string_view scope) {
  return scope.empty() ? std::string("national") : std::string(scope);
}

std::string Who(const Identity& who) { return DescribeCaller(who); }

std::string Quoted(absl::string_view value) {
  return absl::StrCat("\"", common::IsValidUtf8(value) ? value.substr(0, 64) : "<bad UTF-8>", "\"");
}

absl::StatusOr<std::string> ReadStringPath(const Message& request, absl::string_view path) {
  const Message* message = &request;
  std::vector<absl::string_view> parts = absl::StrSplit(path, '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    const FieldDescriptor* field = message->GetDescriptor()->FindFieldByName(std::string(parts[i]));
    const bool last = i + 1 == parts.size();
    const auto want = last ? FieldDescriptor::CPPTYPE_STRING : FieldDescriptor::CPPTYPE_MESSAGE;
    if (field == nullptr || field->is_repeated() || field->cpp_type() != want) {
      return absl::InternalError(absl::StrCat("access rule names field ", path, " that ",
                                              request.GetDescriptor()->full_name(), " lacks"));
    }
    const auto* reflection = message->GetReflection();
    if (last) return reflection->GetString(*message, field);
    if (!reflection->HasField(*message, field)) return std::string();
    message = &reflection->GetMessage(*message, field);
  }
  return std::string();
}

absl::StatusOr<std::string> RegionOfWarehouse(absl::string_view warehouse) {
  if (absl::StartsWith(warehouse, "warehouses/")) {
    ASSIGN_OR_RETURN(std::string code, common::WarehouseCodeFromName(warehouse));
    return common::RegionOfWarehouseCode(code);
  }
  return common::RegionOfWarehouseCode(warehouse);
}

}  // namespace

std::string DescribeCaller(const Identity& who) {
  return absl::StrCat(who.subject, " (", RoleName(who.role), ", scope ", ScopeText(who.scope), ")");
}

std::string AuditActor(const Identity& who, absl::string_view requested_actor) {
  if (!who.authenticated) return std::string(requested_actor);
  if (who.role != Role::kService || requested_actor.empty()) return who.subject;
  std::string on_behalf = absl::StrCat(who.subject, " for ", requested_actor);
  return on_behalf.size() <= common::kMaxIdLength ? on_behalf : who.subject;
}

Authorizer::Authorizer(TokenVerifier verifier, std::vector<absl::Span<const MethodRule>> rules,
                       HoldLookup hold_lookup)
    : verifier_(std::move(verifier)),
      tables_(std::move(rules)),
      hold_lookup_(std::move(hold_lookup)) {}

std::unique_ptr<Authorizer> Authorizer::Disabled() {
  std::cerr << "WARNING: authorization disabled (--insecure): every call is allowed "
               "without a token; use only for local development\n";
  return std::unique_ptr<Authorizer>(new Authorizer());
}

const MethodRule* Authorizer::FindRule(absl::string_view full_method) const {
  for (const auto& table : tables_) {
    for (const MethodRule& rule : table) {
      if (full_method == rule.method) return &rule;
    }
  }
  return nullptr;
}

absl::StatusOr<Identity> Authorizer::Authenticate(absl::string_view authorization) const {
  if (disabled()) return Identity{"", Role::kAdmin, "", /*authenticated=*/false};
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        "missing \"authorization\" metadata; expected \"Bearer <token>\"");
  }
  if (!absl::StartsWithIgnoreCase(authorization, kBearer)) {
    return absl::UnauthenticatedError("authorization metadata must be \"Bearer <token>\"");
  }
  absl::string_view token = absl::StripAsciiWhitespace(authorization.substr(kBearer.size()));
  ASSIGN_OR_RETURN(Claims claims, verifier_->Verify(token));
  return Identity{std::move(claims.subject), claims.role, std::move(claims.scope)};
}

absl::StatusOr<Identity> Authorizer::Check(absl::string_view authorization,
                                           absl::string_view full_method,
                                           const Message& request) const {
  return CheckMessage(authorization, full_method, &request);
}

absl::StatusOr<Identity> Authorizer::CheckCall(const grpc::ServerContextBase& ctx,
                                               absl::string_view full_method,
                                               const Message& request) const {
  const auto& metadata = ctx.client_metadata();
  auto it = metadata.find("authorization");
  absl::string_view header;
  if (it != metadata.end()) header = absl::string_view(it->second.data(), it->second.size());
  return Check(header, full_method, request);
}

absl::StatusOr<Identity> Authorizer::CheckMessage(absl::string_view authorization,
                                                  absl::string_view full_method,
                                                  const Message* request) const {
  if (disabled()) return Authenticate(authorization);
  const MethodRule* rule = FindRule(full_method);
  if (rule != nullptr && rule->is_public) {
    return Identity{"", Role::kViewer, "", /*authenticated=*/false};
  }
  ASSIGN_OR_RETURN(Identity who, Authenticate(authorization));
  if (rule == nullptr) {
    return absl::PermissionDeniedError(absl::StrCat("method ", full_method.substr(0, 128),
                                                    " has no access rule: denied by default"));
  }
  RETURN_IF_ERROR(CheckRole(*rule, who));
  if (rule->unscoped) return who;
  if (request == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("request of ", full_method, " is not available to check its scope"));
  }
  RETURN_IF_ERROR(CheckRule(*rule, who, *request));
  return who;
}

absl::Status Authorizer::CheckRole(const MethodRule& rule, const Identity& who) {
  if ((rule.roles & RoleBit(who.role)) == 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(Who(who), " may not call ", rule.method, ": role not allowed"));
  }
  return absl::OkStatus();
}

absl::Status Authorizer::CheckRule(const MethodRule& rule, const Identity& who,
                                   const Message& request) const {
  RETURN_IF_ERROR(CheckRole(rule, who));
  if (rule.custom != nullptr) return rule.custom(*this, rule, who, request);
  return CheckFieldsInScope(rule, who, request);
}

absl::Status Authorizer::CheckFieldsInScope(const MethodRule& rule, const Identity& who,
                                            const Message& request) const {
  if (rule.unscoped || ActsNationally(rule, who)) return absl::OkStatus();
  return CheckFields(rule, who, request);
}

bool Authorizer::ActsNationally(const MethodRule& rule, const Identity& who) {
  return who.scope.empty() || (rule.national_roles & RoleBit(who.role)) != 0;
}

absl::Status Authorizer::CheckWarehouseInScope(const MethodRule& rule, const Identity& who,
                                               absl::string_view what,
                                               absl::string_view warehouse) const {
  if (ActsNationally(rule, who)) return absl::OkStatus();
  absl::StatusOr<std::string> region = RegionOfWarehouse(warehouse);
  if (!region.ok()) {
    return absl::PermissionDeniedError(absl::StrCat(Who(who), ": ", what, " ", Quoted(warehouse),
                                                    " cannot be placed in a region"));
  }
  if (!absl::StartsWith(*region, who.scope)) {
    return absl::PermissionDeniedError(absl::StrCat(Who(who), " may not call ", rule.method, ": ",
                                                    what, " ", Quoted(warehouse), " is in region ",
                                                    *region, ", outside scope ", who.scope));
  }
  return absl::OkStatus();
}

absl::StatusOr<TransferPlaces> Authorizer::LookupTransfer(absl::string_view name) const {
  if (!transfer_lookup_) return absl::FailedPreconditionError("this server has no transfer lookup");
  return transfer_lookup_(name);
}

bool Authorizer::AnotherFieldSet(const MethodRule& rule, const ScopedField& except,
                                 const Message& request) {
  for (const ScopedField& field : rule.fields) {
    if (field.path == nullptr) break;
    if (&field == &except) continue;
    auto value = ReadStringPath(request, field.path);
    if (value.ok() && !value->empty()) return true;
  }
  return false;
}

absl::Status Authorizer::CheckFields(const MethodRule& rule, const Identity& who,
                                     const Message& request) const {
  bool any_set = false;
  std::vector<absl::string_view> names;
  for (const ScopedField& field : rule.fields) {
    if (field.path == nullptr) break;
    names.push_back(field.path);
    ASSIGN_OR_RETURN(std::string value, ReadStringPath(request, field.path));
    if (value.empty()) continue;
    any_set = true;
    absl::StatusOr<std::string> region = RegionOf(field, value);
    if (!region.ok()) {
      // A hold that does not exist (yet) places nothing; another field of the rule may
      // (Release's warehouse_if_absent). With none, the caller learns it does not exist.
      if (region.status().code() == absl::StatusCode::kNotFound) {
        if (AnotherFieldSet(rule, field, request)) continue;
        return region.status();
      }
      return absl::PermissionDeniedError(
          absl::StrCat(Who(who), ": ", field.path, " ", Quoted(value),
                       " cannot be placed in a region (", region.status().message(), ")"));
    }
    if (!absl::StartsWith(*region, who.scope)) {
      return absl::PermissionDeniedError(
          absl::StrCat(Who(who), " may not call ", rule.method, ": ", field.path, " ",
                       Quoted(value), " is in region ", *region, ", outside scope ", who.scope));
    }
  }
  if (!any_set) {
    return absl::PermissionDeniedError(
        absl::StrCat(Who(who), " may not call ", rule.method, " without ",
                     names.empty() ? std::string("a national scope")
                                   : absl::StrCat("setting ", absl::StrJoin(names, " or "),
                                                  " inside the scope (unset spans every region)")));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Authorizer::RegionOf(const ScopedField& field,
                                                 absl::string_view value) const {
  switch (field.kind) {
    case FieldKind::kWarehouseName:
    case FieldKind::kWarehouseCode:
      return RegionOfWarehouse(value);
    case FieldKind::kRegionCode:
      return std::string(value);
    case FieldKind::kHoldName:
      if (!absl::StartsWith(value, kHoldPrefix)) {
        return absl::InvalidArgumentError("a hold name is holds/{hold_id}");
      }
      value.remove_prefix(kHoldPrefix.size());
      [[fallthrough]];
    case FieldKind::kHoldId: {
      if (!hold_lookup_) {
        return absl::FailedPreconditionError("this server has no hold lookup");
      }
      ASSIGN_OR_RETURN(std::string warehouse, hold_lookup_(value));
      return RegionOfWarehouse(warehouse);
    }
  }
  return absl::InternalError("unknown field kind");
}

}  // namespace stockpile::auth
