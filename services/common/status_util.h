#pragma once

#include <grpcpp/support/status.h>
#include <rocksdb/status.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace stockpile::common {

// RocksDB -> absl, in the store layer. `context` says what was being done ("write batch").
absl::Status FromRocks(const rocksdb::Status& s, absl::string_view context);

// absl -> gRPC, in the service layer. Never yields UNKNOWN.
grpc::Status ToGrpc(const absl::Status& s);

// gRPC -> absl, for clients of other services.
absl::Status FromGrpc(const grpc::Status& s);

// "NOT_FOUND", "UNAVAILABLE", ... as gRPC spells them (metric labels, reports, error lines);
// a number outside gRPC's codes is "UNKNOWN", as gRPC itself reads it.
const char* StatusCodeName(grpc::StatusCode code);

}  // namespace stockpile::common
