// Unit tests of the catalogue core: state-based apply, exactly-once watermarks, roll-ups at
// every level, restart from the store, queries.
#include "services/catalogue/catalogue_core.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "services/catalogue/allocation/stock_snapshot.h"
#include "services/catalogue/source_directory.h"
#include "services/catalogue/stock_index_search.h"
#include "services/common/clock.h"
#include "services/common/etcd/registration.h"
#include "services/common/page_token.h"
#include "services/common/reference_data.h"
#include "services/common/validation.h"
#include "tests/testutil/process.h"
#include "tests/testutil/reference_data.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::catalogue {
namespace {

using stockpile::v1::ChangeEntry;
using stockpile::v1::WatchChangesResponse;

const common::ReferenceData& Reference() { return testing::SharedReferenceData(""); }

// Builds change entries the way a level instance writes them (new state per record).
class Stream {
 public:
  ChangeEntry& Next() {
    ChangeEntry& e = *batch_.add_entries();
    e.set_sequence(++sequence_);
    e.mutable_commit_time()->set_seconds(1700000000 + int64_t(sequence_));
    return e;
  }
  void Warehouse(const std::string& code, const std::string& region) {
    auto* w = Next().add_warehouses();
    w->set_name("warehouses/" + code);
    w->set_code(code);
    w->set_region_code(region);
    w->mutable_location()->set_longitude(114.3);
    w->mutable_location()->set_latitude(30.6);
  }
  void Balance(const std::string& code, const std::string& item, int64_t on_hand, int64_t held,
               int64_t in_transit = 0) {
    auto* b = Next().add_balances();
    b->set_warehouse("warehouses/" + code);
    b->set_item(item);
    b->set_on_hand(on_hand);
    b->set_held(held);
    b->set_available(on_hand - held);
    b->set_in_transit(in_transit);
  }
  void Quota(const std::string& code, const std::string& item, int64_t min) {
    auto* q = Next().add_quotas();
    q->set_warehouse("warehouses/" + code);
    q->set_item(item);
    q->set_min(min);
  }
  WatchChangesResponse Take() {
    batch_.set_head_sequence(sequence_);
    WatchChangesResponse out = std::move(batch_);
    batch_.Clear();
    return out;
  }

