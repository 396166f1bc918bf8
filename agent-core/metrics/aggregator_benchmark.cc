// ns per Add on 10k live contexts with 5 tags, per metric type, next to ceilings measured in the
// same binary: hashing the same strings with std::hash, and hashing + a map lookup + a mutex.
#include <benchmark/benchmark.h>

#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "agent-core/metrics/aggregator.h"

namespace dogwatch::metrics {
namespace {

constexpr size_t kContexts = 10000;
constexpr size_t kTagsPerContext = 5;
constexpr size_t kAddsPerBucket = 200000;  // flush (untimed) after this many adds

struct Workload {
  std::vector<std::string> names;
  std::vector<std::string> tag_storage;  // kContexts * kTagsPerContext
  std::vector<std::vector<std::string_view>> tags;
  std::string host = "i-0123456789abcdef0";

  Workload() {
    names.reserve(kContexts);
    tag_storage.reserve(kContexts * kTagsPerContext);
    for (size_t i = 0; i < kContexts; ++i) {
      names.push_back("app.request.latency." + std::to_string(i % 100));
      tag_storage.push_back("env:production");
      tag_storage.push_back("service:checkout-" + std::to_string(i % 7));
      tag_storage.push_back("endpoint:/api/v1/items/" + std::to_string(i / 100));
      tag_storage.push_back("region:us-east-1");
      tag_storage.push_back("version:1.2." + std::to_string(i % 13));
    }
    tags.resize(kContexts);
    for (size_t i = 0; i < kContexts; ++i) {
      for (size_t t = 0; t < kTagsPerContext; ++t) tags[i].push_back(tag_storage[i * kTagsPerContext + t]);
    }
  }

  Sample SampleFor(size_t i, SampleType type) const {
    Sample s;
    s.name = names[i];
    s.type = type;
    s.value = static_cast<double>(i % 1000) + 0.5;
    s.tags = tags[i];
    s.host = host;
    return s;
  }
};

const Workload& GetWorkload() {
  static const Workload workload;
  return workload;
}

void RunAdd(benchmark::State& state, SampleType type) {
  const Workload& w = GetWorkload();
  std::vector<Sample> samples;
  samples.reserve(kContexts);
  for (size_t i = 0; i < kContexts; ++i) samples.push_back(w.SampleFor(i, type));
  Aggregator aggregator(AggregatorOptions{});
  int64_t now = 1700000000;
  for (const Sample& s : samples) aggregator.Add(s, now);  // create the contexts up front
  size_t i = 0;
  size_t adds_in_bucket = 0;
  for (auto _ : state) {
    aggregator.Add(samples[i], now);
    if (++i == kContexts) i = 0;
    if (++adds_in_bucket == kAddsPerBucket) {
      state.PauseTiming();
      now += 10;
      benchmark::DoNotOptimize(aggregator.Flush(now));
      adds_in_bucket = 0;
      state.ResumeTiming();
    }
  }
  state.counters["contexts"] = static_cast<double>(aggregator.GetCounters().contexts_live);
}

void BM_AddGauge(benchmark::State& state) { RunAdd(state, SampleType::kGauge); }
void BM_AddCount(benchmark::State& state) { RunAdd(state, SampleType::kCount); }
void BM_AddHistogram(benchmark::State& state) { RunAdd(state, SampleType::kHistogram); }
void BM_AddDistribution(benchmark::State& state) { RunAdd(state, SampleType::kDistribution); }

void BM_AddBatchGauge32(benchmark::State& state) {
  const Workload& w = GetWorkload();
  std::vector<Sample> samples;
  for (size_t i = 0; i < kContexts; ++i) samples.push_back(w.SampleFor(i, SampleType::kGauge));
  Aggregator aggregator(AggregatorOptions{});
  const int64_t now = 1700000000;
  aggregator.AddBatch(samples, now);
  size_t at = 0;
  for (auto _ : state) {
    aggregator.AddBatch(std::span<const Sample>(samples).subspan(at, 32), now);
    at += 32;
    if (at + 32 > kContexts) at = 0;
  }
  state.SetItemsProcessed(state.iterations() * 32);  // items_per_second → ns per sample
}

// Ceiling 1: hash name + 5 tags + host with std::hash (what any lookup has to read).
void BM_CeilingHashOnly(benchmark::State& state) {
  const Workload& w = GetWorkload();
  std::hash<std::string_view> hasher;
  size_t i = 0;
  for (auto _ : state) {
    size_t h = hasher(w.names[i]) ^ hasher(w.host);
    for (std::string_view tag : w.tags[i]) h ^= hasher(tag) * 0x9e3779b97f4a7c15ULL;
    benchmark::DoNotOptimize(h);
    if (++i == kContexts) i = 0;
  }
}

// Ceiling 2: the same hash, an unordered_map lookup of 10k keys, an uncontended mutex and a
// gauge store: the least an exact aggregator can do per sample without the string comparison.
void BM_CeilingHashLookupLock(benchmark::State& state) {
  const Workload& w = GetWorkload();
  std::hash<std::string_view> hasher;
  auto hash_of = [&](size_t i) {
    size_t h = hasher(w.names[i]) ^ hasher(w.host);
    for (std::string_view tag : w.tags[i]) h ^= hasher(tag) * 0x9e3779b97f4a7c15ULL;
    return h;
  };
  std::unordered_map<size_t, double> values;
  for (size_t i = 0; i < kContexts; ++i) values[hash_of(i)] = 0;
  std::mutex mu;
  size_t i = 0;
  for (auto _ : state) {
    const size_t h = hash_of(i);
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = values.find(h);
      if (it != values.end()) it->second = static_cast<double>(i);
    }
    if (++i == kContexts) i = 0;
  }
}

BENCHMARK(BM_CeilingHashOnly);
BENCHMARK(BM_CeilingHashLookupLock);
BENCHMARK(BM_AddGauge);
BENCHMARK(BM_AddCount);
BENCHMARK(BM_AddHistogram);
BENCHMARK(BM_AddDistribution);
BENCHMARK(BM_AddBatchGauge32);

}  // namespace
}  // namespace dogwatch::metrics

BENCHMARK_MAIN();
