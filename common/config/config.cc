#include "common/config/config.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/status/status_macros.h"
#include "common/strings/strings.h"
#include "dogwatch/core.pb.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"
#include "yaml-cpp/yaml.h"

namespace dogwatch::config {
namespace {

using strings::Cat;
using strings::Strip;

// yaml-cpp shares aliased nodes, so a small file can expand to a huge walk ("billion laughs");
// bound the number of nodes we are willing to visit.
constexpr size_t kMaxYamlNodesVisited = 200000;
constexpr size_t kMaxListItems = 10000;

std::string Quote(std::string_view text) {
  constexpr size_t kMaxShown = 64;
  std::string shown(text.substr(0, kMaxShown));
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  return Cat("'", shown, text.size() > kMaxShown ? "...'" : "'");
}

using strings::Lower;

bool IsSecretHandleText(std::string_view text) {
  std::string_view t = Strip(text);
  return t.size() > 5 && (t).starts_with("ENC[") && (t).ends_with("]");
}

std::string SecretHandleOf(std::string_view text) {
  std::string_view t = Strip(text);
  return std::string(t.substr(4, t.size() - 5));
}

absl::Status TypeError(std::string_view origin, std::string_view key, Type expected, std::string_view got) {
  return absl::InvalidArgumentError(
      Cat(origin, ": key '", key, "': expected ", TypeName(expected), ", got ", got));
}

std::string DescribeYaml(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "nothing";
    default:
      return Quote(node.Scalar());
  }
}

std::string YamlOrigin(std::string_view file, const YAML::Node& node) {
  // yaml-cpp lines are 0-based; editors count from 1.
  return Cat(file, ":", node.Mark().line + 1);
}

absl::StatusOr<StringList> YamlToList(const YAML::Node& node) {
  StringList out;
  if (node.IsScalar()) return ParseEnvList(node.Scalar());
  if (!node.IsSequence()) return absl::InvalidArgumentError("not a list");
  if (node.size() > kMaxListItems) return absl::InvalidArgumentError("list has more than 10000 items");
  for (const auto& item : node) {
    if (!item.IsScalar()) return absl::InvalidArgumentError("list items must be strings");
    out.push_back(item.Scalar());
  }
  return out;
}

absl::StatusOr<Value> YamlToValue(const YAML::Node& node, const Option& option, std::string_view origin) {
  auto fail = [&](std::string_view detail = "") {
    std::string got = DescribeYaml(node);
    if (!detail.empty()) strings::AppendTo(&got, " (", detail, ")");
    return TypeError(origin, option.key, option.type, got);
  };
  switch (option.type) {
    case Type::kBool: {
      if (!node.IsScalar()) return fail();
      auto parsed = ParseBool(node.Scalar());
      if (!parsed.ok()) return fail();
      return Value(*parsed);
    }
    case Type::kInt: {
      if (!node.IsScalar()) return fail();
      auto parsed = ParseInt(node.Scalar());
      if (!parsed.ok()) return fail(std::string(parsed.status().message()));
      return Value(*parsed);
    }
    case Type::kDouble: {
      if (!node.IsScalar()) return fail();
      auto parsed = ParseDouble(node.Scalar());
      if (!parsed.ok()) return fail();
      return Value(*parsed);
    }
    case Type::kString:
      if (!node.IsScalar()) return fail();
      return Value(node.Scalar());
    case Type::kStringList: {
      auto list = YamlToList(node);
      if (!list.ok()) return fail(std::string(list.status().message()));
      return Value(*std::move(list));
    }
    case Type::kStringListMap: {
      if (!node.IsMap()) return fail();
      if (node.size() > kMaxListItems) return fail("more than 10000 entries");
      StringListMap out;
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) return fail("keys must be strings");
        auto list = YamlToList(kv.second);
        if (!list.ok()) return fail(Cat("entry '", kv.first.Scalar(), "': ", list.status().message()));
        out[kv.first.Scalar()] = *std::move(list);
      }
      return Value(std::move(out));
    }
  }
  return fail();
}

