#include "trace-agent/decode/decode.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/strings/strings.h"
#include "trace-agent/decode/decode_internal.h"
#include "trace-agent/decode/test_msgpack_writer.h"
#include "trace-agent/decode/testdata_payloads.h"
#include "trace-agent/decode/utf8.h"
#include "trace-agent/model/tag_storage.h"

namespace dogwatch::trace {
namespace {

using strings::Cat;
using testing::MsgpackWriter;

constexpr std::string_view kFffd = "\xEF\xBF\xBD";

// ---------------------------------------------------------------------------------------------
// Helpers

std::string DiffStringMap(const char* name, const StringMap& a, const StringMap& b) {
  if (a == b) return "";
  return Cat(name, " differ (", a.size(), " vs ", b.size(), " entries)");
}

// Empty when equal, otherwise the first differing field.
std::string Diff(const Span& a, const Span& b) {
  if (a.service != b.service) return Cat("service: '", a.service, "' vs '", b.service, "'");
  if (a.name != b.name) return Cat("name: '", a.name, "' vs '", b.name, "'");
  if (a.resource != b.resource) return Cat("resource: '", a.resource, "' vs '", b.resource, "'");
  if (a.type != b.type) return Cat("type: '", a.type, "' vs '", b.type, "'");
  if (a.trace_id != b.trace_id) return Cat("trace_id: ", a.trace_id, " vs ", b.trace_id);
  if (a.span_id != b.span_id) return Cat("span_id: ", a.span_id, " vs ", b.span_id);
  if (a.parent_id != b.parent_id) return Cat("parent_id: ", a.parent_id, " vs ", b.parent_id);
  if (a.start != b.start) return Cat("start: ", a.start, " vs ", b.start);
  if (a.duration != b.duration) return Cat("duration: ", a.duration, " vs ", b.duration);
  if (a.error != b.error) return Cat("error: ", a.error, " vs ", b.error);
  if (auto d = DiffStringMap("meta", a.meta, b.meta); !d.empty()) return d;
  if (a.metrics != b.metrics) return "metrics differ";
  if (auto d = DiffStringMap("meta_struct", a.meta_struct, b.meta_struct); !d.empty()) return d;
  if (a.span_links.size() != b.span_links.size()) return "span_links sizes differ";
  for (size_t i = 0; i < a.span_links.size(); ++i) {
    const SpanLink& x = a.span_links[i];
    const SpanLink& y = b.span_links[i];
    if (x.trace_id != y.trace_id || x.trace_id_high != y.trace_id_high || x.span_id != y.span_id ||
        x.attributes != y.attributes || x.tracestate != y.tracestate || x.flags != y.flags) {
      return Cat("span_links[", i, "] differ");
    }
  }
  return "";
}

std::string Diff(const std::vector<Trace>& a, const std::vector<Trace>& b) {
  if (a.size() != b.size()) return Cat("trace counts: ", a.size(), " vs ", b.size());
  for (size_t t = 0; t < a.size(); ++t) {
    if (a[t].size() != b[t].size())
      return Cat("trace ", t, " span counts: ", a[t].size(), " vs ", b[t].size());
    for (size_t s = 0; s < a[t].size(); ++s) {
      if (auto d = Diff(a[t][s], b[t][s]); !d.empty()) return Cat("trace ", t, ", span ", s, ": ", d);
    }
  }
  return "";
}

// A v0.4 body holding one trace with one span map whose fields the callback writes after a header
// of `fields` entries.
std::string OneSpan(uint32_t fields, const std::function<void(MsgpackWriter&)>& write_fields) {
  MsgpackWriter w;
  w.FixArray(1).FixArray(1).Map(fields);
  write_fields(w);
  return w.Take();
}

// The span is returned as an owned copy: its body is gone when the caller uses it.
Span DecodeOne(const std::string& body) {
  auto traces = DecodeMsgpackTracesV04(body);
  REQUIRE(traces.ok());
  REQUIRE(traces->size() == 1);
  REQUIRE((*traces)[0].size() == 1);
  Span span = (*traces)[0][0];
  MakeOwned(span);
  return span;
}

// The msgpack decoders' spans borrow from the body: Kept decodes a temporary body and keeps it
// alive with the result (held by pointer, so moving a Kept never moves the bytes).
template <typename T>
class Kept {
 public:
  using DecodeFunction = absl::StatusOr<T> (*)(std::string_view, const DecodeLimits&);
  Kept(std::string body, DecodeFunction decode, const DecodeLimits& limits)
      : body_(std::make_unique<std::string>(std::move(body))), result_(decode(*body_, limits)) {}
  bool ok() const { return result_.ok(); }
  absl::Status status() const { return result_.status(); }
  const T* operator->() const { return &*result_; }
  const T& operator*() const { return *result_; }

