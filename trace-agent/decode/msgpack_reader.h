#pragma once
// A streaming msgpack cursor for the trace decoders: read a type byte, a length, a value, and move
// on. Nothing is materialized that the caller does not ask for. Every length read off the wire is
// checked against the bytes that remain before the caller can act on it, so a claimed count is
// always safe to reserve() (an array of N elements needs at least N bytes, a map 2N, a string L).
//
// Methods return false on failure after recording one error message, which names the decoder's
// current Location (trace/span/field/key) and the byte offset. Error paths are out of line; the hot
// paths (fixint, fixstr, fixmap) are a compare and a load.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/status.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace dogwatch::trace::msgpack {

// Where a decoder is in the payload, for error messages. Decoders update it as they go (stores of
// ints and pointers, nothing formatted) and the reader renders it only when something fails.
struct Location {
  const char* outer_name = "trace";  // "trace" or "chunk"
  int64_t outer = -1;
  int64_t span = -1;
  const char* field = nullptr;
  int64_t link = -1;
  const char* link_field = nullptr;
  bool has_key = false;  // while reading a map value: the key it belongs to (raw bytes)
  std::string_view key;
};

// A numeric msgpack value, any width; nil is a kind of its own so callers can map it to zero.
struct Number {
  enum Kind : uint8_t { kNil, kUint, kInt, kFloat };
  Kind kind = kNil;
  union {
    uint64_t u;
    int64_t i;
    double f;
  };
  Number() : u(0) {}
};

// The name of the msgpack family a type byte belongs to ("str", "uint", "map", ...).
const char* TypeName(uint8_t type_byte);

class Reader {
 public:
  // `prefix` starts every error message ("msgpack", "msgpack v0.5", ...); `location` may be null.
  Reader(std::string_view data, std::string_view prefix, const Location* location, size_t max_string_bytes,
         size_t max_depth)
      : begin_(reinterpret_cast<const uint8_t*>(data.data())),
        p_(begin_),
        end_(begin_ + data.size()),
        prefix_(prefix),
        location_(location),
        max_string_bytes_(max_string_bytes),
        max_depth_(max_depth) {}

  size_t offset() const { return static_cast<size_t>(p_ - begin_); }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  bool failed() const { return !error_.empty(); }
  // The recorded error, or OK.
  absl::Status status() const;

  // The next type byte, without consuming it; false at the end of the input.
  bool Peek(uint8_t* type_byte) const {
    if (p_ >= end_) return false;
    *type_byte = *p_;
    return true;
  }

  // Consumes a nil and returns true when the next value is nil; otherwise consumes nothing.
  bool TryNil() {
    if (p_ < end_ && *p_ == 0xc0) {
      ++p_;
      return true;
    }
    return false;
  }

  // Array and map headers. The count is checked against the remaining bytes (1 per element, 2 per
  // map entry) so that it is a safe upper bound for reserve().
  bool ReadArrayHeader(uint32_t* count) {
    if (p_ < end_ && (*p_ & 0xf0) == 0x90) {
      *count = *p_++ & 0x0f;
      return *count <= remaining() || ClaimError("array", *count, 1, 1);
    }
    return ReadArrayHeaderSlow(count);
  }
  bool ReadMapHeader(uint32_t* count) {
    if (p_ < end_ && (*p_ & 0xf0) == 0x80) {
      *count = *p_++ & 0x0f;
      return 2 * size_t{*count} <= remaining() || ClaimError("map", *count, 2, 1);
    }
    return ReadMapHeaderSlow(count);
  }

  // A str (or, with allow_bin, a bin) value as a view into the input. Nil is a type error here:
  // callers that accept nil call TryNil() first. Always inlined: it runs for every key and string
  // value, and GCC otherwise keeps it as a call once a caller's own inlining budget is spent.
  [[gnu::always_inline]] bool ReadStr(std::string_view* out, bool allow_bin) {
    // Inline for every str width: dd-trace-js writes most values as str32 even when short.
    if (p_ < end_) {
      const uint8_t b = *p_;
      size_t header = 0;
      size_t length = 0;
      if ((b & 0xe0) == 0xa0) {
        header = 1;
        length = b & 0x1f;
      } else if (b == 0xdb && remaining() >= 5) {
        header = 5;
        length = Load32(p_ + 1);
      } else if (b == 0xd9 && remaining() >= 2) {
        header = 2;
        length = p_[1];
      } else if (b == 0xda && remaining() >= 3) {
        header = 3;
        length = Load16(p_ + 1);
      }
      if (header != 0 && length <= remaining() - header && length <= max_string_bytes_) {
        *out = std::string_view(reinterpret_cast<const char*>(p_ + header), length);
        p_ += header + length;
        return true;
      }
    }
    return ReadStrSlow(out, allow_bin);
  }

