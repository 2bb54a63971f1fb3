// Randomized test of the conservation invariant: whatever sequence of operations is applied,
// accepted or refused, after each one
//   on_hand + in_transit = received - issued + adjusted - lost (+ transferred_in - delivered_out)
// holds per item, the stored balances add up to the totals, and no lot is ever negative.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "tests/testutil/status_matchers.h"
#include "tests/unit/level/level_test_env.h"

namespace stockpile::level::testing {
namespace {

using ::stockpile::testing::IsOk;
using namespace stockpile::v1;  // NOLINT
using Env = LevelTestEnv;

const std::vector<std::string> kWarehouses = {"warehouses/420102-W001", "warehouses/420102-W002",
                                              "warehouses/420103-W001", "warehouses/420104-W001"};
const std::vector<std::string> kItems = {"SH-0001", "FW-0001", "MD-0002"};
const std::vector<std::string> kExpiries = {"2026-05-20", "2026-07-01", "2026-09-15", "2027-03-01"};

class Fuzzer {
 public:
  Fuzzer(Env& env, uint32_t seed) : env_(env), rng_(seed) {}

  Operation Next() {
    switch (Pick(10)) {
      case 0:
      case 1:
      case 2:
        return Receive();
      case 3:
      case 4:
        return Env::Issue(Any(kWarehouses), Any(kItems), Quantity(), Pick(4) == 0 ? Lot() : "");
      case 5:
        return Env::Hold(Any(kWarehouses), Any(kItems), Quantity(), absl::StrCat("h", ++holds_),
                         Pick(3) == 0 ? 60 : 0);
      case 6:
        return Env::Release(absl::StrCat("h", 1 + Pick(holds_ + 1)));
      case 7:
        return Env::Ship(absl::StrCat("h", 1 + Pick(holds_ + 1)), Any(kWarehouses));
      case 8:
        return ReceiveTransfer();
      default:
        return Env::Count(Any(kWarehouses), Any(kItems), Lot(), Pick(60), "count");
    }
  }

  int Pick(int n) { return std::uniform_int_distribution<int>(0, std::max(0, n - 1))(rng_); }

 private:
  template <typename T>
  const T& Any(const std::vector<T>& v) {
    return v[Pick(static_cast<int>(v.size()))];
  }
  int64_t Quantity() { return Pick(20) == 0 ? -Pick(5) : 1 + Pick(40); }
  std::string Lot() { return absl::StrCat("L", Pick(4)); }

  Operation Receive() {
    const std::string& item = Any(kItems);
    const bool expires = item != "SH-0001";
    const int lot = Pick(4);
    return Env::Receive(Any(kWarehouses), item, Quantity(), expires ? absl::StrCat("L", lot) : "",
                        expires ? kExpiries[lot] : "");
  }

  Operation ReceiveTransfer() {
    const std::string hold_id = absl::StrCat("h", 1 + Pick(holds_ + 1));
    auto hold = env_.queries().GetHold("holds/" + hold_id);
    Operation op;
    auto* r = op.mutable_receive_transfer();
    r->set_hold_id(hold_id);
    r->set_warehouse(Any(kWarehouses));
    if (!hold.ok()) {
      r->set_source_warehouse(Any(kWarehouses));
      r->set_item(Any(kItems));
      r->add_lots()->set_lot("L1");
      return op;
    }
    r->set_source_warehouse(hold->warehouse());
    r->set_item(hold->item());
    if (!hold->destination().empty()) r->set_warehouse(hold->destination());
    for (const auto& hl : hold->lots()) {
      auto* l = r->add_lots();
      l->set_lot(hl.lot());
      l->set_received(hl.quantity() - Pick(3));
    }
    return op;
  }

  Env& env_;
  std::mt19937 rng_;
  int holds_ = 0;
};

void ExpectConserved(Env& env, int step) {
  std::map<std::string, Balance> sums;
  ListBalancesRequest req;
  req.set_page_size(1000);
  auto balances = env.queries().ListBalances(req);
  ASSERT_THAT(balances.status(), IsOk());
  for (const auto& b : balances->balances()) {
    auto& s = sums[b.item()];
    s.set_on_hand(s.on_hand() + b.on_hand());
    s.set_held(s.held() + b.held());
    s.set_in_transit(s.in_transit() + b.in_transit());
    ASSERT_GE(b.in_transit(), 0) << "step " << step;
    for (const auto& lot : b.lots()) {
      ASSERT_GE(lot.on_hand(), 0) << "step " << step << " " << b.ShortDebugString();
      ASSERT_GE(lot.held(), 0) << "step " << step << " " << b.ShortDebugString();
      ASSERT_GE(lot.available(), 0) << "step " << step << " " << b.ShortDebugString();
    }
  }
  for (const auto& t : env.core().Totals()) {
    ASSERT_EQ(t.on_hand() + t.in_transit(), t.received() - t.issued() + t.adjusted() - t.lost() +
                                                t.transferred_in() - t.delivered_out())
        << "step " << step << " " << t.ShortDebugString();
    ASSERT_EQ(t.on_hand(), sums[t.item()].on_hand()) << "step " << step;
    ASSERT_EQ(t.held(), sums[t.item()].held()) << "step " << step;
    ASSERT_EQ(t.in_transit(), sums[t.item()].in_transit()) << "step " << step;
  }
}

TEST(LedgerPropertyTest, ConservationHoldsAfterEveryRandomOperation) {
  Env env;
  for (const auto& w : kWarehouses) ASSERT_THAT(env.CreateWarehouse(w.substr(11)).status(), IsOk());
  Fuzzer fuzz(env, 20261125);
  int accepted = 0;
  for (int step = 0; step < 3000; ++step) {
    if (fuzz.Pick(3) == 0) {
      std::vector<Operation> batch;
      for (int i = 0, n = 1 + fuzz.Pick(8); i < n; ++i) batch.push_back(fuzz.Next());
      accepted += env.Batch(batch).ok();
    } else {
      accepted += env.Apply(fuzz.Next()).ok();
    }
    if (fuzz.Pick(50) == 0) {
      env.clock().Advance(120'000'000);  // lets short holds expire
      env.core().SweepExpiredHolds();
    }
    ExpectConserved(env, step);
    if (HasFatalFailure()) return;
  }
  // Enough of the operations must have been accepted for the test to mean something.
  EXPECT_GT(accepted, 1000);
  env.Reopen();
  ExpectConserved(env, -1);
}

}  // namespace
}  // namespace stockpile::level::testing
