#pragma once

// Small formatting helpers shared by the renderers.
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "services/common/enum_words.h"

namespace stockpile::stockctl {

using common::EnumWord;  // "MOVEMENT_TYPE_RECEIVE" -> "receive"

inline std::string Num(int64_t n) { return absl::StrCat(n); }

inline std::string Signed(int64_t n) { return n > 0 ? absl::StrCat("+", n) : absl::StrCat(n); }

// Up to six significant digits ("2500", "114.305").
inline std::string Decimal(double d) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", d);
  return buf;
}

// Fixed decimals, for distances and lags ("12.3").
inline std::string Fixed(double d, int decimals) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, d);
  return buf;
}

inline std::string YesNo(bool b) { return b ? "yes" : "no"; }

}  // namespace stockpile::stockctl
