#include "agent-core/dogstatsd/parser/parser.h"

#include <catch2/catch.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace {

using namespace dogwatch;
using namespace dogwatch::dogstatsd;
using metrics::SampleType;

// Copies everything it receives: the views handed to the handler are only valid during the call.
struct Recorder : ParseHandler {
  struct Metric {
    std::string name;
    SampleType type = SampleType::kGauge;
    double value = 0;
    std::string set_value;
    double sample_rate = 0;
    std::string raw_tags;
    int64_t timestamp = 0;
    std::string container_id;
    std::string external_data;
    std::string cardinality;
  };
  struct Event {
    metrics::Event event;
    std::string raw_tags, container_id, external_data, cardinality;
  };
  struct Check {
    metrics::ServiceCheck check;
    std::string raw_tags, container_id, external_data, cardinality;
  };
  struct Error {
    ParseError error = ParseError::kCount;
    std::string line;
  };

  void OnMetric(const ParsedMetric& m) override {
    metrics.push_back(Metric{std::string(m.name), m.type, m.value, std::string(m.set_value), m.sample_rate,
                             std::string(m.raw_tags), m.timestamp, std::string(m.container_id),
                             std::string(m.external_data), std::string(m.cardinality)});
    order.push_back("metric:" + std::string(m.name));
  }
  void OnEvent(ParsedEvent&& e) override {
    order.push_back("event:" + e.event.title);
    events.push_back(Event{std::move(e.event), std::string(e.raw_tags), std::string(e.container_id),
                           std::string(e.external_data), std::string(e.cardinality)});
  }
  void OnServiceCheck(ParsedServiceCheck&& c) override {
    order.push_back("check:" + c.check.name);
    checks.push_back(Check{std::move(c.check), std::string(c.raw_tags), std::string(c.container_id),
                           std::string(c.external_data), std::string(c.cardinality)});
  }
  void OnError(ParseError error, std::string_view line) override {
    errors.push_back(Error{error, std::string(line)});
    order.push_back("error:" + std::string(ParseErrorName(error)));
  }

  size_t Total() const { return metrics.size() + events.size() + checks.size() + errors.size(); }

  std::vector<Metric> metrics;
  std::vector<Event> events;
  std::vector<Check> checks;
  std::vector<Error> errors;
  std::vector<std::string> order;
};

Recorder Parse(std::string_view datagram) {
  Recorder recorder;
  ParseDatagram(datagram, recorder);
  return recorder;
}

// The single error a one-line datagram produced; fails the test if it produced anything else.
ParseError OnlyError(std::string_view line) {
  Recorder r = Parse(line);
  INFO("line: " << line);
  REQUIRE(r.errors.size() == 1);
  REQUIRE(r.Total() == 1);
  CHECK(r.errors[0].line == line);
  return r.errors[0].error;
}

Recorder::Metric OnlyMetric(std::string_view line) {
  Recorder r = Parse(line);
  std::string errors;
  for (const auto& e : r.errors) errors += std::string(ParseErrorName(e.error)) + " ";
  INFO("line: " << line << " errors: " << errors);
  REQUIRE(r.metrics.size() == 1);
  REQUIRE(r.Total() == 1);
  return r.metrics[0];
}

double Value(std::string_view text) {
  double value = 12345;
  INFO("value: " << text);
  REQUIRE(ParseValue(text, &value));
  return value;
}

// hot-shots 17.1 datagrams from docs/real-clients.md, verbatim (the `#…` elisions included: they are
// valid lines whose tag is a UTF-8 ellipsis).
constexpr std::string_view kHotShotsGauge =
    "probe.queue.depth:42.5|g|#env:test,service:probe,queue:high|c:in-5859";
constexpr std::string_view kHotShotsCount =
    "probe.requests.sampled:3|c|@0.5|#env:test,service:probe,route:/x|c:in-5859";
constexpr std::string_view kHotShotsHistogram =
    "probe.latency.hist:13.25|h|@0.5|#env:test,service:probe,db:pg|c:in-5859";
constexpr std::string_view kHotShotsDistribution = "probe.latency.dist:7|d|#…";
constexpr std::string_view kHotShotsSet = "probe.users.unique:user-123|s|#…";
constexpr std::string_view kHotShotsTiming = "probe.latency.timing:250|ms|#…";
constexpr std::string_view kHotShotsNegativeCount = "probe.inflight:-2|c|#…";
constexpr std::string_view kHotShotsEvent =
    R"(_e{18,24}:probe.Deploy probe|line1\nline2 with | pipe|d:1700000000|h:h1|k:agg1|p:low|s:probe|t:warning|#env:test,service:probe,ev:1|c:in-5859)";
