#include "trace-agent/decode/testdata_payloads.h"

#include <cmath>
#include <cstdint>
#include <string_view>
#include <unordered_map>

#include "common/strings/strings.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "trace-agent/decode/test_msgpack_writer.h"

namespace dogwatch::trace::testdata {
namespace {

using strings::Cat;
using testing::MsgpackWriter;

// SplitMix64: a deterministic id source, so payloads (and benchmark numbers) are reproducible.
struct Ids {
  uint64_t state;
  uint64_t Next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
};

constexpr std::string_view kTables[] = {"orders", "line_items", "users", "products",
                                        "inventory_reservations"};

std::string SqlQuery(uint64_t n) {
  switch (n % 3) {
    case 0:
      return Cat(
          "SELECT o.id, o.user_id, o.status, o.total_cents, o.currency, o.created_at, o.updated_at, li.sku, "
          "li.quantity, li.unit_price_cents, p.name, p.category, p.weight_grams FROM orders o JOIN "
          "line_items li "
          "ON li.order_id = o.id JOIN products p ON p.sku = li.sku WHERE o.user_id = ",
          n % 100000, " AND o.status IN ('paid', 'shipped', 'delivered') AND o.created_at > '2024-0",
          n % 9 + 1, "-01' ORDER BY o.created_at DESC LIMIT 50 OFFSET ", (n % 7) * 50);
    case 1:
      return Cat(
          "UPDATE ", kTables[n % 5],
          " SET status = 'reserved', reserved_until = NOW() + INTERVAL '15 minutes', updated_at = NOW(), "
          "version = version + 1 WHERE sku = 'SKU-",
          n % 99991, "' AND warehouse_id = ", n % 17,
          " AND quantity_available >= 3 AND (reserved_until IS NULL OR reserved_until < NOW()) RETURNING "
          "id, quantity_available, reserved_until, version");
    default:
      return Cat(
          "INSERT INTO audit_events (id, actor_id, action, entity_type, entity_id, payload, ip_address, "
          "user_agent, created_at) VALUES ($1, $2, 'order.viewed', 'order', ",
          n % 1000003,
          ", '{\"source\":\"web\",\"page\":2,\"filters\":{\"status\":[\"paid\",\"shipped\"]}}', "
          "'10.42.",
          n % 256, ".", (n / 256) % 256, "', $3, NOW()) ON CONFLICT (id) DO NOTHING");
  }
}

Span WebRoot(Ids& ids, uint64_t trace_id, int64_t start, int trace_index) {
  Span s;
  s.service = "web-store";
  s.name = "express.request";
  s.resource = "GET /api/v1/users/:id/orders";
  s.type = "web";
  s.trace_id = trace_id;
  s.span_id = trace_id;
  s.start = start;
  s.duration = 48'000'000 + static_cast<int64_t>(ids.Next() % 20'000'000);
  const std::string user = std::to_string(1000 + trace_index);
  s.meta = {
      {"component", "express"},
      {"span.kind", "server"},
      {"http.method", "GET"},
      {"http.url", Cat("https://shop.example.com/api/v1/users/", user, "/orders?page=2&status=paid")},
      {"http.route", "/api/v1/users/:id/orders"},
      {"http.status_code", "200"},
      {"http.useragent",
       "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
       "Safari/537.36"},
      {"env", "prod"},
      {"version", "1.42.0"},
      {"_dd.p.tid", "66a1b2c300000000"},
  };
  s.metrics = {
      {"_sampling_priority_v1", 1}, {"_dd.top_level", 1},    {"_dd.measured", 1},
      {"process_id", 3979},         {"_dd.agent_psr", 0.75},
  };
  return s;
}

Span HttpClient(Ids& ids, uint64_t trace_id, uint64_t parent, int64_t start) {
  Span s;
  s.service = "web-store";
  s.name = "http.request";
  s.resource = "GET";
  s.type = "http";
  s.trace_id = trace_id;
  s.span_id = ids.Next();
  s.parent_id = parent;
  s.start = start;
  s.duration = 2'000'000 + static_cast<int64_t>(ids.Next() % 5'000'000);
  const uint64_t item = ids.Next() % 100000;
  s.meta = {
      {"component", "http"},
      {"span.kind", "client"},
      {"http.method", "GET"},
      {"http.url", Cat("https://inventory.internal:8443/v2/items/", item, "/availability")},
      {"http.status_code", item % 11 == 0 ? "404" : "200"},
      {"out.host", "inventory.internal"},
      {"peer.service", "inventory"},
      {"env", "prod"},
      {"version", "1.42.0"},
      {"_dd.base_service", "web-store"},
  };
  s.metrics = {
      {"_dd.measured", 1},
      {"process_id", 3979},
      {"network.destination.port", 8443},
      {"http.response.content_length", static_cast<double>(200 + item % 4000)},
  };
  return s;
}

Span Sql(Ids& ids, uint64_t trace_id, uint64_t parent, int64_t start) {
  Span s;
  s.service = "web-store-postgres";
  s.name = "pg.query";
  const uint64_t n = ids.Next();
  s.resource = SqlQuery(n);
  s.type = "sql";
  s.trace_id = trace_id;
  s.span_id = ids.Next();
  s.parent_id = parent;
  s.start = start;
  s.duration = 300'000 + static_cast<int64_t>(ids.Next() % 3'000'000);
  s.meta = {
      {"component", "pg"},
      {"span.kind", "client"},
      {"db.type", "postgres"},
      {"db.system", "postgresql"},
      {"db.name", "orders"},
      {"db.user", "app_rw"},
      {"out.host", "db-primary.internal"},
      {"peer.service", "orders-db"},
      {"env", "prod"},
      {"_dd.base_service", "web-store"},
  };
  s.metrics = {
      {"_dd.measured", 1},
      {"process_id", 3979},
      {"network.destination.port", 5432},
      {"db.row_count", static_cast<double>(n % 50)},
  };
  return s;
}

// ---------------------------------------------------------------------------------------------
// msgpack encoding

void WriteStr(MsgpackWriter& w, std::string_view s, V04Style style) {
  if (style == V04Style::kDdTraceJs) {
    w.Str32(s);
  } else {
    w.Str(s);
  }
}

void WriteMetric(MsgpackWriter& w, double v, V04Style style) {
  // dd-trace-js writes integral metric values as integers (often uint16), the rest as float64.
  if (std::floor(v) == v && std::fabs(v) < 9e15) {
    w.Int(static_cast<int64_t>(v));
  } else {
    w.F64(v);
  }
  (void)style;
}

void WriteSpanV04(MsgpackWriter& w, const Span& s, V04Style style) {
  const bool js = style == V04Style::kDdTraceJs;
  uint32_t fields = 11;  // service name resource trace_id span_id parent_id start duration error meta metrics
  if (!s.type.empty() || !js) ++fields;
  if (!s.meta_struct.empty()) ++fields;
  if (!s.span_links.empty()) ++fields;
  w.Map(fields);
  if (!s.type.empty() || !js) WriteStr(w.FixStr("type"), s.type, style);
  auto id = [&](uint64_t v) {
    if (js) {
      w.U64(v);
    } else {
      w.Uint(v);
    }
  };
  w.FixStr("trace_id");
  id(s.trace_id);
  w.FixStr("span_id");
  id(s.span_id);
  w.FixStr("parent_id");
  id(s.parent_id);
  WriteStr(w.FixStr("name"), s.name, style);
  WriteStr(w.FixStr("resource"), s.resource, style);
  WriteStr(w.FixStr("service"), s.service, style);
  w.FixStr("error").Int(s.error);
  w.FixStr("start");
  if (js) {
    w.U64(static_cast<uint64_t>(s.start));
  } else {
    w.Int(s.start);
  }
  w.FixStr("duration");
  if (js && s.duration >= 0 && s.duration <= 0xffffffffLL) {
    w.U32(static_cast<uint32_t>(s.duration));
  } else {
    w.Int(s.duration);
  }
  w.FixStr("meta").Map(static_cast<uint32_t>(s.meta.size()));
  for (const auto& [k, v] : s.meta) {
    WriteStr(w, k, style);
    WriteStr(w, v, style);
  }
  w.FixStr("metrics").Map(static_cast<uint32_t>(s.metrics.size()));
  for (const auto& [k, v] : s.metrics) {
    WriteStr(w, k, style);
    WriteMetric(w, v, style);
  }
  if (!s.meta_struct.empty()) {
    w.Str("meta_struct").Map(static_cast<uint32_t>(s.meta_struct.size()));
    for (const auto& [k, v] : s.meta_struct) w.Str(k).Bin(v);
  }
  if (!s.span_links.empty()) {
    w.Str("span_links").Array(static_cast<uint32_t>(s.span_links.size()));
    for (const SpanLink& l : s.span_links) {
      w.Map(6);
      w.Str("trace_id").Uint(l.trace_id);
      w.Str("trace_id_high").Uint(l.trace_id_high);
      w.Str("span_id").Uint(l.span_id);
      w.Str("attributes").Map(static_cast<uint32_t>(l.attributes.size()));
      for (const auto& [k, v] : l.attributes) w.Str(k).Str(v);
      w.Str("tracestate").Str(l.tracestate);
      w.Str("flags").Uint(l.flags);
    }
  }
}

void WriteSpans(MsgpackWriter& w, const std::vector<Span>& spans, V04Style style) {
  if (style == V04Style::kDdTraceJs) {
    w.Array32(static_cast<uint32_t>(spans.size()));
  } else {
    w.Array(static_cast<uint32_t>(spans.size()));
  }
  for (const Span& s : spans) WriteSpanV04(w, s, style);
}

void WriteStringMap(MsgpackWriter& w, const StringMap& map) {
  w.Map(static_cast<uint32_t>(map.size()));
  for (const auto& [k, v] : map) w.Str(k).Str(v);
}

// ---------------------------------------------------------------------------------------------
// JSON encoding

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void JsonString(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void JsonStringMap(JsonWriter& w, const StringMap& map) {
  w.StartObject();
  for (const auto& [k, v] : map) {
    JsonString(w, k);
    JsonString(w, v);
  }
  w.EndObject();
}

void JsonSpan(JsonWriter& w, const Span& s) {
  w.StartObject();
  w.Key("service");
  JsonString(w, s.service);
  w.Key("name");
  JsonString(w, s.name);
  w.Key("resource");
  JsonString(w, s.resource);
  w.Key("type");
  JsonString(w, s.type);
  w.Key("trace_id");
  w.Uint64(s.trace_id);
  w.Key("span_id");
  w.Uint64(s.span_id);
  w.Key("parent_id");
  w.Uint64(s.parent_id);
  w.Key("start");
  w.Int64(s.start);
  w.Key("duration");
  w.Int64(s.duration);
  w.Key("error");
  w.Int(s.error);
  w.Key("meta");
  JsonStringMap(w, s.meta);
  w.Key("metrics");
  w.StartObject();
  for (const auto& [k, v] : s.metrics) {
    JsonString(w, k);
    w.Double(v);
  }
  w.EndObject();
  w.EndObject();
}

}  // namespace

std::vector<Trace> BuildRealisticTraces(int traces, int spans_per_trace, uint64_t variant) {
  Ids ids{42};
  std::vector<Trace> out;
  out.reserve(static_cast<size_t>(traces));
  const int64_t base = 1'795'226'516'280'790'016;
  for (int t = 0; t < traces; ++t) {
    Trace& trace = out.emplace_back();
    trace.reserve(static_cast<size_t>(spans_per_trace));
    const uint64_t trace_id = ids.Next();
    const int64_t start = base + static_cast<int64_t>(t) * 1'000'000;
    for (int i = 0; i < spans_per_trace; ++i) {
      const int64_t span_start = start + i * 10'000;
      if (i == 0) {
        trace.push_back(WebRoot(ids, trace_id, span_start, t));
      } else if (i % 3 == 1) {
        trace.push_back(HttpClient(ids, trace_id, trace_id, span_start));
      } else {
        trace.push_back(Sql(ids, trace_id, trace_id, span_start));
      }
    }
  }
  if (variant != 0) {
    // Multiplying by an odd number permutes the uint64 values and keeps 0 (no parent) at 0, so
    // parent links stay consistent; everything else, the strings included, stays the same.
    const uint64_t factor = Ids{variant}.Next() | 1;
    const int64_t later = static_cast<int64_t>(variant % 1'000'000) * 1'000'000'000;
    for (Trace& trace : out) {
      for (Span& span : trace) {
        span.trace_id *= factor;
        span.span_id *= factor;
        span.parent_id *= factor;
        span.start += later;
      }
    }
  }
  return out;
}

std::string EncodeV04(const std::vector<Trace>& traces, V04Style style) {
  MsgpackWriter w;
  if (style == V04Style::kDdTraceJs) {
    w.Array32(static_cast<uint32_t>(traces.size()));
  } else {
    w.Array(static_cast<uint32_t>(traces.size()));
  }
  for (const Trace& trace : traces) WriteSpans(w, trace, style);
  return w.Take();
}

std::string EncodeV05(const std::vector<Trace>& traces) {
  std::vector<std::string_view> table{""};
  std::unordered_map<std::string_view, uint32_t> index{{"", 0}};
  auto ref = [&](std::string_view s) {
    auto [it, inserted] = index.emplace(s, static_cast<uint32_t>(table.size()));
    if (inserted) table.push_back(s);
    return it->second;
  };
  MsgpackWriter body;
  body.Array(static_cast<uint32_t>(traces.size()));
  for (const Trace& trace : traces) {
    body.Array(static_cast<uint32_t>(trace.size()));
    for (const Span& s : trace) {
      body.Array(12);
      body.Uint(ref(s.service)).Uint(ref(s.name)).Uint(ref(s.resource));
      body.Uint(s.trace_id).Uint(s.span_id).Uint(s.parent_id).Int(s.start).Int(s.duration).Int(s.error);
      body.Map(static_cast<uint32_t>(s.meta.size()));
      for (const auto& [k, v] : s.meta) body.Uint(ref(k)).Uint(ref(v));
      body.Map(static_cast<uint32_t>(s.metrics.size()));
      for (const auto& [k, v] : s.metrics) {
        body.Uint(ref(k));
        WriteMetric(body, v, V04Style::kCompact);
      }
      body.Uint(ref(s.type));
    }
  }
  MsgpackWriter w;
  w.Array(2).Array(static_cast<uint32_t>(table.size()));
  for (std::string_view s : table) w.Str(s);
  w.Raw(body.data());
  return w.Take();
}

std::string EncodeV07(const TracerPayload& p) {
  MsgpackWriter w;
  w.Map(10);
  w.Str("container_id").Str(p.container_id);
  w.Str("language_name").Str(p.language_name);
  w.Str("language_version").Str(p.language_version);
  w.Str("tracer_version").Str(p.tracer_version);
  w.Str("runtime_id").Str(p.runtime_id);
  w.Str("chunks").Array(static_cast<uint32_t>(p.chunks.size()));
  for (const TraceChunk& c : p.chunks) {
    w.Map(5);
    w.Str("priority").Int(c.priority);
    w.Str("origin").Str(c.origin);
    w.Str("spans");
    WriteSpans(w, c.spans, V04Style::kCompact);
    w.Str("tags");
    WriteStringMap(w, c.tags);
    w.Str("dropped_trace").Bool(c.dropped_trace);
  }
  w.Str("tags");
  WriteStringMap(w, p.tags);
  w.Str("env").Str(p.env);
  w.Str("hostname").Str(p.hostname);
  w.Str("app_version").Str(p.app_version);
  return w.Take();
}

std::string EncodeJson(const std::vector<Trace>& traces) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartArray();
  for (const Trace& trace : traces) {
    w.StartArray();
    for (const Span& s : trace) JsonSpan(w, s);
    w.EndArray();
  }
  w.EndArray();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string BuildRealisticV04Payload(int traces, int spans_per_trace, uint64_t variant) {
  return EncodeV04(BuildRealisticTraces(traces, spans_per_trace, variant), V04Style::kDdTraceJs);
}

}  // namespace dogwatch::trace::testdata
