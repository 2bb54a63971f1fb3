#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "services/level/proto_util.h"
#include "tests/testutil/status_matchers.h"
#include "tests/unit/level/level_test_env.h"

namespace stockpile::level::testing {
namespace {

using ::stockpile::testing::IsOk;
using ::stockpile::testing::StatusIs;
using namespace stockpile::v1;  // NOLINT
using Env = LevelTestEnv;

constexpr char kW[] = "warehouses/420102-W001";
constexpr char kW2[] = "warehouses/420103-W001";

class QueriesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(env_.CreateWarehouse("420102-W001").status(), IsOk());
    ASSERT_THAT(env_.CreateWarehouse("420103-W001").status(), IsOk());
  }
  // Every page of a movement listing, as the quantities moved.
  std::vector<int64_t> PagedQuantities(ListMovementsRequest req) {
    std::vector<int64_t> out;
    for (int pages = 0; pages < 10; ++pages) {
      absl::StatusOr<ListMovementsResponse> resp = env_.queries().ListMovements(req);
      EXPECT_THAT(resp.status(), IsOk());
      if (!resp.ok()) break;
      for (const auto& m : resp->movements()) out.push_back(m.quantity());
      if (resp->next_page_token().empty()) break;
      req.set_page_token(resp->next_page_token());
    }
    return out;
  }

  Env env_;
};

// The sweep releases a hold past its expiry only every --hold-sweep-interval-ms (up to 10
// minutes). Until then GetHold and ListHolds say it is expired, as it is (Ship refuses it); the
// stock it holds comes back when the sweep writes the release. Before, it read as active.
TEST_F(QueriesTest, HoldPastItsExpiryReadsExpiredBeforeTheSweep) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, "SH-0001", 10)).status(), IsOk());
  auto placed = env_.Apply(Env::Hold(kW, "SH-0001", 4, "short", 60));
  ASSERT_THAT(placed.status(), IsOk());
  const int64_t expiry = ToMicros(placed->hold().expire_time());
  ASSERT_THAT(env_.Apply(Env::Hold(kW, "SH-0001", 2, "long", 600)).status(), IsOk());
  auto state = [&](const std::string& id) {
    auto h = env_.queries().GetHold("holds/" + id);
    EXPECT_THAT(h.status(), IsOk());
    return h.ok() ? h->state() : HOLD_STATE_UNSPECIFIED;
  };
  auto listed = [&](HoldState filter) {
    ListHoldsRequest req;
    req.set_state(filter);
    std::vector<std::pair<std::string, HoldState>> out;
    absl::StatusOr<ListHoldsResponse> resp = env_.queries().ListHolds(req);
    EXPECT_THAT(resp.status(), IsOk());
    if (!resp.ok()) return out;
    for (const auto& h : resp->holds()) out.emplace_back(h.hold_id(), h.state());
    return out;
  };
  using Listed = std::vector<std::pair<std::string, HoldState>>;
  env_.clock().Set(expiry - 1);
  EXPECT_EQ(state("short"), HOLD_STATE_ACTIVE);
  env_.clock().Set(expiry);  // expire_time == now: no longer shippable
  EXPECT_EQ(state("short"), HOLD_STATE_EXPIRED);
  EXPECT_EQ(state("long"), HOLD_STATE_ACTIVE);
  EXPECT_EQ(listed(HOLD_STATE_ACTIVE), (Listed{{"long", HOLD_STATE_ACTIVE}}));
  EXPECT_EQ(listed(HOLD_STATE_EXPIRED), (Listed{{"short", HOLD_STATE_EXPIRED}}));
  EXPECT_EQ(listed(HOLD_STATE_UNSPECIFIED),
            (Listed{{"long", HOLD_STATE_ACTIVE}, {"short", HOLD_STATE_EXPIRED}}));
  EXPECT_EQ(env_.Balance(kW, "SH-0001").held(), 6);  // reads change nothing
  EXPECT_EQ(env_.core().SweepExpiredHolds(), 1);     // the sweep still writes the release
  EXPECT_EQ(env_.Balance(kW, "SH-0001").held(), 2);
  EXPECT_EQ(state("short"), HOLD_STATE_EXPIRED);
}

TEST_F(QueriesTest, ShortagesAndOverstockFollowQuotas) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, "SH-0001", 10)).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW2, "SH-0001", 500)).status(), IsOk());
  ASSERT_THAT(env_.SetQuota(kW, "SH-0001", 50, 200).status(), IsOk());
  ASSERT_THAT(env_.SetQuota(kW2, "SH-0001", 50, 200).status(), IsOk());
  ASSERT_THAT(env_.SetQuota(kW2, "BD-0001", 20, 0).status(), IsOk());
  EXPECT_THAT(env_.SetQuota(kW, "SH-0001", 50, 10).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ListQuotaStatusRequest req;
  req.set_region_prefix("4201");
  auto shortages = env_.queries().ListQuotaStatus(req, true);
  ASSERT_THAT(shortages.status(), IsOk());
  ASSERT_EQ(shortages->entries_size(), 2);
  EXPECT_EQ(shortages->entries(0).warehouse(), kW);
  EXPECT_EQ(shortages->entries(0).gap(), 40);
  EXPECT_EQ(shortages->entries(1).item(), "BD-0001");
  EXPECT_EQ(shortages->entries(1).gap(), 20);
  auto over = env_.queries().ListQuotaStatus(req, false);
  ASSERT_THAT(over.status(), IsOk());
  ASSERT_EQ(over->entries_size(), 1);
  EXPECT_EQ(over->entries(0).warehouse(), kW2);
  EXPECT_EQ(over->entries(0).gap(), 300);
}

