#include "trace-agent/stats/sampler.h"

#include <algorithm>
#include <chrono>
#include <list>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "common/strings/strings.h"
#include "trace-agent/stats/sampler_core.h"

namespace dogwatch::trace::sampler {
namespace {

constexpr std::string_view kAgentRateKey = "_dd.agent_psr";
constexpr std::string_view kRuleRateKey = "_dd.rule_psr";
constexpr std::string_view kDeprecatedRateKey = "_sampling_priority_rate_v1";
constexpr std::string_view kErrorsRateKey = "_dd.errors_sr";
constexpr std::string_view kNoPriorityRateKey = "_dd.no_p_sr";
constexpr std::string_view kRareKey = "_dd.rare";
constexpr std::string_view kSpanSamplingMechanismKey = "_dd.span_sampling.mechanism";
constexpr std::string_view kHasExceptionKey = "_dd.span_events.has_exception";
constexpr std::string_view kErrorTrackingStandaloneTag = "_dd.error_tracking_standalone.error";

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kPriorityTtlNs = 10 * 60 * kSecond;  // priority traffic suppresses rare sampling this long
constexpr int64_t kTtlRenewalNs = 60 * kSecond;        // don't rewrite an expiry less than this newer
constexpr double kRareBurst = 50;
// Score samplers spread new signatures over this many slots once they track half of it.
constexpr Signature kShrinkCardinality = 200;

int64_t SystemNow() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool HasMetric(const Span& s, std::string_view key) { return Find(s.metrics, key) != nullptr; }

bool IsTopLevelOrMeasured(const Span& s) {
  const double* top = Find(s.metrics, kTopLevelKey);
  const double* tracer_top = Find(s.metrics, "_dd.top_level");
  const double* measured = Find(s.metrics, kMeasuredKey);
  return (top && *top == 1) || (tracer_top && *tracer_top == 1) || (measured && *measured == 1);
}

bool ContainsError(const std::vector<Span>& spans, bool consider_exception_events) {
  for (const auto& s : spans) {
    if (s.error != 0) return true;
    if (consider_exception_events) {
      const SpanString* v = Find(s.meta, kHasExceptionKey);
      if (v && *v == "true") return true;
    }
  }
  return false;
}

// The priority sampler: tracer decisions, plus the (service, env) rates fed back to tracers.
class PrioritySampler {
 public:
  explicit PrioritySampler(const SamplerConfig& c)
      : agent_env_(c.agent_env),
        core_(c.extra_sample_rate, c.target_tps, c.max_signatures),
        max_entries_(c.max_catalog_entries > 0 ? c.max_catalog_entries : 5000) {}

  bool Sample(int64_t now, const TraceChunk& chunk, int32_t priority, Span* root, std::string_view tracer_env,
              double client_dropped_weight) {
    if (chunk.spans.empty() || !root) return false;
    const bool sampled = priority > 0;
    // Only automatic decisions (P0, P1) feed the rates: user decisions are not the agent's to steer.
    if (priority < 0 || priority > 1) return sampled;
    const std::string_view env = tracer_env.empty() ? std::string_view(agent_env_) : tracer_env;
    const Signature sig = Register(root->service, env);
    const float weight = WeightRoot(root) + static_cast<float>(client_dropped_weight);
    if (core_.CountWeightedSig(now, sig, weight)) RefreshRates();
    if (sampled) ApplyRate(root, sig);
    return sampled;
  }

  void Tick(int64_t now) {
    if (core_.Tick(now)) RefreshRates();
  }

  const std::map<std::string, double>& rates() const { return rate_by_service_; }
  uint64_t version() const { return version_; }
  uint64_t evictions() const { return evictions_; }
  uint64_t shed() const { return core_.signatures_shed(); }
  void SetTargetTps(double tps) {
    core_.SetTargetTps(tps);
    RefreshRates();
  }

 private:
  struct Entry {
    std::string service, env;
    Signature sig;
  };

  // "service\0env": one string key, looked up through a reused buffer (no allocation per chunk).
  static void MakeKey(std::string_view service, std::string_view env, std::string* key) {
    key->assign(service);
    key->push_back('\0');
    key->append(env);
  }

