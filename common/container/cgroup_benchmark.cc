// CPU cost of container collection against the real cgroup filesystem: a whole Collect() (walk of
// every hierarchy + stats of every container) and the stats of one container. Start a container
// first (tests/support/podman.sh, then `podman run -d ... localhost/dogwatch-test-busybox:1 ...`),
// otherwise the per-container benchmark reports an error.

#include <benchmark/benchmark.h>

#include "common/container/cgroup.h"

namespace {

using dogwatch::container::CgroupCollector;

void BM_CollectAllContainers(benchmark::State& state) {
  CgroupCollector collector(CgroupCollector::Options{});
  size_t containers = 0;
  for (auto _ : state) {
    auto collection = collector.Collect();
    if (!collection.ok()) {
      state.SkipWithError(std::string(collection.status().message()).c_str());
      return;
    }
    containers = collection->containers.size();
    benchmark::DoNotOptimize(collection->containers.data());
  }
  state.counters["containers"] = benchmark::Counter(static_cast<double>(containers));
}
BENCHMARK(BM_CollectAllContainers)->Unit(benchmark::kMicrosecond);

void BM_StatsOfOneContainer(benchmark::State& state) {
  CgroupCollector collector(CgroupCollector::Options{});
  auto collection = collector.Collect();
  if (!collection.ok() || collection->containers.empty()) {
    state.SkipWithError("no container on this host");
    return;
  }
  const std::string id = collection->containers.front().stats.container_id;
  for (auto _ : state) {
    auto stats = collector.StatsFor(id);
    benchmark::DoNotOptimize(stats);
  }
}
BENCHMARK(BM_StatsOfOneContainer)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
