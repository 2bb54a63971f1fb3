// Transfers under faults, with real processes: etcd, two county level services (city 4201 and
// city 4202, registered in etcd) and stockpile-catalogue hosting the TransferService.
//  - kill -9 of the catalogue (the transfer leader) while holds are being placed, restart: the
//    restarted leader finishes the holds (same hold ids), the transfer is shipped and received;
//    no source hold was placed twice; conservation holds on every level and across levels.
//  - a cancelled transfer leaves every balance as it was.
//  - a source level service stopped (SIGSTOP) during approval: the transfer waits (HOLDING),
//    completes after SIGCONT; a transfer cancelled while its source is down leaves no hold.
//  - two catalogue replicas (own --db each, same etcd): the follower reads the transfer the
//    leader is approving; kill -9 of the leader between the holds; the OTHER replica takes over
//    from the state shared in etcd and finishes the transfer; no hold placed twice.
//  - with --require-second-approver, the creator's own approval is refused and holds nothing.
//  - a source level put back to a copy of its database from before the transfer's hold: the
//    shipment of that leg fails the transfer and the other hold is released.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "stockpile/v1/transfer_service.grpc.pb.h"
#include "tests/testutil/etcd_process.h"
#include "tests/unit/catalogue/catalogue_processes.h"

namespace stockpile::testing {
namespace {

using namespace stockpile::v1;  // NOLINT
using std::chrono::seconds;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr char kItem[] = "SH-0001";
constexpr char kDest[] = "420102-W001";  // county-a (city 4201)
constexpr char kNear[] = "420103-W001";  // county-a: same city as the destination, 30 units
constexpr char kFar[] = "420202-W001";   // county-b (city 4202): same province, 50 units

std::unique_ptr<grpc::ClientContext> Ctx(int secs = 10) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + seconds(secs));
  return ctx;
}

class TransferFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(etcd_.Start(seconds(20), &error)) << error;
    levels_["county-a"] =
        std::make_unique<LevelServer>(dir_, "county-a", "county", "4201", etcd_.endpoint());
    levels_["county-b"] =
        std::make_unique<LevelServer>(dir_, "county-b", "county", "4202", etcd_.endpoint());
    for (auto& [id, level] : levels_) ASSERT_TRUE(level->Start());
    ASSERT_TRUE(CreateWarehouse(*A(), kDest, "420102").ok());
    ASSERT_TRUE(CreateWarehouse(*A(), kNear, "420103").ok());
    ASSERT_TRUE(CreateWarehouse(*B(), kFar, "420202").ok());
    ASSERT_TRUE(Receive(*A(), kNear, kItem, 30, "stock-near").ok());
    ASSERT_TRUE(Receive(*B(), kFar, kItem, 50, "stock-far").ok());
    catalogue_ = MakeCatalogue("catalogue-1");
    StartCatalogue();
    // The planner sees the stock once the catalogue has replicated it.
    ASSERT_TRUE(WaitFor([&] { return Plannable(80); }, seconds(30))) << Log();
  }

  void TearDown() override {
    for (auto& [id, level] : levels_) level->process().Signal(SIGCONT);
  }

  // A catalogue replica with its own store; the election lease (3 s) is the --etcd-ttl.
  std::unique_ptr<ServerProcess> MakeCatalogue(const std::string& name) {
    std::vector<std::string> argv = {BinaryDir() + "/bin/stockpile-catalogue",
                                     "--db=" + dir_.Sub(name + "-db"),
                                     "--reference-data=" + ReferenceDataDir(),
                                     "--listen=127.0.0.1:0",
                                     "--instance-id=" + name,
                                     "--etcd-endpoints=" + etcd_.endpoint(),
                                     "--etcd-ttl=3",
                                     "--transfer-retry=2",
                                     "--transfer-resume=1",
                                     "--port-file=" + dir_.Sub(name + ".port")};
    argv.insert(argv.end(), catalogue_flags_.begin(), catalogue_flags_.end());
    return std::make_unique<ServerProcess>(argv, dir_.Sub(name + ".port"), dir_.Sub(name + ".log"));
  }

  void StartCatalogue() {
    ASSERT_TRUE(catalogue_->Start()) << Log();
    transfers_ = TransferService::NewStub(catalogue_->channel());
    // Leadership: after a kill -9 the old lease must lapse first (etcd TTL of the election).
    ASSERT_TRUE(WaitFor([&] { return Leads(); }, seconds(30))) << Log();
  }
  std::string Log() { return catalogue_->process().Log(); }
  std::unique_ptr<LevelService::Stub> A() { return levels_["county-a"]->Stub(); }
  std::unique_ptr<LevelService::Stub> B() { return levels_["county-b"]->Stub(); }
  LevelServer& LevelB() { return *levels_["county-b"]; }

  // A leader answers a mutation on an unknown transfer with NOT_FOUND, a follower with
  // UNAVAILABLE: the probe is marked as forwarded already, so a follower does not hand it on to
  // the leader.
  bool Leads() { return Leads(*transfers_); }
  static bool Leads(TransferService::Stub& stub) {
    CancelTransferRequest req;
    req.set_request_id("probe");
    req.set_actor("probe");
    req.set_name("transfers/none");
    Transfer out;
    auto ctx = Ctx(2);
    ctx->AddMetadata("x-stockpile-forwarded-by-replica", "1");
    return stub.CancelTransfer(ctx.get(), req, &out).error_code() == grpc::StatusCode::NOT_FOUND;
  }

  PlanAllocationRequest PlanFor(int64_t quantity) {
    PlanAllocationRequest plan;
    plan.set_destination_warehouse(std::string("warehouses/") + kDest);
    plan.set_priority(PRIORITY_URGENT);
    auto* line = plan.add_lines();
    line->set_item(kItem);
    line->set_quantity(quantity);
    return plan;
  }
  bool Plannable(int64_t quantity) { return Plannable(*transfers_, quantity); }
  bool Plannable(TransferService::Stub& stub, int64_t quantity) {
    AllocationPlan plan;
    return stub.PlanAllocation(Ctx(2).get(), PlanFor(quantity), &plan).ok() &&
           plan.outcomes_size() == 1 && plan.outcomes(0).shortfall() == 0;
  }

  Transfer Create(int64_t quantity, const std::string& id) {
    CreateTransferRequest req;
    req.set_request_id("create-" + id);
    req.set_actor("dispatcher");
    *req.mutable_plan() = PlanFor(quantity);
    Transfer t;
    grpc::Status s = transfers_->CreateTransfer(Ctx().get(), req, &t);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return t;
  }
  grpc::Status Approve(const Transfer& t, Transfer* out, int deadline_seconds = 30) {
    ApproveTransferRequest req;
    req.set_request_id("approve-" + t.id());
    req.set_actor("chief");
    req.set_name(t.name());
    return transfers_->ApproveTransfer(Ctx(deadline_seconds).get(), req, out);
  }
  grpc::Status Cancel(const Transfer& t, Transfer* out) {
    CancelTransferRequest req;
    req.set_request_id("cancel-" + t.id());
    req.set_actor("chief");
    req.set_name(t.name());
    req.set_reason("test");
    return transfers_->CancelTransfer(Ctx(30).get(), req, out);
  }
  grpc::Status ShipAndReceive(const Transfer& t, Transfer* out) {
    for (const auto& leg : t.legs()) {
      ShipTransferLegRequest ship;
      ship.set_request_id("ship-" + t.id() + "-" + std::to_string(leg.index()));
      ship.set_actor("keeper");
      ship.set_name(t.name());
      ship.set_leg(leg.index());
      grpc::Status s = transfers_->ShipTransfer(Ctx(30).get(), ship, out);
      if (!s.ok()) return s;
    }
    for (const auto& leg : t.legs()) {
      ReceiveTransferLegRequest recv;
      recv.set_request_id("recv-" + t.id() + "-" + std::to_string(leg.index()));
      recv.set_actor("receiver");
      recv.set_name(t.name());
      recv.set_leg(leg.index());
      grpc::Status s = transfers_->ReceiveTransfer(Ctx(30).get(), recv, out);
      if (!s.ok()) return s;
    }
    return grpc::Status::OK;
  }
  Transfer Get(const Transfer& t) { return Get(*transfers_, t); }
  static Transfer Get(TransferService::Stub& stub, const Transfer& t) {
    GetTransferRequest req;
    req.set_name(t.name());
    Transfer out;
    stub.GetTransfer(Ctx(2).get(), req, &out);
    return out;
  }

  // ---- level-side checks
  std::vector<Hold> Holds(LevelService::Stub& stub, const std::string& code) {
    ListHoldsRequest req;
    req.set_warehouse("warehouses/" + code);
    req.set_page_size(1000);
    ListHoldsResponse resp;
    EXPECT_TRUE(stub.ListHolds(Ctx().get(), req, &resp).ok());
    return {resp.holds().begin(), resp.holds().end()};
  }
  int HoldMovements(LevelService::Stub& stub, const std::string& code) {
    ListMovementsRequest req;
    req.set_warehouse("warehouses/" + code);
    req.set_page_size(1000);
    ListMovementsResponse resp;
    EXPECT_TRUE(stub.ListMovements(Ctx().get(), req, &resp).ok());
    int holds = 0;
    for (const auto& m : resp.movements()) holds += m.type() == MOVEMENT_TYPE_HOLD;
    return holds;
  }
  int ActiveHolds() {
    int active = 0;
    for (const auto& h : Holds(*A(), kNear)) active += h.state() == HOLD_STATE_ACTIVE;
    for (const auto& h : Holds(*B(), kFar)) active += h.state() == HOLD_STATE_ACTIVE;
    return active;
  }
  ItemTotals Totals(LevelService::Stub& stub) {
    GetLedgerTotalsResponse resp;
    EXPECT_TRUE(stub.GetLedgerTotals(Ctx().get(), GetLedgerTotalsRequest(), &resp).ok());
    for (const auto& t : resp.items()) {
      if (t.item() == kItem) return t;
    }
    return ItemTotals();
  }
  // Per level: on_hand + in_transit = received - issued + adjusted - lost + transferred_in -
  // delivered_out. Across levels: what arrived from elsewhere left somewhere, and the stock in
  // the system (on hand + in transit) is what was received minus what was lost. Returns the
  // summed totals.
  ItemTotals ExpectConserved() {
    ItemTotals sum;
    const std::vector<ItemTotals> per_level = {Totals(*A()), Totals(*B())};
    for (const ItemTotals& t : per_level) {
      EXPECT_EQ(t.on_hand() + t.in_transit(), t.received() - t.issued() + t.adjusted() - t.lost() +
                                                  t.transferred_in() - t.delivered_out())
          << t.DebugString();
      sum.set_on_hand(sum.on_hand() + t.on_hand());
      sum.set_held(sum.held() + t.held());
      sum.set_in_transit(sum.in_transit() + t.in_transit());
      sum.set_received(sum.received() + t.received());
      sum.set_lost(sum.lost() + t.lost());
      sum.set_transferred_in(sum.transferred_in() + t.transferred_in());
      sum.set_delivered_out(sum.delivered_out() + t.delivered_out());
    }
    EXPECT_EQ(sum.on_hand() + sum.in_transit(), sum.received() - sum.lost());
    return sum;
  }
  std::map<std::string, std::string> Balances() {
    std::map<std::string, std::string> out;
    std::vector<std::unique_ptr<LevelService::Stub>> stubs;
    stubs.push_back(A());
    stubs.push_back(B());
    for (const auto& stub : stubs) {
      ListBalancesRequest req;
      req.set_page_size(1000);
      ListBalancesResponse resp;
      EXPECT_TRUE(stub->ListBalances(Ctx().get(), req, &resp).ok());
      for (const auto& b : resp.balances()) {
        out[b.warehouse() + "/" + b.item()] =
            absl::StrCat(b.on_hand(), " on hand, ", b.held(), " held, ", b.in_transit(), " moving");
      }
    }
    return out;
  }

  void ExpectShippedAndReceivedHoldingOnce(const Transfer& t);

  TempDir dir_;
  EtcdProcess etcd_{dir_.Sub("etcd")};
  std::map<std::string, std::unique_ptr<LevelServer>> levels_;
  std::unique_ptr<ServerProcess> catalogue_;
  std::unique_ptr<TransferService::Stub> transfers_;
  std::vector<std::string> catalogue_flags_;  // more flags for MakeCatalogue
};

