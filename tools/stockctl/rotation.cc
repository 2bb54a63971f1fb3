#include "tools/stockctl/rotation.h"

#include "absl/strings/str_cat.h"

namespace stockpile::stockctl {
namespace {

// The balance keeps its lots in issue order (earliest expiry first, lots without one last), so
// the first with stock free is the one to rotate; expired lots count, they are the most urgent.
const v1::LotBalance* LotToRotate(const v1::Balance& balance, const std::string& lot) {
  for (const auto& l : balance.lots()) {
    if (lot.empty() ? l.available() > 0 : l.lot() == lot) return &l;
  }
  return nullptr;
}

std::string WithNote(absl::string_view what, absl::string_view note) {
  return note.empty() ? std::string(what) : absl::StrCat(what, ": ", note);
}

std::string Expiry(const v1::Movement& m) {
  return m.expiry_date().empty() ? "" : absl::StrCat(" (expires ", m.expiry_date(), ")");
}

}  // namespace

absl::StatusOr<v1::ApplyBatchRequest> PlanRotation(const Rotation& r, const v1::Balance& balance) {
  const std::string where = absl::StrCat(r.item, " at ", r.warehouse);
  const v1::LotBalance* out = LotToRotate(balance, r.lot);
  if (out == nullptr && !r.lot.empty()) {
    return absl::NotFoundError(absl::StrCat("lot ", r.lot, " of ", where, " does not exist"));
  }
  if (out == nullptr || (r.quantity == 0 && out->available() <= 0)) {
    return absl::FailedPreconditionError(
        absl::StrCat("nothing to rotate: ",
                     out == nullptr ? where : absl::StrCat("lot ", out->lot(), " of ", where),
                     " has no stock available (held stock stays until its transfer ends)"));
  }
  const int64_t quantity = r.quantity > 0 ? r.quantity : out->available();

  v1::ApplyBatchRequest request;
  v1::IssueOp& issue = *request.add_operations()->mutable_issue();
  issue.set_warehouse(r.warehouse);
  issue.set_item(r.item);
  issue.set_lot(out->lot());
  issue.set_quantity(quantity);
  issue.set_note(WithNote(r.new_lot.empty()
                              ? std::string("rotation out, replaced by new stock")
                              : absl::StrCat("rotation out, replaced by lot ", r.new_lot),
                          r.note));

  v1::ReceiveOp& receive = *request.add_operations()->mutable_receive();
  receive.set_warehouse(r.warehouse);
  receive.set_item(r.item);
  receive.set_lot(r.new_lot);
  receive.set_expiry_date(r.new_expiry);
  receive.set_quantity(r.new_quantity > 0 ? r.new_quantity : quantity);
  receive.set_note(WithNote(absl::StrCat("rotation in, replaces lot ", out->lot()), r.new_note));
  return request;
}

void RecallFirstAttempt(const v1::ListMovementsResponse& first, Rotation& r) {
  for (const auto& m : first.movements()) {
    if (m.type() != v1::MOVEMENT_TYPE_ISSUE) continue;
    if (r.lot.empty()) r.lot = m.lot();
    if (r.quantity == 0) r.quantity = -m.quantity();
    return;
  }
}

std::string DescribeRotation(const v1::ApplyBatchResponse& response) {
  std::string out = "rotated";
  for (const auto& result : response.results()) {
    for (const auto& m : result.movements()) {
      const bool leaves = m.quantity() < 0;
      absl::StrAppend(&out, leaves ? " out " : ", in ", leaves ? -m.quantity() : m.quantity(),
                      " of lot ", m.lot(), Expiry(m));
    }
  }
  return out + "\n";
}

}  // namespace stockpile::stockctl
