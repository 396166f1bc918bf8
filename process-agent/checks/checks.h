#pragma once
// The process-agent's four checks (process, container, rtprocess, rtcontainer): one collection
// each, converted to the intake's messages, split per max_per_message / max_message_bytes and
// framed (V3 header + zstd protobuf) with Datadog's request headers, ready for the core's Submit.
//
// One ProcessCollector (held descriptors, idle shortcut) serves both process checks, so process
// rates are relative to the previous collection whichever check made it (with the real-time check
// on, the process check's CPU % covers the last 2 s). Each check has its own CgroupCollector, so
// container rates cover that check's own interval even when two checks run back to back.
// Run() is meant for one scheduling thread; Counters() may be called from any thread.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/container/cgroup.h"
#include "common/container/runtime.h"
#include "common/http/message.h"
#include "datadog/process/agent.pb.h"
#include "process-agent/checks/convert.h"
#include "process-agent/payload/chunking.h"
#include "process-agent/payload/message.h"
#include "process-agent/procfs/procfs.h"
#include "process-agent/procfs/scrub.h"

namespace dogwatch::process {

enum class CheckKind { kProcess, kContainer, kRealTimeProcess, kRealTimeContainer };
inline constexpr CheckKind kAllChecks[] = {CheckKind::kProcess, CheckKind::kContainer,
                                           CheckKind::kRealTimeProcess, CheckKind::kRealTimeContainer};

// "process", "container", "rtprocess", "rtcontainer" (the `process-agent check` names).
std::string_view CheckName(CheckKind kind);
std::optional<CheckKind> ParseCheckKind(std::string_view name);
MessageType CheckMessageType(CheckKind kind);
// /api/v1/collector (process, rtprocess) or /api/v1/container (container, rtcontainer).
std::string_view CheckPath(CheckKind kind);
// rtprocess and rtcontainer: they run only while the intake asks for real-time data.
bool IsRealTime(CheckKind kind);

// The host's platform and kernel, as the process and connections messages report them. An
// unreadable os-release leaves its fields empty.
struct HostFacts {
  std::string architecture;      // uname machine
  std::string kernel_version;    // uname release
  std::string platform;          // os-release ID
  std::string platform_version;  // os-release VERSION_ID
  std::string platform_family;   // os-release ID_LIKE, else ID
};
HostFacts ReadHostFacts(const std::string& os_release_path = "/etc/os-release");

// Host facts every message carries: os-release, kernel, /proc/cpuinfo (at most 1024 CPUs),
// MemTotal. Unreadable files leave their fields empty.
datadog::process_agent::SystemInfo CollectSystemInfo(const std::string& proc_root);

// I/O counters and open descriptors of processes that /proc does not let this user read, from a
// privileged source (system-probe's GetProcessStats). open_fds < 0: unknown.
struct PrivilegedStat {
  int32_t pid = 0;
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
  uint64_t read_count = 0;
  uint64_t write_count = 0;
  int32_t open_fds = -1;
};
using PrivilegedStatsSource =
    std::function<absl::StatusOr<std::vector<PrivilegedStat>>(const std::vector<int32_t>& pids)>;

// A container's tags (high cardinality); errors are cached briefly and counted.
using TagLookup = std::function<absl::StatusOr<std::vector<std::string>>(const std::string& container_id)>;

struct ChecksOptions {
  std::string hostname;
  std::string agent_version;
  int64_t agent_start_time_s = 0;
  int32_t agent_pid = 0;  // for X-DD-Request-ID
  std::string proc_root = "/proc";
  std::string cgroup_root = "/sys/fs/cgroup";
  bool collect_containers = true;  // false: no cgroup walk at all (containers omitted)
  // Docker-compatible API socket for names, images, states, health, limits; "" = none.
  std::string runtime_socket;
  std::map<std::string, std::string> labels_as_tags;  // for locally computed tags
  CommandLineScrubber::Options scrub;
  ChunkLimits limits;
  datadog::process_agent::ContainerHostType container_host_type = datadog::process_agent::notSpecified;
  // Container tags from the core's tagger. Unset: computed here from the runtime's metadata with
  // container::ContainerTags (what `process-agent check` does without a core).
  TagLookup tag_lookup;
  int64_t tag_ttl_ms = 5 * 60 * 1000;    // cached answers
  int64_t tag_error_ttl_ms = 10 * 1000;  // cached failures: tagless until then
  size_t max_cached_tags = 4096;         // cleared when full (counted)
  ProcessCollector::Options collector;   // proc_root and scrubber are set from the above
  // Asked, once per process collection, for the pids whose io or fd count /proc refused; what it
  // answers fills them in (rates from its previous answers). Unset: those stay unreadable (-1).
  PrivilegedStatsSource privileged_stats;
  std::string privileged_stats_name;      // for status, e.g. "system-probe (/var/run/.../sysprobe.sock)"
  size_t max_privileged_pids = 10000;     // pids per request; more stay unreadable
  std::function<int64_t()> monotonic_ms;  // test seam for the tag cache
};

struct EncodedPayload {
  std::string path;
  http::HttpHeaders headers;
  std::string body;
};

struct CheckRun {
  CheckKind kind = CheckKind::kProcess;
  int64_t timestamp_ms = 0;
  // CollectorProc, CollectorContainer, CollectorRealTime or CollectorContainerRealTime.
  std::vector<std::unique_ptr<google::protobuf::Message>> messages;
  std::vector<EncodedPayload> payloads;  // one per message, same order
  size_t processes = 0;
  size_t containers = 0;
  ChunkStats chunk;
};

class Checks {
 public:
  explicit Checks(ChecksOptions options);
  ~Checks();
  Checks(const Checks&) = delete;
  Checks& operator=(const Checks&) = delete;

