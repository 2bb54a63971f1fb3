#include "services/catalogue/allocation/transfer_service.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "services/common/auth/interceptor.h"
#include "services/common/auth/rules.h"
#include "services/common/auth/token.h"
#include "tests/testutil/process.h"
#include "tests/testutil/reference_data.h"
#include "tests/testutil/status_matchers.h"
#include "tests/unit/allocation/fake_level_gateway.h"

namespace stockpile::catalogue::allocation {
namespace {

using namespace stockpile::v1;  // NOLINT
using ::testing::HasSubstr;

const common::ReferenceData& Reference() { return testing::SharedReferenceData("420102"); }

class SwitchableLeadership : public Leadership {
 public:
  // `elsewhere`: who leads when this replica does not, or why that cannot be told.
  explicit SwitchableLeadership(absl::StatusOr<std::string> elsewhere = "10.0.0.7:7600")
      : elsewhere_(std::move(elsewhere)) {}
  bool IsLeader() const override { return leader; }
  absl::StatusOr<std::string> Leader() const override {
    return leader ? absl::StatusOr<std::string>("self") : elsewhere_;
  }
  std::atomic<bool> leader{true};

 private:
  const absl::StatusOr<std::string> elsewhere_;
};

class TransferServiceTest : public ::testing::Test {
 protected:
  TransferServiceTest() : snapshot_(&Reference()), planner_(&Reference()) {
    store_ = *TransferStore::Open(dir_.Sub("store"));
    coordinator_ = std::make_unique<TransferCoordinator>(store_.get(), &gateway_, &planner_,
                                                         &snapshot_, common::SystemClock::Get());
    service_ = std::make_unique<TransferServiceImpl>(coordinator_.get(), &leadership_, 2);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    // Handlers enforce the auth interceptor's verdict; authorization off here, as in
    // stockpile-local (tests/integration/catalogue_security_test.cc covers it on).
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(auth::MakeAuthInterceptorFactory(auth::Authorizer::Disabled()));
    builder.experimental().SetInterceptorCreators(std::move(creators));
    server_ = builder.BuildAndStart();
    stub_ = TransferService::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                         grpc::InsecureChannelCredentials()));
    snapshot_.SetLots("420103-W001", "SH-0001", {LotStock{"DEFAULT", kNoExpiry, 10}});
    gateway_.SetStock("warehouses/420103-W001", "SH-0001", 10);
  }
  ~TransferServiceTest() override { server_->Shutdown(); }

  grpc::Status Create(Transfer* out) { return Create(*stub_, "c1", out); }
  // 4 SH-0001 to 420102-W001 through `stub`.
  static grpc::Status Create(TransferService::Stub& stub, const std::string& request_id,
                             Transfer* out) {
    CreateTransferRequest req;
    req.set_request_id(request_id);
    req.set_actor("dispatcher");
    req.mutable_plan()->set_destination_warehouse("warehouses/420102-W001");
    auto* line = req.mutable_plan()->add_lines();
    line->set_item("SH-0001");
    line->set_quantity(4);
    grpc::ClientContext ctx;
    return stub.CreateTransfer(&ctx, req, out);
  }

  testing::TempDir dir_;
  StockSnapshot snapshot_;
  Planner planner_;
  FakeLevelGateway gateway_;
  SwitchableLeadership leadership_;
  std::unique_ptr<TransferStore> store_;
  std::unique_ptr<TransferCoordinator> coordinator_;
  std::unique_ptr<TransferServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<TransferService::Stub> stub_;
};

TEST_F(TransferServiceTest, LeaderServesMutationsAndReads) {
  Transfer t;
  ASSERT_TRUE(Create(&t).ok());
  EXPECT_EQ(t.state(), TRANSFER_STATE_PENDING_APPROVAL);
  ApproveTransferRequest approve;
  approve.set_request_id("a1");
  approve.set_actor("chief");
  approve.set_name(t.name());
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub_->ApproveTransfer(&ctx, approve, &t).ok());
  EXPECT_EQ(t.state(), TRANSFER_STATE_READY);
  GetTransferRequest get;
  get.set_name("transfers/nope");
  grpc::ClientContext ctx2;
  EXPECT_EQ(stub_->GetTransfer(&ctx2, get, &t).error_code(), grpc::StatusCode::NOT_FOUND);
}

