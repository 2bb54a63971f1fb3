#include "tools/stockctl/import_runner.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "services/common/status_util.h"
#include "tools/stockctl/exit_codes.h"

namespace stockpile::stockctl {

namespace v1 = stockpile::v1;

namespace {

// Which operation of a batch the server refused, and why.
struct RefusedOperation {
  size_t index = 0;
  std::string reason;  // the message after the position
};

// The authorizer says "operations[2]: …", the ledger "operation 2: …".
std::optional<RefusedOperation> RefusedOperationOf(absl::string_view message) {
  absl::string_view rest = message;
  absl::string_view after_index;
  if (absl::ConsumePrefix(&rest, "operations[")) {
    after_index = "]: ";
  } else if (absl::ConsumePrefix(&rest, "operation ")) {
    after_index = ": ";
  } else {
    return std::nullopt;
  }
  const size_t end = rest.find(after_index);
  size_t index = 0;
  if (end == absl::string_view::npos || !absl::SimpleAtoi(rest.substr(0, end), &index)) {
    return std::nullopt;
  }
  return RefusedOperation{index, std::string(rest.substr(end + after_index.size()))};
}

// The operation of `batch_size` refused because its warehouse lies outside the token's scope
// (or cannot be placed in a region): that row is refused, the batch's others may be fine.
// A refusal of the caller (no token, a role that may not receive) refuses every row alike and
// names no such place. The wording is the authorizer's (services/common/auth/authorizer.cc).
std::optional<size_t> OutOfScopeOperation(const grpc::Status& status, size_t batch_size) {
  if (status.error_code() != grpc::StatusCode::PERMISSION_DENIED) return std::nullopt;
  auto refused = RefusedOperationOf(status.error_message());
  if (!refused || refused->index >= batch_size) return std::nullopt;
  if (!absl::StrContains(refused->reason, "outside scope") &&
      !absl::StrContains(refused->reason, "cannot be placed in a region")) {
    return std::nullopt;
  }
  return refused->index;
}

// A refused row's error: its line is in the report, so the batch position is left out.
std::string RowRefusal(const grpc::Status& status) {
  auto refused = RefusedOperationOf(status.error_message());
  return absl::StrCat(common::StatusCodeName(status.error_code()), ": ",
                      refused ? refused->reason : status.error_message());
}

// A refusal that stops the import names the file's line, not the position in the chunk.
grpc::Status WithFileLine(const grpc::Status& status, const std::vector<const ImportRow*>& sent) {
  auto refused = RefusedOperationOf(status.error_message());
  if (!refused || refused->index >= sent.size()) return status;
  return grpc::Status(status.error_code(),
                      absl::StrCat("line ", sent[refused->index]->line, ": ", refused->reason));
}

// Scope is decided by an import operation's warehouse alone.
const std::string& WarehouseOf(const v1::Operation& op) {
  return op.has_stocktake() ? op.stocktake().warehouse() : op.receive().warehouse();
}

}  // namespace

bool IsRowLevelRefusal(const grpc::Status& status) {
  const grpc::StatusCode code = status.error_code();
  return code == grpc::StatusCode::INVALID_ARGUMENT ||
         code == grpc::StatusCode::FAILED_PRECONDITION || code == grpc::StatusCode::OUT_OF_RANGE ||
         code == grpc::StatusCode::NOT_FOUND || code == grpc::StatusCode::ALREADY_EXISTS ||
         OutOfScopeOperation(status, 1).has_value();
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

v1::ApplyBatchRequest ImportRunner::ChunkRequest(const std::vector<const ImportRow*>& chunk,
                                                 size_t chunk_number) const {
  v1::ApplyBatchRequest request;
  request.set_request_id(ChunkRequestId(options_.base_request_id, chunk_number));
  request.set_actor(options_.actor);
  // A refused chunk goes row by row under other ids: the server keeps the refusal under the
  // chunk's id, so running the import again once the cause is fixed cannot apply the chunk
  // whole on top of the rows already in.
  request.set_keep_refusal(true);
  for (const ImportRow* row : chunk) *request.add_operations() = row->op;
  return request;
}

bool ImportRunner::SendChunk(std::vector<const ImportRow*> chunk, size_t chunk_number,
                             ImportSummary& summary) {
  while (!chunk.empty()) {
    uint64_t sequence = 0;
    const grpc::Status status = SendWithRetries(ChunkRequest(chunk, chunk_number), &sequence);
    if (status.ok()) {
      summary.rows_ok += chunk.size();
      if (AppliedBefore(sequence)) summary.rows_already_in += chunk.size();
      Advance(chunk.size());
      return true;
    }
    // The authorizer refuses before the server keeps anything under the chunk's id. Its rows
    // in scope go on under that id, never one by one: a later run with a wider token then
    // finds the id taken (and stops) instead of applying the whole chunk on top of them.
    if (auto refused = OutOfScopeOperation(status, chunk.size())) {
      DropRowsAtWarehouseOf(*refused, status, chunk, summary);
      continue;
    }
    // A chunk id already bound to other content (a different --actor or --chunk-size than the
    // first run) must stop the import: sending its rows one by one could apply them twice.
    if (IsRowLevelRefusal(status) && !IsRequestIdConflict(status)) {
      return SendRowByRow(chunk, chunk_number, summary);
    }
    summary.fatal = WithFileLine(status, chunk);
    return false;
  }
  return true;
}

void ImportRunner::DropRowsAtWarehouseOf(size_t refused, const grpc::Status& status,
                                         std::vector<const ImportRow*>& chunk,
                                         ImportSummary& summary) {
  // Every row at that warehouse would be refused alike: they leave together, so a chunk
  // costs one resend per warehouse outside the scope, not one per row.
  const std::string warehouse = WarehouseOf(chunk[refused]->op);
  const std::string error = RowRefusal(status);
  const size_t dropped = std::erase_if(chunk, [&](const ImportRow* row) {
    if (WarehouseOf(row->op) != warehouse) return false;
    summary.errors.push_back({row->line, error});
    return true;
  });
  summary.rows_failed += dropped;
  Advance(dropped);
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
    } else if (IsRowLevelRefusal(status)) {
      ++summary.rows_failed;
      summary.errors.push_back({row->line, RowRefusal(status)});
    } else {
      summary.fatal = WithFileLine(status, {row});
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
