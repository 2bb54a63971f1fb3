#include "services/common/page_token.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::common {
namespace {

using ::stockpile::testing::IsOk;
using ::stockpile::testing::StatusIs;
using ::testing::HasSubstr;

PageQuery Balances(absl::string_view prefix, absl::string_view item, bool skip_zero) {
  PageQuery q("ListBalances");
  q.Add("region_prefix", prefix).Add("item", item).AddInt("skip_zero", skip_zero);
  return q;
}

TEST(PageTokenTest, ATokenGivesBackItsPositionToTheSameQuery) {
  const PageQuery q = Balances("4201", "SH-0001", false);
  for (const std::string& position :
       std::vector<std::string>{"4201", "420102-W002/SH-0001", std::string("a\0b/\xff", 5)}) {
    const std::string token = q.Token(position);
    EXPECT_EQ(
        token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        std::string::npos)
        << token;  // safe on a command line and in a URL
    EXPECT_LE(token.size(), (position.size() + 9 + 2) / 3 * 4) << token;  // short
    auto back = Balances("4201", "SH-0001", false).Position(token);  // another PageQuery object
    ASSERT_THAT(back.status(), IsOk());
    EXPECT_EQ(*back, position);
  }
}

TEST(PageTokenTest, NoPositionIsNoTokenAndNoTokenIsTheFirstPage) {
  const PageQuery q = Balances("", "", false);
  EXPECT_EQ(q.Token(""), "");
  auto first = q.Position("");
  ASSERT_THAT(first.status(), IsOk());
  EXPECT_EQ(*first, "");
}

TEST(PageTokenTest, TheSameFiltersGiveTheSameTokenEveryTime) {
  // Replicas and restarted processes must take each other's tokens: nothing random or seeded.
  EXPECT_EQ(Balances("42", "SH-0001", true).Token("420102-W001/SH-0001"),
            Balances("42", "SH-0001", true).Token("420102-W001/SH-0001"));
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cULL);  // the published FNV-1a test vector
}

TEST(PageTokenTest, ATokenOfAnotherQueryIsRefusedNamingTheFilters) {
  const std::string token = Balances("4201", "SH-0001", false).Token("420102-W002/SH-0001");
  const PageQuery others[] = {Balances("4201", "BD-0001", false), Balances("42", "SH-0001", false),
                              Balances("", "SH-0001", false), Balances("4201", "", false),
                              Balances("4201", "SH-0001", true)};
  for (const PageQuery& other : others) {
    EXPECT_THAT(other.Position(token).status(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("page_token belongs to another query: it was handed out by "
                                   "another listing or for other filters than this ListBalances "
                                   "(region_prefix, item, skip_zero)")));
  }
  PageQuery another_listing("ListExpiringLots");  // same filters, another listing
  another_listing.Add("region_prefix", "4201").Add("item", "SH-0001").AddInt("skip_zero", 0);
  EXPECT_THAT(another_listing.Position(token).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("another query")));
}

TEST(PageTokenTest, FieldsDoNotRunIntoEachOther) {
  PageQuery a("L"), b("L");
  a.Add("x", "ab").Add("y", "c");
  b.Add("x", "a").Add("y", "bc");
  EXPECT_THAT(b.Position(a.Token("p")).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  PageQuery d1("Search"), d2("Search"), d3("Search");
  d1.AddDouble("radius_km", 5.0);
  d2.AddDouble("radius_km", 5.000000000000001);
  d3.AddDouble("radius_km", -0.0);
  EXPECT_THAT(d2.Position(d1.Token("p")).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  PageQuery zero("Search");
  zero.AddDouble("radius_km", 0.0);
  EXPECT_THAT(zero.Position(d3.Token("p")).status(), IsOk());
}

TEST(PageTokenTest, ADamagedTokenIsRefusedNeverReadAsAnotherPosition) {
  const PageQuery q = Balances("4201", "SH-0001", false);
  const std::string token = q.Token("420102-W002/SH-0001");
  std::vector<std::string> bad = {"garbage!",  "aGVsbG8",   "x",
                                  token + "A", "A" + token, "420102-W002"};
  for (size_t cut = 1; cut < token.size(); ++cut) bad.push_back(token.substr(0, cut));
  for (size_t i = 0; i < token.size(); ++i) {  // one character mistyped
    std::string changed = token;
    changed[i] = changed[i] == 'A' ? 'B' : 'A';
    bad.push_back(changed);
  }
  std::string raw;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(token, &raw));
  raw[0] = '\x02';  // a later format
  bad.push_back(absl::WebSafeBase64Escape(raw));
  for (const std::string& t : bad) {
    EXPECT_THAT(q.Position(t).status(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("page_token is not valid for this query: it is not one "
                                   "ListBalances handed out (cut short or changed when copied?); "
                                   "start again without it")))
        << t;
  }
}

TEST(PageSizeTest, ZeroIsTheDefaultLargeIsTheMaxNegativeIsRefused) {
  EXPECT_EQ(*PageSize(0, 50, 500), 50u);
  EXPECT_EQ(*PageSize(7, 50, 500), 7u);
  EXPECT_EQ(*PageSize(INT32_MAX, 50, 500), 500u);
  EXPECT_THAT(PageSize(-1, 50, 500).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("page_size must not be negative; got -1")));
  EXPECT_THAT(PageSize(INT32_MIN, 50, 500).status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace stockpile::common
