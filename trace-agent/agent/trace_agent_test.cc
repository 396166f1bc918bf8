// The receiver, pipeline and writer together on a real HTTP port, with payloads captured where
// they would go to the core: bad input must get a clear 4xx, be counted, and never crash.

#include <curl/curl.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/compression/compression.h"
#include "common/config/config.h"
#include "datadog/trace/agent_payload.pb.h"
#include "trace-agent/agent/pipeline.h"
#include "trace-agent/decode/decode.h"
#include "trace-agent/decode/test_msgpack_writer.h"
#include "trace-agent/decode/testdata_payloads.h"
#include "trace-agent/receiver/receiver.h"
#include "trace-agent/writer/trace_writer.h"

using namespace dogwatch::trace;
using dogwatch::trace::testing::MsgpackWriter;

namespace {

struct Reply {
  long status = 0;
  std::string body;
  std::string agent_version_header;
};

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

size_t CollectHeader(char* data, size_t size, size_t n, void* out) {
  std::string line(data, size * n);
  if (line.rfind("Datadog-Agent-Version:", 0) == 0) *static_cast<std::string*>(out) = line;
  return size * n;
}

Reply Put(uint16_t port, const std::string& path, const std::string& body,
          const std::string& content_type = "application/msgpack") {
  Reply reply;
  CURL* curl = curl_easy_init();
  std::string url = "http://127.0.0.1:" + std::to_string(port) + path;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_slist* headers = curl_slist_append(nullptr, ("Content-Type: " + content_type).c_str());
  headers = curl_slist_append(headers, "Datadog-Meta-Lang: nodejs");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, CollectHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reply.agent_version_header);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return reply;
}

// A whole trace-agent minus the IPC: what it would submit to the core is captured.
struct Harness {
  std::mutex mu;
  std::vector<OutgoingPayload> traces;
  std::vector<std::string> stats;
  std::unique_ptr<TraceWriter> writer;
  std::unique_ptr<Pipeline> pipeline;
  std::unique_ptr<Receiver> receiver;

  explicit Harness(size_t max_request_bytes = 1 << 20) {
    dogwatch::config::Config config;
    auto options = PipelineOptionsFromConfig(config, "test-host");
    REQUIRE(options.ok());
    TraceWriterOptions writer_options;
    writer_options.flush_interval = absl::Milliseconds(100);
    writer = std::make_unique<TraceWriter>(writer_options, [this](OutgoingPayload p) {
      std::lock_guard<std::mutex> lock(mu);
      traces.push_back(std::move(p));
      return absl::OkStatus();
    });
    auto created = Pipeline::Create(*options, writer.get(), [this](std::string body) {
      std::lock_guard<std::mutex> lock(mu);
      stats.push_back(std::move(body));
      return absl::OkStatus();
    });
    REQUIRE(created.ok());
    pipeline = *std::move(created);
    ReceiverOptions receiver_options;
    receiver_options.port = 0;
    receiver_options.max_request_bytes = max_request_bytes;
    receiver = std::make_unique<Receiver>(receiver_options, pipeline.get(), nullptr, nullptr);
    writer->Start();
    pipeline->Start();
    REQUIRE(receiver->Start().ok());
  }
  ~Harness() {
    receiver->Stop();
    pipeline->Stop();
    writer->Stop();
  }
  uint16_t port() { return receiver->tcp_port(); }

  std::vector<datadog::trace::Span> WrittenSpans() {
    writer->Stop();
    std::vector<datadog::trace::Span> out;
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& payload : traces) {
      std::string encoding;
      for (const auto& [name, value] : payload.headers)
        if (name == "Content-Encoding") encoding = value;
      CHECK(encoding == "zstd");  // what the Datadog trace-agent sends since 7.59
      auto body = dogwatch::compression::DecompressByContentEncoding(encoding, payload.body, 64 << 20);
      REQUIRE(body.ok());
      datadog::trace::AgentPayload decoded;
      REQUIRE(decoded.ParseFromString(*body));
      for (const auto& tp : decoded.tracerpayloads()) {
        for (const auto& chunk : tp.chunks()) {
          for (const auto& span : chunk.spans()) out.push_back(span);
        }
      }
    }
    return out;
  }
};