constexpr std::string_view kHotShotsServiceCheck =
    "_sc|probe.probe.can_connect|1|d:1700000001|h:h1|#env:test,service:probe,chk:1|c:in-5859|m:slow m:ish";
constexpr std::string_view kHotShotsTelemetry =
    "datadog.dogstatsd.client.metrics:13|c|#client:nodejs,client_version:17.1.1,client_transport:udp";
// The `DD_ENTITY_ID` / `DD_EXTERNAL_ENV` / `DD_CARDINALITY` form, with the elided parts filled in.
constexpr std::string_view kHotShotsOrigin =
    "probe.queue.depth:42.5|g|#dd.internal.entity_id:pod-uid-123,env:prod,service:probe|c:in-5859|e:it-false,"
    "cn-app,pu-abc|card:orchestrator";

TEST_CASE("hot-shots metric lines", "[dogstatsd][parser]") {
  SECTION("gauge") {
    auto m = OnlyMetric(kHotShotsGauge);
    CHECK(m.name == "probe.queue.depth");
    CHECK(m.type == SampleType::kGauge);
    CHECK(m.value == 42.5);
    CHECK(m.sample_rate == 1);
    CHECK(m.raw_tags == "env:test,service:probe,queue:high");
    CHECK(m.container_id == "in-5859");
    CHECK(m.external_data.empty());
    CHECK(m.cardinality.empty());
    CHECK(m.timestamp == 0);
  }
  SECTION("sampled count") {
    auto m = OnlyMetric(kHotShotsCount);
    CHECK(m.name == "probe.requests.sampled");
    CHECK(m.type == SampleType::kCount);
    CHECK(m.value == 3);
    CHECK(m.sample_rate == 0.5);
    CHECK(m.raw_tags == "env:test,service:probe,route:/x");
    CHECK(m.container_id == "in-5859");
  }
  SECTION("sampled histogram") {
    auto m = OnlyMetric(kHotShotsHistogram);
    CHECK(m.name == "probe.latency.hist");
    CHECK(m.type == SampleType::kHistogram);
    CHECK(m.value == 13.25);
    CHECK(m.sample_rate == 0.5);
    CHECK(m.raw_tags == "env:test,service:probe,db:pg");
  }
  SECTION("distribution, set, timing, negative count with elided tags") {
    auto d = OnlyMetric(kHotShotsDistribution);
    CHECK(d.type == SampleType::kDistribution);
    CHECK(d.value == 7);
    CHECK(d.raw_tags == "…");
    auto s = OnlyMetric(kHotShotsSet);
    CHECK(s.type == SampleType::kSet);
    CHECK(s.set_value == "user-123");
    CHECK(s.name == "probe.users.unique");
    auto t = OnlyMetric(kHotShotsTiming);
    CHECK(t.type == SampleType::kTimer);
    CHECK(t.value == 250);
    auto c = OnlyMetric(kHotShotsNegativeCount);
    CHECK(c.type == SampleType::kCount);
    CHECK(c.value == -2);
  }
  SECTION("client telemetry") {
    auto m = OnlyMetric(kHotShotsTelemetry);
    CHECK(m.name == "datadog.dogstatsd.client.metrics");
    CHECK(m.value == 13);
    CHECK(m.raw_tags == "client:nodejs,client_version:17.1.1,client_transport:udp");
    CHECK(m.container_id.empty());
  }
  SECTION("origin detection fields c: e: card:") {
    auto m = OnlyMetric(kHotShotsOrigin);
    CHECK(m.raw_tags == "dd.internal.entity_id:pod-uid-123,env:prod,service:probe");
    CHECK(m.container_id == "in-5859");
    CHECK(m.external_data == "it-false,cn-app,pu-abc");
    CHECK(m.cardinality == "orchestrator");
  }
}

TEST_CASE("hot-shots event with a pipe and an escaped newline in its text", "[dogstatsd][parser]") {
  Recorder r = Parse(kHotShotsEvent);
  REQUIRE(r.events.size() == 1);
  REQUIRE(r.Total() == 1);
  const auto& e = r.events[0];
  CHECK(e.event.title == "probe.Deploy probe");
  CHECK(e.event.text == "line1\nline2 with | pipe");
  CHECK(e.event.timestamp == 1700000000);
  CHECK(e.event.host == "h1");
  CHECK(e.event.aggregation_key == "agg1");
  CHECK(e.event.priority == metrics::EventPriority::kLow);
  CHECK(e.event.source_type_name == "probe");
  CHECK(e.event.alert_type == metrics::EventAlertType::kWarning);
  CHECK(e.event.tags.empty());
  CHECK(e.raw_tags == "env:test,service:probe,ev:1");
  CHECK(e.container_id == "in-5859");
}

