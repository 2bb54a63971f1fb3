#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_split.h"
#include "services/common/validation.h"
#include "tools/stockctl/output/progress.h"
#include "tools/stockctl/output/render.h"
#include "tools/stockctl/output/table.h"

namespace stockpile::stockctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(DisplayWidthTest, AsciiCountsOnePerCharacter) { EXPECT_EQ(DisplayWidth("SH-0001"), 7u); }

TEST(DisplayWidthTest, ChineseCountsTwoPerCharacter) {
  EXPECT_EQ(DisplayWidth("单帐篷"), 6u);
  EXPECT_EQ(DisplayWidth("棉帐篷(36平方米)"), 3 * 2 + 3 + 3 * 2 + 1u);
}

TEST(DisplayWidthTest, FullwidthPunctuationCountsTwo) { EXPECT_EQ(DisplayWidth("（）："), 6u); }

TEST(DisplayWidthTest, CombiningMarkCountsZero) { EXPECT_EQ(DisplayWidth("e\xCC\x81"), 1u); }

TEST(DisplayWidthTest, InvalidUtf8CountsOnePerByte) { EXPECT_EQ(DisplayWidth("\xFF\xFE"), 2u); }

TEST(DisplayWidthTest, SuperscriptTwoIsNarrow) { EXPECT_EQ(DisplayWidth("m²"), 2u); }

TEST(TableTest, AlignsColumnsByDisplayWidthWithChinese) {
  Table table({"CODE", "名称", "QTY"});
  table.AlignRight(2);
  table.AddRow({"SH-0001", "单帐篷", "5"});
  table.AddRow({"FW-0001", "饮用水(550毫升)", "120"});
  const std::vector<std::string> lines = absl::StrSplit(table.Render(), '\n');
  ASSERT_EQ(lines.size(), 4u);  // header, 2 rows, trailing empty
  // Every line's QTY column ends at the same display column.
  const size_t width = DisplayWidth(lines[0]);
  EXPECT_EQ(DisplayWidth(lines[1]), width);
  EXPECT_EQ(DisplayWidth(lines[2]), width);
  EXPECT_EQ(lines[1], "SH-0001  单帐篷" + std::string(13, ' ') + "5");
  EXPECT_THAT(lines[2], HasSubstr("饮用水(550毫升)  120"));
}

TEST(TableTest, NoTrailingSpacesAndMissingCellsAreEmpty) {
  Table table({"A", "LONG_HEADER"});
  table.AddRow({"x"});
  EXPECT_EQ(table.Render(), "A  LONG_HEADER\nx\n");
}

TEST(TableTest, KeyValuesPadKeys) {
  EXPECT_EQ(RenderKeyValues({{"on hand", "5"}, {"held", "0"}}), "on hand: 5\nheld:    0\n");
  // An empty value leaves no trailing spaces (the docs promise none).
  EXPECT_EQ(RenderKeyValues({{"address", ""}, {"kind", "social"}}), "address:\nkind:    social\n");
}

TEST(RenderTest, BalanceShowsTotalsAndLots) {
  v1::Balance b;
  b.set_warehouse("warehouses/420102-W001");
  b.set_item("FW-0001");
  b.set_on_hand(120);
  b.set_available(100);
  b.set_held(20);
  auto* lot = b.add_lots();
  lot->set_lot("L1");
  lot->set_expiry_date("2027-01-31");
  lot->set_on_hand(120);
  const int32_t today = *common::ParseDate("today", "2026-06-01");
  const std::string out = RenderBalance(b, today);
  EXPECT_THAT(out, HasSubstr("warehouse:  420102-W001"));
  EXPECT_THAT(out, HasSubstr("available:  100"));
  EXPECT_THAT(out, HasSubstr("L1   2027-01-31      120"));
  // As of a past time the level does not know what was in transit: it says so, not "0".
  b.set_in_transit(0);
  const std::string past = RenderBalance(b, today, /*past=*/true);
  EXPECT_THAT(past, HasSubstr("in transit: (not kept for past times)"));
  EXPECT_THAT(past, HasSubstr("as of:"));
  EXPECT_THAT(RenderBalance(b, today), HasSubstr("in transit: 0\n"));
}

