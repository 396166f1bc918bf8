#pragma once
// Parsers for the /proc and /sys text the host checks read. The kernel writes these files, but a
// container may mount anything at the configured proc root, so every parser treats its input as
// untrusted: sizes are bounded before anything is kept, malformed lines are skipped and counted, and
// a file that yields nothing usable is an error. Parsers take the text and return plain structs so
// they can be fuzzed and unit-tested without a filesystem.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dogwatch::checks {

// The largest file a check reads. /proc/self/mounts on a busy container host is the biggest of them
// (a few hundred KiB with thousands of overlay mounts); anything above this is not a proc file.
inline constexpr size_t kMaxProcFileBytes = 1 << 20;
// Caps on the per-device tables, so a pathological host (or a hostile proc root) cannot make a check
// allocate without bound; entries beyond the cap are dropped and counted in `dropped_entries`.
inline constexpr size_t kMaxCpus = 4096;
inline constexpr size_t kMaxDevices = 4096;
inline constexpr size_t kMaxMounts = 8192;

// Reads `path` into `*out` (replacing its contents, reusing its capacity). Fails with a message that
// names the file when it cannot be opened or read, or when it is larger than `max_bytes`.
absl::Status ReadProcFile(const std::string& path, std::string* out, size_t max_bytes = kMaxProcFileBytes);

// One `cpu` line of /proc/stat, in USER_HZ ticks. Fields a kernel does not report are 0.
struct CpuTimes {
  uint64_t user = 0;
  uint64_t nice = 0;
  uint64_t system = 0;
  uint64_t idle = 0;
  uint64_t iowait = 0;
  uint64_t irq = 0;
  uint64_t softirq = 0;
  uint64_t steal = 0;
  uint64_t guest = 0;
  uint64_t guest_nice = 0;
};

struct PerCpuTimes {
  std::string name;  // "cpu0", as the kernel names it
  CpuTimes times;
};

struct ProcStat {
  CpuTimes total;                            // the aggregate `cpu` line
  std::vector<PerCpuTimes> cpus;             // one per online CPU (the `cpuN` lines), capped at kMaxCpus
  std::optional<uint64_t> context_switches;  // `ctxt`
  size_t dropped_entries = 0;
};
absl::StatusOr<ProcStat> ParseProcStat(std::string_view text);

// /proc/meminfo values in bytes (the file says kB). Missing keys stay empty.
struct MemInfo {
  uint64_t total = 0;  // MemTotal, required
  uint64_t free = 0;   // MemFree, required
  std::optional<uint64_t> available;
  std::optional<uint64_t> buffers;
  std::optional<uint64_t> cached;
  std::optional<uint64_t> swap_cached;
  std::optional<uint64_t> shmem;
  std::optional<uint64_t> slab;
  std::optional<uint64_t> s_reclaimable;
  std::optional<uint64_t> page_tables;
  std::optional<uint64_t> commit_limit;
  std::optional<uint64_t> committed_as;
  std::optional<uint64_t> swap_total;
  std::optional<uint64_t> swap_free;
};
absl::StatusOr<MemInfo> ParseMeminfo(std::string_view text);

// The /proc/vmstat counters the memory and io checks turn into rates.
struct VmStat {
  std::optional<uint64_t> pgpgin;
  std::optional<uint64_t> pgpgout;
  std::optional<uint64_t> pswpin;
  std::optional<uint64_t> pswpout;
};
absl::StatusOr<VmStat> ParseVmstat(std::string_view text);

struct LoadAvg {
  double one = 0;
  double five = 0;
  double fifteen = 0;
};
absl::StatusOr<LoadAvg> ParseLoadavg(std::string_view text);

// First field of /proc/uptime: seconds since boot.
absl::StatusOr<double> ParseUptime(std::string_view text);

// One /proc/diskstats line (Documentation/admin-guide/iostats.rst); times in ms, sizes in sectors.
struct DiskStats {
  std::string name;
  uint64_t reads = 0;
  uint64_t merged_reads = 0;
  uint64_t sectors_read = 0;
  uint64_t read_ms = 0;
  uint64_t writes = 0;
  uint64_t merged_writes = 0;
  uint64_t sectors_written = 0;
  uint64_t write_ms = 0;
  uint64_t in_progress = 0;
  uint64_t io_ms = 0;
  uint64_t weighted_io_ms = 0;
};
struct DiskStatsTable {
  std::vector<DiskStats> disks;  // capped at kMaxDevices
  size_t malformed_lines = 0;
  size_t dropped_entries = 0;
};
absl::StatusOr<DiskStatsTable> ParseDiskstats(std::string_view text);

// One interface of /proc/net/dev.
struct NetDevCounters {
  std::string name;
  uint64_t rx_bytes = 0;
  uint64_t rx_packets = 0;
  uint64_t rx_errors = 0;
  uint64_t rx_drops = 0;
  uint64_t tx_bytes = 0;
  uint64_t tx_packets = 0;
  uint64_t tx_errors = 0;
  uint64_t tx_drops = 0;
};
struct NetDevTable {
  std::vector<NetDevCounters> interfaces;  // capped at kMaxDevices
  size_t malformed_lines = 0;
  size_t dropped_entries = 0;
};
absl::StatusOr<NetDevTable> ParseNetDev(std::string_view text);

// One line of /proc/<pid>/mounts, with the kernel's octal escapes (\040 for a space...) decoded.
struct MountEntry {
  std::string device;
  std::string mount_point;
  std::string fs_type;
};
struct MountTable {
  std::vector<MountEntry> mounts;  // capped at kMaxMounts
  size_t malformed_lines = 0;
  size_t dropped_entries = 0;
};
absl::StatusOr<MountTable> ParseMounts(std::string_view text);

// /proc/sys/fs/file-nr: allocated handles, allocated but unused handles, system-wide maximum.
struct FileNr {
  uint64_t allocated = 0;
  uint64_t allocated_unused = 0;
  uint64_t max = 0;
};
absl::StatusOr<FileNr> ParseFileNr(std::string_view text);

// A whole decimal integer (a sysfs attribute such as /sys/class/net/eth0/speed), surrounding
// whitespace allowed. Negative values are kept: virtual links report a speed of -1.
absl::StatusOr<int64_t> ParseSysfsInt(std::string_view text);

}  // namespace dogwatch::checks