// A reserve floor is kept with usable stock, as holds and plans count it: expired lots and held
// stock do not hide a shortage, and a lot that expires overnight opens one the next morning.
TEST_F(QueriesTest, ShortagesCountOnlyUsableStock) {
  // The clock: 2026-06-01 08:00 in China.
  ASSERT_THAT(env_.Apply(Env::Receive(kW, "FW-0001", 100, "2025-A", "2026-05-31")).status(),
              IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW, "FW-0001", 30, "2026-B", "2026-06-01")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW, "FW-0001", 25, "2027-C", "2027-06-01")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Hold(kW, "FW-0001", 5, "h1")).status(), IsOk());  // from 2026-B
  ASSERT_THAT(env_.SetQuota(kW, "FW-0001", 80, 0).status(), IsOk());
  ListQuotaStatusRequest req;
  req.set_item("FW-0001");
  auto shortages = env_.queries().ListQuotaStatus(req, true);
  ASSERT_THAT(shortages.status(), IsOk());
  ASSERT_EQ(shortages->entries_size(), 1);
  const QuotaStatus& today = shortages->entries(0);
  EXPECT_EQ(today.on_hand(), 155);
  EXPECT_EQ(today.usable(), 50);  // 25 of 2026-B (its last day) + 25 of 2027-C
  EXPECT_EQ(today.gap(), 30);

  env_.clock().Advance(int64_t{24} * 3600 * 1'000'000);  // 2026-B has expired overnight
  shortages = env_.queries().ListQuotaStatus(req, true);
  ASSERT_THAT(shortages.status(), IsOk());
  ASSERT_EQ(shortages->entries_size(), 1);
  EXPECT_EQ(shortages->entries(0).usable(), 25);
  EXPECT_EQ(shortages->entries(0).gap(), 55);
}

// A listing filtered by a warehouse that does not exist, an item not in the catalogue or a region
// this instance does not host says so: an empty list would read as "nothing there" to staff who
// mistyped a code or asked the wrong instance.
TEST_F(QueriesTest, ListingsRefuseFiltersThatNameNothingHere) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, "SH-0001", 4)).status(), IsOk());
  constexpr char kMissing[] = "warehouses/420102-W404";
  ListBalancesRequest balances;
  balances.set_warehouse(kMissing);
  EXPECT_THAT(env_.queries().ListBalances(balances).status(),
              StatusIs(absl::StatusCode::kNotFound, ::testing::HasSubstr("420102-W404")));
  balances.set_warehouse("");
  balances.set_item("NOPE-0001");
  EXPECT_THAT(env_.queries().ListBalances(balances).status(),
              StatusIs(absl::StatusCode::kNotFound, ::testing::HasSubstr("NOPE-0001")));
  balances.set_item("");
  balances.set_region_prefix("43");
  EXPECT_THAT(env_.queries().ListBalances(balances).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::HasSubstr("4201")));
  balances.set_region_prefix("42");  // spans what it hosts: fine
  EXPECT_EQ(env_.queries().ListBalances(balances)->balances_size(), 1);
  balances.set_region_prefix("420199");  // under what it hosts, but no county has this code
  EXPECT_THAT(env_.queries().ListBalances(balances).status(),
              StatusIs(absl::StatusCode::kNotFound,
                       ::testing::HasSubstr("region 420199 is not in the reference data")));
  ListQuotaStatusRequest typo;
  typo.set_region_prefix("420199");
  EXPECT_THAT(env_.queries().ListQuotaStatus(typo, true).status(),
              StatusIs(absl::StatusCode::kNotFound));

  ListMovementsRequest movements;
  movements.set_warehouse(kMissing);
  EXPECT_THAT(env_.queries().ListMovements(movements).status(),
              StatusIs(absl::StatusCode::kNotFound));
  ListHoldsRequest holds;
  holds.set_warehouse(kMissing);
  EXPECT_THAT(env_.queries().ListHolds(holds).status(), StatusIs(absl::StatusCode::kNotFound));
  ListQuotasRequest quotas;
  quotas.set_warehouse(kMissing);
  EXPECT_THAT(env_.queries().ListQuotas(quotas).status(), StatusIs(absl::StatusCode::kNotFound));
  ListQuotaStatusRequest shortages;
  shortages.set_item("NOPE-0001");
  EXPECT_THAT(env_.queries().ListQuotaStatus(shortages, true).status(),
              StatusIs(absl::StatusCode::kNotFound));
  ListWarehousesRequest warehouses;
  warehouses.set_region_prefix("4301");
  EXPECT_THAT(env_.queries().ListWarehouses(warehouses).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

// docs/stockctl.md's own example of a mistyped region, 4021 for 4201: no region has that code,
// so it is NOT_FOUND, not "ask the instance that hosts it" (which is for a real region hosted
// elsewhere, like 4301).
TEST_F(QueriesTest, ARegionCodeNoRegionHasIsNotFoundEvenOutsideWhatIsHosted) {
  for (const char* typo : {"4021", "400000"}) {
    ListWarehousesRequest warehouses;
    warehouses.set_region_prefix(typo);
    EXPECT_THAT(env_.queries().ListWarehouses(warehouses).status(),
                StatusIs(absl::StatusCode::kNotFound, ::testing::HasSubstr("no region has")))
        << typo;
    ListBalancesRequest balances;
    balances.set_region_prefix(typo);
    EXPECT_THAT(env_.queries().ListBalances(balances).status(),
                StatusIs(absl::StatusCode::kNotFound))
        << typo;
    ListExpiringLotsRequest expiring;
    expiring.set_region_prefix(typo);
    EXPECT_THAT(env_.queries().ListExpiringLots(expiring).status(),
                StatusIs(absl::StatusCode::kNotFound))
        << typo;
  }
  ListWarehousesRequest elsewhere;
  elsewhere.set_region_prefix("4301");
  EXPECT_THAT(env_.queries().ListWarehouses(elsewhere).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::HasSubstr("ask the")));
}

