#include "agent-core/checks/host_checks.h"

#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <span>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "agent-core/checks/proc_parsers.h"
#include "common/strings/strings.h"

namespace dogwatch::checks {
namespace {

constexpr double kBytesPerMiB = 1024.0 * 1024.0;
constexpr double kBytesPerKiB = 1024.0;
// gopsutil (which the Agent uses) multiplies the page counters of /proc/vmstat by a fixed 4 KiB.
constexpr double kVmstatPageBytes = 4096.0;
// /proc/diskstats counts 512-byte sectors whatever the device's block size.
constexpr uint64_t kSectorBytes = 512;

double MonotonicSeconds() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

std::string JoinPath(std::string_view root, std::string_view relative) {
  std::string path(root);
  if (path.empty() || path.back() != '/') path.push_back('/');
  path.append(relative);
  return path;
}

// Reads a proc file into the check's scratch buffer and parses it; a parse error names the file.
template <typename Parser>
auto ReadAndParse(const std::string& path, std::string* scratch, Parser parse)
    -> decltype(parse(std::string_view())) {
  if (absl::Status read = ReadProcFile(path, scratch); !read.ok()) return read;
  auto parsed = parse(std::string_view(*scratch));
  if (!parsed.ok()) {
    return absl::Status(parsed.status().code(),
                        strings::Cat("parsing ", path, ": ", parsed.status().message()));
  }
  return parsed;
}

// Datadog's io check rounds its computed gauges to two decimals.
double Round2(double value) { return std::round(value * 100) / 100; }

// The increase of a kernel counter between two reads. Some diskstats fields are 32-bit even on
// 64-bit kernels, so a counter that went down wrapped at 2^32 if its last value fit in 32 bits and
// at 2^64 otherwise (the Agent's io check does the same).
uint64_t IncreaseWithWrap(uint64_t current, uint64_t last) {
  if (current >= last) return current - last;
  if (last <= UINT32_MAX) return current + (uint64_t{UINT32_MAX} - last) + 1;
  return current + (UINT64_MAX - last) + 1;
}

// Fills one check run's samples: every sample is a gauge with the run's timestamp and host.
class Emitter {
 public:
  Emitter(SampleSink& sink, int64_t timestamp, std::string_view host)
      : sink_(sink), timestamp_(timestamp), host_(host) {}

  void Gauge(std::string_view name, double value, std::span<const std::string_view> tags = {}) {
    metrics::Sample sample;
    sample.name = name;
    sample.type = metrics::SampleType::kGauge;
    sample.value = value;
    sample.tags = tags;
    sample.host = host_;
    sample.timestamp = timestamp_;
    sink_.Add(sample);
  }

  // What the Agent's `sender.Rate` turns into: the counter's increase per second since the last
  // run. Like the Agent's rate, nothing is sent when the counter went down (reset or wrap).
  void Rate(std::string_view name, uint64_t current, uint64_t last, double elapsed_seconds,
            std::span<const std::string_view> tags = {}, double scale = 1.0) {
    if (current < last || elapsed_seconds <= 0) return;
    Gauge(name, static_cast<double>(current - last) * scale / elapsed_seconds, tags);
  }

 private:
  SampleSink& sink_;
  const int64_t timestamp_;
  const std::string_view host_;
};

// Tags for one device; the strings live as long as this object, the views point into them.
class DeviceTags {
 public:
  void Clear() { count_ = 0; }
  void Add(std::string_view key, std::string_view value) {
    if (count_ == kMax) return;
    storage_[count_].assign(key);
    storage_[count_].push_back(':');
    storage_[count_].append(value);
    views_[count_] = storage_[count_];
    ++count_;
  }
  std::span<const std::string_view> span() const { return {views_.data(), count_}; }

 private:
  static constexpr size_t kMax = 4;
  std::array<std::string, kMax> storage_;
  std::array<std::string_view, kMax> views_;
  size_t count_ = 0;
};

class HostCheck : public Check {
 public:
  explicit HostCheck(const HostCheckOptions& options) : options_(options) {}
  uint64_t dropped_entries() const override { return dropped_entries_; }

