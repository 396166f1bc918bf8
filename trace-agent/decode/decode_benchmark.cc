// Decoder throughput on a realistic v0.4 payload (100 traces x 15 spans, as dd-trace-js encodes it),
// next to the ceiling: msgpack-cxx tokenizing the same bytes with a visitor that does nothing. The
// gap between the two is what building the span model (string copies, maps, UTF-8 checks) costs.
// The other formats, carrying the same spans, are here for comparison.
#include <benchmark/benchmark.h>

#include <msgpack.hpp>
#include <string>

#include "trace-agent/decode/decode.h"
#include "trace-agent/decode/testdata_payloads.h"

namespace {

using namespace dogwatch::trace;

constexpr int kTraces = 100;
constexpr int kSpansPerTrace = 15;
constexpr double kSpans = kTraces * kSpansPerTrace;

const std::vector<Trace>& Traces() {
  static const auto* traces = new std::vector<Trace>(testdata::BuildRealisticTraces(kTraces, kSpansPerTrace));
  return *traces;
}

const std::string& V04Body() {
  static const auto* body = new std::string(testdata::BuildRealisticV04Payload(kTraces, kSpansPerTrace));
  return *body;
}

void Report(benchmark::State& state, size_t bytes) {
  state.counters["spans_per_second"] =
      benchmark::Counter(kSpans * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes));
  state.SetLabel(std::to_string(bytes) + " byte payload");
}

void BM_DecodeMsgpackV04(benchmark::State& state) {
  const std::string& body = V04Body();
  for (auto _ : state) {
    auto traces = DecodeMsgpackTracesV04(body);
    if (!traces.ok()) state.SkipWithError(std::string(traces.status().message()).c_str());
    benchmark::DoNotOptimize(traces);
  }
  Report(state, body.size());
}
BENCHMARK(BM_DecodeMsgpackV04);

// Every callback accepts and does nothing: parse cost only, the floor for any msgpack decoder.
struct NoOpVisitor {
  bool visit_nil() { return true; }
  bool visit_boolean(bool) { return true; }
  bool visit_positive_integer(uint64_t) { return true; }
  bool visit_negative_integer(int64_t) { return true; }
  bool visit_float32(float) { return true; }
  bool visit_float64(double) { return true; }
  bool visit_str(const char*, uint32_t) { return true; }
  bool visit_bin(const char*, uint32_t) { return true; }
  bool visit_ext(const char*, uint32_t) { return true; }
  bool start_array(uint32_t) { return true; }
  bool start_array_item() { return true; }
  bool end_array_item() { return true; }
  bool end_array() { return true; }
  bool start_map(uint32_t) { return true; }
  bool start_map_key() { return true; }
  bool end_map_key() { return true; }
  bool start_map_value() { return true; }
  bool end_map_value() { return true; }
  bool end_map() { return true; }
  void parse_error(size_t, size_t) {}
  void insufficient_bytes(size_t, size_t) {}
  bool referenced() const { return false; }
  void set_referenced(bool) {}
};

void BM_MsgpackCxxTokenizeCeiling(benchmark::State& state) {
  const std::string& body = V04Body();
  for (auto _ : state) {
    NoOpVisitor visitor;
    size_t offset = 0;
    const bool ok = msgpack::parse(body.data(), body.size(), offset, visitor);
    if (!ok) state.SkipWithError("msgpack::parse failed");
    benchmark::DoNotOptimize(offset);
  }
  Report(state, body.size());
}
BENCHMARK(BM_MsgpackCxxTokenizeCeiling);

// For reference: msgpack-cxx building its object tree (what a generic decoder would start from).
void BM_MsgpackCxxUnpackTree(benchmark::State& state) {
  const std::string& body = V04Body();
  for (auto _ : state) {
    msgpack::object_handle handle = msgpack::unpack(body.data(), body.size());
    benchmark::DoNotOptimize(handle.get().type);
  }
  Report(state, body.size());
}
BENCHMARK(BM_MsgpackCxxUnpackTree);

void BM_DecodeMsgpackV04Compact(benchmark::State& state) {
  static const auto* body = new std::string(testdata::EncodeV04(Traces(), testdata::V04Style::kCompact));
  for (auto _ : state) {
    auto traces = DecodeMsgpackTracesV04(*body);
    benchmark::DoNotOptimize(traces);
  }
  Report(state, body->size());
}
BENCHMARK(BM_DecodeMsgpackV04Compact);

void BM_DecodeMsgpackV05(benchmark::State& state) {
  static const auto* body = new std::string(testdata::EncodeV05(Traces()));
  for (auto _ : state) {
    auto traces = DecodeMsgpackTracesV05(*body);
    benchmark::DoNotOptimize(traces);
  }
  Report(state, body->size());
}
BENCHMARK(BM_DecodeMsgpackV05);

void BM_DecodeJson(benchmark::State& state) {
  static const auto* body = new std::string(testdata::EncodeJson(Traces()));
  for (auto _ : state) {
    auto traces = DecodeJsonTraces(*body);
    benchmark::DoNotOptimize(traces);
  }
  Report(state, body->size());
}
BENCHMARK(BM_DecodeJson);

void BM_CountTracesV04(benchmark::State& state) {
  const std::string& body = V04Body();
  for (auto _ : state) {
    auto count = CountTraces(body, TraceEncoding::kMsgpackV04);
    benchmark::DoNotOptimize(count);
  }
}
BENCHMARK(BM_CountTracesV04);

}  // namespace

BENCHMARK_MAIN();
