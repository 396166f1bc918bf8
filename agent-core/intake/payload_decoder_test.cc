#include "agent-core/intake/payload_decoder.h"

#include <catch2/catch.hpp>

#include "absl/strings/escaping.h"
#include "agent-core/intake/intake_test_util.h"
#include "common/compression/compression.h"
#include "datadog/metrics/metrics.pb.h"
#include "datadog/process/agent.pb.h"
#include "datadog/trace/agent_payload.pb.h"

namespace dogwatch::intake {
namespace {

using compression::Codec;
using testing::MsgpackWriter;
using testing::ParseJson;

std::string Compressed(Codec codec, const std::string& data) {
  absl::StatusOr<std::string> out = compression::Compress(codec, data);
  REQUIRE(out.ok());
  return *out;
}

std::string DecodeOk(PayloadKind kind, std::string_view encoding, const std::string& body) {
  absl::StatusOr<std::string> json = DecodePayloadToJson(kind, encoding, body);
  INFO(json.status());
  REQUIRE(json.ok());
  // Receive-time validation accepts what decodes.
  CHECK(ValidatePayload(kind, encoding, body).ok());
  return *json;
}

std::string DecodeError(PayloadKind kind, std::string_view encoding, const std::string& body,
                        const DecodeLimits& limits = {}) {
  absl::StatusOr<std::string> json = DecodePayloadToJson(kind, encoding, body, limits);
  REQUIRE_FALSE(json.ok());
  // Receive-time validation refuses it with the same reason.
  const absl::Status validated = ValidatePayload(kind, encoding, body, limits);
  CHECK_FALSE(validated.ok());
  CHECK(validated.message() == json.status().message());
  return std::string(json.status().message());
}

datadog::trace::AgentPayload SampleAgentPayload() {
  datadog::trace::AgentPayload payload;
  payload.set_hostname("web-1");
  payload.set_env("prod");
  payload.set_agentversion("0.1.0");
  payload.set_targettps(10);
  auto* tracer = payload.add_tracerpayloads();
  tracer->set_languagename("python");
  auto* chunk = tracer->add_chunks();
  chunk->set_priority(1);
  auto* span = chunk->add_spans();
  span->set_service("checkout");
  span->set_name("http.request");
  span->set_resource("GET /cart");
  span->set_traceid(1234567890123ull);
  span->set_spanid(42);
  span->set_start(1700000000000000000);
  span->set_duration(1500);
  (*span->mutable_meta())["http.status_code"] = "200";
  (*span->mutable_metrics())["_sampling_priority_v1"] = 1;
  return payload;
}

datadog::agentpayload::MetricPayload SampleMetricPayload() {
  datadog::agentpayload::MetricPayload payload;
  auto* series = payload.add_series();
  series->set_metric("system.load.1");
  series->set_type(datadog::agentpayload::MetricPayload::GAUGE);
  series->add_tags("env:prod");
  auto* resource = series->add_resources();
  resource->set_type("host");
  resource->set_name("web-1");
  auto* point = series->add_points();
  point->set_value(0.75);
  point->set_timestamp(1700000000);
  series->set_interval(10);
  return payload;
}

TEST_CASE("every Datadog intake path maps to a payload kind") {
  CHECK(PayloadKindForPath("/api/v0.2/traces") == PayloadKind::kTraces);
  CHECK(PayloadKindForPath("/api/v0.2/stats") == PayloadKind::kTraceStats);
  CHECK(PayloadKindForPath("/api/v2/series") == PayloadKind::kSeriesV2);
  CHECK(PayloadKindForPath("/api/beta/sketches") == PayloadKind::kSketches);
  CHECK(PayloadKindForPath("/api/v1/series") == PayloadKind::kSeriesV1);
  CHECK(PayloadKindForPath("/api/v1/check_run") == PayloadKind::kCheckRuns);
  CHECK(PayloadKindForPath("/intake/") == PayloadKind::kIntake);
  CHECK(PayloadKindForPath("/intake") == PayloadKind::kIntake);
  CHECK(PayloadKindForPath("/api/v1/collector") == PayloadKind::kProcess);
  CHECK(PayloadKindForPath("/api/v1/container") == PayloadKind::kProcess);
  CHECK(PayloadKindForPath("/api/v1/connections") == PayloadKind::kProcess);
  CHECK(PayloadKindForPath("/api/v2/apmtelemetry") == PayloadKind::kOpaque);
  CHECK(PayloadKindForPath("/api/v2/profile") == PayloadKind::kOpaque);
  CHECK_FALSE(PayloadKindForPath("/api/v1/validate").has_value());
  CHECK_FALSE(PayloadKindForPath("/api/v2/series/").has_value());
  CHECK(PayloadPaths().size() == 13);
  // EVP proxy payloads: any /api/ path, recognised by their subdomain header.
  CHECK(PayloadKindForRequest("/api/v2/citestcycle", true) == PayloadKind::kOpaque);
  CHECK_FALSE(PayloadKindForRequest("/api/v2/citestcycle", false).has_value());
  CHECK_FALSE(PayloadKindForRequest("/other", true).has_value());
  CHECK(PayloadKindForRequest("/api/v2/series", false) == PayloadKind::kSeriesV2);
}

TEST_CASE("opaque payloads show as JSON when they are JSON, else as base64, within the limits") {
  DecodeLimits limits;
  auto json =
      DecodePayloadToJson(PayloadKind::kOpaque, "", R"({"request_type":"app-started","seq_id":1})", limits);
  REQUIRE(json.ok());
  CHECK(*json == R"({"bytes":41,"json":{"request_type":"app-started","seq_id":1}})");
  auto gz = dogwatch::compression::GzipCompress("not json \x01");
  REQUIRE(gz.ok());
  auto binary = DecodePayloadToJson(PayloadKind::kOpaque, "gzip", *gz, limits);
  REQUIRE(binary.ok());
  CHECK(binary->find(R"("body_base64":")") != std::string::npos);
  limits.max_json_bytes = 16;
  CHECK(absl::IsResourceExhausted(
      DecodePayloadToJson(PayloadKind::kOpaque, "", "[1,2,3,4,5,6,7,8,9]", limits).status()));
}

TEST_CASE(
    "traces: gzip and zstd AgentPayload decode to JSON with proto field "
    "names") {
  const std::string proto = SampleAgentPayload().SerializeAsString();
  for (auto [codec, encoding] : {std::pair{Codec::kGzip, "gzip"}, std::pair{Codec::kZstd, "zstd"}}) {
    const std::string json = DecodeOk(PayloadKind::kTraces, encoding, Compressed(codec, proto));
    rapidjson::Document doc = ParseJson(json);
    REQUIRE(doc.IsObject());
    CHECK(std::string(doc["hostName"].GetString()) == "web-1");
    CHECK(std::string(doc["env"].GetString()) == "prod");
    CHECK(doc["rareSamplerEnabled"].IsBool());  // defaults are printed
    const auto& span = doc["tracerPayloads"][0]["chunks"][0]["spans"][0];
    CHECK(std::string(span["service"].GetString()) == "checkout");
    CHECK(std::string(span["traceID"].GetString()) == "1234567890123");  // 64-bit → string
    CHECK(std::string(span["meta"]["http.status_code"].GetString()) == "200");
    CHECK(span["metrics"]["_sampling_priority_v1"].GetDouble() == 1.0);
  }
}

TEST_CASE("series v2 and sketches decode") {
  const std::string series = SampleMetricPayload().SerializeAsString();
  for (auto [codec, encoding] : {std::pair{Codec::kZlib, "deflate"}, std::pair{Codec::kZstd, "zstd"},
                                 std::pair{Codec::kIdentity, ""}}) {
    rapidjson::Document doc =
        ParseJson(DecodeOk(PayloadKind::kSeriesV2, encoding, Compressed(codec, series)));
    const auto& s = doc["series"][0];
    CHECK(std::string(s["metric"].GetString()) == "system.load.1");
    CHECK(std::string(s["type"].GetString()) == "GAUGE");
    CHECK(std::string(s["resources"][0]["name"].GetString()) == "web-1");
    CHECK(s["points"][0]["value"].GetDouble() == 0.75);
    CHECK(std::string(s["points"][0]["timestamp"].GetString()) == "1700000000");
    CHECK(std::string(s["source_type_name"].GetString()).empty());  // proto name kept
  }

  datadog::agentpayload::SketchPayload sketches;
  auto* sketch = sketches.add_sketches();
  sketch->set_metric("request.latency");
  sketch->set_host("web-1");
  auto* dog = sketch->add_dogsketches();
  dog->set_cnt(3);
  dog->add_k(-5);
  dog->add_n(3);
  rapidjson::Document doc = ParseJson(
      DecodeOk(PayloadKind::kSketches, "deflate", Compressed(Codec::kZlib, sketches.SerializeAsString())));
  CHECK(std::string(doc["sketches"][0]["metric"].GetString()) == "request.latency");
  CHECK(doc["sketches"][0]["dogsketches"][0]["k"][0].GetInt() == -5);
}

TEST_CASE("stats: gzip msgpack decodes generically") {
  MsgpackWriter w;
  w.Map(2).Str("AgentHostname").Str("web-1").Str("Stats").Array(1).Map(1).Str("Env").Str("prod");
  rapidjson::Document doc =
      ParseJson(DecodeOk(PayloadKind::kTraceStats, "gzip", Compressed(Codec::kGzip, w.bytes())));
  CHECK(std::string(doc["AgentHostname"].GetString()) == "web-1");
  CHECK(std::string(doc["Stats"][0]["Env"].GetString()) == "prod");

  CHECK(DecodeError(PayloadKind::kTraceStats, "gzip",
                    Compressed(Codec::kGzip, MsgpackWriter().Array(0).bytes())) ==
        "StatsPayload must be a msgpack map");
  CHECK(DecodeError(PayloadKind::kTraceStats, "gzip",
                    Compressed(Codec::kGzip, MsgpackWriter().Map(1).Str("k").bytes()))
            .find("StatsPayload: truncated msgpack") == 0);
}

TEST_CASE("JSON paths: normalized, top-level type checked") {
  const std::string series = R"({"series": [{"metric": "a.b", "points": [[1700000000, 1.50]]}]})";
  CHECK(DecodeOk(PayloadKind::kSeriesV1, "", series) ==
        R"({"series":[{"metric":"a.b","points":[[1700000000,1.50]]}]})");  // numbers
                                                                           // kept as sent
  CHECK(DecodeOk(PayloadKind::kSeriesV1, "deflate", Compressed(Codec::kZlib, series)).size() > 10);
  CHECK(DecodeOk(PayloadKind::kCheckRuns, "", R"([{"check":"ntp.in_sync","status":0}])") ==
        R"([{"check":"ntp.in_sync","status":0}])");
  CHECK(DecodeOk(PayloadKind::kIntake, "", R"({"apiKey":"x","internalHostname":"h"})").size() > 0);

  CHECK(DecodeError(PayloadKind::kCheckRuns, "", "{}") ==
        "invalid JSON at offset 0: expected a JSON array at the top level");
  CHECK(DecodeError(PayloadKind::kSeriesV1, "", "[]") ==
        "invalid JSON at offset 0: expected a JSON object at the top level");
  CHECK(DecodeError(PayloadKind::kSeriesV1, "", "{\"a\": }").find("invalid JSON at offset 6") == 0);
  CHECK(DecodeError(PayloadKind::kSeriesV1, "", "").find("invalid JSON") == 0);
  CHECK(DecodeError(PayloadKind::kSeriesV1, "", "{} {}").find("invalid JSON") == 0);
  CHECK(DecodeError(PayloadKind::kSeriesV1, "", std::string("{}\0", 3)) ==
        "invalid JSON: NUL byte at offset 2");
  CHECK(DecodeError(PayloadKind::kSeriesV1, "", "{\"a\":\"\xff\"}").find("invalid JSON") == 0);
  std::string deep = "{\"a\":" + std::string(10000, '[') + std::string(10000, ']') + "}";
  CHECK(DecodeError(PayloadKind::kSeriesV1, "", deep).find("nesting deeper than 128") != std::string::npos);
}

std::string V3Header(int encoding, int type, int64_t ts) {
  ProcessMessageHeader h;
  h.encoding = encoding;
  h.type = type;
  h.org_id = -7;
  h.timestamp_ms = ts;
  return EncodeProcessMessageHeaderV3(h);
}

datadog::process_agent::CollectorProc SampleCollectorProc() {
  namespace pa = datadog::process_agent;
  pa::CollectorProc message;
  message.set_hostname("host1");
  message.set_groupid(77);
  message.set_groupsize(2);
  message.mutable_info()->mutable_os()->set_name("linux");
  message.mutable_info()->set_totalmemory(8589934592);
  pa::Process* process = message.add_processes();
  process->set_pid(4242);
  process->set_createtime(1700000000000);
  process->set_state(pa::Z);
  process->set_containerid("abc123");
  process->mutable_command()->add_args("/usr/sbin/nginx");
  process->mutable_command()->add_args("-g");
  process->mutable_user()->set_name("www-data");
  process->mutable_memory()->set_rss(1048576);
  process->mutable_cpu()->set_totalpct(2.5F);
  pa::Container* container = message.add_containers();
  container->set_id("abc123");
  container->set_state(pa::running);
  container->set_health(pa::unhealthy);
  container->add_tags("image_name:nginx");
  pa::ContainerAddr* addr = container->add_addresses();
  addr->set_ip("10.0.0.2");
  addr->set_port(8080);
  addr->set_protocol(pa::udp);
  return message;
}

TEST_CASE("process payloads: V3 header decoded, body rendered through the process protos") {
  const std::string proto = SampleCollectorProc().SerializeAsString();
  const std::string body = V3Header(4, 12, 1700000000123) + Compressed(Codec::kZstd, proto);
  rapidjson::Document doc = ParseJson(DecodeOk(PayloadKind::kProcess, "", body));
  const auto& h = doc["header"];
  CHECK(h["version"].GetInt() == 3);
  CHECK(h["encoding"].GetInt() == 4);
  CHECK(std::string(h["encoding_name"].GetString()) == "zstd1x-protobuf");
  CHECK(h["type"].GetInt() == 12);
  CHECK(std::string(h["type_name"].GetString()) == "CollectorProc");
  CHECK(h["org_id"].GetInt() == -7);
  CHECK(h["timestamp_ms"].GetInt64() == 1700000000123);
  CHECK(doc["body_bytes"].GetUint64() == proto.size());
  CHECK_FALSE(doc.HasMember("body_base64"));

  // Field names as in the .proto, enums by name, 64-bit integers as strings, defaults included.
  const auto& b = doc["body"];
  CHECK(std::string(b["hostName"].GetString()) == "host1");
  CHECK(b["groupId"].GetInt() == 77);
  CHECK(b["groupSize"].GetInt() == 2);
  CHECK(std::string(b["networkId"].GetString()).empty());
  CHECK(std::string(b["containerHostType"].GetString()) == "notSpecified");
  CHECK(std::string(b["info"]["os"]["name"].GetString()) == "linux");
  CHECK(std::string(b["info"]["totalMemory"].GetString()) == "8589934592");
  const auto& p = b["processes"][0];
  CHECK(p["pid"].GetInt() == 4242);
  CHECK(std::string(p["createTime"].GetString()) == "1700000000000");
  CHECK(std::string(p["state"].GetString()) == "Z");
  CHECK(std::string(p["containerId"].GetString()) == "abc123");
  CHECK(std::string(p["command"]["args"][1].GetString()) == "-g");
  CHECK(std::string(p["user"]["name"].GetString()) == "www-data");
  CHECK(std::string(p["memory"]["rss"].GetString()) == "1048576");
  CHECK(p["cpu"]["totalPct"].GetDouble() == 2.5);
  const auto& c = b["containers"][0];
  CHECK(std::string(c["state"].GetString()) == "running");
  CHECK(std::string(c["health"].GetString()) == "unhealthy");
  CHECK(std::string(c["tags"][0].GetString()) == "image_name:nginx");
  CHECK(c["addresses"][0]["port"].GetInt() == 8080);
  CHECK(std::string(c["addresses"][0]["protocol"].GetString()) == "udp");

  // Plain protobuf bodies of the other types, chosen by the header.
  datadog::process_agent::CollectorContainer containers;
  containers.set_hostname("h2");
  containers.add_containers()->set_id("c1");
  rapidjson::Document plain =
      ParseJson(DecodeOk(PayloadKind::kProcess, "", V3Header(0, 39, 1) + containers.SerializeAsString()));
  CHECK(std::string(plain["header"]["type_name"].GetString()) == "CollectorContainer");
  CHECK(std::string(plain["body"]["hostName"].GetString()) == "h2");
  CHECK(std::string(plain["body"]["containers"][0]["id"].GetString()) == "c1");

  datadog::process_agent::CollectorRealTime rt;
  rt.set_numcpus(8);
  rt.add_stats()->set_processstate(datadog::process_agent::R);
  rapidjson::Document rt_doc = ParseJson(DecodeOk(
      PayloadKind::kProcess, "", V3Header(4, 27, 1) + Compressed(Codec::kZstd, rt.SerializeAsString())));
  CHECK(rt_doc["body"]["numCpus"].GetInt() == 8);
  CHECK(std::string(rt_doc["body"]["stats"][0]["processState"].GetString()) == "R");

  datadog::process_agent::CollectorContainerRealTime crt;
  crt.add_stats()->set_memusage(5);
  rapidjson::Document crt_doc =
      ParseJson(DecodeOk(PayloadKind::kProcess, "", V3Header(0, 40, 1) + crt.SerializeAsString()));
  CHECK(std::string(crt_doc["body"]["stats"][0]["memUsage"].GetString()) == "5");

  datadog::process_agent::ResCollector reply;
  reply.mutable_status()->set_activeclients(1);
  reply.mutable_status()->set_interval(2);
  rapidjson::Document reply_doc =
      ParseJson(DecodeOk(PayloadKind::kProcess, "", V3Header(0, 23, 1) + reply.SerializeAsString()));
  CHECK(reply_doc["body"]["status"]["activeClients"].GetInt() == 1);
  CHECK(reply_doc["body"]["status"]["interval"].GetInt() == 2);

  // Types without a compiled message keep the body as base64; JSON bodies stay JSON.
  const std::string opaque = "\x12\x05host1";
  rapidjson::Document connections =
      ParseJson(DecodeOk(PayloadKind::kProcess, "", V3Header(0, 41, 1) + opaque));
  CHECK(std::string(connections["header"]["type_name"].GetString()) == "CollectorPod");
  std::string unescaped;
  REQUIRE(absl::Base64Unescape(connections["body_base64"].GetString(), &unescaped));
  CHECK(unescaped == opaque);
  CHECK_FALSE(connections.HasMember("body"));
  rapidjson::Document json =
      ParseJson(DecodeOk(PayloadKind::kProcess, "", V3Header(1, 22, 1) + R"({"hostName":"h"})"));
  CHECK(std::string(json["body"]["hostName"].GetString()) == "h");
}

TEST_CASE("process payloads: malformed bodies and size limits") {
  // A body that is not the message its header names is refused, naming the message.
  CHECK(DecodeError(PayloadKind::kProcess, "", V3Header(0, 12, 1) + "\xff\xff\xff")
            .find("process message body: invalid CollectorProc protobuf (3 bytes)") == 0);
  CHECK(DecodeError(PayloadKind::kProcess, "", V3Header(0, 39, 1) + "\x12\x05host1")
            .find("process message body: invalid CollectorContainer protobuf") == 0);

  // The JSON rendering respects max_json_bytes.
  datadog::process_agent::CollectorProc big = SampleCollectorProc();
  for (int i = 0; i < 200; ++i) big.add_processes()->mutable_command()->add_args(std::string(100, 'a'));
  DecodeLimits limits;
  limits.max_json_bytes = 4096;
  CHECK(DecodeError(PayloadKind::kProcess, "", V3Header(0, 12, 1) + big.SerializeAsString(), limits) ==
        "process message body: JSON for this CollectorProc exceeds 4096 bytes");

  // The decompression cap applies to the message body.
  limits = DecodeLimits();
  limits.max_decompressed_bytes = 1 << 16;
  const std::string bomb = Compressed(Codec::kZstd, std::string(1 << 20, '\0'));
  CHECK(DecodeError(PayloadKind::kProcess, "", V3Header(4, 12, 1) + bomb, limits)
            .find("decompressed size exceeds 65536 bytes") != std::string::npos);
}

TEST_CASE("process header round trip and short headers") {
  const std::string encoded = V3Header(4, 27, -1);
  REQUIRE(encoded.size() == 16);
  absl::StatusOr<ProcessMessageHeader> parsed = ParseProcessMessageHeader(encoded);
  REQUIRE(parsed.ok());
  CHECK(parsed->type == 27);
  CHECK(parsed->timestamp_ms == -1);
  CHECK(parsed->header_bytes == 16);

  CHECK(DecodeError(PayloadKind::kProcess, "", std::string("\x03\x04\x0c\x00\x00", 5)) ==
        "process message of 5 bytes is shorter than its V3 header (16 bytes)");
  CHECK(DecodeError(PayloadKind::kProcess, "", "") == "empty process message");
  CHECK(DecodeError(PayloadKind::kProcess, "", "\x09xxxxxxxxxxxxxxxxxx") ==
        "unknown process message version 9 (expected 1, 2 or 3)");
  CHECK(DecodeError(PayloadKind::kProcess, "", V3Header(3, 12, 0) + "x") ==
        "unknown process message encoding 3");
  CHECK(DecodeError(PayloadKind::kProcess, "", V3Header(4, 12, 0) + "not zstd")
            .find("process message body (encoding 4): corrupt zstd data") == 0);
}

TEST_CASE(
    "malformed bodies: corrupt gzip, zstd bomb, truncated protobuf, wrong "
    "encoding") {
  const std::string proto = SampleAgentPayload().SerializeAsString();
  std::string gz = Compressed(Codec::kGzip, proto);
  gz[gz.size() / 2] ^= 0x5a;
  gz[gz.size() / 2 + 1] ^= 0x5a;
  CHECK(DecodeError(PayloadKind::kTraces, "gzip", gz).find("Content-Encoding gzip: ") == 0);

  DecodeLimits limits;
  limits.max_decompressed_bytes = 1 << 20;
  const std::string bomb = Compressed(Codec::kZstd, std::string(64 << 20, '\0'));
  CHECK(bomb.size() < 10000);
  CHECK(DecodeError(PayloadKind::kSeriesV2, "zstd", bomb, limits)
            .find("decompressed size exceeds 1048576 bytes") != std::string::npos);

  const std::string truncated = Compressed(Codec::kGzip, proto.substr(0, proto.size() - 3));
  CHECK(DecodeError(PayloadKind::kTraces, "gzip", truncated).find("invalid AgentPayload protobuf") == 0);

  CHECK(DecodeError(PayloadKind::kTraces, "br", proto) ==
        "Content-Encoding br: unsupported Content-Encoding \"br\" (supported: "
        "identity, gzip, "
        "deflate, zstd)");
  // A zlib body labelled gzip is caught by the decompressor, not misparsed.
  CHECK(DecodeError(PayloadKind::kSeriesV2, "gzip", Compressed(Codec::kZlib, proto))
            .find("corrupt gzip data") != std::string::npos);
}

}  // namespace
}  // namespace dogwatch::intake
