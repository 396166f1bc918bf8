#pragma once
// The DogStatsD time sampler: aggregates `Sample`s per context into 10 s buckets and turns the
// closed buckets into `Series` (gauges, rates, histogram aggregates) and `SketchSeries`
// (distributions), as the Datadog agent's `pkg/aggregator` TimeSampler does.
//
// Context = name + sorted unique tags + host. Each context's strings are copied once, on creation,
// into a ref-counted string pool shared by all contexts (a tag like `env:prod` is stored once).
// Lookups hash the borrowed views (no allocation) and confirm a 64-bit hash match by comparing the
// strings, so colliding contexts stay apart.
//
// Datadog's behaviour kept (pkg/aggregator/time_sampler.go, context_resolver.go, pkg/metrics/*):
//  - bucket start = now - now % bucket_seconds; Flush(T) emits the buckets with start + 10 <= T - T % 10;
//  - gauge: last value; count: sum(value / rate), sent as a rate (value / 10, interval 10); set:
//    number of distinct values, as a gauge; h/ms: the configured aggregates and percentiles, with
//    weight trunc(1 / rate), `.count` a rate; d: one agent sketch per bucket, weight trunc(1 / rate);
//  - every aggregated series carries interval = bucket_seconds (Datadog sets it on all of them);
//  - a counter context sends 0 for each bucket without samples while last_seen + counter_expiry >
//    bucket start; contexts are dropped once last_seen + context_expiry < now
//    (+ counter_expiry for counters);
//  - NaN / ±Inf values are rejected (Datadog's ContextMetrics.AddSample refuses them);
//  - samples with a timestamp skip aggregation (the no-aggregation pipeline): gauges go out as
//    gauges, counts as rates (value / 10, interval 10, sample rate ignored); other types are refused.
// Deviations (all counted):
//  - a context's type is fixed by its first sample; a sample of another type on the same context is
//    shed (`type_mismatch`) where Datadog feeds it to the existing metric object;
//  - counters are zero-filled for every closed bucket (Datadog only fills buckets that exist in
//    the flush, leaving gaps when nothing else was sampled), at most counter_expiry / bucket
//    buckets back;
//  - histograms keep at most `max_histogram_samples_per_context` raw samples per bucket; beyond
//    that, samples go into the agent's quantile sketch: count/sum/min/max/avg stay exact, median
//    and percentiles then carry the sketch's ~1% relative error (`histogram_samples_sketched`);
//  - a set keeps at most `max_set_values_per_context` distinct values per bucket (`set_values`);
//  - the number of live contexts and of pending timestamped samples are bounded.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "agent-core/metrics/types.h"

namespace dogwatch::metrics {

struct AggregatorOptions {
  int64_t bucket_seconds = 10;
  int64_t context_expiry_seconds = 20;   // dogstatsd_context_expiry_seconds
  int64_t counter_expiry_seconds = 300;  // dogstatsd_expiry_seconds
  std::vector<std::string> histogram_aggregates = {"max", "median", "avg", "count"};
  std::vector<double> histogram_percentiles = {0.95};  // each in [0, 1]; 0.95 → ".95percentile"
  size_t max_contexts = 200000;
  size_t max_timestamped_samples = 100000;
  size_t max_histogram_samples_per_context = 1024;  // per bucket; beyond: sketch (see above)
  size_t max_set_values_per_context = 4096;         // per bucket
};

class Aggregator {
 public:
  explicit Aggregator(AggregatorOptions options);
  ~Aggregator();
  Aggregator(const Aggregator&) = delete;
  Aggregator& operator=(const Aggregator&) = delete;

  // Thread-safe. `now_unix` is the receive time in unix seconds.
  void Add(const Sample& sample, int64_t now_unix);
  // One lock for the whole batch.
  void AddBatch(std::span<const Sample> samples, int64_t now_unix);

  struct Flushed {
    std::vector<Series> series;
    std::vector<SketchSeries> sketches;
  };
  // Emits every bucket that closed at or before `now_unix` and the pending timestamped samples,
  // then expires idle contexts.
  Flushed Flush(int64_t now_unix);

  struct Counters {
    uint64_t samples_in = 0;          // every sample given to Add/AddBatch
    uint64_t samples_aggregated = 0;  // landed in a bucket
    uint64_t timestamped_in = 0;      // queued for pass-through
    uint64_t contexts_live = 0;
    uint64_t contexts_created = 0;
    uint64_t contexts_expired = 0;
    // Shed samples, by reason.
    uint64_t shed_context_limit = 0;            // a new context beyond max_contexts
    uint64_t shed_timestamped_limit = 0;        // pass-through queue full
    uint64_t shed_timestamped_unsupported = 0;  // h/ms/d/s with a timestamp
    uint64_t shed_invalid_value = 0;            // NaN / ±Inf
    uint64_t shed_type_mismatch = 0;            // another type than the context's
    uint64_t shed_set_values = 0;               // a new set value beyond max_set_values_per_context
    uint64_t shed_bucket_limit = 0;             // too many unflushed buckets for one context
    uint64_t histogram_samples_sketched = 0;    // beyond max_histogram_samples_per_context (kept, ~1%)
    uint64_t string_pool_entries = 0;           // distinct strings held for the live contexts
    uint64_t series_flushed = 0;
    uint64_t sketches_flushed = 0;
    uint64_t points_flushed = 0;         // series points
    uint64_t sketch_points_flushed = 0;  // sketch points
  };
  Counters GetCounters() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dogwatch::metrics
