#include "trace-agent/decode/utf8.h"

#include <cstdint>
#include <cstring>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace dogwatch::trace {
namespace {

constexpr uint64_t kHighBits = 0x8080808080808080ULL;
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

inline bool IsContinuation(uint8_t b) { return (b & 0xC0) == 0x80; }

// Length of the well-formed multi-byte sequence starting at p[0] (a byte >= 0x80), or 0 when the
// bytes there are not one. The second-byte ranges follow the Unicode standard's table 3-7, which
// is what excludes overlong forms, surrogates and code points above U+10FFFF.
inline size_t MultiByteLength(const uint8_t* p, size_t available) {
  const uint8_t b0 = p[0];
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    return (available >= 2 && IsContinuation(p[1])) ? 2 : 0;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (available < 3) return 0;
    const uint8_t lo = b0 == 0xE0 ? 0xA0 : 0x80;
    const uint8_t hi = b0 == 0xED ? 0x9F : 0xBF;
    return (p[1] >= lo && p[1] <= hi && IsContinuation(p[2])) ? 3 : 0;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (available < 4) return 0;
    const uint8_t lo = b0 == 0xF0 ? 0x90 : 0x80;
    const uint8_t hi = b0 == 0xF4 ? 0x8F : 0xBF;
    return (p[1] >= lo && p[1] <= hi && IsContinuation(p[2]) && IsContinuation(p[3])) ? 4 : 0;
  }
  return 0;  // a stray continuation byte, 0xC0/0xC1 (always overlong) or 0xF5..0xFF
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    // Skip ASCII 16 then 8 bytes at a time; tags, names and SQL are almost always pure ASCII.
#ifdef __SSE2__
    while (end - p >= 16) {
      const __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      if (_mm_movemask_epi8(chunk) != 0) break;
      p += 16;
    }
#endif
    while (end - p >= 8) {
      uint64_t word;
      std::memcpy(&word, p, sizeof(word));
      if (word & kHighBits) break;
      p += 8;
    }
    while (p < end && *p < 0x80) ++p;
    if (p == end) return true;
    const size_t length = MultiByteLength(p, static_cast<size_t>(end - p));
    if (length == 0) return false;
    p += length;
  }
  return true;
}

void AssignRepairedUtf8(std::string_view text, std::string* out) {
  out->clear();
  // Each bad byte grows to three: reserve for the usual case of a few bad bytes, not the worst.
  out->reserve(text.size() + 8);
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const auto* run = p;
    while (p < end && *p < 0x80) ++p;
    out->append(reinterpret_cast<const char*>(run), static_cast<size_t>(p - run));
    if (p == end) break;
    const size_t length = MultiByteLength(p, static_cast<size_t>(end - p));
    if (length == 0) {
      out->append(kReplacement);
      ++p;
    } else {
      out->append(reinterpret_cast<const char*>(p), length);
      p += length;
    }
  }
}

}  // namespace dogwatch::trace
