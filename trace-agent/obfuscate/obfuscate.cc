#include "trace-agent/obfuscate/obfuscate.h"

#include <utility>

#include "trace-agent/obfuscate/internal.h"
#include "trace-agent/obfuscate/query_cache.h"

namespace dogwatch::trace {
namespace {

constexpr std::string_view kSqlQueryKey = "sql.query";
constexpr std::string_view kSqlTablesKey = "sql.tables";
// OpenTelemetry conventions carrying the raw statement (semconv 1.6.1 and 1.26.0).
constexpr std::string_view kDbStatementKey = "db.statement";
constexpr std::string_view kDbQueryTextKey = "db.query.text";
constexpr std::string_view kRedisRawCommandKey = "redis.raw_command";
constexpr std::string_view kValkeyRawCommandKey = "valkey.raw_command";
constexpr std::string_view kMemcachedCommandKey = "memcached.command";
constexpr std::string_view kHttpUrlKey = "http.url";
constexpr std::string_view kMongoDbQueryKey = "mongodb.query";
constexpr std::string_view kElasticsearchBodyKey = "elasticsearch.body";
constexpr std::string_view kOpenSearchBodyKey = "opensearch.body";
constexpr std::string_view kErrorStackKey = "error.stack";
// What a JSON value configured for SQL obfuscation becomes when it is not valid SQL (the agent's text).
constexpr std::string_view kJsonSqlFailure =
    "Datadog-agent failed to obfuscate SQL string. Enable agent debug logs for more info.";

bool Contains(const std::vector<std::string>& list, std::string_view value) {
  for (const std::string& item : list) {
    if (item == value) return true;
  }
  return false;
}

}  // namespace

Obfuscator::Obfuscator(ObfuscationOptions options) : options_(std::move(options)) {
  if (options_.cache.enabled && options_.cache.max_entries > 0 && options_.cache.max_bytes > 0) {
    cache_ = std::make_unique<QueryCache>(options_.cache.max_entries, options_.cache.max_bytes);
  }
  auto sql_transform = [this](std::string_view value) -> std::string {
    absl::StatusOr<std::shared_ptr<const ObfuscatedQuery>> result = ObfuscateSql(value);
    if (!result.ok()) return std::string(kJsonSqlFailure);
    return (*result)->query;
  };
  if (options_.mongodb.enabled) mongodb_ = std::make_unique<JsonObfuscator>(options_.mongodb, sql_transform);
  if (options_.elasticsearch.enabled) {
    elasticsearch_ = std::make_unique<JsonObfuscator>(options_.elasticsearch, sql_transform);
  }
  if (options_.opensearch.enabled) {
    opensearch_ = std::make_unique<JsonObfuscator>(options_.opensearch, sql_transform);
  }
}

Obfuscator::~Obfuscator() = default;

absl::StatusOr<std::shared_ptr<const ObfuscatedQuery>> Obfuscator::ObfuscateSql(std::string_view query) {
  sql_queries_.fetch_add(1, std::memory_order_relaxed);
  if (!options_.sql.obfuscation_mode.empty()) sql_mode_fallbacks_.fetch_add(1, std::memory_order_relaxed);
  if (cache_ != nullptr) {
    if (std::shared_ptr<const ObfuscatedQuery> hit = cache_->Get(query)) return hit;
  }
  const bool literal_escapes = sql_literal_escapes_.load(std::memory_order_relaxed);
  bool seen_escape = false;
  absl::StatusOr<ObfuscatedQuery> result =
      obfuscate_internal::ObfuscateSqlOnce(query, options_.sql, literal_escapes, &seen_escape);
  if (!result.ok() && seen_escape) {
    // The query had a backslash in a string: it may use the other escaping convention. If so, prefer
    // that convention from now on, since queries from the same application look alike.
    absl::StatusOr<ObfuscatedQuery> retry =
        obfuscate_internal::ObfuscateSqlOnce(query, options_.sql, !literal_escapes, nullptr);
    if (retry.ok()) {
      sql_literal_escapes_.store(!literal_escapes, std::memory_order_relaxed);
      result = std::move(retry);
    }
  }
  if (!result.ok()) {
    sql_errors_.fetch_add(1, std::memory_order_relaxed);
    return result.status();
  }
  auto value = std::make_shared<const ObfuscatedQuery>(std::move(*result));
  if (cache_ != nullptr) cache_->Put(query, value);
  return value;
}

void Obfuscator::ObfuscateSqlSpan(Span& span, KeepAlive* keep_alive) {
  // A string of an obfuscation result, as the span should hold it: borrowed (each result is pushed
  // into the caller's keep_alive once, right after it is obtained) or, without keep_alive, an owned copy.
  auto as_span = [keep_alive](std::string_view text) {
    return keep_alive != nullptr ? SpanString::Borrow(text) : SpanString(text);
  };
  // The raw statement may also sit in attributes. A copy equal to the resource takes the resource's
  // result; a different statement is obfuscated on its own; one that does not parse is replaced.
  auto obfuscate_attribute = [&](SpanString* value, std::string_view raw, const SpanString& obfuscated) {
    if (value == nullptr || value->empty()) return;
    if (!raw.empty() && *value == raw) {
      *value = obfuscated;  // a copy: borrowed stays borrowed, owned is copied
      return;
    }
    absl::StatusOr<std::shared_ptr<const ObfuscatedQuery>> result = ObfuscateSql(*value);
    if (!result.ok()) {
      *value = SpanString::Borrow(kNonParsableSql);  // a constant: lives forever
      return;
    }
    if (keep_alive != nullptr) keep_alive->push_back(*result);
    *value = as_span((*result)->query);
  };
  // The three statement attributes in one pass over meta (a Find each scanned it whole). The
  // pointers stay valid until meta grows, which happens only after their last use below.
  SpanString* sql_query = nullptr;
  SpanString* db_statement = nullptr;
  SpanString* db_query_text = nullptr;
  for (auto& [key, value] : span.meta) {
    if (SameKey(key, kSqlQueryKey)) {
      sql_query = &value;
    } else if (SameKey(key, kDbStatementKey)) {
      db_statement = &value;
    } else if (SameKey(key, kDbQueryTextKey)) {
      db_query_text = &value;
    }
  }

  if (span.resource.empty()) {
    for (SpanString* value : {sql_query, db_statement, db_query_text})
      obfuscate_attribute(value, {}, SpanString());
    return;
  }
  const SpanString raw = std::move(span.resource);
  absl::StatusOr<std::shared_ptr<const ObfuscatedQuery>> result = ObfuscateSql(raw);
  if (result.ok() && keep_alive != nullptr) keep_alive->push_back(*result);
  // Never keep the raw statement: a query we cannot tokenize may still hold literals.
  span.resource = result.ok() ? as_span((*result)->query) : SpanString::Borrow(kNonParsableSql);
  const SpanString& obfuscated = span.resource;

  // sql.query always carries the obfuscated statement (set when absent, as the agent did for years);
  // a different statement already there is obfuscated on its own, as the current agent does.
  if (sql_query != nullptr) {
    if (sql_query->empty()) {
      *sql_query = obfuscated;
    } else {
      obfuscate_attribute(sql_query, raw, obfuscated);
    }
  }
  obfuscate_attribute(db_statement, raw, obfuscated);
  obfuscate_attribute(db_query_text, raw, obfuscated);
  // Known absent (the pass above): appended without SetStaticKey's second scan; the key is a constant.
  if (sql_query == nullptr) span.meta.emplace_back(SpanString::Borrow(kSqlQueryKey), obfuscated);
  if (result.ok() && !(*result)->metadata.tables_csv.empty()) {
    SetStaticKey(span.meta, kSqlTablesKey, as_span((*result)->metadata.tables_csv));
  }
}

void Obfuscator::ObfuscateSpan(Span& span, KeepAlive* keep_alive) {
  if (options_.credit_cards.enabled) {
    for (auto& [key, value] : span.meta) {
      // The value test first: it rejects almost every value on its first bytes, where the key
      // test walks a ~35-entry allow-list for every tag. Both must hold either way.
      if (IsCreditCardNumber(value) && ShouldScanForCreditCard(key)) {
        value = SpanString::Borrow("?");  // a literal: lives forever
        credit_cards_.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }

  const std::string_view type = span.type;
  if (type == "sql" || type == "cassandra") {
    ObfuscateSqlSpan(span, keep_alive);
  } else if (type == "redis" || type == "valkey") {
    // Quantized whatever the obfuscation settings: the resource becomes a stats key.
    span.resource = QuantizeRedis(span.resource);
    const bool valkey = type == "valkey";
    const RedisObfuscationOptions& redis = valkey ? options_.valkey : options_.redis;
    SpanString* command = Find(span.meta, valkey ? kValkeyRawCommandKey : kRedisRawCommandKey);
    if (redis.enabled && command != nullptr && !command->empty()) {
      *command = redis.remove_all_args ? RemoveAllRedisArgs(*command) : ObfuscateRedis(*command);
    }
  } else if (type == "memcached") {
    SpanString* command = Find(span.meta, kMemcachedCommandKey);
    if (options_.memcached.enabled && command != nullptr && !command->empty()) {
      std::string obfuscated = ObfuscateMemcached(*command);
      if (obfuscated.empty()) {
        Erase(span.meta, kMemcachedCommandKey);  // keep_command off: the whole tag goes
      } else {
        *command = std::move(obfuscated);
      }
    }
  } else if (type == "web" || type == "http") {
    SpanString* url = Find(span.meta, kHttpUrlKey);
    // Usually unchanged (only userinfo goes by default): then the value keeps borrowing, and a
    // canonical URL is recognized without parsing or copying it. The shortcut ran here, so the
    // parser is called directly (ObfuscateUrl would scan the URL a second time).
    if (url != nullptr && !url->empty() &&
        !(obfuscate_internal::KeepsAllButUserinfo(options_.http) &&
          obfuscate_internal::UrlKeptVerbatim(*url))) {
      std::string obfuscated = obfuscate_internal::ObfuscateUrlStringParsed(*url, options_.http);
      if (obfuscated != url->view()) *url = SpanString(obfuscated);
    }
  } else if (type == "mongodb") {
    SpanString* query = Find(span.meta, kMongoDbQueryKey);
    if (mongodb_ != nullptr && query != nullptr && !query->empty())
      *query = ObfuscateJson(mongodb_.get(), *query);
  } else if (type == "elasticsearch" || type == "opensearch") {
    SpanString* body = Find(span.meta, kElasticsearchBodyKey);
    if (elasticsearch_ != nullptr && body != nullptr && !body->empty()) {
      *body = ObfuscateJson(elasticsearch_.get(), *body);
    }
    body = Find(span.meta, kOpenSearchBodyKey);
    if (opensearch_ != nullptr && body != nullptr && !body->empty()) {
      *body = ObfuscateJson(opensearch_.get(), *body);
    }
  }

  if (options_.remove_stack_traces) {
    // The agent implements this as a replace_tags rule: the whole value becomes "?".
    if (SpanString* stack = Find(span.meta, kErrorStackKey)) *stack = SpanString::Borrow("?");
  }
}

std::string Obfuscator::ObfuscateStatsResource(std::string_view type, std::string_view resource) {
  if (type == "sql" || type == "cassandra") {
    absl::StatusOr<std::shared_ptr<const ObfuscatedQuery>> result = ObfuscateSql(resource);
    return result.ok() ? (*result)->query : std::string(kNonParsableSql);
  }
  if (type == "redis" || type == "valkey") return QuantizeRedis(resource);
  return std::string(resource);
}

std::string Obfuscator::QuantizeRedis(std::string_view query) const {
  return obfuscate_internal::QuantizeRedisString(query);
}

std::string Obfuscator::ObfuscateRedis(std::string_view command) const {
  return obfuscate_internal::ObfuscateRedisString(command);
}

std::string Obfuscator::RemoveAllRedisArgs(std::string_view command) const {
  return obfuscate_internal::RemoveAllRedisArgs(command);
}

std::string Obfuscator::ObfuscateMemcached(std::string_view command) const {
  return obfuscate_internal::ObfuscateMemcachedString(command, options_.memcached.keep_command);
}

std::string Obfuscator::ObfuscateUrl(std::string_view url) const {
  return obfuscate_internal::ObfuscateUrlString(url, options_.http);
}

std::string Obfuscator::ObfuscateJson(const JsonObfuscator* obfuscator, std::string_view json) {
  if (obfuscator == nullptr) return std::string(json);
  bool truncated = false;
  std::string out = obfuscator->Obfuscate(json, &truncated);
  if (truncated) json_truncated_.fetch_add(1, std::memory_order_relaxed);
  return out;
}

std::string Obfuscator::ObfuscateMongoDb(std::string_view json) {
  return ObfuscateJson(mongodb_.get(), json);
}

std::string Obfuscator::ObfuscateElasticsearch(std::string_view json) {
  return ObfuscateJson(elasticsearch_.get(), json);
}

std::string Obfuscator::ObfuscateOpenSearch(std::string_view json) {
  return ObfuscateJson(opensearch_.get(), json);
}

bool Obfuscator::ShouldScanForCreditCard(std::string_view meta_key) const {
  return !obfuscate_internal::IsCreditCardAllowListed(meta_key) &&
         !Contains(options_.credit_cards.keep_values, meta_key);
}

bool Obfuscator::IsCreditCardNumber(std::string_view value) const {
  return obfuscate_internal::IsCardNumber(value, options_.credit_cards.luhn);
}

ObfuscatorStats Obfuscator::stats() const {
  ObfuscatorStats s;
  s.sql_queries = sql_queries_.load(std::memory_order_relaxed);
  s.sql_errors = sql_errors_.load(std::memory_order_relaxed);
  s.sql_mode_fallbacks = sql_mode_fallbacks_.load(std::memory_order_relaxed);
  s.credit_cards = credit_cards_.load(std::memory_order_relaxed);
  s.json_truncated = json_truncated_.load(std::memory_order_relaxed);
  if (cache_ != nullptr) {
    s.cache_hits = cache_->hits();
    s.cache_misses = cache_->misses();
    s.cache_evictions = cache_->evictions();
    s.cache_entries = cache_->entries();
    s.cache_bytes = cache_->bytes();
  }
  return s;
}

}  // namespace dogwatch::trace
