#include "process-agent/procfs/procfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>

#include "common/container/container_id.h"
#include "common/strings/strings.h"
#include "process-agent/procfs/scrub.h"

namespace dogwatch::process {
namespace {

enum class ReadOutcome { kOk, kGone, kDenied, kFailed };

ReadOutcome OutcomeFromErrno(int error) {
  switch (error) {
    case ENOENT:
    case ESRCH:
      return ReadOutcome::kGone;
    case EACCES:
    case EPERM:
      return ReadOutcome::kDenied;
    default:
      return ReadOutcome::kFailed;
  }
}

// "<pid>/<name>" relative to the proc root descriptor, built without allocating.
struct PidPath {
  char text[64];
  PidPath(int32_t pid, const char* name) {
    auto result = std::to_chars(text, text + 16, pid);
    char* out = result.ptr;
    if (name != nullptr) {
      *out++ = '/';
      size_t len = std::min<size_t>(std::strlen(name), 40);
      std::memcpy(out, name, len);
      out += len;
    }
    *out = '\0';
  }
};

void CloseFd(int* fd) {
  if (*fd >= 0) ::close(*fd);
  *fd = -1;
}

float CalculatePct(double delta_proc, double delta_time, double num_cpus) {
  if (delta_time <= 0) return 0;
  double overall = std::min(delta_proc / delta_time * 100.0, 100.0);
  return static_cast<float>(std::max(overall * num_cpus, 0.0));
}

// Counter delta per second, with Datadog's guards (counter went backwards → 0).
float CalculateRate(uint64_t current, uint64_t previous, double elapsed_s) {
  if (elapsed_s <= 0 || previous > current) return 0;
  return static_cast<float>(static_cast<double>(current - previous) / elapsed_s);
}

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t UnixNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

// Calls `visit(name)` for each entry of an open directory, from the start.
template <typename Visit>
bool ForEachDirEntry(int dirfd, Visit visit) {
  if (::lseek(dirfd, 0, SEEK_SET) < 0) return false;
  alignas(8) char buf[32 * 1024];
  while (true) {
    long n = ::syscall(SYS_getdents64, dirfd, buf, sizeof(buf));
    if (n < 0) return false;
    if (n == 0) return true;
    for (long offset = 0; offset < n;) {
      auto* entry = reinterpret_cast<LinuxDirent64*>(buf + offset);
      visit(entry->d_name);
      offset += entry->d_reclen;
    }
  }
}

bool ParsePid(const char* name, int32_t* pid) {
  if (name[0] < '1' || name[0] > '9') return false;
  size_t len = std::strlen(name);
  auto [ptr, ec] = std::from_chars(name, name + len, *pid);
  return ec == std::errc() && ptr == name + len;
}

}  // namespace

struct ProcessCollector::Tracked {
  ProcessInfo info;
  bool valid = false;    // `info` is a complete record of this identity (usable for rates)
  bool skipped = false;  // empty cmdline (kernel thread, zombie): left out of snapshots
  int schedstat_fd = -1;
  int stat_fd = -1;
  int status_fd = -1;
  int io_fd = -1;
  bool io_denied = false;
  bool fd_denied = false;
  bool sched_valid = false;
  SchedStatFields sched;
  uint64_t seen_cycle = 0;
};

ProcessCollector::ProcessCollector(Options options) : options_(std::move(options)) {
  if (!options_.monotonic_ns) options_.monotonic_ns = SteadyNowNs;
  if (!options_.unix_ms) options_.unix_ms = UnixNowMs;
  if (options_.max_cmdline_bytes == 0) options_.max_cmdline_bytes = 1;
  if (options_.max_file_bytes < 4096) options_.max_file_bytes = 4096;
  buffer_.resize(std::max(options_.max_cmdline_bytes, options_.max_file_bytes) + 1);
  proc_dirfd_ = ::open(options_.proc_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  long ticks = ::sysconf(_SC_CLK_TCK);
  if (ticks > 0) ticks_per_second_ = ticks;
  long page = ::sysconf(_SC_PAGESIZE);
  if (page > 0) page_size_ = page;
  if (proc_dirfd_ >= 0) {
    // Linux >= 6.2 reports the number of open descriptors as the size of /proc/<pid>/fd; probe on
    // ourselves, who hold at least proc_dirfd_.
    struct stat st;
    PidPath self(static_cast<int32_t>(::getpid()), "fd");
    fd_count_by_stat_ = ::fstatat(proc_dirfd_, self.text, &st, 0) == 0 && st.st_size > 0;
  }
  struct rlimit limit;
  size_t cap = options_.max_held_fds;
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    cap = std::min<size_t>(cap, static_cast<size_t>(limit.rlim_cur) / 2);
  }
  held_fd_budget_ = cap;
}

ProcessCollector::~ProcessCollector() {
  for (auto& [pid, tracked] : tracked_) CloseHeld(tracked.get());
  CloseFd(&system_stat_fd_);
  CloseFd(&proc_dirfd_);
}

void ProcessCollector::CloseHeld(Tracked* tracked) {
  for (int* fd : {&tracked->schedstat_fd, &tracked->stat_fd, &tracked->status_fd, &tracked->io_fd}) {
    if (*fd >= 0) {
      CloseFd(fd);
      --held_fds_;
    }
  }
}

// Reads one /proc file into buffer_. With `held` non-null the descriptor is re-read with pread
// when already open, and kept open after the read while the budget allows.
class ProcessCollector::Reader {
 public:
  Reader(ProcessCollector* owner, CollectCounters* counters) : owner_(owner), counters_(counters) {}