 private:
  std::unique_ptr<std::string> body_;  // before result_: destroyed after it
  absl::StatusOr<T> result_;
};

Kept<std::vector<Trace>> KeepV04(std::string body, const DecodeLimits& limits = {}) {
  return Kept<std::vector<Trace>>(std::move(body), &DecodeMsgpackTracesV04, limits);
}

Kept<std::vector<Trace>> KeepV05(std::string body, const DecodeLimits& limits = {}) {
  return Kept<std::vector<Trace>>(std::move(body), &DecodeMsgpackTracesV05, limits);
}

std::string ErrorOf(const absl::Status& status) { return std::string(status.message()); }

bool Contains(const std::string& haystack, std::string_view needle) {
  if (haystack.find(needle) != std::string::npos) return true;
  UNSCOPED_INFO("'" << needle << "' not found in: " << haystack);
  return false;
}

// ---------------------------------------------------------------------------------------------
// v0.4

TEST_CASE("v0.4: realistic payloads round-trip in dd-trace-js and compact encodings") {
  const auto traces = testdata::BuildRealisticTraces(4, 15);
  for (auto style : {testdata::V04Style::kDdTraceJs, testdata::V04Style::kCompact}) {
    const std::string body = testdata::EncodeV04(traces, style);
    auto decoded = DecodeMsgpackTracesV04(body);
    REQUIRE(decoded.ok());
    CHECK(Diff(*decoded, traces) == "");
  }
  // The shape the benchmark uses: 100 x 15, SQL resources of a few hundred bytes.
  const std::string big = testdata::BuildRealisticV04Payload(100, 15);
  auto decoded = DecodeMsgpackTracesV04(big);
  REQUIRE(decoded.ok());
  REQUIRE(decoded->size() == 100);
  CHECK((*decoded)[0].size() == 15);
  CHECK((*decoded)[0][2].resource.size() > 250);
  CHECK((*decoded)[0][0].meta.size() == 10);
}

// Built byte by byte from real-clients.md: array32 outer arrays even when tiny, fixstr keys mixed
// with str32 values, uint64 ids and start (even 0), uint32 duration, integer metrics (uint16), no
// "type" on the span that has none.
TEST_CASE("v0.4: a payload as dd-trace-js 5.x sends it") {
  MsgpackWriter w;
  w.Array32(1).Array32(2);
  // The SQL span of the example.
  w.FixMap(12);
  w.FixStr("type").Str32("sql");
  w.FixStr("trace_id").U64(5750690843782432392ULL);
  w.FixStr("span_id").U64(8386569952087213912ULL);
  w.FixStr("parent_id").U64(5750690843782432392ULL);
  w.FixStr("name").Str32("db.query");
  w.FixStr("resource").Str32("SELECT * FROM users WHERE id = ?");
  w.FixStr("service").Str32("probe-postgres");
  w.FixStr("error").FixUint(0);
  w.FixStr("start").U64(1795226516280790016ULL);
  w.FixStr("duration").U32(7057861);
  w.FixStr("meta").FixMap(5);
  w.Str32("db.type").Str32("postgres");
  w.Str32("out.host").Str32("db.local");
  w.Str32("_dd.base_service").Str32("probe");
  w.FixStr("env").Str32("test");
  w.Str32("runtime-id").Str32("8c6b1f0e-7d2a-4b8e-9f3c-2a1d5e6f7a8b");
  w.FixStr("metrics").FixMap(3);
  w.Str32("_dd.measured").FixUint(1);
  w.Str32("process_id").U16(3979);
  w.Str32("_sampling_priority_v1").FixUint(1);
  // A root span: parent_id 0 as uint64, no type, error 1 with the error tags, _dd.p.* on the root.
  w.FixMap(11);
  w.FixStr("trace_id").U64(5750690843782432392ULL);
  w.FixStr("span_id").U64(5750690843782432392ULL);
  w.FixStr("parent_id").U64(0);
  w.FixStr("name").Str32("web.request");
  w.FixStr("resource").Str32("GET /users/:id");
  w.FixStr("service").Str32("probe");
  w.FixStr("error").FixUint(1);
  w.FixStr("start").U64(1795226516273000000ULL);
  w.FixStr("duration").U32(15000000);
  w.FixStr("meta").FixMap(6);
  w.Str32("error.message").Str32("connection refused");
  w.Str32("error.type").Str32("Error");
  w.Str32("error.stack").Str32("Error: connection refused\n    at Socket.<anonymous> (/app/db.js:12:9)");
  w.Str32("_dd.p.tid").Str32("66a1b2c300000000");
  w.Str32("_dd.p.dm").Str32("-0");
  w.Str32("language").Str32("javascript");
  w.FixStr("metrics").FixMap(3);
  w.Str32("_dd.top_level").FixUint(1);
  w.Str32("process_id").U16(3979);
  w.Str32("_sampling_priority_v1").FixUint(1);

  auto traces = DecodeMsgpackTracesV04(w.data());
  REQUIRE(traces.ok());
  REQUIRE(traces->size() == 1);
  REQUIRE((*traces)[0].size() == 2);
  const Span& sql = (*traces)[0][0];
  CHECK(sql.type == "sql");
  CHECK(sql.trace_id == 5750690843782432392ULL);
  CHECK(sql.span_id == 8386569952087213912ULL);
  CHECK(sql.parent_id == 5750690843782432392ULL);
  CHECK(sql.name == "db.query");
  CHECK(sql.resource == "SELECT * FROM users WHERE id = ?");
  CHECK(sql.service == "probe-postgres");
  CHECK(sql.error == 0);
  CHECK(sql.start == 1795226516280790016LL);
  CHECK(sql.duration == 7057861);
  REQUIRE(Find(sql.meta, "out.host") != nullptr);
  CHECK(*Find(sql.meta, "out.host") == "db.local");
  CHECK(sql.meta.size() == 5);
  REQUIRE(Find(sql.metrics, "process_id") != nullptr);
  CHECK(*Find(sql.metrics, "process_id") == 3979.0);
  CHECK(*Find(sql.metrics, kSamplingPriorityKey) == 1.0);
  const Span& root = (*traces)[0][1];
  CHECK(root.type.empty());
  CHECK(root.parent_id == 0);
  CHECK(root.error == 1);
  CHECK(*Find(root.meta, "error.stack") ==
        "Error: connection refused\n    at Socket.<anonymous> (/app/db.js:12:9)");
  CHECK(*Find(root.meta, "_dd.p.tid") == "66a1b2c300000000");
  CHECK(*Find(root.metrics, "_dd.top_level") == 1.0);

  auto count = CountTraces(w.data(), TraceEncoding::kMsgpackV04);
  REQUIRE(count.ok());
  CHECK(*count == 1);
}

TEST_CASE("v0.4: every integer width in every integer field") {
  struct Case {
    const char* name;
    std::function<void(MsgpackWriter&)> write;
    bool is_negative;
    int64_t as_int;  // the value as a signed integer, when it is one
    uint64_t as_uint;
  };
  const std::vector<Case> cases = {
      {"positive fixint", [](MsgpackWriter& w) { w.FixUint(5); }, false, 5, 5},
      {"uint8", [](MsgpackWriter& w) { w.U8(200); }, false, 200, 200},
      {"uint16", [](MsgpackWriter& w) { w.U16(60000); }, false, 60000, 60000},
      {"uint32", [](MsgpackWriter& w) { w.U32(4000000000u); }, false, 4000000000LL, 4000000000ULL},
      {"uint64", [](MsgpackWriter& w) { w.U64(1ULL << 40); }, false, 1LL << 40, 1ULL << 40},
      {"negative fixint", [](MsgpackWriter& w) { w.NegFixInt(-3); }, true, -3, static_cast<uint64_t>(-3)},
      {"int8", [](MsgpackWriter& w) { w.I8(-100); }, true, -100, static_cast<uint64_t>(-100)},
      {"int16", [](MsgpackWriter& w) { w.I16(-30000); }, true, -30000, static_cast<uint64_t>(-30000)},
      {"int32", [](MsgpackWriter& w) { w.I32(-2000000000); }, true, -2000000000,
       static_cast<uint64_t>(-2000000000)},
      {"int64", [](MsgpackWriter& w) { w.I64(-(1LL << 40)); }, true, -(1LL << 40),
       static_cast<uint64_t>(-(1LL << 40))},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    const Span s = DecodeOne(OneSpan(6, [&](MsgpackWriter& w) {
      w.FixStr("trace_id");
      c.write(w);
      w.FixStr("span_id");
      c.write(w);
      w.FixStr("parent_id");
      c.write(w);
      w.FixStr("start");
      c.write(w);
      w.FixStr("duration");
      c.write(w);
      w.FixStr("metrics").FixMap(1).FixStr("m");
      c.write(w);
    }));
    CHECK(s.trace_id == c.as_uint);
    CHECK(s.span_id == c.as_uint);
    CHECK(s.parent_id == c.as_uint);
    CHECK(s.start == c.as_int);
    CHECK(s.duration == c.as_int);
    CHECK(s.metrics[0].second == static_cast<double>(c.as_int));
    // error is an int32: the values that fit decode, the others are refused with the range.
    auto with_error = KeepV04(OneSpan(1, [&](MsgpackWriter& w) {
      w.FixStr("error");
      c.write(w);
    }));
    if (c.as_int >= INT32_MIN && c.as_int <= INT32_MAX) {
      REQUIRE(with_error.ok());
      CHECK((*with_error)[0][0].error == c.as_int);
    } else {
      REQUIRE_FALSE(with_error.ok());
      CHECK(Contains(ErrorOf(with_error.status()), "out of range for int32"));
    }
  }
  // The full uint64 range in ids; a uint64 above INT64_MAX is refused for start, as the agent does.
  const Span max_ids = DecodeOne(OneSpan(1, [](MsgpackWriter& w) { w.FixStr("trace_id").U64(UINT64_MAX); }));
  CHECK(max_ids.trace_id == UINT64_MAX);
  auto too_big = KeepV04(OneSpan(1, [](MsgpackWriter& w) { w.FixStr("start").U64(1ULL << 63); }));
  REQUIRE_FALSE(too_big.ok());
  CHECK(Contains(ErrorOf(too_big.status()),
                 "field 'start': uint 9223372036854775808 is out of range for int64"));
}

TEST_CASE("v0.4: floats in integer fields are truncated, out-of-range floats are refused") {
  const Span s = DecodeOne(OneSpan(5, [](MsgpackWriter& w) {
    w.FixStr("trace_id").F64(12345.9);
    w.FixStr("span_id").F32(7.5f);
    w.FixStr("start").F64(-1.9);
    w.FixStr("duration").F32(1500.25f);
    w.FixStr("error").F64(1.0);
  }));
  CHECK(s.trace_id == 12345);
  CHECK(s.span_id == 7);
  CHECK(s.start == -1);
  CHECK(s.duration == 1500);
  CHECK(s.error == 1);
  for (double bad : {1e30, -1e30, std::nan("")}) {
    auto r = KeepV04(OneSpan(1, [&](MsgpackWriter& w) { w.FixStr("duration").F64(bad); }));
    REQUIRE_FALSE(r.ok());
    CHECK(Contains(ErrorOf(r.status()), "out of range for int64"));
  }
  // 2^64 is just past the uint64 range.
  auto r = KeepV04(OneSpan(1, [](MsgpackWriter& w) { w.FixStr("span_id").F64(18446744073709551616.0); }));
  CHECK_FALSE(r.ok());
}

TEST_CASE("v0.4: nil is accepted everywhere the agent accepts it") {
  // Every field nil.
  const Span s = DecodeOne(OneSpan(14, [](MsgpackWriter& w) {
    for (const char* f : {"service", "name", "resource", "type", "trace_id", "span_id", "parent_id", "start",
                          "duration", "error", "meta", "metrics", "meta_struct", "span_links"}) {
      w.Str(f).Nil();
    }
  }));
  CHECK(s.service.empty());
  CHECK(s.trace_id == 0);
  CHECK(s.start == 0);
  CHECK(s.error == 0);
  CHECK(s.meta.empty());
  CHECK(s.metrics.empty());
  CHECK(s.meta_struct.empty());
  CHECK(s.span_links.empty());
  // Nil map values and nil keys.
  const Span m = DecodeOne(OneSpan(3, [](MsgpackWriter& w) {
    w.FixStr("meta").FixMap(2).FixStr("a").Nil().Nil().FixStr("from nil key");
    w.FixStr("metrics").FixMap(1).FixStr("m").Nil();
    w.FixStr("meta_struct").FixMap(1).FixStr("ms").Nil();
  }));
  REQUIRE(m.meta.size() == 2);
  CHECK(*Find(m.meta, "a") == "");
  CHECK(*Find(m.meta, "") == "from nil key");
  CHECK(*Find(m.metrics, "m") == 0.0);
  CHECK(*Find(m.meta_struct, "ms") == "");
  // A nil body, a nil trace (kept, empty) and a nil span (dropped).
  auto nil_body = DecodeMsgpackTracesV04(MsgpackWriter().Nil().data());
  REQUIRE(nil_body.ok());
  CHECK(nil_body->empty());
  MsgpackWriter w;
  w.FixArray(2).Nil().FixArray(3).Nil().FixMap(1).FixStr("name").FixStr("kept").Nil();
  auto traces = DecodeMsgpackTracesV04(w.data());
  REQUIRE(traces.ok());
  REQUIRE(traces->size() == 2);
  CHECK((*traces)[0].empty());
  REQUIRE((*traces)[1].size() == 1);
  CHECK((*traces)[1][0].name == "kept");
}

TEST_CASE("v0.4: str8/16/32, bin for strings, bin and str for meta_struct") {
  const std::string s300(300, 'x');
  const std::string s70k(70000, 'y');
  const std::string binary("\x00\x01\xff\xfe", 4);
  const Span s = DecodeOne(OneSpan(6, [&](MsgpackWriter& w) {
    w.FixStr("service").Str8("svc8");
    w.FixStr("name").Str16(s300);
    w.FixStr("resource").Str32(s70k);
    w.FixStr("type").Bin8("web");
    w.Str8("meta").Map16(3).Str16("k16").Str32("v32").Bin16("kbin").Bin32("vbin").FixStr("").FixStr("");
    w.Str32("meta_struct").FixMap(2).FixStr("appsec").Bin8(binary).FixStr("as_str").Str8("raw\xff");
  }));
  CHECK(s.service == "svc8");
  CHECK(s.name == s300);
  CHECK(s.resource == s70k);
  CHECK(s.type == "web");
  CHECK(*Find(s.meta, "k16") == "v32");
  CHECK(*Find(s.meta, "kbin") == "vbin");
  CHECK(*Find(s.meta, "") == "");
  CHECK(*Find(s.meta_struct, "appsec") == binary);
  CHECK(*Find(s.meta_struct, "as_str") == "raw\xff");  // bytes, not text: no UTF-8 repair
}

TEST_CASE("v0.4: array16/32 and map16/32 headers everywhere") {
  MsgpackWriter w;
  w.Array16(1).Array32(2);
  w.Map32(2).FixStr("name").FixStr("a").FixStr("meta").Map32(1).FixStr("k").FixStr("v");
  w.Map16(2).FixStr("name").FixStr("b").FixStr("metrics").Map16(1).FixStr("m").F64(2.5);
  auto traces = DecodeMsgpackTracesV04(w.data());
  REQUIRE(traces.ok());
  REQUIRE((*traces)[0].size() == 2);
  CHECK((*traces)[0][0].name == "a");
  CHECK(*Find((*traces)[0][0].meta, "k") == "v");
  CHECK(*Find((*traces)[0][1].metrics, "m") == 2.5);
}

TEST_CASE("v0.4: unknown keys are skipped whatever their value") {
  const Span s = DecodeOne(OneSpan(8, [](MsgpackWriter& w) {
    w.FixStr("name").FixStr("before");
    // span_events as a newer tracer sends them: an array of maps with nested attribute maps.
    w.Str("span_events").FixArray(2);
    w.FixMap(3).FixStr("name").FixStr("exception").FixStr("time_unix_nano").U64(1ULL << 60);
    w.FixStr("attributes").FixMap(2).FixStr("list").FixArray(3).Nil().Bool(true).F32(1.5f);
    w.FixStr("nested").Map16(1).FixStr("deep").Array16(2).Bin8("xx").I64(-1);
    w.FixMap(0);
    w.FixStr("ext").Ext8(5, "abc");
    w.FixStr("fixext").FixExt1(1, 0x42);
    w.FixStr("big").Str32(std::string(1000, 'z'));
    w.Bin8("binary key").Map32(1).Nil().Array32(0);
    w.Nil().FixStr("nil key is '' and unknown");
    w.FixStr("resource").FixStr("after");
  }));
  CHECK(s.name == "before");
  CHECK(s.resource == "after");
}

TEST_CASE("v0.4: nesting of unknown values is bounded by max_depth") {
  auto nested = [](int levels) {
    return OneSpan(2, [&](MsgpackWriter& w) {
      w.FixStr("deep");
      for (int i = 0; i < levels; ++i) w.FixArray(1);
      w.Nil();
      w.FixStr("name").FixStr("n");
    });
  };
  // The span map is level 3, its values level 4: 29 more arrays stay within 32.
  CHECK(KeepV04(nested(29)).ok());
  auto deep = KeepV04(nested(40));
  REQUIRE_FALSE(deep.ok());
  CHECK(Contains(ErrorOf(deep.status()), "nested deeper than 32 levels"));
  CHECK(Contains(ErrorOf(deep.status()), "key 'deep'"));
  // A hundred thousand levels: refused at level 33, no stack exhaustion.
  auto very_deep = KeepV04(nested(100000));
  CHECK_FALSE(very_deep.ok());
  DecodeLimits shallow;
  shallow.max_depth = 8;
  CHECK(KeepV04(nested(5), shallow).ok());
  CHECK_FALSE(KeepV04(nested(6), shallow).ok());
}

TEST_CASE("v0.4: huge claimed counts fail fast without allocating") {
  // Five bytes claiming 2^32-1 traces.
  auto r = KeepV04(std::string("\xdd\xff\xff\xff\xff", 5));
  REQUIRE_FALSE(r.ok());
  CHECK(ErrorOf(r.status()) ==
        "msgpack: array of 4294967295 elements claimed but only 0 bytes remain (at byte 0)");
  CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  // Three bytes after the claim.
  r = KeepV04(std::string("\xdd\xff\xff\xff\xff\x90\x90\x90", 8));
  REQUIRE_FALSE(r.ok());
  CHECK(Contains(ErrorOf(r.status()), "array of 4294967295 elements claimed but only 3 bytes remain"));
  // A map32 claim inside a span, a str32 claim, a bin32 claim, an array claim in an unknown value.
  const std::vector<std::pair<std::string, std::string>> claims = {
      {OneSpan(1, [](MsgpackWriter& w) { w.FixStr("meta").Map32(0x7fffffff); }),
       "trace 0, span 0: field 'meta': map of 2147483647 entries claimed but only 0 bytes remain"},
      {OneSpan(1, [](MsgpackWriter& w) { w.FixStr("service").Byte(0xdb).Raw("\xff\xff\xff\xf0"); }),
       "field 'service': str of 4294967280 bytes claimed but only 0 bytes remain"},
      {OneSpan(1,
               [](MsgpackWriter& w) {
                 w.FixStr("meta_struct").FixMap(1).FixStr("k").Byte(0xc6).Raw(std::string("\x10\0\0\0", 4));
               }),
       "field 'meta_struct', key 'k': bin of 268435456 bytes claimed but only 0 bytes remain"},
      {OneSpan(1, [](MsgpackWriter& w) { w.FixStr("x").Array32(1000000).Nil(); }),
       "key 'x': array of 1000000 elements claimed but only 1 byte remain"},
      {OneSpan(1, [](MsgpackWriter& w) { w.FixStr("x").Byte(0xc9).Raw(std::string("\x7f\0\0\0\x01", 5)); }),
       "key 'x': ext of 2130706432 bytes claimed but only 0 bytes remain"},
  };
  for (const auto& [body, expected] : claims) {
    auto claim = DecodeMsgpackTracesV04(body);
    REQUIRE_FALSE(claim.ok());
    CHECK(Contains(ErrorOf(claim.status()), expected));
  }
}

TEST_CASE("v0.4: limits") {
  const std::string body =
      testdata::EncodeV04(testdata::BuildRealisticTraces(3, 5), testdata::V04Style::kCompact);
  DecodeLimits limits;
  limits.max_spans = 14;
  auto r = DecodeMsgpackTracesV04(body, limits);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(Contains(ErrorOf(r.status()), "payload has more than 14 spans"));
  limits.max_spans = 15;
  CHECK(DecodeMsgpackTracesV04(body, limits).ok());

  limits = {};
  limits.max_map_entries = 9;
  r = DecodeMsgpackTracesV04(body, limits);
  REQUIRE_FALSE(r.ok());
  CHECK(Contains(ErrorOf(r.status()),
                 "trace 0, span 0: field 'meta': map of 10 entries exceeds the limit of 9"));

  limits = {};
  limits.max_string_bytes = 100;
  r = DecodeMsgpackTracesV04(body, limits);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(Contains(ErrorOf(r.status()), "exceeds the limit of 100 bytes"));

  limits = {};
  limits.max_decoded_bytes = 10000;
  r = DecodeMsgpackTracesV04(body, limits);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(Contains(ErrorOf(r.status()), "decoded payload exceeds the limit of 10000 bytes"));

  // 2-byte map entries become 64-byte pairs: a body of empty tags is refused before the reserve.
  MsgpackWriter tags;
  tags.FixArray(1).FixArray(1).FixMap(1).FixStr("meta").Map32(50000);
  for (int i = 0; i < 50000; ++i) tags.FixStr("").FixStr("");
  limits = {};
  limits.max_decoded_bytes = 1 << 20;
  r = DecodeMsgpackTracesV04(tags.data(), limits);
  REQUIRE_FALSE(r.ok());
  CHECK(Contains(ErrorOf(r.status()), "field 'meta': decoded payload exceeds the limit of 1048576 bytes"));
  CHECK(DecodeMsgpackTracesV04(tags.data()).ok());

  // More traces claimed than max_spans allows is refused before reserving.
  limits = {};
  limits.max_spans = 2;
  MsgpackWriter w;
  w.FixArray(3).FixArray(0).FixArray(0).FixArray(0);
  CHECK_FALSE(DecodeMsgpackTracesV04(w.data(), limits).ok());
}

TEST_CASE("v0.4: every truncation of a valid payload is an error, never a crash") {
  const auto traces = testdata::BuildRealisticTraces(2, 4);
  for (auto style : {testdata::V04Style::kDdTraceJs, testdata::V04Style::kCompact}) {
    const std::string body = testdata::EncodeV04(traces, style);
    for (size_t n = 0; n < body.size(); ++n) {
      auto r = DecodeMsgpackTracesV04(std::string_view(body).substr(0, n));
      if (r.ok()) FAIL("prefix of " << n << " bytes decoded");
    }
    CHECK(DecodeMsgpackTracesV04(body).ok());
  }
}

TEST_CASE("v0.4: error messages say what and where") {
  MsgpackWriter w;
  w.FixArray(2).FixArray(0).FixArray(3);
  w.FixMap(0).FixMap(0);
  w.FixMap(2).FixStr("name").FixStr("x");
  const size_t at = w.size() + 9;  // after the "duration" key
  w.FixStr("duration").FixStr("soon");
  auto r = DecodeMsgpackTracesV04(w.data());
  REQUIRE_FALSE(r.ok());
  CHECK(ErrorOf(r.status()) ==
        Cat("msgpack: trace 1, span 2: field 'duration': expected integer, got str (at byte ", at, ")"));

  const std::string body = OneSpan(1, [](MsgpackWriter& w) { w.FixStr("trace_id").U64(1); });
  auto cut = DecodeMsgpackTracesV04(std::string_view(body).substr(0, body.size() - 8));
  REQUIRE_FALSE(cut.ok());
  CHECK(ErrorOf(cut.status()) == Cat("msgpack: trace 0, span 0: field 'trace_id': truncated at byte ",
                                     body.size() - 9, " (need 8 more bytes)"));

  auto metric = KeepV04(
      OneSpan(1, [](MsgpackWriter& w) { w.FixStr("metrics").FixMap(1).FixStr("_dd.measured").FixStr("1"); }));
  REQUIRE_FALSE(metric.ok());
  CHECK(Contains(ErrorOf(metric.status()), "field 'metrics', key '_dd.measured': expected number, got str"));

  auto not_array = DecodeMsgpackTracesV04(MsgpackWriter().FixMap(0).data());
  REQUIRE_FALSE(not_array.ok());
  CHECK(ErrorOf(not_array.status()) == "msgpack: expected array, got map (at byte 0)");

  auto empty = DecodeMsgpackTracesV04(std::string_view());
  REQUIRE_FALSE(empty.ok());
  CHECK(ErrorOf(empty.status()) == "msgpack: truncated at byte 0 (need 1 more byte)");

  auto reserved = KeepV04(OneSpan(1, [](MsgpackWriter& w) { w.FixStr("x").Byte(0xc1); }));
  REQUIRE_FALSE(reserved.ok());
  CHECK(Contains(ErrorOf(reserved.status()), "invalid type byte 0xc1"));

  auto key = KeepV04(OneSpan(1, [](MsgpackWriter& w) { w.FixUint(1).Nil(); }));
  REQUIRE_FALSE(key.ok());
  CHECK(Contains(ErrorOf(key.status()), "trace 0, span 0: expected str or bin, got uint"));
}

TEST_CASE("v0.4: invalid UTF-8 is replaced with U+FFFD, one per bad byte") {
  const Span s = DecodeOne(OneSpan(6, [](MsgpackWriter& w) {
    w.FixStr("service").FixStr(
        "a\xff"
        "b");
    w.FixStr("name").FixStr(
        "\xe2\x82"
        "x");                                 // a 3-byte sequence cut short
    w.FixStr("resource").FixStr("\xc0\xaf");  // overlong '/'
    w.FixStr("type").FixStr("\xed\xa0\x80");  // a UTF-16 surrogate
    w.FixStr("meta").FixMap(1).FixStr("k\xfe").FixStr("ok \xf0\x9f\x90\xb6 \xf4\x90\x80\x80");
    w.FixStr("metrics").FixMap(1).FixStr("\x80").FixUint(1);
  }));
  CHECK(s.service == Cat("a", kFffd, "b"));
  CHECK(s.name == Cat(kFffd, kFffd, "x"));
  CHECK(s.resource == Cat(kFffd, kFffd));
  CHECK(s.type == Cat(kFffd, kFffd, kFffd));
  REQUIRE(s.meta.size() == 1);
  CHECK(s.meta[0].first == Cat("k", kFffd));
  // The dog emoji is valid 4-byte UTF-8; U+110000 (f4 90 ..) is beyond Unicode.
  CHECK(s.meta[0].second == Cat("ok \xf0\x9f\x90\xb6 ", kFffd, kFffd, kFffd, kFffd));
  CHECK(s.metrics[0].first == kFffd);
}

TEST_CASE("UTF-8 validation agrees with a byte-at-a-time reference at every alignment") {
  // Valid text of every sequence length, then one bad byte at each position.
  const std::string valid =
      "ascii text that is long enough \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 and more ascii";
  CHECK(IsValidUtf8(valid));
  for (size_t i = 0; i < valid.size(); ++i) {
    std::string broken = valid;
    broken[i] = '\xff';
    CHECK_FALSE(IsValidUtf8(broken));
    std::string repaired;
    AssignRepairedUtf8(broken, &repaired);
    CHECK(IsValidUtf8(repaired));
  }
  CHECK(IsValidUtf8(""));
  CHECK(IsValidUtf8(std::string(1000, 'a')));
  CHECK_FALSE(IsValidUtf8(std::string(1000, 'a') + "\x80"));
  CHECK_FALSE(IsValidUtf8("\xf5\x80\x80\x80"));
  CHECK(IsValidUtf8("\xf4\x8f\xbf\xbf"));        // U+10FFFF
  CHECK(IsValidUtf8("\xed\x9f\xbf"));            // U+D7FF, just below the surrogates
  CHECK_FALSE(IsValidUtf8("\xe0\x9f\xbf"));      // overlong 3-byte
  CHECK_FALSE(IsValidUtf8("\xf0\x8f\xbf\xbf"));  // overlong 4-byte
  std::string out;
  AssignUtf8("plain", &out);
  CHECK(out == "plain");
}

TEST_CASE("v0.4: duplicate map keys keep the last value, small and large maps") {
  const Span s = DecodeOne(OneSpan(2, [](MsgpackWriter& w) {
    w.FixStr("meta").FixMap(4).FixStr("a").FixStr("1").FixStr("b").FixStr("2").FixStr("a").FixStr("3");
    w.FixStr("c").FixStr("4");
    w.FixStr("metrics").FixMap(2).FixStr("m").FixUint(1).FixStr("m").FixUint(2);
  }));
  REQUIRE(s.meta.size() == 3);
  CHECK(s.meta[0] == std::pair<SpanString, SpanString>{"b", "2"});
  CHECK(s.meta[1] == std::pair<SpanString, SpanString>{"a", "3"});
  CHECK(s.meta[2] == std::pair<SpanString, SpanString>{"c", "4"});
  REQUIRE(s.metrics.size() == 1);
  CHECK(s.metrics[0].second == 2.0);
  // 1000 entries over 100 distinct keys: the large-map path.
  const Span big = DecodeOne(OneSpan(1, [](MsgpackWriter& w) {
    w.FixStr("meta").Map16(1000);
    for (int i = 0; i < 1000; ++i) w.Str(Cat("k", i % 100)).Str(Cat("v", i));
  }));
  REQUIRE(big.meta.size() == 100);
  for (const auto& [k, v] : big.meta) {
    const int key = std::atoi(k.str().c_str() + 1);
    CHECK(v == Cat("v", 900 + key));
  }
  // A repeated field replaces the earlier one.
  const Span repeated = DecodeOne(OneSpan(2, [](MsgpackWriter& w) {
    w.FixStr("meta").FixMap(1).FixStr("old").FixStr("x");
    w.FixStr("meta").FixMap(1).FixStr("new").FixStr("y");
  }));
  REQUIRE(repeated.meta.size() == 1);
  CHECK(repeated.meta[0].first == "new");
}

// The filter may flag a map without duplicates (the exact check then finds none), but must never
// miss one: a missed duplicate would leave two entries with one key in the span model.
TEST_CASE("duplicate key filter: never misses a duplicate, rarely flags distinct keys") {
  using decode_internal::DuplicateKeyFilter;
  // Keys of every length class: 1-3 bytes, 4-7, 8 and more; a repeat of key `dup` comes last.
  std::vector<std::string> keys;
  for (int i = 0; i < 80; ++i) keys.push_back(std::string(static_cast<size_t>(1 + i % 24), 'a') + Cat(i));
  keys.push_back("x");
  keys.push_back("xyz");
  for (size_t n = 1; n <= keys.size(); ++n) {
    for (size_t dup = 0; dup < n; dup += 7) {
      DuplicateKeyFilter filter;
      for (size_t i = 0; i < n; ++i) filter.Add(keys[i]);
      filter.Add(std::string(keys[dup]));  // equal bytes at another address
      CHECK(filter.possible_duplicate());
    }
  }
  // A realistic span's meta keys: all distinct, and not flagged (no exact check on the common path).
  DuplicateKeyFilter meta;
  for (const char* key : {"component", "span.kind", "db.type", "db.system", "db.name", "db.user", "out.host",
                          "peer.service", "env", "version", "_dd.base_service", "sql.query", "_dd.p.tid"}) {
    meta.Add(key);
  }
  CHECK_FALSE(meta.possible_duplicate());
}

TEST_CASE("v0.4: span links") {
  const Span s = DecodeOne(OneSpan(1, [](MsgpackWriter& w) {
    w.FixStr("span_links").FixArray(3);
    w.FixMap(7).FixStr("trace_id").U64(11).FixStr("trace_id_high").U64(22).FixStr("span_id").U32(33);
    w.FixStr("attributes").FixMap(1).FixStr("link.kind").FixStr("follows_from");
    w.FixStr("tracestate").FixStr("dd=s:1");
    w.FixStr("flags").I32(INT32_MIN + 1);  // bit 31 "flags set" from a signed-only tracer
    w.FixStr("future").FixArray(1).FixUint(1);
    w.Nil();  // dropped
    w.FixMap(1).FixStr("flags").U32(0x80000001u);
  }));
  REQUIRE(s.span_links.size() == 2);
  CHECK(s.span_links[0].trace_id == 11);
  CHECK(s.span_links[0].trace_id_high == 22);
  CHECK(s.span_links[0].span_id == 33);
  CHECK(*Find(s.span_links[0].attributes, "link.kind") == "follows_from");
  CHECK(s.span_links[0].tracestate == "dd=s:1");
  CHECK(s.span_links[0].flags == 0x80000001u);
  CHECK(s.span_links[1].flags == 0x80000001u);
  auto bad = KeepV04(OneSpan(1, [](MsgpackWriter& w) {
    w.FixStr("span_links").FixArray(1).FixMap(1).FixStr("flags").U64(1ULL << 32);
  }));
  REQUIRE_FALSE(bad.ok());
  CHECK(Contains(ErrorOf(bad.status()),
                 "field 'span_links', link 0, field 'flags': uint 4294967296 is out of range"));
}

// ---------------------------------------------------------------------------------------------
// v0.5

// A v0.5 body with the given string table whose one trace holds the given span arrays.
std::string V05(const std::vector<std::string>& table, const std::function<void(MsgpackWriter&)>& spans,
                uint32_t span_count = 1) {
  MsgpackWriter w;
  w.FixArray(2).Array(static_cast<uint32_t>(table.size()));
  for (const auto& s : table) w.Str(s);
  w.FixArray(1).Array(span_count);
  spans(w);
  // Zero padding (fixint 0s) after partial spans, so the claimed element counts are plausible and
  // the error under test is the one reported; bytes after the top-level value are ignored.
  w.Raw(std::string(32, '\0'));
  return w.Take();
}

void GoodSpanV05(MsgpackWriter& w) {
  w.FixArray(12);
  w.FixUint(1).FixUint(2).FixUint(3);          // service, name, resource
  w.U64(UINT64_MAX).U32(7).FixUint(0);         // trace_id, span_id, parent_id
  w.I64(1700000000000000000).U32(1500).U8(1);  // start, duration, error
  w.FixMap(1).FixUint(4).FixUint(5);           // meta
  w.FixMap(1).FixUint(6).U16(3979);            // metrics
  w.FixUint(7);                                // type
}

const std::vector<std::string> kTable = {"", "svc", "op", "res", "env", "prod", "process_id", "web"};

TEST_CASE("v0.5: string-table payloads decode") {
  auto r = KeepV05(V05(kTable, GoodSpanV05));
  REQUIRE(r.ok());
  REQUIRE(r->size() == 1);
  const Span& s = (*r)[0][0];
  CHECK(s.service == "svc");
  CHECK(s.name == "op");
  CHECK(s.resource == "res");
  CHECK(s.trace_id == UINT64_MAX);
  CHECK(s.span_id == 7);
  CHECK(s.start == 1700000000000000000);
  CHECK(s.duration == 1500);
  CHECK(s.error == 1);
  CHECK(*Find(s.meta, "env") == "prod");
  CHECK(*Find(s.metrics, "process_id") == 3979.0);
  CHECK(s.type == "web");

  // The realistic traces through the v0.5 encoder.
  const auto traces = testdata::BuildRealisticTraces(3, 15);
  const std::string body = testdata::EncodeV05(traces);
  auto decoded = DecodeMsgpackTracesV05(body);
  REQUIRE(decoded.ok());
  CHECK(Diff(*decoded, traces) == "");
  auto count = CountTraces(body, TraceEncoding::kMsgpackV05);
  REQUIRE(count.ok());
  CHECK(*count == 3);
  for (size_t n = 0; n < body.size(); ++n) {
    if (DecodeMsgpackTracesV05(std::string_view(body).substr(0, n)).ok())
      FAIL("v0.5 prefix " << n << " decoded");
  }
}

TEST_CASE("v0.5: indexes must be in range, shapes exact, nil refused") {
  auto bad_index =
      KeepV05(V05(kTable, [](MsgpackWriter& w) { w.FixArray(12).FixUint(1).FixUint(2).U16(999); }));
  REQUIRE_FALSE(bad_index.ok());
  CHECK(Contains(
      ErrorOf(bad_index.status()),
      "msgpack v0.5: trace 0, span 0: field 'resource': string table index 999 out of range (the table "
      "has 8 strings)"));

  auto bad_meta = KeepV05(V05(kTable, [](MsgpackWriter& w) {
    w.FixArray(12).FixUint(1).FixUint(2).FixUint(3).FixUint(0).FixUint(0).FixUint(0).FixUint(0).FixUint(0);
    w.FixUint(0).FixMap(1).FixUint(4).FixUint(8);
  }));
  REQUIRE_FALSE(bad_meta.ok());
  CHECK(Contains(ErrorOf(bad_meta.status()), "field 'meta', key 'env': string table index 8 out of range"));

  auto negative = KeepV05(V05(kTable, [](MsgpackWriter& w) { w.FixArray(12).NegFixInt(-1); }));
  REQUIRE_FALSE(negative.ok());
  CHECK(Contains(ErrorOf(negative.status()), "expected a string table index, got int -1"));

  auto eleven = KeepV05(V05(kTable, [](MsgpackWriter& w) { w.FixArray(11); }));
  REQUIRE_FALSE(eleven.ok());
  CHECK(Contains(ErrorOf(eleven.status()),
                 "trace 0, span 0: a v0.5 span is an array of exactly 12 elements, got 11"));
  auto thirteen = KeepV05(V05(kTable, [](MsgpackWriter& w) { w.FixArray(13); }));
  CHECK_FALSE(thirteen.ok());

  MsgpackWriter three;
  three.FixArray(3).FixArray(0).FixArray(0).FixArray(0);
  auto top = DecodeMsgpackTracesV05(three.data());
  REQUIRE_FALSE(top.ok());
  CHECK(Contains(ErrorOf(top.status()), "exactly 2 items (string table, traces), got 3"));
  CHECK_FALSE(DecodeMsgpackTracesV05(MsgpackWriter().FixArray(1).FixArray(0).data()).ok());

  // Nil: in an index, in a number, as the meta map, in the string table, as the whole body.
  auto nil_index = KeepV05(V05(kTable, [](MsgpackWriter& w) { w.FixArray(12).Nil(); }));
  REQUIRE_FALSE(nil_index.ok());
  CHECK(Contains(ErrorOf(nil_index.status()), "field 'service': nil is not allowed in v0.5"));
  auto nil_number =
      KeepV05(V05(kTable, [](MsgpackWriter& w) { w.FixArray(12).FixUint(1).FixUint(2).FixUint(3).Nil(); }));
  REQUIRE_FALSE(nil_number.ok());
  CHECK(Contains(ErrorOf(nil_number.status()), "field 'trace_id': nil is not allowed in v0.5"));
  auto nil_meta = KeepV05(V05(kTable, [](MsgpackWriter& w) {
    w.FixArray(12).FixUint(1).FixUint(2).FixUint(3).FixUint(0).FixUint(0).FixUint(0).FixUint(0).FixUint(0);
    w.FixUint(0).Nil();
  }));
  REQUIRE_FALSE(nil_meta.ok());
  CHECK(Contains(ErrorOf(nil_meta.status()), "field 'meta': expected map, got nil"));
  MsgpackWriter nil_entry;
  nil_entry.FixArray(2).FixArray(2).FixStr("").Nil().FixArray(0);
  auto entry = DecodeMsgpackTracesV05(nil_entry.data());
  REQUIRE_FALSE(entry.ok());
  CHECK(
      Contains(ErrorOf(entry.status()), "msgpack v0.5: string table entry 1: expected str or bin, got nil"));
  CHECK_FALSE(DecodeMsgpackTracesV05(MsgpackWriter().Nil().data()).ok());
  MsgpackWriter nil_trace;
  nil_trace.FixArray(2).FixArray(0).FixArray(1).Nil();
  CHECK_FALSE(DecodeMsgpackTracesV05(nil_trace.data()).ok());
}

// True when `s` is a view into `body` (borrowed), not a copy.
bool PointsInto(const SpanString& s, std::string_view body) {
  return !s.owned() && s.data() >= body.data() && s.data() + s.size() <= body.data() + body.size();
}

TEST_CASE("SpanString: borrowed views, owned copies, comparisons") {
  std::string backing = "hello world";
  SpanString borrowed = SpanString::Borrow(std::string_view(backing).substr(0, 5));
  CHECK_FALSE(borrowed.owned());
  CHECK(borrowed.data() == backing.data());
  CHECK(borrowed == "hello");
  CHECK(borrowed == std::string("hello"));
  CHECK(borrowed == SpanString("hello"));
  CHECK(borrowed != "world");
  CHECK(borrowed < SpanString("help"));
  // Copying a borrowed string copies the view; Own() and MakeOwned copy the bytes.
  SpanString view_copy = borrowed;
  CHECK(view_copy.data() == backing.data());
  SpanString deep = borrowed.Own();
  CHECK(deep.owned());
  CHECK(deep.data() != backing.data());
  backing[0] = 'j';
  CHECK(view_copy == "jello");
  CHECK(deep == "hello");
  // Construction from any string type owns; copies of owned strings are deep.
  SpanString owned = std::string("temporary");
  CHECK(owned.owned());
  SpanString owned_copy = owned;
  CHECK(owned_copy.data() != owned.data());
  CHECK(owned_copy == "temporary");
  SpanString moved = std::move(owned);
  CHECK(moved == "temporary");
  CHECK(owned.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  // Assigning a string derived from itself is safe.
  moved = moved.substr(0, 4);
  CHECK(moved == "temp");
  moved.Truncate(2);
  CHECK(moved == "te");
  CHECK(moved.owned());
  CHECK(SpanString().empty());
  CHECK(SpanString("") == "");
  CHECK(sizeof(SpanString) == 16);

  Span span;
  span.service = SpanString::Borrow(backing);
  span.meta.emplace_back(SpanString::Borrow("k"), SpanString::Borrow(backing));
  span.metrics.emplace_back(SpanString::Borrow(backing), 1.0);
  MakeOwned(span);
  CHECK(span.service.owned());
  CHECK(span.meta[0].first.owned());
  CHECK(span.meta[0].second.owned());
  CHECK(span.metrics[0].first.owned());
  backing.assign(backing.size(), 'x');
  CHECK(span.service == "jello world");
  CHECK(*Find(span.meta, "k") == "jello world");
}

TEST_CASE("decoded strings borrow from the body; only repaired ones are copies") {
  MsgpackWriter w;
  w.FixArray(1).FixArray(1).FixMap(5);
  w.FixStr("service").Str("a-service-name-longer-than-sso");
  w.FixStr("name").Str("op");
  w.FixStr("resource").Str("bad \xff utf-8");
  w.FixStr("meta").FixMap(2).FixStr("k").Str("a value well past fifteen bytes").FixStr("bad\xfe").FixStr("v");
  w.FixStr("metrics").FixMap(1).FixStr("m").FixUint(1);
  const std::string& body = w.data();
  auto traces = DecodeMsgpackTracesV04(body);
  REQUIRE(traces.ok());
  const Span& s = (*traces)[0][0];
  CHECK(PointsInto(s.service, body));
  CHECK(PointsInto(s.name, body));
  CHECK(s.resource.owned());
  CHECK(s.resource == Cat("bad ", kFffd, " utf-8"));
  CHECK(PointsInto(s.meta[0].first, body));
  CHECK(PointsInto(s.meta[0].second, body));
  CHECK(s.meta[1].first.owned());
  CHECK(PointsInto(s.meta[1].second, body));
  CHECK(PointsInto(s.metrics[0].first, body));

  // v0.5: table entries are views into the body, repaired ones copied into each span.
  const std::string v05 = V05({"", "svc", "op", "r\xff", "env", "prod", "m", "web"}, GoodSpanV05);
  auto decoded = DecodeMsgpackTracesV05(v05);
  REQUIRE(decoded.ok());
  const Span& t = (*decoded)[0][0];
  CHECK(PointsInto(t.service, v05));
  CHECK(PointsInto(t.meta[0].second, v05));
  CHECK(t.resource.owned());
  CHECK(t.resource == Cat("r", kFffd));

  // v0.7: spans borrow, payload-level strings are copies.
  MsgpackWriter p;
  p.FixMap(2).FixStr("language_name").FixStr("go");
  p.FixStr("chunks").FixArray(1).FixMap(1).FixStr("spans").FixArray(1).FixMap(1).FixStr("service").Str("svc");
  auto payload = DecodeMsgpackTracerPayloadV07(p.data());
  REQUIRE(payload.ok());
  CHECK(payload->language_name == "go");
  CHECK(PointsInto(payload->chunks[0].spans[0].service, p.data()));

  // JSON strings are unescaped into the parser's memory: always copies.
  const std::string json = R"([[{"service":"svc","meta":{"k":"v"}}]])";
  auto from_json = DecodeJsonTraces(json);
  REQUIRE(from_json.ok());
  CHECK((*from_json)[0][0].service.owned());
  CHECK((*from_json)[0][0].meta[0].second.owned());
}

TEST_CASE("v0.5: invalid UTF-8 in the table is repaired once, string amplification is bounded") {
  auto r = KeepV05(V05({"", "bad\xff", "op", "res", "env", "prod", "m", "web"}, GoodSpanV05));
  REQUIRE(r.ok());
  CHECK((*r)[0][0].service == Cat("bad", kFffd));

  // One 10 KB string referenced by 2000 spans' resource: 20 MB decoded from a ~40 KB body.
  const std::string big(10000, 'q');
  auto amplified = V05(
      {"", big},
      [](MsgpackWriter& w) {
        for (int i = 0; i < 2000; ++i) {
          w.FixArray(12).FixUint(1).FixUint(1).FixUint(1);
          for (int f = 0; f < 6; ++f) w.FixUint(0);
          w.FixMap(0).FixMap(0).FixUint(0);
        }
      },
      2000);
  DecodeLimits limits;
  limits.max_decoded_bytes = 1 << 20;
  auto refused = DecodeMsgpackTracesV05(amplified, limits);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(Contains(ErrorOf(refused.status()), "decoded payload exceeds the limit of 1048576 bytes"));
  CHECK(DecodeMsgpackTracesV05(amplified).ok());  // 60 MB of strings is under the default 256 MiB

  limits = {};
  limits.max_dictionary_entries = 1;
  CHECK_FALSE(KeepV05(V05(kTable, GoodSpanV05), limits).ok());
}

// ---------------------------------------------------------------------------------------------
// v0.7

TracerPayload SamplePayload() {
  TracerPayload p;
  p.container_id = "3f2a9c";
  p.language_name = "nodejs";
  p.language_version = "v20.11.0";
  p.tracer_version = "5.132.0";
  p.runtime_id = "8c6b1f0e-7d2a-4b8e-9f3c-2a1d5e6f7a8b";
  p.tags = {{"_dd.apm_mode", "edge"}};
  p.env = "prod";
  p.hostname = "web-1";
  p.app_version = "1.42.0";
  auto traces = testdata::BuildRealisticTraces(2, 3);
  for (int i = 0; i < 2; ++i) {
    TraceChunk& c = p.chunks.emplace_back();
    c.priority = i == 0 ? kPriorityAutoKeep : kPriorityUserReject;
    c.origin = i == 0 ? "" : "synthetics";
    c.spans = traces[i];
    c.tags = {{"_dd.p.dm", "-1"}};
    c.dropped_trace = i == 1;
  }
  p.chunks[0].spans[0].meta_struct = {{"appsec", std::string("\x81\xa1k\xa1v", 5)}};
  p.chunks[0].spans[1].span_links.push_back(SpanLink{1, 2, 3, {{"a", "b"}}, "dd=s:1", 0x80000001u});
  return p;
}

TEST_CASE("v0.7: TracerPayload with chunks decodes") {
  const TracerPayload p = SamplePayload();
  const std::string body = testdata::EncodeV07(p);
  auto r = DecodeMsgpackTracerPayloadV07(body);
  REQUIRE(r.ok());
  CHECK(r->container_id == p.container_id);
  CHECK(r->language_name == "nodejs");
  CHECK(r->language_version == p.language_version);
  CHECK(r->tracer_version == p.tracer_version);
  CHECK(r->runtime_id == p.runtime_id);
  CHECK(r->tags == p.tags);
  CHECK(r->env == "prod");
  CHECK(r->hostname == "web-1");
  CHECK(r->app_version == "1.42.0");
  REQUIRE(r->chunks.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(r->chunks[i].priority == p.chunks[i].priority);
    CHECK(r->chunks[i].origin == p.chunks[i].origin);
    CHECK(r->chunks[i].tags == p.chunks[i].tags);
    CHECK(r->chunks[i].dropped_trace == p.chunks[i].dropped_trace);
    CHECK(Diff(std::vector<Trace>{r->chunks[i].spans}, std::vector<Trace>{p.chunks[i].spans}) == "");
  }
  auto count = CountTraces(body, TraceEncoding::kMsgpackV07);
  REQUIRE(count.ok());
  CHECK(*count == 2);
  for (size_t n = 0; n < body.size(); ++n) {
    if (DecodeMsgpackTracerPayloadV07(std::string_view(body).substr(0, n)).ok()) FAIL("v0.7 prefix " << n);
  }
}

TEST_CASE("v0.7: tolerance, unknown keys, nil chunks, error locations") {
  MsgpackWriter w;
  w.FixMap(4);
  w.FixStr("apm_mode").FixStr("edge");  // newer field, unknown here
  w.FixStr("chunks").FixArray(3);
  w.FixMap(2)
      .FixStr("spans")
      .FixArray(1)
      .FixMap(1)
      .FixStr("name")
      .FixStr("s")
      .FixStr("dropped_trace")
      .FixUint(1);
  w.Nil();
  w.FixMap(3).FixStr("priority").I8(-1).FixStr("unknown").FixMap(1).FixStr("x").FixArray(0);
  w.FixStr("spans").Nil();
  w.FixStr("env").Nil();
  w.FixStr("tags").Nil();
  auto r = DecodeMsgpackTracerPayloadV07(w.data());
  REQUIRE(r.ok());
  REQUIRE(r->chunks.size() == 2);
  CHECK(r->chunks[0].priority == kPriorityNone);  // absent
  CHECK(r->chunks[0].dropped_trace);
  CHECK(r->chunks[0].spans[0].name == "s");
  CHECK(r->chunks[1].priority == kPriorityUserReject);
  CHECK(r->chunks[1].spans.empty());
  CHECK(r->env.empty());

  MsgpackWriter bad;
  bad.FixMap(1).FixStr("chunks").FixArray(2).FixMap(0).FixMap(1).FixStr("spans").FixArray(2).FixMap(0);
  bad.FixMap(1).FixStr("error").FixStr("x");
  auto e = DecodeMsgpackTracerPayloadV07(bad.data());
  REQUIRE_FALSE(e.ok());
  CHECK(Contains(ErrorOf(e.status()),
                 "msgpack v0.7: chunk 1, span 1: field 'error': expected integer, got str"));

  MsgpackWriter bad_field;
  bad_field.FixMap(1).FixStr("hostname").FixUint(3);
  e = DecodeMsgpackTracerPayloadV07(bad_field.data());
  REQUIRE_FALSE(e.ok());
  CHECK(Contains(ErrorOf(e.status()),
                 "msgpack v0.7: field 'hostname': expected str or bin, got uint (at byte 10)"));

  CHECK(DecodeMsgpackTracerPayloadV07(MsgpackWriter().Nil().data()).ok());
  CHECK_FALSE(DecodeMsgpackTracerPayloadV07(MsgpackWriter().FixArray(0).data()).ok());
}

// ---------------------------------------------------------------------------------------------
// JSON

TEST_CASE("json: nested traces decode, including uint64 ids above 2^63") {
  const auto traces = testdata::BuildRealisticTraces(3, 6);
  auto r = DecodeJsonTraces(testdata::EncodeJson(traces));
  REQUIRE(r.ok());
  CHECK(Diff(*r, traces) == "");

  const std::string body =
      R"([[{"service":"svc","name":"op","resource":"GET /","trace_id":18446744073709551615,
    "span_id":9223372036854775808,"parent_id":0,"start":1700000000000000000,"duration":1.5e3,"error":1,
    "meta":{"k":"v","n":null},"metrics":{"m":2,"f":0.5},"type":"web","unknown":{"a":[1,2,{"b":null}]}}], [], null])";
  auto j = DecodeJsonTraces(body);
  REQUIRE(j.ok());
  REQUIRE(j->size() == 3);
  const Span& s = (*j)[0][0];
  CHECK(s.trace_id == UINT64_MAX);
  CHECK(s.span_id == 9223372036854775808ULL);
  CHECK(s.start == 1700000000000000000);
  CHECK(s.duration == 1500);
  CHECK(s.error == 1);
  CHECK(*Find(s.meta, "n") == "");
  CHECK(*Find(s.metrics, "m") == 2.0);
  CHECK(s.type == "web");
  CHECK((*j)[1].empty());
  CHECK((*j)[2].empty());
  auto count = CountTraces(body, TraceEncoding::kJson);
  REQUIRE(count.ok());
  CHECK(*count == 3);
}