// Available stock in an expired lot is available only on paper: the table says how much of it
// is usable, and which lot has expired on the day the balance is judged on.
TEST(RenderTest, BalanceSaysWhatIsUsableAndWhichLotsHaveExpired) {
  v1::Balance b;
  b.set_warehouse("warehouses/420102-W001");
  b.set_item("FW-0001");
  b.set_on_hand(130);
  b.set_available(130);
  auto add_lot = [&](const std::string& name, const std::string& expiry, int64_t on_hand) {
    auto* lot = b.add_lots();
    lot->set_lot(name);
    lot->set_expiry_date(expiry);
    lot->set_on_hand(on_hand);
    lot->set_available(on_hand);
  };
  add_lot("2025-A", "2026-05-31", 100);
  add_lot("2026-B", "2026-06-01", 30);
  const std::string out = RenderBalance(b, *common::ParseDate("today", "2026-06-01"));
  EXPECT_THAT(out, HasSubstr("available:  130\n"));
  EXPECT_THAT(out, HasSubstr("usable:     30 (100 available in expired lots: not issued, held or "
                             "planned)"));
  EXPECT_THAT(out, HasSubstr("2025-A  2026-05-31 expired"));
  EXPECT_THAT(out, HasSubstr("2026-B  2026-06-01      "));  // its last usable day
  // As of a day when neither had expired, all of it was usable.
  const std::string before = RenderBalance(b, *common::ParseDate("then", "2026-05-30"), true);
  EXPECT_THAT(before, HasSubstr("usable:     130\n"));
  EXPECT_THAT(before, ::testing::Not(HasSubstr("expired")));
}

// A change entry carries balances, not movements: the watch line does not say "movements=0".
TEST(RenderTest, ChangeEntryCountsOnlyWhatItCarries) {
  v1::ChangeEntry e;
  e.set_sequence(7);
  e.add_balances()->set_item("SH-0001");
  const std::string line = RenderChangeEntry(e);
  EXPECT_THAT(line, HasSubstr(" balances=1 holds=0"));
  EXPECT_THAT(line, Not(HasSubstr("movements=")));
  e.add_movements()->set_item("SH-0001");
  EXPECT_THAT(RenderChangeEntry(e), HasSubstr(" movements=1"));
}

// A delivered hold's lot that arrived with nothing shows "(received 0)", not a full delivery;
// an active hold's lots have no received count yet.
TEST(RenderTest, DeliveredHoldStatesEveryLotsReceivedCount) {
  v1::Hold h;
  h.set_state(v1::HOLD_STATE_DELIVERED);
  auto* a = h.add_lots();
  a->set_lot("L-A");
  a->set_quantity(30);
  a->set_received(25);
  auto* b = h.add_lots();
  b->set_lot("L-B");
  b->set_quantity(20);
  EXPECT_THAT(RenderHold(h), HasSubstr("L-A:30 (received 25), L-B:20 (received 0)"));
  h.set_state(v1::HOLD_STATE_ACTIVE);
  EXPECT_THAT(RenderHold(h), HasSubstr("L-A:30 (received 25), L-B:20\n"));
}

TEST(RenderTest, JsonUsesProtoFieldNamesAndPrintsZeros) {
  v1::Balance b;
  b.set_item("SH-0001");
  const std::string json = ToJson(b);
  EXPECT_THAT(json, HasSubstr("\"item\":\"SH-0001\""));
  EXPECT_THAT(json, HasSubstr("\"on_hand\":\"0\""));
}

TEST(RenderTest, JsonArrayOfMessages) {
  google::protobuf::RepeatedPtrField<v1::Quota> quotas;
  quotas.Add()->set_item("A");
  quotas.Add()->set_item("B");
  const std::string json = ToJsonArray(quotas);
  EXPECT_EQ(json.front(), '[');
  EXPECT_EQ(json.back(), ']');
  EXPECT_THAT(json, HasSubstr("\"item\":\"B\""));
}

TEST(ProgressTest, BarFillsProportionally) {
  EXPECT_EQ(ProgressBar(5, 10, 10), "[#####.....]  50%  5/10 rows");
  EXPECT_EQ(ProgressBar(10, 10, 4), "[####] 100%  10/10 rows");
  EXPECT_EQ(ProgressBar(0, 0, 2), "[##] 100%  0/0 rows");
}

// A location filled in from the reference data says where it came from: a county's seat, or
// for a city or province the centre of its counties' seats (it said "county seat" for those
// too, a point that can be 150 km from the capital).
TEST(RenderWarehouseTest, SaysWhereADefaultedLocationComesFrom) {
  v1::Warehouse w;
  w.set_location_defaulted(true);
  w.set_region_code("420102");
  EXPECT_THAT(RenderWarehouse(w), HasSubstr("(not given: the county seat)"));
  w.set_region_code("420102001");
  EXPECT_THAT(RenderWarehouse(w), HasSubstr("(not given: the county seat)"));
  for (const char* region : {"42", "4201"}) {
    w.set_region_code(region);
    EXPECT_THAT(RenderWarehouse(w), HasSubstr("(not given: the centre of its counties' seats)"));
    EXPECT_THAT(RenderWarehouse(w), Not(HasSubstr("county seat)")));
  }
  w.set_location_defaulted(false);
  EXPECT_THAT(RenderWarehouse(w), Not(HasSubstr("not given")));
}

}  // namespace
}  // namespace stockpile::stockctl
