// Feeds arbitrary bytes to every decompressor with a small cap: nothing may crash, hang, or produce
// more than the cap. Also checks that compress-then-decompress is the identity.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/compression/compression.h"

namespace {
constexpr size_t kCap = 1 << 20;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using dogwatch::compression::Codec;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  for (Codec codec : {Codec::kIdentity, Codec::kGzip, Codec::kZlib, Codec::kZstd}) {
    auto out = dogwatch::compression::Decompress(codec, input, kCap);
    if (out.ok() && out->size() > kCap) std::abort();
  }
  // Round trip: whatever we compress must come back byte for byte.
  for (Codec codec : {Codec::kGzip, Codec::kZlib, Codec::kZstd}) {
    auto compressed = dogwatch::compression::Compress(codec, input, 1);
    if (!compressed.ok()) std::abort();
    auto restored = dogwatch::compression::Decompress(codec, *compressed, size);
    if (!restored.ok() || *restored != input) std::abort();
  }
  return 0;
}
