// The access policy of issue 7 against a REAL stockpile-level, deployed as in production (TLS with
// client certificates from the deployment CA, bearer tokens signed with the deployment key).
// Every LevelService method x role x {in scope, out of scope, national, no token, expired, forged,
// tampered} gets the status the policy below implies, and every refusal leaves the balances (per
// lot, on hand and held) and the change-stream head exactly as they were. The expectation is
// written down here from the issue, independently of services/common/auth/rules.cc: the test
// never asks the Authorizer what it should expect.
//
// The instance hosts one township at village level; tokens are scoped to one of its villages
// (real codes from ../shared/data/regions), "out of scope" is the next village of the same
// township. Both villages have a warehouse with stock in two lots.
#include <gmock/gmock.h>
#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "services/common/auth/rules.h"
#include "services/common/auth/tls.h"
#include "services/common/auth/token.h"
#include "tests/testutil/level_process.h"
#include "tests/testutil/pki.h"
#include "tests/testutil/reference_data.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::testing {
namespace {

using namespace stockpile::v1;  // NOLINT
using auth::Role;
using ::testing::HasSubstr;

constexpr char kKey[] = "level-access-matrix-deployment-key-0123456789";
constexpr char kForgerKey[] = "a-forger-who-lacks-the-deployment-key-0123456789";
constexpr char kCounty[] = "420116";  // Huangpi district, Wuhan: rural townships with villages
constexpr char kItem[] = "SH-0001";   // single-wall tent: no shelf life
constexpr int64_t kStockPerLot = 500;

// ---- the policy (issue 7), written independently of rules.cc ----------------------------------

enum class Case { kInScope, kOutOfScope, kNational, kNoToken, kExpired, kForged, kTampered };
const Case kCases[] = {Case::kInScope, Case::kOutOfScope, Case::kNational, Case::kNoToken,
                       Case::kExpired, Case::kForged,     Case::kTampered};
const Role kRoles[] = {Role::kStaff, Role::kDispatcher, Role::kViewer, Role::kService,
                       Role::kAdmin};

const char* CaseName(Case c) {
  switch (c) {
    case Case::kInScope:
      return "in scope";
    case Case::kOutOfScope:
      return "out of scope";
    case Case::kNational:
      return "national token";
    case Case::kNoToken:
      return "no token";
    case Case::kExpired:
      return "expired token";
    case Case::kForged:
      return "signed with another key";
    case Case::kTampered:
      return "claims widened to national, signature kept";
  }
  return "?";
}

enum class Reach {
  kPlace,     // names a warehouse, hold or region: only inside the token's scope
  kInstance,  // spans the whole instance: only with a national scope
  kAnywhere,  // reference data and instance information: no region check
};

// Every row that is not a read, and who may make it. Reads are for every role (inside scope;
// dispatchers read every region).
const std::map<Role, std::set<std::string>>& AllowedWrites() {
  static const std::set<std::string> kEveryWrite = {"CreateWarehouse",
                                                    "UpdateWarehouse",
                                                    "Receive",
                                                    "Issue",
                                                    "Stocktake",
                                                    "Hold",
                                                    "Release",
                                                    "Ship",
                                                    "ReceiveTransfer",
                                                    "ConfirmDelivery",
                                                    "ApplyBatch[Receive]",
                                                    "ApplyBatch[Hold]",
                                                    "SetQuota",
                                                    "SetReserve",
                                                    "WatchChanges",
                                                    "CreateBackup",
                                                    "ListBackups"};
  static const auto* table = new std::map<Role, std::set<std::string>>{
      // Stock movements and stocktakes at their warehouses.
      {Role::kStaff, {"Receive", "Issue", "Stocktake", "ApplyBatch[Receive]"}},
      // Transfer steps.
      {Role::kDispatcher,
       {"Hold", "Release", "Ship", "ReceiveTransfer", "ConfirmDelivery", "ApplyBatch[Hold]"}},
      {Role::kViewer, {}},
      // Catalogue <-> level: everything, including the change stream.
      {Role::kService, kEveryWrite},
      // Warehouses, quotas and everything else.
      {Role::kAdmin, kEveryWrite},
  };
  return *table;
}

struct Row {
  std::string name;  // the rpc, and in brackets which request variant: "ApplyBatch[Hold]"
  Reach reach;
  bool read;
};

grpc::StatusCode Expected(const Row& row, Role role, Case c) {
  if (c == Case::kNoToken || c == Case::kExpired || c == Case::kForged || c == Case::kTampered) {
    return grpc::StatusCode::UNAUTHENTICATED;
  }
  if (!row.read && !AllowedWrites().at(role).contains(row.name)) {
    return grpc::StatusCode::PERMISSION_DENIED;
  }
  if (c == Case::kNational || row.reach == Reach::kAnywhere ||
      (row.read && role == Role::kDispatcher)) {
    return grpc::StatusCode::OK;
  }
  if (row.reach == Reach::kInstance) return grpc::StatusCode::PERMISSION_DENIED;
  return c == Case::kInScope ? grpc::StatusCode::OK : grpc::StatusCode::PERMISSION_DENIED;
}

// The rpc name of a row ("ApplyBatch[Hold]" -> "ApplyBatch").
std::string RpcOf(const std::string& row) { return row.substr(0, row.find('[')); }

// ---- the deployment ---------------------------------------------------------------------------

// Two neighbouring villages of one township (the instance's region) and a village of another
// township (a remote transfer source and shipment destination).
struct Villages {
  std::string township;
  std::string home;  // the tokens' scope
  std::string next;  // the next village of the same township
  std::string far;
};

Villages PickVillages() {
  const auto& regions = SharedReferenceData(kCounty).regions();  // sorted by code
  auto is_village = [&](size_t i) {
    return regions[i].level == LEVEL_VILLAGE && absl::StartsWith(regions[i].code, kCounty) &&
           absl::StrContains(regions[i].name, "村");
  };
  Villages v;
  for (size_t i = 0; i + 1 < regions.size() && v.home.empty(); ++i) {
    if (is_village(i) && is_village(i + 1) &&
        regions[i].parent_code == regions[i + 1].parent_code) {
      v = {regions[i].parent_code, regions[i].code, regions[i + 1].code, ""};
    }
  }
  for (size_t i = 0; i < regions.size() && v.far.empty(); ++i) {
    if (is_village(i) && regions[i].parent_code != v.township) v.far = regions[i].code;
  }
  return v;
}

std::string WarehouseOf(const std::string& village) {
  return absl::StrCat("warehouses/", village, "-W001");
}

struct Target {
  std::string warehouse;
  std::string region;
};

struct Snapshot {
  std::string balances;  // ListBalances of the whole township, every lot's on hand and held
  uint64_t head = 0;     // the change stream's last sequence
};

using Call = std::function<grpc::Status(grpc::ClientContext*)>;

class LevelAccessMatrixTest : public ::testing::Test {
 protected:
  struct Env {
    TempDir dir;
    Pki pki{dir.path()};
    Villages villages;
    std::unique_ptr<LevelProcess> level;
    std::unique_ptr<LevelService::Stub> stub;  // mutual TLS with the deployment CA's client cert
    std::string admin;                         // national admin: set-up and snapshots
  };

