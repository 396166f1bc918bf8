// The whole trace-agent path of one v0.4 request, in process and on one thread: the receiver's
// handler (decode, container tagging) → normalize → obfuscate → stats → sample → encode → zstd,
// with the writer's flusher and the stats ticker running as in the real agent. The request is the
// one tests/load/trace_load sends (20 traces x 15 spans, as dd-trace-js encodes them; 1 body
// repeated, or 16 differing in ids and start times sent in turn); what the
// writer would hand to the core is only counted. Everything the end-to-end benchmark
// (tests/bench/trace_agent_bench.sh) adds on top of this is HTTP and the kernel.
//
// Beside it, the same run's ceiling: msgpack-cxx tokenizing the same body with a visitor that does
// nothing, so that the ratio between the two needs no second run to mean something.
#include <benchmark/benchmark.h>

#include <atomic>
#include <msgpack.hpp>
#include <string>
#include <vector>

#include "common/config/config.h"
#include "trace-agent/agent/pipeline.h"
#include "trace-agent/decode/testdata_payloads.h"
#include "trace-agent/receiver/receiver.h"
#include "trace-agent/writer/trace_writer.h"

namespace {

using namespace dogwatch::trace;

constexpr int kTraces = 20;
constexpr int kSpansPerTrace = 15;
constexpr double kSpansPerRequest = kTraces * kSpansPerTrace;

dogwatch::http::HttpRequest LoadRequest(uint64_t variant) {
  dogwatch::http::HttpRequest request;
  request.method = "PUT";
  request.path = "/v0.4/traces";
  request.headers = {{"Content-Type", "application/msgpack"},
                     {"Datadog-Meta-Lang", "nodejs"},
                     {"Datadog-Meta-Tracer-Version", "5.132.0"},
                     {"X-Datadog-Trace-Count", std::to_string(kTraces)},
                     {"Datadog-Send-Real-Http-Status", "yes"}};
  request.body = testdata::BuildRealisticV04Payload(kTraces, kSpansPerTrace, variant);
  request.peer.transport = dogwatch::http::PeerInfo::Transport::kTcp;
  request.peer.address = "127.0.0.1:40000";
  return request;
}

void BM_TraceRequestEndToEnd(benchmark::State& state) {
  std::atomic<int64_t> submitted_bytes{0};
  TraceWriter writer(TraceWriterOptions{}, [&](OutgoingPayload payload) {
    submitted_bytes += static_cast<int64_t>(payload.body.size());
    return absl::OkStatus();
  });
  dogwatch::config::Config config;
  auto options = PipelineOptionsFromConfig(config, "bench-host");
  if (!options.ok()) return state.SkipWithError(std::string(options.status().message()).c_str());
  auto pipeline = Pipeline::Create(*options, &writer, [](std::string) { return absl::OkStatus(); });
  if (!pipeline.ok()) return state.SkipWithError(std::string(pipeline.status().message()).c_str());
  ReceiverOptions receiver_options;
  receiver_options.port.reset();  // no listener: requests go straight to the handler
  Receiver receiver(receiver_options, pipeline->get(), nullptr, nullptr);
  writer.Start();
  (*pipeline)->Start();

  // As trace_load sends them: range(0) distinct bodies in turn, the same spans with other ids and
  // start times (1: one body repeated byte for byte).
  std::vector<dogwatch::http::HttpRequest> requests;
  for (int64_t variant = 0; variant < state.range(0); ++variant) {
    requests.push_back(LoadRequest(static_cast<uint64_t>(variant)));
  }
  size_t next = 0;
  for (auto _ : state) {
    const dogwatch::http::HttpRequest& request = requests[next];
    next = next + 1 == requests.size() ? 0 : next + 1;
    dogwatch::http::HttpReply reply = receiver.Handle(request);
    if (reply.status != 200) return state.SkipWithError(("status " + std::to_string(reply.status)).c_str());
    benchmark::DoNotOptimize(reply);
  }
  (*pipeline)->Stop();
  writer.Stop();
  state.counters["spans_per_second"] = benchmark::Counter(
      kSpansPerRequest * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["compressed_bytes_per_span"] = static_cast<double>(submitted_bytes.load()) /
                                                (kSpansPerRequest * static_cast<double>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(requests.front().body.size()));
}
// Per CPU-second of the whole process (the writer's flusher and the ticker included), as the
// end-to-end benchmark counts the trace-agent's CPU.
BENCHMARK(BM_TraceRequestEndToEnd)->MeasureProcessCPUTime()->Arg(1)->Arg(16);

// Every callback accepts and does nothing: the floor for any msgpack decoder.
struct NoOpVisitor : msgpack::null_visitor {
  void parse_error(size_t, size_t) {}
  void insufficient_bytes(size_t, size_t) {}
};

void BM_TokenizeCeiling(benchmark::State& state) {
  const dogwatch::http::HttpRequest request = LoadRequest(0);
  for (auto _ : state) {
    NoOpVisitor visitor;
    std::size_t offset = 0;
    const bool ok = msgpack::parse(request.body.data(), request.body.size(), offset, visitor);
    if (!ok) return state.SkipWithError("tokenizing failed");
    benchmark::DoNotOptimize(offset);
  }
  state.counters["spans_per_second"] = benchmark::Counter(
      kSpansPerRequest * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(request.body.size()));
}
BENCHMARK(BM_TokenizeCeiling);

}  // namespace

BENCHMARK_MAIN();
