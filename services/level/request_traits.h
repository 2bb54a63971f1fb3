#pragma once

// UTF-8-tolerant parsing for every LevelService request (see services/common/proto_utf8.h).
// The build force-includes this header in every translation unit that links stockpile_proto,
// so all of them see the same traits.
#include "services/common/proto_utf8.h"
#include "stockpile/v1/level_service.pb.h"

STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::CreateWarehouseRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::GetWarehouseRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::ListWarehousesRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::UpdateWarehouseRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::ReceiveRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::IssueRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::StocktakeRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::HoldRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::ReleaseRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::ShipRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::ReceiveTransferRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::ConfirmDeliveryRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::ApplyBatchRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::SetQuotaRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::ListQuotasRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::SetReserveRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::ListReservesRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::ListQuotaStatusRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::ListExpiringLotsRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::GetBalanceRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::ListBalancesRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::ListMovementsRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::GetHoldRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::ListHoldsRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::GetRegionRequest)
STOCKPILE_UTF8_TOLERANT_REQUEST(stockpile::v1::WatchChangesRequest)
