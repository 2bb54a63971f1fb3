#include "services/common/metrics/metrics_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>

#include "prometheus/counter.h"
#include "services/common/metrics/grpc_server_metrics.h"
#include "services/common/metrics/process_collector.h"
#include "services/common/metrics/scrape_client.h"
#include "services/common/metrics/scrape_collector.h"
#include "tests/testutil/process.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::metrics {
namespace {

using ::stockpile::testing::IsOk;
using ::stockpile::testing::RunCommand;
using ::stockpile::testing::StatusIs;
using ::testing::HasSubstr;

ProcessInfo TestInfo() {
  return ProcessInfo{"stockpile-level", "0.1.0", "abc1234", {{"level", "county"}}};
}

std::unique_ptr<MetricsServer> StartOrDie() {
  auto server = MetricsServer::Start("127.0.0.1:0", TestInfo());
  EXPECT_THAT(server, IsOk());
  return server.ok() ? std::move(*server) : nullptr;
}

std::vector<Sample> Scrape(const MetricsServer& server) {
  absl::StatusOr<std::string> page = FetchMetricsPage("127.0.0.1", server.port());
  EXPECT_THAT(page, IsOk());
  if (!page.ok()) return {};
  absl::StatusOr<std::vector<Sample>> samples = ParseMetricsPage(*page);
  EXPECT_THAT(samples, IsOk());
  return samples.ok() ? *samples : std::vector<Sample>{};
}

TEST(MetricsServerTest, ServesBuildInfoWithConstantLabels) {
  auto server = StartOrDie();
  ASSERT_NE(server, nullptr);
  EXPECT_GT(server->port(), 0);
  std::vector<Sample> samples = Scrape(*server);
  EXPECT_EQ(SumSamples(samples, "stockpile_build_info",
                       {{"service", "stockpile-level"},
                        {"version", "0.1.0"},
                        {"commit", "abc1234"},
                        {"level", "county"}}),
            1);
}

TEST(MetricsServerTest, ServesProcessMetrics) {
  auto server = StartOrDie();
  ASSERT_NE(server, nullptr);
  // The kernel counts CPU time in 10 ms ticks: spend 50 ms so the counter cannot read 0.
  volatile uint64_t spin = 0;
  while (std::clock() < CLOCKS_PER_SEC / 20) spin = spin + 1;
  std::vector<Sample> samples = Scrape(*server);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_GT(SumSamples(samples, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_GT(SumSamples(samples, "process_virtual_memory_bytes"), 1 << 20);
  const double cpu_after_scrape = static_cast<double>(std::clock()) / CLOCKS_PER_SEC;
  EXPECT_GE(SumSamples(samples, "process_cpu_seconds_total"), 0.03);
  EXPECT_LE(SumSamples(samples, "process_cpu_seconds_total"), cpu_after_scrape + 0.02);
  EXPECT_GT(SumSamples(samples, "process_open_fds"), 2);
  EXPECT_NEAR(SumSamples(samples, "stockpile_process_start_time_seconds"), now, 60);
  // The kernel's start time of this test process, a little before the metrics server's.
  EXPECT_NEAR(SumSamples(samples, "process_start_time_seconds"), now, 600);
}

TEST(MetricsServerTest, PagePassesPromtool) {
  auto server = StartOrDie();
  ASSERT_NE(server, nullptr);
  prometheus::BuildCounter()
      .Name("stockpile_test_events_total")
      .Help("Test events.")
      .Register(server->registry())
      .Add({{"kind", "a"}})
      .Increment(3);
  // Families without any series yet (interceptor before the first call, an empty producer).
  auto grpc_factory = MakeGrpcServerMetricsFactory(server->registry());
  auto empty =
      ScrapeCollector::Create("stockpile_test_empty", "Nothing yet.", prometheus::MetricType::Gauge,
                              {"item"}, [] { return std::vector<ScrapeCollector::Sample>{}; });
  ASSERT_THAT(empty, IsOk());
  server->AddCollectable(*empty);
  absl::StatusOr<std::string> page = FetchMetricsPage("127.0.0.1", server->port());
  ASSERT_THAT(page, IsOk());
  std::string output;
  EXPECT_EQ(RunCommand({"/usr/bin/promtool", "check", "metrics"}, &output, *page), 0)
      << output << "\n"
      << *page;
}

TEST(MetricsServerTest, PromtoolRejectsABrokenPage) {  // the check above can fail
  std::string output;
  EXPECT_NE(
      RunCommand({"/usr/bin/promtool", "check", "metrics"}, &output, "# TYPE x counter\nx{ 1\n"),
      0);
}

TEST(MetricsServerTest, PortInUseIsAnErrorNotACrash) {
  auto first = StartOrDie();
  ASSERT_NE(first, nullptr);
  auto second = MetricsServer::Start("127.0.0.1:" + std::to_string(first->port()), TestInfo());
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("cannot serve")));
}

TEST(MetricsServerTest, UnparsableAddressIsAnError) {
  EXPECT_THAT(MetricsServer::Start("127.0.0.1:notaport", TestInfo()),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST(MetricsServerTest, SeriesOwnLabelWinsOverConstantLabel) {
  auto server = StartOrDie();
  ASSERT_NE(server, nullptr);
  prometheus::BuildGauge()
      .Name("stockpile_test_per_level")
      .Help("Test.")
      .Register(server->registry())
      .Add({{"level", "province"}})
      .Set(7);
  std::vector<Sample> samples = Scrape(*server);
  EXPECT_EQ(SumSamples(samples, "stockpile_test_per_level", {{"level", "province"}}), 7);
  EXPECT_EQ(SumSamples(samples, "stockpile_test_per_level", {{"level", "county"}}), 0);
}

TEST(ScrapeCollectorTest, ValuesAreComputedAtEachScrape) {
  auto server = StartOrDie();
  ASSERT_NE(server, nullptr);
  auto units = std::make_shared<std::atomic<int>>(5);
  auto collector = ScrapeCollector::Create(
      "stockpile_stock_units", "Units.", prometheus::MetricType::Gauge, {"item", "state"}, [units] {
        return std::vector<ScrapeCollector::Sample>{{{"SH-0001", "on_hand"}, double(*units)},
                                                    {{"SH-0001", "held"}, 1}};
      });
  ASSERT_THAT(collector, IsOk());
  server->AddCollectable(*collector);
  const std::map<std::string, std::string> on_hand = {
      {"item", "SH-0001"}, {"state", "on_hand"}, {"level", "county"}};
  EXPECT_EQ(SumSamples(Scrape(*server), "stockpile_stock_units", on_hand), 5);
  *units = 9;
  EXPECT_EQ(SumSamples(Scrape(*server), "stockpile_stock_units", on_hand), 9);
}

TEST(ScrapeCollectorTest, SampleWithWrongLabelCountIsDropped) {
  auto collector =
      ScrapeCollector::Create("stockpile_x", "X.", prometheus::MetricType::Gauge, {"item"}, [] {
        return std::vector<ScrapeCollector::Sample>{{{"a"}, 1}, {{"a", "extra"}, 2}};
      });
  ASSERT_THAT(collector, IsOk());
  std::vector<prometheus::MetricFamily> families = (*collector)->Collect();
  ASSERT_EQ(families.size(), 1u);
  EXPECT_EQ(families[0].metric.size(), 1u);
  EXPECT_EQ((*collector)->dropped_samples(), 1u);
}

TEST(ScrapeCollectorTest, RejectsBadNames) {
  auto none = [] { return std::vector<ScrapeCollector::Sample>{}; };
  EXPECT_THAT(ScrapeCollector::Create("bad-name", "", prometheus::MetricType::Gauge, {}, none),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ScrapeCollector::Create("ok", "", prometheus::MetricType::Gauge, {"bad-label"}, none),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ScrapeCollector::Create("no_suffix", "", prometheus::MetricType::Counter, {}, none),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("_total")));
  EXPECT_THAT(ScrapeCollector::Create("ok", "", prometheus::MetricType::Histogram, {}, none),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ProcessCollectorTest, ParsesStatWithSpacesInCommandName) {
  // Fields 3..24 of proc(5); utime=150 stime=50 ticks, starttime=1000 ticks, vsize, rss pages.
  const std::string stat =
      "4242 (my (odd) cmd) S 1 1 1 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 4 0 1000 "
      "123456789 300 18446744073709551615";
  std::optional<ProcessStat> parsed = ParseProcStat(stat, 100, 4096, 1'700'000'000);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_DOUBLE_EQ(parsed->cpu_seconds, 2.0);
  EXPECT_DOUBLE_EQ(parsed->start_time_seconds, 1'700'000'010.0);
  EXPECT_DOUBLE_EQ(parsed->virtual_bytes, 123456789);
  EXPECT_DOUBLE_EQ(parsed->resident_bytes, 300.0 * 4096);
  EXPECT_FALSE(ParseProcStat("garbage", 100, 4096, 0).has_value());
  EXPECT_FALSE(ParseProcStat("1 (x) S 1 2", 100, 4096, 0).has_value());
}

TEST(ScrapeClientTest, ParsesLabelsWithEscapes) {
  auto samples = ParseMetricsPage(
      "# HELP a A.\n# TYPE a gauge\na{x=\"q\\\"uote\",y=\"b\\\\s\"} 2.5\nb 3\nc{} +Inf\n");
  ASSERT_THAT(samples, IsOk());
  ASSERT_EQ(samples->size(), 3u);
  EXPECT_EQ((*samples)[0].labels.at("x"), "q\"uote");
  EXPECT_EQ((*samples)[0].labels.at("y"), "b\\s");
  EXPECT_EQ(SumSamples(*samples, "a", {{"x", "q\"uote"}}), 2.5);
  EXPECT_EQ(SumSamples(*samples, "b"), 3);
  EXPECT_THAT(ParseMetricsPage("a{x=\"1\" 2\n"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ScrapeClientTest, ClosedPortIsUnavailable) {
  const int port = stockpile::testing::FreePort();
  EXPECT_THAT(FetchMetricsPage("127.0.0.1", port, absl::Seconds(2)),
              StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace stockpile::metrics
