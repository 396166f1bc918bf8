#pragma once
// Checks protobuf wire-format bytes against a message type without building the message: accepts
// and refuses exactly what protobuf's C++ parser (3.21, ParseFromArray) accepts and refuses, and
// says where and why it refuses. The local intake checks every payload on arrival; parsing a 3 MB
// AgentPayload builds tens of thousands of map entries and strings only to throw them away, which
// at a few hundred thousand spans a second took most of a core. This walk allocates nothing.
//
// What the parser refuses, and so does this check:
//   - a tag that is 0, longer than 5 bytes, has field number 0, or wire type 6 or 7;
//   - an end-group tag outside the group it closes, a group closed by another field's tag;
//   - a varint longer than 10 bytes; a length longer than 5 bytes or above INT32_MAX - 16;
//   - any field running past the end of its message (or of the input);
//   - a proto3 string field (or map key/value) that is not valid UTF-8, at every occurrence;
//   - a packed repeated field whose varints do not end exactly at its end, or whose fixed-size
//     elements do not fill it exactly;
//   - messages and groups nested deeper than the parser's default recursion limit (100).
// A known field sent with another wire type is an unknown field, as for the parser.
// protobuf_wire_check_fuzz compares the two on arbitrary input.

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace google::protobuf {
class Descriptor;
}

namespace dogwatch::intake {

class ProtobufWireCheck {
 public:
  // `type` and the message types its fields reach (maps included) are compiled into tables once.
  explicit ProtobufWireCheck(const google::protobuf::Descriptor* type);

  // OK when ParseFromArray would accept `bytes` as `type`; otherwise InvalidArgument naming the
  // field, the byte offset and the problem.
  absl::Status Check(std::string_view bytes) const;

 private:
  enum class Kind : uint8_t {
    kUnknown,        // not a field of the message: skipped by wire type
    kVarint,         // int32/64, uint32/64, sint32/64, bool, enum
    kFixed64,        // fixed64, sfixed64, double
    kFixed32,        // fixed32, sfixed32, float
    kUtf8String,     // proto3 string: checked for UTF-8
    kBytes,          // bytes, or a string the parser does not check
    kMessage,        // a message or map entry: checked recursively
    kPackedVarint,   // repeated varint field: also accepted packed
    kPackedFixed64,  // repeated fixed64: also accepted packed
    kPackedFixed32,  // repeated fixed32: also accepted packed
  };
  struct Field {
    Kind kind = Kind::kUnknown;
    int message = -1;  // kMessage: index into messages_
  };
  struct Message {
    std::string name;
    std::vector<Field> by_number;                    // dense, by field number up to 1024
    std::vector<std::pair<uint32_t, Field>> sparse;  // larger field numbers, searched
    Field Lookup(uint32_t number) const;
  };
  class Walker;

  // Index of `type` in messages_, compiling it (and what its fields reach) unless compiled_types
  // has it.
  int Compile(const google::protobuf::Descriptor* type,
              std::unordered_map<const google::protobuf::Descriptor*, int>* compiled_types);

  std::vector<Message> messages_;
};

}  // namespace dogwatch::intake
