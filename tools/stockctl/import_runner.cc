#include "tools/stockctl/import_runner.h"

#include <algorithm>
#include <utility>

#include "services/common/status_util.h"
#include "tools/stockctl/exit_codes.h"

namespace stockpile::stockctl {

namespace v1 = stockpile::v1;

bool IsRowLevelRefusal(grpc::StatusCode code) {
  return code == grpc::StatusCode::INVALID_ARGUMENT ||
         code == grpc::StatusCode::FAILED_PRECONDITION || code == grpc::StatusCode::OUT_OF_RANGE ||
         code == grpc::StatusCode::NOT_FOUND || code == grpc::StatusCode::ALREADY_EXISTS;
}

bool IsRequestIdConflict(const grpc::Status& status) {
  // The level service words it "request_id X was already used for a different request".
  return status.error_code() == grpc::StatusCode::INVALID_ARGUMENT &&
         status.error_message().find("already used") != std::string::npos;
}

bool IsRetryable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::ABORTED;
}

ImportRunner::ImportRunner(Options options, BatchSender sender, Progress progress)
    : options_(std::move(options)), sender_(std::move(sender)), progress_(std::move(progress)) {
  options_.chunk_size = std::clamp<size_t>(options_.chunk_size, 1, 1000);
  options_.attempts = std::max(options_.attempts, 1);
}

ImportSummary ImportRunner::Run(const PreparedImport& prepared) {
  ImportSummary summary;
  summary.errors = prepared.errors;
  summary.rows_failed = prepared.errors.size();
  const size_t total = prepared.rows.size();
  rows_done_ = 0;
  total_ = total;
  for (size_t begin = 0, chunk_number = 1; begin < total; begin += options_.chunk_size) {
    const size_t end = std::min(total, begin + options_.chunk_size);
    std::vector<const ImportRow*> chunk;
    for (size_t i = begin; i < end; ++i) chunk.push_back(&prepared.rows[i]);
    if (!SendChunk(chunk, chunk_number++, summary)) break;
  }
  summary.rows_not_sent = total - rows_done_;
  std::stable_sort(summary.errors.begin(), summary.errors.end(),
                   [](const RowError& a, const RowError& b) { return a.line < b.line; });
  return summary;
}

bool ImportRunner::SendChunk(const std::vector<const ImportRow*>& chunk, size_t chunk_number,
                             ImportSummary& summary) {
  v1::ApplyBatchRequest request;
  request.set_request_id(ChunkRequestId(options_.base_request_id, chunk_number));
  request.set_actor(options_.actor);
  // A refused chunk goes row by row under other ids: the server keeps the refusal under the
  // chunk's id, so running the import again once the cause is fixed cannot apply the chunk
  // whole on top of the rows already in.
  request.set_keep_refusal(true);
  for (const ImportRow* row : chunk) *request.add_operations() = row->op;
  uint64_t sequence = 0;
  const grpc::Status status = SendWithRetries(request, &sequence);
  if (status.ok()) {
    summary.rows_ok += chunk.size();
    if (AppliedBefore(sequence)) summary.rows_already_in += chunk.size();
    Advance(chunk.size());
    return true;
  }
  // A chunk id already bound to other content (a different --actor or --chunk-size than the
  // first run) must stop the import: sending its rows one by one could apply them twice.
  if (IsRowLevelRefusal(status.error_code()) && !IsRequestIdConflict(status)) {
    return SendRowByRow(chunk, chunk_number, summary);
  }
  summary.fatal = status;
  return false;
}

bool ImportRunner::SendRowByRow(const std::vector<const ImportRow*>& chunk, size_t chunk_number,
                                ImportSummary& summary) {
  for (const ImportRow* row : chunk) {
    v1::ApplyBatchRequest request;
    request.set_request_id(RowRequestId(options_.base_request_id, chunk_number, row->line));
    request.set_actor(options_.actor);
    *request.add_operations() = row->op;
    uint64_t sequence = 0;
    const grpc::Status status = SendWithRetries(request, &sequence);
    if (status.ok()) {
      ++summary.rows_ok;
      if (AppliedBefore(sequence)) ++summary.rows_already_in;
    } else if (IsRowLevelRefusal(status.error_code())) {
      ++summary.rows_failed;
      summary.errors.push_back(
          {row->line, std::string(common::StatusCodeName(status.error_code())) + ": " +
                          status.error_message()});
    } else {
      summary.fatal = status;
      return false;
    }
    Advance(1);
  }
  return true;
}

grpc::Status ImportRunner::SendWithRetries(const v1::ApplyBatchRequest& request,
                                           uint64_t* sequence) {
  grpc::Status status;
  for (int attempt = 1; attempt <= options_.attempts; ++attempt) {
    if (attempt > 1 && options_.backoff) options_.backoff(attempt);
    // The same request id on every attempt: a retry of an applied batch returns its first result.
    status = sender_(request, sequence);
    if (!IsRetryable(status.error_code())) break;
  }
  return status;
}

bool ImportRunner::AppliedBefore(uint64_t sequence) const {
  return options_.head_at_start > 0 && sequence > 0 && sequence <= options_.head_at_start;
}

void ImportRunner::Advance(size_t rows) {
  rows_done_ += rows;
  if (progress_) progress_(rows_done_, total_);
}

}  // namespace stockpile::stockctl