 protected:
  std::string ProcPath(std::string_view relative) const { return JoinPath(options_.proc_root, relative); }
  std::string SysPath(std::string_view relative) const { return JoinPath(options_.sys_root, relative); }
  double Now() const {
    return options_.monotonic_seconds ? options_.monotonic_seconds() : MonotonicSeconds();
  }
  Emitter MakeEmitter(int64_t now_unix, SampleSink& sink) const {
    return Emitter(sink, now_unix, options_.hostname);
  }

  const HostCheckOptions options_;
  std::string scratch_;  // file contents, reused across runs
  uint64_t dropped_entries_ = 0;
};

// system.cpu.*: percentages of all CPU time since the last run (0-100, all cores together), as the
// Agent's cpu check derives them from gopsutil's aggregate times.
class CpuCheck final : public HostCheck {
 public:
  explicit CpuCheck(const HostCheckOptions& options)
      : HostCheck(options), ticks_per_second_(static_cast<double>(std::max(1L, sysconf(_SC_CLK_TCK)))) {}
  std::string_view name() const override { return "cpu"; }

  absl::Status Run(int64_t now_unix, SampleSink& sink) override {
    auto stat = ReadAndParse(ProcPath("stat"), &scratch_, ParseProcStat);
    if (!stat.ok()) return stat.status();
    dropped_entries_ += stat->dropped_entries;
    Emitter emit = MakeEmitter(now_unix, sink);

    // The Agent counts one core per processor of /proc/cpuinfo, i.e. per online logical CPU, which
    // is what the cpuN lines of /proc/stat list.
    emit.Gauge("system.cpu.num_cores", static_cast<double>(stat->cpus.size()));

    // A monotonic count in the Agent: the increase since the last run, nothing on the first run.
    if (stat->context_switches) {
      if (last_context_switches_ && *stat->context_switches >= *last_context_switches_) {
        emit.Gauge("system.cpu.context_switches",
                   static_cast<double>(*stat->context_switches - *last_context_switches_));
      }
      last_context_switches_ = stat->context_switches;
    }

    if (last_total_) EmitPercentages(emit, *last_total_, stat->total);
    last_total_ = stat->total;

    // Cumulative seconds per CPU, as the Agent's per-CPU gauges (tag core:cpuN).
    for (const PerCpuTimes& cpu : stat->cpus) {
      core_tags_.Clear();
      core_tags_.Add("core", cpu.name);
      const auto tags = core_tags_.span();
      const CpuTimes& t = cpu.times;
      const std::pair<std::string_view, uint64_t> totals[] = {
          {"system.cpu.user.total", t.user},       {"system.cpu.nice.total", t.nice},
          {"system.cpu.system.total", t.system},   {"system.cpu.idle.total", t.idle},
          {"system.cpu.iowait.total", t.iowait},   {"system.cpu.irq.total", t.irq},
          {"system.cpu.softirq.total", t.softirq}, {"system.cpu.steal.total", t.steal},
          {"system.cpu.guest.total", t.guest},     {"system.cpu.guestnice.total", t.guest_nice}};
      for (const auto& total : totals) {
        emit.Gauge(total.first, static_cast<double>(total.second) / ticks_per_second_, tags);
      }
    }
    return absl::OkStatus();
  }

