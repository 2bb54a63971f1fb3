#include "tests/unit/level/level_test_env.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace stockpile::level::testing {

using namespace stockpile::v1;  // NOLINT

constexpr int64_t kJune2026Micros = 1'780'272'000'000'000;  // 2026-06-01T00:00:00Z

const common::ReferenceData& Reference() {
  static const common::ReferenceData* data = [] {
    common::ReferenceData::Options options;
    options.fine_region_prefixes = {"4201"};
    auto loaded = common::ReferenceData::Load(stockpile::testing::ReferenceDataDir(), options);
    if (!loaded.ok()) {
      fprintf(stderr, "reference data: %s\n", std::string(loaded.status().message()).c_str());
      std::abort();
    }
    return loaded->release();
  }();
  return *data;
}

LevelTestEnv::LevelTestEnv(Level level, std::vector<std::string> prefixes)
    : clock_(kJune2026Micros), level_(level), prefixes_(std::move(prefixes)) {
  Reopen();
}

LevelTestEnv::~LevelTestEnv() {
  queries_.reset();
  core_.reset();
}

void LevelTestEnv::Close() {
  queries_.reset();
  core_.reset();
}

void LevelTestEnv::Reopen(LevelCore::Options options) {
  Close();
  options.hold_sweep_interval_ms = 3'600'000;  // tests sweep by hand
  auto core =
      LevelCore::Open(dir_.Sub("db"), reference_, Hosting(level_, prefixes_), &clock_, options);
  if (!core.ok()) {
    fprintf(stderr, "open: %s\n", std::string(core.status().message()).c_str());
    std::abort();
  }
  core_ = std::move(*core);
  queries_ = std::make_unique<LevelQueries>(core_->store(), *reference_, core_->hosting(), clock_);
}

std::string LevelTestEnv::NextRequestId() { return absl::StrCat("test-", ++next_id_); }

absl::StatusOr<Warehouse> LevelTestEnv::CreateWarehouse(const std::string& code, double area) {
  CreateWarehouseRequest req;
  req.set_request_id(NextRequestId());
  req.set_actor("tester");
  req.mutable_warehouse()->set_code(code);
  req.mutable_warehouse()->set_display_name(absl::StrCat("Store ", code));
  req.mutable_warehouse()->set_kind(WAREHOUSE_KIND_GOVERNMENT);
  req.mutable_warehouse()->set_area_m2(area);
  CommandResult r = Wait([&](CommandCallback done) { core_->CreateWarehouse(req, done); });
  if (!r.status.ok()) return r.status;
  Warehouse w;
  w.ParseFromString(r.Bytes());
  return w;
}

absl::StatusOr<MovementResult> LevelTestEnv::Apply(const Operation& op,
                                                   const std::string& request_id) {
  ApplyBatchRequest req;  // any message: the fingerprint only needs to be stable
  *req.add_operations() = op;
  const std::string id = request_id.empty() ? NextRequestId() : request_id;
  req.set_request_id(id);
  CommandResult r = core_->ApplySync("Op", id, "tester", {op}, req);
  if (!r.status.ok()) return r.status;
  MovementResult result;
  result.ParseFromString(r.Bytes());
  return result;
}

absl::StatusOr<ApplyBatchResponse> LevelTestEnv::Batch(const std::vector<Operation>& ops,
                                                       const std::string& request_id) {
  ApplyBatchRequest req;
  for (const auto& op : ops) *req.add_operations() = op;
  req.set_request_id(request_id.empty() ? NextRequestId() : request_id);
  return Batch(req);
}

absl::StatusOr<ApplyBatchResponse> LevelTestEnv::Batch(const ApplyBatchRequest& req) {
  std::vector<Operation> ops(req.operations().begin(), req.operations().end());
  CommandResult r = core_->ApplySync("ApplyBatch", req.request_id(), "tester", ops, req);
  if (!r.status.ok()) return r.status;
  ApplyBatchResponse resp;
  resp.ParseFromString(r.Bytes());
  return resp;
}

absl::StatusOr<Quota> LevelTestEnv::SetQuota(const std::string& warehouse, const std::string& item,
                                             int64_t min, int64_t max) {
  SetQuotaRequest req;
  req.set_request_id(NextRequestId());
  req.set_actor("tester");
  req.mutable_quota()->set_warehouse(warehouse);
  req.mutable_quota()->set_item(item);
  req.mutable_quota()->set_min(min);
  req.mutable_quota()->set_max(max);
  CommandResult r = Wait([&](CommandCallback done) { core_->SetQuota(req, done); });
  if (!r.status.ok()) return r.status;
  Quota q;
  q.ParseFromString(r.Bytes());
  return q;
}

stockpile::v1::Balance LevelTestEnv::Balance(const std::string& warehouse,
                                             const std::string& item) {
  GetBalanceRequest req;
  req.set_warehouse(warehouse);
  req.set_item(item);
  auto b = queries_->GetBalance(req);
  return b.ok() ? *b : stockpile::v1::Balance();
}

Operation LevelTestEnv::Receive(const std::string& warehouse, const std::string& item, int64_t q,
                                const std::string& lot, const std::string& expiry) {
  Operation op;
  auto* r = op.mutable_receive();
  r->set_warehouse(warehouse);
  r->set_item(item);
  r->set_quantity(q);
  r->set_lot(lot);
  r->set_expiry_date(expiry);
  return op;
}

Operation LevelTestEnv::Issue(const std::string& warehouse, const std::string& item, int64_t q,
                              const std::string& lot) {
  Operation op;
  auto* r = op.mutable_issue();
  r->set_warehouse(warehouse);
  r->set_item(item);
  r->set_quantity(q);
  r->set_lot(lot);
  return op;
}

Operation LevelTestEnv::Hold(const std::string& warehouse, const std::string& item, int64_t q,
                             const std::string& hold_id, int64_t ttl_seconds) {
  Operation op;
  auto* h = op.mutable_hold();
  h->set_warehouse(warehouse);
  h->set_item(item);
  h->set_quantity(q);
  h->set_hold_id(hold_id);
  h->set_ttl_seconds(ttl_seconds);
  return op;
}

Operation LevelTestEnv::Release(const std::string& hold_id) {
  Operation op;
  op.mutable_release()->set_hold_id(hold_id);
  return op;
}

Operation LevelTestEnv::Ship(const std::string& hold_id, const std::string& dest) {
  Operation op;
  op.mutable_ship()->set_hold_id(hold_id);
  op.mutable_ship()->set_destination(dest);
  return op;
}

Operation LevelTestEnv::Count(const std::string& warehouse, const std::string& item,
                              const std::string& lot, int64_t counted, const std::string& reason,
                              const std::string& expiry) {
  Operation op;
  auto* s = op.mutable_stocktake();
  s->set_warehouse(warehouse);
  s->set_item(item);
  s->set_reason(reason);
  auto* c = s->add_counts();
  c->set_lot(lot);
  c->set_counted(counted);
  c->set_expiry_date(expiry);
  return op;
}

}  // namespace stockpile::level::testing
