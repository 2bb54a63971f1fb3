#include "services/common/page_token.h"

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace stockpile::common {
namespace {

constexpr char kVersion = '\x01';
constexpr size_t kFingerprintSize = 4;
constexpr size_t kCheckSize = 4;

void AppendU32(uint64_t hash, std::string* out) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((hash >> shift) & 0xff));
  }
}

// Length, then bytes: ("ab", "c") and ("a", "bc") hash apart.
uint64_t HashField(uint64_t hash, absl::string_view bytes) {
  return Fnv1a64(bytes, Fnv1a64(absl::StrCat(bytes.size(), ":"), hash));
}

}  // namespace

absl::StatusOr<size_t> PageSize(int32_t requested, size_t default_size, size_t max) {
  if (requested < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size must not be negative; got ", requested));
  }
  if (requested == 0) return default_size;
  return std::min(static_cast<size_t>(requested), max);
}

uint64_t Fnv1a64(absl::string_view data, uint64_t hash) {
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

PageQuery::PageQuery(absl::string_view listing)
    : listing_(listing), hash_(HashField(Fnv1a64(""), listing)) {}

PageQuery& PageQuery::Add(absl::string_view field, absl::string_view value) {
  fields_.emplace_back(field);
  hash_ = HashField(HashField(hash_, field), value);
  return *this;
}

PageQuery& PageQuery::AddInt(absl::string_view field, int64_t value) {
  return Add(field, absl::StrCat(value));
}

PageQuery& PageQuery::AddDouble(absl::string_view field, double value) {
  if (value == 0) value = 0;  // -0.0 asks the same as 0.0
  uint64_t bits = 0;
  static_assert(sizeof(bits) == sizeof(value));
  std::memcpy(&bits, &value, sizeof(bits));
  return Add(field, absl::StrCat(absl::Hex(bits)));
}

std::string PageQuery::Token(absl::string_view position) const {
  if (position.empty()) return std::string();
  std::string raw(1, kVersion);
  AppendU32(hash_, &raw);
  raw.append(position.data(), position.size());
  AppendU32(Fnv1a64(raw), &raw);
  return absl::WebSafeBase64Escape(raw);
}

absl::StatusOr<std::string> PageQuery::Position(absl::string_view token) const {
  if (token.empty()) return std::string();
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw) ||
      raw.size() <= 1 + kFingerprintSize + kCheckSize || raw[0] != kVersion) {
    return Damaged();
  }
  const absl::string_view body(raw.data(), raw.size() - kCheckSize);
  std::string check;
  AppendU32(Fnv1a64(body), &check);
  if (absl::string_view(raw).substr(body.size()) != check) return Damaged();
  std::string fingerprint;
  AppendU32(hash_, &fingerprint);
  if (body.substr(1, kFingerprintSize) != fingerprint) return OtherQuery();
  return std::string(body.substr(1 + kFingerprintSize));
}

absl::Status PageQuery::Damaged() const {
  return absl::InvalidArgumentError(
      absl::StrCat("page_token is not valid for this query: it is not one ", listing_,
                   " handed out (cut short or changed when copied?); start again without it"));
}

absl::Status PageQuery::OtherQuery() const {
  return absl::InvalidArgumentError(absl::StrCat(
      "page_token belongs to another query: it was handed out by another listing or for other "
      "filters than this ",
      listing_, fields_.empty() ? "" : absl::StrCat(" (", absl::StrJoin(fields_, ", "), ")"),
      "; repeat the request it came from with only page_token added, or start again without it"));
}

}  // namespace stockpile::common
