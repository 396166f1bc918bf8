// Feeds arbitrary bytes to the DDSketch protobuf decoder: it must never crash, hang or allocate beyond
// what the input bounds. Whatever decodes must re-encode, decode again to the same content, and answer
// quantiles inside its [min, max].
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/sketch/ddsketch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using dogwatch::sketch::DDSketch;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto decoded = DDSketch::Decode(input);
  if (!decoded.ok()) return 0;
  if (decoded->positive_store().span() > 2048 || decoded->negative_store().span() > 2048) std::abort();
  const std::string encoded = decoded->Encode();
  auto again = DDSketch::Decode(encoded);
  if (!again.ok() || again->Encode() != encoded) std::abort();
  for (double q : {0.0, 0.5, 0.99, 1.0}) {
    auto v = decoded->Quantile(q);
    if (decoded->empty() != !v.has_value()) std::abort();
    if (v && (*v < decoded->min() || *v > decoded->max())) std::abort();
  }
  DDSketch merged;
  merged.Merge(*decoded);
  merged.Merge(*again);
  return 0;
}
