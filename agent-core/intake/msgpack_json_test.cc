#include "agent-core/intake/msgpack_json.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>

#include "agent-core/intake/intake_test_util.h"

namespace dogwatch::intake {
namespace {

using testing::MsgpackWriter;

std::string Json(const std::string& msgpack) {
  absl::StatusOr<std::string> out = MsgpackToJson(msgpack);
  INFO(out.status());
  REQUIRE(out.ok());
  return *out;
}

std::string Error(const std::string& msgpack, const MsgpackJsonLimits& limits = {}) {
  absl::StatusOr<std::string> out = MsgpackToJson(msgpack, limits);
  REQUIRE_FALSE(out.ok());
  return std::string(out.status().message());
}

TEST_CASE("msgpack scalars map to JSON") {
  CHECK(Json(MsgpackWriter().Nil().bytes()) == "null");
  CHECK(Json(MsgpackWriter().Bool(true).bytes()) == "true");
  CHECK(Json(MsgpackWriter().Bool(false).bytes()) == "false");
  CHECK(Json(MsgpackWriter().Byte(0x7f).bytes()) == "127");
  CHECK(Json(MsgpackWriter().Byte(0xff).bytes()) == "-1");  // negative fixint
  CHECK(Json(MsgpackWriter().Uint(18446744073709551615ull).bytes()) == "18446744073709551615");
  CHECK(Json(MsgpackWriter().Int(-9223372036854775807ll - 1).bytes()) == "-9223372036854775808");
  CHECK(Json(MsgpackWriter().Byte(0xd0).Byte(0x80).bytes()) == "-128");             // int8
  CHECK(Json(MsgpackWriter().Byte(0xd1).Byte(0xff).Byte(0x00).bytes()) == "-256");  // int16
  CHECK(Json(MsgpackWriter().Byte(0xcd).Byte(0x01).Byte(0x00).bytes()) == "256");   // uint16
  CHECK(Json(MsgpackWriter().Double(1.5).bytes()) == "1.5");
  CHECK(Json(MsgpackWriter().Float(0.25f).bytes()) == "0.25");
  CHECK(Json(MsgpackWriter().Double(std::nan("")).bytes()) == "\"NaN\"");
  CHECK(Json(MsgpackWriter().Double(-std::numeric_limits<double>::infinity()).bytes()) == "\"-Infinity\"");
  CHECK(Json(MsgpackWriter().Str("hé \"q\"\n").bytes()) == "\"hé \\\"q\\\"\\n\"");
  CHECK(Json(MsgpackWriter().Bin("\x01\x02\x03").bytes()) == "\"AQID\"");
}

TEST_CASE("msgpack containers map to JSON, like a StatsPayload") {
  MsgpackWriter w;
  w.Map(3)
      .Str("AgentHostname")
      .Str("host-a")
      .Str("Stats")
      .Array(1)
      .Map(2)
      .Str("Hostname")
      .Str("h")
      .Str("Stats")
      .Array(0)
      .Str("SplitPayload")
      .Bool(false);
  CHECK(Json(w.bytes()) ==
        "{\"AgentHostname\":\"host-a\",\"Stats\":[{\"Hostname\":\"h\","
        "\"Stats\":[]}],"
        "\"SplitPayload\":false}");
}

TEST_CASE("non-string map keys become their JSON text") {
  MsgpackWriter w;
  w.Map(3).Byte(0x07).Str("seven").Nil().Bool(true).Bool(false).Int(-2);
  CHECK(Json(w.bytes()) == "{\"7\":\"seven\",\"null\":true,\"false\":-2}");
}

TEST_CASE("container map keys are refused instead of nesting escaped JSON") {
  std::string nested(60, '\x81');  // each map's key is another map
  nested += '\x03';
  CHECK(Error(nested).find("only scalar keys are supported") != std::string::npos);
}

TEST_CASE("ext types keep their type and data") {
  MsgpackWriter w;
  w.Byte(0xd4).Byte(0x05).Byte(0xaa);  // fixext1, type 5
  CHECK(Json(w.bytes()) == "{\"$ext\":5,\"data\":\"qg==\"}");
}

TEST_CASE("invalid UTF-8 in strings is replaced, not passed through") {
  CHECK(Json(MsgpackWriter()
                 .Str("a\xff"
                      "b")
                 .bytes()) ==
        "\"a\xef\xbf\xbd"
        "b\"");
  CHECK(SanitizeUtf8("\xc0\xaf") == "\xef\xbf\xbd\xef\xbf\xbd");                  // overlong
  CHECK(SanitizeUtf8("\xed\xa0\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // surrogate
  CHECK(SanitizeUtf8("\xf0\x9f\x90\xb6") == "\xf0\x9f\x90\xb6");                  // 🐶
  CHECK(SanitizeUtf8("\xe2\x82") == "\xef\xbf\xbd\xef\xbf\xbd");                  // truncated
}

TEST_CASE("malformed msgpack is rejected with a clear error") {
  CHECK(Error("") == "empty input is not msgpack");
  CHECK(Error(MsgpackWriter().Byte(0xc1).bytes()).find("invalid msgpack type byte 0xc1") !=
        std::string::npos);
  CHECK(Error(MsgpackWriter().Byte(0xcb).Byte(0).bytes()).find("truncated msgpack: float64") !=
        std::string::npos);
  CHECK(Error(MsgpackWriter().Byte(0xa5).Raw("ab").bytes()).find("str of 5 bytes") != std::string::npos);
  // A declared count the remaining bytes cannot hold is refused before looping.
  CHECK(Error(MsgpackWriter().Byte(0xdd).Raw("\xff\xff\xff\xff").bytes())
            .find("array of 4294967295 elements exceeds") != std::string::npos);
  CHECK(Error(MsgpackWriter().Byte(0xdf).Raw("\x7f\xff\xff\xff").Nil().bytes())
            .find("map of 2147483647 entries exceeds") != std::string::npos);
  CHECK(Error(MsgpackWriter().Nil().Nil().bytes()).find("unexpected 1 bytes after") != std::string::npos);
  CHECK(Error(MsgpackWriter().Map(1).Str("k").bytes()).find("truncated") != std::string::npos);
}

TEST_CASE("depth and output size are bounded") {
  std::string deep(100000, '\x91');  // 100k nested one-element arrays
  deep += '\xc0';
  CHECK(Error(deep).find("nesting deeper than 64 levels") != std::string::npos);

  MsgpackJsonLimits small;
  small.max_output_bytes = 100;
  MsgpackWriter w;
  w.Array(1000);
  for (int i = 0; i < 1000; ++i) w.Nil();
  CHECK(Error(w.bytes(), small).find("exceeds 100 bytes") != std::string::npos);
}

}  // namespace
}  // namespace dogwatch::intake
