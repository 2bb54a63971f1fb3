#include "services/common/proto_utf8.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/message.h>
#include <google/protobuf/wire_format_lite.h>

namespace stockpile::common {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::internal::WireFormatLite;

bool Utf8Ok(absl::string_view s);

// Copies the wire bytes of a `type` message, replacing invalid UTF-8 strings.
bool Rewrite(const Descriptor* type, absl::string_view wire, std::string* out, int depth) {
  if (depth > 64) return false;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(wire.data()),
                                            static_cast<int>(wire.size()));
  google::protobuf::io::StringOutputStream sink(out);
  google::protobuf::io::CodedOutputStream o(&sink);
  while (uint32_t tag = in.ReadTag()) {
    const int number = static_cast<int>(WireFormatLite::GetTagFieldNumber(tag));
    const FieldDescriptor* field = type->FindFieldByNumber(number);
    o.WriteTag(tag);
    switch (WireFormatLite::GetTagWireType(tag)) {
      case WireFormatLite::WIRETYPE_VARINT: {
        uint64_t v;
        if (!in.ReadVarint64(&v)) return false;
        o.WriteVarint64(v);
        break;
      }
      case WireFormatLite::WIRETYPE_FIXED64: {
        uint64_t v;
        if (!in.ReadLittleEndian64(&v)) return false;
        o.WriteLittleEndian64(v);
        break;
      }
      case WireFormatLite::WIRETYPE_FIXED32: {
        uint32_t v;
        if (!in.ReadLittleEndian32(&v)) return false;
        o.WriteLittleEndian32(v);
        break;
      }
      case WireFormatLite::WIRETYPE_LENGTH_DELIMITED: {
        std::string bytes;
        uint32_t len;
        if (!in.ReadVarint32(&len) || !in.ReadString(&bytes, static_cast<int>(len))) return false;
        if (field != nullptr && field->type() == FieldDescriptor::TYPE_STRING && !Utf8Ok(bytes)) {
          bytes = kInvalidUtf8Marker;
        } else if (field != nullptr && field->type() == FieldDescriptor::TYPE_MESSAGE) {
          std::string nested;
          if (!Rewrite(field->message_type(), bytes, &nested, depth + 1)) return false;
          bytes = std::move(nested);
        }
        o.WriteVarint32(static_cast<uint32_t>(bytes.size()));
        o.WriteString(bytes);
        break;
      }
      default:
        return false;  // groups: not used by our protos
    }
  }
  return in.ConsumedEntireMessage() || in.CurrentPosition() == static_cast<int>(wire.size());
}

bool Utf8Ok(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80             ? 1
                 : (c & 0xE0) == 0xC0 ? 2
                 : (c & 0xF0) == 0xE0 ? 3
                 : (c & 0xF8) == 0xF0 ? 4
                                      : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

}  // namespace

bool ParseReplacingInvalidUtf8(absl::string_view wire, google::protobuf::Message* msg) {
  std::string rewritten;
  if (!Rewrite(msg->GetDescriptor(), wire, &rewritten, 0)) return false;
  return msg->ParseFromString(rewritten);
}

grpc::Status TolerantDeserialize(grpc::ByteBuffer* buffer, google::protobuf::Message* msg) {
  std::vector<grpc::Slice> slices;
  grpc::Status s = buffer->Dump(&slices);
  buffer->Clear();
  if (!s.ok()) return s;
  std::string wire;
  for (const auto& slice : slices) {
    wire.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  // Well-formed requests (almost all) parse directly; only a refused one is rewritten.
  if (msg->ParseFromString(wire) || ParseReplacingInvalidUtf8(wire, msg)) {
    return grpc::Status::OK;
  }
  return grpc::Status(grpc::StatusCode::INTERNAL, "the request could not be parsed");
}

}  // namespace stockpile::common
