#include "trace-agent/stats/client_stats.h"

#include <utility>

#include "common/strings/strings.h"
#include "trace-agent/stats/aggregation.h"

namespace dogwatch::trace::stats {
namespace {

// Joins key fields with a separator that cannot appear in them unescaped: a string key is simpler than a
// struct with a hash for a path that handles a few thousand groups per 10 s.
void AppendField(std::string* key, std::string_view field) {
  strings::AppendTo(key, field.size(), ":", field, "|");
}

// stats.NewAggregationFromGroup (no Type: the agent does not merge on it either).
std::string DuplicateKey(ClientGroupedStats& g) {
  std::string key;
  AppendField(&key, g.service);
  AppendField(&key, g.name);
  AppendField(&key, g.resource);
  AppendField(&key, g.span_kind);
  AppendField(&key, g.grpc_status_code);
  AppendField(&key, g.http_method);
  AppendField(&key, g.http_endpoint);
  AppendField(&key, g.service_source);
  strings::AppendTo(&key, g.http_status_code, "|", g.synthetics, "|", g.is_trace_root, "|",
                    TagsFnvHash(&g.peer_tags));
  return key;
}

// newBucketAggregationKey: the counts key of the aggregator.
std::string CountsKey(ClientGroupedStats& g, bool peer_tags) {
  std::string key;
  AppendField(&key, g.service);
  AppendField(&key, g.name);
  AppendField(&key, g.span_kind);
  AppendField(&key, g.resource);
  AppendField(&key, g.type);
  AppendField(&key, g.grpc_status_code);
  AppendField(&key, g.http_method);
  AppendField(&key, g.http_endpoint);
  AppendField(&key, g.service_source);
  strings::AppendTo(&key, g.http_status_code, "|", g.synthetics, "|", g.is_trace_root, "|",
                    peer_tags ? TagsFnvHash(&g.peer_tags) : 0);
  return key;
}

std::string PayloadKey(const ClientStatsPayload& p) {
  std::string key;
  AppendField(&key, p.env);
  AppendField(&key, p.hostname);
  AppendField(&key, p.version);
  AppendField(&key, p.container_id);
  AppendField(&key, p.git_commit_sha);
  AppendField(&key, p.image_tag);
  return key;
}

ClientStatsPayload TrimCounts(ClientStatsPayload p) {
  p.agent_aggregation = std::string(kAggregationDistributions);
  for (auto& b : p.stats) {
    for (auto& g : b.stats) {
      g.hits = 0;
      g.errors = 0;
      g.duration = 0;
    }
  }
  return p;
}

}  // namespace

void PrepareClientStats(ClientStatsPayload* p, const ClientStatsContext& ctx) {
  if (!ctx.container_id_stats) {
    p->container_id.clear();
    p->tags.clear();
  } else {
    p->container_id.assign(ctx.container_id);
  }
  if (p->env.empty()) p->env.assign(ctx.agent_env);
  if (ctx.normalize_env) p->env = ctx.normalize_env(p->env);
  if (p->tracer_version.empty()) p->tracer_version.assign(ctx.tracer_version);
  if (p->lang.empty()) p->lang.assign(ctx.lang);
  for (auto& bucket : p->stats) {
    if (ctx.process_group) {
      size_t kept = 0;
      for (size_t i = 0; i < bucket.stats.size(); ++i) {
        if (!ctx.process_group(bucket.stats[i])) continue;
        if (kept != i) bucket.stats[kept] = std::move(bucket.stats[i]);
        ++kept;
      }
      bucket.stats.resize(kept);
    }
    MergeDuplicateGroups(&bucket);
  }
}

void MergeDuplicateGroups(ClientStatsBucket* bucket) {
  std::map<std::string, size_t> first;
  for (size_t i = 0; i < bucket->stats.size(); ++i) {
    auto& g = bucket->stats[i];
    auto [it, inserted] = first.try_emplace(DuplicateKey(g), i);
    if (inserted) continue;
    auto& keep = bucket->stats[it->second];
    keep.hits += g.hits;
    keep.errors += g.errors;
    keep.duration += g.duration;
    g.hits = g.errors = g.duration = 0;
  }
}

ClientStatsAggregator::ClientStatsAggregator(Config config, int64_t now_ns)
    : config_(std::move(config)), oldest_ts_(AlignWindow(now_ns + kWindowNs - kOldestWindowNs)) {}

int64_t ClientStatsAggregator::AlignWindow(int64_t ns) {
  int64_t r = ns % kWindowNs;
  if (r < 0) r += kWindowNs;
  return ns - r + kWindowNs / 2;
}

StatsPayload ClientStatsAggregator::Wrap(std::vector<ClientStatsPayload> payloads) const {
  StatsPayload out;
  out.agent_hostname = config_.agent_hostname;
  out.agent_env = config_.agent_env;
  out.agent_version = config_.agent_version;
  out.client_computed = true;
  out.stats = std::move(payloads);
  return out;
}

void ClientStatsAggregator::AggregateCounts(Window* w, const ClientStatsPayload& p) {
  auto [pit, inserted] = w->agg.try_emplace(PayloadKey(p));
  if (inserted) {
    ClientStatsPayload& head = pit->second.first;
    head.hostname = p.hostname;
    head.env = p.env;
    head.version = p.version;
    head.image_tag = p.image_tag;
    head.git_commit_sha = p.git_commit_sha;
  }
  auto& groups = pit->second.second;
  for (const auto& b : p.stats) {
    for (ClientGroupedStats g : b.stats) {
      std::string key = CountsKey(g, config_.peer_tags_aggregation);
      auto it = groups.find(key);
      if (it == groups.end()) {
        if (w->count_groups >= config_.max_count_groups_per_window) {
          ++counters_.count_groups_shed;
          continue;
        }
        ++w->count_groups;
        Counts c;
        c.key = g;
        c.key.hits = c.key.errors = c.key.duration = c.key.top_level_hits = 0;
        c.key.ok_summary.clear();
        c.key.error_summary.clear();
        if (!config_.peer_tags_aggregation) c.key.peer_tags.clear();
        it = groups.emplace(std::move(key), std::move(c)).first;
      }
      it->second.hits += g.hits;
      it->second.errors += g.errors;
      it->second.duration += g.duration;
    }
  }
}

std::vector<StatsPayload> ClientStatsAggregator::Add(int64_t now_ns, ClientStatsPayload payload) {
  ++counters_.payloads;
  std::vector<StatsPayload> out;
  std::vector<ClientStatsBucket> buckets = std::move(payload.stats);
  payload.stats.clear();
  for (auto& cb : buckets) {
    ++counters_.buckets;
    const int64_t start = static_cast<int64_t>(cb.start);
    int64_t ts;
    bool shifted = true;
    if (start < oldest_ts_) {
      ts = oldest_ts_;
    } else if (start > now_ns) {
      ts = AlignWindow(now_ns);
    } else {
      ts = AlignWindow(start);
      shifted = false;
    }
    if (shifted) {
      ++counters_.buckets_time_shifted;
      cb.agent_time_shift = ts - start;
      cb.start = static_cast<uint64_t>(ts);
    }
    Window& w = windows_[ts];
    w.ts = ts;
    ClientStatsPayload p = payload;  // one bucket per copy, as the agent does
    p.stats.push_back(std::move(cb));
    ++w.n;
    if (w.n == 1) {
      w.first = std::move(p);
      continue;
    }
    std::vector<ClientStatsPayload> now;
    if (w.n == 2) {
      // The first payload of the window goes out now as distributions; from here on counts are summed.
      AggregateCounts(&w, w.first);
      now.push_back(TrimCounts(std::move(w.first)));
      w.first = ClientStatsPayload();
    }
    AggregateCounts(&w, p);
    now.push_back(TrimCounts(std::move(p)));
    counters_.distribution_payloads += now.size();
    out.push_back(Wrap(std::move(now)));
  }
  counters_.live_windows = windows_.size();
  return out;
}

std::vector<ClientStatsPayload> ClientStatsAggregator::Close(Window& w) {
  std::vector<ClientStatsPayload> out;
  if (w.n == 1) {
    ++counters_.passed_through;
    out.push_back(std::move(w.first));
    return out;
  }
  for (auto& [pkey, entry] : w.agg) {
    auto& [head, groups] = entry;
    ClientStatsBucket b;
    b.start = static_cast<uint64_t>(w.ts);
    b.duration = kClientBucketNs;  // as the agent reports counts windows
    b.stats.reserve(groups.size());
    for (auto& [gkey, counts] : groups) {
      ClientGroupedStats g = std::move(counts.key);
      g.hits = counts.hits;
      g.errors = counts.errors;
      g.duration = counts.duration;
      b.stats.push_back(std::move(g));
    }
    ClientStatsPayload p = std::move(head);
    p.agent_aggregation = std::string(kAggregationCounts);
    p.stats.push_back(std::move(b));
    out.push_back(std::move(p));
    ++counters_.count_payloads;
  }
  return out;
}

std::vector<StatsPayload> ClientStatsAggregator::Flush(int64_t now_ns) {
  const int64_t flush_ts = AlignWindow(now_ns + kWindowNs - kOldestWindowNs);
  std::vector<StatsPayload> out;
  for (auto it = windows_.begin(); it != windows_.end() && it->first < flush_ts;) {
    auto payloads = Close(it->second);
    if (!payloads.empty()) out.push_back(Wrap(std::move(payloads)));
    it = windows_.erase(it);
  }
  oldest_ts_ = flush_ts;
  counters_.live_windows = windows_.size();
  return out;
}

std::vector<StatsPayload> ClientStatsAggregator::FlushAll() {
  std::vector<StatsPayload> out;
  for (auto& [ts, w] : windows_) {
    auto payloads = Close(w);
    if (!payloads.empty()) out.push_back(Wrap(std::move(payloads)));
  }
  windows_.clear();
  counters_.live_windows = 0;
  return out;
}

}  // namespace dogwatch::trace::stats
