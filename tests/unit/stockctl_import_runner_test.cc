#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "tools/stockctl/import_runner.h"

namespace stockpile::stockctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

PreparedImport Rows(int count, int first_line = 2) {
  PreparedImport prepared;
  for (int i = 0; i < count; ++i) {
    ImportRow row;
    row.line = first_line + i;
    auto* op = row.op.mutable_receive();
    op->set_warehouse("warehouses/420102-W001");
    op->set_item("SH-0001");
    op->set_quantity(1);
    op->set_note("line " + std::to_string(row.line));
    prepared.rows.push_back(row);
  }
  return prepared;
}

// A server that is all-or-nothing per batch, idempotent per request id, refuses every
// operation whose note is in `bad_notes`, and keeps a refusal under the id of a batch that
// asks for it (as the level service does).
struct FakeServer {
  std::set<std::string> bad_notes;
  std::map<std::string, int> applied_ops_by_id;    // request id -> operations applied
  std::map<std::string, uint64_t> sequence_by_id;  // request id -> its change sequence
  uint64_t head = 0;                               // last sequence given
  std::set<std::string> kept_refusals;
  std::vector<std::string> calls;
  int unavailable_calls = 0;  // fail this many calls with UNAVAILABLE first

  grpc::Status Apply(const v1::ApplyBatchRequest& request, uint64_t* sequence = nullptr) {
    calls.push_back(request.request_id());
    if (unavailable_calls > 0) {
      --unavailable_calls;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "down");
    }
    if (applied_ops_by_id.count(request.request_id())) {
      if (sequence) *sequence = sequence_by_id[request.request_id()];
      return grpc::Status::OK;
    }
    const grpc::Status refusal(grpc::StatusCode::FAILED_PRECONDITION, "warehouse suspended");
    if (kept_refusals.count(request.request_id())) return refusal;
    for (const auto& op : request.operations()) {
      if (bad_notes.count(op.receive().note())) {
        if (request.keep_refusal()) kept_refusals.insert(request.request_id());
        return refusal;
      }
    }
    applied_ops_by_id[request.request_id()] = request.operations_size();
    sequence_by_id[request.request_id()] = ++head;
    if (sequence) *sequence = head;
    return grpc::Status::OK;
  }

  int TotalApplied() const {
    int total = 0;
    for (const auto& [id, n] : applied_ops_by_id) total += n;
    return total;
  }
};

// The runner of an import started now: it knows the server's head at its start.
ImportRunner MakeRunner(FakeServer& server, size_t chunk_size) {
  return ImportRunner({"imp", "tester", chunk_size, 3, nullptr, server.head},
                      [&server](const v1::ApplyBatchRequest& r, uint64_t* sequence) {
                        return server.Apply(r, sequence);
                      });
}

TEST(ImportRunnerTest, SendsChunksWithDerivedRequestIds) {
  FakeServer server;
  ImportSummary summary = MakeRunner(server, 4).Run(Rows(10));
  EXPECT_EQ(summary.rows_ok, 10u);
  EXPECT_EQ(summary.rows_already_in, 0u);
  EXPECT_EQ(summary.rows_failed, 0u);
  EXPECT_THAT(server.calls, ElementsAre("imp-c1", "imp-c2", "imp-c3"));
  EXPECT_EQ(server.TotalApplied(), 10);
}

TEST(ImportRunnerTest, RejectedChunkIsRetriedRowByRowSoOnlyBadRowsFail) {
  FakeServer server;
  server.bad_notes = {"line 4"};
  ImportSummary summary = MakeRunner(server, 3).Run(Rows(6));
  EXPECT_EQ(summary.rows_ok, 5u);
  EXPECT_EQ(summary.rows_failed, 1u);
  ASSERT_EQ(summary.errors.size(), 1u);
  EXPECT_EQ(summary.errors[0].line, 4);
  EXPECT_THAT(summary.errors[0].error, HasSubstr("FAILED_PRECONDITION: warehouse suspended"));
  EXPECT_THAT(server.calls, ElementsAre("imp-c1", "imp-c1-l2", "imp-c1-l3", "imp-c1-l4", "imp-c2"));
  EXPECT_EQ(server.TotalApplied(), 5);
}

TEST(ImportRunnerTest, RunningTheSameImportTwiceAppliesNothingTwice) {
  FakeServer server;
  server.bad_notes = {"line 3"};
  MakeRunner(server, 2).Run(Rows(5));
  const int after_first = server.TotalApplied();
  ImportSummary again = MakeRunner(server, 2).Run(Rows(5));
  EXPECT_EQ(server.TotalApplied(), after_first);
  EXPECT_EQ(after_first, 4);
  EXPECT_EQ(again.rows_ok, 4u);
  EXPECT_EQ(again.rows_already_in, 4u);  // every reply was the first run's
  EXPECT_EQ(again.rows_failed, 1u);
}

