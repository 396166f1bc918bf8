// SQL obfuscation on arbitrary bytes, with every option combination the first byte selects. The
// tokenizer must never crash, loop or read out of bounds, and a successful result must not be empty.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "trace-agent/obfuscate/internal.h"
#include "trace-agent/obfuscate/obfuscate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dogwatch::trace;
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  const std::string_view query(reinterpret_cast<const char*>(data + 1), size - 1);

  SqlObfuscationOptions sql;
  static constexpr const char* kDbms[] = {"", "postgresql", "mssql", "mysql"};
  sql.dbms = kDbms[flags & 3];
  sql.table_names = flags & 4;
  sql.replace_digits = flags & 8;
  sql.keep_sql_alias = flags & 16;
  sql.dollar_quoted_func = flags & 32;
  sql.collect_commands = sql.collect_comments = flags & 64;
  bool seen_escape = false;
  auto result = obfuscate_internal::ObfuscateSqlOnce(query, sql, (flags & 128) != 0, &seen_escape);
  if (result.ok() && result->query.empty()) __builtin_trap();

  // The full path: cache, escape retry and span dispatch.
  ObfuscationOptions options;
  options.sql = sql;
  options.cache.max_entries = 4;
  Obfuscator obfuscator(options);
  Span span;
  span.type = "sql";
  // Borrowed from the input, as decoded spans borrow from the request body.
  span.resource = SpanString::Borrow(query);
  Set(span.meta, "db.statement", SpanString::Borrow(query.substr(0, query.size() / 2)));
  obfuscator.ObfuscateSpan(span);
  (void)obfuscator.ObfuscateStatsResource("sql", query);
  return 0;
}
