#pragma once

// Key layouts of the level service's RocksDB column families. Integers are big-endian so that
// byte order equals numeric order; '/' never appears in codes, items or lots, so it separates.
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace stockpile::level::keys {

inline void AppendU64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}

inline uint64_t ReadU64(absl::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i) v = (v << 8) | static_cast<uint8_t>(s[i]);
  return v;
}

inline std::string U64(uint64_t v) {
  std::string out;
  AppendU64(out, v);
  return out;
}

// balances, quotas: "{warehouse code}/{item}"
inline std::string WarehouseItem(absl::string_view code, absl::string_view item) {
  return absl::StrCat(code, "/", item);
}

// reserves: "{code}/{item}/{mode}"
inline std::string Reserve(absl::string_view code, absl::string_view item, int mode) {
  return absl::StrCat(code, "/", item, "/", mode);
}

// movements (primary): "{code}/{item}/" + micros(8) + id(8): a warehouse × item's history in
// time order (as-of balances read it backwards); a warehouse's history merges its items.
inline std::string MovementPrefix(absl::string_view code, absl::string_view item) {
  return absl::StrCat(code, "/", item, "/");
}
inline std::string TimeId(int64_t micros, uint64_t id) {
  std::string k;
  AppendU64(k, static_cast<uint64_t>(micros));
  AppendU64(k, id);
  return k;
}
inline constexpr size_t kTimeIdSize = 16;

// movement_index (value: the movement's primary key):
//   "i{item}/" + micros + id         (an item's history across warehouses)
//   "r{reference}/" + micros + id    (movements of a transfer / hold)
inline std::string ByItem(absl::string_view item) { return absl::StrCat("i", item, "/"); }
inline std::string ByReference(absl::string_view ref) { return absl::StrCat("r", ref, "/"); }

// holds: "h{hold_id}" -> Hold; "x" + expire micros + hold_id -> "" (expiry queue);
//        "a{source warehouse}/{hold_id}" -> ArrivalRecord.
inline std::string Hold(absl::string_view hold_id) { return absl::StrCat("h", hold_id); }
inline std::string HoldExpiry(int64_t micros, absl::string_view hold_id) {
  std::string k = "x";
  AppendU64(k, static_cast<uint64_t>(micros));
  k.append(hold_id.data(), hold_id.size());
  return k;
}
inline std::string Arrival(absl::string_view source_warehouse, absl::string_view hold_id) {
  return absl::StrCat("a", source_warehouse, "/", hold_id);
}

// default CF
inline constexpr absl::string_view kMeta = "meta";
inline std::string Totals(absl::string_view item) { return absl::StrCat("totals/", item); }
inline constexpr absl::string_view kTotalsPrefix = "totals/";

// Smallest key greater than every key starting with `prefix`.
inline std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto c = static_cast<unsigned char>(end.back());
    if (c != 0xff) {
      end.back() = static_cast<char>(c + 1);
      return end;
    }
    end.pop_back();
  }
  return end;  // empty: no upper bound
}

}  // namespace stockpile::level::keys
