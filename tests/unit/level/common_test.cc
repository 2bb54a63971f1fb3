#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "services/common/expiring_lots.h"
#include "services/common/log_lines.h"
#include "services/common/reference_data.h"
#include "services/common/server_process.h"
#include "services/common/status_util.h"
#include "services/common/tcp_connect.h"
#include "services/common/validation.h"
#include "tests/testutil/process.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::common {
namespace {

using ::stockpile::testing::IsOk;
using ::stockpile::testing::StatusIs;
using stockpile::v1::Level;
using ::testing::HasSubstr;

TEST(ValidationTest, Utf8) {
  EXPECT_TRUE(IsValidUtf8("江岸区 tent"));
  EXPECT_FALSE(IsValidUtf8("\xff\xfe"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));      // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));  // surrogate
  EXPECT_FALSE(IsValidUtf8("\xe6\xb1"));      // truncated
  EXPECT_THAT(CheckText("note", "a\x01", 100, false), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CheckText("note", std::string(2000, 'a'), 1024, false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("2000 bytes")));
}

TEST(ValidationTest, DatesRoundTrip) {
  auto d = ParseDate("d", "2024-02-29");
  ASSERT_THAT(d.status(), IsOk());
  EXPECT_EQ(FormatDate(*d), "2024-02-29");
  EXPECT_EQ(*ParseDate("d", "1970-01-01"), 0);
  EXPECT_THAT(ParseDate("d", "2023-02-29").status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseDate("d", "2023-13-01").status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseDate("d", "20230101").status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

// A date in the right form that is no day, or out of the range kept, is not called malformed:
// the clerk who typed 2027-02-29 or 9999-12-31 would look for a typo in the format.
TEST(ValidationTest, DateMessagesSayWhatIsWrong) {
  EXPECT_THAT(ParseDate("expiry_date", "2026/02/03").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("expiry_date must be a date as YYYY-MM-DD; got \"2026/02/03\"")));
  EXPECT_THAT(ParseDate("expiry_date", "2027-02-29").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("expiry_date must be a date that exists; got \"2027-02-29\"")));
  EXPECT_THAT(ParseDate("expiry_date", "2026-04-31").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("a date that exists")));
  EXPECT_THAT(ParseDate("expiry_date", "9999-12-31").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("between 1900-01-01 and 2200-12-31; got \"9999-12-31\"")));
}

