// stockpile-level as a real process: served over gRPC, restarted, scraped, streamed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <future>
#include <regex>
#include <thread>
#include <utility>

#include "grpc/health/v1/health.grpc.pb.h"
#include "services/common/metrics/scrape_client.h"
#include "tests/testutil/level_process.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::testing {
namespace {

using namespace stockpile::v1;  // NOLINT
using ::testing::HasSubstr;

constexpr char kW[] = "warehouses/420102-W001";

class LevelServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(level_.Start()) << level_.Log();
    stub_ = level_.Stub();
    CreateWarehouseRequest req;
    req.set_request_id("create-1");
    req.set_actor("tester");
    auto* w = req.mutable_warehouse();
    w->set_code("420102-W001");
    w->set_display_name("江岸区应急物资储备库");
    w->set_kind(WAREHOUSE_KIND_GOVERNMENT);
    w->set_area_m2(2400);
    Warehouse out;
    ASSERT_THAT(stub_->CreateWarehouse(Deadline().get(), req, &out), IsOk());
  }

  grpc::Status Receive(const std::string& id, const std::string& item, int64_t q,
                       const std::string& lot = "", const std::string& expiry = "",
                       MovementResult* out = nullptr) {
    ReceiveRequest req;
    req.set_request_id(id);
    req.set_actor("tester");
    req.mutable_op()->set_warehouse(kW);
    req.mutable_op()->set_item(item);
    req.mutable_op()->set_quantity(q);
    req.mutable_op()->set_lot(lot);
    req.mutable_op()->set_expiry_date(expiry);
    MovementResult ignored;
    return stub_->Receive(Deadline().get(), req, out ? out : &ignored);
  }

  Balance GetBalance(const std::string& item) {
    GetBalanceRequest req;
    req.set_warehouse(kW);
    req.set_item(item);
    Balance b;
    EXPECT_THAT(stub_->GetBalance(Deadline().get(), req, &b), IsOk());
    return b;
  }

  TempDir dir_;
  LevelProcess level_{dir_, "county", "4201"};
  std::unique_ptr<LevelService::Stub> stub_;
};

TEST_F(LevelServiceTest, HealthServingAndInstanceInfo) {
  auto health = grpc::health::v1::Health::NewStub(level_.Channel());
  grpc::health::v1::HealthCheckRequest hreq;
  hreq.set_service("stockpile.v1.LevelService");
  grpc::health::v1::HealthCheckResponse hresp;
  ASSERT_THAT(health->Check(Deadline().get(), hreq, &hresp), IsOk());
  EXPECT_EQ(hresp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  InstanceInfo info;
  ASSERT_THAT(stub_->GetInstanceInfo(Deadline().get(), GetInstanceInfoRequest(), &info), IsOk());
  EXPECT_EQ(info.level(), LEVEL_COUNTY);
  EXPECT_THAT(info.region_prefixes(), ::testing::ElementsAre("4201"));
  EXPECT_EQ(info.last_sequence(), 1u);
  EXPECT_EQ(info.warehouse_count(), 1);
}

// `--health-listen=...:0` takes a free port and says which on the "listening on" line, as the
// metrics port does: otherwise nobody could probe it.
TEST_F(LevelServiceTest, AHealthListenerOnPortZeroSaysWhichPortItTook) {
  TempDir other;
  LevelProcess second(other, "county", "4202", {"--health-listen=127.0.0.1:0"});
  ASSERT_TRUE(second.Start()) << second.Log();
  int health_port = 0;
  const std::regex port_line("health on port ([0-9]+)");
  ASSERT_TRUE(WaitFor(
      [&] {
        std::smatch m;
        const std::string log = second.Log();
        if (!std::regex_search(log, m, port_line)) return false;
        health_port = std::stoi(m[1]);
        return true;
      },
      std::chrono::seconds(10)))
      << second.Log();
  ASSERT_GT(health_port, 0);
  EXPECT_NE(health_port, second.port());
  auto health = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(health_port), grpc::InsecureChannelCredentials()));
  grpc::health::v1::HealthCheckRequest req;
  req.set_service("stockpile.v1.LevelService");
  grpc::health::v1::HealthCheckResponse resp;
  ASSERT_THAT(health->Check(Deadline().get(), req, &resp), IsOk());
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

