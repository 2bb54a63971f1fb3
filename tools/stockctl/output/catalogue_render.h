#pragma once

// Human-readable renderings of the catalogue's national view (stockctl catalogue ...).
#include <google/protobuf/repeated_ptr_field.h>

#include <string>

#include "stockpile/v1/catalogue.pb.h"
#include "stockpile/v1/catalogue_service.pb.h"

namespace stockpile::stockctl {

// One warehouse's stock of one item as "key: value" lines, with its source's freshness.
std::string RenderWarehouseStock(const stockpile::v1::WarehouseStock& s);
std::string RenderWarehouseStocks(
    const google::protobuf::RepeatedPtrField<stockpile::v1::WarehouseStock>& list);

// A region's header lines and a table per item (the catalogue leaves out items with no stock,
// reserve or floor there).
std::string RenderRollup(const stockpile::v1::Rollup& rollup);

// Nearest first, with the distance from the search origin.
std::string RenderStockHits(
    const google::protobuf::RepeatedPtrField<stockpile::v1::StockHit>& hits);

// One row per replication source: level, address, applied/head sequence, lag, connected, gone.
std::string RenderReplicationStatus(
    const google::protobuf::RepeatedPtrField<stockpile::v1::ReplicationSource>& sources);
// What `catalogue forget-source` did.
std::string RenderForgottenSource(const stockpile::v1::ReplicationSource& source);

// "125%" (on hand over the sum of floors), or "-" without a floor.
std::string FormatCoverage(double coverage, int64_t floor);

}  // namespace stockpile::stockctl
