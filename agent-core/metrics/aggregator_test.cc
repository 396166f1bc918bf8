#include "agent-core/metrics/aggregator.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace dogwatch::metrics {
namespace {

Sample MakeSample(std::string_view name, SampleType type, double value,
                  std::span<const std::string_view> tags = {}, std::string_view host = "host-a",
                  double rate = 1) {
  Sample s;
  s.name = name;
  s.type = type;
  s.value = value;
  s.sample_rate = rate;
  s.tags = tags;
  s.host = host;
  return s;
}

const Series* FindSeries(const Aggregator::Flushed& flushed, std::string_view name,
                         std::string_view host = "host-a") {
  for (const Series& s : flushed.series) {
    if (s.name == name && s.host == host) return &s;
  }
  return nullptr;
}

const SketchSeries* FindSketch(const Aggregator::Flushed& flushed, std::string_view name) {
  for (const SketchSeries& s : flushed.sketches) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("aggregator: count at @0.5 becomes a rate over the 10 s bucket") {
  Aggregator aggregator(AggregatorOptions{});
  for (int64_t t : {1000, 1003, 1009})
    aggregator.Add(MakeSample("hits", SampleType::kCount, 1, {}, "host-a", 0.5), t);
  const auto flushed = aggregator.Flush(1015);
  const Series* hits = FindSeries(flushed, "hits");
  REQUIRE(hits != nullptr);
  CHECK(hits->type == SeriesType::kRate);
  CHECK(hits->interval == 10);
  REQUIRE(hits->points.size() == 1);
  CHECK(hits->points[0].timestamp == 1000);
  CHECK(hits->points[0].value == Approx(0.6));  // (3 * 2) / 10
  CHECK(aggregator.GetCounters().samples_aggregated == 3);
}

TEST_CASE("aggregator: gauge keeps the last value of the bucket") {
  Aggregator aggregator(AggregatorOptions{});
  aggregator.Add(MakeSample("temp", SampleType::kGauge, 1), 2000);
  aggregator.Add(MakeSample("temp", SampleType::kGauge, 5), 2004);
  aggregator.Add(MakeSample("temp", SampleType::kGauge, 3), 2008);
  const auto flushed = aggregator.Flush(2010);
  const Series* temp = FindSeries(flushed, "temp");
  REQUIRE(temp != nullptr);
  CHECK(temp->type == SeriesType::kGauge);
  REQUIRE(temp->points.size() == 1);
  CHECK(temp->points[0].timestamp == 2000);
  CHECK(temp->points[0].value == 3);
}

TEST_CASE("aggregator: histogram aggregates and percentiles") {
  AggregatorOptions options;
  options.histogram_aggregates = {"max", "min", "median", "avg", "sum", "count", "bogus"};
  options.histogram_percentiles = {0.95, 0.5, 0.99};
  Aggregator aggregator(options);
  // 1..100 in a scrambled order.
  for (int i = 0; i < 100; ++i) {
    aggregator.Add(MakeSample("latency", SampleType::kHistogram, static_cast<double>((i * 37) % 100 + 1)),
                   3000);
  }
  const auto flushed = aggregator.Flush(3010);
  auto value = [&](std::string_view name) {
    const Series* s = FindSeries(flushed, name);
    REQUIRE(s != nullptr);
    REQUIRE(s->points.size() == 1);
    CHECK(s->points[0].timestamp == 3000);
    return s->points[0].value;
  };
  CHECK(value("latency.max") == 100);
  CHECK(value("latency.min") == 1);
  CHECK(value("latency.median") == 50);  // first value whose cumulative weight > (100 - 1) / 2
  CHECK(value("latency.avg") == 50.5);
  CHECK(value("latency.sum") == 5050);
  CHECK(value("latency.count") == 10);         // 100 samples / 10 s
  CHECK(value("latency.95percentile") == 95);  // target (95 * 100 - 1) / 100 = 94
  CHECK(value("latency.50percentile") == 50);
  CHECK(value("latency.99percentile") == 99);
  CHECK(FindSeries(flushed, "latency.count")->type == SeriesType::kRate);
  CHECK(FindSeries(flushed, "latency.max")->type == SeriesType::kGauge);
  CHECK(FindSeries(flushed, "latency.bogus") == nullptr);
  CHECK(flushed.series.size() == 9);
}

TEST_CASE("aggregator: default histogram outputs, timers, and 1/rate weights") {
  Aggregator aggregator(AggregatorOptions{});
  // 10 at weight 1, 20 at weight 4 (rate 0.25), 30 at weight 1: count 6, sum 10 + 80 + 30 = 120.
  aggregator.Add(MakeSample("req", SampleType::kTimer, 10), 4000);
  aggregator.Add(MakeSample("req", SampleType::kTimer, 20, {}, "host-a", 0.25), 4001);
  aggregator.Add(MakeSample("req", SampleType::kHistogram, 30), 4002);
  const auto flushed = aggregator.Flush(4010);
  CHECK(flushed.series.size() == 5);  // max, median, avg, count, 95percentile
  CHECK(FindSeries(flushed, "req.max")->points[0].value == 30);
  CHECK(FindSeries(flushed, "req.median")->points[0].value ==
        20);  // target (6 - 1) / 2 = 2 → cum(10)=1, cum(20)=5
  CHECK(FindSeries(flushed, "req.avg")->points[0].value == 20);  // 120 / 6
  CHECK(FindSeries(flushed, "req.count")->points[0].value == Approx(0.6));
  CHECK(FindSeries(flushed, "req.95percentile")->points[0].value == 30);  // target (95 * 6 - 1) / 100 = 5
}

TEST_CASE("aggregator: histograms beyond the raw-sample bound keep exact stats and sketch the rest") {
  AggregatorOptions options;
  options.max_histogram_samples_per_context = 10;
  options.histogram_aggregates = {"max", "min", "median", "avg", "count"};
  Aggregator aggregator(options);
  for (int i = 1; i <= 1000; ++i) aggregator.Add(MakeSample("big", SampleType::kHistogram, i), 5000);
  const auto flushed = aggregator.Flush(5010);
  CHECK(FindSeries(flushed, "big.max")->points[0].value == 1000);
  CHECK(FindSeries(flushed, "big.min")->points[0].value == 1);
  CHECK(FindSeries(flushed, "big.avg")->points[0].value == 500.5);
  CHECK(FindSeries(flushed, "big.count")->points[0].value == 100);
  CHECK(FindSeries(flushed, "big.median")->points[0].value == Approx(500).epsilon(0.01));
  CHECK(FindSeries(flushed, "big.95percentile")->points[0].value == Approx(950).epsilon(0.01));
  CHECK(aggregator.GetCounters().histogram_samples_sketched == 1000);
}

TEST_CASE("aggregator: set counts distinct values, bounded") {
  AggregatorOptions options;
  options.max_set_values_per_context = 3;
  Aggregator aggregator(options);
  for (std::string_view v : {"alice", "bob", "alice", "carol", "bob", "dave", "erin"}) {
    Sample s = MakeSample("users", SampleType::kSet, 0);
    s.set_value = v;
    aggregator.Add(s, 6000);
  }
  const auto flushed = aggregator.Flush(6010);
  const Series* users = FindSeries(flushed, "users");
  REQUIRE(users != nullptr);
  CHECK(users->type == SeriesType::kGauge);
  CHECK(users->points[0].value == 3);
  CHECK(aggregator.GetCounters().shed_set_values == 2);  // dave, erin
}

TEST_CASE("aggregator: distribution → one sketch point per bucket") {
  Aggregator aggregator(AggregatorOptions{});
  for (double v : {1.0, 2.0, 3.0, 4.0})
    aggregator.Add(MakeSample("payload", SampleType::kDistribution, v), 7000);
  aggregator.Add(MakeSample("payload", SampleType::kDistribution, 10.0, {}, "host-a", 0.5), 7005);
  aggregator.Add(MakeSample("payload", SampleType::kDistribution, 7.0), 7012);
  auto flushed = aggregator.Flush(7015);
  const SketchSeries* payload = FindSketch(flushed, "payload");
  REQUIRE(payload != nullptr);
  CHECK(payload->interval == 10);
  CHECK(payload->host == "host-a");
  REQUIRE(payload->points.size() == 1);
  const DogSketch& point = payload->points[0];
  CHECK(point.timestamp == 7000);
  CHECK(point.count == 6);  // the @0.5 value counts twice
  CHECK(point.min == 1);
  CHECK(point.max == 10);
  CHECK(point.sum == 30);
  CHECK(point.avg == 5);
  uint64_t total = 0;
  for (uint32_t n : point.counts) total += n;
  CHECK(total == 6);
  CHECK(flushed.series.empty());

  flushed = aggregator.Flush(7020);
  REQUIRE(FindSketch(flushed, "payload") != nullptr);
  CHECK(FindSketch(flushed, "payload")->points[0].timestamp == 7010);
  CHECK(FindSketch(flushed, "payload")->points[0].count == 1);
  const auto counters = aggregator.GetCounters();
  CHECK(counters.sketches_flushed == 2);
  CHECK(counters.sketch_points_flushed == 2);
}

TEST_CASE("aggregator: tags are sorted and de-duplicated; host is part of the context") {
  Aggregator aggregator(AggregatorOptions{});
  const std::vector<std::string_view> tags1 = {"role:db", "env:prod", "role:db"};
  const std::vector<std::string_view> tags2 = {"env:prod", "role:db"};
  const std::vector<std::string_view> tags3 = {"env:prod"};
  aggregator.Add(MakeSample("q", SampleType::kCount, 1, tags1), 100);
  aggregator.Add(MakeSample("q", SampleType::kCount, 1, tags2), 101);
  aggregator.Add(MakeSample("q", SampleType::kCount, 1, tags2, "host-b"), 102);
  aggregator.Add(MakeSample("q", SampleType::kCount, 1, tags3), 103);
  const auto flushed = aggregator.Flush(110);
  CHECK(aggregator.GetCounters().contexts_created == 3);
  REQUIRE(flushed.series.size() == 3);
  int found = 0;
  for (const Series& s : flushed.series) {
    if (s.host == "host-a" && s.tags == std::vector<std::string>{"env:prod", "role:db"}) {
      CHECK(s.points[0].value == Approx(0.2));
      ++found;
    } else if (s.host == "host-b") {
      CHECK(s.tags == std::vector<std::string>{"env:prod", "role:db"});
      CHECK(s.points[0].value == Approx(0.1));
      ++found;
    } else {
      CHECK(s.tags == std::vector<std::string>{"env:prod"});
      ++found;
    }
  }
  CHECK(found == 3);
  // Strings are pooled: q, host-a, host-b, env:prod, role:db.
  CHECK(aggregator.GetCounters().string_pool_entries == 5);
}

TEST_CASE("aggregator: many distinct contexts stay apart") {
  Aggregator aggregator(AggregatorOptions{});
  std::vector<std::string> names;
  std::vector<std::string> tag_storage;
  for (int i = 0; i < 2000; ++i) {
    names.push_back("m" + std::to_string(i % 50));
    tag_storage.push_back("k:" + std::to_string(i / 50));
  }
  for (int i = 0; i < 2000; ++i) {
    const std::string_view tag = tag_storage[static_cast<size_t>(i)];
    aggregator.Add(MakeSample(names[static_cast<size_t>(i)], SampleType::kGauge, i, {&tag, 1}), 100);
  }
  const auto flushed = aggregator.Flush(110);
  CHECK(aggregator.GetCounters().contexts_created == 2000);
  REQUIRE(flushed.series.size() == 2000);
  for (const Series& s : flushed.series) {
    const int i = static_cast<int>(s.points[0].value);
    CHECK(s.name == names[static_cast<size_t>(i)]);
    CHECK(s.tags == std::vector<std::string>{tag_storage[static_cast<size_t>(i)]});
  }
}

TEST_CASE("aggregator: bucket boundaries") {
  Aggregator aggregator(AggregatorOptions{});
  aggregator.Add(MakeSample("g", SampleType::kGauge, 1), 1009);
  aggregator.Add(MakeSample("g", SampleType::kGauge, 2), 1010);
  CHECK(aggregator.Flush(1009).series.empty());  // bucket 1000 still open
  auto flushed = aggregator.Flush(1015);
  REQUIRE(flushed.series.size() == 1);
  REQUIRE(flushed.series[0].points.size() == 1);
  CHECK(flushed.series[0].points[0].timestamp == 1000);
  CHECK(flushed.series[0].points[0].value == 1);
  CHECK(aggregator.Flush(1019).series.empty());
  flushed = aggregator.Flush(1020);
  REQUIRE(flushed.series.size() == 1);
  CHECK(flushed.series[0].points[0].timestamp == 1010);
  CHECK(flushed.series[0].points[0].value == 2);

  // Two closed buckets in one flush become two points of one series, in time order.
  aggregator.Add(MakeSample("g", SampleType::kGauge, 3), 1021);
  aggregator.Add(MakeSample("g", SampleType::kGauge, 4), 1035);
  flushed = aggregator.Flush(1040);
  REQUIRE(flushed.series.size() == 1);
  REQUIRE(flushed.series[0].points.size() == 2);
  CHECK(flushed.series[0].points[0].timestamp == 1020);
  CHECK(flushed.series[0].points[1].timestamp == 1030);
  CHECK(flushed.series[0].points[1].value == 4);
}

TEST_CASE("aggregator: counters send 0 until dogstatsd_expiry_seconds, then disappear") {
  Aggregator aggregator(AggregatorOptions{});  // context expiry 20, counter expiry 300
  aggregator.Add(MakeSample("c", SampleType::kCount, 5), 100);
  std::vector<Point> points;
  for (int64_t now = 115; now <= 600; now += 15) {  // Datadog's 15 s flush period
    const auto flushed = aggregator.Flush(now);
    for (const Series& s : flushed.series) {
      CHECK(s.name == "c");
      CHECK(s.type == SeriesType::kRate);
      points.insert(points.end(), s.points.begin(), s.points.end());
    }
  }
  // Bucket 100 holds the sample, then one 0 per bucket while 100 + 300 > bucket start.
  REQUIRE(points.size() == 30);
  CHECK(points[0].timestamp == 100);
  CHECK(points[0].value == Approx(0.5));
  for (size_t i = 1; i < points.size(); ++i) {
    CHECK(points[i].timestamp == 100 + static_cast<int64_t>(i) * 10);
    CHECK(points[i].value == 0);
  }
  CHECK(points.back().timestamp == 390);
  const auto counters = aggregator.GetCounters();
  CHECK(counters.contexts_live == 0);  // gone once 100 + 20 + 300 < now
  CHECK(counters.contexts_expired == 1);
  CHECK(counters.string_pool_entries == 0);
}

TEST_CASE("aggregator: counter context survives until expiry and restarts its zeros") {
  Aggregator aggregator(AggregatorOptions{});
  aggregator.Add(MakeSample("c", SampleType::kCount, 1), 100);
  aggregator.Flush(110);
  aggregator.Flush(400);                               // the zeros for 110..390
  CHECK(aggregator.GetCounters().contexts_live == 1);  // 100 + 320 >= 400
  aggregator.Add(MakeSample("c", SampleType::kCount, 2), 405);
  const auto flushed = aggregator.Flush(410);
  REQUIRE(flushed.series.size() == 1);
  REQUIRE(flushed.series[0].points.size() == 1);
  CHECK(flushed.series[0].points[0].timestamp == 400);
  CHECK(flushed.series[0].points[0].value == Approx(0.2));
  CHECK(aggregator.GetCounters().contexts_created == 1);
}

TEST_CASE("aggregator: non-counter contexts expire after context_expiry_seconds") {
  Aggregator aggregator(AggregatorOptions{});
  aggregator.Add(MakeSample("g", SampleType::kGauge, 1), 100);
  CHECK(aggregator.Flush(110).series.size() == 1);
  CHECK(aggregator.Flush(120).series.empty());         // no zero-fill for gauges
  CHECK(aggregator.GetCounters().contexts_live == 1);  // 100 + 20 >= 120
  aggregator.Flush(121);
  CHECK(aggregator.GetCounters().contexts_live == 0);
  CHECK(aggregator.GetCounters().contexts_expired == 1);
}

TEST_CASE("aggregator: contexts beyond max_contexts are shed and counted") {
  AggregatorOptions options;
  options.max_contexts = 2;
  Aggregator aggregator(options);
  aggregator.Add(MakeSample("a", SampleType::kGauge, 1), 100);
  aggregator.Add(MakeSample("b", SampleType::kGauge, 1), 100);
  aggregator.Add(MakeSample("c", SampleType::kGauge, 1), 100);
  aggregator.Add(MakeSample("a", SampleType::kGauge, 2), 101);  // existing: accepted
  const auto counters = aggregator.GetCounters();
  CHECK(counters.shed_context_limit == 1);
  CHECK(counters.contexts_live == 2);
  CHECK(counters.samples_in == 4);
  CHECK(counters.samples_aggregated == 3);
  const auto flushed = aggregator.Flush(110);
  CHECK(flushed.series.size() == 2);
  CHECK(FindSeries(flushed, "a")->points[0].value == 2);
  CHECK(FindSeries(flushed, "c") == nullptr);
}

TEST_CASE("aggregator: timestamped samples pass through") {
  AggregatorOptions options;
  options.max_timestamped_samples = 2;
  Aggregator aggregator(options);
  const std::vector<std::string_view> tags = {"b", "a", "b"};
  Sample gauge = MakeSample("late.gauge", SampleType::kGauge, 42, tags);
  gauge.timestamp = 1600000000;
  Sample count = MakeSample("late.count", SampleType::kCount, 30, {}, "host-a", 0.5);
  count.timestamp = 1600000005;
  Sample histogram = MakeSample("late.hist", SampleType::kHistogram, 1);
  histogram.timestamp = 1600000000;
  aggregator.Add(gauge, 1700000000);
  aggregator.Add(count, 1700000000);
  aggregator.Add(histogram, 1700000000);
  aggregator.Add(gauge, 1700000000);  // queue full
  const auto flushed = aggregator.Flush(1700000001);
  const Series* g = FindSeries(flushed, "late.gauge");
  REQUIRE(g != nullptr);
  CHECK(g->type == SeriesType::kGauge);
  CHECK(g->tags == std::vector<std::string>{"a", "b"});
  REQUIRE(g->points.size() == 1);
  CHECK(g->points[0].timestamp == 1600000000);
  CHECK(g->points[0].value == 42);
  const Series* c = FindSeries(flushed, "late.count");
  REQUIRE(c != nullptr);
  CHECK(c->type == SeriesType::kRate);  // Datadog's no-aggregation pipeline: value / 10, rate ignored
  CHECK(c->interval == 10);
  CHECK(c->points[0].timestamp == 1600000005);
  CHECK(c->points[0].value == 3);
  const auto counters = aggregator.GetCounters();
  CHECK(counters.timestamped_in == 2);
  CHECK(counters.shed_timestamped_unsupported == 1);
  CHECK(counters.shed_timestamped_limit == 1);
  CHECK(counters.contexts_created == 0);
  CHECK(aggregator.Flush(1700000002).series.empty());
}

TEST_CASE("aggregator: invalid values and type mismatches are shed and counted") {
  Aggregator aggregator(AggregatorOptions{});
  aggregator.Add(MakeSample("x", SampleType::kGauge, NAN), 100);
  aggregator.Add(MakeSample("x", SampleType::kGauge, INFINITY), 100);
  aggregator.Add(MakeSample("x", SampleType::kGauge, 1), 100);
  aggregator.Add(MakeSample("x", SampleType::kCount, 1), 100);
  const auto counters = aggregator.GetCounters();
  CHECK(counters.shed_invalid_value == 2);
  CHECK(counters.shed_type_mismatch == 1);
  CHECK(counters.samples_aggregated == 1);
}

TEST_CASE("aggregator: concurrent Add and AddBatch lose nothing") {
  Aggregator aggregator(AggregatorOptions{});
  const std::vector<std::string_view> tags = {"t:1"};
  auto worker = [&aggregator, &tags] {
    std::vector<Sample> batch(10, MakeSample("n", SampleType::kCount, 1, tags));
    for (int i = 0; i < 500; ++i) {
      aggregator.Add(MakeSample("n", SampleType::kCount, 1, tags), 100);
      aggregator.AddBatch(batch, 100);
    }
  };
  std::thread a(worker);
  std::thread b(worker);
  a.join();
  b.join();
  const auto flushed = aggregator.Flush(110);
  REQUIRE(flushed.series.size() == 1);
  CHECK(flushed.series[0].points[0].value == Approx(2 * 500 * 11 / 10.0));
  const auto counters = aggregator.GetCounters();
  CHECK(counters.samples_in == 11000);
  CHECK(counters.series_flushed == 1);
  CHECK(counters.points_flushed == 1);
}

}  // namespace dogwatch::metrics

namespace dogwatch::metrics {

TEST_CASE("aggregator: sample rates outside (0, 1] count as 1, like Datadog's sketch insert") {
  Aggregator aggregator(AggregatorOptions{});
  aggregator.Add(MakeSample("r", SampleType::kCount, 10, {}, "host-a", 0), 100);
  aggregator.Add(MakeSample("r", SampleType::kCount, 10, {}, "host-a", 2), 100);
  aggregator.Add(MakeSample("d", SampleType::kDistribution, 10, {}, "host-a", -1), 100);
  const auto flushed = aggregator.Flush(110);
  CHECK(FindSeries(flushed, "r")->points[0].value == 2);  // (10 + 10) / 10
  REQUIRE(FindSketch(flushed, "d") != nullptr);
  CHECK(FindSketch(flushed, "d")->points[0].count == 1);
}

}  // namespace dogwatch::metrics
