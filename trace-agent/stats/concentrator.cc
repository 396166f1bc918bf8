#include "trace-agent/stats/concentrator.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "common/sketch/ddsketch.h"
#include "trace-agent/stats/aggregation.h"
#include "trace-agent/stats/span_util.h"

namespace dogwatch::trace::stats {
namespace {

using sketch::DDSketch;

absl::string_view A(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// ---- aggregation keys: owned (stored in maps) and borrowed (built per span, no allocation) ----

struct GroupKeyView {
  std::string_view service, name, resource, type, span_kind, grpc_status_code, http_method, http_endpoint,
      service_source;
  uint32_t http_status_code = 0;
  bool synthetics = false;
  int32_t is_trace_root = 0;
  uint64_t peer_tags_hash = 0;
};

struct GroupKey {
  std::string service, name, resource, type, span_kind, grpc_status_code, http_method, http_endpoint,
      service_source;
  uint32_t http_status_code = 0;
  bool synthetics = false;
  int32_t is_trace_root = 0;
  uint64_t peer_tags_hash = 0;

  explicit GroupKey(const GroupKeyView& v)
      : service(v.service),
        name(v.name),
        resource(v.resource),
        type(v.type),
        span_kind(v.span_kind),
        grpc_status_code(v.grpc_status_code),
        http_method(v.http_method),
        http_endpoint(v.http_endpoint),
        service_source(v.service_source),
        http_status_code(v.http_status_code),
        synthetics(v.synthetics),
        is_trace_root(v.is_trace_root),
        peer_tags_hash(v.peer_tags_hash) {}

  GroupKeyView View() const {
    return {service,          name,          resource,      type,           span_kind,
            grpc_status_code, http_method,   http_endpoint, service_source, http_status_code,
            synthetics,       is_trace_root, peer_tags_hash};
  }
};

struct GroupKeyHash {
  using is_transparent = void;
  size_t operator()(const GroupKeyView& k) const {
    return absl::Hash<std::tuple<absl::string_view, absl::string_view, absl::string_view, absl::string_view,
                                 absl::string_view, absl::string_view, absl::string_view, absl::string_view,
                                 absl::string_view, uint32_t, bool, int32_t, uint64_t>>{}(
        std::make_tuple(A(k.service), A(k.name), A(k.resource), A(k.type), A(k.span_kind),
                        A(k.grpc_status_code), A(k.http_method), A(k.http_endpoint), A(k.service_source),
                        k.http_status_code, k.synthetics, k.is_trace_root, k.peer_tags_hash));
  }
  size_t operator()(const GroupKey& k) const { return (*this)(k.View()); }
};

struct GroupKeyEq {
  using is_transparent = void;
  static bool Eq(const GroupKeyView& a, const GroupKeyView& b) {
    return a.http_status_code == b.http_status_code && a.synthetics == b.synthetics &&
           a.is_trace_root == b.is_trace_root && a.peer_tags_hash == b.peer_tags_hash &&
           a.resource == b.resource && a.name == b.name && a.service == b.service && a.type == b.type &&
           a.span_kind == b.span_kind && a.grpc_status_code == b.grpc_status_code &&
           a.http_method == b.http_method && a.http_endpoint == b.http_endpoint &&
           a.service_source == b.service_source;
  }
  bool operator()(const GroupKey& a, const GroupKey& b) const { return Eq(a.View(), b.View()); }
  bool operator()(const GroupKey& a, const GroupKeyView& b) const { return Eq(a.View(), b); }
  bool operator()(const GroupKeyView& a, const GroupKey& b) const { return Eq(a, b.View()); }
};

struct PayloadKeyView {
  std::string_view env, hostname, version, container_id, git_commit_sha, image_tag, lang;
  uint64_t process_tags_hash = 0;
};

struct PayloadKey {
  std::string env, hostname, version, container_id, git_commit_sha, image_tag, lang;
  uint64_t process_tags_hash = 0;

  explicit PayloadKey(const PayloadKeyView& v)
      : env(v.env),
        hostname(v.hostname),
        version(v.version),
        container_id(v.container_id),
        git_commit_sha(v.git_commit_sha),
        image_tag(v.image_tag),
        lang(v.lang),
        process_tags_hash(v.process_tags_hash) {}
  PayloadKeyView View() const {
    return {env, hostname, version, container_id, git_commit_sha, image_tag, lang, process_tags_hash};
  }
};

struct PayloadKeyHash {
  using is_transparent = void;
  size_t operator()(const PayloadKeyView& k) const {
    return absl::Hash<std::tuple<absl::string_view, absl::string_view, absl::string_view, absl::string_view,
                                 absl::string_view, absl::string_view, absl::string_view, uint64_t>>{}(
        std::make_tuple(A(k.env), A(k.hostname), A(k.version), A(k.container_id), A(k.git_commit_sha),
                        A(k.image_tag), A(k.lang), k.process_tags_hash));
  }
  size_t operator()(const PayloadKey& k) const { return (*this)(k.View()); }
};

struct PayloadKeyEq {
  using is_transparent = void;
  static bool Eq(const PayloadKeyView& a, const PayloadKeyView& b) {
    return a.process_tags_hash == b.process_tags_hash && a.env == b.env && a.hostname == b.hostname &&
           a.version == b.version && a.container_id == b.container_id &&
           a.git_commit_sha == b.git_commit_sha && a.image_tag == b.image_tag && a.lang == b.lang;
  }
  bool operator()(const PayloadKey& a, const PayloadKey& b) const { return Eq(a.View(), b.View()); }
  bool operator()(const PayloadKey& a, const PayloadKeyView& b) const { return Eq(a.View(), b); }
  bool operator()(const PayloadKeyView& a, const PayloadKey& b) const { return Eq(a, b.View()); }
};

struct GroupStats {
  // Doubles: weights are fractional, and summing them as floats avoids accumulating rounding.
  double hits = 0;
  double top_level_hits = 0;
  double errors = 0;
  double duration = 0;
  std::unique_ptr<DDSketch> ok;   // allocated on the first OK span
  std::unique_ptr<DDSketch> err;  // allocated on the first error span
  std::vector<std::string> peer_tags;
};

const std::string& EmptySketchBytes() {
  static const std::string* bytes = new std::string(DDSketch().Encode());
  return *bytes;
}

int64_t SpanEnd(const Span& s) {
  int64_t end;
  if (__builtin_add_overflow(s.start, s.duration, &end)) return std::numeric_limits<int64_t>::max();
  return end;
}

int64_t AlignDown(int64_t ts, int64_t size) { return ts - ts % size; }

constexpr size_t kMemoSlots = 64;

// The memo slot of a key: a cheap mix of what usually tells groups apart (lengths, the resource's first and
// last 8 bytes, the numbers) instead of a hash over every byte. A collision only costs a memo miss.
size_t MemoSlot(const GroupKeyView& k) {
  uint64_t head = 0;
  uint64_t tail = 0;
  const std::string_view r = k.resource;
  if (r.size() >= 8) {
    std::memcpy(&head, r.data(), 8);
    std::memcpy(&tail, r.data() + r.size() - 8, 8);
  } else if (!r.empty()) {
    std::memcpy(&head, r.data(), r.size());
  }
  uint64_t h = (head * 0x9e3779b97f4a7c15ull) ^ (tail * 0xc2b2ae3d27d4eb4full) ^ k.peer_tags_hash;
  h ^= (r.size() << 32) ^ (k.name.size() << 16) ^ (k.service.size() << 8) ^ k.span_kind.size();
  h ^= (uint64_t{k.http_status_code} << 40) ^ (static_cast<uint64_t>(k.is_trace_root) << 60) ^
       (uint64_t{k.synthetics} << 61) ^ (k.grpc_status_code.size() << 48) ^ (k.http_endpoint.size() << 24);
  h *= 0xff51afd7ed558ccdull;
  return static_cast<size_t>(h >> 58) & (kMemoSlots - 1);
}

}  // namespace

struct Concentrator::PayloadGroups {
  absl::flat_hash_map<GroupKey, GroupStats, GroupKeyHash, GroupKeyEq> groups;
  std::vector<std::string> container_tags;
  std::string process_tags;
};

struct Concentrator::GroupMemo {
  uint64_t generation = 0;  // Concentrator::groups_generation_ when stored (never 0)
  const PayloadGroups* groups = nullptr;
  const GroupKey* key = nullptr;
  GroupStats* stats = nullptr;
};

struct Concentrator::Bucket {
  int64_t start = 0;
  size_t group_count = 0;
  absl::flat_hash_map<PayloadKey, PayloadGroups, PayloadKeyHash, PayloadKeyEq> payloads;
};

Concentrator::Concentrator(ConcentratorConfig config, int64_t now_ns)
    : config_(std::move(config)),
      peer_tag_keys_(ConfiguredPeerTagKeys(config_.peer_tags_aggregation, config_.peer_tags)),
      peer_matcher_(peer_tag_keys_),
      oldest_ts_(AlignDown(now_ns, config_.bucket_interval_ns > 0 ? config_.bucket_interval_ns : 1)),
      rng_(config_.rounding_seed),
      peer_tag_cache_(&peer_matcher_, config_.peer_tag_sets),
      memo_(std::make_unique<GroupMemo[]>(kMemoSlots)) {}

Concentrator::~Concentrator() = default;

Concentrator::Bucket* Concentrator::BucketFor(int64_t btime) {
  auto it = buckets_.find(btime);
  if (it != buckets_.end()) return it->second.get();
  if (buckets_.size() >= config_.max_buckets) {
    // Full: a bucket later than every open one is refused; an earlier one (current traffic) evicts the
    // latest, so spans stamped far in the future cannot starve the present.
    if (buckets_.empty() || btime > std::prev(buckets_.end())->first) return nullptr;
    auto latest = std::prev(buckets_.end());
    counters_.live_groups -= latest->second->group_count;
    ++counters_.buckets_evicted;
    buckets_.erase(latest);
    ++groups_generation_;
  }
  auto b = std::make_unique<Bucket>();
  b->start = btime;
  Bucket* ptr = b.get();
  buckets_.emplace(btime, std::move(b));
  return ptr;
}

void Concentrator::AddChunk(const PayloadInfo& info, const TraceChunk& chunk, const Span* root) {
  const int64_t bsize = config_.bucket_interval_ns > 0 ? config_.bucket_interval_ns : 1;
  const bool synthetics = std::string_view(chunk.origin).starts_with("synthetics");
  const double weight = Weight(root);
  const uint64_t process_hash = config_.process_stats ? ProcessTagsHash(info.process_tags) : 0;
  const PayloadKeyView pkey{info.env.empty() ? std::string_view(config_.agent_env) : info.env,
                            info.hostname.empty() ? std::string_view(config_.agent_hostname) : info.hostname,
                            info.app_version,
                            config_.container_id_stats ? info.container_id : std::string_view(),
                            info.git_commit_sha,
                            info.image_tag,
                            info.lang,
                            process_hash};
  std::lock_guard<std::mutex> lock(mu_);
  Bucket* last_bucket = nullptr;
  PayloadGroups* groups = nullptr;
  StatsSpanFields f;
  GrpcCodeBuffer grpc_buf;
  for (const Span& s : chunk.spans) {
    ScanStatsFields(s, &f);
    const bool eligible_kind = config_.compute_stats_by_span_kind && IsStatsSpanKind(f.span_kind);
    if (!(f.top_level || f.measured || eligible_kind) || f.partial) {
      ++counters_.spans_ineligible;
      continue;
    }
    int64_t btime = AlignDown(SpanEnd(s), bsize);
    if (btime < oldest_ts_) {
      btime = oldest_ts_;
      ++counters_.spans_late;
    }
    if (!last_bucket || last_bucket->start != btime) {
      Bucket* b = BucketFor(btime);
      if (!b) {
        ++counters_.spans_shed_buckets;
        continue;
      }
      last_bucket = b;
      auto it = b->payloads.find(pkey);
      if (it == b->payloads.end()) {
        it = b->payloads.try_emplace(PayloadKey(pkey)).first;
        ++groups_generation_;  // the map may have moved every PayloadGroups
        if (!pkey.container_id.empty()) {
          it->second.container_tags.assign(info.container_tags.begin(), info.container_tags.end());
        }
        if (process_hash != 0) it->second.process_tags.assign(info.process_tags);
      }
      groups = &it->second;
    }

    const size_t n_peer = peer_matcher_.MatchRaw(s, f, &scratch_matches_);
    const PeerTagSetCache::Tags peer =
        peer_tag_cache_.Get(std::span<const PeerTagMatch>(scratch_matches_.data(), n_peer));
    std::string_view method, endpoint;
    if (config_.http_endpoint_stats) {
      method = f.http_method;
      endpoint = f.http_endpoint.empty() ? f.http_route : f.http_endpoint;
    }
    const std::string_view grpc = GrpcStatusCode(f, &grpc_buf);
    const GroupKeyView key{s.service,        s.name,
                           s.resource,       s.type,
                           f.span_kind,      grpc,
                           method,           endpoint,
                           f.service_source, HttpStatusCode(f),
                           synthetics,       s.parent_id == 0 ? kTraceRootTrue : kTraceRootFalse,
                           peer.hash};
    GroupMemo& memo = memo_[MemoSlot(key)];
    GroupStats* found = nullptr;
    if (memo.generation == groups_generation_ && memo.groups == groups &&
        GroupKeyEq::Eq(memo.key->View(), key)) {
      found = memo.stats;
    } else {
      auto git = groups->groups.find(key);
      if (git == groups->groups.end()) {
        if (last_bucket->group_count >= config_.max_groups_per_bucket) {
          ++counters_.spans_shed_groups;
          continue;
        }
        git = groups->groups.try_emplace(GroupKey(key)).first;
        ++groups_generation_;  // the map may have moved every group
        git->second.peer_tags.assign(peer.tags.begin(), peer.tags.end());
        ++last_bucket->group_count;
        ++counters_.live_groups;
      }
      memo = GroupMemo{groups_generation_, groups, &git->first, &git->second};
      found = &git->second;
    }
    GroupStats& g = *found;
    g.hits += weight;
    if (f.top_level) g.top_level_hits += weight;
    if (s.error != 0) g.errors += weight;
    g.duration += static_cast<double>(s.duration) * weight;
    // Distributions are not weighted (as in the agent): they describe the sampled spans' latencies.
    auto& sk = s.error != 0 ? g.err : g.ok;
    if (!sk) sk = std::make_unique<DDSketch>();
    if (!sk->Add(TruncateDuration(s.duration))) ++counters_.sketch_values_refused;
    ++counters_.spans_counted;
  }
  counters_.live_buckets = buckets_.size();
}

void Concentrator::AddPayload(const TracerPayload& payload, std::span<const std::string> container_tags) {
  const PayloadInfo info{
      payload.env, payload.hostname, payload.app_version, payload.container_id, payload.language_name, "", "",
      "",          container_tags};
  for (const auto& chunk : payload.chunks) AddChunk(info, chunk, FindRoot(chunk));
}

StatsPayload Concentrator::Flush(int64_t now_ns, bool force) {
  const int64_t bsize = config_.bucket_interval_ns > 0 ? config_.bucket_interval_ns : 1;
  // One flush at a time: rng_ and the export below belong to the flusher; mu_ only guards the buckets,
  // so Add keeps running while a flush encodes sketches.
  std::lock_guard<std::mutex> flush_lock(flush_mu_);
  std::vector<std::unique_ptr<Bucket>> ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      // Keep buffer_len buckets (current and previous): late spans still have somewhere to go.
      if (!force && it->first > now_ns - int64_t{config_.buffer_len} * bsize) {
        ++it;
        continue;
      }
      ready.push_back(std::move(it->second));
      it = buckets_.erase(it);
    }
    // Spans that would fall into a flushed bucket now go to the oldest open one.
    if (!ready.empty()) ++groups_generation_;  // the memo may point into the buckets taken
    peer_tag_cache_.ResetIfFull();
    const int64_t new_oldest = AlignDown(now_ns, bsize) - int64_t{config_.buffer_len - 1} * bsize;
    if (new_oldest > oldest_ts_) oldest_ts_ = new_oldest;
    for (const auto& b : ready) counters_.live_groups -= b->group_count;
    counters_.live_buckets = buckets_.size();
    counters_.buckets_flushed += ready.size();
  }