// A shard split: restarted with --regions=420102, the store still holds 420103's warehouse,
// which its new instance now owns and lists. Listings leave it out here, as reads refuse it.
TEST_F(QueriesTest, ListingsLeaveOutWarehousesNoLongerHosted) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, "SH-0001", 4)).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW2, "SH-0001", 7)).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Hold(kW2, "SH-0001", 2, "h2", 600)).status(), IsOk());
  ASSERT_THAT(env_.SetQuota(kW2, "SH-0001", 50, 0).status(), IsOk());
  env_.set_prefixes({"420102"});
  env_.Reopen();

  for (const std::string prefix : {"", "4201"}) {
    SCOPED_TRACE("region_prefix \"" + prefix + "\"");
    ListWarehousesRequest warehouses;
    warehouses.set_region_prefix(prefix);
    auto w = env_.queries().ListWarehouses(warehouses);
    ASSERT_THAT(w.status(), IsOk());
    ASSERT_EQ(w->warehouses_size(), 1);
    EXPECT_EQ(w->warehouses(0).name(), kW);
    ListBalancesRequest balances;
    balances.set_region_prefix(prefix);
    auto b = env_.queries().ListBalances(balances);
    ASSERT_THAT(b.status(), IsOk());
    ASSERT_EQ(b->balances_size(), 1);
    EXPECT_EQ(b->balances(0).warehouse(), kW);
    ListQuotasRequest quotas;
    quotas.set_region_prefix(prefix);
    EXPECT_EQ(env_.queries().ListQuotas(quotas)->quotas_size(), 0);
    ListQuotaStatusRequest shortages;
    shortages.set_region_prefix(prefix);
    EXPECT_EQ(env_.queries().ListQuotaStatus(shortages, true)->entries_size(), 0);
  }
  EXPECT_EQ(env_.queries().ListHolds(ListHoldsRequest())->holds_size(), 0);
  ListMovementsRequest by_item;
  by_item.set_item("SH-0001");
  auto moves = env_.queries().ListMovements(by_item);
  ASSERT_THAT(moves.status(), IsOk());
  ASSERT_EQ(moves->movements_size(), 1);
  EXPECT_EQ(moves->movements(0).warehouse(), kW);
}

TEST_F(QueriesTest, QuotasAndReservesListByWarehouseRegionAndItem) {
  ASSERT_THAT(env_.SetQuota(kW, "SH-0001", 5, 50).status(), IsOk());
  ASSERT_THAT(env_.SetQuota(kW, "BD-0001", 5, 50).status(), IsOk());
  ASSERT_THAT(env_.SetQuota(kW2, "SH-0001", 5, 50).status(), IsOk());
  ListQuotasRequest by_warehouse;
  by_warehouse.set_warehouse(kW);
  auto quotas = env_.queries().ListQuotas(by_warehouse);
  ASSERT_THAT(quotas.status(), IsOk());
  ASSERT_EQ(quotas->quotas_size(), 2);
  EXPECT_EQ(quotas->quotas(0).updated_by(), "tester");  // who set it last, for the audit
  ListQuotasRequest by_region_item;
  by_region_item.set_region_prefix("4201");
  by_region_item.set_item("SH-0001");
  EXPECT_EQ(env_.queries().ListQuotas(by_region_item)->quotas_size(), 2);
  ListQuotasRequest outside;
  outside.set_warehouse("warehouses/110101-W001");
  EXPECT_THAT(env_.queries().ListQuotas(outside).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  SetReserveRequest reserve;
  reserve.set_request_id("res-1");
  reserve.set_actor("tester");
  reserve.mutable_reserve()->set_warehouse(kW2);
  reserve.mutable_reserve()->set_item("PW-0001");
  reserve.mutable_reserve()->set_mode(RESERVE_MODE_CONTRACT);
  reserve.mutable_reserve()->set_quantity(12);
  reserve.mutable_reserve()->set_lead_time_hours(48);
  CommandResult r = Wait([&](CommandCallback done) { env_.core().SetReserve(reserve, done); });
  ASSERT_THAT(r.status, IsOk());
  ListReservesRequest reserves;
  reserves.set_region_prefix("420103");
  auto listed = env_.queries().ListReserves(reserves);
  ASSERT_THAT(listed.status(), IsOk());
  ASSERT_EQ(listed->reserves_size(), 1);
  EXPECT_EQ(listed->reserves(0).lead_time_hours(), 48);
  reserves.set_item("SH-0001");
  EXPECT_EQ(env_.queries().ListReserves(reserves)->reserves_size(), 0);
}

TEST_F(QueriesTest, ExpiringLotsWithinDays) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, "FW-0001", 5, "SOON", "2026-06-20")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW, "FW-0001", 5, "LATER", "2026-12-20")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW2, "MD-0001", 5, "GONE", "2026-05-01")).status(), IsOk());
  ListExpiringLotsRequest req;
  req.set_within_days(30);
  auto lots = env_.queries().ListExpiringLots(req);
  ASSERT_THAT(lots.status(), IsOk());
  ASSERT_EQ(lots->lots_size(), 2);
  EXPECT_EQ(lots->lots(0).lot(), "SOON");
  EXPECT_EQ(lots->lots(0).days_left(), 19);
  EXPECT_EQ(lots->lots(1).lot(), "GONE");
  EXPECT_LT(lots->lots(1).days_left(), 0);
}