 private:
  uint64_t sequence_ = 0;
  WatchChangesResponse batch_;
};

std::unique_ptr<CatalogueCore> OpenCore(const std::string& path, bool with_index = false,
                                        const common::Clock* clock = common::SystemClock::Get(),
                                        allocation::StockSnapshot* snapshot = nullptr) {
  CatalogueCore::Options options;
  options.snapshot = snapshot;
  options.sync_writes = false;
  options.resync_chunk_records = 2;  // a resync of a few records takes several writes
  if (with_index) options.search = NewStockIndexSearch(int(Reference().items().size()));
  auto core = CatalogueCore::Open(path, &Reference(), clock, std::move(options));
  EXPECT_TRUE(core.ok()) << core.status();
  return std::move(*core);
}

uint64_t ApplyOk(CatalogueCore& core, const std::string& source,
                 const WatchChangesResponse& batch) {
  auto applied = core.Apply(source, batch);
  EXPECT_TRUE(applied.ok()) << applied.status();
  return applied.ok() ? *applied : 0;
}

int64_t RollupOnHand(const CatalogueCore& core, const std::string& region,
                     const std::string& item) {
  stockpile::v1::GetRollupRequest req;
  req.set_region_code(region);
  req.set_item(item);
  auto r = core.GetRollup(req);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() && r->items_size() == 1 ? r->items(0).on_hand() : -1;
}

// Warehouses the view counts in a region's roll-up.
int64_t WarehousesIn(const CatalogueCore& core, const std::string& region) {
  stockpile::v1::GetRollupRequest req;
  req.set_region_code(region);
  auto r = core.GetRollup(req);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->warehouse_count() : -1;
}

// A level's start-up claim (its planned record without an address, etcd::PutClaim) sits among
// the registrations the catalogue watches; it is not a source to connect to. The registration
// that follows is.
TEST(SourceDirectoryTest, StartUpClaimIsNotASourceButTheRegistrationIs) {
  etcd::InstanceInfo planned{"county-wuhan", "county", "", {"4201"}, "", "", ""};
  EXPECT_THAT(SourceFromRegistration(etcd::InstanceToJson(planned)).status(),
              testing::StatusIs(absl::StatusCode::kInvalidArgument));
  planned.address = "10.0.0.7:7503";
  auto source = SourceFromRegistration(etcd::InstanceToJson(planned));
  ASSERT_THAT(source, testing::IsOk());
  EXPECT_EQ(source->address, "10.0.0.7:7503");
}

TEST(CatalogueCoreTest, ApplyingTheSameBatchTwiceChangesNothing) {
  testing::TempDir dir;
  auto core = OpenCore(dir.Sub("db"));
  Stream s;
  s.Warehouse("420102002003-W001", "420102002003");
  s.Balance("420102002003-W001", "SH-0001", 10, 2);
  s.Balance("420102002003-W001", "SH-0001", 15, 3);  // the latest state wins
  const WatchChangesResponse batch = s.Take();
  EXPECT_EQ(ApplyOk(*core, "village-1", batch), 3u);
  EXPECT_EQ(ApplyOk(*core, "village-1", batch), 3u);
  EXPECT_EQ(core->view().Cell("420102002003-W001", "SH-0001"), (std::array<int64_t, 3>{15, 3, 0}));
  EXPECT_EQ(RollupOnHand(*core, "42", "SH-0001"), 15);
  EXPECT_EQ(core->ReplicationStatus().at(0).entries_applied(), 3u);
}

TEST(CatalogueCoreTest, OverlappingBatchAppliesOnlyTheNewEntries) {
  testing::TempDir dir;
  auto core = OpenCore(dir.Sub("db"));
  Stream s;
  s.Warehouse("4201-W001", "4201");
  s.Balance("4201-W001", "SH-0001", 5, 0);
  WatchChangesResponse first = s.Take();
  s.Balance("4201-W001", "SH-0001", 9, 0);
  WatchChangesResponse second = s.Take();
  WatchChangesResponse both = first;
  both.MergeFrom(second);
  EXPECT_EQ(ApplyOk(*core, "city-1", first), 2u);
  EXPECT_EQ(ApplyOk(*core, "city-1", both), 3u);
  EXPECT_EQ(RollupOnHand(*core, "4201", "SH-0001"), 9);
}

TEST(CatalogueCoreTest, GapInSequenceIsRefusedAndNothingApplied) {
  testing::TempDir dir;
  auto core = OpenCore(dir.Sub("db"));
  Stream s;
  s.Warehouse("4201-W001", "4201");
  s.Take();  // sequence 1 never delivered
  s.Balance("4201-W001", "SH-0001", 5, 0);
  EXPECT_THAT(core->Apply("city-1", s.Take()),
              testing::StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(core->Watermark("city-1"), 0u);
  EXPECT_FALSE(core->view().Cell("4201-W001", "SH-0001").has_value());
}

TEST(CatalogueCoreTest, VillageStockRollsUpToEveryLevelAbove) {
  testing::TempDir dir;
  auto core = OpenCore(dir.Sub("db"));
  Stream s;
  s.Warehouse("420102002003-W001", "420102002003");
  s.Warehouse("420102-W001", "420102");
  s.Warehouse("43-W001", "43");
  s.Balance("420102002003-W001", "SH-0001", 7, 0);
  s.Balance("420102-W001", "SH-0001", 100, 0);
  s.Balance("43-W001", "SH-0001", 1000, 0);
  s.Quota("420102-W001", "SH-0001", 400);
  ASSERT_THAT(core->Apply("mixed", s.Take()), testing::IsOk());
  EXPECT_EQ(RollupOnHand(*core, "420102002003", "SH-0001"), 7);
  EXPECT_EQ(RollupOnHand(*core, "420102002", "SH-0001"), 7);
  EXPECT_EQ(RollupOnHand(*core, "420102", "SH-0001"), 107);
  EXPECT_EQ(RollupOnHand(*core, "4201", "SH-0001"), 107);
  EXPECT_EQ(RollupOnHand(*core, "42", "SH-0001"), 107);
  EXPECT_EQ(RollupOnHand(*core, "43", "SH-0001"), 1000);
  stockpile::v1::GetRollupRequest req;
  req.set_region_code("42");
  auto rollup = core->GetRollup(req);
  ASSERT_TRUE(rollup.ok());
  EXPECT_EQ(rollup->warehouse_count(), 2);
  ASSERT_EQ(rollup->items_size(), 1);
  EXPECT_EQ(rollup->items(0).quota_floor(), 400);
  EXPECT_DOUBLE_EQ(rollup->items(0).coverage(), 107.0 / 400.0);
  EXPECT_EQ(rollup->items(0).warehouse_count(), 2);
}

// A level instance restored from a backup (or re-created) under the same id numbers new
// entries again from where its database stands. Its stock is dropped and streamed again;
// other sources are untouched, and the drop survives a restart.
TEST(CatalogueCoreTest, SourceWithAnotherHistoryIsDroppedAndStreamedAgain) {
  testing::TempDir dir;
  {
    auto core = OpenCore(dir.Sub("db"));
    Stream county;
    county.Warehouse("420102-W001", "420102");
    county.Balance("420102-W001", "SH-0001", 30, 4);
    county.Balance("420102-W001", "SH-0002", 8, 0);
    county.Quota("420102-W001", "SH-0001", 50);
    county.Warehouse("420103-W001", "420103");  // created after the backup the level goes back to
    county.Balance("420103-W001", "SH-0001", 5, 0);
    ASSERT_THAT(core->Apply("county-1", county.Take()), testing::IsOk());
    Stream city;
    city.Warehouse("4201-W001", "4201");
    city.Balance("4201-W001", "SH-0001", 100, 0);
    ASSERT_THAT(core->Apply("city-1", city.Take()), testing::IsOk());
    EXPECT_EQ(core->Position("county-1").sequence, 6u);
    EXPECT_EQ(core->Position("county-1").commit_time.seconds(), 1700000006);
    EXPECT_EQ(WarehousesIn(*core, "42"), 3);

    WatchChangesResponse signal;
    signal.set_history_diverged(true);
    signal.set_head_sequence(2);
    signal.set_history_note("this instance's history ends at sequence 2");
    EXPECT_THAT(core->Apply("county-1", signal),
                testing::StatusIs(absl::StatusCode::kAborted,
                                  ::testing::HasSubstr("streaming it again from sequence 1")));
    EXPECT_EQ(core->Position("county-1").sequence, 0u);
    EXPECT_EQ(core->Position("county-1").commit_time.seconds(), 0);
    // Its warehouses are out of every answer until the stream brings them back.
    EXPECT_EQ(core->view().Cell("420102-W001", "SH-0001"), std::nullopt);
    EXPECT_EQ(core->view().GetStock("420102-W001", "SH-0001").status().code(),
              absl::StatusCode::kNotFound);
    EXPECT_EQ(RollupOnHand(*core, "42", "SH-0001"), 100);
    EXPECT_EQ(WarehousesIn(*core, "42"), 1);
    EXPECT_EQ(core->ListShortages({})->entries_size(), 0);  // the dropped quota is gone too
    for (const auto& r : core->ReplicationStatus()) {
      if (r.instance_id() != "county-1") continue;
      EXPECT_EQ(r.resyncs(), 1u);
      EXPECT_EQ(r.last_resync_reason(), "this instance's history ends at sequence 2");
      EXPECT_EQ(r.resync_until_sequence(), 2u);
      EXPECT_EQ(r.applied_sequence(), 0u);
    }

    Stream restored;  // the restored database's history, from sequence 1
    restored.Warehouse("420102-W001", "420102");
    restored.Balance("420102-W001", "SH-0001", 12, 0);
    EXPECT_EQ(ApplyOk(*core, "county-1", restored.Take()), 2u);
    EXPECT_EQ(RollupOnHand(*core, "42", "SH-0001"), 112);
    EXPECT_EQ(core->view().Cell("420102-W001", "SH-0001"), (std::array<int64_t, 3>{12, 0, 0}));
    // The warehouse only the lost history had is gone, not listed empty.
    EXPECT_EQ(core->view().Cell("420103-W001", "SH-0001"), std::nullopt);
    EXPECT_EQ(WarehousesIn(*core, "42"), 2);
    EXPECT_EQ(WarehousesIn(*core, "420103"), 0);
  }
  auto core = OpenCore(dir.Sub("db"));
  EXPECT_EQ(core->Watermark("county-1"), 2u);
  EXPECT_EQ(core->view().Cell("420102-W001", "SH-0001"), (std::array<int64_t, 3>{12, 0, 0}));
  EXPECT_EQ(core->view().Cell("420102-W001", "SH-0002"), (std::array<int64_t, 3>{0, 0, 0}));
  EXPECT_EQ(RollupOnHand(*core, "42", "SH-0002"), 0);
  EXPECT_EQ(core->view().Cell("4201-W001", "SH-0001"), (std::array<int64_t, 3>{100, 0, 0}));
  EXPECT_EQ(core->view().Cell("420103-W001", "SH-0001"), std::nullopt);  // not in the store
  EXPECT_EQ(WarehousesIn(*core, "42"), 2);
}

const stockpile::v1::ReplicationSource* SourceStatus(
    const std::vector<stockpile::v1::ReplicationSource>& all, const std::string& id) {
  for (const auto& r : all) {
    if (r.instance_id() == id) return &r;
  }
  return nullptr;
}

// The first stream from a source brings its stock a batch at a time: until it reaches the head
// the source had when it began, the catalogue holds only part of that stock, and says so (also
// after a restart in between). A later batch that leaves the head ahead is ordinary lag.
TEST(CatalogueCoreTest, FirstStreamIsIncompleteUntilItReachesTheHeadItBeganAt) {
  testing::TempDir dir;
  Stream s;
  s.Warehouse("420102-W001", "420102");
  s.Balance("420102-W001", "SH-0001", 30, 0);
  WatchChangesResponse first = s.Take();
  first.set_head_sequence(4);
  {
    auto core = OpenCore(dir.Sub("db"));
    EXPECT_EQ(ApplyOk(*core, "county-1", first), 2u);
    const auto status = core->ReplicationStatus();
    const auto* county = SourceStatus(status, "county-1");
    ASSERT_NE(county, nullptr);
    EXPECT_EQ(county->applied_sequence(), 2u);
    EXPECT_EQ(county->resync_until_sequence(), 4u);
  }
  auto core = OpenCore(dir.Sub("db"));
  auto status = core->ReplicationStatus();
  const auto* county = SourceStatus(status, "county-1");
  ASSERT_NE(county, nullptr);
  EXPECT_EQ(county->resync_until_sequence(), 4u);
  s.Balance("420102-W001", "SH-0001", 31, 0);
  s.Balance("420102-W001", "SH-0001", 32, 0);
  WatchChangesResponse rest = s.Take();
  ASSERT_EQ(rest.entries(0).sequence(), 3u);
  EXPECT_EQ(ApplyOk(*core, "county-1", rest), 4u);
  s.Balance("420102-W001", "SH-0001", 33, 0);
  WatchChangesResponse later = s.Take();
  later.set_head_sequence(9);
  EXPECT_EQ(ApplyOk(*core, "county-1", later), 5u);
  status = core->ReplicationStatus();
  county = SourceStatus(status, "county-1");
  ASSERT_NE(county, nullptr);
  EXPECT_EQ(county->resync_until_sequence(), 4u);  // complete since sequence 4
  EXPECT_GE(county->applied_sequence(), county->resync_until_sequence());
}

TEST(CatalogueCoreTest, RestartRebuildsTheViewAndWatermarkFromTheStore) {
  testing::TempDir dir;
  Stream s;
  s.Warehouse("420102-W001", "420102");
  s.Balance("420102-W001", "SH-0001", 30, 4, 6);
  s.Quota("420102-W001", "SH-0001", 50);
  {
    auto core = OpenCore(dir.Sub("db"));
    ASSERT_THAT(core->Apply("county-1", s.Take()), testing::IsOk());
  }
  ::testing::internal::CaptureStderr();
  auto core = OpenCore(dir.Sub("db"));
  // What an operator watching the start sees.
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              ::testing::HasSubstr("rebuilt the view from its store: warehouses: 1, balances: 1, "
                                   "quotas, reserves and sources: 2 in "));
  EXPECT_EQ(core->Watermark("county-1"), 3u);
  EXPECT_EQ(core->view().Cell("420102-W001", "SH-0001"), (std::array<int64_t, 3>{30, 4, 6}));
  EXPECT_EQ(RollupOnHand(*core, "42", "SH-0001"), 30);
  stockpile::v1::ListQuotaStatusRequest shortages;
  auto listed = core->ListShortages(shortages);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->entries_size(), 1);
  EXPECT_EQ(listed->entries(0).usable(), 26);  // 30 on hand, 4 of them held
  EXPECT_EQ(listed->entries(0).gap(), 24);
  stockpile::v1::GetWarehouseStockRequest get;
  get.set_warehouse("warehouses/420102-W001");
  get.set_item("SH-0001");
  auto stock = core->GetWarehouseStock(get);
  ASSERT_TRUE(stock.ok());
  EXPECT_EQ(stock->available(), 26);
  EXPECT_EQ(stock->freshness().source(), "county-1");
  EXPECT_TRUE(stock->freshness().stale());  // not connected to anything after the restart
}