// A second instance started on the address the first serves must not start: with gRPC's
// default (SO_REUSEPORT) it did, and the kernel split callers between two databases.
TEST_F(LevelServiceTest, SecondInstanceOnABusyAddressRefusesToStart) {
  TempDir other;
  Subprocess second({BinaryDir() + "/bin/stockpile-level", "--level=county", "--regions=4201",
                     "--db=" + other.Sub("db"), "--reference-data=" + ReferenceDataDir(),
                     "--listen=" + level_.address()},
                    other.Sub("second.log"));
  ASSERT_TRUE(second.Start());
  const int status = second.Wait(std::chrono::seconds(30));
  ASSERT_NE(status, -1) << "the second instance is serving on " << level_.address();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status;
  EXPECT_THAT(second.Log(), HasSubstr("cannot listen"));
  // Its log line says when (UTC), as every line a server writes to stderr does.
  EXPECT_THAT(second.Log(), ::testing::ContainsRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
                                                     "[0-9]{2}[.][0-9]{3}Z stockpile-level: "
                                                     "cannot listen"));
  // The first one answers every call, and only it does.
  for (int i = 0; i < 20; ++i) {
    InstanceInfo info;
    ASSERT_THAT(level_.Stub()->GetInstanceInfo(Deadline().get(), GetInstanceInfoRequest(), &info),
                IsOk());
    EXPECT_EQ(info.warehouse_count(), 1);
  }
}

// --regions naming a region no region has (99, or 4021 for 4201) stops start-up: it used to
// serve an empty instance, visible only as stockpile_warehouses 0.
TEST_F(LevelServiceTest, RegionsNamingNoRegionRefuseToStart) {
  TempDir other;
  Subprocess typo({BinaryDir() + "/bin/stockpile-level", "--level=county", "--regions=42,4021",
                   "--db=" + other.Sub("db"), "--reference-data=" + ReferenceDataDir(),
                   "--listen=127.0.0.1:0", "--insecure"},
                  other.Sub("typo.log"));
  ASSERT_TRUE(typo.Start());
  const int status = typo.Wait(std::chrono::seconds(60));
  ASSERT_NE(status, -1) << "it is serving";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status;
  EXPECT_THAT(typo.Log(), HasSubstr("--regions: region 4021 is not in the reference data"));
  EXPECT_FALSE(std::filesystem::exists(other.Sub("db"))) << "nothing is created";
}

TEST_F(LevelServiceTest, EverythingAcknowledgedSurvivesRestart) {
  ASSERT_THAT(Receive("r1", "SH-0001", 50), IsOk());
  ASSERT_THAT(Receive("r2", "FW-0001", 30, "L7", "2027-04-01"), IsOk());
  HoldRequest hold;
  hold.set_request_id("h1");
  hold.set_actor("tester");
  hold.mutable_op()->set_warehouse(kW);
  hold.mutable_op()->set_item("SH-0001");
  hold.mutable_op()->set_quantity(20);
  hold.mutable_op()->set_hold_id("transfer-9-leg-1");
  MovementResult held;
  ASSERT_THAT(stub_->Hold(Deadline().get(), hold, &held), IsOk());
  ASSERT_EQ(level_.Stop(), 0) << level_.Log();
  ASSERT_TRUE(level_.Start()) << level_.Log();
  stub_ = level_.Stub();
  Balance tents = GetBalance("SH-0001");
  EXPECT_EQ(tents.on_hand(), 50);
  EXPECT_EQ(tents.held(), 20);
  EXPECT_EQ(GetBalance("FW-0001").lots(0).expiry_date(), "2027-04-01");
  ListMovementsRequest lm;
  lm.set_warehouse(kW);
  ListMovementsResponse movements;
  ASSERT_THAT(stub_->ListMovements(Deadline().get(), lm, &movements), IsOk());
  EXPECT_EQ(movements.movements_size(), 3);
  // A retry after the restart still answers with the first result and moves nothing.
  MovementResult again;
  ASSERT_THAT(Receive("r1", "SH-0001", 50, "", "", &again), IsOk());
  EXPECT_EQ(again.movements(0).id(), movements.movements(0).id());
  EXPECT_EQ(GetBalance("SH-0001").on_hand(), 50);
  GetHoldRequest gh;
  gh.set_name("holds/transfer-9-leg-1");
  v1::Hold h;
  ASSERT_THAT(stub_->GetHold(Deadline().get(), gh, &h), IsOk());
  EXPECT_EQ(h.state(), HOLD_STATE_ACTIVE);
}