TEST_CASE("hot-shots service check with m: after c:", "[dogstatsd][parser]") {
  Recorder r = Parse(kHotShotsServiceCheck);
  REQUIRE(r.checks.size() == 1);
  REQUIRE(r.Total() == 1);
  const auto& c = r.checks[0];
  CHECK(c.check.name == "probe.probe.can_connect");
  CHECK(c.check.status == metrics::ServiceCheckStatus::kWarning);
  CHECK(c.check.timestamp == 1700000001);
  CHECK(c.check.host == "h1");
  CHECK(c.check.message == "slow m:ish");
  CHECK(c.check.tags.empty());
  CHECK(c.raw_tags == "env:test,service:probe,chk:1");
  CHECK(c.container_id == "in-5859");
}

TEST_CASE("hot-shots buffered datagram: lines joined by newlines, no trailing newline",
          "[dogstatsd][parser]") {
  const std::vector<std::string_view> lines = {kHotShotsGauge,         kHotShotsCount, kHotShotsHistogram,
                                               kHotShotsDistribution,  kHotShotsSet,   kHotShotsTiming,
                                               kHotShotsNegativeCount, kHotShotsEvent, kHotShotsServiceCheck,
                                               kHotShotsTelemetry,     kHotShotsOrigin};
  std::string datagram;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) datagram += '\n';
    datagram += lines[i];
  }
  Recorder r = Parse(datagram);
  CHECK(r.errors.empty());
  CHECK(r.metrics.size() == 9);
  CHECK(r.events.size() == 1);
  CHECK(r.checks.size() == 1);
  CHECK(r.order == std::vector<std::string>{
                       "metric:probe.queue.depth", "metric:probe.requests.sampled",
                       "metric:probe.latency.hist", "metric:probe.latency.dist", "metric:probe.users.unique",
                       "metric:probe.latency.timing", "metric:probe.inflight", "event:probe.Deploy probe",
                       "check:probe.probe.can_connect", "metric:datadog.dogstatsd.client.metrics",
                       "metric:probe.queue.depth"});
}

TEST_CASE("metric views borrow from the datagram", "[dogstatsd][parser]") {
  struct Checker : ParseHandler {
    std::string_view datagram;
    int metrics = 0;
    bool Inside(std::string_view v) const {
      return v.empty() ||
             (v.data() >= datagram.data() && v.data() + v.size() <= datagram.data() + datagram.size());
    }
    void OnMetric(const ParsedMetric& m) override {
      ++metrics;
      CHECK(Inside(m.name));
      CHECK(Inside(m.raw_tags));
      CHECK(Inside(m.set_value));
      CHECK(Inside(m.container_id));
      CHECK(Inside(m.external_data));
      CHECK(Inside(m.cardinality));
    }
    void OnEvent(ParsedEvent&&) override {}
    void OnServiceCheck(ParsedServiceCheck&&) override {}
    void OnError(ParseError, std::string_view) override { FAIL("unexpected error"); }
  };
  const std::string datagram = std::string(kHotShotsOrigin) + "\n" + std::string(kHotShotsSet);
  Checker checker;
  checker.datagram = datagram;
  ParseDatagram(datagram, checker);
  CHECK(checker.metrics == 2);
}

TEST_CASE("multiple values in one metric line", "[dogstatsd][parser]") {
  SECTION("each value becomes one metric sharing the other fields") {
    Recorder r = Parse("a.b:1:2.5:-3|h|@0.5|#x:y|T1700000000|c:ci-abc");
    REQUIRE(r.metrics.size() == 3);
    CHECK(r.errors.empty());
    CHECK(r.metrics[0].value == 1);
    CHECK(r.metrics[1].value == 2.5);
    CHECK(r.metrics[2].value == -3);
    for (const auto& m : r.metrics) {
      CHECK(m.name == "a.b");
      CHECK(m.type == SampleType::kHistogram);
      CHECK(m.sample_rate == 0.5);
      CHECK(m.raw_tags == "x:y");
      CHECK(m.timestamp == 1700000000);
      CHECK(m.container_id == "ci-abc");
    }
  }
  SECTION("empty values are skipped, as Datadog does") {
    Recorder r = Parse("a:1::2:|c");
    REQUIRE(r.metrics.size() == 2);
    CHECK(r.metrics[0].value == 1);
    CHECK(r.metrics[1].value == 2);
  }
  SECTION("one bad value rejects the whole line, nothing half-emitted") {
    CHECK(OnlyError("a:1:x:3|c") == ParseError::kBadValue);
    CHECK(OnlyError("a:1:2|c|@7") == ParseError::kBadSampleRate);
    CHECK(OnlyError("a::|c") == ParseError::kBadValue);
  }
  SECTION("a set takes one value, colons included") {
    auto m = OnlyMetric("users:a:b::c|s|#t");
    CHECK(m.set_value == "a:b::c");
    CHECK(m.raw_tags == "t");
  }
}

