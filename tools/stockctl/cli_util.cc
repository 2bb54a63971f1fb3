#include "tools/stockctl/cli_util.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <optional>
#include <random>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "services/common/status_macros.h"
#include "services/common/validation.h"

namespace stockpile::stockctl {
namespace {

namespace v1 = stockpile::v1;

// Looks `word` up among an enum's value names after stripping their common prefix.
template <typename Enum, typename Parser>
absl::StatusOr<Enum> ParseEnumWord(absl::string_view flag, absl::string_view word,
                                   absl::string_view prefix,
                                   const google::protobuf::EnumDescriptor* d, Parser parse) {
  const std::string wanted = absl::StrCat(prefix, absl::AsciiStrToUpper(word));
  Enum value;
  if (!word.empty() && parse(wanted, &value) && static_cast<int>(value) != 0) return value;
  std::string choices;
  for (int i = 1; i < d->value_count(); ++i) {
    absl::string_view name = d->value(i)->name();
    absl::ConsumePrefix(&name, prefix);
    absl::StrAppend(&choices, i > 1 ? ", " : "", absl::AsciiStrToLower(name));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(flag, " must be one of ", choices, "; got \"", word, "\""));
}

// A lot argument's parts: the lot, then `count` numbers, then an optional expiry date.
struct LotArgument {
  std::string lot;
  std::vector<std::string> numbers;
  std::string expiry;
};

// Lot ids may hold ':' (the server allows it): the numbers are the last fields, after them
// only a date (which is never a whole number), and the lot is everything before them.
std::optional<LotArgument> SplitLotArgument(absl::string_view text, size_t count) {
  std::vector<std::string> parts = absl::StrSplit(text, ':');
  LotArgument out;
  int64_t number = 0;
  if (!absl::SimpleAtoi(parts.back(), &number)) {
    out.expiry = parts.back();
    parts.pop_back();
  }
  if (parts.size() <= count) return std::nullopt;
  out.numbers.assign(parts.end() - count, parts.end());
  parts.resize(parts.size() - count);
  out.lot = absl::StrJoin(parts, ":");
  if (out.lot.empty()) return std::nullopt;
  return out;
}

// A last field of eight digits that reads as a date (20270101) after a number is an expiry
// typed without dashes, a common way to write dates in China. Read as a number it would become
// the count (20,270,101 units) and the real count part of the lot id, so it is refused.
absl::Status RefuseCompactDate(absl::string_view flag, absl::string_view form,
                               absl::string_view text, size_t count) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  const absl::string_view last = parts.back();
  int64_t before_last = 0;
  if (parts.size() < count + 2 || last.size() != 8 ||
      !std::all_of(last.begin(), last.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(parts[parts.size() - 2], &before_last)) {
    return absl::OkStatus();
  }
  const std::string dashed =
      absl::StrCat(last.substr(0, 4), "-", last.substr(4, 2), "-", last.substr(6, 2));
  if (!common::ParseDate(flag, dashed).ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(flag, " must be ", form, "[:YYYY-MM-DD]; got \"", text, "\": its last field ",
                   last, " reads as a date: write the expiry with dashes (", dashed, ")"));
}

}  // namespace

absl::StatusOr<google::protobuf::Timestamp> ParseTimeArg(absl::string_view flag,
                                                         absl::string_view text) {
  google::protobuf::Timestamp ts;
  if (text.size() == 10) {
    auto days = common::ParseDate(flag, text);
    if (!days.ok()) return days.status();
    std::tm tm{};
    tm.tm_year = std::stoi(std::string(text.substr(0, 4))) - 1900;
    tm.tm_mon = std::stoi(std::string(text.substr(5, 2))) - 1;
    tm.tm_mday = std::stoi(std::string(text.substr(8, 2)));
    tm.tm_isdst = -1;
    ts.set_seconds(static_cast<int64_t>(std::mktime(&tm)));
    return ts;
  }
  if (!google::protobuf::util::TimeUtil::FromString(std::string(text), &ts)) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, " must be RFC 3339 (2024-05-01T08:00:00Z) or YYYY-MM-DD; got \"", text, "\""));
  }
  return ts;
}