// The service's PlanAllocation asks the destination's level, as CreateTransfer does: a plan to
// a warehouse that does not exist is NOT_FOUND, not a plan that only fails at create.
TEST_F(TransferServiceTest, PlanToADestinationThatDoesNotExistIsNotFound) {
  gateway_.RemoveWarehouse("warehouses/420102-W009");
  PlanAllocationRequest req;
  req.set_destination_warehouse("warehouses/420102-W009");
  auto* line = req.add_lines();
  line->set_item("SH-0001");
  line->set_quantity(4);
  grpc::ClientContext ctx;
  AllocationPlan plan;
  grpc::Status s = stub_->PlanAllocation(&ctx, req, &plan);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("420102-W009"));
}

// Without forwarding set up: retry (UNAVAILABLE) naming the leader, never a refusal.
TEST_F(TransferServiceTest, FollowerAnswersRetryNamingTheLeaderButServesReads) {
  Transfer t;
  ASSERT_TRUE(Create(&t).ok());
  leadership_.leader = false;
  Transfer again;
  grpc::Status s = Create(&again);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("10.0.0.7:7600"));
  EXPECT_THAT(s.error_message(), HasSubstr("retry"));
  GetTransferRequest get;
  get.set_name(t.name());
  grpc::ClientContext ctx;
  Transfer read;
  ASSERT_TRUE(stub_->GetTransfer(&ctx, get, &read).ok());
  EXPECT_EQ(read.id(), t.id());
  PlanAllocationRequest plan;
  plan.set_destination_region("420102");
  auto* line = plan.add_lines();
  line->set_item("SH-0001");
  line->set_quantity(3);
  grpc::ClientContext ctx2;
  AllocationPlan p;
  ASSERT_TRUE(stub_->PlanAllocation(&ctx2, plan, &p).ok());
  EXPECT_EQ(p.legs_size(), 1);
}

TEST(ResumeLoopTest, ResumesOnGainingLeadershipOnly) {
  testing::TempDir dir;
  StockSnapshot snapshot(&Reference());
  Planner planner(&Reference());
  FakeLevelGateway gateway;
  auto store = *TransferStore::Open(dir.Sub("store"));
  TransferCoordinator coordinator(store.get(), &gateway, &planner, &snapshot,
                                  common::SystemClock::Get());
  ResumeLoop loop(&coordinator, absl::Hours(1));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(loop.rounds(), 0);
  loop.SetLeader(true);
  EXPECT_TRUE(testing::WaitFor([&] { return loop.rounds() == 1; }, std::chrono::seconds(5)));
}

constexpr char kTokenKey[] = "transfer-service-test-key-0123456789abcdef";

// One catalogue replica's transfer service on its own loopback server (own store).
struct Replica {
  Replica(const std::string& dir, FakeLevelGateway* gateway, Planner* planner,
          StockSnapshot* snapshot, const Leadership* leadership,
          std::shared_ptr<auth::Authorizer> authorizer,
          std::function<void(TransferServiceImpl&)> configure = nullptr,
          CoordinatorOptions options = CoordinatorOptions()) {
    store = *TransferStore::Open(dir);
    coordinator = std::make_unique<TransferCoordinator>(store.get(), gateway, planner, snapshot,
                                                        common::SystemClock::Get(), options);
    service = std::make_unique<TransferServiceImpl>(coordinator.get(), leadership, 2);
    if (configure) configure(*service);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service.get());
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(auth::MakeAuthInterceptorFactory(std::move(authorizer)));
    builder.experimental().SetInterceptorCreators(std::move(creators));
    server = builder.BuildAndStart();
  }
  ~Replica() { server->Shutdown(); }
  std::string address() const { return absl::StrCat("127.0.0.1:", port); }
  std::unique_ptr<TransferService::Stub> Stub() const {
    return TransferService::NewStub(
        grpc::CreateChannel(address(), grpc::InsecureChannelCredentials()));
  }

  int port = 0;
  std::unique_ptr<TransferStore> store;
  std::unique_ptr<TransferCoordinator> coordinator;
  std::unique_ptr<TransferServiceImpl> service;
  std::unique_ptr<grpc::Server> server;
};

