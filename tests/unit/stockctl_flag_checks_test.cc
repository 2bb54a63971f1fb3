// Numeric flags refuse what their C++ type would wrap or clamp, and what their "not given"
// defaults would swallow (tools/stockctl/flag_checks.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tools/stockctl/flag_checks.h"

namespace stockpile::stockctl {
namespace {

using ::testing::HasSubstr;

// What the validator says of `text` ("" = accepted).
std::string Check(const CLI::Validator& validator, std::string text) { return validator(text); }

TEST(FlagChecksTest, Int64RefusesWhatWouldBeClamped) {
  EXPECT_EQ(Check(FitsInt64(), "0"), "");
  EXPECT_EQ(Check(FitsInt64(), "9223372036854775807"), "");
  EXPECT_THAT(Check(FitsInt64(), "9223372036854775808"), HasSubstr("got 9223372036854775808"));
  EXPECT_NE(Check(FitsInt64(), "12abc"), "");
  EXPECT_NE(Check(FitsInt64(), "1.5"), "");
}

TEST(FlagChecksTest, NotNegativeRefusesWhatWouldWrap) {
  EXPECT_EQ(Check(NotNegative(), "0"), "");
  EXPECT_EQ(Check(NotNegative(), "2500.5"), "");
  EXPECT_THAT(Check(NotNegative(), "-1"), HasSubstr("0 or more"));
  EXPECT_NE(Check(NotNegative(), "many"), "");
}

TEST(FlagChecksTest, BetweenRefusesTheNotGivenSentinel) {
  EXPECT_EQ(Check(Between(-180, 180), "114.3"), "");
  EXPECT_EQ(Check(Between(-180, 180), "-180"), "");
  EXPECT_THAT(Check(Between(-180, 180), "1000"), HasSubstr("from -180 to 180"));
}

}  // namespace
}  // namespace stockpile::stockctl