 private:
  static void EmitPercentages(Emitter& emit, const CpuTimes& last, const CpuTimes& now) {
    // iowait (and on some kernels idle) can go backwards between reads on tickless kernels; a
    // negative share of CPU time means nothing, so such a field counts as 0.
    auto delta = [](uint64_t current, uint64_t previous) {
      return current > previous ? static_cast<double>(current - previous) : 0.0;
    };
    const double user = delta(now.user, last.user) + delta(now.nice, last.nice);
    const double interrupt = delta(now.irq, last.irq) + delta(now.softirq, last.softirq);
    const double system = delta(now.system, last.system) + interrupt;
    const double iowait = delta(now.iowait, last.iowait);
    const double idle = delta(now.idle, last.idle);
    const double stolen = delta(now.steal, last.steal);
    const double guest = delta(now.guest, last.guest);
    // The Agent's denominator: user nice system idle iowait irq softirq steal. guest time is already
    // inside user, so it is a share of the same total and not part of the sum.
    const double total = user + system + iowait + idle + stolen;
    if (total <= 0) return;  // no tick elapsed: nothing meaningful to report
    const double to_percent = 100.0 / total;
    emit.Gauge("system.cpu.user", user * to_percent);
    emit.Gauge("system.cpu.system", system * to_percent);
    emit.Gauge("system.cpu.interrupt", interrupt * to_percent);
    emit.Gauge("system.cpu.iowait", iowait * to_percent);
    emit.Gauge("system.cpu.idle", idle * to_percent);
    emit.Gauge("system.cpu.stolen", stolen * to_percent);
    emit.Gauge("system.cpu.guest", guest * to_percent);
  }

  const double ticks_per_second_;
  std::optional<CpuTimes> last_total_;
  std::optional<uint64_t> last_context_switches_;
  DeviceTags core_tags_;
};

// system.mem.* and system.swap.*, in MiB (the Agent's "MB"), from /proc/meminfo the way gopsutil
// reads it; swap_in/swap_out are rates from /proc/vmstat.
class MemoryCheck final : public HostCheck {
 public:
  using HostCheck::HostCheck;
  std::string_view name() const override { return "memory"; }

  absl::Status Run(int64_t now_unix, SampleSink& sink) override {
    auto info = ReadAndParse(ProcPath("meminfo"), &scratch_, ParseMeminfo);
    if (!info.ok()) return info.status();
    Emitter emit = MakeEmitter(now_unix, sink);
    const MemInfo& m = *info;
    auto mib = [](uint64_t bytes) { return static_cast<double>(bytes) / kBytesPerMiB; };

    // gopsutil counts reclaimable slab as cache, and without MemAvailable (kernels before 3.14)
    // estimates what is available as cache plus free.
    const uint64_t cached = m.cached.value_or(0) + m.s_reclaimable.value_or(0);
    const uint64_t available = m.available.value_or(cached + m.free);
    emit.Gauge("system.mem.total", mib(m.total));
    emit.Gauge("system.mem.free", mib(m.free));
    emit.Gauge("system.mem.used", m.total > m.free ? mib(m.total - m.free) : 0.0);
    emit.Gauge("system.mem.usable", mib(available));
    emit.Gauge("system.mem.pct_usable", static_cast<double>(available) / static_cast<double>(m.total));
    emit.Gauge("system.mem.cached", mib(cached));
    emit.Gauge("system.mem.buffered", mib(m.buffers.value_or(0)));
    emit.Gauge("system.mem.shared", mib(m.shmem.value_or(0)));
    emit.Gauge("system.mem.slab", mib(m.slab.value_or(0)));
    emit.Gauge("system.mem.slab_reclaimable", mib(m.s_reclaimable.value_or(0)));
    emit.Gauge("system.mem.page_tables", mib(m.page_tables.value_or(0)));
    emit.Gauge("system.mem.commit_limit", mib(m.commit_limit.value_or(0)));
    emit.Gauge("system.mem.committed_as", mib(m.committed_as.value_or(0)));
    emit.Gauge("system.swap.cached", mib(m.swap_cached.value_or(0)));

    const uint64_t swap_total = m.swap_total.value_or(0);
    const uint64_t swap_free = std::min(m.swap_free.value_or(0), swap_total);
    emit.Gauge("system.swap.total", mib(swap_total));
    emit.Gauge("system.swap.free", mib(swap_free));
    emit.Gauge("system.swap.used", mib(swap_total - swap_free));
    // gopsutil's used percentage is 0 without swap, so the Agent reports 1 (all free) then.
    emit.Gauge("system.swap.pct_free",
               swap_total == 0 ? 1.0 : static_cast<double>(swap_free) / static_cast<double>(swap_total));

    auto vmstat = ReadAndParse(ProcPath("vmstat"), &scratch_, ParseVmstat);
    if (!vmstat.ok()) return vmstat.status();
    const double now = Now();
    if (last_vmstat_) {
      const double elapsed = now - last_time_;
      const double page_mib = kVmstatPageBytes / kBytesPerMiB;
      if (vmstat->pswpin && last_vmstat_->pswpin) {
        emit.Rate("system.swap.swap_in", *vmstat->pswpin, *last_vmstat_->pswpin, elapsed, {}, page_mib);
      }
      if (vmstat->pswpout && last_vmstat_->pswpout) {
        emit.Rate("system.swap.swap_out", *vmstat->pswpout, *last_vmstat_->pswpout, elapsed, {}, page_mib);
      }
    }
    last_vmstat_ = *vmstat;
    last_time_ = now;
    return absl::OkStatus();
  }

