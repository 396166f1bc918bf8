#pragma once
// Obfuscation and normalization settings from the agent configuration (apm_config.*). Keys that are not
// declared in common/config/options.cc yet keep their defaults, so this works before and after the
// option table learns them.

#include "common/config/config.h"
#include "trace-agent/obfuscate/normalize.h"
#include "trace-agent/obfuscate/obfuscate.h"

namespace dogwatch::trace {

// apm_config.obfuscation.*, apm_config.sql_obfuscation_mode and the SQL-related entries of
// apm_config.features (table_names, quantize_sql_tables/replace_sql_digits, keep_sql_alias,
// dollar_quoted_func).
ObfuscationOptions ObfuscationOptionsFromConfig(const config::Config& config);

// apm_config.features: component2name, big_resource. The tracer language is per payload (set by the
// receiver from Datadog-Meta-Lang).
NormalizeOptions NormalizeOptionsFromConfig(const config::Config& config);

}  // namespace dogwatch::trace
