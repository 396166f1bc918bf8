// JSON obfuscation on arbitrary bytes, with keep_values and SQL-valued keys, plus the URL obfuscator.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "trace-agent/obfuscate/internal.h"
#include "trace-agent/obfuscate/obfuscate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dogwatch::trace;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  ObfuscationOptions options;
  options.mongodb.keep_values = {"keep", "a"};
  options.elasticsearch.obfuscate_sql_values = {"query", "sql"};
  options.cache.max_entries = 4;
  Obfuscator obfuscator(options);
  const std::string mongo = obfuscator.ObfuscateMongoDb(input);
  const std::string es = obfuscator.ObfuscateElasticsearch(input);
  // Obfuscated output never grows beyond the input plus the replacement markers.
  if (mongo.size() > 3 * input.size() + 3) __builtin_trap();
  (void)es;

  HttpObfuscationOptions http;
  (void)obfuscate_internal::ObfuscateUrlString(input, http);
  http.remove_query_string = http.remove_paths_with_digits = true;
  (void)obfuscate_internal::ObfuscateUrlString(input, http);
  (void)obfuscate_internal::IsCardNumber(input, true);
  return 0;
}
