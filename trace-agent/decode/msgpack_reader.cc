#include "trace-agent/decode/msgpack_reader.h"

#include "common/strings/strings.h"

namespace dogwatch::trace::msgpack {

using strings::AppendTo;
using strings::Cat;

const char* TypeName(uint8_t b) {
  if (b <= 0x7f) return "uint";
  if (b <= 0x8f) return "map";
  if (b <= 0x9f) return "array";
  if (b <= 0xbf) return "str";
  if (b >= 0xe0) return "int";
  switch (b) {
    case 0xc0:
      return "nil";
    case 0xc1:
      return "reserved type byte 0xc1";
    case 0xc2:
    case 0xc3:
      return "bool";
    case 0xc4:
    case 0xc5:
    case 0xc6:
      return "bin";
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
      return "ext";
    case 0xca:
      return "float32";
    case 0xcb:
      return "float64";
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
      return "uint";
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
      return "int";
    case 0xd9:
    case 0xda:
    case 0xdb:
      return "str";
    case 0xdc:
    case 0xdd:
      return "array";
    default:  // 0xde, 0xdf
      return "map";
  }
}

absl::Status Reader::status() const {
  if (error_.empty()) return absl::OkStatus();
  return absl::Status(code_, error_);
}

namespace {

// Map keys come from the client: quote at most 64 bytes of one, printable ASCII only, so an error
// message stays a readable single line.
void AppendQuotedKey(std::string* out, std::string_view key) {
  out->push_back('\'');
  const size_t shown = key.size() < 64 ? key.size() : 64;
  for (size_t i = 0; i < shown; ++i) {
    const char c = key[i];
    out->push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  if (shown < key.size()) out->append("...");
  out->push_back('\'');
}

}  // namespace

bool Reader::FailAt(absl::StatusCode code, std::string_view detail, size_t at, bool show_offset) {
  if (!error_.empty()) return false;  // the first error is the one that explains the others
  code_ = code;
  error_.assign(prefix_);
  error_.append(": ");
  if (location_ != nullptr) {
    const Location& l = *location_;
    std::string where;
    if (l.outer >= 0) AppendTo(&where, l.outer_name, " ", l.outer);
    if (l.span >= 0) AppendTo(&where, where.empty() ? "" : ", ", "span ", l.span);
    if (!where.empty()) AppendTo(&error_, where, ": ");
    std::string what;
    if (l.field != nullptr) AppendTo(&what, "field '", l.field, "'");
    if (l.link >= 0) AppendTo(&what, what.empty() ? "" : ", ", "link ", l.link);
    if (l.link_field != nullptr) AppendTo(&what, what.empty() ? "" : ", ", "field '", l.link_field, "'");
    if (l.has_key) {
      AppendTo(&what, what.empty() ? "" : ", ", "key ");
      AppendQuotedKey(&what, l.key);
    }
    if (!what.empty()) AppendTo(&error_, what, ": ");
  }
  error_.append(detail);
  if (show_offset) AppendTo(&error_, " (at byte ", at, ")");
  return false;
}

bool Reader::Truncated(size_t needed) {
  // The offset is where the cut-off value starts: that is where a reader of a hex dump looks.
  const size_t missing = needed - remaining();
  return FailAt(
      absl::StatusCode::kInvalidArgument,
      Cat("truncated at byte ", offset(), " (need ", missing, " more byte", missing == 1 ? "" : "s", ")"),
      offset(), /*show_offset=*/false);
}

bool Reader::ClaimError(const char* what, uint64_t count, size_t bytes_per_element, size_t header_size) {
  const bool is_map = bytes_per_element == 2;
  return FailAt(absl::StatusCode::kInvalidArgument,
                Cat(what, " of ", count, is_map ? " entries" : " elements", " claimed but only ", remaining(),
                    " byte", remaining() == 1 ? "" : "s", " remain"),
                offset() - header_size, /*show_offset=*/true);
}

bool Reader::TypeError(const char* expected) {
  if (p_ >= end_) return Truncated(1);
  return Fail(Cat("expected ", expected, ", got ", TypeName(*p_)));
}

bool Reader::ReadArrayHeaderSlow(uint32_t* count) {
  if (p_ >= end_) return Truncated(1);
  const uint8_t b = *p_;
  size_t header;
  if ((b & 0xf0) == 0x90) {
    header = 1;
    *count = b & 0x0f;
  } else if (b == 0xdc) {
    if (remaining() < 3) return Truncated(3);
    header = 3;
    *count = Load16(p_ + 1);
  } else if (b == 0xdd) {
    if (remaining() < 5) return Truncated(5);
    header = 5;
    *count = Load32(p_ + 1);
  } else {
    return TypeError("array");
  }
  p_ += header;
  return *count <= remaining() || ClaimError("array", *count, 1, header);
}

bool Reader::ReadMapHeaderSlow(uint32_t* count) {
  if (p_ >= end_) return Truncated(1);
  const uint8_t b = *p_;
  size_t header;
  if ((b & 0xf0) == 0x80) {
    header = 1;
    *count = b & 0x0f;
  } else if (b == 0xde) {
    if (remaining() < 3) return Truncated(3);
    header = 3;
    *count = Load16(p_ + 1);
  } else if (b == 0xdf) {
    if (remaining() < 5) return Truncated(5);
    header = 5;
    *count = Load32(p_ + 1);
  } else {
    return TypeError("map");
  }
  p_ += header;
  return 2 * uint64_t{*count} <= remaining() || ClaimError("map", *count, 2, header);
}

bool Reader::ReadStrSlow(std::string_view* out, bool allow_bin) {
  if (p_ >= end_) return Truncated(1);
  const uint8_t b = *p_;
  size_t header;
  size_t length;
  const bool is_bin = b >= 0xc4 && b <= 0xc6;
  if ((b & 0xe0) == 0xa0) {
    header = 1;
    length = b & 0x1f;
  } else if (b == 0xd9 || (allow_bin && b == 0xc4)) {
    if (remaining() < 2) return Truncated(2);
    header = 2;
    length = p_[1];
  } else if (b == 0xda || (allow_bin && b == 0xc5)) {
    if (remaining() < 3) return Truncated(3);
    header = 3;
    length = Load16(p_ + 1);
  } else if (b == 0xdb || (allow_bin && b == 0xc6)) {
    if (remaining() < 5) return Truncated(5);
    header = 5;
    length = Load32(p_ + 1);
  } else {
    return TypeError(allow_bin ? "str or bin" : "str");
  }
  if (length > remaining() - header) {
    return Fail(Cat(is_bin ? "bin" : "str", " of ", length, " bytes claimed but only ", remaining() - header,
                    " bytes remain"));
  }
  if (length > max_string_bytes_) {
    return FailLimit(Cat(is_bin ? "bin" : "str", " of ", length, " bytes exceeds the limit of ",
                         max_string_bytes_, " bytes"));
  }
  *out = std::string_view(reinterpret_cast<const char*>(p_ + header), length);
  p_ += header + length;
  return true;
}

bool Reader::ReadNumberSlow(Number* out, const char* expected) {
  if (p_ >= end_) return Truncated(1);
  const uint8_t b = *p_;
  if (b <= 0x7f) {
    out->kind = Number::kUint;
    out->u = b;
    ++p_;
    return true;
  }
  if (b >= 0xe0) {
    out->kind = Number::kInt;
    out->i = static_cast<int8_t>(b);
    ++p_;
    return true;
  }
  size_t size;
  switch (b) {
    case 0xc0:
      out->kind = Number::kNil;
      out->u = 0;
      ++p_;
      return true;
    case 0xcc:
    case 0xd0:
      size = 1;
      break;
    case 0xcd:
    case 0xd1:
      size = 2;
      break;
    case 0xce:
    case 0xd2:
    case 0xca:
      size = 4;
      break;
    case 0xcf:
    case 0xd3:
    case 0xcb:
      size = 8;
      break;
    default:
      return TypeError(expected);
  }
  if (remaining() < size + 1) return Truncated(size + 1);
  const uint8_t* v = p_ + 1;
  switch (b) {
    case 0xcc:
      out->kind = Number::kUint;
      out->u = v[0];
      break;
    case 0xcd:
      out->kind = Number::kUint;
      out->u = Load16(v);
      break;
    case 0xce:
      out->kind = Number::kUint;
      out->u = Load32(v);
      break;
    case 0xcf:
      out->kind = Number::kUint;
      out->u = Load64(v);
      break;
    case 0xd0:
      out->kind = Number::kInt;
      out->i = static_cast<int8_t>(v[0]);
      break;
    case 0xd1:
      out->kind = Number::kInt;
      out->i = static_cast<int16_t>(Load16(v));
      break;
    case 0xd2:
      out->kind = Number::kInt;
      out->i = static_cast<int32_t>(Load32(v));
      break;
    case 0xd3:
      out->kind = Number::kInt;
      out->i = static_cast<int64_t>(Load64(v));
      break;
    case 0xca: {
      const uint32_t bits = Load32(v);
      float f;
      std::memcpy(&f, &bits, sizeof(f));
      out->kind = Number::kFloat;
      out->f = f;
      break;
    }
    default: {  // 0xcb
      const uint64_t bits = Load64(v);
      double d;
      std::memcpy(&d, &bits, sizeof(d));
      out->kind = Number::kFloat;
      out->f = d;
      break;
    }
  }
  p_ += size + 1;
  return true;
}

bool Reader::ReadBool(bool* out) {
  if (p_ >= end_) return Truncated(1);
  switch (*p_) {
    case 0xc0:
    case 0xc2:
      *out = false;
      break;
    case 0xc3:
      *out = true;
      break;
    default:
      return TypeError("bool");
  }
  ++p_;
  return true;
}

bool Reader::SkipBytes(size_t header, size_t length, const char* what) {
  if (remaining() < header) return Truncated(header);
  if (length > remaining() - header) {
    return Fail(Cat(what, " of ", length, " bytes claimed but only ", remaining() - header, " bytes remain"));
  }
  p_ += header + length;
  return true;
}

bool Reader::Skip(size_t depth) {
  if (p_ >= end_) return Truncated(1);
  const uint8_t b = *p_;
  // Scalars first: fixint, nil, bool.
  if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
    ++p_;
    return true;
  }
  if ((b & 0xe0) == 0xa0) return SkipBytes(1, b & 0x1f, "str");
  uint64_t elements = 0;  // for containers: values to skip (2 per map entry)
  switch (b) {
    case 0xc1:
      return Fail("invalid type byte 0xc1");
    case 0xcc:
    case 0xd0:
      return SkipBytes(2, 0, "int");
    case 0xcd:
    case 0xd1:
      return SkipBytes(3, 0, "int");
    case 0xce:
    case 0xd2:
    case 0xca:
      return SkipBytes(5, 0, "number");
    case 0xcf:
    case 0xd3:
    case 0xcb:
      return SkipBytes(9, 0, "number");
    case 0xd4:
      return SkipBytes(2, 1, "ext");
    case 0xd5:
      return SkipBytes(2, 2, "ext");
    case 0xd6:
      return SkipBytes(2, 4, "ext");
    case 0xd7:
      return SkipBytes(2, 8, "ext");
    case 0xd8:
      return SkipBytes(2, 16, "ext");
    case 0xc4:
    case 0xd9:
      if (remaining() < 2) return Truncated(2);
      return SkipBytes(2, p_[1], b == 0xc4 ? "bin" : "str");
    case 0xc5:
    case 0xda:
      if (remaining() < 3) return Truncated(3);
      return SkipBytes(3, Load16(p_ + 1), b == 0xc5 ? "bin" : "str");
    case 0xc6:
    case 0xdb:
      if (remaining() < 5) return Truncated(5);
      return SkipBytes(5, Load32(p_ + 1), b == 0xc6 ? "bin" : "str");
    case 0xc7:  // ext8: length, type, data
      if (remaining() < 3) return Truncated(3);
      return SkipBytes(3, p_[1], "ext");
    case 0xc8:
      if (remaining() < 4) return Truncated(4);
      return SkipBytes(4, Load16(p_ + 1), "ext");
    case 0xc9:
      if (remaining() < 6) return Truncated(6);
      return SkipBytes(6, Load32(p_ + 1), "ext");
    default:
      break;
  }
  // Containers.
  if (depth > max_depth_) {
    return Fail(Cat("values nested deeper than ", max_depth_, " levels"));
  }
  uint32_t count;
  if ((b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd) {
    if (!ReadArrayHeaderSlow(&count)) return false;
    elements = count;
  } else {
    if (!ReadMapHeaderSlow(&count)) return false;
    elements = 2 * uint64_t{count};
  }
  for (uint64_t i = 0; i < elements; ++i) {
    if (!Skip(depth + 1)) return false;
  }
  return true;
}

}  // namespace dogwatch::trace::msgpack
