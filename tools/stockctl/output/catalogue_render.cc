#include "tools/stockctl/output/catalogue_render.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/catalogue/stock_streamed.h"
#include "tools/stockctl/output/format.h"
#include "tools/stockctl/output/render.h"
#include "tools/stockctl/output/table.h"

namespace stockpile::stockctl {
namespace {

using google::protobuf::RepeatedPtrField;
using KeyValues = std::vector<std::pair<std::string, std::string>>;

std::string LevelWord(v1::Level level) { return EnumWord(v1::Level_Name(level), "LEVEL_"); }

// "contract 1000 (48 h)" style: a reserve figure with its longest lead time.
std::string Reserve(const v1::ReserveFigure& r) {
  if (r.quantity() == 0) return "0";
  return absl::StrCat(r.quantity(), " (", r.lead_time_hours(), " h)");
}

// "local-county, last change 2024-05-01T08:00:00Z" plus a warning when stale.
std::string Freshness(const v1::SourceFreshness& f) {
  std::string out = f.source().empty() ? "-" : f.source();
  const std::string when = FormatTime(f.last_commit_time());
  if (!when.empty()) absl::StrAppend(&out, ", last change ", when);
  if (f.stale()) absl::StrAppend(&out, " (STALE: source not connected)");
  return out;
}

// Region prefixes of a source: spelled out when few, counted when many (stockpile-local's
// levels each host all 34 provinces).
std::string Prefixes(const RepeatedPtrField<std::string>& prefixes) {
  if (prefixes.size() <= 4) return absl::StrJoin(prefixes, ",");
  return absl::StrCat(prefixes.size(), " prefixes");
}

}  // namespace

std::string FormatCoverage(double coverage, int64_t floor) {
  if (floor == 0) return "-";
  return absl::StrCat(Fixed(coverage * 100.0, 0), "%");
}

std::string RenderWarehouseStock(const v1::WarehouseStock& s) {
  return RenderKeyValues(KeyValues{
      {"warehouse", ShortWarehouse(s.warehouse())},
      {"item", s.item()},
      {"region", s.region_code()},
      {"level", LevelWord(s.level())},
      {"location",
       absl::StrCat(Decimal(s.location().longitude()), ", ", Decimal(s.location().latitude()))},
      {"on hand", Num(s.on_hand())},
      {"held", Num(s.held())},
      {"available", Num(s.available())},
      {"in transit", Num(s.in_transit())},
      {"contract", Reserve(s.contract())},
      {"capacity", Reserve(s.capacity())},
      {"quota", absl::StrCat("min ", s.quota_min(), ", max ",
                             s.quota_max() == 0 ? "-" : Num(s.quota_max()))},
      {"source", Freshness(s.freshness())},
  });
}

std::string RenderWarehouseStocks(const RepeatedPtrField<v1::WarehouseStock>& list) {
  Table table({"WAREHOUSE", "ITEM", "REGION", "LEVEL", "ON_HAND", "HELD", "AVAILABLE", "IN_TRANSIT",
               "CONTRACT", "CAPACITY", "MIN", "SOURCE"});
  for (size_t c = 4; c < 11; ++c) table.AlignRight(c);
  for (const auto& s : list) {
    std::string source = s.freshness().source();
    if (s.freshness().stale()) source += " (stale)";
    table.AddRow({ShortWarehouse(s.warehouse()), s.item(), s.region_code(), LevelWord(s.level()),
                  Num(s.on_hand()), Num(s.held()), Num(s.available()), Num(s.in_transit()),
                  Num(s.contract().quantity()), Num(s.capacity().quantity()), Num(s.quota_min()),
                  source});
  }
  return table.Render();
}

std::string RenderRollup(const v1::Rollup& rollup) {
  std::string out = RenderKeyValues(KeyValues{
      {"region", absl::StrCat(rollup.region_code(), " ", rollup.display_name())},
      {"level", LevelWord(rollup.level())},
      {"warehouses", Num(rollup.warehouse_count())},
      {"stale", rollup.stale() ? "yes: some sources are not connected; figures may be old" : "no"},
  });
  Table table({"ITEM", "ON_HAND", "HELD", "AVAILABLE", "IN_TRANSIT", "CONTRACT", "CAPACITY",
               "WAREHOUSES", "FLOOR", "COVERAGE"});
  for (size_t c = 1; c < 10; ++c) table.AlignRight(c);
  for (const auto& i : rollup.items()) {
    table.AddRow({i.item(), Num(i.on_hand()), Num(i.held()), Num(i.available()),
                  Num(i.in_transit()), Num(i.contract()), Num(i.capacity()),
                  Num(i.warehouse_count()), Num(i.quota_floor()),
                  FormatCoverage(i.coverage(), i.quota_floor())});
  }
  absl::StrAppend(&out, "\n", table.Render());
  if (rollup.items_size() == 0) absl::StrAppend(&out, "(no stock, reserve or floor here)\n");
  return out;
}

std::string RenderStockHits(const RepeatedPtrField<v1::StockHit>& hits) {
  Table table({"#", "DISTANCE_KM", "WAREHOUSE", "REGION", "LEVEL", "ITEM", "AVAILABLE", "ON_HAND",
               "HELD", "IN_TRANSIT", "SOURCE"});
  table.AlignRight(0).AlignRight(1);
  for (size_t c = 6; c < 10; ++c) table.AlignRight(c);
  int rank = 0;
  for (const auto& h : hits) {
    const v1::WarehouseStock& s = h.stock();
    table.AddRow({Num(++rank), Fixed(h.distance_km(), 1), ShortWarehouse(s.warehouse()),
                  s.region_code(), LevelWord(s.level()), s.item(), Num(s.available()),
                  Num(s.on_hand()), Num(s.held()), Num(s.in_transit()),
                  s.freshness().stale() ? "stale" : "live"});
  }
  return table.Render();
}

// STOCK: "partial" while the catalogue does not hold all of the source's stock
// (services/catalogue/stock_streamed.h); such a source is not planned from.
std::string RenderReplicationStatus(const RepeatedPtrField<v1::ReplicationSource>& sources) {
  Table table({"SOURCE", "LEVEL", "ADDRESS", "REGIONS", "APPLIED", "HEAD", "LAG_ENTRIES", "LAG_S",
               "STOCK", "CONNECTED", "GONE", "RESYNCS", "LAST_CONTACT", "LAST_ERROR"});
  for (size_t c = 4; c < 8; ++c) table.AlignRight(c);
  table.AlignRight(11);
  for (const auto& s : sources) {
    const bool partial = !catalogue::HoldsAllStockOf(s);
    table.AddRow({s.instance_id(), LevelWord(s.level()), s.address(), Prefixes(s.region_prefixes()),
                  absl::StrCat(s.applied_sequence()), absl::StrCat(s.head_sequence()),
                  absl::StrCat(s.lag_entries()), Fixed(s.lag_seconds(), 3),
                  partial ? "partial" : "all", YesNo(s.connected()), YesNo(s.gone()),
                  absl::StrCat(s.resyncs()), FormatTime(s.last_contact_time()), s.last_error()});
  }
  return table.Render();
}

std::string RenderForgottenSource(const v1::ReplicationSource& source) {
  return absl::StrCat("forgot ", source.instance_id(), " (", LevelWord(source.level()), ", ",
                      Prefixes(source.region_prefixes()), ") at ", FormatTime(source.forget_time()),
                      ": its stock is out of the national view; if it registers again, it is "
                      "streamed from the start\n");
}

}  // namespace stockpile::stockctl
