#pragma once

// Per-method access rules: the tables the Authorizer reads. Adding an RPC to a service means
// adding its row here; a method without a row is refused (deny by default).

#include "absl/types/span.h"
#include "services/common/auth/authorizer.h"

namespace stockpile::auth {

// stockpile.v1.LevelService: every method of proto/stockpile/v1/level_service.proto.
absl::Span<const MethodRule> LevelServiceRules();
// stockpile.v1.CatalogueService (catalogue_service.proto): national-view reads.
absl::Span<const MethodRule> CatalogueServiceRules();
// stockpile.v1.TransferService (transfer_service.proto): plan, create, approve, ship, receive,
// cancel, read. Steps naming only a transfer need Authorizer::set_transfer_lookup.
absl::Span<const MethodRule> TransferServiceRules();
// grpc.health.v1.Health: public (probes carry no token).
absl::Span<const MethodRule> HealthRules();

}  // namespace stockpile::auth
