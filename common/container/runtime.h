#pragma once
// Container runtime metadata over the Docker Engine API (dockerd, or podman's Docker-compatible
// `podman system service`) on a unix socket, and the tags Datadog's tagger derives from it.
//
//   RuntimeClient       one-shot requests: list, inspect, ping, and the /events stream.
//   ContainerMetaStore  a bounded cache kept current by a thread that follows /events (so the
//                       tagger and the process-agent read memory, never poll the runtime), with a
//                       full resync after every reconnect because /events has no replay guarantee.
//   ContainerTags       Datadog's container tag set at a cardinality (workloadmeta_extract.go).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dogwatch::container {

struct ContainerMeta {
  std::string id;
  std::string name;      // without Docker's leading '/'
  std::string image;     // the reference it was created from, e.g. "localhost/app:1"
  std::string image_id;  // "sha256:<hex>"
  std::map<std::string, std::string> labels;
  // Only the environment variables that carry tags (DD_ENV, DD_SERVICE, DD_VERSION): the rest may
  // hold secrets and is never kept.
  std::map<std::string, std::string> tag_env;
  std::string state;   // "running", "exited", "created", "paused", "restarting", "dead"
  std::string health;  // "healthy", "unhealthy", "starting", or "" without a health check
  int64_t created_unix = 0;
  int64_t started_unix = 0;   // 0: never started
  int64_t finished_unix = 0;  // 0: not finished
  int pid = 0;                // host pid of the main process; 0 when not running
  int exit_code = 0;
  std::optional<double> cpu_limit_cores;      // HostConfig NanoCpus or CpuQuota/CpuPeriod
  std::optional<int64_t> memory_limit_bytes;  // HostConfig Memory (0 there = none)
  bool inspected = false;                     // false: only the list's summary fields are set
};

struct ContainerEvent {
  std::string id;
  std::string action;  // "create", "start", "die", "stop", "destroy" (podman: "remove"), ...
  std::string name;
  std::string image;
  int64_t time_unix_nano = 0;
};

inline constexpr size_t kMaxEventLineBytes = 256 * 1024;

// Pure parsers of the Engine API's JSON (bounded: at most `max_containers` list entries, 4096
// labels per container; anything beyond is dropped).
absl::StatusOr<std::vector<ContainerMeta>> ParseContainerList(std::string_view json, size_t max_containers);
absl::StatusOr<ContainerMeta> ParseContainerInspect(std::string_view json);
absl::StatusOr<ContainerEvent> ParseContainerEvent(std::string_view json_line);
// RFC 3339 with optional fraction and offset → unix seconds; "0001-01-01T00:00:00Z" (Docker's
// "never") → 0.
absl::StatusOr<int64_t> ParseRfc3339(std::string_view text);

// "registry:5000/ns/app:1.2@sha256:..." → name "registry:5000/ns/app", short_name "app", tag "1.2".
// The tag defaults to "latest" when the reference has neither tag nor digest (Docker's meaning),
// and is "" for a digest-only reference.
struct ImageRef {
  std::string name;
  std::string short_name;
  std::string tag;
};
ImageRef SplitImageRef(std::string_view image);

enum class TagCardinality { kLow, kOrchestrator, kHigh };
// Tags ("key:value"), sorted and unique, that a metric from this container gets at `cardinality`:
//   low:          image_name, short_image, image_tag, image_id, docker_image, env/service/version
//                 (com.datadoghq.tags.* labels or DD_* env), kube_namespace, kube_container_name,
//                 swarm_service, swarm_namespace, rancher_stack, rancher_service, git.commit.sha,
//                 git.repository_url, com.datadoghq.ad.tags entries, labels_as_tags
//   orchestrator: + pod_name
//   high:         + container_name, container_id, rancher_container, "+"-prefixed labels_as_tags
// `labels_as_tags` is Datadog's container_labels_as_tags: label name (matched case-insensitively)
// → tag name; a tag name starting with '+' makes the tag high cardinality.
std::vector<std::string> ContainerTags(const ContainerMeta& meta, TagCardinality cardinality,
                                       const std::map<std::string, std::string>& labels_as_tags = {});

