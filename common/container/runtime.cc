#include "common/container/runtime.h"

#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>

#include "common/container/runtime_http.h"
#include "common/strings/strings.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"

namespace dogwatch::container {
namespace {

constexpr size_t kMaxLabels = 4096;
constexpr size_t kMaxJsonBytes = 64 * 1024 * 1024;  // upper bound on anything handed to the parser

const rapidjson::Value* Member(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return nullptr;
  auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}
std::string StringMember(const rapidjson::Value& object, const char* name) {
  const rapidjson::Value* value = Member(object, name);
  return value != nullptr && value->IsString() ? std::string(value->GetString(), value->GetStringLength())
                                               : "";
}
int64_t IntMember(const rapidjson::Value& object, const char* name) {
  const rapidjson::Value* value = Member(object, name);
  if (value == nullptr) return 0;
  if (value->IsInt64()) return value->GetInt64();
  if (value->IsUint64()) return static_cast<int64_t>(std::min<uint64_t>(value->GetUint64(), INT64_MAX));
  if (value->IsDouble()) {
    double d = value->GetDouble();
    if (d != d || d < -9.2e18 || d > 9.2e18) return 0;  // NaN or out of int64 range
    return static_cast<int64_t>(d);
  }
  return 0;
}
void ReadLabels(const rapidjson::Value* labels, std::map<std::string, std::string>* out) {
  if (labels == nullptr || !labels->IsObject()) return;
  for (auto it = labels->MemberBegin(); it != labels->MemberEnd() && out->size() < kMaxLabels; ++it) {
    if (!it->value.IsString()) continue;
    out->emplace(std::string(it->name.GetString(), it->name.GetStringLength()),
                 std::string(it->value.GetString(), it->value.GetStringLength()));
  }
}

absl::Status ParseJson(std::string_view json, rapidjson::Document* doc) {
  if (json.size() > kMaxJsonBytes) return absl::InvalidArgumentError("JSON document too large");
  // kParseIterativeFlag: deep nesting cannot exhaust the stack.
  doc->Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (doc->HasParseError()) {
    return absl::InvalidArgumentError(strings::Cat("invalid JSON at offset ", doc->GetErrorOffset(), ": ",
                                                   rapidjson::GetParseError_En(doc->GetParseError())));
  }
  return absl::OkStatus();
}

std::string StripLeadingSlash(std::string name) {
  if (!name.empty() && name.front() == '/') name.erase(0, 1);
  return name;
}

bool ParseDigits(std::string_view s, int* out) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool IsSafeIdOrName(std::string_view id) {
  if (id.empty() || id.size() > 256) return false;
  for (char c : id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) return false;
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Parsers.

absl::StatusOr<int64_t> ParseRfc3339(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  if (text.size() < 20 || text.size() > 64) return absl::InvalidArgumentError("not an RFC 3339 time");
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!ParseDigits(text.substr(0, 4), &year) || text[4] != '-' || !ParseDigits(text.substr(5, 2), &month) ||
      text[7] != '-' || !ParseDigits(text.substr(8, 2), &day) || (text[10] != 'T' && text[10] != ' ') ||
      !ParseDigits(text.substr(11, 2), &hour) || text[13] != ':' ||
      !ParseDigits(text.substr(14, 2), &minute) || text[16] != ':' ||
      !ParseDigits(text.substr(17, 2), &second)) {
    return absl::InvalidArgumentError("not an RFC 3339 time");
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return absl::InvalidArgumentError("RFC 3339 time out of range");
  }
  std::string_view rest = text.substr(19);
  if (!rest.empty() && rest.front() == '.') {
    size_t digits = 1;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
    if (digits == 1) return absl::InvalidArgumentError("RFC 3339: empty fraction");
    rest.remove_prefix(digits);
  }
  int offset_seconds = 0;
  if (rest == "Z" || rest == "z") {
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh = 0, om = 0;
    if (!ParseDigits(rest.substr(1, 2), &oh) || !ParseDigits(rest.substr(4, 2), &om) || oh > 23 || om > 59) {
      return absl::InvalidArgumentError("RFC 3339: bad offset");
    }
    offset_seconds = (oh * 3600 + om * 60) * (rest[0] == '-' ? -1 : 1);
  } else {
    return absl::InvalidArgumentError("RFC 3339: bad zone");
  }
  if (year < 1970) return 0;  // Docker's zero time "0001-01-01T00:00:00Z" means "never"
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return static_cast<int64_t>(::timegm(&tm)) - offset_seconds;
}

absl::StatusOr<std::vector<ContainerMeta>> ParseContainerList(std::string_view json, size_t max_containers) {
  rapidjson::Document doc;
  absl::Status status = ParseJson(json, &doc);
  if (!status.ok()) return status;
  if (!doc.IsArray()) return absl::InvalidArgumentError("container list: expected a JSON array");
  std::vector<ContainerMeta> out;
  for (const rapidjson::Value& item : doc.GetArray()) {
    if (out.size() >= max_containers) break;
    if (!item.IsObject()) continue;
    ContainerMeta meta;
    meta.id = StringMember(item, "Id");
    if (meta.id.empty()) continue;
    if (const rapidjson::Value* names = Member(item, "Names");
        names != nullptr && names->IsArray() && !names->Empty() && (*names)[0].IsString()) {
      meta.name = StripLeadingSlash((*names)[0].GetString());
    }
    meta.image = StringMember(item, "Image");
    meta.image_id = StringMember(item, "ImageID");
    meta.created_unix = IntMember(item, "Created");
    meta.state = StringMember(item, "State");
    ReadLabels(Member(item, "Labels"), &meta.labels);
    out.push_back(std::move(meta));
  }
  return out;
}

absl::StatusOr<ContainerMeta> ParseContainerInspect(std::string_view json) {
  rapidjson::Document doc;
  absl::Status status = ParseJson(json, &doc);
  if (!status.ok()) return status;
  if (!doc.IsObject()) return absl::InvalidArgumentError("container inspect: expected a JSON object");
  ContainerMeta meta;
  meta.inspected = true;
  meta.id = StringMember(doc, "Id");
  if (meta.id.empty()) return absl::InvalidArgumentError("container inspect: no Id");
  meta.name = StripLeadingSlash(StringMember(doc, "Name"));
  meta.image_id = StringMember(doc, "Image");
  if (absl::StatusOr<int64_t> created = ParseRfc3339(StringMember(doc, "Created")); created.ok()) {
    meta.created_unix = *created;
  }
  if (const rapidjson::Value* config = Member(doc, "Config"); config != nullptr && config->IsObject()) {
    meta.image = StringMember(*config, "Image");
    ReadLabels(Member(*config, "Labels"), &meta.labels);
    if (const rapidjson::Value* env = Member(*config, "Env"); env != nullptr && env->IsArray()) {
      for (const rapidjson::Value& entry : env->GetArray()) {
        if (!entry.IsString()) continue;
        std::string_view var(entry.GetString(), entry.GetStringLength());
        for (std::string_view key : {"DD_ENV", "DD_SERVICE", "DD_VERSION"}) {
          if (var.size() > key.size() && var.starts_with(key) && var[key.size()] == '=') {
            meta.tag_env[std::string(key)] = std::string(var.substr(key.size() + 1, 1024));
          }
        }
      }
    }
  }
  if (const rapidjson::Value* state = Member(doc, "State"); state != nullptr && state->IsObject()) {
    meta.state = StringMember(*state, "Status");
    meta.pid = static_cast<int>(std::clamp<int64_t>(IntMember(*state, "Pid"), 0, INT32_MAX));
    meta.exit_code =
        static_cast<int>(std::clamp<int64_t>(IntMember(*state, "ExitCode"), INT32_MIN, INT32_MAX));
    if (absl::StatusOr<int64_t> t = ParseRfc3339(StringMember(*state, "StartedAt")); t.ok())
      meta.started_unix = *t;
    if (absl::StatusOr<int64_t> t = ParseRfc3339(StringMember(*state, "FinishedAt")); t.ok()) {
      meta.finished_unix = *t;
    }
    if (const rapidjson::Value* health = Member(*state, "Health"); health != nullptr && health->IsObject()) {
      meta.health = StringMember(*health, "Status");
    }
  }
  if (const rapidjson::Value* host = Member(doc, "HostConfig"); host != nullptr && host->IsObject()) {
    int64_t nano_cpus = IntMember(*host, "NanoCpus");
    int64_t quota = IntMember(*host, "CpuQuota");
    int64_t period = IntMember(*host, "CpuPeriod");
    if (nano_cpus > 0) {
      meta.cpu_limit_cores = static_cast<double>(nano_cpus) / 1e9;
    } else if (quota > 0) {
      meta.cpu_limit_cores = static_cast<double>(quota) / static_cast<double>(period > 0 ? period : 100000);
    }
    if (int64_t memory = IntMember(*host, "Memory"); memory > 0) meta.memory_limit_bytes = memory;
  }
  return meta;
}

absl::StatusOr<ContainerEvent> ParseContainerEvent(std::string_view json_line) {
  if (json_line.size() > kMaxEventLineBytes) return absl::InvalidArgumentError("event line too long");
  rapidjson::Document doc;
  absl::Status status = ParseJson(json_line, &doc);
  if (!status.ok()) return status;
  if (!doc.IsObject()) return absl::InvalidArgumentError("event: expected a JSON object");
  std::string type = StringMember(doc, "Type");
  if (!type.empty() && type != "container") return absl::InvalidArgumentError("event: not a container event");
  ContainerEvent event;
  event.action = StringMember(doc, "Action");
  if (event.action.empty()) event.action = StringMember(doc, "status");  // API < 1.22
  const rapidjson::Value* actor = Member(doc, "Actor");
  if (actor != nullptr) event.id = StringMember(*actor, "ID");
  if (event.id.empty()) event.id = StringMember(doc, "id");
  if (event.id.empty() || event.action.empty()) return absl::InvalidArgumentError("event: no id or action");
  if (actor != nullptr) {
    if (const rapidjson::Value* attributes = Member(*actor, "Attributes")) {
      event.name = StringMember(*attributes, "name");
      event.image = StringMember(*attributes, "image");
    }
  }
  if (event.image.empty()) event.image = StringMember(doc, "from");
  event.time_unix_nano = IntMember(doc, "timeNano");
  if (event.time_unix_nano == 0) {
    int64_t seconds = std::clamp<int64_t>(IntMember(doc, "time"), 0, INT64_MAX / 1000000000);
    event.time_unix_nano = seconds * 1000000000;
  }
  return event;
}

ImageRef SplitImageRef(std::string_view image) {
  ImageRef ref;
  bool has_digest = false;
  if (size_t at = image.find('@'); at != std::string_view::npos) {
    image = image.substr(0, at);
    has_digest = true;
  }
  size_t last_slash = image.rfind('/');
  size_t colon = image.rfind(':');
  // A colon before the last slash is a registry port ("registry:5000/app"), not a tag.
  if (colon != std::string_view::npos && (last_slash == std::string_view::npos || colon > last_slash)) {
    ref.tag = std::string(image.substr(colon + 1));
    image = image.substr(0, colon);
  } else if (!has_digest) {
    ref.tag = "latest";
  }
  ref.name = std::string(image);
  last_slash = image.rfind('/');
  ref.short_name = std::string(last_slash == std::string_view::npos ? image : image.substr(last_slash + 1));
  return ref;
}

std::vector<std::string> ContainerTags(const ContainerMeta& meta, TagCardinality cardinality,
                                       const std::map<std::string, std::string>& labels_as_tags) {
  std::vector<std::string> low, orchestrator, high;
  auto add = [](std::vector<std::string>& to, std::string_view key, std::string_view value) {
    if (!value.empty()) to.push_back(strings::Cat(key, ":", value));
  };

  add(high, "container_name", meta.name);
  add(high, "container_id", meta.id);
  if (!meta.image.empty()) {
    ImageRef image = SplitImageRef(meta.image);
    add(low, "image_name", image.name);
    add(low, "short_image", image.short_name);
    add(low, "image_tag", image.tag);
    add(low, "docker_image", image.tag.empty() ? image.name : strings::Cat(image.name, ":", image.tag));
  }
  add(low, "image_id", meta.image_id);

  // Unified service tagging: labels win over environment variables, like Datadog's.
  static const std::pair<const char*, const char*> kStandardLabels[] = {
      {"com.datadoghq.tags.env", "env"},
      {"com.datadoghq.tags.service", "service"},
      {"com.datadoghq.tags.version", "version"}};
  static const std::pair<const char*, const char*> kStandardEnv[] = {
      {"DD_ENV", "env"}, {"DD_SERVICE", "service"}, {"DD_VERSION", "version"}};
  for (const auto& [label, tag] : kStandardLabels) {
    auto it = meta.labels.find(label);
    if (it != meta.labels.end()) {
      add(low, tag, it->second);
    } else {
      for (const auto& [env, env_tag] : kStandardEnv) {
        if (std::string_view(env_tag) != tag) continue;
        auto env_it = meta.tag_env.find(env);
        if (env_it != meta.tag_env.end()) add(low, tag, env_it->second);
      }
    }
  }

  // Orchestrator labels: kubelet's (dockershim/cri-dockerd) and swarm/rancher/OCI ones.
  static const std::pair<const char*, const char*> kLowLabels[] = {
      {"io.kubernetes.pod.namespace", "kube_namespace"},
      {"io.kubernetes.container.name", "kube_container_name"},
      {"com.docker.swarm.service.name", "swarm_service"},
      {"com.docker.stack.namespace", "swarm_namespace"},
      {"io.rancher.stack.name", "rancher_stack"},
      {"io.rancher.stack_service.name", "rancher_service"},
      {"org.opencontainers.image.revision", "git.commit.sha"},
      {"org.opencontainers.image.source", "git.repository_url"}};
  for (const auto& [label, tag] : kLowLabels) {
    auto it = meta.labels.find(label);
    if (it != meta.labels.end()) add(low, tag, it->second);
  }
  if (auto it = meta.labels.find("io.kubernetes.pod.name"); it != meta.labels.end()) {
    add(orchestrator, "pod_name", it->second);
  }
  if (auto it = meta.labels.find("io.rancher.container.name"); it != meta.labels.end()) {
    add(high, "rancher_container", it->second);
  }

  // container_labels_as_tags: label names compare lowercased, as Datadog normalises them.
  if (!labels_as_tags.empty()) {
    std::map<std::string, std::string> wanted;
    for (const auto& [label, tag] : labels_as_tags) wanted.emplace(strings::Lower(label), tag);
    for (const auto& [label, value] : meta.labels) {
      auto it = wanted.find(strings::Lower(label));
      if (it == wanted.end() || it->second.empty()) continue;
      std::string_view tag = it->second;
      if (tag.front() == '+') {
        add(high, tag.substr(1), value);
      } else {
        add(low, tag, value);
      }
    }
  }

  // com.datadoghq.ad.tags: a JSON array of "key:value" strings.
  if (auto it = meta.labels.find("com.datadoghq.ad.tags");
      it != meta.labels.end() && it->second.size() < 65536) {
    rapidjson::Document doc;
    if (ParseJson(it->second, &doc).ok() && doc.IsArray()) {
      for (const rapidjson::Value& tag : doc.GetArray()) {
        if (tag.IsString() && tag.GetStringLength() > 0 && low.size() < 1024)
          low.emplace_back(tag.GetString());
      }
    }
  }

  std::vector<std::string> out = std::move(low);
  if (cardinality != TagCardinality::kLow) out.insert(out.end(), orchestrator.begin(), orchestrator.end());
  if (cardinality == TagCardinality::kHigh) out.insert(out.end(), high.begin(), high.end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// ---------------------------------------------------------------------------------------------
// Client.

RuntimeClient::RuntimeClient(Options options) : options_(std::move(options)) {}

absl::Status RuntimeClient::CheckSocket() const {
  struct stat st {};
  if (::stat(options_.socket_path.c_str(), &st) != 0) {
    return absl::UnavailableError(strings::Cat("container runtime socket ", options_.socket_path,
                                               " does not exist (container_runtime_socket)"));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::UnavailableError(
        strings::Cat("container runtime socket ", options_.socket_path, " is not a unix socket"));
  }
  return absl::OkStatus();
}

absl::StatusOr<RuntimeClient::Response> RuntimeClient::Get(const std::string& path) const {
  absl::Status socket = CheckSocket();
  if (!socket.ok()) return socket;
  Response response;
  UnixHttpOptions http;
  http.connect_timeout = options_.connect_timeout;
  http.total_timeout = options_.request_timeout;
  http.limits.max_body_bytes = options_.max_response_bytes;
  absl::StatusOr<UnixHttpResult> result =
      UnixHttpGet(options_.socket_path, strings::Cat("/", options_.api_version, path), http,
                  [&response](int, std::string_view body) {
                    response.body.append(body);
                    return absl::OkStatus();
                  });
  if (absl::IsResourceExhausted(result.status())) {
    return absl::ResourceExhaustedError(
        strings::Cat("response to ", path, " exceeds ", options_.max_response_bytes, " bytes"));
  }
  if (!result.ok()) return result.status();
  response.status = result->status;
  return response;
}

absl::Status RuntimeClient::Ping() const {
  absl::StatusOr<Response> response = Get("/_ping");
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return absl::UnavailableError(strings::Cat("container runtime at ", options_.socket_path,
                                               ": /_ping answered HTTP ", response->status));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ContainerMeta>> RuntimeClient::ListContainers() const {
  absl::StatusOr<Response> response = Get("/containers/json?all=1");
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return absl::UnavailableError(
        strings::Cat("container list: HTTP ", response->status, ": ", response->body.substr(0, 200)));
  }
  return ParseContainerList(response->body, options_.max_containers);
}

absl::StatusOr<ContainerMeta> RuntimeClient::Inspect(std::string_view id) const {
  if (!IsSafeIdOrName(id)) return absl::InvalidArgumentError("container id or name has invalid characters");
  absl::StatusOr<Response> response = Get(strings::Cat("/containers/", id, "/json"));
  if (!response.ok()) return response.status();
  if (response->status == 404) return absl::NotFoundError(strings::Cat("no such container ", id));
  if (response->status != 200) {
    return absl::UnavailableError(strings::Cat("container inspect ", id, ": HTTP ", response->status, ": ",
                                               response->body.substr(0, 200)));
  }
  return ParseContainerInspect(response->body);
}

absl::Status RuntimeClient::StreamEvents(int64_t since_unix,
                                         const std::function<void(const ContainerEvent&)>& on_event,
                                         const std::function<bool()>& should_stop,
                                         const std::function<void(const absl::Status&)>& on_bad_event) const {
  absl::Status socket = CheckSocket();
  if (!socket.ok()) return socket;
  // filters={"type":["container"]}
  std::string target =
      strings::Cat("/", options_.api_version, "/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D");
  if (since_unix > 0) strings::AppendTo(&target, "&since=", since_unix);
  UnixHttpOptions http;
  http.connect_timeout = options_.connect_timeout;
  // No total timeout and no body bound: the stream is meant to stay open; each line is bounded
  // below, and should_stop (polled at least twice a second) is how Stop() ends it.
  http.total_timeout = std::chrono::milliseconds(0);
  http.limits.max_body_bytes = 0;
  std::string line;
  std::string error_body;  // body of a non-200 answer, for the error message
  auto on_body = [&](int status, std::string_view chunk) -> absl::Status {
    if (status != 200) {
      error_body.append(chunk.substr(0, 512 - std::min<size_t>(512, error_body.size())));
      return absl::OkStatus();
    }
    while (!chunk.empty()) {
      const size_t newline = chunk.find('\n');
      const std::string_view piece = chunk.substr(0, newline);
      if (line.size() + piece.size() > kMaxEventLineBytes) {
        return absl::ResourceExhaustedError(strings::Cat("event longer than ", kMaxEventLineBytes, " bytes"));
      }
      line.append(piece);
      if (newline == std::string_view::npos) break;
      chunk.remove_prefix(newline + 1);
      if (line.find_first_not_of(" \r\t") != std::string::npos) {
        absl::StatusOr<ContainerEvent> event = ParseContainerEvent(line);
        if (event.ok()) {
          on_event(*event);
        } else if (on_bad_event) {
          on_bad_event(event.status());
        }
      }
      line.clear();
    }
    return absl::OkStatus();
  };
  absl::StatusOr<UnixHttpResult> result =
      UnixHttpGet(options_.socket_path, target, http, on_body, should_stop);
  if (absl::IsResourceExhausted(result.status())) {
    return absl::ResourceExhaustedError(strings::Cat("event longer than ", kMaxEventLineBytes, " bytes"));
  }
  if (!result.ok()) return result.status();
  if (result->stopped) return absl::OkStatus();
  if (result->status != 200) {
    return absl::UnavailableError(strings::Cat("events: HTTP ", result->status, ": ", error_body));
  }
  return absl::UnavailableError(
      strings::Cat("container runtime at ", options_.socket_path, " closed the events stream"));
}

// ---------------------------------------------------------------------------------------------
// Store.

ContainerMetaStore::ContainerMetaStore(Options options)
    : options_(std::move(options)), client_(options_.client) {}

ContainerMetaStore::~ContainerMetaStore() { Stop(); }

absl::Status ContainerMetaStore::Resync() {
  absl::StatusOr<std::vector<ContainerMeta>> list = client_.ListContainers();
  if (!list.ok()) return list.status();
  std::map<std::string, ContainerMeta, std::less<>> fresh;
  int64_t inspect_errors = 0;
  int64_t dropped = 0;
  for (ContainerMeta& summary : *list) {
    if (stopping_) break;
    if (fresh.size() >= options_.max_containers) {
      ++dropped;
      continue;
    }
    absl::StatusOr<ContainerMeta> inspected = client_.Inspect(summary.id);
    if (inspected.ok()) {
      fresh.emplace(inspected->id, std::move(*inspected));
    } else if (absl::IsNotFound(inspected.status())) {
      continue;  // removed between list and inspect
    } else {
      ++inspect_errors;
      fresh.emplace(summary.id, std::move(summary));  // the summary is better than nothing
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  containers_ = std::move(fresh);
  counters_.inspect_errors += inspect_errors;
  counters_.dropped_over_limit += dropped;
  ++counters_.resyncs;
  return absl::OkStatus();
}

void ContainerMetaStore::Upsert(ContainerMeta meta) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = containers_.find(meta.id);
  if (it != containers_.end()) {
    it->second = std::move(meta);
    return;
  }
  if (containers_.size() >= options_.max_containers) {
    ++counters_.dropped_over_limit;
    return;
  }
  std::string id = meta.id;
  containers_.emplace(std::move(id), std::move(meta));
}

void ContainerMetaStore::HandleEvent(const ContainerEvent& event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++counters_.events;
  }
  std::string_view action = event.action;
  std::optional<ContainerMeta> meta;
  if (action == "destroy" || action == "remove") {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(event.id);
    if (it != containers_.end()) containers_.erase(it);
  } else if (action == "create" || action == "start" || action == "restart" || action == "die" ||
             action == "stop" || action == "kill" || action == "oom" || action == "pause" ||
             action == "unpause" || action == "rename" || action == "update" ||
             action.starts_with("health_status")) {
    absl::StatusOr<ContainerMeta> inspected = client_.Inspect(event.id);
    if (inspected.ok()) {
      meta = *inspected;
      Upsert(std::move(*inspected));
    } else if (absl::IsNotFound(inspected.status())) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = containers_.find(event.id);
      if (it != containers_.end()) containers_.erase(it);
    } else {
      std::lock_guard<std::mutex> lock(mu_);
      ++counters_.inspect_errors;
      counters_.last_error = std::string(inspected.status().message());
      // Keep what the event says so a dying container does not look alive until the next resync.
      auto it = containers_.find(event.id);
      if (it != containers_.end()) {
        if (action == "die" || action == "stop" || action == "kill") it->second.pid = 0;
        meta = it->second;
      }
    }
  } else {
    return;  // exec_*, attach, cleanup, mount, top...: nothing that changes metadata or tags
  }
  if (listener_) listener_(event, meta);
}

absl::Status ContainerMetaStore::Start(Listener listener) {
  if (thread_.joinable()) return absl::FailedPreconditionError("container metadata store already started");
  listener_ = std::move(listener);
  stopping_ = false;
  const int64_t since = static_cast<int64_t>(::time(nullptr)) - 1;
  absl::Status status = client_.Ping();
  if (status.ok()) status = Resync();
  if (!status.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    counters_.last_error = std::string(status.message());
    return status;
  }
  thread_ = std::thread([this, since] {
    int64_t stream_since = since;
    auto backoff = options_.initial_backoff;
    while (!stopping_) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        counters_.connected = true;
      }
      // `since` replays what happened between the resync and the (re)connection: duplicates are
      // harmless (each event re-inspects), a gap would leave stale metadata.
      absl::Status ended = client_.StreamEvents(
          stream_since, [this](const ContainerEvent& event) { HandleEvent(event); },
          [this] { return stopping_.load(); },
          [this](const absl::Status& error) {
            std::lock_guard<std::mutex> lock(mu_);
            ++counters_.event_parse_errors;
            counters_.last_error = std::string(error.message());
          });
      {
        std::lock_guard<std::mutex> lock(mu_);
        counters_.connected = false;
        if (!ended.ok()) counters_.last_error = std::string(ended.message());
      }
      if (stopping_) break;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++counters_.reconnects;
      }
      while (!stopping_) {
        {
          std::unique_lock<std::mutex> lock(mu_);
          stop_cv_.wait_for(lock, backoff, [this] { return stopping_.load(); });
        }
        if (stopping_) break;
        backoff = std::min(backoff * 2, options_.max_backoff);
        stream_since = static_cast<int64_t>(::time(nullptr)) - 1;
        absl::Status resynced = Resync();
        if (resynced.ok()) {
          backoff = options_.initial_backoff;
          break;
        }
        std::lock_guard<std::mutex> lock(mu_);
        counters_.last_error = std::string(resynced.message());
      }
    }
  });
  return absl::OkStatus();
}

void ContainerMetaStore::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::optional<ContainerMeta> ContainerMetaStore::Get(std::string_view id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = containers_.find(id);
  if (it == containers_.end()) return std::nullopt;
  return it->second;
}

std::vector<ContainerMeta> ContainerMetaStore::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ContainerMeta> out;
  out.reserve(containers_.size());
  for (const auto& [id, meta] : containers_) out.push_back(meta);
  return out;
}

std::optional<ContainerMeta> ContainerMetaStore::ForPid(int pid) const {
  if (pid <= 0) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, meta] : containers_) {
    if (meta.pid == pid) return meta;
  }
  return std::nullopt;
}

ContainerMetaStore::Counters ContainerMetaStore::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

}  // namespace dogwatch::container
