// The trace writer's per-span costs on the realistic payload (20 traces x 15 spans per tracer
// payload, as trace_load sends): AgentPayload encoding, then compressing a full 3.2 MB flush with
// each codec the intake accepts (zlib's gzip as before, libdeflate's gzip, zstd), all at level 1
// (BestSpeed, what the Datadog trace writer uses). spans_per_second is per core.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "common/compression/compression.h"
#include "trace-agent/decode/testdata_payloads.h"
#include "trace-agent/writer/payload_encoder.h"
#include "trace-agent/writer/proto_writer.h"
#include "trace-agent/writer/zstd_stream.h"

namespace {

using namespace dogwatch::trace;

constexpr int kTraces = 20;
constexpr int kSpansPerTrace = 15;
constexpr size_t kFlushBytes = 3'200'000;

const TracerPayload& Payload() {
  static const auto* payload = [] {
    auto* p = new TracerPayload;
    p->language_name = "nodejs";
    p->tracer_version = "5.132.0";
    p->env = "prod";
    for (Trace& trace : testdata::BuildRealisticTraces(kTraces, kSpansPerTrace)) {
      TraceChunk chunk;
      chunk.priority = 1;
      chunk.spans = std::move(trace);
      p->chunks.push_back(std::move(chunk));
    }
    return p;
  }();
  return *payload;
}

// A full flush: distinct traces (ids, timestamps, queries vary) split into tracer payloads of
// kTraces, as many as fit in kFlushBytes, and how many spans that is. Repeating one tracer payload
// instead would let zstd's large window match whole payloads and flatter it.
const std::pair<std::string, int64_t>& Flush() {
  static const auto* flush = [] {
    auto* out = new std::pair<std::string, int64_t>;
    std::vector<Trace> traces = testdata::BuildRealisticTraces(kTraces * 40, kSpansPerTrace);
    PayloadEncoder encoder;
    TracerPayload payload;
    payload.language_name = "nodejs";
    payload.env = "prod";
    for (size_t i = 0; i < traces.size() && out->first.size() < kFlushBytes; ++i) {
      TraceChunk chunk;
      chunk.priority = 1;
      chunk.spans = std::move(traces[i]);
      payload.chunks.push_back(std::move(chunk));
      if (payload.chunks.size() == kTraces) {
        encoder.AppendTracerPayload(payload, &out->first);
        out->second += kTraces * kSpansPerTrace;
        payload.chunks.clear();
      }
    }
    return out;
  }();
  return *flush;
}

// The tracer payloads of one full flush, distinct (ids, timestamps and queries vary).
const std::vector<TracerPayload>& FlushPayloads() {
  static const auto* payloads = [] {
    auto* out = new std::vector<TracerPayload>;
    std::vector<Trace> traces = testdata::BuildRealisticTraces(kTraces * 40, kSpansPerTrace);
    PayloadEncoder encoder;
    size_t bytes = 0;
    TracerPayload payload;
    payload.language_name = "nodejs";
    payload.env = "prod";
    for (size_t i = 0; i < traces.size() && bytes < kFlushBytes; ++i) {
      TraceChunk chunk;
      chunk.priority = 1;
      chunk.spans = std::move(traces[i]);
      payload.chunks.push_back(std::move(chunk));
      if (payload.chunks.size() == kTraces) {
        bytes += encoder.Measure(payload);
        out->push_back(std::move(payload));
        payload = TracerPayload();
        payload.language_name = "nodejs";
        payload.env = "prod";
      }
    }
    return out;
  }();
  return *payloads;
}

// The whole writer path for one flush, two ways: every payload encoded into one flush-sized buffer,
// then compressed in one shot (below); or compressed as it is encoded, by the zstd stream
// (BM_FlushEncodeInPlaceStreamCompress). Spans per second per core.
void BM_FlushEncodeIntoBufferThenCompress(benchmark::State& state) {
  const auto& payloads = FlushPayloads();
  PayloadEncoder encoder;
  std::string out;
  int64_t spans = 0;
  for (auto _ : state) {
    // A fresh buffer per flush, as the writer allocates one (its pages are new each time).
    std::unique_ptr<char[]> buffer(new char[kFlushBytes + (1 << 20)]);
    size_t size = 0;
    for (const TracerPayload& payload : payloads) {
      const size_t n = encoder.Measure(payload);
      encoder.EncodeMeasured(payload, buffer.get() + size);
      size += n;
      spans += kTraces * kSpansPerTrace;
    }
    if (!dogwatch::compression::CompressWholeBuffer(dogwatch::compression::Codec::kZstd,
                                                    std::string_view(buffer.get(), size), 1, &out)
             .ok()) {
      state.SkipWithError("compression failed");
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["spans_per_second"] =
      benchmark::Counter(static_cast<double>(spans), benchmark::Counter::kIsRate);
  state.counters["compressed_bytes"] = static_cast<double>(out.size());
}
BENCHMARK(BM_FlushEncodeIntoBufferThenCompress)->Unit(benchmark::kMillisecond);

// What the writer does: each payload of a flush measured, then encoded into the frame's one input
// buffer, which the zstd stream reads where it lies.
void BM_FlushEncodeInPlaceStreamCompress(benchmark::State& state) {
  const auto& payloads = FlushPayloads();
  PayloadEncoder encoder;
  ZstdStream stream;
  std::unique_ptr<char[]> input(new char[kFlushBytes * 2 + kProtoSinkSlack]);
  int64_t spans = 0;
  size_t compressed = 0;
  for (auto _ : state) {
    GrowableBytes out;
    out.Reserve(kFlushBytes / 8);
    bool ok = stream.Begin(1, input.get()).ok();
    size_t filled = 0;
    for (const TracerPayload& payload : payloads) {
      const size_t size = encoder.Measure(payload);
      encoder.EncodeMeasured(payload, input.get() + filled);
      filled += size;
      ok = ok && stream.Append(filled, false, &out).ok();
      spans += kTraces * kSpansPerTrace;
    }
    ok = ok && stream.Append(filled, true, &out).ok();
    if (!ok) state.SkipWithError("compression failed");
    compressed = out.size;
    benchmark::DoNotOptimize(out.data.get());
  }
  state.counters["spans_per_second"] =
      benchmark::Counter(static_cast<double>(spans), benchmark::Counter::kIsRate);
  state.counters["compressed_bytes"] = static_cast<double>(compressed);
}
BENCHMARK(BM_FlushEncodeInPlaceStreamCompress)->Unit(benchmark::kMillisecond);

void BM_EncodeTracerPayload(benchmark::State& state) {
  PayloadEncoder encoder;
  size_t bytes = 0;
  for (auto _ : state) {
    std::string_view encoded = encoder.EncodeTracerPayload(Payload());
    bytes = encoded.size();
    benchmark::DoNotOptimize(encoded.data());
  }
  state.counters["spans_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * kTraces * kSpansPerTrace, benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_EncodeTracerPayload);

void Compress(benchmark::State& state, int codec_index) {
  const auto& [flush, spans] = Flush();
  std::string out;
  for (auto _ : state) {
    bool ok = true;
    switch (codec_index) {
      case 0: {
        auto compressed = dogwatch::compression::GzipCompress(flush, 1);
        ok = compressed.ok();
        if (ok) out = *std::move(compressed);
        break;
      }
      case 1:
        ok = dogwatch::compression::CompressWholeBuffer(dogwatch::compression::Codec::kGzip, flush, 1, &out)
                 .ok();
        break;
      default:
        ok = dogwatch::compression::CompressWholeBuffer(dogwatch::compression::Codec::kZstd, flush, 1, &out)
                 .ok();
        break;
    }
    if (!ok) state.SkipWithError("compression failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["spans_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * static_cast<double>(spans), benchmark::Counter::kIsRate);
  state.counters["ratio"] = static_cast<double>(flush.size()) / static_cast<double>(out.size());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * flush.size()));
}
void BM_CompressFlush_ZlibGzip1(benchmark::State& state) { Compress(state, 0); }
void BM_CompressFlush_LibdeflateGzip1(benchmark::State& state) { Compress(state, 1); }
void BM_CompressFlush_Zstd1(benchmark::State& state) { Compress(state, 2); }
BENCHMARK(BM_CompressFlush_ZlibGzip1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CompressFlush_LibdeflateGzip1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CompressFlush_Zstd1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
