#include "services/level/stored_response.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "services/common/validation.h"
#include "services/level/proto_util.h"
#include "stockpile/v1/level_service.pb.h"

namespace stockpile::level {
namespace {

using stockpile::v1::ApplyBatchResponse;
using stockpile::v1::Balance;
using stockpile::v1::Movement;
using stockpile::v1::MovementResult;

bool Same(const google::protobuf::Timestamp& a, const google::protobuf::Timestamp& b) {
  return a.seconds() == b.seconds() && a.nanos() == b.nanos();
}

bool Carries(const CommandStamp& s, const google::protobuf::Timestamp& time, const Movement& m) {
  return m.request_id() == s.request_id && m.actor() == s.actor && m.sequence() == s.sequence &&
         m.has_create_time() && Same(m.create_time(), time) &&
         m.name() == common::MovementName(m.warehouse(), m.id());
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

bool Carries(const CommandStamp& s, const google::protobuf::Timestamp& time,
             const ApplyBatchResponse& batch) {
  if (batch.sequence() != s.sequence) return false;
  for (const auto& r : batch.results()) {
    if (!Carries(s, time, r)) return false;
  }
  for (const auto& b : batch.balances()) {
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

void Strip(ApplyBatchResponse* batch) {
  batch->clear_sequence();
  for (auto& r : *batch->mutable_results()) Strip(&r);
  for (auto& b : *batch->mutable_balances()) Strip(&b);
}

void Restore(const CommandStamp& s, const google::protobuf::Timestamp& time, Movement* m) {
  m->set_name(common::MovementName(m->warehouse(), m->id()));
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

void Restore(const CommandStamp& s, const google::protobuf::Timestamp& time,
             ApplyBatchResponse* batch) {
  batch->set_sequence(s.sequence);
  for (auto& r : *batch->mutable_results()) Restore(s, time, &r);
  for (auto& b : *batch->mutable_balances()) Restore(s, time, &b);
}

// Calls `fn` with the response as the stock response it is; false for any other message.
template <typename Fn>
bool AsStockResponse(google::protobuf::Message* response, Fn fn) {
  if (auto* single = dynamic_cast<MovementResult*>(response)) return fn(single);
  if (auto* batch = dynamic_cast<ApplyBatchResponse*>(response)) return fn(batch);
  return false;
}

}  // namespace

bool StripStamp(const CommandStamp& stamp, google::protobuf::Message* response) {
  const google::protobuf::Timestamp time = ToTimestamp(stamp.commit_micros);
  return AsStockResponse(response, [&](auto* r) {
    if (!Carries(stamp, time, *r)) return false;
    Strip(r);
    return true;
  });
}

void RestoreStamp(const CommandStamp& stamp, google::protobuf::Message* response) {
  const google::protobuf::Timestamp time = ToTimestamp(stamp.commit_micros);
  AsStockResponse(response, [&](auto* r) {
    Restore(stamp, time, r);
    return true;
  });
}

CommandStamp StampOf(const internal::RequestRecord& record, absl::string_view request_id) {
  return {std::string(request_id), record.actor(), record.commit_micros(), record.sequence()};
}

bool TakeBalancesFromChange(stockpile::v1::ChangeEntry* change,
                            google::protobuf::Message* response) {
  return AsStockResponse(response, [&](auto* r) {
    // A move where both live on the same arena (or both on the heap), else a copy.
    *r->mutable_balances() = std::move(*change->mutable_balances());
    return true;
  });
}

bool HoldsStockReply(const internal::RequestRecord& record) {
  const std::string& m = record.method();
  return record.refusal_code() == 0 && m != "CreateWarehouse" && m != "UpdateWarehouse" &&
         m != "SetQuota" && m != "SetReserve";
}

absl::StatusOr<std::unique_ptr<google::protobuf::Message>> StoredResponse(
    const internal::RequestRecord& record, absl::string_view request_id,
    stockpile::v1::ChangeEntry* change) {
  if (!HoldsStockReply(record)) {
    return absl::InternalError(
        absl::StrCat("request ", request_id, " (", record.method(), ") has no stored stock reply"));
  }
  std::unique_ptr<google::protobuf::Message> response;
  if (record.method() == "ApplyBatch") {
    response = std::make_unique<ApplyBatchResponse>();
  } else {
    response = std::make_unique<MovementResult>();
  }
  if (!response->ParseFromString(record.response())) {
    return absl::DataLossError(
        absl::StrCat("stored response of request ", request_id, " is unreadable"));
  }
  if (record.balances_in_change() && change != nullptr) {
    if (change->sequence() != record.sequence()) {
      return absl::InternalError(absl::StrCat("request ", request_id, " was answered at sequence ",
                                              record.sequence(), " but change entry ",
                                              change->sequence(), " was given"));
    }
    TakeBalancesFromChange(change, response.get());
  }
  if (record.stamped()) RestoreStamp(StampOf(record, request_id), response.get());
  return response;
}

namespace {

std::string DeterministicBytes(const google::protobuf::Message& message) {
  std::string bytes;
  google::protobuf::io::StringOutputStream out(&bytes);
  google::protobuf::io::CodedOutputStream coded(&out);
  coded.SetSerializationDeterministic(true);
  message.SerializeToCodedStream(&coded);
  coded.Trim();
  return bytes;
}

// Deterministic serialization writes fields in number order, so a request_id that is field 1
// comes first (tag, length, bytes): what follows it is the request's serialization without its
// request_id, as if the field were cleared, without copying a batch of 1,000 operations.
absl::string_view WithoutLeadingField1(absl::string_view bytes) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  uint32_t length = 0;
  if (in.ReadTag() != ((1u << 3) | 2u) || !in.ReadVarint32(&length) ||
      !in.Skip(static_cast<int>(length))) {
    return bytes;
  }
  return bytes.substr(static_cast<size_t>(in.CurrentPosition()));
}

// OpenSSL 3's one-shot SHA256() looks the algorithm up in its provider tables on every call,
// which cost more than hashing a single receipt; fetch it once and keep a context per thread.
std::string Sha256(absl::string_view data) {
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                                 &EVP_MD_CTX_free);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  unsigned int length = 0;
  if (kSha256 == nullptr || ctx == nullptr ||
      EVP_DigestInit_ex2(ctx.get(), kSha256, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &length) != 1) {
    // Only a broken OpenSSL installation gets here; the one-shot call still hashes correctly.
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
    length = SHA256_DIGEST_LENGTH;
  }
  return std::string(reinterpret_cast<char*>(digest), length);
}

}  // namespace

std::string RequestFingerprint(const google::protobuf::Message& request) {
  const std::string bytes = DeterministicBytes(request);
  // Every mutation request has its request_id as field 1.
  const auto* first = request.GetDescriptor()->FindFieldByNumber(1);
  const absl::string_view content =
      first != nullptr && first->name() == "request_id" ? WithoutLeadingField1(bytes) : bytes;
  return Sha256(content);
}

}  // namespace stockpile::level