  static void SetUpTestSuite() {
    env_ = new Env;
    setup_error_ = Start(*env_);
  }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }
  void SetUp() override { ASSERT_EQ(setup_error_, ""); }

  static std::string Start(Env& env) {
    env.villages = PickVillages();
    if (env.villages.home.empty() || env.villages.far.empty()) {
      return absl::StrCat("no two neighbouring villages under ", kCounty, " in the reference data");
    }
    Pki& pki = env.pki;
    if (!(pki.MakeCa("ca") && pki.MakeLeaf("server", "ca", "serverAuth") &&
          pki.MakeLeaf("client", "ca", "clientAuth") && pki.MakeCa("other-ca") &&
          pki.MakeLeaf("stranger", "other-ca", "clientAuth"))) {
      return pki.log;
    }
    std::ofstream(pki.Path("token.key")) << kKey;
    env.level = std::make_unique<LevelProcess>(
        env.dir, "village", env.villages.township,
        std::vector<std::string>{
            "--tls-cert=" + pki.Path("server.pem"), "--tls-key=" + pki.Path("server.key"),
            "--tls-ca=" + pki.Path("ca.pem"), "--auth-key-file=" + pki.Path("token.key"),
            "--backup-dir=" + env.dir.Sub("backups")},
        std::map<std::string, std::string>{{"STOCKPILE_INSECURE", "0"}});
    if (!env.level->Start()) return env.level->Log();
    auto credentials = Credentials(env, "client");
    if (credentials == nullptr) return "cannot read the client certificate";
    env.stub = LevelService::NewStub(grpc::CreateChannel(env.level->address(), credentials));
    env.admin = Sign(Role::kAdmin, "");
    for (const std::string& village : {env.villages.home, env.villages.next}) {
      CreateWarehouseRequest req;
      req.set_request_id(NextId("create"));
      *req.mutable_warehouse() = NewWarehouse(absl::StrCat(village, "-W001"));
      Warehouse out;
      grpc::Status s = env.stub->CreateWarehouse(Ctx(env.admin).get(), req, &out);
      if (!s.ok()) return absl::StrCat("create ", village, ": ", s.error_message());
      for (const char* lot : {"LOT-A", "LOT-B"}) {
        ReceiveRequest receive = ReceiveAt(WarehouseOf(village), lot, kStockPerLot);
        MovementResult result;
        s = env.stub->Receive(Ctx(env.admin).get(), receive, &result);
        if (!s.ok()) return absl::StrCat("receive at ", village, ": ", s.error_message());
      }
    }
    return "";
  }

