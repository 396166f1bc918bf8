#include "common/container/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <deque>

#include "common/container/container_id.h"
#include "common/strings/strings.h"

namespace dogwatch::container {
namespace {

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

// Splits on runs of spaces/tabs.
std::vector<std::string_view> Fields(std::string_view line, size_t max_fields) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < line.size() && out.size() < max_fields) {
    while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
    if (pos >= line.size()) break;
    size_t end = pos;
    while (end < line.size() && line[end] != ' ' && line[end] != '\t') ++end;
    out.push_back(line.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

// Calls `fn(line)` for each line without its '\n' (and without a trailing '\r').
template <typename Fn>
void ForEachLine(std::string_view text, Fn fn) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!fn(line)) return;
    pos = end + 1;
  }
}

// Saturating add: counters summed over devices or pids must not wrap into small numbers.
uint64_t AddSat(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

// Reads at most `cap` bytes of a kernel file (st_size is 0 or 4096 for cgroup files, so no stat).
std::optional<std::string> ReadKernelFile(const std::string& path, size_t cap) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  bool failed = false;
  while (out.size() < cap) {
    ssize_t n = ::read(fd, buf, std::min(sizeof(buf), cap - out.size()));
    if (n < 0) {
      failed = true;  // e.g. EACCES on read, or the cgroup went away under us
      break;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (failed) return std::nullopt;
  return out;
}

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

int64_t MonotonicNowNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Parsers.

std::optional<uint64_t> KeyedValues::Get(std::string_view key) const {
  for (const auto& entry : entries) {
    if (entry.first == key) return entry.second;
  }
  return std::nullopt;
}

KeyedValues ParseKeyedValues(std::string_view text) {
  KeyedValues out;
  ForEachLine(text, [&](std::string_view line) {
    if (TrimSpace(line).empty()) return true;
    std::vector<std::string_view> fields = Fields(line, 3);
    uint64_t value = 0;
    if (fields.size() != 2 || !ParseU64(fields[1], &value)) {
      ++out.malformed_lines;
      return true;
    }
    if (out.entries.size() >= kMaxKeyedEntries) {
      out.truncated = true;
      return false;
    }
    out.entries.emplace_back(std::string(fields[0]), value);
    return true;
  });
  return out;
}

absl::StatusOr<std::optional<uint64_t>> ParseSingleValue(std::string_view text) {
  std::string_view value = TrimSpace(text);
  if (value == "max") return std::optional<uint64_t>();
  uint64_t parsed = 0;
  if (!ParseU64(value, &parsed)) {
    return absl::InvalidArgumentError(
        strings::Cat("expected an unsigned number or \"max\", got \"", value.substr(0, 32), "\""));
  }
  return std::optional<uint64_t>(parsed);
}

absl::StatusOr<int64_t> ParseSignedValue(std::string_view text) {
  std::string_view value = TrimSpace(text);
  int64_t parsed = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
    return absl::InvalidArgumentError(
        strings::Cat("expected a signed number, got \"", value.substr(0, 32), "\""));
  }
  return parsed;
}

absl::StatusOr<CpuMax> ParseCpuMax(std::string_view text) {
  std::vector<std::string_view> fields = Fields(TrimSpace(text), 3);
  if (fields.empty() || fields.size() > 2) {
    return absl::InvalidArgumentError("cpu.max: expected \"<quota|max> [<period>]\"");
  }
  CpuMax out;
  if (fields[0] != "max") {
    uint64_t quota = 0;
    if (!ParseU64(fields[0], &quota)) return absl::InvalidArgumentError("cpu.max: bad quota");
    out.quota_us = quota;
  }
  if (fields.size() == 2) {
    uint64_t period = 0;
    if (!ParseU64(fields[1], &period) || period == 0) {
      return absl::InvalidArgumentError("cpu.max: bad period");
    }
    out.period_us = period;
  }
  return out;
}

absl::StatusOr<IoBytes> ParseBlkioServiceBytes(std::string_view text) {
  IoBytes out;
  bool malformed = false;
  ForEachLine(text, [&](std::string_view line) {
    std::vector<std::string_view> fields = Fields(line, 4);
    if (fields.empty()) return true;
    if (fields[0] == "Total") return true;
    uint64_t value = 0;
    if (fields.size() != 3 || !ParseU64(fields[2], &value)) {
      malformed = true;
      return false;
    }
    if (fields[1] == "Read") out.read_bytes = AddSat(out.read_bytes, value);
    if (fields[1] == "Write") out.write_bytes = AddSat(out.write_bytes, value);
    return true;
  });
  if (malformed) return absl::InvalidArgumentError("blkio: expected \"<maj:min> <op> <bytes>\" lines");
  return out;
}

absl::StatusOr<IoBytes> ParseIoStat(std::string_view text) {
  IoBytes out;
  bool malformed = false;
  ForEachLine(text, [&](std::string_view line) {
    std::vector<std::string_view> fields = Fields(line, 64);
    if (fields.empty()) return true;
    if (fields[0].find(':') == std::string_view::npos) {
      malformed = true;
      return false;
    }
    for (size_t i = 1; i < fields.size(); ++i) {
      size_t eq = fields[i].find('=');
      if (eq == std::string_view::npos) continue;
      std::string_view key = fields[i].substr(0, eq);
      uint64_t value = 0;
      if (!ParseU64(fields[i].substr(eq + 1), &value)) continue;  // newer kernels add non-numeric keys
      if (key == "rbytes") out.read_bytes = AddSat(out.read_bytes, value);
      if (key == "wbytes") out.write_bytes = AddSat(out.write_bytes, value);
    }
    return true;
  });
  if (malformed) return absl::InvalidArgumentError("io.stat: expected \"<maj:min> key=value...\" lines");
  return out;
}

absl::StatusOr<IoBytes> ParseProcIo(std::string_view text) {
  KeyedValues values;
  // /proc/<pid>/io is "key: value"; reuse the keyed parser after dropping the colons.
  std::string normalized(text.substr(0, 64 * 1024));
  std::replace(normalized.begin(), normalized.end(), ':', ' ');
  values = ParseKeyedValues(normalized);
  std::optional<uint64_t> read = values.Get("read_bytes");
  std::optional<uint64_t> write = values.Get("write_bytes");
  if (!read || !write) return absl::InvalidArgumentError("/proc/<pid>/io: no read_bytes/write_bytes");
  return IoBytes{*read, *write};
}

std::vector<pid_t> ParseCgroupProcs(std::string_view text, size_t max_pids, size_t* dropped) {
  std::vector<pid_t> out;
  ForEachLine(text, [&](std::string_view line) {
    line = TrimSpace(line);
    uint64_t pid = 0;
    if (!ParseU64(line, &pid) || pid == 0 || pid > static_cast<uint64_t>(INT_MAX)) return true;
    if (out.size() >= max_pids) {
      if (dropped != nullptr) ++*dropped;
      return true;
    }
    out.push_back(static_cast<pid_t>(pid));
    return true;
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Layout.

std::string_view CgroupLayoutName(CgroupLayout layout) {
  switch (layout) {
    case CgroupLayout::kNone:
      return "none";
    case CgroupLayout::kV1:
      return "v1";
    case CgroupLayout::kV2:
      return "v2";
    case CgroupLayout::kHybrid:
      return "hybrid";
  }
  return "none";
}

absl::StatusOr<CgroupHierarchies> DetectCgroupHierarchies(const std::string& cgroup_root) {
  CgroupHierarchies out;
  out.root = cgroup_root;
  while (out.root.size() > 1 && out.root.back() == '/') out.root.pop_back();
  if (!IsDirectory(out.root)) {
    return absl::NotFoundError(strings::Cat("cgroup root ", out.root, " is not a directory"));
  }
  if (Exists(out.root + "/cgroup.controllers")) {
    out.layout = CgroupLayout::kV2;
    out.unified = out.root;
    out.distinct.push_back({out.root, true, {}});
    return out;
  }
  DIR* dir = ::opendir(out.root.c_str());
  if (dir == nullptr) return absl::PermissionDeniedError(strings::Cat("cannot list ", out.root));
  std::vector<std::pair<bool, std::string>> entries;  // (is symlink, name)
  while (dirent* entry = ::readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (entries.size() >= 256) break;  // a cgroup root has ~15 entries; bound a bogus path
    entries.emplace_back(entry->d_type == DT_LNK, std::string(name));
  }
  ::closedir(dir);
  // Real mounts first: "cpu,cpuacct" wins over its "cpu" and "cpuacct" symlinks.
  std::sort(entries.begin(), entries.end());
  std::map<std::pair<dev_t, ino_t>, size_t> index_by_inode;  // → position in out.distinct
  for (const auto& [is_link, name] : entries) {
    std::string path = strings::Cat(out.root, "/", name);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    bool unified = Exists(path + "/cgroup.controllers");
    if (!unified && !Exists(path + "/cgroup.procs")) continue;
    if (unified && !out.unified.empty()) continue;
    auto [it, first_time] = index_by_inode.emplace(std::make_pair(st.st_dev, st.st_ino), out.distinct.size());
    if (first_time) out.distinct.push_back({path, unified, {}});
    CgroupHierarchies::Hierarchy& hierarchy = out.distinct[it->second];
    if (unified) {
      out.unified = path;
      continue;
    }
    std::string_view controllers = name;
    if (controllers.starts_with("name=")) controllers.remove_prefix(5);
    for (std::string_view controller : strings::SplitAny(controllers, ",")) {
      if (controller.empty()) continue;
      // A symlink maps to its target's directory: the first (real) path is kept for each.
      if (out.v1.emplace(std::string(controller), hierarchy.dir).second) {
        hierarchy.controllers.emplace_back(controller);
      }
    }
  }
  if (out.v1.empty() && out.unified.empty()) {
    return absl::NotFoundError(strings::Cat("no cgroup hierarchy under ", out.root));
  }
  out.layout = out.v1.empty()        ? CgroupLayout::kV2
               : out.unified.empty() ? CgroupLayout::kV1
                                     : CgroupLayout::kHybrid;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Discovery.

std::vector<ContainerCgroup> DiscoverContainerCgroups(const CgroupHierarchies& hierarchies,
                                                      const DiscoveryOptions& options,
                                                      DiscoveryCounters* counters) {
  DiscoveryCounters local;
  DiscoveryCounters& count = counters != nullptr ? *counters : local;
  count = DiscoveryCounters{};
  std::map<std::string, ContainerCgroup> found;
  std::vector<std::string> order;  // first-seen order, for stable output

  for (const CgroupHierarchies::Hierarchy& walked : hierarchies.distinct) {
    const std::string& hierarchy = walked.dir;
    const std::vector<std::string>& controllers = walked.controllers;
    const bool is_unified = walked.unified;

    std::deque<std::string> pending{hierarchy};
    while (!pending.empty()) {
      if (count.directories_visited >= options.max_directories) {
        count.directory_limit_hit = true;
        break;
      }
      std::string dir_path = std::move(pending.front());
      pending.pop_front();
      ++count.directories_visited;
      DIR* dir = ::opendir(dir_path.c_str());
      if (dir == nullptr) continue;  // removed between listing and opening: a container that just left
      while (dirent* entry = ::readdir(dir)) {
        std::string_view name = entry->d_name;
        if (name == "." || name == "..") continue;
        if (entry->d_type != DT_DIR && entry->d_type != DT_UNKNOWN) continue;
        std::string child = strings::Cat(dir_path, "/", name);
        if (entry->d_type == DT_UNKNOWN && !IsDirectory(child)) continue;
        std::string id = ContainerIdFromCgroupPath(name);
        if (id.empty()) {
          if (pending.size() < options.max_directories) pending.push_back(std::move(child));
          continue;
        }
        auto it = found.find(id);
        if (it == found.end()) {
          if (found.size() >= options.max_containers) {
            ++count.containers_dropped;
            continue;
          }
          it = found.emplace(id, ContainerCgroup{}).first;
          it->second.container_id = id;
          it->second.relative_path = child.substr(hierarchy.size());
          order.push_back(id);
        }
        ContainerCgroup& cgroup = it->second;
        if (is_unified) {
          if (cgroup.unified_dir.empty()) {
            cgroup.unified_dir = child;
            cgroup.relative_path = child.substr(hierarchy.size());  // v2 path is what /proc shows on 0::
          }
        } else {
          for (const std::string& controller : controllers) cgroup.v1_dirs.emplace(controller, child);
        }
      }
      ::closedir(dir);
    }
  }
  std::vector<ContainerCgroup> out;
  out.reserve(order.size());
  for (const std::string& id : order) out.push_back(std::move(found[id]));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Statistics.

namespace {

class StatsReader {
 public:
  StatsReader(const StatsOptions& options, ContainerStats* stats) : options_(options), stats_(stats) {}

  // The file's text, or nullopt (counted as missing when `required`).
  std::optional<std::string> Read(const std::string& dir, std::string_view file, bool required = true) {
    std::optional<std::string> text = ReadKernelFile(strings::Cat(dir, "/", file), options_.max_file_bytes);
    if (!text && required) ++stats_->missing_files;
    return text;
  }
  std::optional<uint64_t> Unsigned(const std::string& dir, std::string_view file, bool* unlimited = nullptr,
                                   bool required = true) {
    std::optional<std::string> text = Read(dir, file, required);
    if (!text) return std::nullopt;
    absl::StatusOr<std::optional<uint64_t>> value = ParseSingleValue(*text);
    if (!value.ok()) {
      ++stats_->parse_errors;
      return std::nullopt;
    }
    if (!value->has_value() && unlimited != nullptr) *unlimited = true;
    return *value;
  }
  std::optional<KeyedValues> Keyed(const std::string& dir, std::string_view file, bool required = true) {
    std::optional<std::string> text = Read(dir, file, required);
    if (!text) return std::nullopt;
    KeyedValues values = ParseKeyedValues(*text);
    if (values.entries.empty() && values.malformed_lines > 0) {
      ++stats_->parse_errors;
      return std::nullopt;
    }
    return values;
  }
  ContainerStats& stats() { return *stats_; }
  const StatsOptions& options() const { return options_; }

 private:
  const StatsOptions& options_;
  ContainerStats* stats_;
};

std::string V1Dir(const ContainerCgroup& cgroup, const std::string& controller) {
  auto it = cgroup.v1_dirs.find(controller);
  return it == cgroup.v1_dirs.end() ? "" : it->second;
}

std::optional<uint64_t> LimitOrNone(std::optional<uint64_t> value) {
  if (value && *value >= kUnlimitedThreshold) return std::nullopt;
  return value;
}

void ReadCpu(const ContainerCgroup& cgroup, StatsReader& reader) {
  CpuStats& cpu = reader.stats().cpu;
  const std::string cpuacct = V1Dir(cgroup, "cpuacct");
  const std::string cpu_dir = V1Dir(cgroup, "cpu");
  const std::string& unified = cgroup.unified_dir;
  static const long ticks_per_second = [] {
    long hz = ::sysconf(_SC_CLK_TCK);
    return hz > 0 ? hz : 100;
  }();
  const uint64_t ns_per_tick = 1000000000ULL / static_cast<uint64_t>(ticks_per_second);

  if (!cpuacct.empty()) {
    cpu.usage_ns = reader.Unsigned(cpuacct, "cpuacct.usage");
    if (std::optional<KeyedValues> stat = reader.Keyed(cpuacct, "cpuacct.stat")) {
      if (auto user = stat->Get("user")) cpu.user_ns = *user * ns_per_tick;
      if (auto system = stat->Get("system")) cpu.system_ns = *system * ns_per_tick;
    }
  } else if (!unified.empty()) {
    if (std::optional<KeyedValues> stat = reader.Keyed(unified, "cpu.stat")) {
      if (auto usage = stat->Get("usage_usec")) cpu.usage_ns = *usage * 1000;
      if (auto user = stat->Get("user_usec")) cpu.user_ns = *user * 1000;
      if (auto system = stat->Get("system_usec")) cpu.system_ns = *system * 1000;
      // Throttling keys appear only when the cpu controller is enabled for the cgroup.
      if (cpu_dir.empty()) {
        cpu.periods = stat->Get("nr_periods");
        cpu.throttled_periods = stat->Get("nr_throttled");
        if (auto throttled = stat->Get("throttled_usec")) cpu.throttled_time_ns = *throttled * 1000;
      }
    }
  }

  if (!cpu_dir.empty()) {
    if (std::optional<KeyedValues> stat = reader.Keyed(cpu_dir, "cpu.stat")) {
      cpu.periods = stat->Get("nr_periods");
      cpu.throttled_periods = stat->Get("nr_throttled");
      cpu.throttled_time_ns = stat->Get("throttled_time");
    }
    std::optional<std::string> quota_text = reader.Read(cpu_dir, "cpu.cfs_quota_us");
    std::optional<uint64_t> period = reader.Unsigned(cpu_dir, "cpu.cfs_period_us");
    if (quota_text) {
      absl::StatusOr<int64_t> quota = ParseSignedValue(*quota_text);
      if (!quota.ok()) {
        ++reader.stats().parse_errors;
      } else if (*quota > 0 && period && *period > 0) {
        cpu.limit_cores = static_cast<double>(*quota) / static_cast<double>(*period);
      }
    }
    cpu.shares = reader.Unsigned(cpu_dir, "cpu.shares");
  } else if (!unified.empty()) {
    // cpu.max exists only when the cpu controller is enabled for this cgroup; without it there is
    // no limit to read, which is not an error.
    if (std::optional<std::string> text = reader.Read(unified, "cpu.max", /*required=*/false)) {
      absl::StatusOr<CpuMax> max = ParseCpuMax(*text);
      if (!max.ok()) {
        ++reader.stats().parse_errors;
      } else if (max->quota_us) {
        cpu.limit_cores = static_cast<double>(*max->quota_us) / static_cast<double>(max->period_us);
      }
      cpu.shares = reader.Unsigned(unified, "cpu.weight", nullptr, /*required=*/false);
    }
  }
}

void ReadMemory(const ContainerCgroup& cgroup, StatsReader& reader) {
  MemoryStats& memory = reader.stats().memory;
  const std::string v1 = V1Dir(cgroup, "memory");
  if (!v1.empty()) {
    memory.usage_bytes = reader.Unsigned(v1, "memory.usage_in_bytes");
    memory.limit_bytes = LimitOrNone(reader.Unsigned(v1, "memory.limit_in_bytes"));
    memory.max_usage_bytes = reader.Unsigned(v1, "memory.max_usage_in_bytes");
    memory.failcnt = reader.Unsigned(v1, "memory.failcnt");
    if (std::optional<KeyedValues> stat = reader.Keyed(v1, "memory.stat")) {
      // total_* include nested cgroups (a container running systemd); plain keys are this level only.
      memory.rss_bytes = stat->Get("total_rss");
      if (!memory.rss_bytes) memory.rss_bytes = stat->Get("rss");
      memory.cache_bytes = stat->Get("total_cache");
      if (!memory.cache_bytes) memory.cache_bytes = stat->Get("cache");
    }
    // oom_kill appeared in memory.oom_control with Linux 4.13.
    if (std::optional<KeyedValues> oom = reader.Keyed(v1, "memory.oom_control", /*required=*/false)) {
      memory.oom_events = oom->Get("oom_kill");
    }
    return;
  }
  const std::string& unified = cgroup.unified_dir;
  if (unified.empty()) return;
  // A v2 cgroup without the memory controller enabled has none of these files.
  std::optional<uint64_t> current = reader.Unsigned(unified, "memory.current", nullptr, /*required=*/false);
  if (!current) {
    ++reader.stats().missing_files;
    return;
  }
  memory.usage_bytes = current;
  memory.limit_bytes = LimitOrNone(reader.Unsigned(unified, "memory.max"));
  memory.max_usage_bytes =
      reader.Unsigned(unified, "memory.peak", nullptr, /*required=*/false);  // Linux 5.19+
  if (std::optional<KeyedValues> stat = reader.Keyed(unified, "memory.stat")) {
    memory.rss_bytes = stat->Get("anon");
    memory.cache_bytes = stat->Get("file");
  }
  if (std::optional<KeyedValues> events = reader.Keyed(unified, "memory.events")) {
    memory.oom_events = events->Get("oom_kill");
    memory.failcnt = events->Get("max");
  }
}

void ReadPids(const ContainerCgroup& cgroup, StatsReader& reader) {
  std::string dir = V1Dir(cgroup, "pids");
  // v2 has pids.* only where the pids controller is enabled for the cgroup: not an error otherwise.
  if (dir.empty() && !cgroup.unified_dir.empty() && Exists(cgroup.unified_dir + "/pids.current")) {
    dir = cgroup.unified_dir;
  }
  if (dir.empty()) return;
  reader.stats().pids_stats.current = reader.Unsigned(dir, "pids.current");
  bool unlimited = false;
  std::optional<uint64_t> max = reader.Unsigned(dir, "pids.max", &unlimited);
  reader.stats().pids_stats.limit = unlimited ? std::nullopt : max;
}

// A container's own cgroup tree is small (systemd inside makes a few dozen); a bound keeps a
// pathological one from turning a collection into a full walk.
constexpr size_t kMaxNestedCgroups = 256;

// Every pid of the container, nested cgroups included (bounded by max_pids and kMaxNestedCgroups).
void ReadProcesses(const ContainerCgroup& cgroup, StatsReader& reader) {
  std::string top = cgroup.unified_dir;
  for (const char* controller : {"pids", "cpu", "memory", "cpuacct"}) {
    if (!top.empty()) break;
    top = V1Dir(cgroup, controller);
  }
  if (top.empty() && !cgroup.v1_dirs.empty()) top = cgroup.v1_dirs.begin()->second;
  if (top.empty()) return;
  std::vector<pid_t>& pids = reader.stats().pids;
  std::deque<std::string> pending{top};
  size_t directories = 0;
  while (!pending.empty() && directories < kMaxNestedCgroups) {
    std::string dir_path = std::move(pending.front());
    pending.pop_front();
    ++directories;
    std::optional<std::string> text = reader.Read(dir_path, "cgroup.procs", /*required=*/dir_path == top);
    if (text) {
      size_t room = reader.options().max_pids > pids.size() ? reader.options().max_pids - pids.size() : 0;
      std::vector<pid_t> more = ParseCgroupProcs(*text, room);
      pids.insert(pids.end(), more.begin(), more.end());
    }
    DIR* dir = ::opendir(dir_path.c_str());
    if (dir == nullptr) continue;
    while (dirent* entry = ::readdir(dir)) {
      std::string_view name = entry->d_name;
      if (entry->d_type != DT_DIR || name == "." || name == "..") continue;
      if (pending.size() < kMaxNestedCgroups) pending.push_back(strings::Cat(dir_path, "/", name));
    }
    ::closedir(dir);
  }
  std::sort(pids.begin(), pids.end());
  pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
}

void ReadIo(const ContainerCgroup& cgroup, StatsReader& reader) {
  IoStats& io = reader.stats().io;
  const std::string blkio = V1Dir(cgroup, "blkio");
  if (!blkio.empty()) {
    std::optional<std::string> text =
        reader.Read(blkio, "blkio.throttle.io_service_bytes_recursive", /*required=*/false);
    if (!text) text = reader.Read(blkio, "blkio.io_service_bytes_recursive");
    if (text) {
      absl::StatusOr<IoBytes> bytes = ParseBlkioServiceBytes(*text);
      if (bytes.ok()) {
        io = IoStats{bytes->read_bytes, bytes->write_bytes, IoSource::kBlkio};
      } else {
        ++reader.stats().parse_errors;
      }
    }
  } else if (!cgroup.unified_dir.empty() && Exists(cgroup.unified_dir + "/io.stat")) {
    if (std::optional<std::string> text = reader.Read(cgroup.unified_dir, "io.stat")) {
      absl::StatusOr<IoBytes> bytes = ParseIoStat(*text);
      if (bytes.ok()) {
        io = IoStats{bytes->read_bytes, bytes->write_bytes, IoSource::kIoStat};
      } else {
        ++reader.stats().parse_errors;
      }
    }
  }
  if (io.source != IoSource::kNone && (io.read_bytes.value_or(0) != 0 || io.write_bytes.value_or(0) != 0)) {
    return;
  }
  // The cgroup has no I/O accounting here or saw none (blkio misses writes that the page cache
  // absorbed and flushes later from a kernel thread): sum what the processes did themselves.
  IoBytes sum;
  bool any = false;
  for (pid_t pid : reader.stats().pids) {
    std::optional<std::string> text =
        ReadKernelFile(strings::Cat(reader.options().proc_root, "/", pid, "/io"), 4096);
    if (!text) continue;  // exited, or no ptrace access
    absl::StatusOr<IoBytes> bytes = ParseProcIo(*text);
    if (!bytes.ok()) continue;
    sum.read_bytes = AddSat(sum.read_bytes, bytes->read_bytes);
    sum.write_bytes = AddSat(sum.write_bytes, bytes->write_bytes);
    any = true;
  }
  if (any) io = IoStats{sum.read_bytes, sum.write_bytes, IoSource::kProcPids};
}

}  // namespace

ContainerStats ReadContainerStats(const ContainerCgroup& cgroup, const StatsOptions& options,
                                  int64_t now_monotonic_ns) {
  ContainerStats stats;
  stats.container_id = cgroup.container_id;
  stats.relative_path = cgroup.relative_path;
  stats.collected_at_ns = now_monotonic_ns;
  StatsReader reader(options, &stats);
  ReadCpu(cgroup, reader);
  ReadMemory(cgroup, reader);
  ReadPids(cgroup, reader);
  ReadProcesses(cgroup, reader);
  ReadIo(cgroup, reader);
  return stats;
}

namespace {
// Per-second delta of a counter, or nullopt when it is missing on a side or went backwards.
std::optional<double> Rate(std::optional<uint64_t> before, std::optional<uint64_t> after, double seconds) {
  if (!before || !after || *after < *before || seconds <= 0) return std::nullopt;
  return static_cast<double>(*after - *before) / seconds;
}
}  // namespace

ContainerRates ComputeRates(const ContainerStats& previous, const ContainerStats& current) {
  ContainerRates rates;
  if (current.collected_at_ns <= previous.collected_at_ns) return rates;
  const double seconds = static_cast<double>(current.collected_at_ns - previous.collected_at_ns) / 1e9;
  rates.interval_seconds = seconds;
  // ns of CPU per second of wall time / 1e9 = cores; ×100 = percent of one core.
  auto pct = [&](std::optional<uint64_t> a, std::optional<uint64_t> b) -> std::optional<double> {
    std::optional<double> rate = Rate(a, b, seconds);
    if (!rate) return std::nullopt;
    return *rate / 1e9 * 100.0;
  };
  rates.cpu_total_pct = pct(previous.cpu.usage_ns, current.cpu.usage_ns);
  rates.cpu_user_pct = pct(previous.cpu.user_ns, current.cpu.user_ns);
  rates.cpu_system_pct = pct(previous.cpu.system_ns, current.cpu.system_ns);
  if (previous.cpu.periods && current.cpu.periods && previous.cpu.throttled_periods &&
      current.cpu.throttled_periods && *current.cpu.periods > *previous.cpu.periods &&
      *current.cpu.throttled_periods >= *previous.cpu.throttled_periods) {
    rates.cpu_throttled_pct =
        100.0 * static_cast<double>(*current.cpu.throttled_periods - *previous.cpu.throttled_periods) /
        static_cast<double>(*current.cpu.periods - *previous.cpu.periods);
  }
  // Rates across a change of I/O source (cgroup file → /proc sums) would compare unrelated counters.
  if (previous.io.source == current.io.source) {
    rates.io_read_bytes_per_s = Rate(previous.io.read_bytes, current.io.read_bytes, seconds);
    rates.io_write_bytes_per_s = Rate(previous.io.write_bytes, current.io.write_bytes, seconds);
  }
  return rates;
}

// ---------------------------------------------------------------------------------------------
// Collector.

CgroupCollector::CgroupCollector(Options options) : options_(std::move(options)) {}

absl::Status CgroupCollector::Init() {
  absl::StatusOr<CgroupHierarchies> hierarchies = DetectCgroupHierarchies(options_.cgroup_root);
  if (!hierarchies.ok()) return hierarchies.status();
  hierarchies_ = std::move(*hierarchies);
  initialized_ = true;
  return absl::OkStatus();
}

absl::StatusOr<CgroupCollector::Collection> CgroupCollector::Collect() {
  if (!initialized_) {
    absl::Status status = Init();
    if (!status.ok()) return status;
  }
  Collection collection;
  std::vector<ContainerCgroup> cgroups =
      DiscoverContainerCgroups(hierarchies_, options_.discovery, &collection.discovery);
  StatsOptions stats_options;
  stats_options.proc_root = options_.proc_root;
  stats_options.max_file_bytes = options_.max_file_bytes;
  stats_options.max_pids = options_.max_pids;

  std::map<std::string, ContainerStats, std::less<>> current;
  std::map<std::string, ContainerCgroup, std::less<>> cgroups_by_id;
  collection.containers.reserve(cgroups.size());
  for (ContainerCgroup& cgroup : cgroups) {
    Container container;
    container.stats = ReadContainerStats(cgroup, stats_options, MonotonicNowNs());
    collection.missing_files += container.stats.missing_files;
    collection.parse_errors += container.stats.parse_errors;
    auto previous = previous_.find(cgroup.container_id);
    if (previous != previous_.end()) container.rates = ComputeRates(previous->second, container.stats);
    current.emplace(cgroup.container_id, container.stats);
    std::string id = cgroup.container_id;
    cgroups_by_id.emplace(std::move(id), std::move(cgroup));
    collection.containers.push_back(std::move(container));
  }
  // Only containers seen now are kept: the maps never outgrow max_containers.
  previous_ = std::move(current);
  last_cgroups_ = std::move(cgroups_by_id);
  return collection;
}

std::optional<ContainerStats> CgroupCollector::StatsFor(std::string_view container_id) const {
  auto it = last_cgroups_.find(container_id);
  if (it == last_cgroups_.end()) return std::nullopt;
  StatsOptions stats_options;
  stats_options.proc_root = options_.proc_root;
  stats_options.max_file_bytes = options_.max_file_bytes;
  stats_options.max_pids = options_.max_pids;
  return ReadContainerStats(it->second, stats_options, MonotonicNowNs());
}

}  // namespace dogwatch::container
