#pragma once

#include <gmock/gmock.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace stockpile::testing {

inline absl::StatusCode CodeOf(const absl::Status& s) { return s.code(); }
template <typename T>
absl::StatusCode CodeOf(const absl::StatusOr<T>& s) {
  return s.status().code();
}
inline absl::StatusCode CodeOf(const grpc::Status& s) {
  return static_cast<absl::StatusCode>(s.error_code());
}
inline std::string MessageOf(const absl::Status& s) { return std::string(s.message()); }
template <typename T>
std::string MessageOf(const absl::StatusOr<T>& s) {
  return std::string(s.status().message());
}
inline std::string MessageOf(const grpc::Status& s) { return s.error_message(); }

// EXPECT_THAT(status, StatusIs(absl::StatusCode::kNotFound));
// EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("quantity")));
// Works for absl::Status, absl::StatusOr<T> and grpc::Status.
MATCHER_P(StatusIs, code, "has status code " + absl::StatusCodeToString(code)) {
  if (CodeOf(arg) == code) return true;
  *result_listener << "whose code is " << absl::StatusCodeToString(CodeOf(arg)) << " ("
                   << MessageOf(arg) << ")";
  return false;
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has status code " + absl::StatusCodeToString(code) + " and a matching message") {
  if (CodeOf(arg) != code) {
    *result_listener << "whose code is " << absl::StatusCodeToString(CodeOf(arg)) << " ("
                     << MessageOf(arg) << ")";
    return false;
  }
  return ::testing::ExplainMatchResult(message_matcher, MessageOf(arg), result_listener);
}

MATCHER(IsOk, "is OK") {
  if (CodeOf(arg) == absl::StatusCode::kOk) return true;
  *result_listener << "whose status is " << absl::StatusCodeToString(CodeOf(arg)) << ": "
                   << MessageOf(arg);
  return false;
}

}  // namespace stockpile::testing