// The same system with the catalogue run as `--require-second-approver` (four eyes).
class SecondApproverTest : public TransferFaultTest {
 protected:
  void SetUp() override {
    catalogue_flags_ = {"--require-second-approver"};
    TransferFaultTest::SetUp();
  }
};

TEST_F(SecondApproverTest, TheCreatorsOwnApprovalIsRefusedAndHoldsNothing) {
  Transfer t = Create(20, "four-eyes");  // created by "dispatcher"
  ApproveTransferRequest own;
  own.set_request_id("approve-own");
  own.set_actor("dispatcher");
  own.set_name(t.name());
  Transfer out;
  grpc::Status refused = transfers_->ApproveTransfer(Ctx().get(), own, &out);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(refused.error_message(), HasSubstr("another dispatcher must approve it"));
  EXPECT_EQ(Get(t).state(), TRANSFER_STATE_PENDING_APPROVAL);
  EXPECT_EQ(ActiveHolds(), 0);
  ASSERT_TRUE(Approve(t, &out).ok());  // "chief"
  EXPECT_EQ(out.state(), TRANSFER_STATE_READY);
  EXPECT_EQ(out.approved_by(), "chief");
}

TEST_F(TransferFaultTest, KilledLeaderRestartsAndFinishesWithoutHoldingTwice) {
  const auto started = std::chrono::steady_clock::now();
  Transfer t = Create(60, "t1");
  ASSERT_EQ(t.legs_size(), 2) << t.DebugString();
  ASSERT_EQ(t.legs(0).plan().source_warehouse(), std::string("warehouses/") + kNear);
  ASSERT_EQ(t.legs(1).plan().source_warehouse(), std::string("warehouses/") + kFar);
  // county-b stopped: leg 0's hold stands, leg 1's is being retried when the leader dies.
  LevelB().process().Signal(SIGSTOP);
  auto approval = std::async(std::launch::async, [&] {
    Transfer out;
    return Approve(t, &out, 5);
  });
  ASSERT_TRUE(WaitFor([&] { return Holds(*A(), kNear).size() == 1; }, seconds(10)));
  catalogue_->process().Signal(SIGKILL);
  catalogue_->process().Wait(seconds(10));
  approval.wait();
  LevelB().process().Signal(SIGCONT);
  StartCatalogue();
  // The restarted leader resumes the HOLDING transfer from its store.
  ASSERT_TRUE(WaitFor([&] { return Get(t).state() == TRANSFER_STATE_READY; }, seconds(20)))
      << Get(t).DebugString() << Log();
  ExpectShippedAndReceivedHoldingOnce(t);
  EXPECT_LT(std::chrono::steady_clock::now() - started, seconds(75));
}

