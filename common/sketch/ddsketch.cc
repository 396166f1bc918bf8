#include "common/sketch/ddsketch.h"

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/strings/strings.h"

namespace dogwatch::sketch {
namespace {

// exp() overflows above this (the constant sketches-go uses for its indexable range).
constexpr double kExpOverflow = 7.094361393031e+02;
// Stores start this small and double: most span-duration groups need a few dozen to a few hundred bins.
constexpr int64_t kInitialBins = 32;

double SanitizeAccuracy(double relative_accuracy) {
  // The constructor cannot fail; a nonsensical accuracy falls back to the agent's.
  if (!(relative_accuracy > 0 && relative_accuracy < 1)) return DDSketch::kDefaultRelativeAccuracy;
  return relative_accuracy;
}

// ---- protobuf wire helpers (only what DDSketch needs) ----

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void AppendTag(std::string* out, uint32_t field, WireType type) { AppendVarint(out, (field << 3) | type); }

void AppendDoubleLE(std::string* out, double v) {
  uint64_t bits = std::bit_cast<uint64_t>(v);
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>((bits >> (8 * i)) & 0xff);
  out->append(buf, 8);
}

uint32_t ZigZag32(int32_t v) { return (static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31); }

int32_t UnZigZag32(uint32_t n) { return static_cast<int32_t>((n >> 1) ^ (~(n & 1) + 1)); }

// A bounded cursor over protobuf bytes. Every read checks the remaining length first.
class WireReader {
 public:
  explicit WireReader(std::string_view data) : data_(data) {}

  bool done() const { return pos_ >= data_.size(); }
  size_t pos() const { return pos_; }

  absl::Status ReadVarint(uint64_t* out) {
    uint64_t result = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (pos_ >= data_.size()) return Error("truncated varint");
      uint8_t b = static_cast<uint8_t>(data_[pos_++]);
      if (shift == 63 && b > 1) return Error("varint overflows 64 bits");
      result |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        *out = result;
        return absl::OkStatus();
      }
    }
    return Error("varint longer than 10 bytes");
  }

