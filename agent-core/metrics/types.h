#pragma once
// The metric data model shared by DogStatsD, the host checks, the aggregator and the serializer.
//
// Input side (hot path): `Sample` borrows every string from its producer (a DogStatsD datagram, a
// check's scratch buffer) and is valid only during the call that receives it; the aggregator copies
// what it keeps when it creates a context. Output side (every flush, 15 s): `Series`, `SketchSeries`,
// `Event` and `ServiceCheck` own their strings, because they outlive the producers and are queued.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dogwatch::metrics {

// What a producer says a value is. DogStatsD types map 1:1 (`g c h ms d s`); checks also use
// kRate/kMonotonicCount, whose derivative the check computes itself, and submit the result as a gauge.
enum class SampleType : uint8_t {
  kGauge,         // g: last value in the bucket
  kCount,         // c: sum of value/sample_rate, sent as a rate with interval 10
  kHistogram,     // h: max/median/avg/count/percentiles
  kTimer,         // ms: treated as a histogram
  kDistribution,  // d: a quantile sketch, sent to /api/beta/sketches
  kSet,           // s: count of distinct values, sent as a gauge
};

// One value for the aggregator. Tags are individual `key:value` or bare tags, in any order and
// possibly duplicated; the aggregator sorts and de-duplicates them to build the context key. The
// producer has already removed special tags (`host:`) and added global and origin tags.
struct Sample {
  std::string_view name;
  SampleType type = SampleType::kGauge;
  double value = 0;            // every type but kSet
  std::string_view set_value;  // kSet only
  double sample_rate = 1;      // (0, 1]; counts are divided by it, histograms weighted by 1/rate
  std::span<const std::string_view> tags;
  std::string_view host;  // empty = no host (e.g. a `host:` tag with an empty value)
  int64_t timestamp = 0;  // unix seconds; 0 = "now" (aggregated); non-zero = passed through
};

// Series v2 MetricType values (agent-payload MetricPayload.MetricType).
enum class SeriesType : int32_t { kUnspecified = 0, kCount = 1, kRate = 2, kGauge = 3 };

struct Point {
  int64_t timestamp = 0;  // unix seconds
  double value = 0;
};

// One metric context with the points of one flush, ready for /api/v2/series.
struct Series {
  std::string name;
  std::vector<std::string> tags;  // sorted, unique
  std::string host;
  SeriesType type = SeriesType::kGauge;
  int64_t interval = 0;  // seconds; the aggregator sets 10 on every aggregated series, as Datadog does
  std::vector<Point> points;
  std::string source_type_name;  // e.g. "System" for host checks, empty for DogStatsD
};

// One point of a distribution, in the agent's `pkg/quantile` sketch form: `keys` are the bin keys
// in ascending order, `counts` their counts; a key repeats when its count exceeds 65535 (uint16
// bins, as Datadog's sketch splits them). cnt/min/max/sum/avg are exact.
struct DogSketch {
  int64_t timestamp = 0;  // unix seconds, start of the 10 s bucket
  int64_t count = 0;
  double min = 0;
  double max = 0;
  double sum = 0;
  double avg = 0;
  std::vector<int32_t> keys;
  std::vector<uint32_t> counts;
};

struct SketchSeries {
  std::string name;
  std::vector<std::string> tags;  // sorted, unique
  std::string host;
  int64_t interval = 10;
  std::vector<DogSketch> points;
};

enum class EventPriority : uint8_t { kNormal, kLow };
enum class EventAlertType : uint8_t { kInfo, kError, kWarning, kSuccess };

struct Event {
  std::string title;
  std::string text;       // `\n` escapes already turned into newlines
  int64_t timestamp = 0;  // 0 = now, filled by the receiver
  std::string host;
  std::string aggregation_key;
  EventPriority priority = EventPriority::kNormal;
  std::string source_type_name;
  EventAlertType alert_type = EventAlertType::kInfo;
  std::vector<std::string> tags;
};

enum class ServiceCheckStatus : uint8_t { kOk = 0, kWarning = 1, kCritical = 2, kUnknown = 3 };

struct ServiceCheck {
  std::string name;
  ServiceCheckStatus status = ServiceCheckStatus::kUnknown;
  int64_t timestamp = 0;  // 0 = now, filled by the receiver
  std::string host;
  std::string message;
  std::vector<std::string> tags;
};

}  // namespace dogwatch::metrics
