#pragma once
// The APM stats wire model (pkg/proto/datadog/trace/stats.proto) and its MessagePack form.
//
// On the wire (the tracers' PUT /v0.6/stats body and the agent's POST /api/v0.2/stats body) the keys are
// the Go field names, as tinylib/msgp generates them from the protobuf structs:
//   StatsPayload       AgentHostname AgentEnv Stats AgentVersion ClientComputed SplitPayload
//   ClientStatsPayload Hostname Env Version Stats Lang TracerVersion RuntimeID Sequence AgentAggregation
//                      Service ContainerID Tags GitCommitSha ImageTag ProcessTagsHash ProcessTags
//   ClientStatsBucket  Start Duration Stats AgentTimeShift
//   ClientGroupedStats Service Name Resource HTTPStatusCode Type DBType Hits Errors Duration OkSummary
//                      ErrorSummary Synthetics TopLevelHits SpanKind PeerTags IsTraceRoot GRPCStatusCode
//                      HTTPMethod HTTPEndpoint srv_src
// `Stats` is omitted when empty (msg:"Stats,omitempty"). OkSummary/ErrorSummary are msgpack bin holding a
// DDSketch protobuf (common/sketch). Decoders on both sides skip unknown keys, so newer fields are safe.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace dogwatch::trace::stats {

// ClientGroupedStats.is_trace_root (a Trilean: unset, true, false).
inline constexpr int32_t kTraceRootNotSet = 0;
inline constexpr int32_t kTraceRootTrue = 1;
inline constexpr int32_t kTraceRootFalse = 2;

// ClientStatsPayload.agentAggregation values set by the client stats aggregator.
inline constexpr std::string_view kAggregationDistributions = "distributions";
inline constexpr std::string_view kAggregationCounts = "counts";

struct ClientGroupedStats {
  std::string service;
  std::string name;
  std::string resource;
  uint32_t http_status_code = 0;
  std::string type;
  std::string db_type;
  uint64_t hits = 0;
  uint64_t errors = 0;
  uint64_t duration = 0;      // ns, summed
  std::string ok_summary;     // DDSketch protobuf of non-error span durations
  std::string error_summary;  // DDSketch protobuf of error span durations
  bool synthetics = false;
  uint64_t top_level_hits = 0;
  std::string span_kind;
  std::vector<std::string> peer_tags;  // "key:value"
  int32_t is_trace_root = kTraceRootNotSet;
  std::string grpc_status_code;
  std::string http_method;
  std::string http_endpoint;
  std::string service_source;  // "srv_src": where the service name came from (_dd.svc_src)
};

struct ClientStatsBucket {
  uint64_t start = 0;     // ns, aligned
  uint64_t duration = 0;  // ns
  std::vector<ClientGroupedStats> stats;
  int64_t agent_time_shift = 0;
};

struct ClientStatsPayload {
  std::string hostname;
  std::string env;
  std::string version;
  std::vector<ClientStatsBucket> stats;
  std::string lang;
  std::string tracer_version;
  std::string runtime_id;
  uint64_t sequence = 0;
  std::string agent_aggregation;
  std::string service;
  std::string container_id;
  std::vector<std::string> tags;
  std::string git_commit_sha;
  std::string image_tag;
  uint64_t process_tags_hash = 0;
  std::string process_tags;
};

struct StatsPayload {
  std::string agent_hostname;
  std::string agent_env;
  std::vector<ClientStatsPayload> stats;
  std::string agent_version;
  bool client_computed = false;
  bool split_payload = false;
};

// Number of ClientGroupedStats entries in a payload.
size_t CountEntries(const ClientStatsPayload& p);
size_t CountEntries(const StatsPayload& p);

// Appends the MessagePack encoding.
void EncodeStatsPayload(const StatsPayload& payload, std::string* out);
void EncodeClientStatsPayload(const ClientStatsPayload& payload, std::string* out);

// Bounds for decoding untrusted bodies. Lengths are always checked against the input first.
struct DecodeLimits {
  int max_depth = 32;          // nesting of skipped unknown values
  size_t max_buckets = 10000;  // ClientStatsBucket per body
  size_t max_groups = 200000;  // ClientGroupedStats per body
  size_t max_tags = 10000;     // Tags / PeerTags strings per body
};

// A tracer's /v0.6/stats body. Strict about types (a string where a count belongs is an error with the
// key and byte offset) but tolerant like the agent's decoder: nil is the zero value, integers of any
// width and integral floats are accepted, unknown keys are skipped.
absl::StatusOr<ClientStatsPayload> DecodeClientStatsPayload(std::string_view msgpack,
                                                            const DecodeLimits& limits = {});
// An agent's /api/v0.2/stats body (uncompressed), for tests and the local intake.
absl::StatusOr<StatsPayload> DecodeStatsPayload(std::string_view msgpack, const DecodeLimits& limits = {});

}  // namespace dogwatch::trace::stats
