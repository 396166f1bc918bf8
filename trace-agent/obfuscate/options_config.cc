#include "trace-agent/obfuscate/options_config.h"

#include <algorithm>
#include <string>
#include <string_view>

namespace dogwatch::trace {
namespace {

// Reads `key` when it is declared with the expected type; otherwise leaves `out` at its default.
void ReadBool(const config::Config& config, std::string_view key, bool* out) {
  const config::Option* option = config.table().Find(key);
  if (option != nullptr && option->type == config::Type::kBool) *out = config.GetBool(key);
}

void ReadString(const config::Config& config, std::string_view key, std::string* out) {
  const config::Option* option = config.table().Find(key);
  if (option != nullptr && option->type == config::Type::kString) *out = config.GetString(key);
}

void ReadList(const config::Config& config, std::string_view key, std::vector<std::string>* out) {
  const config::Option* option = config.table().Find(key);
  if (option != nullptr && option->type == config::Type::kStringList) *out = config.GetStringList(key);
}

void ReadSize(const config::Config& config, std::string_view key, size_t* out) {
  const config::Option* option = config.table().Find(key);
  if (option != nullptr && option->type == config::Type::kInt) {
    *out = static_cast<size_t>(std::max<int64_t>(0, config.GetInt(key)));
  }
}

bool HasFeature(const config::Config& config, std::string_view feature) {
  std::vector<std::string> features;
  ReadList(config, "apm_config.features", &features);
  return std::find(features.begin(), features.end(), feature) != features.end();
}

void ReadJson(const config::Config& config, std::string_view name, JsonObfuscationOptions* out) {
  const std::string prefix = std::string("apm_config.obfuscation.") + std::string(name) + ".";
  ReadBool(config, prefix + "enabled", &out->enabled);
  ReadList(config, prefix + "keep_values", &out->keep_values);
  ReadList(config, prefix + "obfuscate_sql_values", &out->obfuscate_sql_values);
}

void ReadRedis(const config::Config& config, std::string_view name, RedisObfuscationOptions* out) {
  const std::string prefix = std::string("apm_config.obfuscation.") + std::string(name) + ".";
  ReadBool(config, prefix + "enabled", &out->enabled);
  ReadBool(config, prefix + "remove_all_args", &out->remove_all_args);
}

}  // namespace

ObfuscationOptions ObfuscationOptionsFromConfig(const config::Config& config) {
  ObfuscationOptions o;
  SqlObfuscationOptions& sql = o.sql;
  ReadString(config, "apm_config.obfuscation.sql.dbms", &sql.dbms);
  ReadBool(config, "apm_config.obfuscation.sql.table_names", &sql.table_names);
  ReadBool(config, "apm_config.obfuscation.sql.replace_digits", &sql.replace_digits);
  ReadBool(config, "apm_config.obfuscation.sql.keep_sql_alias", &sql.keep_sql_alias);
  ReadBool(config, "apm_config.obfuscation.sql.dollar_quoted_func", &sql.dollar_quoted_func);
  // The Datadog Agent switches these through apm_config.features (DD_APM_FEATURES).
  sql.table_names = sql.table_names || HasFeature(config, "table_names");
  sql.replace_digits = sql.replace_digits || HasFeature(config, "quantize_sql_tables") ||
                       HasFeature(config, "replace_sql_digits");
  sql.keep_sql_alias = sql.keep_sql_alias || HasFeature(config, "keep_sql_alias");
  sql.dollar_quoted_func = sql.dollar_quoted_func || HasFeature(config, "dollar_quoted_func");
  ReadString(config, "apm_config.sql_obfuscation_mode", &sql.obfuscation_mode);

  ReadJson(config, "mongodb", &o.mongodb);
  ReadJson(config, "elasticsearch", &o.elasticsearch);
  ReadJson(config, "opensearch", &o.opensearch);
  ReadBool(config, "apm_config.obfuscation.http.remove_query_string", &o.http.remove_query_string);
  ReadBool(config, "apm_config.obfuscation.http.remove_paths_with_digits", &o.http.remove_paths_with_digits);
  ReadRedis(config, "redis", &o.redis);
  ReadRedis(config, "valkey", &o.valkey);
  ReadBool(config, "apm_config.obfuscation.memcached.enabled", &o.memcached.enabled);
  ReadBool(config, "apm_config.obfuscation.memcached.keep_command", &o.memcached.keep_command);
  ReadBool(config, "apm_config.obfuscation.credit_cards.enabled", &o.credit_cards.enabled);
  ReadBool(config, "apm_config.obfuscation.credit_cards.luhn", &o.credit_cards.luhn);
  ReadList(config, "apm_config.obfuscation.credit_cards.keep_values", &o.credit_cards.keep_values);
  ReadBool(config, "apm_config.obfuscation.remove_stack_traces", &o.remove_stack_traces);
  ReadBool(config, "apm_config.obfuscation.cache.enabled", &o.cache.enabled);
  ReadSize(config, "apm_config.obfuscation.cache.max_size", &o.cache.max_bytes);
  ReadSize(config, "apm_config.obfuscation.cache.max_entries", &o.cache.max_entries);
  return o;
}

NormalizeOptions NormalizeOptionsFromConfig(const config::Config& config) {
  NormalizeOptions o;
  o.component_to_name = HasFeature(config, "component2name");
  if (HasFeature(config, "big_resource")) o.max_resource_len = kMaxResourceLenBig;
  return o;
}

}  // namespace dogwatch::trace
