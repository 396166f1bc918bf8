#include "agent-core/metrics/aggregator.h"

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <absl/container/node_hash_map.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <string_view>
#include <utility>

#include "agent-core/metrics/quantile.h"

namespace dogwatch::metrics {
namespace {

// ---- Hashing of borrowed views -------------------------------------------------------------
// A word-at-a-time 64-bit hash (multiply-fold mixing); only needs to spread well and be fast on
// short strings (metric names and tags are 5–60 bytes).

constexpr uint64_t kMulA = 0x9e3779b97f4a7c15ULL;
constexpr uint64_t kMulB = 0xbf58476d1ce4e5b9ULL;
constexpr uint64_t kMulC = 0x94d049bb133111ebULL;
constexpr uint64_t kMulD = 0xc2b2ae3d27d4eb4fULL;
constexpr uint64_t kSeedName = 0x1d8e4e27c47d124fULL;
constexpr uint64_t kSeedHost = 0x4f1bbcdcbfa53e0bULL;
constexpr uint64_t kSeedTag = 0x2545f4914f6cdd1dULL;

inline uint64_t MulFold(uint64_t a, uint64_t b) {
  const unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(product) ^ static_cast<uint64_t>(product >> 64);
}

inline uint64_t Load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline uint64_t Load32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint64_t HashBytes(std::string_view s, uint64_t seed) {
  const char* p = s.data();
  size_t n = s.size();
  uint64_t h = seed ^ (static_cast<uint64_t>(n) * kMulA);
  while (n > 16) {
    h = MulFold(Load64(p) ^ kMulC, Load64(p + 8) ^ h);
    p += 16;
    n -= 16;
  }
  uint64_t a = 0;
  uint64_t b = 0;
  if (n >= 8) {  // two overlapping words cover 8..16 bytes
    a = Load64(p);
    b = Load64(p + n - 8);
  } else if (n >= 4) {
    a = Load32(p);
    b = Load32(p + n - 4);
  } else if (n > 0) {
    a = (static_cast<uint64_t>(static_cast<uint8_t>(p[0])) << 16) |
        (static_cast<uint64_t>(static_cast<uint8_t>(p[n / 2])) << 8) | static_cast<uint8_t>(p[n - 1]);
  }
  h = MulFold(a ^ kMulC ^ h, b ^ kMulD);
  return MulFold(h ^ kMulA, kMulB ^ seed);
}

// Heterogeneous (std::string_view) lookup for string-keyed absl tables; Debian's abseil has its
// own string_view type, so the default hasher does not accept std::string_view.
struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return HashBytes(s, kSeedTag); }
};
struct StringViewEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};
using StringSet = absl::flat_hash_set<std::string, StringViewHash, StringViewEq>;

// ---- String pool ---------------------------------------------------------------------------
// Contexts share their strings: a tag such as `env:prod` is stored once however many contexts
// carry it. Node-based, so the views handed out stay valid until the last reference goes.
class StringPool {
 public:
  std::string_view Acquire(std::string_view s) {
    auto it = refs_.find(s);
    if (it == refs_.end()) it = refs_.emplace(std::string(s), 0).first;
    ++it->second;
    return it->first;
  }
  void Release(std::string_view s) {
    auto it = refs_.find(s);
    if (it == refs_.end()) return;
    if (--it->second == 0) refs_.erase(it);
  }
  size_t size() const { return refs_.size(); }

 private:
  absl::node_hash_map<std::string, uint32_t, StringViewHash, StringViewEq> refs_;
};

// ---- Per-context state ---------------------------------------------------------------------

enum class Kind : uint8_t { kGauge, kCounter, kHistogram, kDistribution, kSet };

Kind KindOf(SampleType type) {
  switch (type) {
    case SampleType::kGauge:
      return Kind::kGauge;
    case SampleType::kCount:
      return Kind::kCounter;
    case SampleType::kHistogram:
    case SampleType::kTimer:
      return Kind::kHistogram;
    case SampleType::kDistribution:
      return Kind::kDistribution;
    case SampleType::kSet:
      return Kind::kSet;
  }
  return Kind::kGauge;
}

struct WeightedValue {
  double value;
  int64_t weight;
};

