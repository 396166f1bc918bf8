#include "agent-core/metrics/quantile.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace dogwatch::metrics {
namespace {

struct Mapping {
  double ln_gamma;
  int32_t bias;
  double min_magnitude;
};

const Mapping& DefaultMapping() {
  static const Mapping mapping = [] {
    Mapping m{};
    m.ln_gamma = std::log1p(2.0 * QuantileSketch::kEpsilon);
    // The smallest power of gamma not above kMinValue gets key 1, hence the bias.
    const int32_t emin = static_cast<int32_t>(std::floor(std::log(QuantileSketch::kMinValue) / m.ln_gamma));
    m.bias = 1 - emin;
    m.min_magnitude = std::pow(QuantileSketch::kGamma, static_cast<double>(emin));
    return m;
  }();
  return mapping;
}

// Appends `total` counts of `key` as the agent does on overflow: remainder bin first, then full bins.
template <typename BinT>
void AppendSplit(std::vector<BinT>& out, int32_t key, uint64_t total) {
  const uint64_t remainder = total % QuantileSketch::kMaxBinCount;
  using Key = decltype(BinT::key);
  using Count = decltype(BinT::count);
  if (remainder != 0) out.push_back(BinT{static_cast<Key>(key), static_cast<Count>(remainder)});
  for (uint64_t i = 0; i < total / QuantileSketch::kMaxBinCount; ++i) {
    out.push_back(BinT{static_cast<Key>(key), static_cast<Count>(QuantileSketch::kMaxBinCount)});
  }
}

}  // namespace

int32_t QuantileSketch::Bias() { return DefaultMapping().bias; }
double QuantileSketch::MinMagnitude() { return DefaultMapping().min_magnitude; }

int32_t QuantileSketch::KeyOf(double value) {
  if (std::isnan(value)) return 0;
  if (value < 0) return -KeyOf(-value);
  const Mapping& m = DefaultMapping();
  if (value < m.min_magnitude) return 0;
  if (std::isinf(value)) return kInfKey;
  // nearbyint rounds half to even in the default rounding mode, like Go's math.RoundToEven,
  // which keeps KeyOf(ValueOfKey(k)) == k.
  const double exponent = std::nearbyint(std::log(value) / m.ln_gamma) + m.bias;
  if (exponent > kMaxKey) return kInfKey;
  if (exponent < 1) return 1;
  return static_cast<int32_t>(exponent);
}

double QuantileSketch::ValueOfKey(int32_t key) {
  if (key < 0) return -ValueOfKey(-key);
  if (key == 0) return 0;
  if (key >= kInfKey) return std::numeric_limits<double>::infinity();
  return std::pow(kGamma, static_cast<double>(key - DefaultMapping().bias));
}

bool QuantileSketch::Add(double value, uint32_t weight) {
  if (weight == 0 || !std::isfinite(value)) return false;
  if (count_ == 0) {
    min_ = value;
    max_ = value;
  } else {
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }
  count_ += weight;
  sum_ += value * static_cast<double>(weight);
  AddToKey(KeyOf(value), weight);
  return true;
}

void QuantileSketch::AddToKey(int32_t key, uint64_t n) {
  auto lo =
      std::lower_bound(bins_.begin(), bins_.end(), key, [](const Bin& b, int32_t k) { return b.key < k; });
  if (lo == bins_.end() || lo->key != key) {
    if (n <= kMaxBinCount) {
      bins_.insert(lo, Bin{static_cast<int16_t>(key), static_cast<uint16_t>(n)});
    } else {
      std::vector<Bin> split;
      AppendSplit(split, key, n);
      bins_.insert(lo, split.begin(), split.end());
    }
    TrimToLimit();
    return;
  }
  auto hi = lo;
  uint64_t total = n;
  while (hi != bins_.end() && hi->key == key) total += (hi++)->count;
  if (hi - lo == 1 && total <= kMaxBinCount) {  // the common case: no overflow
    lo->count = static_cast<uint16_t>(total);
    return;
  }
  std::vector<Bin> split;
  AppendSplit(split, key, total);
  const size_t at = static_cast<size_t>(lo - bins_.begin());
  bins_.erase(lo, hi);
  bins_.insert(bins_.begin() + static_cast<std::ptrdiff_t>(at), split.begin(), split.end());
  TrimToLimit();
}