// `expiring --within-days 0`: what expires today, and what has expired; not the 30-day list.
TEST_F(QueriesTest, ExpiringLotsWithinZeroDaysListsTodayAndExpiredOnly) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, "FW-0001", 5, "TODAY", "2026-06-01")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW, "FW-0001", 5, "SOON", "2026-06-20")).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW2, "MD-0001", 5, "GONE", "2026-05-01")).status(), IsOk());
  ListExpiringLotsRequest req;
  req.set_within_days(0);
  auto lots = env_.queries().ListExpiringLots(req);
  ASSERT_THAT(lots.status(), IsOk());
  ASSERT_EQ(lots->lots_size(), 2);
  EXPECT_EQ(lots->lots(0).lot(), "TODAY");
  EXPECT_EQ(lots->lots(0).days_left(), 0);
  EXPECT_EQ(lots->lots(1).lot(), "GONE");
  req.clear_within_days();  // unset: 30 days
  EXPECT_EQ(env_.queries().ListExpiringLots(req)->lots_size(), 3);
}

TEST_F(QueriesTest, BalanceAsOfPastTime) {
  const int64_t t0 = env_.clock().NowMicros();
  auto first = env_.Apply(Env::Receive(kW, "SH-0001", 10));
  ASSERT_THAT(first.status(), IsOk());
  env_.clock().Advance(3'600'000'000);
  const int64_t t1 = env_.clock().NowMicros();
  auto issued = env_.Apply(Env::Issue(kW, "SH-0001", 4));
  ASSERT_THAT(issued.status(), IsOk());
  env_.clock().Advance(3'600'000'000);
  ASSERT_THAT(env_.Apply(Env::Receive(kW, "SH-0001", 100)).status(), IsOk());
  GetBalanceRequest req;
  req.set_warehouse(kW);
  req.set_item("SH-0001");
  *req.mutable_as_of_time() = ToTimestamp(t0 - 1);
  EXPECT_EQ(env_.queries().GetBalance(req)->on_hand(), 0);
  EXPECT_EQ(env_.queries().GetBalance(req)->sequence(), 0u);
  *req.mutable_as_of_time() = ToTimestamp(t1 - 1);
  EXPECT_EQ(env_.queries().GetBalance(req)->on_hand(), 10);
  // The sequence is that of the newest movement by then, not today's.
  EXPECT_EQ(env_.queries().GetBalance(req)->sequence(), first->movements(0).sequence());
  *req.mutable_as_of_time() = ToTimestamp(t1 + 1);
  EXPECT_EQ(env_.queries().GetBalance(req)->on_hand(), 6);
  EXPECT_EQ(env_.queries().GetBalance(req)->sequence(), issued->movements(0).sequence());
  req.clear_as_of_time();
  EXPECT_EQ(env_.queries().GetBalance(req)->on_hand(), 106);
}

// Nothing was moved before 1970: a time before it finds no stock and bounds no history, and
// a time no Timestamp may hold is refused rather than wrapped around.
TEST_F(QueriesTest, TimesBefore1970AndOutOfRangeAreAnsweredPlainly) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, "SH-0001", 10)).status(), IsOk());
  env_.clock().Advance(1'000'000);
  ASSERT_THAT(env_.Apply(Env::Issue(kW, "SH-0001", 3)).status(), IsOk());
  google::protobuf::Timestamp before_1970;
  before_1970.set_seconds(-86'400);

  GetBalanceRequest balance;
  balance.set_warehouse(kW);
  balance.set_item("SH-0001");
  *balance.mutable_as_of_time() = before_1970;
  absl::StatusOr<Balance> then = env_.queries().GetBalance(balance);
  ASSERT_THAT(then.status(), IsOk());
  EXPECT_EQ(then->on_hand(), 0);
  EXPECT_EQ(then->lots_size(), 0);

  for (const char* warehouse : {kW, ""}) {
    ListMovementsRequest since;
    since.set_warehouse(warehouse);
    since.set_item("SH-0001");
    *since.mutable_start_time() = before_1970;
    EXPECT_EQ(PagedQuantities(since), (std::vector<int64_t>{10, -3})) << warehouse;
    ListMovementsRequest until = since;
    until.clear_start_time();
    *until.mutable_end_time() = before_1970;
    EXPECT_TRUE(PagedQuantities(until).empty()) << warehouse;
  }

  google::protobuf::Timestamp beyond;
  beyond.set_seconds(INT64_MAX / 1000);
  *balance.mutable_as_of_time() = beyond;
  EXPECT_THAT(env_.queries().GetBalance(balance).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ListMovementsRequest range;
  range.set_warehouse(kW);
  *range.mutable_end_time() = beyond;
  EXPECT_THAT(env_.queries().ListMovements(range).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(QueriesTest, MovementHistoryFiltersByItemTimeReferenceAndRequest) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, "SH-0001", 10), "r-a").status(), IsOk());
  env_.clock().Advance(1'000'000);
  ASSERT_THAT(env_.Apply(Env::Receive(kW, "BD-0001", 10), "r-b").status(), IsOk());
  env_.clock().Advance(1'000'000);
  ASSERT_THAT(env_.Apply(Env::Hold(kW, "SH-0001", 3, "hold-9"), "r-c").status(), IsOk());
  ListMovementsRequest req;
  req.set_warehouse(kW);
  auto all = env_.queries().ListMovements(req);
  ASSERT_THAT(all.status(), IsOk());
  EXPECT_EQ(all->movements_size(), 3);
  req.set_item("SH-0001");
  EXPECT_EQ(env_.queries().ListMovements(req)->movements_size(), 2);
  ListMovementsRequest by_ref;
  by_ref.set_reference("hold-9");
  auto refs = env_.queries().ListMovements(by_ref);
  ASSERT_EQ(refs->movements_size(), 1);
  EXPECT_EQ(refs->movements(0).type(), MOVEMENT_TYPE_HOLD);
  ListMovementsRequest by_req;
  by_req.set_request_id("r-b");
  auto reqs = env_.queries().ListMovements(by_req);
  ASSERT_EQ(reqs->movements_size(), 1);
  EXPECT_EQ(reqs->movements(0).item(), "BD-0001");
  ListMovementsRequest page;
  page.set_warehouse(kW);
  page.set_page_size(2);
  auto p1 = env_.queries().ListMovements(page);
  ASSERT_EQ(p1->movements_size(), 2);
  page.set_page_token(p1->next_page_token());
  auto p2 = env_.queries().ListMovements(page);
  ASSERT_EQ(p2->movements_size(), 1);
  EXPECT_EQ(p2->movements(0).type(), MOVEMENT_TYPE_HOLD);
  ListMovementsRequest none;
  EXPECT_THAT(env_.queries().ListMovements(none).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// A request's movements, asked for at one warehouse (as staff scoped to a region must name
// one): only that warehouse's, of a batch that moved stock at two.
TEST_F(QueriesTest, ARequestsMovementsAtOneWarehouseOfABatchSpanningTwo) {
  const std::string other = "warehouses/420103-W001";
  ASSERT_THAT(env_.Batch({Env::Receive(kW, "SH-0001", 10), Env::Receive(other, "SH-0001", 7),
                          Env::Receive(kW, "BD-0001", 4)},
                         "two-stores")
                  .status(),
              IsOk());
  ListMovementsRequest req;
  req.set_warehouse(kW);
  req.set_request_id("two-stores");
  auto here = env_.queries().ListMovements(req);
  ASSERT_THAT(here.status(), IsOk());
  ASSERT_EQ(here->movements_size(), 2);
  EXPECT_EQ(here->movements(0).quantity(), 10);
  EXPECT_EQ(here->movements(1).quantity(), 4);
  EXPECT_EQ(here->movements(1).warehouse(), kW);
  req.set_warehouse(other);
  ASSERT_EQ(env_.queries().ListMovements(req)->movements_size(), 1);
  req.set_request_id("no-such-request");
  EXPECT_EQ(env_.queries().ListMovements(req)->movements_size(), 0);
}

// Audit 30, F2: a request's movements came all in one reply whatever page_size asked (a batch
// may hold 1,000 operations), and any page_token was ignored. They page now like every listing.
TEST_F(QueriesTest, ARequestsMovementsComeAPageAtATime) {
  std::vector<Operation> ops;
  for (int i = 1; i <= 12; ++i) ops.push_back(Env::Receive(i % 3 == 0 ? kW2 : kW, "SH-0001", i));
  ASSERT_THAT(env_.Batch(ops, "twelve").status(), IsOk());
  ASSERT_THAT(env_.Batch({Env::Receive(kW, "SH-0001", 100)}, "another").status(), IsOk());
  ListMovementsRequest req;
  req.set_request_id("twelve");
  req.set_page_size(3);
  auto first = env_.queries().ListMovements(req);
  ASSERT_THAT(first.status(), IsOk());
  EXPECT_EQ(first->movements_size(), 3);
  EXPECT_FALSE(first->next_page_token().empty());
  EXPECT_THAT(PagedQuantities(req), ::testing::ElementsAre(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12));
  req.set_page_size(5);
  EXPECT_THAT(PagedQuantities(req), ::testing::ElementsAre(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12));
  req.set_warehouse(kW);  // a page counts the movements kept, not those passed over
  req.set_page_size(2);
  EXPECT_THAT(PagedQuantities(req), ::testing::ElementsAre(1, 2, 4, 5, 7, 8, 10, 11));
  req.set_page_size(1000);
  auto all = env_.queries().ListMovements(req);
  EXPECT_EQ(all->movements_size(), 8);
  EXPECT_EQ(all->next_page_token(), "");

  req.clear_warehouse();
  req.set_page_size(3);
  for (const char* bad : {"bogus", "MQ"}) {
    req.set_page_token(bad);
    EXPECT_THAT(env_.queries().ListMovements(req).status(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         ::testing::HasSubstr("page_token is not valid for this query")))
        << bad;
  }
  ListMovementsRequest other;  // another request's token
  other.set_request_id("another");
  other.set_page_token(first->next_page_token());
  EXPECT_THAT(env_.queries().ListMovements(other).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("page_token belongs to another query")));
}

