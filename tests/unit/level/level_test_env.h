#pragma once

#include <future>
#include <memory>
#include <string>

#include "services/common/clock.h"
#include "services/common/reference_data.h"
#include "services/level/level_core.h"
#include "services/level/level_queries.h"
#include "tests/testutil/process.h"

namespace stockpile::level::testing {

// Real reference data (townships and villages of Wuhan, 4201, only), loaded once.
const common::ReferenceData& Reference();

// A level core on a fresh database with a fake clock at 2026-06-01 00:00 UTC.
class LevelTestEnv {
 public:
  explicit LevelTestEnv(stockpile::v1::Level level = stockpile::v1::LEVEL_COUNTY,
                        std::vector<std::string> prefixes = {"4201"});
  ~LevelTestEnv();

  LevelCore& core() { return *core_; }
  LevelQueries& queries() { return *queries_; }
  common::FakeClock& clock() { return clock_; }
  // Closes and opens the same database, as a restart does.
  void Reopen(LevelCore::Options options = {});
  // Closes the database (Reopen opens it again).
  void Close();
  std::string db_path() const { return dir_.Sub("db"); }
  stockpile::v1::Level level() const { return level_; }
  const std::vector<std::string>& prefixes() const { return prefixes_; }
  // The prefixes the next Reopen hosts (an operator changing --regions).
  void set_prefixes(std::vector<std::string> prefixes) { prefixes_ = std::move(prefixes); }
  // The reference data the next Reopen loads (an operator deploying a new item catalogue);
  // must outlive the env.
  void set_reference(const common::ReferenceData* reference) { reference_ = reference; }

  absl::StatusOr<stockpile::v1::Warehouse> CreateWarehouse(const std::string& code,
                                                           double area = 2500);
  absl::StatusOr<stockpile::v1::MovementResult> Apply(const stockpile::v1::Operation& op,
                                                      const std::string& request_id = "");
  absl::StatusOr<stockpile::v1::ApplyBatchResponse> Batch(
      const std::vector<stockpile::v1::Operation>& ops, const std::string& request_id = "");
  absl::StatusOr<stockpile::v1::ApplyBatchResponse> Batch(
      const stockpile::v1::ApplyBatchRequest& req);
  absl::StatusOr<stockpile::v1::Quota> SetQuota(const std::string& warehouse,
                                                const std::string& item, int64_t min, int64_t max);
  stockpile::v1::Balance Balance(const std::string& warehouse, const std::string& item);

  static stockpile::v1::Operation Receive(const std::string& warehouse, const std::string& item,
                                          int64_t q, const std::string& lot = "",
                                          const std::string& expiry = "");
  static stockpile::v1::Operation Issue(const std::string& warehouse, const std::string& item,
                                        int64_t q, const std::string& lot = "");
  static stockpile::v1::Operation Hold(const std::string& warehouse, const std::string& item,
                                       int64_t q, const std::string& hold_id,
                                       int64_t ttl_seconds = 0);
  static stockpile::v1::Operation Release(const std::string& hold_id);
  static stockpile::v1::Operation Ship(const std::string& hold_id, const std::string& dest);
  static stockpile::v1::Operation Count(const std::string& warehouse, const std::string& item,
                                        const std::string& lot, int64_t counted,
                                        const std::string& reason, const std::string& expiry = "");

 private:
  std::string NextRequestId();
  stockpile::testing::TempDir dir_;
  common::FakeClock clock_;
  stockpile::v1::Level level_;
  std::vector<std::string> prefixes_;
  const common::ReferenceData* reference_ = &Reference();
  std::unique_ptr<LevelCore> core_;
  std::unique_ptr<LevelQueries> queries_;
  int next_id_ = 0;
};

// Runs a core mutation that takes a callback and waits for it.
template <typename Fn>
CommandResult Wait(Fn submit) {
  std::promise<CommandResult> p;
  auto f = p.get_future();
  submit([&p](CommandResult r) { p.set_value(std::move(r)); });
  return f.get();
}

}  // namespace stockpile::level::testing
