#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testutil/status_matchers.h"
#include "tools/stockctl/cli_util.h"
#include "tools/stockctl/exit_codes.h"

namespace stockpile::stockctl {
namespace {

using ::stockpile::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ExitCodeTest, MapsEveryDocumentedCode) {
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::OK), 0);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::INVALID_ARGUMENT), 2);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::FAILED_PRECONDITION), 2);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::OUT_OF_RANGE), 2);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::ALREADY_EXISTS), 2);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::NOT_FOUND), 3);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::PERMISSION_DENIED), 4);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::UNAUTHENTICATED), 4);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::UNAVAILABLE), 5);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::DEADLINE_EXCEEDED), 5);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::INTERNAL), 7);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::UNIMPLEMENTED), 7);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::DATA_LOSS), 7);
}

TEST(CliUtilTest, TimeArgAcceptsRfc3339AndDates) {
  auto t = ParseTimeArg("--since", "2024-05-01T08:00:00Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->seconds(), 1714550400);
  setenv("TZ", "UTC", 1);
  tzset();
  auto d = ParseTimeArg("--since", "2024-05-01");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->seconds(), 1714521600);
  EXPECT_THAT(ParseTimeArg("--since", "yesterday"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--since")));
  EXPECT_THAT(ParseTimeArg("--since", "2024-13-01"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CliUtilTest, RequestIdsAreValidAndUnique) {
  const std::string a = NewRequestId();
  EXPECT_NE(a, NewRequestId());
  EXPECT_LE(a.size(), 128u);
  EXPECT_EQ(
      a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-"),
      std::string::npos);
}

TEST(CliUtilTest, WarehouseArgAcceptsCodeOrName) {
  EXPECT_EQ(*WarehouseNameArg("420102-W001"), "warehouses/420102-W001");
  EXPECT_EQ(*WarehouseNameArg("warehouses/420102-W001"), "warehouses/420102-W001");
  EXPECT_THAT(WarehouseNameArg("W001"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CliUtilTest, EnumWords) {
  EXPECT_EQ(*ParseKind("government"), v1::WAREHOUSE_KIND_GOVERNMENT);
  EXPECT_EQ(*ParseWarehouseStatus("SUSPENDED"), v1::WAREHOUSE_STATUS_SUSPENDED);
  EXPECT_EQ(*ParseReserveMode("capacity"), v1::RESERVE_MODE_CAPACITY);
  EXPECT_THAT(ParseKind("palace"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("government, enterprise")));
  EXPECT_THAT(ParseKind("unspecified"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CliUtilTest, LotArguments) {
  auto lot = ParseHoldLot("L1:5:2027-01-31");
  ASSERT_TRUE(lot.ok());
  EXPECT_EQ(lot->lot(), "L1");
  EXPECT_EQ(lot->quantity(), 5);
  EXPECT_EQ(lot->expiry_date(), "2027-01-31");
  auto delivered = ParseDeliveredLot("L1:5:4");
  ASSERT_TRUE(delivered.ok());
  EXPECT_EQ(delivered->received(), 4);
  EXPECT_THAT(ParseHoldLot("L1"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseDeliveredLot("L1:x:1"), StatusIs(absl::StatusCode::kInvalidArgument));
}

// An expiry typed without dashes (20270101) after a count is refused: read as a number it became
// the count, 20,270,101 units, and the real count part of the lot id.
TEST(CliUtilTest, CompactDateAfterACountIsRefused) {
  EXPECT_THAT(ParseHoldLot("N1:1:20270101", "--count", "LOT:COUNTED"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--count must be LOT:COUNTED[:YYYY-MM-DD]; got \"N1:1:20270101\": "
                                 "its last field 20270101 reads as a date: write the expiry with "
                                 "dashes (2027-01-01)")));
  EXPECT_THAT(ParseDeliveredLot("L1:5:4:20270630"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("(2027-06-30)")));
  // Eight digits that are no date, or a count alone, are still counts.
  auto big = ParseHoldLot("N1:20271399");
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(big->quantity(), 20271399);
  auto not_a_date = ParseHoldLot("N1:1:20271399");
  ASSERT_TRUE(not_a_date.ok()) << not_a_date.status();
  EXPECT_EQ(not_a_date->lot(), "N1:1");
}

// The server accepts ':' in lot ids (receive --lot 2024:B1): the numbers are the last fields.
TEST(CliUtilTest, LotIdsMayHoldColons) {
  auto counted = ParseHoldLot("2024:B1:47");
  ASSERT_TRUE(counted.ok()) << counted.status();
  EXPECT_EQ(counted->lot(), "2024:B1");
  EXPECT_EQ(counted->quantity(), 47);
  EXPECT_EQ(counted->expiry_date(), "");
  auto dated = ParseHoldLot("2024:B1:20:2027-01-31");
  ASSERT_TRUE(dated.ok()) << dated.status();
  EXPECT_EQ(dated->lot(), "2024:B1");
  EXPECT_EQ(dated->quantity(), 20);
  EXPECT_EQ(dated->expiry_date(), "2027-01-31");
  auto delivered = ParseDeliveredLot("A:B:C:20:19");
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(delivered->lot(), "A:B:C");
  EXPECT_EQ(delivered->quantity(), 20);
  EXPECT_EQ(delivered->received(), 19);
  auto delivered_dated = ParseDeliveredLot("2024:B1:20:19:2027-01-31");
  ASSERT_TRUE(delivered_dated.ok()) << delivered_dated.status();
  EXPECT_EQ(delivered_dated->lot(), "2024:B1");
  EXPECT_EQ(delivered_dated->expiry_date(), "2027-01-31");
  // Without a lot before the numbers, or with a word where a number goes, it is no lot.
  EXPECT_THAT(ParseHoldLot(":5"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseHoldLot("5"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseHoldLot("L1:x:2027-01-31"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseDeliveredLot("20:19"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace stockpile::stockctl
