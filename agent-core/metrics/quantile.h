#pragma once
// The Datadog agent's distribution sketch (`pkg/quantile`, default config), as sent to
// /api/beta/sketches in `DogSketch{k, n}` form.
//
// The intake decodes the bin keys with the agent's fixed mapping, so the mapping below must match
// it bit for bit:
//   eps = 1/128, gamma = 1 + 2*eps, ln_gamma = log1p(2*eps)
//   emin = floor(log(1e-9) / ln_gamma) = -1337, bias = 1 - emin = 1338
//   key(v) = 0                                   if |v| < gamma^emin (~9.94e-10) or v == 0
//          = -key(-v)                            if v < 0
//          = round_half_even(log(v)/ln_gamma) + bias, clamped to [1, 32766]; 32767 = +inf
// A bin counts in a uint16; a key with more than 65535 values is split into several bins with the
// same key (the remainder first, then full bins). At most 4096 bins are kept: beyond that, the
// lowest bins are collapsed into the lowest kept one (the agent's `trimLeft`), so relative accuracy
// holds for the upper quantiles, which is what people query.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "agent-core/metrics/types.h"

namespace dogwatch::metrics {

class QuantileSketch {
 public:
  static constexpr size_t kBinLimit = 4096;
  static constexpr double kEpsilon = 1.0 / 128.0;
  static constexpr double kGamma = 1.0 + 2.0 * kEpsilon;
  static constexpr double kMinValue = 1e-9;  // the agent's defaultMin, before snapping to a power of gamma
  static constexpr int32_t kMaxKey = (1 << 15) - 2;  // 32766
  static constexpr int32_t kInfKey = (1 << 15) - 1;  // 32767: |v| beyond gamma^(kMaxKey - bias)
  static constexpr uint32_t kMaxBinCount = 65535;    // bins count in a uint16 in the agent

  // The exponent bias (1338 by default) and smallest non-zero magnitude (gamma^-1337).
  static int32_t Bias();
  static double MinMagnitude();

  // The agent's key for a value (see the header comment). NaN maps to 0; callers reject it first.
  static int32_t KeyOf(double value);
  // gamma^(key - bias) with the sign of the key: the value a key stands for (0 for key 0).
  static double ValueOfKey(int32_t key);

  // Inserts `value` `weight` times (the agent's InsertN; DogStatsD passes trunc(1/sample_rate)).
  // Non-finite values and weight 0 are ignored and return false.
  bool Add(double value, uint32_t weight = 1);
  void Merge(const QuantileSketch& other);

  // The value at quantile q in [0, 1] (q <= 0 → min, q >= 1 → max), using the agent's rank rule
  // (round_half_even(q * (count - 1))) and the bin's representative value, clamped to [min, max]:
  // within the sketch's relative accuracy (~0.8%) of the exact quantile.
  double Quantile(double q) const;
  // The representative value (clamped to [min, max]) of the value with 0-based weighted rank
  // `rank` in ascending order: what DogStatsD histograms need for their median/percentiles.
  double ValueAtRank(int64_t rank) const;

  DogSketch ToDogSketch(int64_t timestamp) const;

  bool empty() const { return count_ == 0; }
  int64_t count() const { return count_; }
  double min() const { return min_; }
  double max() const { return max_; }
  double sum() const { return sum_; }
  double avg() const { return count_ == 0 ? 0 : sum_ / static_cast<double>(count_); }
  size_t bin_count() const { return bins_.size(); }
  void Reset();

 private:
  struct Bin {  // 4 bytes, as in the agent: keys fit in int16, counts in uint16
    int16_t key;
    uint16_t count;
  };
  // Adds `n` to the run of bins with `key`, re-splitting the run into uint16-sized bins.
  void AddToKey(int32_t key, uint64_t n);
  void TrimToLimit();

  std::vector<Bin> bins_;  // sorted by key; equal keys only for split (overflowing) counts
  int64_t count_ = 0;
  double min_ = 0;
  double max_ = 0;
  double sum_ = 0;
};

}  // namespace dogwatch::metrics