 private:
  std::optional<VmStat> last_vmstat_;
  double last_time_ = 0;
};

// system.load.{1,5,15} and the same divided by the number of CPUs. Like the Agent, which counts
// CPUs once when the check is configured, the count is read on the first successful run.
class LoadCheck final : public HostCheck {
 public:
  using HostCheck::HostCheck;
  std::string_view name() const override { return "load"; }

  absl::Status Run(int64_t now_unix, SampleSink& sink) override {
    if (cpu_count_ == 0) {
      auto stat = ReadAndParse(ProcPath("stat"), &scratch_, ParseProcStat);
      if (!stat.ok()) return stat.status();
      cpu_count_ = stat->cpus.size();
      if (cpu_count_ == 0) return absl::InvalidArgumentError(strings::Cat(ProcPath("stat"), " lists no CPU"));
    }
    auto load = ReadAndParse(ProcPath("loadavg"), &scratch_, ParseLoadavg);
    if (!load.ok()) return load.status();
    Emitter emit = MakeEmitter(now_unix, sink);
    const double cpus = static_cast<double>(cpu_count_);
    emit.Gauge("system.load.1", load->one);
    emit.Gauge("system.load.5", load->five);
    emit.Gauge("system.load.15", load->fifteen);
    emit.Gauge("system.load.norm.1", load->one / cpus);
    emit.Gauge("system.load.norm.5", load->five / cpus);
    emit.Gauge("system.load.norm.15", load->fifteen / cpus);
    return absl::OkStatus();
  }

 private:
  size_t cpu_count_ = 0;
};

// system.uptime in whole seconds, as gopsutil's host.Uptime returns it.
class UptimeCheck final : public HostCheck {
 public:
  using HostCheck::HostCheck;
  std::string_view name() const override { return "uptime"; }

  absl::Status Run(int64_t now_unix, SampleSink& sink) override {
    auto uptime = ReadAndParse(ProcPath("uptime"), &scratch_, ParseUptime);
    if (!uptime.ok()) return uptime.status();
    MakeEmitter(now_unix, sink).Gauge("system.uptime", std::floor(*uptime));
    return absl::OkStatus();
  }
};

// system.disk.* (KiB, the Agent's "kB") and system.fs.inodes.* per mounted file system, with the
// Agent's default tags device:<device> and device_name:<basename of device>.
class DiskCheck final : public HostCheck {
 public:
  explicit DiskCheck(const HostCheckOptions& options)
      : HostCheck(options),
        mounts_file_(!options.mounts_file.empty()   ? options.mounts_file
                     : options.proc_root == "/proc" ? JoinPath(options.proc_root, "self/mounts")
                                                    : JoinPath(options.proc_root, "1/mounts")),
        excluded_filesystems_(options.excluded_filesystems.begin(), options.excluded_filesystems.end()) {}
  std::string_view name() const override { return "disk"; }