  absl::Status ReadDouble(double* out) {
    if (data_.size() - pos_ < 8) return Error("truncated double");
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i)
      bits |= static_cast<uint64_t>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i);
    pos_ += 8;
    *out = std::bit_cast<double>(bits);
    return absl::OkStatus();
  }

  absl::Status ReadLengthDelimited(std::string_view* out) {
    uint64_t len = 0;
    if (auto s = ReadVarint(&len); !s.ok()) return s;
    if (len > data_.size() - pos_) {
      return Error(strings::Cat("length ", len, " exceeds the ", data_.size() - pos_, " bytes left"));
    }
    *out = data_.substr(pos_, static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return absl::OkStatus();
  }

  absl::Status ReadTag(uint32_t* field, uint32_t* wire_type) {
    uint64_t key = 0;
    if (auto s = ReadVarint(&key); !s.ok()) return s;
    if (key >> 3 == 0 || key >> 3 > 0x1fffffff) return Error("invalid field number");
    *field = static_cast<uint32_t>(key >> 3);
    *wire_type = static_cast<uint32_t>(key & 7);
    return absl::OkStatus();
  }

  absl::Status Skip(uint32_t wire_type) {
    switch (wire_type) {
      case kVarint: {
        uint64_t ignored = 0;
        return ReadVarint(&ignored);
      }
      case kFixed64:
        if (data_.size() - pos_ < 8) return Error("truncated fixed64");
        pos_ += 8;
        return absl::OkStatus();
      case kLengthDelimited: {
        std::string_view ignored;
        return ReadLengthDelimited(&ignored);
      }
      case kFixed32:
        if (data_.size() - pos_ < 4) return Error("truncated fixed32");
        pos_ += 4;
        return absl::OkStatus();
      default:
        return Error(strings::Cat("unsupported wire type ", wire_type));
    }
  }

  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(strings::Cat("DDSketch protobuf: ", what, " at byte ", pos_));
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

absl::Status ExpectWireType(const WireReader& r, uint32_t got, WireType want, std::string_view field) {
  if (got == want) return absl::OkStatus();
  return r.Error(
      strings::Cat("field ", field, " has wire type ", got, ", expected ", static_cast<int>(want)));
}

// The mapping a sketch was encoded with, able to give each of its bins a representative value.
struct WireMapping {
  bool present = false;
  double gamma = 0;
  double index_offset = 0;
  int64_t interpolation = 0;

  absl::Status Validate() const {
    if (!present) return absl::InvalidArgumentError("DDSketch protobuf: no index mapping");
    if (!std::isfinite(gamma) || !(gamma > 1)) {
      return absl::InvalidArgumentError(strings::Cat("DDSketch protobuf: gamma ", gamma, " is not > 1"));
    }
    if (!std::isfinite(index_offset)) {
      return absl::InvalidArgumentError("DDSketch protobuf: index offset is not finite");
    }
    switch (interpolation) {
      case static_cast<int64_t>(Interpolation::kNone):
      case static_cast<int64_t>(Interpolation::kLinear):
      case static_cast<int64_t>(Interpolation::kCubic):
        return absl::OkStatus();
      case static_cast<int64_t>(Interpolation::kQuadratic):
        // sketches-go itself has no quadratic mapping; nobody encodes it.
        return absl::UnimplementedError("DDSketch protobuf: quadratic interpolation is not supported");
      default:
        return absl::InvalidArgumentError(
            strings::Cat("DDSketch protobuf: unknown interpolation ", interpolation));
    }
  }

  // Representative value of bin `index`, as the encoding library defines it.
  double Value(int32_t index) const {
    const double i = static_cast<double>(index);
    switch (static_cast<Interpolation>(interpolation)) {
      case Interpolation::kLinear: {
        // index = log2approx(v)·(1/log2 γ) + offset, log2approx(2^e·(1+s)) = e + s.
        const double multiplier = 1 / std::log2(gamma);
        const double ra = 1 - 2 / (1 + std::exp(std::log2(gamma)));
        const double x = (i - index_offset) / multiplier;
        const double e = std::floor(x);
        return std::ldexp(x - e + 1, static_cast<int>(std::clamp(e, -2000.0, 2000.0))) * (1 + ra);
      }
      case Interpolation::kCubic: {
        // log2approx(2^e·(1+s)) = e + A s³ + B s² + C s, inverted with Cardano's formula.
        constexpr double A = 6.0 / 35.0, B = -3.0 / 5.0, C = 10.0 / 7.0;
        const double multiplier = 1 / std::log2(gamma);
        const double ra = 1 - 2 / (1 + std::exp(7.0 / 10 * std::log2(gamma)));
        const double x = (i - index_offset) / multiplier;
        const double e = std::floor(x);
        const double d0 = B * B - 3 * A * C;
        const double d1 = 2 * B * B * B - 9 * A * B * C - 27 * A * A * (x - e);
        const double p = std::cbrt((d1 - std::sqrt(d1 * d1 - 4 * d0 * d0 * d0)) / 2);
        const double significand_plus_one = -(B + p + d0 / p) / (3 * A) + 1;
        return std::ldexp(significand_plus_one, static_cast<int>(std::clamp(e, -2000.0, 2000.0))) * (1 + ra);
      }
      case Interpolation::kNone:
      default: {
        const double ra = 1 - 2 / (1 + gamma);
        return std::exp((i - index_offset) * std::log(gamma)) * (1 + ra);
      }
    }
  }
};

absl::Status ParseMapping(std::string_view bytes, WireMapping* m) {
  WireReader r(bytes);
  m->present = true;
  while (!r.done()) {
    uint32_t field = 0, wt = 0;
    if (auto s = r.ReadTag(&field, &wt); !s.ok()) return s;
    switch (field) {
      case 1:
        if (auto s = ExpectWireType(r, wt, kFixed64, "mapping.gamma"); !s.ok()) return s;
        if (auto s = r.ReadDouble(&m->gamma); !s.ok()) return s;
        break;
      case 2:
        if (auto s = ExpectWireType(r, wt, kFixed64, "mapping.indexOffset"); !s.ok()) return s;
        if (auto s = r.ReadDouble(&m->index_offset); !s.ok()) return s;
        break;
      case 3: {
        if (auto s = ExpectWireType(r, wt, kVarint, "mapping.interpolation"); !s.ok()) return s;
        uint64_t v = 0;
        if (auto s = r.ReadVarint(&v); !s.ok()) return s;
        m->interpolation = static_cast<int64_t>(static_cast<int32_t>(v));  // enums are int32
        break;
      }
      default:
        if (auto s = r.Skip(wt); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status CheckCount(double count, const WireReader& r) {
  if (!std::isfinite(count) || count < 0) return r.Error(strings::Cat("invalid bin count ", count));
  return absl::OkStatus();
}

// Appends the store's non-empty bins to `bins` (duplicates allowed: they add up).
absl::Status ParseStore(std::string_view bytes, std::vector<std::pair<int32_t, double>>* bins) {
  WireReader r(bytes);
  std::vector<double> contiguous;
  int64_t contiguous_offset = 0;
  while (!r.done()) {
    uint32_t field = 0, wt = 0;
    if (auto s = r.ReadTag(&field, &wt); !s.ok()) return s;
    if (field == 1) {  // map<sint32, double> binCounts: each entry is a {key = 1, value = 2} message
      if (auto s = ExpectWireType(r, wt, kLengthDelimited, "store.binCounts"); !s.ok()) return s;
      std::string_view entry_bytes;
      if (auto s = r.ReadLengthDelimited(&entry_bytes); !s.ok()) return s;
      WireReader entry(entry_bytes);
      int32_t key = 0;
      double value = 0;
      while (!entry.done()) {
        uint32_t ef = 0, ewt = 0;
        if (auto s = entry.ReadTag(&ef, &ewt); !s.ok()) return s;
        if (ef == 1 && ewt == kVarint) {
          uint64_t v = 0;
          if (auto s = entry.ReadVarint(&v); !s.ok()) return s;
          key = UnZigZag32(static_cast<uint32_t>(v));
        } else if (ef == 2 && ewt == kFixed64) {
          if (auto s = entry.ReadDouble(&value); !s.ok()) return s;
        } else if (auto s = entry.Skip(ewt); !s.ok()) {
          return s;
        }
      }
      if (auto s = CheckCount(value, r); !s.ok()) return s;
      if (value > 0) bins->emplace_back(key, value);
    } else if (field == 2) {  // repeated double contiguousBinCounts, packed or not
      if (wt == kLengthDelimited) {
        std::string_view packed;
        if (auto s = r.ReadLengthDelimited(&packed); !s.ok()) return s;
        if (packed.size() % 8 != 0) return r.Error("packed doubles length is not a multiple of 8");
        WireReader pr(packed);
        contiguous.reserve(contiguous.size() + packed.size() / 8);  // bounded by the input
        while (!pr.done()) {
          double v = 0;
          if (auto s = pr.ReadDouble(&v); !s.ok()) return s;
          contiguous.push_back(v);
        }
      } else if (wt == kFixed64) {
        double v = 0;
        if (auto s = r.ReadDouble(&v); !s.ok()) return s;
        contiguous.push_back(v);
      } else {
        return r.Error(strings::Cat("field store.contiguousBinCounts has wire type ", wt));
      }
    } else if (field == 3) {
      if (auto s = ExpectWireType(r, wt, kVarint, "store.contiguousBinIndexOffset"); !s.ok()) return s;
      uint64_t v = 0;
      if (auto s = r.ReadVarint(&v); !s.ok()) return s;
      contiguous_offset = UnZigZag32(static_cast<uint32_t>(v));
    } else if (auto s = r.Skip(wt); !s.ok()) {
      return s;
    }
  }
  for (size_t i = 0; i < contiguous.size(); ++i) {
    if (auto s = CheckCount(contiguous[i], r); !s.ok()) return s;
    if (contiguous[i] == 0) continue;
    const int64_t index = contiguous_offset + static_cast<int64_t>(i);
    if (index > std::numeric_limits<int32_t>::max())
      return r.Error("contiguous bins run past the int32 range");
    bins->emplace_back(static_cast<int32_t>(index), contiguous[i]);
  }
  return absl::OkStatus();
}

struct WireSketch {
  WireMapping mapping;
  std::vector<std::pair<int32_t, double>> positive;
  std::vector<std::pair<int32_t, double>> negative;
  double zero_count = 0;
};

absl::Status ParseSketch(std::string_view bytes, WireSketch* out) {
  WireReader r(bytes);
  while (!r.done()) {
    uint32_t field = 0, wt = 0;
    if (auto s = r.ReadTag(&field, &wt); !s.ok()) return s;
    switch (field) {
      case 1:
      case 2:
      case 3: {
        if (auto s = ExpectWireType(r, wt, kLengthDelimited, "DDSketch message"); !s.ok()) return s;
        std::string_view sub;
        if (auto s = r.ReadLengthDelimited(&sub); !s.ok()) return s;
        absl::Status s = field == 1   ? ParseMapping(sub, &out->mapping)
                         : field == 2 ? ParseStore(sub, &out->positive)
                                      : ParseStore(sub, &out->negative);
        if (!s.ok()) return s;
        break;
      }
      case 4:
        if (auto s = ExpectWireType(r, wt, kFixed64, "zeroCount"); !s.ok()) return s;
        if (auto s = r.ReadDouble(&out->zero_count); !s.ok()) return s;
        if (!std::isfinite(out->zero_count) || out->zero_count < 0) {
          return r.Error(strings::Cat("invalid zero count ", out->zero_count));
        }
        break;
      default:
        if (auto s = r.Skip(wt); !s.ok()) return s;
    }
  }
  return out->mapping.Validate();
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// LogarithmicMapping

LogarithmicMapping::LogarithmicMapping(double relative_accuracy)
    : relative_accuracy_(SanitizeAccuracy(relative_accuracy)) {
  const double a = relative_accuracy_;
  gamma_ = (1 + a) / (1 - a);
  // log1p keeps precision for small α; equal to 1 / ln(γ).
  multiplier_ = 1 / std::log1p(2 * a / (1 - a));
  min_indexable_ = std::max(std::exp((std::numeric_limits<int32_t>::min() - index_offset_) / multiplier_ +
                                     1),  // index >= INT32_MIN
                            DBL_MIN * (1 + a) / (1 - a));
  max_indexable_ = std::min(std::exp((std::numeric_limits<int32_t>::max() - index_offset_) / multiplier_ -
                                     1),                        // index <= INT32_MAX
                            std::exp(kExpOverflow) / (1 + a));  // Value() stays finite
}

int32_t LogarithmicMapping::Index(double value) const {
  const double index = std::log(value) * multiplier_ + index_offset_;
  // Same rounding as sketches-go (truncation, minus one below zero), so bins match the agent's exactly.
  return index >= 0 ? static_cast<int32_t>(index) : static_cast<int32_t>(index) - 1;
}

double LogarithmicMapping::Value(int32_t index) const {
  return std::exp((static_cast<double>(index) - index_offset_) / multiplier_) * (1 + relative_accuracy_);
}

bool LogarithmicMapping::SameAs(const LogarithmicMapping& other) const {
  auto close = [](double x, double y) {
    if (x == 0 || y == 0) return std::abs(x) <= 1e-12 && std::abs(y) <= 1e-12;
    return std::abs(x - y) <= 1e-12 * std::max(std::abs(x), std::abs(y));
  };
  return close(multiplier_, other.multiplier_) && close(index_offset_, other.index_offset_);
}

// ---------------------------------------------------------------------------------------------------
// DenseStore

DenseStore::DenseStore(int32_t max_bins) : max_bins_(std::max<int32_t>(max_bins, 1)) {}

void DenseStore::Clear() {
  std::fill(bins_.begin(), bins_.end(), 0.0);
  count_ = 0;
  collapsed_ = false;
}

double DenseStore::BinCount(int32_t index) const {
  if (empty() || index < min_index_ || index > max_index_) return 0;
  return bins_[Position(index)];
}

int64_t DenseStore::Extend(int64_t new_min, int64_t new_max) {
  const int64_t width = new_max - new_min + 1;
  if (width > max_bins_) {
    // Keep the top max_bins indexes; everything below folds into the lowest kept bin.
    const int64_t lo = new_max - max_bins_ + 1;
    std::vector<double> next(static_cast<size_t>(max_bins_), 0.0);
    if (!empty()) {
      double folded = 0;
      for (int64_t i = min_index_; i <= max_index_; ++i) {
        const double c = bins_[static_cast<size_t>(i - offset_)];
        if (i < lo) {
          folded += c;
        } else {
          next[static_cast<size_t>(i - lo)] = c;
        }
      }
      next[0] += folded;
      if (min_index_ < lo) min_index_ = static_cast<int32_t>(lo);
    }
    bins_.swap(next);
    offset_ = lo;
    collapsed_ = true;
    return lo;
  }
  int64_t capacity = static_cast<int64_t>(bins_.size());
  if (capacity < width) capacity = std::max({width + width / 2, capacity * 2, kInitialBins});
  capacity = std::min<int64_t>(capacity, max_bins_);
  const int64_t next_offset = new_min - (capacity - width) / 2;  // room on both sides
  if (capacity == static_cast<int64_t>(bins_.size()) && empty()) {
    offset_ = next_offset;  // nothing to move
    return new_min;
  }
  std::vector<double> next(static_cast<size_t>(capacity), 0.0);
  if (!empty()) {
    for (int64_t i = min_index_; i <= max_index_; ++i) {
      next[static_cast<size_t>(i - next_offset)] = bins_[static_cast<size_t>(i - offset_)];
    }
  }
  bins_.swap(next);
  offset_ = next_offset;
  return new_min;
}

void DenseStore::Add(int32_t index, double count) {
  const int64_t i = index;
  if (!empty() && i >= offset_ && i < offset_ + static_cast<int64_t>(bins_.size())) {
    // Fast path: inside the current window (always the case once a group's range is known).
    bins_[Position(index)] += count;
    count_ += count;
    if (index < min_index_) min_index_ = index;
    if (index > max_index_) max_index_ = index;
    return;
  }
  if (empty()) {
    Extend(i, i);
    bins_[Position(index)] += count;
    count_ = count;
    min_index_ = max_index_ = index;
    return;
  }
  const int64_t lo = Extend(std::min<int64_t>(min_index_, i), std::max<int64_t>(max_index_, i));
  const int32_t effective = static_cast<int32_t>(std::max(i, lo));
  bins_[Position(effective)] += count;
  count_ += count;
  if (effective < min_index_) min_index_ = effective;
  if (index > max_index_) max_index_ = index;
}

void DenseStore::AddBins(std::vector<std::pair<int32_t, double>>* bins) {
  if (bins->empty()) return;
  std::sort(bins->begin(), bins->end());
  int64_t new_min = bins->front().first;
  int64_t new_max = bins->back().first;
  const bool was_empty = empty();
  if (!was_empty) {
    new_min = std::min<int64_t>(new_min, min_index_);
    new_max = std::max<int64_t>(new_max, max_index_);
  }
  int64_t lo = new_min;
  if (was_empty || new_min < offset_ || new_max >= offset_ + static_cast<int64_t>(bins_.size())) {
    if (was_empty) count_ = 0;
    lo = Extend(new_min, new_max);
  }
  int64_t lowest = was_empty ? std::numeric_limits<int64_t>::max() : int64_t{min_index_};
  for (const auto& [index, count] : *bins) {
    const int64_t effective = std::max<int64_t>(index, lo);
    bins_[static_cast<size_t>(effective - offset_)] += count;
    count_ += count;
    lowest = std::min(lowest, effective);
  }
  min_index_ = static_cast<int32_t>(std::max(lowest, lo));
  max_index_ = static_cast<int32_t>(new_max);
}

int32_t DenseStore::KeyAtRank(double rank) const {
  if (empty()) return 0;
  double n = 0;
  for (int64_t i = min_index_; i <= max_index_; ++i) {
    n += bins_[static_cast<size_t>(i - offset_)];
    if (n > rank) return static_cast<int32_t>(i);
  }
  return max_index_;
}

// ---------------------------------------------------------------------------------------------------
// DDSketch

DDSketch::DDSketch(double relative_accuracy, int32_t max_bins)
    : mapping_(relative_accuracy), positive_(max_bins), negative_(max_bins) {}

void DDSketch::NoteValue(double value, double count) {
  if (!seen_) {
    min_ = max_ = value;
    seen_ = true;
  } else {
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }
  sum_ += value * count;
}

bool DDSketch::Add(double value, double count) {
  if (!std::isfinite(count) || count < 0) return false;
  if (std::isnan(value) || value > mapping_.max_indexable() || value < -mapping_.max_indexable())
    return false;
  if (count == 0) return true;
  NoteValue(value, count);
  if (value > mapping_.min_indexable()) {
    positive_.Add(mapping_.Index(value), count);
  } else if (value < -mapping_.min_indexable()) {
    negative_.Add(mapping_.Index(-value), count);
  } else {
    zero_count_ += count;
  }
  return true;
}

void DDSketch::AddOwnBins(int sign, std::vector<std::pair<int32_t, double>>* bins) {
  if (bins->empty()) return;
  for (const auto& [index, count] : *bins) NoteValue(sign * mapping_.Value(index), count);
  (sign > 0 ? positive_ : negative_).AddBins(bins);
}

void DDSketch::Merge(const DDSketch& other) {
  if (other.empty()) return;
  const bool was_empty = !seen_;
  const double other_min = other.min_, other_max = other.max_, other_sum = other.sum_;
  std::vector<std::pair<int32_t, double>> pos, neg;
  double extra_zero = other.zero_count_;
  if (mapping_.SameAs(other.mapping_)) {
    other.positive_.ForEach([&](int32_t i, double c) { pos.emplace_back(i, c); });
    other.negative_.ForEach([&](int32_t i, double c) { neg.emplace_back(i, c); });
  } else {
    // Re-index each bin through its representative value.
    auto remap = [&](const DenseStore& store, std::vector<std::pair<int32_t, double>>* out) {
      store.ForEach([&](int32_t i, double c) {
        double v = std::min(other.mapping_.Value(i), mapping_.max_indexable());
        if (v > mapping_.min_indexable()) {
          out->emplace_back(mapping_.Index(v), c);
        } else {
          extra_zero += c;
        }
      });
    };
    remap(other.positive_, &pos);
    remap(other.negative_, &neg);
  }
  positive_.AddBins(&pos);
  negative_.AddBins(&neg);
  zero_count_ += extra_zero;
  sum_ += other_sum;
  min_ = was_empty ? other_min : std::min(min_, other_min);
  max_ = was_empty ? other_max : std::max(max_, other_max);
  seen_ = true;
}

std::optional<double> DDSketch::Quantile(double q) const {
  if (!(q >= 0 && q <= 1) || empty()) return std::nullopt;
  const double rank = q * (count() - 1);
  const double negative_count = negative_.total_count();
  double value;
  // The emptiness checks matter with huge counts, where count - 1 == count in floating point and the rank
  // can land past the last non-empty part.
  if (!negative_.empty() && (rank < negative_count || (positive_.empty() && zero_count_ <= 0))) {
    value = -mapping_.Value(negative_.KeyAtRank(std::max(0.0, negative_count - 1 - rank)));
  } else if (rank < zero_count_ + negative_count || positive_.empty()) {
    value = 0;
  } else {
    value = mapping_.Value(positive_.KeyAtRank(rank - zero_count_ - negative_count));
  }
  // The extremes are known exactly: never report a value outside them.
  return std::clamp(value, min_, max_);
}

void DDSketch::Clear() {
  positive_.Clear();
  negative_.Clear();
  zero_count_ = sum_ = min_ = max_ = 0;
  seen_ = false;
}

void DDSketch::EncodeTo(std::string* out) const {
  // mapping = 1 {gamma = 1; indexOffset = 2 (0: omitted); interpolation = 3 (NONE: omitted)}
  AppendTag(out, 1, kLengthDelimited);
  const bool has_offset = mapping_.index_offset() != 0;
  AppendVarint(out, 9 + (has_offset ? 9 : 0));
  AppendTag(out, 1, kFixed64);
  AppendDoubleLE(out, mapping_.gamma());
  if (has_offset) {
    AppendTag(out, 2, kFixed64);
    AppendDoubleLE(out, mapping_.index_offset());
  }
  // positiveValues = 2, negativeValues = 3: contiguous encoding from min to max index, like sketches-go's
  // dense stores. An empty store is still present (zero length), as Go marshals a non-nil message.
  auto encode_store = [out](uint32_t field, const DenseStore& store) {
    const size_t n = store.span();
    const int32_t offset = n ? store.min_index() : 0;
    const uint64_t packed_len = 8 * static_cast<uint64_t>(n);
    size_t body = 0;
    if (n) body += 1 + VarintSize(packed_len) + packed_len;
    if (offset != 0) body += 1 + VarintSize(ZigZag32(offset));
    AppendTag(out, field, kLengthDelimited);
    AppendVarint(out, body);
    if (n) {
      AppendTag(out, 2, kLengthDelimited);
      AppendVarint(out, packed_len);
      for (int64_t i = store.min_index(); i <= store.max_index(); ++i) {
        AppendDoubleLE(out, store.BinCount(static_cast<int32_t>(i)));
      }
    }
    if (offset != 0) {
      AppendTag(out, 3, kVarint);
      AppendVarint(out, ZigZag32(offset));
    }
  };
  encode_store(2, positive_);
  encode_store(3, negative_);
  if (zero_count_ != 0) {
    AppendTag(out, 4, kFixed64);
    AppendDoubleLE(out, zero_count_);
  }
}

std::string DDSketch::Encode() const {
  std::string out;
  out.reserve(48 + 8 * (positive_.span() + negative_.span()));
  EncodeTo(&out);
  return out;
}

absl::StatusOr<DDSketch> DDSketch::Decode(std::string_view bytes) {
  WireSketch wire;
  if (auto s = ParseSketch(bytes, &wire); !s.ok()) return s;
  DDSketch sketch;
  LogarithmicMapping ours = sketch.mapping_;
  const bool same = wire.mapping.interpolation == 0 && std::abs(wire.mapping.index_offset) <= 1e-12 &&
                    std::abs(wire.mapping.gamma - ours.gamma()) <= 1e-12 * ours.gamma();
  if (!same) {
    // Foreign mapping: re-index every bin through its representative value.
    auto remap = [&](std::vector<std::pair<int32_t, double>>* bins) {
      for (auto& [index, count] : *bins) {
        double v = wire.mapping.Value(index);
        if (!(v > ours.min_indexable())) {
          wire.zero_count += count;
          count = 0;
          continue;
        }
        index = ours.Index(std::min(v, ours.max_indexable()));
      }
      std::erase_if(*bins, [](const auto& b) { return b.second == 0; });
    };
    remap(&wire.positive);
    remap(&wire.negative);
  }
  sketch.AddOwnBins(+1, &wire.positive);
  sketch.AddOwnBins(-1, &wire.negative);
  if (wire.zero_count > 0) {
    sketch.NoteValue(0, wire.zero_count);
    sketch.zero_count_ += wire.zero_count;
  }
  return sketch;
}

absl::Status DDSketch::DecodeAndMerge(std::string_view bytes) {
  auto decoded = Decode(bytes);
  if (!decoded.ok()) return decoded.status();
  Merge(*decoded);
  return absl::OkStatus();
}

}  // namespace dogwatch::sketch
