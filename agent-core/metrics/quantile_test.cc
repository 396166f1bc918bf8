#include "agent-core/metrics/quantile.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

namespace dogwatch::metrics {
namespace {

// The agent's key, computed straight from its constants (pkg/quantile/config.go) as a check on
// the implementation: gamma = 1 + 2/128, bias = 1 - floor(log(1e-9) / log(gamma)).
int32_t ReferenceKey(double v) {
  const double ln_gamma = std::log1p(2.0 / 128.0);
  const int32_t bias = 1 - static_cast<int32_t>(std::floor(std::log(1e-9) / ln_gamma));
  return static_cast<int32_t>(std::nearbyint(std::log(v) / ln_gamma)) + bias;
}

// The exact value of 0-based rank round_half_even(q * (n - 1)) in sorted data.
double ExactQuantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<size_t>(std::nearbyint(q * static_cast<double>(values.size() - 1)));
  return values[rank];
}

}  // namespace

TEST_CASE("quantile sketch: default mapping constants match the agent's") {
  CHECK(QuantileSketch::kGamma == 1.015625);
  CHECK(QuantileSketch::Bias() == 1338);  // emin = floor(ln(1e-9) / ln(1.015625)) = -1337
  CHECK(QuantileSketch::MinMagnitude() == Approx(9.94185408912145e-10).epsilon(1e-12));
  CHECK(QuantileSketch::kBinLimit == 4096);
}

TEST_CASE("quantile sketch: keys for known values") {
  // Values computed independently (round-half-even of ln(v)/ln(gamma), plus the bias 1338).
  CHECK(QuantileSketch::KeyOf(1.0) == 1338);
  CHECK(QuantileSketch::KeyOf(2.0) == 1383);
  CHECK(QuantileSketch::KeyOf(3.5) == 1419);
  CHECK(QuantileSketch::KeyOf(10.0) == 1487);
  CHECK(QuantileSketch::KeyOf(100.0) == 1635);
  CHECK(QuantileSketch::KeyOf(0.5) == 1293);
  CHECK(QuantileSketch::KeyOf(0.001) == 892);
  CHECK(QuantileSketch::KeyOf(1e6) == 2229);
  CHECK(QuantileSketch::KeyOf(1e-9) == 1);  // just above the smallest magnitude
  // Zero and magnitudes below gamma^-1337 share key 0; negatives mirror positives.
  CHECK(QuantileSketch::KeyOf(0.0) == 0);
  CHECK(QuantileSketch::KeyOf(1e-10) == 0);
  CHECK(QuantileSketch::KeyOf(-1e-10) == 0);
  CHECK(QuantileSketch::KeyOf(-1.0) == -1338);
  CHECK(QuantileSketch::KeyOf(-100.0) == -1635);
  // Beyond gamma^(32766 - bias): the +/-inf keys.
  CHECK(QuantileSketch::KeyOf(1e300) == 32767);
  CHECK(QuantileSketch::KeyOf(-1e300) == -32767);
  CHECK(QuantileSketch::KeyOf(INFINITY) == 32767);

  for (double v : {1e-8, 0.123, 0.999, 1.001, 7.0, 42.0, 1234.5, 9.87e7, 3.3e12}) {
    INFO(v);
    CHECK(QuantileSketch::KeyOf(v) == ReferenceKey(v));
    CHECK(QuantileSketch::KeyOf(-v) == -ReferenceKey(v));
  }
}

TEST_CASE("quantile sketch: key(value_of(k)) == k over the whole finite key range") {
  for (int32_t k = 1; k <= QuantileSketch::kMaxKey; ++k) {
    const double v = QuantileSketch::ValueOfKey(k);
    if (!std::isfinite(v)) break;
    if (QuantileSketch::KeyOf(v) != k) {
      FAIL("key " << k << " maps back to " << QuantileSketch::KeyOf(v));
    }
  }
  CHECK(QuantileSketch::ValueOfKey(1338) == 1.0);
  CHECK(QuantileSketch::ValueOfKey(0) == 0.0);
  CHECK(QuantileSketch::ValueOfKey(-1338) == -1.0);
}

