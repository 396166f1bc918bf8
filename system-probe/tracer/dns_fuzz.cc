// libFuzzer: DNS question bytes as copied from the wire by the BPF program.
#include <cstddef>
#include <cstdint>

#include "system-probe/tracer/dns.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto question = dogwatch::sysprobe::ParseDnsQuestion({data, size});
  if (question.ok() && question->name.size() > 253 * 4) __builtin_trap();  // escapes are at most 4x
  return 0;
}
