#pragma once
// Building blocks of the Obfuscator (one per span type), separated so tests, fuzzers and benchmarks can
// reach them directly. Not part of the public API: use obfuscate.h.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "trace-agent/obfuscate/obfuscate.h"

namespace dogwatch::trace {

namespace obfuscate_internal {

// One SQL obfuscation pass, uncached. `seen_escape` reports whether a backslash appeared inside a string
// (the caller then retries with the other escape convention when this pass failed).
absl::StatusOr<ObfuscatedQuery> ObfuscateSqlOnce(std::string_view query, const SqlObfuscationOptions& options,
                                                 bool literal_escapes, bool* seen_escape);

// Redis: resource quantization (command names only, at most 3 then "..."), per-command argument
// obfuscation, and the remove_all_args variant.
std::string QuantizeRedisString(std::string_view query);
std::string ObfuscateRedisString(std::string_view command);
std::string RemoveAllRedisArgs(std::string_view command);

// Memcached: the command line only (storage payloads follow the first "\r\n"); "" without keep_command.
std::string ObfuscateMemcachedString(std::string_view command, bool keep_command);

// URLs: userinfo always removed; query string and/or path segments containing digits replaced by '?'.
// With an option on, a URL that does not parse becomes "?"; with none, it is returned unchanged.
std::string ObfuscateUrlString(std::string_view url, const HttpObfuscationOptions& options);
// Whether the default URL obfuscation (only userinfo removed) returns `url` byte for byte, decided in
// one pass for the canonical URLs tracers send; false means "parse it" (the result may still be equal).
bool UrlKeptVerbatim(std::string_view url);
// ObfuscateUrlString without that shortcut (tests compare the two; callers that already ran
// UrlKeptVerbatim go here directly).
std::string ObfuscateUrlStringParsed(std::string_view url, const HttpObfuscationOptions& options);
// The default settings, where only the userinfo goes (and UrlKeptVerbatim applies).
inline bool KeepsAllButUserinfo(const HttpObfuscationOptions& options) {
  return !options.remove_query_string && !options.remove_paths_with_digits;
}

// Credit cards: 12 to 16 digits (spaces and dashes allowed) with a known issuer prefix, optionally a
// valid Luhn checksum.
bool IsCardNumber(std::string_view value, bool luhn);
// Keys that are never scanned: well-known non-PII tags and every key starting with '_'.
bool IsCreditCardAllowListed(std::string_view key);

}  // namespace obfuscate_internal

// Streaming JSON obfuscation (MongoDB queries, Elasticsearch/OpenSearch bodies): every value becomes "?"
// except under keep_values keys, whitespace outside strings is dropped, keys are kept. Input that is
// cut short or malformed is obfuscated up to the problem and "..." is appended, as the agent does
// (tracers truncate long bodies). Several concatenated documents (Elasticsearch bulk bodies) are handled.
class JsonObfuscator {
 public:
  using SqlTransform = std::function<std::string(std::string_view)>;
  // `sql_transform` obfuscates values under obfuscate_sql_values keys; may be empty.
  JsonObfuscator(const JsonObfuscationOptions& options, SqlTransform sql_transform);

  std::string Obfuscate(std::string_view json, bool* truncated) const;

 private:
  bool IsKeepKey(std::string_view key) const;
  bool IsTransformKey(std::string_view key) const;

  std::vector<std::string> keep_values_;
  std::vector<std::string> sql_values_;
  SqlTransform sql_transform_;
};

}  // namespace dogwatch::trace
