// Feeds arbitrary bytes to the /v0.6/stats decoder, then pushes whatever decodes through the client stats
// path (preparation, aggregation, splitting, encoding). Nothing may crash, hang or allocate past what the
// input bounds; what decodes must re-encode to something that decodes to the same entries.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/sketch/ddsketch.h"
#include "trace-agent/stats/client_stats.h"
#include "trace-agent/stats/stats_payload.h"
#include "trace-agent/stats/stats_writer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace st = dogwatch::trace::stats;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  st::DecodeLimits limits;
  limits.max_groups = 20000;
  auto decoded = st::DecodeClientStatsPayload(input, limits);
  if (!decoded.ok()) return 0;

  std::string encoded;
  st::EncodeClientStatsPayload(*decoded, &encoded);
  auto again = st::DecodeClientStatsPayload(encoded, limits);
  if (!again.ok() || st::CountEntries(*again) != st::CountEntries(*decoded)) std::abort();

  for (const auto& b : decoded->stats) {
    for (const auto& g : b.stats) {
      // Sketch bytes come from tracers too: decoding them must be safe whatever they hold.
      (void)dogwatch::sketch::DDSketch::Decode(g.ok_summary);
    }
  }

  const int64_t now = 1'700'000'000'000'000'000;
  st::ClientStatsContext ctx;
  ctx.container_id = "cid";
  st::PrepareClientStats(&*decoded, ctx);
  st::ClientStatsAggregator agg({}, now);
  auto out = agg.Add(now, *decoded);
  auto second = agg.Add(now, std::move(*again));
  auto flushed = agg.FlushAll();
  for (auto* batch : {&out, &second, &flushed}) {
    for (auto& p : *batch) {
      auto bodies = st::BuildStatsRequests(std::move(p), 50);
      if (!bodies.ok()) std::abort();
    }
  }
  return 0;
}
