#include "agent-core/intake/protobuf_wire_check.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/stubs/common.h>

#include <climits>
#include <cstdint>
#include <unordered_map>

#include "absl/strings/str_cat.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace dogwatch::intake {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// The parser's default recursion limit (io::CodedInputStream::GetDefaultRecursionLimit()), which
// ParseFromArray uses: nested messages and groups below the top-level message.
constexpr int kMaxDepth = 100;
// Dense field tables up to this number; the rare larger numbers are searched.
constexpr int kMaxDenseFieldNumber = 1024;

enum WireType : uint32_t {
  kWireVarint = 0,
  kWireFixed64 = 1,
  kWireLengthDelimited = 2,
  kWireStartGroup = 3,
  kWireEndGroup = 4,
  kWireFixed32 = 5,
};

// protobuf's own validator, so that the verdict is the parser's, after an ASCII prefix skipped 16
// bytes at a time: tags, names and most values are ASCII, and the validator took a quarter of the
// check's time on them. The prefix ends on a character boundary, so the rest validates alone.
bool IsValidUtf8(const char* data, size_t size) {
  size_t ascii = 0;
#ifdef __SSE2__
  while (size - ascii >= 16) {
    const __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + ascii));
    if (_mm_movemask_epi8(chunk) != 0) break;
    ascii += 16;
  }
#endif
  while (ascii < size && static_cast<uint8_t>(data[ascii]) < 0x80) ++ascii;
  if (ascii == size) return true;
  return google::protobuf::internal::IsStructurallyValidUTF8(data + ascii, static_cast<int>(size - ascii));
}

}  // namespace

int ProtobufWireCheck::Compile(const Descriptor* type,
                               std::unordered_map<const Descriptor*, int>* compiled_types) {
  // Recursive and mutually recursive types compile once each.
  if (auto it = compiled_types->find(type); it != compiled_types->end()) return it->second;
  const int index = static_cast<int>(messages_.size());
  (*compiled_types)[type] = index;
  messages_.push_back(Message{type->full_name(), {}, {}});

  std::vector<Field> fields;
  std::vector<std::pair<uint32_t, Field>> sparse;
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    const int number = field->number();
    Field checked;
    switch (field->type()) {
      case FieldDescriptor::TYPE_INT32:
      case FieldDescriptor::TYPE_INT64:
      case FieldDescriptor::TYPE_UINT32:
      case FieldDescriptor::TYPE_UINT64:
      case FieldDescriptor::TYPE_SINT32:
      case FieldDescriptor::TYPE_SINT64:
      case FieldDescriptor::TYPE_BOOL:
      case FieldDescriptor::TYPE_ENUM:
        checked.kind = field->is_repeated() ? Kind::kPackedVarint : Kind::kVarint;
        break;
      case FieldDescriptor::TYPE_FIXED64:
      case FieldDescriptor::TYPE_SFIXED64:
      case FieldDescriptor::TYPE_DOUBLE:
        checked.kind = field->is_repeated() ? Kind::kPackedFixed64 : Kind::kFixed64;
        break;
      case FieldDescriptor::TYPE_FIXED32:
      case FieldDescriptor::TYPE_SFIXED32:
      case FieldDescriptor::TYPE_FLOAT:
        checked.kind = field->is_repeated() ? Kind::kPackedFixed32 : Kind::kFixed32;
        break;
      case FieldDescriptor::TYPE_STRING:
        // proto3 strings are checked at parse time; proto2 strings are not.
        checked.kind = field->file()->syntax() == google::protobuf::FileDescriptor::SYNTAX_PROTO3
                           ? Kind::kUtf8String
                           : Kind::kBytes;
        break;
      case FieldDescriptor::TYPE_BYTES:
        checked.kind = Kind::kBytes;
        break;
      case FieldDescriptor::TYPE_MESSAGE:
        checked.kind = Kind::kMessage;
        checked.message = Compile(field->message_type(), compiled_types);
        break;
      case FieldDescriptor::TYPE_GROUP:
        // proto2 groups: not in the intake's types; read as unknown groups, which the parser
        // would check the same way apart from the group's own fields.
        checked.kind = Kind::kUnknown;
        break;
    }
    if (number <= kMaxDenseFieldNumber) {
      if (fields.size() <= static_cast<size_t>(number)) fields.resize(static_cast<size_t>(number) + 1);
      fields[static_cast<size_t>(number)] = checked;
    } else {
      sparse.emplace_back(static_cast<uint32_t>(number), checked);
    }
  }
  // messages_ may have grown (and moved) while the fields' types compiled.
  messages_[static_cast<size_t>(index)].by_number = std::move(fields);
  messages_[static_cast<size_t>(index)].sparse = std::move(sparse);
  return index;
}

