#pragma once

// Stock rotation (轮换): a lot near or past its expiry leaves the reserve and a fresh lot takes its
// place. Both postings go in one batch under one request id, so the reserve is never seen (by
// the catalogue, a shortage report or a dispatcher) with the old lot gone and the new one not
// yet in, and a retry does neither twice.
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "stockpile/v1/level_service.pb.h"
#include "stockpile/v1/stock.pb.h"

namespace stockpile::stockctl {

struct Rotation {
  std::string warehouse;  // resource name, "warehouses/{code}"
  std::string item;
  std::string lot;       // the lot going out; empty: the earliest-expiring lot with stock free
  int64_t quantity = 0;  // 0: all that lot has available (held stock stays)
  std::string new_lot;
  std::string new_expiry;    // "YYYY-MM-DD" where the item has a shelf life
  int64_t new_quantity = 0;  // 0: as many as go out
  std::string note;          // why and where the old lot goes (sold, donated, destroyed)
  std::string new_note;      // where the new lot comes from (supplier, purchase order)
};

// The batch for `rotation` against the item's current balance at the warehouse: picks the lot
// and quantity that go out when the flags leave them open. NOT_FOUND for a lot the balance
// does not have; FAILED_PRECONDITION when nothing of it is available to rotate.
absl::StatusOr<stockpile::v1::ApplyBatchRequest> PlanRotation(
    const Rotation& rotation, const stockpile::v1::Balance& balance);

// A retry (the same request id again) must send the same batch, or the service refuses it as
// different content; but the balance has moved since, so the lot and quantity the flags left
// open would now be picked anew. This fills them in from the movements the first attempt wrote
// (none: it never landed, and nothing changes).
void RecallFirstAttempt(const stockpile::v1::ListMovementsResponse& first, Rotation& rotation);

// One line saying what left and what came in, e.g.
// "rotated out 120 of lot L2019 (expires 2025-06-30), in 120 of lot L2026 (expires 2029-06-30)".
std::string DescribeRotation(const stockpile::v1::ApplyBatchResponse& response);

}  // namespace stockpile::stockctl