// Movements are stored per warehouse × item; a warehouse's history still comes in time order
// across its items, page by page, without losing or repeating one, within the time range.
TEST_F(QueriesTest, WarehouseHistoryMergesItsItemsInTimeOrder) {
  const std::vector<std::string> items = {"SH-0001", "BD-0001", "SH-0001", "CL-0001",
                                          "BD-0001", "SH-0001", "CL-0001"};
  std::vector<int64_t> times;
  for (size_t i = 0; i < items.size(); ++i) {
    times.push_back(env_.clock().NowMicros());
    ASSERT_THAT(env_.Apply(Env::Receive(kW, items[i], static_cast<int64_t>(i) + 1)).status(),
                IsOk());
    env_.clock().Advance(1'000'000);
  }
  ASSERT_THAT(env_.Apply(Env::Receive(kW2, "SH-0001", 99)).status(), IsOk());  // another warehouse

  ListMovementsRequest page;  // the receipts at kW moved 1, 2, ... 7
  page.set_warehouse(kW);
  page.set_page_size(2);
  EXPECT_THAT(PagedQuantities(page), ::testing::ElementsAre(1, 2, 3, 4, 5, 6, 7));

  ListMovementsRequest range;
  range.set_warehouse(kW);
  *range.mutable_start_time() = ToTimestamp(times[2]);
  *range.mutable_end_time() = ToTimestamp(times[5]);
  EXPECT_THAT(PagedQuantities(range), ::testing::ElementsAre(3, 4, 5));

  ListMovementsRequest one_item;  // a warehouse × item reads its own key range
  one_item.set_warehouse(kW);
  one_item.set_item("SH-0001");
  one_item.set_page_size(1);
  EXPECT_THAT(PagedQuantities(one_item), ::testing::ElementsAre(1, 3, 6));

  ListMovementsRequest by_item;  // an item across warehouses, through the index
  by_item.set_item("SH-0001");
  EXPECT_THAT(PagedQuantities(by_item), ::testing::ElementsAre(1, 3, 6, 99));

  page.set_page_token("not-a-token");
  EXPECT_THAT(env_.queries().ListMovements(page).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// An item's history across warehouses and a transfer's movements come through the indexes in
// time and movement order, also when a page ends inside one command's movements.
TEST_F(QueriesTest, ItemAndReferenceHistoryPageInMovementOrder) {
  ASSERT_THAT(env_.Batch({Env::Receive(kW, "SH-0001", 1), Env::Receive(kW, "BD-0001", 2),
                          Env::Receive(kW2, "SH-0001", 3), Env::Receive(kW, "SH-0001", 4),
                          Env::Receive(kW2, "SH-0001", 5)})
                  .status(),
              IsOk());
  env_.clock().Advance(1'000'000);
  ASSERT_THAT(env_.Apply(Env::Receive(kW, "SH-0001", 6)).status(), IsOk());
  env_.clock().Advance(1'000'000);
  ASSERT_THAT(
      env_.Batch({Env::Hold(kW, "SH-0001", 7, "hold-7"), Env::Ship("hold-7", kW2)}).status(),
      IsOk());
  ListMovementsRequest by_item;
  by_item.set_item("SH-0001");
  by_item.set_page_size(2);
  const std::vector<int64_t> all = PagedQuantities(by_item);
  ASSERT_GE(all.size(), 5u);
  EXPECT_THAT(std::vector<int64_t>(all.begin(), all.begin() + 5),
              ::testing::ElementsAre(1, 3, 4, 5, 6));
  by_item.set_page_size(1000);
  EXPECT_EQ(PagedQuantities(by_item), all);

  ListMovementsRequest by_ref;
  by_ref.set_reference("hold-7");
  by_ref.set_page_size(1);
  ListMovementsResponse first = *env_.queries().ListMovements(by_ref);
  ASSERT_EQ(first.movements_size(), 1);
  EXPECT_EQ(first.movements(0).type(), MOVEMENT_TYPE_HOLD);
  by_ref.set_page_token(first.next_page_token());
  ListMovementsResponse second = *env_.queries().ListMovements(by_ref);
  ASSERT_EQ(second.movements_size(), 1);
  EXPECT_EQ(second.movements(0).type(), MOVEMENT_TYPE_SHIP);
}

// Audit 30, F3: a warehouse and a region prefix together listed the warehouse and dropped the
// prefix, even for a warehouse outside it. Refused: one or the other.
TEST_F(QueriesTest, AWarehouseAndARegionPrefixTogetherAreRefused) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW2, "SH-0001", 10)).status(), IsOk());
  ASSERT_THAT(env_.SetQuota(kW2, "SH-0001", 50, 0).status(), IsOk());
  const auto both =
      StatusIs(absl::StatusCode::kInvalidArgument,
               ::testing::HasSubstr("give warehouse or region_prefix, not both; got warehouse "
                                    "warehouses/420103-W001 and region_prefix 420102"));
  ListBalancesRequest balances;
  balances.set_warehouse(kW2);
  balances.set_region_prefix("420102");
  EXPECT_THAT(env_.queries().ListBalances(balances).status(), both);
  ListQuotasRequest quotas;
  quotas.set_warehouse(kW2);
  quotas.set_region_prefix("420102");
  EXPECT_THAT(env_.queries().ListQuotas(quotas).status(), both);
  ListReservesRequest reserves;
  reserves.set_warehouse(kW2);
  reserves.set_region_prefix("420102");
  EXPECT_THAT(env_.queries().ListReserves(reserves).status(), both);
  balances.clear_region_prefix();  // either alone lists as before
  EXPECT_EQ(env_.queries().ListBalances(balances)->balances_size(), 1);
  quotas.clear_warehouse();
  quotas.set_region_prefix("420103");
  EXPECT_EQ(env_.queries().ListQuotas(quotas)->quotas_size(), 1);
}