// Fixing a row's cause on the server (bad_notes cleared) and running the import again applies
// the rows that failed, and nothing twice: the refused chunk is refused again by its kept
// answer and goes row by row again, where the rows already in are replays.
TEST(ImportRunnerTest, RerunAfterTheCauseIsFixedAppliesEachRowOnce) {
  FakeServer server;
  server.bad_notes = {"line 3"};
  ImportSummary first = MakeRunner(server, 10).Run(Rows(4));
  EXPECT_EQ(first.rows_failed, 1u);
  EXPECT_EQ(server.TotalApplied(), 3);
  server.bad_notes.clear();
  ImportSummary again = MakeRunner(server, 10).Run(Rows(4));
  EXPECT_EQ(again.rows_ok, 4u);
  EXPECT_EQ(again.rows_already_in, 3u);  // only line 3 was applied by this run
  EXPECT_EQ(again.rows_failed, 0u);
  EXPECT_EQ(server.TotalApplied(), 4);
  EXPECT_EQ(server.applied_ops_by_id.count("imp-c1"), 0u);
}

// What the level's authorizer answers for a batch naming a warehouse outside the token's
// region: nothing is kept under the batch's id (the refusal comes before the ledger).
struct ScopedServer : FakeServer {
  std::string scope = "warehouses/420102-";
  std::string role_refusal;  // when set: every batch refused for the caller's role

  grpc::Status Apply(const v1::ApplyBatchRequest& request, uint64_t* sequence) {
    for (int i = 0; i < request.operations_size(); ++i) {
      const std::string prefix = "operations[" + std::to_string(i) + "]: ";
      if (!role_refusal.empty()) {
        calls.push_back(request.request_id());
        return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, prefix + role_refusal);
      }
      const std::string& warehouse = request.operations(i).receive().warehouse();
      if (warehouse.rfind(scope, 0) != 0) {
        calls.push_back(request.request_id());
        return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                            prefix + "wang.li may not call Receive: op.warehouse \"" + warehouse +
                                "\" is in region 420103, outside scope 420102");
      }
    }
    return FakeServer::Apply(request, sequence);
  }
};

ImportRunner MakeRunner(ScopedServer& server, size_t chunk_size) {
  return ImportRunner({"imp", "tester", chunk_size, 3, nullptr, server.head},
                      [&server](const v1::ApplyBatchRequest& r, uint64_t* sequence) {
                        return server.Apply(r, sequence);
                      });
}

// Lines 3 and 5 name 420103-W001, outside the token's scope 420102.
PreparedImport RowsWithTwoOutOfScope() {
  PreparedImport prepared = Rows(5);
  for (int i : {1, 3}) {
    prepared.rows[i].op.mutable_receive()->set_warehouse("warehouses/420103-W001");
  }
  return prepared;
}

TEST(ImportRunnerTest, RowsOutsideTheTokensScopeFailAndTheOthersGoInUnderTheChunkId) {
  ScopedServer server;
  ImportSummary summary = MakeRunner(server, 10).Run(RowsWithTwoOutOfScope());
  EXPECT_TRUE(summary.fatal.ok()) << summary.fatal.error_message();
  EXPECT_EQ(summary.rows_ok, 3u);
  EXPECT_EQ(summary.rows_failed, 2u);
  EXPECT_EQ(summary.rows_not_sent, 0u);
  ASSERT_EQ(summary.errors.size(), 2u);
  EXPECT_EQ(summary.errors[0].line, 3);
  EXPECT_EQ(summary.errors[1].line, 5);
  // The file's line is the report's; the position in the batch is not repeated.
  EXPECT_EQ(summary.errors[0].error,
            "PERMISSION_DENIED: wang.li may not call Receive: op.warehouse "
            "\"warehouses/420103-W001\" is in region 420103, outside scope 420102");
  // Both rows at that warehouse leave the chunk at once; the rest keep the chunk's id, so a
  // later run with a wider token finds it taken instead of applying the chunk whole again.
  EXPECT_THAT(server.calls, ElementsAre("imp-c1", "imp-c1"));
  EXPECT_EQ(server.applied_ops_by_id["imp-c1"], 3);
}

