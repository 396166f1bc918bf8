#include "agent-core/intake/msgpack_json.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace dogwatch::intake {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

class Converter {
 public:
  // `output` is the buffer behind the top-level writer; its size is checked against the limit as
  // values are written.
  Converter(std::string_view data, const MsgpackJsonLimits& limits, const rapidjson::StringBuffer* output)
      : begin_(reinterpret_cast<const uint8_t*>(data.data())),
        pos_(begin_),
        end_(begin_ + data.size()),
        limits_(limits),
        output_(output) {}

  absl::Status Convert(JsonWriter* writer) { return Value(writer, 0); }
  size_t offset() const { return static_cast<size_t>(pos_ - begin_); }
  bool at_end() const { return pos_ == end_; }

 private:
  size_t remaining() const { return static_cast<size_t>(end_ - pos_); }

  absl::Status Truncated(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("truncated msgpack: ", what, " at offset ", offset(), " runs past the end"));
  }

  // Big-endian unsigned integer of `n` bytes.
  bool ReadBE(size_t n, uint64_t* out) {
    if (remaining() < n) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | pos_[i];
    pos_ += n;
    *out = v;
    return true;
  }

  absl::Status Value(JsonWriter* w, size_t depth) {
    if (depth > limits_.max_depth) {
      return absl::InvalidArgumentError(
          absl::StrCat("msgpack nesting deeper than ", limits_.max_depth, " levels at offset ", offset()));
    }
    if (pos_ == end_) return Truncated("value");
    const uint8_t tag = *pos_++;
    uint64_t n = 0;

    if (tag <= 0x7f) return Check(w->Int(tag));
    if (tag >= 0xe0) return Check(w->Int(static_cast<int8_t>(tag)));
    if ((tag & 0xf0) == 0x80) return Map(w, tag & 0x0f, depth);
    if ((tag & 0xf0) == 0x90) return Array(w, tag & 0x0f, depth);
    if ((tag & 0xe0) == 0xa0) return Str(w, tag & 0x1f);

    switch (tag) {
      case 0xc0:
        return Check(w->Null());
      case 0xc2:
        return Check(w->Bool(false));
      case 0xc3:
        return Check(w->Bool(true));
      case 0xc4:
      case 0xc5:
      case 0xc6:
        if (!ReadBE(size_t{1} << (tag - 0xc4), &n)) return Truncated("bin length");
        return Bin(w, n);
      case 0xc7:
      case 0xc8:
      case 0xc9:
        if (!ReadBE(size_t{1} << (tag - 0xc7), &n)) return Truncated("ext length");
        return Ext(w, n);
      case 0xca: {
        if (!ReadBE(4, &n)) return Truncated("float32");
        const uint32_t bits = static_cast<uint32_t>(n);
        float f;
        std::memcpy(&f, &bits, sizeof(f));
        return Double(w, f);
      }
      case 0xcb: {
        if (!ReadBE(8, &n)) return Truncated("float64");
        double d;
        std::memcpy(&d, &n, sizeof(d));
        return Double(w, d);
      }
      case 0xcc:
      case 0xcd:
      case 0xce:
      case 0xcf:
        if (!ReadBE(size_t{1} << (tag - 0xcc), &n)) return Truncated("uint");
        return Check(w->Uint64(n));
      case 0xd0:
      case 0xd1:
      case 0xd2:
      case 0xd3: {
        const size_t width = size_t{1} << (tag - 0xd0);
        if (!ReadBE(width, &n)) return Truncated("int");
        // Sign-extend from `width` bytes.
        const unsigned shift = static_cast<unsigned>(64 - 8 * width);
        const int64_t v = static_cast<int64_t>(n << shift) >> shift;
        return Check(w->Int64(v));
      }
      case 0xd4:
      case 0xd5:
      case 0xd6:
      case 0xd7:
      case 0xd8:
        // fixext 1/2/4/8/16: the length is implied by the tag.
        return Ext(w, size_t{1} << (tag - 0xd4));
      case 0xd9:
      case 0xda:
      case 0xdb:
        if (!ReadBE(size_t{1} << (tag - 0xd9), &n)) return Truncated("str length");
        return Str(w, n);
      case 0xdc:
      case 0xdd:
        if (!ReadBE(tag == 0xdc ? 2 : 4, &n)) return Truncated("array length");
        return Array(w, n, depth);
      case 0xde:
      case 0xdf:
        if (!ReadBE(tag == 0xde ? 2 : 4, &n)) return Truncated("map length");
        return Map(w, n, depth);
      default:  // 0xc1 is the one byte msgpack never uses
        return absl::InvalidArgumentError(
            absl::StrCat("invalid msgpack type byte 0x", absl::Hex(tag), " at offset ", offset() - 1));
    }
  }

  absl::Status Check(bool written) {
    if (!written) return absl::InternalError("JSON writer rejected a value");
    if (output_->GetSize() > limits_.max_output_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("JSON for this msgpack exceeds ", limits_.max_output_bytes, " bytes"));
    }
    return absl::OkStatus();
  }

  absl::Status Double(JsonWriter* w, double d) {
    if (std::isnan(d)) return Check(w->String("NaN"));
    if (std::isinf(d)) return Check(w->String(d > 0 ? "Infinity" : "-Infinity"));
    return Check(w->Double(d));
  }

  absl::Status Str(JsonWriter* w, uint64_t n) {
    if (n > remaining()) return Truncated(absl::StrCat("str of ", n, " bytes"));
    const std::string text =
        SanitizeUtf8(std::string_view(reinterpret_cast<const char*>(pos_), static_cast<size_t>(n)));
    pos_ += n;
    return Check(w->String(text.data(), static_cast<rapidjson::SizeType>(text.size()), true));
  }

  absl::Status Bin(JsonWriter* w, uint64_t n) {
    if (n > remaining()) return Truncated(absl::StrCat("bin of ", n, " bytes"));
    const std::string b64 =
        absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(pos_), static_cast<size_t>(n)));
    pos_ += n;
    return Check(w->String(b64.data(), static_cast<rapidjson::SizeType>(b64.size()), true));
  }

  absl::Status Ext(JsonWriter* w, uint64_t n) {
    if (remaining() < 1) return Truncated("ext type");
    const int8_t type = static_cast<int8_t>(*pos_++);
    if (n > remaining()) return Truncated(absl::StrCat("ext of ", n, " bytes"));
    const std::string b64 =
        absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(pos_), static_cast<size_t>(n)));
    pos_ += n;
    w->StartObject();
    w->Key("$ext");
    w->Int(type);
    w->Key("data");
    w->String(b64.data(), static_cast<rapidjson::SizeType>(b64.size()), true);
    return Check(w->EndObject());
  }

  absl::Status Array(JsonWriter* w, uint64_t n, size_t depth) {
    // Every element takes at least one byte: a count beyond the bytes left is a lie, caught here
    // rather than after a long loop.
    if (n > remaining()) {
      return absl::InvalidArgumentError(absl::StrCat("msgpack array of ", n, " elements exceeds the ",
                                                     remaining(), " bytes left at offset ", offset()));
    }
    w->StartArray();
    for (uint64_t i = 0; i < n; ++i) {
      absl::Status s = Value(w, depth + 1);
      if (!s.ok()) return s;
    }
    return Check(w->EndArray());
  }

  absl::Status Map(JsonWriter* w, uint64_t n, size_t depth) {
    if (n > remaining() / 2) {
      return absl::InvalidArgumentError(absl::StrCat("msgpack map of ", n, " entries exceeds the ",
                                                     remaining(), " bytes left at offset ", offset()));
    }
    w->StartObject();
    for (uint64_t i = 0; i < n; ++i) {
      absl::Status s = Key(w, depth + 1);
      if (!s.ok()) return s;
      s = Value(w, depth + 1);
      if (!s.ok()) return s;
    }
    return Check(w->EndObject());
  }

  // JSON keys are strings: a str key is used as is, anything else as its JSON text.
  absl::Status Key(JsonWriter* w, size_t depth) {
    if (pos_ == end_) return Truncated("map key");
    const uint8_t tag = *pos_;
    uint64_t n = 0;
    bool is_str = true;
    if ((tag & 0xe0) == 0xa0) {
      ++pos_;
      n = tag & 0x1f;
    } else if (tag >= 0xd9 && tag <= 0xdb) {
      ++pos_;
      if (!ReadBE(size_t{1} << (tag - 0xd9), &n)) return Truncated("str length");
    } else {
      is_str = false;
      // Container keys would nest escaped JSON inside escaped JSON, doubling the output per level;
      // no msgpack payload we decode uses them.
      const bool is_container = (tag >= 0x80 && tag <= 0x9f) || (tag >= 0xdc && tag <= 0xdf) ||
                                (tag >= 0xc7 && tag <= 0xc9) || (tag >= 0xd4 && tag <= 0xd8);
      if (is_container) {
        return absl::InvalidArgumentError(absl::StrCat("msgpack map key at offset ", offset(),
                                                       " is an array, map or ext; only scalar keys "
                                                       "are supported"));
      }
    }
    if (is_str) {
      if (n > remaining()) return Truncated(absl::StrCat("str of ", n, " bytes"));
      const std::string text =
          SanitizeUtf8(std::string_view(reinterpret_cast<const char*>(pos_), static_cast<size_t>(n)));
      pos_ += n;
      return Check(w->Key(text.data(), static_cast<rapidjson::SizeType>(text.size()), true));
    }
    rapidjson::StringBuffer key_json;
    JsonWriter key_writer(key_json);
    absl::Status s = Value(&key_writer, depth);
    if (!s.ok()) return s;
    return Check(w->Key(key_json.GetString(), static_cast<rapidjson::SizeType>(key_json.GetSize()), true));
  }

  const uint8_t* const begin_;
  const uint8_t* pos_;
  const uint8_t* const end_;
  const MsgpackJsonLimits& limits_;
  const rapidjson::StringBuffer* const output_;
};

}  // namespace

