// The catalogue's /metrics page scraped over HTTP from a real stockpile-catalogue replicating a
// real stockpile-level (static --source, no etcd): the page passes `promtool check metrics`, the
// replication series carry the source's id, and the applied sequence follows a receipt.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <regex>

#include "services/common/metrics/scrape_client.h"
#include "tests/unit/catalogue/catalogue_processes.h"

namespace stockpile::testing {
namespace {

using std::chrono::seconds;

constexpr char kSourceId[] = "village-a";
constexpr char kVillage[] = "420102002003";
constexpr char kVillageStore[] = "420102002003-W001";

class CatalogueMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    village_ = std::make_unique<LevelServer>(dir_, kSourceId, "village", "420102", "");
    ASSERT_TRUE(village_->Start());
    catalogue_ = std::make_unique<CatalogueServer>(
        dir_, "",
        std::vector<std::string>{std::string(kSourceId) + "=village@" + village_->address()});
    ASSERT_TRUE(catalogue_->Start());
    // main prints "metrics on port N" once it serves (the port file holds the gRPC port only).
    const std::regex port_line("metrics on port ([0-9]+)");
    ASSERT_TRUE(WaitFor(
        [&] {
          std::smatch m;
          const std::string log = catalogue_->process().Log();
          if (!std::regex_search(log, m, port_line)) return false;
          metrics_port_ = std::stoi(m[1]);
          return true;
        },
        seconds(10)))
        << catalogue_->process().Log();
    ASSERT_TRUE(WaitFor(
        [&] {
          const auto sources = catalogue_->Status();
          auto* s = FindSource(sources, kSourceId);
          return s != nullptr && s->connected();
        },
        seconds(20)))
        << catalogue_->process().Log();
  }

  // The page, checked by promtool, as samples.
  std::vector<metrics::Sample> Scrape() {
    auto page = metrics::FetchMetricsPage("127.0.0.1", metrics_port_);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) return {};
    std::string out;
    EXPECT_EQ(RunCommand({"/usr/bin/promtool", "check", "metrics"}, &out, *page), 0) << out << "\n"
                                                                                     << *page;
    auto samples = metrics::ParseMetricsPage(*page);
    EXPECT_TRUE(samples.ok()) << samples.status();
    return samples.ok() ? *samples : std::vector<metrics::Sample>{};
  }

  static double Source(const std::vector<metrics::Sample>& samples, const std::string& name) {
    return metrics::SumSamples(samples, name, {{"source", kSourceId}, {"level", "village"}});
  }

  static bool HasSeries(const std::vector<metrics::Sample>& samples, const std::string& name,
                        const std::map<std::string, std::string>& labels) {
    for (const auto& s : samples) {
      if (s.name != name) continue;
      bool match = true;
      for (const auto& [k, v] : labels) {
        auto it = s.labels.find(k);
        match = match && it != s.labels.end() && it->second == v;
      }
      if (match) return true;
    }
    return false;
  }

  TempDir dir_;
  std::unique_ptr<LevelServer> village_;
  std::unique_ptr<CatalogueServer> catalogue_;
  int metrics_port_ = 0;
};

TEST_F(CatalogueMetricsTest, PagePassesPromtoolWithPerSourceReplicationAndTransferSeries) {
  auto samples = Scrape();
  const std::map<std::string, std::string> source = {{"source", kSourceId}, {"level", "village"}};
  for (const char* name :
       {"stockpile_replication_applied_sequence", "stockpile_replication_lag_entries",
        "stockpile_replication_lag_seconds", "stockpile_replication_connected",
        "stockpile_replication_entries_applied_total"}) {
    EXPECT_TRUE(HasSeries(samples, name, source)) << name;
  }
  EXPECT_EQ(Source(samples, "stockpile_replication_connected"), 1);
  EXPECT_TRUE(HasSeries(samples, "stockpile_catalogue_warehouses", {}));
  // Transfer figures: every state present (0 here), the histogram and leadership (no etcd:
  // this replica always leads).
  EXPECT_TRUE(HasSeries(samples, "stockpile_transfers", {{"state", "READY"}}));
  EXPECT_TRUE(HasSeries(samples, "stockpile_transfers_short", {{"state", "RECEIVED"}}));
  EXPECT_TRUE(HasSeries(samples, "stockpile_transfer_oldest_age_seconds", {{"state", "READY"}}));
  EXPECT_TRUE(HasSeries(samples, "stockpile_transfer_approval_to_receipt_seconds_count", {}));
  EXPECT_EQ(metrics::SumSamples(samples, "stockpile_is_leader"), 1);
  EXPECT_EQ(
      metrics::SumSamples(samples, "stockpile_build_info", {{"service", "stockpile-catalogue"}}),
      1);
}

TEST_F(CatalogueMetricsTest, AppliedSequenceFollowsAReceiptAtTheLevel) {
  auto level = village_->Stub();
  ASSERT_TRUE(CreateWarehouse(*level, kVillageStore, kVillage).ok());
  // Caught up with the warehouse's creation: the figure equals what the catalogue reports.
  double created = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto sources = catalogue_->Status();
        auto* s = FindSource(sources, kSourceId);
        if (s == nullptr || s->applied_sequence() == 0 || s->lag_entries() != 0) return false;
        created = Source(Scrape(), "stockpile_replication_applied_sequence");
        return created == double(s->applied_sequence());
      },
      seconds(10)));
  auto before = Scrape();
  EXPECT_EQ(metrics::SumSamples(before, "stockpile_catalogue_warehouses"), 1);
  const double applied_before = Source(before, "stockpile_replication_entries_applied_total");

  ASSERT_TRUE(Receive(*level, kVillageStore, "SH-0001", 7, "r-1").ok());
  std::vector<metrics::Sample> after;
  ASSERT_TRUE(WaitFor(
      [&] {
        after = Scrape();
        return Source(after, "stockpile_replication_applied_sequence") == created + 1;
      },
      seconds(5)))
      << "applied sequence stayed at " << Source(after, "stockpile_replication_applied_sequence")
      << ", expected " << created + 1;
  EXPECT_EQ(Source(after, "stockpile_replication_entries_applied_total"), applied_before + 1);
  EXPECT_EQ(Source(after, "stockpile_replication_lag_entries"), 0);
  EXPECT_EQ(Source(after, "stockpile_replication_connected"), 1);
}

}  // namespace
}  // namespace stockpile::testing
