#include "agent-core/intake/protobuf_wire_check.h"

#include <google/protobuf/stubs/logging.h>

#include <catch2/catch.hpp>
#include <string>

#include "datadog/metrics/metrics.pb.h"
#include "datadog/trace/agent_payload.pb.h"

namespace dogwatch::intake {
namespace {

datadog::trace::AgentPayload SamplePayload() {
  datadog::trace::AgentPayload payload;
  payload.set_hostname("web-1");
  payload.set_env("prod");
  (*payload.mutable_tags())["cluster"] = "east";
  payload.set_targettps(10);
  auto* tracer = payload.add_tracerpayloads();
  tracer->set_languagename("nodejs");
  auto* chunk = tracer->add_chunks();
  chunk->set_priority(-1);  // a negative int32: a 10-byte varint
  (*chunk->mutable_tags())["_dd.p.dm"] = "-1";
  for (int i = 0; i < 3; ++i) {
    auto* span = chunk->add_spans();
    span->set_service("checkout");
    span->set_name("pg.query");
    span->set_resource("SELECT * FROM carts WHERE id = ?");
    span->set_traceid(0x1234567890abcdefull);
    span->set_spanid(static_cast<uint64_t>(i) + 1);
    span->set_start(1700000000000000000);
    span->set_duration(1500);
    (*span->mutable_meta())["db.system"] = "postgresql";
    (*span->mutable_meta())["peer.service"] = "carts-db";
    (*span->mutable_metrics())["_sampling_priority_v1"] = 1;
    (*span->mutable_meta_struct())["appsec"] = std::string("\xc1\xff\x00binary", 9);
    auto* link = span->add_spanlinks();
    link->set_traceid(7);
    (*link->mutable_attributes())["reason"] = "retry";
  }
  return payload;
}

template <typename Message>
bool Parses(const std::string& bytes) {
  Message message;
  return message.ParseFromString(bytes);
}

// The wire check's verdict, checked against the parser's on the same bytes.
template <typename Message>
absl::Status CheckAgreeing(const std::string& bytes) {
  static const ProtobufWireCheck check(Message::descriptor());
  absl::Status status = check.Check(bytes);
  INFO(status);
  CHECK(status.ok() == Parses<Message>(bytes));
  return status;
}

std::string Varint(uint64_t value) {
  std::string out;
  while (value >= 0x80) {
    out.push_back(static_cast<char>(value | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
  return out;
}

std::string Tag(uint32_t number, uint32_t wire) { return Varint(uint64_t{number} << 3 | wire); }

std::string LengthDelimited(uint32_t number, const std::string& bytes) {
  return Tag(number, 2) + Varint(bytes.size()) + bytes;
}

// The parser logs each invalid UTF-8 string it refuses; the tests make many on purpose.
struct QuietProtobuf {
  QuietProtobuf() {
    google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  }
  ~QuietProtobuf() { google::protobuf::SetLogHandler(nullptr); }
};

TEST_CASE("wire check: a real AgentPayload and every prefix and byte change of it, as the parser") {
  QuietProtobuf quiet;
  const std::string bytes = SamplePayload().SerializeAsString();
  REQUIRE(CheckAgreeing<datadog::trace::AgentPayload>(bytes).ok());
  // Every truncation: the parser refuses most, accepts those that end between top-level fields.
  size_t refused = 0;
  for (size_t n = 0; n < bytes.size(); ++n) {
    refused += !CheckAgreeing<datadog::trace::AgentPayload>(bytes.substr(0, n)).ok();
  }
  CHECK(refused > bytes.size() / 2);
  // Every byte replaced by a few telling values: zero tags, continuation bits, group and invalid
  // wire types, bytes that break UTF-8.
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (const char replacement : {'\x00', '\x80', '\xff', '\x03', '\x04', '\x07', '\x0c', '\xc0'}) {
      std::string changed = bytes;
      changed[i] = replacement;
      (void)CheckAgreeing<datadog::trace::AgentPayload>(changed);  // the agreement is the check
    }
  }
}

TEST_CASE("wire check: what it refuses, and where it says the problem is") {
  QuietProtobuf quiet;
  using datadog::trace::AgentPayload;

  SECTION("invalid UTF-8 in a string field, and in a map key, but not in a bytes field") {
    datadog::trace::AgentPayload payload = SamplePayload();
    payload.mutable_tracerpayloads(0)->mutable_chunks(0)->mutable_spans(1)->set_service("caf\xe9");
    const absl::Status status = CheckAgreeing<AgentPayload>(payload.SerializeAsString());
    CHECK(std::string(status.message())
              .find("string is not valid UTF-8 in field 1 of datadog.trace.Span at byte") == 0);

    payload = SamplePayload();
    (*payload.mutable_tracerpayloads(0)->mutable_chunks(0)->mutable_spans(0)->mutable_meta())["\xff"] = "x";
    CHECK(std::string(CheckAgreeing<AgentPayload>(payload.SerializeAsString()).message())
              .find("in field 1 of datadog.trace.Span.MetaEntry") != std::string::npos);

    // meta_struct values are bytes: anything goes (the sample already holds \xc1\xff).
    CHECK(CheckAgreeing<AgentPayload>(SamplePayload().SerializeAsString()).ok());
  }

  SECTION("tags the parser refuses") {
    CHECK(std::string(CheckAgreeing<AgentPayload>(std::string("\x00", 1)).message()) ==
          "tag 0 in datadog.trace.AgentPayload at byte 0");
    CHECK(std::string(CheckAgreeing<AgentPayload>(Tag(3, 7) + "x").message())
              .find("invalid wire type 7 in field 3") == 0);
    CHECK(std::string(CheckAgreeing<AgentPayload>(Tag(0, 5) + "abcd").message()).find("field number 0") == 0);
    CHECK_FALSE(CheckAgreeing<AgentPayload>(Tag(9, 4)).ok());                   // an end-group out of nowhere
    CHECK_FALSE(CheckAgreeing<AgentPayload>("\x80\x80\x80\x80\x80\x01").ok());  // a 6-byte tag
  }

  SECTION("values that run past their end") {
    CHECK_FALSE(CheckAgreeing<AgentPayload>(Tag(1, 2) + Varint(10) + "short").ok());
    CHECK_FALSE(CheckAgreeing<AgentPayload>(Tag(8, 1) + "1234567").ok());  // a double cut short
    CHECK_FALSE(CheckAgreeing<AgentPayload>(Tag(10, 0) + std::string(10, '\x80') + "\x01").ok());  // 11 bytes
    CHECK(CheckAgreeing<AgentPayload>(Tag(10, 0) + std::string(9, '\x80') + "\x01").ok());         // 10 bytes
    // A field of a nested message that runs past that message's end, though not past the input's.
    const std::string chunk = LengthDelimited(2, "abc");  // TraceChunk.origin
    std::string tracer = LengthDelimited(6, chunk);       // TracerPayload.chunks
    tracer[1] = static_cast<char>(chunk.size() - 1);      // the chunk ends inside origin
    const absl::Status status =
        CheckAgreeing<AgentPayload>(LengthDelimited(5, tracer) + Tag(1, 2) + Varint(0));
    CHECK(std::string(status.message())
              .find("length 3 runs past the end of its message in field 2 of datadog.trace.TraceChunk") == 0);
  }

  SECTION("mistyped known fields are unknown fields, and unknown groups must close") {
    CHECK(CheckAgreeing<AgentPayload>(Tag(1, 0) + Varint(5)).ok());  // hostName as a varint
    CHECK(CheckAgreeing<AgentPayload>(Tag(5, 5) + "abcd").ok());     // tracerPayloads as fixed32
    CHECK(CheckAgreeing<AgentPayload>(Tag(40, 3) + Tag(1, 0) + "\x01" + Tag(40, 4)).ok());
    CHECK_FALSE(CheckAgreeing<AgentPayload>(Tag(40, 3) + Tag(1, 0) + "\x01" + Tag(41, 4)).ok());
    CHECK_FALSE(CheckAgreeing<AgentPayload>(Tag(40, 3) + Tag(1, 0) + "\x01").ok());
  }

  SECTION("nesting up to the parser's limit of 100, not beyond") {
    auto groups = [](int depth) {
      std::string bytes;
      for (int i = 0; i < depth; ++i) bytes += Tag(50, 3);
      for (int i = 0; i < depth; ++i) bytes += Tag(50, 4);
      return bytes;
    };
    CHECK(CheckAgreeing<AgentPayload>(groups(100)).ok());
    CHECK(std::string(CheckAgreeing<AgentPayload>(groups(101)).message()).find("nested too deeply") == 0);
  }

  SECTION("packed repeated fields") {
    using datadog::agentpayload::SketchPayload;
    // sketches[0].dogsketches[0].k, packed sint32: whole varints only.
    auto sketch_with_k = [](const std::string& packed) {
      return LengthDelimited(1, LengthDelimited(7, LengthDelimited(7, packed)));
    };
    CHECK(CheckAgreeing<SketchPayload>(sketch_with_k("\x01\x02\x03")).ok());
    CHECK(std::string(CheckAgreeing<SketchPayload>(sketch_with_k("\x01\x82")).message())
              .find("malformed packed varint") == 0);
    // distributions[0].v, packed double: whole 8-byte values only.
    auto distribution_with_v = [](const std::string& packed) {
      return LengthDelimited(1, LengthDelimited(3, LengthDelimited(7, packed)));
    };
    CHECK(CheckAgreeing<SketchPayload>(distribution_with_v(std::string(16, '\0'))).ok());
    CHECK_FALSE(CheckAgreeing<SketchPayload>(distribution_with_v(std::string(12, '\0'))).ok());
  }
}

}  // namespace
}  // namespace dogwatch::intake
