#include "trace-agent/obfuscate/unicode.h"

#include <locale.h>
#include <wctype.h>

namespace dogwatch::trace::unicode {
namespace {

// One process-wide UTF-8 ctype locale. The *_l functions take it explicitly, so the process locale
// (which the agent never changes from "C") does not matter. nullptr when the C library has no UTF-8
// locale; the callers then fall back to treating non-ASCII code points as letters, which keeps
// non-Latin service names intact rather than replacing them with underscores.
locale_t Utf8Locale() {
  static locale_t locale = [] {
    locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
    if (l == static_cast<locale_t>(nullptr)) {
      l = newlocale(LC_CTYPE_MASK, "C.utf8", static_cast<locale_t>(nullptr));
    }
    return l;
  }();
  return locale;
}

bool IsContinuation(uint8_t b) { return (b & 0xC0) == 0x80; }

}  // namespace

Decoded DecodeRune(std::string_view text, size_t pos) {
  if (pos >= text.size()) return {kRuneError, 0, false};
  const auto* p = reinterpret_cast<const uint8_t*>(text.data()) + pos;
  const size_t left = text.size() - pos;
  const uint8_t b0 = p[0];
  if (b0 < 0x80) return {b0, 1, true};
  const Decoded invalid{kRuneError, 1, false};
  if (b0 < 0xC2) return invalid;  // continuation byte or overlong 2-byte lead
  if (b0 < 0xE0) {
    if (left < 2 || !IsContinuation(p[1])) return invalid;
    return {static_cast<char32_t>(((b0 & 0x1F) << 6) | (p[1] & 0x3F)), 2, true};
  }
  if (b0 < 0xF0) {
    if (left < 3 || !IsContinuation(p[1]) || !IsContinuation(p[2])) return invalid;
    char32_t r = ((b0 & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    if (r < 0x800 || (r >= 0xD800 && r <= 0xDFFF)) return invalid;  // overlong or surrogate
    return {r, 3, true};
  }
  if (b0 < 0xF5) {
    if (left < 4 || !IsContinuation(p[1]) || !IsContinuation(p[2]) || !IsContinuation(p[3])) return invalid;
    char32_t r = ((b0 & 0x07) << 18) | ((p[1] & 0x3F) << 12) | ((p[2] & 0x3F) << 6) | (p[3] & 0x3F);
    if (r < 0x10000 || r > kMaxRune) return invalid;
    return {r, 4, true};
  }
  return invalid;
}

size_t EncodedLength(char32_t rune) {
  if (rune < 0x80) return 1;
  if (rune < 0x800) return 2;
  if ((rune >= 0xD800 && rune <= 0xDFFF) || rune > kMaxRune) return 3;  // becomes U+FFFD
  if (rune < 0x10000) return 3;
  return 4;
}

void AppendRune(std::string& out, char32_t rune) {
  if ((rune >= 0xD800 && rune <= 0xDFFF) || rune > kMaxRune) rune = kRuneError;
  if (rune < 0x80) {
    out.push_back(static_cast<char>(rune));
  } else if (rune < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (rune >> 6)));
    out.push_back(static_cast<char>(0x80 | (rune & 0x3F)));
  } else if (rune < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (rune >> 12)));
    out.push_back(static_cast<char>(0x80 | ((rune >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (rune & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (rune >> 18)));
    out.push_back(static_cast<char>(0x80 | ((rune >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((rune >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (rune & 0x3F)));
  }
}

bool IsSpace(char32_t r) {
  switch (r) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return r >= 0x2000 && r <= 0x200A;
  }
}

bool IsLetter(char32_t r) {
  if (r < 0x80) return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z');
  if (r > kMaxRune || r == kRuneError) return false;
  locale_t l = Utf8Locale();
  if (l == static_cast<locale_t>(nullptr)) return !IsSpace(r);
  return iswalpha_l(static_cast<wint_t>(r), l) != 0;
}

bool IsUpper(char32_t r) {
  if (r < 0x80) return r >= 'A' && r <= 'Z';
  if (r > kMaxRune) return false;
  locale_t l = Utf8Locale();
  if (l == static_cast<locale_t>(nullptr)) return false;
  return iswupper_l(static_cast<wint_t>(r), l) != 0;
}

bool IsDigit(char32_t r) {
  if (r < 0x80) return r >= '0' && r <= '9';
  if (r > kMaxRune) return false;
  // glibc reserves "digit" for 0-9 (POSIX) and classifies other scripts' decimal digits as "alpha", so
  // they report false here but true from IsLetter; every caller accepts both, so the result is the same.
  locale_t l = Utf8Locale();
  if (l == static_cast<locale_t>(nullptr)) return false;
  return iswdigit_l(static_cast<wint_t>(r), l) != 0;
}

char32_t ToLower(char32_t r) {
  if (r < 0x80) return (r >= 'A' && r <= 'Z') ? r + ('a' - 'A') : r;
  if (r > kMaxRune) return r;
  locale_t l = Utf8Locale();
  if (l == static_cast<locale_t>(nullptr)) return r;
  return static_cast<char32_t>(towlower_l(static_cast<wint_t>(r), l));
}

char32_t ToUpper(char32_t r) {
  if (r < 0x80) return (r >= 'a' && r <= 'z') ? r - ('a' - 'A') : r;
  if (r > kMaxRune) return r;
  locale_t l = Utf8Locale();
  if (l == static_cast<locale_t>(nullptr)) return r;
  return static_cast<char32_t>(towupper_l(static_cast<wint_t>(r), l));
}

std::string Upper(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool ascii = true;
  for (char c : text) {
    if (static_cast<uint8_t>(c) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    for (char c : text) out.push_back((c >= 'a' && c <= 'z') ? static_cast<char>(c - ('a' - 'A')) : c);
    return out;
  }
  for (size_t i = 0; i < text.size();) {
    Decoded d = DecodeRune(text, i);
    if (!d.valid) {
      // Go's bytes.Map writes the replacement character for invalid bytes.
      AppendRune(out, kRuneError);
    } else {
      AppendRune(out, ToUpper(d.rune));
    }
    i += d.width;
  }
  return out;
}

std::string_view TrimSpace(std::string_view text) {
  size_t start = 0;
  while (start < text.size()) {
    Decoded d = DecodeRune(text, start);
    if (!d.valid || !IsSpace(d.rune)) break;
    start += d.width;
  }
  size_t end = text.size();
  while (end > start) {
    // Step back to the start of the last rune (at most 3 continuation bytes).
    size_t begin = end - 1;
    while (begin > start && end - begin < 4 && (static_cast<uint8_t>(text[begin]) & 0xC0) == 0x80) --begin;
    Decoded d = DecodeRune(text, begin);
    if (!d.valid || begin + d.width != end || !IsSpace(d.rune)) break;
    end = begin;
  }
  return text.substr(start, end - start);
}

}  // namespace dogwatch::trace::unicode
