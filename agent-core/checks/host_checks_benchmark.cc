// CPU cost of one run of every host check against the real /proc and /sys.

#include <benchmark/benchmark.h>

#include "agent-core/checks/host_checks.h"

namespace {

class CountingSink final : public dogwatch::checks::SampleSink {
 public:
  void Add(const dogwatch::metrics::Sample& sample) override {
    ++samples;
    benchmark::DoNotOptimize(sample.value);
  }
  size_t samples = 0;
};

void BM_AllHostChecksOneRun(benchmark::State& state) {
  dogwatch::checks::HostCheckOptions options;
  options.hostname = "bench-host";
  auto checks = dogwatch::checks::MakeHostChecks(options);
  CountingSink sink;
  int64_t now = 1800000000;
  for (auto _ : state) {
    for (auto& check : checks) benchmark::DoNotOptimize(check->Run(now, sink));
    now += 15;
  }
  state.counters["samples_per_run"] =
      benchmark::Counter(static_cast<double>(sink.samples) / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_AllHostChecksOneRun)->Unit(benchmark::kMicrosecond);

void BM_OneCheck(benchmark::State& state) {
  dogwatch::checks::HostCheckOptions options;
  auto checks = dogwatch::checks::MakeHostChecks(options);
  auto& check = *checks[static_cast<size_t>(state.range(0))];
  state.SetLabel(std::string(check.name()));
  CountingSink sink;
  int64_t now = 1800000000;
  for (auto _ : state) {
    benchmark::DoNotOptimize(check.Run(now, sink));
    now += 15;
  }
}
BENCHMARK(BM_OneCheck)->DenseRange(0, 7)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
