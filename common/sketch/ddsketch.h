#pragma once
// DDSketch (Masson, Rim, Lee: "DDSketch: a fast and fully-mergeable quantile sketch with relative-error
// guarantees", VLDB 2019) configured as the Datadog trace-agent uses it for span durations:
//   - a logarithmic index mapping: bin i holds (γ^(i-1), γ^i] with γ = (1+α)/(1−α), index offset 0, no
//     interpolation, α = 0.01 by default, so any quantile is returned within 1% of the true value;
//   - one "collapsing lowest" dense store for positive values and one for negative values, each bounded
//     to `max_bins` bins (2048 by default): when the index range outgrows that, the lowest bins are folded
//     into the lowest remaining one. High quantiles (what latency SLOs look at) keep the guarantee.
//   - a counter for zero and the values too close to zero to index.
//
// Wire format: the sketches-go `DDSketch` protobuf, what the intake expects in a StatsPayload's
// ClientGroupedStats.okSummary / errorSummary and what tracers send in /v0.6/stats:
//   DDSketch     { IndexMapping mapping = 1; Store positiveValues = 2; Store negativeValues = 3;
//                  double zeroCount = 4; }
//   IndexMapping { double gamma = 1; double indexOffset = 2; Interpolation interpolation = 3; }
//                  (NONE = 0, LINEAR = 1, QUADRATIC = 2, CUBIC = 3)
//   Store        { map<sint32, double> binCounts = 1; repeated double contiguousBinCounts = 2 [packed];
//                  sint32 contiguousBinIndexOffset = 3; }
// The codec is written by hand: it is a few dozen lines, it keeps libprotobuf out of the span hot path,
// and the decoder can bound every length against the input before it allocates (it is fuzzed).
//
// Decoding accepts sketches from any of the sketches-go mappings (logarithmic, linearly or cubically
// interpolated, any γ and offset): a bin of a foreign mapping is re-indexed through its representative
// value, so merging keeps the accuracy of the coarser of the two mappings.
//
// Not thread-safe: one owner at a time.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dogwatch::sketch {

enum class Interpolation : int32_t { kNone = 0, kLinear = 1, kQuadratic = 2, kCubic = 3 };

// The logarithmic mapping: index(v) = floor(ln(v) / ln(γ) + offset).
class LogarithmicMapping {
 public:
  explicit LogarithmicMapping(double relative_accuracy);

  // Requires min_indexable() < value <= max_indexable().
  int32_t Index(double value) const;
  // The value reported for bin `index`: within relative_accuracy of every value the bin holds.
  double Value(int32_t index) const;

  double relative_accuracy() const { return relative_accuracy_; }
  double gamma() const { return gamma_; }
  double index_offset() const { return index_offset_; }
  double min_indexable() const { return min_indexable_; }
  double max_indexable() const { return max_indexable_; }

  // Same γ and offset within 1e-12 (relative), as sketches-go compares mappings.
  bool SameAs(const LogarithmicMapping& other) const;

 private:
  double relative_accuracy_;
  double gamma_;
  double multiplier_;  // 1 / ln(γ)
  double index_offset_ = 0;
  double min_indexable_;
  double max_indexable_;
};

// Dense bins over a sliding index window of at most `max_bins` bins; indexes below the window are
// counted in its lowest bin (the "collapsing lowest" policy).
class DenseStore {
 public:
  explicit DenseStore(int32_t max_bins);

  // `count` must be positive and finite (DDSketch checks).
  void Add(int32_t index, double count);
  // Adds many bins with one re-layout; `bins` is sorted in place.
  void AddBins(std::vector<std::pair<int32_t, double>>* bins);
  void Clear();

