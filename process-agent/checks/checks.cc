#include "process-agent/checks/checks.h"

#include <sys/utsname.h>

#include <chrono>
#include <fstream>
#include <set>
#include <utility>

#include "common/log/log.h"
#include "common/strings/strings.h"
#include "process-agent/payload/request_headers.h"

namespace dogwatch::process {
namespace pb = datadog::process_agent;

std::string_view CheckName(CheckKind kind) {
  switch (kind) {
    case CheckKind::kProcess:
      return "process";
    case CheckKind::kContainer:
      return "container";
    case CheckKind::kRealTimeProcess:
      return "rtprocess";
    case CheckKind::kRealTimeContainer:
      return "rtcontainer";
  }
  return "unknown";
}

std::optional<CheckKind> ParseCheckKind(std::string_view name) {
  for (CheckKind kind : kAllChecks) {
    if (CheckName(kind) == name) return kind;
  }
  return std::nullopt;
}

MessageType CheckMessageType(CheckKind kind) {
  switch (kind) {
    case CheckKind::kProcess:
      return MessageType::kCollectorProc;
    case CheckKind::kContainer:
      return MessageType::kCollectorContainer;
    case CheckKind::kRealTimeProcess:
      return MessageType::kCollectorRealTime;
    case CheckKind::kRealTimeContainer:
      return MessageType::kCollectorContainerRealTime;
  }
  return MessageType::kCollectorProc;
}

std::string_view CheckPath(CheckKind kind) {
  return kind == CheckKind::kProcess || kind == CheckKind::kRealTimeProcess ? "/api/v1/collector"
                                                                            : "/api/v1/container";
}

bool IsRealTime(CheckKind kind) {
  return kind == CheckKind::kRealTimeProcess || kind == CheckKind::kRealTimeContainer;
}

namespace {

constexpr size_t kMaxInfoFileBytes = 1024 * 1024;
constexpr int kMaxCpus = 1024;

// At most kMaxInfoFileBytes of a small text file; "" when unreadable.
std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::string out(kMaxInfoFileBytes, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

std::string FirstLine(const std::string& path) {
  std::string text = ReadSmallFile(path);
  return std::string(strings::Strip(text.substr(0, text.find('\n'))));
}

// "KEY=value" or KEY="value" lines of os-release.
std::map<std::string, std::string> ParseOsRelease(const std::string& text) {
  std::map<std::string, std::string> out;
  for (std::string_view line : strings::SplitAny(text, "\n")) {
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view value = strings::Strip(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    out[std::string(strings::Strip(line.substr(0, eq)))] = std::string(value);
  }
  return out;
}

int64_t ParseLeadingInt(std::string_view text) {
  int64_t value = 0;
  size_t i = 0;
  while (i < text.size() && text[i] == ' ') ++i;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9' && value < (int64_t{1} << 55); ++i)
    value = value * 10 + (text[i] - '0');
  return value;
}

int32_t ContainerCount(const pb::CollectorProc& message) { return message.containers_size(); }
int32_t ContainerCount(const pb::CollectorContainer& message) { return message.containers_size(); }
int32_t ContainerCount(const pb::CollectorRealTime&) { return 0; }
int32_t ContainerCount(const pb::CollectorContainerRealTime&) { return 0; }

}  // namespace

HostFacts ReadHostFacts(const std::string& os_release_path) {
  HostFacts facts;
  utsname names{};
  if (uname(&names) == 0) {
    facts.architecture = names.machine;
    facts.kernel_version = names.release;
  }
  auto release = ParseOsRelease(ReadSmallFile(os_release_path));
  facts.platform = release["ID"];
  facts.platform_family = !release["ID_LIKE"].empty() ? release["ID_LIKE"] : release["ID"];
  facts.platform_version = release["VERSION_ID"];
  return facts;
}

pb::SystemInfo CollectSystemInfo(const std::string& proc_root) {
  pb::SystemInfo info;
  // gopsutil's host id, which Datadog sends as the uuid: DMI product uuid, else machine-id.
  std::string uuid = FirstLine("/sys/class/dmi/id/product_uuid");
  if (uuid.empty()) uuid = FirstLine("/etc/machine-id");
  if (uuid.empty()) uuid = FirstLine(proc_root + "/sys/kernel/random/boot_id");
  info.set_uuid(uuid);

  auto* os = info.mutable_os();
  os->set_name("linux");
  HostFacts host = ReadHostFacts();
  os->set_platform(std::move(host.platform));
  os->set_family(std::move(host.platform_family));
  os->set_version(std::move(host.platform_version));
  os->set_kernelversion(std::move(host.kernel_version));

  pb::CPUInfo* cpu = nullptr;
  const std::string cpuinfo = ReadSmallFile(proc_root + "/cpuinfo");
  for (std::string_view line : strings::SplitAny(cpuinfo, "\n")) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = strings::Strip(line.substr(0, colon));
    std::string value(strings::Strip(line.substr(colon + 1)));
    if (key == "processor") {
      if (info.cpus_size() >= kMaxCpus) break;
      cpu = info.add_cpus();
      cpu->set_number(static_cast<int32_t>(ParseLeadingInt(value)));
      cpu->set_cores(1);
    } else if (cpu == nullptr) {
      continue;
    } else if (key == "vendor_id") {
      cpu->set_vendor(value);
    } else if (key == "cpu family") {
      cpu->set_family(value);
    } else if (key == "model") {
      cpu->set_model(value);
    } else if (key == "physical id") {
      cpu->set_physicalid(value);
    } else if (key == "core id") {
      cpu->set_coreid(value);
    } else if (key == "cpu MHz") {
      cpu->set_mhz(ParseLeadingInt(value));
    } else if (key == "cache size") {
      cpu->set_cachesize(static_cast<int32_t>(ParseLeadingInt(value)));  // "512 KB"
    }
  }

  const std::string meminfo = ReadSmallFile(proc_root + "/meminfo");
  for (std::string_view line : strings::SplitAny(meminfo, "\n")) {
    if (line.starts_with("MemTotal:")) {
      info.set_totalmemory(ParseLeadingInt(strings::Strip(line.substr(9))) * 1024);
      break;
    }
  }
  return info;
}

Checks::Checks(ChecksOptions options)
    : options_(std::move(options)),
      scrubber_(options_.scrub),
      system_info_(CollectSystemInfo(options_.proc_root)) {
  for (const auto& word : scrubber_.rejected_words())
    log::Get("process-agent")
        ->warn("process_config.custom_sensitive_words: '{}' is not a valid word; ignored", word);
  ProcessCollector::Options collector = options_.collector;
  collector.proc_root = options_.proc_root;
  collector.scrubber = &scrubber_;
  processes_ = std::make_unique<ProcessCollector>(std::move(collector));
  if (options_.collect_containers) {
    container::CgroupCollector::Options cgroup_options;
    cgroup_options.cgroup_root = options_.cgroup_root;
    cgroup_options.proc_root = options_.proc_root;
    for (CheckKind kind : kAllChecks)
      cgroups_[kind] = std::make_unique<container::CgroupCollector>(cgroup_options);
  }
  for (CheckKind kind : kAllChecks) counters_[kind] = CheckCounters{};
}

Checks::~Checks() { Stop(); }

absl::Status Checks::Start() {
  if (options_.runtime_socket.empty() || !options_.collect_containers || store_) return absl::OkStatus();
  container::ContainerMetaStore::Options store_options;
  store_options.client.socket_path = options_.runtime_socket;
  store_ = std::make_unique<container::ContainerMetaStore>(store_options);
  absl::Status started = store_->Start();
  if (!started.ok()) {
    log::Get("process-agent")
        ->warn("container runtime at {}: {} (retrying)", options_.runtime_socket, started.message());
  }
  return absl::OkStatus();
}

void Checks::Stop() {
  if (store_) store_->Stop();
}

bool Checks::cgroups_present() {
  if (cgroups_.empty()) return false;
  container::CgroupCollector& collector = *cgroups_.at(CheckKind::kContainer);
  if (collector.hierarchies().layout != container::CgroupLayout::kNone) return true;
  return collector.Init().ok();
}

int64_t Checks::NowMs() const {
  if (options_.monotonic_ms) return options_.monotonic_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

absl::StatusOr<Snapshot> Checks::CollectProcesses() {
  auto snapshot = processes_->Collect();
  if (snapshot.ok()) {
    FillPrivileged(&*snapshot);
    std::lock_guard<std::mutex> lock(mu_);
    last_proc_counters_ = snapshot->counters;
  }
  return snapshot;
}

namespace {
// Per second; a counter that went backwards (it cannot, for one process) reads as 0.
float PerSecond(uint64_t current, uint64_t previous, double elapsed_s) {
  if (elapsed_s <= 0 || current < previous) return 0;
  return static_cast<float>(static_cast<double>(current - previous) / elapsed_s);
}
}  // namespace

void Checks::FillPrivileged(Snapshot* snapshot) {
  if (!options_.privileged_stats) return;
  std::vector<int32_t> pids;
  for (const ProcessInfo& info : snapshot->processes) {
    if ((!info.io_readable || info.open_fd_count < 0) && pids.size() < options_.max_privileged_pids)
      pids.push_back(info.pid);
  }
  if (pids.empty()) {
    privileged_previous_.clear();
    std::lock_guard<std::mutex> lock(mu_);
    privileged_last_filled_ = 0;
    privileged_last_error_.clear();  // nothing to ask: the source's state no longer matters
    return;
  }
  absl::StatusOr<std::vector<PrivilegedStat>> answer = options_.privileged_stats(pids);
  if (!answer.ok()) {
    privileged_previous_.clear();
    std::lock_guard<std::mutex> lock(mu_);
    ++privileged_requests_;
    ++privileged_errors_;
    privileged_last_filled_ = 0;
    privileged_last_error_ = std::string(answer.status().message()).substr(0, 512);
    return;
  }
  absl::flat_hash_map<int32_t, const PrivilegedStat*> by_pid;
  for (const PrivilegedStat& stat : *answer) by_pid.emplace(stat.pid, &stat);
  absl::flat_hash_map<int32_t, PrivilegedIo> current;
  int64_t filled_io = 0, filled_fd = 0;
  // snapshot->processes is ordered by pid, as `pids` is; the answer's order does not matter.
  for (ProcessInfo& info : snapshot->processes) {
    if (info.io_readable && info.open_fd_count >= 0) continue;
    auto found = by_pid.find(info.pid);
    if (found == by_pid.end()) continue;
    const PrivilegedStat& stat = *found->second;
    if (info.open_fd_count < 0 && stat.open_fds >= 0) {
      info.open_fd_count = stat.open_fds;
      ++filled_fd;
    }
    if (info.io_readable) continue;
    info.io_readable = true;
    info.read_bytes = stat.read_bytes;
    info.write_bytes = stat.write_bytes;
    info.read_count = stat.read_count;
    info.write_count = stat.write_count;
    ProcessRates& rates = info.rates;
    rates.read_rate = rates.write_rate = rates.read_bytes_rate = rates.write_bytes_rate = 0;
    auto previous = privileged_previous_.find(info.pid);
    if (previous != privileged_previous_.end() && previous->second.start_ticks == info.start_ticks) {
      const double elapsed_s =
          static_cast<double>(snapshot->timestamp_ms - previous->second.timestamp_ms) / 1000.0;
      rates.read_rate = PerSecond(stat.read_count, previous->second.read_count, elapsed_s);
      rates.write_rate = PerSecond(stat.write_count, previous->second.write_count, elapsed_s);
      rates.read_bytes_rate = PerSecond(stat.read_bytes, previous->second.read_bytes, elapsed_s);
      rates.write_bytes_rate = PerSecond(stat.write_bytes, previous->second.write_bytes, elapsed_s);
    }
    current[info.pid] = PrivilegedIo{info.start_ticks, snapshot->timestamp_ms, stat.read_bytes,
                                     stat.write_bytes, stat.read_count,        stat.write_count};
    ++filled_io;
  }
  privileged_previous_ = std::move(current);
  std::lock_guard<std::mutex> lock(mu_);
  ++privileged_requests_;
  privileged_filled_io_ += filled_io;
  privileged_filled_fd_ += filled_fd;
  privileged_last_filled_ = std::max(filled_io, filled_fd);
  privileged_last_error_.clear();
}

std::vector<std::string> Checks::TagsFor(const std::string& container_id,
                                         const std::optional<container::ContainerMeta>& meta) {
  if (!options_.tag_lookup) {
    if (!meta) return {};
    return container::ContainerTags(*meta, container::TagCardinality::kHigh, options_.labels_as_tags);
  }
  const int64_t now = NowMs();
  auto it = tag_cache_.find(container_id);
  if (it != tag_cache_.end() && it->second.expires_ms > now) {
    std::lock_guard<std::mutex> lock(mu_);
    ++tag_cache_hits_;
    return it->second.tags;
  }
  if (tag_cache_.size() >= options_.max_cached_tags) {
    tag_cache_.clear();
    std::lock_guard<std::mutex> lock(mu_);
    ++tag_cache_clears_;
  }
  auto answer = options_.tag_lookup(container_id);
  CachedTags cached;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++tag_lookups_;
    if (!answer.ok()) {
      ++tag_errors_;
      last_tag_error_ = std::string(answer.status().message());
    }
  }
  if (answer.ok()) {
    cached.tags = std::move(*answer);
    // The tagger has not seen the container yet (a runtime event still in flight): ask again soon.
    cached.expires_ms = now + (cached.tags.empty() ? options_.tag_error_ttl_ms : options_.tag_ttl_ms);
  } else {
    cached.expires_ms = now + options_.tag_error_ttl_ms;
  }
  tag_cache_[container_id] = cached;
  return cached.tags;
}

std::vector<ContainerView> Checks::CollectContainers(CheckKind kind) {
  std::vector<ContainerView> out;
  if (cgroups_.empty()) return out;
  container::CgroupCollector& collector = *cgroups_.at(kind);
  auto collection = collector.Collect();
  if (!collection.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    ++cgroup_errors_;
    return out;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    cgroup_missing_files_ += static_cast<int64_t>(collection->missing_files);
    cgroup_parse_errors_ += static_cast<int64_t>(collection->parse_errors);
    containers_dropped_ += static_cast<int64_t>(collection->discovery.containers_dropped);
    cgroup_layout_ = std::string(container::CgroupLayoutName(collector.hierarchies().layout));
  }
  out.reserve(collection->containers.size());
  std::set<std::string> live_ids;
  for (auto& found : collection->containers) {
    ContainerView view;
    view.stats = std::move(found.stats);
    view.rates = found.rates;
    if (store_) view.meta = store_->Get(view.stats.container_id);
    view.tags = TagsFor(view.stats.container_id, view.meta);
    live_ids.insert(view.stats.container_id);
    out.push_back(std::move(view));
  }
  // Forget cached tags of containers that are gone, so the cache follows the live set.
  for (auto it = tag_cache_.begin(); it != tag_cache_.end();) {
    if (live_ids.count(it->first) == 0) {
      tag_cache_.erase(it++);
    } else {
      ++it;
    }
  }
  return out;
}

BatchContext Checks::NewBatchContext() const {
  BatchContext context;
  context.hostname = options_.hostname;
  context.info = system_info_;
  context.container_host_type = options_.container_host_type;
  context.group_id = RandomGroupId();
  return context;
}

template <typename Message>
absl::Status Checks::Encode(CheckKind kind, std::vector<Message> messages, int64_t timestamp_ms,
                            CheckRun* run) {
  const int64_t timestamp_s = timestamp_ms / 1000;
  for (size_t i = 0; i < messages.size(); ++i) {
    auto body = EncodeMessage(CheckMessageType(kind), messages[i], timestamp_ms);
    if (!body.ok()) return body.status();
    RequestHeaderValues values;
    values.hostname = options_.hostname;
    values.agent_version = options_.agent_version;
    values.container_count = ContainerCount(messages[i]);
    values.timestamp_s = timestamp_s;
    values.agent_start_time_s = options_.agent_start_time_s;
    // Datadog's submitter sets the request id for the process check only.
    if (kind == CheckKind::kProcess)
      values.request_id =
          MakeRequestId(timestamp_s, options_.hostname, options_.agent_pid, static_cast<int>(i));
    run->payloads.push_back(
        EncodedPayload{std::string(CheckPath(kind)), RequestHeaders(values), std::move(*body)});
    run->messages.push_back(std::make_unique<Message>(std::move(messages[i])));
  }
  return absl::OkStatus();
}

absl::StatusOr<CheckRun> Checks::Run(CheckKind kind) {
  const auto begin = std::chrono::steady_clock::now();
  CheckRun run;
  run.kind = kind;
  run.timestamp_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  BatchContext context = NewBatchContext();
  const int32_t num_cpus = system_info_.cpus_size() > 0 ? system_info_.cpus_size() : 1;
  absl::Status status = absl::OkStatus();

  switch (kind) {
    case CheckKind::kProcess:
    case CheckKind::kRealTimeProcess: {
      auto snapshot = CollectProcesses();
      if (!snapshot.ok()) {
        status = snapshot.status();
        break;
      }
      std::vector<ContainerView> containers = CollectContainers(kind);
      run.processes = snapshot->processes.size();
      run.containers = containers.size();
      if (kind == CheckKind::kProcess) {
        scrubber_.IncrementCacheAge();
        std::vector<pb::Process> processes;
        processes.reserve(snapshot->processes.size());
        for (const auto& info : snapshot->processes) processes.push_back(ToProcess(info, *snapshot));
        std::vector<pb::Container> container_messages;
        for (const auto& view : containers) container_messages.push_back(ToContainer(view, num_cpus));
        auto batch = ChunkProcesses(std::move(processes), container_messages, context, options_.limits);
        run.chunk = batch.stats;
        status = Encode(kind, std::move(batch.messages), run.timestamp_ms, &run);
      } else {
        std::vector<pb::ProcessStat> stats;
        stats.reserve(snapshot->processes.size());
        for (const auto& info : snapshot->processes) stats.push_back(ToProcessStat(info, *snapshot));
        std::vector<pb::ContainerStat> container_stats;
        for (const auto& view : containers) container_stats.push_back(ToContainerStat(view, num_cpus));
        auto batch =
            ChunkProcessStats(std::move(stats), std::move(container_stats), context, options_.limits);
        run.chunk = batch.stats;
        status = Encode(kind, std::move(batch.messages), run.timestamp_ms, &run);
      }
      break;
    }
    case CheckKind::kContainer:
    case CheckKind::kRealTimeContainer: {
      std::vector<ContainerView> containers = CollectContainers(kind);
      run.containers = containers.size();
      if (kind == CheckKind::kContainer) {
        std::vector<pb::Container> messages;
        for (const auto& view : containers) messages.push_back(ToContainer(view, num_cpus));
        auto batch = ChunkContainers(std::move(messages), context, options_.limits);
        run.chunk = batch.stats;
        status = Encode(kind, std::move(batch.messages), run.timestamp_ms, &run);
      } else {
        std::vector<pb::ContainerStat> stats;
        for (const auto& view : containers) stats.push_back(ToContainerStat(view, num_cpus));
        auto batch = ChunkContainerStats(std::move(stats), context, options_.limits);
        run.chunk = batch.stats;
        status = Encode(kind, std::move(batch.messages), run.timestamp_ms, &run);
      }
      break;
    }
  }

  const int64_t elapsed_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - begin).count();
  std::lock_guard<std::mutex> lock(mu_);
  CheckCounters& counters = counters_[kind];
  ++counters.runs;
  counters.last_run_us = elapsed_us;
  if (!status.ok()) {
    ++counters.run_errors;
    return status;
  }
  counters.items += static_cast<int64_t>(run.chunk.items);
  counters.oversized += static_cast<int64_t>(run.chunk.oversized_items);
  counters.dropped += static_cast<int64_t>(run.chunk.dropped_items);
  return run;
}

void Checks::RecordSubmit(CheckKind kind, const EncodedPayload& payload, const absl::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  CheckCounters& counters = counters_[kind];
  if (status.ok()) {
    ++counters.payloads;
    counters.bytes += static_cast<int64_t>(payload.body.size());
  } else {
    ++counters.submit_errors;
  }
}

std::map<std::string, int64_t> Checks::Counters() const {
  std::map<std::string, int64_t> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [kind, c] : counters_) {
    std::string prefix = strings::Cat(CheckName(kind), "_");
    out[prefix + "runs"] = c.runs;
    out[prefix + "run_errors"] = c.run_errors;
    out[prefix + "items"] = c.items;
    out[prefix + "payloads"] = c.payloads;
    out[prefix + "bytes"] = c.bytes;
    out[prefix + "submit_errors"] = c.submit_errors;
    out[prefix + "last_run_us"] = c.last_run_us;
    out[prefix + "oversized"] = c.oversized;
    out[prefix + "dropped"] = c.dropped;
  }
  const CollectCounters& p = last_proc_counters_;
  // The collector's figures of its last collection (gauges, not totals).
  out["proc_processes"] = p.processes_reported;
  out["proc_over_limit"] = p.processes_over_limit;
  out["proc_vanished"] = p.processes_vanished;
  out["proc_unreadable_fd"] = p.unreadable_fd;
  out["proc_unreadable_io"] = p.unreadable_io;
  out["privileged_requests"] = privileged_requests_;
  out["privileged_errors"] = privileged_errors_;
  out["privileged_filled_io"] = privileged_filled_io_;
  out["privileged_filled_fd"] = privileged_filled_fd_;
  out["proc_unreadable_exe"] = p.unreadable_exe;
  out["proc_unreadable_cwd"] = p.unreadable_cwd;
  out["proc_unreadable_cmdline"] = p.unreadable_cmdline;
  out["proc_unreadable_cgroup"] = p.unreadable_cgroup;
  out["proc_parse_errors"] = p.parse_errors;
  out["proc_truncated_reads"] = p.truncated_reads;
  out["proc_full_reads"] = p.full_reads;
  out["proc_idle_reuses"] = p.idle_reuses;
  out["proc_held_fds"] = p.held_fds;
  out["proc_held_fd_budget_exhausted"] = p.held_fd_budget_exhausted;
  out["cgroup_missing_files"] = cgroup_missing_files_;
  out["cgroup_parse_errors"] = cgroup_parse_errors_;
  out["cgroup_errors"] = cgroup_errors_;
  out["cgroup_containers_dropped"] = containers_dropped_;
  out["tagger_lookups"] = tag_lookups_;
  out["tagger_cache_hits"] = tag_cache_hits_;
  out["tagger_errors"] = tag_errors_;
  out["tagger_cache_clears"] = tag_cache_clears_;
  auto scrub = scrubber_.cache_counters();
  out["scrub_cache_entries"] = scrub.entries;
  if (store_) {
    auto store = store_->counters();
    out["runtime_connected"] = store.connected ? 1 : 0;
    out["runtime_events"] = store.events;
    out["runtime_reconnects"] = store.reconnects;
    out["runtime_inspect_errors"] = store.inspect_errors;
    out["runtime_dropped_over_limit"] = store.dropped_over_limit;
  }
  return out;
}

