#pragma once
// Realistic trace payloads for tests and benchmarks (library dogwatch_trace_testdata). The spans
// look like what dd-trace-js sends for a web service: per trace a web root span, HTTP client spans
// and SQL spans with long queries, ~10 meta tags and 4-5 metrics each, integer metric values.
// Deterministic: the same arguments always give the same bytes.

#include <cstdint>
#include <string>
#include <vector>

#include "trace-agent/model/span.h"

namespace dogwatch::trace::testdata {

// `traces` traces of `spans_per_trace` spans each (span 0 is the root). A `variant` other than 0
// gives the same spans (services, resources, tags, durations) with other trace and span ids and
// later start times, as a tracer's next payload would carry them.
std::vector<Trace> BuildRealisticTraces(int traces, int spans_per_trace, uint64_t variant = 0);

enum class V04Style {
  // As dd-trace-js encodes (real-clients.md): array32 outer arrays, fixstr keys with str32 values,
  // uint64 ids and start even when small, uint32 duration, integral metrics as integers, "type"
  // omitted when empty.
  kDdTraceJs,
  // The smallest encoding of everything (what msgpack libraries with compaction produce).
  kCompact,
};

// Encoders of the model in each wire format (meta_struct and span_links included when present).
std::string EncodeV04(const std::vector<Trace>& traces, V04Style style = V04Style::kDdTraceJs);
std::string EncodeV05(const std::vector<Trace>& traces);
std::string EncodeV07(const TracerPayload& payload);
std::string EncodeJson(const std::vector<Trace>& traces);

// The benchmark input: EncodeV04(BuildRealisticTraces(traces, spans_per_trace, variant), kDdTraceJs).
std::string BuildRealisticV04Payload(int traces, int spans_per_trace, uint64_t variant = 0);

}  // namespace dogwatch::trace::testdata
