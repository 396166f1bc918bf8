// What the local intake pays to check a trace payload on arrival: a 3.2 MB AgentPayload (the trace
// writer's flush size) of realistic spans, zstd-compressed as the trace-agent sends it. Side by
// side in one run: decompression alone (the floor every check pays), the wire check
// (ValidatePayload, what the intake runs), a full protobuf parse into an arena, and the JSON
// rendering the intake used to run on arrival (and still runs when a payload is shown).
#include <benchmark/benchmark.h>
#include <google/protobuf/arena.h>

#include <string>

#include "agent-core/intake/payload_decoder.h"
#include "common/compression/compression.h"
#include "datadog/trace/agent_payload.pb.h"

namespace {

using dogwatch::intake::PayloadKind;

struct Flush {
  std::string compressed;
  size_t raw_bytes = 0;
  int64_t spans = 0;
};

// 15-span traces of web, SQL and cache spans with ten meta tags each, until the payload holds
// 3.2 MB, as the writer flushes it.
const Flush& RealisticFlush() {
  static const Flush flush = [] {
    datadog::trace::AgentPayload payload;
    payload.set_hostname("web-1");
    payload.set_env("prod");
    payload.set_agentversion("0.1.0");
    payload.set_targettps(10);
    auto* tracer = payload.add_tracerpayloads();
    tracer->set_languagename("nodejs");
    tracer->set_tracerversion("5.0.0");
    Flush out;
    uint64_t id = 0x9e3779b97f4a7c15ull;
    while (payload.ByteSizeLong() < 3'200'000) {
      auto* chunk = tracer->add_chunks();
      chunk->set_priority(1);
      (*chunk->mutable_tags())["_dd.p.dm"] = "-1";
      const uint64_t trace_id = id *= 6364136223846793005ull;
      for (int i = 0; i < 15; ++i) {
        auto* span = chunk->add_spans();
        const bool sql = i % 3 == 1;
        span->set_service(sql ? "checkout-postgres" : "checkout");
        span->set_name(sql ? "pg.query" : i == 0 ? "express.request" : "redis.command");
        span->set_resource(sql      ? "SELECT id, total FROM carts WHERE user_id = ? AND status IN ( ? )"
                           : i == 0 ? "GET /cart/:id"
                                    : "GET");
        span->set_traceid(trace_id);
        span->set_spanid(id *= 6364136223846793005ull);
        span->set_parentid(i == 0 ? 0 : trace_id + 1);
        span->set_start(1700000000000000000 + static_cast<int64_t>(id % 1000000));
        span->set_duration(static_cast<int64_t>(id % 5000000));
        span->set_type(sql ? "sql" : i == 0 ? "web" : "redis");
        auto& meta = *span->mutable_meta();
        meta["env"] = "prod";
        meta["version"] = "1.4.2";
        meta["component"] = sql ? "pg" : i == 0 ? "express" : "redis";
        meta["span.kind"] = i == 0 ? "server" : "client";
        meta["http.method"] = "GET";
        meta["http.url"] = "https://shop.example.com/cart/1234";
        meta["http.status_code"] = "200";
        meta["db.system"] = sql ? "postgresql" : "redis";
        meta["peer.service"] = sql ? "carts-db" : "sessions";
        meta["runtime-id"] = "8c6e2b1f-3c6a-4b8e-9d1f-0a2b3c4d5e6f";
        auto& metrics = *span->mutable_metrics();
        metrics["_sampling_priority_v1"] = 1;
        metrics["_dd.measured"] = 1;
        if (i == 0) metrics["_dd.top_level"] = 1;
        ++out.spans;
      }
    }
    const std::string raw = payload.SerializeAsString();
    out.raw_bytes = raw.size();
    out.compressed = *dogwatch::compression::Compress(dogwatch::compression::Codec::kZstd, raw, 1);
    return out;
  }();
  return flush;
}

void Report(benchmark::State& state) {
  const Flush& flush = RealisticFlush();
  state.counters["spans_per_second"] =
      benchmark::Counter(static_cast<double>(flush.spans), benchmark::Counter::kIsIterationInvariantRate);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * flush.raw_bytes));
}

void BM_IntakeDecompressOnly(benchmark::State& state) {
  const Flush& flush = RealisticFlush();
  for (auto _ : state) {
    auto raw = dogwatch::compression::DecompressByContentEncoding("zstd", flush.compressed, 64 << 20);
    if (!raw.ok()) state.SkipWithError("decompression failed");
    benchmark::DoNotOptimize(raw);
  }
  Report(state);
}
BENCHMARK(BM_IntakeDecompressOnly)->Unit(benchmark::kMillisecond);

void BM_IntakeWireCheck(benchmark::State& state) {
  const Flush& flush = RealisticFlush();
  for (auto _ : state) {
    if (!dogwatch::intake::ValidatePayload(PayloadKind::kTraces, "zstd", flush.compressed).ok()) {
      state.SkipWithError("the check refused the payload");
    }
  }
  Report(state);
}
BENCHMARK(BM_IntakeWireCheck)->Unit(benchmark::kMillisecond);

void BM_IntakeArenaParse(benchmark::State& state) {
  const Flush& flush = RealisticFlush();
  for (auto _ : state) {
    auto raw = dogwatch::compression::DecompressByContentEncoding("zstd", flush.compressed, 64 << 20);
    google::protobuf::Arena arena;
    auto* message = google::protobuf::Arena::CreateMessage<datadog::trace::AgentPayload>(&arena);
    if (!raw.ok() || !message->ParseFromString(*raw)) state.SkipWithError("the parse failed");
  }
  Report(state);
}
BENCHMARK(BM_IntakeArenaParse)->Unit(benchmark::kMillisecond);

void BM_IntakeRenderJson(benchmark::State& state) {
  const Flush& flush = RealisticFlush();
  for (auto _ : state) {
    auto json = dogwatch::intake::DecodePayloadToJson(PayloadKind::kTraces, "zstd", flush.compressed);
    if (!json.ok()) state.SkipWithError("the rendering failed");
    benchmark::DoNotOptimize(json);
  }
  Report(state);
}
BENCHMARK(BM_IntakeRenderJson)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
