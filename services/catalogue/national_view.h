#pragma once

// The catalogue's national view in memory: every warehouse × item of every level instance,
// in compact arrays so the national dataset (665 k warehouses × 42 items) fits in a few hundred
// MB, plus running roll-up sums per (province|city|county, item) kept up to date on every
// apply so a province roll-up is one array read. Township and village roll-ups are summed on
// demand over the (few) warehouses under them. Thread-safe: one writer at a time, many readers.

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "services/catalogue/search_adapter.h"
#include "services/common/reference_data.h"
#include "stockpile/v1/catalogue.pb.h"
#include "stockpile/v1/change.pb.h"
#include "stockpile/v1/level_service.pb.h"

namespace stockpile::catalogue {

// NOT_FOUND for an item code the item catalogue does not have, in the level services' words.
inline absl::Status UnknownItem(absl::string_view item) {
  return absl::NotFoundError(absl::StrCat("item ", item, " is not in the item catalogue"));
}

// Freshness of one source as the view reports it next to its warehouses' figures.
struct SourceFreshnessInfo {
  std::string id;
  int64_t last_commit_micros = 0;
  bool stale = false;
  // Some of its warehouses may not be in the view yet: nothing came from it so far, or a first
  // stream or a resync has not reached the head it began at.
  bool partial = false;
  // What it hosts, when known (SetSourceHosting): warehouses of this level under these prefixes.
  stockpile::v1::Level level = stockpile::v1::LEVEL_UNSPECIFIED;
  std::vector<std::string> prefixes;

  // Whether it may hold warehouses under `region_code` that the view does not have yet.
  bool MayHoldUnseenUnder(absl::string_view region_code) const;
};

class NationalView {
 public:
  // `search` may be null: nearest-first search then scans every warehouse.
  NationalView(const common::ReferenceData* reference, std::unique_ptr<StockSearch> search);
  ~NationalView();

  // ---- writes (state-based: the latest record wins; applying a record twice changes nothing)
  // `source` is the dense source index from SourceIndex().
  void UpsertWarehouse(const stockpile::v1::Warehouse& warehouse, uint16_t source);
  void SetBalance(const stockpile::v1::Balance& balance, uint16_t source);
  void SetQuota(const stockpile::v1::Quota& quota, uint16_t source);
  void SetReserve(const stockpile::v1::Reserve& reserve, uint16_t source);
  // Every record of entries[first..] in order, under one lock (what an applied batch does).
  void ApplyEntries(const google::protobuf::RepeatedPtrField<stockpile::v1::ChangeEntry>& entries,
                    int first, uint16_t source);
  // Takes these warehouses out of every answer (their stock must be zeroed first): their source
  // was dropped to be streamed again, and those it streams again come back (any record of them
  // does). Unknown codes are ignored.
  void ForgetWarehouses(const std::vector<std::string>& codes);

  // Dense index of a source id (created on first use); freshness shown with its figures.
  uint16_t SourceIndex(absl::string_view source_id);
  void SetSourceFreshness(uint16_t source, int64_t last_commit_micros, bool stale, bool partial);
  // The level and region prefixes the source hosts (from its registration).
  void SetSourceHosting(uint16_t source, stockpile::v1::Level level,
                        std::vector<std::string> prefixes);

  // ---- reads
  absl::StatusOr<stockpile::v1::WarehouseStock> GetStock(absl::string_view code,
                                                         absl::string_view item) const;
  // Warehouses under `prefix` in code order, strictly after `after_code`; fills *next_code with
  // the last code returned when more may follow.
  absl::StatusOr<std::vector<stockpile::v1::WarehouseStock>> ListStock(
      absl::string_view prefix, absl::string_view item, bool skip_zero, size_t limit,
      absl::string_view after_code, std::string* next_code) const;
  // `item` empty: every item the region holds or has a floor for.
  absl::StatusOr<stockpile::v1::Rollup> Rollup(absl::string_view region_code,
                                               absl::string_view item) const;
  // Nearest first; *last_index is the dense index of the last hit (for the page token).
  absl::StatusOr<std::vector<stockpile::v1::StockHit>> Search(const SearchQuery& query,
                                                              uint32_t* last_index) const;
  // Available stock of an item with a shelf life (dense item index) at a warehouse (code) in
  // lots past their expiry date: the view keeps no lots, the planner's snapshot does.
  using ExpiredStock = std::function<int64_t(absl::string_view code, int item)>;
  // Warehouse × item whose usable stock (on hand less held, less `expired`; null: none) is
  // below the quota floor, in (code, item) order after `after` ("{code}/{item}").
  absl::StatusOr<std::vector<stockpile::v1::QuotaStatus>> Shortages(
      absl::string_view prefix, absl::string_view item, size_t limit, absl::string_view after,
      std::string* next, const ExpiredStock& expired) const;

  int ItemIndex(absl::string_view item) const;  // -1 when unknown
  size_t warehouse_count() const;
  // Whether any source has streamed this warehouse (open or closed) and it is not forgotten.
  bool HasWarehouse(absl::string_view code) const;
  // Raw figures for tests and equality checks: on_hand, held, in_transit of one cell.
  std::optional<std::array<int64_t, 3>> Cell(absl::string_view code, absl::string_view item) const;

