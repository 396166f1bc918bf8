#include "process-agent/procfs/procfs.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/container/container_id.h"
#include "process-agent/procfs/proc_parsers.h"
#include "process-agent/procfs/scrub.h"

extern char** environ;

namespace dogwatch::process {
namespace {

namespace fs = std::filesystem;
using Args = std::vector<std::string>;

// ---------------------------------------------------------------------------------------------
// Fixtures

std::string StatLine(int pid, const std::string& comm, char state, int ppid, uint32_t flags, uint64_t utime,
                     uint64_t stime, int threads, uint64_t start_ticks) {
  char line[1024];
  std::snprintf(line, sizeof(line),
                "%d (%s) %c %d %d 952 0 -1 %u 101 0 0 0 %llu %llu 0 0 20 -5 %d 0 %llu 3133440 382 "
                "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
                pid, comm.c_str(), state, ppid, pid, flags, static_cast<unsigned long long>(utime),
                static_cast<unsigned long long>(stime), threads,
                static_cast<unsigned long long>(start_ticks));
  return line;
}

std::string StatusText(uint32_t uid, int threads, const std::string& nspid = "") {
  std::string text = "Name:\tx\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t1\nPid:\t1\nPPid:\t0\n";
  text += "Uid:\t" + std::to_string(uid) + "\t" + std::to_string(uid + 1) + "\t" + std::to_string(uid + 2) +
          "\t" + std::to_string(uid) + "\n";
  text += "Gid:\t10\t11\t12\t10\nFDSize:\t64\n";
  if (!nspid.empty()) text += "NSpid:\t" + nspid + "\n";
  text +=
      "VmPeak:\t    3060 kB\nVmSize:\t    3000 kB\nVmHWM:\t    1708 kB\nVmRSS:\t    1700 kB\n"
      "RssAnon:\t     116 kB\nRssFile:\t    1500 kB\nRssShmem:\t       8 kB\nVmData:\t     360 kB\n"
      "VmStk:\t     132 kB\nVmExe:\t      20 kB\nVmLib:\t    1528 kB\nVmSwap:\t       4 kB\n";
  text += "Threads:\t" + std::to_string(threads) + "\n";
  text += "voluntary_ctxt_switches:\t7\nnonvoluntary_ctxt_switches:\t3\n";
  return text;
}

const char kIoText[] =
    "rchar: 6976\nwchar: 100\nsyscr: 10\nsyscw: 2\nread_bytes: 4096\nwrite_bytes: 8192\n"
    "cancelled_write_bytes: 0\n";

std::string SystemStatText(uint64_t user, uint64_t idle) {
  return "cpu  " + std::to_string(user) + " 0 0 " + std::to_string(idle) +
         " 0 0 0 0 0 0\ncpu0 1 0 0 1 0 0 0 0 0 0\ncpu1 1 0 0 1 0 0 0 0 0 0\nintr 1 0\nctxt 5\n"
         "btime 1700000000\nprocesses 10\n";
}

// Overwrites in place (same inode), so held descriptors see the new content, as with /proc.
void WriteFile(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

class FakeProc {
 public:
  FakeProc() {
    char tmpl[] = "/tmp/procfs_test_XXXXXX";
    root_ = ::mkdtemp(tmpl);
    WriteFile(root_ / "stat", SystemStatText(1000, 1000));
  }
  ~FakeProc() { fs::remove_all(root_); }

  fs::path AddProcess(int pid, const std::string& comm, const std::string& cmdline, uint64_t utime = 10,
                      char state = 'S', uint32_t flags = 0) {
    fs::path dir = root_ / std::to_string(pid);
    fs::create_directories(dir / "fd");
    WriteFile(dir / "stat", StatLine(pid, comm, state, 1, flags, utime, 5, 1, 500));
    WriteFile(dir / "status", StatusText(1000, 1, std::to_string(pid) + "\t7"));
    WriteFile(dir / "io", kIoText);
    WriteFile(dir / "cmdline", cmdline);
    WriteFile(dir / "schedstat", "100 5 3\n");
    WriteFile(
        dir / "cgroup",
        "0::/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope\n");
    WriteFile(dir / "fd" / "0", "");
    WriteFile(dir / "fd" / "1", "");
    return dir;
  }

  const fs::path& root() const { return root_; }

 private:
  fs::path root_;
};

const ProcessInfo* Find(const Snapshot& snapshot, int32_t pid) {
  for (const ProcessInfo& process : snapshot.processes) {
    if (process.pid == pid) return &process;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Parsers

TEST_CASE("ParseStat reads a normal line", "[procfs][parsers]") {
  StatFields stat;
  const std::string line =
      StatLine(1234, "cat", 'R', 77, 4194304, 150, 25, 3, 1419373);  // comm points into it
  REQUIRE(ParseStat(line, &stat).ok());
  CHECK(stat.pid == 1234);
  CHECK(stat.comm == "cat");
  CHECK(stat.state == 'R');
  CHECK(stat.ppid == 77);
  CHECK(stat.pgroup == 1234);
  CHECK(stat.utime_ticks == 150);
  CHECK(stat.stime_ticks == 25);
  CHECK(stat.nice == -5);
  CHECK(stat.num_threads == 3);
  CHECK(stat.start_ticks == 1419373);
  CHECK(stat.vsize_bytes == 3133440);
  CHECK(stat.rss_pages == 382);
  CHECK(stat.processor == 1);
  CHECK((stat.flags & kPfKthread) == 0);
}

TEST_CASE("ParseStat handles a comm with spaces and parentheses", "[procfs][parsers]") {
  StatFields stat;
  const std::string weird = StatLine(9, "my (weird) ) name", 'S', 1, 0, 1, 2, 1, 3);
  REQUIRE(ParseStat(weird, &stat).ok());
  CHECK(stat.comm == "my (weird) ) name");
  CHECK(stat.ppid == 1);
  CHECK(stat.start_ticks == 3);
  const std::string empty = StatLine(9, "", 'S', 1, 0, 1, 2, 1, 3);
  REQUIRE(ParseStat(empty, &stat).ok());
  CHECK(stat.comm.empty());
}

TEST_CASE("ParseStat: kernel thread, zombie and malformed lines", "[procfs][parsers]") {
  StatFields stat;
  REQUIRE(ParseStat(
              "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 29 0 0 18446744073709551615 0 0 0 "
              "0 0 0 0 2147483647 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
              &stat)
              .ok());
  CHECK((stat.flags & kPfKthread) != 0);
  CHECK(stat.ppid == 0);
  REQUIRE(ParseStat(StatLine(40, "defunct", 'Z', 1, 0, 3, 4, 1, 9), &stat).ok());
  CHECK(stat.state == 'Z');
  CHECK_FALSE(ParseStat("", &stat).ok());
  CHECK_FALSE(ParseStat("12 (cat R 1", &stat).ok());
  CHECK_FALSE(ParseStat("12 (cat) R 1 2 3", &stat).ok());  // too few fields
  CHECK_FALSE(ParseStat("x (cat) R 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 1 1 1\n", &stat).ok());
  CHECK_FALSE(ParseStat("1 (cat) R 1 1 1 0 -1 0 0 0 0 0 1x 1 0 0 20 0 1 0 1 1 1\n", &stat).ok());
}

TEST_CASE("ParseStatus reads ids, threads, ctx switches and memory", "[procfs][parsers]") {
  StatusFields status;
  REQUIRE(ParseStatus(StatusText(1000, 4, "4242\t17"), &status).ok());
  CHECK(status.uid[0] == 1000);
  CHECK(status.uid[1] == 1001);
  CHECK(status.uid[2] == 1002);
  CHECK(status.gid[0] == 10);
  CHECK(status.gid[1] == 11);
  CHECK(status.gid[2] == 12);
  CHECK(status.ns_pid == 17);
  CHECK(status.num_threads == 4);
  CHECK(status.voluntary_ctx_switches == 7);
  CHECK(status.involuntary_ctx_switches == 3);
  CHECK(status.vm_rss_kb == 1700);
  CHECK(status.vm_size_kb == 3000);
  CHECK(status.vm_swap_kb == 4);
  CHECK(status.rss_file_kb == 1500);
  CHECK(status.rss_shmem_kb == 8);
  CHECK(status.vm_exe_kb == 20);
  CHECK(status.vm_lib_kb == 1528);
  CHECK(status.vm_data_kb == 360);
  CHECK(status.vm_stk_kb == 132);
}

TEST_CASE("ParseStatus: zombie without Vm lines, missing ids", "[procfs][parsers]") {
  StatusFields status;
  REQUIRE(ParseStatus("Name:\tdefunct\nState:\tZ (zombie)\nUid:\t5\t5\t5\t5\nGid:\t6\t6\t6\t6\nThreads:\t1\n"
                      "Kthread:\t0\n",
                      &status)
              .ok());
  CHECK(status.uid[0] == 5);
  CHECK(status.vm_rss_kb == 0);
  CHECK(status.ns_pid == 0);
  CHECK_FALSE(status.kernel_thread);
  CHECK_FALSE(ParseStatus("Name:\tx\nGid:\t1\t1\t1\t1\n", &status).ok());
  CHECK_FALSE(ParseStatus("Uid:\t1\t1\nGid:\t1\t1\t1\t1\n", &status).ok());
  CHECK_FALSE(ParseStatus("", &status).ok());
}

TEST_CASE("ParseIo and ParseSchedStat", "[procfs][parsers]") {
  IoFields io;
  REQUIRE(ParseIo(kIoText, &io).ok());
  CHECK(io.syscr == 10);
  CHECK(io.syscw == 2);
  CHECK(io.read_bytes == 4096);
  CHECK(io.write_bytes == 8192);
  CHECK(io.rchar == 6976);
  CHECK_FALSE(ParseIo("rchar: 1\nwchar: 2\n", &io).ok());
  SchedStatFields sched;
  REQUIRE(ParseSchedStat("123456 789 12\n", &sched).ok());
  CHECK(sched.exec_runtime_ns == 123456);
  CHECK(sched.timeslices == 12);
  CHECK_FALSE(ParseSchedStat("1 2\n", &sched).ok());
}

TEST_CASE("ParseCmdline splits like the Datadog agent and reuses strings", "[procfs][parsers]") {
  Args args;
  using namespace std::string_view_literals;
  CHECK_FALSE(ParseCmdline("/bin/sh\0-c\0echo hi\0"sv, 100, &args));
  CHECK(args == Args{"/bin/sh", "-c", "echo hi"});
  ParseCmdline("\0\0a\0\0\0b\0"sv, 100, &args);  // leading and repeated NULs
  CHECK(args == Args{"a", "b"});
  ParseCmdline("postgres: writer process   "sv, 100, &args);  // setproctitle, no NUL
  CHECK(args == Args{"postgres: writer process   "});
  ParseCmdline(""sv, 100, &args);  // kernel thread
  CHECK(args.empty());
  CHECK(ParseCmdline("a\0b\0c\0d"sv, 2, &args));
  CHECK(args == Args{"a", "b"});
}

TEST_CASE("container ids from cgroup files, and ParseSystemStat", "[procfs][parsers]") {
  const std::string id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  CHECK(container::ContainerIdFromCgroupFile("12:pids:/\n0::/system.slice/docker-" + id + ".scope\n") == id);
  CHECK(container::ContainerIdFromCgroupFile("4:memory:/kubepods/burstable/pod1/" + id + "\n0::/\n") == id);
  CHECK(container::ContainerIdFromCgroupFile("0::/user.slice/user-1000.slice\n").empty());
  CHECK(container::ContainerIdFromCgroupFile("garbage").empty());

  SystemStat system;
  REQUIRE(
      ParseSystemStat("cpu  1839096 14107 195373 768828 5981 0 5060 5934 7 1\ncpu0 1 2 3 4\ncpu1 1 2 3 4\n"
                      "intr 5\nbtime 1795227479\n",
                      &system)
          .ok());
  CHECK(system.num_cpus == 2);
  CHECK(system.boot_time_s == 1795227479);
  CHECK(system.cpu.user == 1839096);
  CHECK(system.cpu.Total() == 1839096ull + 14107 + 195373 + 768828 + 5981 + 0 + 5060 + 5934 + 7 + 1);
  CHECK_FALSE(ParseSystemStat("cpu0 1 2 3 4\nbtime 5\n", &system).ok());
  CHECK_FALSE(ParseSystemStat("cpu  1 2 3 4\n", &system).ok());
}

// ---------------------------------------------------------------------------------------------
// Collector on a fake /proc tree (deterministic rates, missing files, shortcuts)

struct FakeClock {
  int64_t now_ns = 1'000'000'000;
  ProcessCollector::Options Apply(ProcessCollector::Options options) {
    options.monotonic_ns = [this] { return now_ns; };
    options.unix_ms = [] { return int64_t{1700000000000}; };
    return options;
  }
};

TEST_CASE("collector on a fake /proc: fields, skips, missing files", "[procfs][collector]") {
  FakeProc proc;
  using namespace std::string_literals;
  fs::path busy = proc.AddProcess(100, "busy", "busy\0--password=hunter2\0"s);
  proc.AddProcess(2, "kthreadd", "", 0, 'S', kPfKthread);
  proc.AddProcess(300, "defunct", "", 0, 'Z');
  fs::path noio = proc.AddProcess(400, "noio", "noio\0"s);
  fs::remove(noio / "io");
  fs::create_directories(proc.root() / "self");  // non-numeric entries are ignored
  CommandLineScrubber scrubber(CommandLineScrubber::Options{});
  FakeClock clock;
  ProcessCollector::Options options;
  options.proc_root = proc.root().string();
  options.scrubber = &scrubber;
  options.full_refresh_every = 0;  // the idle-shortcut section needs no forced full read
  options.static_refresh_every = 0;
  ProcessCollector collector(clock.Apply(options));

  absl::StatusOr<Snapshot> first = collector.Collect();
  REQUIRE(first.ok());
  CHECK(first->counters.pids_listed == 4);
  CHECK(first->counters.skipped_empty_cmdline == 2);
  REQUIRE(first->processes.size() == 2);
  const ProcessInfo* process = Find(*first, 100);
  REQUIRE(process != nullptr);
  CHECK(process->ppid == 1);
  CHECK(process->ns_pid == 7);
  CHECK(process->state == 'S');
  CHECK(process->nice == -5);
  CHECK(process->uid == 1000);
  CHECK(process->euid == 1001);
  CHECK(process->suid == 1002);
  CHECK(process->gid == 10);
  CHECK(process->rss_bytes == 1700 * 1024);
  CHECK(process->vms_bytes == 3000 * 1024);
  CHECK(process->swap_bytes == 4 * 1024);
  CHECK(process->shared_bytes == 1508 * 1024);
  CHECK(process->data_bytes == (360 + 132) * 1024);
  CHECK(process->voluntary_ctx_switches == 7);
  CHECK(process->open_fd_count == 2);
  CHECK(process->io_readable);
  CHECK(process->read_count == 10);
  CHECK(process->write_bytes == 8192);
  CHECK(process->create_time_ms == 1700000000000 + 500 * 1000 / first->ticks_per_second);
  CHECK(process->info->comm == "busy");
  CHECK(process->args() == Args{"busy", "--password=********"});
  CHECK(process->info->container_id.size() == 64);
  CHECK_FALSE(process->rates.has_previous);
  CHECK(process->rates.cpu_total_pct == 0);
  CHECK(process->rates.read_rate == 0);
  const ProcessInfo* unreadable = Find(*first, 400);
  REQUIRE(unreadable != nullptr);
  CHECK_FALSE(unreadable->io_readable);
  CHECK(unreadable->rates.read_rate == -1);
  CHECK(first->counters.unreadable_io == 1);
  CHECK(first->counters.processes_vanished == 0);

  SECTION("CPU % and I/O rates follow Datadog's formula") {
    // System: +200 ticks over 2 CPUs; process: +40 user +10 system → 50/200*100*2 = 50 %.
    WriteFile(proc.root() / "stat", SystemStatText(1100, 1100));
    WriteFile(busy / "stat", StatLine(100, "busy", 'S', 1, 0, 50, 15, 1, 500));
    WriteFile(busy / "schedstat", "999 5 4\n");  // it ran
    WriteFile(busy / "io", "syscr: 30\nsyscw: 2\nread_bytes: 14096\nwrite_bytes: 8192\n");
    clock.now_ns += 2'000'000'000;
    absl::StatusOr<Snapshot> second = collector.Collect();
    REQUIRE(second.ok());
    CHECK(second->system_cpu_delta_ticks == 200);
    CHECK(second->elapsed_seconds == Approx(2.0));
    const ProcessInfo* again = Find(*second, 100);
    REQUIRE(again != nullptr);
    CHECK(again->rates.has_previous);
    CHECK(again->rates.cpu_total_pct == Approx(50.0));
    CHECK(again->rates.cpu_user_pct == Approx(40.0));
    CHECK(again->rates.cpu_system_pct == Approx(10.0));
    CHECK(again->rates.read_rate == Approx(10.0));
    CHECK(again->rates.read_bytes_rate == Approx(5000.0));
    CHECK(again->rates.write_rate == 0);
    CHECK(again->info == process->info);  // static part shared, not re-allocated
  }

  SECTION("an idle single-threaded process is served from schedstat until it runs") {
    WriteFile(busy / "stat", StatLine(100, "busy", 'S', 1, 0, 77, 5, 1, 500));  // schedstat unchanged
    absl::StatusOr<Snapshot> second = collector.Collect();
    REQUIRE(second.ok());
    CHECK(second->counters.idle_reuses >= 1);
    CHECK(Find(*second, 100)->utime_ticks == 10);
    WriteFile(busy / "schedstat", "200 5 4\n");
    absl::StatusOr<Snapshot> third = collector.Collect();
    REQUIRE(third.ok());
    CHECK(Find(*third, 100)->utime_ticks == 77);
  }

  SECTION("a new start time under the same pid is a new process") {
    WriteFile(busy / "schedstat", "300 5 9\n");
    WriteFile(busy / "stat", StatLine(100, "reborn", 'S', 1, 0, 1, 1, 1, 900));
    WriteFile(busy / "cmdline", "reborn\0"s);
    absl::StatusOr<Snapshot> second = collector.Collect();
    REQUIRE(second.ok());
    const ProcessInfo* reborn = Find(*second, 100);
    REQUIRE(reborn != nullptr);
    CHECK(reborn->start_ticks == 900);
    CHECK_FALSE(reborn->rates.has_previous);
    CHECK(reborn->args() == Args{"reborn"});
  }

  SECTION("a process directory that disappears is dropped; max_processes is enforced") {
    fs::remove_all(busy);
    absl::StatusOr<Snapshot> second = collector.Collect();
    REQUIRE(second.ok());
    CHECK(Find(*second, 100) == nullptr);
    CHECK(second->processes.size() == 1);

    ProcessCollector::Options limited = options;
    limited.max_processes = 2;
    ProcessCollector small(clock.Apply(limited));
    absl::StatusOr<Snapshot> bounded = small.Collect();
    REQUIRE(bounded.ok());
    CHECK(bounded->counters.processes_over_limit == 1);
  }
}

TEST_CASE("collector without held descriptors, with truncated command lines", "[procfs][collector]") {
  FakeProc proc;
  std::string long_cmdline = "server";
  for (int i = 0; i < 2000; ++i) long_cmdline += std::string(1, '\0') + "--flag-" + std::to_string(i);
  fs::path dir = proc.AddProcess(100, "server", long_cmdline);
  FakeClock clock;
  ProcessCollector::Options options;
  options.proc_root = proc.root().string();
  options.max_held_fds = 0;
  options.max_cmdline_bytes = 4096;
  ProcessCollector collector(clock.Apply(options));
  CHECK(collector.held_fd_budget() == 0);
  absl::StatusOr<Snapshot> first = collector.Collect();
  REQUIRE(first.ok());
  CHECK(first->counters.held_fds == 0);
  CHECK(first->counters.held_fd_budget_exhausted > 0);
  CHECK(first->counters.truncated_reads == 1);
  const ProcessInfo* server = Find(*first, 100);
  REQUIRE(server != nullptr);
  CHECK(server->info->cmdline_truncated);
  CHECK(server->args().front() == "server");
  CHECK(server->args().size() < 2001);

  // Without held descriptors the re-read goes by path and still sees the new figures.
  WriteFile(proc.root() / "stat", SystemStatText(1050, 1050));
  WriteFile(dir / "schedstat", "500 5 9\n");
  WriteFile(dir / "stat", StatLine(100, "server", 'S', 1, 0, 35, 5, 1, 500));
  clock.now_ns += 1'000'000'000;
  absl::StatusOr<Snapshot> second = collector.Collect();
  REQUIRE(second.ok());
  const ProcessInfo* again = Find(*second, 100);
  REQUIRE(again != nullptr);
  CHECK(again->rates.cpu_total_pct == Approx(25.0 / 100.0 * 100.0 * 2));
  CHECK(second->counters.held_fds == 0);
}

TEST_CASE("collector fails cleanly without a proc root", "[procfs][collector]") {
  ProcessCollector::Options options;
  options.proc_root = "/nonexistent/proc";
  ProcessCollector collector(options);
  CHECK_FALSE(collector.Collect().ok());
}

// ---------------------------------------------------------------------------------------------
// Real processes

class Child {
 public:
  explicit Child(const Args& args) {
    std::vector<char*> argv;
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), environ) != 0) pid_ = -1;
  }
  ~Child() { Kill(); }
  pid_t pid() const { return pid_; }
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

std::string CurrentUserName() {
  struct passwd* entry = ::getpwuid(::getuid());
  return entry != nullptr ? entry->pw_name : "";
}

TEST_CASE("collector sees real children: ppid, user, args, CPU %, scrubbing, exit", "[procfs][live]") {
  Child busy({"/bin/sh", "-c", "while :; do :; done", "--password=hunter2", "extra"});
  Child idle({"/bin/sleep", "30"});
  REQUIRE(busy.pid() > 0);
  REQUIRE(idle.pid() > 0);
  CommandLineScrubber scrubber(CommandLineScrubber::Options{});
  ProcessCollector::Options options;
  options.scrubber = &scrubber;
  ProcessCollector collector(options);

  // An independent measure of the busy child's CPU: its CPU-time clock (sum_exec_runtime, ns),
  // against which the tick-based percentage must agree. The machine is shared, so the child may not
  // get a whole core; the > 50 % check applies when it did get most of one.
  clockid_t busy_clock;
  REQUIRE(::clock_getcpuclockid(busy.pid(), &busy_clock) == 0);
  auto cpu_seconds = [&] {
    struct timespec ts;
    ::clock_gettime(busy_clock, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  };
  // Let the children exec before the first look.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  double cpu_before = cpu_seconds();
  auto wall_before = std::chrono::steady_clock::now();
  absl::StatusOr<Snapshot> first = collector.Collect();
  REQUIRE(first.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  absl::StatusOr<Snapshot> second = collector.Collect();
  REQUIRE(second.ok());
  double independent_pct =
      100.0 * (cpu_seconds() - cpu_before) /
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_before).count();
  CHECK(second->counters.parse_errors == 0);
  CHECK(second->elapsed_seconds > 1.0);

  const ProcessInfo* busy_info = Find(*second, busy.pid());
  const ProcessInfo* idle_info = Find(*second, idle.pid());
  REQUIRE(busy_info != nullptr);
  REQUIRE(idle_info != nullptr);
  CHECK(busy_info->ppid == ::getpid());
  CHECK(idle_info->ppid == ::getpid());
  CHECK(busy_info->uid == ::getuid());
  CHECK(busy_info->info->user_name == CurrentUserName());
  CHECK(busy_info->create_time_ms > 0);
  CHECK(busy_info->info->exe == fs::canonical("/bin/sh").string());
  CHECK(busy_info->info->cwd == fs::current_path().string());
  CHECK(busy_info->open_fd_count >= 0);
  CHECK(busy_info->rates.has_previous);
  INFO("busy cpu % " << busy_info->rates.cpu_total_pct << " (independent " << independent_pct
                     << "), idle cpu % " << idle_info->rates.cpu_total_pct);
  CHECK(busy_info->rates.cpu_total_pct == Approx(independent_pct).margin(15.0));
  if (independent_pct > 60.0) CHECK(busy_info->rates.cpu_total_pct > 50.0f);
  CHECK(busy_info->rates.cpu_total_pct > 20.0f);
  CHECK(busy_info->rates.cpu_user_pct > busy_info->rates.cpu_system_pct);
  CHECK(idle_info->rates.cpu_total_pct < 5.0f);
  CHECK(idle_info->args() == Args{"/bin/sleep", "30"});

  // The scrubbed command line: Datadog rejoins on spaces once something was masked.
  const Args& args = busy_info->args();
  bool masked = false;
  for (const std::string& arg : args) {
    CHECK(arg.find("hunter2") == std::string::npos);
    masked |= arg == "--password=********";
  }
  CHECK(masked);
  CHECK(args.back() == "extra");

  // A child that exits between collections: first a zombie (skipped like Datadog), then reaped.
  pid_t idle_pid = idle.pid();
  ::kill(idle_pid, SIGKILL);
  for (int i = 0; i < 100; ++i) {
    char path[64];
    std::snprintf(path, sizeof(path), "/proc/%d/stat", idle_pid);
    std::ifstream stat(path);
    std::string line;
    std::getline(stat, line);
    if (line.find(") Z ") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  absl::StatusOr<Snapshot> zombie = collector.Collect();
  REQUIRE(zombie.ok());
  CHECK(Find(*zombie, idle_pid) == nullptr);
  CHECK(zombie->counters.skipped_empty_cmdline >= 1);
  idle.Kill();  // reaps
  absl::StatusOr<Snapshot> gone = collector.Collect();
  REQUIRE(gone.ok());
  CHECK(Find(*gone, idle_pid) == nullptr);
  CHECK(Find(*gone, busy.pid()) != nullptr);
}

TEST_CASE("an unprivileged collector counts unreadable fields instead of failing", "[procfs][live]") {
  // Run the collection as "nobody" in a forked child when we are root; the child reports through
  // a pipe. As a normal user, collect directly: other users' processes are unreadable either way.
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(pipe_fds[0]);
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(2);
    ProcessCollector collector(ProcessCollector::Options{});
    absl::StatusOr<Snapshot> snapshot = collector.Collect();
    int64_t result[4] = {snapshot.ok() ? 1 : 0, 0, 0, 0};
    if (snapshot.ok()) {
      result[1] = snapshot->counters.processes_reported;
      result[2] = snapshot->counters.unreadable_io;
      result[3] = snapshot->counters.unreadable_exe;
    }
    ssize_t written = ::write(pipe_fds[1], result, sizeof(result));
    ::_exit(written == sizeof(result) ? 0 : 3);
  }
  ::close(pipe_fds[1]);
  int64_t result[4] = {0, 0, 0, 0};
  ssize_t got = ::read(pipe_fds[0], result, sizeof(result));
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(got == sizeof(result));
  CHECK(result[0] == 1);
  CHECK(result[1] > 0);
  CHECK(result[2] > 0);  // root-owned processes' io is not readable by nobody
  CHECK(result[3] > 0);
}

}  // namespace
}  // namespace dogwatch::process
