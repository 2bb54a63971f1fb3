#pragma once

// The first result of a mutation is kept under its request_id so a retry gets it back. Every
// movement, balance and result of one stock command carries the same request id, actor, commit
// time and sequence, and a movement's name follows from its warehouse and id: the stored copy
// leaves those out (about half of a batch's stored bytes, which the WAL, the memtable and every
// flush would otherwise carry) and RestoreStamp puts them back, for the first reply as for
// every replay, so the two cannot differ.
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "stockpile/internal/level_store.pb.h"
#include "stockpile/v1/change.pb.h"

namespace stockpile::level {

// SHA-256 of a mutation request's content without its request_id (field 1 of every mutation
// request): the stored record of a request_id remembers it, and a reuse of the id with other
// content is refused.
std::string RequestFingerprint(const google::protobuf::Message& request);

// What one command's records share.
struct CommandStamp {
  std::string request_id;
  std::string actor;
  int64_t commit_micros = 0;
  uint64_t sequence = 0;
};

// Clears the stamp's fields from a MovementResult or ApplyBatchResponse when every record in it
// carries exactly this stamp; false (and nothing changed) for any other response, or when one
// record differs, which is then stored whole.
bool StripStamp(const CommandStamp& stamp, google::protobuf::Message* response);
// Puts the stamp's fields back into a response StripStamp cleared.
void RestoreStamp(const CommandStamp& stamp, google::protobuf::Message* response);

// The stamp a stored record was made with.
CommandStamp StampOf(const internal::RequestRecord& record, absl::string_view request_id);

// Moves the change entry's balances into a stock response (MovementResult or
// ApplyBatchResponse): a stock command's reply states every balance it left, as its change
// entry does. False, and nothing moved, for any other response.
bool TakeBalancesFromChange(stockpile::v1::ChangeEntry* change,
                            google::protobuf::Message* response);

// Whether a stored record holds a stock command's reply (a MovementResult or an
// ApplyBatchResponse, with movements): not a warehouse, quota or reserve change, nor a kept
// refusal. Only such a record has a StoredResponse.
bool HoldsStockReply(const internal::RequestRecord& record);

// A stored record's response as the first reply gave it: parsed and, where it was stored
// stamped, restored. The record's method names the response type. For a record stored with
// `balances_in_change`, `change` is the change entry at the record's sequence, whose balances
// it takes; nullptr leaves the balances out (for callers that read only the movements).
absl::StatusOr<std::unique_ptr<google::protobuf::Message>> StoredResponse(
    const internal::RequestRecord& record, absl::string_view request_id,
    stockpile::v1::ChangeEntry* change);

}  // namespace stockpile::level
