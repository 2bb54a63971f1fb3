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

// A stored record's response as the first reply gave it: parsed and, where it was stored
// stamped, restored. The record's method names the response type.
absl::StatusOr<std::unique_ptr<google::protobuf::Message>> StoredResponse(
    const internal::RequestRecord& record, absl::string_view request_id);

}  // namespace stockpile::level