  static std::shared_ptr<grpc::ChannelCredentials> Credentials(const Env& env,
                                                               const std::string& client) {
    auth::TlsOptions tls;
    tls.files.ca = env.pki.Path("ca.pem");
    if (!client.empty()) {
      tls.files.cert = env.pki.Path(client + ".pem");
      tls.files.key = env.pki.Path(client + ".key");
    }
    auto credentials = auth::ChannelCredentials(tls);
    return credentials.ok() ? *credentials : nullptr;
  }

  // ---- tokens ----

  static std::string Sign(Role role, const std::string& scope, Case c = Case::kInScope) {
    const int64_t now = absl::ToUnixSeconds(absl::Now());
    auth::Claims claims{absl::StrCat(auth::RoleName(role), "-", scope.empty() ? "national" : scope),
                        role, scope, now - 60, now + 3600};
    if (c == Case::kExpired) {
      claims.issued_at = now - 7200;
      claims.expires_at = now - 3600;
    }
    auto key = auth::TokenKey::FromBytes(c == Case::kForged ? kForgerKey : kKey);
    auto token = auth::SignToken(*key, claims);
    EXPECT_THAT(token.status(), IsOk());
    if (!token.ok()) return "";
    if (c != Case::kTampered) return *token;
    // The scoped token's header and signature around the claims of a national one.
    claims.scope = "";
    auto national = auth::SignToken(*key, claims);
    std::vector<std::string> scoped_parts = absl::StrSplit(*token, '.');
    std::vector<std::string> national_parts = absl::StrSplit(*national, '.');
    return absl::StrCat(scoped_parts[0], ".", national_parts[1], ".", scoped_parts[2]);
  }

  std::string TokenFor(Role role, Case c) {
    const std::string& home = env_->villages.home;
    switch (c) {
      case Case::kInScope:
      case Case::kOutOfScope:
        return Sign(role, home);
      case Case::kNational:
        return Sign(role, "");
      case Case::kNoToken:
        return "";
      case Case::kExpired:
      case Case::kForged:
      case Case::kTampered:
        return Sign(role, home, c);
    }
    return "";
  }

