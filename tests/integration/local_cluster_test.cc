// deploy/local/cluster.sh as an operator runs it: etcd and seven separate processes register and
// are discovered; a receipt at a village warehouse shows in the catalogue's province roll-up;
// `cluster.sh backup` backs up every level instance; and a real Prometheus with
// deploy/prometheus's configuration scrapes every process, backup times included.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "stockpile/v1/catalogue_service.grpc.pb.h"
#include "tests/testutil/level_process.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::testing {
namespace {

using namespace stockpile::v1;  // NOLINT

constexpr int kPorts[] = {2379, 2380, 7501, 7502, 7503, 7504, 7505, 7506, 7510,
                          9501, 9502, 9503, 9504, 9505, 9506, 9510, 9090};

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class LocalClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string out;
    offset_ = StartOnFreePortLayout(
        kPorts,
        [&](int offset) {
          offset_ = offset;
          return Cluster("start", &out) == 0;
        },
        [&] {
          std::string stopped;
          Cluster("stop", &stopped);
          std::filesystem::remove_all(dir_.Sub("cluster"));
        });
    started_ = offset_ > 0;
    ASSERT_TRUE(started_) << "no free port layout started: " << out;
  }
  void TearDown() override {
    if (prometheus_) prometheus_->Stop();
    std::string out;
    if (started_) {
      EXPECT_EQ(Cluster("stop", &out), 0) << out;
    }
  }

  int Cluster(const std::string& verb, std::string* out) {
    return RunCommand({"env", "STOCKPILE_BIN=" + BinaryDir() + "/bin",
                       "STOCKPILE_CLUSTER_DIR=" + dir_.Sub("cluster"),
                       "STOCKPILE_REFERENCE_DATA=" + ReferenceDataDir(),
                       "STOCKPILE_PORT_OFFSET=" + std::to_string(offset_), "bash",
                       SourceDir() + "/deploy/local/cluster.sh", verb},
                      out, "", std::chrono::seconds(150));
  }
  std::string Address(int port) const { return absl::StrCat("127.0.0.1:", port + offset_); }

  // deploy/prometheus/prometheus.yml with every loopback port moved by the offset.
  std::string PrometheusConfig() {
    const std::string src = SourceDir() + "/deploy/prometheus/";
    std::string config = Slurp(src + "prometheus.yml");
    std::regex port_re("127\\.0\\.0\\.1:([0-9]+)");
    std::string shifted;
    auto begin = std::sregex_iterator(config.begin(), config.end(), port_re);
    size_t last = 0;
    for (auto it = begin; it != std::sregex_iterator(); ++it) {
      shifted += config.substr(last, it->position() - last);
      shifted += Address(std::stoi((*it)[1]));
      last = it->position() + it->length();
    }
    shifted += config.substr(last);
    std::filesystem::create_directories(dir_.Sub("prom"));
    std::filesystem::copy_file(src + "rules.yml", dir_.Sub("prom/rules.yml"));
    std::ofstream(dir_.Sub("prom/prometheus.yml")) << shifted;
    return dir_.Sub("prom/prometheus.yml");
  }

  std::string Query(const std::string& promql) {
    std::string out;
    RunCommand({"curl", "-s", "--max-time", "5", "--get", "--data-urlencode", "query=" + promql,
                "http://" + Address(9090) + "/api/v1/query"},
               &out);
    return out;
  }

  TempDir dir_;
  int offset_ = 0;
  bool started_ = false;
  std::unique_ptr<Subprocess> prometheus_;
};

TEST_F(LocalClusterTest, VillageReceiptReachesCatalogueAndPrometheusScrapesEveryProcess) {
  auto village =
      LevelService::NewStub(grpc::CreateChannel(Address(7506), grpc::InsecureChannelCredentials()));
  CreateWarehouseRequest create;
  create.set_request_id("lc-create");
  create.set_actor("test");
  create.mutable_warehouse()->set_code("420102002003-W001");
  create.mutable_warehouse()->set_display_name("保成社区储备点");
  create.mutable_warehouse()->set_kind(WAREHOUSE_KIND_SOCIAL);
  create.mutable_warehouse()->set_area_m2(12);
  Warehouse w;
  ASSERT_THAT(village->CreateWarehouse(Deadline().get(), create, &w), IsOk());
  ReceiveRequest receive;
  receive.set_request_id("lc-receive");
  receive.set_actor("test");
  receive.mutable_op()->set_warehouse(w.name());
  receive.mutable_op()->set_item("BD-0001");
  receive.mutable_op()->set_quantity(37);
  MovementResult moved;
  ASSERT_THAT(village->Receive(Deadline().get(), receive, &moved), IsOk());

  auto catalogue = CatalogueService::NewStub(
      grpc::CreateChannel(Address(7510), grpc::InsecureChannelCredentials()));
  int64_t province_quilts = 0;
  WaitFor(
      [&] {
        GetRollupRequest req;
        req.set_region_code("42");
        req.set_item("BD-0001");
        Rollup rollup;
        if (!catalogue->GetRollup(Deadline().get(), req, &rollup).ok()) return false;
        for (const auto& i : rollup.items()) province_quilts = i.on_hand();
        return province_quilts == 37;
      },
      std::chrono::seconds(10));
  EXPECT_EQ(province_quilts, 37);

  std::string backups;
  ASSERT_EQ(Cluster("backup", &backups), 0) << backups;
  const std::string village_backups = dir_.Sub("cluster/backups/village");
  EXPECT_THAT(backups, ::testing::HasSubstr("village   " + village_backups + "/backup-"));
  ASSERT_TRUE(std::filesystem::exists(village_backups));
  int village_copies = 0;
  for (const auto& entry : std::filesystem::directory_iterator(village_backups)) {
    village_copies += entry.path().filename().string().starts_with("backup-");
  }
  EXPECT_EQ(village_copies, 1);

  prometheus_ = std::make_unique<Subprocess>(
      std::vector<std::string>{"prometheus", "--config.file=" + PrometheusConfig(),
                               "--storage.tsdb.path=" + dir_.Sub("prom/data"),
                               "--web.listen-address=" + Address(9090)},
      dir_.Sub("prometheus.log"));
  ASSERT_TRUE(prometheus_->Start());
  std::string up, stock, backed_up;
  const bool scraped = WaitFor(
      [&] {
        up = Query("count(up{job=~\"stockpile-.*\"} == 1)");
        stock =
            Query("stockpile_stock_units{item=\"BD-0001\",state=\"on_hand\",level=\"village\"}");
        backed_up = Query("count(stockpile_last_backup_time_seconds > 0)");
        return up.find("\"7\"]") != std::string::npos &&
               stock.find("\"37\"]") != std::string::npos &&
               backed_up.find("\"6\"]") != std::string::npos;
      },
      std::chrono::seconds(40));
  EXPECT_TRUE(scraped) << "up: " << up << "\nstock: " << stock << "\nbacked up: " << backed_up
                       << "\n"
                       << prometheus_->Log().substr(0, 2000);
}

}  // namespace
}  // namespace stockpile::testing
