#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <memory>
#include <msgpack.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "common/compression/compression.h"
#include "common/sketch/ddsketch.h"
#include "common/strings/strings.h"
#include "trace-agent/stats/aggregation.h"
#include "trace-agent/stats/client_stats.h"
#include "trace-agent/stats/concentrator.h"
#include "trace-agent/stats/msgpack.h"
#include "trace-agent/stats/peer_tag_cache.h"
#include "trace-agent/stats/stats_payload.h"
#include "trace-agent/stats/stats_writer.h"

namespace dogwatch::trace::stats {
namespace {

using sketch::DDSketch;

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kBase = 1'700'000'000 * kSec;  // aligned to 10 s

// ---- span builders ----

struct SpanSpec {
  std::string service = "web";
  std::string name = "http.request";
  std::string resource = "GET /users";
  std::string type = "web";
  int64_t start = kBase;
  int64_t duration = 100'000'000;
  uint64_t span_id = 1;
  uint64_t parent_id = 0;
  int32_t error = 0;
  bool top_level = true;
  bool measured = false;
  StringMap meta;
  NumberMap metrics;
};

Span MakeSpan(const SpanSpec& s) {
  Span span;
  span.service = s.service;
  span.name = s.name;
  span.resource = s.resource;
  span.type = s.type;
  span.trace_id = 42;
  span.span_id = s.span_id;
  span.parent_id = s.parent_id;
  span.start = s.start;
  span.duration = s.duration;
  span.error = s.error;
  span.meta = s.meta;
  span.metrics = s.metrics;
  if (s.top_level) Set(span.metrics, kTopLevelKey, 1);
  if (s.measured) Set(span.metrics, kMeasuredKey, 1);
  return span;
}

// A web request (top-level root) calling postgres (top-level: other service) with an internal span in
// between (neither top-level nor measured: not counted). Ends `end_offset` after kBase.
TraceChunk WebChunk(int64_t end_offset, bool db_error = false, bool root_error = false) {
  TraceChunk c;
  c.priority = 1;
  SpanSpec root;
  root.start = kBase + end_offset - 100'000'000;
  root.duration = 100'000'000;
  root.error = root_error ? 1 : 0;
  root.meta = {{"http.status_code", root_error ? "500" : "200"}, {"span.kind", "server"}};
  SpanSpec internal;
  internal.name = "handler";
  internal.resource = "handler";
  internal.span_id = 2;
  internal.parent_id = 1;
  internal.top_level = false;
  internal.start = root.start + 1000;
  internal.duration = 50'000'000;
  SpanSpec db;
  db.service = "postgres";
  db.name = "postgres.query";
  db.resource = "SELECT * FROM users WHERE id = ?";
  db.type = "sql";
  db.span_id = 3;
  db.parent_id = 2;
  db.start = root.start + 2000;
  db.duration = 20'000'000;
  db.error = db_error ? 1 : 0;
  db.meta = {{"span.kind", "client"},
             {"db.system", "postgresql"},
             {"out.host", "10.0.0.7"},
             {"peer.service", "users-db"}};
  c.spans = {MakeSpan(root), MakeSpan(internal), MakeSpan(db)};
  return c;
}

PayloadInfo Info(std::string_view env = "prod") {
  PayloadInfo info;
  info.env = env;
  info.hostname = "host-a";
  info.app_version = "1.2.3";
  info.lang = "nodejs";
  return info;
}

ConcentratorConfig Config() {
  ConcentratorConfig c;
  c.agent_env = "agent-env";
  c.agent_hostname = "agent-host";
  c.agent_version = "7.99.0";
  c.rounding_seed = 1;
  return c;
}

const ClientGroupedStats* FindGroup(const ClientStatsBucket& b, std::string_view service,
                                    std::string_view resource = {}) {
  for (const auto& g : b.stats) {
    if (g.service == service && (resource.empty() || g.resource == resource)) return &g;
  }
  return nullptr;
}

const ClientStatsBucket* FindBucket(const StatsPayload& p, int64_t start) {
  for (const auto& c : p.stats) {
    for (const auto& b : c.stats) {
      if (static_cast<int64_t>(b.start) == start) return &b;
    }
  }
  return nullptr;
}

DDSketch Sketch(const std::string& bytes) {
  auto s = DDSketch::Decode(bytes);
  REQUIRE(s.ok());
  return std::move(*s);
}

// ---- msgpack-cxx helpers: an independent decoder for what we write ----

const msgpack::object* Get(const msgpack::object& map, std::string_view key) {
  REQUIRE(map.type == msgpack::type::MAP);
  for (uint32_t i = 0; i < map.via.map.size; ++i) {
    const auto& kv = map.via.map.ptr[i];
    if (kv.key.type == msgpack::type::STR &&
        std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == key) {
      return &kv.val;
    }
  }
  return nullptr;
}

std::vector<std::string> Keys(const msgpack::object& map) {
  std::vector<std::string> keys;
  for (uint32_t i = 0; i < map.via.map.size; ++i) keys.push_back(map.via.map.ptr[i].key.as<std::string>());
  return keys;
}

// ================================================================================================
// msgpack

TEST_CASE("msgpack writer output is read back by msgpack-cxx and by our reader") {
  std::string buf;
  MsgpackWriter w(&buf);
  const std::vector<uint64_t> uints = {0,     127,   128,           255,           256,
                                       65535, 65536, 4294967295ull, 4294967296ull, 18446744073709551615ull};
  const std::vector<int64_t> ints = {-1,     -32,    -33,           -128,          -129,
                                     -32768, -32769, -2147483648ll, -2147483649ll, INT64_MIN};
  const std::vector<size_t> lens = {0, 31, 32, 255, 256, 65535, 65536};
  w.ArrayHeader(static_cast<uint32_t>(uints.size() + ints.size() + 2 * lens.size() + 3));
  for (auto v : uints) w.Uint(v);
  for (auto v : ints) w.Int(v);
  for (auto n : lens) w.String(std::string(n, 's'));
  for (auto n : lens) w.Binary(std::string(n, '\x01'));
  w.Double(2.5);
  w.Bool(true);
  w.Nil();

  auto oh = msgpack::unpack(buf.data(), buf.size());
  const auto& arr = oh.get();
  REQUIRE(arr.type == msgpack::type::ARRAY);
  size_t i = 0;
  for (auto v : uints) CHECK(arr.via.array.ptr[i++].as<uint64_t>() == v);
  for (auto v : ints) CHECK(arr.via.array.ptr[i++].as<int64_t>() == v);
  for (auto n : lens) CHECK(arr.via.array.ptr[i++].as<std::string>().size() == n);
  for (auto n : lens) {
    CHECK(arr.via.array.ptr[i].type == msgpack::type::BIN);
    CHECK(arr.via.array.ptr[i++].via.bin.size == n);
  }
  CHECK(arr.via.array.ptr[i++].as<double>() == 2.5);
  CHECK(arr.via.array.ptr[i++].as<bool>());
  CHECK(arr.via.array.ptr[i++].is_nil());

  MsgpackReader r(buf);
  auto n = r.ReadArrayHeader();
  REQUIRE(n.ok());
  for (auto v : uints) CHECK(*r.ReadUint() == v);
  for (auto v : ints) CHECK(*r.ReadInt() == v);
  for (auto len : lens) CHECK(r.ReadString()->size() == len);
  for (auto len : lens) CHECK(r.ReadBytes()->size() == len);
  CHECK(*r.ReadDouble() == 2.5);
  CHECK(*r.ReadBool());
  CHECK(r.TryNil());
  CHECK(r.AtEnd());

  // Maps and long containers.
  buf.clear();
  w.MapHeader(70000);
  for (int k = 0; k < 70000; ++k) {
    w.Uint(k);
    w.Nil();
  }
  MsgpackReader big(buf);
  CHECK(*big.ReadMapHeader() == 70000u);
  MsgpackReader skip(buf);
  CHECK(skip.Skip().ok());
  CHECK(skip.AtEnd());
}

TEST_CASE("msgpack reader: bounds, types and depth are checked with clear errors") {
  // An array header announcing 2^32-1 elements in 6 bytes must fail before anyone reserves memory.
  std::string huge("\xdd\xff\xff\xff\xff\x00", 6);
  MsgpackReader r(huge);
  auto n = r.ReadArrayHeader();
  REQUIRE_FALSE(n.ok());
  CHECK(n.status().message().find("cannot fit") != std::string::npos);

  std::string str(
      "\xdb\x00\x10\x00\x00"
      "abc",
      8);
  MsgpackReader rs(str);
  auto s = rs.ReadString();
  REQUIRE_FALSE(s.ok());
  CHECK(s.status().message().find("runs past") != std::string::npos);

  std::string text(
      "\xa3"
      "abc",
      4);
  MsgpackReader rt(text);
  auto u = rt.ReadUint();
  REQUIRE_FALSE(u.ok());
  CHECK(u.status().message().find("expected integer, got string") != std::string::npos);
  CHECK(u.status().message().find("at byte 0") != std::string::npos);

  std::string neg("\xff", 1);
  CHECK_FALSE(MsgpackReader(neg).ReadUint().ok());
  // Integral floats are accepted as integers; fractional ones are not.
  std::string f;
  MsgpackWriter(&f).Double(3.0);
  CHECK(*MsgpackReader(f).ReadUint() == 3u);
  f.clear();
  MsgpackWriter(&f).Double(3.5);
  CHECK_FALSE(MsgpackReader(f).ReadUint().ok());

  std::string deep(100, '\x91');
  deep.push_back('\x01');
  auto skipped = MsgpackReader(deep, 32).Skip();
  REQUIRE_FALSE(skipped.ok());
  CHECK(skipped.message().find("nesting deeper") != std::string::npos);

  std::string ext("\xd6\x01\x00\x00\x00\x00\xc7\x02\x05\xaa\xbb", 11);
  MsgpackReader re(ext);
  CHECK(re.Skip().ok());
  CHECK(re.Skip().ok());
  CHECK(re.AtEnd());
  CHECK_FALSE(MsgpackReader(std::string("\xc1", 1)).Skip().ok());
}

// ================================================================================================
// aggregation key helpers

TEST_CASE("aggregation: status codes, gRPC codes, span kinds, duration truncation") {
  Span s;
  CHECK(HttpStatusCode(s) == 0);
  Set(s.meta, "http.status_code", "404");
  CHECK(HttpStatusCode(s) == 404);
  Set(s.metrics, "http.status_code", 503);
  CHECK(HttpStatusCode(s) == 503);  // the metric wins
  Span bad;
  Set(bad.meta, "http.status_code", "abc");
  CHECK(HttpStatusCode(bad) == 0);

  auto grpc = [](std::string_view key, std::string_view value) {
    Span g;
    Set(g.meta, key, std::string(value));
    return GrpcStatusCode(g);
  };
  CHECK(grpc("rpc.grpc.status_code", "5") == "5");
  CHECK(grpc("grpc.code", "NotFound") == "5");
  CHECK(grpc("grpc.code", "NOT_FOUND") == "5");
  CHECK(grpc("rpc.grpc.status.code", "StatusCode.UNAVAILABLE") == "14");
  CHECK(grpc("grpc.status.code", "Canceled") == "1");
  CHECK(grpc("grpc.code", "bogus") == "");
  Span m;
  Set(m.metrics, "grpc.code", 13);
  CHECK(GrpcStatusCode(m) == "13");
  CHECK(GrpcStatusCode(Span()) == "");

  CHECK(IsStatsSpanKind("server"));
  CHECK(IsStatsSpanKind("CLIENT"));
  CHECK(IsStatsSpanKind("producer"));
  CHECK(IsStatsSpanKind("consumer"));
  CHECK_FALSE(IsStatsSpanKind("internal"));
  CHECK_FALSE(IsStatsSpanKind(""));

  CHECK(TruncateDuration(1000) == 1000);
  CHECK(TruncateDuration(1025) == 1024);  // 10 significant bits
  CHECK(std::abs(TruncateDuration(123456789) - 123456789.0) / 123456789.0 < 1.0 / 512);
}

TEST_CASE("aggregation: peer tags, IP quantization and hashes") {
  CHECK(QuantizePeerIpAddresses("10.0.0.1") == "blocked-ip-address");
  CHECK(QuantizePeerIpAddresses("10.0.0.1:5432") == "blocked-ip-address:5432");
  CHECK(QuantizePeerIpAddresses("127.0.0.1") == "127.0.0.1");
  CHECK(QuantizePeerIpAddresses("db.example.com") == "db.example.com");
  CHECK(QuantizePeerIpAddresses("ip-10-1-2-3.ec2.internal") == "ip-blocked-ip-address.ec2.internal");
  CHECK(QuantizePeerIpAddresses("10.0.0.1,10.0.0.2,db") == "blocked-ip-address,db");
  CHECK(QuantizePeerIpAddresses("[2001:db8::1]:9042") == "blocked-ip-address:9042");
  CHECK(QuantizePeerIpAddresses("http://10.1.2.3:80") == "http://blocked-ip-address:80");
  CHECK(QuantizePeerIpAddresses("cache-01") == "cache-01");
  CHECK(QuantizePeerIpAddresses("1.2.3") == "1.2.3");

  const auto& defaults = DefaultPeerTagKeys();
  CHECK(std::is_sorted(defaults.begin(), defaults.end()));
  for (const char* k : {"_dd.base_service", "peer.service", "db.instance", "db.system", "out.host"}) {
    // out.host is not a precursor in peer_tags.ini; the rest are.
    CHECK(std::binary_search(defaults.begin(), defaults.end(), std::string(k)) ==
          (std::string(k) != "out.host"));
  }
  CHECK(ConfiguredPeerTagKeys(false, {"x"}).empty());
  auto keys = ConfiguredPeerTagKeys(true, {"out.host", "peer.service"});
  CHECK(std::binary_search(keys.begin(), keys.end(), std::string("out.host")));
  CHECK(keys.size() == defaults.size() + 1);

  Span client;
  Set(client.meta, "peer.service", "users-db");
  Set(client.meta, "db.system", "postgresql");
  Set(client.meta, "server.address", "10.1.1.1");
  Set(client.meta, "db.name", "");
  Set(client.meta, "http.url", "x");
  std::vector<std::string> tags;
  MatchingPeerTags(client, "client", keys, &tags);
  CHECK(tags == std::vector<std::string>{"db.system:postgresql", "peer.service:users-db",
                                         "server.address:blocked-ip-address"});
  MatchingPeerTags(client, "server", keys, &tags);
  CHECK(tags.empty());
  MatchingPeerTags(client, "client", {}, &tags);
  CHECK(tags.empty());
  Span internal = client;
  Set(internal.meta, "_dd.base_service", "web");
  MatchingPeerTags(internal, "", keys, &tags);
  CHECK(tags == std::vector<std::string>{"_dd.base_service:web"});

  // Every configured key matches, and keys that only differ in the middle (same length, same first
  // and last 8 bytes: the matcher's hash) or by a byte at either end do not.
  Span all;
  for (const auto& k : keys) Set(all.meta, k, "v");
  Set(all.meta, "messaging.dXstination.name", "v");
  Set(all.meta, "db.systen", "v");
  Set(all.meta, "Xeer.service", "v");
  Set(all.meta, "peer.service.", "v");
  MatchingPeerTags(all, "producer", keys, &tags);
  std::vector<std::string> want;
  for (const auto& k : keys) want.push_back(k + ":v");
  std::sort(want.begin(), want.end());  // sorted as "key:value" strings, not by key
  CHECK(tags == want);

  std::vector<std::string> ab = {"b", "a"};
  CHECK(TagsFnvHash(&ab) == 16560467112517592754ull);
  CHECK(ab == std::vector<std::string>{"a", "b"});
  std::vector<std::string> none;
  CHECK(TagsFnvHash(&none) == 0);
  CHECK(ProcessTagsHash("") == 0);
  CHECK(ProcessTagsHash("b,a") == 16560467112517592754ull);
}

// ================================================================================================
// concentrator

TEST_CASE("peer tags: raw matches come sorted by key and format like Match") {
  const auto keys = ConfiguredPeerTagKeys(true, {std::string(70, 'k'), "db.name.x"});
  const PeerTagMatcher matcher(keys);
  Span client;
  // Meta in an order unlike the keys': peer.service, then the long key, then db.name.x, db.name.
  Set(client.meta, "span.kind", "client");
  Set(client.meta, "peer.service", "users-db");
  Set(client.meta, std::string(70, 'k'), "long");
  Set(client.meta, std::string(69, 'k') + "j", "not a key");  // same length, last byte differs
  Set(client.meta, "db.name.x", "x");
  Set(client.meta, "db.name", "orders");
  StatsSpanFields f;
  ScanStatsFields(client, &f);
  std::vector<PeerTagMatch> raw;
  const size_t n = matcher.MatchRaw(client, f, &raw);
  REQUIRE(n == 4);
  for (size_t i = 1; i < n; ++i) CHECK(raw[i - 1].key < raw[i].key);
  std::vector<std::string> names;
  for (size_t i = 0; i < n; ++i) names.emplace_back(matcher.KeyName(raw[i].key));
  CHECK(names ==
        std::vector<std::string>{"db.name", "db.name.x", "k" + std::string(69, 'k'), "peer.service"});
  CHECK(raw[0].value == "orders");
  // Formatted strings sort as strings: "db.name.x:" before "db.name:" although db.name sorts first as a key.
  std::vector<std::string> formatted;
  REQUIRE(matcher.Format(std::span<const PeerTagMatch>(raw.data(), n), &formatted) == 4);
  formatted.resize(4);
  CHECK(formatted == std::vector<std::string>{"db.name.x:x", "db.name:orders", std::string(70, 'k') + ":long",
                                              "peer.service:users-db"});
  std::vector<std::string> matched;
  matched.resize(matcher.Match(client, f, &matched));
  CHECK(matched == formatted);

  // An internal span counts its base service even when the keys do not include it.
  const PeerTagMatcher custom(std::vector<std::string>{"peer.service"});
  Span internal;
  Set(internal.meta, "_dd.base_service", "web");
  ScanStatsFields(internal, &f);
  REQUIRE(custom.MatchRaw(internal, f, &raw) == 1);
  CHECK(raw[0].key == PeerTagMatcher::kBaseServiceOnly);
  CHECK(custom.KeyName(raw[0].key) == "_dd.base_service");
}

TEST_CASE("peer tag set cache: one entry per distinct set, in any order; bounds fall back with counters") {
  const PeerTagMatcher matcher(ConfiguredPeerTagKeys(true, {}));
  auto raw_of = [&](const StringMap& meta) {
    Span s;
    s.meta = meta;
    Set(s.meta, "span.kind", "client");
    StatsSpanFields f;
    ScanStatsFields(s, &f);
    std::vector<PeerTagMatch> raw;
    raw.resize(matcher.MatchRaw(s, f, &raw));
    // The values must outlive the span: keep them in a stable place.
    static std::vector<std::unique_ptr<std::string>> values;
    for (auto& m : raw) {
      values.push_back(std::make_unique<std::string>(m.value));
      m.value = *values.back();
    }
    return raw;
  };
  auto copy = [](PeerTagSetCache::Tags t) { return std::vector<std::string>(t.tags.begin(), t.tags.end()); };

  PeerTagSetCache cache(&matcher, PeerTagSetCache::Limits{});
  CHECK(cache.Get({}).hash == 0);
  CHECK(cache.Get({}).tags.empty());
  const auto a = raw_of({{"peer.service", "users-db"}, {"db.system", "postgresql"}});
  const auto a_reordered =
      raw_of({{"db.system", "postgresql"}, {"http.url", "x"}, {"peer.service", "users-db"}});
  const auto b = raw_of({{"peer.service", "orders-db"}, {"db.system", "postgresql"}});
  const auto ip1 = raw_of({{"peer.hostname", "10.1.1.1"}});
  const auto ip2 = raw_of({{"peer.hostname", "10.2.2.2"}});
  const std::vector<std::string> a_tags = {"db.system:postgresql", "peer.service:users-db"};

  const auto ta = cache.Get(a);
  CHECK(copy(ta) == a_tags);
  CHECK(ta.hash == PeerTagsGroupHash(a_tags));
  const auto ta2 = cache.Get(a_reordered);
  CHECK(copy(ta2) == a_tags);
  CHECK(ta2.hash == ta.hash);
  CHECK(ta2.tags.data() == ta.tags.data());  // the same stored set
  const auto tb = cache.Get(b);
  CHECK(copy(tb) == std::vector<std::string>{"db.system:postgresql", "peer.service:orders-db"});
  CHECK(tb.hash != ta.hash);
  // Two raw sets that quantize to the same tags: two entries, one group hash.
  const auto t1 = cache.Get(ip1);
  const uint64_t ip1_hash = t1.hash;
  CHECK(copy(t1) == std::vector<std::string>{"peer.hostname:blocked-ip-address"});
  CHECK(cache.Get(ip2).hash == ip1_hash);
  CHECK(cache.counters().hits == 1);
  CHECK(cache.counters().misses == 4);
  CHECK(cache.counters().sets == 4);
  CHECK(cache.counters().uncached == 0);
  CHECK(cache.counters().bytes > 0);
  cache.ResetIfFull();  // no bound reached: kept
  CHECK(cache.counters().resets == 0);
  CHECK(cache.Get(b).hash == tb.hash);
  CHECK(cache.counters().hits == 2);

  // One set at most: a second set is formatted per span, the same as a cached one, and counted.
  PeerTagSetCache one(&matcher, PeerTagSetCache::Limits{.max_sets = 1, .max_bytes = 1 << 20});
  CHECK(one.Get(a).hash == ta.hash);
  const auto fallback = one.Get(b);
  CHECK(copy(fallback) == copy(tb));
  CHECK(fallback.hash == tb.hash);
  CHECK(one.Get(b).hash == tb.hash);
  CHECK(one.counters().uncached == 2);
  CHECK(one.counters().sets == 1);
  CHECK(copy(one.Get(a)) == a_tags);  // the cached set still answers
  CHECK(one.counters().hits == 1);
  one.ResetIfFull();
  CHECK(one.counters().resets == 1);
  CHECK(one.counters().sets == 0);
  CHECK(one.counters().bytes == 0);
  CHECK(one.Get(b).hash == tb.hash);  // room again: cached
  CHECK(one.counters().misses == 2);
  CHECK(one.counters().sets == 1);

  // The byte bound: a long value does not fit, and is still formatted.
  PeerTagSetCache small(&matcher, PeerTagSetCache::Limits{.max_sets = 100, .max_bytes = 300});
  const std::string long_value(400, 'h');
  const auto big = raw_of({{"peer.hostname", long_value}});
  CHECK(copy(small.Get(big)) == std::vector<std::string>{"peer.hostname:" + long_value});
  CHECK(small.counters().uncached == 1);
  CHECK(small.counters().sets == 0);
  CHECK(copy(small.Get(a)) == a_tags);
  CHECK(small.counters().sets == 1);
  CHECK(small.counters().bytes <= 300);
}

TEST_CASE("concentrator: exact hits, errors and top-level hits per key over several buckets") {
  Concentrator c(Config(), kBase);
  for (int i = 0; i < 3; ++i) {
    auto chunk = WebChunk(2 * kSec, /*db_error=*/true);
    c.AddChunk(Info(), chunk, &chunk.spans[0]);
  }
  for (int i = 0; i < 2; ++i) {
    auto chunk = WebChunk(12 * kSec, false, /*root_error=*/i == 1);
    c.AddChunk(Info(), chunk, &chunk.spans[0]);
  }
  auto last = WebChunk(25 * kSec);
  c.AddChunk(Info(), last, &last.spans[0]);
  CHECK(c.counters().spans_counted == 12);
  CHECK(c.counters().spans_ineligible == 6);  // the internal spans
  CHECK(c.counters().live_buckets == 3);

  // At kBase+25s, only the bucket [kBase, kBase+10s) is old enough (buffer of 2 buckets).
  StatsPayload p0 = c.Flush(kBase + 25 * kSec, false);
  CHECK(p0.agent_hostname == "agent-host");
  CHECK(p0.agent_env == "agent-env");
  CHECK(p0.agent_version == "7.99.0");
  REQUIRE(p0.stats.size() == 1);
  const ClientStatsPayload& cp = p0.stats[0];
  CHECK(cp.env == "prod");
  CHECK(cp.hostname == "host-a");
  CHECK(cp.version == "1.2.3");
  CHECK(cp.lang == "nodejs");
  REQUIRE(cp.stats.size() == 1);
  const ClientStatsBucket& b0 = cp.stats[0];
  CHECK(static_cast<int64_t>(b0.start) == kBase);
  CHECK(b0.duration == 10 * kSec);
  REQUIRE(b0.stats.size() == 2);
  const auto* web = FindGroup(b0, "web");
  REQUIRE(web);
  CHECK(web->hits == 3);
  CHECK(web->errors == 0);
  CHECK(web->top_level_hits == 3);
  CHECK(web->duration == 3 * 100'000'000ull);
  CHECK(web->http_status_code == 200);
  CHECK(web->span_kind == "server");
  CHECK(web->is_trace_root == kTraceRootTrue);
  CHECK(web->name == "http.request");
  CHECK(web->type == "web");
  CHECK(web->peer_tags.empty());
  const auto* db = FindGroup(b0, "postgres");
  REQUIRE(db);
  CHECK(db->hits == 3);
  CHECK(db->errors == 3);
  CHECK(db->top_level_hits == 3);
  CHECK(db->is_trace_root == kTraceRootFalse);
  CHECK(db->resource == "SELECT * FROM users WHERE id = ?");
  CHECK(db->peer_tags == std::vector<std::string>{"db.system:postgresql", "peer.service:users-db"});

  // Sketches: OK durations in okSummary, error durations in errorSummary.
  DDSketch web_ok = Sketch(web->ok_summary);
  CHECK(web_ok.count() == 3);
  CHECK(std::abs(*web_ok.Quantile(0.5) - 1e8) <= 0.012 * 1e8);
  CHECK(Sketch(web->error_summary).empty());
  CHECK(Sketch(db->ok_summary).empty());
  DDSketch db_err = Sketch(db->error_summary);
  CHECK(db_err.count() == 3);
  CHECK(std::abs(*db_err.Quantile(0.99) - 2e7) <= 0.012 * 2e7);

  StatsPayload p1 = c.Flush(kBase + 35 * kSec, false);
  REQUIRE(p1.stats.size() == 1);
  const auto* b1 = FindBucket(p1, kBase + 10 * kSec);
  REQUIRE(b1);
  const auto* web_ok1 = FindGroup(*b1, "web");
  REQUIRE(web_ok1);
  // The erroring root has status 500: a different key.
  CHECK(b1->stats.size() == 3);
  uint64_t web_hits = 0, web_errors = 0;
  for (const auto& g : b1->stats) {
    if (g.service == "web") {
      web_hits += g.hits;
      web_errors += g.errors;
      if (g.http_status_code == 500) CHECK(g.errors == 1);
    }
  }
  CHECK(web_hits == 2);
  CHECK(web_errors == 1);

  CHECK(c.Flush(kBase + 35 * kSec, false).stats.empty());  // the last bucket is still open
  StatsPayload p2 = c.Flush(kBase + 35 * kSec, /*force=*/true);
  REQUIRE(FindBucket(p2, kBase + 20 * kSec));
  CHECK(c.counters().live_buckets == 0);
  CHECK(c.counters().live_groups == 0);
  CHECK(c.counters().buckets_flushed == 3);
}

TEST_CASE("concentrator: buckets are aligned on span end time; late spans fold into the oldest open bucket") {
  Concentrator c(Config(), kBase);
  TraceChunk chunk;
  SpanSpec s;
  s.start = kBase + 9 * kSec;
  s.duration = 2 * kSec;  // ends at +11 s: second bucket
  chunk.spans = {MakeSpan(s)};
  c.AddChunk(Info(), chunk, nullptr);
  StatsPayload all = c.Flush(kBase + 100 * kSec, true);
  REQUIRE(FindBucket(all, kBase + 10 * kSec));
  CHECK_FALSE(FindBucket(all, kBase));

  // After a flush at +25 s the oldest open bucket is +10 s: a span ending at +3 s goes there.
  Concentrator late(Config(), kBase);
  late.Flush(kBase + 25 * kSec, false);
  TraceChunk old;
  SpanSpec o;
  o.start = kBase + 2 * kSec;
  o.duration = kSec;
  old.spans = {MakeSpan(o)};
  late.AddChunk(Info(), old, nullptr);
  CHECK(late.counters().spans_late == 1);
  StatsPayload out = late.Flush(kBase + 35 * kSec, false);
  const auto* b = FindBucket(out, kBase + 10 * kSec);
  REQUIRE(b);
  CHECK(FindGroup(*b, "web")->hits == 1);

  // Spans from before the concentrator started also go to its first bucket.
  Concentrator fresh(Config(), kBase + 5 * kSec);
  fresh.AddChunk(Info(), old, nullptr);
  CHECK(fresh.counters().spans_late == 0);
  CHECK(FindBucket(fresh.Flush(kBase, true), kBase));
}

TEST_CASE("concentrator: flush timing keeps the current and previous bucket open") {
  Concentrator c(Config(), kBase);
  auto chunk = WebChunk(5 * kSec);
  c.AddChunk(Info(), chunk, &chunk.spans[0]);
  CHECK(c.Flush(kBase + 10 * kSec, false).stats.empty());
  CHECK(c.Flush(kBase + 19 * kSec, false).stats.empty());
  CHECK(c.Flush(kBase + 20 * kSec, false).stats.size() == 1);  // bucket start <= now - 20 s
  CHECK(c.Flush(kBase + 30 * kSec, false).stats.empty());
}

TEST_CASE("concentrator: eligibility by top-level, measured, span kind and partial snapshots") {
  auto run = [](ConcentratorConfig cfg, std::vector<SpanSpec> specs) {
    Concentrator c(cfg, kBase);
    TraceChunk chunk;
    for (auto& s : specs) chunk.spans.push_back(MakeSpan(s));
    c.AddChunk(Info(), chunk, nullptr);
    return c.Flush(kBase, true);
  };
  SpanSpec plain;
  plain.top_level = false;
  CHECK(run(Config(), {plain}).stats.empty());
  SpanSpec measured = plain;
  measured.measured = true;
  CHECK(run(Config(), {measured}).stats.size() == 1);
  SpanSpec client = plain;
  client.meta = {{"span.kind", "client"}};
  CHECK(run(Config(), {client}).stats.size() == 1);
  auto no_kind = Config();
  no_kind.compute_stats_by_span_kind = false;
  CHECK(run(no_kind, {client}).stats.empty());
  SpanSpec internal = plain;
  internal.meta = {{"span.kind", "internal"}};
  CHECK(run(Config(), {internal}).stats.empty());
  SpanSpec partial;
  partial.metrics = {{"_dd.partial_version", 3}};
  CHECK(run(Config(), {partial}).stats.empty());
  SpanSpec tracer_top = plain;
  tracer_top.metrics = {{"_dd.top_level", 1}};
  auto p = run(Config(), {tracer_top});
  REQUIRE(p.stats.size() == 1);
  CHECK(p.stats[0].stats[0].stats[0].top_level_hits == 1);
  // Measured but not top-level: hits count, top-level hits do not.
  auto pm = run(Config(), {measured});
  CHECK(pm.stats[0].stats[0].stats[0].hits == 1);
  CHECK(pm.stats[0].stats[0].stats[0].top_level_hits == 0);
}

TEST_CASE("concentrator: the key covers synthetics, gRPC, HTTP method/endpoint, service source, peer tags") {
  Concentrator c(Config(), kBase);
  auto add = [&](SpanSpec s, std::string origin = "") {
    TraceChunk chunk;
    chunk.origin = origin;
    chunk.spans = {MakeSpan(s)};
    c.AddChunk(Info(), chunk, nullptr);
  };
  SpanSpec base;
  add(base);
  add(base, "synthetics-browser");
  SpanSpec g = base;
  g.meta = {{"rpc.grpc.status_code", "2"}};
  add(g);
  SpanSpec h = base;
  h.meta = {{"http.method", "POST"}, {"http.route", "/users/{id}"}};
  add(h);
  SpanSpec e = h;
  e.meta.push_back({"http.endpoint", "/users/{id}/x"});
  add(e);
  SpanSpec src = base;
  src.meta = {{"_dd.svc_src", "opt.integration"}};
  add(src);
  SpanSpec p1 = base;
  p1.meta = {{"span.kind", "client"}, {"peer.service", "a"}};
  add(p1);
  SpanSpec p2 = base;
  p2.meta = {{"span.kind", "client"}, {"peer.service", "b"}};
  add(p2);
  add(p2);
  auto out = c.Flush(kBase, true);
  REQUIRE(out.stats.size() == 1);
  const auto& groups = out.stats[0].stats[0].stats;
  CHECK(groups.size() == 8);
  int synthetics = 0, grpc = 0, endpoint_route = 0, endpoint_explicit = 0, source = 0, peer_b = 0;
  for (const auto& gs : groups) {
    synthetics += gs.synthetics;
    grpc += gs.grpc_status_code == "2";
    endpoint_route += gs.http_endpoint == "/users/{id}" && gs.http_method == "POST";
    endpoint_explicit += gs.http_endpoint == "/users/{id}/x";
    source += gs.service_source == "opt.integration";
    if (gs.peer_tags == std::vector<std::string>{"peer.service:b"}) {
      ++peer_b;
      CHECK(gs.hits == 2);
    }
  }
  CHECK(synthetics == 1);
  CHECK(grpc == 1);
  CHECK(endpoint_route == 1);
  CHECK(endpoint_explicit == 1);
  CHECK(source == 1);
  CHECK(peer_b == 1);

  // Peer tag aggregation off: one group for both peers.
  auto cfg = Config();
  cfg.peer_tags_aggregation = false;
  Concentrator off(cfg, kBase);
  for (auto* s : {&p1, &p2}) {
    TraceChunk chunk;
    chunk.spans = {MakeSpan(*s)};
    off.AddChunk(Info(), chunk, nullptr);
  }
  auto o = off.Flush(kBase, true);
  REQUIRE(o.stats[0].stats[0].stats.size() == 1);
  CHECK(o.stats[0].stats[0].stats[0].hits == 2);
}

TEST_CASE("concentrator: recent groups are found again exactly (memo), across chunks, buckets and flushes") {
  // Resources of the same length sharing their first and last 8 bytes land in the same memo slot
  // whenever the rest of the key does: only a full comparison tells them apart.
  const std::string select_a = "SELECT a, b FROM orders WHERE id = ?";
  const std::string select_b = "SELECT a, b FROM orderz WHERE id = ?";
  REQUIRE(select_a.size() == select_b.size());
  auto sql = [](const std::string& resource, std::string_view status, int64_t end) {
    SpanSpec s;
    s.service = "db";
    s.resource = resource;
    s.top_level = false;
    s.measured = true;
    s.start = kBase + end - s.duration;
    s.meta = {{"http.status_code", std::string(status)}};
    return MakeSpan(s);
  };
  Concentrator c(Config(), kBase);
  TraceChunk chunk;
  // Alternating groups; the same resource with another status code is another group.
  for (int i = 0; i < 4; ++i) {
    chunk.spans.push_back(sql(select_a, "200", kSec));
    chunk.spans.push_back(sql(select_b, "200", kSec));
    chunk.spans.push_back(sql(select_a, "500", kSec));
  }
  // The same keys ending in the next bucket are other groups.
  chunk.spans.push_back(sql(select_a, "200", 11 * kSec));
  chunk.spans.push_back(sql(select_a, "200", 11 * kSec));
  chunk.spans.push_back(sql(select_a, "200", kSec));
  c.AddChunk(Info(), chunk, nullptr);
  // A second chunk (another payload key in between moves nothing it relies on).
  c.AddChunk(Info("staging"), chunk, nullptr);
  c.AddChunk(Info(), chunk, nullptr);
  CHECK(c.counters().spans_counted == 3 * chunk.spans.size());

  auto count = [](const StatsPayload& p, std::string_view env, int64_t bucket, const std::string& resource,
                  uint32_t status) -> uint64_t {
    for (const auto& cp : p.stats) {
      if (cp.env != env) continue;
      for (const auto& b : cp.stats) {
        if (static_cast<int64_t>(b.start) != bucket) continue;
        for (const auto& g : b.stats) {
          if (g.resource == resource && g.http_status_code == status) return g.hits;
        }
      }
    }
    return 0;
  };
  StatsPayload out = c.Flush(kBase + 30 * kSec, true);
  for (std::string_view env : {"prod", "staging"}) {
    const uint64_t times = env == "prod" ? 2 : 1;
    CHECK(count(out, env, kBase, select_a, 200) == 5 * times);
    CHECK(count(out, env, kBase, select_b, 200) == 4 * times);
    CHECK(count(out, env, kBase, select_a, 500) == 4 * times);
    CHECK(count(out, env, kBase + 10 * kSec, select_a, 200) == 2 * times);
  }
  CHECK(c.counters().live_groups == 0);

  // After a flush the same keys start new groups: nothing is counted into the flushed ones.
  TraceChunk again;
  again.spans = {sql(select_b, "200", 41 * kSec), sql(select_b, "200", 41 * kSec)};
  c.AddChunk(Info(), again, nullptr);
  StatsPayload next = c.Flush(kBase + 60 * kSec, true);
  CHECK(count(next, "prod", kBase + 40 * kSec, select_b, 200) == 2);
  CHECK(c.counters().groups_flushed == 8 + 1);
}

TEST_CASE("concentrator: a long chunk counts every eligible span once, under its own key") {
  // A thousand spans mixing eligibility, resources, gRPC codes (from a metric, formatted into scratch)
  // and peer tags: the memo and the peer tag set cache must never hand one span's key to another.
  auto cfg = Config();
  cfg.peer_tags_aggregation = true;
  Concentrator c(cfg, kBase);
  TraceChunk chunk;
  constexpr int kSpans = 1000;
  int ineligible = 0;
  for (int i = 0; i < kSpans; ++i) {
    SpanSpec s;
    s.span_id = static_cast<uint64_t>(i + 1);
    s.parent_id = 1000000;
    s.top_level = i % 7 != 0;  // every 7th span is neither top-level nor measured
    if (!s.top_level) ++ineligible;
    s.resource = "GET /r" + std::to_string(i % 3);
    // A client span is eligible by its kind alone: the ineligible ones are internal.
    s.meta = {{"span.kind", s.top_level ? "client" : "internal"},
              {"peer.service", "peer-" + std::to_string(i % 5)}};
    s.metrics = {{"rpc.grpc.status_code", static_cast<double>(i % 3)}};
    chunk.spans.push_back(MakeSpan(s));
  }
  c.AddChunk(Info(), chunk, nullptr);
  CHECK(c.counters().spans_counted == static_cast<uint64_t>(kSpans - ineligible));
  CHECK(c.counters().spans_ineligible == static_cast<uint64_t>(ineligible));

  // Expected hits per (resource, gRPC code, peer service), from the spans themselves.
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> want;
  for (int i = 0; i < kSpans; ++i) {
    if (i % 7 == 0) continue;
    ++want[{"GET /r" + std::to_string(i % 3), std::to_string(i % 3),
            "peer.service:peer-" + std::to_string(i % 5)}];
  }
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> got;
  StatsPayload out = c.Flush(kBase + 30 * kSec, true);
  for (const auto& cp : out.stats) {
    for (const auto& b : cp.stats) {
      for (const auto& g : b.stats) {
        REQUIRE(g.peer_tags.size() == 1);
        got[{g.resource, g.grpc_status_code, g.peer_tags[0]}] += g.hits;
      }
    }
  }
  CHECK(want.size() == 15);  // i % 3 and i % 5 together take all 15 combinations
  CHECK(got == want);
}

TEST_CASE("concentrator: peer tags past the set cache's bound make the same groups, counted") {
  auto run = [](size_t max_sets) {
    auto cfg = Config();
    cfg.peer_tag_sets.max_sets = max_sets;
    Concentrator c(cfg, kBase);
    for (int round = 0; round < 3; ++round) {
      TraceChunk chunk;
      for (std::string peer : {"a", "b", "c", "10.0.0.1", "10.0.0.2"}) {
        SpanSpec s;
        s.top_level = false;
        s.meta = {{"peer.service", peer}, {"span.kind", "client"}, {"db.system", "pg"}};
        if (round == 1) std::reverse(s.meta.begin(), s.meta.end());
        chunk.spans.push_back(MakeSpan(s));
      }
      c.AddChunk(Info(), chunk, nullptr);
    }
    auto counters = c.counters().peer_tag_sets;
    std::map<std::vector<std::string>, uint64_t> hits;
    const StatsPayload out = c.Flush(kBase, true);
    for (const auto& g : out.stats.at(0).stats.at(0).stats) hits[g.peer_tags] += g.hits;
    return std::make_tuple(hits, counters, c.counters().peer_tag_sets);
  };
  const auto [cached, cached_counters, cached_after] = run(4096);
  const auto [bounded, bounded_counters, bounded_after] = run(2);
  const std::map<std::vector<std::string>, uint64_t> want = {
      {std::vector<std::string>{"db.system:pg", "peer.service:a"}, 3},
      {std::vector<std::string>{"db.system:pg", "peer.service:b"}, 3},
      {std::vector<std::string>{"db.system:pg", "peer.service:c"}, 3},
      {std::vector<std::string>{"db.system:pg", "peer.service:blocked-ip-address"}, 6}};
  CHECK(cached == want);
  CHECK(bounded == want);
  CHECK(cached_counters.misses == 5);
  CHECK(cached_counters.hits == 10);
  CHECK(cached_counters.uncached == 0);
  CHECK(cached_after.resets == 0);  // the flush keeps a cache that never filled
  CHECK(bounded_counters.misses == 2);
  CHECK(bounded_counters.hits == 4);
  CHECK(bounded_counters.uncached == 9);
  CHECK(bounded_after.resets == 1);  // and empties one that did
  CHECK(bounded_after.sets == 0);
}

TEST_CASE("concentrator: weights from _sample_rate, payload keys, defaults and container tags") {
  Concentrator c(Config(), kBase);
  auto chunk = WebChunk(kSec);
  Set(chunk.spans[0].metrics, "_sample_rate", 0.25);
  c.AddChunk(Info(), chunk, &chunk.spans[0]);

  PayloadInfo other = Info("");
  other.hostname = "";
  other.container_id = "abc123";
  const std::vector<std::string> ctags = {"image_name:web", "kube_namespace:prod"};
  other.container_tags = ctags;
  other.process_tags = "entrypoint.name:node,entrypoint.workdir:app";
  auto chunk2 = WebChunk(kSec);
  c.AddChunk(other, chunk2, &chunk2.spans[0]);

  auto out = c.Flush(kBase, true);
  REQUIRE(out.stats.size() == 2);
  for (const auto& p : out.stats) {
    const auto* web = FindGroup(p.stats[0], "web");
    REQUIRE(web);
    if (p.env == "prod") {
      CHECK(web->hits == 4);  // 1 / 0.25
      CHECK(web->top_level_hits == 4);
      CHECK(web->duration == 4 * 100'000'000ull);
      CHECK(Sketch(web->ok_summary).count() == 1);  // distributions are not weighted
      CHECK(p.container_id.empty());
      CHECK(p.tags.empty());
    } else {
      CHECK(p.env == "agent-env");
      CHECK(p.hostname == "agent-host");
      CHECK(p.container_id == "abc123");
      CHECK(p.tags == ctags);
      CHECK(p.process_tags == "entrypoint.name:node,entrypoint.workdir:app");
      CHECK(p.process_tags_hash == ProcessTagsHash(p.process_tags));
      CHECK(web->hits == 1);
    }
  }

  auto no_cid = Config();
  no_cid.container_id_stats = false;
  Concentrator n(no_cid, kBase);
  n.AddChunk(other, chunk2, &chunk2.spans[0]);
  auto o = n.Flush(kBase, true);
  CHECK(o.stats[0].container_id.empty());
  CHECK(o.stats[0].tags.empty());

  // Stochastic rounding stays unbiased: 1000 spans at weight 1.5 sum to 1500 exactly.
  Concentrator r(Config(), kBase);
  uint64_t total = 0;
  for (int i = 0; i < 1000; ++i) {
    TraceChunk one;
    SpanSpec s;
    s.resource = "r" + std::to_string(i);
    one.spans = {MakeSpan(s)};
    Set(one.spans[0].metrics, "_sample_rate", 1 / 1.5);
    r.AddChunk(Info(), one, &one.spans[0]);
  }
  const StatsPayload rounded = r.Flush(kBase, true);
  for (const auto& g : rounded.stats[0].stats[0].stats) total += g.hits;
  CHECK(total > 1400);
  CHECK(total < 1600);
}

TEST_CASE("concentrator: bounds on groups and buckets shed with counters") {
  auto cfg = Config();
  cfg.max_groups_per_bucket = 3;
  cfg.max_buckets = 2;
  Concentrator c(cfg, kBase);
  for (int i = 0; i < 5; ++i) {
    TraceChunk chunk;
    SpanSpec s;
    s.resource = "r" + std::to_string(i);
    chunk.spans = {MakeSpan(s)};
    c.AddChunk(Info(), chunk, nullptr);
  }
  CHECK(c.counters().spans_shed_groups == 2);
  CHECK(c.counters().live_groups == 3);
  for (int i = 1; i <= 3; ++i) {
    TraceChunk chunk;
    SpanSpec s;
    s.start = kBase + i * 10 * kSec;
    chunk.spans = {MakeSpan(s)};
    c.AddChunk(Info(), chunk, nullptr);
  }
  CHECK(c.counters().spans_shed_buckets == 2);  // third and fourth bucket refused
  // A span in an earlier bucket than the open ones evicts the latest (future garbage never starves
  // current traffic).
  Concentrator e(cfg, kBase);
  for (int i : {50, 60}) {
    TraceChunk chunk;
    SpanSpec s;
    s.start = kBase + i * kSec;
    chunk.spans = {MakeSpan(s)};
    e.AddChunk(Info(), chunk, nullptr);
  }
  TraceChunk now_chunk;
  now_chunk.spans = {MakeSpan(SpanSpec())};
  e.AddChunk(Info(), now_chunk, nullptr);
  CHECK(e.counters().buckets_evicted == 1);
  auto kept = e.Flush(kBase, true);
  CHECK(FindBucket(kept, kBase));
  CHECK(FindBucket(kept, kBase + 50 * kSec));
  CHECK_FALSE(FindBucket(kept, kBase + 60 * kSec));
  auto out = c.Flush(kBase, true);
  CHECK(CountEntries(out) == 4);
}

// ================================================================================================
// wire encoding

TEST_CASE("StatsPayload msgpack uses the Go field names and decodes back with msgpack-cxx") {
  Concentrator c(Config(), kBase);
  auto chunk = WebChunk(kSec, true);
  PayloadInfo info = Info();
  info.container_id = "cid-1";
  info.git_commit_sha = "abc";
  info.image_tag = "v1";
  c.AddChunk(info, chunk, &chunk.spans[0]);
  StatsPayload p = c.Flush(kBase, true);
  std::string buf;
  EncodeStatsPayload(p, &buf);

  auto oh = msgpack::unpack(buf.data(), buf.size());
  const auto& root = oh.get();
  CHECK(Keys(root) == std::vector<std::string>{"AgentHostname", "AgentEnv", "Stats", "AgentVersion",
                                               "ClientComputed", "SplitPayload"});
  CHECK(Get(root, "AgentHostname")->as<std::string>() == "agent-host");
  CHECK(Get(root, "ClientComputed")->as<bool>() == false);
  const auto& client = Get(root, "Stats")->via.array.ptr[0];
  CHECK(Keys(client) == std::vector<std::string>{"Hostname", "Env", "Version", "Stats", "Lang",
                                                 "TracerVersion", "RuntimeID", "Sequence", "AgentAggregation",
                                                 "Service", "ContainerID", "Tags", "GitCommitSha", "ImageTag",
                                                 "ProcessTagsHash", "ProcessTags"});
  CHECK(Get(client, "Env")->as<std::string>() == "prod");
  CHECK(Get(client, "ContainerID")->as<std::string>() == "cid-1");
  CHECK(Get(client, "GitCommitSha")->as<std::string>() == "abc");
  CHECK(Get(client, "ImageTag")->as<std::string>() == "v1");
  const auto& bucket = Get(client, "Stats")->via.array.ptr[0];
  CHECK(Keys(bucket) == std::vector<std::string>{"Start", "Duration", "Stats", "AgentTimeShift"});
  CHECK(Get(bucket, "Start")->as<uint64_t>() == static_cast<uint64_t>(kBase));
  CHECK(Get(bucket, "Duration")->as<uint64_t>() == 10'000'000'000ull);
  const auto& groups = *Get(bucket, "Stats");
  REQUIRE(groups.via.array.size == 2);
  bool saw_db = false;
  for (uint32_t i = 0; i < groups.via.array.size; ++i) {
    const auto& g = groups.via.array.ptr[i];
    CHECK(Keys(g) == std::vector<std::string>{
                         "Service", "Name", "Resource", "HTTPStatusCode", "Type", "DBType", "Hits", "Errors",
                         "Duration", "OkSummary", "ErrorSummary", "Synthetics", "TopLevelHits", "SpanKind",
                         "PeerTags", "IsTraceRoot", "GRPCStatusCode", "HTTPMethod", "HTTPEndpoint"});
    CHECK(Get(g, "OkSummary")->type == msgpack::type::BIN);
    if (Get(g, "Service")->as<std::string>() == "postgres") {
      saw_db = true;
      CHECK(Get(g, "Hits")->as<uint64_t>() == 1);
      CHECK(Get(g, "Errors")->as<uint64_t>() == 1);
      CHECK(Get(g, "TopLevelHits")->as<uint64_t>() == 1);
      CHECK(Get(g, "Duration")->as<uint64_t>() == 20'000'000);
      CHECK(Get(g, "IsTraceRoot")->as<int>() == kTraceRootFalse);
      CHECK(Get(g, "SpanKind")->as<std::string>() == "client");
      CHECK(Get(g, "PeerTags")->as<std::vector<std::string>>() ==
            std::vector<std::string>{"db.system:postgresql", "peer.service:users-db"});
      const auto& err = Get(g, "ErrorSummary")->via.bin;
      CHECK(Sketch(std::string(err.ptr, err.size)).count() == 1);
    }
  }
  CHECK(saw_db);

  // Our own decoder reads it back identically.
  auto back = DecodeStatsPayload(buf);
  REQUIRE(back.ok());
  std::string again;
  EncodeStatsPayload(*back, &again);
  CHECK(again == buf);
}

TEST_CASE("payloads above 4000 entries are split and flagged; bodies are gzip msgpack") {
  StatsPayload p;
  p.agent_hostname = "h";
  p.agent_env = "e";
  ClientStatsPayload big;
  big.env = "prod";
  big.hostname = "host";
  big.git_commit_sha = "sha";
  for (int b = 0; b < 2; ++b) {
    ClientStatsBucket bucket;
    bucket.start = static_cast<uint64_t>(kBase + b * 10 * kSec);
    bucket.duration = 10 * kSec;
    for (int i = 0; i < 5000; ++i) {
      ClientGroupedStats g;
      g.service = "svc";
      g.resource = "r" + std::to_string(i);
      g.hits = 1;
      bucket.stats.push_back(std::move(g));
    }
    big.stats.push_back(std::move(bucket));
  }
  ClientStatsPayload small;
  small.env = "staging";
  small.stats.push_back({static_cast<uint64_t>(kBase), 10 * kSec, {ClientGroupedStats{}}, 0});
  small.tags = {"dropped:no-container"};
  ClientStatsPayload empty;
  p.stats = {big, small, empty};

  auto parts = SplitStatsPayload(p);
  size_t total = 0;
  for (const auto& part : parts) {
    CHECK(CountEntries(part) <= kMaxEntriesPerPayload);
    CHECK(part.split_payload);
    CHECK(part.agent_hostname == "h");
    total += CountEntries(part);
    for (const auto& c : part.stats) {
      if (c.env == "prod") {
        CHECK(c.git_commit_sha == "sha");
        CHECK(c.stats.size() == 2);  // one bucket per time window in each part
      } else {
        CHECK(c.tags.empty());  // no container ID: no container tags
      }
    }
  }
  CHECK(parts.size() == 3);  // 10000 entries in 3 parts of ~3334; the small payload joins the last
  CHECK(total == 10001);

  auto unsplit = SplitStatsPayload([] {
    StatsPayload s;
    ClientStatsPayload c;
    c.stats.push_back({1, 2, {ClientGroupedStats{}}, 0});
    s.stats = {c};
    return s;
  }());
  REQUIRE(unsplit.size() == 1);
  CHECK_FALSE(unsplit[0].split_payload);

  auto bodies = BuildStatsRequests(p);
  REQUIRE(bodies.ok());
  REQUIRE(bodies->size() == 3);
  size_t decoded_total = 0;
  for (const auto& body : *bodies) {
    auto raw = compression::GzipDecompress(body, 64 << 20);
    REQUIRE(raw.ok());
    auto sp = DecodeStatsPayload(*raw);
    REQUIRE(sp.ok());
    CHECK(sp->split_payload);
    decoded_total += CountEntries(*sp);
  }
  CHECK(decoded_total == 10001);
  CHECK(BuildStatsRequests(StatsPayload{})->empty());
}

// ================================================================================================
// client stats (/v0.6/stats)

// The body dd-trace-js 5.x sends, built with the wire types it uses (uint64 numbers, str/bin).
std::string DdTraceJsBody(const std::string& ok_sketch, const std::string& err_sketch) {
  std::string buf;
  MsgpackWriter w(&buf);
  w.MapHeader(11);
  w.String("Hostname");
  w.String("");
  w.String("Env");
  w.String("test");
  w.String("Version");
  w.String("1.0.0");
  w.String("Stats");
  w.ArrayHeader(1);
  w.MapHeader(3);
  w.String("Start");
  w.Uint(static_cast<uint64_t>(kBase));
  w.String("Duration");
  w.Uint(10'000'000'000ull);
  w.String("Stats");
  w.ArrayHeader(2);
  for (int i = 0; i < 2; ++i) {
    w.MapHeader(18);
    w.String("Service");
    w.String("probe");
    w.String("Name");
    w.String(i == 0 ? "web.request" : "pg.query");
    w.String("Resource");
    w.String(i == 0 ? "GET /x" : "SELECT ?");
    w.String("HTTPStatusCode");
    w.Uint(i == 0 ? 200 : 0);
    w.String("Type");
    w.String(i == 0 ? "web" : "sql");
    w.String("Hits");
    w.Uint(10);
    w.String("Errors");
    w.Uint(i);
    w.String("Duration");
    w.Uint(123456789);
    w.String("OkSummary");
    w.Binary(ok_sketch);
    w.String("ErrorSummary");
    w.Binary(err_sketch);
    w.String("Synthetics");
    w.Bool(false);
    w.String("TopLevelHits");
    w.Uint(i == 0 ? 10 : 0);
    w.String("HTTPMethod");
    w.String(i == 0 ? "GET" : "");
    w.String("HTTPEndpoint");
    w.String(i == 0 ? "/x" : "");
    w.String("srv_src");
    w.String(i == 0 ? "" : "pg");
    w.String("SpanKind");
    w.String(i == 0 ? "server" : "client");
    w.String("GRPCStatusCode");
    w.String("");
    w.String("FutureField");  // unknown: skipped
    w.MapHeader(1);
    w.String("x");
    w.ArrayHeader(2);
    w.Nil();
    w.Double(1.5);
  }
  w.String("Lang");
  w.String("javascript");
  w.String("TracerVersion");
  w.String("5.132.0");
  w.String("RuntimeID");
  w.String("0b6c8f2e-aaaa-bbbb-cccc-0123456789ab");
  w.String("Sequence");
  w.Uint(7);
  w.String("ProcessTags");
  w.String("entrypoint.name:probe");
  w.String("Service");
  w.Nil();  // nil is the zero value
  w.String("Tags");
  w.ArrayHeader(0);
  return buf;
}

TEST_CASE("v0.6 client stats: the dd-trace-js shape decodes, sketches included") {
  DDSketch ok, err;
  for (int i = 1; i <= 10; ++i) ok.Add(i * 1e6);
  err.Add(5e6);
  const std::string body = DdTraceJsBody(ok.Encode(), err.Encode());
  auto p = DecodeClientStatsPayload(body);
  REQUIRE(p.ok());
  CHECK(p->env == "test");
  CHECK(p->version == "1.0.0");
  CHECK(p->lang == "javascript");
  CHECK(p->tracer_version == "5.132.0");
  CHECK(p->runtime_id == "0b6c8f2e-aaaa-bbbb-cccc-0123456789ab");
  CHECK(p->sequence == 7);
  CHECK(p->process_tags == "entrypoint.name:probe");
  CHECK(p->service.empty());
  REQUIRE(p->stats.size() == 1);
  CHECK(static_cast<int64_t>(p->stats[0].start) == kBase);
  CHECK(p->stats[0].duration == 10'000'000'000ull);
  REQUIRE(p->stats[0].stats.size() == 2);
  const auto& web = p->stats[0].stats[0];
  CHECK(web.service == "probe");
  CHECK(web.name == "web.request");
  CHECK(web.http_status_code == 200);
  CHECK(web.hits == 10);
  CHECK(web.top_level_hits == 10);
  CHECK(web.duration == 123456789);
  CHECK(web.http_method == "GET");
  CHECK(web.http_endpoint == "/x");
  CHECK(web.span_kind == "server");
  const auto& pg = p->stats[0].stats[1];
  CHECK(pg.errors == 1);
  CHECK(pg.service_source == "pg");
  CHECK(Sketch(web.ok_summary).count() == 10);
  CHECK(Sketch(web.error_summary).count() == 1);
}

TEST_CASE("v0.6 client stats: malformed bodies fail with the key and offset") {
  CHECK_FALSE(DecodeClientStatsPayload("").ok());
  auto not_map = DecodeClientStatsPayload(std::string("\x93\x01\x02\x03", 4));
  REQUIRE_FALSE(not_map.ok());
  CHECK(not_map.status().message().find("expected map") != std::string::npos);

  std::string buf;
  MsgpackWriter w(&buf);
  w.MapHeader(1);
  w.String("Stats");
  w.ArrayHeader(1);
  w.MapHeader(1);
  w.String("Stats");
  w.ArrayHeader(1);
  w.MapHeader(1);
  w.String("Hits");
  w.String("ten");
  auto bad = DecodeClientStatsPayload(buf);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("ClientGroupedStats.Hits") != std::string::npos);
  CHECK(bad.status().message().find("at byte") != std::string::npos);

  DDSketch s;
  const std::string good = DdTraceJsBody(s.Encode(), s.Encode());
  for (size_t cut : {size_t{1}, good.size() / 3, good.size() / 2, good.size() - 1}) {
    CHECK_FALSE(DecodeClientStatsPayload(good.substr(0, cut)).ok());
  }
  // A huge group array in a small body is refused before allocation.
  std::string huge;
  MsgpackWriter hw(&huge);
  hw.MapHeader(1);
  hw.String("Stats");
  huge += std::string("\xdd\x7f\xff\xff\xff", 5);
  auto h = DecodeClientStatsPayload(huge);
  REQUIRE_FALSE(h.ok());
  CHECK(h.status().message().find("cannot fit") != std::string::npos);

  DecodeLimits limits;
  limits.max_groups = 1;
  auto limited = DecodeClientStatsPayload(good, limits);
  REQUIRE_FALSE(limited.ok());
  CHECK(limited.status().code() == absl::StatusCode::kResourceExhausted);
}

TEST_CASE("v0.6 client stats: preparation and duplicate merging") {
  DDSketch s;
  auto p = DecodeClientStatsPayload(DdTraceJsBody(s.Encode(), s.Encode()));
  REQUIRE(p.ok());
  p->env = "";
  p->lang = "";
  p->container_id = "from-body";
  // A duplicate of the first group with a different type (type is not part of the merge key).
  auto dup = p->stats[0].stats[0];
  dup.type = "http";
  dup.hits = 5;
  p->stats[0].stats.push_back(dup);
  ClientStatsContext ctx;
  ctx.lang = "nodejs";
  ctx.container_id = "cid-9";
  ctx.agent_env = "agent-env";
  ctx.normalize_env = [](std::string_view e) { return strings::Lower(e); };
  ctx.process_group = [](ClientGroupedStats& g) { return g.name != "pg.query"; };  // a filter drops it
  PrepareClientStats(&*p, ctx);
  CHECK(p->env == "agent-env");
  CHECK(p->lang == "nodejs");
  CHECK(p->tracer_version == "5.132.0");  // the body's wins over the header
  CHECK(p->container_id == "cid-9");
  REQUIRE(p->stats[0].stats.size() == 2);
  CHECK(p->stats[0].stats[0].hits == 15);
  CHECK(p->stats[0].stats[1].hits == 0);

  ctx.container_id_stats = false;
  p->tags = {"a:b"};
  PrepareClientStats(&*p, ctx);
  CHECK(p->container_id.empty());
  CHECK(p->tags.empty());
}

ClientStatsPayload ClientPayload(std::string env, int64_t start, uint64_t hits, uint64_t errors) {
  ClientStatsPayload p;
  p.env = std::move(env);
  p.hostname = "h";
  p.lang = "javascript";
  ClientStatsBucket b;
  b.start = static_cast<uint64_t>(start);
  b.duration = 10 * kSec;
  ClientGroupedStats g;
  g.service = "svc";
  g.name = "op";
  g.resource = "res";
  g.hits = hits;
  g.errors = errors;
  g.duration = hits * 1000;
  g.top_level_hits = hits;
  g.ok_summary = "sketch-bytes";
  b.stats.push_back(g);
  p.stats.push_back(b);
  return p;
}

TEST_CASE("client stats aggregator: a lone payload passes through, colliding ones split counts") {
  const int64_t now = kBase + 100 * kSec;
  ClientStatsAggregator::Config cfg;
  cfg.agent_env = "agent-env";
  cfg.agent_hostname = "agent-host";
  ClientStatsAggregator agg(cfg, now);

  // Window alignment: 2 s windows starting on odd seconds.
  CHECK(ClientStatsAggregator::AlignWindow(kBase) == kBase + kSec);
  CHECK(ClientStatsAggregator::AlignWindow(kBase + kSec + 5) == kBase + kSec);
  CHECK(ClientStatsAggregator::AlignWindow(kBase + 2 * kSec) == kBase + 3 * kSec);

  // One payload in its window: nothing now, passed through untouched when the window closes.
  CHECK(agg.Add(now, ClientPayload("prod", now - 10 * kSec, 4, 1)).empty());
  CHECK(agg.Flush(now).empty());
  auto closed = agg.Flush(now + 30 * kSec);
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].client_computed);
  CHECK(closed[0].agent_env == "agent-env");
  REQUIRE(closed[0].stats.size() == 1);
  const auto& lone = closed[0].stats[0];
  CHECK(lone.agent_aggregation.empty());
  CHECK(lone.stats[0].stats[0].hits == 4);
  CHECK(static_cast<int64_t>(lone.stats[0].start) == now - 10 * kSec);  // untouched
  CHECK(lone.stats[0].agent_time_shift == 0);

  // Three payloads in one window: distributions now (counts zeroed), summed counts at close.
  const int64_t t = now + 40 * kSec;
  CHECK(agg.Add(t, ClientPayload("prod", t - 5 * kSec, 3, 1)).empty());
  auto second = agg.Add(t, ClientPayload("prod", t - 5 * kSec, 5, 0));
  REQUIRE(second.size() == 1);
  REQUIRE(second[0].stats.size() == 2);
  for (const auto& d : second[0].stats) {
    CHECK(d.agent_aggregation == "distributions");
    CHECK(d.stats[0].stats[0].hits == 0);
    CHECK(d.stats[0].stats[0].errors == 0);
    CHECK(d.stats[0].stats[0].duration == 0);
    CHECK(d.stats[0].stats[0].top_level_hits > 0);  // stays with the distributions
    CHECK(d.stats[0].stats[0].ok_summary == "sketch-bytes");
  }
  auto third = agg.Add(t, ClientPayload("prod", t - 5 * kSec, 2, 2));
  REQUIRE(third.size() == 1);
  CHECK(third[0].stats.size() == 1);
  auto counts = agg.FlushAll();
  REQUIRE(counts.size() == 1);
  REQUIRE(counts[0].stats.size() == 1);
  const auto& c = counts[0].stats[0];
  CHECK(c.agent_aggregation == "counts");
  CHECK(c.env == "prod");
  CHECK(c.stats[0].duration == 10 * kSec);
  CHECK(static_cast<int64_t>(c.stats[0].start) == ClientStatsAggregator::AlignWindow(t - 5 * kSec));
  CHECK(c.stats[0].stats[0].hits == 10);
  CHECK(c.stats[0].stats[0].errors == 3);
  CHECK(c.stats[0].stats[0].duration == 10000);
  CHECK(c.stats[0].stats[0].ok_summary.empty());
  CHECK(agg.counters().distribution_payloads == 3);
  CHECK(agg.counters().count_payloads == 1);
  CHECK(agg.counters().passed_through == 1);
}

TEST_CASE("client stats aggregator: old and future buckets are shifted into the window") {
  const int64_t now = kBase + 100 * kSec;
  ClientStatsAggregator agg({}, now);
  CHECK(agg.Add(now, ClientPayload("prod", now - 3600 * kSec, 1, 0)).empty());
  CHECK(agg.Add(now, ClientPayload("staging", now + 3600 * kSec, 1, 0)).empty());
  CHECK(agg.counters().buckets_time_shifted == 2);
  auto out = agg.FlushAll();
  REQUIRE(out.size() == 2);
  for (const auto& sp : out) {
    const auto& b = sp.stats[0].stats[0];
    if (sp.stats[0].env == "prod") {
      CHECK(static_cast<int64_t>(b.start) == ClientStatsAggregator::AlignWindow(now + 2 * kSec - 20 * kSec));
      CHECK(b.agent_time_shift == static_cast<int64_t>(b.start) - (now - 3600 * kSec));
    } else {
      CHECK(static_cast<int64_t>(b.start) == ClientStatsAggregator::AlignWindow(now));
      CHECK(b.agent_time_shift < 0);
    }
  }
}

}  // namespace
}  // namespace dogwatch::trace::stats