  Signature Register(std::string_view service, std::string_view env) {
    // LRU catalog of (service, env): bounded like the agent's (5000 by default).
    MakeKey(service, env, &scratch_key_);
    auto it = index_.find(scratch_key_);
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->sig;
    }
    lru_.push_front(Entry{std::string(service), std::string(env), ServiceSignature(service, env)});
    index_.emplace(scratch_key_, lru_.begin());
    if (lru_.size() > max_entries_) {
      MakeKey(lru_.back().service, lru_.back().env, &scratch_key_);
      index_.erase(scratch_key_);
      lru_.pop_back();
      ++evictions_;
    }
    return lru_.front().sig;
  }

  void ApplyRate(Span* root, Signature sig) {
    if (root->parent_id != 0) return;  // only real roots carry the rate
    // Recent tracers record the rate they applied; keep theirs.
    if (HasMetric(*root, kAgentRateKey) || HasMetric(*root, kRuleRateKey) ||
        HasMetric(*root, kDeprecatedRateKey)) {
      return;
    }
    SetStaticKey(root->metrics, kDeprecatedRateKey, core_.SignatureRate(sig));
  }

  void RefreshRates() {
    double default_rate = 0;
    const auto local = core_.AllRates(&default_rate);
    absl::flat_hash_map<Signature, double> by_sig(local.begin(), local.end());
    std::map<std::string, double> rbs;
    for (auto it = lru_.begin(); it != lru_.end();) {
      auto rate = by_sig.find(it->sig);
      if (rate == by_sig.end()) {
        // The signature left the sampler (no traffic): forget it here too.
        MakeKey(it->service, it->env, &scratch_key_);
        index_.erase(scratch_key_);
        it = lru_.erase(it);
        continue;
      }
      rbs[strings::Cat("service:", it->service, ",env:", it->env)] = rate->second;
      if (it->env == agent_env_) rbs[strings::Cat("service:", it->service, ",env:")] = rate->second;
      ++it;
    }
    rbs["service:,env:"] = default_rate;
    if (rbs != rate_by_service_) {
      rate_by_service_ = std::move(rbs);
      ++version_;
    }
  }

  std::string agent_env_;
  CoreSampler core_;
  size_t max_entries_;
  std::list<Entry> lru_;
  absl::flat_hash_map<std::string, std::list<Entry>::iterator> index_;
  std::string scratch_key_;
  std::map<std::string, double> rate_by_service_{{"service:,env:", 1.0}};
  uint64_t version_ = 1;
  uint64_t evictions_ = 0;
};

// Signature-based sampling for chunks without priority, and for chunks with errors.
class ScoreSampler {
 public:
  ScoreSampler(double extra_rate, double target_tps, std::string_view rate_key, size_t max_signatures)
      : core_(extra_rate, target_tps, max_signatures), rate_key_(rate_key), disabled_(target_tps == 0) {}

  bool Sample(int64_t now, TraceChunk& chunk, Span* root, std::string_view env) {
    if (disabled_ || chunk.spans.empty() || !root) return false;
    const Signature sig = Shrink(TraceSignature(chunk.spans, *root, env));
    core_.CountWeightedSig(now, sig, WeightRoot(root));
    const double rate = core_.SignatureRate(sig);
    const double* global = Find(root->metrics, kSampleRateKey);
    const double effective = (global ? *global : 1.0) * rate;
    if (!SampleByRate(root->trace_id, effective)) return false;
    Set(root->metrics, rate_key_, rate);
    return true;
  }

  void Tick(int64_t now) { core_.Tick(now); }
  void SetTargetTps(double tps) {
    core_.SetTargetTps(tps);
    disabled_ = tps == 0;
  }
  uint64_t shed() const { return core_.signatures_shed(); }

