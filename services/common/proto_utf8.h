#pragma once

// Requests whose text fields are not valid UTF-8.
//
// proto3 refuses to parse a string field that is not valid UTF-8, and gRPC 1.51's callback
// server then answers UNIMPLEMENTED with no message, before any handler runs
// (server_callback_handlers.h drops the parse status). So that such a request gets a clear
// INVALID_ARGUMENT naming the field instead, the request types of our services parse through
// UTF-8-tolerant traits: a string that is not valid UTF-8 arrives as kInvalidUtf8Marker, which
// every text and identifier check refuses with "<field> is not valid UTF-8".
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/byte_buffer.h>

#include <string>

#include "absl/strings/string_view.h"

namespace google::protobuf {
class Message;
}

namespace stockpile::common {

inline constexpr char kInvalidUtf8Marker[] = "\x01(invalid UTF-8)";

// Parses `wire` into `msg`, replacing every string field that is not valid UTF-8 (at any depth)
// with kInvalidUtf8Marker. False when the bytes are not a `msg` at all.
bool ParseReplacingInvalidUtf8(absl::string_view wire, google::protobuf::Message* msg);

// Deserialize for the tolerant traits below.
grpc::Status TolerantDeserialize(grpc::ByteBuffer* buffer, google::protobuf::Message* msg);

}  // namespace stockpile::common

// Declares UTF-8-tolerant gRPC serialization traits for one request type. Must be seen before
// the type is used with gRPC in every translation unit (see services/level/request_traits.h).
#define STOCKPILE_UTF8_TOLERANT_REQUEST(Type)                                                     \
  template <>                                                                                     \
  class grpc::SerializationTraits<Type, void> {                                                   \
   public:                                                                                        \
    static grpc::Status Serialize(const grpc::protobuf::MessageLite& msg, grpc::ByteBuffer* bb,   \
                                  bool* own_buffer) {                                             \
      return grpc::GenericSerialize<grpc::ProtoBufferWriter, Type>(msg, bb, own_buffer);          \
    }                                                                                             \
    static grpc::Status Deserialize(grpc::ByteBuffer* buffer, grpc::protobuf::MessageLite* msg) { \
      return ::stockpile::common::TolerantDeserialize(buffer, static_cast<Type*>(msg));           \
    }                                                                                             \
  };