struct HistogramState {
  std::vector<WeightedValue> samples;  // bounded; beyond the bound everything moves to `sketch`
  QuantileSketch sketch;
  bool sketched = false;
  int64_t count = 0;  // sum of weights
  double sum = 0;     // sum of value * (1 / rate), as Datadog computes it
  double min = 0;
  double max = 0;

  void Reset() {
    // Keep a modest capacity for the next bucket, release a large one.
    if (samples.capacity() > 64) {
      std::vector<WeightedValue>().swap(samples);
    } else {
      samples.clear();
    }
    sketch.Reset();
    sketched = false;
    count = 0;
    sum = 0;
    min = 0;
    max = 0;
  }
};

// One bucket of one context. Kept across buckets (reset, not freed) so that steady-state Adds
// do not allocate.
struct Slot {
  int64_t bucket_start = 0;
  bool used = false;
  double value = 0;  // gauge: last value; counter: sum of value / rate
  std::unique_ptr<HistogramState> histogram;
  std::unique_ptr<StringSet> set;
  std::unique_ptr<QuantileSketch> sketch;
};

constexpr size_t kMaxSlotsPerContext = 8;  // unflushed buckets per context (normally 1 or 2)
constexpr uint32_t kNoContext = std::numeric_limits<uint32_t>::max();

struct Context {
  uint64_t hash = 0;
  std::string_view name;               // pooled
  std::string_view host;               // pooled
  std::vector<std::string_view> tags;  // pooled, sorted, unique
  // (tag hash, index in `tags`) sorted by hash: lets a lookup compare position by position.
  std::vector<std::pair<uint64_t, uint32_t>> tag_hashes;
  Kind kind = Kind::kGauge;
  int64_t last_seen = 0;
  int64_t next_zero_fill_bucket = 0;  // counters: first bucket not yet emitted
  uint32_t collision_next = kNoContext;
  std::vector<Slot> slots;
};

struct HistogramOutput {
  enum class What : uint8_t { kMax, kMin, kMedian, kAvg, kSum, kCount, kPercentile };
  What what;
  int percentile = 0;  // 1..100 for kPercentile
  std::string suffix;
};

int64_t WeightOf(double sample_rate) {
  // Datadog: int64(1 / rate); rates outside (0, 1] are treated as 1.
  if (!(sample_rate > 0 && sample_rate <= 1)) return 1;
  const double inverse = 1.0 / sample_rate;
  if (inverse >= static_cast<double>(std::numeric_limits<uint32_t>::max())) {
    return std::numeric_limits<uint32_t>::max();
  }
  return static_cast<int64_t>(inverse);
}

double InverseRate(double sample_rate) {
  if (!(sample_rate > 0 && sample_rate <= 1)) return 1;
  return 1.0 / sample_rate;
}

}  // namespace

class Aggregator::Impl {
 public:
  explicit Impl(AggregatorOptions options) : options_(std::move(options)) {
    if (options_.bucket_seconds <= 0) options_.bucket_seconds = 10;
    for (const std::string& aggregate : options_.histogram_aggregates) {
      HistogramOutput out{HistogramOutput::What::kMax, 0, "." + aggregate};
      if (aggregate == "max") {
        out.what = HistogramOutput::What::kMax;
      } else if (aggregate == "min") {
        out.what = HistogramOutput::What::kMin;
      } else if (aggregate == "median") {
        out.what = HistogramOutput::What::kMedian;
      } else if (aggregate == "avg") {
        out.what = HistogramOutput::What::kAvg;
      } else if (aggregate == "sum") {
        out.what = HistogramOutput::What::kSum;
      } else if (aggregate == "count") {
        out.what = HistogramOutput::What::kCount;
      } else {
        continue;  // Datadog skips unknown aggregates too
      }
      histogram_outputs_.push_back(std::move(out));
    }
    std::vector<int> percentiles;
    for (double p : options_.histogram_percentiles) {
      if (!(p >= 0 && p <= 1)) continue;
      // Datadog adds 0.5 before truncating so that 0.29 gives 29, not 28.
      percentiles.push_back(static_cast<int>(p * 100 + 0.5));
    }
    std::sort(percentiles.begin(), percentiles.end());
    percentiles.erase(std::unique(percentiles.begin(), percentiles.end()), percentiles.end());
    for (int p : percentiles) {
      histogram_outputs_.push_back(
          HistogramOutput{HistogramOutput::What::kPercentile, p, "." + std::to_string(p) + "percentile"});
    }
  }