// Ships and receives the 60-unit transfer (30 from kNear, 30 from kFar) through the current
// leader; then: exactly one hold per leg, one HOLD movement per source, conservation.
void TransferFaultTest::ExpectShippedAndReceivedHoldingOnce(const Transfer& t) {
  Transfer done;
  grpc::Status s = ShipAndReceive(Get(t), &done);
  ASSERT_TRUE(s.ok()) << s.error_message() << Log();
  EXPECT_EQ(done.state(), TRANSFER_STATE_RECEIVED) << done.DebugString();
  // Exactly one hold per leg, under the leg's hold id, and one HOLD movement per source.
  const auto near_holds = Holds(*A(), kNear);
  const auto far_holds = Holds(*B(), kFar);
  ASSERT_EQ(near_holds.size(), 1u);
  ASSERT_EQ(far_holds.size(), 1u);
  EXPECT_EQ(near_holds[0].hold_id(), t.legs(0).hold_id());
  EXPECT_EQ(far_holds[0].hold_id(), t.legs(1).hold_id());
  EXPECT_EQ(near_holds[0].quantity(), 30);
  EXPECT_EQ(far_holds[0].quantity(), 30);
  EXPECT_EQ(HoldMovements(*A(), kNear), 1);
  EXPECT_EQ(HoldMovements(*B(), kFar), 1);
  // Eventually the far source is told of the delivery (ConfirmDelivery; retried by resume).
  ASSERT_TRUE(WaitFor([&] { return Totals(*B()).in_transit() == 0; }, seconds(10)));
  const ItemTotals sum = ExpectConserved();
  EXPECT_EQ(sum.on_hand(), 80);
  EXPECT_EQ(sum.held(), 0);
  EXPECT_EQ(sum.in_transit(), 0);
  EXPECT_EQ(sum.transferred_in(), sum.delivered_out());
  EXPECT_EQ(Totals(*A()).on_hand(), 60);  // 30 stayed local (same instance) + 30 from county-b
  EXPECT_EQ(Totals(*B()).on_hand(), 20);
}

