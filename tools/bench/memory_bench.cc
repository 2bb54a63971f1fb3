// stockpile-catalogue-memory-bench: how much memory each in-memory structure of the catalogue
// takes with the national dataset (a warehouse per region, all 42 items, ~30 % zero), measured
// as the growth of the process's resident set while one structure alone is filled. Explains the
// catalogue's RSS figure (docs/bench.md, "Catalogue with the national dataset").
//   stockpile-catalogue-memory-bench [--reference-data=DIR] --part=view|view+index|snapshot
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "services/catalogue/allocation/stock_snapshot.h"
#include "services/catalogue/national_view.h"
#include "services/catalogue/stock_index_search.h"
#include "services/common/reference_data.h"
#include "tools/bench/rng.h"

namespace {

int64_t RssKib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return 0;
}

// The demo's national balance: all items, ~30 % at zero, 1-3 lots for items with a shelf life.
stockpile::v1::Balance NationalBalance(const std::string& code,
                                       const stockpile::common::ItemInfo& item,
                                       stockpile::bench::Rng& rng) {
  stockpile::v1::Balance b;
  b.set_warehouse(absl::StrCat("warehouses/", code));
  b.set_item(item.code);
  const int64_t q = rng.Chance(0.3) ? 0 : rng.Uniform(1, 500);
  b.set_on_hand(q);
  b.set_available(q);
  const int lots = item.shelf_life_months > 0 ? int(rng.Uniform(1, 3)) : 1;
  for (int l = 0; l < lots && q > 0; ++l) {
    auto* lot = b.add_lots();
    lot->set_lot(item.shelf_life_months > 0 ? absl::StrCat("L2027010", l + 1) : "DEFAULT");
    if (item.shelf_life_months > 0) lot->set_expiry_date(absl::StrCat("2027-01-0", l + 1));
    lot->set_on_hand(q / lots + (l == 0 ? q % lots : 0));
    lot->set_available(lot->on_hand());
  }
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace stockpile;
  std::string dir = common::ReferenceData::DefaultDir();
  std::string part = "view";
  CLI::App app{"memory of the catalogue's in-memory structures with the national dataset"};
  app.add_option("--reference-data", dir, "folder with regions/ and items/");
  app.add_option("--part", part, "view | view+index | snapshot")
      ->check(CLI::IsMember({"view", "view+index", "snapshot"}));
  CLI11_PARSE(app, argc, argv);
  auto ref = common::ReferenceData::Load(dir);
  if (!ref.ok()) {
    std::cerr << ref.status() << "\n";
    return 1;
  }
  const int64_t before = RssKib();
  std::unique_ptr<catalogue::NationalView> view;
  std::unique_ptr<catalogue::allocation::StockSnapshot> snapshot;
  if (part == "snapshot") {
    snapshot = std::make_unique<catalogue::allocation::StockSnapshot>(ref->get());
  } else {
    view = std::make_unique<catalogue::NationalView>(
        ref->get(), part == "view+index"
                        ? catalogue::NewStockIndexSearch(int((*ref)->items().size()))
                        : nullptr);
  }
  bench::Rng rng(1);
  uint64_t balances = 0;
  for (const auto& region : (*ref)->regions()) {
    const std::string code = absl::StrCat(region.code, "-W001");
    v1::Warehouse w;
    w.set_code(code);
    w.set_name(absl::StrCat("warehouses/", code));
    w.mutable_location()->set_longitude(region.longitude);
    w.mutable_location()->set_latitude(region.latitude);
    view ? view->UpsertWarehouse(w, 0) : snapshot->Apply(w);
    for (const auto& item : (*ref)->items()) {
      v1::Balance b = NationalBalance(code, item, rng);
      view ? view->SetBalance(b, 0) : snapshot->Apply(b);
      ++balances;
    }
  }
  const int64_t after = RssKib();
  std::cout << part << ": " << (*ref)->regions().size() << " warehouses, " << balances
            << " balances: RSS +" << (after - before) / 1024 << " MiB ("
            << double(after - before) * 1024.0 / double(balances) << " B per balance)\n";
  return 0;
}
