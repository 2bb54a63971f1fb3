#include "services/common/auth/token.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/testutil/process.h"
#include "tests/testutil/status_matchers.h"

namespace stockpile::auth {
namespace {

using ::stockpile::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kNow = 1'700'000'000;
const std::string kKeyBytes = "0123456789abcdef0123456789abcdef-test-key";

TokenKey Key(const std::string& bytes = kKeyBytes) { return *TokenKey::FromBytes(bytes); }

Claims AliceClaims() { return Claims{"alice", Role::kStaff, "420102", kNow, kNow + 3600}; }

class TokenTest : public ::testing::Test {
 protected:
  common::FakeClock clock_{kNow * 1'000'000};
  TokenVerifier verifier_{Key(), &clock_, absl::Seconds(30)};
};

// A token with the given header/payload JSON, signed (or not) with our key's HMAC via SignToken's
// output: we reuse its signature segment only when the signing input is unchanged.
std::string Segments(absl::string_view header, absl::string_view payload,
                     absl::string_view signature) {
  return absl::StrCat(Base64UrlEncode(header), ".", Base64UrlEncode(payload), ".", signature);
}

TEST(Base64UrlTest, KnownVectorsWithoutPadding) {
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(*Base64UrlDecode("-_8"), "\xfb\xff");
  EXPECT_EQ(*Base64UrlDecode("Zm9vYg"), "foob");
  EXPECT_FALSE(Base64UrlDecode("Zm9v=").has_value());  // padding is not base64url here
  EXPECT_FALSE(Base64UrlDecode("Z").has_value());
  EXPECT_FALSE(Base64UrlDecode("Zh").has_value());  // non-zero leftover bits
  EXPECT_FALSE(Base64UrlDecode("+/").has_value());  // standard alphabet is not url-safe
}

TEST_F(TokenTest, SignThenVerifyReturnsTheClaims) {
  auto token = SignToken(Key(), AliceClaims());
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(std::count(token->begin(), token->end(), '.'), 2);
  EXPECT_EQ(token->find('='), std::string::npos);
  auto claims = verifier_.Verify(*token);
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->subject, "alice");
  EXPECT_EQ(claims->role, Role::kStaff);
  EXPECT_EQ(claims->scope, "420102");
  EXPECT_EQ(claims->issued_at, kNow);
  EXPECT_EQ(claims->expires_at, kNow + 3600);
}

TEST_F(TokenTest, HeaderIsTheStandardHs256Header) {
  auto token = SignToken(Key(), AliceClaims());
  std::vector<std::string> parts = absl::StrSplit(*token, '.');
  EXPECT_EQ(*Base64UrlDecode(parts[0]), R"({"alg":"HS256","typ":"JWT"})");
  EXPECT_THAT(*Base64UrlDecode(parts[1]), HasSubstr(R"("iss":"stockpile")"));
}

TEST_F(TokenTest, ExpiredTokenIsRefusedAfterTheLeeway) {
  auto token = *SignToken(Key(), AliceClaims());
  clock_.Set((kNow + 3600 + 29) * 1'000'000);  // inside the 30 s leeway
  EXPECT_TRUE(verifier_.Verify(token).ok());
  clock_.Set((kNow + 3600 + 30) * 1'000'000);
  EXPECT_THAT(verifier_.Verify(token),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("expired")));
}

// Verified tokens are remembered up to a bound, then forgotten and verified afresh; none
// outlives its expiry (ExpiredTokenIsRefusedAfterTheLeeway: the first use remembered it).
TEST_F(TokenTest, RememberedTokensStayBoundedAndStillExpire) {
  std::vector<std::string> tokens;
  for (size_t i = 0; i < TokenVerifier::kRememberedTokens + 10; ++i) {
    Claims claims = AliceClaims();
    claims.subject = absl::StrCat("user-", i);
    tokens.push_back(*SignToken(Key(), claims));
  }
  for (const auto& token : tokens) ASSERT_TRUE(verifier_.Verify(token).ok());
  auto first = verifier_.Verify(tokens.front());  // forgotten on the way, verified again
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->subject, "user-0");
  TokenVerifier copy = verifier_;  // copies share what is remembered and check times alike
  clock_.Set((kNow + 3600 + 30) * 1'000'000);
  EXPECT_THAT(copy.Verify(tokens.back()),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("expired")));
  EXPECT_THAT(verifier_.Verify(tokens.front()),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("expired")));
}

TEST_F(TokenTest, TokenIssuedInTheFutureIsRefused) {
  Claims claims = AliceClaims();
  claims.issued_at = kNow + 120;
  claims.expires_at = kNow + 7200;
  EXPECT_THAT(verifier_.Verify(*SignToken(Key(), claims)),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("future")));
}

TEST_F(TokenTest, TokenFromAnotherKeyIsRefused) {
  auto token = *SignToken(Key("another-key-another-key-another-key!!"), AliceClaims());
  EXPECT_THAT(verifier_.Verify(token),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("signature")));
}