TEST_F(LevelServiceTest, WatchChangesStreamsHistoryThenLiveChanges) {
  ASSERT_THAT(Receive("r1", "SH-0001", 5), IsOk());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  WatchChangesRequest req;
  auto reader = stub_->WatchChanges(&ctx, req);
  std::vector<ChangeEntry> seen;
  WatchChangesResponse resp;
  while (seen.size() < 2 && reader->Read(&resp)) {
    for (const auto& e : resp.entries()) seen.push_back(e);
  }
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].sequence(), 1u);
  EXPECT_EQ(seen[0].warehouses(0).code(), "420102-W001");
  EXPECT_EQ(seen[1].balances(0).on_hand(), 5);
  ASSERT_THAT(Receive("r2", "SH-0001", 7), IsOk());
  ASSERT_TRUE(reader->Read(&resp));
  ASSERT_EQ(resp.entries_size(), 1);
  EXPECT_EQ(resp.entries(0).sequence(), 3u);
  EXPECT_EQ(resp.entries(0).balances(0).on_hand(), 12);
  EXPECT_EQ(resp.head_sequence(), 3u);
  ctx.TryCancel();
  while (reader->Read(&resp)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

// SIGTERM ends open change streams at once (UNAVAILABLE: the consumer reconnects) rather than
// letting the drain wait out its 5 s deadline for streams that never end by themselves.
TEST_F(LevelServiceTest, SigtermEndsOpenChangeStreamsAndExitsPromptly) {
  // The consumer has its own channel and closes it once its stream ends, as `stockctl watch`
  // does by exiting. (An open but idle channel of this process, which no thread polls, holds up
  // the server's drain by itself; so the fixture's is closed too.)
  stub_.reset();
  std::promise<void> streaming;
  std::promise<grpc::Status> ended;
  std::thread consumer([&] {
    auto channel = level_.Channel();
    auto stub = LevelService::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    auto reader = stub->WatchChanges(&ctx, WatchChangesRequest());
    WatchChangesResponse resp;
    bool first = true;
    while (reader->Read(&resp)) {
      if (std::exchange(first, false)) streaming.set_value();  // the history has come
    }
    if (first) streaming.set_value();
    ended.set_value(reader->Finish());
  });
  streaming.get_future().wait();
  const auto start = std::chrono::steady_clock::now();
  const int status = level_.Stop(15);
  const auto took = std::chrono::steady_clock::now() - start;
  consumer.join();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << level_.Log();
  EXPECT_LT(took, std::chrono::seconds(3)) << "the drain waited for the open stream";
  EXPECT_EQ(ended.get_future().get().error_code(), grpc::StatusCode::UNAVAILABLE);
}

// A consumer resuming at a position this instance's history does not have (a sequence past
// its head, or an entry committed at another time: its database was restored or re-created)
// gets one message saying so instead of entries it would mistake for ones it already has.
TEST_F(LevelServiceTest, WatchChangesFromAnotherHistorySaysSoInsteadOfStreaming) {
  ASSERT_THAT(Receive("r1", "SH-0001", 5), IsOk());
  auto watch = [&](uint64_t from, const google::protobuf::Timestamp* at) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    WatchChangesRequest req;
    req.set_from_sequence(from);
    if (at != nullptr) *req.mutable_from_commit_time() = *at;
    auto reader = stub_->WatchChanges(&ctx, req);
    std::vector<WatchChangesResponse> got;
    WatchChangesResponse resp;
    // A matching position streams (entries after it or nothing yet); stop reading after one.
    while (got.empty() && reader->Read(&resp)) got.push_back(resp);
    ctx.TryCancel();
    while (reader->Read(&resp)) {
    }
    reader->Finish();
    return got;
  };
  grpc::ClientContext ctx;
  WatchChangesRequest all;
  auto reader = stub_->WatchChanges(&ctx, all);
  WatchChangesResponse first;
  ASSERT_TRUE(reader->Read(&first));
  ASSERT_EQ(first.entries_size(), 2);
  ctx.TryCancel();
  while (reader->Read(&first)) {
  }
  reader->Finish();
  const google::protobuf::Timestamp entry1 = first.entries(0).commit_time();

  auto past_head = watch(3, nullptr);
  ASSERT_EQ(past_head.size(), 1u);
  EXPECT_TRUE(past_head[0].history_diverged());
  EXPECT_EQ(past_head[0].entries_size(), 0);
  EXPECT_EQ(past_head[0].head_sequence(), 2u);
  EXPECT_THAT(past_head[0].history_note(), HasSubstr("history ends at sequence 2"));

  google::protobuf::Timestamp other = entry1;
  other.set_nanos((other.nanos() + 1000) % 1000000000);
  auto moved = watch(1, &other);
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_TRUE(moved[0].history_diverged());
  EXPECT_THAT(moved[0].history_note(), HasSubstr("entry 1 here was committed at"));

  auto same = watch(1, &entry1);
  ASSERT_EQ(same.size(), 1u);
  EXPECT_FALSE(same[0].history_diverged());
  ASSERT_EQ(same[0].entries_size(), 1);
  EXPECT_EQ(same[0].entries(0).sequence(), 2u);
}

