// CPU cost of a process collection over the live /proc (run bench_vs_ps.sh for the comparison with
// ps over 1000 extra idle processes). cpu_time is process CPU time, kernel time included, which is
// where nearly all of the cost is.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <string>
#include <vector>

#include "process-agent/procfs/proc_parsers.h"
#include "process-agent/procfs/procfs.h"
#include "process-agent/procfs/scrub.h"

namespace dogwatch::process {
namespace {

void ReportPerThousand(benchmark::State& state, int64_t processes) {
  state.counters["processes"] = static_cast<double>(processes);
  // CPU microseconds per 1000 processes, per collection (cpu_time is per iteration).
  state.counters["procs_per_iter"] = benchmark::Counter(static_cast<double>(processes));
}

void RunSteadyState(benchmark::State& state, ProcessCollector::Options options) {
  ProcessCollector collector(options);
  absl::StatusOr<Snapshot> warmup = collector.Collect();  // first Collect reads everything
  if (!warmup.ok()) {
    state.SkipWithError("collect failed");
    return;
  }
  int64_t processes = 0;
  int64_t idle = 0;
  for (auto _ : state) {
    absl::StatusOr<Snapshot> snapshot = collector.Collect();
    benchmark::DoNotOptimize(snapshot);
    processes = snapshot->counters.processes_reported;
    idle = snapshot->counters.idle_reuses;
  }
  ReportPerThousand(state, processes);
  state.counters["idle_reuses"] = static_cast<double>(idle);
}

// The default configuration: held descriptors + idle shortcut.
void BM_CollectSteadyState(benchmark::State& state) { RunSteadyState(state, ProcessCollector::Options{}); }
BENCHMARK(BM_CollectSteadyState)->MeasureProcessCPUTime()->UseRealTime()->Unit(benchmark::kMillisecond);

// The floor: no periodic refresh, so idle processes are only checked through schedstat.
void BM_CollectSteadyStateNoPeriodicRefresh(benchmark::State& state) {
  ProcessCollector::Options options;
  options.full_refresh_every = 0;
  options.static_refresh_every = 0;
  RunSteadyState(state, options);
}
BENCHMARK(BM_CollectSteadyStateNoPeriodicRefresh)
    ->MeasureProcessCPUTime()
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Every process fully read each cycle (stat, status, io, fd count), descriptors held.
void BM_CollectSteadyStateNoShortcut(benchmark::State& state) {
  ProcessCollector::Options options;
  options.idle_shortcut = false;
  RunSteadyState(state, options);
}
BENCHMARK(BM_CollectSteadyStateNoShortcut)
    ->MeasureProcessCPUTime()
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The naive approach: open/read/close every file every cycle.
void BM_CollectSteadyStateNoHeldFds(benchmark::State& state) {
  ProcessCollector::Options options;
  options.idle_shortcut = false;
  options.max_held_fds = 0;
  RunSteadyState(state, options);
}
BENCHMARK(BM_CollectSteadyStateNoHeldFds)
    ->MeasureProcessCPUTime()
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// A cold collection: everything read, command lines scrubbed, user names resolved.
void BM_CollectCold(benchmark::State& state) {
  CommandLineScrubber scrubber(CommandLineScrubber::Options{});
  int64_t processes = 0;
  for (auto _ : state) {
    ProcessCollector::Options options;
    options.scrubber = &scrubber;
    ProcessCollector collector(options);
    absl::StatusOr<Snapshot> snapshot = collector.Collect();
    benchmark::DoNotOptimize(snapshot);
    processes = snapshot.ok() ? snapshot->counters.processes_reported : 0;
  }
  ReportPerThousand(state, processes);
}
BENCHMARK(BM_CollectCold)->MeasureProcessCPUTime()->UseRealTime()->Unit(benchmark::kMillisecond);

const char kStatLine[] =
    "12375 (cat) R 12373 12373 952 0 -1 4194304 101 0 0 0 0 0 0 0 20 0 1 0 1419373 3133440 382 "
    "18446744073709551615 94763886411776 94763886431657 140729621705216 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 "
    "94763886447664 94763886449280 94764526653440 140729621711496 140729621711516 140729621711516 "
    "140729621712875 0\n";

void BM_ParseStat(benchmark::State& state) {
  StatFields stat;
  for (auto _ : state) {
    benchmark::DoNotOptimize(ParseStat(kStatLine, &stat));
  }
}
BENCHMARK(BM_ParseStat);

void BM_Scrub(benchmark::State& state) {
  CommandLineScrubber scrubber(CommandLineScrubber::Options{});
  std::vector<std::string> args = {
      "/usr/bin/java",         "-Xmx2g",   "-jar", "/opt/app/server.jar", "--port=8080",
      "--db-password=hunter2", "--verbose"};
  for (auto _ : state) {
    benchmark::DoNotOptimize(scrubber.Scrub(args));
  }
}
BENCHMARK(BM_Scrub);

void BM_ScrubNoMatch(benchmark::State& state) {
  CommandLineScrubber scrubber(CommandLineScrubber::Options{});
  std::vector<std::string> args = {"/usr/sbin/nginx", "-g", "daemon off;", "-c", "/etc/nginx/nginx.conf"};
  for (auto _ : state) {
    benchmark::DoNotOptimize(scrubber.Scrub(args));
  }
}
BENCHMARK(BM_ScrubNoMatch);

}  // namespace
}  // namespace dogwatch::process

int main(int argc, char** argv) {
  // What the agent's main is expected to do too: the held-descriptor budget is capped at half the
  // soft RLIMIT_NOFILE.
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
