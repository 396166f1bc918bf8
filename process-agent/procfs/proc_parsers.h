#pragma once
// Pure parsers for the /proc text files the process collector reads. They take the file's bytes
// and never touch the file system, so they are unit-tested on fixtures and fuzzed
// (procfs_parsers_fuzz). None of them allocates except where it returns strings.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace dogwatch::process {

// /proc/<pid>/stat. Field numbers in proc(5) terms.
struct StatFields {
  int32_t pid = 0;
  std::string_view comm;     // (2) points into the parsed text; may contain spaces and ')'
  char state = '?';          // (3)
  int32_t ppid = 0;          // (4)
  int32_t pgroup = 0;        // (5)
  uint32_t flags = 0;        // (9) PF_* flags; PF_KTHREAD marks kernel threads
  uint64_t utime_ticks = 0;  // (14) clock ticks, all threads
  uint64_t stime_ticks = 0;  // (15)
  int32_t nice = 0;          // (19)
  int32_t num_threads = 0;   // (20)
  uint64_t start_ticks = 0;  // (22) clock ticks after boot
  uint64_t vsize_bytes = 0;  // (23)
  uint64_t rss_pages = 0;    // (24)
  int32_t processor = -1;    // (39) CPU last run on, -1 when the line is shorter
};
inline constexpr uint32_t kPfKthread = 0x00200000;

// Fails (InvalidArgument) when the line has no "(comm)" or fewer than 24 fields.
absl::Status ParseStat(std::string_view text, StatFields* out);

// /proc/<pid>/status: the lines the collector needs. Memory values are in kB as the kernel
// prints them; a line that is absent (zombies and kernel threads have no Vm* lines) leaves 0.
struct StatusFields {
  uint32_t uid[4] = {0, 0, 0, 0};  // real, effective, saved, filesystem
  uint32_t gid[4] = {0, 0, 0, 0};
  int32_t ns_pid = 0;  // last NSpid entry: the pid in the innermost namespace (0 when absent)
  int32_t num_threads = 0;
  uint64_t voluntary_ctx_switches = 0;
  uint64_t involuntary_ctx_switches = 0;
  uint64_t vm_size_kb = 0;
  uint64_t vm_rss_kb = 0;
  uint64_t vm_swap_kb = 0;
  uint64_t vm_data_kb = 0;
  uint64_t vm_stk_kb = 0;
  uint64_t vm_exe_kb = 0;
  uint64_t vm_lib_kb = 0;
  uint64_t rss_file_kb = 0;
  uint64_t rss_shmem_kb = 0;
  bool kernel_thread = false;  // "Kthread: 1" (Linux 6.x), else decided from stat flags
};

// Fails when the Uid or Gid line is missing or malformed: without them the record is useless.
absl::Status ParseStatus(std::string_view text, StatusFields* out);

// /proc/<pid>/io.
struct IoFields {
  uint64_t rchar = 0;
  uint64_t wchar = 0;
  uint64_t syscr = 0;
  uint64_t syscw = 0;
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
};
// Fails when any of syscr, syscw, read_bytes, write_bytes is missing.
absl::Status ParseIo(std::string_view text, IoFields* out);

// /proc/<pid>/schedstat: "sum_exec_runtime_ns run_delay_ns timeslices".
struct SchedStatFields {
  uint64_t exec_runtime_ns = 0;
  uint64_t run_delay_ns = 0;
  uint64_t timeslices = 0;
};
absl::Status ParseSchedStat(std::string_view text, SchedStatFields* out);

// /proc/<pid>/cmdline, split the way the Datadog agent does it: NUL-separated, leading NULs and
// runs of NULs skipped (so empty arguments disappear), the last piece kept without a trailing NUL.
// Reuses the strings already in `args` so re-reading an unchanged command line does not allocate.
// At most `max_args` arguments are kept; returns true when some were dropped.
bool ParseCmdline(std::string_view raw, size_t max_args, std::vector<std::string>* args);

// /proc/stat: the aggregate "cpu" line, how many "cpuN" lines follow, and btime.
struct SystemCpuTimes {
  uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0, guest = 0,
           guest_nice = 0;
  // Datadog's deltaSys uses gopsutil's TimesStat.Total(), which sums all ten columns (guest time
  // is counted twice, once inside user): kept identical so percentages match the Go agent.
  uint64_t Total() const {
    return user + nice + system + idle + iowait + irq + softirq + steal + guest + guest_nice;
  }
};
struct SystemStat {
  SystemCpuTimes cpu;
  int32_t num_cpus = 0;     // "cpuN" lines: online logical CPUs
  int64_t boot_time_s = 0;  // btime
};
// Fails when the "cpu " line or btime is missing.
absl::Status ParseSystemStat(std::string_view text, SystemStat* out);

}  // namespace dogwatch::process
