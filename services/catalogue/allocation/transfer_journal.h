#pragma once

// Where the leader writes a transfer first when transfers are shared between catalogue replicas
// (EtcdTransferSharing): the coordinator publishes every change there, fenced by its
// leadership, and only then saves it locally and goes on to call the level services. Without
// one (stockpile-local, no etcd) the local store is the only copy.

#include <cstdint>

#include "absl/status/statusor.h"
#include "services/catalogue/allocation/transfer_store.h"
#include "stockpile/v1/transfer_service.pb.h"

namespace stockpile::catalogue::allocation {

class TransferJournal {
 public:
  virtual ~TransferJournal() = default;
  // Writes the transfer (and the request record, when given) as one change. Returns its
  // revision, to be saved locally with it. UNAVAILABLE when this replica no longer leads
  // (nothing was written; the caller must stop driving; the client's retry reaches the leader),
  // ABORTED when the shared copy changed since the local one was saved (the local copy has been
  // refreshed; the caller may retry).
  virtual absl::StatusOr<int64_t> Publish(const stockpile::v1::Transfer& transfer,
                                          const RequestRecord* request) = 0;
};

}  // namespace stockpile::catalogue::allocation