// Every page of a listing, as one string per row (`row` adds a response's rows to `out`).
template <typename Request, typename List, typename Rows>
std::vector<std::string> AllPages(Request req, List list, Rows rows) {
  std::vector<std::string> out;
  for (int pages = 0; pages < 100; ++pages) {
    auto resp = list(req);
    EXPECT_THAT(resp.status(), IsOk());
    if (!resp.ok()) break;
    rows(*resp, &out);
    if (resp->next_page_token().empty()) break;
    req.set_page_token(resp->next_page_token());
  }
  return out;
}

// Audit 30, F1: a token carried the last key only, so one reused with another item, a wider
// prefix, skip_zero, another state or by another listing went on from that key in the new query
// and silently left rows out; a token cut short when copied repeated rows. Both are refused now.
TEST_F(QueriesTest, APageTokenIsRefusedByAnotherQuery) {
  for (const char* code : {"420102-W002", "420102-W003"}) {
    ASSERT_THAT(env_.CreateWarehouse(code).status(), IsOk());
  }
  const std::vector<std::string> all = {kW, "warehouses/420102-W002", "warehouses/420102-W003",
                                        kW2};
  for (const std::string& w : all) {
    ASSERT_THAT(env_.Apply(Env::Receive(w, "SH-0001", 10)).status(), IsOk());
    ASSERT_THAT(env_.Apply(Env::Receive(w, "BD-0001", 10)).status(), IsOk());
    ASSERT_THAT(env_.SetQuota(w, "SH-0001", 50, 0).status(), IsOk());
    ASSERT_THAT(env_.Apply(Env::Hold(w, "SH-0001", 1, "hold-" + w.substr(11))).status(), IsOk());
  }
  ASSERT_THAT(env_.Apply(Env::Release("hold-420102-W001")).status(), IsOk());
  const auto another_query = StatusIs(absl::StatusCode::kInvalidArgument,
                                      ::testing::HasSubstr("page_token belongs to another query"));

  ListBalancesRequest sh;
  sh.set_region_prefix("4201");
  sh.set_item("SH-0001");
  sh.set_page_size(1);
  const std::string token = env_.queries().ListBalances(sh)->next_page_token();
  ASSERT_FALSE(token.empty());
  std::vector<ListBalancesRequest> others(6, sh);
  others[0].set_item("BD-0001");
  others[1].clear_item();
  others[2].set_region_prefix("42");
  others[3].clear_region_prefix();
  others[4].set_skip_zero(true);
  others[5].clear_region_prefix();
  others[5].set_warehouse("warehouses/420102-W002");
  for (ListBalancesRequest& other : others) {
    other.set_page_token(token);
    EXPECT_THAT(env_.queries().ListBalances(other).status(), another_query)
        << other.ShortDebugString();
  }
  sh.set_page_size(3);  // the same query with another page size goes on
  sh.set_page_token(token);
  EXPECT_EQ(env_.queries().ListBalances(sh)->balances(0).warehouse(), "warehouses/420102-W002");

  // A token cut short as a terminal copy may lose its end: refused, never a repeated page.
  for (size_t cut = 1; cut <= 3; ++cut) {
    sh.set_page_token(token.substr(0, token.size() - cut));
    EXPECT_THAT(env_.queries().ListBalances(sh).status(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         ::testing::HasSubstr("page_token is not valid for this query")));
  }

  // Another listing's token over the same keys (same filters, same column family).
  ListWarehousesRequest warehouses;
  warehouses.set_region_prefix("4201");
  warehouses.set_page_size(1);
  ListBalancesRequest balances;
  balances.set_region_prefix("4201");
  balances.set_page_token(env_.queries().ListWarehouses(warehouses)->next_page_token());
  EXPECT_THAT(env_.queries().ListBalances(balances).status(), another_query);
  ListQuotasRequest quotas;
  quotas.set_region_prefix("4201");
  quotas.set_page_size(1);
  ListReservesRequest reserves;
  reserves.set_region_prefix("4201");
  reserves.set_page_token(env_.queries().ListQuotas(quotas)->next_page_token());
  EXPECT_THAT(env_.queries().ListReserves(reserves).status(), another_query);
  ListQuotaStatusRequest shortages;
  shortages.set_region_prefix("4201");
  shortages.set_page_size(1);
  shortages.set_page_token(env_.queries().ListQuotaStatus(shortages, true)->next_page_token());
  EXPECT_THAT(env_.queries().ListQuotaStatus(shortages, false).status(), another_query);
  shortages.set_item("SH-0001");
  EXPECT_THAT(env_.queries().ListQuotaStatus(shortages, true).status(), another_query);

  ListHoldsRequest holds;
  holds.set_page_size(1);
  holds.set_page_token(env_.queries().ListHolds(holds)->next_page_token());
  ASSERT_FALSE(holds.page_token().empty());
  holds.set_state(HOLD_STATE_RELEASED);
  EXPECT_THAT(env_.queries().ListHolds(holds).status(), another_query);

  ListMovementsRequest movements;
  movements.set_item("SH-0001");
  movements.set_page_size(1);
  movements.set_page_token(env_.queries().ListMovements(movements)->next_page_token());
  ASSERT_FALSE(movements.page_token().empty());
  ListMovementsRequest by_ref = movements;
  by_ref.set_reference("hold-420102-W002");
  EXPECT_THAT(env_.queries().ListMovements(by_ref).status(), another_query);
  ListMovementsRequest later = movements;
  *later.mutable_start_time() = ToTimestamp(env_.clock().NowMicros() - 1);
  EXPECT_THAT(env_.queries().ListMovements(later).status(), another_query);

  ListExpiringLotsRequest expiring;
  expiring.set_region_prefix("4201");
  expiring.set_within_days(3650);
  expiring.set_page_token(balances.page_token());
  EXPECT_THAT(env_.queries().ListExpiringLots(expiring).status(), another_query);
}

