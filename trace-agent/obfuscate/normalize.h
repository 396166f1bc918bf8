#pragma once
// Span and trace normalization, following the Datadog Agent (pkg/trace/agent/normalizer.go,
// pkg/trace/traceutil/normalize, truncator.go, traceutil/trace.go). Normalization repairs what it can
// (empty or over-long names, bad timestamps, invalid tags) and counts every repair by reason; it rejects
// a trace only for the reasons the agent does (zero IDs, empty trace, span from another trace).
//
// Pipeline placement (see the wire reference, section 2.1):
//   NormalizeChunk            -> right after decoding; a non-OK status drops the chunk
//   (filters, obfuscation)
//   TruncateSpan              -> after obfuscation (SQL obfuscation usually shrinks the resource first)
//   MarkTopLevel              -> last, once spans are final

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "trace-agent/model/span.h"

namespace dogwatch::trace {

// Limits (bytes), as in the agent.
inline constexpr size_t kMaxServiceLen = 100;
inline constexpr size_t kMaxNameLen = 100;
inline constexpr size_t kMaxTypeLen = 100;
inline constexpr size_t kMaxResourceLen = 5000;
inline constexpr size_t kMaxResourceLenBig = 15000;  // feature "big_resource"
inline constexpr size_t kMaxMetaKeyLen = 200;
inline constexpr size_t kMaxMetaValueLen = 25000;
inline constexpr size_t kMaxMetricKeyLen = 200;
inline constexpr size_t kMaxTagLen = 200;

inline constexpr std::string_view kDefaultSpanName = "unnamed_operation";
inline constexpr std::string_view kDefaultServiceName = "unnamed-service";
// 2000-01-01T00:00:00Z in unix nanoseconds: earlier start times are treated as garbage.
inline constexpr int64_t kYear2000Nanos = 946684800LL * 1000000000LL;

// More well-known keys.
inline constexpr std::string_view kTracerTopLevelKey = "_dd.top_level";
inline constexpr std::string_view kPartialVersionKey = "_dd.partial_version";
inline constexpr std::string_view kTraceIdHighKey = "_dd.p.tid";
inline constexpr std::string_view kDecisionMakerKey = "_dd.p.dm";

// Repairs, named like the agent's `reason:` tags (datadog.trace_agent.normalizer.spans_malformed).
enum class NormalizeFix : uint8_t {
  kServiceEmpty,
  kServiceTruncate,
  kServiceInvalid,
  kPeerServiceTruncate,
  kPeerServiceInvalid,
  kBaseServiceTruncate,
  kBaseServiceInvalid,
  kSpanNameEmpty,
  kSpanNameTruncate,
  kSpanNameInvalid,
  kResourceEmpty,
  kTypeTruncate,
  kInvalidStartDate,
  kInvalidDuration,
  kInvalidHttpStatusCode,
  kDuplicateSpanId,
  kInvalidError,  // dogwatch addition: `error` outside {0, 1} clamped to 1
  kResourceTruncate,
  kMetaKeyTruncate,
  kMetaValueTruncate,
  kMetricKeyTruncate,
};
inline constexpr size_t kNormalizeFixCount = static_cast<size_t>(NormalizeFix::kMetricKeyTruncate) + 1;

// Why a whole trace is dropped (datadog.trace_agent.normalizer.traces_dropped reasons).
enum class DropReason : uint8_t {
  kEmptyTrace,
  kTraceIdZero,
  kSpanIdZero,
  kForeignSpan,
};
inline constexpr size_t kDropReasonCount = static_cast<size_t>(DropReason::kForeignSpan) + 1;

std::string_view NormalizeFixName(NormalizeFix fix);  // e.g. "service_truncate"
std::string_view DropReasonName(DropReason reason);   // e.g. "trace_id_zero"

// Counters filled by the functions below. Plain integers: each call works on its own instance and the
// receiver aggregates them (Add) into whatever shared counters it exposes.
struct NormalizeStats {
  std::array<uint64_t, kNormalizeFixCount> fixes{};
  std::array<uint64_t, kDropReasonCount> drops{};

