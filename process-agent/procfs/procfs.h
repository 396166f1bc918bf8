#pragma once
// Live process collection from /proc for the process and rtprocess checks.
//
// Cost model (measured on Linux 6.x, see procfs_benchmark / bench_vs_ps.sh): most of the price of
// reading /proc is the kernel generating the text and the open/close pair, not parsing. So the
// collector
//   - keeps the per-process files it reads every cycle (stat, status, io, schedstat) open between
//     collections and re-reads them with pread (within a file-descriptor budget);
//   - for a single-threaded process that was asleep and whose /proc/<pid>/schedstat (run time in ns
//     and number of times scheduled) has not moved, reuses the previous figures: a task that has
//     not run cannot have changed its CPU times, I/O counters, fds, threads or context switches.
//     Only memory can drift (reclaim, swap-out) and is refreshed by the periodic full read;
//   - reads what changes only at exec/setuid/chdir (cmdline, exe, cwd, root, cgroup, user name)
//     when a process is first seen, when its comm or uid changes, and every
//     `static_refresh_every` collections, and shares it between snapshots (ProcessStaticInfo) so an
//     unchanged process costs no allocation.
// Held descriptors also make pid reuse safe: a held file refers to the old task and fails with
// ESRCH once it is gone, and identity is (pid, start time).

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "process-agent/procfs/proc_parsers.h"

namespace dogwatch::process {

class CommandLineScrubber;

// What changes only at exec, chdir, setuid or a cgroup move. Shared between snapshots.
struct ProcessStaticInfo {
  std::string comm;                // /proc/<pid>/stat (2), at most 64 bytes for kernel threads
  std::vector<std::string> args;   // /proc/<pid>/cmdline, scrubbed when a scrubber is configured
  std::string exe;                 // readlink /proc/<pid>/exe; "" when unreadable
  std::string cwd;                 // readlink /proc/<pid>/cwd
  std::string root;                // readlink /proc/<pid>/root
  std::string user_name;           // getpwuid_r(uid), "" when the uid has no passwd entry
  std::string container_id;        // from /proc/<pid>/cgroup, "" when not in a container
  bool cmdline_truncated = false;  // longer than Options::max_cmdline_bytes / max_args
};

// Rates relative to the previous Collect(). With has_previous false (first time this process
// identity is seen, or first Collect) CPU percentages are 0 and I/O rates 0 (or -1 when unreadable).
struct ProcessRates {
  bool has_previous = false;
  // Datadog's calculatePct: min(delta_proc / delta_system_total * 100, 100) * num_cpus, clamped at 0,
  // so a busy loop reads 100 whatever the number of CPUs.
  float cpu_total_pct = 0;
  float cpu_user_pct = 0;
  float cpu_system_pct = 0;
  // Per second over the elapsed wall time; -1 when /proc/<pid>/io is unreadable (Datadog's marker).
  float read_rate = -1;         // syscr
  float write_rate = -1;        // syscw
  float read_bytes_rate = -1;   // read_bytes
  float write_bytes_rate = -1;  // write_bytes
};

struct ProcessInfo {
  int32_t pid = 0;
  int32_t ppid = 0;
  int32_t pgroup = 0;
  int32_t ns_pid = 0;  // last NSpid entry (== pid outside containers)
  char state = '?';    // R S D T t X Z I P W ...
  int32_t num_threads = 0;
  int32_t nice = 0;
  int32_t last_cpu = -1;
  uint32_t uid = 0, gid = 0, euid = 0, egid = 0, suid = 0, sgid = 0;
  uint64_t start_ticks = 0;    // identity together with pid
  int64_t create_time_ms = 0;  // boot time + start_ticks / ticks_per_second, Unix ms
  uint64_t utime_ticks = 0;    // divide by Snapshot::ticks_per_second for seconds
  uint64_t stime_ticks = 0;
  uint64_t rss_bytes = 0;
  uint64_t vms_bytes = 0;
  uint64_t swap_bytes = 0;
  uint64_t shared_bytes = 0;   // RssFile + RssShmem
  uint64_t text_bytes = 0;     // VmExe
  uint64_t lib_bytes = 0;      // VmLib
  uint64_t data_bytes = 0;     // VmData + VmStk (statm's "data")
  int32_t open_fd_count = -1;  // -1 when /proc/<pid>/fd is unreadable
  bool io_readable = false;    // false: the four counters below are meaningless
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
  uint64_t read_count = 0;   // syscr
  uint64_t write_count = 0;  // syscw
  uint64_t voluntary_ctx_switches = 0;
  uint64_t involuntary_ctx_switches = 0;
  bool kernel_thread = false;
  std::shared_ptr<const ProcessStaticInfo> info;  // never null in a Snapshot
  ProcessRates rates;

