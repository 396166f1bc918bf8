#pragma once
// Typed configuration with the Datadog precedence: defaults < YAML file < DD_* environment.
//
// Every key is declared once in an option table (type, default, env aliases, doc, validation);
// loading, validation, `agent config` output, the IPC snapshot and docs/configuration.md come
// from that table, so a key cannot be read with one type and documented with another.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dogwatch::core {
class ConfigSnapshot;
}

namespace dogwatch::config {

enum class Type { kBool, kInt, kDouble, kString, kStringList, kStringListMap };
std::string_view TypeName(Type type);

using StringList = std::vector<std::string>;
using StringListMap = std::map<std::string, StringList>;
using Value = std::variant<bool, int64_t, double, std::string, StringList, StringListMap>;

enum class Source { kDefault, kFile, kEnvironment, kCore };
std::string_view SourceName(Source source);

struct Option {
  std::string key;  // dotted path as in datadog.yaml, e.g. "apm_config.receiver_port"
  Type type;
  Value default_value;
  std::string doc;
  // Extra environment names beyond the canonical DD_<KEY> (dots → '_', upper-cased), in the
  // order they are looked up after the canonical name.
  std::vector<std::string> env_aliases;
  // API keys and secret-backend settings: never printed, never served over IPC.
  bool sensitive = false;
  // ENC[] handles are refused here (the secret backend's own settings).
  bool forbid_secret_handles = false;
  // For strings: accepted values, compared case-insensitively and stored lower-cased.
  std::vector<std::string> allowed_values;
  // For ints: inclusive bounds.
  std::optional<int64_t> min_int;
  std::optional<int64_t> max_int;
};

class OptionTable {
 public:
  explicit OptionTable(std::vector<Option> options);
  const Option* Find(std::string_view key) const;
  const std::vector<Option>& options() const { return options_; }
  // True when `prefix` is a parent section of some key (e.g. "apm_config").
  bool IsSection(std::string_view prefix) const;

 private:
  std::vector<Option> options_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, int, std::less<>> sections_;
};

// All keys dogwatch understands (common/config/options.cc).
const OptionTable& DefaultOptions();

// docs/configuration.md: every option with its type, default, environment names and doc.
std::string OptionsReferenceMarkdown(const OptionTable& table = DefaultOptions());

// The canonical environment variable name of a key: DD_ + upper-cased key with '.' → '_'.
std::string CanonicalEnvName(std::string_view key);

struct Entry {
  Value value;
  Source source = Source::kDefault;
  std::string origin;  // "file.yaml:12" or "DD_API_KEY": where the value came from, for messages
  // Set when the configured text was ENC[handle]; the resolved secret replaces `value`.
  std::optional<std::string> secret_handle;
};

struct LoadOptions {
  std::string file_path;  // empty: no file
  bool file_required = false;
  // The environment as NAME=VALUE strings (e.g. from `environ`); nullptr: none.
  const char* const* environment = nullptr;
};

// Where an ENC[handle] appears, so the secrets module can resolve it.
struct SecretReference {
  std::string key;
  std::string handle;
};

class Config {
 public:
  // Defaults only.
  explicit Config(const OptionTable& table = DefaultOptions());

  // defaults < file < environment, validated.
  static absl::StatusOr<Config> Load(const LoadOptions& options, const OptionTable& table = DefaultOptions());
  // A sub-agent's view: the core's snapshot, then the sub-agent's own DD_* environment on top.
  static absl::StatusOr<Config> FromSnapshot(const core::ConfigSnapshot& snapshot,
                                             const char* const* environment,
                                             const OptionTable& table = DefaultOptions());

  absl::Status MergeYaml(std::string_view yaml_text, std::string_view file_name);
  absl::Status MergeFile(const std::string& path, bool required);
  absl::Status MergeEnvironment(const char* const* environment);

  // Typed accessors. The key must be declared with that type: asking for an undeclared key or
  // the wrong type is a programming error and aborts (caught by every test that loads config).
  bool GetBool(std::string_view key) const;
  int64_t GetInt(std::string_view key) const;
  double GetDouble(std::string_view key) const;
  const std::string& GetString(std::string_view key) const;
  const StringList& GetStringList(std::string_view key) const;
  const StringListMap& GetStringListMap(std::string_view key) const;
  const Entry& GetEntry(std::string_view key) const;
  bool IsSet(std::string_view key) const;  // not from defaults

  // Test and CLI overrides; validated like any other source.
  absl::Status Set(std::string_view key, Value value, Source source, std::string origin);

  // ENC[...] handles found in string, list and map values (map keys are URLs, never secrets).
  std::vector<SecretReference> SecretReferences() const;
  // Replaces every ENC[handle] with its resolved value; `resolved` must hold every handle.
  absl::Status ApplySecrets(const std::map<std::string, std::string>& resolved);

  // The snapshot served over IPC: sensitive keys and resolved secrets are left out.
  void ToSnapshot(core::ConfigSnapshot* snapshot, uint64_t generation) const;
  // Human-readable effective config for `agent config`: sensitive values and secrets scrubbed.
  std::string ToScrubbedYaml() const;
  // Keys present in the YAML file that no option declares (reported as warnings, not errors:
  // datadog.yaml files carry many keys dogwatch does not implement).
  const std::vector<std::string>& unknown_keys() const { return unknown_keys_; }

  const OptionTable& table() const { return *table_; }

 private:
  absl::Status Validate(const Option& option, Value& value, std::string_view origin) const;
  const Entry& EntryFor(std::string_view key, Type expected) const;

  const OptionTable* table_;
  std::map<std::string, Entry, std::less<>> entries_;
  std::vector<std::string> unknown_keys_;
};

// The hostname payloads carry: `hostname` when set, else the system's (gethostname).
std::string ResolveHostname(const Config& config);

// Helpers shared with the YAML and env parsers (and their fuzz targets).
absl::StatusOr<bool> ParseBool(std::string_view text);
absl::StatusOr<int64_t> ParseInt(std::string_view text);
absl::StatusOr<double> ParseDouble(std::string_view text);
// "a b c" (space-separated) or a JSON array of strings.
absl::StatusOr<StringList> ParseEnvList(std::string_view text);
// A JSON object of string → string or list of strings.
absl::StatusOr<StringListMap> ParseEnvMap(std::string_view text);

// Bounds applied before anything is allocated from untrusted config input.
inline constexpr size_t kMaxConfigFileBytes = 4 * 1024 * 1024;
inline constexpr size_t kMaxEnvValueBytes = 256 * 1024;
inline constexpr size_t kMaxYamlDepth = 32;

}  // namespace dogwatch::config
