#include "services/common/expiring_lots.h"

#include "absl/strings/str_cat.h"
#include "services/common/validation.h"

namespace stockpile::common {

absl::StatusOr<int32_t> ExpiryWindowDays(const stockpile::v1::ListExpiringLotsRequest& req) {
  if (!req.has_within_days()) return 30;
  if (req.within_days() < 0 || req.within_days() > 3650) {
    return absl::InvalidArgumentError(
        absl::StrCat("within_days must be between 0 and 3650; got ", req.within_days()));
  }
  return req.within_days();
}

int AppendExpiringLots(const stockpile::v1::Balance& balance, int32_t today, int32_t within,
                       stockpile::v1::ListExpiringLotsResponse* resp) {
  int added = 0;
  for (const auto& lot : balance.lots()) {
    if (lot.expiry_date().empty() || lot.on_hand() <= 0) continue;
    auto day = ParseDate("expiry_date", lot.expiry_date());
    if (!day.ok() || *day - today > within) continue;
    auto* e = resp->add_lots();
    e->set_warehouse(balance.warehouse());
    e->set_item(balance.item());
    e->set_lot(lot.lot());
    e->set_expiry_date(lot.expiry_date());
    e->set_on_hand(lot.on_hand());
    e->set_days_left(*day - today);
    ++added;
  }
  return added;
}

bool ExpiredOn(absl::string_view expiry_date, int32_t today) {
  if (expiry_date.empty()) return false;
  auto day = ParseDate("expiry_date", expiry_date);
  return day.ok() && *day < today;
}

int64_t UsableStock(const stockpile::v1::Balance& balance, int32_t today) {
  int64_t usable = 0;
  for (const auto& lot : balance.lots()) {
    if (!ExpiredOn(lot.expiry_date(), today)) usable += lot.on_hand() - lot.held();
  }
  return usable;
}

}  // namespace stockpile::common
