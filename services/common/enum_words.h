#pragma once

// Protobuf enum values as words for people and labels.
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace stockpile::common {

// "MOVEMENT_TYPE_RECEIVE" -> "receive", "TRANSFER_STATE_IN_TRANSIT" -> "in_transit"
// (prefix = "MOVEMENT_TYPE_", "TRANSFER_STATE_").
inline std::string EnumWord(const std::string& full_name, absl::string_view prefix) {
  absl::string_view word = full_name;
  absl::ConsumePrefix(&word, prefix);
  return absl::AsciiStrToLower(word);
}

}  // namespace stockpile::common
