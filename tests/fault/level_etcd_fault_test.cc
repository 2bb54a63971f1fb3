// A level instance that loses etcd for longer than its lease TTL (here: SIGSTOP, as a long
// pause or a partition would) can find, when it comes back, that another instance registered
// its regions meanwhile. Neither can stop (warehouse staff keep working), so both must say so:
// in the log and in stockpile_second_writers, which the LevelSecondWriter alert watches.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "services/common/etcd/etcd_client.h"
#include "services/common/metrics/scrape_client.h"
#include "tests/testutil/etcd_fixture.h"
#include "tests/testutil/etcd_process.h"
#include "tests/testutil/level_process.h"

namespace stockpile::testing {
namespace {

using namespace std::chrono_literals;

constexpr char kCountyInstances[] = "/stockpile/v1/instances/county/";

class LevelSecondWriterTest : public ::stockpile::testing::EtcdFixture {
 protected:
  std::unique_ptr<LevelProcess> Level(const std::string& id, const std::string& regions) {
    return std::make_unique<LevelProcess>(
        tmp_, "county", regions,
        std::vector<std::string>{"--instance-id=" + id, "--etcd-endpoints=" + etcd_.endpoint(),
                                 "--etcd-ttl=2"});
  }
  bool Registered(const std::string& id) {
    auto range = client_->Range(kCountyInstances + id);
    return range.ok() && !range->kvs.empty();
  }
  // The gauge's value on the level's metrics page; nullopt when it cannot be read.
  static std::optional<double> SecondWriters(const LevelProcess& level) {
    auto page = metrics::FetchMetricsPage("127.0.0.1", level.metrics_port());
    if (!page.ok()) return std::nullopt;
    std::istringstream lines(*page);
    for (std::string line; std::getline(lines, line);) {
      // stockpile_second_writers{level="county"} 1
      if (line.rfind("stockpile_second_writers{", 0) == 0) {
        return std::stod(line.substr(line.rfind(' ') + 1));
      }
    }
    return std::nullopt;
  }
};

TEST_F(LevelSecondWriterTest,
       InstanceBackFromAPauseLongerThanItsTtlAndTheOneThatTookItsRegionsBothSaySo) {
  auto wuhan = Level("county-wuhan", "4201");
  ASSERT_TRUE(wuhan->Start()) << wuhan->Log();
  ASSERT_TRUE(WaitFor([&] { return Registered("county-wuhan"); }, 20s)) << wuhan->Log();
  EXPECT_EQ(SecondWriters(*wuhan), 0.0);

  wuhan->process().Signal(SIGSTOP);
  ASSERT_TRUE(WaitFor([&] { return !Registered("county-wuhan"); }, 20s));  // its lease ran out
  // All of Hubei, Wuhan included: nobody is registered for it now, so it starts.
  auto hubei = Level("county-hubei", "42");
  ASSERT_TRUE(hubei->Start()) << hubei->Log();
  ASSERT_TRUE(WaitFor([&] { return Registered("county-hubei"); }, 20s)) << hubei->Log();
  EXPECT_EQ(SecondWriters(*hubei), 0.0);

  wuhan->process().Signal(SIGCONT);  // registers again under a new lease, beside Hubei
  EXPECT_TRUE(WaitFor([&] { return SecondWriters(*wuhan) == 1.0; }, 20s)) << wuhan->Log();
  EXPECT_TRUE(WaitFor([&] { return SecondWriters(*hubei) == 1.0; }, 20s)) << hubei->Log();
  EXPECT_THAT(wuhan->Log(), ::testing::HasSubstr("SECOND WRITER: county-hubei at"));
  EXPECT_THAT(hubei->Log(), ::testing::HasSubstr("SECOND WRITER: county-wuhan at"));
  EXPECT_TRUE(wuhan->process().running());  // both keep serving their warehouse staff
  EXPECT_TRUE(hubei->process().running());

  // Settled by stopping one: the other's figure returns to 0 and its log says so.
  EXPECT_EQ(hubei->Stop(), 0);
  EXPECT_TRUE(WaitFor([&] { return SecondWriters(*wuhan) == 0.0; }, 20s)) << wuhan->Log();
  EXPECT_THAT(wuhan->Log(), ::testing::HasSubstr("no other live instance writes its warehouses"));
}

}  // namespace
}  // namespace stockpile::testing