  // Export outside the lock: sketch encoding and rounding are the expensive part.
  StatsPayload out;
  out.agent_hostname = config_.agent_hostname;
  out.agent_env = config_.agent_env;
  out.agent_version = config_.agent_version;
  absl::flat_hash_map<PayloadKey, size_t, PayloadKeyHash, PayloadKeyEq> index;
  std::uniform_real_distribution<double> unit(0, 1);
  uint64_t groups_flushed = 0;
  auto round = [&](double f) -> uint64_t {
    if (!(f > 0)) return 0;
    const double floor = std::floor(f);
    uint64_t i = static_cast<uint64_t>(floor);
    // Unbiased: round up with probability equal to the fractional part.
    if (f > floor && unit(rng_) < f - floor) ++i;
    return i;
  };
  for (auto& bucket : ready) {
    for (auto& [pkey, pg] : bucket->payloads) {
      auto [slot, inserted] = index.try_emplace(pkey, out.stats.size());
      if (inserted) {
        ClientStatsPayload p;
        p.hostname = pkey.hostname;
        p.env = pkey.env;
        p.version = pkey.version;
        p.container_id = pkey.container_id;
        p.git_commit_sha = pkey.git_commit_sha;
        p.image_tag = pkey.image_tag;
        p.lang = pkey.lang;
        p.process_tags_hash = pkey.process_tags_hash;
        p.process_tags = pg.process_tags;
        if (!pkey.container_id.empty()) p.tags = pg.container_tags;
        out.stats.push_back(std::move(p));
      }
      ClientStatsBucket cb;
      cb.start = static_cast<uint64_t>(bucket->start);
      cb.duration = static_cast<uint64_t>(bsize);
      cb.stats.reserve(pg.groups.size());
      for (auto& [key, g] : pg.groups) {
        ClientGroupedStats gs;
        gs.service = key.service;
        gs.name = key.name;
        gs.resource = key.resource;
        gs.http_status_code = key.http_status_code;
        gs.type = key.type;
        gs.span_kind = key.span_kind;
        gs.synthetics = key.synthetics;
        gs.is_trace_root = key.is_trace_root;
        gs.grpc_status_code = key.grpc_status_code;
        gs.http_method = key.http_method;
        gs.http_endpoint = key.http_endpoint;
        gs.service_source = key.service_source;
        gs.peer_tags = std::move(g.peer_tags);
        gs.hits = round(g.hits);
        gs.errors = round(g.errors);
        gs.duration = round(g.duration);
        gs.top_level_hits = round(g.top_level_hits);
        gs.ok_summary = g.ok ? g.ok->Encode() : EmptySketchBytes();
        gs.error_summary = g.err ? g.err->Encode() : EmptySketchBytes();
        cb.stats.push_back(std::move(gs));
        ++groups_flushed;
      }
      out.stats[slot->second].stats.push_back(std::move(cb));
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    counters_.groups_flushed += groups_flushed;
  }
  return out;
}

Concentrator::Counters Concentrator::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  Counters out = counters_;
  out.peer_tag_sets = peer_tag_cache_.counters();
  return out;
}

}  // namespace dogwatch::trace::stats
