#pragma once
// Span obfuscation, following the Datadog Agent (pkg/obfuscate, pkg/trace/agent/obfuscate.go): database
// queries, cache commands, URLs and JSON bodies lose their literal values before traces leave the host,
// and resources are quantized so that the same statement with different values aggregates into one
// stats key. Configured from apm_config.obfuscation.* (see options_config.h).
//
// Thread safety: an Obfuscator is immutable after construction except for its query cache (locked) and
// counters (atomic); one instance is shared by all trace-processing threads.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "trace-agent/model/span.h"

namespace dogwatch::trace {

class QueryCache;
class JsonObfuscator;

// Replaces the resource (and sql.query) of a SQL span the tokenizer cannot handle, so raw literals
// never leak.
inline constexpr std::string_view kNonParsableSql = "Non-parsable SQL query";

struct SqlObfuscationOptions {
  // Database dialect: "postgresql" (JSON operators, '@' is an operator) and "mssql" (#temp tables,
  // [bracketed] identifiers, $action) change tokenization; anything else is generic.
  std::string dbms;
  bool table_names = false;         // collect referenced tables into meta sql.tables
  bool collect_commands = false;    // metadata only (SqlMetadata::commands)
  bool collect_comments = false;    // metadata only (SqlMetadata::comments)
  bool replace_digits = false;      // digits in table names and identifiers become '?'
  bool keep_sql_alias = false;      // keep "AS alias" instead of dropping it
  bool dollar_quoted_func = false;  // obfuscate the body of $func$...$func$ instead of replacing it
  // apm_config.sql_obfuscation_mode: "" (the legacy tokenizer, implemented here) or the go-sqllexer
  // modes "obfuscate_only"/"obfuscate_and_normalize", which dogwatch does not implement: they fall back
  // to the legacy obfuscator (counted in ObfuscatorStats::sql_mode_fallbacks).
  std::string obfuscation_mode;
};

struct JsonObfuscationOptions {
  bool enabled = true;
  std::vector<std::string> keep_values;           // keys whose values are kept verbatim
  std::vector<std::string> obfuscate_sql_values;  // keys whose string values go through SQL obfuscation
};

struct HttpObfuscationOptions {
  bool remove_query_string = false;
  bool remove_paths_with_digits = false;
};

struct RedisObfuscationOptions {
  bool enabled = true;
  bool remove_all_args = false;
};

struct MemcachedObfuscationOptions {
  bool enabled = true;
  bool keep_command = false;  // false: memcached.command is removed entirely
};

struct CreditCardObfuscationOptions {
  bool enabled = true;
  bool luhn = false;                     // also require a valid Luhn checksum (fewer false positives)
  std::vector<std::string> keep_values;  // meta keys never scanned
};

struct QueryCacheOptions {
  bool enabled = true;
  size_t max_bytes = 5'000'000;  // apm_config.obfuscation.cache.max_size
  size_t max_entries = 100'000;
};

struct ObfuscationOptions {
  SqlObfuscationOptions sql;
  JsonObfuscationOptions mongodb;
  JsonObfuscationOptions elasticsearch;
  JsonObfuscationOptions opensearch;
  HttpObfuscationOptions http;
  RedisObfuscationOptions redis;
  RedisObfuscationOptions valkey;
  MemcachedObfuscationOptions memcached;
  CreditCardObfuscationOptions credit_cards;
  bool remove_stack_traces = false;  // meta error.stack becomes "?"
  QueryCacheOptions cache;
};

struct SqlMetadata {
  std::string tables_csv;  // with table_names: tables in order of appearance, deduplicated
  std::vector<std::string> commands;
  std::vector<std::string> comments;
  size_t size = 0;  // bytes of collected metadata (cache accounting)
};

struct ObfuscatedQuery {
  std::string query;
  SqlMetadata metadata;
};

struct ObfuscatorStats {
  uint64_t sql_queries = 0;  // ObfuscateSql calls
  uint64_t sql_errors = 0;   // queries the tokenizer rejected (resource became kNonParsableSql)
  uint64_t sql_mode_fallbacks = 0;
  uint64_t cache_hits = 0;
  uint64_t cache_misses = 0;
  uint64_t cache_evictions = 0;  // entries shed by the entry or byte bound
  uint64_t cache_entries = 0;
  uint64_t cache_bytes = 0;
  uint64_t credit_cards = 0;    // meta values replaced
  uint64_t json_truncated = 0;  // JSON bodies that were cut short or malformed ("..." appended)
};

class Obfuscator {
 public:
  explicit Obfuscator(ObfuscationOptions options = {});
  ~Obfuscator();
  Obfuscator(const Obfuscator&) = delete;
  Obfuscator& operator=(const Obfuscator&) = delete;