TEST_F(TransferFaultTest, OtherReplicaTakesOverFromKilledLeaderWithoutHoldingTwice) {
  const auto started = std::chrono::steady_clock::now();
  // A second replica: its own store, the same etcd. catalogue-1 leads; it follows.
  auto second = MakeCatalogue("catalogue-2");
  ASSERT_TRUE(second->Start()) << second->process().Log();
  auto follower = TransferService::NewStub(second->channel());
  ASSERT_TRUE(WaitFor([&] { return Plannable(*follower, 80); }, seconds(30)))
      << second->process().Log();
  EXPECT_FALSE(Leads(*follower));

  Transfer t = Create(60, "t5");
  ASSERT_EQ(t.legs_size(), 2) << t.DebugString();
  ASSERT_EQ(t.legs(1).plan().source_warehouse(), std::string("warehouses/") + kFar);
  ASSERT_TRUE(WaitFor([&] { return Get(*follower, t).id() == t.id(); }, seconds(10)));
  // county-b stopped: leg 0's hold stands, leg 1's is being retried when the leader dies.
  LevelB().process().Signal(SIGSTOP);
  auto approval = std::async(std::launch::async, [&] {
    Transfer out;
    return Approve(t, &out, 5);
  });
  ASSERT_TRUE(WaitFor([&] { return Holds(*A(), kNear).size() == 1; }, seconds(10)));
  // Reads work on the follower: it shows the approval and leg 0's hold, step history included.
  ASSERT_TRUE(
      WaitFor([&] { return Get(*follower, t).legs(0).state() == LEG_STATE_HELD; }, seconds(10)))
      << Get(*follower, t).DebugString();
  const Transfer seen = Get(*follower, t);
  EXPECT_EQ(seen.state(), TRANSFER_STATE_HOLDING);
  EXPECT_EQ(seen.approved_by(), "chief");
  EXPECT_GE(seen.audit_size(), 3);  // created, approved, leg 0 held

  const auto killed = std::chrono::steady_clock::now();
  catalogue_->process().Signal(SIGKILL);  // for good: catalogue-1 is not restarted
  catalogue_->process().Wait(seconds(10));
  approval.wait();
  LevelB().process().Signal(SIGCONT);

  // catalogue-2 wins the election once the dead leader's lease lapses, re-lists the transfers
  // from etcd and resumes this one: leg 1's hold is placed (same hold id), READY.
  transfers_ = std::move(follower);
  ASSERT_TRUE(WaitFor([&] { return Leads(); }, seconds(30))) << second->process().Log();
  const auto leading = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return Get(t).state() == TRANSFER_STATE_READY; }, seconds(20)))
      << Get(t).DebugString() << second->process().Log();
  const auto ms = [&](auto d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  std::cout << "takeover: other replica leads " << ms(leading - killed)
            << " ms after the kill, transfer READY "
            << ms(std::chrono::steady_clock::now() - killed) << " ms after it\n";
  ExpectShippedAndReceivedHoldingOnce(t);
  // The shared record is the finished one.
  std::string keys;
  ASSERT_EQ(etcd_.Etcdctl({"get", "--prefix", "--keys-only", "/stockpile/v1/transfers/"}, &keys),
            0);
  EXPECT_NE(keys.find("/stockpile/v1/transfers/" + t.id()), std::string::npos) << keys;
  EXPECT_NE(keys.find("/stockpile/v1/transfers/requests/approve-" + t.id()), std::string::npos)
      << keys;
  const std::string key = "/stockpile/v1/transfers/" + t.id();
  std::string value, fields;
  ASSERT_EQ(etcd_.Etcdctl({"get", key, "--print-value-only"}, &value), 0);
  ASSERT_EQ(etcd_.Etcdctl({"get", key, "-w", "fields"}, &fields), 0);
  if (!value.empty() && value.back() == '\n') value.pop_back();
  Transfer shared;
  ASSERT_TRUE(shared.ParseFromString(value));
  EXPECT_EQ(shared.state(), TRANSFER_STATE_RECEIVED);
  EXPECT_LT(value.size(), 16u * 1024);
  const size_t version = fields.find("\"Version\" : ");
  std::cout << "shared record of " << t.id() << ": " << value.size() << " bytes, "
            << shared.audit_size() << " audit steps, etcd writes (version): "
            << (version == std::string::npos ? "?" : fields.substr(version + 12, 3)) << "\n";
  EXPECT_LT(std::chrono::steady_clock::now() - started, seconds(80));
}

