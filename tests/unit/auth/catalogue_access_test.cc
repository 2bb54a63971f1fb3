// The catalogue's CatalogueService and TransferService behind the real auth interceptor and
// rules table, in process (real handlers, coordinator, transfer store, catalogue core; level
// services faked): every method x role x {in scope, out of scope, no token, expired, forged}
// gets the expected status, a refusal changes no transfer and calls no level service, and the
// token's subject is recorded as the actor.
#include <gmock/gmock.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "services/catalogue/allocation/transfer_service.h"
#include "services/catalogue/catalogue_core.h"
#include "services/catalogue/catalogue_service.h"
#include "services/common/auth/interceptor.h"
#include "services/common/auth/rules.h"
#include "stockpile/v1/catalogue_service.grpc.pb.h"
#include "tests/testutil/process.h"
#include "tests/testutil/reference_data.h"
#include "tests/testutil/status_matchers.h"
#include "tests/unit/allocation/fake_level_gateway.h"

namespace stockpile::auth {
namespace {

using namespace stockpile::v1;  // NOLINT
using catalogue::allocation::FakeLevelGateway;
using catalogue::allocation::LotStock;
using google::protobuf::Message;
using ::testing::HasSubstr;

constexpr char kKey[] = "catalogue-access-test-key-0123456789abcdef";
constexpr char kOtherKey[] = "forger-key-forger-key-forger-key-0123456789";
constexpr char kScope[] = "420102";  // a county in Hubei (Wuhan, Jiang'an)

const common::ReferenceData& Reference() { return testing::SharedReferenceData("420102"); }

// A transfer's places, for requests inside and outside the token's scope.
struct Place {
  std::string destination;  // warehouse name
  std::string source;
  std::string region;    // region prefix of the destination
  std::string transfer;  // "transfers/..." with that destination and source (set in SetUp)
};

enum class Kind {
  kRead,       // everyone inside scope; dispatchers nationally
  kReference,  // everyone, any scope
  kTransfer,   // dispatcher, service, admin inside scope
  kLeg,        // staff, dispatcher, service, admin inside scope
  kNational,   // admin with a national scope only
};
enum class Situation { kInScope, kOutOfScope, kNoToken, kExpired, kForged };

struct Case {
  Kind kind;
  // Calls the method with `ctx`; the request points at `place`.
  std::function<grpc::Status(grpc::ClientContext*, const Place&, int serial)> call;
};

const Role kRoles[] = {Role::kStaff, Role::kDispatcher, Role::kViewer, Role::kService,
                       Role::kAdmin};
const Situation kSituations[] = {Situation::kInScope, Situation::kOutOfScope, Situation::kNoToken,
                                 Situation::kExpired, Situation::kForged};

bool RoleAllowed(Kind kind, Role role) {
  switch (kind) {
    case Kind::kRead:
    case Kind::kReference:
      return true;
    case Kind::kTransfer:
      return role == Role::kDispatcher || role == Role::kService || role == Role::kAdmin;
    case Kind::kLeg:
      return role != Role::kViewer;
    case Kind::kNational:
      return role == Role::kAdmin;
  }
  return false;
}

std::string ScopeOf(Role role) { return role == Role::kService ? "" : kScope; }

// The expected policy, written from issue 7 independently of rules.cc.
absl::StatusCode Expected(Kind kind, Role role, Situation s) {
  if (s == Situation::kNoToken || s == Situation::kExpired || s == Situation::kForged) {
    return absl::StatusCode::kUnauthenticated;
  }
  if (!RoleAllowed(kind, role)) return absl::StatusCode::kPermissionDenied;
  if (kind == Kind::kNational && !ScopeOf(role).empty()) return absl::StatusCode::kPermissionDenied;
  const bool national = ScopeOf(role).empty() || kind == Kind::kReference ||
                        (role == Role::kDispatcher && kind == Kind::kRead);
  if (national || s == Situation::kInScope) return absl::StatusCode::kOk;
  return absl::StatusCode::kPermissionDenied;
}

bool IsRefusal(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAUTHENTICATED || code == grpc::StatusCode::PERMISSION_DENIED;
}

class CatalogueAccessTest : public ::testing::Test {
 protected:
  CatalogueAccessTest() : snapshot_(&Reference()), planner_(&Reference()) {}