  // Any int, uint, float32 or float64 value, or nil. `expected` names what the caller wanted, for
  // the type error ("integer", "number").
  bool ReadNumber(Number* out, const char* expected) {
    if (p_ < end_) {
      const uint8_t b = *p_;
      if (b < 0x80) {
        out->kind = Number::kUint;
        out->u = b;
        ++p_;
        return true;
      }
      // uint64 and uint32 inline too: dd-trace-js sends every id and start as uint64.
      if (b == 0xcf && remaining() >= 9) {
        out->kind = Number::kUint;
        out->u = Load64(p_ + 1);
        p_ += 9;
        return true;
      }
      if (b == 0xce && remaining() >= 5) {
        out->kind = Number::kUint;
        out->u = Load32(p_ + 1);
        p_ += 5;
        return true;
      }
      // Metric values: small integers (uint8/uint16) from dd-trace-js, float64 from the rest.
      if (b == 0xcd && remaining() >= 3) {
        out->kind = Number::kUint;
        out->u = Load16(p_ + 1);
        p_ += 3;
        return true;
      }
      if (b == 0xcb && remaining() >= 9) {
        const uint64_t bits = Load64(p_ + 1);
        out->kind = Number::kFloat;
        std::memcpy(&out->f, &bits, sizeof(bits));
        p_ += 9;
        return true;
      }
    }
    return ReadNumberSlow(out, expected);
  }

  // True when `s`, a view into this reader's input of at most 16 bytes, is certainly ASCII; false
  // means "check it properly". One 16-byte load (reading past the string is fine while it stays
  // inside the input) instead of a call and three loops: most keys and tag values are this short.
  bool ShortAscii(std::string_view s) const {
#ifdef __SSE2__
    // Views of nil are empty and may point nowhere: never load through them.
    const auto p = reinterpret_cast<uintptr_t>(s.data());
    if (s.size() > 16 || s.empty() || p < reinterpret_cast<uintptr_t>(begin_) ||
        p + 16 > reinterpret_cast<uintptr_t>(end_)) {
      return s.empty();
    }
    const __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data()));
    const unsigned high_bits = static_cast<unsigned>(_mm_movemask_epi8(chunk)) & ((1u << s.size()) - 1);
    return high_bits == 0;
#else
    (void)s;
    return false;
#endif
  }

  // A bool, or nil (false).
  bool ReadBool(bool* out);

  // Skips one value of any type. `depth` is the nesting level of the value itself; a container
  // deeper than max_depth fails rather than recursing on.
  bool Skip(size_t depth);

  // Failure helpers; each records the first error and returns false.
  bool Fail(std::string_view detail) {
    return FailAt(absl::StatusCode::kInvalidArgument, detail, offset(), /*show_offset=*/true);
  }
  bool FailLimit(std::string_view detail) {
    return FailAt(absl::StatusCode::kResourceExhausted, detail, offset(), /*show_offset=*/true);
  }
  // For a value already consumed: report the offset where it started.
  bool FailValueAt(std::string_view detail, size_t value_offset) {
    return FailAt(absl::StatusCode::kInvalidArgument, detail, value_offset, /*show_offset=*/true);
  }
  // "expected <what>, got <type of the next byte>".
  bool TypeError(const char* expected);

 private:
  bool ReadArrayHeaderSlow(uint32_t* count);
  bool ReadMapHeaderSlow(uint32_t* count);
  bool ReadStrSlow(std::string_view* out, bool allow_bin);
  bool ReadNumberSlow(Number* out, const char* expected);
  bool SkipBytes(size_t header, size_t length, const char* what);

  bool Truncated(size_t needed);
  // A count that cannot fit in what remains; `header_size` bytes of header were already consumed.
  bool ClaimError(const char* what, uint64_t count, size_t bytes_per_element, size_t header_size);
  bool FailAt(absl::StatusCode code, std::string_view detail, size_t at, bool show_offset);

  static uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
  static uint32_t Load32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, sizeof(v));
    return __builtin_bswap32(v);
  }
  static uint64_t Load64(const uint8_t* p) {
    uint64_t v;
    std::memcpy(&v, p, sizeof(v));
    return __builtin_bswap64(v);
  }

  const uint8_t* begin_;
  const uint8_t* p_;
  const uint8_t* end_;
  std::string_view prefix_;
  const Location* location_;
  size_t max_string_bytes_;
  size_t max_depth_;
  absl::StatusCode code_ = absl::StatusCode::kOk;
  std::string error_;
};

}  // namespace dogwatch::trace::msgpack