TEST_CASE("quantile sketch: count, min, max, sum, avg are exact") {
  QuantileSketch sketch;
  CHECK(sketch.empty());
  for (double v : {3.0, -2.0, 10.5, 0.0, 7.25}) CHECK(sketch.Add(v));
  CHECK(sketch.count() == 5);
  CHECK(sketch.min() == -2.0);
  CHECK(sketch.max() == 10.5);
  CHECK(sketch.sum() == 18.75);
  CHECK(sketch.avg() == 3.75);
  const DogSketch wire = sketch.ToDogSketch(1700000000);
  CHECK(wire.timestamp == 1700000000);
  CHECK(wire.count == 5);
  CHECK(wire.min == -2.0);
  CHECK(wire.max == 10.5);
  CHECK(wire.sum == 18.75);
  CHECK(wire.avg == 3.75);
  const std::vector<int32_t> expected_keys = {QuantileSketch::KeyOf(-2.0), 0, QuantileSketch::KeyOf(3.0),
                                              QuantileSketch::KeyOf(7.25), QuantileSketch::KeyOf(10.5)};
  CHECK(wire.keys == expected_keys);
  CHECK(wire.counts == std::vector<uint32_t>{1, 1, 1, 1, 1});
}

TEST_CASE("quantile sketch: non-finite values and zero weights are refused") {
  QuantileSketch sketch;
  CHECK_FALSE(sketch.Add(NAN));
  CHECK_FALSE(sketch.Add(INFINITY));
  CHECK_FALSE(sketch.Add(1.0, 0));
  CHECK(sketch.empty());
  CHECK(sketch.bin_count() == 0);
}

TEST_CASE("quantile sketch: weights behave like repeated inserts") {
  QuantileSketch weighted;
  QuantileSketch repeated;
  weighted.Add(5.0, 4);
  weighted.Add(1.0, 2);
  for (int i = 0; i < 4; ++i) repeated.Add(5.0);
  for (int i = 0; i < 2; ++i) repeated.Add(1.0);
  const DogSketch a = weighted.ToDogSketch(0);
  const DogSketch b = repeated.ToDogSketch(0);
  CHECK(a.count == 6);
  CHECK(a.sum == 22.0);
  CHECK(a.keys == b.keys);
  CHECK(a.counts == b.counts);
  CHECK(a.counts == std::vector<uint32_t>{2, 4});
}

TEST_CASE("quantile sketch: counts above uint16 are split into bins with the same key") {
  QuantileSketch sketch;
  sketch.Add(1.0, 70000);
  DogSketch wire = sketch.ToDogSketch(0);
  // The remainder bin first, then the full one (the agent's appendSafe).
  CHECK(wire.keys == std::vector<int32_t>{1338, 1338});
  CHECK(wire.counts == std::vector<uint32_t>{70000 - 65535, 65535});

  sketch.Add(1.0, 65535 * 2);  // total 201070 = 3 * 65535 + 4465
  wire = sketch.ToDogSketch(0);
  CHECK(wire.keys == std::vector<int32_t>{1338, 1338, 1338, 1338});
  CHECK(wire.counts == std::vector<uint32_t>{4465, 65535, 65535, 65535});
  CHECK(wire.count == 201070);

  // Neighbouring keys are unaffected and stay in order.
  sketch.Add(0.5);
  sketch.Add(2.0);
  wire = sketch.ToDogSketch(0);
  CHECK(wire.keys.front() == 1293);
  CHECK(wire.keys.back() == 1383);
  CHECK(std::is_sorted(wire.keys.begin(), wire.keys.end()));
}

