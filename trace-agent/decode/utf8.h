#pragma once
// UTF-8 validation and repair for strings taken off the wire. The Datadog agent replaces invalid
// sequences with U+FFFD during normalization; the decoders do it once, while the bytes are hot in
// cache, so no later stage has to look at encodings again.

#include <cstddef>
#include <string>
#include <string_view>

namespace dogwatch::trace {

// True when `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF). Pure ASCII, by far the common case, is checked eight bytes at a time.
bool IsValidUtf8(std::string_view text);

// Replaces `out` with `text`, each byte that does not start a well-formed sequence replaced by
// U+FFFD. One replacement per offending byte, like Go's utf8.DecodeRune loop the agent uses, so the
// result matches the agent's byte for byte.
void AssignRepairedUtf8(std::string_view text, std::string* out);

// The common case in one call: a plain copy when valid, a repair otherwise.
inline void AssignUtf8(std::string_view text, std::string* out) {
  if (IsValidUtf8(text)) [[likely]] {
    out->assign(text.data(), text.size());
  } else {
    AssignRepairedUtf8(text, out);
  }
}

}  // namespace dogwatch::trace