  bool empty() const { return count_ <= 0; }
  double total_count() const { return count_; }
  // Valid when !empty().
  int32_t min_index() const { return min_index_; }
  int32_t max_index() const { return max_index_; }
  // Count of bin `index` (0 outside the window).
  double BinCount(int32_t index) const;
  // The index of the bin holding the value of rank `rank` (0-based, ascending).
  int32_t KeyAtRank(double rank) const;
  // True once bins were folded because of the bound.
  bool collapsed() const { return collapsed_; }
  // Number of bins between min_index and max_index (what the encoding carries).
  size_t span() const { return empty() ? 0 : static_cast<size_t>(int64_t{max_index_} - min_index_ + 1); }
  int32_t max_bins() const { return max_bins_; }

  // Calls f(index, count) for every non-empty bin in ascending index order.
  template <typename F>
  void ForEach(F&& f) const {
    if (empty()) return;
    for (int64_t i = min_index_; i <= max_index_; ++i) {
      double c = bins_[static_cast<size_t>(i - offset_)];
      if (c != 0) f(static_cast<int32_t>(i), c);
    }
  }

 private:
  // Makes [new_min, new_max] addressable, folding what falls below the bound; returns the lowest
  // addressable index (higher than new_min after a collapse).
  int64_t Extend(int64_t new_min, int64_t new_max);
  size_t Position(int32_t index) const { return static_cast<size_t>(int64_t{index} - offset_); }

  std::vector<double> bins_;
  int64_t offset_ = 0;  // index of bins_[0]
  int32_t min_index_ = 0;
  int32_t max_index_ = 0;
  double count_ = 0;
  int32_t max_bins_;
  bool collapsed_ = false;
};

class DDSketch {
 public:
  static constexpr double kDefaultRelativeAccuracy = 0.01;
  static constexpr int32_t kDefaultMaxBins = 2048;

  explicit DDSketch(double relative_accuracy = kDefaultRelativeAccuracy, int32_t max_bins = kDefaultMaxBins);

  // Adds `value` `count` times (a count may be fractional: stats weight spans by 1/sample rate). Refuses
  // (returns false, changes nothing) NaN, values beyond ±max_indexable and negative or non-finite counts.
  bool Add(double value, double count = 1.0);

  // Adds everything `other` holds. Exact when both use the same mapping.
  void Merge(const DDSketch& other);

  // The value at quantile q in [0, 1], with rank q×(count−1) as sketches-go defines it; nullopt when
  // the sketch is empty or q is outside [0, 1].
  std::optional<double> Quantile(double q) const;

  double count() const { return zero_count_ + positive_.total_count() + negative_.total_count(); }
  bool empty() const { return count() <= 0; }
  // Sum, min and max are exact for values added with Add, and estimated from bin values (within the
  // relative accuracy) for what came from Decode: the protobuf does not carry them.
  double sum() const { return sum_; }
  double min() const { return seen_ ? min_ : 0; }
  double max() const { return seen_ ? max_ : 0; }
  double zero_count() const { return zero_count_; }

  const LogarithmicMapping& mapping() const { return mapping_; }
  const DenseStore& positive_store() const { return positive_; }
  const DenseStore& negative_store() const { return negative_; }

  void Clear();

  // Appends the protobuf encoding.
  void EncodeTo(std::string* out) const;
  std::string Encode() const;

  // Decodes a protobuf DDSketch into a sketch with this build's defaults (α = 0.01, 2048 bins).
  static absl::StatusOr<DDSketch> Decode(std::string_view bytes);
  // Decodes `bytes` and merges them into this sketch. On error, this sketch is unchanged.
  absl::Status DecodeAndMerge(std::string_view bytes);

 private:
  // Adds a bin of this sketch's own mapping (sign: +1 positive, −1 negative).
  void AddOwnBins(int sign, std::vector<std::pair<int32_t, double>>* bins);
  void NoteValue(double value, double count);

  LogarithmicMapping mapping_;
  DenseStore positive_;
  DenseStore negative_;
  double zero_count_ = 0;
  double sum_ = 0;
  double min_ = 0;
  double max_ = 0;
  bool seen_ = false;  // min_ and max_ hold values
};

}  // namespace dogwatch::sketch
