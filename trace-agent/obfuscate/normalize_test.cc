// Expected values come from the Datadog Agent's tests where they exist (cited per case) and otherwise
// from the rules in pkg/trace/agent/normalizer.go and pkg/trace/traceutil/normalize.
#include "trace-agent/obfuscate/normalize.h"

#include <catch2/catch.hpp>
#include <limits>
#include <string>

namespace dogwatch::trace {
namespace {

constexpr int64_t kNow = 1'700'000'000'000'000'000;  // 2023-11-14, pinned clock
constexpr int64_t kStart = 1'690'000'000'000'000'000;

NormalizeOptions Options() {
  NormalizeOptions o;
  o.now_unix_nanos = kNow;
  return o;
}

Span GoodSpan() {
  Span s;
  s.service = "django";
  s.name = "django.controller";
  s.resource = "GET /some/raclette";
  s.type = "web";
  s.trace_id = 42;
  s.span_id = 52;
  s.parent_id = 42;
  s.start = kStart;
  s.duration = 1'000'000;
  s.meta = {{"env", "prod"}, {"http.status_code", "200"}};
  s.metrics = {{"_sampling_priority_v1", 1}};
  return s;
}

TEST_CASE("TruncateUtf8 never splits a sequence (traceutil/normalize truncate_test.go)") {
  CHECK(TruncateUtf8("", 5) == "");
  CHECK(TruncateUtf8("télé", 5) == "tél");
  CHECK(TruncateUtf8("télé", 2) == "t");
  CHECK(TruncateUtf8("ééééé", 5) == "éé");
  CHECK(TruncateUtf8("ééééé", 18) == "ééééé");
  CHECK(TruncateUtf8("ééééé", 10) == "ééééé");
  CHECK(TruncateUtf8("ééééé", 6) == "ééé");
  CHECK(TruncateUtf8("肋", 2) == "");
  CHECK(TruncateUtf8("🠠a", 4) == "🠠");
  CHECK(TruncateUtf8("⃠⃠a", 6) == "⃠⃠");
  CHECK(TruncateUtf8("àa", 2) == "à");
  CHECK(TruncateUtf8("abcd", 3) == "abc");
  // A stray continuation byte is a character of its own.
  CHECK(TruncateUtf8("ab\x80\x80", 3) == "ab\x80");
}

TEST_CASE("NormalizeTag (traceutil/normalize normalize_test.go TestNormalizeTag)") {
  struct Case {
    std::string in, out;
  };
  const Case cases[] = {
      {"#test_starting_hash", "test_starting_hash"},
      {"TestCAPSandSuch", "testcapsandsuch"},
      {"Test Conversion Of Weird !@#$%^&**() Characters", "test_conversion_of_weird_characters"},
      {"$#weird_starting", "weird_starting"},
      {"allowed:c0l0ns", "allowed:c0l0ns"},
      {"1love", "love"},
      {"ünicöde", "ünicöde"},
      {"ünicöde:metäl", "ünicöde:metäl"},
      {"Data🐨dog🐶 繋がっ⛰てて", "data_dog_繋がっ_てて"},
      {" spaces   ", "spaces"},
      {" #hashtag!@#spaces #__<>#  ", "hashtag_spaces"},
      {":testing", ":testing"},
      {"_foo", "foo"},
      {":::test", ":::test"},
      {"contiguous_____underscores", "contiguous_underscores"},
      {"foo_", "foo"},
      {"\u017Fodd_\u017Fcase\u017F", "\u017Fodd_\u017Fcase\u017F"},
      {"", ""},
      {" ", ""},
      {"ok", "ok"},
      {"™Ö™Ö™™Ö™", "ö_ö_ö"},
      {"AlsO:ök", "also:ök"},
      {":still_ok", ":still_ok"},
      {"___trim", "trim"},
      {"12.:trim@", ":trim"},
      {"12.:trim@@", ":trim"},
      {"fun:ky__tag/1", "fun:ky_tag/1"},
      {"fun:ky@tag/2", "fun:ky_tag/2"},
      {"fun:ky@@@tag/3", "fun:ky_tag/3"},
      {"tag:1/2.3", "tag:1/2.3"},
      {"---fun:k####y_ta@#g/1_@@#", "fun:k_y_ta_g/1"},
      {"AlsO:œ#@ö))œk", "also:œ_ö_œk"},
      {"test\x99\x8f"
       "aaa",
       "test_aaa"},
      {"test\x99\x8f", "test"},
      {std::string(888, 'a'), std::string(200, 'a')},
      {"a\uFFFD", "a"},
      {"a\uFFFD\uFFFD", "a"},
      {"a\uFFFD\uFFFDb", "a_b"},
      {"A" + std::string(197, '0') + " 000000000000", "a" + std::string(197, '0') + "_0"},
  };
  for (const Case& c : cases) {
    INFO(c.in);
    CHECK(NormalizeTag(c.in) == c.out);
  }
  // Past 400 bytes of garbage the scan stops: 'b' is never reached.
  std::string dogs = "a";
  for (int i = 0; i < 799; ++i) dogs += "🐶";
  dogs += "b";
  CHECK(NormalizeTag(dogs) == "a");
}

TEST_CASE("NormalizeTagValue keeps leading digits and non-letters") {
  CHECK(NormalizeTagValue("1service-name") == "1service-name");
  CHECK(NormalizeTagValue("🐨animal-db🐶") == "_animal-db");
  CHECK(NormalizeTagValue("1🐨1animal-db🐶") == "1_1animal-db");
  CHECK(NormalizeTagValue("PROD Env!") == "prod_env");
  CHECK(NormalizeTagValue("_leading") == "_leading");  // fast path: '_' followed by a valid char
}

TEST_CASE("NormalizeName (normalize_test.go TestNormalizeName)") {
  NormalizeFix fix{};
  bool fixed = false;
  CHECK(NormalizeName("", &fix, &fixed) == "unnamed_operation");
  CHECK((fixed && fix == NormalizeFix::kSpanNameEmpty));
  CHECK(NormalizeName("good", &fix, &fixed) == "good");
  CHECK_FALSE(fixed);
  std::string long_name;
  for (int i = 0; i < 11; ++i) long_name += "Too-Long-.";
  CHECK(NormalizeName(long_name, &fix, &fixed) ==
        "Too_Long.Too_Long.Too_Long.Too_Long.Too_Long.Too_Long.Too_Long.Too_Long.Too_Long.Too_Long.");
  CHECK((fixed && fix == NormalizeFix::kSpanNameTruncate));
  CHECK(NormalizeName("bad-name", &fix, &fixed) == "bad_name");
  CHECK_FALSE(fixed);
  CHECK(NormalizeName("!!!123", &fix, &fixed) == "unnamed_operation");
  CHECK((fixed && fix == NormalizeFix::kSpanNameInvalid));
  // Leading non-letters dropped; "_." collapses to "."; trailing '_' removed.
  CHECK(NormalizeName("  1web.request_", &fix, &fixed) == "web.request");
  CHECK(NormalizeName("a__b-.c!", &fix, &fixed) == "a_b.c");
  // Already-valid names are kept as is, even "._" sequences the slow path would rewrite.
  CHECK(NormalizeName("a._b", &fix, &fixed) == "a._b");
}

TEST_CASE("NormalizeService (normalize_test.go TestNormalizeService)") {
  NormalizeFix fix{};
  bool fixed = false;
  CHECK(NormalizeService("good", "", &fix, &fixed) == "good");
  CHECK(NormalizeService("127.0.0.1", "", &fix, &fixed) == "127.0.0.1");
  CHECK(NormalizeService("127.site.platform-db-replica1", "", &fix, &fixed) ==
        "127.site.platform-db-replica1");
  CHECK(NormalizeService("hyphenated-service-name", "", &fix, &fixed) == "hyphenated-service-name");
  CHECK(NormalizeService("🐨animal-db🐶", "", &fix, &fixed) == "_animal-db");
  CHECK(NormalizeService("1🐨1animal-db🐶", "", &fix, &fixed) == "1_1animal-db");
  CHECK(NormalizeService("bad$service", "", &fix, &fixed) == "bad_service");
  std::string long_service;
  for (int i = 0; i < 11; ++i) long_service += "Too$Long$.";
  std::string expected;
  for (int i = 0; i < 10; ++i) expected += "too_long_.";
  CHECK(NormalizeService(long_service, "", &fix, &fixed) == expected);
  CHECK((fixed && fix == NormalizeFix::kServiceTruncate));
  CHECK(NormalizeService("", "", &fix, &fixed) == "unnamed-service");
  CHECK((fixed && fix == NormalizeFix::kServiceEmpty));
  CHECK(NormalizeService("", "java", &fix, &fixed) == "unnamed-java-service");
  CHECK(NormalizeService("🐨🐶", "python", &fix, &fixed) == "unnamed-python-service");
  CHECK((fixed && fix == NormalizeFix::kServiceInvalid));
}

TEST_CASE("NormalizeSpan leaves a valid span untouched") {
  Span span = GoodSpan();
  const Span before = span;
  NormalizeStats stats;
  REQUIRE(NormalizeSpan(span, Options(), &stats).ok());
  CHECK(span.service == before.service);
  CHECK(span.name == before.name);
  CHECK(span.resource == before.resource);
  CHECK(span.type == before.type);
  CHECK(span.start == before.start);
  CHECK(span.duration == before.duration);
  CHECK(span.parent_id == before.parent_id);
  CHECK(span.meta == before.meta);
  for (uint64_t n : stats.fixes) CHECK(n == 0);
}

TEST_CASE("NormalizeSpan rejects zero IDs with a reason") {
  NormalizeStats stats;
  Span span = GoodSpan();
  span.trace_id = 0;
  absl::Status status = NormalizeSpan(span, Options(), &stats);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK(DropReasonTag(status) == "trace_id_zero");
  CHECK(stats.drop(DropReason::kTraceIdZero) == 1);

  span = GoodSpan();
  span.span_id = 0;
  status = NormalizeSpan(span, Options(), &stats);
  CHECK(DropReasonTag(status) == "span_id_zero");
  CHECK(stats.drop(DropReason::kSpanIdZero) == 1);
  CHECK(DropReasonTag(absl::OkStatus()) == "");
  CHECK(DropReasonTag(absl::InternalError("trace_id_zero: not ours")) == "");
}

TEST_CASE("NormalizeSpan repairs service, name, resource and type") {
  NormalizeStats stats;
  NormalizeOptions options = Options();
  options.language = "go";

  Span span = GoodSpan();
  span.service = "";
  span.name = "";
  span.resource = "";
  span.type = std::string(101, 't');
  REQUIRE(NormalizeSpan(span, options, &stats).ok());
  CHECK(span.service == "unnamed-go-service");
  CHECK(span.name == "unnamed_operation");
  CHECK(span.resource == "unnamed_operation");  // resource defaults to the (normalized) name
  CHECK(span.type == std::string(100, 't'));
  CHECK(stats.fix(NormalizeFix::kServiceEmpty) == 1);
  CHECK(stats.fix(NormalizeFix::kSpanNameEmpty) == 1);
  CHECK(stats.fix(NormalizeFix::kResourceEmpty) == 1);
  CHECK(stats.fix(NormalizeFix::kTypeTruncate) == 1);

  span = GoodSpan();
  span.service = std::string(101, 's');
  span.name = "Web Request";
  REQUIRE(NormalizeSpan(span, options, &stats).ok());
  CHECK(span.service == std::string(100, 's'));
  CHECK(span.name == "Web_Request");
  CHECK(stats.fix(NormalizeFix::kServiceTruncate) == 1);
}

TEST_CASE("NormalizeSpan fixes IDs and times") {
  NormalizeStats stats;
  Span span = GoodSpan();
  span.parent_id = span.trace_id = span.span_id = 7;
  REQUIRE(NormalizeSpan(span, Options(), &stats).ok());
  CHECK(span.parent_id == 0);

  span = GoodSpan();
  span.duration = -5;
  REQUIRE(NormalizeSpan(span, Options(), &stats).ok());
  CHECK(span.duration == 0);
  CHECK(span.start == kStart);
  CHECK(stats.fix(NormalizeFix::kInvalidDuration) == 1);

  span = GoodSpan();
  span.duration = std::numeric_limits<int64_t>::max() - kStart + 1;  // start + duration overflows
  REQUIRE(NormalizeSpan(span, Options(), &stats).ok());
  CHECK(span.duration == 0);
  CHECK(stats.fix(NormalizeFix::kInvalidDuration) == 2);

  span = GoodSpan();
  span.start = 42;  // 1970: garbage, replaced by now - duration
  REQUIRE(NormalizeSpan(span, Options(), &stats).ok());
  CHECK(span.start == kNow - span.duration);
  CHECK(stats.fix(NormalizeFix::kInvalidStartDate) == 1);

  span = GoodSpan();
  span.start = -1;  // negative start: the agent's overflow check resets the duration too
  REQUIRE(NormalizeSpan(span, Options(), &stats).ok());
  CHECK(span.duration == 0);
  CHECK(span.start == kNow);
  CHECK(stats.fix(NormalizeFix::kInvalidStartDate) == 2);

  span = GoodSpan();
  span.start = 0;
  span.duration = kNow + 1;  // now - duration < 0 -> now
  REQUIRE(NormalizeSpan(span, Options(), &stats).ok());
  CHECK(span.start == kNow);
}

TEST_CASE("NormalizeSpan normalizes env and drops invalid http.status_code") {
  NormalizeStats stats;
  for (const char* code : {"600", "99", "abc", "", "+200", " 200", "99999999999999999999999"}) {
    Span span = GoodSpan();
    Set(span.meta, "http.status_code", code);
    REQUIRE(NormalizeSpan(span, Options(), &stats).ok());
    INFO(code);
    CHECK(Find(span.meta, "http.status_code") == nullptr);
  }
  CHECK(stats.fix(NormalizeFix::kInvalidHttpStatusCode) == 7);
  for (const char* code : {"100", "200", "0200", "599"}) {
    Span span = GoodSpan();
    Set(span.meta, "http.status_code", code);
    REQUIRE(NormalizeSpan(span, Options(), &stats).ok());
    CHECK(*Find(span.meta, "http.status_code") == code);
  }

  Span span = GoodSpan();
  Set(span.meta, "env", "PROD Env!");
  REQUIRE(NormalizeSpan(span, Options(), &stats).ok());
  CHECK(*Find(span.meta, "env") == "prod_env");
}

TEST_CASE("NormalizeSpan normalizes peer.service and _dd.base_service") {
  NormalizeStats stats;
  Span span = GoodSpan();
  Set(span.meta, "peer.service", "🐨🐶");
  Set(span.meta, "_dd.base_service", std::string(101, 'B'));
  REQUIRE(NormalizeSpan(span, Options(), &stats).ok());
  CHECK(*Find(span.meta, "peer.service") == "");  // invalid: blanked, not removed
  CHECK(*Find(span.meta, "_dd.base_service") == std::string(100, 'b'));
  CHECK(stats.fix(NormalizeFix::kPeerServiceInvalid) == 1);
  CHECK(stats.fix(NormalizeFix::kBaseServiceTruncate) == 1);
}

TEST_CASE("NormalizeSpan: component2name, span links, error") {
  NormalizeStats stats;
  NormalizeOptions options = Options();
  options.component_to_name = true;
  Span span = GoodSpan();
  Set(span.meta, "component", "net/http");
  span.error = 5;
  SpanLink link;
  link.trace_id = 1;
  link.span_id = 2;
  link.attributes = {{"link.name", "my-link name"}};
  span.span_links.push_back(link);
  REQUIRE(NormalizeSpan(span, options, &stats).ok());
  CHECK(span.name == "net_http");
  CHECK(span.span_links[0].attributes[0].second == "my_link_name");
  CHECK(span.error == 1);
  CHECK(stats.fix(NormalizeFix::kInvalidError) == 1);
}

TEST_CASE("NormalizeTrace rejects empty and foreign traces, counts duplicates") {
  NormalizeStats stats;
  Trace empty;
  absl::Status status = NormalizeTrace(empty, Options(), &stats);
  CHECK(DropReasonTag(status) == "empty_trace");
  CHECK(stats.drop(DropReason::kEmptyTrace) == 1);

  Trace foreign = {GoodSpan(), GoodSpan()};
  foreign[1].span_id = 53;
  foreign[1].trace_id = 43;
  status = NormalizeTrace(foreign, Options(), &stats);
  CHECK(DropReasonTag(status) == "foreign_span");
  CHECK(stats.drop(DropReason::kForeignSpan) == 1);

  // 128-bit IDs: the high bits are compared only when both spans carry them.
  Trace high = {GoodSpan(), GoodSpan(), GoodSpan()};
  high[1].span_id = 53;
  high[2].span_id = 54;
  Set(high[0].meta, "_dd.p.tid", "640cfd8d00000000");
  REQUIRE(NormalizeTrace(high, Options(), &stats).ok());
  Set(high[2].meta, "_dd.p.tid", "640cfd8e00000000");
  CHECK(DropReasonTag(NormalizeTrace(high, Options(), &stats)) == "foreign_span");

  Trace duplicates = {GoodSpan(), GoodSpan()};
  REQUIRE(NormalizeTrace(duplicates, Options(), &stats).ok());
  CHECK(stats.fix(NormalizeFix::kDuplicateSpanId) == 1);

  Trace zero = {GoodSpan(), GoodSpan()};
  zero[1].span_id = 0;
  CHECK(DropReasonTag(NormalizeTrace(zero, Options(), &stats)) == "span_id_zero");
}

TEST_CASE("NormalizeTrace reuses a verified service only for the same bytes") {
  NormalizeStats stats;
  Trace trace = {GoodSpan(), GoodSpan(), GoodSpan(), GoodSpan(), GoodSpan()};
  for (size_t i = 0; i < trace.size(); ++i) trace[i].span_id = 100 + i;
  trace[1].service = "django";  // same bytes, its own storage: passes
  trace[2].service = "Django";  // same length, other bytes: still normalized
  trace[3].service = "Django";  // the previous span's service was repaired: not reused
  trace[4].service = "djang!";  // same length as the verified "django"
  REQUIRE(NormalizeTrace(trace, Options(), &stats).ok());
  CHECK(trace[0].service == "django");
  CHECK(trace[1].service == "django");
  CHECK(trace[2].service == "django");
  CHECK(trace[3].service == "django");
  CHECK(trace[4].service == "djang");
  CHECK(stats.fix(NormalizeFix::kServiceInvalid) == 0);
  CHECK(stats.fix(NormalizeFix::kDuplicateSpanId) == 0);

  // An invalid first service falls back; the next span's equal bytes are checked, not trusted.
  Trace fallback = {GoodSpan(), GoodSpan()};
  fallback[1].span_id = 53;
  fallback[0].service = "!!!";
  fallback[1].service = "!!!";
  REQUIRE(NormalizeTrace(fallback, Options(), &stats).ok());
  CHECK(fallback[0].service == kDefaultServiceName);
  CHECK(fallback[1].service == kDefaultServiceName);
  CHECK(stats.fix(NormalizeFix::kServiceInvalid) == 2);
}

TEST_CASE("NormalizeTrace: repeated service, peer.service, base service and env values") {
  NormalizeStats stats;
  Trace trace = {GoodSpan(), GoodSpan(), GoodSpan()};
  for (size_t i = 0; i < trace.size(); ++i) trace[i].span_id = 200 + i;
  const std::string long_tag(150, 'x');  // a valid env, too long for a service
  trace[0].meta = {{"env", "prod"}, {"peer.service", "orders-db"}};
  trace[1].meta = {{"env", "prod"}, {"peer.service", "Orders-DB"}, {"_dd.base_service", "orders-db"}};
  trace[2].service = "prod";
  trace[2].meta = {{"env", long_tag}, {"peer.service", long_tag}, {"_dd.base_service", "Prod"}};
  REQUIRE(NormalizeTrace(trace, Options(), &stats).ok());
  CHECK(*Find(trace[1].meta, "peer.service") == "orders-db");
  CHECK(*Find(trace[1].meta, "_dd.base_service") == "orders-db");
  CHECK(trace[2].service == "prod");
  CHECK(*Find(trace[2].meta, "env") == long_tag);
  CHECK(*Find(trace[2].meta, "peer.service") == std::string(100, 'x'));
  CHECK(*Find(trace[2].meta, "_dd.base_service") == "prod");
  CHECK(stats.fix(NormalizeFix::kPeerServiceTruncate) == 1);
  CHECK(stats.fix(NormalizeFix::kBaseServiceTruncate) == 0);
}

TEST_CASE("NormalizeTrace counts duplicate span IDs in small and large traces") {
  for (size_t size : {3, 32, 33, 100}) {
    NormalizeStats stats;
    Trace trace(size, GoodSpan());
    for (size_t i = 0; i < size; ++i) trace[i].span_id = 1000 + i;
    trace[size - 1].span_id = 1000;  // repeats the first
    trace[1].span_id = 1000;         // and again
    REQUIRE(NormalizeTrace(trace, Options(), &stats).ok());
    CHECK(stats.fix(NormalizeFix::kDuplicateSpanId) == 2);
  }
}

TEST_CASE("NormalizeSpan meta keys in one pass") {
  NormalizeStats stats;
  NormalizeOptions options = Options();
  options.component_to_name = true;
  Span span = GoodSpan();
  span.meta = {{"http.status_code", "99"},   // invalid: removed
               {"env", "Prod Env"},          // normalized
               {"component", ""},            // the first component decides: empty, name kept
               {"peer.service", "Peer DB"},  // normalized
               {"span.kind", "client"},      // same length as "component"
               {"component", "grpc"},       {"_dd.base_service", "Base"},
               {"http.status_code", "600"},  // every invalid entry goes
               {"envy", "Not Touched"},     {"http.status_cod", "x"}};
  REQUIRE(NormalizeSpan(span, options, &stats).ok());
  CHECK(span.name == "django.controller");
  const StringMap expected = {{"env", "prod_env"},     {"component", ""},       {"peer.service", "peer_db"},
                              {"span.kind", "client"}, {"component", "grpc"},   {"_dd.base_service", "base"},
                              {"envy", "Not Touched"}, {"http.status_cod", "x"}};
  CHECK(span.meta == expected);
  CHECK(stats.fix(NormalizeFix::kInvalidHttpStatusCode) == 2);

  // Without the feature a component is just a tag.
  Span plain = GoodSpan();
  Set(plain.meta, "component", "grpc");
  REQUIRE(NormalizeSpan(plain, Options(), nullptr).ok());
  CHECK(plain.name == "django.controller");
}

TEST_CASE("FindRootSpan") {
  Trace trace(3);
  for (size_t i = 0; i < 3; ++i) {
    trace[i].trace_id = 1;
    trace[i].span_id = 10 + i;
  }
  trace[0].parent_id = 11;
  trace[1].parent_id = 0;
  trace[2].parent_id = 11;
  CHECK(FindRootSpan(trace) == 1);
  // No parentless span: the first whose parent is missing (a partial trace).
  trace[1].parent_id = 99;
  CHECK(FindRootSpan(trace) == 1);
  // A cycle: fall back to the last span.
  trace[1].parent_id = 10;
  CHECK(FindRootSpan(trace) == 2);
}

TEST_CASE("NormalizeChunk sets priority, origin and decision maker from the root") {
  TraceChunk chunk;
  chunk.spans = {GoodSpan(), GoodSpan()};
  chunk.spans[0].span_id = 1;
  chunk.spans[0].parent_id = 0;  // root
  chunk.spans[0].metrics = {{"_sampling_priority_v1", 2}};
  Set(chunk.spans[0].meta, "_dd.origin", "synthetics");
  chunk.spans[1].span_id = 2;
  chunk.spans[1].parent_id = 1;
  Set(chunk.spans[1].meta, "_dd.p.dm", "-4");
  size_t root = 99;
  NormalizeStats stats;
  REQUIRE(NormalizeChunk(chunk, Options(), &stats, &root).ok());
  CHECK(root == 0);
  CHECK(chunk.priority == 2);
  CHECK(chunk.origin == "synthetics");
  CHECK(*Find(chunk.tags, "_dd.p.dm") == "-4");

  // Root without priority: the first span that has one.
  TraceChunk other;
  other.spans = {GoodSpan(), GoodSpan()};
  other.spans[0].parent_id = 0;
  other.spans[0].metrics.clear();
  other.spans[1].span_id = 2;
  other.spans[1].metrics = {{"_sampling_priority_v1", -1}};
  REQUIRE(NormalizeChunk(other, Options(), &stats).ok());
  CHECK(other.priority == -1);

  // A priority already on the chunk (v0.7) wins; none anywhere stays kPriorityNone.
  TraceChunk preset;
  preset.priority = 0;
  preset.spans = {GoodSpan()};
  REQUIRE(NormalizeChunk(preset, Options(), &stats).ok());
  CHECK(preset.priority == 0);
  TraceChunk none;
  none.spans = {GoodSpan()};
  none.spans[0].metrics.clear();
  REQUIRE(NormalizeChunk(none, Options(), &stats).ok());
  CHECK(none.priority == kPriorityNone);
}

TEST_CASE("ComputeTopLevel and the client-computed mode") {
  Trace trace(4);
  for (size_t i = 0; i < trace.size(); ++i) {
    trace[i].trace_id = 1;
    trace[i].span_id = i + 1;
    trace[i].service = "web";
  }
  trace[0].parent_id = 0;  // root
  trace[1].parent_id = 1;  // same service as parent
  trace[2].parent_id = 2;  // different service
  trace[2].service = "db";
  trace[3].parent_id = 42;  // parent not in the trace
  ComputeTopLevel(trace);
  CHECK(IsTopLevel(trace[0]));
  CHECK_FALSE(IsTopLevel(trace[1]));
  CHECK(IsTopLevel(trace[2]));
  CHECK(IsTopLevel(trace[3]));

  // Small chunks scan for the parent and large ones use a map; both take the last span with a
  // duplicated ID as the parent, like the map the agent builds.
  for (size_t size : {4, 16, 17, 40}) {
    Trace dup(size);
    for (size_t i = 0; i < size; ++i) {
      dup[i].trace_id = 1;
      dup[i].span_id = 100 + i;
      dup[i].parent_id = 100;
      dup[i].service = "web";
    }
    dup[0].parent_id = 0;
    dup[size - 1].span_id = 100;  // a second span 100, of another service: the parent of the rest
    dup[size - 1].service = "db";
    dup[size - 1].parent_id = 0;
    ComputeTopLevel(dup);
    CHECK(IsTopLevel(dup[0]));
    for (size_t i = 1; i + 1 < size; ++i) CHECK(IsTopLevel(dup[i]));
    CHECK(IsTopLevel(dup[size - 1]));
    dup[size - 1].service = "web";
    for (Span& span : dup) span.metrics.clear();
    ComputeTopLevel(dup);
    for (size_t i = 1; i + 1 < size; ++i) CHECK_FALSE(IsTopLevel(dup[i]));
  }

  Trace client(2);
  client[0].span_id = 1;
  client[1].span_id = 2;
  client[1].parent_id = 1;
  client[1].metrics = {{"_dd.top_level", 1}, {"_dd.measured", 1}};
  MarkTopLevel(client, /*client_computed_top_level=*/true);
  CHECK(Find(client[0].metrics, "_top_level") == nullptr);  // trusted: the root was not marked
  CHECK(*Find(client[1].metrics, "_top_level") == 1);
  CHECK(IsMeasured(client[1]));
  CHECK_FALSE(IsMeasured(client[0]));

  Span partial;
  CHECK_FALSE(IsPartialSnapshot(partial));
  partial.metrics = {{"_dd.partial_version", 3}};
  CHECK(IsPartialSnapshot(partial));
}

TEST_CASE("TruncateSpan applies the agent's limits") {
  NormalizeStats stats;
  Span span = GoodSpan();
  span.resource = std::string(5001, 'r');
  span.meta.emplace_back(std::string(201, 'k'), "v");
  span.meta.emplace_back("big", std::string(25001, 'v'));
  span.metrics.emplace_back(std::string(201, 'm'), 1.5);
  TruncateSpan(span, Options(), &stats);
  CHECK(span.resource.size() == 5000);
  REQUIRE(Find(span.meta, std::string(200, 'k') + "...") != nullptr);
  CHECK(*Find(span.meta, "big") == std::string(25000, 'v') + "...");
  CHECK(*Find(span.metrics, std::string(200, 'm') + "...") == 1.5);
  CHECK(stats.fix(NormalizeFix::kResourceTruncate) == 1);
  CHECK(stats.fix(NormalizeFix::kMetaKeyTruncate) == 1);
  CHECK(stats.fix(NormalizeFix::kMetaValueTruncate) == 1);
  CHECK(stats.fix(NormalizeFix::kMetricKeyTruncate) == 1);

  // Feature big_resource raises the resource limit.
  NormalizeOptions big = Options();
  big.max_resource_len = kMaxResourceLenBig;
  span.resource = std::string(12000, 'r');
  TruncateSpan(span, big, &stats);
  CHECK(span.resource.size() == 12000);

  // A truncated key that collides with an existing one replaces it.
  Span collide = GoodSpan();
  collide.meta = {{std::string(200, 'k') + "...", "old"}, {std::string(250, 'k'), "new"}};
  TruncateSpan(collide, Options(), nullptr);
  REQUIRE(collide.meta.size() == 1);
  CHECK(collide.meta[0].second == "new");

  // Within every limit (exactly at them): nothing changes, nothing is counted.
  NormalizeStats none;
  Span edge = GoodSpan();
  edge.resource = std::string(5000, 'r');
  edge.meta = {{std::string(200, 'k'), std::string(25000, 'v')}};
  edge.metrics = {{std::string(200, 'm'), 2}};
  const Span before = edge;
  TruncateSpan(edge, Options(), &none);
  CHECK(edge.resource == before.resource);
  CHECK(edge.meta == before.meta);
  CHECK(edge.metrics == before.metrics);
  CHECK(none.fixes == NormalizeStats{}.fixes);

  // Only a metric key over the limit.
  Span metric_only = GoodSpan();
  metric_only.metrics.emplace_back(std::string(300, 'm'), 3);
  TruncateSpan(metric_only, Options(), &none);
  CHECK(*Find(metric_only.metrics, std::string(200, 'm') + "...") == 3);
  CHECK(none.fix(NormalizeFix::kMetricKeyTruncate) == 1);
  CHECK(metric_only.meta == GoodSpan().meta);
}

TEST_CASE("NormalizeStats aggregate and name their counters") {
  NormalizeStats a;
  NormalizeStats b;
  a.Count(NormalizeFix::kServiceEmpty);
  b.Count(NormalizeFix::kServiceEmpty);
  b.Count(DropReason::kForeignSpan);
  a.Add(b);
  CHECK(a.fix(NormalizeFix::kServiceEmpty) == 2);
  CHECK(a.drop(DropReason::kForeignSpan) == 1);
  CHECK(NormalizeFixName(NormalizeFix::kInvalidHttpStatusCode) == "invalid_http_status_code");
  CHECK(NormalizeFixName(NormalizeFix::kServiceTruncate) == "service_truncate");
  CHECK(DropReasonName(DropReason::kForeignSpan) == "foreign_span");
}

}  // namespace
}  // namespace dogwatch::trace