  const ObfuscationOptions& options() const { return options_; }

  // Obfuscates one span in place according to its type:
  //   sql, cassandra     -> resource obfuscated (kNonParsableSql when the tokenizer fails); meta
  //                         sql.query set to the result, db.statement/db.query.text obfuscated when
  //                         present; sql.tables with table_names
  //   redis, valkey      -> resource quantized to command names; meta redis.raw_command /
  //                         valkey.raw_command arguments obfuscated
  //   memcached          -> meta memcached.command
  //   http, web          -> meta http.url
  //   mongodb            -> meta mongodb.query (JSON)
  //   elasticsearch, opensearch -> meta elasticsearch.body / opensearch.body (JSON)
  // and, for every span, credit-card-like meta values and (remove_stack_traces) error.stack.
  // With `keep_alive`, SQL results are not copied into the span: it borrows them from the shared
  // (cached) result, and a reference to that result goes into `keep_alive`, which the caller keeps
  // for as long as the span (TracerPayload::keep_alive).
  void ObfuscateSpan(Span& span, KeepAlive* keep_alive = nullptr);

  // Stats groups computed by tracers (client stats): the same resource quantization as spans get, so
  // stats keys agree.
  std::string ObfuscateStatsResource(std::string_view type, std::string_view resource);

  // SQL obfuscation with the configured options, cached. Errors are the tokenizer's ("at position N:
  // ...") or "result is empty".
  absl::StatusOr<std::shared_ptr<const ObfuscatedQuery>> ObfuscateSql(std::string_view query);

  std::string QuantizeRedis(std::string_view query) const;
  std::string ObfuscateRedis(std::string_view command) const;
  std::string RemoveAllRedisArgs(std::string_view command) const;
  std::string ObfuscateMemcached(std::string_view command) const;  // "" when keep_command is off
  std::string ObfuscateUrl(std::string_view url) const;
  std::string ObfuscateMongoDb(std::string_view json);
  std::string ObfuscateElasticsearch(std::string_view json);
  std::string ObfuscateOpenSearch(std::string_view json);
  bool ShouldScanForCreditCard(std::string_view meta_key) const;
  bool IsCreditCardNumber(std::string_view value) const;

  ObfuscatorStats stats() const;

 private:
  void ObfuscateSqlSpan(Span& span, KeepAlive* keep_alive);
  std::string ObfuscateJson(const JsonObfuscator* obfuscator, std::string_view json);

  ObfuscationOptions options_;
  std::unique_ptr<QueryCache> cache_;
  std::unique_ptr<JsonObfuscator> mongodb_;
  std::unique_ptr<JsonObfuscator> elasticsearch_;
  std::unique_ptr<JsonObfuscator> opensearch_;
  // Whether backslashes in SQL strings are literal (standard SQL) or escapes (MySQL). Learned from
  // traffic: when a query only tokenizes with the other setting, the setting flips for later queries.
  std::atomic<bool> sql_literal_escapes_{false};
  std::atomic<uint64_t> sql_queries_{0};
  std::atomic<uint64_t> sql_errors_{0};
  std::atomic<uint64_t> sql_mode_fallbacks_{0};
  std::atomic<uint64_t> credit_cards_{0};
  std::atomic<uint64_t> json_truncated_{0};
};

}  // namespace dogwatch::trace
