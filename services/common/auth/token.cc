#include "services/common/auth/token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "services/common/status_macros.h"
#include "services/common/validation.h"

namespace stockpile::auth {
namespace {

constexpr std::array<absl::string_view, kRoleCount> kRoleNames = {"staff", "dispatcher", "viewer",
                                                                  "service", "admin"};
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr int64_t kMaxTtlSeconds = 90LL * 24 * 3600;

absl::Status Unauthenticated(absl::string_view why) {
  return absl::UnauthenticatedError(absl::StrCat("bearer token rejected: ", why));
}

std::string HmacSha256(absl::string_view key, absl::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &mac_len);
  return std::string(reinterpret_cast<const char*>(mac), mac_len);
}

const std::string& HeaderSegment() {
  static const std::string* segment =
      new std::string(Base64UrlEncode(R"({"alg":"HS256","typ":"JWT"})"));
  return *segment;
}

absl::Status CheckSubject(absl::string_view subject) {
  return common::CheckText("token subject", subject, common::kMaxIdLength, /*required=*/true);
}

// Parses a JSON object; nlohmann throws on bad input, which must not cross our boundary.
std::optional<nlohmann::json> ParseObject(absl::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

absl::Status CheckHeader(absl::string_view segment) {
  std::optional<std::string> text = Base64UrlDecode(segment);
  if (!text) return Unauthenticated("header is not base64url");
  std::optional<nlohmann::json> header = ParseObject(*text);
  if (!header) return Unauthenticated("header is not a JSON object");
  auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string() || alg->get<std::string>() != "HS256") {
    return Unauthenticated("algorithm must be HS256");
  }
  auto typ = header->find("typ");
  if (typ != header->end() && (!typ->is_string() || typ->get<std::string>() != "JWT")) {
    return Unauthenticated("typ must be JWT");
  }
  return absl::OkStatus();
}

template <typename T>
std::optional<T> Field(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) return std::nullopt;
  if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) return std::nullopt;
  } else {
    if (!it->is_number_integer()) return std::nullopt;
  }
  return it->get<T>();
}

absl::StatusOr<Claims> ParseClaims(absl::string_view segment) {
  std::optional<std::string> text = Base64UrlDecode(segment);
  if (!text) return Unauthenticated("payload is not base64url");
  std::optional<nlohmann::json> j = ParseObject(*text);
  if (!j) return Unauthenticated("payload is not a JSON object");
  auto sub = Field<std::string>(*j, "sub");
  auto role = Field<std::string>(*j, "role");
  auto scope = Field<std::string>(*j, "scope");
  auto iss = Field<std::string>(*j, "iss");
  auto exp = Field<int64_t>(*j, "exp");
  auto iat = Field<int64_t>(*j, "iat");
  if (!sub || !role || !scope || !iss || !exp || !iat) {
    return Unauthenticated(
        "claims sub, role, scope, iss (strings) and exp, iat (integers) are "
        "required");
  }
  if (*iss != kIssuer) return Unauthenticated("issuer is not stockpile");
  std::optional<Role> parsed_role = ParseRole(*role);
  if (!parsed_role) return Unauthenticated("unknown role");
  if (!CheckSubject(*sub).ok() || !CheckScope(*scope).ok()) {
    return Unauthenticated("subject or scope is malformed");
  }
  return Claims{*sub, *parsed_role, *scope, *iat, *exp};
}

absl::StatusOr<std::string> ReadFile(absl::string_view path) {
  std::ifstream in{std::string(path), std::ios::binary};
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read key file ", path));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

absl::string_view RoleName(Role role) { return kRoleNames[static_cast<int>(role)]; }

std::optional<Role> ParseRole(absl::string_view name) {
  for (int i = 0; i < kRoleCount; ++i) {
    if (kRoleNames[i] == name) return static_cast<Role>(i);
  }
  return std::nullopt;
}

std::string Base64UrlEncode(absl::string_view data) {
  std::string out;
  out.reserve((data.size() * 4 + 2) / 3);
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char c : data) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(buffer >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (6 - bits)) & 0x3f]);
  return out;
}