  absl::Status Run(int64_t now_unix, SampleSink& sink) override {
    auto table = ReadAndParse(mounts_file_, &scratch_, ParseMounts);
    if (!table.ok()) return table.status();
    dropped_entries_ += table->dropped_entries;
    Emitter emit = MakeEmitter(now_unix, sink);
    // Several mounts can carry the same device name (bind mounts, every tmpfs is "tmpfs") and so the
    // same tags; the Agent submits each and its aggregator keeps the last, so walk the table
    // backwards and report a device once.
    reported_devices_.clear();
    for (auto it = table->mounts.rbegin(); it != table->mounts.rend(); ++it) {
      const MountEntry& mount = *it;
      if (Excluded(mount) || reported_devices_.contains(mount.device)) continue;
      struct statvfs fs {};
      // Like the Agent, a mount that cannot be queried (permissions, vanished) is skipped.
      if (statvfs(mount.mount_point.c_str(), &fs) != 0) continue;
      const double block = static_cast<double>(fs.f_frsize);
      const double total = static_cast<double>(fs.f_blocks) * block;
      if (total <= 0) continue;  // pseudo file systems; the Agent drops them the same way
      // psutil/gopsutil semantics: free is what unprivileged users may still use, used excludes the
      // root-reserved blocks, so total = used + free + reserved.
      const double free = static_cast<double>(fs.f_bavail) * block;
      const double used =
          fs.f_blocks >= fs.f_bfree ? static_cast<double>(fs.f_blocks - fs.f_bfree) * block : 0.0;
      const double utilized = used + free > 0 ? used / (used + free) * 100 : 0.0;
      reported_devices_.insert(mount.device);

      tags_.Clear();
      tags_.Add("device", mount.device);
      const size_t slash = mount.device.rfind('/');
      tags_.Add("device_name", slash == std::string::npos ? std::string_view(mount.device)
                                                          : std::string_view(mount.device).substr(slash + 1));
      const auto tags = tags_.span();
      emit.Gauge("system.disk.total", total / kBytesPerKiB, tags);
      emit.Gauge("system.disk.used", used / kBytesPerKiB, tags);
      emit.Gauge("system.disk.free", free / kBytesPerKiB, tags);
      emit.Gauge("system.disk.utilized", utilized, tags);
      emit.Gauge("system.disk.in_use", utilized / 100, tags);
      if (fs.f_files != 0) {
        const double inodes_total = static_cast<double>(fs.f_files);
        const double inodes_free = static_cast<double>(std::min(fs.f_ffree, fs.f_files));
        const double inodes_used = inodes_total - inodes_free;
        emit.Gauge("system.fs.inodes.total", inodes_total, tags);
        emit.Gauge("system.fs.inodes.used", inodes_used, tags);
        emit.Gauge("system.fs.inodes.free", inodes_free, tags);
        emit.Gauge("system.fs.inodes.utilized", inodes_used / inodes_total * 100, tags);
        emit.Gauge("system.fs.inodes.in_use", inodes_used / inodes_total, tags);
      }
    }
    return absl::OkStatus();
  }

 private:
  bool Excluded(const MountEntry& mount) const {
    // The Agent skips partitions without a device unless `all_partitions` is set.
    if (mount.device.empty() || mount.device == "none") return true;
    if (excluded_filesystems_.contains(mount.fs_type)) return true;
    // The Agent's default mount point exclusion, `(/host)?/proc/sys/fs/binfmt_misc$`: statvfs on an
    // unmounted binfmt_misc automount point mounts it (CVE-2018-1049 hangs systemd).
    constexpr std::string_view kBinfmt = "/proc/sys/fs/binfmt_misc";
    std::string_view point = mount.mount_point;
    if (point.ends_with(kBinfmt)) {
      point.remove_suffix(kBinfmt.size());
      if (point.empty() || point == "/host") return true;
    }
    return false;
  }

