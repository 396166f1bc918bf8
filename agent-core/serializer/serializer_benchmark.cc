// Series serialization throughput (encode + split + compress) against the ceiling of compressing
// the same bytes once, so the cost of the serializer's own work is visible.

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "agent-core/serializer/serializer.h"

namespace dogwatch::serializer {
namespace {

std::vector<metrics::Series> FlushLikeSeries(size_t count) {
  std::vector<metrics::Series> series;
  series.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    metrics::Series one;
    one.name = "app.requests." + std::to_string(i % 200);
    one.tags = {"env:prod", "service:web-" + std::to_string(i % 37),
                "endpoint:/api/v" + std::to_string(i % 5), "pod:web-" + std::to_string(i)};
    one.host = "host-" + std::to_string(i % 3);
    one.type = i % 2 == 0 ? metrics::SeriesType::kGauge : metrics::SeriesType::kRate;
    one.interval = i % 2 == 0 ? 0 : 10;
    one.points = {{1700000000, static_cast<double>(i) * 0.25}};
    series.push_back(std::move(one));
  }
  return series;
}

SerializerOptions Options(int64_t codec) {
  SerializerOptions options;
  options.codec = codec == 0 ? compression::Codec::kZstd : compression::Codec::kZlib;
  return options;
}

void BM_SerializeSeries(benchmark::State& state) {
  const std::vector<metrics::Series> series = FlushLikeSeries(static_cast<size_t>(state.range(0)));
  const SerializerOptions options = Options(state.range(1));
  SerializerCounters counters;
  for (auto _ : state) {
    auto payloads = SerializeSeries(series, options, &counters);
    if (!payloads.ok()) state.SkipWithError("serialize failed");
    benchmark::DoNotOptimize(payloads);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.counters["payloads/op"] =
      static_cast<double>(counters.payloads) / static_cast<double>(state.iterations());
  state.counters["recompress/op"] =
      static_cast<double>(counters.recompressions) / static_cast<double>(state.iterations());
  state.counters["ratio"] =
      static_cast<double>(counters.bytes_compressed) / static_cast<double>(counters.bytes_uncompressed);
}
BENCHMARK(BM_SerializeSeries)->ArgsProduct({{1000, 30000}, {0, 1}})->Unit(benchmark::kMillisecond);

// The same bodies, pre-built: only the compression of each payload.
void BM_CompressOnlyCeiling(benchmark::State& state) {
  const std::vector<metrics::Series> series = FlushLikeSeries(static_cast<size_t>(state.range(0)));
  SerializerOptions options = Options(state.range(1));
  SerializerOptions identity = options;
  identity.codec = compression::Codec::kIdentity;
  auto bodies = SerializeSeries(series, identity, nullptr);
  if (!bodies.ok()) {
    state.SkipWithError("serialize failed");
    return;
  }
  for (auto _ : state) {
    for (const Payload& payload : *bodies) {
      auto compressed = compression::Compress(options.codec, payload.body,
                                              options.codec == compression::Codec::kZstd ? 1 : 6);
      benchmark::DoNotOptimize(compressed);
    }
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_CompressOnlyCeiling)->ArgsProduct({{1000, 30000}, {0, 1}})->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace dogwatch::serializer

BENCHMARK_MAIN();