std::map<std::string, std::string> Checks::Info() const {
  std::map<std::string, std::string> out;
  out["runtime_socket"] = options_.runtime_socket.empty() ? "(none)" : options_.runtime_socket;
  out["held_fd_budget"] = strings::Cat(processes_->held_fd_budget());
  std::lock_guard<std::mutex> lock(mu_);
  out["cgroup_layout"] = cgroup_layout_.empty() ? "(not collected)" : cgroup_layout_;
  if (!last_tag_error_.empty()) out["tagger_last_error"] = last_tag_error_;
  if (store_) {
    auto store = store_->counters();
    if (!store.last_error.empty()) out["runtime_last_error"] = store.last_error;
  }
  // Where the io and fd counts of the processes /proc refuses (other users', ptrace-protected) come
  // from: procfs reads only what this user may read.
  const int64_t refused = std::max(last_proc_counters_.unreadable_io, last_proc_counters_.unreadable_fd);
  if (!options_.privileged_stats) {
    if (refused > 0)
      out["privileged_stats"] = strings::Cat("partial: io/fd of ", refused,
                                             " processes /proc refused are unknown (no system-probe)");
  } else if (!privileged_last_error_.empty()) {
    out["privileged_stats"] =
        strings::Cat("partial: ", options_.privileged_stats_name, " unavailable, io/fd of ", refused,
                     " processes /proc refused are unknown: ", privileged_last_error_);
  } else if (privileged_requests_ > 0 && refused > 0) {
    out["privileged_stats"] =
        strings::Cat(options_.privileged_stats_name, ": io/fd of ", privileged_last_filled_, " of ", refused,
                     " processes /proc refused");
  } else {
    out["privileged_stats"] = "procfs: every process readable";
  }
  return out;
}

}  // namespace dogwatch::process