  static std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token) {
    auto ctx = Deadline(5);
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    return ctx;
  }
  static std::unique_ptr<grpc::ClientContext> AsAdmin() { return Ctx(env_->admin); }
  static LevelService::Stub& Stub() { return *env_->stub; }

  // ---- requests that succeed for an allowed caller ----

  static std::string NextId(const std::string& what) {
    static int serial = 0;
    return absl::StrCat(what, "-", ++serial);
  }

  static Warehouse NewWarehouse(const std::string& code) {
    Warehouse w;
    w.set_code(code);
    w.set_display_name("store " + code);
    w.set_kind(WAREHOUSE_KIND_GOVERNMENT);
    w.set_area_m2(60);
    return w;
  }

  static ReceiveRequest ReceiveAt(const std::string& warehouse, const std::string& lot = "LOT-A",
                                  int64_t quantity = 1) {
    ReceiveRequest req;
    req.set_request_id(NextId("receive"));
    req.mutable_op()->set_warehouse(warehouse);
    req.mutable_op()->set_item(kItem);
    req.mutable_op()->set_lot(lot);
    req.mutable_op()->set_quantity(quantity);
    return req;
  }
  static IssueRequest IssueAt(const std::string& warehouse) {
    IssueRequest req;
    req.set_request_id(NextId("issue"));
    req.mutable_op()->set_warehouse(warehouse);
    req.mutable_op()->set_item(kItem);
    req.mutable_op()->set_lot("LOT-A");
    req.mutable_op()->set_quantity(1);
    return req;
  }
  // Counts one more than the ledger knows of LOT-B (a real adjustment).
  static StocktakeRequest StocktakeAt(const std::string& warehouse) {
    StocktakeRequest req;
    req.set_request_id(NextId("stocktake"));
    req.mutable_op()->set_warehouse(warehouse);
    req.mutable_op()->set_item(kItem);
    req.mutable_op()->set_reason("recount found one more");
    auto* count = req.mutable_op()->add_counts();
    count->set_lot("LOT-B");
    count->set_counted(LotOnHand(warehouse, "LOT-B") + 1);
    return req;
  }
  static HoldRequest HoldAt(const std::string& warehouse) {
    HoldRequest req;
    req.set_request_id(NextId("hold"));
    req.mutable_op()->set_warehouse(warehouse);
    req.mutable_op()->set_item(kItem);
    req.mutable_op()->set_quantity(1);
    req.mutable_op()->set_hold_id(NextId("H"));
    return req;
  }

  static Balance BalanceAt(const std::string& warehouse) {
    GetBalanceRequest req;
    req.set_warehouse(warehouse);
    req.set_item(kItem);
    Balance b;
    EXPECT_THAT(Stub().GetBalance(AsAdmin().get(), req, &b), IsOk());
    return b;
  }
  static int64_t LotOnHand(const std::string& warehouse, const std::string& lot) {
    const Balance balance = BalanceAt(warehouse);
    for (const auto& l : balance.lots()) {
      if (l.lot() == lot) return l.on_hand();
    }
    return 0;
  }

  // A hold of one unit at `warehouse` in `state` (ACTIVE or SHIPPED), reused while it stays so.
  std::string HoldIn(const std::string& warehouse, HoldState state) {
    std::string& id = holds_[{warehouse, state}];
    if (!id.empty()) {
      GetHoldRequest get;
      get.set_name("holds/" + id);
      v1::Hold hold;
      EXPECT_THAT(Stub().GetHold(AsAdmin().get(), get, &hold), IsOk());
      if (hold.state() == state) return id;
    }
    HoldRequest req = HoldAt(warehouse);
    MovementResult out;
    EXPECT_THAT(Stub().Hold(AsAdmin().get(), req, &out), IsOk());
    id = req.op().hold_id();
    if (state == HOLD_STATE_SHIPPED) {
      ShipRequest ship;
      ship.set_request_id(NextId("ship"));
      ship.mutable_op()->set_hold_id(id);
      ship.mutable_op()->set_destination(WarehouseOf(env_->villages.far));
      EXPECT_THAT(Stub().Ship(AsAdmin().get(), ship, &out), IsOk());
    }
    wrote_ = true;
    return id;
  }

  template <typename Req, typename Resp>
  using Rpc = grpc::Status (LevelService::Stub::*)(grpc::ClientContext*, const Req&, Resp*);

  template <typename Req, typename Resp>
  static Call Unary(Rpc<Req, Resp> rpc, Req req) {
    return [rpc, req](grpc::ClientContext* ctx) {
      Resp resp;
      return (Stub().*rpc)(ctx, req, &resp);
    };
  }

  // The change stream: allowed when it delivers its first entries.
  static Call Watch() {
    return [](grpc::ClientContext* ctx) {
      WatchChangesRequest req;
      req.set_max_batch(1);
      auto reader = Stub().WatchChanges(ctx, req);
      WatchChangesResponse resp;
      if (reader->Read(&resp)) {
        ctx->TryCancel();
        reader->Finish();
        return grpc::Status::OK;
      }
      return reader->Finish();
    };
  }

  struct MatrixRow {
    Row row;
    // Sets up what the request needs (holds, counts) and returns the call; runs before the
    // snapshot that the call must leave unchanged when refused.
    std::function<Call(const Target&)> prepare;
  };

  std::vector<MatrixRow> Rows();

  Snapshot Take() {
    ListBalancesRequest req;
    req.set_region_prefix(env_->villages.township);
    req.set_page_size(10000);
    ListBalancesResponse balances;
    EXPECT_THAT(Stub().ListBalances(AsAdmin().get(), req, &balances), IsOk());
    EXPECT_EQ(balances.next_page_token(), "");
    InstanceInfo info;
    EXPECT_THAT(Stub().GetInstanceInfo(AsAdmin().get(), GetInstanceInfoRequest(), &info), IsOk());
    return {balances.DebugString(), info.last_sequence()};
  }

  Target Home() const { return {WarehouseOf(env_->villages.home), env_->villages.home}; }
  Target Next() const { return {WarehouseOf(env_->villages.next), env_->villages.next}; }

  static inline Env* env_ = nullptr;
  static inline std::string setup_error_;
  std::map<std::pair<std::string, HoldState>, std::string> holds_;
  bool wrote_ = true;  // something may have changed since the last snapshot
  int warehouse_serial_ = 100;
};