TEST_CASE("json: v0.1 flat spans group by trace id, Go-style field matching, meta_struct base64") {
  const std::string body =
      R"([{"Service":"a","TRACE_ID":1,"span_id":1},{"service":"b","trace_id":2,"span_id":2},
    {"service":"c","trace_id":1,"span_id":3,"parent_id":1,"meta_struct":{"appsec":"gaFroXY="}},null])";
  auto r = DecodeJsonTraces(body);
  REQUIRE(r.ok());
  REQUIRE(r->size() == 2);
  REQUIRE((*r)[0].size() == 2);
  CHECK((*r)[0][0].service == "a");
  CHECK((*r)[0][0].trace_id == 1);
  CHECK((*r)[0][1].service == "c");
  CHECK(*Find((*r)[0][1].meta_struct, "appsec") == std::string("\x81\xa1k\xa1v", 5));
  CHECK((*r)[1][0].service == "b");
  auto bad64 = DecodeJsonTraces(R"([[{"meta_struct":{"k":"!!"}}]])");
  REQUIRE_FALSE(bad64.ok());
  CHECK(Contains(ErrorOf(bad64.status()), "field 'meta_struct', key 'k': invalid base64"));
}

TEST_CASE("json: errors and invalid UTF-8") {
  auto type = DecodeJsonTraces(R"([[{"name":"a"},{"duration":"10"}]])");
  REQUIRE_FALSE(type.ok());
  CHECK(ErrorOf(type.status()) == "json: trace 0, span 1: field 'duration': expected integer, got string");
  auto parse = DecodeJsonTraces(R"([[{"name":"a"}])");
  REQUIRE_FALSE(parse.ok());
  CHECK(Contains(ErrorOf(parse.status()), "json: "));
  CHECK(Contains(ErrorOf(parse.status()), "(at byte"));
  auto object = DecodeJsonTraces(R"({"traces":[]})");
  REQUIRE_FALSE(object.ok());
  CHECK(ErrorOf(object.status()) == "json: expected an array of traces, got object");
  auto range = DecodeJsonTraces(R"([[{"start":18446744073709551615}]])");
  REQUIRE_FALSE(range.ok());
  CHECK(Contains(ErrorOf(range.status()),
                 "field 'start': number 18446744073709551615 is out of range for int64"));
  auto big_error = DecodeJsonTraces(R"([[{"error":3000000000}]])");
  CHECK_FALSE(big_error.ok());
  auto meta_number = DecodeJsonTraces(R"([[{"meta":{"k":1}}]])");
  REQUIRE_FALSE(meta_number.ok());
  CHECK(Contains(ErrorOf(meta_number.status()), "field 'meta', key 'k': expected string, got number"));

  auto utf8 = DecodeJsonTraces("[[{\"service\":\"x\xff\",\"meta\":{\"k\xc0\":\"\\u00e9\"}}]]");
  REQUIRE(utf8.ok());
  CHECK((*utf8)[0][0].service == Cat("x", kFffd));
  CHECK((*utf8)[0][0].meta[0].first == Cat("k", kFffd));
  CHECK((*utf8)[0][0].meta[0].second == "\xc3\xa9");

  // A whole UTF-8 byte order mark is skipped; stray bytes of one are an error (RapidJSON alone
  // would skip them, and CountTraces would then disagree with the decoder: found by the fuzzer).
  auto bom = DecodeJsonTraces("\xEF\xBB\xBF[[{\"name\":\"a\"}]]");
  REQUIRE(bom.ok());
  CHECK((*bom)[0][0].name == "a");
  CHECK(*CountTraces("\xEF\xBB\xBF[[],[]]", TraceEncoding::kJson) == 2);
  for (const char* stray : {"\xEF[[]]", "\xBB[[]]", "\xEF\xBB[[]]"}) {
    CHECK_FALSE(DecodeJsonTraces(stray).ok());
    CHECK_FALSE(CountTraces(stray, TraceEncoding::kJson).ok());
  }

  DecodeLimits limits;
  limits.max_spans = 1;
  auto spans = DecodeJsonTraces(R"([[{},{}]])", limits);
  REQUIRE_FALSE(spans.ok());
  CHECK(spans.status().code() == absl::StatusCode::kResourceExhausted);

  const std::string body = testdata::EncodeJson(testdata::BuildRealisticTraces(1, 3));
  for (size_t n = 0; n < body.size(); ++n) {
    if (DecodeJsonTraces(std::string_view(body).substr(0, n)).ok()) FAIL("json prefix " << n << " decoded");
  }
  // Deep nesting in an unknown value: the iterative parser does not recurse.
  std::string deep = R"([[{"x":)" + std::string(100000, '[') + std::string(100000, ']') + "}]]";
  CHECK(DecodeJsonTraces(deep).ok());
}