// The same query, page by page at any page size, gives every row exactly once, in order.
TEST_F(QueriesTest, PagingTheSameQueryGivesEveryRowOnce) {
  for (const char* code : {"420102-W002", "420102-W0010", "420102-W1"}) {
    ASSERT_THAT(env_.CreateWarehouse(code).status(), IsOk());
  }
  for (const char* w :
       {kW, "warehouses/420102-W002", "warehouses/420102-W0010", "warehouses/420102-W1", kW2}) {
    for (const char* item : {"SH-0001", "BD-0001", "CL-0001"}) {
      ASSERT_THAT(env_.Apply(Env::Receive(w, item, 3)).status(), IsOk());
      ASSERT_THAT(env_.SetQuota(w, item, 50, 0).status(), IsOk());
    }
  }
  auto balances = [&](const ListBalancesRequest& r) { return env_.queries().ListBalances(r); };
  auto balance_rows = [](const ListBalancesResponse& resp, std::vector<std::string>* out) {
    for (const auto& b : resp.balances()) out->push_back(b.warehouse() + " " + b.item());
  };
  auto movements = [&](const ListMovementsRequest& r) { return env_.queries().ListMovements(r); };
  auto movement_rows = [](const ListMovementsResponse& resp, std::vector<std::string>* out) {
    for (const auto& m : resp.movements()) out->push_back(absl::StrCat(m.sequence()));
  };
  auto shortages = [&](const ListQuotaStatusRequest& r) {
    return env_.queries().ListQuotaStatus(r, true);
  };
  auto shortage_rows = [](const ListQuotaStatusResponse& resp, std::vector<std::string>* out) {
    for (const auto& e : resp.entries()) out->push_back(e.warehouse() + " " + e.item());
  };
  ListBalancesRequest b;
  b.set_region_prefix("4201");
  b.set_page_size(1000);
  const std::vector<std::string> every_balance = AllPages(b, balances, balance_rows);
  ASSERT_EQ(every_balance.size(), 15u);
  b.set_item("BD-0001");
  const std::vector<std::string> bd_balances = AllPages(b, balances, balance_rows);
  ASSERT_EQ(bd_balances.size(), 5u);
  ListMovementsRequest m;
  m.set_item("SH-0001");
  m.set_page_size(1000);
  const std::vector<std::string> sh_movements = AllPages(m, movements, movement_rows);
  ASSERT_EQ(sh_movements.size(), 5u);
  ListQuotaStatusRequest q;
  q.set_region_prefix("420102");
  q.set_page_size(1000);
  const std::vector<std::string> every_shortage = AllPages(q, shortages, shortage_rows);
  ASSERT_EQ(every_shortage.size(), 12u);
  for (int size = 1; size <= 4; ++size) {
    b.clear_item();
    b.set_page_size(size);
    EXPECT_EQ(AllPages(b, balances, balance_rows), every_balance) << size;
    b.set_item("BD-0001");
    EXPECT_EQ(AllPages(b, balances, balance_rows), bd_balances) << size;
    m.set_page_size(size);
    EXPECT_EQ(AllPages(m, movements, movement_rows), sh_movements) << size;
    q.set_page_size(size);
    EXPECT_EQ(AllPages(q, shortages, shortage_rows), every_shortage) << size;
  }
}

