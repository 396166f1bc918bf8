#include "agent-core/intake/local_intake.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "agent-core/intake/intake_test_util.h"
#include "common/compression/compression.h"
#include "datadog/metrics/metrics.pb.h"
#include "datadog/process/agent.pb.h"
#include "datadog/trace/agent_payload.pb.h"

namespace dogwatch::intake {
namespace {

using compression::Codec;
using testing::Get;
using testing::ParseJson;
using testing::Post;
using testing::TempDir;

std::string SeriesBody(const std::string& metric) {
  datadog::agentpayload::MetricPayload payload;
  auto* series = payload.add_series();
  series->set_metric(metric);
  series->set_type(datadog::agentpayload::MetricPayload::RATE);
  auto* point = series->add_points();
  point->set_value(2);
  point->set_timestamp(1700000000);
  return *compression::Compress(Codec::kZlib, payload.SerializeAsString());
}

LocalIntake::Options OptionsFor(const TempDir& dir) {
  LocalIntake::Options options;
  options.storage_dir = dir.path() + "/intake";
  return options;
}

TEST_CASE("accepts a payload, stores it, lists and decodes it") {
  TempDir dir;
  LocalIntake intake(OptionsFor(dir));
  REQUIRE(intake.Open().ok());

  http::HttpRequest request =
      Post("/api/v2/series", SeriesBody("dogwatch.test"), "deflate", "0123456789abcdefWXYZ");
  request.headers.Add("Content-Type", "application/x-protobuf");
  request.headers.Add("DD-Agent-Version", "0.1.0");
  http::HttpReply reply = intake.Accept(request);
  CHECK(reply.status == 202);
  CHECK(reply.body == "{}");
  CHECK(reply.content_type == "application/json");

  std::vector<PayloadMeta> list = intake.List({});
  REQUIRE(list.size() == 1);
  const PayloadMeta& meta = list[0];
  CHECK(meta.seq == 1);
  CHECK(meta.path == "/api/v2/series");
  CHECK(meta.method == "POST");
  CHECK(meta.content_type == "application/x-protobuf");
  CHECK(meta.content_encoding == "deflate");
  CHECK(meta.api_key_hint == "WXYZ");
  CHECK(meta.bytes == request.body.size());
  CHECK(meta.decode_status == "ok");
  CHECK(meta.received_unix_ms > 1600000000000);
  bool saw_agent_version = false;
  for (const auto& [name, value] : meta.headers) {
    CHECK_FALSE(http::EqualsIgnoreCase(name, "DD-API-KEY"));  // the key itself is never kept
    if (name == "DD-Agent-Version") saw_agent_version = value == "0.1.0";
  }
  CHECK(saw_agent_version);

  absl::StatusOr<std::string> decoded = intake.Decoded(1);
  REQUIRE(decoded.ok());
  rapidjson::Document doc = ParseJson(*decoded);
  CHECK(std::string(doc["series"][0]["metric"].GetString()) == "dogwatch.test");
  CHECK(std::string(doc["series"][0]["type"].GetString()) == "RATE");

  absl::StatusOr<std::string> raw = intake.Raw(1);
  REQUIRE(raw.ok());
  CHECK(*raw == request.body);
  CHECK(intake.Decoded(99).status().code() == absl::StatusCode::kNotFound);

  const auto counters = intake.Counters();
  CHECK(counters.at("received") == 1);
  CHECK(counters.at("received:/api/v2/series") == 1);
  CHECK(counters.at("received_bytes") == static_cast<int64_t>(request.body.size()));
  CHECK(counters.at("decode_errors") == 0);
  CHECK(counters.at("stored_payloads") == 1);
}

TEST_CASE(
    "malformed payloads are stored, answered 400 with the reason, and "
    "counted") {
  TempDir dir;
  LocalIntake intake(OptionsFor(dir));
  REQUIRE(intake.Open().ok());

  struct Case {
    std::string path, encoding, body, expected;
  };
  std::string bad_gzip = *compression::GzipCompress(std::string(1000, 'x'));
  bad_gzip[15] ^= 0x77;
  bad_gzip[16] ^= 0x77;
  const std::string proto =
      *compression::GzipCompress(std::string("\x0a\x10short", 7));  // hostName claims 16 bytes
  const std::vector<Case> cases = {
      {"/api/v0.2/traces", "gzip", bad_gzip, "Content-Encoding gzip: corrupt gzip data"},
      {"/api/v0.2/traces", "gzip", proto, "invalid AgentPayload protobuf"},
      {"/api/v2/series", "zstd", *compression::ZstdCompress(std::string(100 << 20, 'a')),
       "decompressed size exceeds"},
      {"/api/v1/check_run", "", "[{\"check\": }]", "invalid JSON at offset"},
      {"/api/v1/collector", "", "\x03\x04\x0c", "shorter than its V3 header"},
      {"/api/v0.2/stats", "gzip", *compression::GzipCompress("\x91\xc0"), "must be a msgpack map"},
  };
  uint64_t seq = 0;
  for (const Case& c : cases) {
    INFO(c.path << " expecting " << c.expected);
    http::HttpReply reply = intake.Accept(Post(c.path, c.body, c.encoding));
    CHECK(reply.status == 400);
    CHECK(reply.body.find("cannot decode payload for " + c.path) != std::string::npos);
    CHECK(reply.body.find(c.expected) != std::string::npos);
    ++seq;
    absl::StatusOr<PayloadMeta> meta = intake.Meta(seq);
    REQUIRE(meta.ok());
    CHECK(meta->decode_status == "error");
    CHECK(meta->decode_error.find(c.expected) != std::string::npos);
    absl::StatusOr<std::string> decoded = intake.Decoded(seq);
    CHECK(decoded.status().code() == absl::StatusCode::kInvalidArgument);
  }
  const auto counters = intake.Counters();
  CHECK(counters.at("decode_errors") == static_cast<int64_t>(cases.size()));
  CHECK(counters.at("decode_errors:/api/v0.2/traces") == 2);
  CHECK(counters.at("received") == static_cast<int64_t>(cases.size()));
}

TEST_CASE("routing: unknown paths, wrong methods, validate, oversize") {
  TempDir dir;
  LocalIntake::Options options = OptionsFor(dir);
  options.max_payload_bytes = 100;
  LocalIntake intake(options);
  REQUIRE(intake.Open().ok());

  CHECK(intake.Accept(Get("/nope")).status == 404);
  CHECK(intake.Accept(Post("/api/v3/whatever", "{}")).status == 404);
  http::HttpReply get_series = intake.Accept(Get("/api/v2/series"));
  CHECK(get_series.status == 405);
  CHECK(get_series.headers.GetOr("allow", "") == "POST, PUT");

  http::HttpRequest put = Post("/api/v1/series", "{\"series\":[]}");
  put.method = "PUT";
  CHECK(intake.Accept(put).status == 202);

  http::HttpReply big = intake.Accept(Post("/api/v1/series", std::string(101, ' ')));
  CHECK(big.status == 413);
  CHECK(big.body.find("payload of 101 bytes exceeds the limit of 100 bytes") != std::string::npos);

  http::HttpRequest validate = Get("/api/v1/validate");
  CHECK(intake.Accept(validate).status == 403);  // no key at all
  validate.headers.Add("DD-API-KEY", "anything");
  http::HttpReply valid = intake.Accept(validate);
  CHECK(valid.status == 200);
  CHECK(valid.body == "{\"valid\":true}");

  const auto counters = intake.Counters();
  CHECK(counters.at("rejected_not_found") == 2);
  CHECK(counters.at("rejected_method") == 1);
  CHECK(counters.at("rejected_too_large") == 1);
  CHECK(counters.at("rejected_forbidden") == 1);
  CHECK(counters.at("validate_requests") == 2);
  CHECK(counters.at("received") == 1);
}

TEST_CASE("API keys: required, accepted list, query parameter") {
  TempDir dir;
  LocalIntake::Options options = OptionsFor(dir);
  options.require_api_key = true;
  options.accepted_api_keys = {"good-key-0001"};
  LocalIntake intake(options);
  REQUIRE(intake.Open().ok());

  http::HttpReply missing = intake.Accept(Post("/api/v1/series", "{}"));
  CHECK(missing.status == 403);
  CHECK(missing.body == "{\"errors\":[\"missing API key (DD-API-KEY header)\"]}");
  CHECK(intake.Accept(Post("/api/v1/series", "{}", "", "bad-key-0002")).status == 403);
  CHECK(intake.Accept(Post("/api/v1/series", "{}", "", "good-key-0001")).status == 202);
  http::HttpRequest query_key = Post("/api/v1/series", "{}");
  query_key.query_params.emplace_back("api_key", "good-key-0001");
  CHECK(intake.Accept(query_key).status == 202);

  http::HttpRequest validate = Get("/api/v1/validate");
  validate.headers.Add("dd-api-key", "bad-key-0002");
  CHECK(intake.Accept(validate).status == 403);

  CHECK(intake.Counters().at("rejected_forbidden") == 3);
  CHECK(intake.List({}).size() == 2);
  CHECK(intake.List({})[0].api_key_hint == "0001");
}

TEST_CASE("a short API key is not revealed by the hint") {
  TempDir dir;
  LocalIntake intake(OptionsFor(dir));
  REQUIRE(intake.Open().ok());
  CHECK(intake.Accept(Post("/api/v1/series", "{}", "", "abc")).status == 202);
  CHECK(intake.List({})[0].api_key_hint.empty());
}

TEST_CASE("eviction keeps the store under max_bytes and counts what it drops") {
  TempDir dir;
  LocalIntake::Options options = OptionsFor(dir);
  options.max_bytes = 20000;
  LocalIntake intake(options);
  REQUIRE(intake.Open().ok());

  const std::string body = "{\"pad\":\"" + std::string(3000, 'p') + "\"}";
  for (int i = 0; i < 20; ++i) REQUIRE(intake.Accept(Post("/intake/", body)).status == 202);

  const auto counters = intake.Counters();
  CHECK(counters.at("stored_bytes") <= 20000);
  CHECK(counters.at("stored_payloads") >= 5);
  CHECK(counters.at("stored_payloads") + counters.at("evicted_payloads") == 20);
  CHECK(counters.at("evicted_bytes") > 0);
  std::vector<PayloadMeta> list = intake.List({});
  REQUIRE_FALSE(list.empty());
  CHECK(list.back().seq == 20);  // the newest survive
  CHECK(list.front().seq == static_cast<uint64_t>(20 - counters.at("stored_payloads") + 1));
  CHECK(intake.Decoded(1).status().code() == absl::StatusCode::kNotFound);

  // The directory holds exactly what the index says.
  size_t files = 0;
  for (const auto& f : std::filesystem::directory_iterator(options.storage_dir)) {
    if (f.path().extension() == ".dwp") ++files;
  }
  CHECK(files == list.size());

  // A payload larger than the whole store is evicted on arrival, not kept.
  LocalIntake::Options tiny = OptionsFor(dir);
  tiny.storage_dir += "-tiny";
  tiny.max_bytes = 1000;
  LocalIntake small(tiny);
  REQUIRE(small.Open().ok());
  CHECK(small.Accept(Post("/intake/", body)).status == 202);
  CHECK(small.List({}).empty());
  CHECK(small.Counters().at("evicted_payloads") == 1);
}

TEST_CASE("list filters: path prefix, since, limit") {
  TempDir dir;
  LocalIntake intake(OptionsFor(dir));
  REQUIRE(intake.Open().ok());
  for (int i = 0; i < 5; ++i) {
    REQUIRE(intake.Accept(Post("/api/v2/series", SeriesBody("m"), "deflate")).status == 202);
    REQUIRE(intake.Accept(Post("/api/v1/check_run", "[]")).status == 202);
  }
  CHECK(intake.List({"/api/v2/", 0, 100}).size() == 5);
  CHECK(intake.List({"/api/v1/check_run", 0, 100}).size() == 5);
  CHECK(intake.List({"", 6, 100}).size() == 4);
  CHECK(intake.List({"", 6, 100}).front().seq == 7);
  CHECK(intake.List({"", 0, 3}).size() == 3);
  CHECK(intake.List({"/api/v2/series", 4, 1}).front().seq == 5);
}

TEST_CASE("reopening keeps payloads and continues the sequence") {
  TempDir dir;
  const LocalIntake::Options options = OptionsFor(dir);
  {
    LocalIntake intake(options);
    REQUIRE(intake.Open().ok());
    REQUIRE(intake.Accept(Post("/api/v2/series", SeriesBody("before"), "deflate")).status == 202);
    REQUIRE(intake.Accept(Post("/api/v1/series", "{\"series\":[]}")).status == 202);
    REQUIRE(intake.Accept(Post("/api/v1/series", "not json")).status == 400);
  }
  // Debris a crash can leave: a half-written temp file and a corrupt payload file.
  std::ofstream(options.storage_dir + "/.tmp-77") << "partial";
  std::ofstream(options.storage_dir + "/p-00000000000000000050.dwp") << "garbage";
  std::ofstream(options.storage_dir + "/README") << "not ours";
  {
    LocalIntake intake(options);
    REQUIRE(intake.Open().ok());
    std::vector<PayloadMeta> list = intake.List({});
    REQUIRE(list.size() == 3);
    CHECK(list[0].seq == 1);
    CHECK(list[2].decode_status == "error");
    absl::StatusOr<std::string> decoded = intake.Decoded(1);
    REQUIRE(decoded.ok());
    CHECK(decoded->find("\"before\"") != std::string::npos);
    CHECK(intake.Counters().at("load_errors") == 1);
    CHECK_FALSE(std::filesystem::exists(options.storage_dir + "/.tmp-77"));
    CHECK(std::filesystem::exists(options.storage_dir + "/README"));

    REQUIRE(intake.Accept(Post("/api/v1/series", "{}")).status == 202);
    CHECK(intake.List({}).back().seq == 4);  // a clean restart continues without a gap

    // Clearing empties the store but never rewinds the sequence.
    http::HttpRequest del = Get("/dogwatch/intake/payloads");
    del.method = "DELETE";
    http::HttpReply cleared = intake.Accept(del);
    CHECK(cleared.status == 200);
    CHECK(cleared.body == "{\"removed\":4}");
    CHECK(intake.List({}).empty());
  }
  {
    LocalIntake intake(options);
    REQUIRE(intake.Open().ok());
    REQUIRE(intake.Accept(Post("/api/v1/series", "{}")).status == 202);
    CHECK(intake.List({}).front().seq == 5);
  }
}

TEST_CASE("after a crash the sequence skips ahead instead of reusing numbers") {
  TempDir dir;
  const LocalIntake::Options options = OptionsFor(dir);
  const std::string sequence_file = options.storage_dir + "/sequence";
  std::string reserved_at_crash;
  {
    LocalIntake intake(options);
    REQUIRE(intake.Open().ok());
    REQUIRE(intake.Accept(Post("/api/v1/series", "{}")).status == 202);
    REQUIRE(intake.Clear().ok());
    std::ifstream in(sequence_file);
    std::getline(in, reserved_at_crash);
  }
  // A crash skips the destructor's exact write: put back what was on disk before it.
  std::ofstream(sequence_file, std::ios::trunc) << reserved_at_crash << "\n";
  LocalIntake intake(options);
  REQUIRE(intake.Open().ok());
  REQUIRE(intake.Accept(Post("/api/v1/series", "{}")).status == 202);
  const uint64_t seq = intake.List({}).front().seq;
  CHECK(seq > 1);  // never reuses 1
  CHECK(std::to_string(seq) == reserved_at_crash);
}

TEST_CASE("inspection API over Accept") {
  TempDir dir;
  LocalIntake intake(OptionsFor(dir));
  REQUIRE(intake.Open().ok());
  REQUIRE(intake.Accept(Post("/api/v2/series", SeriesBody("insp"), "deflate")).status == 202);
  REQUIRE(intake.Accept(Post("/api/v1/check_run", "[1]")).status == 202);

  http::HttpReply list = intake.Accept(Get("/dogwatch/intake/payloads", {{"path", "/api/v2"}}));
  CHECK(list.status == 200);
  rapidjson::Document doc = ParseJson(list.body);
  REQUIRE(doc.IsArray());
  REQUIRE(doc.Size() == 1);
  CHECK(doc[0]["seq"].GetUint64() == 1);
  CHECK(std::string(doc[0]["path"].GetString()) == "/api/v2/series");
  CHECK(std::string(doc[0]["decode_status"].GetString()) == "ok");
  CHECK(doc[0]["headers"].IsObject());

  http::HttpReply since = intake.Accept(Get("/dogwatch/intake/payloads", {{"since", "1"}}));
  CHECK(ParseJson(since.body).Size() == 1);
  CHECK(intake.Accept(Get("/dogwatch/intake/payloads", {{"since", "x"}})).status == 400);
  CHECK(intake.Accept(Get("/dogwatch/intake/payloads", {{"limit", "0"}})).status == 400);

  http::HttpReply one = intake.Accept(Get("/dogwatch/intake/payloads/1"));
  CHECK(one.status == 200);
  CHECK(std::string(ParseJson(one.body)["series"][0]["metric"].GetString()) == "insp");

  http::HttpReply raw = intake.Accept(Get("/dogwatch/intake/payloads/2", {{"raw", "1"}}));
  CHECK(raw.status == 200);
  CHECK(raw.body == "[1]");

  CHECK(intake.Accept(Get("/dogwatch/intake/payloads/3")).status == 404);
  CHECK(intake.Accept(Get("/dogwatch/intake/payloads/abc")).status == 400);
  CHECK(intake.Accept(Get("/dogwatch/intake/other")).status == 404);

  http::HttpReply stats = intake.Accept(Get("/dogwatch/intake/stats"));
  CHECK(stats.status == 200);
  rapidjson::Document counters = ParseJson(stats.body);
  CHECK(counters["received"].GetInt64() == 2);
  CHECK(counters["received:/api/v1/check_run"].GetInt64() == 1);
}

TEST_CASE("process paths answer with a framed ResCollector") {
  TempDir dir;
  LocalIntake intake(OptionsFor(dir));
  REQUIRE(intake.Open().ok());
  ProcessMessageHeader header;
  header.encoding = 4;
  header.type = 12;
  const std::string body =
      EncodeProcessMessageHeaderV3(header) + *compression::ZstdCompress(std::string("\x12\x01h", 3));
  http::HttpReply reply = intake.Accept(Post("/api/v1/collector", body));
  CHECK(reply.status == 202);
  absl::StatusOr<ProcessMessageHeader> framed = ParseProcessMessageHeader(reply.body);
  REQUIRE(framed.ok());
  CHECK(framed->version == 3);
  CHECK(framed->type == kProcessTypeResCollector);
  CHECK(framed->encoding == kProcessEncodingProtobuf);
  CHECK(reply.body.substr(16) == std::string("\x0a\x02\x20\x17\x1a\x02\x10\x02", 8));
}

TEST_CASE("the process reply's activeClients and interval can be set, as a test intake needs") {
  TempDir dir;
  LocalIntake::Options options = OptionsFor(dir);
  options.process_active_clients = 3;
  LocalIntake intake(options);
  REQUIRE(intake.Open().ok());
  auto status_of_reply = [&] {
    ProcessMessageHeader header;
    header.encoding = 0;
    header.type = 12;
    http::HttpReply reply =
        intake.Accept(Post("/api/v1/collector", EncodeProcessMessageHeaderV3(header) + "\x12\x01h"));
    REQUIRE(reply.status == 202);
    datadog::process_agent::ResCollector parsed;
    REQUIRE(parsed.ParseFromString(reply.body.substr(16)));
    CHECK(parsed.header().type() == 23);
    return std::make_pair(parsed.status().activeclients(), parsed.status().interval());
  };
  CHECK(status_of_reply() == std::make_pair(3, 2));

  http::HttpRequest set =
      Get("/dogwatch/intake/process_status", {{"active_clients", "1"}, {"interval", "5"}});
  set.method = "PUT";
  http::HttpReply answer = intake.Accept(set);
  CHECK(answer.status == 200);
  CHECK(answer.body == "{\"active_clients\":1,\"interval\":5}");
  CHECK(status_of_reply() == std::make_pair(1, 5));

  set.query_params = {{"active_clients", "0"}};
  CHECK(intake.Accept(set).status == 200);
  CHECK(status_of_reply() == std::make_pair(0, 5));
  CHECK(intake.Accept(Get("/dogwatch/intake/process_status")).body ==
        "{\"active_clients\":0,\"interval\":5}");

  // Out of range or not a number: refused, nothing changes.
  set.query_params = {{"interval", "0"}};
  CHECK(intake.Accept(set).status == 400);
  set.query_params = {{"active_clients", "x"}};
  CHECK(intake.Accept(set).status == 400);
  set.method = "DELETE";
  CHECK(intake.Accept(set).status == 405);
  CHECK(status_of_reply() == std::make_pair(0, 5));
}

TEST_CASE("concurrent Accept calls keep the index consistent") {
  TempDir dir;
  LocalIntake::Options options = OptionsFor(dir);
  options.max_bytes = 200000;
  LocalIntake intake(options);
  REQUIRE(intake.Open().ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) intake.Accept(Post("/api/v1/series", "{\"series\":[]}"));
    });
  }
  for (auto& t : threads) t.join();
  std::vector<PayloadMeta> list = intake.List({"", 0, 1000});
  REQUIRE(list.size() == 200);
  for (size_t i = 1; i < list.size(); ++i) CHECK(list[i - 1].seq < list[i].seq);
  CHECK(list.back().seq == 200);
}

TEST_CASE("Open fails clearly when the storage dir cannot be created") {
  TempDir dir;
  std::ofstream(dir.path() + "/file") << "x";
  LocalIntake::Options options;
  options.storage_dir = dir.path() + "/file/sub";
  LocalIntake intake(options);
  absl::Status status = intake.Open();
  REQUIRE_FALSE(status.ok());
  CHECK(status.message().find("cannot create intake storage dir") != absl::string_view::npos);
  CHECK(intake.Accept(Post("/api/v1/series", "{}")).status == 503);
}

}  // namespace
}  // namespace dogwatch::intake