absl::StatusOr<Value> TextToValue(std::string_view text, const Option& option, std::string_view origin) {
  auto fail = [&](std::string_view detail = "") {
    std::string got = Quote(text);
    if (!detail.empty()) strings::AppendTo(&got, " (", detail, ")");
    return TypeError(origin, option.key, option.type, got);
  };
  switch (option.type) {
    case Type::kBool: {
      auto parsed = ParseBool(text);
      if (!parsed.ok()) return fail();
      return Value(*parsed);
    }
    case Type::kInt: {
      auto parsed = ParseInt(text);
      if (!parsed.ok()) return fail(std::string(parsed.status().message()));
      return Value(*parsed);
    }
    case Type::kDouble: {
      auto parsed = ParseDouble(text);
      if (!parsed.ok()) return fail();
      return Value(*parsed);
    }
    case Type::kString:
      return Value(std::string(text));
    case Type::kStringList: {
      auto parsed = ParseEnvList(text);
      if (!parsed.ok()) return fail(std::string(parsed.status().message()));
      return Value(*std::move(parsed));
    }
    case Type::kStringListMap: {
      auto parsed = ParseEnvMap(text);
      if (!parsed.ok()) return fail(std::string(parsed.status().message()));
      return Value(*std::move(parsed));
    }
  }
  return fail();
}

std::string ValueToText(const Value& value) {
  struct Visitor {
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(int64_t i) const { return Cat(i); }
    std::string operator()(double d) const { return Cat(d); }
    std::string operator()(const std::string& s) const { return s; }
    std::string operator()(const StringList& l) const { return strings::Join(l, " "); }
    std::string operator()(const StringListMap& m) const {
      std::string out;
      for (const auto& [k, v] : m)
        strings::AppendTo(&out, out.empty() ? "" : "; ", k, " -> ", strings::Join(v, " "));
      return out;
    }
  };
  return std::visit(Visitor{}, value);
}

}  // namespace

std::string_view TypeName(Type type) {
  switch (type) {
    case Type::kBool:
      return "boolean";
    case Type::kInt:
      return "integer";
    case Type::kDouble:
      return "number";
    case Type::kString:
      return "string";
    case Type::kStringList:
      return "list of strings";
    case Type::kStringListMap:
      return "mapping of string to list of strings";
  }
  return "?";
}

std::string_view SourceName(Source source) {
  switch (source) {
    case Source::kDefault:
      return "default";
    case Source::kFile:
      return "file";
    case Source::kEnvironment:
      return "environment";
    case Source::kCore:
      return "core";
  }
  return "?";
}

std::string CanonicalEnvName(std::string_view key) {
  std::string name = Cat("DD_", key);
  for (char& c : name) c = c == '.' ? '_' : static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  return name;
}

OptionTable::OptionTable(std::vector<Option> options) : options_(std::move(options)) {
  for (size_t i = 0; i < options_.size(); ++i) {
    const std::string& key = options_[i].key;
    index_.emplace(key, i);
    for (size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', dot + 1)) {
      sections_[key.substr(0, dot)]++;
    }
  }
}

const Option* OptionTable::Find(std::string_view key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &options_[it->second];
}

bool OptionTable::IsSection(std::string_view prefix) const {
  return sections_.find(prefix) != sections_.end();
}

absl::StatusOr<bool> ParseBool(std::string_view text) {
  std::string t = Lower(Strip(text));
  if (t == "true" || t == "1" || t == "yes" || t == "on" || t == "t" || t == "y") return true;
  if (t == "false" || t == "0" || t == "no" || t == "off" || t == "f" || t == "n") return false;
  return absl::InvalidArgumentError(Cat("not a boolean: ", Quote(text)));
}

absl::StatusOr<int64_t> ParseInt(std::string_view text) {
  std::string t(Strip(text));
  if (t.empty() || t.size() > 32) return absl::InvalidArgumentError("not an integer");
  errno = 0;
  char* end = nullptr;
  // Base 0: YAML 1.1 (and Go's yaml.v2, which datadog.yaml files are written for) read 0660 as octal.
  long long v = std::strtoll(t.c_str(), &end, 0);
  if (errno == ERANGE) return absl::InvalidArgumentError("out of range");
  if (end != t.c_str() + t.size()) return absl::InvalidArgumentError("not an integer");
  return static_cast<int64_t>(v);
}

absl::StatusOr<double> ParseDouble(std::string_view text) {
  std::string t(Strip(text));
  if (t.empty() || t.size() > 64) return absl::InvalidArgumentError("not a number");
  char* end = nullptr;
  double v = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size() || v != v) return absl::InvalidArgumentError("not a number");
  return v;
}