std::vector<LevelAccessMatrixTest::MatrixRow> LevelAccessMatrixTest::Rows() {
  using S = LevelService::Stub;
  const std::string far = WarehouseOf(env_->villages.far);
  std::vector<MatrixRow> rows;
  auto add = [&](std::string name, Reach reach, bool read,
                 std::function<Call(const Target&)> prepare) {
    rows.push_back({{std::move(name), reach, read}, std::move(prepare)});
  };
  // Warehouses.
  add("CreateWarehouse", Reach::kPlace, false, [this](const Target& t) {
    CreateWarehouseRequest req;
    req.set_request_id(NextId("create"));
    *req.mutable_warehouse() = NewWarehouse(absl::StrCat(t.region, "-W", ++warehouse_serial_));
    return Unary(&S::CreateWarehouse, req);
  });
  add("GetWarehouse", Reach::kPlace, true, [](const Target& t) {
    GetWarehouseRequest req;
    req.set_name(t.warehouse);
    return Unary(&S::GetWarehouse, req);
  });
  add("ListWarehouses", Reach::kPlace, true, [](const Target& t) {
    ListWarehousesRequest req;
    req.set_region_prefix(t.region);
    return Unary(&S::ListWarehouses, req);
  });
  add("UpdateWarehouse", Reach::kPlace, false, [](const Target& t) {
    UpdateWarehouseRequest req;
    req.set_request_id(NextId("update"));
    req.mutable_warehouse()->set_name(t.warehouse);
    req.mutable_warehouse()->set_display_name(NextId("renamed store"));
    req.mutable_update_mask()->add_paths("display_name");
    return Unary(&S::UpdateWarehouse, req);
  });
  // Stock movements and stocktakes.
  add("Receive", Reach::kPlace, false,
      [](const Target& t) { return Unary(&S::Receive, ReceiveAt(t.warehouse)); });
  add("Issue", Reach::kPlace, false,
      [](const Target& t) { return Unary(&S::Issue, IssueAt(t.warehouse)); });
  add("Stocktake", Reach::kPlace, false,
      [](const Target& t) { return Unary(&S::Stocktake, StocktakeAt(t.warehouse)); });
  // Transfer steps.
  add("Hold", Reach::kPlace, false,
      [](const Target& t) { return Unary(&S::Hold, HoldAt(t.warehouse)); });
  add("Release", Reach::kPlace, false, [this](const Target& t) {
    ReleaseRequest req;
    req.set_request_id(NextId("release"));
    req.mutable_op()->set_hold_id(HoldIn(t.warehouse, HOLD_STATE_ACTIVE));
    return Unary(&S::Release, req);
  });
  add("Ship", Reach::kPlace, false, [this, far](const Target& t) {
    ShipRequest req;
    req.set_request_id(NextId("ship"));
    req.mutable_op()->set_hold_id(HoldIn(t.warehouse, HOLD_STATE_ACTIVE));
    req.mutable_op()->set_destination(far);
    return Unary(&S::Ship, req);
  });
  add("ReceiveTransfer", Reach::kPlace, false, [far](const Target& t) {
    ReceiveTransferRequest req;  // a shipment from another instance's village
    req.set_request_id(NextId("receive-transfer"));
    req.mutable_op()->set_warehouse(t.warehouse);
    req.mutable_op()->set_hold_id(NextId("remote-H"));
    req.mutable_op()->set_source_warehouse(far);
    req.mutable_op()->set_item(kItem);
    auto* lot = req.mutable_op()->add_lots();
    lot->set_lot("LOT-A");
    lot->set_quantity(2);
    lot->set_received(2);
    return Unary(&S::ReceiveTransfer, req);
  });
  add("ConfirmDelivery", Reach::kPlace, false, [this](const Target& t) {
    ConfirmDeliveryRequest req;
    req.set_request_id(NextId("confirm"));
    req.mutable_op()->set_hold_id(HoldIn(t.warehouse, HOLD_STATE_SHIPPED));
    return Unary(&S::ConfirmDelivery, req);
  });
  add("ApplyBatch[Receive]", Reach::kPlace, false, [](const Target& t) {
    ApplyBatchRequest req;
    req.set_request_id(NextId("batch"));
    *req.add_operations()->mutable_receive() = ReceiveAt(t.warehouse).op();
    return Unary(&S::ApplyBatch, req);
  });
  add("ApplyBatch[Hold]", Reach::kPlace, false, [](const Target& t) {
    ApplyBatchRequest req;
    req.set_request_id(NextId("batch"));
    *req.add_operations()->mutable_hold() = HoldAt(t.warehouse).op();
    return Unary(&S::ApplyBatch, req);
  });
  // Quotas and reserves.
  add("SetQuota", Reach::kPlace, false, [this](const Target& t) {
    SetQuotaRequest req;
    req.set_request_id(NextId("quota"));
    req.mutable_quota()->set_warehouse(t.warehouse);
    req.mutable_quota()->set_item(kItem);
    req.mutable_quota()->set_min(++warehouse_serial_);
    return Unary(&S::SetQuota, req);
  });
  add("SetReserve", Reach::kPlace, false, [this](const Target& t) {
    SetReserveRequest req;
    req.set_request_id(NextId("reserve"));
    req.mutable_reserve()->set_warehouse(t.warehouse);
    req.mutable_reserve()->set_item(kItem);
    req.mutable_reserve()->set_mode(RESERVE_MODE_CONTRACT);
    req.mutable_reserve()->set_quantity(++warehouse_serial_);
    req.mutable_reserve()->set_lead_time_hours(48);
    req.mutable_reserve()->set_partner("tent factory");
    return Unary(&S::SetReserve, req);
  });
  for (bool by_warehouse : {true, false}) {
    const std::string variant = by_warehouse ? "[warehouse]" : "[region_prefix]";
    add("ListQuotas" + variant, Reach::kPlace, true, [by_warehouse](const Target& t) {
      ListQuotasRequest req;
      by_warehouse ? req.set_warehouse(t.warehouse) : req.set_region_prefix(t.region);
      return Unary(&S::ListQuotas, req);
    });
    add("ListReserves" + variant, Reach::kPlace, true, [by_warehouse](const Target& t) {
      ListReservesRequest req;
      by_warehouse ? req.set_warehouse(t.warehouse) : req.set_region_prefix(t.region);
      return Unary(&S::ListReserves, req);
    });
    add("ListBalances" + variant, Reach::kPlace, true, [by_warehouse](const Target& t) {
      ListBalancesRequest req;
      by_warehouse ? req.set_warehouse(t.warehouse) : req.set_region_prefix(t.region);
      return Unary(&S::ListBalances, req);
    });
  }
  add("ListShortages", Reach::kPlace, true, [](const Target& t) {
    ListQuotaStatusRequest req;
    req.set_region_prefix(t.region);
    return Unary(&S::ListShortages, req);
  });
  add("ListOverstock", Reach::kPlace, true, [](const Target& t) {
    ListQuotaStatusRequest req;
    req.set_region_prefix(t.region);
    return Unary(&S::ListOverstock, req);
  });
  add("ListExpiringLots", Reach::kPlace, true, [](const Target& t) {
    ListExpiringLotsRequest req;
    req.set_region_prefix(t.region);
    return Unary(&S::ListExpiringLots, req);
  });
  // Queries.
  add("GetBalance", Reach::kPlace, true, [](const Target& t) {
    GetBalanceRequest req;
    req.set_warehouse(t.warehouse);
    req.set_item(kItem);
    return Unary(&S::GetBalance, req);
  });
  add("ListMovements", Reach::kPlace, true, [](const Target& t) {
    ListMovementsRequest req;
    req.set_warehouse(t.warehouse);
    return Unary(&S::ListMovements, req);
  });
  add("GetHold", Reach::kPlace, true, [this](const Target& t) {
    GetHoldRequest req;
    req.set_name("holds/" + HoldIn(t.warehouse, HOLD_STATE_ACTIVE));
    return Unary(&S::GetHold, req);
  });
  add("ListHolds", Reach::kPlace, true, [](const Target& t) {
    ListHoldsRequest req;
    req.set_warehouse(t.warehouse);
    return Unary(&S::ListHolds, req);
  });
  add("GetLedgerTotals", Reach::kInstance, true,
      [](const Target&) { return Unary(&S::GetLedgerTotals, GetLedgerTotalsRequest()); });
  add("GetInstanceInfo", Reach::kAnywhere, true,
      [](const Target&) { return Unary(&S::GetInstanceInfo, GetInstanceInfoRequest()); });
  // Reference data.
  add("ListItems", Reach::kAnywhere, true,
      [](const Target&) { return Unary(&S::ListItems, ListItemsRequest()); });
  add("GetRegion", Reach::kAnywhere, true, [](const Target& t) {
    GetRegionRequest req;
    req.set_name("regions/" + t.region);
    return Unary(&S::GetRegion, req);
  });
  // The change stream.
  add("WatchChanges", Reach::kInstance, false, [](const Target&) { return Watch(); });
  add("CreateBackup", Reach::kInstance, false, [](const Target&) {
    CreateBackupRequest req;
    req.set_request_id("matrix-backup");  // the first allowed call takes it, the rest find it
    return Unary(&S::CreateBackup, req);
  });
  add("ListBackups", Reach::kInstance, false,
      [](const Target&) { return Unary(&S::ListBackups, ListBackupsRequest()); });
  return rows;
}

