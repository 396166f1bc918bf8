#include "agent-core/serializer/serializer.h"

#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "agent-core/serializer/host_metadata.h"
#include "agent-core/serializer/json_util.h"
#include "agent-core/serializer/payload_builder.h"
#include "datadog/metrics/metrics.pb.h"
#include "rapidjson/document.h"

namespace dogwatch::serializer {
namespace {

using datadog::agentpayload::MetricPayload;
using datadog::agentpayload::SketchPayload;

constexpr size_t kMaxDecoded = 64 * 1024 * 1024;

SerializerOptions OptionsFor(compression::Codec codec) {
  SerializerOptions options;
  options.codec = codec;
  options.hostname = "agent-host";
  return options;
}

std::string Header(const Payload& payload, std::string_view name) {
  for (const auto& [key, value] : payload.headers) {
    if (key == name) return value;
  }
  return "<absent>";
}

std::string Decode(const Payload& payload) {
  const std::string encoding = Header(payload, "Content-Encoding");
  auto decoded = compression::DecompressByContentEncoding(encoding == "<absent>" ? "" : encoding,
                                                          payload.body, kMaxDecoded);
  REQUIRE(decoded.ok());
  return *decoded;
}

MetricPayload DecodeSeries(const Payload& payload) {
  MetricPayload message;
  REQUIRE(message.ParseFromString(Decode(payload)));
  return message;
}

SketchPayload DecodeSketches(const Payload& payload) {
  SketchPayload message;
  REQUIRE(message.ParseFromString(Decode(payload)));
  return message;
}

rapidjson::Document ParseJson(const std::string& text) {
  rapidjson::Document document;
  document.Parse(text.data(), text.size());
  REQUIRE_FALSE(document.HasParseError());
  return document;
}

std::vector<std::string> Strings(const google::protobuf::RepeatedPtrField<std::string>& field) {
  return std::vector<std::string>(field.begin(), field.end());
}

metrics::Series MakeSeries(std::string name, size_t points, std::string host = "h1") {
  metrics::Series series;
  series.name = std::move(name);
  series.tags = {"env:prod", "service:web"};
  series.host = std::move(host);
  series.type = metrics::SeriesType::kGauge;
  for (size_t i = 0; i < points; ++i) {
    series.points.push_back({static_cast<int64_t>(1700000000 + 10 * i), static_cast<double>(i) + 0.5});
  }
  return series;
}

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

compression::Codec AnyCodec() { return GENERATE(compression::Codec::kZstd, compression::Codec::kZlib); }

TEST_CASE("series payload carries every field", "[series]") {
  const compression::Codec codec = AnyCodec();
  std::vector<metrics::Series> input(3);
  input[0].name = "system.load.1";
  input[0].tags = {"", "env:prod", "role:db"};
  input[0].host = "web-1";
  input[0].type = metrics::SeriesType::kGauge;
  input[0].points = {{1700000000, 1.25}, {1700000010, -3.5}};
  input[0].source_type_name = "System";
  input[1].name = "app.requests";
  input[1].host = "";  // no host: no host resource
  input[1].type = metrics::SeriesType::kRate;
  input[1].interval = 10;
  input[1].points = {{1700000020, 0.0}};
  input[2].name = "app.count";
  input[2].host = "web-2";
  input[2].type = metrics::SeriesType::kCount;
  input[2].interval = 15;
  input[2].points = {{1700000030, 42}};

  SerializerCounters counters;
  auto payloads = SerializeSeries(input, OptionsFor(codec), &counters);
  REQUIRE(payloads.ok());
  REQUIRE(payloads->size() == 1);
  const Payload& payload = payloads->front();
  CHECK(payload.path == "/api/v2/series");
  CHECK(payload.items == 3);
  CHECK(Header(payload, "Content-Type") == "application/x-protobuf");
  CHECK(Header(payload, "Content-Encoding") == (codec == compression::Codec::kZstd ? "zstd" : "deflate"));

  const MetricPayload decoded = DecodeSeries(payload);
  REQUIRE(decoded.series_size() == 3);
  for (int i = 0; i < 3; ++i) {
    const auto& s = decoded.series(i);
    const metrics::Series& want = input[static_cast<size_t>(i)];
    INFO("series " << i);
    CHECK(s.metric() == want.name);
    CHECK(Strings(s.tags()) == want.tags);
    CHECK(static_cast<int>(s.type()) == static_cast<int>(want.type));
    CHECK(s.interval() == want.interval);
    CHECK(s.source_type_name() == want.source_type_name);
    CHECK(s.unit().empty());
    if (want.host.empty()) {
      CHECK(s.resources_size() == 0);
    } else {
      REQUIRE(s.resources_size() == 1);
      CHECK(s.resources(0).type() == "host");
      CHECK(s.resources(0).name() == want.host);
    }
    REQUIRE(s.points_size() == static_cast<int>(want.points.size()));
    for (int p = 0; p < s.points_size(); ++p) {
      CHECK(s.points(p).timestamp() == want.points[static_cast<size_t>(p)].timestamp);
      CHECK(s.points(p).value() == want.points[static_cast<size_t>(p)].value);
    }
    REQUIRE(s.has_metadata());
    CHECK(s.metadata().origin().origin_product() == 10);
    CHECK(s.metadata().origin().origin_category() == 0);
    CHECK(s.metadata().origin().origin_service() == 0);
  }
  CHECK(counters.payloads == 1);
  CHECK(counters.items == 3);
  CHECK(counters.points == 4);
  CHECK(counters.bytes_compressed == payload.body.size());
  CHECK(counters.bytes_uncompressed == Decode(payload).size());
  CHECK(counters.dropped_too_big == 0);
  CHECK(counters.splits == 0);
}

TEST_CASE("no input gives no payloads", "[series]") {
  SerializerCounters counters;
  auto series = SerializeSeries({}, OptionsFor(compression::Codec::kZstd), &counters);
  REQUIRE(series.ok());
  CHECK(series->empty());
  auto events = SerializeEvents({}, OptionsFor(compression::Codec::kZstd), &counters);
  REQUIRE(events.ok());
  CHECK(events->empty());
  CHECK(counters.payloads == 0);
}

TEST_CASE("zero limits are rejected", "[series]") {
  SerializerOptions options = OptionsFor(compression::Codec::kZstd);
  options.max_series_payload_size = 0;
  std::vector<metrics::Series> input = {MakeSeries("a", 1)};
  CHECK(SerializeSeries(input, options, nullptr).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("30k series under a 10k points limit split into payloads holding each once", "[series][split]") {
  const compression::Codec codec = AnyCodec();
  std::vector<metrics::Series> input;
  for (int i = 0; i < 30000; ++i) input.push_back(MakeSeries("metric." + std::to_string(i), 1));
  SerializerCounters counters;
  SerializerOptions options = OptionsFor(codec);
  REQUIRE(options.max_series_points_per_payload == 10000);
  auto payloads = SerializeSeries(input, options, &counters);
  REQUIRE(payloads.ok());
  REQUIRE(payloads->size() >= 3);

  std::vector<std::string> names;
  size_t items = 0;
  for (const Payload& payload : *payloads) {
    CHECK(payload.body.size() <= options.max_series_payload_size);
    const MetricPayload decoded = DecodeSeries(payload);
    CHECK(Decode(payload).size() <= options.max_series_uncompressed_payload_size);
    size_t points = 0;
    for (const auto& s : decoded.series()) {
      names.push_back(s.metric());
      points += static_cast<size_t>(s.points_size());
    }
    CHECK(points <= 10000);
    CHECK(payload.items == static_cast<size_t>(decoded.series_size()));
    items += payload.items;
  }
  REQUIRE(names.size() == input.size());
  for (size_t i = 0; i < input.size(); ++i) REQUIRE(names[i] == input[i].name);  // in order, each once
  CHECK(items == 30000);
  CHECK(counters.items == 30000);
  CHECK(counters.payloads == payloads->size());
  CHECK(counters.splits == payloads->size() - 1);
  CHECK(counters.dropped_too_big == 0);
}

TEST_CASE("the compressed size limit forces splits and is never exceeded", "[series][split]") {
  const compression::Codec codec = AnyCodec();
  // Random tag values compress poorly, so the compressed limit binds long before the others.
  std::mt19937_64 rng(42);
  std::vector<metrics::Series> input;
  for (int i = 0; i < 6000; ++i) {
    metrics::Series series = MakeSeries("random." + std::to_string(i), 1);
    char value[33];
    std::snprintf(value, sizeof(value), "%016llx%016llx", static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(rng()));
    series.tags.push_back(std::string("id:") + value);
    input.push_back(std::move(series));
  }
  SerializerOptions options = OptionsFor(codec);
  options.max_series_payload_size = 20000;
  SerializerCounters counters;
  auto payloads = SerializeSeries(input, options, &counters);
  REQUIRE(payloads.ok());
  // 6000 points and well under 1 MB uncompressed: only the compressed limit can make 5+ payloads.
  REQUIRE(payloads->size() >= 5);
  std::multiset<std::string> seen;
  uint64_t compressed_total = 0;
  for (const Payload& payload : *payloads) {
    CHECK(payload.body.size() <= 20000);
    compressed_total += payload.body.size();
    const MetricPayload decoded = DecodeSeries(payload);
    for (const auto& s : decoded.series()) {
      seen.insert(s.metric());
      CHECK(s.points_size() == 1);
      CHECK(s.tags_size() == 3);
    }
  }
  REQUIRE(seen.size() == input.size());
  for (const metrics::Series& series : input) CHECK(seen.count(series.name) == 1);
  CHECK(counters.bytes_compressed == compressed_total);
  CHECK(counters.dropped_too_big == 0);
  CHECK(counters.splits == payloads->size() - 1);
  // The measured ratio sizes later payloads: a second compression stays the exception.
  CHECK(counters.recompressions <= 2);
  // Payloads are filled close to the limit, not split needlessly small.
  CHECK(compressed_total / payloads->size() > 20000 / 2);
}

TEST_CASE("the uncompressed size limit forces splits", "[series][split]") {
  std::vector<metrics::Series> input;
  for (int i = 0; i < 2000; ++i) input.push_back(MakeSeries("uncompressed." + std::to_string(i), 4));
  SerializerOptions options = OptionsFor(compression::Codec::kZstd);
  options.max_series_uncompressed_payload_size = 16 * 1024;
  SerializerCounters counters;
  auto payloads = SerializeSeries(input, options, &counters);
  REQUIRE(payloads.ok());
  REQUIRE(payloads->size() > 5);
  size_t total = 0;
  for (const Payload& payload : *payloads) {
    CHECK(Decode(payload).size() <= 16 * 1024);
    total += static_cast<size_t>(DecodeSeries(payload).series_size());
  }
  CHECK(total == input.size());
}

TEST_CASE("a series that cannot fit alone is dropped and counted", "[series][split]") {
  const compression::Codec codec = AnyCodec();
  SerializerOptions options = OptionsFor(codec);
  std::vector<metrics::Series> input;
  input.push_back(MakeSeries("before", 2));
  input.push_back(MakeSeries("too.many.points", 10001));  // over the points limit on its own
  metrics::Series huge = MakeSeries("too.big", 1);
  huge.tags.push_back(std::string(600000, 'x'));  // over the 512000-byte compressed worst case
  input.push_back(std::move(huge));
  input.push_back(MakeSeries("after", 2));
  SerializerCounters counters;
  auto payloads = SerializeSeries(input, options, &counters);
  REQUIRE(payloads.ok());
  std::vector<std::string> names;
  for (const Payload& payload : *payloads) {
    const MetricPayload decoded = DecodeSeries(payload);
    for (const auto& s : decoded.series()) names.push_back(s.metric());
  }
  CHECK(names == std::vector<std::string>{"before", "after"});
  CHECK(counters.dropped_too_big == 2);
  CHECK(counters.items == 2);
}

TEST_CASE("payloads fill up to exactly the points limit", "[series][split]") {
  std::vector<metrics::Series> input = {MakeSeries("a", 6000), MakeSeries("b", 4000), MakeSeries("c", 10000)};
  SerializerCounters counters;
  auto payloads = SerializeSeries(input, OptionsFor(compression::Codec::kZstd), &counters);
  REQUIRE(payloads.ok());
  REQUIRE(payloads->size() == 2);
  CHECK(DecodeSeries((*payloads)[0]).series_size() == 2);  // a + b = 10000 points
  CHECK(DecodeSeries((*payloads)[1]).series_size() == 1);  // c alone = 10000 points
  CHECK(counters.points == 20000);
  CHECK(counters.dropped_too_big == 0);
}

TEST_CASE("sketch payload carries every field", "[sketches]") {
  const compression::Codec codec = AnyCodec();
  std::vector<metrics::SketchSeries> input(2);
  input[0].name = "request.latency";
  input[0].tags = {"env:prod"};
  input[0].host = "web-1";
  metrics::DogSketch point;
  point.timestamp = 1700000000;
  point.count = 7;
  point.min = -2.5;
  point.max = 1024.75;
  point.sum = 2000.5;
  point.avg = 2000.5 / 7;
  point.keys = {-1200, -3, 0, 5, 1338};
  point.counts = {1, 2, 1, 2, 1};
  input[0].points = {point, point};
  input[0].points[1].timestamp = 1700000010;
  input[0].points[1].counts = {1, 1, 1, 1, 3};
  input[1].name = "empty.host";
  input[1].host = "";
  input[1].points = {point};

  SerializerCounters counters;
  auto payloads = SerializeSketches(input, OptionsFor(codec), &counters);
  REQUIRE(payloads.ok());
  REQUIRE(payloads->size() == 1);
  const Payload& payload = payloads->front();
  CHECK(payload.path == "/api/beta/sketches");
  CHECK(Header(payload, "Content-Type") == "application/x-protobuf");
  const SketchPayload decoded = DecodeSketches(payload);
  CHECK(decoded.has_metadata());  // the Agent's empty metadata footer
  REQUIRE(decoded.sketches_size() == 2);
  for (int i = 0; i < 2; ++i) {
    const auto& sketch = decoded.sketches(i);
    const metrics::SketchSeries& want = input[static_cast<size_t>(i)];
    CHECK(sketch.metric() == want.name);
    CHECK(sketch.host() == want.host);
    CHECK(Strings(sketch.tags()) == want.tags);
    CHECK(sketch.distributions_size() == 0);
    REQUIRE(sketch.dogsketches_size() == static_cast<int>(want.points.size()));
    for (int p = 0; p < sketch.dogsketches_size(); ++p) {
      const auto& d = sketch.dogsketches(p);
      const metrics::DogSketch& w = want.points[static_cast<size_t>(p)];
      CHECK(d.ts() == w.timestamp);
      CHECK(d.cnt() == w.count);
      CHECK(d.min() == w.min);
      CHECK(d.max() == w.max);
      CHECK(d.sum() == w.sum);
      CHECK(d.avg() == w.avg);
      CHECK(std::vector<int32_t>(d.k().begin(), d.k().end()) == w.keys);
      CHECK(std::vector<uint32_t>(d.n().begin(), d.n().end()) == w.counts);
    }
  }
  CHECK(counters.points == 3);
}

TEST_CASE("sketches split under the compressed limit and invalid ones are dropped", "[sketches][split]") {
  std::mt19937 rng(7);
  std::vector<metrics::SketchSeries> input;
  for (int i = 0; i < 400; ++i) {
    metrics::SketchSeries sketch;
    sketch.name = "dist." + std::to_string(i);
    sketch.host = "h";
    metrics::DogSketch point;
    point.timestamp = 1700000000;
    for (int k = 0; k < 200; ++k) {
      point.keys.push_back(static_cast<int32_t>(rng() % 4000) - 2000 + k * 4000);
      point.counts.push_back(rng() % 100000);
    }
    point.count = 1;
    sketch.points.push_back(point);
    input.push_back(std::move(sketch));
  }
  input[10].points[0].counts.pop_back();  // columns differ: invalid
  SerializerOptions options = OptionsFor(compression::Codec::kZstd);
  options.max_payload_size = 30000;
  SerializerCounters counters;
  auto payloads = SerializeSketches(input, options, &counters);
  REQUIRE(payloads.ok());
  REQUIRE(payloads->size() > 3);
  std::set<std::string> names;
  for (const Payload& payload : *payloads) {
    CHECK(payload.body.size() <= 30000);
    const SketchPayload decoded = DecodeSketches(payload);
    for (const auto& sketch : decoded.sketches()) CHECK(names.insert(sketch.metric()).second);
  }
  CHECK(names.size() == 399);
  CHECK_FALSE(names.contains("dist.10"));
  CHECK(counters.dropped_invalid == 1);
}

TEST_CASE("events JSON matches the Agent's intake form", "[events]") {
  const compression::Codec codec = AnyCodec();
  std::vector<metrics::Event> input(3);
  input[0].title = "Deploy \"v2\"";
  input[0].text = "line one\nline two \\ tab\t café 日本";
  input[0].timestamp = 1700000000;
  input[0].host = "web-1";
  input[0].aggregation_key = "deploys";
  input[0].priority = metrics::EventPriority::kLow;
  input[0].source_type_name = "jenkins";
  input[0].alert_type = metrics::EventAlertType::kSuccess;
  input[0].tags = {"env:prod", "quote:\"x\""};
  input[1].title = "no source";
  input[1].text = std::string("bad utf8 \xff\xfe end");
  input[1].timestamp = 0;  // now
  input[1].host = "";      // the agent's hostname
  input[2].title = "also api";
  input[2].text = "t";
  input[2].timestamp = 1700000001;
  input[2].host = "h2";
  input[2].source_type_name = "api";
  input[2].alert_type = metrics::EventAlertType::kError;

  SerializerCounters counters;
  const int64_t before = Now();
  auto payloads = SerializeEvents(input, OptionsFor(codec), &counters);
  REQUIRE(payloads.ok());
  REQUIRE(payloads->size() == 1);
  const Payload& payload = payloads->front();
  CHECK(payload.path == "/intake/");
  CHECK(payload.items == 3);
  CHECK(Header(payload, "Content-Type") == "application/json");
  const std::string json = Decode(payload);
  CHECK(json.find("line one\\nline two \\\\ tab\\t caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC") !=
        std::string::npos);
  const rapidjson::Document doc = ParseJson(json);
  REQUIRE(doc.IsObject());
  CHECK(std::string(doc["apiKey"].GetString()).empty());
  CHECK(std::string(doc["internalHostname"].GetString()) == "agent-host");
  const auto& groups = doc["events"];
  REQUIRE(groups.IsObject());
  CHECK(groups.MemberCount() == 2);  // "api" (empty and explicit) and "jenkins"

  const auto& jenkins = groups["jenkins"];
  REQUIRE(jenkins.Size() == 1);
  const auto& e0 = jenkins[0];
  CHECK(std::string(e0["msg_title"].GetString()) == input[0].title);
  CHECK(std::string(e0["msg_text"].GetString()) == input[0].text);
  CHECK(e0["timestamp"].GetInt64() == 1700000000);
  CHECK(std::string(e0["priority"].GetString()) == "low");
  CHECK(std::string(e0["host"].GetString()) == "web-1");
  REQUIRE(e0["tags"].Size() == 2);
  CHECK(std::string(e0["tags"][1].GetString()) == "quote:\"x\"");
  CHECK(std::string(e0["alert_type"].GetString()) == "success");
  CHECK(std::string(e0["aggregation_key"].GetString()) == "deploys");
  CHECK(std::string(e0["source_type_name"].GetString()) == "jenkins");

  const auto& api = groups["api"];
  REQUIRE(api.Size() == 2);
  const auto& e1 = api[0];  // stable order within a group
  CHECK(std::string(e1["msg_title"].GetString()) == "no source");
  CHECK(std::string(e1["msg_text"].GetString()) == "bad utf8 \xEF\xBF\xBD\xEF\xBF\xBD end");
  CHECK(e1["timestamp"].GetInt64() >= before);
  CHECK(e1["timestamp"].GetInt64() <= Now());
  CHECK(std::string(e1["priority"].GetString()) == "normal");
  CHECK(std::string(e1["host"].GetString()) == "agent-host");
  CHECK(std::string(e1["alert_type"].GetString()) == "info");
  CHECK_FALSE(e1.HasMember("tags"));
  CHECK_FALSE(e1.HasMember("aggregation_key"));
  CHECK_FALSE(e1.HasMember("source_type_name"));
  const auto& e2 = api[1];
  CHECK(std::string(e2["msg_title"].GetString()) == "also api");
  CHECK(std::string(e2["alert_type"].GetString()) == "error");
  CHECK(std::string(e2["source_type_name"].GetString()) == "api");
}

TEST_CASE("events split into valid JSON documents with groups across payloads", "[events][split]") {
  std::vector<metrics::Event> input;
  for (int i = 0; i < 600; ++i) {
    metrics::Event event;
    event.title = "event " + std::to_string(i);
    event.text = std::string(200, static_cast<char>('a' + i % 26));
    event.timestamp = 1700000000 + i;
    event.host = "h";
    event.source_type_name = i % 3 == 0 ? "" : (i % 3 == 1 ? "nagios" : "jenkins");
    input.push_back(std::move(event));
  }
  SerializerOptions options = OptionsFor(compression::Codec::kZlib);
  options.max_uncompressed_payload_size = 20000;
  SerializerCounters counters;
  auto payloads = SerializeEvents(input, options, &counters);
  REQUIRE(payloads.ok());
  REQUIRE(payloads->size() > 5);
  std::set<std::string> titles;
  for (const Payload& payload : *payloads) {
    const std::string json = Decode(payload);
    CHECK(json.size() <= 20000);
    const rapidjson::Document doc = ParseJson(json);
    size_t in_payload = 0;
    for (const auto& group : doc["events"].GetObject()) {
      for (const auto& event : group.value.GetArray()) {
        CHECK(titles.insert(event["msg_title"].GetString()).second);
        const std::string source =
            event.HasMember("source_type_name") ? event["source_type_name"].GetString() : "api";
        CHECK(source == group.name.GetString());
        ++in_payload;
      }
    }
    CHECK(in_payload == payload.items);
  }
  CHECK(titles.size() == 600);
}

TEST_CASE("service checks JSON", "[service_checks]") {
  const compression::Codec codec = AnyCodec();
  std::vector<metrics::ServiceCheck> input(2);
  input[0].name = "app.can_connect";
  input[0].status = metrics::ServiceCheckStatus::kCritical;
  input[0].timestamp = 1700000000;
  input[0].host = "db-1";
  input[0].message = "connection \"refused\"\nretrying ñ";
  input[0].tags = {"db:main", "port:5432"};
  input[1].name = "app.ok";
  input[1].status = metrics::ServiceCheckStatus::kOk;
  SerializerCounters counters;
  auto payloads = SerializeServiceChecks(input, OptionsFor(codec), &counters);
  REQUIRE(payloads.ok());
  REQUIRE(payloads->size() == 1);
  const Payload& payload = payloads->front();
  CHECK(payload.path == "/api/v1/check_run");
  CHECK(Header(payload, "Content-Type") == "application/json");
  const std::string json = Decode(payload);
  CHECK(json.find("connection \\\"refused\\\"\\nretrying \xC3\xB1") != std::string::npos);
  const rapidjson::Document doc = ParseJson(json);
  REQUIRE(doc.IsArray());
  REQUIRE(doc.Size() == 2);
  CHECK(std::string(doc[0]["check"].GetString()) == "app.can_connect");
  CHECK(std::string(doc[0]["host_name"].GetString()) == "db-1");
  CHECK(doc[0]["timestamp"].GetInt64() == 1700000000);
  CHECK(doc[0]["status"].GetInt() == 2);
  CHECK(std::string(doc[0]["message"].GetString()) == input[0].message);
  REQUIRE(doc[0]["tags"].IsArray());
  CHECK(std::string(doc[0]["tags"][1].GetString()) == "port:5432");
  CHECK(std::string(doc[1]["host_name"].GetString()) == "agent-host");
  CHECK(doc[1]["status"].GetInt() == 0);
  CHECK(doc[1]["timestamp"].GetInt64() > 1700000000);
  CHECK(std::string(doc[1]["message"].GetString()).empty());
  CHECK(doc[1]["tags"].IsNull());  // as the Agent writes a check without tags
}

TEST_CASE("service checks split under the compressed limit", "[service_checks][split]") {
  std::mt19937_64 rng(3);
  std::vector<metrics::ServiceCheck> input;
  for (int i = 0; i < 500; ++i) {
    metrics::ServiceCheck check;
    check.name = "check." + std::to_string(i);
    check.status = metrics::ServiceCheckStatus::kWarning;
    check.timestamp = 1700000000;
    for (int k = 0; k < 8; ++k) check.message += std::to_string(rng());
    input.push_back(std::move(check));
  }
  SerializerOptions options = OptionsFor(compression::Codec::kZstd);
  options.max_payload_size = 8000;
  SerializerCounters counters;
  auto payloads = SerializeServiceChecks(input, options, &counters);
  REQUIRE(payloads.ok());
  REQUIRE(payloads->size() > 3);
  size_t total = 0;
  for (const Payload& payload : *payloads) {
    CHECK(payload.body.size() <= 8000);
    total += ParseJson(Decode(payload)).Size();
  }
  CHECK(total == 500);
  CHECK(counters.items == 500);
}

TEST_CASE("compressor kind option", "[options]") {
  auto zstd = OptionsForCompressorKind("zstd", 3);
  REQUIRE(zstd.ok());
  CHECK(zstd->codec == compression::Codec::kZstd);
  CHECK(zstd->compression_level == 3);
  auto zlib = OptionsForCompressorKind(" ZLIB ", 3);
  REQUIRE(zlib.ok());
  CHECK(zlib->codec == compression::Codec::kZlib);
  CHECK(zlib->compression_level == compression::kDefaultLevel);
  CHECK_FALSE(OptionsForCompressorKind("lz4", 1).ok());
  const SerializerOptions defaults;
  CHECK(defaults.max_payload_size == 2621440);
  CHECK(defaults.max_uncompressed_payload_size == 4194304);
  CHECK(defaults.max_series_payload_size == 512000);
  CHECK(defaults.max_series_uncompressed_payload_size == 5242880);
  CHECK(defaults.max_series_points_per_payload == 10000);
  CHECK(defaults.codec == compression::Codec::kZstd);
  CHECK(defaults.compression_level == compression::kDefaultLevel);
  CHECK(internal::EffectiveLevel(compression::Codec::kZstd, compression::kDefaultLevel) == 1);
  CHECK(internal::EffectiveLevel(compression::Codec::kZlib, compression::kDefaultLevel) ==
        compression::kDefaultLevel);  // zlib's own 6
  CHECK(internal::EffectiveLevel(compression::Codec::kZstd, 5) == 5);
}

TEST_CASE("utf-8 sanitizing", "[json]") {
  std::string scratch;
  CHECK(internal::IsValidUtf8("plain ascii"));
  CHECK(internal::IsValidUtf8("caf\xC3\xA9 \xF0\x9F\x98\x80"));
  CHECK_FALSE(internal::IsValidUtf8("\xC0\xAF"));          // overlong
  CHECK_FALSE(internal::IsValidUtf8("\xED\xA0\x80"));      // surrogate
  CHECK_FALSE(internal::IsValidUtf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  CHECK_FALSE(internal::IsValidUtf8("\xE6\x97"));          // truncated
  CHECK(internal::SanitizeUtf8("a\xE6\x97", &scratch) == "a\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(internal::JsonQuote(std::string("nul\0x", 5)) == "\"nul\\u0000x\"");
}

// ---------------------------------------------------------------------------------------------
// Host metadata

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "serializer_test.XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  void Write(const std::string& relative, const std::string& content) const {
    const std::filesystem::path file = path_ / relative;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file) << content;
  }
  std::string path(const std::string& relative = "") const { return (path_ / relative).string(); }

 private:
  std::filesystem::path path_;
};

TEST_CASE("host metadata from the real host", "[host_metadata]") {
  HostMetadataInputs inputs;
  inputs.hostname = "dogwatch-test-host";
  inputs.agent_version = "7.99.0";
  inputs.host_tags = {"team:infra", "env:test"};
  const compression::Codec codec = AnyCodec();
  auto payload = BuildHostMetadata(inputs, OptionsFor(codec));
  REQUIRE(payload.ok());
  CHECK(payload->path == "/intake/");
  CHECK(Header(*payload, "Content-Type") == "application/json");
  const rapidjson::Document doc = ParseJson(Decode(*payload));
  for (const char* key :
       {"agentVersion", "uuid", "internalHostname", "os", "agent-flavor", "python", "systemStats", "meta",
        "host-tags", "network", "logs", "install-method", "proxy-info", "otlp", "gohai"}) {
    INFO(key);
    CHECK(doc.HasMember(key));
  }
  CHECK_FALSE(doc.HasMember("apiKey"));
  CHECK(std::string(doc["agentVersion"].GetString()) == "7.99.0");
  CHECK(std::string(doc["internalHostname"].GetString()) == "dogwatch-test-host");
  CHECK(std::string(doc["os"].GetString()) == "linux");
  CHECK(doc["systemStats"]["cpuCores"].GetUint64() > 0);
  CHECK_FALSE(std::string(doc["systemStats"]["machine"].GetString()).empty());
  CHECK(doc["systemStats"]["nixV"].Size() == 3);
  const auto& meta = doc["meta"];
  CHECK(std::string(meta["hostname"].GetString()) == "dogwatch-test-host");
  CHECK_FALSE(std::string(meta["socket-hostname"].GetString()).empty());
  REQUIRE(meta["timezones"].Size() == 1);
  CHECK_FALSE(std::string(meta["timezones"][0].GetString()).empty());
  REQUIRE(doc["host-tags"]["system"].Size() == 2);
  CHECK(std::string(doc["host-tags"]["system"][0].GetString()) == "team:infra");
  REQUIRE(doc["gohai"].IsString());
  const rapidjson::Document gohai = ParseJson(doc["gohai"].GetString());
  for (const char* key : {"cpu", "filesystem", "memory", "network", "platform"}) {
    INFO(key);
    CHECK(gohai.HasMember(key));
  }
  CHECK(std::stoull(gohai["cpu"]["cpu_logical_processors"].GetString()) > 0);
  CHECK(std::stoull(gohai["memory"]["total"].GetString()) > 1024 * 1024);
  CHECK(std::string(gohai["platform"]["kernel_name"].GetString()) == "Linux");
  CHECK(gohai["filesystem"].Size() > 0);
  for (const auto& fs : gohai["filesystem"].GetArray()) CHECK(std::stoull(fs["kb_size"].GetString()) > 0);
  REQUIRE(gohai["network"].IsObject());
  CHECK(gohai["network"]["interfaces"].IsArray());
}

TEST_CASE("host metadata from fixture files", "[host_metadata]") {
  TempDir root;
  root.Write("proc/cpuinfo",
             "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n"
             "model name\t: Intel(R) Xeon(R) \"Gold\" 6148\nstepping\t: 4\ncpu MHz\t\t: 2400.000\n"
             "cache size\t: 28160 KB\nphysical id\t: 0\ncore id\t\t: 0\ncpu cores\t: 2\n\n"
             "processor\t: 1\nvendor_id\t: GenuineIntel\nmodel name\t: ignored\nphysical id\t: 0\n"
             "core id\t\t: 1\ncpu cores\t: 2\n\n"
             "processor\t: 2\nphysical id\t: 0\ncore id\t\t: 0\n\nprocessor\t: 3\nphysical id\t: 0\ncore "
             "id\t\t: 1\n");
  root.Write("proc/meminfo",
             "MemTotal:        1921988 kB\nMemFree:  1374408 kB\nSwapTotal:       1048572 kB\n");
  root.Write("proc/mounts",
             "/dev/root / ext4 rw 0 0\nproc /proc proc rw 0 0\n"  // proc: no blocks
             "srv:/x " +
                 root.path() +
                 " nfs4 rw 0 0\n"  // remote: never statvfs'd
                 "sshfs#a " +
                 root.path("etc") +
                 " fuse.sshfs rw 0 0\n"  // FUSE: same
                 "tmp " +
                 root.path("with\\040space") + " tmpfs rw 0 0\n");
  std::filesystem::create_directories(root.path("with space"));
  root.Write("etc/os-release", "NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"12\"\n");
  root.Write("etc/debian_version", "12.5\n");
  root.Write("etc/machine-id", "0123456789ABCDEF0123456789abcdef\n");
  HostMetadataInputs inputs;
  inputs.hostname = "fixture-host";
  inputs.agent_version = "7.1.2";
  inputs.proc_root = root.path("proc");
  inputs.etc_root = root.path("etc");
  inputs.sys_root = root.path("sys");  // no DMI uuid: falls back to machine-id
  inputs.collect_network = false;
  inputs.install_tool = "apt";
  inputs.install_tool_version = "2.6";
  inputs.installer_version = "dogwatch-1";
  inputs.host_aliases = {"i-0abc"};

  auto json = HostMetadataJson(inputs);
  REQUIRE(json.ok());
  const rapidjson::Document doc = ParseJson(*json);
  CHECK(std::string(doc["uuid"].GetString()) == "01234567-89ab-cdef-0123-456789abcdef");
  CHECK(doc["systemStats"]["cpuCores"].GetUint64() == 2);
  CHECK(std::string(doc["systemStats"]["processor"].GetString()) == "Intel(R) Xeon(R) \"Gold\" 6148");
  CHECK(std::string(doc["systemStats"]["nixV"][0].GetString()) == "debian");
  CHECK(std::string(doc["systemStats"]["nixV"][1].GetString()) == "12.5");
  CHECK(std::string(doc["meta"]["host_aliases"][0].GetString()) == "i-0abc");
  CHECK(std::string(doc["install-method"]["tool"].GetString()) == "apt");
  CHECK(std::string(doc["install-method"]["tool_version"].GetString()) == "2.6");
  CHECK(std::string(doc["install-method"]["installer_version"].GetString()) == "dogwatch-1");
  const rapidjson::Document gohai = ParseJson(doc["gohai"].GetString());
  const auto& cpu = gohai["cpu"];
  CHECK(std::string(cpu["cpu_cores"].GetString()) == "2");
  CHECK(std::string(cpu["cpu_logical_processors"].GetString()) == "4");
  CHECK(std::string(cpu["vendor_id"].GetString()) == "GenuineIntel");
  CHECK(std::string(cpu["family"].GetString()) == "6");
  CHECK(std::string(cpu["model"].GetString()) == "85");
  CHECK(std::string(cpu["stepping"].GetString()) == "4");
  CHECK(std::string(cpu["mhz"].GetString()) == "2400.000");
  CHECK(std::string(cpu["cache_size"].GetString()) == "28160 KB");
  CHECK(std::string(gohai["memory"]["total"].GetString()) == std::to_string(1921988ULL * 1024));
  CHECK(std::string(gohai["memory"]["swap_total"].GetString()) == "1048572kB");
  CHECK(gohai["network"].IsNull());
  // "/" and the escaped path with a space; proc has no blocks and nfs is never touched.
  std::set<std::string> mounted;
  for (const auto& fs : gohai["filesystem"].GetArray()) mounted.insert(fs["mounted_on"].GetString());
  CHECK(mounted == std::set<std::string>{"/", root.path("with space")});
}

TEST_CASE("host metadata needs a hostname", "[host_metadata]") {
  HostMetadataInputs inputs;
  CHECK(BuildHostMetadata(inputs, OptionsFor(compression::Codec::kZstd)).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("host facts parsers", "[host_metadata]") {
  const auto mounts = internal::ParseMounts("a /x\\040y ext4 rw 0 0\nshort line\nb /z xfs rw 0 0\n", 10);
  REQUIRE(mounts.size() == 2);
  CHECK(mounts[0].mount_point == "/x y");
  CHECK(mounts[1].fs_type == "xfs");
  CHECK(internal::ParseMounts("a /1 ext4\nb /2 ext4\nc /3 ext4\n", 2).size() == 2);
  const auto release =
      internal::ParseOsRelease("# c\nID='ubuntu'\nVERSION_ID=\"22.04\"\nPRETTY_NAME=\"Ubuntu\"\n");
  CHECK(release.id == "ubuntu");
  CHECK(release.version_id == "22.04");
  const auto arm = internal::ParseCpuInfo("processor\t: 0\nCPU implementer\t: 0x41\n\nprocessor\t: 1\n");
  CHECK(arm.logical_processors == 2);
  CHECK(arm.physical_cores == 0);
  CHECK_FALSE(arm.cores_per_socket.has_value());
  CHECK(internal::GoArch("x86_64") == "amd64");
  CHECK(internal::GoArch("aarch64") == "arm64");
  const auto memory = internal::ParseMemInfo("MemTotal: x kB\n");
  CHECK_FALSE(memory.total_kb.has_value());
}

}  // namespace
}  // namespace dogwatch::serializer
