#include "services/common/validation.h"

#include <array>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/common/proto_utf8.h"

namespace stockpile::common {
namespace {

using stockpile::v1::Level;

bool IsDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Days from civil date, after Howard Hinnant's public-domain algorithm.
int32_t DaysFromCivil(int y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int>(doe) - 719468;
}

void CivilFromDays(int32_t z, int& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp + (mp < 10 ? 3 : -9);
  y += (m <= 2);
}

}  // namespace

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Reject overlong forms, surrogates and values past U+10FFFF.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

namespace {
absl::Status NotUtf8(absl::string_view field) {
  return absl::InvalidArgumentError(absl::StrCat(field, " is not valid UTF-8"));
}
bool IsInvalidUtf8Marker(absl::string_view value) { return value == kInvalidUtf8Marker; }
}  // namespace

absl::Status CheckText(absl::string_view field, absl::string_view value, size_t max_len,
                       bool required) {
  if (IsInvalidUtf8Marker(value)) return NotUtf8(field);
  if (value.empty()) {
    if (required) return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
    return absl::OkStatus();
  }
  if (value.size() > max_len) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is ", value.size(), " bytes long; the limit is ", max_len));
  }
  if (!IsValidUtf8(value)) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is not valid UTF-8"));
  }
  for (char c : value) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
      return absl::InvalidArgumentError(absl::StrCat(field, " contains a control character"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckRegionPrefix(absl::string_view prefix) {
  if (prefix.size() > 12) {
    return absl::InvalidArgumentError("region_prefix is longer than a village code (12 digits)");
  }
  for (char c : prefix) {
    if (c < '0' || c > '9') {
      return absl::InvalidArgumentError(
          absl::StrCat("region_prefix must be digits; got \"",
                       IsValidUtf8(prefix) ? std::string(prefix) : "<invalid UTF-8>", "\""));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckId(absl::string_view field, absl::string_view value, bool required) {
  if (IsInvalidUtf8Marker(value)) return NotUtf8(field);
  if (value.empty()) {
    if (required) return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
    return absl::OkStatus();
  }
  if (value.size() > kMaxIdLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is ", value.size(), " characters long; the limit is ", kMaxIdLength));
  }
  for (char c : value) {
    const bool ok = absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
                    c == ':' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " may contain only letters, digits and . _ : -; got \"",
          IsValidUtf8(value) ? std::string(value) : std::string("<invalid UTF-8>"), "\""));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckPositiveQuantity(absl::string_view field, int64_t q) {
  if (q <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must be positive; got ", q));
  }
  if (q > kMaxQuantity) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " ", q, " exceeds the limit of ", kMaxQuantity));
  }
  return absl::OkStatus();
}

Level LevelOfRegionCode(absl::string_view code) {
  if (!IsDigits(code)) return Level::LEVEL_UNSPECIFIED;
  switch (code.size()) {
    case 2:
      return Level::LEVEL_PROVINCE;
    case 4:
      return Level::LEVEL_CITY;
    case 6:
      return Level::LEVEL_COUNTY;
    case 9:
      return Level::LEVEL_TOWNSHIP;
    case 12:
      return Level::LEVEL_VILLAGE;
    default:
      return Level::LEVEL_UNSPECIFIED;
  }
}

int RegionCodeLength(Level level) {
  static constexpr std::array<int, 6> kLengths = {0, 2, 4, 6, 9, 12};
  const int i = static_cast<int>(level);
  return (i >= 0 && i < 6) ? kLengths[i] : 0;
}

absl::string_view LevelName(Level level) {
  switch (level) {
    case Level::LEVEL_PROVINCE:
      return "province";
    case Level::LEVEL_CITY:
      return "city";
    case Level::LEVEL_COUNTY:
      return "county";
    case Level::LEVEL_TOWNSHIP:
      return "township";
    case Level::LEVEL_VILLAGE:
      return "village";
    default:
      return "unspecified";
  }
}

std::optional<Level> ParseLevel(absl::string_view name) {
  for (Level l : {Level::LEVEL_PROVINCE, Level::LEVEL_CITY, Level::LEVEL_COUNTY,
                  Level::LEVEL_TOWNSHIP, Level::LEVEL_VILLAGE}) {
    if (name == LevelName(l)) return l;
  }
  return std::nullopt;
}

absl::StatusOr<int32_t> ParseDate(absl::string_view field, absl::string_view date) {
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must be a date as YYYY-MM-DD; got \"",
        IsValidUtf8(date) ? std::string(date.substr(0, 64)) : "<invalid UTF-8>", "\""));
  };
  if (date.size() != 10 || date[4] != '-' || date[7] != '-') return bad();
  if (!IsDigits(date.substr(0, 4)) || !IsDigits(date.substr(5, 2)) ||
      !IsDigits(date.substr(8, 2))) {
    return bad();
  }
  const int y = std::stoi(std::string(date.substr(0, 4)));
  const unsigned m = std::stoi(std::string(date.substr(5, 2)));
  const unsigned d = std::stoi(std::string(date.substr(8, 2)));
  static constexpr unsigned kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  // The form is right: say what is wrong with the date itself.
  if (y < 1900 || y > 2200) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must be a date between 1900-01-01 and ",
                                                   "2200-12-31; got \"", date, "\""));
  }
  if (m < 1 || m > 12 || d < 1 || d > kDays[m - 1] || (m == 2 && d == 29 && !leap)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be a date that exists; got \"", date, "\""));
  }
  return DaysFromCivil(y, m, d);
}