TEST_CASE("metric types", "[dogstatsd][parser]") {
  CHECK(OnlyMetric("m:1|g").type == SampleType::kGauge);
  CHECK(OnlyMetric("m:1|c").type == SampleType::kCount);
  CHECK(OnlyMetric("m:1|h").type == SampleType::kHistogram);
  CHECK(OnlyMetric("m:1|ms").type == SampleType::kTimer);
  CHECK(OnlyMetric("m:1|d").type == SampleType::kDistribution);
  CHECK(OnlyMetric("m:x|s").type == SampleType::kSet);
  CHECK(OnlyError("m:1|x") == ParseError::kBadType);
  CHECK(OnlyError("m:1|gauge") == ParseError::kBadType);
  CHECK(OnlyError("m:1|G") == ParseError::kBadType);
  CHECK(OnlyError("m:1|msx|#a") == ParseError::kBadType);
  CHECK(OnlyError("m:1") == ParseError::kMissingType);
  CHECK(OnlyError("m:1|") == ParseError::kMissingType);
  CHECK(OnlyError("m:1||#a") == ParseError::kMissingType);
}

TEST_CASE("names and values", "[dogstatsd][parser]") {
  CHECK(OnlyError(":1|c") == ParseError::kEmptyName);
  CHECK(OnlyError("name|c") == ParseError::kMissingValue);
  CHECK(OnlyError("name:|c") == ParseError::kMissingValue);
  CHECK(OnlyError("justgarbage") == ParseError::kMissingValue);
  CHECK(OnlyError("name:abc|c") == ParseError::kBadValue);
  CHECK(OnlyError("name:NaN|g") == ParseError::kBadValue);
  CHECK(OnlyError("name:inf|g") == ParseError::kBadValue);
  CHECK(OnlyError("name:1e999|g") == ParseError::kBadValue);
  CHECK(OnlyMetric("name with spaces:1|g").name == "name with spaces");
  CHECK(OnlyMetric("_scores:1|c").name == "_scores");  // `_sc` without `|` is a metric
  CHECK(OnlyMetric("_e:1|c").name == "_e");
}

TEST_CASE("value syntax follows Go's ParseFloat, minus NaN and infinities", "[dogstatsd][parser]") {
  CHECK(Value("0") == 0);
  CHECK(Value("42") == 42);
  CHECK(Value("+42") == 42);
  CHECK(Value("-42") == -42);
  CHECK(Value("42.5") == 42.5);
  CHECK(Value(".5") == 0.5);
  CHECK(Value("5.") == 5);
  CHECK(Value("-.25") == -0.25);
  CHECK(Value("1e3") == 1000);
  CHECK(Value("1E+3") == 1000);
  CHECK(Value("2.5e-3") == 0.0025);
  CHECK(Value("-1.5E2") == -150);
  CHECK(Value("007") == 7);
  CHECK(Value("0x1p3") == 8);
  CHECK(Value("-0X1.8P1") == -3);
  CHECK(Value("12345678901234567890") == 12345678901234567890.0);
  CHECK(Value("0.1") == 0.1);
  CHECK(Value("123456789012345.6") == 123456789012345.6);
  CHECK(Value("1e-400") == 0);  // underflow is zero, as in Go
  CHECK(Value("0.0000000000000000000000000000000000000000000000000000000000000001e-300") == 0);
  CHECK(Value("4.9e-324") == 4.9e-324);  // the smallest denormal
  CHECK(Value("1.7976931348623157e308") == 1.7976931348623157e308);
  CHECK(std::signbit(Value("-0")));

  double value = 0;
  for (std::string_view bad :
       {"",     "+",     "-",   ".",    "e5",       "1e",    "1e+",    "--1",       "+-1",   "-+1",
        "1..2", "1.2.3", " 1",  "1 ",   "1,5",      "0x",    "0x1",    "0x-1p0",    "0xg",   "nan",
        "NaN",  "-nan",  "inf", "+Inf", "infinity", "1e400", "-1e400", "0x1p99999", "1_000", "١"}) {
    INFO("value: " << bad);
    CHECK_FALSE(ParseValue(bad, &value));
  }
}

