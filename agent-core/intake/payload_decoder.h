#pragma once
// Decoders for the bodies the Datadog intake paths carry, each turning a body (as received, with
// its Content-Encoding) into JSON for inspection, or into a clear error saying what is wrong with
// it. ValidatePayload runs at receive time (to answer 400 for malformed payloads); the JSON is
// rendered when a stored payload is shown.
//
// JSON shapes:
//   traces, series v2, sketches: the protobuf's JSON mapping with the .proto field names, default
//     values included; 64-bit integers are JSON strings (proto3 JSON rule), bytes are base64.
//   stats: the msgpack document converted generically (see msgpack_json.h).
//   series v1, check_run, intake, metadata: the JSON body itself, re-serialized compactly.
//   process paths: {"header": {version, encoding, encoding_name, type, type_name,
//     subscription_id, org_id, timestamp_ms}, "body_bytes": N, "body": {...}} where body_bytes is
//     the decompressed body's size and "body" is the protobuf's JSON mapping (as for traces) for
//     the types dogwatch compiles (CollectorProc 12, ResCollector 23, CollectorRealTime 27,
//     CollectorContainer 39, CollectorContainerRealTime 40, CollectorProcDiscovery 53; package
//     datadog.process_agent), or the JSON body itself for encoding 1. A protobuf body of any other
//     type appears as "body_base64": "..." instead. A body that does not parse as its type's
//     message is an error.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace dogwatch::intake {

enum class PayloadKind {
  kTraces,      // /api/v0.2/traces: AgentPayload protobuf, gzip or zstd
  kTraceStats,  // /api/v0.2/stats: StatsPayload msgpack, gzip
  kSeriesV2,    // /api/v2/series: MetricPayload protobuf, deflate or zstd
  kSketches,    // /api/beta/sketches: SketchPayload protobuf
  kSeriesV1,    // /api/v1/series: JSON object
  kCheckRuns,   // /api/v1/check_run: JSON array
  kIntake,      // /intake/: events and host metadata, JSON object
  kMetadata,    // /api/v1/metadata: JSON object
  kProcess,     // /api/v1/collector, /api/v1/container, /api/v1/connections:
                // framed messages
  kOpaque,      // relayed as the client sent it: tracer telemetry (/api/v2/apmtelemetry),
                // profiles (/api/v2/profile), EVP proxy payloads (any path, with
                // X-Datadog-EVP-Subdomain): shown as JSON when it is JSON, else as base64
};

// The payload kind an intake path carries, or nullopt when the path takes no payloads.
std::optional<PayloadKind> PayloadKindForPath(std::string_view path);
// Same, for a request: an EVP proxy payload (it carries X-Datadog-EVP-Subdomain) is opaque on any
// path under /api/.
std::optional<PayloadKind> PayloadKindForRequest(std::string_view path, bool has_evp_subdomain);

// Every path that accepts payloads, for listings and docs.
const std::vector<std::string_view>& PayloadPaths();

// "traces", "stats", "series_v2", ...
std::string_view PayloadKindName(PayloadKind kind);

struct DecodeLimits {
  // Cap on a body after Content-Encoding and message-level decompression.
  size_t max_decompressed_bytes = 64 * 1024 * 1024;
  // Nesting bound for JSON and msgpack documents.
  size_t max_depth = 128;
  // Cap on the JSON produced.
  size_t max_json_bytes = 256 * 1024 * 1024;
};

// Decodes `body` (as received, compressed per `content_encoding`) to JSON.
absl::StatusOr<std::string> DecodePayloadToJson(PayloadKind kind, std::string_view content_encoding,
                                                std::string_view body, const DecodeLimits& limits = {});

// What DecodePayloadToJson checks, without the JSON: the body decompresses within the limits and
// parses as its kind's message. Receive time calls this; JSON is rendered only when a payload is
// shown. Protobuf kinds are checked on the wire (ProtobufWireCheck: what the parser accepts,
// without building the message); rendering an AgentPayload as JSON costs ~10x parsing it, and
// parsing it ~4x the wire check (intake_payload_check_benchmark). The other kinds are small and their JSON conversion is their
// parse, so they are checked by converting them.
absl::Status ValidatePayload(PayloadKind kind, std::string_view content_encoding, std::string_view body,
                             const DecodeLimits& limits = {});

// The process-agent message header (agent-payload process/message.go): 4 bytes in V1, 8 in V2, 16
// in V3, all little-endian.
struct ProcessMessageHeader {
  int version = 0;
  int encoding = 0;
  int type = 0;
  int subscription_id = 0;
  int32_t org_id = 0;
  int64_t timestamp_ms = 0;
  size_t header_bytes = 0;
};

absl::StatusOr<ProcessMessageHeader> ParseProcessMessageHeader(std::string_view message);

// Encodes a V3 header; used to frame replies to the process agent.
std::string EncodeProcessMessageHeaderV3(const ProcessMessageHeader& header);

// Message type and encoding numbers used by the process agent.
inline constexpr int kProcessTypeResCollector = 23;
inline constexpr int kProcessEncodingProtobuf = 0;

std::string_view ProcessMessageTypeName(int type);
std::string_view ProcessMessageEncodingName(int encoding);

// Re-serializes a JSON document compactly after checking it: UTF-8, depth-bounded, no trailing
// data, and of the expected top-level type. Numbers keep their exact text.
enum class JsonTopLevel { kAny, kObject, kArray };
absl::StatusOr<std::string> NormalizeJson(std::string_view text, JsonTopLevel expected, size_t max_depth);

}  // namespace dogwatch::intake