  void SetUp() override {
    store_ = *catalogue::allocation::TransferStore::Open(dir_.Sub("transfers"));
    coordinator_ = std::make_unique<catalogue::allocation::TransferCoordinator>(
        store_.get(), &gateway_, &planner_, &snapshot_, common::SystemClock::Get());
    transfers_ = std::make_unique<catalogue::allocation::TransferServiceImpl>(coordinator_.get(),
                                                                              &leadership_, 2);
    auto core = catalogue::CatalogueCore::Open(dir_.Sub("catalogue"), &Reference(),
                                               common::SystemClock::Get(), {});
    ASSERT_THAT(core.status(), testing::IsOk());
    core_ = std::move(*core);
    catalogue_ = std::make_unique<catalogue::CatalogueServiceImpl>(core_.get());
    StartServer();
    for (const char* source : {"420102-W001", "430103-W001", "430103-W002"}) {
      snapshot_.SetLots(source, "SH-0001",
                        {LotStock{"DEFAULT", catalogue::allocation::kNoExpiry, 1000}});
      gateway_.SetStock(absl::StrCat("warehouses/", source), "SH-0001", 1000);
    }
    in_.transfer = CreateAsNational(in_, "in");
    out_.transfer = CreateAsNational(out_, "out");
    ASSERT_FALSE(in_.transfer.empty());
    ASSERT_FALSE(out_.transfer.empty());
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  void StartServer() {
    authorizer_ = std::make_shared<Authorizer>(
        TokenVerifier(*TokenKey::FromBytes(kKey), common::SystemClock::Get()),
        std::vector<absl::Span<const MethodRule>>{CatalogueServiceRules(), TransferServiceRules(),
                                                  HealthRules()});
    authorizer_->set_transfer_lookup(catalogue::allocation::MakeTransferLookup(coordinator_.get()));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(transfers_.get());
    builder.RegisterService(catalogue_.get());
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(MakeAuthInterceptorFactory(authorizer_));
    builder.experimental().SetInterceptorCreators(std::move(creators));
    server_ = builder.BuildAndStart();
    auto channel =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
    transfer_stub_ = TransferService::NewStub(channel);
    catalogue_stub_ = CatalogueService::NewStub(channel);
  }

  std::string Token(Role role, absl::string_view scope, const char* key = kKey,
                    absl::Duration age = absl::ZeroDuration(),
                    absl::string_view subject = "alice") {
    const int64_t now = absl::ToUnixSeconds(absl::Now() - age);
    Claims claims{std::string(subject), role, std::string(scope), now - 60, now + 600};
    return *SignToken(*TokenKey::FromBytes(key), claims);
  }

  std::unique_ptr<grpc::ClientContext> Context(const std::string& token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    return ctx;
  }

  std::string TokenFor(Role role, Situation s) {
    switch (s) {
      case Situation::kNoToken:
        return "";
      case Situation::kExpired:
        return Token(role, ScopeOf(role), kKey, absl::Hours(2));
      case Situation::kForged:
        return Token(role, ScopeOf(role), kOtherKey);
      default:
        return Token(role, ScopeOf(role));
    }
  }

  static CreateTransferRequest CreateRequest(const Place& p, const std::string& id) {
    CreateTransferRequest req;
    req.set_request_id(id);
    req.set_actor("requested-actor");
    req.mutable_plan()->set_destination_warehouse(p.destination);
    auto* line = req.mutable_plan()->add_lines();
    line->set_item("SH-0001");
    line->set_quantity(5);
    req.mutable_plan()->set_priority(PRIORITY_URGENT);
    // Keep each transfer to the source its place names.
    for (const char* other :
         {"warehouses/420102-W001", "warehouses/430103-W001", "warehouses/430103-W002"}) {
      if (other != p.source) req.mutable_plan()->add_exclude_sources(other);
    }
    return req;
  }

  std::string CreateAsNational(const Place& p, const std::string& id) {
    Transfer t;
    grpc::Status s = transfer_stub_->CreateTransfer(
        Context(Token(Role::kDispatcher, "", kKey, absl::ZeroDuration(), "chief")).get(),
        CreateRequest(p, "setup-" + id), &t);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(t.legs_size(), 1);
    if (t.legs_size() == 1) {
      EXPECT_EQ(t.legs(0).plan().source_warehouse(), p.source);
    }
    return t.name();
  }

  // Everything a refusal must leave alone: every transfer and the level services' stock.
  std::string State() {
    ListTransfersRequest req;
    req.set_page_size(500);
    auto list = coordinator_->List(req);
    std::string state = list.ok() ? list->SerializeAsString() : list.status().ToString();
    for (const char* source :
         {"warehouses/420102-W001", "warehouses/430103-W001", "warehouses/430103-W002"}) {
      absl::StrAppend(&state, "|", gateway_.Available(source, "SH-0001"));
    }
    absl::StrAppend(&state, "|", gateway_.ActiveHolds());
    return state;
  }

  std::map<std::string, Case> Cases();

  testing::TempDir dir_;
  catalogue::allocation::StockSnapshot snapshot_;
  catalogue::allocation::Planner planner_;
  FakeLevelGateway gateway_;
  catalogue::allocation::AlwaysLeader leadership_;
  std::unique_ptr<catalogue::allocation::TransferStore> store_;
  std::unique_ptr<catalogue::allocation::TransferCoordinator> coordinator_;
  std::unique_ptr<catalogue::allocation::TransferServiceImpl> transfers_;
  std::unique_ptr<catalogue::CatalogueCore> core_;
  std::unique_ptr<catalogue::CatalogueServiceImpl> catalogue_;
  std::shared_ptr<Authorizer> authorizer_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<TransferService::Stub> transfer_stub_;
  std::unique_ptr<CatalogueService::Stub> catalogue_stub_;
  Place in_{"warehouses/420102002-W001", "warehouses/420102-W001", "420102", ""};
  Place out_{"warehouses/430102-W001", "warehouses/430103-W001", "430102", ""};
};

std::map<std::string, Case> CatalogueAccessTest::Cases() {
  std::map<std::string, Case> c;
  auto* cat = catalogue_stub_.get();
  auto* tr = transfer_stub_.get();
  c["GetWarehouseStock"] = {Kind::kRead, [cat](auto* ctx, const Place& p, int) {
                              GetWarehouseStockRequest r;
                              r.set_warehouse(p.destination);
                              r.set_item("SH-0001");
                              WarehouseStock out;
                              return cat->GetWarehouseStock(ctx, r, &out);
                            }};
  c["ListWarehouseStock"] = {Kind::kRead, [cat](auto* ctx, const Place& p, int) {
                               ListWarehouseStockRequest r;
                               r.set_region_prefix(p.region);
                               r.set_item("SH-0001");
                               ListWarehouseStockResponse out;
                               return cat->ListWarehouseStock(ctx, r, &out);
                             }};
  c["GetRollup"] = {Kind::kRead, [cat](auto* ctx, const Place& p, int) {
                      GetRollupRequest r;
                      r.set_region_code(p.region);
                      Rollup out;
                      return cat->GetRollup(ctx, r, &out);
                    }};
  c["SearchStock"] = {Kind::kRead, [cat](auto* ctx, const Place& p, int) {
                        SearchStockRequest r;
                        r.set_item("SH-0001");
                        r.set_min_available(1);
                        r.set_region_code(p.region);
                        r.set_region_prefix(p.region);
                        SearchStockResponse out;
                        return cat->SearchStock(ctx, r, &out);
                      }};
  c["ListShortages"] = {Kind::kRead, [cat](auto* ctx, const Place& p, int) {
                          ListQuotaStatusRequest r;
                          r.set_region_prefix(p.region);
                          ListQuotaStatusResponse out;
                          return cat->ListShortages(ctx, r, &out);
                        }};
  c["ListExpiringLots"] = {Kind::kRead, [cat](auto* ctx, const Place& p, int) {
                             ListExpiringLotsRequest r;
                             r.set_region_prefix(p.region);
                             ListExpiringLotsResponse out;
                             return cat->ListExpiringLots(ctx, r, &out);
                           }};
  c["GetReplicationStatus"] = {Kind::kReference, [cat](auto* ctx, const Place&, int) {
                                 GetReplicationStatusResponse out;
                                 return cat->GetReplicationStatus(
                                     ctx, GetReplicationStatusRequest(), &out);
                               }};
  c["ForgetReplicationSource"] = {Kind::kNational, [cat](auto* ctx, const Place&, int n) {
                                    ForgetReplicationSourceRequest r;
                                    r.set_request_id(absl::StrCat("forget-", n));
                                    r.set_name("sources/county-gone");
                                    ReplicationSource out;
                                    return cat->ForgetReplicationSource(ctx, r, &out);
                                  }};
  c["PlanAllocation"] = {Kind::kTransfer, [tr](auto* ctx, const Place& p, int) {
                           AllocationPlan out;
                           return tr->PlanAllocation(ctx, CreateRequest(p, "").plan(), &out);
                         }};
  c["CreateTransfer"] = {Kind::kTransfer, [tr](auto* ctx, const Place& p, int n) {
                           Transfer out;
                           return tr->CreateTransfer(
                               ctx, CreateRequest(p, absl::StrCat("create-", n)), &out);
                         }};
  c["ApproveTransfer"] = {Kind::kTransfer, [tr](auto* ctx, const Place& p, int n) {
                            ApproveTransferRequest r;
                            r.set_request_id(absl::StrCat("approve-", n));
                            r.set_name(p.transfer);
                            Transfer out;
                            return tr->ApproveTransfer(ctx, r, &out);
                          }};
  c["ShipTransfer"] = {Kind::kLeg, [tr](auto* ctx, const Place& p, int n) {
                         ShipTransferLegRequest r;
                         r.set_request_id(absl::StrCat("ship-", n));
                         r.set_name(p.transfer);
                         r.set_leg(0);
                         Transfer out;
                         return tr->ShipTransfer(ctx, r, &out);
                       }};
  c["ReceiveTransfer"] = {Kind::kLeg, [tr](auto* ctx, const Place& p, int n) {
                            ReceiveTransferLegRequest r;
                            r.set_request_id(absl::StrCat("receive-", n));
                            r.set_name(p.transfer);
                            r.set_leg(0);
                            Transfer out;
                            return tr->ReceiveTransfer(ctx, r, &out);
                          }};
  c["CancelTransfer"] = {Kind::kTransfer, [tr](auto* ctx, const Place& p, int n) {
                           CancelTransferRequest r;
                           r.set_request_id(absl::StrCat("cancel-", n));
                           r.set_name(p.transfer);
                           r.set_reason("matrix");
                           Transfer out;
                           return tr->CancelTransfer(ctx, r, &out);
                         }};
  c["GetTransfer"] = {Kind::kRead, [tr](auto* ctx, const Place& p, int) {
                        GetTransferRequest r;
                        r.set_name(p.transfer);
                        Transfer out;
                        return tr->GetTransfer(ctx, r, &out);
                      }};
  c["ListTransfers"] = {Kind::kRead, [tr](auto* ctx, const Place& p, int) {
                          ListTransfersRequest r;
                          r.set_region_prefix(p.region);
                          ListTransfersResponse out;
                          return tr->ListTransfers(ctx, r, &out);
                        }};
  return c;
}

TEST_F(CatalogueAccessTest, EveryCatalogueAndTransferMethodHasOneRuleAndAMatrixCase) {
  const auto cases = Cases();
  std::set<std::string> ruled;
  for (auto table : {CatalogueServiceRules(), TransferServiceRules()}) {
    for (const MethodRule& rule : table) {
      EXPECT_TRUE(ruled.insert(rule.method).second) << "duplicate rule " << rule.method;
    }
  }
  size_t methods = 0;
  for (const char* name : {"stockpile.v1.CatalogueService", "stockpile.v1.TransferService"}) {
    const auto* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    ASSERT_NE(service, nullptr) << name;
    for (int i = 0; i < service->method_count(); ++i, ++methods) {
      const std::string method = service->method(i)->name();
      EXPECT_EQ(ruled.count(absl::StrCat("/", name, "/", method)), 1u) << "no rule for " << method;
      EXPECT_EQ(cases.count(method), 1u) << "no matrix case for " << method;
    }
  }
  EXPECT_EQ(ruled.size(), methods);
}

// Every method x role x situation over real gRPC. Refusals are checked against the state before
// and after the call; allowed calls may fail for their own reasons (a transfer already shipped),
// but never with UNAUTHENTICATED or PERMISSION_DENIED.
TEST_F(CatalogueAccessTest, Matrix) {
  const auto cases = Cases();
  int checked = 0, serial = 0;
  for (const auto& [name, test_case] : cases) {
    for (Role role : kRoles) {
      for (Situation s : kSituations) {
        const absl::StatusCode want = Expected(test_case.kind, role, s);
        const Place& place = s == Situation::kOutOfScope ? out_ : in_;
        const std::string before = State();
        const int gateway_calls = gateway_.Calls("Hold") + gateway_.Calls("Release");
        const std::string token = TokenFor(role, s);
        grpc::Status got = test_case.call(Context(token).get(), place, ++serial);
        const std::string label = absl::StrCat(name, " as ", RoleName(role), " situation ",
                                               static_cast<int>(s), ": ", got.error_message());
        if (want == absl::StatusCode::kOk) {
          EXPECT_FALSE(IsRefusal(got.error_code())) << label;
        } else {
          EXPECT_EQ(static_cast<int>(got.error_code()), static_cast<int>(want)) << label;
          EXPECT_EQ(State(), before) << "a refusal changed something: " << label;
          EXPECT_EQ(gateway_.Calls("Hold") + gateway_.Calls("Release"), gateway_calls) << label;
          if (!token.empty()) {  // never the token (its signature) in a message
            EXPECT_THAT(got.error_message(),
                        ::testing::Not(HasSubstr(token.substr(token.rfind('.') + 1))));
          }
        }
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 16 * 5 * 5);  // 8 catalogue + 8 transfer methods
}

// Only an admin with a national scope may forget a source: the call is then answered on its
// merits (NOT_FOUND for a source never seen), a scoped admin or a service account is refused.
TEST_F(CatalogueAccessTest, OnlyANationalAdminMayForgetAReplicationSource) {
  ForgetReplicationSourceRequest r;
  r.set_request_id("forget-national");
  r.set_name("sources/county-gone");
  ReplicationSource out;
  grpc::Status national =
      catalogue_stub_->ForgetReplicationSource(Context(Token(Role::kAdmin, "")).get(), r, &out);
  EXPECT_EQ(national.error_code(), grpc::StatusCode::NOT_FOUND) << national.error_message();
  EXPECT_THAT(national.error_message(), HasSubstr("county-gone"));
  for (const auto& [role, scope] :
       {std::pair{Role::kAdmin, std::string(kScope)}, std::pair{Role::kService, std::string()},
        std::pair{Role::kDispatcher, std::string()}}) {
    grpc::Status refused =
        catalogue_stub_->ForgetReplicationSource(Context(Token(role, scope)).get(), r, &out);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << RoleName(role) << " " << scope << ": " << refused.error_message();
  }
}

TEST_F(CatalogueAccessTest, CountyDispatcherCannotApproveATransferOutOfAnotherProvince) {
  // Destination in the dispatcher's county, the only source in Hunan.
  Place cross{"warehouses/420102002-W002", "warehouses/430103-W002", "420102", ""};
  cross.transfer = CreateAsNational(cross, "cross");
  const std::string county = Token(Role::kDispatcher, kScope, kKey, absl::ZeroDuration(), "zhao");
  ApproveTransferRequest approve;
  approve.set_request_id("approve-cross");
  approve.set_name(cross.transfer);
  Transfer t;
  const std::string before = State();
  grpc::Status s = transfer_stub_->ApproveTransfer(Context(county).get(), approve, &t);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("430103"));
  EXPECT_EQ(State(), before);
  EXPECT_EQ(gateway_.ActiveHolds(), 0);
  // The same dispatcher may still read and cancel it (the destination is theirs) ...
  GetTransferRequest get;
  get.set_name(cross.transfer);
  EXPECT_TRUE(transfer_stub_->GetTransfer(Context(county).get(), get, &t).ok());
  // ... and a Hubei province dispatcher may not approve either; a national one may.
  s = transfer_stub_->ApproveTransfer(Context(Token(Role::kDispatcher, "42")).get(), approve, &t);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  s = transfer_stub_->ApproveTransfer(Context(Token(Role::kDispatcher, "")).get(), approve, &t);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(t.state(), TRANSFER_STATE_READY);
  EXPECT_EQ(t.approver_scope(), "");  // national: re-plans anywhere
}

TEST_F(CatalogueAccessTest, TheTokenSubjectIsTheActorOfEveryStep) {
  const std::string dispatcher =
      Token(Role::kDispatcher, kScope, kKey, absl::ZeroDuration(), "li.dispatch");
  Transfer t;
  ASSERT_TRUE(
      transfer_stub_->CreateTransfer(Context(dispatcher).get(), CreateRequest(in_, "mine"), &t)
          .ok());
  EXPECT_EQ(t.created_by(), "li.dispatch");  // not the request's "requested-actor"
  ApproveTransferRequest approve;
  approve.set_request_id("approve-mine");
  approve.set_actor("someone-else");
  approve.set_name(t.name());
  ASSERT_TRUE(transfer_stub_->ApproveTransfer(Context(dispatcher).get(), approve, &t).ok());
  EXPECT_EQ(t.approved_by(), "li.dispatch");
  EXPECT_EQ(t.approver_scope(), kScope);  // the token's: re-plans stay inside it
  ShipTransferLegRequest ship;
  ship.set_request_id("ship-mine");
  ship.set_name(t.name());
  ship.set_leg(0);
  const std::string staff = Token(Role::kStaff, kScope, kKey, absl::ZeroDuration(), "wang.store");
  ASSERT_TRUE(transfer_stub_->ShipTransfer(Context(staff).get(), ship, &t).ok());
  std::set<std::string> actors;
  for (const AuditStep& step : t.audit()) actors.insert(step.actor());
  EXPECT_TRUE(actors.count("li.dispatch")) << t.DebugString();
  EXPECT_TRUE(actors.count("wang.store")) << t.DebugString();
  EXPECT_FALSE(actors.count("someone-else"));
  EXPECT_FALSE(actors.count("requested-actor"));
}

TEST_F(CatalogueAccessTest, StaffShipOnlyFromTheirOwnWarehouse) {
  // A village staff token elsewhere in the county does not cover the county warehouse source.
  const std::string village = Token(Role::kStaff, "420102002001");
  ShipTransferLegRequest ship;
  ship.set_request_id("ship-village");
  ship.set_name(in_.transfer);
  ship.set_leg(0);
  Transfer t;
  grpc::Status s = transfer_stub_->ShipTransfer(Context(village).get(), ship, &t);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("420102-W001"));
}

TEST_F(CatalogueAccessTest, UnknownTransferIsNotFoundForScopedTokens) {
  GetTransferRequest get;
  get.set_name("transfers/does-not-exist");
  Transfer t;
  grpc::Status s =
      transfer_stub_->GetTransfer(Context(Token(Role::kViewer, kScope)).get(), get, &t);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
}

}  // namespace
}  // namespace stockpile::auth