 private:
  // Past kShrinkCardinality/2 signatures, new ones share kShrinkCardinality/2 slots: memory stays capped
  // and the signatures already tracked keep their own rates.
  Signature Shrink(Signature sig) {
    if (core_.size() < kShrinkCardinality / 2) {
      allow_list_active_ = false;
      return sig;
    }
    if (!allow_list_active_) {
      double ignored = 0;
      allow_list_.clear();
      for (const auto& [s, r] : core_.AllRates(&ignored)) allow_list_[s] = r;
      allow_list_active_ = true;
    }
    if (allow_list_.contains(sig)) return sig;
    return sig % (kShrinkCardinality / 2);
  }

  CoreSampler core_;
  std::string rate_key_;
  bool disabled_;
  bool allow_list_active_ = false;
  absl::flat_hash_map<Signature, double> allow_list_;
};

// Keeps chunks showing a (env, service, name, resource, error type, HTTP status) combination that
// priority sampling did not cover recently.
class RareSampler {
 public:
  explicit RareSampler(const SamplerConfig& c)
      : enabled_(c.rare_sampler_enabled),
        tps_(c.rare_sampler_tps),
        ttl_(c.rare_sampler_cooldown_ns),
        priority_ttl_(std::max(kPriorityTtlNs, c.rare_sampler_cooldown_ns)),
        cardinality_(c.rare_sampler_cardinality > 0 ? c.rare_sampler_cardinality : 200),
        max_shards_(c.max_rare_shards),
        tokens_(kRareBurst) {}

  bool Sample(int64_t now, TraceChunk& chunk, int32_t priority, bool has_priority, std::string_view env) {
    if (!enabled_) return false;
    if (has_priority && priority > 0) {
      Remember(now, env, chunk, priority_ttl_);
      return false;
    }
    bool sampled = false;
    for (auto& s : chunk.spans) {
      if (!IsTopLevelOrMeasured(s)) continue;
      if ((sampled = SampleSpan(now, env, s))) break;
    }
    if (sampled) Remember(now, env, chunk, ttl_);
    return sampled;
  }

  void SetEnabled(bool enabled) { enabled_ = enabled; }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }
  uint64_t shrinks() const { return shrinks_; }

 private:
  struct Seen {
    absl::flat_hash_map<uint32_t, int64_t> expires;
    bool shrunk = false;
  };

  // golang.org/x/time/rate semantics: starts full, refills tps per second up to the burst.
  bool Allow(int64_t now) {
    if (last_refill_ != 0 && now > last_refill_) {
      tokens_ = std::min(kRareBurst, tokens_ + tps_ * static_cast<double>(now - last_refill_) / kSecond);
    }
    last_refill_ = std::max(last_refill_, now);
    if (tokens_ >= 1) {
      tokens_ -= 1;
      return true;
    }
    return false;
  }

  Seen* Shard(std::string_view env, std::string_view service) {
    // The agent hashes (Name: env, Env: service) here; any stable shard key works.
    const Signature shard = ServiceSignature(env, service);
    auto it = seen_.find(shard);
    if (it != seen_.end()) return &it->second;
    if (seen_.size() >= max_shards_) return nullptr;
    return &seen_[shard];
  }

  uint32_t Sign(const Seen& seen, const Span& s) const {
    uint32_t h = SpanHash(s, "", true);
    if (seen.shrunk) h %= static_cast<uint32_t>(cardinality_);
    return h;
  }

  void Add(Seen* seen, int64_t expire, const Span& s) {
    const uint32_t sig = Sign(*seen, s);
    auto it = seen->expires.find(sig);
    if (it != seen->expires.end() && expire - it->second < kTtlRenewalNs) return;
    seen->expires[sig] = expire;
    if (seen->expires.size() > static_cast<size_t>(cardinality_)) {
      // Cap memory and make a high-cardinality service share slots instead of taking every token.
      absl::flat_hash_map<uint32_t, int64_t> folded;
      for (const auto& [h, e] : seen->expires) folded[h % static_cast<uint32_t>(cardinality_)] = e;
      seen->expires = std::move(folded);
      seen->shrunk = true;
      ++shrinks_;
    }
  }

  void Remember(int64_t now, std::string_view env, const TraceChunk& chunk, int64_t ttl) {
    for (const auto& s : chunk.spans) {
      if (!IsTopLevelOrMeasured(s)) continue;
      if (Seen* seen = Shard(env, s.service)) Add(seen, now + ttl, s);
    }
  }