// Sets a replica up to forward mutations to the leader over a plain channel.
void ForwardOverPlainChannels(TransferServiceImpl& service) {
  TransferServiceImpl::LeaderForwarding forwarding;
  forwarding.channel_factory = [](const std::string& address) {
    return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  };
  service.SetLeaderForwarding(std::move(forwarding));
}

// The chart's Service spreads calls over every replica: a follower hands a mutation to the
// leader with the caller's own token (the leader authorizes it and records the caller), and
// answers with the leader's result. A call forwarded once is not forwarded again, and with no
// leader elected the caller is told to retry.
TEST_F(TransferServiceTest, FollowerForwardsMutationsToTheLeaderWithTheCallersToken) {
  auto authorizer = std::make_shared<auth::Authorizer>(
      auth::TokenVerifier(*auth::TokenKey::FromBytes(kTokenKey), common::SystemClock::Get()),
      std::vector<absl::Span<const auth::MethodRule>>{auth::TransferServiceRules()});
  AlwaysLeader leads;
  Replica leader(dir_.Sub("leader"), &gateway_, &planner_, &snapshot_, &leads, authorizer);
  SwitchableLeadership follows(leader.address());
  follows.leader = false;
  Replica follower(dir_.Sub("follower"), &gateway_, &planner_, &snapshot_, &follows, authorizer,
                   ForwardOverPlainChannels);
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  const std::string token =
      *auth::SignToken(*auth::TokenKey::FromBytes(kTokenKey),
                       {"li.na", auth::Role::kDispatcher, "", now - 60, now + 600});
  auto with_token = [&](grpc::ClientContext* ctx) {
    ctx->AddMetadata("authorization", "Bearer " + token);
  };

  CreateTransferRequest create;
  create.set_request_id("fwd-1");
  create.set_actor("claimed-actor");
  create.mutable_plan()->set_destination_warehouse("warehouses/420102-W001");
  auto* line = create.mutable_plan()->add_lines();
  line->set_item("SH-0001");
  line->set_quantity(4);
  Transfer t;
  grpc::ClientContext ctx;
  with_token(&ctx);
  grpc::Status s = follower.Stub()->CreateTransfer(&ctx, create, &t);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(t.created_by(), "li.na");  // the token's subject, as the leader saw it
  EXPECT_THAT(leader.coordinator->Get(t.name()), testing::IsOk());
  EXPECT_EQ(follower.coordinator->Get(t.name()).status().code(), absl::StatusCode::kNotFound);

  grpc::ClientContext no_token;  // forwarded as it came: the leader refuses it
  EXPECT_EQ(follower.Stub()->CreateTransfer(&no_token, create, &t).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  grpc::ClientContext looped;  // a call another replica forwarded is not forwarded again
  with_token(&looped);
  looped.AddMetadata("x-stockpile-forwarded-by-replica", "1");
  grpc::Status refused = follower.Stub()->CreateTransfer(&looped, create, &t);
  // Leadership moved since the other replica looked: a reason to retry, not a refusal.
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(refused.error_message(), HasSubstr(leader.address()));
  EXPECT_THAT(refused.error_message(), HasSubstr("retry"));

  SwitchableLeadership nobody(absl::NotFoundError("no leader"));
  nobody.leader = false;
  Replica orphan(dir_.Sub("orphan"), &gateway_, &planner_, &snapshot_, &nobody, authorizer);
  grpc::ClientContext election;
  with_token(&election);
  grpc::Status wait = orphan.Stub()->CreateTransfer(&election, create, &t);
  EXPECT_EQ(wait.error_code(), grpc::StatusCode::UNAVAILABLE) << wait.error_message();
  EXPECT_THAT(wait.error_message(), HasSubstr("election is under way"));
  EXPECT_THAT(wait.error_message(), HasSubstr("retry"));
}

// The leader answered: its own UNAVAILABLE (here the source's level service is down) reaches
// the caller through a follower as the leader gave it. It used to be reworded "the transfer
// leader X did not answer (...)", which sent the operator to the catalogue leader.
TEST_F(TransferServiceTest, FollowerRelaysTheLeadersOwnUnavailableAsItIs) {
  CoordinatorOptions quick;  // the level call's retries give up at once
  quick.retry_deadline = absl::Milliseconds(50);
  quick.initial_backoff = absl::Milliseconds(5);
  AlwaysLeader leads;
  Replica leader(dir_.Sub("leader"), &gateway_, &planner_, &snapshot_, &leads,
                 auth::Authorizer::Disabled(), nullptr, quick);
  SwitchableLeadership follows(leader.address());
  follows.leader = false;
  Replica follower(dir_.Sub("follower"), &gateway_, &planner_, &snapshot_, &follows,
                   auth::Authorizer::Disabled(), ForwardOverPlainChannels);
  Transfer t;
  ASSERT_TRUE(Create(*follower.Stub(), "create-via-follower", &t).ok());
  ApproveTransferRequest approve;
  approve.set_request_id("approve-via-follower");
  approve.set_actor("chief");
  approve.set_name(t.name());
  grpc::ClientContext approving;
  const grpc::Status approved = follower.Stub()->ApproveTransfer(&approving, approve, &t);
  ASSERT_TRUE(approved.ok()) << approved.error_message();
  ASSERT_EQ(t.state(), TRANSFER_STATE_READY);

  gateway_.SetDown("warehouses/420103-W001", true);
  ShipTransferLegRequest ship;
  ship.set_request_id("ship-while-the-source-is-down");
  ship.set_actor("keeper");
  ship.set_name(t.name());
  grpc::ClientContext via_follower;
  const grpc::Status relayed = follower.Stub()->ShipTransfer(&via_follower, ship, &t);
  EXPECT_EQ(relayed.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(relayed.error_message(), HasSubstr("420103-W001 is down"));
  EXPECT_THAT(relayed.error_message(), ::testing::Not(HasSubstr("the transfer leader")));
  grpc::ClientContext at_leader;  // the same retry asked of the leader itself
  const grpc::Status direct = leader.Stub()->ShipTransfer(&at_leader, ship, &t);
  EXPECT_EQ(direct.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(relayed.error_message(), direct.error_message());
}

// A leader that cannot be reached did not answer: that is what the follower says.
TEST_F(TransferServiceTest, FollowerSaysALeaderItCannotReachDidNotAnswer) {
  std::string gone;
  {
    AlwaysLeader leads;
    Replica leader(dir_.Sub("gone"), &gateway_, &planner_, &snapshot_, &leads,
                   auth::Authorizer::Disabled());
    gone = leader.address();
  }
  SwitchableLeadership follows(gone);
  follows.leader = false;
  Replica follower(dir_.Sub("follower"), &gateway_, &planner_, &snapshot_, &follows,
                   auth::Authorizer::Disabled(), ForwardOverPlainChannels);
  Transfer t;
  const grpc::Status s = Create(*follower.Stub(), "create-with-the-leader-gone", &t);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("the transfer leader " + gone + " did not answer ("));
  EXPECT_THAT(s.error_message(), HasSubstr("); retry"));
}

// With etcd gone no replica can lead, and none can say who does: the answer names etcd (it
// used to say an election was under way, which cannot happen without etcd).
TEST_F(TransferServiceTest, WithEtcdUnreachableAChangeIsRefusedNamingEtcd) {
  SwitchableLeadership cut_off(absl::UnavailableError("failed to connect to all addresses"));
  cut_off.leader = false;
  Replica replica(dir_.Sub("cut-off"), &gateway_, &planner_, &snapshot_, &cut_off,
                  auth::Authorizer::Disabled());
  Transfer t;
  grpc::Status s = Create(*replica.Stub(), "while-etcd-is-down", &t);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("while etcd does not answer"));
  EXPECT_THAT(s.error_message(), HasSubstr("failed to connect to all addresses"));
  EXPECT_THAT(s.error_message(), HasSubstr("retry once etcd is back"));
  auto unfinished = replica.store->UnfinishedIds();
  ASSERT_TRUE(unfinished.ok());
  EXPECT_TRUE(unfinished->empty());  // nothing was made
}

}  // namespace
}  // namespace stockpile::catalogue::allocation
