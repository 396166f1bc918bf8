#pragma once
// Tracer-computed stats (PUT /v0.6/stats): preparation and the agent-side aggregation layer
// (pkg/trace/agent.go processStats, pkg/trace/stats/client_stats_aggregator.go; reimplemented).
//
// Flow: DecodeClientStatsPayload (stats_payload.h) → PrepareClientStats → ClientStatsAggregator::Add →
// StatsPayloads (client_computed = true) → stats_writer.
//
// The aggregator buckets client buckets by 2 s windows aligned to odd seconds (1 s, 3 s, 5 s, ...: never on
// the concentrator's 10 s boundaries, so the agent never reports two counts for the same second):
//   - one payload in a window: passed through untouched when the window closes;
//   - two or more: each payload goes out right away with its counts zeroed (agentAggregation =
//     "distributions": its sketches and top-level hits stay as sent) and the window's summed hits, errors
//     and durations go out as one "counts" payload when it closes.
// Client buckets older than the window (20 s) or in the future are shifted into it; the shift is recorded
// in agentTimeShift. The DDSketch bytes are forwarded as the tracer encoded them (the agent never
// re-encodes client distributions); common/sketch can decode and merge them when a consumer needs to.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "trace-agent/stats/stats_payload.h"

namespace dogwatch::trace::stats {

struct ClientStatsContext {
  std::string_view lang;            // Datadog-Meta-Lang, when the body has no Lang
  std::string_view tracer_version;  // Datadog-Meta-Tracer-Version, when the body has no TracerVersion
  std::string_view container_id;    // the caller's resolved container ID (replaces the body's)
  bool container_id_stats = true;   // false = feature "disable_cid_stats": no container ID, no tags
  std::string_view agent_env = "none";
  // Normalizes the env tag value (the pipeline's tag normalizer); null leaves it as sent.
  std::function<std::string(std::string_view)> normalize_env;
  // Per group: normalization, obfuscation, filters and tag replacement, as for spans. Returning false
  // drops the group. Null keeps groups as sent.
  std::function<bool(ClientGroupedStats&)> process_group;
};

// The agent's processStats: container ID from the connection, env default and normalization, lang and
// tracer version from the headers, per-group processing, then duplicate groups merged per bucket.
void PrepareClientStats(ClientStatsPayload* payload, const ClientStatsContext& ctx);

// Groups with the same key (service, name, resource, span kind, status code, synthetics, peer tags,
// is_trace_root, gRPC code, HTTP method and endpoint, service source) keep one entry carrying the summed
// hits, errors and duration; the others keep their sketches with counts zeroed.
void MergeDuplicateGroups(ClientStatsBucket* bucket);

class ClientStatsAggregator {
 public:
  struct Config {
    std::string agent_env = "none";
    std::string agent_hostname;
    std::string agent_version;
    bool peer_tags_aggregation = true;  // apm_config.peer_tags_aggregation: counts keyed by peer tags
    size_t max_count_groups_per_window = 100000;  // summed-count keys per window; more are shed
  };
  struct Counters {
    uint64_t payloads = 0;
    uint64_t buckets = 0;
    uint64_t buckets_time_shifted = 0;
    uint64_t passed_through = 0;  // windows with a single payload
    uint64_t distribution_payloads = 0;
    uint64_t count_payloads = 0;
    uint64_t count_groups_shed = 0;  // counts lost to max_count_groups_per_window
    uint64_t live_windows = 0;       // gauge
  };

  static constexpr int64_t kWindowNs = 2'000'000'000;
  static constexpr int64_t kClientBucketNs = 10'000'000'000;
  static constexpr int64_t kOldestWindowNs = 20'000'000'000;

  ClientStatsAggregator(Config config, int64_t now_ns);

  // Adds a prepared payload; returns what must be sent now (distribution-only copies of colliding payloads).
  std::vector<StatsPayload> Add(int64_t now_ns, ClientStatsPayload payload);
  // Call every second: closes the windows that left the aggregation range.
  std::vector<StatsPayload> Flush(int64_t now_ns);
  // Shutdown: closes every window.
  std::vector<StatsPayload> FlushAll();

  const Counters& counters() const { return counters_; }

  // Window start for a timestamp: truncated to 2 s, plus 1 s.
  static int64_t AlignWindow(int64_t ns);

 private:
  struct Counts {
    uint64_t hits = 0, errors = 0, duration = 0;
    ClientGroupedStats key;  // the key fields of the first group seen (counts zero)
  };
  struct Window {
    int64_t ts = 0;
    int n = 0;
    ClientStatsPayload first;
    // payload key → group key → counts
    std::map<std::string, std::pair<ClientStatsPayload, std::map<std::string, Counts>>> agg;
    size_t count_groups = 0;
  };

  void AggregateCounts(Window* w, const ClientStatsPayload& p);
  StatsPayload Wrap(std::vector<ClientStatsPayload> payloads) const;
  std::vector<ClientStatsPayload> Close(Window& w);

  const Config config_;
  int64_t oldest_ts_;
  std::map<int64_t, Window> windows_;  // by window start (ns)
  Counters counters_;
};

}  // namespace dogwatch::trace::stats
