#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "trace-agent/stats/sampler.h"
#include "trace-agent/stats/sampler_core.h"

namespace dogwatch::trace::sampler {
namespace {

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kStart = 1'700'000'000 * kSec;

// A synthetic clock the sampler reads.
struct FakeClock {
  int64_t now = kStart;
  TraceSampler::Clock Fn() {
    return [this] { return now; };
  }
};

TraceChunk Chunk(uint64_t trace_id, std::string service, int32_t priority, bool error = false) {
  TraceChunk c;
  c.priority = priority;
  Span root;
  root.service = std::move(service);
  root.name = "http.request";
  root.resource = "GET /";
  root.trace_id = trace_id;
  root.span_id = trace_id ^ 0x5555;
  root.parent_id = 0;
  root.error = error ? 1 : 0;
  Set(root.metrics, kTopLevelKey, 1);
  Span child = root;
  child.span_id = root.span_id + 1;
  child.parent_id = root.span_id;
  child.name = "db.query";
  child.error = 0;
  c.spans = {root, child};
  return c;
}

SamplerConfig Defaults() {
  SamplerConfig c;
  c.agent_env = "agent-env";
  return c;
}

// Runs `tps` chunks per second of `service` through the sampler for `seconds`, calling Update each
// second. Returns how many were kept during the last `measure_seconds`.
int Drive(TraceSampler& s, FakeClock& clock, std::mt19937_64& rng, const std::string& service,
          int32_t priority, int tps, int seconds, int measure_seconds, bool error = false,
          std::string_view env = "prod", double dropped_weight = 0) {
  int kept = 0;
  for (int sec = 0; sec < seconds; ++sec) {
    for (int i = 0; i < tps; ++i) {
      clock.now += kSec / tps;
      auto c = Chunk(rng(), service, priority, error);
      auto d = s.Sample(c, c.spans[0], env, dropped_weight > 0, dropped_weight);
      if (sec >= seconds - measure_seconds && d.keep) ++kept;
    }
    s.Update(clock.now);
  }
  return kept;
}

TEST_CASE("SampleByRate and signatures are deterministic") {
  CHECK(SampleByRate(12345, 1.0));
  CHECK_FALSE(SampleByRate(12345, 0.0));
  // The Knuth hash of trace id 1 is 1111111111111111111, about 6% of 2^64.
  CHECK_FALSE(SampleByRate(1, 0.05));
  CHECK(SampleByRate(1, 0.07));
  std::mt19937_64 rng(1);
  int kept = 0;
  for (int i = 0; i < 100000; ++i) kept += SampleByRate(rng(), 0.25);
  CHECK(std::abs(kept - 25000) < 1000);

  CHECK(ServiceSignature("web", "prod") == ServiceSignature("web", "prod"));
  CHECK(ServiceSignature("web", "prod") != ServiceSignature("web", "staging"));
  Span a;
  a.service = "web";
  a.name = "op";
  Span b = a;
  b.error = 1;
  CHECK(SpanHash(a, "prod", false) != SpanHash(b, "prod", false));
  Set(a.meta, "http.status_code", "500");
  CHECK(SpanHash(a, "prod", false) != SpanHash(b, "prod", false));

  Span root;
  CHECK(WeightRoot(&root) == 1);
  Set(root.metrics, "_sample_rate", 0.5);
  Set(root.metrics, "_dd1.sr.rapre", 0.5);
  CHECK(WeightRoot(&root) == 4);
  Set(root.metrics, "_sample_rate", 7);  // out of range: ignored
  CHECK(WeightRoot(&root) == 2);
}

TEST_CASE("priority sampler keeps priority > 0 and drops the rest") {
  FakeClock clock;
  TraceSampler s(Defaults(), clock.Fn());
  struct Case {
    int32_t priority;
    bool keep;
  };
  for (auto [priority, keep] : std::vector<Case>{{2, true}, {1, true}, {0, false}, {-1, false}}) {
    auto c = Chunk(99, "web", priority);
    auto d = s.Sample(c, c.spans[0], "prod", false);
    CHECK(d.keep == keep);
    CHECK(d.sampler == SamplerName::kPriority);
    CHECK(d.priority == priority);
    CHECK(c.dropped_trace == !keep);
  }
  // A user reject with an error is not rescued by the errors sampler.
  auto rejected = Chunk(5, "web", -1, /*error=*/true);
  CHECK_FALSE(s.Sample(rejected, rejected.spans[0], "prod", false).keep);
  auto counters = s.counters();
  CHECK(counters.kept[static_cast<int>(SamplerName::kPriority)] == 2);
  CHECK(counters.priority_by_value[0] == 2);  // two -1
  CHECK(counters.priority_by_value[3] == 1);  // one 2

  // The root's priority metric is used when the chunk carries none.
  auto from_metric = Chunk(7, "web", kPriorityNone);
  Set(from_metric.spans[0].metrics, kSamplingPriorityKey, 1);
  auto d = s.Sample(from_metric, from_metric.spans[0], "prod", false);
  CHECK(d.keep);
  CHECK(d.sampler == SamplerName::kPriority);
}

TEST_CASE("rate_by_service converges to the target and spreads it over services") {
  FakeClock clock;
  TraceSampler s(Defaults(), clock.Fn());
  std::mt19937_64 rng(2);
  // 100 TPS of "api" and 4 TPS of "cron", interleaved over two minutes.
  for (int sec = 0; sec < 120; ++sec) {
    for (int i = 0; i < 104; ++i) {
      clock.now += kSec / 104;
      auto c = Chunk(rng(), i % 26 == 0 ? "cron" : "api", 1);
      s.Sample(c, c.spans[0], "prod", false);
    }
    s.Update(clock.now);
  }
  auto rates = s.RateByService();
  // target 10: cron uses 4 (rate 1), the remaining 6 go to api's 100 TPS.
  REQUIRE(rates.contains("service:api,env:prod"));
  CHECK(rates["service:api,env:prod"] == Approx(0.06).epsilon(0.05));
  CHECK(rates["service:cron,env:prod"] == Approx(1.0));
  REQUIRE(rates.contains("service:,env:"));
  CHECK(rates["service:,env:"] == Approx(0.06).epsilon(0.05));  // never above the lowest service rate
  CHECK_FALSE(rates.contains("service:api,env:"));              // only for the agent's env
  CHECK(s.rates_version() > 1);

  // A kept root gets the rate it was counted with, unless the tracer recorded its own.
  auto c = Chunk(rng(), "api", 1);
  s.Sample(c, c.spans[0], "prod", false);
  const double* rate = Find(c.spans[0].metrics, "_sampling_priority_rate_v1");
  REQUIRE(rate);
  CHECK(*rate == Approx(0.06).epsilon(0.05));
  CHECK(Find(c.spans[1].metrics, "_sampling_priority_rate_v1") == nullptr);
  auto own = Chunk(rng(), "api", 1);
  Set(own.spans[0].metrics, "_dd.agent_psr", 0.5);
  s.Sample(own, own.spans[0], "prod", false);
  CHECK(Find(own.spans[0].metrics, "_sampling_priority_rate_v1") == nullptr);
}

TEST_CASE("rate increases are capped at x1.2 per rotation, and rates decay to the default without traffic") {
  FakeClock clock;
  TraceSampler s(Defaults(), clock.Fn());
  std::mt19937_64 rng(3);
  Drive(s, clock, rng, "api", 0, 100, 60, 0);
  const double low = s.RateByService()["service:api,env:prod"];
  CHECK(low == Approx(0.1).epsilon(0.05));
  // Traffic drops to 2 TPS: the rate climbs back to 1 by at most 20% per 5 s rotation.
  double previous = low;
  bool reached_one = false;
  for (int sec = 0; sec < 120; ++sec) {
    Drive(s, clock, rng, "api", 0, 2, 1, 0);
    const double r = s.RateByService()["service:api,env:prod"];
    CHECK(r <= previous * 1.2 + 1e-9);
    previous = r;
    reached_one = reached_one || r == 1.0;
  }
  CHECK(reached_one);
  // No traffic at all: after the 30 s window the service leaves the table.
  clock.now += 60 * kSec;
  s.Update(clock.now);
  clock.now += 5 * kSec;
  s.Update(clock.now);
  auto rates = s.RateByService();
  CHECK_FALSE(rates.contains("service:api,env:prod"));
  CHECK(rates["service:,env:"] == 1.0);
}

TEST_CASE("rate_by_service: agent env entries, empty tracer env, client-dropped P0 weight") {
  FakeClock clock;
  TraceSampler s(Defaults(), clock.Fn());
  std::mt19937_64 rng(4);
  // Tracers without env share the agent env's rates, and get an "env:" entry.
  Drive(s, clock, rng, "worker", 1, 20, 40, 0, false, "");
  auto rates = s.RateByService();
  CHECK(rates.contains("service:worker,env:agent-env"));
  CHECK(rates.contains("service:worker,env:"));
  CHECK(rates["service:worker,env:"] == rates["service:worker,env:agent-env"]);
  CHECK(rates["service:worker,env:agent-env"] == Approx(0.5).epsilon(0.05));

  // 10 P1 chunks/s, each standing for 9 more P0 chunks the tracer dropped itself: 100 TPS seen.
  // (80 s: worker's traffic must leave the 30 s window, then lean's rate climbs by x1.2 per rotation.)
  Drive(s, clock, rng, "lean", 1, 10, 80, 0, false, "prod", 9);
  CHECK(s.RateByService()["service:lean,env:prod"] == Approx(0.1).epsilon(0.05));
}

TEST_CASE("errors sampler keeps errors within its own budget") {
  FakeClock clock;
  TraceSampler s(Defaults(), clock.Fn());
  std::mt19937_64 rng(5);
  // 100 error chunks/s dropped by priority: the errors sampler keeps about errors_per_second (10).
  const int kept = Drive(s, clock, rng, "api", 0, 100, 120, 60, /*error=*/true);
  CHECK(kept > 450);
  CHECK(kept < 750);
  auto c = Chunk(rng(), "api", 0, true);
  SamplingDecision d;
  for (int i = 0; i < 1000 && !d.keep; ++i) {
    c = Chunk(rng(), "api", 0, true);
    d = s.Sample(c, c.spans[0], "prod", false);
  }
  REQUIRE(d.keep);
  CHECK(d.sampler == SamplerName::kError);
  const double* sr = Find(c.spans[0].metrics, "_dd.errors_sr");
  REQUIRE(sr);
  CHECK(*sr == Approx(0.1).epsilon(0.1));

  // errors_per_second = 0 turns it off.
  SamplerConfig off = Defaults();
  off.error_tps = 0;
  TraceSampler none(off, clock.Fn());
  CHECK(Drive(none, clock, rng, "api", 0, 50, 20, 20, true) == 0);
}

TEST_CASE("no-priority sampler targets target_traces_per_second by signature") {
  FakeClock clock;
  TraceSampler s(Defaults(), clock.Fn());
  std::mt19937_64 rng(6);
  const int kept = Drive(s, clock, rng, "legacy", kPriorityNone, 100, 120, 60);
  CHECK(kept > 450);
  CHECK(kept < 750);
  auto c = Chunk(rng(), "legacy", kPriorityNone);
  SamplingDecision d;
  for (int i = 0; i < 1000 && !d.keep; ++i) {
    c = Chunk(rng(), "legacy", kPriorityNone);
    d = s.Sample(c, c.spans[0], "prod", false);
  }
  REQUIRE(d.keep);
  CHECK(d.sampler == SamplerName::kNoPriority);
  CHECK(Find(c.spans[0].metrics, "_dd.no_p_sr") != nullptr);
  CHECK(s.counters().no_priority > 0);
}

TEST_CASE("rare sampler: off by default; when on, keeps unseen signatures once per cooldown") {
  FakeClock clock;
  {
    TraceSampler s(Defaults(), clock.Fn());
    auto c = Chunk(1, "api", 0);
    CHECK_FALSE(s.Sample(c, c.spans[0], "prod", false).keep);
  }
  SamplerConfig cfg = Defaults();
  cfg.rare_sampler_enabled = true;
  TraceSampler s(cfg, clock.Fn());
  auto c = Chunk(1, "api", 0);
  auto d = s.Sample(c, c.spans[0], "prod", false);
  CHECK(d.keep);
  CHECK(d.sampler == SamplerName::kRare);
  CHECK(Find(c.spans[0].metrics, "_dd.rare") != nullptr);
  // Same signature within the 5 min cooldown: not rare any more.
  clock.now += 60 * kSec;
  auto again = Chunk(2, "api", 0);
  CHECK_FALSE(s.Sample(again, again.spans[0], "prod", false).keep);
  // After the cooldown it is rare again.
  clock.now += 300 * kSec;
  auto later = Chunk(3, "api", 0);
  CHECK(s.Sample(later, later.spans[0], "prod", false).keep);
  // Signatures kept by priority sampling are not rare.
  auto p1 = Chunk(4, "billing", 1);
  CHECK(s.Sample(p1, p1.spans[0], "prod", false).sampler == SamplerName::kPriority);
  auto p0 = Chunk(5, "billing", 0);
  CHECK_FALSE(s.Sample(p0, p0.spans[0], "prod", false).keep);
  // The limiter: 50 tokens of burst, then 5 per second.
  int rare = 0;
  for (int i = 0; i < 200; ++i) {
    auto u = Chunk(100 + i, "svc-" + std::to_string(i), 0);
    rare += s.Sample(u, u.spans[0], "prod", false).keep;
  }
  // One token went at the start and was refilled during the cooldown; one went to `later`.
  CHECK(rare == 49);
  // Each refused chunk tried both of its top-level spans.
  CHECK(s.counters().rare_misses == 2 * 151);
}

TEST_CASE("single-span sampling keeps tagged spans of dropped chunks") {
  FakeClock clock;
  TraceSampler s(Defaults(), clock.Fn());
  auto c = Chunk(1, "api", 0);
  Set(c.spans[1].metrics, "_dd.span_sampling.mechanism", 8);
  auto d = s.Sample(c, c.spans[0], "prod", false);
  CHECK_FALSE(d.keep);
  CHECK(d.single_spans_kept == 1);
  CHECK(d.send());
  REQUIRE(c.spans.size() == 1);
  CHECK(c.spans[0].name == "db.query");
  CHECK(c.priority == kPriorityUserKeep);
  CHECK_FALSE(c.dropped_trace);
  CHECK(s.counters().single_spans == 1);

  auto plain = Chunk(2, "api", 0);
  auto pd = s.Sample(plain, plain.spans[0], "prod", false);
  CHECK_FALSE(pd.send());
  CHECK(plain.dropped_trace);
  CHECK(plain.spans.size() == 2);
}

TEST_CASE("error tracking standalone: only error chunks, by the errors sampler") {
  FakeClock clock;
  SamplerConfig cfg = Defaults();
  cfg.error_tracking_standalone = true;
  TraceSampler s(cfg, clock.Fn());
  auto ok = Chunk(1, "api", 2);
  CHECK_FALSE(s.Sample(ok, ok.spans[0], "prod", false).keep);
  auto err = Chunk(2, "api", 0, true);
  auto d = s.Sample(err, err.spans[0], "prod", false);
  CHECK(d.keep);  // first error of the signature: rate 1
  CHECK(d.sampler == SamplerName::kError);
  REQUIRE(Find(err.tags, "_dd.error_tracking_standalone.error"));
}

TEST_CASE("a root passed as a copy is matched by span id") {
  FakeClock clock;
  TraceSampler s(Defaults(), clock.Fn());
  auto c = Chunk(1, "api", 1);
  const Span copy = c.spans[0];
  CHECK(s.Sample(c, copy, "prod", false).keep);
  CHECK(Find(c.spans[0].metrics, "_sampling_priority_rate_v1") != nullptr);
}

}  // namespace
}  // namespace dogwatch::trace::sampler
