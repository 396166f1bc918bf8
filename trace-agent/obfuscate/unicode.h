#pragma once
// Rune-level helpers shared by the normalizer and the obfuscators. The Datadog Agent is written in Go,
// so its observable behaviour (which bytes count as a space, a letter, an invalid sequence) follows Go's
// unicode and unicode/utf8 packages; these helpers reproduce those semantics closely enough that our
// output matches the agent's for real-world input:
//   - decoding treats every invalid or truncated sequence as one U+FFFD of width 1 (utf8.DecodeRune);
//   - IsSpace is unicode.IsSpace (exact: the list is short and fixed);
//   - IsLetter/IsUpper/ToLower/ToUpper use glibc's C.UTF-8 tables for non-ASCII code points. glibc's
//     "alpha" class is a little broader than Go's IsLetter (it includes non-Latin decimal digits), which
//     only matters for exotic identifiers.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dogwatch::trace::unicode {

inline constexpr char32_t kRuneError = 0xFFFD;
inline constexpr char32_t kMaxRune = 0x10FFFF;

struct Decoded {
  char32_t rune = kRuneError;
  size_t width = 0;  // 0 only at the end of the input
  bool valid = false;
};

// Decodes the rune starting at text[pos]. Invalid, overlong, surrogate or truncated sequences decode as
// {U+FFFD, width 1, valid=false}, like Go's utf8.DecodeRune.
Decoded DecodeRune(std::string_view text, size_t pos);

// Appends the UTF-8 encoding of `rune`; values that are not encodable (surrogates, > U+10FFFF) are written
// as U+FFFD, like Go's utf8.EncodeRune.
void AppendRune(std::string& out, char32_t rune);

// Number of bytes EncodeRune writes for `rune` (3 for the U+FFFD replacement of invalid values).
size_t EncodedLength(char32_t rune);

bool IsSpace(char32_t rune);
bool IsLetter(char32_t rune);
bool IsUpper(char32_t rune);
// Decimal digit. Non-ASCII digits are reported by IsLetter instead (glibc's classification).
bool IsDigit(char32_t rune);
char32_t ToLower(char32_t rune);
char32_t ToUpper(char32_t rune);

// strings.ToUpper: ASCII fast path, otherwise rune by rune.
std::string Upper(std::string_view text);
// bytes.TrimSpace / strings.TrimSpace: trims IsSpace runes at both ends.
std::string_view TrimSpace(std::string_view text);

}  // namespace dogwatch::trace::unicode