class RuntimeClient {
 public:
  struct Options {
    std::string socket_path = "/var/run/docker.sock";  // container_runtime_socket
    std::string api_version = "v1.41";
    std::chrono::milliseconds connect_timeout{2000};
    std::chrono::milliseconds request_timeout{10000};
    size_t max_response_bytes = 32 * 1024 * 1024;
    size_t max_containers = 4096;
  };
  explicit RuntimeClient(Options options);

  absl::Status Ping() const;
  // Every container, running or not (/containers/json?all=1); summary fields only.
  absl::StatusOr<std::vector<ContainerMeta>> ListContainers() const;
  // NotFoundError when the runtime does not know `id`.
  absl::StatusOr<ContainerMeta> Inspect(std::string_view id) const;
  // Follows /events for container events (since `since_unix` when > 0) and calls `on_event` for
  // each until `should_stop()` returns true (checked about once a second) or the stream ends.
  // Returns OK when stopped, an error describing why the stream ended otherwise.
  // Lines that are not container events go to `on_bad_event` (when set) and are skipped.
  absl::Status StreamEvents(int64_t since_unix, const std::function<void(const ContainerEvent&)>& on_event,
                            const std::function<bool()>& should_stop,
                            const std::function<void(const absl::Status&)>& on_bad_event = nullptr) const;

  const Options& options() const { return options_; }

 private:
  struct Response {
    long status = 0;
    std::string body;
  };
  absl::StatusOr<Response> Get(const std::string& path) const;
  absl::Status CheckSocket() const;

  Options options_;
};

class ContainerMetaStore {
 public:
  struct Options {
    RuntimeClient::Options client;
    size_t max_containers = 4096;
    std::chrono::milliseconds initial_backoff{500};
    std::chrono::milliseconds max_backoff{30000};
  };
  // Called on the events thread after the cache has been updated; `meta` is nullopt when the
  // container is gone (destroyed, or unknown to the runtime by the time it was inspected).
  using Listener = std::function<void(const ContainerEvent& event, const std::optional<ContainerMeta>& meta)>;

  explicit ContainerMetaStore(Options options);
  ~ContainerMetaStore();  // Stop()
  ContainerMetaStore(const ContainerMetaStore&) = delete;
  ContainerMetaStore& operator=(const ContainerMetaStore&) = delete;

  // Loads every container (list + inspect), then starts the events thread. Fails, naming the
  // socket, when the runtime cannot be reached; the store is then empty and not running.
  absl::Status Start(Listener listener = nullptr);
  void Stop();  // joins the thread (within about a second)

  std::optional<ContainerMeta> Get(std::string_view id) const;
  std::vector<ContainerMeta> List() const;
  // Lookup by host pid of a container's main process (0 → nullopt).
  std::optional<ContainerMeta> ForPid(int pid) const;

  struct Counters {
    int64_t events = 0;  // container events received
    int64_t event_parse_errors = 0;
    int64_t inspect_errors = 0;      // inspect failures other than "no such container"
    int64_t resyncs = 0;             // full list + inspect passes
    int64_t reconnects = 0;          // /events streams that ended and were reopened
    int64_t dropped_over_limit = 0;  // containers not cached because max_containers was reached
    bool connected = false;          // the events stream is open
    std::string last_error;
  };
  Counters counters() const;

 private:
  absl::Status Resync();
  void Upsert(ContainerMeta meta);
  void HandleEvent(const ContainerEvent& event);
  void Run();

  const Options options_;
  RuntimeClient client_;
  Listener listener_;
  mutable std::mutex mu_;
  std::map<std::string, ContainerMeta, std::less<>> containers_;
  Counters counters_;
  std::atomic<bool> stopping_{false};
  std::condition_variable stop_cv_;
  std::thread thread_;
};

}  // namespace dogwatch::container