TEST_F(TokenTest, TamperedPayloadIsRefused) {
  std::vector<std::string> parts = absl::StrSplit(*SignToken(Key(), AliceClaims()), '.');
  std::string payload = *Base64UrlDecode(parts[1]);
  payload.replace(payload.find("staff"), 5, "admin");
  payload.replace(payload.find("420102"), 6, "42");
  std::string forged = absl::StrCat(parts[0], ".", Base64UrlEncode(payload), ".", parts[2]);
  EXPECT_THAT(verifier_.Verify(forged),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("signature")));
}

TEST_F(TokenTest, AlgNoneAndOtherAlgorithmsAreRefused) {
  std::vector<std::string> parts = absl::StrSplit(*SignToken(Key(), AliceClaims()), '.');
  std::string payload = *Base64UrlDecode(parts[1]);
  for (const char* header :
       {R"({"alg":"none","typ":"JWT"})", R"({"alg":"None"})", R"({"alg":"HS512","typ":"JWT"})",
        R"({"alg":"RS256"})", R"({"typ":"JWT"})", R"({"alg":["HS256"]})"}) {
    for (const std::string& signature : {std::string(), parts[2]}) {
      EXPECT_THAT(verifier_.Verify(Segments(header, payload, signature)),
                  StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("algorithm")))
          << header;
    }
  }
}

TEST_F(TokenTest, MalformedTokensAreRefused) {
  const std::string good = *SignToken(Key(), AliceClaims());
  std::vector<std::string> parts = absl::StrSplit(good, '.');
  const std::string header = parts[0];
  for (const std::string& bad :
       {std::string(), std::string("abc"), std::string("a.b"), good + ".x", std::string(".."),
        absl::StrCat("!!.", parts[1], ".", parts[2]), absl::StrCat(header, ".", parts[1], ".!"),
        absl::StrCat(Base64UrlEncode("not json"), ".", parts[1], ".", parts[2]),
        std::string(5000, 'a')}) {
    EXPECT_THAT(verifier_.Verify(bad), StatusIs(absl::StatusCode::kUnauthenticated)) << bad;
  }
}

TEST_F(TokenTest, ClaimsWithWrongShapeAreRefusedEvenWhenSigned) {
  // Sign by hand through the public API: SignToken validates, so build JSON payloads directly
  // and check they fail before or at the claims check.
  for (const char* payload :
       {R"({"sub":"a","role":"root","scope":"","iat":1,"exp":9999999999,"iss":"stockpile"})",
        R"({"sub":"a","role":"staff","scope":"42x","iat":1,"exp":9999999999,"iss":"stockpile"})",
        R"({"sub":"a","role":"staff","scope":"","iat":1,"exp":9999999999,"iss":"other"})",
        R"({"sub":"a","role":"staff","scope":"","iat":1,"exp":"later","iss":"stockpile"})",
        R"({"role":"staff","scope":"","iat":1,"exp":9999999999,"iss":"stockpile"})"}) {
    std::string token = Segments(R"({"alg":"HS256","typ":"JWT"})", payload, "c2ln");
    EXPECT_THAT(verifier_.Verify(token), StatusIs(absl::StatusCode::kUnauthenticated));
  }
}

TEST_F(TokenTest, ErrorMessagesNeverContainTheToken) {
  const std::string good = *SignToken(Key(), AliceClaims());
  std::vector<std::string> parts = absl::StrSplit(good, '.');
  clock_.Set((kNow + 99999) * 1'000'000);  // expired
  std::vector<std::string> tokens = {
      good, good + "x", absl::StrCat(parts[0], ".", parts[1], "."),
      *SignToken(Key("z-another-key-another-key-another-key"), AliceClaims())};
  for (const std::string& token : tokens) {
    auto result = verifier_.Verify(token);
    ASSERT_FALSE(result.ok());
    std::string message(result.status().message());
    EXPECT_THAT(message, Not(HasSubstr(parts[1])));
    EXPECT_THAT(message, Not(HasSubstr(parts[2])));
    EXPECT_THAT(message, Not(HasSubstr(kKeyBytes)));
  }
}

