// End to end over HTTP: real compressed protobufs posted with libcurl to an IntakeServer.
#include "agent-core/intake/intake_server.h"

#include <curl/curl.h>

#include <catch2/catch.hpp>

#include "agent-core/intake/intake_test_util.h"
#include "common/compression/compression.h"
#include "datadog/metrics/metrics.pb.h"
#include "datadog/trace/agent_payload.pb.h"

namespace dogwatch::intake {
namespace {

using compression::Codec;
using testing::ParseJson;
using testing::TempDir;

struct Response {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;
};

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

Response Send(const std::string& method, const std::string& url, const std::string& body,
              const std::vector<std::string>& headers) {
  Response r;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "HEAD") curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  curl_slist* list = nullptr;
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  list = curl_slist_append(list, "Expect:");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  if (method == "POST" || method == "PUT") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 20L);
  r.code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  return r;
}

std::unique_ptr<IntakeServer> StartServer(const TempDir& dir, size_t max_payload_bytes = 1 << 20) {
  IntakeServerOptions options;
  options.intake.storage_dir = dir.path() + "/intake";
  options.intake.max_payload_bytes = max_payload_bytes;
  options.intake.accepted_api_keys = {"0123456789abcdef0123456789abcdef"};
  options.http.threads = 2;
  absl::StatusOr<std::unique_ptr<IntakeServer>> server = IntakeServer::Start(options);
  INFO(server.status());
  REQUIRE(server.ok());
  return std::move(*server);
}

const std::string kKeyHeader = "DD-API-KEY: 0123456789abcdef0123456789abcdef";

TEST_CASE("trace-agent style AgentPayload over HTTP is stored and decoded") {
  TempDir dir;
  auto server = StartServer(dir);
  CHECK(server->url() == "http://127.0.0.1:" + std::to_string(server->port()));

  datadog::trace::AgentPayload payload;
  payload.set_hostname("trace-host");
  payload.set_agentversion("0.1.0");
  auto* span = payload.add_tracerpayloads()->add_chunks()->add_spans();
  span->set_service("svc");
  span->set_name("op");
  span->set_traceid(7);
  const std::string body = *compression::GzipCompress(payload.SerializeAsString(), 1);

  Response r = Send("POST", server->url() + "/api/v0.2/traces", body,
                    {kKeyHeader, "Content-Type: application/x-protobuf", "Content-Encoding: gzip",
                     "X-Datadog-Reported-Languages: python|go"});
  REQUIRE(r.code == CURLE_OK);
  CHECK(r.status == 202);
  CHECK(r.body == "{}");

  std::vector<PayloadMeta> list = server->intake().List({"/api/v0.2/traces", 0, 10});
  REQUIRE(list.size() == 1);
  CHECK(list[0].api_key_hint == "cdef");
  CHECK(list[0].content_encoding == "gzip");
  absl::StatusOr<std::string> decoded = server->intake().Decoded(list[0].seq);
  REQUIRE(decoded.ok());
  rapidjson::Document doc = ParseJson(*decoded);
  CHECK(std::string(doc["hostName"].GetString()) == "trace-host");
  CHECK(std::string(doc["tracerPayloads"][0]["chunks"][0]["spans"][0]["service"].GetString()) == "svc");

  // The same through the HTTP inspection API.
  Response listed = Send("GET", server->url() + "/dogwatch/intake/payloads?path=/api/v0.2/", "", {});
  CHECK(listed.status == 200);
  rapidjson::Document meta = ParseJson(listed.body);
  REQUIRE(meta.IsArray());
  REQUIRE(meta.Size() == 1);
  CHECK(std::string(meta[0]["headers"]["X-Datadog-Reported-Languages"].GetString()) == "python|go");
  Response one = Send("GET", server->url() + "/dogwatch/intake/payloads/1", "", {});
  CHECK(one.status == 200);
  CHECK(one.body == *decoded);
  Response raw = Send("GET", server->url() + "/dogwatch/intake/payloads/1?raw=1", "", {});
  CHECK(raw.body == body);
}

