#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "services/common/reference_data.h"
#include "services/level/hosting.h"
#include "services/level/level_store.h"
#include "stockpile/v1/change.pb.h"
#include "stockpile/v1/level_service.pb.h"

namespace stockpile::level {

// Per-item ledger totals changed by one command.
using TotalsDelta = std::map<std::string, stockpile::v1::ItemTotals>;

// What a command writes besides its own records: shared by every command of a commit group.
struct CommandContext {
  StoreTxn* txn = nullptr;
  const common::ReferenceData* reference = nullptr;
  const Hosting* hosting = nullptr;
  int64_t now_micros = 0;
  uint64_t sequence = 0;  // change-stream sequence of this command
  uint64_t* last_movement_id = nullptr;
  std::string request_id;
  std::string actor;
  // Movements recorded by the command, by type (counted once the command is kept).
  std::array<uint64_t, 10> movements_by_type{};
};

// Applies stock operations of one command against the group transaction. Every operation is
// checked in full before it changes anything; the command's records (balances, holds,
// movements) and its change entry are written by Finish(). On any error the caller drops the
// command's writes, so a refused batch leaves nothing behind.
// Each operation fills the MovementResult it is given with its movements (built in place, so
// a result on the call's arena is never copied): keep every result alive until Finish() has
// run. A refused operation may leave its result half filled. The balances the command leaves
// are stated once, in the change entry; the caller's reply takes them from there.
class Ledger {
 public:
  explicit Ledger(const CommandContext& ctx) : ctx_(ctx) {}

  absl::Status Apply(const stockpile::v1::Operation& op, stockpile::v1::MovementResult* result);
  absl::Status Receive(const stockpile::v1::ReceiveOp& op, stockpile::v1::MovementResult* result);
  absl::Status Issue(const stockpile::v1::IssueOp& op, stockpile::v1::MovementResult* result);
  absl::Status Stocktake(const stockpile::v1::StocktakeOp& op,
                         stockpile::v1::MovementResult* result);
  absl::Status Hold(const stockpile::v1::HoldOp& op, stockpile::v1::MovementResult* result);
  absl::Status Release(const stockpile::v1::ReleaseOp& op, stockpile::v1::MovementResult* result);
  absl::Status Ship(const stockpile::v1::ShipOp& op, stockpile::v1::MovementResult* result);
  absl::Status ReceiveTransfer(const stockpile::v1::ReceiveTransferOp& op,
                               stockpile::v1::MovementResult* result);
  absl::Status ConfirmDelivery(const stockpile::v1::ConfirmDeliveryOp& op,
                               stockpile::v1::MovementResult* result);
  // Releases an active hold whose expiry has passed (the hold sweeper's command). A hold it
  // cannot release (say its warehouse is no longer hosted here) is an error that leaves the
  // ledger as it was, so the sweep can go on with the others.
  absl::Status ExpireHold(absl::string_view hold_id, stockpile::v1::MovementResult* result);

  // Writes every touched record and hands their new state over to `change`; the ledger is
  // done after it.
  absl::Status Finish(stockpile::v1::ChangeEntry* change);
  const TotalsDelta& totals_delta() const { return totals_; }
  const std::array<uint64_t, 10>& movements_by_type() const { return movements_by_type_; }

  // Reserve day of a moment: expiry dates are calendar days in China Standard Time (UTC+8).
  static int32_t ReserveDay(int64_t micros);

 private:
  struct LotRef {
    int index;
    int64_t quantity;
  };