absl::Status SetTimeRange(absl::string_view since, absl::string_view until,
                          stockpile::v1::ListMovementsRequest* request) {
  if (!since.empty()) {
    auto when = ParseTimeArg("--since", since);
    if (!when.ok()) return when.status();
    *request->mutable_start_time() = *when;
  }
  if (!until.empty()) {
    auto when = ParseTimeArg("--until", until);
    if (!when.ok()) return when.status();
    *request->mutable_end_time() = *when;
  }
  return absl::OkStatus();
}

std::string NewRequestId() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char when[32];
  std::strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &utc);
  std::random_device device;
  std::mt19937_64 rng((static_cast<uint64_t>(device()) << 32) ^ device());
  char random[17];
  std::snprintf(random, sizeof(random), "%016llx", static_cast<unsigned long long>(rng()));
  return absl::StrCat("stockctl-", when, "-", random);
}

absl::StatusOr<std::string> WarehouseNameArg(absl::string_view text) {
  absl::string_view code = text;
  absl::ConsumePrefix(&code, "warehouses/");
  auto region = common::RegionOfWarehouseCode(code);
  if (!region.ok()) return region.status();
  return common::WarehouseName(code);
}

absl::StatusOr<v1::WarehouseKind> ParseKind(absl::string_view word) {
  return ParseEnumWord<v1::WarehouseKind>("--kind", word, "WAREHOUSE_KIND_",
                                          v1::WarehouseKind_descriptor(), v1::WarehouseKind_Parse);
}

absl::StatusOr<v1::WarehouseStatus> ParseWarehouseStatus(absl::string_view word) {
  return ParseEnumWord<v1::WarehouseStatus>("--status", word, "WAREHOUSE_STATUS_",
                                            v1::WarehouseStatus_descriptor(),
                                            v1::WarehouseStatus_Parse);
}

absl::StatusOr<v1::ReserveMode> ParseReserveMode(absl::string_view word) {
  return ParseEnumWord<v1::ReserveMode>("--mode", word, "RESERVE_MODE_",
                                        v1::ReserveMode_descriptor(), v1::ReserveMode_Parse);
}

absl::StatusOr<v1::HoldState> ParseHoldState(absl::string_view word) {
  return ParseEnumWord<v1::HoldState>("--state", word, "HOLD_STATE_", v1::HoldState_descriptor(),
                                      v1::HoldState_Parse);
}

absl::StatusOr<v1::HoldLot> ParseHoldLot(absl::string_view text, absl::string_view flag,
                                         absl::string_view form) {
  RETURN_IF_ERROR(RefuseCompactDate(flag, form, text, 1));
  auto fields = SplitLotArgument(text, 1);
  v1::HoldLot lot;
  int64_t quantity = 0;
  if (!fields.has_value() || !absl::SimpleAtoi(fields->numbers[0], &quantity)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " must be ", form, "[:YYYY-MM-DD]; got \"", text, "\""));
  }
  lot.set_lot(fields->lot);
  lot.set_quantity(quantity);
  lot.set_expiry_date(fields->expiry);
  return lot;
}

absl::StatusOr<v1::HoldLot> ParseDeliveredLot(absl::string_view text) {
  RETURN_IF_ERROR(RefuseCompactDate("--lot", "LOT:SHIPPED:RECEIVED", text, 2));
  auto fields = SplitLotArgument(text, 2);
  v1::HoldLot lot;
  int64_t shipped = 0, received = 0;
  if (!fields.has_value() || !absl::SimpleAtoi(fields->numbers[0], &shipped) ||
      !absl::SimpleAtoi(fields->numbers[1], &received)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--lot must be LOT:SHIPPED:RECEIVED[:YYYY-MM-DD]; got \"", text, "\""));
  }
  lot.set_lot(fields->lot);
  lot.set_quantity(shipped);
  lot.set_received(received);
  lot.set_expiry_date(fields->expiry);
  return lot;
}

}  // namespace stockpile::stockctl