  const std::string mounts_file_;
  const absl::flat_hash_set<std::string> excluded_filesystems_;
  absl::flat_hash_set<std::string> reported_devices_;
  DeviceTags tags_;
};

// system.io.* per block device from /proc/diskstats, computed as the Agent's io check (itself
// modelled on sysstat's iostat), plus system.io.block_{in,out} from /proc/vmstat.
class IoCheck final : public HostCheck {
 public:
  using HostCheck::HostCheck;
  std::string_view name() const override { return "io"; }

  absl::Status Run(int64_t now_unix, SampleSink& sink) override {
    auto table = ReadAndParse(ProcPath("diskstats"), &scratch_, ParseDiskstats);
    if (!table.ok()) return table.status();
    dropped_entries_ += table->dropped_entries;
    Emitter emit = MakeEmitter(now_unix, sink);
    const double now = Now();
    const bool primed = have_last_;
    // The Agent measures the interval in whole milliseconds and works in ms from there.
    const double elapsed_ms = primed ? std::floor((now - last_time_) * 1000) : 0;
    const double elapsed_s = elapsed_ms / 1000;

    for (const DiskStats& disk : table->disks) {
      auto last_it = last_.find(disk.name);
      if (!primed || last_it == last_.end() || elapsed_ms <= 0) continue;  // first sight: prime only
      const DiskStats& last = last_it->second;
      tags_.Clear();
      tags_.Add("device", disk.name);
      tags_.Add("device_name", disk.name);
      const auto tags = tags_.span();
      emit.Rate("system.io.r_s", disk.reads, last.reads, elapsed_s, tags);
      emit.Rate("system.io.w_s", disk.writes, last.writes, elapsed_s, tags);
      emit.Rate("system.io.rrqm_s", disk.merged_reads, last.merged_reads, elapsed_s, tags);
      emit.Rate("system.io.wrqm_s", disk.merged_writes, last.merged_writes, elapsed_s, tags);

      const uint64_t read_bytes = IncreaseWithWrap(disk.sectors_read, last.sectors_read) * kSectorBytes;
      const uint64_t written_bytes =
          IncreaseWithWrap(disk.sectors_written, last.sectors_written) * kSectorBytes;
      const double reads = static_cast<double>(IncreaseWithWrap(disk.reads, last.reads));
      const double writes = static_cast<double>(IncreaseWithWrap(disk.writes, last.writes));
      const double read_ms = static_cast<double>(IncreaseWithWrap(disk.read_ms, last.read_ms));
      const double write_ms = static_cast<double>(IncreaseWithWrap(disk.write_ms, last.write_ms));
      const double weighted_ms =
          static_cast<double>(IncreaseWithWrap(disk.weighted_io_ms, last.weighted_io_ms));
      const double io_ms = static_cast<double>(IncreaseWithWrap(disk.io_ms, last.io_ms));
      const double operations = reads + writes;

      const double rkb_s = static_cast<double>(read_bytes) / kBytesPerKiB / elapsed_s;
      const double wkb_s = static_cast<double>(written_bytes) / kBytesPerKiB / elapsed_s;
      // The Agent divides the weighted time (ms) by 1024 rather than 1000 here; kept for parity.
      const double avg_q_sz = weighted_ms / kBytesPerKiB / elapsed_s;
      const double r_await = reads != 0 ? read_ms / reads : 0.0;
      const double w_await = writes != 0 ? write_ms / writes : 0.0;
      double avg_rq_sz = 0;  // in sectors
      double await = 0;
      if (operations != 0) {
        avg_rq_sz = static_cast<double>((read_bytes + written_bytes) / kSectorBytes) / operations;
        await = (read_ms + write_ms) / operations;
      }
      // sysstat's formulas, with the interval in hundredths of a second.
      const double interval_cs = elapsed_ms / 10;
      const double throughput = operations * 100 / interval_cs;
      const double util = io_ms / interval_cs * 100;
      const double svctm = throughput != 0 ? util / throughput : 0.0;

      emit.Gauge("system.io.rkb_s", Round2(rkb_s), tags);
      emit.Gauge("system.io.wkb_s", Round2(wkb_s), tags);
      emit.Gauge("system.io.avg_rq_sz", Round2(avg_rq_sz), tags);
      emit.Gauge("system.io.await", Round2(await), tags);
      emit.Gauge("system.io.r_await", Round2(r_await), tags);
      emit.Gauge("system.io.w_await", Round2(w_await), tags);
      emit.Gauge("system.io.avg_q_sz", Round2(avg_q_sz), tags);
      emit.Gauge("system.io.svctm", Round2(svctm), tags);
      emit.Gauge("system.io.util", Round2(util / 10), tags);  // percent of the interval the device was busy
    }

    // The table is rebuilt from this run, so it holds at most what the (capped) file listed and
    // forgets devices that went away.
    last_.clear();
    for (DiskStats& disk : table->disks) {
      std::string name = disk.name;
      last_.insert_or_assign(std::move(name), std::move(disk));
    }

    absl::Status status = absl::OkStatus();
    auto vmstat = ReadAndParse(ProcPath("vmstat"), &scratch_, ParseVmstat);
    if (vmstat.ok()) {
      if (primed && last_vmstat_ && elapsed_s > 0) {
        if (vmstat->pgpgin && last_vmstat_->pgpgin) {
          emit.Rate("system.io.block_in", *vmstat->pgpgin, *last_vmstat_->pgpgin, elapsed_s, {},
                    kVmstatPageBytes);
        }
        if (vmstat->pgpgout && last_vmstat_->pgpgout) {
          emit.Rate("system.io.block_out", *vmstat->pgpgout, *last_vmstat_->pgpgout, elapsed_s, {},
                    kVmstatPageBytes);
        }
      }
      last_vmstat_ = *vmstat;
    } else {
      status = vmstat.status();
    }
    have_last_ = true;
    last_time_ = now;
    return status;
  }

