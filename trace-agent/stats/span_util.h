#pragma once
// Span lookups shared by the stats and sampler libraries (header-only: both link only the span model).

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <vector>

#include "trace-agent/model/span.h"

namespace dogwatch::trace::stats {

// Metric keys the concentrator and samplers read.
inline constexpr std::string_view kTracerTopLevelKey = "_dd.top_level";  // set by tracers that compute it
inline constexpr std::string_view kPartialVersionKey = "_dd.partial_version";
inline constexpr std::string_view kSampleRateKey = "_sample_rate";

inline double MetricOr(const Span& s, std::string_view key, double fallback) {
  const double* v = Find(s.metrics, key);
  return v ? *v : fallback;
}

inline std::string_view MetaOr(const Span& s, std::string_view key, std::string_view fallback = {}) {
  const SpanString* v = Find(s.meta, key);
  return v ? std::string_view(*v) : fallback;
}

// `_top_level` is what the agent's normalizer sets; `_dd.top_level` is the tracer's own marking, which
// the agent copies into `_top_level` when the client computed top-level. Either one counts.
inline bool IsTopLevel(const Span& s) {
  return MetricOr(s, kTopLevelKey, 0) == 1 || MetricOr(s, kTracerTopLevelKey, 0) == 1;
}

inline bool IsMeasured(const Span& s) { return MetricOr(s, kMeasuredKey, 0) == 1; }

// A partial snapshot of a long-running span: never counted in stats.
inline bool IsPartialSnapshot(const Span& s) {
  const double* v = Find(s.metrics, kPartialVersionKey);
  return v && *v >= 0;
}

// The chunk's root, as the agent picks it: the last span with parent_id 0, else the last span whose
// parent is not in the chunk, else the last span. nullptr for an empty chunk.
inline const Span* FindRoot(const TraceChunk& chunk) {
  const auto& spans = chunk.spans;
  if (spans.empty()) return nullptr;
  for (size_t i = spans.size(); i-- > 0;) {
    if (spans[i].parent_id == 0) return &spans[i];
  }
  // Sorted ids and binary search: no allocation per lookup, fine for chunks of any size.
  std::vector<uint64_t> ids;
  ids.reserve(spans.size());
  for (const auto& s : spans) ids.push_back(s.span_id);
  std::sort(ids.begin(), ids.end());
  for (size_t i = spans.size(); i-- > 0;) {
    if (!std::binary_search(ids.begin(), ids.end(), spans[i].parent_id)) return &spans[i];
  }
  return &spans.back();
}

// 1 / the root's `_sample_rate` when it is in (0, 1]: each sampled span stands for that many.
inline double Weight(const Span* root) {
  if (!root) return 1;
  const double* rate = Find(root->metrics, kSampleRateKey);
  if (!rate || !(*rate > 0) || *rate > 1) return 1;
  return 1 / *rate;
}

}  // namespace dogwatch::trace::stats
