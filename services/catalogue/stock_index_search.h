#pragma once

#include <memory>

#include "services/catalogue/search_adapter.h"

namespace stockpile::catalogue {

// The view's search seam backed by the nearest-first StockIndex (stock_index.h).
std::unique_ptr<StockSearch> NewStockIndexSearch(int item_count);

}  // namespace stockpile::catalogue
