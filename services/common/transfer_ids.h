#pragma once

// Hold ids of the catalogue's transfer legs: "{transfer id}.L{leg}", where a transfer id is
// "T{unix seconds}-{sequence}-{hex digits}" (TransferStore::NewId; transfers made before ids had
// a random part lack the last "-{hex digits}").
//
// Hold ids are instance-wide and chosen by the caller, so the form is reserved: level services
// let only the catalogue (role service) and admins place a hold, close an id or record an arrival
// with an id of this form (rules.cc). Anyone else doing so took a transfer's leg: its real hold
// was refused with ALREADY_EXISTS. Both sides read the form from here, so they change together.

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace stockpile::common {

inline std::string TransferLegHoldId(absl::string_view transfer_id, int leg) {
  return absl::StrCat(transfer_id, ".L", leg);
}

namespace transfer_ids_internal {
// Consumes one or more leading characters of `s` for which `is` holds; false when there are none.
template <typename Predicate>
bool ConsumeRun(absl::string_view& s, Predicate is) {
  size_t n = 0;
  while (n < s.size() && is(static_cast<unsigned char>(s[n]))) ++n;
  s.remove_prefix(n);
  return n > 0;
}
}  // namespace transfer_ids_internal

// True when `hold_id` has the form of a transfer leg's hold id (whether or not such a transfer
// exists: ids of transfers still to be made are reserved as well).
inline bool IsTransferLegHoldId(absl::string_view hold_id) {
  using transfer_ids_internal::ConsumeRun;
  auto digit = [](unsigned char c) { return absl::ascii_isdigit(c); };
  auto hex = [](unsigned char c) { return absl::ascii_isxdigit(c); };
  absl::string_view s = hold_id;
  if (!absl::ConsumePrefix(&s, "T") || !ConsumeRun(s, digit) || !absl::ConsumePrefix(&s, "-") ||
      !ConsumeRun(s, digit)) {
    return false;
  }
  if (absl::ConsumePrefix(&s, "-") && !ConsumeRun(s, hex)) return false;
  return absl::ConsumePrefix(&s, ".L") && ConsumeRun(s, digit) && s.empty();
}

}  // namespace stockpile::common