std::string OneSpanPayload(const std::string& service, int64_t start,
                           const std::string& resource = "GET /x") {
  MsgpackWriter w;
  w.Array32(1).Array32(1).Map(8);
  w.Str("service").Str(service);
  w.Str("name").Str("http.request");
  w.Str("resource").Str(resource);
  w.Str("trace_id").U64(77);
  w.Str("span_id").U64(78);
  w.Str("start").I64(start);
  w.Str("duration").U32(1000);
  w.Str("metrics").Map(1).Str("_sampling_priority_v1").U8(1);
  return w.Take();
}

}  // namespace

TEST_CASE("valid traces are answered with rate_by_service and written") {
  Harness h;
  Reply reply = Put(h.port(), "/v0.4/traces", testdata::BuildRealisticV04Payload(5, 15));
  CHECK(reply.status == 200);
  CHECK_THAT(reply.body, Catch::Contains("\"rate_by_service\""));
  CHECK_THAT(reply.body, Catch::Contains("\"service:,env:\""));
  CHECK_THAT(reply.agent_version_header, Catch::Contains(DOGWATCH_VERSION));
  const auto spans = h.WrittenSpans();
  CHECK(spans.size() == 75);
  CHECK(h.receiver->Counters().at("spans_received") == 75);
  // SQL spans borrow the obfuscated statement from the shared (cached) result until the writer has
  // encoded them: what was written must be the obfuscated text, in the resource and in sql.query.
  int sql = 0;
  for (const auto& span : spans) {
    if (span.type() != "sql") continue;
    ++sql;
    INFO(span.resource());
    CHECK(span.resource().find('?') != std::string::npos);
    CHECK(span.meta().at("sql.query") == span.resource());
  }
  CHECK(sql > 0);
  const auto counters = h.pipeline->Counters();
  CHECK(counters.at("obfuscation_sql_queries") >= sql);
  CHECK(counters.at("obfuscation_sql_cache_hits") + counters.at("obfuscation_sql_cache_misses") ==
        counters.at("obfuscation_sql_queries"));
  CHECK(counters.at("obfuscation_sql_cache_evictions") == 0);
  CHECK(counters.at("obfuscation_sql_cache_entries") > 0);
  // Every bounded store reports what it kept and what it shed.
  CHECK(counters.at("stats_peer_tag_set_cache_resets") == 0);
  CHECK(counters.at("tag_storage_pooled") >= 0);
  CHECK(counters.at("tag_storage_reused") + counters.at("tag_storage_allocated") > 0);
}

TEST_CASE("bad trace payloads get a clear 4xx, are counted and never crash") {
  Harness h(64 * 1024);
  std::string valid = OneSpanPayload("svc", 1700000000000000000);

  SECTION("truncated msgpack, at every length") {
    for (size_t n = 1; n < valid.size(); n += 3) {
      Reply reply = Put(h.port(), "/v0.4/traces", valid.substr(0, n));
      CHECK(reply.status == 400);
    }
    CHECK(h.receiver->Counters().at("decode_errors:v0.4") >= static_cast<int64_t>(valid.size() / 3));
  }
  SECTION("a 5-byte payload claiming a huge array") {
    Reply reply = Put(h.port(), "/v0.4/traces", std::string("\xdd\xff\xff\xff\xff", 5));
    CHECK(reply.status == 400);
    CHECK_THAT(reply.body, Catch::Contains("cannot decode"));
  }
  SECTION("wrong types") {
    MsgpackWriter w;
    w.Array32(1).Array32(1).Map(1).Str("trace_id").Str("not a number");
    Reply reply = Put(h.port(), "/v0.4/traces", w.Take());
    CHECK(reply.status == 400);
    CHECK_THAT(reply.body, Catch::Contains("trace_id"));
  }
  SECTION("a body over apm_config.max_request_bytes is 413") {
    Reply reply = Put(h.port(), "/v0.4/traces", std::string(100 * 1024, 'x'));
    CHECK(reply.status == 413);
  }
  SECTION("v0.5 with the wrong shape") {
    MsgpackWriter w;
    w.Array(3).Array(0).Array(0).Array(0);
    Reply reply = Put(h.port(), "/v0.5/traces", w.Take());
    CHECK(reply.status == 400);
  }
  SECTION("malformed JSON") {
    Reply reply = Put(h.port(), "/v0.4/traces", "[[{\"trace_id\": ", "application/json");
    CHECK(reply.status == 400);
  }
  SECTION("invalid UTF-8 and absurd timestamps are repaired, not refused") {
    Reply reply = Put(h.port(), "/v0.4/traces", OneSpanPayload("bad\xff\xfeservice", -5, "res\xc3"));
    CHECK(reply.status == 200);
    auto spans = h.WrittenSpans();
    REQUIRE(spans.size() == 1);
    CHECK(spans[0].service().find('\xff') == std::string::npos);
    CHECK(spans[0].start() > 946684800000000000);  // moved after 2000-01-01, as the agent does
  }
  // The server is still serving after all of it.
  CHECK(Put(h.port(), "/v0.4/traces", valid).status == 200);
}