// A method added to the service (and its rules) without a row here fails this test.
TEST_F(LevelAccessMatrixTest, CoversEveryLevelServiceMethod) {
  std::set<std::string> in_matrix, row_names;
  for (const auto& r : Rows()) {
    in_matrix.insert(RpcOf(r.row.name));
    row_names.insert(r.row.name);
  }
  std::set<std::string> in_proto;
  const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
      "stockpile.v1.LevelService");
  ASSERT_NE(service, nullptr);
  for (int i = 0; i < service->method_count(); ++i) in_proto.insert(service->method(i)->name());
  std::set<std::string> in_rules;
  for (const auto& rule : auth::LevelServiceRules()) {
    in_rules.insert(std::string(absl::StripPrefix(rule.method, "/stockpile.v1.LevelService/")));
  }
  EXPECT_EQ(in_matrix, in_proto);
  EXPECT_EQ(in_matrix, in_rules);
  for (const auto& [role, writes] : AllowedWrites()) {
    for (const auto& name : writes) EXPECT_TRUE(row_names.contains(name)) << name;
  }
}

TEST_F(LevelAccessMatrixTest, EveryMethodRoleAndCaseGetsThePolicysStatus) {
  int checked = 0, refused = 0;
  std::optional<Snapshot> known;
  const std::vector<MatrixRow> rows = Rows();
  for (const MatrixRow& r : rows) {
    for (Role role : kRoles) {
      for (Case c : kCases) {
        const std::string where =
            absl::StrCat(r.row.name, " as ", auth::RoleName(role), ", ", CaseName(c));
        const grpc::StatusCode want = Expected(r.row, role, c);
        const std::string token = TokenFor(role, c);
        Call call = r.prepare(c == Case::kOutOfScope ? Next() : Home());
        if (wrote_ || !known) known = Take();
        wrote_ = false;
        const grpc::Status got = call(Ctx(token).get());
        ++checked;
        if (want == grpc::StatusCode::OK) {
          EXPECT_TRUE(got.ok()) << where << ": " << got.error_code() << " " << got.error_message();
          wrote_ = true;
          continue;
        }
        ++refused;
        EXPECT_EQ(got.error_code(), want) << where << ": " << got.error_message();
        const Snapshot after = Take();
        EXPECT_EQ(after.head, known->head) << where << " wrote to the change stream";
        EXPECT_EQ(after.balances, known->balances) << where << " changed balances";
        known = after;
      }
    }
  }
  EXPECT_EQ(checked, static_cast<int>(rows.size() * std::size(kRoles) * std::size(kCases)));
  RecordProperty("combinations", checked);
  RecordProperty("refusals", refused);
  std::cout << checked << " (method, role, case) combinations, " << refused
            << " refusals; scope village " << env_->villages.home << ", next village "
            << env_->villages.next << "\n";
}

