#include "trace-agent/stats/sampler_core.h"

#include <algorithm>
#include <limits>

namespace dogwatch::trace::sampler {
namespace {

constexpr uint32_t kFnvOffset32 = 2166136261u;
constexpr uint32_t kFnvPrime32 = 16777619u;

struct Fnv32a {
  uint32_t h = kFnvOffset32;
  void Write(std::string_view data) {
    for (unsigned char c : data) Byte(c);
  }
  void Byte(unsigned char c) {
    h ^= c;
    h *= kFnvPrime32;
  }
};

double MetricOr(const Span& s, std::string_view key, double fallback) {
  const double* v = Find(s.metrics, key);
  return v ? *v : fallback;
}

}  // namespace

Signature ServiceSignature(std::string_view service, std::string_view env) {
  Fnv32a f;
  f.Write(service);
  f.Byte(',');
  f.Write(env);
  return f.h;
}

uint32_t SpanHash(const Span& span, std::string_view env, bool with_resource) {
  Fnv32a f;
  f.Write(env);
  f.Write(span.service);
  f.Write(span.name);
  f.Byte(static_cast<unsigned char>(span.error));
  if (with_resource) f.Write(span.resource);
  if (const SpanString* code = Find(span.meta, kHttpStatusCodeKey)) f.Write(*code);
  if (const SpanString* type = Find(span.meta, kErrorTypeKey)) f.Write(*type);
  return f.h;
}

Signature TraceSignature(const std::vector<Span>& spans, const Span& root, std::string_view env) {
  const uint32_t root_hash = SpanHash(root, env, true);
  if (spans.empty()) return root_hash;
  std::vector<uint32_t> hashes;
  hashes.reserve(spans.size());
  for (const auto& s : spans) hashes.push_back(SpanHash(s, env, false));
  std::sort(hashes.begin(), hashes.end());
  uint32_t last = hashes[0];
  uint32_t trace_hash = last ^ root_hash;
  for (size_t i = 1; i < hashes.size(); ++i) {
    if (hashes[i] != last) {
      last = hashes[i];
      trace_hash ^= hashes[i];
    }
  }
  return trace_hash;
}

bool SampleByRate(uint64_t trace_id, double rate) {
  if (rate >= 1) return true;
  if (!(rate > 0)) return false;
  constexpr uint64_t kKnuthFactor = 1111111111111111111ull;
  constexpr double kMaxTraceId = static_cast<double>(std::numeric_limits<uint64_t>::max());
  return trace_id * kKnuthFactor < static_cast<uint64_t>(rate * kMaxTraceId);
}

float WeightRoot(const Span* root) {
  if (!root) return 1;
  double client_rate = MetricOr(*root, kSampleRateKey, 1);
  if (!(client_rate > 0) || client_rate > 1) client_rate = 1;
  double pre_rate = MetricOr(*root, kPreSampleRateKey, 1);
  if (!(pre_rate > 0) || pre_rate > 1) pre_rate = 1;
  return static_cast<float>(1.0 / (pre_rate * client_rate));
}

// ---------------------------------------------------------------------------------------------------

CoreSampler::CoreSampler(double extra_rate, double target_tps, size_t max_signatures)
    : target_tps_(target_tps), extra_rate_(extra_rate), max_signatures_(max_signatures) {}

float CoreSampler::ZeroAndGetMax(Buckets* buckets, int64_t previous, int64_t current) {
  float max_bucket = 0;
  for (int64_t i = previous + 1; i <= previous + kNumBuckets; ++i) {
    const size_t index = static_cast<size_t>(i % kNumBuckets);
    // A full rotation (or more) since `previous` zeroes everything in between.
    if (i < current) {
      (*buckets)[index] = 0;
      continue;
    }
    max_bucket = std::max(max_bucket, (*buckets)[index]);
    // The bucket being reused still counts once: it was the oldest of the window.
    if (i == current) (*buckets)[index] = 0;
  }
  return max_bucket;
}

double CoreSampler::TpsPerSignature(double target_tps, std::vector<double> seen) {
  std::sort(seen.begin(), seen.end());
  double per_sig = target_tps / static_cast<double>(seen.size());
  for (size_t i = 0; i < seen.size(); ++i) {
    if (seen[i] >= per_sig || i == seen.size() - 1) break;
    // This signature uses less than its share: give the rest to the busier ones.
    target_tps -= seen[i];
    per_sig = target_tps / static_cast<double>(seen.size() - i - 1);
  }
  return per_sig;
}

void CoreSampler::UpdateRates(int64_t previous, int64_t current) {
  if (seen_.empty()) {
    ZeroAndGetMax(&all_seen_, previous, current);
    return;
  }
  std::vector<Signature> sigs;
  std::vector<double> seen_tps;
  sigs.reserve(seen_.size());
  seen_tps.reserve(seen_.size());
  for (auto& [sig, buckets] : seen_) {
    const float max_bucket = ZeroAndGetMax(&buckets, previous, current);
    sigs.push_back(sig);
    seen_tps.push_back(static_cast<double>(max_bucket) / kBucketSeconds);
  }
  ZeroAndGetMax(&all_seen_, previous, current);
  const double tps_per_sig = TpsPerSignature(target_tps_, seen_tps);

  absl::flat_hash_map<Signature, double> rates;
  rates.reserve(sigs.size());
  lowest_rate_ = 1;
  for (size_t i = 0; i < sigs.size(); ++i) {
    const double tps = seen_tps[i];
    double rate = 1;
    if (tps_per_sig < tps && tps > 0) rate = tps_per_sig / tps;
    if (auto prev = rates_.find(sigs[i]); prev != rates_.end() && prev->second != 0) {
      if (rate / prev->second > kMaxRateIncrease) rate = prev->second * kMaxRateIncrease;
    }
    if (rate > 1) rate = 1;
    if (rate == 1 && tps == 0) {
      seen_.erase(sigs[i]);  // no traffic left in the window: forget the signature
      continue;
    }
    lowest_rate_ = std::min(lowest_rate_, rate);
    rates[sigs[i]] = rate;
  }
  rates_ = std::move(rates);
}

bool CoreSampler::Tick(int64_t now_ns) {
  const int64_t bucket_id = now_ns / 1'000'000'000 / kBucketSeconds;
  if (bucket_id == last_bucket_id_) return false;
  const int64_t previous = last_bucket_id_;
  last_bucket_id_ = bucket_id;
  UpdateRates(previous, bucket_id);
  return true;
}

bool CoreSampler::CountWeightedSig(int64_t now_ns, Signature sig, float weight) {
  const bool rotated = Tick(now_ns);
  const size_t index = static_cast<size_t>(last_bucket_id_ % kNumBuckets);
  all_seen_[index] += weight;
  auto it = seen_.find(sig);
  if (it == seen_.end()) {
    if (seen_.size() >= max_signatures_) {
      ++signatures_shed_;
      return rotated;
    }
    it = seen_.try_emplace(sig, Buckets{}).first;
  }
  it->second[index] += weight;
  return rotated;
}

double CoreSampler::DefaultRate() const {
  if (target_tps_ == 0) return 0;
  float max_seen = 0;
  for (float c : all_seen_) max_seen = std::max(max_seen, c);
  const double seen_tps = static_cast<double>(max_seen) / kBucketSeconds;
  double rate = 1;
  if (target_tps_ < seen_tps && seen_tps > 0) rate = target_tps_ / seen_tps;
  if (lowest_rate_ < rate && lowest_rate_ != 0) return lowest_rate_;
  return rate;
}

double CoreSampler::SignatureRate(Signature sig) const {
  auto it = rates_.find(sig);
  if (it == rates_.end()) return DefaultRate();
  return it->second * extra_rate_;
}

std::vector<std::pair<Signature, double>> CoreSampler::AllRates(double* default_rate) const {
  std::vector<std::pair<Signature, double>> out;
  out.reserve(rates_.size());
  for (const auto& [sig, rate] : rates_) out.emplace_back(sig, rate * extra_rate_);
  *default_rate = DefaultRate();
  return out;
}

void CoreSampler::SetTargetTps(double target_tps) {
  const double previous = target_tps_;
  target_tps_ = target_tps;
  if (previous == 0) return;
  const double ratio = target_tps / previous;
  for (auto& [sig, rate] : rates_) rate = std::min(rate * ratio, 1.0);
}

}  // namespace dogwatch::trace::sampler