TEST_CASE("info, services, remote config and unknown endpoints answer like the Datadog agent") {
  Harness h;
  Reply services = Put(h.port(), "/v0.4/services", "{}", "application/json");
  CHECK(services.status == 200);
  Reply config = Put(h.port(), "/v0.7/config", "{}", "application/json");
  CHECK(config.status == 404);
  Reply unknown = Put(h.port(), "/v9/nothing", "", "application/json");
  CHECK(unknown.status == 404);
  dogwatch::http::HttpRequest info;
  info.method = "GET";
  info.path = "/info";
  auto reply = h.receiver->Handle(info);
  CHECK(reply.status == 200);
  CHECK_THAT(reply.body, Catch::Contains("\"/v0.6/stats\""));
  CHECK_THAT(reply.body, Catch::Contains("\"client_drop_p0s\": true"));
}

namespace {

// Holds every payload in Process until released, so requests can be made to overlap.
class BlockingProcessor final : public TraceProcessor {
 public:
  void Process(TracerPayload, const RequestContext&) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return released_; });
    ++processed_;
  }
  absl::Status ProcessClientStats(std::string_view, const RequestContext&) override {
    return absl::OkStatus();
  }
  std::string RateByServiceJson() override { return "{\"rate_by_service\":{\"service:,env:\":1}}"; }

  void WaitEntered(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return entered_ >= n; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  int processed() {
    std::lock_guard<std::mutex> lock(mu_);
    return processed_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int entered_ = 0;
  int processed_ = 0;
  bool released_ = false;
};

dogwatch::http::HttpRequest TraceRequest(const std::string& body) {
  dogwatch::http::HttpRequest request;
  request.method = "PUT";
  request.path = "/v0.4/traces";
  request.headers.Add("Content-Type", "application/msgpack");
  request.headers.Add("X-Datadog-Trace-Count", "1");
  request.body = body;
  return request;
}

}  // namespace

TEST_CASE("bodies in flight are bounded: refusals are counted, 200 by default, 429 when asked for") {
  BlockingProcessor processor;
  ReceiverOptions options;
  options.port.reset();
  options.max_inflight_bytes = 1;  // one request at a time: a lone body is always admitted
  options.overload_timeout = std::chrono::milliseconds(50);
  Receiver receiver(options, &processor, nullptr, nullptr);
  const std::string body = OneSpanPayload("svc", 1700000000000000000);

  dogwatch::http::HttpReply first;
  std::thread holder([&] { first = receiver.Handle(TraceRequest(body)); });
  processor.WaitEntered(1);

  auto refused = receiver.Handle(TraceRequest(body));
  CHECK(refused.status == 200);  // what old tracers expect: no retry storm
  CHECK_THAT(refused.body, Catch::Contains("rate_by_service"));
  auto real_status = TraceRequest(body);
  real_status.headers.Add("Datadog-Send-Real-Http-Status", "yes");
  CHECK(receiver.Handle(real_status).status == 429);
  auto counters = receiver.Counters();
  CHECK(counters.at("payloads_refused") == 2);
  CHECK(counters.at("traces_refused") == 2);
  CHECK(processor.processed() == 0);

  processor.Release();
  holder.join();
  CHECK(first.status == 200);
  // Capacity is back once the first request is done.
  CHECK(receiver.Handle(TraceRequest(body)).status == 200);
  CHECK(processor.processed() == 2);
  CHECK(receiver.Counters().at("payloads_refused") == 2);
}