TEST_CASE("series v2 with zstd, sketches with deflate, and the stats endpoint") {
  TempDir dir;
  auto server = StartServer(dir);

  datadog::agentpayload::MetricPayload series;
  auto* s = series.add_series();
  s->set_metric("dogstatsd.metric");
  s->add_points()->set_value(3);
  Response r1 =
      Send("POST", server->url() + "/api/v2/series", *compression::ZstdCompress(series.SerializeAsString()),
           {kKeyHeader, "Content-Encoding: zstd"});
  CHECK(r1.status == 202);

  datadog::agentpayload::SketchPayload sketches;
  sketches.add_sketches()->set_metric("dist.metric");
  Response r2 = Send("POST", server->url() + "/api/beta/sketches",
                     *compression::ZlibCompress(sketches.SerializeAsString()),
                     {kKeyHeader, "Content-Encoding: deflate"});
  CHECK(r2.status == 202);

  absl::StatusOr<std::string> d1 = server->intake().Decoded(1);
  absl::StatusOr<std::string> d2 = server->intake().Decoded(2);
  REQUIRE(d1.ok());
  REQUIRE(d2.ok());
  CHECK(d1->find("\"dogstatsd.metric\"") != std::string::npos);
  CHECK(d2->find("\"dist.metric\"") != std::string::npos);

  Response stats = Send("GET", server->url() + "/dogwatch/intake/stats", "", {});
  rapidjson::Document counters = ParseJson(stats.body);
  CHECK(counters["received"].GetInt64() == 2);
  CHECK(counters["received:/api/v2/series"].GetInt64() == 1);
  CHECK(counters["http_requests"].GetInt64() == 3);
}

TEST_CASE("HTTP errors: 400 malformed, 403 bad key, 404, 413 oversize, validate") {
  TempDir dir;
  auto server = StartServer(dir, /*max_payload_bytes=*/4096);

  Response bad = Send("POST", server->url() + "/api/v2/series", "definitely not zlib",
                      {kKeyHeader, "Content-Encoding: deflate"});
  CHECK(bad.status == 400);
  CHECK(bad.body.find("Content-Encoding deflate: corrupt zlib data") != std::string::npos);

  Response forbidden = Send("POST", server->url() + "/api/v1/series", "{}", {"DD-API-KEY: wrong-key-123"});
  CHECK(forbidden.status == 403);
  CHECK(forbidden.body == "{\"errors\":[\"invalid API key\"]}");

  CHECK(Send("GET", server->url() + "/api/v1/validate", "", {kKeyHeader}).body == "{\"valid\":true}");
  CHECK(Send("GET", server->url() + "/api/v1/validate", "", {"DD-API-KEY: nope"}).status == 403);
  CHECK(Send("GET", server->url() + "/favicon.ico", "", {}).status == 404);
  CHECK(Send("HEAD", server->url() + "/whatever", "", {}).status == 404);

  Response big = Send("POST", server->url() + "/api/v1/series", std::string(10000, ' '), {kKeyHeader});
  CHECK(big.status == 413);
  CHECK(big.body.find("exceeds the limit of 4096 bytes") != std::string::npos);

  const auto counters = server->Counters();
  CHECK(counters.at("decode_errors") == 1);
  CHECK(counters.at("rejected_forbidden") == 2);
  CHECK(counters.at("rejected_not_found") == 2);
  CHECK(counters.at("rejected_too_large") == 1);
}

TEST_CASE("DELETE clears, and a restarted server keeps what it stored") {
  TempDir dir;
  {
    auto server = StartServer(dir);
    CHECK(Send("POST", server->url() + "/intake/", "{\"internalHostname\":\"h\"}", {kKeyHeader}).status ==
          202);
    CHECK(Send("POST", server->url() + "/intake/", "{\"internalHostname\":\"i\"}", {kKeyHeader}).status ==
          202);
  }
  auto server = StartServer(dir);
  CHECK(server->intake().List({}).size() == 2);
  Response del = Send("DELETE", server->url() + "/dogwatch/intake/payloads", "", {});
  CHECK(del.status == 200);
  CHECK(server->intake().List({}).empty());
  CHECK(Send("POST", server->url() + "/intake/", "{}", {kKeyHeader}).status == 202);
  CHECK(server->intake().List({}).front().seq == 3);
}

}  // namespace
}  // namespace dogwatch::intake