 private:
  bool have_last_ = false;
  double last_time_ = 0;
  absl::flat_hash_map<std::string, DiskStats> last_;
  std::optional<VmStat> last_vmstat_;
  DeviceTags tags_;
};

// system.net.* per interface from /proc/net/dev, as per-second rates, tagged like the Agent's
// network check: device, device_name, and speed/mtu when sysfs has them.
class NetworkCheck final : public HostCheck {
 public:
  explicit NetworkCheck(const HostCheckOptions& options)
      : HostCheck(options),
        excluded_interfaces_(options.excluded_interfaces.begin(), options.excluded_interfaces.end()) {}
  std::string_view name() const override { return "network"; }

  absl::Status Run(int64_t now_unix, SampleSink& sink) override {
    auto table = ReadAndParse(ProcPath("net/dev"), &scratch_, ParseNetDev);
    if (!table.ok()) return table.status();
    dropped_entries_ += table->dropped_entries;
    Emitter emit = MakeEmitter(now_unix, sink);
    const double now = Now();
    const bool primed = have_last_;
    const double elapsed = now - last_time_;

    for (const NetDevCounters& interface : table->interfaces) {
      if (excluded_interfaces_.contains(interface.name)) continue;
      auto last_it = last_.find(interface.name);
      if (!primed || last_it == last_.end() || elapsed <= 0) continue;  // first sight: prime only
      const NetDevCounters& last = last_it->second;
      tags_.Clear();
      tags_.Add("device", interface.name);
      tags_.Add("device_name", interface.name);
      AddLinkTags(interface.name);
      const auto tags = tags_.span();
      emit.Rate("system.net.bytes_rcvd", interface.rx_bytes, last.rx_bytes, elapsed, tags);
      emit.Rate("system.net.bytes_sent", interface.tx_bytes, last.tx_bytes, elapsed, tags);
      emit.Rate("system.net.packets_in.count", interface.rx_packets, last.rx_packets, elapsed, tags);
      emit.Rate("system.net.packets_in.drop", interface.rx_drops, last.rx_drops, elapsed, tags);
      emit.Rate("system.net.packets_in.error", interface.rx_errors, last.rx_errors, elapsed, tags);
      emit.Rate("system.net.packets_out.count", interface.tx_packets, last.tx_packets, elapsed, tags);
      emit.Rate("system.net.packets_out.drop", interface.tx_drops, last.tx_drops, elapsed, tags);
      emit.Rate("system.net.packets_out.error", interface.tx_errors, last.tx_errors, elapsed, tags);
    }

    last_.clear();
    for (NetDevCounters& interface : table->interfaces) {
      std::string name = interface.name;
      last_.insert_or_assign(std::move(name), std::move(interface));
    }
    have_last_ = true;
    last_time_ = now;
    return absl::OkStatus();
  }