std::optional<std::string> Base64UrlDecode(absl::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    const char* pos = std::char_traits<char>::find(kAlphabet, 64, c);
    if (pos == nullptr || c == '\0') return std::nullopt;
    buffer = (buffer << 6) | static_cast<uint32_t>(pos - kAlphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  // Leftover bits must be zero: otherwise two texts would decode to the same bytes.
  if ((buffer & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

absl::Status CheckScope(absl::string_view scope) {
  if (scope.empty()) return absl::OkStatus();
  const bool digits = std::all_of(scope.begin(), scope.end(), absl::ascii_isdigit);
  const size_t n = scope.size();
  if (!digits || !(n == 2 || n == 4 || n == 6 || n == 9 || n == 12)) {
    return absl::InvalidArgumentError(
        "scope must be empty (national) or a region code of 2, 4, 6, 9 or 12 digits");
  }
  return absl::OkStatus();
}

absl::StatusOr<TokenKey> TokenKey::FromBytes(std::string bytes) {
  while (!bytes.empty() && absl::ascii_isspace(static_cast<unsigned char>(bytes.back()))) {
    bytes.pop_back();
  }
  if (bytes.size() < kMinKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("token key must hold at least ", kMinKeyBytes,
                                                   " bytes; it holds ", bytes.size()));
  }
  return TokenKey(std::move(bytes));
}

absl::StatusOr<TokenKey> TokenKey::FromFile(absl::string_view path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  absl::StatusOr<TokenKey> key = FromBytes(std::move(bytes));
  if (!key.ok()) {
    return absl::Status(key.status().code(), absl::StrCat(key.status().message(), " (", path, ")"));
  }
  return key;
}

absl::StatusOr<std::string> SignToken(const TokenKey& key, const Claims& claims) {
  RETURN_IF_ERROR(CheckSubject(claims.subject));
  RETURN_IF_ERROR(CheckScope(claims.scope));
  nlohmann::json payload = {{"sub", claims.subject},    {"role", RoleName(claims.role)},
                            {"scope", claims.scope},    {"iat", claims.issued_at},
                            {"exp", claims.expires_at}, {"iss", kIssuer}};
  std::string signing_input = absl::StrCat(HeaderSegment(), ".", Base64UrlEncode(payload.dump()));
  std::string mac = HmacSha256(key.bytes_, signing_input);
  return absl::StrCat(signing_input, ".", Base64UrlEncode(mac));
}

struct TokenVerifier::Remembered {
  absl::Mutex mu;
  absl::flat_hash_map<std::string, Claims> claims ABSL_GUARDED_BY(mu);
};

TokenVerifier::TokenVerifier(TokenKey key, const common::Clock* clock, absl::Duration leeway)
    : key_(std::move(key)),
      clock_(clock),
      leeway_(leeway),
      remembered_(std::make_shared<Remembered>()) {}

absl::StatusOr<Claims> TokenVerifier::Verify(absl::string_view token) const {
  std::optional<Claims> known;
  {
    absl::MutexLock lock(&remembered_->mu);
    auto it = remembered_->claims.find(token);
    if (it != remembered_->claims.end()) known = it->second;
  }
  if (known) {
    RETURN_IF_ERROR(CheckTimes(*known));
    return *std::move(known);
  }
  ASSIGN_OR_RETURN(Claims claims, VerifyUncached(token));
  absl::MutexLock lock(&remembered_->mu);
  if (remembered_->claims.size() >= kRememberedTokens) remembered_->claims.clear();
  remembered_->claims.emplace(std::string(token), claims);
  return claims;
}

absl::Status TokenVerifier::CheckTimes(const Claims& claims) const {
  const absl::Time now = absl::FromUnixMicros(clock_->NowMicros());
  if (absl::FromUnixSeconds(claims.expires_at) + leeway_ <= now) {
    return Unauthenticated("expired");
  }
  if (absl::FromUnixSeconds(claims.issued_at) - leeway_ > now) {
    return Unauthenticated("issued in the future");
  }
  return absl::OkStatus();
}

absl::StatusOr<Claims> TokenVerifier::VerifyUncached(absl::string_view token) const {
  if (token.empty()) return Unauthenticated("empty");
  if (token.size() > kMaxTokenBytes) return Unauthenticated("longer than 4096 bytes");
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) return Unauthenticated("not a compact JWT (header.payload.signature)");
  RETURN_IF_ERROR(CheckHeader(parts[0]));
  std::optional<std::string> signature = Base64UrlDecode(parts[2]);
  const size_t signed_len = parts[0].size() + 1 + parts[1].size();
  std::string expected = HmacSha256(key_.bytes_, token.substr(0, signed_len));
  if (!signature || signature->size() != expected.size() ||
      CRYPTO_memcmp(signature->data(), expected.data(), expected.size()) != 0) {
    return Unauthenticated("signature does not match");
  }
  ASSIGN_OR_RETURN(Claims claims, ParseClaims(parts[1]));
  RETURN_IF_ERROR(CheckTimes(claims));
  return claims;
}

absl::StatusOr<std::string> IssueToken(absl::string_view key_file, absl::string_view subject,
                                       absl::string_view role, absl::string_view scope,
                                       absl::Duration ttl, const common::Clock* clock) {
  std::optional<Role> parsed_role = ParseRole(role);
  if (!parsed_role) {
    return absl::InvalidArgumentError(
        absl::StrCat("role must be one of staff, dispatcher, viewer, service, admin; got \"",
                     role.substr(0, 32), "\""));
  }
  const int64_t ttl_seconds = absl::ToInt64Seconds(ttl);
  if (ttl_seconds < 1 || ttl_seconds > kMaxTtlSeconds) {
    return absl::InvalidArgumentError("ttl must be between 1s and 90 days (2160h)");
  }
  ASSIGN_OR_RETURN(TokenKey key, TokenKey::FromFile(key_file));
  const int64_t now = clock->NowMicros() / 1'000'000;
  return SignToken(
      key, Claims{std::string(subject), *parsed_role, std::string(scope), now, now + ttl_seconds});
}

}  // namespace stockpile::auth