ProtobufWireCheck::ProtobufWireCheck(const Descriptor* type) {
  std::unordered_map<const Descriptor*, int> compiled;
  Compile(type, &compiled);
}

inline ProtobufWireCheck::Field ProtobufWireCheck::Message::Lookup(uint32_t number) const {
  if (number < by_number.size()) return by_number[number];
  for (const auto& [n, field] : sparse) {
    if (n == number) return field;
  }
  return Field{};
}

// One walk over the bytes. Every read is bounded by the end of the enclosing message; the first
// problem stops the walk with its description.
class ProtobufWireCheck::Walker {
 public:
  Walker(const ProtobufWireCheck& check, std::string_view bytes)
      : check_(check), begin_(bytes.data()), end_(bytes.data() + bytes.size()) {}

  absl::Status Run() {
    const char* p = begin_;
    if (!WalkMessage(&p, end_, 0, 0, 0)) return absl::InvalidArgumentError(error_);
    return absl::OkStatus();
  }

 private:
  // A message (message >= 0) or an unknown group's fields (message < 0, start_tag its tag) up to
  // `end`. A message ends exactly at `end`; a group ends at its end-group tag.
  bool WalkMessage(const char** p, const char* end, int message, int depth, uint32_t start_tag) {
    const Message* type = message >= 0 ? &check_.messages_[static_cast<size_t>(message)] : nullptr;
    while (*p < end) {
      const char* field_start = *p;
      uint32_t tag;
      if (!ReadTag(p, end, &tag)) return Fail(field_start, type, 0, "malformed tag");
      const uint32_t wire = tag & 7;
      const uint32_t number = tag >> 3;
      if (tag == 0) return Fail(field_start, type, 0, "tag 0");
      if (wire == kWireEndGroup) {
        if (start_tag != 0 && number == (start_tag >> 3)) return true;  // the group's own end
        return Fail(field_start, type, number, "end-group tag without its start-group");
      }
      if (number == 0) return Fail(field_start, type, 0, "field number 0");
      Field field;
      if (type != nullptr) field = type->Lookup(number);
      if (!WalkField(p, end, type, field, number, wire, tag, depth, field_start)) return false;
    }
    if (start_tag != 0) return Fail(*p, type, start_tag >> 3, "group without its end-group tag");
    return true;
  }