absl::StatusOr<StringList> ParseEnvList(std::string_view text) {
  std::string_view t = Strip(text);
  StringList out;
  if ((t).starts_with("[")) {
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(t.data(), t.size());
    if (doc.HasParseError()) {
      return absl::InvalidArgumentError(Cat("invalid JSON list at offset ", doc.GetErrorOffset(), ": ",
                                            rapidjson::GetParseError_En(doc.GetParseError())));
    }
    if (!doc.IsArray()) return absl::InvalidArgumentError("expected a JSON array");
    if (doc.Size() > kMaxListItems) return absl::InvalidArgumentError("list has more than 10000 items");
    for (const auto& item : doc.GetArray()) {
      if (!item.IsString()) return absl::InvalidArgumentError("JSON list items must be strings");
      out.emplace_back(item.GetString(), item.GetStringLength());
    }
    return out;
  }
  for (std::string_view part : strings::SplitAny(t, " \t\n,")) {
    if (out.size() >= kMaxListItems) return absl::InvalidArgumentError("list has more than 10000 items");
    out.emplace_back(part);
  }
  return out;
}

absl::StatusOr<StringListMap> ParseEnvMap(std::string_view text) {
  std::string_view t = Strip(text);
  StringListMap out;
  if (t.empty()) return out;
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(t.data(), t.size());
  if (doc.HasParseError()) {
    return absl::InvalidArgumentError(Cat("invalid JSON object at offset ", doc.GetErrorOffset(), ": ",
                                          rapidjson::GetParseError_En(doc.GetParseError())));
  }
  if (!doc.IsObject()) return absl::InvalidArgumentError("expected a JSON object");
  if (doc.MemberCount() > kMaxListItems) return absl::InvalidArgumentError("more than 10000 entries");
  for (const auto& member : doc.GetObject()) {
    std::string key(member.name.GetString(), member.name.GetStringLength());
    StringList& list = out[key];
    if (member.value.IsString()) {
      list.emplace_back(member.value.GetString(), member.value.GetStringLength());
    } else if (member.value.IsArray()) {
      if (member.value.Size() > kMaxListItems)
        return absl::InvalidArgumentError("list has more than 10000 items");
      for (const auto& item : member.value.GetArray()) {
        if (!item.IsString())
          return absl::InvalidArgumentError(Cat("entry '", key, "': items must be strings"));
        list.emplace_back(item.GetString(), item.GetStringLength());
      }
    } else {
      return absl::InvalidArgumentError(Cat("entry '", key, "': expected a string or a list of strings"));
    }
  }
  return out;
}

Config::Config(const OptionTable& table) : table_(&table) {
  for (const Option& option : table.options()) {
    entries_.emplace(option.key, Entry{option.default_value, Source::kDefault, "default", std::nullopt});
  }
}

absl::Status Config::Validate(const Option& option, Value& value, std::string_view origin) const {
  auto check_handle = [&](const std::string& text) -> absl::Status {
    if (option.forbid_secret_handles && IsSecretHandleText(text)) {
      return absl::InvalidArgumentError(
          Cat(origin, ": key '", option.key, "': ENC[] secret handles are not allowed in this setting"));
    }
    return absl::OkStatus();
  };
  if (auto* text = std::get_if<std::string>(&value)) {
    RETURN_IF_ERROR(check_handle(*text));
    if (!option.allowed_values.empty() && !IsSecretHandleText(*text)) {
      std::string lowered = Lower(Strip(*text));
      bool found = false;
      for (const auto& allowed : option.allowed_values) found = found || lowered == allowed;
      if (!found) {
        return absl::InvalidArgumentError(
            Cat(origin, ": key '", option.key, "': ", Quote(*text),
                " is not one of: ", strings::Join(option.allowed_values, ", ")));
      }
      *text = lowered;
    }
  }
  if (auto* list = std::get_if<StringList>(&value)) {
    for (const auto& item : *list) RETURN_IF_ERROR(check_handle(item));
  }
  if (auto* number = std::get_if<int64_t>(&value)) {
    if ((option.min_int && *number < *option.min_int) || (option.max_int && *number > *option.max_int)) {
      return absl::InvalidArgumentError(Cat(origin, ": key '", option.key, "': ", *number,
                                            " is out of range [", option.min_int.value_or(INT64_MIN), ", ",
                                            option.max_int.value_or(INT64_MAX), "]"));
    }
  }
  return absl::OkStatus();
}

