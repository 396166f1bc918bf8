#pragma once
// The rate engine shared by the trace samplers (Datadog Agent pkg/trace/sampler/coresampler.go,
// signature.go, sampler.go; reimplemented).
//
// Traffic is counted per signature in 6 buckets of 5 s. On every bucket rotation the target TPS is spread
// over the signatures (low-volume ones keep everything and leave their share to the others), each rate is
// target / max-bucket TPS of its signature, and increases are capped at ×1.2 per rotation so a burst after
// a quiet period does not flood the intake (13 rotations, about a minute, to grow tenfold).
// A trace is kept when trace_id × 1111111111111111111 (mod 2^64) < rate × 2^64: deterministic per trace
// ID, so every agent keeps the same chunks of a distributed trace.
//
// Not thread-safe: the samplers that own one serialize access.

#include <array>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "trace-agent/model/span.h"

namespace dogwatch::trace::sampler {

using Signature = uint64_t;

inline constexpr std::string_view kSampleRateKey = "_sample_rate";      // tracer's global rate
inline constexpr std::string_view kPreSampleRateKey = "_dd1.sr.rapre";  // legacy pre-sampler rate
inline constexpr std::string_view kErrorTypeKey = "error.type";
inline constexpr std::string_view kHttpStatusCodeKey = "http.status_code";

// FNV-1a 32 of "service,env": the priority sampler's (service, env) signature.
Signature ServiceSignature(std::string_view service, std::string_view env);

// FNV-1a 32 of env, service, name, the error byte, [resource], meta http.status_code and error.type.
uint32_t SpanHash(const Span& span, std::string_view env, bool with_resource);

// The chunk's signature for the score samplers: the root's hash (with resource) XOR the distinct hashes of
// every span (without resource).
Signature TraceSignature(const std::vector<Span>& spans, const Span& root, std::string_view env);

// Keep or drop by trace ID (Knuth multiplicative hash).
bool SampleByRate(uint64_t trace_id, double rate);

// How many traces the root stands for: 1 / (_sample_rate × _dd1.sr.rapre), each taken as 1 when absent or
// outside (0, 1].
float WeightRoot(const Span* root);

class CoreSampler {
 public:
  static constexpr int64_t kBucketSeconds = 5;
  static constexpr int kNumBuckets = 6;
  static constexpr double kMaxRateIncrease = 1.2;

  // `max_signatures` bounds the signature table; traffic of further new signatures is counted only in the
  // total (so it still lowers the default rate) and reported by signatures_shed().
  CoreSampler(double extra_rate, double target_tps, size_t max_signatures);

  // Counts `weight` traces for `sig` at `now_ns`. Returns true when this call rotated the buckets and so
  // recomputed the rates (before counting, as the agent does).
  bool CountWeightedSig(int64_t now_ns, Signature sig, float weight);
  // Rotates the buckets if time moved to a new one, without counting. Returns true if rates changed.
  bool Tick(int64_t now_ns);

  // The rate for `sig` (× extra_rate), or the default rate for unknown signatures.
  double SignatureRate(Signature sig) const;
  // Every known signature's rate (× extra_rate), and the default rate.
  std::vector<std::pair<Signature, double>> AllRates(double* default_rate) const;
  // The rate for signatures not seen yet: target / the busiest bucket of all traffic, never above the
  // lowest signature rate.
  double DefaultRate() const;

  void SetTargetTps(double target_tps);
  double target_tps() const { return target_tps_; }
  size_t size() const { return seen_.size(); }
  bool Known(Signature sig) const { return rates_.contains(sig); }
  uint64_t signatures_shed() const { return signatures_shed_; }

 private:
  using Buckets = std::array<float, kNumBuckets>;
  static float ZeroAndGetMax(Buckets* buckets, int64_t previous, int64_t current);
  static double TpsPerSignature(double target_tps, std::vector<double> seen);
  void UpdateRates(int64_t previous, int64_t current);

  absl::flat_hash_map<Signature, Buckets> seen_;
  Buckets all_seen_{};
  int64_t last_bucket_id_ = 0;
  absl::flat_hash_map<Signature, double> rates_;
  double lowest_rate_ = 0;
  double target_tps_;
  double extra_rate_;
  size_t max_signatures_;
  uint64_t signatures_shed_ = 0;
};

}  // namespace dogwatch::trace::sampler