TEST_F(TransferFaultTest, CancelledTransferLeavesEveryBalanceAsItWas) {
  const auto before = Balances();
  Transfer t = Create(45, "t2");
  Transfer approved;
  ASSERT_TRUE(Approve(t, &approved).ok());
  ASSERT_EQ(approved.state(), TRANSFER_STATE_READY) << approved.DebugString();
  EXPECT_NE(Balances(), before);  // the holds are visible
  Transfer cancelled;
  ASSERT_TRUE(Cancel(t, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), TRANSFER_STATE_CANCELLED);
  EXPECT_EQ(Balances(), before);
  EXPECT_EQ(ActiveHolds(), 0);
  const ItemTotals sum = ExpectConserved();
  EXPECT_EQ(sum.on_hand(), 80);
  EXPECT_EQ(sum.held(), 0);
}

TEST_F(TransferFaultTest, SourceDownDuringApprovalWaitsThenCompletes) {
  Transfer t = Create(60, "t3");
  ASSERT_EQ(t.legs_size(), 2);
  LevelB().process().Signal(SIGSTOP);
  Transfer waiting;
  ASSERT_TRUE(Approve(t, &waiting).ok());
  // Documented behaviour: a source that does not answer is waited for, not re-planned.
  EXPECT_EQ(waiting.state(), TRANSFER_STATE_HOLDING) << waiting.DebugString();
  EXPECT_EQ(waiting.legs(0).state(), LEG_STATE_HELD);
  EXPECT_EQ(waiting.legs(1).state(), LEG_STATE_PLANNED);
  // The wait names the level that does not answer, and where the catalogue looks for it.
  EXPECT_THAT(waiting.audit(waiting.audit_size() - 1).what(),
              AllOf(HasSubstr(std::string("the level service of ") + kFar + " at 127.0.0.1:"),
                    HasSubstr("did not answer in time"), HasSubstr("waiting")))
      << waiting.DebugString();
  LevelB().process().Signal(SIGCONT);
  ASSERT_TRUE(WaitFor([&] { return Get(t).state() == TRANSFER_STATE_READY; }, seconds(20)))
      << Get(t).DebugString();
  Transfer done;
  ASSERT_TRUE(ShipAndReceive(Get(t), &done).ok());
  EXPECT_EQ(done.state(), TRANSFER_STATE_RECEIVED);
  ASSERT_TRUE(WaitFor([&] { return Totals(*B()).in_transit() == 0; }, seconds(10)));
  EXPECT_EQ(ExpectConserved().on_hand(), 80);
}