absl::Status Config::Set(std::string_view key, Value value, Source source, std::string origin) {
  const Option* option = table_->Find(key);
  if (option == nullptr) return absl::NotFoundError(Cat("unknown configuration key '", key, "'"));
  if (value.index() != option->default_value.index()) {
    return TypeError(origin, key, option->type, "a value of another type");
  }
  RETURN_IF_ERROR(Validate(*option, value, origin));
  Entry& entry = entries_[option->key];
  entry.value = std::move(value);
  entry.source = source;
  entry.origin = std::move(origin);
  entry.secret_handle.reset();
  return absl::OkStatus();
}

absl::Status Config::MergeYaml(std::string_view yaml_text, std::string_view file_name) {
  if (yaml_text.size() > kMaxConfigFileBytes) {
    return absl::InvalidArgumentError(
        Cat(file_name, ": file is larger than ", kMaxConfigFileBytes, " bytes"));
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        Cat(file_name, ":", e.mark.line + 1, ":", e.mark.column + 1, ": invalid YAML: ", e.msg));
  }
  size_t visited = 0;
  // Walks nested mappings, joining keys with '.', until a declared option is reached.
  std::function<absl::Status(const YAML::Node&, const std::string&, size_t)> walk =
      [&](const YAML::Node& node, const std::string& prefix, size_t depth) -> absl::Status {
    if (++visited > kMaxYamlNodesVisited) {
      return absl::InvalidArgumentError(Cat(file_name, ": document expands to more than ",
                                            kMaxYamlNodesVisited, " nodes (alias expansion?)"));
    }
    if (depth > kMaxYamlDepth) {
      return absl::InvalidArgumentError(Cat(YamlOrigin(file_name, node), ": key '", prefix,
                                            "': nested deeper than ", kMaxYamlDepth, " levels"));
    }
    if (!prefix.empty()) {
      if (const Option* option = table_->Find(prefix)) {
        if (node.IsNull()) return absl::OkStatus();  // "key:" with nothing after it keeps the default
        std::string origin = YamlOrigin(file_name, node);
        ASSIGN_OR_RETURN(Value value, YamlToValue(node, *option, origin));
        RETURN_IF_ERROR(Validate(*option, value, origin));
        Entry& entry = entries_[option->key];
        entry = Entry{std::move(value), Source::kFile, std::move(origin), std::nullopt};
        return absl::OkStatus();
      }
    }
    if (node.IsMap()) {
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          return absl::InvalidArgumentError(
              Cat(YamlOrigin(file_name, kv.first), ": mapping keys must be plain strings"));
        }
        std::string child = prefix.empty() ? kv.first.Scalar() : Cat(prefix, ".", kv.first.Scalar());
        RETURN_IF_ERROR(walk(kv.second, child, depth + 1));
      }
      return absl::OkStatus();
    }
    if (prefix.empty()) {
      if (node.IsNull()) return absl::OkStatus();  // empty file
      return absl::InvalidArgumentError(
          Cat(YamlOrigin(file_name, node), ": the top level must be a mapping of keys to values"));
    }
    if (table_->IsSection(prefix)) {
      if (node.IsNull()) return absl::OkStatus();  // "apm_config:" with all children commented out
      return absl::InvalidArgumentError(Cat(YamlOrigin(file_name, node), ": key '", prefix,
                                            "' is a section and must be a mapping, got ",
                                            DescribeYaml(node)));
    }
    if (unknown_keys_.size() < 1000) unknown_keys_.push_back(prefix);
    return absl::OkStatus();
  };
  try {
    return walk(root, "", 0);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(Cat(file_name, ":", e.mark.line + 1, ": invalid YAML: ", e.msg));
  }
}

absl::Status Config::MergeFile(const std::string& path, bool required) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!required && errno == ENOENT) return absl::OkStatus();
    return absl::NotFoundError(Cat(path, ": cannot read config file: ", std::strerror(errno)));
  }
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  if (size < 0) return absl::InvalidArgumentError(Cat(path, ": not a regular file"));
  if (static_cast<size_t>(size) > kMaxConfigFileBytes) {
    return absl::InvalidArgumentError(Cat(path, ": file is larger than ", kMaxConfigFileBytes, " bytes"));
  }
  in.seekg(0);
  std::string text(static_cast<size_t>(size), '\0');
  in.read(text.data(), size);
  return MergeYaml(text, path);
}

