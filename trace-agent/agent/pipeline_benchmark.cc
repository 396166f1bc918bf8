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
#include <ctime>
#include <memory>
#include <msgpack.hpp>
#include <string>
#include <thread>
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

// One suite (writer, pipeline, receiver) shared by the benchmark's threads, as the HTTP server's
// threads share the trace-agent's.
struct Suite {
  std::atomic<int64_t> submitted_bytes{0};
  TraceWriter writer{TraceWriterOptions{}, [this](OutgoingPayload payload) {
                       submitted_bytes += static_cast<int64_t>(payload.body.size());
                       return absl::OkStatus();
                     }};
  std::unique_ptr<Pipeline> pipeline;
  std::unique_ptr<Receiver> receiver;
  std::vector<dogwatch::http::HttpRequest> requests;
  std::atomic<int64_t> requests_done{0};
  std::atomic<int> threads_done{0};
};

double ProcessCpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}
Suite* shared_suite = nullptr;

void BM_TraceRequestEndToEnd(benchmark::State& state) {
  // Thread 0 sets the suite up before the loop and tears it down after: the loop's start and end
  // are barriers for all of the benchmark's threads.
  if (state.thread_index() == 0) {
    auto suite = std::make_unique<Suite>();
    dogwatch::config::Config config;
    auto options = PipelineOptionsFromConfig(config, "bench-host");
    if (!options.ok()) return state.SkipWithError(std::string(options.status().message()).c_str());
    auto pipeline = Pipeline::Create(*options, &suite->writer, [](std::string) { return absl::OkStatus(); });
    if (!pipeline.ok()) return state.SkipWithError(std::string(pipeline.status().message()).c_str());
    suite->pipeline = *std::move(pipeline);
    ReceiverOptions receiver_options;
    receiver_options.port.reset();  // no listener: requests go straight to the handler
    suite->receiver = std::make_unique<Receiver>(receiver_options, suite->pipeline.get(), nullptr, nullptr);
    suite->writer.Start();
    suite->pipeline->Start();
    // As trace_load sends them: range(0) distinct bodies in turn, the same spans with other ids and
    // start times (1: one body repeated byte for byte).
    for (int64_t variant = 0; variant < state.range(0); ++variant) {
      suite->requests.push_back(LoadRequest(static_cast<uint64_t>(variant)));
    }
    shared_suite = suite.release();
  }
  size_t next = static_cast<size_t>(state.thread_index());  // threads start on different bodies
  const double cpu_start = ProcessCpuSeconds();
  for (auto _ : state) {
    const std::vector<dogwatch::http::HttpRequest>& requests = shared_suite->requests;
    const dogwatch::http::HttpRequest& request = requests[next % requests.size()];
    ++next;
    dogwatch::http::HttpReply reply = shared_suite->receiver->Handle(request);
    if (reply.status != 200) {
      state.SkipWithError(("status " + std::to_string(reply.status)).c_str());
      break;
    }
    benchmark::DoNotOptimize(reply);
  }
  const double cpu_seconds = ProcessCpuSeconds() - cpu_start;
  shared_suite->requests_done += static_cast<int64_t>(state.iterations());
  // Past the loop's closing barrier every thread's iterations are counted... except those of threads
  // still adding theirs: the figure is thread 0's, after a wait for the others.
  if (state.thread_index() == 0) {
    while (shared_suite->threads_done.load() + 1 < state.threads()) std::this_thread::yield();
    // Spans of all threads per CPU-second of the whole process (the writer's flusher and the ticker
    // included), as the end-to-end benchmark counts the trace-agent's CPU; counters are summed over
    // threads, and only thread 0 sets this one.
    state.counters["spans_per_cpu_second"] =
        kSpansPerRequest * static_cast<double>(shared_suite->requests_done.load()) / cpu_seconds;
  } else {
    ++shared_suite->threads_done;
  }
  if (state.thread_index() == 0) {
    std::unique_ptr<Suite> suite(shared_suite);
    suite->pipeline->Stop();
    suite->writer.Stop();
    state.counters["compressed_bytes_per_span"] =
        static_cast<double>(suite->submitted_bytes.load()) /
        (kSpansPerRequest * static_cast<double>(state.iterations()) * state.threads());
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.threads() *
                            static_cast<int64_t>(suite->requests.front().body.size()));
  }
}
// Per CPU-second of the whole process (the writer's flusher and the ticker included), as the
// end-to-end benchmark counts the trace-agent's CPU. Two threads: what serving two connections at
// once costs per span over serving them in turn (contention on the writer, the concentrator, the
// sampler and the SQL cache), without HTTP, the kernel or a load generator in the figure.
BENCHMARK(BM_TraceRequestEndToEnd)->MeasureProcessCPUTime()->Arg(1)->Arg(16);
BENCHMARK(BM_TraceRequestEndToEnd)->MeasureProcessCPUTime()->Arg(16)->Threads(2);

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
