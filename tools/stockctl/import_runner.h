#pragma once

#include <grpcpp/support/status.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "stockpile/v1/level_service.pb.h"
#include "tools/stockctl/csv_import.h"

namespace stockpile::stockctl {

struct ImportSummary {
  size_t rows_ok = 0;
  size_t rows_already_in = 0;  // of rows_ok: answered from an earlier run's first result
  size_t rows_failed = 0;
  size_t rows_not_sent = 0;      // left over after a fatal error
  std::vector<RowError> errors;  // sorted by line
  grpc::Status fatal;  // not OK when the import stopped early (server down, permission, ...)
};

// Sends prepared rows with ApplyBatch in chunks; a chunk the server rejects as a whole is
// retried row by row so only the bad rows fail, and a chunk refused for a row outside the
// token's scope is sent again without the rows at that warehouse. Retryable errors are retried
// with the same id.
class ImportRunner {
 public:
  // Sends one request; on success sets `sequence` to the reply's change-stream sequence.
  using BatchSender =
      std::function<grpc::Status(const stockpile::v1::ApplyBatchRequest&, uint64_t* sequence)>;
  using Progress = std::function<void(size_t rows_done, size_t rows_total)>;

  struct Options {
    std::string base_request_id;
    std::string actor;
    size_t chunk_size = 1000;
    int attempts = 3;  // per request, for UNAVAILABLE / DEADLINE_EXCEEDED / ABORTED
    std::function<void(int attempt)> backoff;  // sleeps before a retry; none in tests
    // The level's last sequence when the import started (0: unknown). A reply at or below it
    // was applied by an earlier run: the server answered with its first result.
    uint64_t head_at_start = 0;
  };

  ImportRunner(Options options, BatchSender sender, Progress progress = nullptr);

  ImportSummary Run(const PreparedImport& prepared);

 private:
  // Returns false when the import must stop (fatal status set in `summary`).
  bool SendChunk(std::vector<const ImportRow*> chunk, size_t chunk_number, ImportSummary& summary);
  stockpile::v1::ApplyBatchRequest ChunkRequest(const std::vector<const ImportRow*>& chunk,
                                                size_t chunk_number) const;
  // Takes every row at the warehouse of chunk[refused] out of `chunk`, each a failed row.
  void DropRowsAtWarehouseOf(size_t refused, const grpc::Status& status,
                             std::vector<const ImportRow*>& chunk, ImportSummary& summary);
  bool SendRowByRow(const std::vector<const ImportRow*>& chunk, size_t chunk_number,
                    ImportSummary& summary);
  grpc::Status SendWithRetries(const stockpile::v1::ApplyBatchRequest& request, uint64_t* sequence);
  bool AppliedBefore(uint64_t sequence) const;
  void Advance(size_t rows);

  Options options_;
  BatchSender sender_;
  Progress progress_;
  size_t rows_done_ = 0;  // good rows sent (applied or refused) so far
  size_t total_ = 0;
};

// True when the request's content was refused (retrying row by row helps): INVALID_ARGUMENT,
// FAILED_PRECONDITION, OUT_OF_RANGE, NOT_FOUND, ALREADY_EXISTS, and a PERMISSION_DENIED that
// names an operation whose warehouse is outside the token's scope.
bool IsRowLevelRefusal(const grpc::Status& status);
bool IsRetryable(grpc::StatusCode code);
// The server says the request id was already used for different content.
bool IsRequestIdConflict(const grpc::Status& status);

}  // namespace stockpile::stockctl
