#pragma once

#include <memory>

#include "prometheus/collectable.h"
#include "services/catalogue/catalogue_core.h"

namespace stockpile::catalogue {

// Replication metrics per source, computed at scrape time from ReplicationStatus():
//   stockpile_replication_applied_sequence{source,level}   gauge
//   stockpile_replication_lag_entries{source,level}        gauge
//   stockpile_replication_lag_seconds{source,level}        gauge
//   stockpile_replication_connected{source,level}          gauge (1/0)
//   stockpile_replication_entries_applied_total{source,level} counter
// plus stockpile_catalogue_warehouses (gauge). The core must outlive the collectable's use.
std::shared_ptr<prometheus::Collectable> MakeReplicationCollectable(const CatalogueCore* core);

}  // namespace stockpile::catalogue
