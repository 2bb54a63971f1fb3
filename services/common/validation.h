#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "stockpile/v1/warehouse.pb.h"

namespace stockpile::common {

inline constexpr size_t kMaxIdLength = 128;                 // request ids, lots, hold ids, actors
inline constexpr size_t kMaxTextLength = 1024;              // names, notes, addresses, reasons
inline constexpr int64_t kMaxQuantity = 1'000'000'000'000;  // 10^12 units: far above any reserve

// Checks a free-text field: valid UTF-8, no control characters, at most `max_len` bytes.
absl::Status CheckText(absl::string_view field, absl::string_view value, size_t max_len,
                       bool required);
// Identifiers: 1..128 of [A-Za-z0-9._:-].
absl::Status CheckId(absl::string_view field, absl::string_view value, bool required);
// 1 <= q <= kMaxQuantity.
absl::Status CheckPositiveQuantity(absl::string_view field, int64_t q);
bool IsValidUtf8(absl::string_view s);
// A listing's region_prefix: up to 12 digits (any length: "420" is a plain prefix). Whether a
// region has it is ReferenceData::CheckRegionFilter's question.
absl::Status CheckRegionPrefix(absl::string_view prefix);

// Region codes are all digits, 2/4/6/9/12 long; the level follows from the length.
stockpile::v1::Level LevelOfRegionCode(absl::string_view code);
absl::string_view LevelName(stockpile::v1::Level level);
std::optional<stockpile::v1::Level> ParseLevel(absl::string_view name);
int RegionCodeLength(stockpile::v1::Level level);

// "YYYY-MM-DD" <-> days since 1970-01-01 (proleptic Gregorian).
absl::StatusOr<int32_t> ParseDate(absl::string_view field, absl::string_view date);
std::string FormatDate(int32_t days);
int32_t DaysFromMicros(int64_t micros);
// Reserve day of a wall-clock moment (microseconds since the Unix epoch): expiry dates are
// calendar days in China Standard Time (UTC+8), for the levels, the planner and the catalogue
// alike, so all of them count days_left and expired lots from the same midnight.
int32_t ReserveDay(int64_t unix_micros);

// Every warehouse resource name starts with it.
inline constexpr absl::string_view kWarehousePrefix = "warehouses/";

// --insecure (or STOCKPILE_INSECURE=1, which a developer's shell may still export) together with
// a TLS or token flag: an operator asked for both a secured and an open service. Refused, naming
// the flags given, rather than silently serving plaintext without token checks.
absl::Status CheckInsecureAlone(
    std::initializer_list<std::pair<absl::string_view, absl::string_view>> security_flags);

// Warehouse code "{region}-W{1..6 digits}" -> region code.
absl::StatusOr<std::string> RegionOfWarehouseCode(absl::string_view code);
// "warehouses/{code}" -> code.
absl::StatusOr<std::string> WarehouseCodeFromName(absl::string_view name);
std::string WarehouseName(absl::string_view code);
// "{warehouse name}/movements/{id}".
std::string MovementName(absl::string_view warehouse_name, uint64_t id);

}  // namespace stockpile::common
