// Fuzzes ENC[handle] detection, which runs on every configuration string value.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "agent-core/secrets/secrets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view value(reinterpret_cast<const char*>(data), size);
  std::string handle;
  const bool is_handle = dogwatch::secrets::ParseEncHandle(value, &handle);
  if (dogwatch::secrets::ParseEncHandle(value, nullptr) != is_handle) abort();
  if (!is_handle) return 0;
  // A recognized handle is non-empty and is exactly what sits between "ENC[" and the final "]".
  if (handle.empty()) abort();
  if (value.find("ENC[" + handle + "]") == std::string_view::npos) abort();
  return 0;
}
