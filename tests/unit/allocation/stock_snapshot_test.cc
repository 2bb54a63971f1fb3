#include "services/catalogue/allocation/stock_snapshot.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

namespace stockpile::catalogue::allocation {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// What one callback saw, copied out: code, lots (name, expiry, available), floor, reserves.
struct Seen {
  std::string code;
  std::vector<std::tuple<std::string, int32_t, int64_t>> lots;
  int64_t floor, contract, capacity;
  int32_t contract_lead, capacity_lead;
};

std::vector<Seen> Holders(const StockSnapshot& s, const std::string& item,
                          const std::string& prefix) {
  StockSnapshot::Reader r(s);
  std::vector<Seen> out;
  r.ForEachHolder(item, prefix, [&](const Candidate& c) {
    Seen seen{c.place->code,
              {},
              c.stock->floor,
              c.stock->contract,
              c.stock->capacity,
              c.stock->contract_lead_hours,
              c.stock->capacity_lead_hours};
    for (const Lot& l : c.stock->lots) {
      seen.lots.emplace_back(r.LotName(l.lot_id), l.expiry_day, l.available);
    }
    out.push_back(std::move(seen));
  });
  return out;
}

std::vector<std::string> CodesExcept(const StockSnapshot& s, const std::string& item,
                                     const std::string& prefix, const std::string& except) {
  StockSnapshot::Reader r(s);
  std::vector<std::string> out;
  r.ForEachHolderExcept(item, prefix, except,
                        [&](const Candidate& c) { out.push_back(c.place->code); });
  return out;
}

std::vector<std::string> Codes(const std::vector<Seen>& seen) {
  std::vector<std::string> out;
  for (const Seen& s : seen) out.push_back(s.code);
  return out;
}

std::vector<std::string> ReserveCodes(const StockSnapshot& s, const std::string& item) {
  std::vector<std::string> out;
  s.ForEachReserve(item, [&](const Candidate& c) { out.push_back(c.place->code); });
  return out;
}

TEST(StockSnapshotTest, HoldersComeInCodeStringOrderUnderAPrefix) {
  StockSnapshot s(nullptr);
  // Regions of different lengths and warehouse numbers of different widths: string order puts
  // "4201-W10" before "4201-W2" and "42-W1" before "4201-...".
  std::vector<std::string> codes = {"4201-W2",      "420101-W3",       "42-W1",
                                    "4201-W10",     "420101001001-W1", "43-W1",
                                    "4202-W000001", "41-W999999",      "4201-W1"};
  for (const std::string& c : codes) s.SetLots(c, "SH-0001", {LotStock{"DEFAULT", kNoExpiry, 5}});
  std::vector<std::string> want;
  for (const std::string& c : codes) {
    if (c.rfind("42", 0) == 0) want.push_back(c);
  }
  std::sort(want.begin(), want.end());
  EXPECT_EQ(Codes(Holders(s, "SH-0001", "42")), want);
  EXPECT_THAT(Codes(Holders(s, "SH-0001", "4201")),
              ElementsAre("4201-W1", "4201-W10", "4201-W2", "420101-W3", "420101001001-W1"));
  EXPECT_THAT(Codes(Holders(s, "SH-0001", "4203")), IsEmpty());
  EXPECT_EQ(Codes(Holders(s, "SH-0001", "")).size(), codes.size());
  EXPECT_THAT(Codes(Holders(s, "SH-0002", "42")), IsEmpty());
}

TEST(StockSnapshotTest, HoldersUnderAPrefixCanLeaveOutAnInnerPrefix) {
  StockSnapshot s(nullptr);
  for (const char* c : {"4201-W1", "42-W1", "420101-W3", "420101001001-W1", "420102-W1", "4202-W1",
                        "43-W1", "4201-W2"}) {
    s.SetLots(c, "SH-0001", {LotStock{"DEFAULT", kNoExpiry, 5}});
  }
  EXPECT_THAT(CodesExcept(s, "SH-0001", "42", "4201"), ElementsAre("42-W1", "4202-W1"));
  EXPECT_THAT(CodesExcept(s, "SH-0001", "4201", "420101"),
              ElementsAre("4201-W1", "4201-W2", "420102-W1"));
  EXPECT_THAT(CodesExcept(s, "SH-0001", "4201", ""),
              ElementsAre("4201-W1", "4201-W2", "420101-W3", "420101001001-W1", "420102-W1"));
  EXPECT_THAT(CodesExcept(s, "SH-0001", "4201", "43"),  // outside the prefix: nothing left out
              ElementsAre("4201-W1", "4201-W2", "420101-W3", "420101001001-W1", "420102-W1"));
  EXPECT_THAT(CodesExcept(s, "SH-0001", "420101", "4201"), IsEmpty());  // all of it inside
  EXPECT_THAT(CodesExcept(s, "SH-0001", "", "42"), ElementsAre("43-W1"));
}

TEST(StockSnapshotTest, LotsKeepNamesEarliestExpiryFirstAndDropEmptyOnes) {
  StockSnapshot s(nullptr);
  s.SetLots("4201-W1", "SH-0001",
            {LotStock{"LATE", 200, 3}, LotStock{"GONE", 50, 0}, LotStock{"B", 100, 2},
             LotStock{"A", 100, 1}, LotStock{"NEG", 10, -4}, LotStock{"DEFAULT", kNoExpiry, 9}});
  s.SetLots("4201-W2", "SH-0001", {LotStock{"B", 7, 4}});
  auto seen = Holders(s, "SH-0001", "4201");
  ASSERT_EQ(seen.size(), 2u);
  using L = std::tuple<std::string, int32_t, int64_t>;
  EXPECT_THAT(seen[0].lots, ElementsAre(L{"A", 100, 1}, L{"B", 100, 2}, L{"LATE", 200, 3},
                                        L{"DEFAULT", kNoExpiry, 9}));
  EXPECT_THAT(seen[1].lots, ElementsAre(L{"B", 7, 4}));
  // Replacing the lots replaces them; no positive lot left means no holder.
  s.SetLots("4201-W1", "SH-0001", {LotStock{"C", 5, 6}});
  EXPECT_THAT(Holders(s, "SH-0001", "4201-W1")[0].lots, ElementsAre(L{"C", 5, 6}));
  s.SetLots("4201-W1", "SH-0001", {LotStock{"C", 5, 0}});
  EXPECT_THAT(Codes(Holders(s, "SH-0001", "4201")), ElementsAre("4201-W2"));
  EXPECT_EQ(s.entry_count(), 1u);
}

TEST(StockSnapshotTest, FloorAndReservesTravelWithTheirBalance) {
  StockSnapshot s(nullptr);
  s.SetLots("4201-W1", "SH-0001", {LotStock{"DEFAULT", kNoExpiry, 10}});
  s.SetLots("4201-W2", "SH-0001", {LotStock{"DEFAULT", kNoExpiry, 10}});
  s.SetFloor("4201-W1", "SH-0001", 4);
  s.SetFloor("4201-W1", "SH-0002", 8);  // another item: not seen under SH-0001
  s.SetReserve("4201-W9", "SH-0001", stockpile::v1::RESERVE_MODE_CONTRACT, 50, 24);
  s.SetReserve("4201-W1", "SH-0001", stockpile::v1::RESERVE_MODE_CAPACITY, 30, 72);

  auto seen = Holders(s, "SH-0001", "4201");
  ASSERT_EQ(seen.size(), 2u);  // W9 has a reserve but holds nothing: not a holder
  EXPECT_EQ(seen[0].floor, 4);
  EXPECT_EQ(seen[0].capacity, 30);
  EXPECT_EQ(seen[0].capacity_lead, 72);
  EXPECT_EQ(seen[1].floor, 0);
  EXPECT_EQ(seen[1].capacity, 0);
  EXPECT_THAT(ReserveCodes(s, "SH-0001"), ElementsAre("4201-W1", "4201-W9"));
  s.ForEachReserve("SH-0001", [](const Candidate& c) {
    if (c.place->code == "4201-W9") {
      EXPECT_EQ(c.stock->contract, 50);
      EXPECT_EQ(c.stock->contract_lead_hours, 24);
      EXPECT_TRUE(c.stock->lots.empty());
    } else {
      EXPECT_EQ(c.stock->lots.size(), 1u);
    }
  });
  EXPECT_EQ(s.entry_count(), 4u);  // W1, W2, W9 × SH-0001 and W1 × SH-0002

  // A zero quantity withdraws the reserve; a zero floor clears the floor.
  s.SetReserve("4201-W9", "SH-0001", stockpile::v1::RESERVE_MODE_CONTRACT, 0, 24);
  s.SetFloor("4201-W1", "SH-0001", 0);
  EXPECT_THAT(ReserveCodes(s, "SH-0001"), ElementsAre("4201-W1"));
  EXPECT_EQ(Holders(s, "SH-0001", "4201-W1")[0].floor, 0);
  EXPECT_EQ(s.entry_count(), 3u);
  // The floor outlives the lots: once the warehouse holds stock again the floor applies.
  s.SetFloor("4201-W2", "SH-0001", 3);
  s.SetLots("4201-W2", "SH-0001", {});
  s.SetLots("4201-W2", "SH-0001", {LotStock{"DEFAULT", kNoExpiry, 1}});
  EXPECT_EQ(Holders(s, "SH-0001", "4201-W2")[0].floor, 3);
}

TEST(StockSnapshotTest, RemovedWarehouseLeavesEveryIndexAndCanComeBack) {
  StockSnapshot s(nullptr);
  s.SetWarehouse("4201-W1", GeoPoint{114.3, 30.6});
  s.SetLots("4201-W1", "SH-0001", {LotStock{"DEFAULT", kNoExpiry, 10}});
  s.SetLots("4201-W1", "SH-0002", {LotStock{"DEFAULT", kNoExpiry, 10}});
  s.SetFloor("4201-W1", "SH-0001", 2);
  s.SetReserve("4201-W1", "SH-0001", stockpile::v1::RESERVE_MODE_CONTRACT, 5, 1);
  s.SetLots("4201-W2", "SH-0001", {LotStock{"DEFAULT", kNoExpiry, 10}});
  EXPECT_EQ(s.warehouse_count(), 2u);

  s.RemoveWarehouse("4201-W1");
  s.RemoveWarehouse("4201-W404");  // unknown: nothing happens
  EXPECT_EQ(s.warehouse_count(), 1u);
  EXPECT_THAT(Codes(Holders(s, "SH-0001", "")), ElementsAre("4201-W2"));
  EXPECT_THAT(Codes(Holders(s, "SH-0002", "")), IsEmpty());
  EXPECT_THAT(ReserveCodes(s, "SH-0001"), IsEmpty());
  EXPECT_EQ(s.entry_count(), 1u);

  s.SetLots("4201-W1", "SH-0001", {LotStock{"DEFAULT", kNoExpiry, 3}});
  auto seen = Holders(s, "SH-0001", "");
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].code, "4201-W1");
  EXPECT_EQ(seen[0].floor, 0);  // the old floor went with the warehouse
}

TEST(StockSnapshotTest, BalanceRecordsAreReadFromTheChangeStream) {
  StockSnapshot s(nullptr);
  stockpile::v1::Balance b;
  b.set_warehouse("warehouses/4201-W1");
  b.set_item("SH-0001");
  auto* l = b.add_lots();
  l->set_lot("L2");
  l->set_on_hand(10);
  l->set_held(3);
  l->set_expiry_date("2026-03-01");
  l = b.add_lots();
  l->set_lot("L1");
  l->set_on_hand(4);
  s.Apply(b);
  auto seen = Holders(s, "SH-0001", "4201");
  ASSERT_EQ(seen.size(), 1u);
  ASSERT_EQ(seen[0].lots.size(), 2u);
  EXPECT_EQ(std::get<0>(seen[0].lots[0]), "L2");
  EXPECT_EQ(std::get<2>(seen[0].lots[0]), 7);
  EXPECT_EQ(std::get<0>(seen[0].lots[1]), "L1");
  EXPECT_EQ(std::get<1>(seen[0].lots[1]), kNoExpiry);
  EXPECT_EQ(s.LotName(99), "");
}

}  // namespace
}  // namespace stockpile::catalogue::allocation
