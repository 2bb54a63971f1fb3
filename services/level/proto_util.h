#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "stockpile/v1/stock.pb.h"

namespace stockpile::level {

// A record read back from the store; DATA_LOSS names `what` when it does not parse.
template <typename Msg>
absl::StatusOr<Msg> Parse(absl::string_view value, absl::string_view what) {
  Msg m;
  if (!m.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(absl::StrCat("stored ", what, " is unreadable"));
  }
  return m;
}

inline google::protobuf::Timestamp ToTimestamp(int64_t micros) {
  google::protobuf::Timestamp t;
  int64_t seconds = micros / 1'000'000;
  int64_t rest = micros % 1'000'000;
  if (rest < 0) {
    rest += 1'000'000;
    --seconds;
  }
  t.set_seconds(seconds);
  t.set_nanos(static_cast<int32_t>(rest * 1000));
  return t;
}

inline int64_t ToMicros(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1'000'000 + t.nanos() / 1000;
}

// Whether an active hold has reached its expiry at `now_micros`: it can no longer ship, reads as
// expired, and the sweep releases it.
inline bool ActiveHoldExpired(const stockpile::v1::Hold& h, int64_t now_micros) {
  return h.state() == stockpile::v1::HOLD_STATE_ACTIVE && ToMicros(h.expire_time()) <= now_micros;
}

}  // namespace stockpile::level