std::string FormatDate(int32_t days) {
  int y;
  unsigned m, d;
  CivilFromDays(days, y, m, d);
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04d-%02u-%02u", y, m, d);
  return buf;
}

int32_t DaysFromMicros(int64_t micros) {
  constexpr int64_t kMicrosPerDay = 86'400'000'000LL;
  int64_t days = micros / kMicrosPerDay;
  if (micros < 0 && micros % kMicrosPerDay != 0) --days;
  return static_cast<int32_t>(days);
}

int32_t ReserveDay(int64_t unix_micros) {
  constexpr int64_t kChinaUtcOffsetMicros = 8LL * 3600 * 1'000'000;
  return DaysFromMicros(unix_micros + kChinaUtcOffsetMicros);
}

absl::Status CheckInsecureAlone(
    std::initializer_list<std::pair<absl::string_view, absl::string_view>> security_flags) {
  std::vector<std::string> given;
  for (const auto& [flag, value] : security_flags) {
    if (!value.empty()) given.emplace_back(flag);
  }
  if (given.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "--insecure (or STOCKPILE_INSECURE=1 in the environment) contradicts ",
      absl::StrJoin(given, ", "),
      ": give the TLS and token flags without it for a secured service, or drop them for local "
      "development"));
}

absl::StatusOr<std::string> RegionOfWarehouseCode(absl::string_view code) {
  const size_t dash = code.find("-W");
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "warehouse code must look like {region code}-W{1-6 digits}, e.g. 4201-W001; got \"",
        IsValidUtf8(code) ? std::string(code.substr(0, 64)) : "<invalid UTF-8>", "\""));
  };
  if (dash == absl::string_view::npos) return bad();
  absl::string_view region = code.substr(0, dash);
  absl::string_view number = code.substr(dash + 2);
  if (LevelOfRegionCode(region) == Level::LEVEL_UNSPECIFIED || !IsDigits(number) ||
      number.size() > 6) {
    return bad();
  }
  return std::string(region);
}

absl::StatusOr<std::string> WarehouseCodeFromName(absl::string_view name) {
  if (!absl::StartsWith(name, kWarehousePrefix) || name.size() == kWarehousePrefix.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "warehouse name must be \"warehouses/{code}\"; got \"",
        IsValidUtf8(name) ? std::string(name.substr(0, 64)) : "<invalid UTF-8>", "\""));
  }
  std::string code(name.substr(kWarehousePrefix.size()));
  auto region = RegionOfWarehouseCode(code);
  if (!region.ok()) return region.status();
  return code;
}

std::string WarehouseName(absl::string_view code) { return absl::StrCat(kWarehousePrefix, code); }

std::string MovementName(absl::string_view warehouse_name, uint64_t id) {
  return absl::StrCat(warehouse_name, "/movements/", id);
}

}  // namespace stockpile::common