TEST(ValidationTest, RegionAndWarehouseCodes) {
  EXPECT_EQ(LevelOfRegionCode("42"), Level::LEVEL_PROVINCE);
  EXPECT_EQ(LevelOfRegionCode("420102001001"), Level::LEVEL_VILLAGE);
  EXPECT_EQ(LevelOfRegionCode("4201a"), Level::LEVEL_UNSPECIFIED);
  EXPECT_EQ(*RegionOfWarehouseCode("420102-W001"), "420102");
  EXPECT_THAT(RegionOfWarehouseCode("42010-W001").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(RegionOfWarehouseCode("420102-W1234567").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(WarehouseCodeFromName("warehouse/420102-W001").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(StatusUtilTest, RocksAndGrpcMappingIsSpecific) {
  EXPECT_EQ(FromRocks(rocksdb::Status::NotFound(), "x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(FromRocks(rocksdb::Status::Corruption(), "x").code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(FromRocks(rocksdb::Status::Busy(), "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(FromRocks(rocksdb::Status::NoSpace(), "x").code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ToGrpc(absl::UnknownError("x")).error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(ToGrpc(absl::FailedPreconditionError("x")).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST(StatusUtilTest, CodeNamesAreGrpcSpellings) {
  EXPECT_STREQ(StatusCodeName(grpc::StatusCode::OK), "OK");
  EXPECT_STREQ(StatusCodeName(grpc::StatusCode::INVALID_ARGUMENT), "INVALID_ARGUMENT");
  EXPECT_STREQ(StatusCodeName(grpc::StatusCode::FAILED_PRECONDITION), "FAILED_PRECONDITION");
  EXPECT_STREQ(StatusCodeName(grpc::StatusCode::UNAUTHENTICATED), "UNAUTHENTICATED");
  EXPECT_STREQ(StatusCodeName(static_cast<grpc::StatusCode>(99)), "UNKNOWN");
}

TEST(ServerProcessTest, BoundAddressKeepsTheHostAndTakesThePort) {
  EXPECT_EQ(BoundAddress("127.0.0.1:0", 50051), "127.0.0.1:50051");
  EXPECT_EQ(BoundAddress("0.0.0.0:9090", 9090), "0.0.0.0:9090");
  EXPECT_EQ(BoundAddress("[::1]:0", 7000), "[::1]:7000");
}

// An unset window is 30 days; an explicit 0 is today only (it used to be 30 days too, so a
// clerk asking what expires today got the month's list).
TEST(ExpiringLotsTest, WindowDefaultsToThirtyDaysZeroIsTodayAndItIsBounded) {
  auto window = [](std::optional<int32_t> days) {
    stockpile::v1::ListExpiringLotsRequest req;
    if (days.has_value()) req.set_within_days(*days);
    return ExpiryWindowDays(req);
  };
  EXPECT_EQ(*window(std::nullopt), 30);
  EXPECT_EQ(*window(0), 0);
  EXPECT_EQ(*window(7), 7);
  EXPECT_EQ(*window(3650), 3650);
  EXPECT_THAT(window(-1), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(window(3651), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("got 3651")));
}

TEST(ExpiringLotsTest, TakesLotsWithStockThatExpireWithinTheWindow) {
  stockpile::v1::Balance b;
  b.set_warehouse("warehouses/420102-W001");
  b.set_item("FW-0001");
  auto lot = [&](const std::string& name, const std::string& expiry, int64_t on_hand) {
    auto* l = b.add_lots();
    l->set_lot(name);
    l->set_expiry_date(expiry);
    l->set_on_hand(on_hand);
  };
  lot("past", "2024-04-25", 3);   // already expired: listed, days_left < 0
  lot("soon", "2024-05-10", 5);   // 9 days after today
  lot("edge", "2024-05-31", 1);   // exactly 30 days: in
  lot("later", "2024-06-01", 4);  // 31 days: out
  lot("empty", "2024-05-02", 0);  // no stock: out
  lot("no-expiry", "", 9);        // no shelf life: out
  const int32_t today = *ParseDate("today", "2024-05-01");
  stockpile::v1::ListExpiringLotsResponse resp;
  EXPECT_EQ(AppendExpiringLots(b, today, 30, &resp), 3);
  ASSERT_EQ(resp.lots_size(), 3);
  EXPECT_EQ(resp.lots(0).lot(), "past");
  EXPECT_EQ(resp.lots(0).days_left(), -6);
  EXPECT_EQ(resp.lots(1).lot(), "soon");
  EXPECT_EQ(resp.lots(1).days_left(), 9);
  EXPECT_EQ(resp.lots(1).on_hand(), 5);
  EXPECT_EQ(resp.lots(1).warehouse(), "warehouses/420102-W001");
  EXPECT_EQ(resp.lots(1).item(), "FW-0001");
  EXPECT_EQ(resp.lots(2).lot(), "edge");
  EXPECT_EQ(resp.lots(2).days_left(), 30);
}

TEST(CsvTest, QuotedFields) {
  auto f = ParseCsvLine(R"(110101,"东城区, ""老城""",1101)");
  ASSERT_THAT(f.status(), IsOk());
  ASSERT_EQ(f->size(), 3u);
  EXPECT_EQ((*f)[1], "东城区, \"老城\"");
  EXPECT_THAT(ParseCsvLine("\"open").status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ReferenceDataTest, LoadsAllFiveLevelsOfChina) {
  auto data = ReferenceData::Load(stockpile::testing::ReferenceDataDir());
  ASSERT_THAT(data.status(), IsOk());
  EXPECT_EQ((*data)->CountAtLevel(Level::LEVEL_PROVINCE), 31u);
  EXPECT_EQ((*data)->CountAtLevel(Level::LEVEL_CITY), 342u);
  EXPECT_EQ((*data)->CountAtLevel(Level::LEVEL_COUNTY), 2978u);
  EXPECT_EQ((*data)->CountAtLevel(Level::LEVEL_TOWNSHIP), 41352u);
  EXPECT_EQ((*data)->CountAtLevel(Level::LEVEL_VILLAGE), 620573u);
  EXPECT_EQ((*data)->regions().size(), 665276u);
  EXPECT_EQ((*data)->items().size(), 42u);
  const RegionInfo* village = (*data)->FindRegion("110101001001");
  ASSERT_NE(village, nullptr);
  const RegionInfo* county = (*data)->FindRegion("110101");
  EXPECT_EQ(village->longitude, county->longitude);
  EXPECT_EQ((*data)->FindItem("FW-0001")->shelf_life_months, 12);
  // Every region has a place, even counties missing from county_centers.
  for (const auto& r : (*data)->regions()) {
    ASSERT_TRUE(r.longitude > 70 && r.longitude < 140 && r.latitude > 15 && r.latitude < 55)
        << r.code << " " << r.longitude << "," << r.latitude;
  }
}

TEST(ReferenceDataTest, MissingAndMalformedFilesAreNamed) {
  stockpile::testing::TempDir dir;
  EXPECT_THAT(ReferenceData::Load(dir.path()).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("items/items.csv")));
  std::filesystem::create_directories(dir.Sub("items"));
  std::ofstream(dir.Sub("items/items.csv"))
      << "code,name_zh,name_en,category,unit_zh,unit_en,shelf_life_months\n"
      << "SH-0001,帐篷,tent,shelter,顶,tent,0\n"
      << "SH-0002,帐篷,tent,shelter,顶,tent,twelve\n";
  EXPECT_THAT(ReferenceData::Load(dir.path()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("items.csv:3")));
}

// Server logs are plain `std::cerr << ...` lines; each must carry its time, however the line
// is written (in pieces, several lines in one write, one character at a time).
TEST(TimestampedLinesTest, EveryLineStartsWithItsTime) {
  std::stringstream sink;
  TimestampedLines lines(sink.rdbuf(), [] { return absl::FromUnixMillis(1764927015123); });
  std::ostream log(&lines);
  log << "level: serving"
      << " at " << 7503 << "\n";
  log << "two\nlines\n";
  log.put('x');
  log.put('\n');
  log << std::flush;
  EXPECT_EQ(sink.str(),
            "2025-12-05T09:30:15.123Z level: serving at 7503\n"
            "2025-12-05T09:30:15.123Z two\n"
            "2025-12-05T09:30:15.123Z lines\n"
            "2025-12-05T09:30:15.123Z x\n");
}

// One reading of "host:port" for the metrics wake-up, the bench's CPU probe and stockctl's
// "does anything listen there" check.
TEST(SplitHostPortTest, HostsPortsAndWhatIsNotAnAddress) {
  auto v4 = SplitHostPort("127.0.0.1:7503");
  ASSERT_TRUE(v4.has_value());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 7503);
  auto v6 = SplitHostPort("[::1]:9500");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 9500);
  auto any = SplitHostPort(":9500");
  ASSERT_TRUE(any.has_value());
  EXPECT_EQ(any->host, "");
  EXPECT_FALSE(SplitHostPort("level.svc").has_value());
  EXPECT_FALSE(SplitHostPort("dns:///level.svc:7500").has_value());
  EXPECT_FALSE(SplitHostPort("::1:7500").has_value());
  EXPECT_FALSE(SplitHostPort("[::1:7500").has_value());
  EXPECT_TRUE(AcceptsTcp("dns:///level.svc:7500"));  // not ours to judge: not called gone
}

}  // namespace
}  // namespace stockpile::common