  // Starts following the runtime when a socket is configured. An unreachable runtime is not an
  // error (the store retries; containers go out without metadata meanwhile): the status says so.
  absl::Status Start();
  void Stop();

  // Runs one collection of `kind`. Errors only when /proc (process checks) cannot be read at all,
  // or encoding fails; a missing cgroup filesystem gives a run without containers.
  absl::StatusOr<CheckRun> Run(CheckKind kind);

  // Records what the submission of one payload did (counted per check).
  void RecordSubmit(CheckKind kind, const EncodedPayload& payload, const absl::Status& status);

  // "<check>_runs", "<check>_items", "<check>_payloads", "<check>_bytes", "<check>_submit_errors",
  // "<check>_run_errors", "<check>_last_run_us", "<check>_oversized", "<check>_dropped", plus the
  // collectors' ("proc_unreadable_io", "cgroup_missing_files", "tagger_errors", ...).
  std::map<std::string, int64_t> Counters() const;
  // Runtime connection and collector budget, for status info.
  std::map<std::string, std::string> Info() const;

  bool runtime_configured() const { return !options_.runtime_socket.empty(); }
  bool cgroups_present();

 private:
  struct CheckCounters {
    int64_t runs = 0, run_errors = 0, items = 0, payloads = 0, bytes = 0, submit_errors = 0, last_run_us = 0,
            oversized = 0, dropped = 0;
  };
  struct CachedTags {
    std::vector<std::string> tags;
    int64_t expires_ms = 0;
  };

  absl::StatusOr<Snapshot> CollectProcesses();
  void FillPrivileged(Snapshot* snapshot);
  std::vector<ContainerView> CollectContainers(CheckKind kind);
  std::vector<std::string> TagsFor(const std::string& container_id,
                                   const std::optional<container::ContainerMeta>& meta);
  BatchContext NewBatchContext() const;
  template <typename Message>
  absl::Status Encode(CheckKind kind, std::vector<Message> messages, int64_t timestamp_ms, CheckRun* run);
  int64_t NowMs() const;

  ChecksOptions options_;
  CommandLineScrubber scrubber_;
  std::unique_ptr<ProcessCollector> processes_;
  std::map<CheckKind, std::unique_ptr<container::CgroupCollector>> cgroups_;  // empty: no containers
  std::unique_ptr<container::ContainerMetaStore> store_;
  datadog::process_agent::SystemInfo system_info_;
  absl::flat_hash_map<std::string, CachedTags> tag_cache_;

  mutable std::mutex mu_;  // guards everything below
  std::map<CheckKind, CheckCounters> counters_;
  CollectCounters last_proc_counters_;
  int64_t cgroup_missing_files_ = 0, cgroup_parse_errors_ = 0, cgroup_errors_ = 0, containers_dropped_ = 0;
  int64_t tag_lookups_ = 0, tag_cache_hits_ = 0, tag_errors_ = 0, tag_cache_clears_ = 0;
  std::string cgroup_layout_;
  // The privileged source's last counters per pid (with the process's start time, so a reused pid
  // starts over), for rates; replaced at every answer.
  struct PrivilegedIo {
    uint64_t start_ticks = 0;
    int64_t timestamp_ms = 0;
    uint64_t read_bytes = 0, write_bytes = 0, read_count = 0, write_count = 0;
  };
  absl::flat_hash_map<int32_t, PrivilegedIo> privileged_previous_;  // scheduling thread only
  int64_t privileged_requests_ = 0, privileged_errors_ = 0, privileged_filled_io_ = 0,
          privileged_filled_fd_ = 0;
  int64_t privileged_last_filled_ = 0;
  std::string privileged_last_error_;
  std::string last_tag_error_;
};

}  // namespace dogwatch::process
