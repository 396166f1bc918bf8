#pragma once
// Decoders for the trace payloads tracers send to the trace-agent (datadog-wire.md 1.2-1.5):
// msgpack v0.3/v0.4 (array of traces of span maps), v0.5 (string table + 12-element span arrays),
// v0.7 (TracerPayload), and the legacy JSON bodies of v0.1-v0.4.
//
// The msgpack decoders stream over the bytes straight into the span model: no intermediate object
// tree. They are as tolerant as the Datadog agent (any integer width or a float for integer fields,
// nil for zero values, bin for str) and as strict as an untrusted-input parser must be: every
// claimed length is checked against the bytes that remain before anything is allocated, and the
// DecodeLimits bound what a small body can make the decoder allocate. Invalid UTF-8 in strings is
// not an error: each offending byte becomes U+FFFD, like the agent's normalizer does.
//
// Errors are absl::InvalidArgumentError for malformed input and absl::ResourceExhaustedError when a
// limit is exceeded (the agent answers either with a 400); messages say what and where, e.g.
//   msgpack: trace 3, span 7: field 'duration': expected integer, got str (at byte 1234)
//
// Decoded maps (meta, metrics, tags, ...) have unique keys, the last occurrence winning, as with the
// Go maps the agent decodes into. Nil spans and nil chunks are dropped; a nil trace is an empty one.
// Bytes after the top-level msgpack value are ignored, as the agent does.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "trace-agent/model/span.h"

namespace dogwatch::trace {

struct DecodeLimits {
  // Spans in one payload (and, since an empty trace costs about as much, traces too).
  size_t max_spans = 1'000'000;
  // Length of any one string or bin value.
  size_t max_string_bytes = 25 << 20;
  // Entries of any one map (meta, metrics, meta_struct, tags, link attributes) and links per span.
  size_t max_map_entries = 100'000;
  // Nesting of containers, counted from the top-level value; bounds skipping unknown values.
  size_t max_depth = 32;
  // Added with the decoders. An estimate of the memory the decoded result occupies: the struct
  // size of every span, trace, map entry and link reserved plus the length of every string copied.
  // Per-element limits alone still let a small body claim a lot: a 2-byte map entry becomes a
  // 64-byte pair, and in v0.5 one string-table entry can be copied into every span. A realistic
  // 25 MiB v0.4 body decodes to well under 100 MiB.
  size_t max_decoded_bytes = 256 << 20;
  // Entries of the v0.5 string table.
  size_t max_dictionary_entries = 1'000'000;
};

// The msgpack decoders' spans BORROW from `body` (span.h): their strings are views into it, except
// those repaired from invalid UTF-8. Keep the body alive, unchanged, for as long as the spans are
// used; a temporary std::string body does not compile (the deleted overloads).

// v0.3 and v0.4 msgpack: [[span map, ...], ...] (array of traces).
absl::StatusOr<std::vector<Trace>> DecodeMsgpackTracesV04(std::string_view body, const DecodeLimits& = {});
absl::StatusOr<std::vector<Trace>> DecodeMsgpackTracesV04(std::string&& body,
                                                          const DecodeLimits& = {}) = delete;

// v0.5: [string table, [[12-element span arrays]]]; exactly 2 top-level items, exactly 12 per span,
// nil refused everywhere, every string index in range.
absl::StatusOr<std::vector<Trace>> DecodeMsgpackTracesV05(std::string_view body, const DecodeLimits& = {});
absl::StatusOr<std::vector<Trace>> DecodeMsgpackTracesV05(std::string&& body,
                                                          const DecodeLimits& = {}) = delete;

// v0.7: a msgpack TracerPayload map (container_id, language_name, language_version, tracer_version,
// runtime_id, chunks[{priority, origin, spans, tags, dropped_trace}], tags, env, hostname,
// app_version). A chunk without "priority" keeps kPriorityNone. The payload-level strings are copies.
absl::StatusOr<TracerPayload> DecodeMsgpackTracerPayloadV07(std::string_view body, const DecodeLimits& = {});
absl::StatusOr<TracerPayload> DecodeMsgpackTracerPayloadV07(std::string&& body,
                                                            const DecodeLimits& = {}) = delete;

// JSON body of v0.2-v0.4 (Content-Type application/json): [[{span}, ...], ...]. IDs may be JSON
// numbers up to 2^64-1. The v0.1 flat form [{span}, ...] is accepted too and grouped into traces by
// trace_id in order of first appearance. Field names match case-insensitively and meta_struct values
// are base64 strings, as with Go's encoding/json. Unknown keys are ignored. max_depth does not apply:
// RapidJSON's iterative parser has no recursion to bound.
absl::StatusOr<std::vector<Trace>> DecodeJsonTraces(std::string_view body, const DecodeLimits& = {});

enum class TraceEncoding { kMsgpackV04, kMsgpackV05, kMsgpackV07, kJson };

// How many traces a body claims (for the X-Datadog-Trace-Count cross-check), without decoding:
// the outer array's length for v0.4 (and JSON), the traces array's length for v0.5 (the string
// table is skipped, not decoded), the length of the first "chunks" array for v0.7 (values before it
// are skipped). For the v0.1 flat JSON form it is the number of spans. Reads only the framing up to
// that count, and fails only when that framing is malformed: a successful count does not mean the
// body decodes.
absl::StatusOr<size_t> CountTraces(std::string_view body, TraceEncoding encoding, const DecodeLimits& = {});

}  // namespace dogwatch::trace
