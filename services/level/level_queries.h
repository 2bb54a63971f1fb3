#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/common/clock.h"
#include "services/common/page_token.h"
#include "services/common/reference_data.h"
#include "services/level/hosting.h"
#include "services/level/level_store.h"
#include "stockpile/v1/level_service.pb.h"

namespace stockpile::level {

// The read side of a level instance: every query reads RocksDB directly (balances are kept
// up to date by the writer; nothing is recomputed from history except as-of balances).
// List methods return at most page_size results and an opaque next_page_token.
class LevelQueries {
 public:
  LevelQueries(const LevelStore& store, const common::ReferenceData& reference,
               const Hosting& hosting, const common::Clock& clock)
      : store_(store), reference_(reference), hosting_(hosting), clock_(clock) {}

  absl::StatusOr<stockpile::v1::Warehouse> GetWarehouse(absl::string_view name) const;
  absl::StatusOr<stockpile::v1::ListWarehousesResponse> ListWarehouses(
      const stockpile::v1::ListWarehousesRequest& req) const;
  absl::StatusOr<stockpile::v1::Balance> GetBalance(
      const stockpile::v1::GetBalanceRequest& req) const;
  absl::StatusOr<stockpile::v1::ListBalancesResponse> ListBalances(
      const stockpile::v1::ListBalancesRequest& req) const;
  absl::StatusOr<stockpile::v1::ListMovementsResponse> ListMovements(
      const stockpile::v1::ListMovementsRequest& req) const;
  absl::StatusOr<stockpile::v1::Hold> GetHold(absl::string_view name) const;
  absl::StatusOr<stockpile::v1::ListHoldsResponse> ListHolds(
      const stockpile::v1::ListHoldsRequest& req) const;
  absl::StatusOr<stockpile::v1::ListQuotasResponse> ListQuotas(
      const stockpile::v1::ListQuotasRequest& req) const;
  absl::StatusOr<stockpile::v1::ListReservesResponse> ListReserves(
      const stockpile::v1::ListReservesRequest& req) const;
  // Warehouses × items whose usable stock (unexpired, not held) is under their floor
  // (shortage), or whose stock on hand is above their ceiling (overstock).
  absl::StatusOr<stockpile::v1::ListQuotaStatusResponse> ListQuotaStatus(
      const stockpile::v1::ListQuotaStatusRequest& req, bool shortages) const;
  absl::StatusOr<stockpile::v1::ListExpiringLotsResponse> ListExpiringLots(
      const stockpile::v1::ListExpiringLotsRequest& req) const;

  // Serialized change entries with sequence > after, at most max_entries / about max_bytes.
  absl::Status ReadChanges(uint64_t after, size_t max_entries, size_t max_bytes,
                           std::vector<stockpile::v1::ChangeEntry>* out) const;
  // Empty when a consumer that has applied up to `from` (entry `from` committed at
  // `from_commit_time`, when given) follows this instance's history (which ends at `head`);
  // otherwise, in words, what does not match.
  absl::StatusOr<std::string> HistoryMismatch(uint64_t from,
                                              const google::protobuf::Timestamp* from_commit_time,
                                              uint64_t head) const;

 private:
  absl::StatusOr<std::string> HostedCode(absl::string_view warehouse_name) const;
  // Listing filters name something that exists here, so a typo or the wrong instance is told
  // apart from "nothing there" (NOT_FOUND, FAILED_PRECONDITION). Empty filters pass.
  absl::StatusOr<std::string> ExistingCode(absl::string_view warehouse_name) const;
  absl::Status CheckKnownItem(absl::string_view item) const;
  absl::Status CheckListedPrefix(absl::string_view region_prefix) const;
  // The key prefix of a listing of one warehouse or of every hosted one under a region prefix;
  // INVALID_ARGUMENT when the request gives both.
  template <typename Request>
  absl::StatusOr<std::string> WarehouseOrPrefix(const Request& req) const;
  absl::Status AsOf(const std::string& code, int64_t micros, stockpile::v1::Balance* b) const;
  // ListMovements of one request (its stored result), a page of it.
  absl::Status RequestMovements(const stockpile::v1::ListMovementsRequest& req,
                                const std::function<bool(const stockpile::v1::Movement&)>& keep,
                                size_t limit, const common::PageQuery& query,
                                stockpile::v1::ListMovementsResponse* resp) const;
  template <typename Record, typename Request, typename Response, typename Add>
  absl::StatusOr<Response> ListPerWarehouseItem(Cf cf, const Request& req,
                                                absl::string_view listing, absl::string_view what,
                                                Add add) const;

  const LevelStore& store_;
  const common::ReferenceData& reference_;
  const Hosting& hosting_;
  const common::Clock& clock_;
};

}  // namespace stockpile::level