  [[gnu::always_inline]] inline bool WalkField(const char** p, const char* end, const Message* type,
                                               Field field, uint32_t number, uint32_t wire, uint32_t tag,
                                               int depth, const char* field_start) {
    switch (wire) {
      case kWireVarint:
        if (!SkipVarint(p, end)) return Fail(field_start, type, number, "malformed varint");
        return true;
      case kWireFixed64:
        if (end - *p < 8) return Fail(field_start, type, number, "truncated 64-bit value");
        *p += 8;
        return true;
      case kWireFixed32:
        if (end - *p < 4) return Fail(field_start, type, number, "truncated 32-bit value");
        *p += 4;
        return true;
      case kWireStartGroup:
        // Unknown to the intake's types either way: its fields are unknown fields.
        if (depth + 1 > kMaxDepth) return Fail(field_start, type, number, "nested too deeply");
        return WalkMessage(p, end, -1, depth + 1, tag);
      case kWireLengthDelimited:
        break;
      default:
        return Fail(field_start, type, number, absl::StrCat("invalid wire type ", wire));
    }
    uint32_t size;
    if (!ReadSize(p, end, &size)) return Fail(field_start, type, number, "malformed length");
    if (static_cast<size_t>(end - *p) < size) {
      return Fail(field_start, type, number,
                  absl::StrCat("length ", size, " runs past the end of its message"));
    }
    const char* value = *p;
    *p += size;
    switch (field.kind) {
      case Kind::kUtf8String:
        if (!IsValidUtf8(value, size)) {
          return Fail(field_start, type, number, "string is not valid UTF-8");
        }
        return true;
      case Kind::kMessage: {
        if (depth + 1 > kMaxDepth) return Fail(field_start, type, number, "nested too deeply");
        const char* inner = value;
        return WalkMessage(&inner, *p, field.message, depth + 1, 0);
      }
      case Kind::kPackedVarint: {
        const char* inner = value;
        while (inner < *p) {
          if (!SkipVarint(&inner, *p)) return Fail(field_start, type, number, "malformed packed varint");
        }
        return true;
      }
      case Kind::kPackedFixed64:
        if (size % 8 != 0) return Fail(field_start, type, number, "packed 64-bit values of a partial length");
        return true;
      case Kind::kPackedFixed32:
        if (size % 4 != 0) return Fail(field_start, type, number, "packed 32-bit values of a partial length");
        return true;
      default:
        return true;  // bytes, or an unknown or mistyped field
    }
  }

  // Tags and lengths: varints of at most 5 bytes read into 32 bits, as the parser's ReadTag (bits
  // past 32 dropped) and ReadSize (a fifth byte of 8 or more, or a value over INT32_MAX - 16, refused).
  static bool ReadVarint32(const char** p, const char* end, bool is_size, uint32_t* out) {
    if (*p < end && static_cast<uint8_t>(**p) < 0x80) [[likely]] {  // fields 1-15, strings under 128
      *out = static_cast<uint8_t>(**p);
      ++*p;
      return true;
    }
    uint32_t value = 0;
    for (int i = 0; i < 5; ++i) {
      if (*p + i >= end) return false;
      const auto byte = static_cast<uint8_t>((*p)[i]);
      if (is_size && i == 4 && byte >= 8) return false;
      value |= static_cast<uint32_t>(byte & 0x7f) << (7 * i);
      if (byte < 0x80) {
        if (is_size && value > static_cast<uint32_t>(INT32_MAX - 16)) return false;
        *p += i + 1;
        *out = value;
        return true;
      }
    }
    return false;
  }
  static bool ReadTag(const char** p, const char* end, uint32_t* tag) {
    return ReadVarint32(p, end, false, tag);
  }
  static bool ReadSize(const char** p, const char* end, uint32_t* size) {
    return ReadVarint32(p, end, true, size);
  }

  // Up to 10 bytes, as the parser reads any varint.
  static bool SkipVarint(const char** p, const char* end) {
    for (int i = 0; i < 10; ++i) {
      if (*p + i >= end) return false;
      if (static_cast<uint8_t>((*p)[i]) < 0x80) {
        *p += i + 1;
        return true;
      }
    }
    return false;
  }

  bool Fail(const char* at, const Message* type, uint32_t number, absl::string_view what) {
    const std::string where = type == nullptr ? "an unknown group" : type->name;
    error_ = number == 0 ? absl::StrCat(what, " in ", where, " at byte ", at - begin_)
                         : absl::StrCat(what, " in field ", number, " of ", where, " at byte ", at - begin_);
    return false;
  }

  const ProtobufWireCheck& check_;
  const char* begin_;
  const char* end_;
  std::string error_;
};

absl::Status ProtobufWireCheck::Check(std::string_view bytes) const {
  if (bytes.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat("message of ", bytes.size(), " bytes is over 2 GiB"));
  }
  return Walker(*this, bytes).Run();
}

}  // namespace dogwatch::intake