  const std::vector<std::string>& args() const { return info->args; }
};

struct CollectCounters {
  int64_t pids_listed = 0;            // numeric entries in /proc
  int64_t processes_reported = 0;     // == Snapshot::processes.size()
  int64_t processes_over_limit = 0;   // listed beyond Options::max_processes, not read
  int64_t processes_vanished = 0;     // exited between the listing and the read
  int64_t skipped_empty_cmdline = 0;  // kernel threads and zombies (Datadog skips them too)
  int64_t unreadable_fd = 0;          // permission denied (normal for other users' processes)
  int64_t unreadable_io = 0;
  int64_t unreadable_exe = 0;
  int64_t unreadable_cwd = 0;
  int64_t unreadable_root = 0;
  int64_t unreadable_cmdline = 0;
  int64_t unreadable_cgroup = 0;
  int64_t parse_errors = 0;              // a file read but not understood: the process is dropped
  int64_t truncated_reads = 0;           // a file larger than its read cap (cmdline usually)
  int64_t full_reads = 0;                // processes whose stat/status/io/fd were read this cycle
  int64_t idle_reuses = 0;               // processes served from the schedstat shortcut
  int64_t static_refreshes = 0;          // processes whose cmdline/exe/cwd/root/cgroup/user were (re)read
  int64_t held_fds = 0;                  // descriptors kept open after this collection
  int64_t held_fd_budget_exhausted = 0;  // files opened per cycle because the budget was spent
  int64_t user_cache_evictions = 0;
};

struct Snapshot {
  std::vector<ProcessInfo> processes;   // ascending pid
  int64_t timestamp_ms = 0;             // Unix ms at the start of the collection
  double elapsed_seconds = 0;           // since the previous Collect (0 on the first)
  SystemCpuTimes system_cpu;            // aggregate /proc/stat cpu line, ticks
  uint64_t system_cpu_delta_ticks = 0;  // Total() delta since the previous Collect (0 on the first)
  int32_t num_cpus = 1;
  int64_t ticks_per_second = 100;  // sysconf(_SC_CLK_TCK)
  int64_t page_size = 4096;
  int64_t boot_time_s = 0;
  CollectCounters counters;
};

class ProcessCollector {
 public:
  struct Options {
    std::string proc_root = "/proc";
    size_t max_processes = 10000;           // more are counted in processes_over_limit
    size_t max_cmdline_bytes = 128 * 1024;  // longer command lines are cut (counted)
    size_t max_args = 4096;
    size_t max_file_bytes = 64 * 1024;  // any other /proc file
    // Descriptors kept open across collections (4 per process at most). The effective budget is
    // also capped at half of RLIMIT_NOFILE's soft limit, read at construction: raise the soft limit
    // to the hard one in main (as the Go runtime does for the Datadog agent) to get the full budget.
    size_t max_held_fds = 16384;
    // Read every process fully (memory included, which can shrink under reclaim while a task
    // sleeps) at least every N collections, staggered by pid; 0 = never force. 6 = one minute at
    // the process check's 10 s interval.
    int full_refresh_every = 6;
    // Re-read the static part (cmdline, exe, cwd, root, cgroup, user name) at least every N
    // collections even when comm and uid did not change: catches setproctitle, chdir and cgroup
    // moves. 30 = five minutes at 10 s. 0 = only on first sight and comm/uid change.
    int static_refresh_every = 30;
    bool skip_empty_cmdline = true;                 // Datadog drops kernel threads and zombies
    bool idle_shortcut = true;                      // the schedstat shortcut described above
    size_t max_cached_users = 4096;                 // uid → name cache; cleared when full (counted)
    const CommandLineScrubber* scrubber = nullptr;  // applied when cmdlines are (re)read
    // Test seams. Monotonic nanoseconds for rates, Unix milliseconds for the timestamp.
    std::function<int64_t()> monotonic_ns;
    std::function<int64_t()> unix_ms;
  };

  explicit ProcessCollector(Options options);
  ~ProcessCollector();
  ProcessCollector(const ProcessCollector&) = delete;
  ProcessCollector& operator=(const ProcessCollector&) = delete;

  // Fails only when <proc_root> cannot be listed or <proc_root>/stat cannot be read; per-process
  // problems are counted in Snapshot::counters. Not thread-safe: one caller at a time.
  absl::StatusOr<Snapshot> Collect();

  // Effective held-descriptor budget (after the RLIMIT_NOFILE cap).
  size_t held_fd_budget() const { return held_fd_budget_; }

 private:
  struct Tracked;
  class Reader;

  absl::Status ReadSystemStat(SystemStat* out);
  // Fills `tracked` for this cycle. Returns false when the process is to be left out of the
  // snapshot (vanished, skipped, parse error), counting why.
  bool Refresh(int32_t pid, Tracked* tracked, CollectCounters* counters, bool* is_new);
  bool FullRead(int32_t pid, Tracked* tracked, CollectCounters* counters, bool force_static);
  void RefreshStatic(int32_t pid, Tracked* tracked, const std::string& comm, CollectCounters* counters);
  const std::string& UserName(uint32_t uid, CollectCounters* counters);
  void ComputeRates(const ProcessInfo& previous, bool previous_valid, double elapsed_s, uint64_t system_delta,
                    int32_t num_cpus, ProcessInfo* current) const;
  void CloseHeld(Tracked* tracked);

  Options options_;
  int proc_dirfd_ = -1;
  int system_stat_fd_ = -1;
  bool fd_count_by_stat_ = false;  // Linux >= 6.2 reports the fd count as /proc/<pid>/fd's size
  int64_t ticks_per_second_ = 100;
  int64_t page_size_ = 4096;
  size_t held_fd_budget_ = 0;
  size_t held_fds_ = 0;
  uint64_t cycle_ = 0;
  bool have_previous_ = false;
  int64_t previous_monotonic_ns_ = 0;
  uint64_t previous_system_total_ = 0;
  std::vector<char> buffer_;  // one read buffer reused for every file
  std::vector<int32_t> pids_;
  absl::flat_hash_map<int32_t, std::unique_ptr<Tracked>> tracked_;
  absl::flat_hash_map<uint32_t, std::string> user_names_;
  std::string pwd_buffer_;
};

}  // namespace dogwatch::process
