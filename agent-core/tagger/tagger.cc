#include "agent-core/tagger/tagger.h"

#include <sys/stat.h>
#include <unistd.h>

#include <ctime>

#include "absl/time/clock.h"
#include "common/log/log.h"
#include "common/strings/strings.h"

namespace dogwatch::tagger {
namespace {

using strings::Cat;

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

TaggerOptions TaggerOptionsFromConfig(const config::Config& config) {
  TaggerOptions o;
  o.enabled = config.GetBool("container_tagger.enabled");
  std::string socket = config.GetString("container_runtime_socket");
  if (socket.starts_with("unix://")) socket = socket.substr(7);
  if (socket.empty()) {
    for (const char* candidate : {"/var/run/docker.sock", "/run/podman/podman.sock"}) {
      if (Exists(candidate)) {
        socket = candidate;
        break;
      }
    }
  }
  o.runtime_socket = socket;
  for (const auto& [label, tags] : config.GetStringListMap("container_labels_as_tags")) {
    if (!tags.empty()) o.labels_as_tags[label] = tags.front();
  }
  o.proc_root = config.GetString("container_proc_root");
  o.cgroup_root = config.GetString("container_cgroup_root");
  return o;
}

container::TagCardinality ParseCardinality(std::string_view text) {
  if (text == "high") return container::TagCardinality::kHigh;
  if (text == "orchestrator") return container::TagCardinality::kOrchestrator;
  return container::TagCardinality::kLow;
}

Tagger::Tagger(TaggerOptions options)
    : options_(std::move(options)),
      origins_(container::OriginCache::Options{.proc_root = options_.proc_root,
                                               .cgroup_root = options_.cgroup_root,
                                               .max_entries = 8192,
                                               .ttl_seconds = 60}) {}

Tagger::~Tagger() { Stop(); }

int64_t Tagger::NowUnix() { return static_cast<int64_t>(std::time(nullptr)); }

void Tagger::Start() {
  started_unix_ms_ = absl::ToUnixMillis(absl::Now());
  if (!options_.enabled || options_.runtime_socket.empty()) {
    log::Get("tagger")->info("no container runtime socket{}: container tags are off",
                             options_.enabled ? " found (set container_runtime_socket)" : "");
    return;
  }
  container::ContainerMetaStore::Options store_options;
  store_options.client.socket_path = options_.runtime_socket;
  store_options.max_containers = options_.max_containers;
  store_ = std::make_unique<container::ContainerMetaStore>(store_options);
  absl::Status status = store_->Start();
  if (!status.ok()) {
    log::Get("tagger")->warn("container runtime at {}: {} (retrying)", options_.runtime_socket,
                             status.message());
  } else {
    log::Get("tagger")->info("following container runtime at {}", options_.runtime_socket);
  }
}

void Tagger::Stop() {
  if (store_) store_->Stop();
}

Tagger::Answer Tagger::ForContainer(std::string_view container_id,
                                    container::TagCardinality cardinality) const {
  Answer answer;
  answer.container_id = std::string(container_id);
  std::lock_guard<std::mutex> lock(counters_mu_);
  ++counters_["lookups"];
  if (container_id.empty() || !store_) return answer;
  std::optional<container::ContainerMeta> meta = store_->Get(container_id);
  if (!meta) {
    ++counters_["lookups_unknown_container"];
    return answer;
  }
  answer.tags = container::ContainerTags(*meta, cardinality, options_.labels_as_tags);
  return answer;
}

Tagger::Answer Tagger::ForPid(pid_t pid, container::TagCardinality cardinality) const {
  return ForContainer(origins_.ForPid(pid, NowUnix()), cardinality);
}

Tagger::Answer Tagger::ForCgroupInode(uint64_t inode, container::TagCardinality cardinality) const {
  return ForContainer(origins_.ForCgroupInode(inode, NowUnix()), cardinality);
}

Tagger::Answer Tagger::Lookup(const core::TaggerLookupRequest& request) const {
  container::TagCardinality cardinality = ParseCardinality(request.cardinality());
  if (!request.container_id().empty()) return ForContainer(request.container_id(), cardinality);
  if (request.pid() > 0) return ForPid(request.pid(), cardinality);
  if (request.cgroup_inode() > 0) return ForCgroupInode(request.cgroup_inode(), cardinality);
  return Answer{};
}

void Tagger::AppendContainerTags(std::string_view container_id, std::string_view cardinality,
                                 std::vector<std::string>* out) {
  Answer answer = ForContainer(container_id, ParseCardinality(cardinality));
  for (std::string& tag : answer.tags) out->push_back(std::move(tag));
}

core::ComponentStatus Tagger::Status() const {
  core::ComponentStatus row;
  row.set_name("tagger");
  row.set_version(DOGWATCH_VERSION);
  row.set_pid(getpid());
  row.set_started_unix_ms(started_unix_ms_);
  row.set_reported_unix_ms(absl::ToUnixMillis(absl::Now()));
  auto& info = *row.mutable_info();
  auto& counters = *row.mutable_counters();
  info["runtime_socket"] = options_.runtime_socket.empty() ? "(none)" : options_.runtime_socket;
  if (!store_) {
    row.set_state(options_.enabled ? "disabled" : "off");
    if (options_.enabled)
      row.set_last_error("no container runtime socket found (set container_runtime_socket)");
  } else {
    container::ContainerMetaStore::Counters c = store_->counters();
    row.set_state(c.connected ? "running" : "degraded");
    if (!c.last_error.empty()) row.set_last_error(c.last_error);
    counters["containers"] = static_cast<int64_t>(store_->List().size());
    counters["runtime_events"] = c.events;
    counters["runtime_event_parse_errors"] = c.event_parse_errors;
    counters["runtime_inspect_errors"] = c.inspect_errors;
    counters["runtime_resyncs"] = c.resyncs;
    counters["runtime_reconnects"] = c.reconnects;
    counters["dropped_over_limit"] = c.dropped_over_limit;
  }
  container::OriginCache::Counters origin = origins_.counters();
  counters["origin_cache_hits"] = origin.hits;
  counters["origin_cache_misses"] = origin.misses;
  counters["origin_cache_evictions"] = origin.evictions;
  std::lock_guard<std::mutex> lock(counters_mu_);
  for (const auto& [name, value] : counters_) counters[name] = value;
  return row;
}

}  // namespace dogwatch::tagger