TEST_CASE("the decimal fast path rounds exactly like from_chars", "[dogstatsd][parser]") {
  std::mt19937_64 random(42);
  std::uniform_int_distribution<int> digits_dist(1, 17);
  std::uniform_real_distribution<double> magnitude(-6, 15);
  char buffer[64];
  for (int i = 0; i < 20000; ++i) {
    const double original = std::pow(10.0, magnitude(random)) * ((random() & 1) ? -1 : 1);
    std::snprintf(buffer, sizeof(buffer), "%.*f", digits_dist(random) % 10, original);
    std::string_view text(buffer);
    double expected = 0;
    auto result = std::from_chars(text.data(), text.data() + text.size(), expected);
    REQUIRE(result.ec == std::errc());
    INFO("text: " << text);
    double parsed = 0;
    REQUIRE(ParseValue(text, &parsed));
    CHECK(parsed == expected);
  }
}

TEST_CASE("sample rates", "[dogstatsd][parser]") {
  CHECK(OnlyMetric("m:1|c|@0.5").sample_rate == 0.5);
  CHECK(OnlyMetric("m:1|c|@1").sample_rate == 1);
  CHECK(OnlyMetric("m:1|c|@.001").sample_rate == 0.001);
  CHECK(OnlyMetric("m:1|c|@1e-2").sample_rate == 0.01);
  CHECK(OnlyMetric("m:1|c|#a|@0.25").sample_rate == 0.25);  // any order
  // Datadog accepts any float here and divides counts by it; (0, 1] is the documented range.
  CHECK(OnlyError("m:1|c|@0") == ParseError::kBadSampleRate);
  CHECK(OnlyError("m:1|c|@1.5") == ParseError::kBadSampleRate);
  CHECK(OnlyError("m:1|c|@-0.5") == ParseError::kBadSampleRate);
  CHECK(OnlyError("m:1|c|@nan") == ParseError::kBadSampleRate);
  CHECK(OnlyError("m:1|c|@abc") == ParseError::kBadSampleRate);
  CHECK(OnlyError("m:1|c|@") == ParseError::kBadSampleRate);
}

TEST_CASE("timestamps", "[dogstatsd][parser]") {
  CHECK(OnlyMetric("m:1|g|T1700000000").timestamp == 1700000000);
  CHECK(OnlyMetric("m:1|g|T+1700000000").timestamp == 1700000000);
  CHECK(OnlyMetric("m:1|g|#a:b|T1").timestamp == 1);
  CHECK(OnlyError("m:1|g|T0") == ParseError::kBadTimestamp);
  CHECK(OnlyError("m:1|g|T-5") == ParseError::kBadTimestamp);
  CHECK(OnlyError("m:1|g|Tabc") == ParseError::kBadTimestamp);
  CHECK(OnlyError("m:1|g|T") == ParseError::kBadTimestamp);
  CHECK(OnlyError("m:1|g|T1.5") == ParseError::kBadTimestamp);
  CHECK(OnlyError("m:1|g|T99999999999999999999") == ParseError::kBadTimestamp);
}

TEST_CASE("optional metric fields", "[dogstatsd][parser]") {
  SECTION("empty and unknown fields are ignored") {
    auto m = OnlyMetric("m:1|c||x:y|#a,b|zzz");
    CHECK(m.raw_tags == "a,b");
  }
  SECTION("the last tags field wins, as in Datadog") { CHECK(OnlyMetric("m:1|c|#a|#b").raw_tags == "b"); }
  SECTION("empty tags") { CHECK(OnlyMetric("m:1|c|#").raw_tags.empty()); }
  SECTION("card: is not mistaken for c:") {
    auto m = OnlyMetric("m:1|c|card:high|c:ci-1|e:ext");
    CHECK(m.cardinality == "high");
    CHECK(m.container_id == "ci-1");
    CHECK(m.external_data == "ext");
  }
}

TEST_CASE("datagram splitting", "[dogstatsd][parser]") {
  SECTION("trailing newline, empty lines and CRLF") {
    Recorder r = Parse("a:1|c\r\n\n\nb:2|g\r\n\r\n");
    CHECK(r.errors.empty());
    REQUIRE(r.metrics.size() == 2);
    CHECK(r.metrics[0].name == "a");
    CHECK(r.metrics[1].name == "b");
    CHECK(r.metrics[1].type == SampleType::kGauge);
  }
  SECTION("empty datagrams") {
    CHECK(Parse("").Total() == 0);
    CHECK(Parse("\n").Total() == 0);
    CHECK(Parse("\r\n\n").Total() == 0);
  }
  SECTION("a bad line in the middle leaves its neighbours parsed") {
    const std::string datagram =
        std::string(kHotShotsGauge) + "\nbroken:xyz|c\n" + std::string(kHotShotsEvent) + "\n_e{999,1}:x|y\n" +
        std::string(kHotShotsServiceCheck) + "\nbad\xff:1|c\n" + std::string(kHotShotsCount);
    Recorder r = Parse(datagram);
    CHECK(r.order == std::vector<std::string>{"metric:probe.queue.depth", "error:bad_value",
                                              "event:probe.Deploy probe", "error:bad_event",
                                              "check:probe.probe.can_connect", "error:invalid_utf8",
                                              "metric:probe.requests.sampled"});
    REQUIRE(r.errors.size() == 3);
    CHECK(r.errors[0].line == "broken:xyz|c");
    CHECK(r.errors[1].line == "_e{999,1}:x|y");
    CHECK(r.errors[2].line == "bad\xff:1|c");
    CHECK(r.metrics[1].value == 3);
  }
}

