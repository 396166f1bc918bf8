#pragma once
// Container discovery and resource statistics from the cgroup filesystem, for the process-agent's
// container checks and the core's container metrics. Works on the three layouts real hosts run:
// cgroup v1 (one hierarchy per controller), v2 (one unified hierarchy) and hybrid (v1 controllers
// plus an empty or partly used v2 hierarchy, usually mounted at <root>/unified).
//
// A container is a cgroup directory whose path holds a container id (ContainerIdFromCgroupPath):
// podman "/libpod_parent/libpod-<id>", docker "/docker/<id>" or "docker-<id>.scope", kubepods...
// Collections never fail as a whole: a file that is missing or unreadable leaves the field unset
// and is counted, so one odd container (or a kernel without some file) costs one field, not a check.
//
// Every parser below is a pure function over file text (fuzzed by cgroup_parsers_fuzz).

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dogwatch::container {

// ---------------------------------------------------------------------------------------------
// Parsers (pure).

inline constexpr size_t kMaxKeyedEntries = 512;                     // memory.stat has ~60 keys on 6.x kernels
inline constexpr size_t kMaxCgroupProcs = 65536;                    // pids listed per cgroup directory
inline constexpr uint64_t kUnlimitedThreshold = uint64_t{1} << 62;  // v1 "no limit" is ~2^63

// "key value" lines (cpu.stat, memory.stat, cpuacct.stat, memory.events, memory.oom_control).
// Lines that are not "<key> <unsigned>" are skipped and counted in `malformed_lines`.
struct KeyedValues {
  std::vector<std::pair<std::string, uint64_t>> entries;
  size_t malformed_lines = 0;
  bool truncated = false;  // more than kMaxKeyedEntries entries
  std::optional<uint64_t> Get(std::string_view key) const;
};
KeyedValues ParseKeyedValues(std::string_view text);

// A single unsigned value ("12345\n"). "max" (v2 "no limit") gives nullopt.
absl::StatusOr<std::optional<uint64_t>> ParseSingleValue(std::string_view text);
// A single signed value (v1 cpu.cfs_quota_us is -1 without a limit).
absl::StatusOr<int64_t> ParseSignedValue(std::string_view text);

// cgroup v2 cpu.max: "<quota> <period>" or "max <period>".
struct CpuMax {
  std::optional<uint64_t> quota_us;  // nullopt: no limit
  uint64_t period_us = 100000;
};
absl::StatusOr<CpuMax> ParseCpuMax(std::string_view text);

struct IoBytes {
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
};
// v1 blkio.throttle.io_service_bytes_recursive / blkio.io_service_bytes_recursive:
// "<maj>:<min> Read <n>" lines summed over devices ("Total" lines ignored).
absl::StatusOr<IoBytes> ParseBlkioServiceBytes(std::string_view text);
// v2 io.stat: "<maj>:<min> rbytes=<n> wbytes=<n> rios=... " summed over devices.
absl::StatusOr<IoBytes> ParseIoStat(std::string_view text);
// /proc/<pid>/io: read_bytes / write_bytes (storage-layer bytes, like blkio).
absl::StatusOr<IoBytes> ParseProcIo(std::string_view text);
// cgroup.procs: one pid per line; at most `max_pids` kept (extra counted in *dropped).
std::vector<pid_t> ParseCgroupProcs(std::string_view text, size_t max_pids, size_t* dropped = nullptr);

// ---------------------------------------------------------------------------------------------
// Layout.

enum class CgroupLayout { kNone, kV1, kV2, kHybrid };
std::string_view CgroupLayoutName(CgroupLayout layout);

struct CgroupHierarchies {
  CgroupLayout layout = CgroupLayout::kNone;
  std::string root;     // e.g. /sys/fs/cgroup or /host/sys/fs/cgroup
  std::string unified;  // the v2 hierarchy's directory, "" when there is none
  // v1 controller ("cpu", "cpuacct", "memory", "blkio", "pids", "name=systemd"...) → hierarchy
  // directory. Co-mounted controllers ("cpu,cpuacct") map to the same directory.
  std::map<std::string, std::string> v1;
  // Each distinct hierarchy once (symlinks and repeated mounts folded): what discovery walks.
  struct Hierarchy {
    std::string dir;
    bool unified = false;
    std::vector<std::string> controllers;  // v1 controllers mounted there; empty for unified
  };
  std::vector<Hierarchy> distinct;
};
// Inspects `cgroup_root`: a root holding cgroup.controllers is v2; otherwise each subdirectory
// holding cgroup.procs is a v1 hierarchy named by its controllers, or the unified one if it holds
// cgroup.controllers. Error only when neither is found (not a cgroup filesystem).
absl::StatusOr<CgroupHierarchies> DetectCgroupHierarchies(const std::string& cgroup_root);

// ---------------------------------------------------------------------------------------------
// Discovery and statistics.

struct ContainerCgroup {
  std::string container_id;
  std::string relative_path;                   // as in /proc/<pid>/cgroup, e.g. "/libpod_parent/libpod-<id>"
  std::string unified_dir;                     // absolute; "" when the container has no v2 directory
  std::map<std::string, std::string> v1_dirs;  // controller → absolute directory
};

struct DiscoveryOptions {
  size_t max_containers = 4096;
  size_t max_directories = 200000;  // directories visited over all hierarchies
};
struct DiscoveryCounters {
  size_t directories_visited = 0;
  bool directory_limit_hit = false;
  size_t containers_dropped = 0;  // ids found beyond max_containers
};
// Walks every hierarchy breadth-first; the shallowest directory holding an id is the container's
// (a container running systemd has nested cgroups below it, which its stats already include).
std::vector<ContainerCgroup> DiscoverContainerCgroups(const CgroupHierarchies& hierarchies,
                                                      const DiscoveryOptions& options,
                                                      DiscoveryCounters* counters = nullptr);

struct CpuStats {
  std::optional<uint64_t> usage_ns;   // cpuacct.usage / cpu.stat usage_usec
  std::optional<uint64_t> user_ns;    // cpuacct.stat (USER_HZ ticks) / cpu.stat user_usec
  std::optional<uint64_t> system_ns;  // cpuacct.stat / cpu.stat system_usec
  std::optional<uint64_t> periods;
  std::optional<uint64_t> throttled_periods;
  std::optional<uint64_t> throttled_time_ns;
  std::optional<double> limit_cores;  // quota / period; nullopt: no limit
  std::optional<uint64_t> shares;     // v1 cpu.shares, or v2 cpu.weight
};
struct MemoryStats {
  std::optional<uint64_t> usage_bytes;      // usage_in_bytes / memory.current
  std::optional<uint64_t> rss_bytes;        // memory.stat total_rss / anon
  std::optional<uint64_t> cache_bytes;      // memory.stat total_cache / file
  std::optional<uint64_t> limit_bytes;      // nullopt: no limit
  std::optional<uint64_t> max_usage_bytes;  // max_usage_in_bytes / memory.peak
  std::optional<uint64_t> oom_events;       // oom_control oom_kill / memory.events oom_kill
  std::optional<uint64_t> failcnt;          // v1 memory.failcnt / v2 memory.events max
};
struct PidsStats {
  std::optional<uint64_t> current;
  std::optional<uint64_t> limit;  // nullopt: "max"
};
enum class IoSource { kNone, kBlkio, kIoStat, kProcPids };
struct IoStats {
  std::optional<uint64_t> read_bytes;
  std::optional<uint64_t> write_bytes;
  IoSource source = IoSource::kNone;
};

struct ContainerStats {
  std::string container_id;
  std::string relative_path;
  int64_t collected_at_ns = 0;  // CLOCK_MONOTONIC, for rates
  std::vector<pid_t> pids;      // every process of the cgroup (and nested cgroups), sorted
  CpuStats cpu;
  MemoryStats memory;
  PidsStats pids_stats;
  IoStats io;
  size_t missing_files = 0;  // expected files absent or unreadable
  size_t parse_errors = 0;   // files present but not understood
};

struct StatsOptions {
  std::string proc_root = "/proc";
  size_t max_file_bytes = 64 * 1024;
  size_t max_pids = 4096;  // per container; extra pids are dropped (counted)
};
// Reads every statistic of one container. v1 controller files win over v2 ones in hybrid layouts
// (the v2 side then usually only has cpu.stat). I/O falls back to /proc/<pid>/io of the
// container's pids when the cgroup has no I/O file or reports zero (blkio misses buffered writes).
ContainerStats ReadContainerStats(const ContainerCgroup& cgroup, const StatsOptions& options,
                                  int64_t now_monotonic_ns);

// Per-second rates between two collections of one container. CPU percentages are relative to one
// core (100 = one core busy), like Datadog's container check (docker.cpu.user etc.).
struct ContainerRates {
  double interval_seconds = 0;
  std::optional<double> cpu_total_pct;
  std::optional<double> cpu_user_pct;
  std::optional<double> cpu_system_pct;
  std::optional<double> cpu_throttled_pct;  // share of periods throttled
  std::optional<double> io_read_bytes_per_s;
  std::optional<double> io_write_bytes_per_s;
};
// Fields stay nullopt when either side lacks the counter or it went backwards (a restarted
// container reusing the id, or /proc/<pid>/io sums losing an exited process).
ContainerRates ComputeRates(const ContainerStats& previous, const ContainerStats& current);

// Discovery + stats + rates against the previous collection, for periodic checks. Not
// thread-safe: one collector per check, called from one thread at a time.
class CgroupCollector {
 public:
  struct Options {
    std::string cgroup_root = "/sys/fs/cgroup";  // /host/sys/fs/cgroup when the agent is in a container
    std::string proc_root = "/proc";
    DiscoveryOptions discovery;
    size_t max_file_bytes = 64 * 1024;
    size_t max_pids = 4096;
  };
  explicit CgroupCollector(Options options);

  // Detects the layout; call once (Collect() calls it when it has not succeeded yet).
  absl::Status Init();
  const CgroupHierarchies& hierarchies() const { return hierarchies_; }

  struct Container {
    ContainerStats stats;
    std::optional<ContainerRates> rates;  // nullopt on the first collection that sees it
  };
  struct Collection {
    std::vector<Container> containers;
    DiscoveryCounters discovery;
    size_t missing_files = 0;
    size_t parse_errors = 0;
  };
  // Error only when the cgroup filesystem cannot be found at all.
  absl::StatusOr<Collection> Collect();
  // Stats of one container id without a walk (uses the directories of the last collection).
  std::optional<ContainerStats> StatsFor(std::string_view container_id) const;

 private:
  Options options_;
  bool initialized_ = false;
  CgroupHierarchies hierarchies_;
  std::map<std::string, ContainerCgroup, std::less<>> last_cgroups_;
  std::map<std::string, ContainerStats, std::less<>> previous_;  // bounded by max_containers
};

}  // namespace dogwatch::container