  uint64_t fix(NormalizeFix f) const { return fixes[static_cast<size_t>(f)]; }
  uint64_t drop(DropReason r) const { return drops[static_cast<size_t>(r)]; }
  void Count(NormalizeFix f) { ++fixes[static_cast<size_t>(f)]; }
  void Count(DropReason r) { ++drops[static_cast<size_t>(r)]; }
  void Add(const NormalizeStats& other);
};

struct NormalizeOptions {
  // Tracer language (Datadog-Meta-Lang): an empty or invalid service becomes "unnamed-<lang>-service".
  std::string language;
  // Feature "component2name": use meta "component" as the span name when present.
  bool component_to_name = false;
  // Resource limit applied by TruncateSpan (kMaxResourceLenBig with feature "big_resource").
  size_t max_resource_len = kMaxResourceLen;
  // Clock for start-time repair, unix ns; 0 reads the system clock. Tests pin it.
  int64_t now_unix_nanos = 0;
};

// Repairs one span in place. Returns InvalidArgument for a zero trace or span ID (the trace must be
// dropped); the message starts with the drop reason tag ("trace_id_zero: ..."). `stats` may be null.
absl::Status NormalizeSpan(Span& span, const NormalizeOptions& options, NormalizeStats* stats);

// Normalizes every span of a trace: rejects empty traces and spans whose trace ID differs from the first
// span's (`_dd.p.tid` compared when both spans carry it), counts duplicate span IDs.
absl::Status NormalizeTrace(Trace& spans, const NormalizeOptions& options, NormalizeStats* stats);

// NormalizeTrace on chunk.spans, then SetChunkAttributes from the root. `root_index` (optional)
// receives the root span's index on success.
absl::Status NormalizeChunk(TraceChunk& chunk, const NormalizeOptions& options, NormalizeStats* stats,
                            size_t* root_index = nullptr);

// The reason tag at the start of a status returned above ("" for OK or foreign statuses).
std::string_view DropReasonTag(const absl::Status& status);

// Index of the root span: the last span with parent_id 0, else the first span whose parent is not in
// the trace, else the last span. The trace must not be empty.
size_t FindRootSpan(const Trace& spans);

// Chunk priority from the root's `_sampling_priority_v1` (else the first span carrying one) when unset,
// origin from the root's `_dd.origin` when unset, and `_dd.p.dm` promoted to a chunk tag.
void SetChunkAttributes(TraceChunk& chunk, size_t root_index);

// Truncates resource, meta keys/values and metric keys to the agent's limits (keys and values get a
// "..." suffix). Run after obfuscation. `stats` may be null.
void TruncateSpan(Span& span, const NormalizeOptions& options, NormalizeStats* stats);

// `_top_level` = 1 on spans that are roots, whose parent is not in the trace, or whose parent belongs to
// another service. Existing marks are left in place.
void ComputeTopLevel(Trace& spans);
// With Datadog-Client-Computed-Top-Level the tracer's own `_dd.top_level` mark is trusted and copied to
// `_top_level`; otherwise ComputeTopLevel.
void MarkTopLevel(Trace& spans, bool client_computed_top_level);

bool IsTopLevel(const Span& span);         // `_top_level` == 1 or `_dd.top_level` == 1
bool IsMeasured(const Span& span);         // `_dd.measured` == 1
bool IsPartialSnapshot(const Span& span);  // `_dd.partial_version` >= 0 (excluded from stats)

// Building blocks, exposed for the stats aggregation and tests.
// Cuts `text` to at most `limit` bytes without splitting a UTF-8 sequence.
std::string_view TruncateUtf8(std::string_view text, size_t limit);
// Tag value normalization (traceutil NormalizeTagValue): lowercase; letters, digits, ':' '.' '/' '-'
// kept; every other run becomes one '_'; a trailing run is dropped; at most 200 characters.
std::string NormalizeTagValue(std::string_view value);
// Full tag normalization (NormalizeTag): as above, and the tag must start with a letter or ':'.
std::string NormalizeTag(std::string_view tag);
// Span name normalization: empty -> "unnamed_operation" (fix kSpanNameEmpty); over 100 bytes truncated
// (kSpanNameTruncate); metric-name rules applied; nothing valid left -> "unnamed_operation"
// (kSpanNameInvalid). `fix` receives what was repaired, if anything.
std::string NormalizeName(std::string_view name, NormalizeFix* fix, bool* fixed);
// Service normalization; the fallback for empty/invalid is "unnamed-<language>-service".
std::string NormalizeService(std::string_view service, std::string_view language, NormalizeFix* fix,
                             bool* fixed);

}  // namespace dogwatch::trace