absl::Status Config::MergeEnvironment(const char* const* environment) {
  if (environment == nullptr) return absl::OkStatus();
  std::map<std::string, std::string_view, std::less<>> env;
  for (const char* const* p = environment; *p != nullptr; ++p) {
    std::string_view entry(*p);
    if (!(entry).starts_with("DD_")) continue;
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)), entry.substr(eq + 1));
  }
  for (const Option& option : table_->options()) {
    std::vector<std::string> names{CanonicalEnvName(option.key)};
    names.insert(names.end(), option.env_aliases.begin(), option.env_aliases.end());
    for (const std::string& name : names) {
      auto it = env.find(name);
      if (it == env.end()) continue;
      if (it->second.size() > kMaxEnvValueBytes) {
        return absl::InvalidArgumentError(Cat(name, ": value is longer than ", kMaxEnvValueBytes, " bytes"));
      }
      ASSIGN_OR_RETURN(Value value, TextToValue(it->second, option, name));
      RETURN_IF_ERROR(Validate(option, value, name));
      entries_[option.key] = Entry{std::move(value), Source::kEnvironment, name, std::nullopt};
      break;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Config> Config::Load(const LoadOptions& options, const OptionTable& table) {
  Config config(table);
  if (!options.file_path.empty()) RETURN_IF_ERROR(config.MergeFile(options.file_path, options.file_required));
  RETURN_IF_ERROR(config.MergeEnvironment(options.environment));
  return config;
}

const Entry& Config::EntryFor(std::string_view key, Type expected) const {
  const Option* option = table_->Find(key);
  if (option == nullptr || option->type != expected) {
    std::fprintf(stderr, "BUG: configuration key '%.*s' read as %.*s but declared otherwise\n",
                 static_cast<int>(key.size()), key.data(), static_cast<int>(TypeName(expected).size()),
                 TypeName(expected).data());
    std::abort();
  }
  return entries_.find(key)->second;
}

bool Config::GetBool(std::string_view key) const { return std::get<bool>(EntryFor(key, Type::kBool).value); }
int64_t Config::GetInt(std::string_view key) const {
  return std::get<int64_t>(EntryFor(key, Type::kInt).value);
}
double Config::GetDouble(std::string_view key) const {
  return std::get<double>(EntryFor(key, Type::kDouble).value);
}
const std::string& Config::GetString(std::string_view key) const {
  return std::get<std::string>(EntryFor(key, Type::kString).value);
}
const StringList& Config::GetStringList(std::string_view key) const {
  return std::get<StringList>(EntryFor(key, Type::kStringList).value);
}
const StringListMap& Config::GetStringListMap(std::string_view key) const {
  return std::get<StringListMap>(EntryFor(key, Type::kStringListMap).value);
}
const Entry& Config::GetEntry(std::string_view key) const {
  const Option* option = table_->Find(key);
  if (option == nullptr) {
    std::fprintf(stderr, "BUG: unknown configuration key '%.*s'\n", static_cast<int>(key.size()), key.data());
    std::abort();
  }
  return entries_.find(key)->second;
}
bool Config::IsSet(std::string_view key) const { return GetEntry(key).source != Source::kDefault; }

std::vector<SecretReference> Config::SecretReferences() const {
  std::vector<SecretReference> refs;
  for (const auto& [key, entry] : entries_) {
    if (const auto* text = std::get_if<std::string>(&entry.value)) {
      if (IsSecretHandleText(*text)) refs.push_back({key, SecretHandleOf(*text)});
    } else if (const auto* list = std::get_if<StringList>(&entry.value)) {
      for (const auto& item : *list) {
        if (IsSecretHandleText(item)) refs.push_back({key, SecretHandleOf(item)});
      }
    } else if (const auto* map = std::get_if<StringListMap>(&entry.value)) {
      for (const auto& [url, items] : *map) {
        for (const auto& item : items) {
          if (IsSecretHandleText(item)) refs.push_back({key, SecretHandleOf(item)});
        }
      }
    }
  }
  return refs;
}

absl::Status Config::ApplySecrets(const std::map<std::string, std::string>& resolved) {
  for (auto& item : entries_) {
    // Plain references, not a structured binding: clang 14 cannot capture those in a lambda.
    const std::string& key = item.first;
    Entry& entry = item.second;
    std::vector<std::string> handles;
    auto replace = [&](std::string& text) -> absl::Status {
      if (!IsSecretHandleText(text)) return absl::OkStatus();
      std::string handle = SecretHandleOf(text);
      auto it = resolved.find(handle);
      if (it == resolved.end()) {
        return absl::FailedPreconditionError(
            Cat("key '", key, "': secret handle '", handle, "' was not resolved"));
      }
      text = it->second;
      handles.push_back(std::move(handle));
      return absl::OkStatus();
    };
    if (auto* text = std::get_if<std::string>(&entry.value)) {
      RETURN_IF_ERROR(replace(*text));
    } else if (auto* list = std::get_if<StringList>(&entry.value)) {
      for (auto& item : *list) RETURN_IF_ERROR(replace(item));
    } else if (auto* map = std::get_if<StringListMap>(&entry.value)) {
      for (auto& [url, items] : *map) {
        for (auto& item : items) RETURN_IF_ERROR(replace(item));
      }
    }
    if (!handles.empty()) entry.secret_handle = strings::Join(handles, ",");
  }
  return absl::OkStatus();
}

void Config::ToSnapshot(core::ConfigSnapshot* snapshot, uint64_t generation) const {
  snapshot->set_generation(generation);
  for (const Option& option : table_->options()) {
    const Entry& entry = entries_.find(option.key)->second;
    if (option.sensitive || entry.secret_handle) continue;
    core::ConfigEntry* out = snapshot->add_entries();
    out->set_key(option.key);
    switch (entry.source) {
      case Source::kDefault:
        out->set_source(core::CONFIG_SOURCE_DEFAULT);
        break;
      case Source::kFile:
        out->set_source(core::CONFIG_SOURCE_FILE);
        break;
      case Source::kEnvironment:
        out->set_source(core::CONFIG_SOURCE_ENVIRONMENT);
        break;
      case Source::kCore:
        out->set_source(core::CONFIG_SOURCE_CORE);
        break;
    }
    core::ConfigValue* value = out->mutable_value();
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, bool>) {
            value->set_bool_value(v);
          } else if constexpr (std::is_same_v<T, int64_t>) {
            value->set_int_value(v);
          } else if constexpr (std::is_same_v<T, double>) {
            value->set_double_value(v);
          } else if constexpr (std::is_same_v<T, std::string>) {
            value->set_string_value(v);
          } else if constexpr (std::is_same_v<T, StringList>) {
            auto* list = value->mutable_list_value();  // sets the oneof even for an empty list
            for (const auto& s : v) list->add_values(s);
          } else {
            auto* map = value->mutable_map_value()->mutable_entries();
            for (const auto& [k, list] : v) {
              for (const auto& s : list) (*map)[k].add_values(s);
            }
          }
        },
        entry.value);
  }
}