TEST_F(QueriesTest, ChangeStreamIsDenseAndCarriesNewState) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, "SH-0001", 10)).status(), IsOk());
  EXPECT_THAT(env_.Apply(Env::Issue(kW, "SH-0001", 99)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_THAT(env_.Apply(Env::Issue(kW, "SH-0001", 3)).status(), IsOk());
  std::vector<ChangeEntry> entries;
  ASSERT_THAT(env_.queries().ReadChanges(0, 100, 1 << 20, &entries), IsOk());
  ASSERT_EQ(entries.size(), 4u);
  for (size_t i = 0; i < entries.size(); ++i) EXPECT_EQ(entries[i].sequence(), i + 1);
  EXPECT_EQ(entries[0].warehouses_size(), 1);
  ASSERT_EQ(entries[3].balances_size(), 1);
  EXPECT_EQ(entries[3].balances(0).on_hand(), 7);
  std::vector<ChangeEntry> tail;
  ASSERT_THAT(env_.queries().ReadChanges(3, 100, 1 << 20, &tail), IsOk());
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(tail[0].sequence(), 4u);
}

TEST_F(QueriesTest, ListBalancesFiltersAndPages) {
  ASSERT_THAT(env_.Apply(Env::Receive(kW, "SH-0001", 10)).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW, "BD-0001", 10)).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Receive(kW2, "SH-0001", 10)).status(), IsOk());
  ASSERT_THAT(env_.Apply(Env::Issue(kW2, "SH-0001", 10)).status(), IsOk());
  ListBalancesRequest req;
  req.set_region_prefix("4201");
  EXPECT_EQ(env_.queries().ListBalances(req)->balances_size(), 3);
  req.set_skip_zero(true);
  EXPECT_EQ(env_.queries().ListBalances(req)->balances_size(), 2);
  req.set_item("SH-0001");
  EXPECT_EQ(env_.queries().ListBalances(req)->balances_size(), 1);
  ListBalancesRequest one;
  one.set_warehouse(kW);
  one.set_page_size(1);
  auto p1 = env_.queries().ListBalances(one);
  ASSERT_EQ(p1->balances_size(), 1);
  one.set_page_token(p1->next_page_token());
  auto p2 = env_.queries().ListBalances(one);
  ASSERT_EQ(p2->balances_size(), 1);
  EXPECT_NE(p1->balances(0).item(), p2->balances(0).item());
}

}  // namespace
}  // namespace stockpile::level::testing
