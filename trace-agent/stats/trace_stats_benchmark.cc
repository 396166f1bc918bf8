// Concentrator cost per span on a realistic mix, plus the flush/encode and sampling costs.
//
// The mix: web requests (server root, top-level) of 200 endpoints with 3-10 internal spans, a database
// client span (measured, peer tags, SQL resource), a cache client span and sometimes an HTTP call to
// another service (client span + that service's server span, top-level); 3% errors, a few status codes.
// About half the spans are eligible for stats, as in real traces.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "trace-agent/decode/decode.h"
#include "trace-agent/decode/testdata_payloads.h"
#include "trace-agent/stats/concentrator.h"
#include "trace-agent/stats/sampler.h"
#include "trace-agent/stats/stats_writer.h"

namespace {

using namespace dogwatch::trace;
using namespace dogwatch::trace::stats;

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kBase = 1'700'000'000 * kSec;

Span NewSpan(uint64_t trace_id, uint64_t id, uint64_t parent, std::string service, std::string name,
             std::string resource, std::string type, int64_t start, int64_t duration) {
  Span s;
  s.trace_id = trace_id;
  s.span_id = id;
  s.parent_id = parent;
  s.service = std::move(service);
  s.name = std::move(name);
  s.resource = std::move(resource);
  s.type = std::move(type);
  s.start = start;
  s.duration = duration;
  s.meta = {{"env", "prod"},
            {"version", "1.4.2"},
            {"runtime-id", "4f1c2a8e-0d3b-4e57-9a61-1b2c3d4e5f60"},
            {"_dd.p.tid", "6650a3b200000000"},
            {"language", "javascript"}};
  s.metrics = {{"process_id", 4242}};
  return s;
}

std::vector<TraceChunk> MakeMix(size_t n) {
  std::mt19937_64 rng(7);
  std::vector<TraceChunk> chunks;
  chunks.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const uint64_t tid = rng();
    const int endpoint = static_cast<int>(rng() % 200);
    const int64_t start = kBase + static_cast<int64_t>(rng() % (5 * kSec));
    const int64_t total = 1'000'000 + static_cast<int64_t>(rng() % 200'000'000);
    const bool error = rng() % 100 < 3;
    TraceChunk c;
    c.priority = 1;
    uint64_t id = tid ^ 0x1234;
    Span root = NewSpan(tid, id, 0, "web-store", "express.request",
                        "GET /api/v1/resource" + std::to_string(endpoint) + "/:id", "web", start, total);
    root.error = error;
    Set(root.meta, "span.kind", "server");
    Set(root.meta, "http.method", endpoint % 5 ? "GET" : "POST");
    Set(root.meta, "http.route", "/api/v1/resource" + std::to_string(endpoint) + "/:id");
    Set(root.meta, "http.status_code", error ? "500" : (endpoint % 17 ? "200" : "404"));
    Set(root.metrics, kTopLevelKey, 1);
    Set(root.metrics, "_sampling_priority_v1", 1);
    c.spans.push_back(root);
    const int internal = 3 + static_cast<int>(rng() % 8);
    for (int k = 0; k < internal; ++k) {
      c.spans.push_back(NewSpan(tid, ++id, root.span_id, "web-store", "express.middleware",
                                "middleware" + std::to_string(k), "web", start + k * 1000, total / 20));
    }
    Span db = NewSpan(tid, ++id, root.span_id, "web-store-postgres", "pg.query",
                      "SELECT * FROM items WHERE id = $" + std::to_string(endpoint % 40), "sql",
                      start + 50'000, total / 3);
    Set(db.meta, "span.kind", "client");
    Set(db.meta, "db.system", "postgresql");
    Set(db.meta, "db.name", "store");
    Set(db.meta, "out.host", "10.0.3.17");
    Set(db.meta, "peer.service", "store-db");
    Set(db.meta, "_dd.base_service", "web-store");
    Set(db.metrics, kMeasuredKey, 1);
    Set(db.metrics, kTopLevelKey, 1);
    c.spans.push_back(db);
    Span cache = NewSpan(tid, ++id, root.span_id, "web-store-redis", "redis.command",
                         endpoint % 2 ? "GET" : "SET", "redis", start + 40'000, total / 50);
    Set(cache.meta, "span.kind", "client");
    Set(cache.meta, "db.system", "redis");
    Set(cache.meta, "out.host", "cache-01.internal");
    Set(cache.metrics, kTopLevelKey, 1);
    c.spans.push_back(cache);
    if (rng() % 4 == 0) {
      Span call = NewSpan(tid, ++id, root.span_id, "web-store", "http.request", "GET", "http", start + 60'000,
                          total / 4);
      Set(call.meta, "span.kind", "client");
      Set(call.meta, "peer.service", "inventory");
      Set(call.meta, "http.status_code", "200");
      c.spans.push_back(call);
      Span server = NewSpan(tid, ++id, call.span_id, "inventory", "http.request", "GET /stock/:sku", "web",
                            start + 61'000, total / 5);
      Set(server.meta, "span.kind", "server");
      Set(server.meta, "http.status_code", "200");
      Set(server.metrics, kTopLevelKey, 1);
      c.spans.push_back(server);
    }
    chunks.push_back(std::move(c));
  }
  return chunks;
}

PayloadInfo Info() {
  PayloadInfo info;
  info.env = "prod";
  info.hostname = "node-7";
  info.app_version = "1.4.2";
  info.lang = "nodejs";
  info.container_id = "3f2a9c1b7d";
  return info;
}

// Arg: how many distinct chunks cycle through. 64 keeps them in cache, like a payload the pipeline has just
// decoded and normalized; 4096 (~40 MB of spans) makes every span a cache miss (a worst case).
void BM_ConcentratorAddChunk(benchmark::State& state) {
  const auto chunks = MakeMix(static_cast<size_t>(state.range(0)));
  size_t spans_per_pass = 0;
  for (const auto& c : chunks) spans_per_pass += c.spans.size();
  ConcentratorConfig cfg;
  Concentrator conc(cfg, kBase);
  const PayloadInfo info = Info();
  size_t i = 0, spans = 0;
  for (auto _ : state) {
    const auto& c = chunks[i++ % chunks.size()];
    conc.AddChunk(info, c, &c.spans[0]);
    spans += c.spans.size();
  }
  state.counters["spans"] = static_cast<double>(spans);
  state.counters["ns/span"] = benchmark::Counter(static_cast<double>(spans),
                                                 benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["groups"] = static_cast<double>(conc.counters().live_groups);
  benchmark::DoNotOptimize(conc.counters());
}
BENCHMARK(BM_ConcentratorAddChunk)->Arg(64)->Arg(4096);

// The request the pipeline benchmark sends (testdata's realistic v0.4 payload, 20 traces x 15 spans:
// an HTTP server root, then HTTP client and SQL client spans with peer tags), decoded as the receiver
// decodes it, every string borrowed from the body: 14 of 15 spans are client spans, the case the peer
// tag matching is for. The SQL resources are as the tracer sent them (the pipeline obfuscates them
// first), so there are more groups (183) than behind the pipeline.
struct DecodedRequest {
  std::string body;
  std::vector<TraceChunk> chunks;
};

DecodedRequest DecodeClientHeavy() {
  DecodedRequest r;
  r.body = dogwatch::trace::testdata::BuildRealisticV04Payload(20, 15);
  auto traces = dogwatch::trace::DecodeMsgpackTracesV04(r.body);
  if (!traces.ok()) return r;
  for (Trace& trace : *traces) {
    TraceChunk& chunk = r.chunks.emplace_back();
    chunk.priority = 1;
    chunk.spans = std::move(trace);
  }
  return r;
}

// The concentrator's share of the pipeline benchmark's request, alone.
void BM_ConcentratorAddChunkClientHeavy(benchmark::State& state) {
  const DecodedRequest request = DecodeClientHeavy();
  if (request.chunks.empty()) return state.SkipWithError("the realistic payload did not decode");
  ConcentratorConfig cfg;
  // "Now" is the payload's own time, so that its spans land in open buckets as live traffic does.
  Concentrator conc(cfg, request.chunks.front().spans.front().start);
  const PayloadInfo info = Info();
  size_t spans = 0;
  for (auto _ : state) {
    for (const auto& c : request.chunks) {
      conc.AddChunk(info, c, &c.spans[0]);
      spans += c.spans.size();
    }
  }
  state.counters["ns/span"] = benchmark::Counter(static_cast<double>(spans),
                                                 benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["groups"] = static_cast<double>(conc.counters().live_groups);
  benchmark::DoNotOptimize(conc.counters());
}
BENCHMARK(BM_ConcentratorAddChunkClientHeavy);

void BM_ConcentratorFlushAndEncode(benchmark::State& state) {
  const auto chunks = MakeMix(4096);
  size_t bytes = 0, groups = 0;
  for (auto _ : state) {
    state.PauseTiming();
    Concentrator conc(ConcentratorConfig{}, kBase);
    for (const auto& c : chunks) conc.AddChunk(Info(), c, &c.spans[0]);
    state.ResumeTiming();
    auto payload = conc.Flush(kBase, true);
    groups = CountEntries(payload);
    auto bodies = BuildStatsRequests(std::move(payload));
    for (const auto& b : *bodies) bytes = b.size();
  }
  state.counters["groups"] = static_cast<double>(groups);
  state.counters["gzip_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_ConcentratorFlushAndEncode)->Unit(benchmark::kMillisecond);

void BM_SamplerChunk(benchmark::State& state) {
  // Half P1 (kept, counted for rate_by_service), half P0 (counted, dropped). Roots carry _dd.agent_psr as
  // current tracers set it, so the sampler leaves the chunks as they are and they can be reused untimed.
  auto pool = MakeMix(4096);
  for (size_t k = 0; k < pool.size(); ++k) {
    pool[k].priority = k % 2 ? 1 : 0;
    Set(pool[k].spans[0].metrics, "_dd.agent_psr", 1.0);
    pool[k].spans[0].error = 0;
  }
  int64_t now = kBase;
  sampler::TraceSampler s(sampler::SamplerConfig{}, [&now] { return now; });
  size_t i = 0;
  for (auto _ : state) {
    TraceChunk& c = pool[i++ % pool.size()];
    now += 1'000'000;  // 1000 chunks per second
    auto d = s.Sample(c, c.spans[0], "prod", false);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_SamplerChunk);

}  // namespace

BENCHMARK_MAIN();