// Issue 7's example: a village's staff cannot move stock in the next village, although both
// villages' warehouses exist and hold stock; at their own warehouse they can.
TEST_F(LevelAccessMatrixTest, VillageStaffCannotMoveStockInTheNextVillage) {
  const Villages& v = env_->villages;
  const std::string here = WarehouseOf(v.home), there = WarehouseOf(v.next);
  ASSERT_GT(BalanceAt(there).on_hand(), 0);
  ASSERT_GT(BalanceAt(here).on_hand(), 0);
  const std::string staff = Sign(Role::kStaff, v.home);
  const Snapshot before = Take();
  const Balance there_before = BalanceAt(there);
  const Balance here_before = BalanceAt(here);
  MovementResult moved;
  ApplyBatchResponse batched;
  for (const grpc::Status& s : {Stub().Receive(Ctx(staff).get(), ReceiveAt(there), &moved),
                                Stub().Issue(Ctx(staff).get(), IssueAt(there), &moved),
                                Stub().Stocktake(Ctx(staff).get(), StocktakeAt(there), &moved)}) {
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr(v.next)));
  }
  // A batch with one operation at home and one next door is refused whole.
  ApplyBatchRequest batch;
  batch.set_request_id(NextId("batch"));
  *batch.add_operations()->mutable_issue() = IssueAt(here).op();
  *batch.add_operations()->mutable_issue() = IssueAt(there).op();
  EXPECT_THAT(Stub().ApplyBatch(Ctx(staff).get(), batch, &batched),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("operations[1]")));
  EXPECT_EQ(BalanceAt(there).DebugString(), there_before.DebugString());
  EXPECT_EQ(BalanceAt(here).DebugString(), here_before.DebugString());
  const Snapshot after = Take();
  EXPECT_EQ(after.head, before.head);
  EXPECT_EQ(after.balances, before.balances);

  ASSERT_THAT(Stub().Issue(Ctx(staff).get(), IssueAt(here), &moved), IsOk());
  ASSERT_EQ(moved.movements_size(), 1);
  EXPECT_EQ(moved.movements(0).actor(), absl::StrCat("staff-", v.home));
  EXPECT_EQ(BalanceAt(here).on_hand(), here_before.on_hand() - 1);
  EXPECT_EQ(BalanceAt(there).DebugString(), there_before.DebugString());
}