  ~Impl() {
    for (auto& context : contexts_) {
      if (context) ReleaseStrings(*context);
    }
  }

  void Add(const Sample& sample, int64_t now) {
    std::lock_guard<std::mutex> lock(mu_);
    AddLocked(sample, now);
  }

  void AddBatch(std::span<const Sample> samples, int64_t now) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Sample& sample : samples) AddLocked(sample, now);
  }

  Flushed Flush(int64_t now) {
    std::lock_guard<std::mutex> lock(mu_);
    Flushed out;
    const int64_t cutoff = BucketStart(now);
    for (auto& context : contexts_) {
      if (context) FlushContext(*context, cutoff, out);
    }
    for (Series& series : timestamped_) {
      counters_.points_flushed += series.points.size();
      out.series.push_back(std::move(series));
    }
    counters_.series_flushed += timestamped_.size();
    timestamped_.clear();
    ExpireContexts(now);
    return out;
  }

  Counters GetCounters() const {
    std::lock_guard<std::mutex> lock(mu_);
    Counters copy = counters_;
    copy.contexts_live = live_contexts_;
    copy.string_pool_entries = pool_.size();
    return copy;
  }

 private:
  int64_t BucketStart(int64_t t) const {
    // Floor (not truncation) so that times before the epoch still land in the right bucket.
    int64_t remainder = t % options_.bucket_seconds;
    if (remainder < 0) remainder += options_.bucket_seconds;
    return t - remainder;
  }

  void AddLocked(const Sample& sample, int64_t now) {
    ++counters_.samples_in;
    if (sample.timestamp != 0) {
      AddTimestamped(sample);
      return;
    }
    const Kind kind = KindOf(sample.type);
    if (kind != Kind::kSet && !std::isfinite(sample.value)) {
      ++counters_.shed_invalid_value;
      return;
    }
    Context* context = FindOrCreateContext(sample, kind, now);
    if (context == nullptr) return;  // counted by FindOrCreateContext
    if (context->kind != kind) {
      ++counters_.shed_type_mismatch;
      return;
    }
    Slot* slot = SlotFor(*context, BucketStart(now));
    if (slot == nullptr) {
      ++counters_.shed_bucket_limit;
      return;
    }
    if (!Update(*slot, kind, sample)) return;  // counted by Update
    context->last_seen = std::max(context->last_seen, now);
    ++counters_.samples_aggregated;
  }

  bool Update(Slot& slot, Kind kind, const Sample& sample) {
    switch (kind) {
      case Kind::kGauge:
        slot.value = sample.value;
        return true;
      case Kind::kCounter:
        slot.value += sample.value * InverseRate(sample.sample_rate);
        return true;
      case Kind::kHistogram: {
        if (!slot.histogram) slot.histogram = std::make_unique<HistogramState>();
        HistogramState& h = *slot.histogram;
        const int64_t weight = WeightOf(sample.sample_rate);
        if (h.count == 0) {
          h.min = sample.value;
          h.max = sample.value;
        } else {
          h.min = std::min(h.min, sample.value);
          h.max = std::max(h.max, sample.value);
        }
        h.count += weight;
        h.sum += sample.value * InverseRate(sample.sample_rate);
        if (!h.sketched && h.samples.size() >= options_.max_histogram_samples_per_context) {
          for (const WeightedValue& wv : h.samples) {
            h.sketch.Add(wv.value,
                         static_cast<uint32_t>(std::min<int64_t>(wv.weight, QuantileSketch::kMaxBinCount)));
          }
          counters_.histogram_samples_sketched += h.samples.size();
          h.samples.clear();
          h.sketched = true;
        }
        if (h.sketched) {
          h.sketch.Add(sample.value,
                       static_cast<uint32_t>(std::min<int64_t>(weight, QuantileSketch::kMaxBinCount)));
          ++counters_.histogram_samples_sketched;
        } else {
          h.samples.push_back(WeightedValue{sample.value, weight});
        }
        return true;
      }
      case Kind::kDistribution:
        if (!slot.sketch) slot.sketch = std::make_unique<QuantileSketch>();
        // A weight above a bin's capacity would spread one sample over several bins; rates below
        // 1/65535 are treated as 1/65535 to keep a sketch bounded.
        slot.sketch->Add(sample.value, static_cast<uint32_t>(std::min<int64_t>(
                                           WeightOf(sample.sample_rate), QuantileSketch::kMaxBinCount)));
        return true;
      case Kind::kSet: {
        if (!slot.set) slot.set = std::make_unique<StringSet>();
        if (slot.set->contains(sample.set_value)) return true;
        if (slot.set->size() >= options_.max_set_values_per_context) {
          ++counters_.shed_set_values;
          return false;
        }
        slot.set->emplace(sample.set_value);
        return true;
      }
    }
    return false;
  }

  // Hashes the sample's name, host and tags into scratch_tags_ (sorted unique tag hashes with
  // their index in sample.tags) and returns the context hash. No allocation once warm.
  uint64_t HashContext(const Sample& sample) {
    scratch_tags_.clear();
    for (uint32_t i = 0; i < sample.tags.size(); ++i) {
      scratch_tags_.emplace_back(HashBytes(sample.tags[i], kSeedTag), i);
    }
    if (scratch_tags_.size() <= 16) {  // insertion sort beats std::sort on the usual handful
      for (size_t i = 1; i < scratch_tags_.size(); ++i) {
        auto item = scratch_tags_[i];
        size_t j = i;
        while (j > 0 && scratch_tags_[j - 1].first > item.first) {
          scratch_tags_[j] = scratch_tags_[j - 1];
          --j;
        }
        scratch_tags_[j] = item;
      }
    } else {
      std::sort(scratch_tags_.begin(), scratch_tags_.end());
    }
    // Duplicate tags hash alike: keep one of each.
    scratch_tags_.erase(std::unique(scratch_tags_.begin(), scratch_tags_.end(),
                                    [](const auto& a, const auto& b) { return a.first == b.first; }),
                        scratch_tags_.end());
    uint64_t h =
        MulFold(HashBytes(sample.name, kSeedName) ^ kMulA, HashBytes(sample.host, kSeedHost) ^ kMulB);
    for (const auto& tag : scratch_tags_) h = MulFold(h ^ tag.first, kMulC);
    return h;
  }

  bool Matches(const Context& context, const Sample& sample) const {
    if (context.name != sample.name || context.host != sample.host) return false;
    if (context.tag_hashes.size() != scratch_tags_.size()) return false;
    for (size_t i = 0; i < scratch_tags_.size(); ++i) {
      if (context.tag_hashes[i].first != scratch_tags_[i].first) return false;
      if (context.tags[context.tag_hashes[i].second] != sample.tags[scratch_tags_[i].second]) return false;
    }
    return true;
  }

  Context* FindOrCreateContext(const Sample& sample, Kind kind, int64_t now) {
    const uint64_t hash = HashContext(sample);
    auto head = head_by_hash_.find(hash);
    if (head != head_by_hash_.end()) {
      for (uint32_t index = head->second; index != kNoContext; index = contexts_[index]->collision_next) {
        Context& candidate = *contexts_[index];
        if (Matches(candidate, sample)) return &candidate;
      }
    }
    if (live_contexts_ >= options_.max_contexts) {
      ++counters_.shed_context_limit;
      return nullptr;
    }
    auto context = std::make_unique<Context>();
    context->hash = hash;
    context->kind = kind;
    context->last_seen = now;
    context->next_zero_fill_bucket = BucketStart(now);
    context->name = pool_.Acquire(sample.name);
    context->host = pool_.Acquire(sample.host);
    std::vector<std::string_view> sorted(sample.tags.begin(), sample.tags.end());
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    context->tags.reserve(sorted.size());
    for (std::string_view tag : sorted) context->tags.push_back(pool_.Acquire(tag));
    context->tag_hashes.reserve(scratch_tags_.size());
    for (const auto& [tag_hash, sample_index] : scratch_tags_) {
      const std::string_view tag = sample.tags[sample_index];
      const auto at = std::lower_bound(context->tags.begin(), context->tags.end(), tag);
      context->tag_hashes.emplace_back(tag_hash, static_cast<uint32_t>(at - context->tags.begin()));
    }

    uint32_t index;
    if (!free_indices_.empty()) {
      index = free_indices_.back();
      free_indices_.pop_back();
    } else {
      index = static_cast<uint32_t>(contexts_.size());
      contexts_.emplace_back();
    }
    if (head != head_by_hash_.end()) {
      context->collision_next = head->second;
      head->second = index;
    } else {
      head_by_hash_.emplace(hash, index);
    }
    contexts_[index] = std::move(context);
    ++live_contexts_;
    ++counters_.contexts_created;
    return contexts_[index].get();
  }

  Slot* SlotFor(Context& context, int64_t bucket_start) {
    Slot* free_slot = nullptr;
    for (Slot& slot : context.slots) {
      if (slot.used && slot.bucket_start == bucket_start) return &slot;
      if (!slot.used && free_slot == nullptr) free_slot = &slot;
    }
    if (free_slot == nullptr) {
      if (context.slots.size() >= kMaxSlotsPerContext) return nullptr;
      free_slot = &context.slots.emplace_back();
    }
    free_slot->used = true;
    free_slot->bucket_start = bucket_start;
    free_slot->value = 0;
    return free_slot;
  }

  void AddTimestamped(const Sample& sample) {
    SeriesType type;
    double value = sample.value;
    switch (sample.type) {
      case SampleType::kGauge:
        type = SeriesType::kGauge;
        break;
      case SampleType::kCount:
        // Datadog's no-aggregation pipeline sends counts as rates over the bucket interval.
        type = SeriesType::kRate;
        value /= static_cast<double>(options_.bucket_seconds);
        break;
      default:
        ++counters_.shed_timestamped_unsupported;
        return;
    }
    if (!std::isfinite(sample.value)) {
      ++counters_.shed_invalid_value;
      return;
    }
    if (timestamped_.size() >= options_.max_timestamped_samples) {
      ++counters_.shed_timestamped_limit;
      return;
    }
    Series series;
    series.name = std::string(sample.name);
    series.tags.assign(sample.tags.begin(), sample.tags.end());
    std::sort(series.tags.begin(), series.tags.end());
    series.tags.erase(std::unique(series.tags.begin(), series.tags.end()), series.tags.end());
    series.host = std::string(sample.host);
    series.type = type;
    series.interval = options_.bucket_seconds;
    series.points.push_back(Point{sample.timestamp, value});
    timestamped_.push_back(std::move(series));
    ++counters_.timestamped_in;
  }

  Series NewSeries(const Context& context, std::string_view suffix, SeriesType type) const {
    Series series;
    series.name.reserve(context.name.size() + suffix.size());
    series.name.append(context.name).append(suffix);
    series.tags.assign(context.tags.begin(), context.tags.end());
    series.host = std::string(context.host);
    series.type = type;
    series.interval = options_.bucket_seconds;
    return series;
  }

  void EmitSeries(Series&& series, Flushed& out) {
    if (series.points.empty()) return;
    ++counters_.series_flushed;
    counters_.points_flushed += series.points.size();
    out.series.push_back(std::move(series));
  }

  void FlushContext(Context& context, int64_t cutoff, Flushed& out) {
    const int64_t interval = options_.bucket_seconds;
    closed_.clear();
    for (Slot& slot : context.slots) {
      if (slot.used && slot.bucket_start + interval <= cutoff) closed_.push_back(&slot);
    }
    const bool zero_fill = context.kind == Kind::kCounter && context.next_zero_fill_bucket < cutoff;
    if (closed_.empty() && !zero_fill) return;
    std::sort(closed_.begin(), closed_.end(),
              [](const Slot* a, const Slot* b) { return a->bucket_start < b->bucket_start; });

    switch (context.kind) {
      case Kind::kGauge: {
        Series series = NewSeries(context, "", SeriesType::kGauge);
        for (const Slot* slot : closed_) series.points.push_back(Point{slot->bucket_start, slot->value});
        EmitSeries(std::move(series), out);
        break;
      }
      case Kind::kCounter: {
        Series series = NewSeries(context, "", SeriesType::kRate);
        for (const Slot* slot : closed_) {
          series.points.push_back(Point{slot->bucket_start, slot->value / static_cast<double>(interval)});
        }
        AppendCounterZeros(context, cutoff, series.points);
        std::sort(series.points.begin(), series.points.end(),
                  [](const Point& a, const Point& b) { return a.timestamp < b.timestamp; });
        EmitSeries(std::move(series), out);
        break;
      }
      case Kind::kSet: {
        Series series = NewSeries(context, "", SeriesType::kGauge);
        for (const Slot* slot : closed_) {
          const size_t distinct = slot->set ? slot->set->size() : 0;
          series.points.push_back(Point{slot->bucket_start, static_cast<double>(distinct)});
        }
        EmitSeries(std::move(series), out);
        break;
      }
      case Kind::kHistogram:
        FlushHistogram(context, out);
        break;
      case Kind::kDistribution: {
        SketchSeries sketch_series;
        for (const Slot* slot : closed_) {
          if (slot->sketch && !slot->sketch->empty()) {
            sketch_series.points.push_back(slot->sketch->ToDogSketch(slot->bucket_start));
          }
        }
        if (!sketch_series.points.empty()) {
          sketch_series.name = std::string(context.name);
          sketch_series.tags.assign(context.tags.begin(), context.tags.end());
          sketch_series.host = std::string(context.host);
          sketch_series.interval = interval;
          ++counters_.sketches_flushed;
          counters_.sketch_points_flushed += sketch_series.points.size();
          out.sketches.push_back(std::move(sketch_series));
        }
        break;
      }
    }

    for (Slot* slot : closed_) {
      slot->used = false;
      slot->value = 0;
      if (slot->histogram) slot->histogram->Reset();
      if (slot->set) {
        // Sets can be large; do not keep a big table around for the next bucket.
        if (slot->set->size() > 64) {
          slot->set.reset();
        } else {
          slot->set->clear();
        }
      }
      if (slot->sketch) slot->sketch->Reset();
    }
    if (context.kind == Kind::kCounter) {
      context.next_zero_fill_bucket = std::max(context.next_zero_fill_bucket, cutoff);
    }
  }

  // Datadog keeps sending 0 for a counter while last_seen + dogstatsd_expiry_seconds > bucket.
  void AppendCounterZeros(const Context& context, int64_t cutoff, std::vector<Point>& points) const {
    const int64_t interval = options_.bucket_seconds;
    // Never look further back than the expiry window (bounds the loop after a long pause).
    const int64_t window_buckets = options_.counter_expiry_seconds / interval + 2;
    const int64_t first = std::max(context.next_zero_fill_bucket, cutoff - window_buckets * interval);
    for (int64_t bucket = first; bucket < cutoff; bucket += interval) {
      if (context.last_seen + options_.counter_expiry_seconds <= bucket) break;
      const bool sampled = std::any_of(closed_.begin(), closed_.end(),
                                       [bucket](const Slot* slot) { return slot->bucket_start == bucket; });
      if (!sampled) points.push_back(Point{bucket, 0});
    }
  }

  void FlushHistogram(const Context& context, Flushed& out) {
    std::vector<Series> series;
    series.reserve(histogram_outputs_.size());
    for (const HistogramOutput& output : histogram_outputs_) {
      series.push_back(
          NewSeries(context, output.suffix,
                    output.what == HistogramOutput::What::kCount ? SeriesType::kRate : SeriesType::kGauge));
    }
    for (Slot* slot : closed_) {
      if (!slot->histogram || slot->histogram->count == 0) continue;
      HistogramState& h = *slot->histogram;
      if (!h.sketched) {
        std::sort(h.samples.begin(), h.samples.end(),
                  [](const WeightedValue& a, const WeightedValue& b) { return a.value < b.value; });
      }
      for (size_t i = 0; i < histogram_outputs_.size(); ++i) {
        const HistogramOutput& output = histogram_outputs_[i];
        double value = 0;
        switch (output.what) {
          case HistogramOutput::What::kMax:
            value = h.max;
            break;
          case HistogramOutput::What::kMin:
            value = h.min;
            break;
          case HistogramOutput::What::kMedian:
            value = ValueAtWeightedRank(h, (h.count - 1) / 2);
            break;
          case HistogramOutput::What::kAvg:
            value = h.sum / static_cast<double>(h.count);
            break;
          case HistogramOutput::What::kSum:
            value = h.sum;
            break;
          case HistogramOutput::What::kCount:
            value = static_cast<double>(h.count) / static_cast<double>(options_.bucket_seconds);
            break;
          case HistogramOutput::What::kPercentile:
            value = ValueAtWeightedRank(h, (static_cast<int64_t>(output.percentile) * h.count - 1) / 100);
            break;
        }
        series[i].points.push_back(Point{slot->bucket_start, value});
      }
    }
    for (Series& s : series) EmitSeries(std::move(s), out);
  }

  // Datadog: walk the samples in value order, the first whose cumulative weight exceeds `target`.
  static double ValueAtWeightedRank(const HistogramState& h, int64_t target) {
    if (h.sketched) return h.sketch.ValueAtRank(target);
    int64_t cumulative = 0;
    for (const WeightedValue& wv : h.samples) {
      cumulative += wv.weight;
      if (cumulative > target) return wv.value;
    }
    return h.max;
  }

  void ExpireContexts(int64_t now) {
    for (uint32_t index = 0; index < contexts_.size(); ++index) {
      Context* context = contexts_[index].get();
      if (context == nullptr) continue;
      int64_t ttl = options_.context_expiry_seconds;
      if (context->kind == Kind::kCounter) ttl += options_.counter_expiry_seconds;
      if (context->last_seen + ttl >= now) continue;
      const bool pending = std::any_of(context->slots.begin(), context->slots.end(),
                                       [](const Slot& slot) { return slot.used; });
      if (pending) continue;  // never drop unflushed data
      Unlink(index);
      ReleaseStrings(*context);
      contexts_[index].reset();
      free_indices_.push_back(index);
      --live_contexts_;
      ++counters_.contexts_expired;
    }
  }

  void Unlink(uint32_t index) {
    const uint64_t hash = contexts_[index]->hash;
    auto head = head_by_hash_.find(hash);
    if (head == head_by_hash_.end()) return;
    if (head->second == index) {
      const uint32_t next = contexts_[index]->collision_next;
      if (next == kNoContext) {
        head_by_hash_.erase(head);
      } else {
        head->second = next;
      }
      return;
    }
    for (uint32_t at = head->second; at != kNoContext; at = contexts_[at]->collision_next) {
      if (contexts_[at]->collision_next == index) {
        contexts_[at]->collision_next = contexts_[index]->collision_next;
        return;
      }
    }
  }

  void ReleaseStrings(const Context& context) {
    pool_.Release(context.name);
    pool_.Release(context.host);
    for (std::string_view tag : context.tags) pool_.Release(tag);
  }

  AggregatorOptions options_;
  std::vector<HistogramOutput> histogram_outputs_;

  mutable std::mutex mu_;
  StringPool pool_;
  std::vector<std::unique_ptr<Context>> contexts_;
  std::vector<uint32_t> free_indices_;
  absl::flat_hash_map<uint64_t, uint32_t> head_by_hash_;  // context hash → first context of its chain
  size_t live_contexts_ = 0;
  std::vector<Series> timestamped_;
  Counters counters_;
  // Scratch buffers reused under the lock.
  std::vector<std::pair<uint64_t, uint32_t>> scratch_tags_;
  std::vector<Slot*> closed_;
};

Aggregator::Aggregator(AggregatorOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Aggregator::~Aggregator() = default;

void Aggregator::Add(const Sample& sample, int64_t now_unix) { impl_->Add(sample, now_unix); }

void Aggregator::AddBatch(std::span<const Sample> samples, int64_t now_unix) {
  impl_->AddBatch(samples, now_unix);
}

Aggregator::Flushed Aggregator::Flush(int64_t now_unix) { return impl_->Flush(now_unix); }

Aggregator::Counters Aggregator::GetCounters() const { return impl_->GetCounters(); }

}  // namespace dogwatch::metrics
