#include "services/catalogue/allocation/transfer_service.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "services/common/auth/interceptor.h"
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
  bool IsLeader() const override { return leader; }
  std::string Leader() const override { return leader ? "self" : "10.0.0.7:7600"; }
  std::atomic<bool> leader{true};
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

  grpc::Status Create(Transfer* out) {
    CreateTransferRequest req;
    req.set_request_id("c1");
    req.set_actor("dispatcher");
    req.mutable_plan()->set_destination_warehouse("warehouses/420102-W001");
    auto* line = req.mutable_plan()->add_lines();
    line->set_item("SH-0001");
    line->set_quantity(4);
    grpc::ClientContext ctx;
    return stub_->CreateTransfer(&ctx, req, out);
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

TEST_F(TransferServiceTest, FollowerRefusesMutationsNamingTheLeaderButServesReads) {
  Transfer t;
  ASSERT_TRUE(Create(&t).ok());
  leadership_.leader = false;
  Transfer again;
  grpc::Status s = Create(&again);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("10.0.0.7:7600"));
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

}  // namespace
}  // namespace stockpile::catalogue::allocation
