// Parser throughput on ~8 KB datagrams (the Agent's default `dogstatsd_buffer_size`) built from
// hot-shots style lines, next to the ceiling in the same binary: splitting the same bytes into lines
// with memchr and UTF-8-checking each line, which any parser must at least do. The gap between the
// two is the cost of the grammar itself (field splitting, number parsing, the handler call).
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "agent-core/dogstatsd/parser/parser.h"

namespace {

using namespace dogwatch::dogstatsd;

constexpr size_t kDatagramBytes = 8192;

// Lines shaped like hot-shots 17.1 in Datadog mode (`|c:in-<inode>` on every line), with the tag
// counts and value shapes of a typical web service.
const std::vector<std::string>& MetricLines() {
  static const auto* lines = new std::vector<std::string>{
      "web.request.duration:13.25|h|@0.5|#env:prod,service:checkout,route:/api/cart,method:get|c:in-5859",
      "web.request.count:1|c|#env:prod,service:checkout,route:/api/cart,status:200|c:in-5859",
      "web.queue.depth:42|g|#env:prod,service:checkout,queue:high|c:in-5859",
      "web.db.latency:7.5|d|#env:prod,service:checkout,db:pg,statement:select|c:in-5859",
      "web.users.unique:user-1234567|s|#env:prod,service:checkout|c:in-5859",
      "web.render.timing:250|ms|#env:prod,service:checkout,template:cart|c:in-5859",
      "web.inflight:-2|c|#env:prod,service:checkout|c:in-5859",
      "web.cache.hit_ratio:0.8734|g|#env:prod,service:checkout,cache:redis|c:in-5859",
      "web.payload.bytes:18234|h|#env:prod,service:checkout,route:/api/cart|c:in-5859",
      "datadog.dogstatsd.client.metrics:13|c|#client:nodejs,client_version:17.1.1,client_transport:udp",
  };
  return *lines;
}

constexpr std::string_view kEventLine =
    R"(_e{18,24}:probe.Deploy probe|line1\nline2 with | pipe|d:1700000000|h:h1|k:agg1|p:low|s:probe|t:warning|#env:test,service:probe,ev:1|c:in-5859)";
constexpr std::string_view kServiceCheckLine =
    "_sc|probe.probe.can_connect|1|d:1700000001|h:h1|#env:test,service:probe,chk:1|c:in-5859|m:slow m:ish";

struct Datagram {
  std::string bytes;
  size_t lines = 0;
};

// Joins lines with '\n' (no trailing newline, as hot-shots buffers them) up to kDatagramBytes. With
// `mixed`, one line in 40 is an event or a service check.
Datagram BuildDatagram(bool mixed) {
  Datagram datagram;
  const auto& metric_lines = MetricLines();
  for (size_t i = 0;; ++i) {
    std::string_view line = metric_lines[i % metric_lines.size()];
    if (mixed && i % 40 == 19) line = kEventLine;
    if (mixed && i % 40 == 39) line = kServiceCheckLine;
    const size_t needed = line.size() + (datagram.bytes.empty() ? 0 : 1);
    if (datagram.bytes.size() + needed > kDatagramBytes) break;
    if (!datagram.bytes.empty()) datagram.bytes += '\n';
    datagram.bytes += line;
    ++datagram.lines;
  }
  return datagram;
}

const Datagram& MetricsDatagram() {
  static const auto* datagram = new Datagram(BuildDatagram(false));
  return *datagram;
}

const Datagram& MixedDatagram() {
  static const auto* datagram = new Datagram(BuildDatagram(true));
  return *datagram;
}

// What a server does at minimum with each callback: read the fields.
class SummingHandler : public ParseHandler {
 public:
  void OnMetric(const ParsedMetric& m) override {
    sum_ += m.value * m.sample_rate;
    bytes_ += m.name.size() + m.raw_tags.size() + m.set_value.size();
  }
  void OnEvent(ParsedEvent&& e) override { bytes_ += e.event.text.size(); }
  void OnServiceCheck(ParsedServiceCheck&& c) override { bytes_ += c.check.message.size(); }
  void OnError(ParseError, std::string_view) override { ++errors_; }

  double sum_ = 0;
  size_t bytes_ = 0;
  size_t errors_ = 0;
};

// The server's next step: splitting tags and extracting `host:`.
class TagSplittingHandler : public SummingHandler {
 public:
  void OnMetric(const ParsedMetric& m) override {
    SummingHandler::OnMetric(m);
    tags_.clear();
    HostTag host;
    SplitTags(m.raw_tags, &tags_, &host);
    bytes_ += tags_.size();
  }

 private:
  std::vector<std::string_view> tags_;
};

void Report(benchmark::State& state, const Datagram& datagram) {
  state.counters["lines_per_second"] =
      benchmark::Counter(static_cast<double>(datagram.lines) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(datagram.bytes.size()));
  state.SetLabel(std::to_string(datagram.lines) + " lines, " + std::to_string(datagram.bytes.size()) +
                 " bytes");
}

template <typename Handler>
void RunParse(benchmark::State& state, const Datagram& datagram) {
  Handler handler;
  for (auto _ : state) {
    ParseDatagram(datagram.bytes, handler);
    benchmark::DoNotOptimize(handler.sum_);
    benchmark::DoNotOptimize(handler.bytes_);
  }
  if (handler.errors_ != 0) state.SkipWithError("unexpected parse errors");
  Report(state, datagram);
}

void BM_ParseMetricLines(benchmark::State& state) { RunParse<SummingHandler>(state, MetricsDatagram()); }
BENCHMARK(BM_ParseMetricLines);

void BM_ParseMixedLines(benchmark::State& state) { RunParse<SummingHandler>(state, MixedDatagram()); }
BENCHMARK(BM_ParseMixedLines);

void BM_ParseMetricLinesAndSplitTags(benchmark::State& state) {
  RunParse<TagSplittingHandler>(state, MetricsDatagram());
}
BENCHMARK(BM_ParseMetricLinesAndSplitTags);

// The ceiling: line splitting and the UTF-8 check, nothing else.
void BM_CeilingSplitAndValidate(benchmark::State& state) {
  const Datagram& datagram = MetricsDatagram();
  for (auto _ : state) {
    const char* p = datagram.bytes.data();
    const char* end = p + datagram.bytes.size();
    size_t valid = 0;
    while (p < end) {
      const char* newline = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      const char* line_end = newline != nullptr ? newline : end;
      valid += IsValidUtf8(std::string_view(p, static_cast<size_t>(line_end - p))) ? 1 : 0;
      if (newline == nullptr) break;
      p = newline + 1;
    }
    benchmark::DoNotOptimize(valid);
  }
  Report(state, datagram);
}
BENCHMARK(BM_CeilingSplitAndValidate);

// The floor of the floor: line splitting alone.
void BM_CeilingSplitOnly(benchmark::State& state) {
  const Datagram& datagram = MetricsDatagram();
  for (auto _ : state) {
    const char* p = datagram.bytes.data();
    const char* end = p + datagram.bytes.size();
    size_t lines = 0;
    while (p < end) {
      const char* newline = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      ++lines;
      if (newline == nullptr) break;
      p = newline + 1;
    }
    benchmark::DoNotOptimize(lines);
  }
  Report(state, datagram);
}
BENCHMARK(BM_CeilingSplitOnly);

}  // namespace

BENCHMARK_MAIN();