// etcd down: no replica can lead transfers, so a change is refused naming etcd (it said an
// election was under way), plans go on, and once etcd is back a change goes through again.
TEST_F(TransferFaultTest, EtcdDownRefusesTransferChangesNamingEtcdWhilePlansGoOn) {
  etcd_.Kill();
  CreateTransferRequest req;
  req.set_request_id("create-while-etcd-is-down");
  req.set_actor("dispatcher");
  *req.mutable_plan() = PlanFor(10);
  grpc::Status s;
  ASSERT_TRUE(WaitFor(
      [&] {
        Transfer t;
        s = transfers_->CreateTransfer(Ctx(10).get(), req, &t);
        // At first the leader itself refuses (it cannot save to etcd); once its lease lapses
        // (3 s) no replica leads.
        return s.error_message().find("while etcd does not answer") != std::string::npos;
      },
      seconds(20)))
      << s.error_code() << " " << s.error_message() << Log();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(),
              HasSubstr("transfers cannot be changed while etcd does not answer"));
  EXPECT_TRUE(Plannable(80));
  std::string error;
  ASSERT_TRUE(etcd_.Restart(seconds(20), &error)) << error;
  ASSERT_TRUE(WaitFor([&] { return Leads(); }, seconds(30))) << Log();
  Transfer t;
  EXPECT_TRUE(transfers_->CreateTransfer(Ctx(10).get(), req, &t).ok());
}

// The same system with plans leaving out a level instance silent for 2 s (default 10).
class UnreachableSourceTest : public TransferFaultTest {
 protected:
  void SetUp() override {
    catalogue_flags_ = {"--unreachable-after=2"};
    TransferFaultTest::SetUp();
  }
};

// county-b stops answering (SIGSTOP: to the catalogue, as a cut link looks). Once it has been
// silent for 2 s, plans take from county-a only and say why county-b is missing, and a
// transfer made then is ready at once instead of waiting for county-b. When county-b answers
// again, plans take from it again.
TEST_F(UnreachableSourceTest, PlansLeaveOutALevelThatDoesNotAnswerUntilItAnswersAgain) {
  LevelB().process().Signal(SIGSTOP);
  AllocationPlan plan;
  ASSERT_TRUE(WaitFor(
      [&] {
        plan.Clear();
        return transfers_->PlanAllocation(Ctx(2).get(), PlanFor(60), &plan).ok() &&
               plan.unreachable_sources_size() == 1;
      },
      seconds(20)))
      << plan.DebugString() << Log();
  EXPECT_THAT(plan.unreachable_sources(0), HasSubstr("county-b (county 4202): not answering for"));
  ASSERT_EQ(plan.legs_size(), 1) << plan.DebugString();
  EXPECT_EQ(plan.legs(0).source_warehouse(), std::string("warehouses/") + kNear);
  EXPECT_EQ(plan.outcomes(0).shortfall(), 30);

  Transfer t = Create(30, "while-b-is-silent");
  ASSERT_EQ(t.legs_size(), 1) << t.DebugString();
  Transfer ready;
  ASSERT_TRUE(Approve(t, &ready).ok());
  EXPECT_EQ(ready.state(), TRANSFER_STATE_READY) << ready.DebugString();

  LevelB().process().Signal(SIGCONT);
  // county-a's 30 are held now: 50 can only come from county-b.
  ASSERT_TRUE(WaitFor([&] { return Plannable(50); }, seconds(20))) << Log();
}