  ReadOutcome Read(int32_t pid, const char* name, int* held, size_t cap, std::string_view* out,
                   bool* truncated = nullptr) {
    std::vector<char>& buffer = owner_->buffer_;
    cap = std::min(cap, buffer.size() - 1);
    int fd = held != nullptr ? *held : -1;
    bool reused = fd >= 0;
    if (!reused) {
      PidPath path(pid, name);
      fd = ::openat(owner_->proc_dirfd_, path.text, O_RDONLY | O_CLOEXEC);
      if (fd < 0) return OutcomeFromErrno(errno);
    }
    // /proc files report size 0 and some (cmdline) return a page per read: loop until EOF or cap+1.
    size_t total = 0;
    ReadOutcome outcome = ReadOutcome::kOk;
    while (total <= cap) {
      ssize_t n = ::pread(fd, buffer.data() + total, cap + 1 - total, static_cast<off_t>(total));
      if (n < 0) {
        if (errno == EINTR) continue;
        outcome = OutcomeFromErrno(errno);
        break;
      }
      if (n == 0) break;
      total += static_cast<size_t>(n);
    }
    if (outcome != ReadOutcome::kOk) {
      if (reused) {
        ::close(fd);
        *held = -1;
        --owner_->held_fds_;
      } else {
        ::close(fd);
      }
      return outcome;
    }
    if (!reused) {
      if (held != nullptr && owner_->held_fds_ < owner_->held_fd_budget_) {
        *held = fd;
        ++owner_->held_fds_;
      } else {
        if (held != nullptr) ++counters_->held_fd_budget_exhausted;
        ::close(fd);
      }
    }
    bool cut = total > cap;
    if (cut) {
      total = cap;
      ++counters_->truncated_reads;
    }
    if (truncated != nullptr) *truncated = cut;
    *out = std::string_view(buffer.data(), total);
    return ReadOutcome::kOk;
  }

  // readlink of /proc/<pid>/<name>.
  ReadOutcome Link(int32_t pid, const char* name, std::string* out) {
    char target[PATH_MAX];
    PidPath path(pid, name);
    ssize_t n = ::readlinkat(owner_->proc_dirfd_, path.text, target, sizeof(target));
    if (n < 0) {
      out->clear();
      return OutcomeFromErrno(errno);
    }
    out->assign(target, static_cast<size_t>(n));
    return ReadOutcome::kOk;
  }