// An operator forgets a gone source (decommissioned): its records leave the store, the view and
// the status; a registered source cannot be forgotten; a retry of the same request answers the
// same, also after a restart; the same id registering again is a new source.
TEST(CatalogueCoreTest, ForgettingAGoneSourceDropsItsStockAndNothingElse) {
  testing::TempDir dir;
  {
    auto core = OpenCore(dir.Sub("db"));
    Stream county;
    county.Warehouse("420102-W001", "420102");
    county.Balance("420102-W001", "SH-0001", 30, 4);
    county.Quota("420102-W001", "SH-0001", 50);
    ASSERT_THAT(core->Apply("county-old", county.Take()), testing::IsOk());
    Stream city;
    city.Warehouse("4201-W001", "4201");
    city.Balance("4201-W001", "SH-0001", 100, 0);
    ASSERT_THAT(core->Apply("city-1", city.Take()), testing::IsOk());
    core->AddSource({"city-1", stockpile::v1::LEVEL_CITY, "127.0.0.1:1", {"4201"}});
    core->SetSources({{"city-1", stockpile::v1::LEVEL_CITY, "127.0.0.1:1", {"4201"}}});
    ASSERT_TRUE(SourceStatus(core->ReplicationStatus(), "county-old")->gone());

    EXPECT_THAT(core->ForgetSource("city-1", "f-0", "ops"),
                testing::StatusIs(absl::StatusCode::kFailedPrecondition,
                                  ::testing::HasSubstr("is registered")));
    EXPECT_THAT(core->ForgetSource("county-nobody", "f-0", "ops"),
                testing::StatusIs(absl::StatusCode::kNotFound));
    EXPECT_EQ(RollupOnHand(*core, "42", "SH-0001"), 130);
    EXPECT_TRUE(core->view().HasWarehouse("420102-W001"));
    EXPECT_FALSE(core->view().HasWarehouse("420102-W009"));

    auto forgotten = core->ForgetSource("county-old", "f-1", "ops");
    ASSERT_THAT(forgotten, testing::IsOk());
    EXPECT_TRUE(forgotten->forgotten());
    EXPECT_EQ(forgotten->forgotten_by(), "ops");
    EXPECT_EQ(SourceStatus(core->ReplicationStatus(), "county-old"), nullptr);
    EXPECT_EQ(RollupOnHand(*core, "42", "SH-0001"), 100);
    EXPECT_EQ(WarehousesIn(*core, "42"), 1);
    EXPECT_EQ(core->view().GetStock("420102-W001", "SH-0001").status().code(),
              absl::StatusCode::kNotFound);
    EXPECT_FALSE(core->view().HasWarehouse("420102-W001"));
    EXPECT_EQ(core->ListShortages({})->entries_size(), 0);
    auto retried = core->ForgetSource("county-old", "f-1", "someone else");
    ASSERT_THAT(retried, testing::IsOk());
    EXPECT_EQ(retried->forgotten_by(), "ops");
    EXPECT_THAT(
        core->ForgetSource("county-old", "f-2", "ops"),
        testing::StatusIs(absl::StatusCode::kNotFound, ::testing::HasSubstr("already forgotten")));
  }
  {
    auto core = OpenCore(dir.Sub("db"));
    EXPECT_EQ(SourceStatus(core->ReplicationStatus(), "county-old"), nullptr);
    EXPECT_EQ(RollupOnHand(*core, "42", "SH-0001"), 100);
    EXPECT_EQ(WarehousesIn(*core, "42"), 1);
    EXPECT_THAT(core->ForgetSource("county-old", "f-1", "ops"), testing::IsOk());

    core->AddSource({"county-old", stockpile::v1::LEVEL_COUNTY, "127.0.0.1:1", {"420102"}});
    const auto status = core->ReplicationStatus();  // SourceStatus points into it
    const auto* back = SourceStatus(status, "county-old");
    ASSERT_NE(back, nullptr);
    EXPECT_FALSE(back->gone());
    EXPECT_EQ(core->Watermark("county-old"), 0u);  // streamed from the start
    Stream again;
    again.Warehouse("420102-W001", "420102");
    again.Balance("420102-W001", "SH-0001", 7, 0);
    EXPECT_EQ(ApplyOk(*core, "county-old", again.Take()), 2u);
    EXPECT_EQ(RollupOnHand(*core, "42", "SH-0001"), 107);
  }
}

