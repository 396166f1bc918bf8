#pragma once
// Turns the flushed metric model (agent-core/metrics/types.h) into the HTTP bodies the Datadog
// intake accepts, compressed and split so that no payload exceeds the intake's limits:
//
//   series         → /api/v2/series      MetricPayload (protobuf)
//   sketches       → /api/beta/sketches  SketchPayload with dogsketches (protobuf)
//   events         → /intake/            v1 JSON {"apiKey":"","events":{<source>:[…]},"internalHostname":…}
//   service checks → /api/v1/check_run   JSON array [{check,host_name,timestamp,status,message,tags}]
//   host metadata  → /intake/            the Agent v5 host payload with the gohai JSON string
//
// Splitting follows the Datadog Agent's stream compressor (pkg/serializer/internal/stream): items
// are never cut across payloads, every payload respects the compressed, uncompressed and (series)
// points limits, and an item that cannot fit in an empty payload is dropped and counted. Unlike the
// Agent, which streams into a compressor and checks worst-case bounds, we compress each candidate
// payload whole, verify its real size and, when it is over, shrink it and compress again; the
// compression ratio measured on each payload sizes the next one, so a re-compression is rare.
//
// Nothing here sends anything or holds an API key: the forwarder adds DD-API-KEY per destination.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "agent-core/metrics/types.h"
#include "common/compression/compression.h"

namespace dogwatch::serializer {

inline constexpr char kSeriesPath[] = "/api/v2/series";
inline constexpr char kSketchesPath[] = "/api/beta/sketches";
inline constexpr char kEventsPath[] = "/intake/";
inline constexpr char kServiceChecksPath[] = "/api/v1/check_run";
inline constexpr char kHostMetadataPath[] = "/intake/";

inline constexpr char kContentTypeProtobuf[] = "application/x-protobuf";
inline constexpr char kContentTypeJson[] = "application/json";

// One HTTP body, ready for the forwarder.
struct Payload {
  std::string path;
  // Content-Type, and Content-Encoding unless the codec is identity.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // compressed
  size_t items = 0;  // series, sketches, events or service checks in this body (1 for host metadata)
};

// Defaults are the Datadog Agent's (pkg/config/setup: "do not change the following values. Your
// payloads will get dropped by Datadog's intake").
struct SerializerOptions {
  // `serializer_compressor_kind`: "zstd" (default) or "zlib" (sent as Content-Encoding: deflate).
  // gzip and identity also work, for local destinations and tests.
  compression::Codec codec = compression::Codec::kZstd;
  // compression::kDefaultLevel means the Agent's default for the codec: 1 for zstd
  // (`serializer_zstd_compressor_level`), 6 for zlib. Anything else is passed to the codec.
  int compression_level = compression::kDefaultLevel;
  // `serializer_max_payload_size` / `serializer_max_uncompressed_payload_size`: sketches, events,
  // service checks.
  size_t max_payload_size = 2'621'440;
  size_t max_uncompressed_payload_size = 4'194'304;
  // `serializer_max_series_payload_size` / `_uncompressed_payload_size` / `_points_per_payload`.
  size_t max_series_payload_size = 512'000;
  size_t max_series_uncompressed_payload_size = 5'242'880;
  size_t max_series_points_per_payload = 10'000;  // 0 = no points limit
  // The agent's hostname: events and service checks without a host get it, and it is the events
  // payload's "internalHostname".
  std::string hostname;
};

// Parses `serializer_compressor_kind` ("zstd" | "zlib") and picks the matching level:
// `serializer_zstd_compressor_level` for zstd, zlib's default for zlib.
absl::StatusOr<SerializerOptions> OptionsForCompressorKind(std::string_view compressor_kind, int zstd_level);

// Running totals; every Serialize* call adds to them (nothing is reset), so a caller keeps one per
// payload kind and exports them as telemetry.
struct SerializerCounters {
  uint64_t payloads = 0;            // bodies produced
  uint64_t items = 0;               // items written into bodies
  uint64_t points = 0;              // series points / sketch points written
  uint64_t bytes_uncompressed = 0;  // body bytes before compression
  uint64_t bytes_compressed = 0;    // body bytes after compression
  uint64_t dropped_too_big = 0;     // items that alone exceed a limit (Agent: "ItemTooBig")
  uint64_t dropped_invalid = 0;     // sketches whose key and count columns differ in length
  uint64_t splits = 0;              // payloads closed early because a limit was reached ("PayloadFull")
  uint64_t recompressions = 0;      // candidate payloads that compressed over the limit and were shrunk
};

// /api/v2/series. Each series gets the resource {type:"host", name:<host>} when its host is set, the
// origin metadata {origin_product: 10 (Agent)}, and its points as {value, timestamp}.
absl::StatusOr<std::vector<Payload>> SerializeSeries(std::span<const metrics::Series> series,
                                                     const SerializerOptions& options,
                                                     SerializerCounters* counters);

// /api/beta/sketches, one SketchPayload.Sketch per SketchSeries with one dogsketch per point.
absl::StatusOr<std::vector<Payload>> SerializeSketches(std::span<const metrics::SketchSeries> sketches,
                                                       const SerializerOptions& options,
                                                       SerializerCounters* counters);

// /intake/ events, grouped by source_type_name ("api" when empty) as the Agent does. An event with
// no host gets options.hostname; a timestamp of 0 becomes the current time.
absl::StatusOr<std::vector<Payload>> SerializeEvents(std::span<const metrics::Event> events,
                                                     const SerializerOptions& options,
                                                     SerializerCounters* counters);

// /api/v1/check_run. A check with no host gets options.hostname; a timestamp of 0 becomes now.
absl::StatusOr<std::vector<Payload>> SerializeServiceChecks(std::span<const metrics::ServiceCheck> checks,
                                                            const SerializerOptions& options,
                                                            SerializerCounters* counters);

// What the host metadata payload needs from the rest of the agent. The roots let tests point the
// collectors at fixture trees.
struct HostMetadataInputs {
  std::string hostname;  // the agent's canonical hostname ("internalHostname", meta.hostname)
  std::string agent_version;
  std::string agent_flavor = "agent";
  std::vector<std::string> host_tags;     // host-tags.system (`tags` + `extra_tags`)
  std::vector<std::string> host_aliases;  // meta.host_aliases (cloud provider aliases)
  // meta.socket-fqdn. Resolving it takes DNS lookups, which the caller may do (or not) on its own
  // schedule; empty means the socket hostname.
  std::string socket_fqdn;
  // install-method, from install_info; empty tool means unknown (sent as null / "undefined").
  std::string install_tool;
  std::string install_tool_version;
  std::string installer_version;
  bool logs_enabled = false;  // logs.transport is "" when the logs agent is off
  std::string logs_transport;
  std::string proc_root = "/proc";
  std::string etc_root = "/etc";
  std::string sys_root = "/sys";
  bool collect_network = true;      // gohai.network from getifaddrs(3)
  bool collect_filesystems = true;  // gohai.filesystem from <proc_root>/mounts + statvfs(3)
};

// The v5 host metadata JSON, compressed with options.codec. The body carries no API key: the
// Agent's own code notes the field is legacy and unused by the backend, and the intake
// authenticates the DD-API-KEY header, which the forwarder sets per destination.
absl::StatusOr<Payload> BuildHostMetadata(const HostMetadataInputs& inputs, const SerializerOptions& options);

// The uncompressed JSON BuildHostMetadata compresses (for `agent status`, tests and debugging).
absl::StatusOr<std::string> HostMetadataJson(const HostMetadataInputs& inputs);

}  // namespace dogwatch::serializer