TEST_CASE("receiver counters per service, lang and tracer version are bounded") {
  auto chunk = [](std::string service, int spans) {
    TraceChunk c;
    for (int i = 0; i < spans; ++i) {
      Span& s = c.spans.emplace_back();
      s.service = service;
      s.parent_id = i == 0 ? 0 : 1;
      if (i > 0) s.service = "child-of-" + service;  // chunks count under their root's service
    }
    return c;
  };
  ReceiverTagStats stats(/*max_tag_sets=*/2);
  TracerPayload mixed;
  mixed.chunks.push_back(chunk("web", 3));
  mixed.chunks.push_back(chunk("db", 1));
  mixed.chunks.push_back(chunk("web", 4));
  stats.AddPayload(mixed, "nodejs", "5.1.0", 1001);
  std::map<std::string, int64_t> c;
  stats.AppendCounters(&c);
  const std::string web = "service=web,lang=nodejs,tracer_version=5.1.0";
  const std::string db = "service=db,lang=nodejs,tracer_version=5.1.0";
  CHECK(c.at("traces_received:" + web) == 2);
  CHECK(c.at("spans_received:" + web) == 7);
  CHECK(c.at("traces_received:" + db) == 1);
  CHECK(c.at("spans_received:" + db) == 1);
  CHECK(c.at("payloads_received:" + web) == 1);
  CHECK(c.at("payloads_received:" + db) == 1);
  // Bytes shared out by spans, adding up to the body size.
  CHECK(c.at("bytes_received:" + web) == 1001 * 7 / 8);
  CHECK(c.at("bytes_received:" + web) + c.at("bytes_received:" + db) == 1001);
  CHECK(c.at("received_tag_sets") == 2);
  CHECK(c.at("received_tag_sets_overflow") == 0);
  CHECK(c.count("traces_received:other") == 0);

  // A third combination goes under "other", counted; known ones keep adding up.
  TracerPayload python;
  python.chunks.push_back(chunk("web", 2));
  stats.AddPayload(python, "python", "2.9.0", 500);
  stats.AddPayload(mixed, "nodejs", "5.1.0", 1001);
  c.clear();
  stats.AppendCounters(&c);
  CHECK(c.at("traces_received:other") == 1);
  CHECK(c.at("spans_received:other") == 2);
  CHECK(c.at("bytes_received:other") == 500);
  CHECK(c.at("received_tag_sets_overflow") == 1);
  CHECK(c.at("received_tag_sets") == 2);
  CHECK(c.at("traces_received:" + web) == 4);
  CHECK(c.count("traces_received:service=web,lang=python,tracer_version=2.9.0") == 0);

  // Counter names stay ASCII and short whatever the tracer sends.
  CHECK(ReceiverTagStats::CounterValue("my svc,=\xc3\xa9") == "my_svc____");
  CHECK(ReceiverTagStats::CounterValue(std::string(200, 'a')).size() == ReceiverTagStats::kMaxValueBytes);
}

TEST_CASE("the receiver counts per service; nothing kept after a request points into its body") {
  Harness h;
  std::string body = testdata::BuildRealisticV04Payload(5, 15);
  std::string payload_service;
  {
    auto traces = DecodeMsgpackTracesV04(body);
    REQUIRE(traces.ok());
    payload_service = std::string((*traces)[0][0].service);
  }
  auto request = TraceRequest(body);
  request.headers.Add("Datadog-Meta-Lang", "nodejs");
  request.headers.Add("Datadog-Meta-Tracer-Version", "5.0.0");
  CHECK(h.receiver->Handle(request).status == 200);
  // The spans borrowed from the request body: wipe and free it. The concentrator's keys, the
  // samplers' state and the writer's buffer must hold their own copies (ASan checks the reads).
  std::fill(request.body.begin(), request.body.end(), '\0');
  request.body.clear();
  request.body.shrink_to_fit();
  body.clear();
  body.shrink_to_fit();
  CHECK(h.receiver->Handle(TraceRequest(OneSpanPayload("second", 1700000000000000000))).status == 200);
  h.pipeline->Stop();  // flushes every stats bucket
  const auto spans = h.WrittenSpans();
  REQUIRE(spans.size() == 76);
  CHECK(std::count_if(spans.begin(), spans.end(),
                      [&](const auto& span) { return span.service() == payload_service; }) > 0);
  {
    std::lock_guard<std::mutex> lock(h.mu);
    REQUIRE(!h.stats.empty());
    bool found = false;
    for (const auto& gz : h.stats) {
      auto raw = dogwatch::compression::DecompressByContentEncoding("gzip", gz, 64 << 20);
      REQUIRE(raw.ok());
      found |= raw->find(payload_service) != std::string::npos;
    }
    CHECK(found);
  }
  const auto counters = h.receiver->Counters();
  const std::string set = "service=" + payload_service + ",lang=nodejs,tracer_version=5.0.0";
  CHECK(counters.at("traces_received:" + set) == 5);
  CHECK(counters.at("spans_received:" + set) == 75);
  CHECK(counters.at("payloads_received:" + set) == 1);
  CHECK(counters.at("traces_received:service=second,lang=,tracer_version=") == 1);
  CHECK(counters.at("received_tag_sets") == 2);
}