TEST(CatalogueCoreTest, ExpiringLotsAcrossLevelsWithinTheWindow) {
  testing::TempDir dir;
  common::FakeClock clock(int64_t(*common::ParseDate("today", "2024-05-01")) * 86'400'000'000LL);
  auto core = OpenCore(dir.Sub("db"), false, &clock);
  Stream s;
  s.Warehouse("420102-W001", "420102");
  s.Warehouse("43-W001", "43");
  auto lots = [&](const std::string& code, const std::string& expiry) {
    auto* b = s.Next().add_balances();
    b->set_warehouse("warehouses/" + code);
    b->set_item("FW-0001");
    b->set_on_hand(10);
    b->set_available(10);
    auto* l = b->add_lots();
    l->set_lot("L1");
    l->set_expiry_date(expiry);
    l->set_on_hand(10);
  };
  lots("420102-W001", "2024-05-10");
  lots("43-W001", "2024-09-01");
  ASSERT_THAT(core->Apply("levels", s.Take()), testing::IsOk());

  stockpile::v1::ListExpiringLotsRequest req;  // default window: 30 days, everywhere
  auto listed = core->ListExpiringLots(req);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->lots_size(), 1);
  EXPECT_EQ(listed->lots(0).warehouse(), "warehouses/420102-W001");
  EXPECT_EQ(listed->lots(0).days_left(), 9);
  req.set_within_days(200);
  listed = core->ListExpiringLots(req);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->lots_size(), 2);
  req.set_within_days(3651);
  EXPECT_THAT(core->ListExpiringLots(req).status(),
              testing::StatusIs(absl::StatusCode::kInvalidArgument));
}

