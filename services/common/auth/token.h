#pragma once

// Bearer tokens: JWT compact form (RFC 7519) signed with HMAC-SHA256 (RFC 7518 "HS256"), so
// standard tools can read and verify them (docs/security.md has a one-line check).
//
//   header  {"alg":"HS256","typ":"JWT"}
//   claims  {"sub":"alice","role":"staff","scope":"420102","iat":1700000000,"exp":1700028800,
//            "iss":"stockpile"}
//
// scope is a region-code prefix (2/4/6/9/12 digits); "" means national. Nothing here ever puts
// a token or key into a status message or a log line.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/common/clock.h"

namespace stockpile::auth {

enum class Role { kStaff, kDispatcher, kViewer, kService, kAdmin };
inline constexpr int kRoleCount = 5;

absl::string_view RoleName(Role role);  // "staff", "dispatcher", ...
std::optional<Role> ParseRole(absl::string_view name);

inline constexpr absl::string_view kIssuer = "stockpile";
inline constexpr size_t kMinKeyBytes = 32;
inline constexpr size_t kMaxTokenBytes = 4096;

struct Claims {
  std::string subject;  // "sub": who acts; becomes the movement's actor
  Role role = Role::kViewer;
  std::string scope;       // region-code prefix; "" = national
  int64_t issued_at = 0;   // "iat", seconds since the epoch
  int64_t expires_at = 0;  // "exp", seconds since the epoch
};

// The deployment's HMAC key: at least 32 bytes. The key is the file's bytes with trailing
// whitespace (a final newline) removed, so `openssl rand -hex 32 > key` works as is.
class TokenKey {
 public:
  static absl::StatusOr<TokenKey> FromFile(absl::string_view path);
  static absl::StatusOr<TokenKey> FromBytes(std::string bytes);

 private:
  explicit TokenKey(std::string bytes) : bytes_(std::move(bytes)) {}
  friend absl::StatusOr<std::string> SignToken(const TokenKey&, const Claims&);
  friend class TokenVerifier;
  std::string bytes_;
};

// Checks the claims' shape (subject, scope) and returns the compact JWT.
absl::StatusOr<std::string> SignToken(const TokenKey& key, const Claims& claims);

// Verifies signature (constant-time), algorithm (HS256 only; "none" and all others refused),
// issuer, expiry and issue time against the injected clock with `leeway` for clock skew.
// Every failure is UNAUTHENTICATED with a message that names the problem, never the token.
// Thread-safe. A token once verified is remembered (at most kRememberedTokens, then all are
// forgotten): a client sends the same token with every call, and verifying it again (HMAC,
// base64, JSON) cost a few per cent of a secure level's CPU per receipt. Expiry and issue time
// are checked on every use.
class TokenVerifier {
 public:
  TokenVerifier(TokenKey key, const common::Clock* clock,
                absl::Duration leeway = absl::Seconds(30));

  absl::StatusOr<Claims> Verify(absl::string_view token) const;

  static constexpr size_t kRememberedTokens = 4096;

 private:
  struct Remembered;
  absl::StatusOr<Claims> VerifyUncached(absl::string_view token) const;
  absl::Status CheckTimes(const Claims& claims) const;

  TokenKey key_;
  const common::Clock* clock_;
  absl::Duration leeway_;
  std::shared_ptr<Remembered> remembered_;  // shared by copies: all hold the same key
};

// Scope syntax: "" or 2/4/6/9/12 digits (a region code at some level).
absl::Status CheckScope(absl::string_view scope);

// For `stockctl token issue --key FILE --subject alice --role staff --scope 420102 --ttl 8h`
// (parse --ttl with absl::ParseDuration). TTL: 1 s .. 90 days.
absl::StatusOr<std::string> IssueToken(absl::string_view key_file, absl::string_view subject,
                                       absl::string_view role, absl::string_view scope,
                                       absl::Duration ttl,
                                       const common::Clock* clock = common::SystemClock::Get());

// base64url without padding (RFC 4648 §5), as JWT uses it.
std::string Base64UrlEncode(absl::string_view data);
std::optional<std::string> Base64UrlDecode(absl::string_view text);

}  // namespace stockpile::auth
