#pragma once

// Checks for numeric flags whose defaults mean "not given" or whose type would silently wrap or
// clamp what was typed (-1 read as 2^64-1, 9223372036854775808 as INT64_MAX): such input is a
// usage error naming the flag, before anything is sent. Values in range but wrong for the
// service (a quantity of 0) still go to it, which says why.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace stockpile::stockctl {

// A whole number that fits int64.
inline CLI::Validator FitsInt64() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        int64_t value = 0;
        if (absl::SimpleAtoi(text, &value)) return "";
        return absl::StrCat(
            "must be a whole number between -9223372036854775808 and "
            "9223372036854775807; got ",
            text);
      },
      "INT64");
}

// A number, 0 or more.
inline CLI::Validator NotNegative() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double value = 0;
        if (absl::SimpleAtod(text, &value) && value >= 0) return "";
        return absl::StrCat("must be a number, 0 or more; got ", text);
      },
      "NUMBER>=0");
}

// A number from `low` to `high`.
inline CLI::Validator Between(double low, double high) {
  return CLI::Validator(
      [low, high](std::string& text) -> std::string {
        double value = 0;
        if (absl::SimpleAtod(text, &value) && value >= low && value <= high) return "";
        return absl::StrCat("must be a number from ", low, " to ", high, "; got ", text);
      },
      absl::StrCat("[", low, ",", high, "]"));
}

}  // namespace stockpile::stockctl