// The national shortage list measures a floor as the levels do (QueriesTest.ShortagesCountOnly
// UsableStock): expired lots and held stock do not count, and a lot expiring overnight opens a
// shortage the next China calendar day without any record arriving; after a restart too. The
// lots come from the planner's snapshot, which the catalogue always feeds.
TEST(CatalogueCoreTest, ShortagesCountOnlyUsableStock) {
  testing::TempDir dir;
  const int64_t may_1 = int64_t(*common::ParseDate("today", "2024-05-01")) * 86'400'000'000LL;
  common::FakeClock clock(may_1 + 15LL * 3600 * 1'000'000);  // 23:00 on 1 May in China
  Stream s;
  s.Warehouse("420102-W001", "420102");
  auto* b = s.Next().add_balances();
  b->set_warehouse("warehouses/420102-W001");
  b->set_item("FW-0001");
  b->set_on_hand(155);
  b->set_held(5);
  b->set_available(150);
  auto lot = [&](const std::string& name, const std::string& expiry, int64_t on_hand,
                 int64_t held) {
    auto* l = b->add_lots();
    l->set_lot(name);
    l->set_expiry_date(expiry);
    l->set_on_hand(on_hand);
    l->set_held(held);
  };
  lot("2024-A", "2024-04-30", 100, 0);
  lot("2024-B", "2024-05-01", 30, 5);
  lot("2025-C", "2025-05-01", 25, 0);
  s.Quota("420102-W001", "FW-0001", 80);
  const WatchChangesResponse batch = s.Take();
  auto shortage = [](const CatalogueCore& core) {
    auto listed = core.ListShortages({});
    EXPECT_TRUE(listed.ok()) << listed.status();
    return listed.ok() && listed->entries_size() == 1 ? listed->entries(0)
                                                      : stockpile::v1::QuotaStatus();
  };
  {
    allocation::StockSnapshot snapshot(&Reference());
    auto core = OpenCore(dir.Sub("db"), false, &clock, &snapshot);
    ASSERT_THAT(core->Apply("county-1", batch), testing::IsOk());
    EXPECT_EQ(shortage(*core).on_hand(), 155);
    EXPECT_EQ(shortage(*core).usable(), 50);
    EXPECT_EQ(shortage(*core).gap(), 30);
    clock.Advance(2LL * 3600 * 1'000'000);  // 01:00 on 2 May in China: 2024-B has expired
    EXPECT_EQ(shortage(*core).usable(), 25);
    EXPECT_EQ(shortage(*core).gap(), 55);
  }
  allocation::StockSnapshot snapshot(&Reference());
  auto restarted = OpenCore(dir.Sub("db"), false, &clock, &snapshot);
  EXPECT_EQ(shortage(*restarted).usable(), 25);
  EXPECT_EQ(shortage(*restarted).gap(), 55);
}

// Expiry dates are China calendar days, as the levels count them: at 20:00 UTC on 1 May it is
// already 2 May in China, so a lot expiring on 10 May has 8 days left and one expiring on 1 June
// falls within the 30-day window, the same answer a level gives at that moment.
TEST(CatalogueCoreTest, ExpiringLotsCountDaysFromTheChinaCalendarDay) {
  testing::TempDir dir;
  const int64_t may_1 = int64_t(*common::ParseDate("today", "2024-05-01")) * 86'400'000'000LL;
  common::FakeClock clock(may_1 + 20LL * 3600 * 1'000'000);
  auto core = OpenCore(dir.Sub("db"), false, &clock);
  Stream s;
  s.Warehouse("420102-W001", "420102");
  s.Warehouse("420102-W002", "420102");
  auto lot = [&](const std::string& code, const std::string& expiry) {
    auto* b = s.Next().add_balances();
    b->set_warehouse("warehouses/" + code);
    b->set_item("FW-0001");
    b->set_on_hand(10);
    b->set_available(10);
    auto* l = b->add_lots();
    l->set_lot("L1");
    l->set_expiry_date(expiry);
    l->set_on_hand(10);
  };
  lot("420102-W001", "2024-05-10");
  lot("420102-W002", "2024-06-01");
  ASSERT_THAT(core->Apply("county-1", s.Take()), testing::IsOk());

  auto listed = core->ListExpiringLots({});
  ASSERT_THAT(listed, testing::IsOk());
  ASSERT_EQ(listed->lots_size(), 2);
  EXPECT_EQ(listed->lots(0).days_left(), 8);
  EXPECT_EQ(listed->lots(1).expiry_date(), "2024-06-01");
  EXPECT_EQ(listed->lots(1).days_left(), 30);
}

// Two warehouses, each short of SH-0001 and holding a lot of FW-0001 expiring on 2024-05-10.
std::unique_ptr<CatalogueCore> CoreWithTwoPages(const testing::TempDir& dir,
                                                const common::Clock* clock) {
  auto core = OpenCore(dir.Sub("db"), false, clock);
  Stream s;
  for (const std::string code : {"420102-W001", "420102-W002"}) {
    s.Warehouse(code, "420102");
    s.Balance(code, "SH-0001", 5, 0);
    s.Quota(code, "SH-0001", 50);
    auto* b = s.Next().add_balances();
    b->set_warehouse("warehouses/" + code);
    b->set_item("FW-0001");
    b->set_on_hand(10);
    auto* lot = b->add_lots();
    lot->set_lot("L1");
    lot->set_expiry_date("2024-05-10");
    lot->set_on_hand(10);
  }
  EXPECT_THAT(core->Apply("county-1", s.Take()), testing::IsOk());
  return core;
}

template <typename Response>
std::string NextToken(const absl::StatusOr<Response>& page) {
  EXPECT_THAT(page, testing::IsOk());
  return page.ok() ? page->next_page_token() : "";
}

MATCHER(IsBadPageToken, "INVALID_ARGUMENT saying the page token is not valid") {
  return arg.code() == absl::StatusCode::kInvalidArgument &&
         absl::StartsWith(arg.message(), "page_token is not valid for this query");
}

MATCHER(IsTokenOfAnotherQuery, "INVALID_ARGUMENT saying the page token is of another query") {
  return arg.code() == absl::StatusCode::kInvalidArgument &&
         absl::StartsWith(arg.message(), "page_token belongs to another query");
}

// Tokens of each listing's form, for positions it would never hand out: the listings check the
// position inside a token too.
std::string StockToken(const std::string& prefix, const std::string& item,
                       const std::string& position) {
  common::PageQuery q("catalogue ListWarehouseStock");
  q.Add("region_prefix", prefix).Add("item", item).AddInt("skip_zero", false);
  return q.Token(position);
}
std::string ShortageToken(const std::string& prefix, const std::string& item,
                          const std::string& position) {
  common::PageQuery q("catalogue ListShortages");
  q.Add("region_prefix", prefix).Add("item", item);
  return q.Token(position);
}
std::string ExpiringToken(const std::string& prefix, const std::string& position) {
  common::PageQuery q("catalogue ListExpiringLots");
  q.Add("region_prefix", prefix).AddInt("within_days", 30);
  return q.Token(position);
}
std::string SearchToken(const stockpile::v1::SearchStockRequest& req, double longitude,
                        double latitude, const std::string& position) {
  common::PageQuery q("catalogue SearchStock");
  q.Add("item", req.item())
      .AddInt("min_available", req.min_available())
      .AddDouble("longitude", longitude)
      .AddDouble("latitude", latitude)
      .AddDouble("radius_km", req.radius_km())
      .Add("region_prefix", req.region_prefix());
  return q.Token(position);
}

