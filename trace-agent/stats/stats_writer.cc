#include "trace-agent/stats/stats_writer.h"

#include <map>
#include <utility>

#include "common/compression/compression.h"

namespace dogwatch::trace::stats {
namespace {

struct SizedClientPayload {
  ClientStatsPayload payload;
  size_t entries = 0;
};

void SplitClientPayload(ClientStatsPayload p, size_t max_entries, std::vector<SizedClientPayload>* out) {
  if (p.stats.empty()) return;
  const size_t entries = CountEntries(p);
  if (max_entries == 0 || entries < max_entries) {
    out->push_back({std::move(p), entries});
    return;
  }
  const size_t parts = (entries + max_entries - 1) / max_entries;
  std::vector<SizedClientPayload> split(parts);
  std::vector<std::map<std::pair<uint64_t, uint64_t>, size_t>> bucket_index(parts);
  for (auto& s : split) {
    // Every field but the buckets is copied (the agent drops git_commit_sha / image_tag / process tags
    // here; keeping them is what the backend expects of an unsplit payload).
    ClientStatsPayload& c = s.payload;
    c.hostname = p.hostname;
    c.env = p.env;
    c.version = p.version;
    c.lang = p.lang;
    c.tracer_version = p.tracer_version;
    c.runtime_id = p.runtime_id;
    c.sequence = p.sequence;
    c.agent_aggregation = p.agent_aggregation;
    c.service = p.service;
    c.container_id = p.container_id;
    c.tags = p.tags;
    c.git_commit_sha = p.git_commit_sha;
    c.image_tag = p.image_tag;
    c.process_tags_hash = p.process_tags_hash;
    c.process_tags = p.process_tags;
  }
  size_t i = 0;
  for (auto& b : p.stats) {
    const std::pair<uint64_t, uint64_t> window{b.start, b.duration};
    for (auto& g : b.stats) {
      const size_t j = i % parts;
      auto [it, inserted] = bucket_index[j].try_emplace(window, split[j].payload.stats.size());
      if (inserted) {
        ClientStatsBucket nb;
        nb.start = b.start;
        nb.duration = b.duration;
        nb.agent_time_shift = b.agent_time_shift;
        split[j].payload.stats.push_back(std::move(nb));
      }
      split[j].payload.stats[it->second].stats.push_back(std::move(g));
      ++split[j].entries;
      ++i;
    }
  }
  for (auto& s : split) out->push_back(std::move(s));
}

}  // namespace

std::vector<StatsPayload> SplitStatsPayload(StatsPayload payload, size_t max_entries) {
  std::vector<SizedClientPayload> parts;
  for (auto& c : payload.stats) SplitClientPayload(std::move(c), max_entries, &parts);

  auto fresh = [&payload] {
    StatsPayload p;
    p.agent_hostname = payload.agent_hostname;
    p.agent_env = payload.agent_env;
    p.agent_version = payload.agent_version;
    p.client_computed = payload.client_computed;
    return p;
  };
  std::vector<StatsPayload> grouped;
  StatsPayload current = fresh();
  size_t entries = 0;
  for (auto& part : parts) {
    if (entries + part.entries > max_entries && max_entries > 0 && !current.stats.empty()) {
      grouped.push_back(std::move(current));
      current = fresh();
      entries = 0;
    }
    entries += part.entries;
    if (part.payload.container_id.empty()) part.payload.tags.clear();
    current.stats.push_back(std::move(part.payload));
  }
  if (entries > 0) grouped.push_back(std::move(current));
  if (grouped.size() > 1) {
    for (auto& g : grouped) g.split_payload = true;
  }
  return grouped;
}

absl::StatusOr<std::string> EncodeStatsRequestBody(const StatsPayload& payload) {
  std::string msgpack;
  EncodeStatsPayload(payload, &msgpack);
  return compression::GzipCompress(msgpack, 1);
}

absl::StatusOr<std::vector<std::string>> BuildStatsRequests(StatsPayload payload, size_t max_entries) {
  std::vector<std::string> bodies;
  for (const auto& p : SplitStatsPayload(std::move(payload), max_entries)) {
    auto body = EncodeStatsRequestBody(p);
    if (!body.ok()) return body.status();
    bodies.push_back(std::move(*body));
  }
  return bodies;
}

}  // namespace dogwatch::trace::stats