TEST_CASE("events", "[dogstatsd][parser]") {
  SECTION("minimal event and its defaults") {
    Recorder r = Parse("_e{5,4}:title|text");
    REQUIRE(r.events.size() == 1);
    const auto& e = r.events[0].event;
    CHECK(e.title == "title");
    CHECK(e.text == "text");
    CHECK(e.priority == metrics::EventPriority::kNormal);
    CHECK(e.alert_type == metrics::EventAlertType::kInfo);
    CHECK(e.timestamp == 0);
    CHECK(e.host.empty());
  }
  SECTION("empty text") {
    Recorder r = Parse("_e{5,0}:title|");
    REQUIRE(r.events.size() == 1);
    CHECK(r.events[0].event.text.empty());
  }
  SECTION("newline escapes in title and text") {
    Recorder r = Parse(R"(_e{4,8}:a\nb|c\nd\n\x)");
    REQUIRE(r.events.size() == 1);
    CHECK(r.events[0].event.title == "a\nb");
    CHECK(r.events[0].event.text == "c\nd\n\\x");
  }
  SECTION("lengths are UTF-8 byte counts") {
    Recorder r = Parse("_e{6,6}:h\xc3\xa9llo|\xe2\x9c\x93 ok|t:success");
    REQUIRE(r.events.size() == 1);
    CHECK(r.events[0].event.title == "h\xc3\xa9llo");
    CHECK(r.events[0].event.text == "\xe2\x9c\x93 ok");
    CHECK(r.events[0].event.alert_type == metrics::EventAlertType::kSuccess);
    // The same event with character counts does not describe the line.
    CHECK(OnlyError("_e{5,4}:h\xc3\xa9llo|\xe2\x9c\x93 ok") == ParseError::kBadEvent);
  }
  SECTION("every field") {
    Recorder r =
        Parse("_e{1,1}:a|b|d:17|h:host1|k:key|p:normal|s:src|t:error|#x,y|c:ci-9|e:ext|card:low|zz:ignored");
    REQUIRE(r.events.size() == 1);
    const auto& e = r.events[0];
    CHECK(e.event.timestamp == 17);
    CHECK(e.event.host == "host1");
    CHECK(e.event.aggregation_key == "key");
    CHECK(e.event.priority == metrics::EventPriority::kNormal);
    CHECK(e.event.source_type_name == "src");
    CHECK(e.event.alert_type == metrics::EventAlertType::kError);
    CHECK(e.raw_tags == "x,y");
    CHECK(e.container_id == "ci-9");
    CHECK(e.external_data == "ext");
    CHECK(e.cardinality == "low");
    CHECK(Parse("_e{1,1}:a|b|t:info").events.at(0).event.alert_type == metrics::EventAlertType::kInfo);
  }
  SECTION("malformed headers") {
    for (std::string_view line :
         {"_e{", "_e{5,4}", "_e{5,4}title|text", "_e{5,4:title|text", "_e{54}:title|text",
          "_e{,4}:title|text", "_e{5,}:title|text", "_e{a,4}:title|text", "_e{5,b}:title|text",
          "_e{-5,4}:title|text", "_e{5,-4}:title|text", "_e{0,4}:|text", "_e{ 5,4}:title|text",
          "_e{5,4}x:title|text"}) {
      CHECK(OnlyError(line) == ParseError::kBadEvent);
    }
  }
  SECTION("huge or lying lengths are rejected without allocating") {
    for (std::string_view line :
         {"_e{5,100}:title|text", "_e{100,4}:title|text", "_e{99999999999999999999,1}:a|b",
          "_e{18446744073709551615,18446744073709551615}:a|b", "_e{1,18446744073709551615}:a|b",
          "_e{18446744073709551615,1}:a|b", "_e{9223372036854775807,9223372036854775807}:a|b",
          "_e{5,4}:title", "_e{5,4}:title|tex", "_e{4,4}:title|text", "_e{5,2}:title|text|d:1",
          "_e{5,3}:title|text"}) {
      CHECK(OnlyError(line) == ParseError::kBadEvent);
    }
  }
  SECTION("bad field values") {
    CHECK(OnlyError("_e{1,1}:a|b|p:urgent") == ParseError::kBadEvent);
    CHECK(OnlyError("_e{1,1}:a|b|t:fatal") == ParseError::kBadEvent);
    CHECK(OnlyError("_e{1,1}:a|b|p:Low") == ParseError::kBadEvent);
    CHECK(OnlyError("_e{1,1}:a|b|d:soon") == ParseError::kBadTimestamp);
    CHECK(OnlyError("_e{1,1}:a|b|d:-1") == ParseError::kBadTimestamp);
  }
}