 private:
  // speed (Mb/s; -1 for virtual links) and mtu from sysfs, each only when readable (the loopback
  // has no speed). The name comes from /proc/net/dev, so it is checked before it becomes a path.
  void AddLinkTags(const std::string& interface) {
    if (interface.empty() || interface == "." || interface == ".." ||
        interface.find('/') != std::string::npos) {
      return;
    }
    const std::string base = SysPath(strings::Cat("class/net/", interface, "/"));
    constexpr size_t kMaxAttributeBytes = 64;
    for (std::string_view attribute : {std::string_view("speed"), std::string_view("mtu")}) {
      if (!ReadProcFile(strings::Cat(base, attribute), &attribute_, kMaxAttributeBytes).ok()) continue;
      auto value = ParseSysfsInt(attribute_);
      if (value.ok()) tags_.Add(attribute, std::to_string(*value));
    }
  }

  const absl::flat_hash_set<std::string> excluded_interfaces_;
  bool have_last_ = false;
  double last_time_ = 0;
  absl::flat_hash_map<std::string, NetDevCounters> last_;
  std::string attribute_;
  DeviceTags tags_;
};

// system.fs.file_handles.* from /proc/sys/fs/file-nr.
class FileHandleCheck final : public HostCheck {
 public:
  using HostCheck::HostCheck;
  std::string_view name() const override { return "file_handle"; }

  absl::Status Run(int64_t now_unix, SampleSink& sink) override {
    auto file_nr = ReadAndParse(ProcPath("sys/fs/file-nr"), &scratch_, ParseFileNr);
    if (!file_nr.ok()) return file_nr.status();
    Emitter emit = MakeEmitter(now_unix, sink);
    const double allocated = static_cast<double>(file_nr->allocated);
    const double unused = static_cast<double>(file_nr->allocated_unused);
    const double max = static_cast<double>(file_nr->max);
    emit.Gauge("system.fs.file_handles.allocated", allocated);
    emit.Gauge("system.fs.file_handles.allocated_unused", unused);
    emit.Gauge("system.fs.file_handles.used", allocated - unused);
    emit.Gauge("system.fs.file_handles.max", max);
    if (max > 0) emit.Gauge("system.fs.file_handles.in_use", (allocated - unused) / max);
    return absl::OkStatus();
  }
};

}  // namespace

std::vector<std::unique_ptr<Check>> MakeHostChecks(const HostCheckOptions& options) {
  std::vector<std::unique_ptr<Check>> checks;
  checks.push_back(std::make_unique<CpuCheck>(options));
  checks.push_back(std::make_unique<MemoryCheck>(options));
  checks.push_back(std::make_unique<LoadCheck>(options));
  checks.push_back(std::make_unique<UptimeCheck>(options));
  checks.push_back(std::make_unique<DiskCheck>(options));
  checks.push_back(std::make_unique<IoCheck>(options));
  checks.push_back(std::make_unique<NetworkCheck>(options));
  checks.push_back(std::make_unique<FileHandleCheck>(options));
  return checks;
}

}  // namespace dogwatch::checks