TEST(ImportRunnerTest, SameImportWithTheSameTokenAgainAppliesNothingTwice) {
  ScopedServer server;
  MakeRunner(server, 10).Run(RowsWithTwoOutOfScope());
  ImportSummary again = MakeRunner(server, 10).Run(RowsWithTwoOutOfScope());
  EXPECT_EQ(again.rows_ok, 3u);
  EXPECT_EQ(again.rows_already_in, 3u);
  EXPECT_EQ(again.rows_failed, 2u);
  EXPECT_EQ(server.TotalApplied(), 3);
}

TEST(ImportRunnerTest, ARoleThatMayNotReceiveStopsTheImportAtTheFirstChunk) {
  ScopedServer server;
  server.role_refusal = "viewer-1 may not call Receive: role not allowed";
  ImportSummary summary = MakeRunner(server, 2).Run(Rows(5));
  EXPECT_EQ(summary.fatal.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // Named by the file's line (the chunk's first row, line 2), not "operations[0]".
  EXPECT_EQ(summary.fatal.error_message(),
            "line 2: viewer-1 may not call Receive: role not allowed");
  EXPECT_EQ(summary.rows_not_sent, 5u);
  EXPECT_THAT(server.calls, ElementsAre("imp-c1"));
}

TEST(ImportRunnerTest, RowRefusalsNameNoBatchPosition) {
  ImportSummary summary =
      ImportRunner({"imp", "tester", 10, 3, nullptr}, [](const v1::ApplyBatchRequest& r,
                                                         uint64_t*) {
        const bool bad = r.operations_size() > 1 || r.operations(0).receive().note() == "line 3";
        return bad ? grpc::Status(grpc::StatusCode::NOT_FOUND, "operation 0: no such warehouse")
                   : grpc::Status::OK;
      }).Run(Rows(2));
  ASSERT_EQ(summary.errors.size(), 1u);
  EXPECT_EQ(summary.errors[0].line, 3);
  EXPECT_EQ(summary.errors[0].error, "NOT_FOUND: no such warehouse");
}

TEST(ImportRunnerTest, RequestIdUsedForOtherContentStopsInsteadOfGoingRowByRow) {
  ImportSummary summary =
      ImportRunner({"imp", "tester", 10, 3, nullptr}, [](const v1::ApplyBatchRequest&, uint64_t*) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "request_id imp-c1 was already used for a different request");
      }).Run(Rows(3));
  EXPECT_EQ(summary.fatal.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(summary.rows_ok, 0u);
  EXPECT_EQ(summary.rows_not_sent, 3u);
}

TEST(ImportRunnerTest, UnavailableIsRetriedWithTheSameId) {
  FakeServer server;
  server.unavailable_calls = 2;
  ImportSummary summary = MakeRunner(server, 10).Run(Rows(3));
  EXPECT_TRUE(summary.fatal.ok());
  EXPECT_EQ(summary.rows_ok, 3u);
  EXPECT_THAT(server.calls, ElementsAre("imp-c1", "imp-c1", "imp-c1"));
}

TEST(ImportRunnerTest, ServerDownStopsWithFatalStatusAndCountsUnsentRows) {
  FakeServer server;
  server.unavailable_calls = 100;
  ImportSummary summary = MakeRunner(server, 2).Run(Rows(5));
  EXPECT_EQ(summary.fatal.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(summary.rows_ok, 0u);
  EXPECT_EQ(summary.rows_not_sent, 5u);
  EXPECT_EQ(server.calls.size(), 3u);  // 3 attempts of the first chunk, then stop
}

TEST(ImportRunnerTest, LocalErrorsAreMergedSortedByLine) {
  FakeServer server;
  server.bad_notes = {"line 5"};
  PreparedImport prepared = Rows(2, 4);  // lines 4, 5
  prepared.errors = {{2, "bad quantity"}, {7, "bad item"}};
  ImportSummary summary = MakeRunner(server, 1000).Run(prepared);
  std::vector<int> lines;
  for (const auto& e : summary.errors) lines.push_back(e.line);
  EXPECT_THAT(lines, ElementsAre(2, 5, 7));
  EXPECT_EQ(summary.rows_failed, 3u);
  EXPECT_EQ(summary.rows_ok, 1u);
}

TEST(ImportRunnerTest, ProgressReachesTotal) {
  FakeServer server;
  std::vector<size_t> seen;
  ImportRunner runner(
      {"imp", "tester", 2, 3, nullptr},
      [&server](const v1::ApplyBatchRequest& r, uint64_t* sequence) {
        return server.Apply(r, sequence);
      },
      [&seen](size_t done, size_t total) {
        EXPECT_EQ(total, 5u);
        seen.push_back(done);
      });
  runner.Run(Rows(5));
  EXPECT_THAT(seen, ElementsAre(2, 4, 5));
}

}  // namespace
}  // namespace stockpile::stockctl