// The agent's trimLeft: the lowest bins beyond the limit are folded into the lowest kept bin; a
// running total above a bin's capacity leaves full bins behind (with the folded bins' keys).
void QuantileSketch::TrimToLimit() {
  if (bins_.size() <= kBinLimit) return;
  const size_t remove = bins_.size() - kBinLimit;
  std::vector<Bin> overflow;
  uint64_t missing = 0;
  for (size_t i = 0; i < remove; ++i) {
    missing += bins_[i].count;
    if (missing > kMaxBinCount) {
      overflow.push_back(Bin{bins_[i].key, static_cast<uint16_t>(kMaxBinCount)});
      missing -= kMaxBinCount;
    }
  }
  Bin& keep = bins_[remove];
  const uint64_t next = missing + keep.count;
  if (next > kMaxBinCount) {
    keep.count = static_cast<uint16_t>(kMaxBinCount);
    AppendSplit(overflow, keep.key, next - kMaxBinCount);
  } else {
    keep.count = static_cast<uint16_t>(next);
  }
  std::vector<Bin> trimmed;
  trimmed.reserve(overflow.size() + bins_.size() - remove);
  trimmed.insert(trimmed.end(), overflow.begin(), overflow.end());
  trimmed.insert(trimmed.end(), bins_.begin() + static_cast<std::ptrdiff_t>(remove), bins_.end());
  bins_ = std::move(trimmed);
}

void QuantileSketch::Merge(const QuantileSketch& other) {
  if (other.count_ == 0) return;
  if (count_ == 0) {
    *this = other;
    return;
  }
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
  // Linear merge of the two sorted runs; equal keys are summed and re-split.
  std::vector<Bin> merged;
  merged.reserve(bins_.size() + other.bins_.size());
  size_t i = 0;
  size_t j = 0;
  while (i < bins_.size() || j < other.bins_.size()) {
    int16_t key;
    if (j == other.bins_.size() || (i < bins_.size() && bins_[i].key < other.bins_[j].key)) {
      key = bins_[i].key;
    } else {
      key = other.bins_[j].key;
    }
    uint64_t total = 0;
    while (i < bins_.size() && bins_[i].key == key) total += bins_[i++].count;
    while (j < other.bins_.size() && other.bins_[j].key == key) total += other.bins_[j++].count;
    AppendSplit(merged, key, total);
  }
  bins_ = std::move(merged);
  TrimToLimit();
}

double QuantileSketch::Quantile(double q) const {
  if (count_ == 0) return 0;
  if (q <= 0) return min_;
  if (q >= 1) return max_;
  return ValueAtRank(static_cast<int64_t>(std::nearbyint(q * static_cast<double>(count_ - 1))));
}

double QuantileSketch::ValueAtRank(int64_t rank) const {
  if (count_ == 0) return 0;
  int64_t seen = 0;
  for (const Bin& bin : bins_) {
    seen += bin.count;
    if (seen > rank) return std::clamp(ValueOfKey(bin.key), min_, max_);
  }
  return max_;
}

DogSketch QuantileSketch::ToDogSketch(int64_t timestamp) const {
  DogSketch out;
  out.timestamp = timestamp;
  out.count = count_;
  out.min = min_;
  out.max = max_;
  out.sum = sum_;
  out.avg = avg();
  out.keys.reserve(bins_.size());
  out.counts.reserve(bins_.size());
  for (const Bin& bin : bins_) {
    out.keys.push_back(bin.key);
    out.counts.push_back(bin.count);
  }
  return out;
}

void QuantileSketch::Reset() {
  // Sketches are reset every bucket: keep a small allocation for reuse, give a large one back.
  if (bins_.capacity() > 128) {
    std::vector<Bin>().swap(bins_);
  } else {
    bins_.clear();
  }
  count_ = 0;
  min_ = 0;
  max_ = 0;
  sum_ = 0;
}

}  // namespace dogwatch::metrics