// A malformed batch from a refused caller gets the refusal, as every other method does: the
// caller's verdict comes before anything about the request.
TEST_F(LevelAccessMatrixTest, MalformedBatchFromARefusedCallerGetsTheRefusal) {
  ApplyBatchRequest empty;
  empty.set_request_id(NextId("empty-batch"));
  ApplyBatchResponse resp;
  EXPECT_THAT(Stub().ApplyBatch(Ctx("").get(), empty, &resp),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(Stub().ApplyBatch(Ctx(Sign(Role::kViewer, env_->villages.home)).get(), empty, &resp),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // An allowed caller is told what is wrong with the request.
  EXPECT_THAT(Stub().ApplyBatch(Ctx(Sign(Role::kStaff, env_->villages.home)).get(), empty, &resp),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("1 to 1000 operations")));
}

// The server runs with --tls-ca: a client certificate from the deployment CA is required.
TEST_F(LevelAccessMatrixTest, ClientCertificateFromAnotherCaIsRefused) {
  const Snapshot before = Take();
  for (const std::string client : {"stranger", ""}) {
    auto credentials = Credentials(*env_, client);
    ASSERT_NE(credentials, nullptr);
    auto stub = LevelService::NewStub(grpc::CreateChannel(env_->level->address(), credentials));
    MovementResult out;  // even with a valid national admin token
    grpc::Status s =
        stub->Receive(AsAdmin().get(), ReceiveAt(WarehouseOf(env_->villages.home)), &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE)
        << (client.empty() ? "no client certificate" : client) << ": " << s.error_message();
  }
  const Snapshot after = Take();
  EXPECT_EQ(after.head, before.head);
  EXPECT_EQ(after.balances, before.balances);
}

TEST_F(LevelAccessMatrixTest, ClientCertificateFromTheDeploymentCaWorks) {
  auto credentials = Credentials(*env_, "client");
  ASSERT_NE(credentials, nullptr);
  auto stub = LevelService::NewStub(grpc::CreateChannel(env_->level->address(), credentials));
  const std::string here = WarehouseOf(env_->villages.home);
  const int64_t before = BalanceAt(here).on_hand();
  MovementResult out;
  ASSERT_THAT(stub->Receive(AsAdmin().get(), ReceiveAt(here, "LOT-A", 3), &out), IsOk());
  EXPECT_EQ(BalanceAt(here).on_hand(), before + 3);
}

}  // namespace
}  // namespace stockpile::testing