TEST_F(LevelServiceTest, MetricsPagePassesPromtoolAndFollowsStock) {
  auto page = metrics::FetchMetricsPage("127.0.0.1", level_.metrics_port());
  ASSERT_THAT(page.status(), IsOk());
  std::string out;
  ASSERT_EQ(RunCommand({"promtool", "check", "metrics"}, &out, *page), 0) << out;
  ASSERT_THAT(Receive("r1", "SH-0001", 42), IsOk());
  page = metrics::FetchMetricsPage("127.0.0.1", level_.metrics_port());
  ASSERT_THAT(page.status(), IsOk());
  auto samples = metrics::ParseMetricsPage(*page);
  ASSERT_THAT(samples.status(), IsOk());
  EXPECT_EQ(metrics::SumSamples(*samples, "stockpile_stock_units",
                                {{"item", "SH-0001"}, {"state", "on_hand"}, {"level", "county"}}),
            42);
  EXPECT_EQ(metrics::SumSamples(*samples, "stockpile_movements_total", {{"type", "receive"}}), 1);
  EXPECT_EQ(metrics::SumSamples(*samples, "grpc_server_handled_total",
                                {{"grpc_method", "Receive"}, {"grpc_code", "OK"}}),
            1);
  EXPECT_EQ(metrics::SumSamples(*samples, "stockpile_change_sequence"), 2);
  EXPECT_EQ(metrics::SumSamples(*samples, "stockpile_build_info", {{"service", "stockpile-level"}}),
            1);
  EXPECT_EQ(RunCommand({"promtool", "check", "metrics"}, &out, *page), 0) << out;
}

}  // namespace
}  // namespace stockpile::testing