TEST_CASE("quantile sketch: the bin limit collapses the lowest bins") {
  QuantileSketch sketch;
  const int32_t distinct = 5000;
  for (int32_t i = 0; i < distinct; ++i) {
    sketch.Add(QuantileSketch::ValueOfKey(1338 + i));  // one value per key, from 1.0 upwards
  }
  CHECK(sketch.bin_count() == QuantileSketch::kBinLimit);
  CHECK(sketch.count() == distinct);
  const DogSketch wire = sketch.ToDogSketch(0);
  uint64_t total = 0;
  for (uint32_t n : wire.counts) total += n;
  CHECK(total == static_cast<uint64_t>(distinct));
  // The 904 lowest keys were folded into the lowest kept key, which now holds 905 values.
  CHECK(wire.keys.front() == 1338 + (distinct - 4096));
  CHECK(wire.counts.front() == static_cast<uint32_t>(distinct - 4096 + 1));
  CHECK(wire.keys.back() == 1338 + distinct - 1);
  // Upper quantiles keep their accuracy.
  CHECK(sketch.Quantile(0.99) == Approx(QuantileSketch::ValueOfKey(1338 + 4949)).epsilon(1e-12));
}

TEST_CASE("quantile sketch: quantiles within relative accuracy on uniform and exponential data") {
  std::mt19937_64 rng(42);
  SECTION("uniform") {
    std::uniform_real_distribution<double> dist(1.0, 1000.0);
    std::vector<double> values(20000);
    QuantileSketch sketch;
    for (double& v : values) {
      v = dist(rng);
      sketch.Add(v);
    }
    for (double q : {0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99}) {
      INFO("q=" << q);
      CHECK(sketch.Quantile(q) == Approx(ExactQuantile(values, q)).epsilon(0.01));
    }
    CHECK(sketch.Quantile(0) == *std::min_element(values.begin(), values.end()));
    CHECK(sketch.Quantile(1) == *std::max_element(values.begin(), values.end()));
  }
  SECTION("exponential") {
    std::exponential_distribution<double> dist(0.01);
    std::vector<double> values(20000);
    QuantileSketch sketch;
    for (double& v : values) {
      v = dist(rng);
      sketch.Add(v);
    }
    for (double q : {0.05, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999}) {
      INFO("q=" << q);
      CHECK(sketch.Quantile(q) == Approx(ExactQuantile(values, q)).epsilon(0.01));
    }
  }
  SECTION("negative and positive values") {
    std::normal_distribution<double> dist(0.0, 100.0);
    std::vector<double> values(20000);
    QuantileSketch sketch;
    for (double& v : values) {
      v = dist(rng);
      sketch.Add(v);
    }
    for (double q : {0.01, 0.1, 0.9, 0.99}) {
      INFO("q=" << q);
      CHECK(sketch.Quantile(q) == Approx(ExactQuantile(values, q)).epsilon(0.01));
    }
  }
}

TEST_CASE("quantile sketch: merge equals inserting everything into one sketch") {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(3.0, 1.5);
  QuantileSketch left;
  QuantileSketch right;
  QuantileSketch all;
  for (int i = 0; i < 5000; ++i) {
    const double v = dist(rng);
    (i % 3 == 0 ? left : right).Add(v, static_cast<uint32_t>(1 + i % 4));
    all.Add(v, static_cast<uint32_t>(1 + i % 4));
  }
  left.Merge(right);
  const DogSketch merged = left.ToDogSketch(0);
  const DogSketch single = all.ToDogSketch(0);
  CHECK(merged.count == single.count);
  CHECK(merged.min == single.min);
  CHECK(merged.max == single.max);
  CHECK(merged.sum == Approx(single.sum).epsilon(1e-12));
  CHECK(merged.keys == single.keys);
  CHECK(merged.counts == single.counts);

  QuantileSketch empty;
  empty.Merge(all);
  CHECK(empty.ToDogSketch(0).counts == single.counts);
}

}  // namespace dogwatch::metrics