  bool SampleSpan(int64_t now, std::string_view env, Span& s) {
    Seen* seen = Shard(env, s.service);
    if (!seen) return false;
    const uint32_t sig = Sign(*seen, s);
    auto it = seen->expires.find(sig);
    if (it != seen->expires.end() && now <= it->second) return false;
    if (!Allow(now)) {
      ++misses_;
      return false;
    }
    Add(seen, now + ttl_, s);
    ++hits_;
    SetStaticKey(s.metrics, kRareKey, 1);
    return true;
  }

  bool enabled_;
  double tps_;
  int64_t ttl_;
  int64_t priority_ttl_;
  int cardinality_;
  size_t max_shards_;
  double tokens_;
  int64_t last_refill_ = 0;
  absl::flat_hash_map<Signature, Seen> seen_;
  uint64_t hits_ = 0, misses_ = 0, shrinks_ = 0;
};

}  // namespace

std::string_view SamplerNameString(SamplerName name) {
  switch (name) {
    case SamplerName::kPriority:
      return "priority";
    case SamplerName::kNoPriority:
      return "no_priority";
    case SamplerName::kError:
      return "error";
    case SamplerName::kRare:
      return "rare";
    default:
      return "unknown";
  }
}

size_t SingleSpanSampling(TraceChunk& chunk) {
  size_t kept = 0;
  for (const auto& s : chunk.spans) kept += HasMetric(s, kSpanSamplingMechanismKey) ? 1 : 0;
  if (kept == 0) return 0;
  std::erase_if(chunk.spans, [](const Span& s) { return !HasMetric(s, kSpanSamplingMechanismKey); });
  chunk.priority = kPriorityUserKeep;
  chunk.dropped_trace = false;
  return kept;
}

class TraceSampler::Impl {
 public:
  Impl(SamplerConfig c, Clock clock)
      : config_(std::move(c)),
        clock_(clock ? std::move(clock) : Clock(SystemNow)),
        priority_(config_),
        no_priority_(config_.extra_sample_rate, config_.target_tps, kNoPriorityRateKey,
                     config_.max_signatures),
        errors_(config_.extra_sample_rate, config_.error_tps, kErrorsRateKey, config_.max_signatures),
        rare_(config_) {}

  SamplingDecision Sample(TraceChunk& chunk, const Span& root_in, std::string_view env, bool dropped_enabled,
                          double dropped_weight) {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t now = clock_();
    SamplingDecision d;
    Span* root = Resolve(chunk, root_in);
    Span scratch;
    if (!root) {
      // A root that is not in the chunk: decide on a copy (its annotations are lost).
      scratch = root_in;
      root = &scratch;
    }

    int32_t priority = chunk.priority;
    if (priority == kPriorityNone && root) {
      // The pipeline normally copies the root's metric into the chunk; read it if it did not.
      if (const double* p = Find(root->metrics, kSamplingPriorityKey)) priority = static_cast<int32_t>(*p);
    }
    const bool has_priority = priority != kPriorityNone;
    d.priority = priority;

    if (config_.error_tracking_standalone) {
      d.sampler = SamplerName::kError;
      if (ContainsError(chunk.spans, true)) {
        SetStaticKey(chunk.tags, kErrorTrackingStandaloneTag, SpanString::Borrow("true"));
        d.keep = errors_.Sample(now, chunk, root, env);
      }
      chunk.dropped_trace = !d.keep;
      Count(d);
      return d;
    }

    // Run first so the rare sampler learns about every chunk.
    const bool rare = rare_.Sample(now, chunk, priority, has_priority, env);
    if (has_priority) {
      d.sampler = SamplerName::kPriority;
      if (priority >= -1 && priority <= 2) ++counters_.priority_by_value[priority + 1];
    } else {
      d.sampler = SamplerName::kNoPriority;
      ++counters_.no_priority;
    }

    if (has_priority && priority < 0) {
      d.keep = false;  // user reject
    } else if (rare) {
      d.sampler = SamplerName::kRare;
      d.keep = true;
    } else {
      if (has_priority) {
        d.keep = priority_.Sample(now, chunk, priority, root, env, dropped_enabled ? dropped_weight : 0);
      } else {
        d.keep = no_priority_.Sample(now, chunk, root, env);
      }
      if (!d.keep && ContainsError(chunk.spans, false)) {
        d.sampler = SamplerName::kError;
        d.keep = errors_.Sample(now, chunk, root, env);
      }
    }
    chunk.dropped_trace = !d.keep;
    if (!d.keep) {
      d.single_spans_kept = SingleSpanSampling(chunk);
      if (d.single_spans_kept) {
        ++counters_.single_span_chunks;
        counters_.single_spans += d.single_spans_kept;
      }
    }
    Count(d);
    return d;
  }