// Every listing takes the tokens it hands out and refuses any other, as the levels do, instead
// of answering an empty page or starting again.
TEST(CatalogueCoreTest, ListingsRefuseAPageTokenTheyDidNotHandOut) {
  testing::TempDir dir;
  common::FakeClock clock(int64_t(*common::ParseDate("today", "2024-05-01")) * 86'400'000'000LL);
  auto core = CoreWithTwoPages(dir, &clock);

  stockpile::v1::ListWarehouseStockRequest stock;
  stock.set_item("SH-0001");
  stock.set_page_size(1);
  stock.set_page_token(NextToken(core->ListWarehouseStock(stock)));
  EXPECT_EQ(core->ListWarehouseStock(stock)->stock(0).warehouse(), "warehouses/420102-W002");
  stock.set_region_prefix("4201");  // positions outside the prefix, or not a warehouse code
  for (const std::string& bad :
       {std::string("zzz"), std::string("420102-W001"), StockToken("4201", "SH-0001", "43-W001"),
        StockToken("4201", "SH-0001", "420102")}) {
    stock.set_page_token(bad);
    EXPECT_THAT(core->ListWarehouseStock(stock).status(), IsBadPageToken()) << bad;
  }

  stockpile::v1::ListQuotaStatusRequest shortages;
  shortages.set_page_size(1);
  shortages.set_page_token(NextToken(core->ListShortages(shortages)));
  EXPECT_EQ(core->ListShortages(shortages)->entries(0).warehouse(), "warehouses/420102-W002");
  for (const char* bad : {"garbage", "420102-W001/NO-SUCH-ITEM", "420102-W001/", "/SH-0001"}) {
    shortages.set_page_token(ShortageToken("", "", bad));
    EXPECT_THAT(core->ListShortages(shortages).status(), IsBadPageToken()) << bad;
  }
  shortages.set_page_token("420102-W001/SH-0001");  // the form tokens had: not one any more
  EXPECT_THAT(core->ListShortages(shortages).status(), IsBadPageToken());
  shortages.set_item("FW-0001");  // the position names another item than the query asks
  shortages.set_page_token(ShortageToken("", "FW-0001", "420102-W001/SH-0001"));
  EXPECT_THAT(core->ListShortages(shortages).status(), IsBadPageToken());

  stockpile::v1::ListExpiringLotsRequest expiring;
  expiring.set_page_size(1);
  expiring.set_page_token(NextToken(core->ListExpiringLots(expiring)));
  EXPECT_EQ(core->ListExpiringLots(expiring)->lots(0).warehouse(), "warehouses/420102-W002");
  expiring.set_region_prefix("42");
  for (const char* bad : {"garbage", "420102-W001/FW-0001", "b43-W001/FW-0001"}) {
    expiring.set_page_token(ExpiringToken("42", bad));
    EXPECT_THAT(core->ListExpiringLots(expiring).status(), IsBadPageToken()) << bad;
  }
  expiring.set_page_token("b420102-W001/FW-0001");
  EXPECT_THAT(core->ListExpiringLots(expiring).status(), IsBadPageToken());

  stockpile::v1::SearchStockRequest search;
  search.set_item("SH-0001");
  search.set_min_available(1);
  search.mutable_point()->set_longitude(114.3);
  search.mutable_point()->set_latitude(30.6);
  for (const char* bad : {"-1:5", "nan:0", "inf:0", "1.5", "1.5:-2", "abc:1"}) {
    search.set_page_token(SearchToken(search, 114.3, 30.6, bad));
    EXPECT_THAT(core->SearchStock(search).status(), IsBadPageToken()) << bad;
    search.set_page_token(bad);
    EXPECT_THAT(core->SearchStock(search).status(), IsBadPageToken()) << bad;
  }
}

// Audit 30, F1: a token was the position only (a code, "{code}/{item}", a distance), so one
// reused with another item, prefix, skip_zero, window, or another search origin, item, minimum
// or radius went on from that position in the new query and silently left rows out. A search
// went on from a distance taken near another place and skipped the nearest stock.
TEST(CatalogueCoreTest, APageTokenIsRefusedByAnotherQuery) {
  testing::TempDir dir;
  common::FakeClock clock(int64_t(*common::ParseDate("today", "2024-05-01")) * 86'400'000'000LL);
  auto core = CoreWithTwoPages(dir, &clock);

  stockpile::v1::ListWarehouseStockRequest stock;
  stock.set_region_prefix("4201");
  stock.set_item("SH-0001");
  stock.set_page_size(1);
  const std::string stock_token = NextToken(core->ListWarehouseStock(stock));
  ASSERT_FALSE(stock_token.empty());
  std::vector<stockpile::v1::ListWarehouseStockRequest> other_stock(4, stock);
  other_stock[0].set_item("FW-0001");
  other_stock[1].set_region_prefix("42");
  other_stock[2].clear_region_prefix();
  other_stock[3].set_skip_zero(true);
  for (auto& other : other_stock) {
    other.set_page_token(stock_token);
    EXPECT_THAT(core->ListWarehouseStock(other).status(), IsTokenOfAnotherQuery())
        << other.ShortDebugString();
  }
  stock.set_page_size(5);  // another page size is the same query
  stock.set_page_token(stock_token);
  ASSERT_THAT(core->ListWarehouseStock(stock), testing::IsOk());

  stockpile::v1::ListQuotaStatusRequest shortages;
  shortages.set_region_prefix("4201");
  shortages.set_page_size(1);
  shortages.set_page_token(NextToken(core->ListShortages(shortages)));
  ASSERT_FALSE(shortages.page_token().empty());
  shortages.set_region_prefix("42");
  EXPECT_THAT(core->ListShortages(shortages).status(), IsTokenOfAnotherQuery());
  shortages.set_region_prefix("4201");
  shortages.set_item("SH-0001");
  EXPECT_THAT(core->ListShortages(shortages).status(), IsTokenOfAnotherQuery());

  stockpile::v1::ListExpiringLotsRequest expiring;
  expiring.set_within_days(365);
  expiring.set_page_size(1);
  expiring.set_page_token(NextToken(core->ListExpiringLots(expiring)));
  ASSERT_FALSE(expiring.page_token().empty());
  expiring.set_within_days(0);
  EXPECT_THAT(core->ListExpiringLots(expiring).status(), IsTokenOfAnotherQuery());
  expiring.clear_within_days();  // unset is 30 days: another window than 365
  EXPECT_THAT(core->ListExpiringLots(expiring).status(), IsTokenOfAnotherQuery());

  stockpile::v1::SearchStockRequest search;
  search.set_item("SH-0001");
  search.set_min_available(1);
  search.set_region_code("420102");
  search.set_page_size(1);
  const std::string search_token = NextToken(core->SearchStock(search));
  ASSERT_FALSE(search_token.empty());
  std::vector<stockpile::v1::SearchStockRequest> other_search(6, search);
  other_search[0].set_item("FW-0001");
  other_search[1].set_region_code("421002");
  other_search[2].mutable_point()->set_longitude(110.0);
  other_search[2].mutable_point()->set_latitude(30.0);
  other_search[3].set_min_available(3);
  other_search[4].set_radius_km(50);
  other_search[5].set_region_prefix("4201");
  for (auto& other : other_search) {
    other.set_page_token(search_token);
    EXPECT_THAT(core->SearchStock(other).status(), IsTokenOfAnotherQuery())
        << other.ShortDebugString();
  }

  // Another listing's token, and a token cut short when copied.
  stock.set_page_token(shortages.page_token());
  EXPECT_THAT(core->ListWarehouseStock(stock).status(), IsTokenOfAnotherQuery());
  stock.set_page_token(stock_token.substr(0, stock_token.size() - 2));
  EXPECT_THAT(core->ListWarehouseStock(stock).status(), IsBadPageToken());
}

// The same query, page by page at any page size, lists every row once, in the same order.
TEST(CatalogueCoreTest, PagingTheSameQueryGivesEveryRowOnce) {
  testing::TempDir dir;
  common::FakeClock clock(int64_t(*common::ParseDate("today", "2024-05-01")) * 86'400'000'000LL);
  auto core = OpenCore(dir.Sub("db"), false, &clock);
  Stream s;
  const std::vector<std::string> codes = {"420102-W001", "420102-W0010", "420102-W002",
                                          "420102-W1",   "420102-W10",   "420103-W001"};
  for (size_t i = 0; i < codes.size(); ++i) {
    s.Warehouse(codes[i], codes[i].substr(0, 6));
    s.Balance(codes[i], "SH-0001", int64_t(i) + 1, 0);
    s.Balance(codes[i], "BD-0001", 7, 0);
    s.Quota(codes[i], "SH-0001", 50);
    s.Quota(codes[i], "BD-0001", 50);
  }
  ASSERT_THAT(core->Apply("county-1", s.Take()), testing::IsOk());

  auto stock_rows = [&](stockpile::v1::ListWarehouseStockRequest req) {
    std::vector<std::string> out;
    for (int pages = 0; pages < 50; ++pages) {
      auto page = core->ListWarehouseStock(req);
      EXPECT_THAT(page, testing::IsOk());
      if (!page.ok()) break;
      for (const auto& w : page->stock()) out.push_back(w.warehouse());
      if (page->next_page_token().empty()) break;
      req.set_page_token(page->next_page_token());
    }
    return out;
  };
  auto shortage_rows = [&](stockpile::v1::ListQuotaStatusRequest req) {
    std::vector<std::string> out;
    for (int pages = 0; pages < 50; ++pages) {
      auto page = core->ListShortages(req);
      EXPECT_THAT(page, testing::IsOk());
      if (!page.ok()) break;
      for (const auto& e : page->entries()) out.push_back(e.warehouse() + " " + e.item());
      if (page->next_page_token().empty()) break;
      req.set_page_token(page->next_page_token());
    }
    return out;
  };
  auto search_rows = [&](stockpile::v1::SearchStockRequest req) {
    std::vector<std::string> out;
    for (int pages = 0; pages < 50; ++pages) {
      auto page = core->SearchStock(req);
      EXPECT_THAT(page, testing::IsOk());
      if (!page.ok()) break;
      for (const auto& h : page->hits()) out.push_back(h.stock().warehouse());
      if (page->next_page_token().empty()) break;
      req.set_page_token(page->next_page_token());
    }
    return out;
  };
  stockpile::v1::ListWarehouseStockRequest stock;
  stock.set_region_prefix("4201");
  stock.set_item("SH-0001");
  stockpile::v1::ListQuotaStatusRequest shortages;
  shortages.set_region_prefix("420102");
  stockpile::v1::SearchStockRequest search;
  search.set_item("SH-0001");
  search.set_min_available(2);
  search.set_region_code("420102");
  const auto every_stock = stock_rows(stock);
  EXPECT_EQ(every_stock.size(), codes.size());
  const auto every_shortage = shortage_rows(shortages);
  EXPECT_EQ(every_shortage.size(), 10u);
  search.set_page_size(100);
  const auto every_hit = search_rows(search);
  EXPECT_EQ(every_hit.size(), codes.size() - 1);
  for (int size = 1; size <= 4; ++size) {
    stock.set_page_size(size);
    EXPECT_EQ(stock_rows(stock), every_stock) << size;
    shortages.set_page_size(size);
    EXPECT_EQ(shortage_rows(shortages), every_shortage) << size;
    search.set_page_size(size);
    EXPECT_EQ(search_rows(search), every_hit) << size;
  }
}

// A region filter no region has (4021 typed for 4201) or an item the catalogue lacks is
// NOT_FOUND, as at the levels: a typo must not read as "no shortages" in an emergency.
TEST(CatalogueCoreTest, ListingsRefuseARegionOrItemThatDoesNotExist) {
  testing::TempDir dir;
  common::FakeClock clock(int64_t(*common::ParseDate("today", "2024-05-01")) * 86'400'000'000LL);
  auto core = CoreWithTwoPages(dir, &clock);
  auto not_found = [](const absl::Status& s, const std::string& what) {
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
    EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr(what));
  };
  stockpile::v1::ListWarehouseStockRequest stock;
  stock.set_item("SH-0001");
  stock.set_region_prefix("4021");
  not_found(core->ListWarehouseStock(stock).status(), "region 4021 is not in the reference data");
  stockpile::v1::ListQuotaStatusRequest shortages;
  shortages.set_region_prefix("4021");
  not_found(core->ListShortages(shortages).status(), "region 4021");
  stockpile::v1::ListExpiringLotsRequest expiring;
  expiring.set_region_prefix("99");
  not_found(core->ListExpiringLots(expiring).status(), "region 99");
  shortages.set_region_prefix("4201");
  EXPECT_THAT(core->ListShortages(shortages), testing::IsOk());
  shortages.set_item("XX-0001");
  not_found(core->ListShortages(shortages).status(), "item XX-0001 is not in the item catalogue");
  stock.set_region_prefix("");
  stock.set_item("XX-0001");
  not_found(core->ListWarehouseStock(stock).status(), "item XX-0001");
}

// Nearest-first search pages the same through the full scan and through the StockIndex.
class CatalogueSearchTest : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(ScanAndIndex, CatalogueSearchTest, ::testing::Bool());

TEST_P(CatalogueSearchTest, SearchReturnsNearestWithEnoughStockAndPages) {
  testing::TempDir dir;
  auto core = OpenCore(dir.Sub("db"), GetParam());
  Stream s;
  for (int i = 0; i < 5; ++i) {
    const std::string code = "420102-W00" + std::to_string(i);
    auto* w = s.Next().add_warehouses();
    w->set_code(code);
    w->set_name("warehouses/" + code);
    w->mutable_location()->set_longitude(114.0 + i);
    w->mutable_location()->set_latitude(30.0);
    s.Balance(code, "SH-0001", i == 2 ? 1 : 50, 0);
  }
  ASSERT_THAT(core->Apply("county-1", s.Take()), testing::IsOk());
  stockpile::v1::SearchStockRequest req;
  req.set_item("SH-0001");
  req.set_min_available(10);
  req.mutable_point()->set_longitude(114.0);
  req.mutable_point()->set_latitude(30.0);
  req.set_page_size(2);
  auto page1 = core->SearchStock(req);
  ASSERT_TRUE(page1.ok()) << page1.status();
  ASSERT_EQ(page1->hits_size(), 2);
  EXPECT_EQ(page1->hits(0).stock().warehouse(), "warehouses/420102-W000");
  EXPECT_EQ(page1->hits(1).stock().warehouse(), "warehouses/420102-W001");
  req.set_page_token(page1->next_page_token());
  auto page2 = core->SearchStock(req);
  ASSERT_TRUE(page2.ok()) << page2.status();
  ASSERT_EQ(page2->hits_size(), 2);
  EXPECT_EQ(page2->hits(0).stock().warehouse(), "warehouses/420102-W003");  // W002 has too few
  EXPECT_GT(page2->hits(0).distance_km(), page1->hits(1).distance_km());
}

// A closed warehouse's stock is still there (roll-ups count it) but nobody may plan from it:
// search used to offer it first. Reopened, it is found again.
TEST_P(CatalogueSearchTest, AClosedWarehouseIsNotFoundBySearch) {
  testing::TempDir dir;
  auto core = OpenCore(dir.Sub("db"), GetParam());
  auto warehouse = [](Stream& s, const std::string& code, stockpile::v1::WarehouseStatus status,
                      double longitude) {
    auto* w = s.Next().add_warehouses();
    w->set_code(code);
    w->set_name("warehouses/" + code);
    w->set_status(status);
    w->mutable_location()->set_longitude(longitude);
    w->mutable_location()->set_latitude(30.0);
  };
  Stream s;
  warehouse(s, "420102-W001", stockpile::v1::WAREHOUSE_STATUS_ACTIVE, 114.0);
  warehouse(s, "420102-W002", stockpile::v1::WAREHOUSE_STATUS_ACTIVE, 115.0);
  s.Balance("420102-W001", "SH-0001", 50, 0);
  s.Balance("420102-W002", "SH-0001", 50, 0);
  ASSERT_THAT(core->Apply("county-1", s.Take()), testing::IsOk());
  stockpile::v1::SearchStockRequest req;
  req.set_item("SH-0001");
  req.set_min_available(10);
  req.mutable_point()->set_longitude(114.0);
  req.mutable_point()->set_latitude(30.0);
  auto first = [&] {
    auto found = core->SearchStock(req);
    EXPECT_TRUE(found.ok()) << found.status();
    return found.ok() && found->hits_size() > 0 ? found->hits(0).stock().warehouse() : "";
  };
  EXPECT_EQ(first(), "warehouses/420102-W001");

  warehouse(s, "420102-W001", stockpile::v1::WAREHOUSE_STATUS_CLOSED, 114.0);
  ASSERT_THAT(core->Apply("county-1", s.Take()), testing::IsOk());
  EXPECT_EQ(first(), "warehouses/420102-W002");
  EXPECT_EQ(RollupOnHand(*core, "420102", "SH-0001"), 100);
  s.Balance("420102-W001", "SH-0001", 60, 0);  // stock moved at the closed one: still not found
  ASSERT_THAT(core->Apply("county-1", s.Take()), testing::IsOk());
  EXPECT_EQ(first(), "warehouses/420102-W002");

  warehouse(s, "420102-W001", stockpile::v1::WAREHOUSE_STATUS_ACTIVE, 114.0);
  ASSERT_THAT(core->Apply("county-1", s.Take()), testing::IsOk());
  EXPECT_EQ(first(), "warehouses/420102-W001");
}

}  // namespace
}  // namespace stockpile::catalogue