// ---------------------------------------------------------------------------------------------
// CountTraces

TEST_CASE("CountTraces reads only the framing") {
  const auto traces = testdata::BuildRealisticTraces(7, 2);
  auto v04 = CountTraces(testdata::EncodeV04(traces), TraceEncoding::kMsgpackV04);
  REQUIRE(v04.ok());
  CHECK(*v04 == 7);
  // A claim beyond the body is malformed framing.
  CHECK_FALSE(CountTraces(std::string("\xdd\x00\x01\x00\x00", 5), TraceEncoding::kMsgpackV04).ok());
  CHECK(*CountTraces(MsgpackWriter().Nil().data(), TraceEncoding::kMsgpackV04) == 0);
  CHECK(*CountTraces(testdata::EncodeJson(traces), TraceEncoding::kJson) == 7);
  CHECK(*CountTraces(" [ ] ", TraceEncoding::kJson) == 0);
  CHECK(*CountTraces(R"([["a,]",{"b":[1,2]}],[],null])", TraceEncoding::kJson) == 3);
  CHECK_FALSE(CountTraces("[[]", TraceEncoding::kJson).ok());
  CHECK_FALSE(CountTraces("{}", TraceEncoding::kJson).ok());
  CHECK(*CountTraces(testdata::EncodeV05(traces), TraceEncoding::kMsgpackV05) == 7);
  MsgpackWriter no_chunks;
  no_chunks.FixMap(1).FixStr("env").FixStr("prod");
  CHECK(*CountTraces(no_chunks.data(), TraceEncoding::kMsgpackV07) == 0);
}

