#include "services/level/stored_response.h"

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "services/level/proto_util.h"
#include "stockpile/v1/level_service.pb.h"

namespace stockpile::level {
namespace {

using stockpile::v1::ApplyBatchResponse;
using stockpile::v1::Balance;
using stockpile::v1::Movement;
using stockpile::v1::MovementResult;

constexpr absl::string_view kMovementsInfix = "/movements/";

bool NameFollowsFromWarehouseAndId(const Movement& m) {
  absl::string_view name = m.name();
  if (!absl::ConsumePrefix(&name, m.warehouse())) return false;
  if (!absl::ConsumePrefix(&name, kMovementsInfix)) return false;
  uint64_t id = 0;
  return absl::SimpleAtoi(name, &id) && id == m.id() && name == absl::StrCat(id);
}

bool Same(const google::protobuf::Timestamp& a, const google::protobuf::Timestamp& b) {
  return a.seconds() == b.seconds() && a.nanos() == b.nanos();
}

bool Carries(const CommandStamp& s, const google::protobuf::Timestamp& time, const Movement& m) {
  return m.request_id() == s.request_id && m.actor() == s.actor && m.sequence() == s.sequence &&
         m.has_create_time() && Same(m.create_time(), time) && NameFollowsFromWarehouseAndId(m);
}

bool Carries(const CommandStamp& s, const google::protobuf::Timestamp& time, const Balance& b) {
  return b.sequence() == s.sequence && b.has_update_time() && Same(b.update_time(), time);
}

bool Carries(const CommandStamp& s, const google::protobuf::Timestamp& time,
             const MovementResult& r) {
  if (r.sequence() != s.sequence) return false;
  for (const auto& m : r.movements()) {
    if (!Carries(s, time, m)) return false;
  }
  for (const auto& b : r.balances()) {
    if (!Carries(s, time, b)) return false;
  }
  return true;
}

void Strip(Movement* m) {
  m->clear_name();
  m->clear_request_id();
  m->clear_actor();
  m->clear_create_time();
  m->clear_sequence();
}

void Strip(Balance* b) {
  b->clear_update_time();
  b->clear_sequence();
}

void Strip(MovementResult* r) {
  r->clear_sequence();
  for (auto& m : *r->mutable_movements()) Strip(&m);
  for (auto& b : *r->mutable_balances()) Strip(&b);
}

void Restore(const CommandStamp& s, const google::protobuf::Timestamp& time, Movement* m) {
  m->set_name(absl::StrCat(m->warehouse(), kMovementsInfix, m->id()));
  m->set_request_id(s.request_id);
  m->set_actor(s.actor);
  *m->mutable_create_time() = time;
  m->set_sequence(s.sequence);
}

void Restore(const CommandStamp& s, const google::protobuf::Timestamp& time, Balance* b) {
  *b->mutable_update_time() = time;
  b->set_sequence(s.sequence);
}

void Restore(const CommandStamp& s, const google::protobuf::Timestamp& time, MovementResult* r) {
  r->set_sequence(s.sequence);
  for (auto& m : *r->mutable_movements()) Restore(s, time, &m);
  for (auto& b : *r->mutable_balances()) Restore(s, time, &b);
}

}  // namespace

bool StripStamp(const CommandStamp& stamp, google::protobuf::Message* response) {
  const google::protobuf::Timestamp time = ToTimestamp(stamp.commit_micros);
  if (auto* single = dynamic_cast<MovementResult*>(response)) {
    if (!Carries(stamp, time, *single)) return false;
    Strip(single);
    return true;
  }
  auto* batch = dynamic_cast<ApplyBatchResponse*>(response);
  if (batch == nullptr || batch->sequence() != stamp.sequence) return false;
  for (const auto& r : batch->results()) {
    if (!Carries(stamp, time, r)) return false;
  }
  for (const auto& b : batch->balances()) {
    if (!Carries(stamp, time, b)) return false;
  }
  batch->clear_sequence();
  for (auto& r : *batch->mutable_results()) Strip(&r);
  for (auto& b : *batch->mutable_balances()) Strip(&b);
  return true;
}

void RestoreStamp(const CommandStamp& stamp, google::protobuf::Message* response) {
  const google::protobuf::Timestamp time = ToTimestamp(stamp.commit_micros);
  if (auto* single = dynamic_cast<MovementResult*>(response)) {
    Restore(stamp, time, single);
    return;
  }
  auto* batch = dynamic_cast<ApplyBatchResponse*>(response);
  if (batch == nullptr) return;
  batch->set_sequence(stamp.sequence);
  for (auto& r : *batch->mutable_results()) Restore(stamp, time, &r);
  for (auto& b : *batch->mutable_balances()) Restore(stamp, time, &b);
}

CommandStamp StampOf(const internal::RequestRecord& record, absl::string_view request_id) {
  return {std::string(request_id), record.actor(), record.commit_micros(), record.sequence()};
}

absl::StatusOr<std::unique_ptr<google::protobuf::Message>> StoredResponse(
    const internal::RequestRecord& record, absl::string_view request_id) {
  std::unique_ptr<google::protobuf::Message> response;
  if (record.method() == "ApplyBatch") {
    response = std::make_unique<ApplyBatchResponse>();
  } else {
    response = std::make_unique<MovementResult>();
  }
  if (!response->ParseFromString(record.response())) {
    return absl::DataLossError(absl::StrCat("stored response of request ", request_id,
                                            " is unreadable"));
  }
  if (record.stamped()) RestoreStamp(StampOf(record, request_id), response.get());
  return response;
}

}  // namespace stockpile::level
