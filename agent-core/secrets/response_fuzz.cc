// Fuzzes the parser of secret backend output, the one place where the backend's bytes are trusted
// to describe secrets. Beyond "no crash", checks the contract callers rely on.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "agent-core/secrets/secrets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::string> kHandles = {"a", "b"};
  const std::string_view output(reinterpret_cast<const char*>(data), size);
  // Alternate the trailing-line-break mode on the first byte so both paths get coverage.
  const bool remove_trailing_line_break = size > 0 && (data[0] & 1) != 0;

  auto parsed = dogwatch::secrets::ParseBackendResponse(output, kHandles, remove_trailing_line_break);
  if (parsed.ok()) {
    // Success means every requested handle resolved to a non-empty value, and nothing else.
    if (parsed->size() != kHandles.size()) abort();
    for (const std::string& handle : kHandles) {
      auto it = parsed->find(handle);
      if (it == parsed->end() || it->second.empty()) abort();
      if (remove_trailing_line_break && (it->second.back() == '\n' || it->second.back() == '\r')) abort();
    }
  } else {
    const std::string_view message(parsed.status().message().data(), parsed.status().message().size());
    if (!message.starts_with("secret backend: ")) abort();
  }
  return 0;
}