// ---------------------------------------------------------------------------------------------
// Fuzz seeds: `trace_decode_test "[.seeds]"` rewrites tests/fuzz/corpus/trace_*_fuzz/ (hidden from
// ctest; run it by hand after changing the formats).

TEST_CASE("write fuzz seed corpora", "[.seeds]") {
  namespace fs = std::filesystem;
  const fs::path corpus = fs::path(DOGWATCH_TEST_SOURCE_DIR) / "tests" / "fuzz" / "corpus";
  auto write = [&](const char* fuzzer, const char* name, const std::string& bytes) {
    fs::create_directories(corpus / fuzzer);
    std::ofstream(corpus / fuzzer / name, std::ios::binary) << bytes;
  };
  const auto traces = testdata::BuildRealisticTraces(2, 3);
  write("trace_msgpack_v04_fuzz", "ddtrace_js", testdata::EncodeV04(traces, testdata::V04Style::kDdTraceJs));
  write("trace_msgpack_v04_fuzz", "compact", testdata::EncodeV04(traces, testdata::V04Style::kCompact));
  write("trace_msgpack_v04_fuzz", "odd_types", OneSpan(6, [](MsgpackWriter& w) {
          w.FixStr("trace_id").F64(1.5).FixStr("start").Nil().FixStr("meta").Map16(1).Bin8("k").Str8("v");
          w.FixStr("span_links").FixArray(1).FixMap(2).FixStr("flags").I32(-1).FixStr("attributes").FixMap(0);
          w.FixStr("meta_struct").FixMap(1).FixStr("a").Bin8("\x81\xa1k\xa1v");
          w.FixStr("span_events").FixArray(1).FixMap(1).FixStr("x").FixExt1(1, 2);
        }));
  write("trace_msgpack_v05_fuzz", "realistic", testdata::EncodeV05(traces));
  write("trace_msgpack_v05_fuzz", "small", V05(kTable, GoodSpanV05));
  write("trace_msgpack_v07_fuzz", "payload", testdata::EncodeV07(SamplePayload()));
  write("trace_json_fuzz", "nested", testdata::EncodeJson(traces));
  write("trace_json_fuzz", "bom", "\xEF\xBB\xBF[[{\"name\":\"a\",\"meta\":{\"k\":\"\\u00e9\"}}],null]");
  write(
      "trace_json_fuzz", "flat_v01",
      R"([{"service":"a","trace_id":18446744073709551615,"span_id":1,"meta_struct":{"k":"gaFroXY="}},)"
      R"({"Service":"b","trace_id":2,"span_links":[{"trace_id":1,"flags":-2147483647,"attributes":{"a":"b"}}]}])");
}