absl::StatusOr<Config> Config::FromSnapshot(const core::ConfigSnapshot& snapshot,
                                            const char* const* environment, const OptionTable& table) {
  Config config(table);
  for (const core::ConfigEntry& in : snapshot.entries()) {
    const Option* option = table.Find(in.key());
    // A newer core may serve keys this binary does not know; they cannot matter to it.
    if (option == nullptr) continue;
    Value value;
    const core::ConfigValue& v = in.value();
    switch (v.kind_case()) {
      case core::ConfigValue::kBoolValue:
        value = v.bool_value();
        break;
      case core::ConfigValue::kIntValue:
        value = static_cast<int64_t>(v.int_value());
        break;
      case core::ConfigValue::kDoubleValue:
        value = v.double_value();
        break;
      case core::ConfigValue::kStringValue:
        value = v.string_value();
        break;
      case core::ConfigValue::kListValue:
        value = StringList(v.list_value().values().begin(), v.list_value().values().end());
        break;
      case core::ConfigValue::kMapValue: {
        StringListMap map;
        for (const auto& [k, list] : v.map_value().entries())
          map[k] = StringList(list.values().begin(), list.values().end());
        value = std::move(map);
        break;
      }
      default:
        return absl::InvalidArgumentError(Cat("config snapshot: key '", in.key(), "' has no value"));
    }
    if (value.index() != option->default_value.index()) {
      return absl::InvalidArgumentError(Cat("config snapshot: key '", in.key(),
                                            "' has the wrong type (expected ", TypeName(option->type), ")"));
    }
    if (in.source() == core::CONFIG_SOURCE_DEFAULT) continue;
    RETURN_IF_ERROR(config.Set(in.key(), std::move(value), Source::kCore, "core"));
  }
  RETURN_IF_ERROR(config.MergeEnvironment(environment));
  return config;
}

