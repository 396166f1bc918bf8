#pragma once
// What a span contributes to its stats aggregation key (pkg/trace/stats/aggregation.go,
// span_concentrator.go in the Datadog Agent, reimplemented):
//   service, name, resource, type, span.kind, HTTP status code, synthetics, peer tags (hash), is_trace_root,
//   gRPC status code, HTTP method, HTTP endpoint, service source (_dd.svc_src).

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "trace-agent/model/span.h"

namespace dogwatch::trace::stats {

// "_dd.base_service" plus every precursor tag of the agent's peer_tags.ini, sorted.
const std::vector<std::string>& DefaultPeerTagKeys();

// The keys peer tags are read from: the defaults plus `extra` (apm_config.peer_tags), sorted and
// deduplicated; empty when apm_config.peer_tags_aggregation is off.
std::vector<std::string> ConfiguredPeerTagKeys(bool peer_tags_aggregation,
                                               const std::vector<std::string>& extra);

// Metric `http.status_code`, else meta `http.status_code` parsed as uint32; 0 when absent or invalid.
uint32_t HttpStatusCode(const Span& s);

// The gRPC status as a decimal string: meta rpc.grpc.status_code, grpc.code, rpc.grpc.status.code,
// grpc.status.code (first non-empty; numbers, "StatusCode.X" and code names such as NOT_FOUND or
// NotFound are accepted), else the same keys in metrics. "" when absent or unrecognized.
std::string GrpcStatusCode(const Span& s);

// span.kind in {server, consumer, client, producer}, case-insensitively.
bool IsStatsSpanKind(std::string_view span_kind);

// Replaces IP addresses in a comma-separated host list with "blocked-ip-address" (keeping ports and an
// "ip-" or "scheme://" prefix), leaves hostnames and loopback / cloud metadata addresses alone, and
// removes duplicates that result. Peer tag values go through it to bound their cardinality.
std::string QuantizePeerIpAddresses(std::string_view raw);
// Appends the quantized form of `raw` to `out` (no allocation when `raw` holds no IP-like text).
void AppendQuantizedPeerIpAddresses(std::string_view raw, std::string* out);

// The span's peer tags as sorted "key:value" strings: for client, producer and consumer spans, every key
// of `keys` present with a non-empty value; for internal spans (kind "" or "internal") carrying
// _dd.base_service, only that tag. Nothing when `keys` is empty (aggregation off).
void MatchingPeerTags(const Span& s, std::string_view span_kind, const std::vector<std::string>& keys,
                      std::vector<std::string>* out);

// The fields the stats key reads from a span, found in one pass over its meta and one over its metrics (the
// span model keeps tags in flat vectors: one pass beats a dozen linear lookups on the hot path).
struct StatsSpanFields {
  std::string_view span_kind;
  std::string_view http_status_code;  // meta
  std::string_view http_method;
  std::string_view http_endpoint;
  std::string_view http_route;
  std::string_view service_source;  // _dd.svc_src
  std::string_view base_service;    // _dd.base_service
  std::string_view grpc_meta[4];    // rpc.grpc.status_code, grpc.code, rpc.grpc.status.code, grpc.status.code
  const double* grpc_metric[4] = {};
  const double* http_status_code_metric = nullptr;
  bool top_level = false;  // _top_level == 1 or _dd.top_level == 1
  bool measured = false;   // _dd.measured == 1
  bool partial = false;    // _dd.partial_version >= 0
};
void ScanStatsFields(const Span& s, StatsSpanFields* out);
uint32_t HttpStatusCode(const StatsSpanFields& f);
std::string GrpcStatusCode(const StatsSpanFields& f);
// Room for any status code in decimal (up to 2^64 - 1: 20 digits).
using GrpcCodeBuffer = std::array<char, 20>;
// The same as a view into `buf` (or a literal): the hot path keys its groups on it without allocating.
std::string_view GrpcStatusCode(const StatsSpanFields& f, GrpcCodeBuffer* buf);

// One peer tag of a span before formatting: which key (an index into PeerTagMatcher::keys(), or
// PeerTagMatcher::kBaseServiceOnly for the base service of an internal span) and the raw value.
struct PeerTagMatch {
  uint32_t key = 0;
  std::string_view value;
};

// Peer tag matching with a precomputed key table.
class PeerTagMatcher {
 public:
  // The key of an internal span's _dd.base_service tag, which counts whether or not it is configured.
  static constexpr uint32_t kBaseServiceOnly = 0xffffffffu;

  explicit PeerTagMatcher(std::vector<std::string> keys);
  // The span's peer tags as raw (key, value) pairs sorted by key index, into (*out)[0, returned count).
  // No string is built: the values are the span's own.
  size_t MatchRaw(const Span& s, const StatsSpanFields& f, std::vector<PeerTagMatch>* out) const;
  // Sorted "key:value" strings of `matches`, values IP-quantized, into (*out)[0, returned count); reuses
  // the strings of `out` between calls.
  size_t Format(std::span<const PeerTagMatch> matches, std::vector<std::string>* out) const;
  // MatchRaw then Format.
  size_t Match(const Span& s, const StatsSpanFields& f, std::vector<std::string>* out) const;
  std::string_view KeyName(uint32_t key) const;
  const std::vector<std::string>& keys() const { return keys_; }

 private:
  // A span's ~10 meta keys are looked up for every client span. Hashing each key and probing a hash set
  // was most of the matcher's time; instead the keys are grouped by length, and a meta key is compared
  // with the configured keys of its length on its first and last 8 bytes (two loads, exact up to 16
  // bytes), longer keys then on the bytes between.
  struct Candidate {
    uint64_t head = 0;
    uint64_t tail = 0;
    uint32_t key = 0;
  };
  static constexpr size_t kMaxIndexedLength = 63;
  static constexpr uint32_t kNotAKey = 0xfffffffeu;
  uint32_t Lookup(std::string_view key) const;  // index into keys_, or kNotAKey

  std::vector<std::string> keys_;  // sorted
  std::vector<Candidate> by_length_[kMaxIndexedLength + 1];
  std::vector<uint32_t> long_keys_;  // longer than kMaxIndexedLength: compared whole
  // Per length, a bit for each (first byte, last byte) signature among the keys of that length: most meta
  // keys (component, span.kind, http.method...) are turned away by this one test.
  uint64_t signatures_[kMaxIndexedLength + 1] = {};
  // Lookup's first test, cheap enough to run inline on every meta key: true when `k` cannot be a key
  // (empty, or no key of its length has its signature). Keys longer than kMaxIndexedLength are never
  // ruled out here.
  bool RuledOut(std::string_view k) const;
  // Adds (k, v) to the (*n) matches in `out`, kept in key order, if k is a key and v is not empty.
  void MatchEntry(const SpanString& k, const SpanString& v, size_t* n, std::vector<PeerTagMatch>* out) const;
};

// FNV-1a 64 over the sorted strings joined by a zero byte (sorts `tags` in place); 0 when empty. The
// agent keys peer tags and process tags by this hash.
uint64_t TagsFnvHash(std::vector<std::string>* tags);
// The same over the first `n` strings, already sorted.
uint64_t SortedTagsFnvHash(const std::vector<std::string>& tags, size_t n);
// Hash of a comma-separated process tags string; 0 when empty.
uint64_t ProcessTagsHash(std::string_view process_tags);

// The duration the agent puts in a latency sketch: the float value with its mantissa cut to 10 bits, so
// nearby durations share a value (±1/1024) and sketches stay small.
double TruncateDuration(int64_t ns);

}  // namespace dogwatch::trace::stats
