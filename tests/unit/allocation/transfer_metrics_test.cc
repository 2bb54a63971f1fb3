#include "services/catalogue/allocation/transfer_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include "prometheus/metric_family.h"
#include "tests/testutil/process.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::catalogue::allocation {
namespace {

using ::stockpile::testing::IsOk;
using namespace stockpile::v1;  // NOLINT

constexpr int64_t kNow = 1'780'272'000'000'000;  // micros

Transfer Make(const std::string& id, TransferState state, int64_t updated_s, int64_t approved_s) {
  Transfer t;
  t.set_name("transfers/" + id);
  t.set_id(id);
  t.set_destination_region("420102");
  t.set_state(state);
  t.mutable_update_time()->set_seconds(updated_s);
  if (approved_s > 0) {
    auto* step = t.add_audit();
    step->set_what("approved");
    step->mutable_time()->set_seconds(approved_s);
  }
  return t;
}

double ValueOf(const std::vector<prometheus::MetricFamily>& families, const std::string& name,
               const std::string& state) {
  for (const auto& f : families) {
    if (f.name != name) continue;
    for (const auto& m : f.metric) {
      if (state.empty() || (!m.label.empty() && m.label[0].value == state)) {
        return f.type == prometheus::MetricType::Histogram ? m.histogram.sample_count
                                                           : m.gauge.value;
      }
    }
  }
  return -1;
}

TEST(TransferMetricsTest, CountsStatesOldestAgesAndApprovalToReceipt) {
  stockpile::testing::TempDir dir;
  auto store = TransferStore::Open(dir.Sub("transfers"));
  ASSERT_THAT(store.status(), IsOk());
  const int64_t now_s = kNow / 1'000'000;
  ASSERT_THAT((*store)->Save(Make("T1", TRANSFER_STATE_READY, now_s - 7200, now_s - 7300)), IsOk());
  ASSERT_THAT((*store)->Save(Make("T2", TRANSFER_STATE_READY, now_s - 60, now_s - 100)), IsOk());
  ASSERT_THAT((*store)->Save(Make("T3", TRANSFER_STATE_RECEIVED, now_s - 10, now_s - 3610)),
              IsOk());
  Transfer received_short = Make("T4", TRANSFER_STATE_RECEIVED, now_s - 20, now_s - 3620);
  received_short.add_short_lines()->set_shortfall(5);
  ASSERT_THAT((*store)->Save(received_short), IsOk());
  Transfer failed = Make("T5", TRANSFER_STATE_FAILED, now_s - 30, now_s - 40);
  failed.add_short_lines()->set_shortfall(10);
  ASSERT_THAT((*store)->Save(failed), IsOk());
  common::FakeClock clock(kNow);
  auto collectable = MakeTransferCollectable(store->get(), &clock, [] { return true; });
  auto families = collectable->Collect();
  EXPECT_EQ(ValueOf(families, "stockpile_transfers", "READY"), 2);
  EXPECT_EQ(ValueOf(families, "stockpile_transfers", "RECEIVED"), 2);
  EXPECT_EQ(ValueOf(families, "stockpile_transfers", "IN_TRANSIT"), 0);
  EXPECT_EQ(ValueOf(families, "stockpile_transfers_short", "RECEIVED"), 1);
  EXPECT_EQ(ValueOf(families, "stockpile_transfers_short", "FAILED"), 1);
  EXPECT_EQ(ValueOf(families, "stockpile_transfers_short", "READY"), 0);
  EXPECT_EQ(ValueOf(families, "stockpile_transfer_oldest_age_seconds", "READY"), 7200);
  EXPECT_EQ(ValueOf(families, "stockpile_transfer_approval_to_receipt_seconds", ""), 2);
  EXPECT_EQ(ValueOf(families, "stockpile_is_leader", ""), 1);
  for (const auto& f : families) {
    if (f.name != "stockpile_transfer_approval_to_receipt_seconds") continue;
    EXPECT_DOUBLE_EQ(f.metric[0].histogram.sample_sum, 3600 + 3600);
  }
}

// An unreadable record must not turn into "0 transfers stuck": the per-state figures are left
// out of that scrape (their series go stale) and the failure is counted.
TEST(TransferMetricsTest, UnreadableStoreLeavesStateFiguresOutAndCountsIt) {
  stockpile::testing::TempDir dir;
  const std::string path = dir.Sub("transfers");
  const int64_t now_s = kNow / 1'000'000;
  {
    auto store = TransferStore::Open(path);
    ASSERT_THAT(store.status(), IsOk());
    ASSERT_THAT((*store)->Save(Make("T1", TRANSFER_STATE_READY, now_s - 7200, now_s - 7300)),
                IsOk());
  }
  {  // Overwrite the stored transfer with bytes that are not a Transfer.
    rocksdb::DB* raw = nullptr;
    rocksdb::Options options;
    ASSERT_TRUE(rocksdb::DB::Open(options, path, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "t/T1", "\xff\xff\xff not a transfer").ok());
  }
  auto store = TransferStore::Open(path);
  ASSERT_THAT(store.status(), IsOk());
  common::FakeClock clock(kNow);
  auto collectable = MakeTransferCollectable(store->get(), &clock, [] { return false; });
  for (int scrape = 1; scrape <= 2; ++scrape) {
    auto families = collectable->Collect();
    EXPECT_EQ(ValueOf(families, "stockpile_transfers", "READY"), -1);  // left out, not 0
    EXPECT_EQ(ValueOf(families, "stockpile_transfers_short", "READY"), -1);
    EXPECT_EQ(ValueOf(families, "stockpile_transfer_oldest_age_seconds", "READY"), -1);
    EXPECT_EQ(ValueOf(families, "stockpile_is_leader", ""), 0);
    for (const auto& f : families) {
      if (f.name == "stockpile_transfer_metrics_read_errors_total") {
        EXPECT_EQ(f.metric[0].counter.value, scrape);
      }
    }
  }
}

}  // namespace
}  // namespace stockpile::catalogue::allocation