TEST_CASE("service checks", "[dogstatsd][parser]") {
  SECTION("every status") {
    const metrics::ServiceCheckStatus expected[] = {
        metrics::ServiceCheckStatus::kOk, metrics::ServiceCheckStatus::kWarning,
        metrics::ServiceCheckStatus::kCritical, metrics::ServiceCheckStatus::kUnknown};
    for (int status = 0; status <= 3; ++status) {
      Recorder r = Parse("_sc|svc|" + std::to_string(status));
      REQUIRE(r.checks.size() == 1);
      CHECK(r.checks[0].check.status == expected[status]);
      CHECK(r.checks[0].check.name == "svc");
      CHECK(r.checks[0].check.message.empty());
    }
  }
  SECTION("m: takes the rest of the line, pipes included") {
    Recorder r = Parse("_sc|svc|2|#a|m:disk | full|h:not-a-host");
    REQUIRE(r.checks.size() == 1);
    CHECK(r.checks[0].check.message == "disk | full|h:not-a-host");
    CHECK(r.checks[0].check.host.empty());
    CHECK(r.checks[0].raw_tags == "a");
  }
  SECTION("every field") {
    Recorder r = Parse("_sc|svc|0|d:5|h:h2|#t1,t2|c:ci-1|e:ext|card:high|x:ignored|m:");
    REQUIRE(r.checks.size() == 1);
    const auto& c = r.checks[0];
    CHECK(c.check.timestamp == 5);
    CHECK(c.check.host == "h2");
    CHECK(c.raw_tags == "t1,t2");
    CHECK(c.container_id == "ci-1");
    CHECK(c.external_data == "ext");
    CHECK(c.cardinality == "high");
    CHECK(c.check.message.empty());
  }
  SECTION("errors") {
    CHECK(OnlyError("_sc|svc") == ParseError::kBadServiceCheck);
    CHECK(OnlyError("_sc|") == ParseError::kBadServiceCheck);
    CHECK(OnlyError("_sc|svc|") == ParseError::kBadServiceCheck);
    CHECK(OnlyError("_sc|svc|4") == ParseError::kBadServiceCheck);
    CHECK(OnlyError("_sc|svc|01") == ParseError::kBadServiceCheck);
    CHECK(OnlyError("_sc|svc|ok") == ParseError::kBadServiceCheck);
    CHECK(OnlyError("_sc||0") == ParseError::kEmptyName);
    CHECK(OnlyError("_sc|svc|0|d:x") == ParseError::kBadTimestamp);
  }
}

TEST_CASE("invalid UTF-8 is rejected wherever it is", "[dogstatsd][parser]") {
  CHECK(OnlyError("na\xffme:1|c") == ParseError::kInvalidUtf8);
  CHECK(OnlyError("name:1|c|#env:\xc3\x28") == ParseError::kInvalidUtf8);
  CHECK(OnlyError("name:1|c|#env:prod,long-tag-to-leave-the-fast-path:\xe2\x82") == ParseError::kInvalidUtf8);
  CHECK(OnlyError("users:\xed\xa0\x80|s") == ParseError::kInvalidUtf8);
  CHECK(OnlyError("_e{5,4}:title|te\xc0\xaf") == ParseError::kInvalidUtf8);
  CHECK(OnlyError("_e{5,4}:ti\x80le|text") == ParseError::kInvalidUtf8);
  CHECK(OnlyError("_sc|svc|0|m:\xf4\x90\x80\x80") == ParseError::kInvalidUtf8);
  // Valid multi-byte text passes.
  CHECK(OnlyMetric("caf\xc3\xa9.latency:1|ms|#emoji:\xf0\x9f\x98\x80").name == "caf\xc3\xa9.latency");
}

