#pragma once
// The trace-agent's sampling decision for each processed chunk (Datadog Agent pkg/trace/sampler/* and
// agent.go runSamplers; reimplemented).
//
// Order, for a chunk with root R in env E:
//   1. (error_tracking_standalone) only chunks with an error span (or an exception span event) are
//      considered, by the errors sampler alone.
//   2. The rare sampler (off by default) sees every chunk first so it learns what priority traffic covers;
//      it may keep a chunk whose (env, service, name, resource, error type, HTTP status) of a top-level or
//      measured span was not seen for 5 minutes (5 TPS, burst 50), marking that span `_dd.rare` = 1.
//   3. Priority < 0 (user reject) drops.
//   4. Priority ≥ 0: the tracer decided; priority > 0 keeps. P0/P1 chunks are counted per (R.service, E)
//      (weighted by 1/(_sample_rate × _dd1.sr.rapre), plus the weight of P0 chunks the tracer dropped
//      itself) and rates targeting apm_config.target_traces_per_second are fed back to tracers through
//      RateByService(). A kept root without `_dd.agent_psr`, `_dd.rule_psr` or `_sampling_priority_rate_v1`
//      gets `_sampling_priority_rate_v1` = the (service, env) rate.
//      No priority: the no-priority score sampler keeps by signature at target_traces_per_second and sets
//      `_dd.no_p_sr` on kept roots.
//   5. Not kept and some span has error != 0: the errors score sampler (apm_config.errors_per_second, its
//      own budget) may keep it, setting `_dd.errors_sr`.
//   6. Dropped chunks keep their single-span-sampled spans (metric `_dd.span_sampling.mechanism`): the chunk
//      is reduced to those spans and sent with priority 2.
// chunk.dropped_trace is set to !keep. Time comes from an injected clock; Update(now) rotates the rate
// windows without traffic, so RateByService() decays when tracers go quiet. Thread-safe.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "trace-agent/model/span.h"

namespace dogwatch::trace::sampler {

struct SamplerConfig {
  double target_tps = 10;                              // apm_config.target_traces_per_second
  double error_tps = 10;                               // apm_config.errors_per_second (0 disables)
  double extra_sample_rate = 1.0;                      // apm_config.extra_sample_rate
  bool rare_sampler_enabled = false;                   // apm_config.enable_rare_sampler
  double rare_sampler_tps = 5;                         // apm_config.rare_sampler.tps
  int64_t rare_sampler_cooldown_ns = 300'000'000'000;  // apm_config.rare_sampler.cooldown (5 min)
  int rare_sampler_cardinality = 200;      // apm_config.rare_sampler.cardinality, per (env, service)
  bool error_tracking_standalone = false;  // apm_config.error_tracking_standalone.enabled
  size_t max_catalog_entries = 5000;       // (service, env) pairs in rate_by_service (LRU)
  size_t max_signatures = 10000;           // per score sampler table (errors, no-priority) and priority
  size_t max_rare_shards = 10000;          // (env, service) pairs tracked by the rare sampler
  std::string agent_env = "none";          // env of tracers that send none
};

enum class SamplerName { kUnknown, kPriority, kNoPriority, kError, kRare };
std::string_view SamplerNameString(
    SamplerName name);  // "priority", "no_priority", "error", "rare", "unknown"

struct SamplingDecision {
  bool keep = false;             // the chunk is kept whole
  size_t single_spans_kept = 0;  // dropped, but reduced to this many single-span-sampled spans (priority 2)
  SamplerName sampler = SamplerName::kUnknown;  // which sampler decided, for the metrics key
  int32_t priority = kPriorityNone;             // the chunk's priority before sampling
  bool send() const { return keep || single_spans_kept > 0; }
};

class TraceSampler {
 public:
  using Clock = std::function<int64_t()>;  // unix time, ns

  struct Counters {
    // Chunks kept / dropped, indexed by SamplerName.
    uint64_t kept[5] = {};
    uint64_t dropped[5] = {};
    uint64_t single_span_chunks = 0;
    uint64_t single_spans = 0;
    uint64_t priority_by_value[4] = {};  // chunks seen with priority -1, 0, 1, 2
    uint64_t no_priority = 0;
    uint64_t rare_hits = 0;
    uint64_t rare_misses = 0;  // rare candidates refused by the rate limiter
    uint64_t rare_shrinks = 0;
    uint64_t shed_signatures = 0;  // score/priority signatures beyond max_signatures
    uint64_t catalog_evictions = 0;
  };

  explicit TraceSampler(SamplerConfig config, Clock clock = nullptr);
  ~TraceSampler();
  TraceSampler(const TraceSampler&) = delete;
  TraceSampler& operator=(const TraceSampler&) = delete;

  // Decides for one processed chunk. `root` must be the chunk's root span (an element of chunk.spans; if it
  // is a copy, the span with the same span_id in the chunk is annotated instead). `env` is the tracer env
  // (payload env, else the root's). When `client_dropped_p0s_enabled` (the tracer drops P0 chunks itself
  // and reports them in Datadog-Client-Dropped-P0-Traces), `client_dropped_p0s_weight` (that count divided
  // by the payload's chunk count) is added to the priority sampler's traffic so rates stay right.
  SamplingDecision Sample(TraceChunk& chunk, const Span& root, std::string_view env,
                          bool client_dropped_p0s_enabled, double client_dropped_p0s_weight = 0);

  // Rotates the rate windows at `now_ns` (call every few seconds); recomputes RateByService().
  void Update(int64_t now_ns);

  // "service:<s>,env:<e>" → rate for the /v0.4+ reply, plus "service:,env:" (the default rate) and, for
  // the agent's env, "service:<s>,env:" (tracers that send no env use the agent's rates).
  std::map<std::string, double> RateByService() const;
  // Increments whenever RateByService() changes (for Datadog-Rates-Payload-Version).
  uint64_t rates_version() const;

  Counters counters() const;
  void SetTargetTps(double target_tps);
  void SetErrorTps(double error_tps);
  void SetRareSamplerEnabled(bool enabled);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Reduces a dropped chunk to its single-span-sampled spans (metric `_dd.span_sampling.mechanism`), setting
// priority 2 and dropped_trace = false. Returns the number of spans kept (0: chunk untouched).
size_t SingleSpanSampling(TraceChunk& chunk);

}  // namespace dogwatch::trace::sampler
