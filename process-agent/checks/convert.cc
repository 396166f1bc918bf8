#include "process-agent/checks/convert.h"

#include <cmath>

namespace dogwatch::process {
namespace pb = datadog::process_agent;

pb::ProcessState ProcessStateFromCode(char code) {
  switch (code) {
    case 'D':
      return pb::D;
    case 'R':
      return pb::R;
    case 'S':
      return pb::S;
    case 'T':
      return pb::T;
    case 'W':
      return pb::W;
    case 'X':
      return pb::X;
    case 'Z':
      return pb::Z;
    default:
      return pb::U;
  }
}

pb::ContainerState ContainerStateFromRuntime(std::string_view state) {
  if (state == "created") return pb::created;
  if (state == "restarting") return pb::restarting;
  if (state == "running") return pb::running;
  if (state == "paused") return pb::paused;
  if (state == "exited" || state == "stopped") return pb::exited;  // podman says "stopped" too
  if (state == "dead") return pb::dead;
  return pb::unknown;
}

pb::ContainerHealth ContainerHealthFromRuntime(std::string_view health) {
  if (health == "starting") return pb::starting;
  if (health == "healthy") return pb::healthy;
  if (health == "unhealthy") return pb::unhealthy;
  return pb::unknownHealth;
}

std::string RuntimeFromCgroupPath(std::string_view path) {
  if (path.find("libpod") != std::string_view::npos) return "podman";
  if (path.find("crio") != std::string_view::npos) return "cri-o";
  if (path.find("containerd") != std::string_view::npos) return "containerd";
  if (path.find("docker") != std::string_view::npos) return "docker";
  return "";
}

namespace {

void FillMemory(const ProcessInfo& info, pb::MemoryStat* memory) {
  memory->set_rss(info.rss_bytes);
  memory->set_vms(info.vms_bytes);
  memory->set_swap(info.swap_bytes);
  memory->set_shared(info.shared_bytes);
  memory->set_text(info.text_bytes);
  memory->set_lib(info.lib_bytes);
  memory->set_data(info.data_bytes);
  memory->set_dirty(0);  // Linux always reports 0 (statm's dt field), as in Datadog
}

void FillCpu(const ProcessInfo& info, const Snapshot& snapshot, pb::CPUStat* cpu) {
  // Datadog sends the literal "cpu" (gopsutil's CPUTimes.CPU for a process).
  cpu->set_lastcpu("cpu");
  cpu->set_totalpct(info.rates.cpu_total_pct);
  cpu->set_userpct(info.rates.cpu_user_pct);
  cpu->set_systempct(info.rates.cpu_system_pct);
  cpu->set_numthreads(info.num_threads);
  cpu->set_nice(info.nice);
  const int64_t hz = snapshot.ticks_per_second > 0 ? snapshot.ticks_per_second : 100;
  // Whole seconds: Datadog converts gopsutil's float seconds with int64().
  cpu->set_usertime(static_cast<int64_t>(info.utime_ticks / static_cast<uint64_t>(hz)));
  cpu->set_systemtime(static_cast<int64_t>(info.stime_ticks / static_cast<uint64_t>(hz)));
}

void FillIo(const ProcessInfo& info, pb::IOStat* io) {
  io->set_readrate(info.rates.read_rate);
  io->set_writerate(info.rates.write_rate);
  io->set_readbytesrate(info.rates.read_bytes_rate);
  io->set_writebytesrate(info.rates.write_bytes_rate);
}

float Float(const std::optional<double>& value) { return value ? static_cast<float>(*value) : 0.0f; }

float CpuLimitPct(const ContainerView& view, int32_t num_cpus) {
  std::optional<double> cores = view.stats.cpu.limit_cores;
  if (!cores && view.meta && view.meta->cpu_limit_cores) cores = view.meta->cpu_limit_cores;
  if (cores && *cores > 0) return static_cast<float>(*cores * 100.0);
  return static_cast<float>(100.0 * (num_cpus > 0 ? num_cpus : 1));
}

uint64_t MemoryLimit(const ContainerView& view) {
  if (view.stats.memory.limit_bytes) return *view.stats.memory.limit_bytes;
  if (view.meta && view.meta->memory_limit_bytes && *view.meta->memory_limit_bytes > 0)
    return static_cast<uint64_t>(*view.meta->memory_limit_bytes);
  return 0;
}

pb::ContainerState StateOf(const ContainerView& view) {
  if (view.meta && !view.meta->state.empty()) return ContainerStateFromRuntime(view.meta->state);
  // Without the runtime, a cgroup holding processes is a running container.
  return view.stats.pids.empty() ? pb::unknown : pb::running;
}

float CpuUsageNsPerSecond(const ContainerView& view) {
  // cpu_total_pct is relative to one core: 100 % = 1e9 ns of CPU per second.
  if (!view.rates || !view.rates->cpu_total_pct) return 0.0f;
  return static_cast<float>(*view.rates->cpu_total_pct * 1e7);
}

}  // namespace

pb::Process ToProcess(const ProcessInfo& info, const Snapshot& snapshot) {
  pb::Process out;
  out.set_pid(info.pid);
  out.set_nspid(info.ns_pid);
  auto* command = out.mutable_command();
  for (const auto& arg : info.args()) command->add_args(arg);
  command->set_cwd(info.info->cwd);
  command->set_root(info.info->root);
  command->set_ondisk(false);  // Datadog never fills it either
  command->set_ppid(info.ppid);
  command->set_pgroup(info.pgroup);
  command->set_exe(info.info->exe);
  auto* user = out.mutable_user();
  user->set_name(info.info->user_name);
  user->set_uid(static_cast<int32_t>(info.uid));
  user->set_gid(static_cast<int32_t>(info.gid));
  user->set_euid(static_cast<int32_t>(info.euid));
  user->set_egid(static_cast<int32_t>(info.egid));
  user->set_suid(static_cast<int32_t>(info.suid));
  user->set_sgid(static_cast<int32_t>(info.sgid));
  FillMemory(info, out.mutable_memory());
  FillCpu(info, snapshot, out.mutable_cpu());
  out.set_createtime(info.create_time_ms);
  out.set_openfdcount(info.open_fd_count);
  out.set_state(ProcessStateFromCode(info.state));
  FillIo(info, out.mutable_iostat());
  out.set_containerid(info.info->container_id);
  out.set_voluntaryctxswitches(info.voluntary_ctx_switches);
  out.set_involuntaryctxswitches(info.involuntary_ctx_switches);
  return out;
}

pb::ProcessStat ToProcessStat(const ProcessInfo& info, const Snapshot& snapshot) {
  pb::ProcessStat out;
  out.set_pid(info.pid);
  out.set_createtime(info.create_time_ms);
  FillMemory(info, out.mutable_memory());
  FillCpu(info, snapshot, out.mutable_cpu());
  out.set_nice(info.nice);
  out.set_threads(info.num_threads);
  out.set_openfdcount(info.open_fd_count);
  out.set_containerid(info.info->container_id);
  out.set_processstate(ProcessStateFromCode(info.state));
  FillIo(info, out.mutable_iostat());
  out.set_voluntaryctxswitches(info.voluntary_ctx_switches);
  out.set_involuntaryctxswitches(info.involuntary_ctx_switches);
  return out;
}

pb::Container ToContainer(const ContainerView& view, int32_t num_cpus) {
  pb::Container out;
  out.set_type(RuntimeFromCgroupPath(view.stats.relative_path));
  out.set_id(view.stats.container_id);
  if (view.meta) {
    // Deprecated fields, still filled: older backends read them when tags are missing.
    out.set_name(view.meta->name);
    out.set_image(view.meta->image);
    out.set_created(view.meta->created_unix);
    out.set_started(view.meta->started_unix);
    out.set_health(ContainerHealthFromRuntime(view.meta->health));
  }
  out.set_cpulimit(CpuLimitPct(view, num_cpus));
  out.set_memorylimit(MemoryLimit(view));
  out.set_state(StateOf(view));
  if (view.rates) {
    out.set_rbps(Float(view.rates->io_read_bytes_per_s));
    out.set_wbps(Float(view.rates->io_write_bytes_per_s));
    out.set_userpct(Float(view.rates->cpu_user_pct));
    out.set_systempct(Float(view.rates->cpu_system_pct));
    out.set_totalpct(Float(view.rates->cpu_total_pct));
  }
  out.set_cpuusagens(CpuUsageNsPerSecond(view));
  out.set_memrss(view.stats.memory.rss_bytes.value_or(0));
  out.set_memcache(view.stats.memory.cache_bytes.value_or(0));
  out.set_memusage(view.stats.memory.usage_bytes.value_or(0));
  out.set_threadcount(view.stats.pids_stats.current.value_or(view.stats.pids.size()));
  out.set_threadlimit(view.stats.pids_stats.limit.value_or(0));
  for (const auto& tag : view.tags) out.add_tags(tag);
  return out;
}

pb::ContainerStat ToContainerStat(const ContainerView& view, int32_t num_cpus) {
  pb::ContainerStat out;
  out.set_id(view.stats.container_id);
  if (view.rates) {
    out.set_userpct(Float(view.rates->cpu_user_pct));
    out.set_systempct(Float(view.rates->cpu_system_pct));
    out.set_totalpct(Float(view.rates->cpu_total_pct));
    out.set_rbps(Float(view.rates->io_read_bytes_per_s));
    out.set_wbps(Float(view.rates->io_write_bytes_per_s));
  }
  out.set_cpulimit(CpuLimitPct(view, num_cpus));
  out.set_memrss(view.stats.memory.rss_bytes.value_or(0));
  out.set_memcache(view.stats.memory.cache_bytes.value_or(0));
  out.set_memlimit(MemoryLimit(view));
  out.set_state(StateOf(view));
  if (view.meta) {
    out.set_health(ContainerHealthFromRuntime(view.meta->health));
    out.set_started(view.meta->started_unix);
  }
  out.set_threadcount(view.stats.pids_stats.current.value_or(view.stats.pids.size()));
  out.set_threadlimit(view.stats.pids_stats.limit.value_or(0));
  out.set_memusage(view.stats.memory.usage_bytes.value_or(0));
  out.set_cpuusagens(CpuUsageNsPerSecond(view));
  return out;
}

}  // namespace dogwatch::process
