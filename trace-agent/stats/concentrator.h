#pragma once
// The stats concentrator: turns processed trace chunks into APM stats (hits, errors, top-level hits,
// duration, latency sketches) per aggregation key and 10 s bucket, as the Datadog trace-agent does
// (pkg/trace/stats/concentrator.go, span_concentrator.go, statsraw.go; reimplemented).
//
// Which spans count: `_top_level` (or the tracer's `_dd.top_level`), `_dd.measured`, or, with
// compute_stats_by_span_kind, span.kind in {server, consumer, client, producer}; never partial snapshots
// (`_dd.partial_version` >= 0).
//
// Buckets: a span goes to the bucket of its END time (start + duration) aligned down to the bucket size.
// Flush(now) emits the buckets that started at or before now − buffer_len × bucket size (buffer_len = 2:
// the current and previous bucket stay open for late spans), then moves the oldest accepted bucket to
// align(now) − (buffer_len − 1) × bucket size: later spans that would land in an already flushed bucket
// are folded into that oldest open bucket. Flush(now, /*force=*/true) emits everything (shutdown).
//
// Counts are weighted by 1 / the root's `_sample_rate` and rounded stochastically on export, so the sum
// over many flushes is unbiased. Durations go into the OK or error DDSketch with their mantissa cut to
// 10 bits, like the agent.
//
// Bounded: at most `max_groups_per_bucket` aggregation keys per bucket and `max_buckets` open buckets;
// spans beyond are dropped and counted (see Counters). Thread-safe: Add and Flush may run concurrently.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "trace-agent/model/span.h"
#include "trace-agent/stats/aggregation.h"
#include "trace-agent/stats/peer_tag_cache.h"
#include "trace-agent/stats/stats_payload.h"

namespace dogwatch::trace::stats {

struct ConcentratorConfig {
  int64_t bucket_interval_ns = 10'000'000'000;  // apm_config.bucket_size_seconds (agent: fixed 10 s)
  int buffer_len = 2;                           // buckets kept open before flushing (agent: 2)
  bool compute_stats_by_span_kind = true;       // apm_config.compute_stats_by_span_kind
  bool peer_tags_aggregation = true;            // apm_config.peer_tags_aggregation
  std::vector<std::string> peer_tags;           // apm_config.peer_tags: keys added to the defaults
  bool http_endpoint_stats = true;  // key on http.method and http.endpoint (else http.route), as tracers do
  bool container_id_stats = true;   // false = feature "disable_cid_stats"
  bool process_stats = true;        // false = feature "disable_process_stats"
  std::string agent_env = "none";   // env when the payload has none
  std::string agent_hostname;       // hostname when the payload has none
  std::string agent_version;
  size_t max_groups_per_bucket = 100000;  // aggregation keys in one bucket; more are shed
  size_t max_buckets = 32;                // open buckets (future timestamps create new ones); see Counters
  uint64_t rounding_seed = 0;             // stochastic rounding of weighted counts (tests: fixed)
  PeerTagSetCache::Limits peer_tag_sets;  // distinct peer tag sets formatted once (see peer_tag_cache.h)
};

// What a chunk's stats are keyed by besides the span itself: the TracerPayload's fields, filled by the
// pipeline (env/hostname/version from the root when the payload had none).
struct PayloadInfo {
  std::string_view env;
  std::string_view hostname;
  std::string_view app_version;
  std::string_view container_id;
  std::string_view lang;
  std::string_view git_commit_sha;
  std::string_view image_tag;
  std::string_view process_tags;                // comma-separated
  std::span<const std::string> container_tags;  // resolved for container_id, sent as ClientStatsPayload.tags
};

class Concentrator {
 public:
  struct Counters {
    uint64_t spans_counted = 0;          // spans that went into a group
    uint64_t spans_ineligible = 0;       // not top-level / measured / eligible kind, or partial
    uint64_t spans_shed_groups = 0;      // dropped: bucket already at max_groups_per_bucket
    uint64_t spans_shed_buckets = 0;     // dropped: max_buckets open buckets, all earlier than the span's
    uint64_t buckets_evicted = 0;        // latest (future) bucket dropped to make room for an earlier one
    uint64_t spans_late = 0;             // folded into the oldest open bucket
    uint64_t sketch_values_refused = 0;  // duration outside the sketch range (never in practice)
    uint64_t buckets_flushed = 0;
    uint64_t groups_flushed = 0;
    uint64_t live_groups = 0;   // gauge
    uint64_t live_buckets = 0;  // gauge
    PeerTagSetCache::Counters peer_tag_sets;
  };

  Concentrator(ConcentratorConfig config, int64_t now_ns);
  ~Concentrator();
  Concentrator(const Concentrator&) = delete;
  Concentrator& operator=(const Concentrator&) = delete;

  // Adds the eligible spans of one processed chunk. `root` (may be null) gives the sample-rate weight.
  void AddChunk(const PayloadInfo& info, const TraceChunk& chunk, const Span* root);
  // Adds every chunk of a processed payload (roots found as the agent does).
  void AddPayload(const TracerPayload& payload, std::span<const std::string> container_tags = {});

  // Emits the buckets old enough (all of them with `force`). The payload carries the agent's hostname,
  // env and version; an empty `stats` means nothing to send.
  StatsPayload Flush(int64_t now_ns, bool force);

  Counters counters() const;
  const std::vector<std::string>& peer_tag_keys() const { return peer_tag_keys_; }

 private:
  struct Bucket;
  struct PayloadGroups;
  struct GroupMemo;

  // The bucket starting at `btime`, created if needed; nullptr when refused (max_buckets).
  Bucket* BucketFor(int64_t btime);

  const ConcentratorConfig config_;
  const std::vector<std::string> peer_tag_keys_;
  const PeerTagMatcher peer_matcher_;
  mutable std::mutex mu_;  // buckets_, oldest_ts_, counters_
  std::mutex flush_mu_;    // one Flush at a time; guards rng_
  int64_t oldest_ts_;
  std::map<int64_t, std::unique_ptr<Bucket>> buckets_;
  std::mt19937_64 rng_;
  Counters counters_;
  PeerTagSetCache peer_tag_cache_;             // guarded by mu_
  std::vector<PeerTagMatch> scratch_matches_;  // raw peer tags of the span being added (reused)
  // The groups most recently found, so that a span of a recent group skips hashing its key (the long SQL
  // resource above all). Valid while groups_generation_ is unchanged: any insertion into the bucket or
  // group maps, and any flush, may move or free what an entry points to.
  std::unique_ptr<GroupMemo[]> memo_;
  uint64_t groups_generation_ = 1;
};

}  // namespace dogwatch::trace::stats