TEST_F(TransferFaultTest, CancelWhileSourceIsDownLeavesNoHoldBehind) {
  const auto before = Balances();
  Transfer t = Create(60, "t4");
  LevelB().process().Signal(SIGSTOP);
  Transfer waiting;
  ASSERT_TRUE(Approve(t, &waiting).ok());
  ASSERT_EQ(waiting.state(), TRANSFER_STATE_HOLDING);
  // The stopped source has the hold request queued: it will place it when it wakes up.
  Transfer cancelled;
  ASSERT_TRUE(Cancel(t, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), TRANSFER_STATE_CANCELLED) << cancelled.DebugString();
  LevelB().process().Signal(SIGCONT);
  // The owed release reaches county-b through the resume loop; nothing stays held.
  ASSERT_TRUE(WaitFor([&] { return ActiveHolds() == 0 && Balances() == before; }, seconds(30)))
      << Get(t).DebugString();
  EXPECT_EQ(ExpectConserved().held(), 0);
}

// county-b put back to a copy of its database taken before the transfer's hold there (as a
// restore from a backup does): shipping that leg says the hold is gone, the transfer fails, the
// hold at county-a is released, and every balance is as before the transfer.
TEST_F(TransferFaultTest, SourceRestoredToBeforeItsHoldFailsTheTransferWhenShipped) {
  const auto before = Balances();
  ASSERT_EQ(LevelB().process().Stop(SIGTERM), 0) << LevelB().process().Log();
  std::filesystem::copy(dir_.Sub("county-b-db"), dir_.Sub("county-b-copy"),
                        std::filesystem::copy_options::recursive);
  ASSERT_TRUE(LevelB().Start());
  // Plans leave county-b out until the catalogue has seen it register again.
  ASSERT_TRUE(WaitFor([&] { return Plannable(80); }, seconds(30))) << Log();
  Transfer t = Create(60, "t5");
  ASSERT_EQ(t.legs_size(), 2);
  ASSERT_EQ(t.legs(1).plan().source_warehouse(), std::string("warehouses/") + kFar);
  Transfer ready;
  ASSERT_TRUE(Approve(t, &ready).ok());
  ASSERT_EQ(ready.state(), TRANSFER_STATE_READY) << ready.DebugString();
  ASSERT_EQ(ActiveHolds(), 2);

  ASSERT_EQ(LevelB().process().Stop(SIGTERM), 0) << LevelB().process().Log();
  std::filesystem::remove_all(dir_.Sub("county-b-db"));
  std::filesystem::rename(dir_.Sub("county-b-copy"), dir_.Sub("county-b-db"));
  ASSERT_TRUE(LevelB().Start());
  EXPECT_EQ(Holds(*B(), kFar).size(), 0u);
  // The catalogue has streamed county-b again (its 50 are available once more).
  ASSERT_TRUE(WaitFor([&] { return Plannable(50); }, seconds(30))) << Log();

  ShipTransferLegRequest ship;
  ship.set_request_id("ship-t5-1");
  ship.set_actor("keeper");
  ship.set_name(t.name());
  ship.set_leg(1);
  Transfer out;
  grpc::Status s = transfers_->ShipTransfer(Ctx(30).get(), ship, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("no longer known there"));
  const Transfer failed = Get(t);
  EXPECT_EQ(failed.state(), TRANSFER_STATE_FAILED) << failed.DebugString();
  EXPECT_THAT(failed.failure_reason(), HasSubstr(kFar));
  EXPECT_EQ(ActiveHolds(), 0);
  EXPECT_EQ(Balances(), before);
  EXPECT_EQ(ExpectConserved().on_hand(), 80);
}

}  // namespace
}  // namespace stockpile::testing