// ---------------------------------------------------------------------------------------------
// Tag storage reused across requests (model/tag_storage.h)

// Runs `body` on a thread of its own: the pools are per thread, so each case starts with empty ones.
void OnFreshThread(const std::function<void()>& body) { std::thread(body).join(); }

tag_storage::Counters Delta(const tag_storage::Counters& before) {
  const tag_storage::Counters now = tag_storage::GlobalCounters();
  return {now.reused - before.reused, now.allocated - before.allocated, now.pooled - before.pooled,
          now.released - before.released};
}

std::vector<TraceChunk> Chunks(std::vector<Trace> traces) {
  std::vector<TraceChunk> chunks(traces.size());
  for (size_t i = 0; i < traces.size(); ++i) chunks[i].spans = std::move(traces[i]);
  return chunks;
}

TEST_CASE("tag storage: a finished request's maps serve the next request's decoder, same content") {
  OnFreshThread([] {
    const std::vector<Trace> want = testdata::BuildRealisticTraces(4, 5);
    const std::string body = testdata::EncodeV04(want);
    const tag_storage::Counters before = tag_storage::GlobalCounters();
    auto first = DecodeMsgpackTracesV04(body);
    REQUIRE(first.ok());
    std::set<const void*> recycled;
    for (const Trace& t : *first) {
      for (const Span& s : t) {
        recycled.insert(s.meta.data());
        recycled.insert(s.metrics.data());
      }
    }
    std::vector<TraceChunk> chunks = Chunks(*std::move(first));
    tag_storage::Recycle(chunks);
    for (const TraceChunk& c : chunks) {
      for (const Span& s : c.spans) {
        CHECK(s.meta.empty());
        CHECK(s.metrics.empty());
      }
    }
    tag_storage::Counters d = Delta(before);
    CHECK(d.allocated == 40);  // 20 spans, two maps each, from an empty pool
    CHECK(d.pooled == 40);
    CHECK(d.reused == 0);

    auto second = DecodeMsgpackTracesV04(body);
    REQUIRE(second.ok());
    REQUIRE(second->size() == want.size());
    for (size_t t = 0; t < want.size(); ++t) {
      REQUIRE((*second)[t].size() == want[t].size());
      for (size_t i = 0; i < want[t].size(); ++i) {
        const Span& s = (*second)[t][i];
        CHECK(Diff(s, want[t][i]).empty());
        CHECK(recycled.count(s.meta.data()) == 1);  // storage of the first request
        CHECK(recycled.count(s.metrics.data()) == 1);
      }
    }
    std::vector<TraceChunk> again = Chunks(*std::move(second));
    tag_storage::Recycle(again);
    d = Delta(before);
    CHECK(d.reused == 40);
    CHECK(d.allocated == 40);
    CHECK(d.released == 0);
  });
}