std::string SanitizeUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t c = s[i];
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    // Length and valid range of the second byte, per RFC 3629 §4 (no overlongs, no surrogates,
    // nothing above U+10FFFF).
    size_t len = 0;
    uint8_t lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c == 0xe0) {
      len = 3, lo = 0xa0;
    } else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) {
      len = 3;
    } else if (c == 0xed) {
      len = 3, hi = 0x9f;
    } else if (c == 0xf0) {
      len = 4, lo = 0x90;
    } else if (c >= 0xf1 && c <= 0xf3) {
      len = 4;
    } else if (c == 0xf4) {
      len = 4, hi = 0x8f;
    }
    bool valid = len > 0 && i + len <= n && s[i + 1] >= lo && s[i + 1] <= hi;
    for (size_t k = 2; valid && k < len; ++k) valid = s[i + k] >= 0x80 && s[i + k] <= 0xbf;
    if (valid) {
      out.append(text.data() + i, len);
      i += len;
    } else {
      out.append("\xef\xbf\xbd");  // U+FFFD
      ++i;
    }
  }
  return out;
}

absl::StatusOr<std::string> MsgpackToJson(std::string_view data, const MsgpackJsonLimits& limits) {
  if (data.empty()) return absl::InvalidArgumentError("empty input is not msgpack");
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  Converter converter(data, limits, &buffer);
  absl::Status status = converter.Convert(&writer);
  if (!status.ok()) return status;
  if (!converter.at_end()) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected ", data.size() - converter.offset(),
                                                   " bytes after the msgpack object at offset ",
                                                   converter.offset()));
  }
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace dogwatch::intake