 private:
  ProcessCollector* owner_;
  CollectCounters* counters_;
};

absl::Status ProcessCollector::ReadSystemStat(SystemStat* out) {
  std::string_view text;
  ReadOutcome outcome = ReadOutcome::kFailed;
  for (int attempt = 0; attempt < 2 && outcome != ReadOutcome::kOk; ++attempt) {
    if (system_stat_fd_ < 0) {
      system_stat_fd_ = ::openat(proc_dirfd_, "stat", O_RDONLY | O_CLOEXEC);
      if (system_stat_fd_ < 0) {
        return absl::UnavailableError(strings::Cat(options_.proc_root, "/stat: ", std::strerror(errno)));
      }
    }
    ssize_t n = ::pread(system_stat_fd_, buffer_.data(), buffer_.size() - 1, 0);
    if (n < 0) {
      CloseFd(&system_stat_fd_);
      continue;
    }
    text = std::string_view(buffer_.data(), static_cast<size_t>(n));
    outcome = ReadOutcome::kOk;
  }
  if (outcome != ReadOutcome::kOk)
    return absl::UnavailableError(strings::Cat(options_.proc_root, "/stat: unreadable"));
  return ParseSystemStat(text, out);
}

const std::string& ProcessCollector::UserName(uint32_t uid, CollectCounters* counters) {
  auto it = user_names_.find(uid);
  if (it != user_names_.end()) return it->second;
  if (user_names_.size() >= options_.max_cached_users) {
    counters->user_cache_evictions += static_cast<int64_t>(user_names_.size());
    user_names_.clear();
  }
  std::string name;
  if (pwd_buffer_.empty()) {
    long suggested = ::sysconf(_SC_GETPW_R_SIZE_MAX);
    pwd_buffer_.resize(suggested > 0 ? static_cast<size_t>(suggested) : 16384);
  }
  struct passwd entry;
  struct passwd* result = nullptr;
  // ERANGE: grow the buffer a bounded number of times (very long GECOS fields).
  for (int attempt = 0; attempt < 4; ++attempt) {
    int rc = ::getpwuid_r(uid, &entry, pwd_buffer_.data(), pwd_buffer_.size(), &result);
    if (rc == ERANGE && pwd_buffer_.size() < (1u << 20)) {
      pwd_buffer_.resize(pwd_buffer_.size() * 2);
      continue;
    }
    break;
  }
  if (result != nullptr && result->pw_name != nullptr) name = result->pw_name;
  // Negative answers are cached too: containers run as uids the host does not know.
  return user_names_.emplace(uid, std::move(name)).first->second;
}

void ProcessCollector::RefreshStatic(int32_t pid, Tracked* tracked, const std::string& comm,
                                     CollectCounters* counters) {
  ++counters->static_refreshes;
  Reader reader(this, counters);
  auto fresh = std::make_shared<ProcessStaticInfo>();
  fresh->comm = comm;

  std::string_view text;
  bool truncated = false;
  ReadOutcome outcome = reader.Read(pid, "cmdline", nullptr, options_.max_cmdline_bytes, &text, &truncated);
  if (outcome == ReadOutcome::kOk) {
    fresh->cmdline_truncated = ParseCmdline(text, options_.max_args, &fresh->args) || truncated;
    if (options_.scrubber != nullptr) fresh->args = options_.scrubber->Scrub(fresh->args);
  } else if (outcome != ReadOutcome::kGone) {
    ++counters->unreadable_cmdline;
  }

  if (reader.Link(pid, "exe", &fresh->exe) == ReadOutcome::kDenied) ++counters->unreadable_exe;
  if (reader.Link(pid, "cwd", &fresh->cwd) == ReadOutcome::kDenied) ++counters->unreadable_cwd;
  if (reader.Link(pid, "root", &fresh->root) == ReadOutcome::kDenied) ++counters->unreadable_root;

  outcome = reader.Read(pid, "cgroup", nullptr, options_.max_file_bytes, &text);
  if (outcome == ReadOutcome::kOk) {
    fresh->container_id = container::ContainerIdFromCgroupFile(text);
  } else if (outcome != ReadOutcome::kGone) {
    ++counters->unreadable_cgroup;
  }
  fresh->user_name = UserName(tracked->info.uid, counters);

  // Keep the old object when nothing changed, so consumers can compare pointers.
  const ProcessStaticInfo* old = tracked->info.info.get();
  if (old != nullptr && old->comm == fresh->comm && old->args == fresh->args && old->exe == fresh->exe &&
      old->cwd == fresh->cwd && old->root == fresh->root && old->user_name == fresh->user_name &&
      old->container_id == fresh->container_id && old->cmdline_truncated == fresh->cmdline_truncated) {
    return;
  }
  tracked->info.info = std::move(fresh);
}

bool ProcessCollector::FullRead(int32_t pid, Tracked* tracked, CollectCounters* counters, bool force_static) {
  Reader reader(this, counters);
  std::string_view text;

  // schedstat first: anything the task does after this read shows up in the next one, so the
  // idle shortcut next cycle can never hide activity that happened during this read.
  if (options_.idle_shortcut) {
    SchedStatFields sched;
    tracked->sched_valid =
        reader.Read(pid, "schedstat", &tracked->schedstat_fd, 256, &text) == ReadOutcome::kOk &&
        ParseSchedStat(text, &sched).ok();
    if (tracked->sched_valid) tracked->sched = sched;
  }

  ReadOutcome outcome = reader.Read(pid, "stat", &tracked->stat_fd, options_.max_file_bytes, &text);
  if (outcome != ReadOutcome::kOk) {
    if (outcome == ReadOutcome::kGone) {
      ++counters->processes_vanished;
    } else {
      ++counters->parse_errors;
    }
    return false;
  }
  StatFields stat;
  if (!ParseStat(text, &stat).ok()) {
    ++counters->parse_errors;
    return false;
  }
  ProcessInfo& info = tracked->info;
  // A different start time under the same pid is a new process (seen through a fresh open).
  if (tracked->valid && stat.start_ticks != info.start_ticks) {
    // Descriptors still held were opened on the old task.
    CloseHeld(tracked);
    tracked->sched_valid = false;
    tracked->valid = false;
    tracked->io_denied = false;
    tracked->fd_denied = false;
    info.info.reset();
  }
  // stat.comm points into buffer_, which the next read overwrites. Comm is at most 15 bytes for
  // user processes: the copy stays in the small-string buffer.
  const std::string comm(stat.comm);
  bool kernel_thread = (stat.flags & kPfKthread) != 0;
  // A zombie leader whose other threads still run is not dead: only a lone zombie is skipped.
  bool zombie = stat.state == 'Z' && stat.num_threads <= 1;
  if (options_.skip_empty_cmdline && (kernel_thread || zombie)) {
    tracked->skipped = true;
    tracked->valid = false;
    info.start_ticks = stat.start_ticks;
    ++counters->skipped_empty_cmdline;
    return false;
  }
  bool comm_changed = info.info == nullptr || info.info->comm != comm;

  outcome = reader.Read(pid, "status", &tracked->status_fd, options_.max_file_bytes, &text);
  StatusFields status;
  if (outcome != ReadOutcome::kOk) {
    if (outcome == ReadOutcome::kGone) {
      ++counters->processes_vanished;
    } else {
      ++counters->parse_errors;
    }
    return false;
  }
  if (!ParseStatus(text, &status).ok()) {
    ++counters->parse_errors;
    return false;
  }
  bool uid_changed = info.info == nullptr || info.uid != status.uid[0];

  // Everything read: the fields below describe one consistent moment (as far as /proc allows).
  info.pid = pid;
  info.ppid = stat.ppid;
  info.pgroup = stat.pgroup;
  info.ns_pid = status.ns_pid != 0 ? status.ns_pid : pid;
  info.state = stat.state;
  info.num_threads = stat.num_threads;
  info.nice = stat.nice;
  info.last_cpu = stat.processor;
  info.uid = status.uid[0];
  info.euid = status.uid[1];
  info.suid = status.uid[2];
  info.gid = status.gid[0];
  info.egid = status.gid[1];
  info.sgid = status.gid[2];
  info.start_ticks = stat.start_ticks;
  info.utime_ticks = stat.utime_ticks;
  info.stime_ticks = stat.stime_ticks;
  info.rss_bytes =
      status.vm_rss_kb != 0 ? status.vm_rss_kb * 1024 : stat.rss_pages * static_cast<uint64_t>(page_size_);
  info.vms_bytes = status.vm_size_kb != 0 ? status.vm_size_kb * 1024 : stat.vsize_bytes;
  info.swap_bytes = status.vm_swap_kb * 1024;
  info.shared_bytes = (status.rss_file_kb + status.rss_shmem_kb) * 1024;
  info.text_bytes = status.vm_exe_kb * 1024;
  info.lib_bytes = status.vm_lib_kb * 1024;
  info.data_bytes = (status.vm_data_kb + status.vm_stk_kb) * 1024;
  info.voluntary_ctx_switches = status.voluntary_ctx_switches;
  info.involuntary_ctx_switches = status.involuntary_ctx_switches;
  info.kernel_thread = kernel_thread || status.kernel_thread;

  // I/O counters: other users' processes are unreadable unless we are root; remember the denial for
  // this identity instead of asking the kernel every cycle.
  info.io_readable = false;
  if (!tracked->io_denied) {
    outcome = reader.Read(pid, "io", &tracked->io_fd, options_.max_file_bytes, &text);
    IoFields io;
    if (outcome == ReadOutcome::kOk && ParseIo(text, &io).ok()) {
      info.io_readable = true;
      info.read_bytes = io.read_bytes;
      info.write_bytes = io.write_bytes;
      info.read_count = io.syscr;
      info.write_count = io.syscw;
    } else if (outcome == ReadOutcome::kDenied) {
      tracked->io_denied = true;
    }
  }
  if (!info.io_readable) ++counters->unreadable_io;

  info.open_fd_count = -1;
  if (!tracked->fd_denied) {
    PidPath path(pid, "fd");
    if (fd_count_by_stat_) {
      struct stat st;
      if (::fstatat(proc_dirfd_, path.text, &st, 0) == 0) {
        info.open_fd_count = static_cast<int32_t>(std::min<int64_t>(st.st_size, INT32_MAX));
      } else if (OutcomeFromErrno(errno) == ReadOutcome::kDenied) {
        tracked->fd_denied = true;
      }
    } else {
      int dirfd = ::openat(proc_dirfd_, path.text, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dirfd >= 0) {
        int32_t count = 0;
        bool ok = ForEachDirEntry(dirfd, [&](const char* name) {
          if (name[0] != '.') ++count;
        });
        if (ok) info.open_fd_count = count;
        ::close(dirfd);
      } else if (OutcomeFromErrno(errno) == ReadOutcome::kDenied) {
        tracked->fd_denied = true;
      }
    }
  }
  if (info.open_fd_count < 0) ++counters->unreadable_fd;

  if (force_static || comm_changed || uid_changed) RefreshStatic(pid, tracked, comm, counters);
  if (options_.skip_empty_cmdline && info.info->args.empty()) {
    // A user process always has a command line; an empty one means it is exiting (or is a kernel
    // thread on kernels without PF_KTHREAD in stat).
    tracked->skipped = true;
    tracked->valid = false;
    ++counters->skipped_empty_cmdline;
    return false;
  }
  ++counters->full_reads;
  return true;
}

bool ProcessCollector::Refresh(int32_t pid, Tracked* tracked, CollectCounters* counters, bool* is_new) {
  Reader reader(this, counters);
  std::string_view text;
  if (tracked->skipped) {
    // Still the same kernel thread or zombie while a held file of it reads fine.
    if (tracked->schedstat_fd >= 0) {
      if (reader.Read(pid, "schedstat", &tracked->schedstat_fd, 256, &text) == ReadOutcome::kOk) {
        ++counters->skipped_empty_cmdline;
        return false;
      }
    } else if (reader.Read(pid, "stat", nullptr, options_.max_file_bytes, &text) == ReadOutcome::kOk) {
      StatFields stat;
      if (ParseStat(text, &stat).ok() && stat.start_ticks == tracked->info.start_ticks &&
          ((stat.flags & kPfKthread) != 0 || (stat.state == 'Z' && stat.num_threads <= 1))) {
        ++counters->skipped_empty_cmdline;
        return false;
      }
    }
    CloseHeld(tracked);
    *tracked = Tracked{};
    *is_new = true;
    return FullRead(pid, tracked, counters, true);
  }

  if (!tracked->valid) {
    *is_new = true;
    return FullRead(pid, tracked, counters, true);
  }

  // Staggered by pid so that each cycle refreshes a slice of the table, not all of it at once.
  auto due = [&](int every) {
    return every > 0 && (cycle_ + static_cast<uint64_t>(pid)) % static_cast<uint64_t>(every) == 0;
  };
  bool static_due = due(options_.static_refresh_every);
  bool refresh_due = static_due || due(options_.full_refresh_every);
  ProcessInfo& info = tracked->info;
  if (!refresh_due && options_.idle_shortcut && tracked->sched_valid && tracked->schedstat_fd >= 0 &&
      info.num_threads == 1 && info.state != 'R') {
    ReadOutcome outcome = reader.Read(pid, "schedstat", &tracked->schedstat_fd, 256, &text);
    SchedStatFields now;
    if (outcome == ReadOutcome::kOk && ParseSchedStat(text, &now).ok()) {
      // schedstat reports "0 0 0" when the kernel keeps no sched_info: then it proves nothing.
      bool meaningful = now.exec_runtime_ns != 0 || now.timeslices != 0;
      if (meaningful && now.exec_runtime_ns == tracked->sched.exec_runtime_ns &&
          now.timeslices == tracked->sched.timeslices) {
        ++counters->idle_reuses;
        if (!info.io_readable) ++counters->unreadable_io;
        if (info.open_fd_count < 0) ++counters->unreadable_fd;
        return true;
      }
    } else if (outcome == ReadOutcome::kGone) {
      // The task behind the held descriptor exited; the pid listed now may be a new process.
      CloseHeld(tracked);
      *tracked = Tracked{};
      *is_new = true;
      return FullRead(pid, tracked, counters, true);
    }
  }

  int64_t vanished_before = counters->processes_vanished;
  if (FullRead(pid, tracked, counters, static_due)) return true;
  if (counters->processes_vanished > vanished_before && (tracked->stat_fd < 0 || tracked->status_fd < 0)) {
    // A held descriptor failed: retry once by path, the pid may now be another process.
    --counters->processes_vanished;
    CloseHeld(tracked);
    *tracked = Tracked{};
    *is_new = true;
    return FullRead(pid, tracked, counters, true);
  }
  return false;
}

void ProcessCollector::ComputeRates(const ProcessInfo& previous, bool previous_valid, double elapsed_s,
                                    uint64_t system_delta, int32_t num_cpus, ProcessInfo* current) const {
  ProcessRates& rates = current->rates;
  rates = ProcessRates{};
  if (previous_valid && previous.start_ticks == current->start_ticks) {
    rates.has_previous = true;
    double user = static_cast<double>(current->utime_ticks) - static_cast<double>(previous.utime_ticks);
    double system = static_cast<double>(current->stime_ticks) - static_cast<double>(previous.stime_ticks);
    double delta = static_cast<double>(system_delta);
    rates.cpu_total_pct = CalculatePct(user + system, delta, num_cpus);
    rates.cpu_user_pct = CalculatePct(user, delta, num_cpus);
    rates.cpu_system_pct = CalculatePct(system, delta, num_cpus);
  }
  if (!current->io_readable) return;  // rates stay -1
  if (!rates.has_previous || !previous.io_readable) {
    rates.read_rate = rates.write_rate = rates.read_bytes_rate = rates.write_bytes_rate = 0;
    return;
  }
  rates.read_rate = CalculateRate(current->read_count, previous.read_count, elapsed_s);
  rates.write_rate = CalculateRate(current->write_count, previous.write_count, elapsed_s);
  rates.read_bytes_rate = CalculateRate(current->read_bytes, previous.read_bytes, elapsed_s);
  rates.write_bytes_rate = CalculateRate(current->write_bytes, previous.write_bytes, elapsed_s);
}

absl::StatusOr<Snapshot> ProcessCollector::Collect() {
  if (proc_dirfd_ < 0) {
    proc_dirfd_ = ::open(options_.proc_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (proc_dirfd_ < 0) {
      return absl::UnavailableError(
          strings::Cat("cannot open ", options_.proc_root, ": ", std::strerror(errno)));
    }
  }
  ++cycle_;
  Snapshot snapshot;
  CollectCounters& counters = snapshot.counters;
  snapshot.timestamp_ms = options_.unix_ms();
  int64_t now_ns = options_.monotonic_ns();
  snapshot.ticks_per_second = ticks_per_second_;
  snapshot.page_size = page_size_;

  SystemStat system;
  if (absl::Status status = ReadSystemStat(&system); !status.ok()) return status;
  snapshot.system_cpu = system.cpu;
  snapshot.num_cpus = system.num_cpus;
  snapshot.boot_time_s = system.boot_time_s;
  uint64_t system_total = system.cpu.Total();
  if (have_previous_) {
    snapshot.elapsed_seconds = static_cast<double>(now_ns - previous_monotonic_ns_) / 1e9;
    snapshot.system_cpu_delta_ticks =
        system_total >= previous_system_total_ ? system_total - previous_system_total_ : 0;
  }

  pids_.clear();
  bool listed = ForEachDirEntry(proc_dirfd_, [&](const char* name) {
    int32_t pid = 0;
    if (ParsePid(name, &pid)) pids_.push_back(pid);
  });
  if (!listed)
    return absl::UnavailableError(
        strings::Cat("cannot list ", options_.proc_root, ": ", std::strerror(errno)));
  std::sort(pids_.begin(), pids_.end());
  counters.pids_listed = static_cast<int64_t>(pids_.size());
  if (pids_.size() > options_.max_processes) {
    counters.processes_over_limit = static_cast<int64_t>(pids_.size() - options_.max_processes);
    pids_.resize(options_.max_processes);
  }

  snapshot.processes.reserve(pids_.size());
  for (int32_t pid : pids_) {
    auto [it, inserted] = tracked_.try_emplace(pid, nullptr);
    if (inserted) it->second = std::make_unique<Tracked>();
    Tracked* tracked = it->second.get();
    ProcessInfo previous;
    bool previous_valid = tracked->valid;
    if (previous_valid) {
      // Only the counters matter for rates; leave the shared static part alone.
      previous.start_ticks = tracked->info.start_ticks;
      previous.utime_ticks = tracked->info.utime_ticks;
      previous.stime_ticks = tracked->info.stime_ticks;
      previous.io_readable = tracked->info.io_readable;
      previous.read_count = tracked->info.read_count;
      previous.write_count = tracked->info.write_count;
      previous.read_bytes = tracked->info.read_bytes;
      previous.write_bytes = tracked->info.write_bytes;
    }
    bool is_new = inserted;
    bool reported = Refresh(pid, tracked, &counters, &is_new);
    tracked->seen_cycle = cycle_;  // after Refresh, which may reset the entry
    if (!reported) {
      tracked->valid = false;
      continue;
    }
    tracked->valid = true;
    tracked->info.create_time_ms =
        system.boot_time_s * 1000 +
        static_cast<int64_t>(tracked->info.start_ticks * 1000 / static_cast<uint64_t>(ticks_per_second_));
    ComputeRates(previous, previous_valid && !is_new && have_previous_, snapshot.elapsed_seconds,
                 snapshot.system_cpu_delta_ticks, snapshot.num_cpus, &tracked->info);
    snapshot.processes.push_back(tracked->info);
  }

  // Forget processes that are gone (or beyond max_processes), closing what we held for them.
  for (auto it = tracked_.begin(); it != tracked_.end();) {
    if (it->second->seen_cycle != cycle_) {
      CloseHeld(it->second.get());
      tracked_.erase(it++);
    } else {
      ++it;
    }
  }

  counters.processes_reported = static_cast<int64_t>(snapshot.processes.size());
  counters.held_fds = static_cast<int64_t>(held_fds_);
  have_previous_ = true;
  previous_monotonic_ns_ = now_ns;
  previous_system_total_ = system_total;
  return snapshot;
}

}  // namespace dogwatch::process