TEST_CASE("IsValidUtf8", "[dogstatsd][parser]") {
  CHECK(IsValidUtf8(""));
  CHECK(IsValidUtf8("plain ascii text that is longer than eight bytes"));
  CHECK(IsValidUtf8("\xc2\x80"));
  CHECK(IsValidUtf8("\xdf\xbf"));
  CHECK(IsValidUtf8("\xe0\xa0\x80"));
  CHECK(IsValidUtf8("\xed\x9f\xbf"));
  CHECK(IsValidUtf8("\xee\x80\x80"));
  CHECK(IsValidUtf8("\xf0\x90\x80\x80"));
  CHECK(IsValidUtf8("\xf4\x8f\xbf\xbf"));
  CHECK(
      IsValidUtf8("12345678\xe2\x82\xac"
                  "12345678"));
  CHECK_FALSE(IsValidUtf8("\x80"));
  CHECK_FALSE(IsValidUtf8("\xc0\x80"));          // overlong NUL
  CHECK_FALSE(IsValidUtf8("\xc1\xbf"));          // overlong
  CHECK_FALSE(IsValidUtf8("\xe0\x9f\xbf"));      // overlong
  CHECK_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  CHECK_FALSE(IsValidUtf8("\xf0\x8f\xbf\xbf"));  // overlong
  CHECK_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(IsValidUtf8("\xf5\x80\x80\x80"));
  CHECK_FALSE(IsValidUtf8("\xff"));
  CHECK_FALSE(IsValidUtf8("\xe2\x82"));  // truncated at the end
  CHECK_FALSE(IsValidUtf8("12345678\xe2\x82"));
  CHECK_FALSE(IsValidUtf8("\xe2\x28\xa1"));
}

TEST_CASE("every error kind, by name", "[dogstatsd][parser]") {
  struct Case {
    std::string_view line;
    ParseError error;
    std::string_view name;
  };
  const Case cases[] = {
      {":1|c", ParseError::kEmptyName, "empty_name"},
      {"a|c", ParseError::kMissingValue, "missing_value"},
      {"a:b|c", ParseError::kBadValue, "bad_value"},
      {"a:1", ParseError::kMissingType, "missing_type"},
      {"a:1|q", ParseError::kBadType, "bad_type"},
      {"a:1|c|@2", ParseError::kBadSampleRate, "bad_sample_rate"},
      {"a:1|c|T0", ParseError::kBadTimestamp, "bad_timestamp"},
      {"_e{9,9}:a|b", ParseError::kBadEvent, "bad_event"},
      {"_sc|a|9", ParseError::kBadServiceCheck, "bad_service_check"},
      {"a\xfe:1|c", ParseError::kInvalidUtf8, "invalid_utf8"},
  };
  std::set<ParseError> covered;
  for (const Case& c : cases) {
    CHECK(OnlyError(c.line) == c.error);
    CHECK(ParseErrorName(c.error) == c.name);
    covered.insert(c.error);
  }
  CHECK(covered.size() == static_cast<size_t>(ParseError::kCount));
  std::set<std::string_view> names;
  for (int i = 0; i < static_cast<int>(ParseError::kCount); ++i) {
    std::string_view name = ParseErrorName(static_cast<ParseError>(i));
    CHECK(name != "unknown");
    for (char ch : name) CHECK(((ch >= 'a' && ch <= 'z') || ch == '_' || (ch >= '0' && ch <= '9')));
    names.insert(name);
  }
  CHECK(names.size() == static_cast<size_t>(ParseError::kCount));
  CHECK(ParseErrorName(ParseError::kCount) == "unknown");
}

TEST_CASE("SplitTags", "[dogstatsd][parser]") {
  SECTION("splits, skipping empty tags") {
    std::vector<std::string_view> tags = {"existing"};
    HostTag host;
    SplitTags(",env:prod,,service:web,bare,", &tags, &host);
    CHECK(tags == std::vector<std::string_view>{"existing", "env:prod", "service:web", "bare"});
    CHECK_FALSE(host.present);
  }
  SECTION("empty input") {
    std::vector<std::string_view> tags;
    HostTag host;
    SplitTags("", &tags, &host);
    CHECK(tags.empty());
    CHECK_FALSE(host.present);
  }
  SECTION("host: is extracted, the last one wins") {
    std::vector<std::string_view> tags;
    HostTag host;
    SplitTags("host:a,env:x,host:b,hostname:c", &tags, &host);
    CHECK(tags == std::vector<std::string_view>{"env:x", "hostname:c"});
    CHECK(host.present);
    CHECK(host.value == "b");
  }
  SECTION("an empty host: means explicitly no host") {
    std::vector<std::string_view> tags;
    HostTag host;
    SplitTags("env:x,host:", &tags, &host);
    CHECK(tags == std::vector<std::string_view>{"env:x"});
    CHECK(host.present);
    CHECK(host.value.empty());
  }
  SECTION("without a HostTag, host: stays an ordinary tag") {
    std::vector<std::string_view> tags;
    SplitTags("host:a,env:x", &tags, nullptr);
    CHECK(tags == std::vector<std::string_view>{"host:a", "env:x"});
  }
}

}  // namespace