  void Update(int64_t now) {
    std::lock_guard<std::mutex> lock(mu_);
    priority_.Tick(now);
    no_priority_.Tick(now);
    errors_.Tick(now);
  }

  std::map<std::string, double> Rates() const {
    std::lock_guard<std::mutex> lock(mu_);
    return priority_.rates();
  }

  uint64_t Version() const {
    std::lock_guard<std::mutex> lock(mu_);
    return priority_.version();
  }

  Counters GetCounters() const {
    std::lock_guard<std::mutex> lock(mu_);
    Counters c = counters_;
    c.rare_hits = rare_.hits();
    c.rare_misses = rare_.misses();
    c.rare_shrinks = rare_.shrinks();
    c.shed_signatures = priority_.shed() + no_priority_.shed() + errors_.shed();
    c.catalog_evictions = priority_.evictions();
    return c;
  }

  void SetTargetTps(double tps) {
    std::lock_guard<std::mutex> lock(mu_);
    priority_.SetTargetTps(tps);
    no_priority_.SetTargetTps(tps);
  }
  void SetErrorTps(double tps) {
    std::lock_guard<std::mutex> lock(mu_);
    errors_.SetTargetTps(tps);
  }
  void SetRareEnabled(bool enabled) {
    std::lock_guard<std::mutex> lock(mu_);
    rare_.SetEnabled(enabled);
  }

 private:
  static Span* Resolve(TraceChunk& chunk, const Span& root) {
    auto& spans = chunk.spans;
    if (!spans.empty() && &root >= spans.data() && &root < spans.data() + spans.size()) {
      return &spans[static_cast<size_t>(&root - spans.data())];
    }
    for (auto& s : spans) {
      if (s.span_id == root.span_id) return &s;
    }
    return nullptr;
  }

  void Count(const SamplingDecision& d) {
    const size_t i = static_cast<size_t>(d.sampler);
    if (d.keep) {
      ++counters_.kept[i];
    } else {
      ++counters_.dropped[i];
    }
  }

  const SamplerConfig config_;
  const Clock clock_;
  mutable std::mutex mu_;
  PrioritySampler priority_;
  ScoreSampler no_priority_;
  ScoreSampler errors_;
  RareSampler rare_;
  Counters counters_;
};

TraceSampler::TraceSampler(SamplerConfig config, Clock clock)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(clock))) {}
TraceSampler::~TraceSampler() = default;

SamplingDecision TraceSampler::Sample(TraceChunk& chunk, const Span& root, std::string_view env,
                                      bool client_dropped_p0s_enabled, double client_dropped_p0s_weight) {
  return impl_->Sample(chunk, root, env, client_dropped_p0s_enabled, client_dropped_p0s_weight);
}
void TraceSampler::Update(int64_t now_ns) { impl_->Update(now_ns); }
std::map<std::string, double> TraceSampler::RateByService() const { return impl_->Rates(); }
uint64_t TraceSampler::rates_version() const { return impl_->Version(); }
TraceSampler::Counters TraceSampler::counters() const { return impl_->GetCounters(); }
void TraceSampler::SetTargetTps(double tps) { impl_->SetTargetTps(tps); }
void TraceSampler::SetErrorTps(double tps) { impl_->SetErrorTps(tps); }
void TraceSampler::SetRareSamplerEnabled(bool enabled) { impl_->SetRareEnabled(enabled); }

}  // namespace dogwatch::trace::sampler
