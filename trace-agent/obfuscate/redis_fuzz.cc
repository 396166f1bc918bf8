// Redis/Valkey and Memcached command obfuscation on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "trace-agent/obfuscate/internal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dogwatch::trace::obfuscate_internal;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)QuantizeRedisString(input);
  (void)ObfuscateRedisString(input);
  (void)RemoveAllRedisArgs(input);
  (void)ObfuscateMemcachedString(input, true);
  return 0;
}