  absl::StatusOr<stockpile::v1::Warehouse*> LoadWarehouse(absl::string_view name);
  absl::StatusOr<const common::ItemInfo*> LoadItem(absl::string_view code);
  absl::StatusOr<stockpile::v1::Balance*> LoadBalance(const stockpile::v1::Warehouse& w,
                                                      absl::string_view item);
  absl::StatusOr<stockpile::v1::Hold*> LoadHold(absl::string_view hold_id);
  // A hold that asks to keep the reserve floor (HoldOp.keep_reserve_floor) and would not.
  absl::Status CheckKeepsReserveFloor(const stockpile::v1::Warehouse& w,
                                      const stockpile::v1::Balance& b, int64_t quantity);
  absl::StatusOr<stockpile::v1::Balance*> LoadHoldBalance(const stockpile::v1::Hold& hold);
  // FAILED_PRECONDITION naming the first lot of `hold` whose expiry date is before today.
  absl::Status CheckHeldLotsUnexpired(const stockpile::v1::Hold& hold) const;
  absl::Status ReleaseAbsent(const stockpile::v1::ReleaseOp& op,
                             stockpile::v1::MovementResult* result);
  absl::Status CheckAcceptsStock(const stockpile::v1::Warehouse& w) const;
  absl::Status CheckMovesStock(const stockpile::v1::Warehouse& w) const;
  absl::Status CheckOtherWarehouseRegion(absl::string_view code, absl::string_view role);
  absl::Status CheckLocalDestination(const stockpile::v1::Hold& hold,
                                     absl::string_view destination);
  absl::StatusOr<std::string> ResolveLot(const common::ItemInfo& item, absl::string_view lot,
                                         absl::string_view expiry);
  // Lots to take `quantity` from: the named lot, or earliest expiry first over unexpired lots.
  absl::StatusOr<std::vector<LotRef>> PickLots(const stockpile::v1::Balance& b,
                                               absl::string_view lot, int64_t quantity,
                                               absl::string_view what) const;
  stockpile::v1::LotBalance* FindOrAddLot(stockpile::v1::Balance* b, absl::string_view lot,
                                          absl::string_view expiry);
  // FindOrAddLot for a lot id entered by staff: one the balance lacks but has in another case
  // ("default" for DEFAULT) is refused, since it would start a second lot beside the one meant.
  absl::StatusOr<stockpile::v1::LotBalance*> FindOrAddEnteredLot(stockpile::v1::Balance* b,
                                                                 absl::string_view lot,
                                                                 absl::string_view expiry);
  bool Expired(const stockpile::v1::LotBalance& lot) const;

  stockpile::v1::Movement* Record(stockpile::v1::MovementType type, const stockpile::v1::Balance& b,
                                  const stockpile::v1::LotBalance& lot, int64_t quantity,
                                  int64_t held_delta, absl::string_view note,
                                  absl::string_view reference,
                                  stockpile::v1::MovementResult* result);
  absl::Status WriteMovements();
  stockpile::v1::ItemTotals& Totals(absl::string_view item);

  const CommandContext& ctx_;
  // Records loaded by this command, written back by Finish().
  std::map<std::string, stockpile::v1::Warehouse, std::less<>> warehouses_;  // by code
  std::map<std::string, stockpile::v1::Balance> balances_;
  std::map<std::string, stockpile::v1::Hold> holds_;
  std::map<std::string, std::string> arrivals_;  // key -> serialized ArrivalRecord
  // The movements recorded (owned by the results handed back, whose addresses stay put), with
  // their primary keys and stored values.
  struct StoredMovement {
    const stockpile::v1::Movement* movement;
    std::string key;
    std::string value;
  };
  std::vector<StoredMovement> records_;
  TotalsDelta totals_;
  std::array<uint64_t, 10> movements_by_type_{};
};

// A movement as stored under its primary key (keys::MovementPrefix + keys::TimeId). The value
// leaves out what the key gives back (warehouse, item, commit time, and the name that follows
// from warehouse and id), a third of its bytes; values stored whole by earlier builds are
// read as they are.
absl::StatusOr<stockpile::v1::Movement> MovementFromRecord(absl::string_view key,
                                                           absl::string_view value);

// Recomputes a balance's totals from its lots and keeps lots in issue order
// (earliest expiry first; lots without expiry last).
void NormalizeBalance(stockpile::v1::Balance* b);

}  // namespace stockpile::level