 private:
  struct BalanceCell {
    int64_t on_hand = 0;
    int64_t held = 0;
    int64_t in_transit = 0;
  };
  struct QuotaCell {
    int64_t min = 0;
    int64_t max = 0;
  };
  struct ReserveCell {
    int64_t contract = 0;
    int64_t capacity = 0;
    int32_t contract_lead = 0;
    int32_t capacity_lead = 0;
  };
  struct RollupCell {
    int64_t on_hand = 0;
    int64_t held = 0;
    int64_t in_transit = 0;
    int64_t contract = 0;
    int64_t capacity = 0;
    int64_t quota_floor = 0;
    int64_t stocked = 0;  // warehouses with on_hand > 0
  };
  struct WarehouseRow {
    std::string code;
    std::string region_code;
    float longitude = 0;
    float latitude = 0;
    int32_t rollups[3] = {-1, -1, -1};  // province, city, county roll-up indices
    uint16_t source = 0;
    uint8_t level = 0;
    bool forgotten = false;  // ForgetWarehouses: in no answer until a record of it comes again
    // CLOSED at its level: its stock is in roll-ups (it is there) but no search finds it, as no
    // plan takes from it.
    bool closed = false;
  };
  static constexpr uint32_t kChunkWarehouses = 4096;

  // Exact lookup of a warehouse by code without a second copy of the codes: the set holds dense
  // ids and hashes/compares the code of the row they name (transparent: looked up by code).
  struct CodeHash {
    using is_transparent = void;
    const std::vector<WarehouseRow>* rows;
    size_t operator()(uint32_t w) const { return (*this)(absl::string_view((*rows)[w].code)); }
    size_t operator()(absl::string_view code) const {
      return absl::Hash<absl::string_view>()(code);
    }
  };
  struct CodeEq {
    using is_transparent = void;
    const std::vector<WarehouseRow>* rows;
    absl::string_view Code(uint32_t w) const { return (*rows)[w].code; }
    absl::string_view Code(absl::string_view code) const { return code; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return Code(a) == Code(b);
    }
  };

  void UpsertWarehouseLocked(const stockpile::v1::Warehouse& warehouse, uint16_t source)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetBalanceLocked(const stockpile::v1::Balance& balance, uint16_t source)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetQuotaLocked(const stockpile::v1::Quota& quota, uint16_t source)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetReserveLocked(const stockpile::v1::Reserve& reserve, uint16_t source)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint32_t WarehouseFor(absl::string_view code, uint16_t source) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::optional<uint32_t> FindWarehouse(absl::string_view code) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void PlaceWarehouse(uint32_t w, absl::string_view region_code) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds `sign` to the warehouse counts (in all and from its source) of the province, city and
  // county above warehouse w.
  void CountInRollups(uint32_t w, int sign) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Key of rollup_source_warehouses_.
  static uint64_t RollupSourceKey(int32_t rollup, uint16_t source) {
    return uint64_t(uint32_t(rollup)) << 16 | source;
  }
  // Whether a stale source holds (or may hold, being partial) warehouses under the region:
  // `rollup` is its running roll-up index, or -1 for a township or village, whose warehouses
  // the caller checks as it sums them.
  bool StaleSourceUnder(absl::string_view region_code, int32_t rollup) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  BalanceCell& CellAt(uint32_t w, int item) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // What search counts as available there: nothing at a closed warehouse.
  static int64_t SearchableAvailable(const WarehouseRow& row, const BalanceCell& cell);
  uint64_t Key(uint32_t w, int item) const { return uint64_t{w} * items_ + uint64_t(item); }
  // Adds `sign` × the cell's figures to every running roll-up above warehouse w.
  void AddToRollups(uint32_t w, int item, const BalanceCell* b, const QuotaCell* q,
                    const ReserveCell* r, int sign) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillStock(uint32_t w, int item, stockpile::v1::WarehouseStock* out) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void SumWarehouse(uint32_t w, std::vector<RollupCell>& per_item) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  std::vector<SearchHit> BruteForceSearch(const SearchQuery& query) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const common::ReferenceData* reference_;
  const size_t items_;
  absl::flat_hash_map<std::string, int> item_index_;
  absl::flat_hash_map<std::string, int32_t> rollup_index_;  // province/city/county code -> idx

  mutable absl::Mutex mu_;
  std::unique_ptr<StockSearch> search_ ABSL_GUARDED_BY(mu_);
  std::vector<WarehouseRow> warehouses_ ABSL_GUARDED_BY(mu_);
  absl::btree_map<std::string, uint32_t> by_code_ ABSL_GUARDED_BY(mu_);  // ordered scans
  absl::flat_hash_set<uint32_t, CodeHash, CodeEq> code_index_ ABSL_GUARDED_BY(mu_);  // exact
  std::vector<std::unique_ptr<BalanceCell[]>> chunks_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, QuotaCell> quotas_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, ReserveCell> reserves_ ABSL_GUARDED_BY(mu_);
  std::vector<RollupCell> rollups_ ABSL_GUARDED_BY(mu_);  // rollup idx × items
  std::vector<int64_t> rollup_warehouses_ ABSL_GUARDED_BY(mu_);
  // The same per source (RollupSourceKey; no entry at 0): a roll-up is stale when a stale
  // source has warehouses under it, found with a lookup per stale source instead of a scan.
  absl::flat_hash_map<uint64_t, int64_t> rollup_source_warehouses_ ABSL_GUARDED_BY(mu_);
  size_t forgotten_ ABSL_GUARDED_BY(mu_) = 0;  // rows with `forgotten` set
  std::vector<SourceFreshnessInfo> sources_ ABSL_GUARDED_BY(mu_);
};

// "warehouses/4201-W001" -> "4201-W001"; "" when the name is malformed.
std::string WarehouseCode(absl::string_view name);
// The same as a view into `name` (no allocation; the apply path calls it per record).
absl::string_view WarehouseCodeView(absl::string_view name);
// "4201-W001" -> "4201".
std::string RegionOfWarehouse(absl::string_view code);

}  // namespace stockpile::catalogue
