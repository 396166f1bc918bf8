#pragma once
// The trace-agent's in-memory span model: what the decoders produce and every pipeline stage
// (normalize, obfuscate, sample, stats, write) works on. Plain structs with flat vectors for tags:
// a span has ~10-20 meta entries, where a linear scan beats hashing and there is no per-entry node
// allocation (protobuf's Map costs several times more per span on the decode path).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dogwatch::trace {

using StringMap = std::vector<std::pair<std::string, std::string>>;
using NumberMap = std::vector<std::pair<std::string, double>>;

// Lookups and updates on the flat maps. Keys are unique: Set replaces an existing entry.
const std::string* Find(const StringMap& map, std::string_view key);
const double* Find(const NumberMap& map, std::string_view key);
void Set(StringMap& map, std::string_view key, std::string value);
void Set(NumberMap& map, std::string_view key, double value);
bool Erase(StringMap& map, std::string_view key);

struct SpanLink {
  uint64_t trace_id = 0;
  uint64_t trace_id_high = 0;
  uint64_t span_id = 0;
  StringMap attributes;
  std::string tracestate;
  uint32_t flags = 0;
};

struct Span {
  std::string service;
  std::string name;
  std::string resource;
  std::string type;
  uint64_t trace_id = 0;
  uint64_t span_id = 0;
  uint64_t parent_id = 0;
  int64_t start = 0;     // unix ns
  int64_t duration = 0;  // ns
  int32_t error = 0;
  StringMap meta;
  NumberMap metrics;
  StringMap meta_struct;  // values are raw bytes
  std::vector<SpanLink> span_links;
};

using Trace = std::vector<Span>;

// Sampling priorities as tracers send them in metrics["_sampling_priority_v1"].
inline constexpr int32_t kPriorityUserReject = -1;
inline constexpr int32_t kPriorityAutoReject = 0;
inline constexpr int32_t kPriorityAutoKeep = 1;
inline constexpr int32_t kPriorityUserKeep = 2;
// The chunk has no priority (none of its spans carried one).
inline constexpr int32_t kPriorityNone = -128;

struct TraceChunk {
  int32_t priority = kPriorityNone;
  std::string origin;
  std::vector<Span> spans;
  StringMap tags;
  bool dropped_trace = false;
};

struct TracerPayload {
  std::string container_id;
  std::string language_name;
  std::string language_version;
  std::string tracer_version;
  std::string runtime_id;
  std::vector<TraceChunk> chunks;
  StringMap tags;
  std::string env;
  std::string hostname;
  std::string app_version;
};

// Well-known keys.
inline constexpr std::string_view kSamplingPriorityKey = "_sampling_priority_v1";
inline constexpr std::string_view kTopLevelKey = "_top_level";
inline constexpr std::string_view kMeasuredKey = "_dd.measured";
inline constexpr std::string_view kOriginKey = "_dd.origin";

}  // namespace dogwatch::trace
