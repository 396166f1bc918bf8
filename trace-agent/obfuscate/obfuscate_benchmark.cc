// Per-query SQL obfuscation (uncached and cached), the other obfuscators, and per-span normalization.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "trace-agent/obfuscate/internal.h"
#include "trace-agent/obfuscate/normalize.h"
#include "trace-agent/obfuscate/obfuscate.h"

namespace dogwatch::trace {
namespace {

struct Query {
  const char* name;
  std::string sql;
};

const std::vector<Query>& Queries() {
  static const std::vector<Query> queries = {
      {"point_select", "SELECT id, email, name FROM users WHERE id = 42 LIMIT 1"},
      {"orm_select",
       R"(SELECT "webcore_page"."id", "webcore_page"."title", "webcore_page"."path" FROM "webcore_page" )"
       R"(INNER JOIN "webcore_site" ON ("webcore_page"."site_id" = "webcore_site"."id") WHERE )"
       R"(("webcore_page"."slug" = 'getting-started' AND "webcore_site"."domain" = 'example.com') )"
       R"(ORDER BY "webcore_page"."path" ASC LIMIT 21)"},
      {"insert_multi",
       "INSERT INTO delayed_jobs (created_at, failed_at, handler) VALUES (0, '2016-12-04 17:09:59', NULL), "
       "(0, "
       "'2016-12-04 17:09:59', NULL), (0, '2016-12-04 17:09:59', NULL), (0, '2016-12-04 17:09:59', NULL)"},
      {"update_in_list",
       "UPDATE orders SET status = 'shipped', updated_at = '2024-01-02 03:04:05' WHERE id IN (101, 102, 103, "
       "104, "
       "105, 106, 107, 108) AND customer_id = 77 /* controller:orders,action:ship */"},
      {"complex_cte",
       "WITH sales AS (SELECT sf.* FROM gosalesdw.sls_order_method_dim AS md, gosalesdw.sls_product_dim AS "
       "pd, "
       "gosalesdw.sls_sales_fact AS sf WHERE pd.product_key = sf.product_key AND pd.product_number > 10000 "
       "AND "
       "md.order_method_code > 5), inventory AS (SELECT if.* FROM gosalesdw.go_branch_dim AS bd, "
       "gosalesdw.dist_inventory_fact AS if WHERE if.branch_key = bd.branch_key AND bd.branch_code > 20) "
       "SELECT "
       "sales.product_key AS PROD_KEY, SUM(CAST (inventory.quantity_shipped AS BIGINT)) AS INV_SHIPPED, "
       "RANK() "
       "OVER ( ORDER BY SUM(CAST (sales.quantity AS BIGINT)) DESC) AS PROD_RANK FROM sales, inventory WHERE "
       "sales.product_key = inventory.product_key GROUP BY sales.product_key"},
  };
  return queries;
}

// The tokenizer and filters alone (what a cache miss costs).
void BM_SqlUncached(benchmark::State& state) {
  const Query& q = Queries()[static_cast<size_t>(state.range(0))];
  state.SetLabel(q.name);
  SqlObfuscationOptions options;
  for (auto _ : state) {
    bool seen_escape = false;
    auto result = obfuscate_internal::ObfuscateSqlOnce(q.sql, options, false, &seen_escape);
    benchmark::DoNotOptimize(result);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * q.sql.size()));
}
BENCHMARK(BM_SqlUncached)->DenseRange(0, 4);

// Through the Obfuscator with the query already cached (the steady state for repeated statements).
void BM_SqlCached(benchmark::State& state) {
  const Query& q = Queries()[static_cast<size_t>(state.range(0))];
  state.SetLabel(q.name);
  Obfuscator obfuscator;
  (void)obfuscator.ObfuscateSql(q.sql);
  for (auto _ : state) {
    auto result = obfuscator.ObfuscateSql(q.sql);
    benchmark::DoNotOptimize(result);
  }
}
BENCHMARK(BM_SqlCached)->DenseRange(0, 4);

// Spans are modified in place, so each measured batch works on fresh copies made outside the timing;
// pausing the timer per span would cost more than the work measured. items_per_second is spans/s.
constexpr size_t kBatch = 256;

template <typename Fn>
void RunOnCopies(benchmark::State& state, const Span& base, Fn fn) {
  std::vector<Span> spans;
  for (auto _ : state) {
    state.PauseTiming();
    spans.assign(kBatch, base);
    state.ResumeTiming();
    for (Span& span : spans) fn(span);
    benchmark::DoNotOptimize(spans.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
}

// A full SQL span (resource, sql.query, credit card scan of the meta); the query is cached.
void BM_ObfuscateSqlSpan(benchmark::State& state) {
  Obfuscator obfuscator;
  Span base;
  base.type = "sql";
  base.resource = Queries()[1].sql;
  base.meta = {{"db.type", "postgresql"}, {"db.name", "app"}, {"out.host", "db-1"}, {"db.user", "web"}};
  RunOnCopies(state, base, [&obfuscator](Span& span) { obfuscator.ObfuscateSpan(span); });
}
BENCHMARK(BM_ObfuscateSqlSpan);

void BM_Redis(benchmark::State& state) {
  std::string cmd;
  for (int i = 0; i < 5; ++i) cmd += "GEOADD key longitude latitude member longitude latitude member\n";
  for (auto _ : state) benchmark::DoNotOptimize(obfuscate_internal::ObfuscateRedisString(cmd));
}
BENCHMARK(BM_Redis);

void BM_Json(benchmark::State& state) {
  const std::string body =
      R"({"query":{"bool":{"must":[{"match":{"title":"smith"}}],"filter":[{"exists":{"field":"title"}}]}},)"
      R"("aggs":{"my_agg":{"terms":{"field":"user","size":10}}},"size":20,"from":100,"_source":["title","id"]})";
  JsonObfuscator obfuscator(JsonObfuscationOptions{}, nullptr);
  for (auto _ : state) {
    bool truncated = false;
    benchmark::DoNotOptimize(obfuscator.Obfuscate(body, &truncated));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_Json);

void BM_Url(benchmark::State& state) {
  HttpObfuscationOptions http{.remove_query_string = true, .remove_paths_with_digits = true};
  const std::string url = "https://api.example.com/v2/users/12345/orders/678?include=items&token=secret";
  for (auto _ : state) benchmark::DoNotOptimize(obfuscate_internal::ObfuscateUrlString(url, http));
}
BENCHMARK(BM_Url);

// The default settings (only userinfo removed): a canonical URL (0) is recognized in one pass, one
// with userinfo (1) is parsed and printed back.
const char* DefaultsUrl(int64_t which) {
  return which == 0 ? "https://api.example.com/v2/users/12345/orders/678?include=items&token=secret"
                    : "https://user:pw@api.example.com/v2/users/12345/orders/678?include=items&token=secret";
}

void BM_UrlDefaults(benchmark::State& state) {
  const std::string url = DefaultsUrl(state.range(0));
  const HttpObfuscationOptions http;
  for (auto _ : state) benchmark::DoNotOptimize(obfuscate_internal::ObfuscateUrlString(url, http));
}
BENCHMARK(BM_UrlDefaults)->DenseRange(0, 1);

// The same through the span path (lookup of http.url, shortcut, replacement of a changed value).
void BM_ObfuscateUrlSpan(benchmark::State& state) {
  Obfuscator obfuscator;
  Span base;
  base.type = "web";
  base.meta = {
      {"http.method", "GET"}, {"http.status_code", "200"}, {"http.url", DefaultsUrl(state.range(0))}};
  RunOnCopies(state, base, [&obfuscator](Span& span) { obfuscator.ObfuscateSpan(span); });
}
BENCHMARK(BM_ObfuscateUrlSpan)->DenseRange(0, 1);

Span TypicalSpan() {
  Span s;
  s.service = "web-frontend";
  s.name = "http.request";
  s.resource = "GET /api/v2/users/:id";
  s.type = "web";
  s.trace_id = 1234567890123;
  s.span_id = 987654321;
  s.parent_id = 12345;
  s.start = 1'700'000'000'000'000'000;
  s.duration = 2'500'000;
  s.meta = {{"env", "prod"},
            {"version", "1.2.3"},
            {"http.method", "GET"},
            {"http.status_code", "200"},
            {"http.url", "https://example.com/api/v2/users/42"},
            {"component", "net/http"},
            {"span.kind", "server"},
            {"language", "go"}};
  s.metrics = {{"_sampling_priority_v1", 1}, {"_dd.measured", 1}};
  return s;
}

// Already-valid span: the common case, where every check takes its fast path.
void BM_NormalizeSpan(benchmark::State& state) {
  const Span base = TypicalSpan();
  NormalizeOptions options;
  options.now_unix_nanos = 1'700'000'000'000'000'000;
  RunOnCopies(state, base,
              [&options](Span& span) { benchmark::DoNotOptimize(NormalizeSpan(span, options, nullptr)); });
}
BENCHMARK(BM_NormalizeSpan);

// The same, with the spans hot in cache: normalizing a valid span changes nothing, so one batch is
// normalized over and over. Isolates the checks themselves from the first touch of fresh copies, which
// dominates (and adds noise to) BM_NormalizeSpan.
void BM_NormalizeSpanHot(benchmark::State& state) {
  std::vector<Span> spans(kBatch, TypicalSpan());
  NormalizeOptions options;
  options.now_unix_nanos = 1'700'000'000'000'000'000;
  for (auto _ : state) {
    for (Span& span : spans) benchmark::DoNotOptimize(NormalizeSpan(span, options, nullptr));
  }
  if (spans.front().meta != TypicalSpan().meta) state.SkipWithError("a valid span was changed");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
}
BENCHMARK(BM_NormalizeSpanHot);

// A span that needs every repair (service, name, env, status code).
void BM_NormalizeSpanDirty(benchmark::State& state) {
  Span base = TypicalSpan();
  base.service = "Web Frontend (EU)";
  base.name = "HTTP Request!";
  base.meta[0].second = "Production Env";
  base.meta[3].second = "999";
  NormalizeOptions options;
  options.now_unix_nanos = 1'700'000'000'000'000'000;
  RunOnCopies(state, base,
              [&options](Span& span) { benchmark::DoNotOptimize(NormalizeSpan(span, options, nullptr)); });
}
BENCHMARK(BM_NormalizeSpanDirty);

// The receiver's per-chunk path on already-valid spans: NormalizeChunk, TruncateSpan on every span
// (after obfuscation in the pipeline), then MarkTopLevel. Ten spans of one service, as most chunks
// carry, with a root and parent links inside the chunk.
void BM_NormalizeSpanChunk(benchmark::State& state) {
  constexpr size_t kSpansPerChunk = 10;
  TraceChunk base;
  for (size_t i = 0; i < kSpansPerChunk; ++i) {
    Span span = TypicalSpan();
    span.span_id = 1000 + i;
    span.parent_id = i == 0 ? 0 : 1000 + i - 1;
    base.spans.push_back(std::move(span));
  }
  NormalizeOptions options;
  options.now_unix_nanos = 1'700'000'000'000'000'000;
  std::vector<TraceChunk> chunks;
  for (auto _ : state) {
    state.PauseTiming();
    chunks.assign(kBatch / kSpansPerChunk, base);
    state.ResumeTiming();
    for (TraceChunk& chunk : chunks) {
      size_t root = 0;
      benchmark::DoNotOptimize(NormalizeChunk(chunk, options, nullptr, &root));
      for (Span& span : chunk.spans) TruncateSpan(span, options, nullptr);
      MarkTopLevel(chunk.spans, /*client_computed_top_level=*/false);
    }
    benchmark::DoNotOptimize(chunks.data());
  }
  state.SetItemsProcessed(
      static_cast<int64_t>(state.iterations() * (kBatch / kSpansPerChunk) * kSpansPerChunk));
}
BENCHMARK(BM_NormalizeSpanChunk);

}  // namespace
}  // namespace dogwatch::trace

BENCHMARK_MAIN();