TEST_CASE("tag storage: bounded per thread; large maps and overflow are freed and counted") {
  OnFreshThread([] {
    const tag_storage::Counters before = tag_storage::GlobalCounters();
    std::vector<TraceChunk> chunks(1);
    chunks[0].spans.resize(tag_storage::kMaxPooledMaps + 10);
    for (Span& s : chunks[0].spans) tag_storage::Reserve(&s.meta, 4);
    // One span with a map too large to pool.
    Span& big = chunks[0].spans[0];
    StringMap().swap(big.meta);
    tag_storage::Reserve(&big.meta, tag_storage::kMaxPooledEntries + 1);
    Set(big.meta, "k", SpanString("an owned value that is freed when the map is emptied"));
    tag_storage::Recycle(chunks);
    tag_storage::Counters d = Delta(before);
    CHECK(d.allocated == tag_storage::kMaxPooledMaps + 10 + 1);
    CHECK(d.pooled == tag_storage::kMaxPooledMaps);
    CHECK(d.released == 10);  // the large one and the 9 beyond the pool's bound
    for (const Span& s : chunks[0].spans) CHECK(s.meta.capacity() <= tag_storage::kMaxPooledEntries);

    // A pooled map too small for the request is replaced (counted as an allocation), never overfilled.
    StringMap m;
    tag_storage::Reserve(&m, 20);
    CHECK(m.capacity() >= 20);
    StringMap fits;
    tag_storage::Reserve(&fits, 3);
    CHECK(fits.capacity() >= 3);
    std::vector<TraceChunk> none;
    tag_storage::Recycle(none);  // publishes the counts
    d = Delta(before);
    CHECK(d.allocated == tag_storage::kMaxPooledMaps + 10 + 1 + 1);
    CHECK(d.reused == 1);
  });
  // Another thread's pool serves nothing here: this thread starts empty.
  OnFreshThread([] {
    const tag_storage::Counters before = tag_storage::GlobalCounters();
    NumberMap m;
    tag_storage::Reserve(&m, 2);
    std::vector<TraceChunk> none;
    tag_storage::Recycle(none);
    CHECK(Delta(before).allocated == 1);
    CHECK(Delta(before).reused == 0);
  });
}

}  // namespace
}  // namespace dogwatch::trace