std::string ResolveHostname(const Config& config) {
  if (!config.GetString("hostname").empty()) return config.GetString("hostname");
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

std::string OptionsReferenceMarkdown(const OptionTable& table) {
  std::string out =
      "# Configuration reference\n\n"
      "Generated from the option table (`common/config/options.cc`) by `agent config --docs`; a unit test\n"
      "keeps this file in sync. Precedence: default < `dogwatch.yaml` (same keys as `datadog.yaml`) <\n"
      "environment. Every key also reads `DD_` + the key upper-cased with dots as underscores; the\n"
      "aliases below are read after it. Lists take YAML lists, space-separated text or a JSON array;\n"
      "mappings take YAML mappings or a JSON object. Sensitive keys are never printed or served over IPC;\n"
      "any string value may be `ENC[handle]`, resolved by `secret_backend_command`.\n\n"
      "| key | type | default | environment | description |\n|---|---|---|---|---|\n";
  for (const Option& option : table.options()) {
    std::string def = ValueToText(option.default_value);
    if (option.type == Type::kInt && option.key.find("socket_mode") != std::string::npos) {
      char octal[16];
      std::snprintf(octal, sizeof(octal), "0%llo",
                    static_cast<unsigned long long>(std::get<int64_t>(option.default_value)));
      def = octal;
    }
    std::string env = Cat("`", CanonicalEnvName(option.key), "`");
    for (const auto& alias : option.env_aliases) {
      if (alias != CanonicalEnvName(option.key)) strings::AppendTo(&env, ", `", alias, "`");
    }
    std::string doc = option.doc;
    if (!option.allowed_values.empty())
      strings::AppendTo(&doc, " One of: ", strings::Join(option.allowed_values, ", "), ".");
    if (option.sensitive) doc += " Sensitive.";
    strings::AppendTo(&out, "| `", option.key, "` | ", TypeName(option.type), " | ",
                      def.empty() ? "" : Cat("`", def, "`"), " | ", env, " | ", doc, " |\n");
  }
  return out;
}

std::string Config::ToScrubbedYaml() const {
  std::ostringstream out;
  for (const Option& option : table_->options()) {
    const Entry& entry = entries_.find(option.key)->second;
    std::string shown;
    const auto* text = std::get_if<std::string>(&entry.value);
    if (entry.secret_handle) {
      shown = Cat("ENC[", entry.secret_handle.value(), "]");
    } else if (text != nullptr && IsSecretHandleText(*text)) {
      shown = std::string(Strip(*text));  // an unresolved handle names a secret, it is not one
    } else if (option.sensitive) {
      bool empty = std::visit([](const auto& v) { return ValueToText(Value(v)).empty(); }, entry.value);
      shown = empty ? "\"\"" : "\"********\"";
    } else {
      YAML::Emitter emitter;
      emitter.SetMapFormat(YAML::Flow);
      emitter.SetSeqFormat(YAML::Flow);
      std::visit(
          [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, StringListMap>) {
              emitter << YAML::BeginMap;
              for (const auto& [k, list] : v) {
                emitter << YAML::Key << k << YAML::Value << YAML::BeginSeq;
                // The only mappings are additional_endpoints (URL → API keys): keys are scrubbed like
                // api_key.
                for (size_t i = 0; i < list.size(); ++i) emitter << "********";
                emitter << YAML::EndSeq;
              }
              emitter << YAML::EndMap;
            } else if constexpr (std::is_same_v<T, StringList>) {
              emitter << YAML::BeginSeq;
              for (const auto& s : v) emitter << s;
              emitter << YAML::EndSeq;
            } else if constexpr (std::is_same_v<T, std::string>) {
              emitter << YAML::DoubleQuoted << v;
            } else {
              emitter << v;
            }
          },
          entry.value);
      shown = emitter.c_str();
    }
    out << option.key << ": " << shown << "  # " << SourceName(entry.source);
    if (entry.source != Source::kDefault) out << " (" << entry.origin << ")";
    out << "\n";
  }
  return out.str();
}

}  // namespace dogwatch::config
