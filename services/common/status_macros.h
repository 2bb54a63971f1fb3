#pragma once

// Debian's Abseil 20220623 has no public status macros; these are ours.
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define STOCKPILE_CONCAT_INNER(a, b) a##b
#define STOCKPILE_CONCAT(a, b) STOCKPILE_CONCAT_INNER(a, b)

// Returns from the current function when `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                              \
  do {                                                     \
    ::absl::Status stockpile_status_ = (expr);             \
    if (!stockpile_status_.ok()) return stockpile_status_; \
  } while (0)

// ASSIGN_OR_RETURN(auto x, StatusOrExpr()): binds the value or returns the error.
// __COUNTER__ (expanded once, as an argument) names the temporary: __LINE__ can differ between
// the uses when the invocation spans several lines.
#define ASSIGN_OR_RETURN(lhs, expr) ASSIGN_OR_RETURN_NAMED(__COUNTER__, lhs, expr)
#define ASSIGN_OR_RETURN_NAMED(n, lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(STOCKPILE_CONCAT(stockpile_statusor_, n), lhs, expr)

#define ASSIGN_OR_RETURN_IMPL(statusor, lhs, expr) \
  auto statusor = (expr);                          \
  if (!statusor.ok()) return statusor.status();    \
  lhs = std::move(statusor).value()