TEST(TokenKeyTest, ShortKeysAreRefusedAndTrailingNewlineIsNotPartOfTheKey) {
  EXPECT_THAT(TokenKey::FromBytes(std::string(31, 'k')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least 32")));
  EXPECT_THAT(TokenKey::FromBytes(std::string(31, 'k') + "\n"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  common::FakeClock clock(kNow * 1'000'000);
  TokenVerifier verifier(*TokenKey::FromBytes(kKeyBytes + "\n"), &clock);
  EXPECT_TRUE(verifier.Verify(*SignToken(Key(), AliceClaims())).ok());
}

TEST(TokenKeyTest, MissingKeyFileIsNamed) {
  EXPECT_THAT(TokenKey::FromFile("/nonexistent/stockpile.key"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/stockpile.key")));
}

TEST(TokenSignTest, BadSubjectOrScopeIsRefused) {
  Claims claims = AliceClaims();
  claims.scope = "4201x";
  EXPECT_THAT(SignToken(Key(), claims), StatusIs(absl::StatusCode::kInvalidArgument));
  claims.scope = "420";  // not a level's code length
  EXPECT_THAT(SignToken(Key(), claims), StatusIs(absl::StatusCode::kInvalidArgument));
  claims = AliceClaims();
  claims.subject = "";
  EXPECT_THAT(SignToken(Key(), claims), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(RoleTest, NamesRoundTrip) {
  for (Role r : {Role::kStaff, Role::kDispatcher, Role::kViewer, Role::kService, Role::kAdmin}) {
    EXPECT_EQ(ParseRole(RoleName(r)), r);
  }
  EXPECT_FALSE(ParseRole("root").has_value());
  EXPECT_FALSE(ParseRole("Staff").has_value());
}

class IssueTokenTest : public ::testing::Test {
 protected:
  void SetUp() override { std::ofstream(key_path_) << kKeyBytes << "\n"; }
  testing::TempDir dir_;
  std::string key_path_ = dir_.Sub("token.key");
  common::FakeClock clock_{kNow * 1'000'000};
};

TEST_F(IssueTokenTest, IssuesAVerifiableTokenWithTheTtl) {
  auto token = IssueToken(key_path_, "alice", "staff", "420102", absl::Hours(8), &clock_);
  ASSERT_TRUE(token.ok()) << token.status();
  auto claims = TokenVerifier(Key(), &clock_).Verify(*token);
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->expires_at - claims->issued_at, 8 * 3600);
  EXPECT_EQ(claims->issued_at, kNow);
}

TEST_F(IssueTokenTest, RefusesBadRoleTtlAndKey) {
  EXPECT_THAT(IssueToken(key_path_, "alice", "root", "", absl::Hours(1), &clock_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("role")));
  EXPECT_THAT(IssueToken(key_path_, "alice", "staff", "", absl::ZeroDuration(), &clock_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ttl")));
  EXPECT_THAT(IssueToken(key_path_, "alice", "staff", "", absl::Hours(24 * 91), &clock_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ttl")));
  EXPECT_THAT(IssueToken(dir_.Sub("missing.key"), "alice", "staff", "", absl::Hours(1), &clock_),
              StatusIs(absl::StatusCode::kNotFound));
}

// Standard tools read our tokens: Python's hmac/base64 (the check docs/security.md shows)
// recomputes the signature from the key file.
TEST_F(IssueTokenTest, PythonStandardLibraryVerifiesTheSignature) {
  auto token = *IssueToken(key_path_, "alice", "staff", "420102", absl::Hours(1), &clock_);
  const std::string script =
      "import sys,hmac,hashlib,base64\n"
      "k=open(sys.argv[1],'rb').read().rstrip()\n"
      "h,p,s=sys.stdin.read().strip().split('.')\n"
      "m=base64.urlsafe_b64encode(hmac.new(k,(h+'.'+p).encode(),hashlib.sha256).digest())"
      ".rstrip(b'=').decode()\n"
      "print('valid' if hmac.compare_digest(m,s) else 'INVALID')\n";
  std::string output;
  int rc = testing::RunCommand({"/usr/bin/python3", "-c", script, key_path_}, &output, token);
  EXPECT_EQ(rc, 0) << output;
  EXPECT_EQ(output, "valid\n");
  output.clear();
  testing::RunCommand({"/usr/bin/python3", "-c", script, key_path_}, &output, token + "A");
  EXPECT_EQ(output, "INVALID\n");
}

// The same with the openssl command line (the shell one-liner in docs/security.md).
TEST_F(IssueTokenTest, OpensslCommandVerifiesTheSignature) {
  auto token = *IssueToken(key_path_, "alice", "staff", "420102", absl::Hours(1), &clock_);
  const std::string check =
      "T=$(cat); KEY=$(cat \"$1\"); "
      "S=$(printf '%s' \"${T%.*}\" | openssl dgst -sha256 -mac HMAC -macopt key:\"$KEY\" -binary "
      "| basenc --base64url | tr -d '='); "
      "[ \"$S\" = \"${T##*.}\" ] && echo valid || echo INVALID";
  std::string output;
  EXPECT_EQ(testing::RunCommand({"/bin/bash", "-c", check, "check", key_path_}, &output, token), 0);
  EXPECT_EQ(output, "valid\n");
  output.clear();
  testing::RunCommand({"/bin/bash", "-c", check, "check", key_path_}, &output, token + "A");
  EXPECT_EQ(output, "INVALID\n");
}

}  // namespace
}  // namespace stockpile::auth
