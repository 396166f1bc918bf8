// The process-agent checks: conversion of collected data to the intake's messages (every field,
// the state enums, scrubbed arguments) on synthetic input, and whole check runs against real
// processes of this test and a fixture cgroup tree, decoded back from the framed payloads.

#include "process-agent/checks/checks.h"

#include <signal.h>
#include <spawn.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "process-agent/payload/message.h"

extern char** environ;

namespace pb = datadog::process_agent;
using dogwatch::process::CheckKind;
using dogwatch::process::Checks;
using dogwatch::process::ChecksOptions;
using dogwatch::process::ContainerView;

namespace {

namespace fs = std::filesystem;

void WriteFile(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::trunc);
  out << content;
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/process_checks_test.XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

// A child process with a known command line, killed at the end of the test.
class Child {
 public:
  explicit Child(std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), environ) != 0) pid_ = -1;
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

const pb::Process* FindProcess(const dogwatch::process::CheckRun& run, int32_t pid) {
  for (const auto& message : run.messages) {
    const auto& proc = dynamic_cast<const pb::CollectorProc&>(*message);
    for (const auto& process : proc.processes()) {
      if (process.pid() == pid) return &process;
    }
  }
  return nullptr;
}

// Waits until the child has exec'd (its cmdline shows `marker`).
bool WaitForCmdline(pid_t pid, const std::string& marker) {
  for (int i = 0; i < 200; ++i) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.find(marker) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace

TEST_CASE("process states map to the enum's letters; others are U", "[checks]") {
  using dogwatch::process::ProcessStateFromCode;
  CHECK(ProcessStateFromCode('R') == pb::R);
  CHECK(ProcessStateFromCode('S') == pb::S);
  CHECK(ProcessStateFromCode('D') == pb::D);
  CHECK(ProcessStateFromCode('T') == pb::T);
  CHECK(ProcessStateFromCode('W') == pb::W);
  CHECK(ProcessStateFromCode('X') == pb::X);
  CHECK(ProcessStateFromCode('Z') == pb::Z);
  CHECK(ProcessStateFromCode('I') == pb::U);
  CHECK(ProcessStateFromCode('t') == pb::U);
  CHECK(ProcessStateFromCode('?') == pb::U);
}

TEST_CASE("container states, health and runtime names", "[checks]") {
  using namespace dogwatch::process;
  CHECK(ContainerStateFromRuntime("running") == pb::running);
  CHECK(ContainerStateFromRuntime("exited") == pb::exited);
  CHECK(ContainerStateFromRuntime("stopped") == pb::exited);
  CHECK(ContainerStateFromRuntime("paused") == pb::paused);
  CHECK(ContainerStateFromRuntime("created") == pb::created);
  CHECK(ContainerStateFromRuntime("restarting") == pb::restarting);
  CHECK(ContainerStateFromRuntime("dead") == pb::dead);
  CHECK(ContainerStateFromRuntime("weird") == pb::unknown);
  CHECK(ContainerHealthFromRuntime("healthy") == pb::healthy);
  CHECK(ContainerHealthFromRuntime("unhealthy") == pb::unhealthy);
  CHECK(ContainerHealthFromRuntime("starting") == pb::starting);
  CHECK(ContainerHealthFromRuntime("") == pb::unknownHealth);
  CHECK(RuntimeFromCgroupPath("/machine.slice/libpod-abc.scope") == "podman");
  CHECK(RuntimeFromCgroupPath("/docker/abc") == "docker");
  CHECK(RuntimeFromCgroupPath("/system.slice/docker-abc.scope") == "docker");
  CHECK(RuntimeFromCgroupPath("/kubepods/burstable/pod1/cri-containerd-abc.scope") == "containerd");
  CHECK(RuntimeFromCgroupPath("/kubepods/crio-abc.scope") == "cri-o");
  CHECK(RuntimeFromCgroupPath("/user.slice") == "");
}

TEST_CASE("a process snapshot entry becomes a Process with every field", "[checks]") {
  auto info = std::make_shared<dogwatch::process::ProcessStaticInfo>();
  info->comm = "app";
  info->args = {"/usr/bin/app", "--password=********", "serve"};
  info->exe = "/usr/bin/app";
  info->cwd = "/srv";
  info->root = "/";
  info->user_name = "www";
  info->container_id = "c0ffee";
  dogwatch::process::ProcessInfo p;
  p.pid = 42;
  p.ppid = 7;
  p.pgroup = 40;
  p.ns_pid = 3;
  p.state = 'R';
  p.num_threads = 5;
  p.nice = -2;
  p.uid = 33;
  p.gid = 34;
  p.euid = 35;
  p.egid = 36;
  p.suid = 37;
  p.sgid = 38;
  p.create_time_ms = 1700000000123;
  p.utime_ticks = 1234;  // 12.34 s at 100 Hz
  p.stime_ticks = 567;
  p.rss_bytes = 1 << 20;
  p.vms_bytes = 8 << 20;
  p.swap_bytes = 4096;
  p.shared_bytes = 8192;
  p.text_bytes = 100;
  p.lib_bytes = 200;
  p.data_bytes = 300;
  p.open_fd_count = 9;
  p.voluntary_ctx_switches = 11;
  p.involuntary_ctx_switches = 12;
  p.info = info;
  p.rates.has_previous = true;
  p.rates.cpu_total_pct = 75.5f;
  p.rates.cpu_user_pct = 50.25f;
  p.rates.cpu_system_pct = 25.25f;
  p.rates.read_rate = 1.5f;
  p.rates.write_rate = 2.5f;
  p.rates.read_bytes_rate = 100.0f;
  p.rates.write_bytes_rate = -1.0f;
  dogwatch::process::Snapshot snapshot;
  snapshot.ticks_per_second = 100;

  pb::Process out = dogwatch::process::ToProcess(p, snapshot);
  CHECK(out.pid() == 42);
  CHECK(out.nspid() == 3);
  REQUIRE(out.command().args_size() == 3);
  CHECK(out.command().args(1) == "--password=********");
  CHECK(out.command().cwd() == "/srv");
  CHECK(out.command().root() == "/");
  CHECK(out.command().exe() == "/usr/bin/app");
  CHECK(out.command().ppid() == 7);
  CHECK(out.command().pgroup() == 40);
  CHECK(out.user().name() == "www");
  CHECK(out.user().uid() == 33);
  CHECK(out.user().gid() == 34);
  CHECK(out.user().euid() == 35);
  CHECK(out.user().egid() == 36);
  CHECK(out.user().suid() == 37);
  CHECK(out.user().sgid() == 38);
  CHECK(out.memory().rss() == 1u << 20);
  CHECK(out.memory().vms() == 8u << 20);
  CHECK(out.memory().swap() == 4096u);
  CHECK(out.memory().shared() == 8192u);
  CHECK(out.memory().text() == 100u);
  CHECK(out.memory().lib() == 200u);
  CHECK(out.memory().data() == 300u);
  CHECK(out.cpu().lastcpu() == "cpu");
  CHECK(out.cpu().totalpct() == Approx(75.5));
  CHECK(out.cpu().userpct() == Approx(50.25));
  CHECK(out.cpu().systempct() == Approx(25.25));
  CHECK(out.cpu().numthreads() == 5);
  CHECK(out.cpu().nice() == -2);
  CHECK(out.cpu().usertime() == 12);
  CHECK(out.cpu().systemtime() == 5);
  CHECK(out.createtime() == 1700000000123);
  CHECK(out.openfdcount() == 9);
  CHECK(out.state() == pb::R);
  CHECK(out.iostat().readrate() == Approx(1.5));
  CHECK(out.iostat().writerate() == Approx(2.5));
  CHECK(out.iostat().readbytesrate() == Approx(100.0));
  CHECK(out.iostat().writebytesrate() == Approx(-1.0));  // unreadable, Datadog's marker
  CHECK(out.containerid() == "c0ffee");
  CHECK(out.voluntaryctxswitches() == 11u);
  CHECK(out.involuntaryctxswitches() == 12u);

  p.state = 'Z';
  pb::ProcessStat stat = dogwatch::process::ToProcessStat(p, snapshot);
  CHECK(stat.pid() == 42);
  CHECK(stat.createtime() == 1700000000123);
  CHECK(stat.processstate() == pb::Z);
  CHECK(stat.threads() == 5);
  CHECK(stat.nice() == -2);
  CHECK(stat.openfdcount() == 9);
  CHECK(stat.containerid() == "c0ffee");
  CHECK(stat.cpu().totalpct() == Approx(75.5));
  CHECK(stat.memory().rss() == 1u << 20);
  CHECK(stat.iostat().readbytesrate() == Approx(100.0));
  CHECK(stat.voluntaryctxswitches() == 11u);
}

TEST_CASE("a container view becomes a Container and a ContainerStat", "[checks]") {
  ContainerView view;
  view.stats.container_id = std::string(64, 'a');
  view.stats.relative_path = "/libpod_parent/libpod-" + view.stats.container_id;
  view.stats.pids = {10, 11};
  view.stats.cpu.limit_cores = 0.5;
  view.stats.memory.limit_bytes = 64u << 20;
  view.stats.memory.usage_bytes = 3u << 20;
  view.stats.memory.rss_bytes = 2u << 20;
  view.stats.memory.cache_bytes = 1u << 20;
  view.stats.pids_stats.current = 2;
  view.stats.pids_stats.limit = 100;
  dogwatch::container::ContainerRates rates;
  rates.interval_seconds = 2;
  rates.cpu_total_pct = 49.0;
  rates.cpu_user_pct = 45.0;
  rates.cpu_system_pct = 4.0;
  rates.io_read_bytes_per_s = 10.0;
  rates.io_write_bytes_per_s = 20.0;
  view.rates = rates;
  dogwatch::container::ContainerMeta meta;
  meta.id = view.stats.container_id;
  meta.name = "web";
  meta.image = "localhost/app:1";
  meta.state = "running";
  meta.health = "healthy";
  meta.created_unix = 1700000000;
  meta.started_unix = 1700000005;
  view.meta = meta;
  view.tags = {"container_name:web", "short_image:app"};

  pb::Container out = dogwatch::process::ToContainer(view, 4);
  CHECK(out.type() == "podman");
  CHECK(out.id() == view.stats.container_id);
  CHECK(out.name() == "web");
  CHECK(out.image() == "localhost/app:1");
  CHECK(out.cpulimit() == Approx(50.0));
  CHECK(out.memorylimit() == 64u << 20);
  CHECK(out.state() == pb::running);
  CHECK(out.health() == pb::healthy);
  CHECK(out.created() == 1700000000);
  CHECK(out.started() == 1700000005);
  CHECK(out.totalpct() == Approx(49.0));
  CHECK(out.userpct() == Approx(45.0));
  CHECK(out.systempct() == Approx(4.0));
  CHECK(out.rbps() == Approx(10.0));
  CHECK(out.wbps() == Approx(20.0));
  CHECK(out.cpuusagens() == Approx(49.0e7));
  CHECK(out.memrss() == 2u << 20);
  CHECK(out.memcache() == 1u << 20);
  CHECK(out.memusage() == 3u << 20);
  CHECK(out.threadcount() == 2u);
  CHECK(out.threadlimit() == 100u);
  REQUIRE(out.tags_size() == 2);
  CHECK(out.tags(0) == "container_name:web");

  pb::ContainerStat stat = dogwatch::process::ToContainerStat(view, 4);
  CHECK(stat.id() == view.stats.container_id);
  CHECK(stat.cpulimit() == Approx(50.0));
  CHECK(stat.memlimit() == 64u << 20);
  CHECK(stat.totalpct() == Approx(49.0));
  CHECK(stat.state() == pb::running);
  CHECK(stat.health() == pb::healthy);
  CHECK(stat.started() == 1700000005);
  CHECK(stat.threadcount() == 2u);

  // Without a limit: 100 % per CPU; without the runtime: running because it holds processes.
  view.stats.cpu.limit_cores.reset();
  view.stats.memory.limit_bytes.reset();
  view.meta.reset();
  view.rates.reset();
  pb::Container bare = dogwatch::process::ToContainer(view, 4);
  CHECK(bare.cpulimit() == Approx(400.0));
  CHECK(bare.memorylimit() == 0u);
  CHECK(bare.state() == pb::running);
  CHECK(bare.health() == pb::unknownHealth);
  CHECK(bare.totalpct() == 0.0f);
}

TEST_CASE("process check on real processes: scrubbed args, ppid, user, CPU of a busy loop, framing",
          "[checks]") {
  Child busy(
      {"/bin/sh", "-c", "while :; do :; done", "dw-checks-busy", "--password=hunter2", "--token", "s3cr3t"});
  REQUIRE(busy.pid() > 0);
  REQUIRE(WaitForCmdline(busy.pid(), "dw-checks-busy"));

  ChecksOptions options;
  options.hostname = "test-host";
  options.agent_version = "7.0.0-test";
  options.agent_start_time_s = 1700000000;
  options.agent_pid = getpid();
  options.collect_containers = false;
  options.scrub.custom_sensitive_words = {"token"};
  Checks checks(options);
  REQUIRE(checks.Start().ok());

  auto first = checks.Run(CheckKind::kProcess);
  REQUIRE(first.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto second = checks.Run(CheckKind::kProcess);
  REQUIRE(second.ok());
  REQUIRE(!second->messages.empty());
  REQUIRE(second->messages.size() == second->payloads.size());

  const pb::Process* child = FindProcess(*second, busy.pid());
  REQUIRE(child != nullptr);
  std::vector<std::string> args(child->command().args().begin(), child->command().args().end());
  // As in Datadog, a scrubbed command line is split back on spaces.
  CHECK(args == std::vector<std::string>{"/bin/sh", "-c", "while", ":;", "do", ":;", "done", "dw-checks-busy",
                                         "--password=********", "--token", "********"});
  CHECK(child->command().ppid() == getpid());
  CHECK(child->command().exe() == fs::canonical("/bin/sh").string());
  CHECK(child->user().uid() == static_cast<int32_t>(getuid()));
  CHECK(child->user().name() == (getuid() == 0 ? "root" : child->user().name()));
  CHECK(!child->user().name().empty());
  INFO("busy child cpu % " << child->cpu().totalpct());
  CHECK(child->cpu().totalpct() > 20.0f);
  CHECK(child->cpu().numthreads() == 1);
  CHECK(child->createtime() > 1700000000000);
  CHECK((child->state() == pb::R || child->state() == pb::S));

  const auto& proc = dynamic_cast<const pb::CollectorProc&>(*second->messages[0]);
  CHECK(proc.hostname() == "test-host");
  CHECK(proc.groupsize() == static_cast<int32_t>(second->messages.size()));
  CHECK(proc.info().totalmemory() > 0);
  CHECK(proc.info().cpus_size() >= 1);
  CHECK(proc.info().os().name() == "linux");
  CHECK(!proc.info().os().kernelversion().empty());

  // The framed payloads: V3 header of type 12, zstd protobuf, Datadog headers, no secret anywhere.
  for (size_t i = 0; i < second->payloads.size(); ++i) {
    const auto& payload = second->payloads[i];
    CHECK(payload.path == "/api/v1/collector");
    CHECK(payload.headers.GetOr("X-Dd-Hostname", "") == "test-host");
    CHECK(payload.headers.GetOr("X-Dd-Processagentversion", "") == "7.0.0-test");
    CHECK(payload.headers.GetOr("Content-Type", "") == "application/x-protobuf");
    CHECK(payload.headers.GetOr("X-DD-Agent-Start-Time", "") == "1700000000");
    CHECK(!payload.headers.GetOr("X-DD-Request-ID", "").empty());
    auto decoded = dogwatch::process::DecodeMessage(payload.body);
    REQUIRE(decoded.ok());
    CHECK(decoded->header.version == 3);
    CHECK(decoded->header.type == 12);
    CHECK(decoded->header.encoding == 4);
    CHECK(decoded->body.find("hunter2") == std::string::npos);
    CHECK(decoded->body.find("s3cr3t") == std::string::npos);
    pb::CollectorProc parsed;
    REQUIRE(dogwatch::process::ParseBody(*decoded, &parsed).ok());
    CHECK(parsed.SerializeAsString() == second->messages[i]->SerializeAsString());
  }

  // Real-time: the same process as a ProcessStat in a CollectorRealTime.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto rt = checks.Run(CheckKind::kRealTimeProcess);
  REQUIRE(rt.ok());
  bool found = false;
  for (const auto& message : rt->messages) {
    const auto& realtime = dynamic_cast<const pb::CollectorRealTime&>(*message);
    CHECK(realtime.numcpus() >= 1);
    CHECK(realtime.totalmemory() > 0);
    for (const auto& stat : realtime.stats()) {
      if (stat.pid() == busy.pid()) {
        found = true;
        CHECK(stat.cpu().totalpct() > 20.0f);
      }
    }
  }
  CHECK(found);
  CHECK(rt->payloads.at(0).headers.GetOr("X-DD-Request-ID", "") == "");  // process check only

  auto counters = checks.Counters();
  CHECK(counters.at("process_runs") == 2);
  CHECK(counters.at("rtprocess_runs") == 1);
  CHECK(counters.at("process_items") == static_cast<int64_t>(first->processes + second->processes));
  checks.RecordSubmit(CheckKind::kProcess, second->payloads[0], absl::OkStatus());
  checks.RecordSubmit(CheckKind::kProcess, second->payloads[0], absl::UnavailableError("core down"));
  counters = checks.Counters();
  CHECK(counters.at("process_payloads") == 1);
  CHECK(counters.at("process_bytes") == static_cast<int64_t>(second->payloads[0].body.size()));
  CHECK(counters.at("process_submit_errors") == 1);
}

TEST_CASE("host facts: os-release fields (quoted or not), family from ID_LIKE, kernel from uname",
          "[checks]") {
  TempDir dir;
  WriteFile(dir.path + "/os-release",
            "PRETTY_NAME=\"Ubuntu 24.04 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\nID=ubuntu\n"
            "ID_LIKE=debian\nVERSION_CODENAME='noble'\n");
  auto facts = dogwatch::process::ReadHostFacts(dir.path + "/os-release");
  CHECK(facts.platform == "ubuntu");
  CHECK(facts.platform_version == "24.04");
  CHECK(facts.platform_family == "debian");
  utsname names{};
  REQUIRE(uname(&names) == 0);
  CHECK(facts.kernel_version == names.release);
  CHECK(facts.architecture == names.machine);

  // No ID_LIKE (Debian itself): the family is the ID.
  WriteFile(dir.path + "/os-release", "ID=debian\nVERSION_ID=\"12\"\n");
  facts = dogwatch::process::ReadHostFacts(dir.path + "/os-release");
  CHECK(facts.platform == "debian");
  CHECK(facts.platform_family == "debian");
  CHECK(facts.platform_version == "12");

  // Unreadable: the platform fields stay empty, the kernel is still known.
  facts = dogwatch::process::ReadHostFacts(dir.path + "/missing");
  CHECK(facts.platform.empty());
  CHECK(facts.platform_version.empty());
  CHECK(facts.kernel_version == names.release);
}

TEST_CASE("strip_proc_arguments keeps only the executable", "[checks]") {
  Child sleeper({"/bin/sh", "-c", "sleep 30", "dw-sleeper", "--password=hunter2"});
  REQUIRE(sleeper.pid() > 0);
  REQUIRE(WaitForCmdline(sleeper.pid(), "hunter2"));
  ChecksOptions options;
  options.collect_containers = false;
  options.scrub.strip_arguments = true;
  Checks checks(options);
  auto run = checks.Run(CheckKind::kProcess);
  REQUIRE(run.ok());
  const pb::Process* child = FindProcess(*run, sleeper.pid());
  REQUIRE(child != nullptr);
  REQUIRE(child->command().args_size() == 1);
  CHECK(child->command().args(0) == "/bin/sh");
}

TEST_CASE("container checks on a fixture cgroup tree: fields, tags from the lookup, cached", "[checks]") {
  TempDir tmp;
  const std::string root = tmp.path + "/cgroup";
  const std::string id(64, 'b');
  WriteFile(root + "/cgroup.controllers", "cpu io memory pids\n");
  WriteFile(root + "/cgroup.procs", "1\n");
  const std::string dir = root + "/machine.slice/libpod-" + id + ".scope";
  WriteFile(dir + "/cgroup.procs", "4242\n");
  WriteFile(dir + "/cpu.stat", "usage_usec 1000000\nuser_usec 600000\nsystem_usec 400000\n");
  WriteFile(dir + "/cpu.max", "50000 100000\n");
  WriteFile(dir + "/memory.current", "67108864\n");
  WriteFile(dir + "/memory.max", "134217728\n");
  WriteFile(dir + "/memory.stat", "anon 50000000\nfile 7000000\n");
  WriteFile(dir + "/pids.current", "1\n");
  WriteFile(dir + "/pids.max", "100\n");
  WriteFile(dir + "/io.stat", "8:0 rbytes=1024 wbytes=2000 rios=3 wios=4\n");

  int lookups = 0;
  int64_t now_ms = 1000;
  bool fail = false;
  ChecksOptions options;
  options.hostname = "h";
  options.cgroup_root = root;
  options.proc_root = "/proc";
  options.monotonic_ms = [&] { return now_ms; };
  options.tag_lookup = [&](const std::string& container_id) -> absl::StatusOr<std::vector<std::string>> {
    ++lookups;
    if (fail) return absl::UnavailableError("core down");
    return std::vector<std::string>{"container_id:" + container_id, "team:core"};
  };
  Checks checks(options);
  REQUIRE(checks.cgroups_present());

  auto run = checks.Run(CheckKind::kContainer);
  REQUIRE(run.ok());
  REQUIRE(run->messages.size() == 1);
  CHECK(run->payloads[0].path == "/api/v1/container");
  CHECK(run->payloads[0].headers.GetOr("X-Dd-ContainerCount", "") == "1");
  const auto& message = dynamic_cast<const pb::CollectorContainer&>(*run->messages[0]);
  REQUIRE(message.containers_size() == 1);
  const pb::Container& c = message.containers(0);
  CHECK(c.id() == id);
  CHECK(c.type() == "podman");
  CHECK(c.cpulimit() == Approx(50.0));
  CHECK(c.memorylimit() == 134217728u);
  CHECK(c.memusage() == 67108864u);
  CHECK(c.memrss() == 50000000u);
  CHECK(c.memcache() == 7000000u);
  CHECK(c.threadcount() == 1u);
  CHECK(c.threadlimit() == 100u);
  CHECK(c.state() == pb::running);
  REQUIRE(c.tags_size() == 2);
  CHECK(c.tags(1) == "team:core");
  CHECK(lookups == 1);

  // Cached within the TTL, asked again after it.
  REQUIRE(checks.Run(CheckKind::kRealTimeContainer).ok());
  CHECK(lookups == 1);
  now_ms += options.tag_ttl_ms + 1;
  fail = true;
  auto rt = checks.Run(CheckKind::kRealTimeContainer);
  REQUIRE(rt.ok());
  CHECK(lookups == 2);
  const auto& realtime = dynamic_cast<const pb::CollectorContainerRealTime&>(*rt->messages[0]);
  REQUIRE(realtime.stats_size() == 1);
  CHECK(realtime.stats(0).id() == id);
  CHECK(realtime.stats(0).memlimit() == 134217728u);
  // A failed answer is cached briefly too: no lookup storm while the core is away.
  REQUIRE(checks.Run(CheckKind::kContainer).ok());
  CHECK(lookups == 2);
  auto counters = checks.Counters();
  CHECK(counters.at("tagger_errors") == 1);
  CHECK(counters.at("tagger_cache_hits") == 2);
  CHECK(counters.at("container_runs") == 2);
  CHECK(counters.at("rtcontainer_runs") == 2);
  CHECK(checks.Info().at("tagger_last_error") == "core down");
}

namespace {

// A fixture /proc with one process whose io and fd are readable and one whose are not (no io
// file, no fd directory: what another user's process looks like to an unprivileged agent).
struct FixtureProc {
  TempDir dir;
  FixtureProc() {
    WriteFile(dir.path + "/stat",
              "cpu  1000 0 0 1000 0 0 0 0 0 0\ncpu0 1 0 0 1 0 0 0 0 0 0\nbtime 1700000000\nprocesses 10\n");
    Add(4242, false);
    Add(4343, true);
  }
  void Add(int pid, bool readable) {
    const std::string base = dir.path + "/" + std::to_string(pid);
    WriteFile(base + "/stat",
              std::to_string(pid) + " (dw) S 1 " + std::to_string(pid) +
                  " 952 0 -1 0 101 0 0 0 10 5 0 0 20 0 1 0 500 3133440 382 "
                  "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
    WriteFile(
        base + "/status",
        "Name:\tdw\nState:\tS (sleeping)\nPPid:\t1\nUid:\t1000\t1000\t1000\t1000\nGid:\t10\t10\t10\t10\n"
        "VmRSS:\t    1700 kB\nThreads:\t1\nvoluntary_ctxt_switches:\t7\nnonvoluntary_ctxt_switches:\t3\n");
    WriteFile(base + "/cmdline", std::string("/usr/bin/dw\0--serve\0", 20));
    WriteFile(base + "/schedstat", "100 5 3\n");
    if (readable) {
      WriteFile(base + "/io",
                "rchar: 1\nwchar: 1\nsyscr: 10\nsyscw: 2\nread_bytes: 4096\nwrite_bytes: 8192\n");
      WriteFile(base + "/fd/0", "");
    }
  }
};

const pb::Process* Find(const dogwatch::process::CheckRun& run, int32_t pid) { return FindProcess(run, pid); }

}  // namespace

TEST_CASE("io and fd counts /proc refuses come from the privileged source, with rates", "[checks]") {
  FixtureProc proc;
  int64_t now_ms = 1'700'000'000'000;
  std::vector<std::vector<int32_t>> asked;
  uint64_t calls = 0;
  bool failing = false;
  ChecksOptions options;
  options.proc_root = proc.dir.path;
  options.collect_containers = false;
  options.collector.unix_ms = [&] { return now_ms; };
  options.privileged_stats_name = "system-probe (test)";
  options.privileged_stats = [&](const std::vector<int32_t>& pids)
      -> absl::StatusOr<std::vector<dogwatch::process::PrivilegedStat>> {
    asked.push_back(pids);
    if (failing) return absl::UnavailableError("connection refused");
    ++calls;
    dogwatch::process::PrivilegedStat stat;
    stat.pid = 4242;
    stat.read_bytes = 1000 * calls;
    stat.write_bytes = 2000 * calls;
    stat.read_count = 10 * calls;
    stat.write_count = 20 * calls;
    stat.open_fds = 7;
    dogwatch::process::PrivilegedStat unasked = stat;  // an answer for a pid not asked is ignored
    unasked.pid = 4343;
    unasked.open_fds = 99;
    return std::vector<dogwatch::process::PrivilegedStat>{stat, unasked};
  };
  Checks checks(options);

  auto first = checks.Run(CheckKind::kProcess);
  REQUIRE(first.ok());
  now_ms += 10'000;
  auto second = checks.Run(CheckKind::kProcess);
  REQUIRE(second.ok());
  REQUIRE(asked.size() == 2);
  CHECK(asked[1] == std::vector<int32_t>{4242});  // only the process /proc refused

  const pb::Process* hidden = Find(*second, 4242);
  REQUIRE(hidden != nullptr);
  CHECK(hidden->openfdcount() == 7);
  CHECK(hidden->iostat().readbytesrate() == Approx(100.0));  // 1000 bytes more over 10 s
  CHECK(hidden->iostat().writebytesrate() == Approx(200.0));
  CHECK(hidden->iostat().readrate() == Approx(1.0));
  CHECK(hidden->iostat().writerate() == Approx(2.0));
  const pb::Process* own = Find(*second, 4343);
  REQUIRE(own != nullptr);
  CHECK(own->openfdcount() == 1);                            // from /proc, not from the source
  CHECK(Find(*first, 4242)->iostat().readbytesrate() == 0);  // first sight: no rate yet
  CHECK(checks.Info().at("privileged_stats") ==
        "system-probe (test): io/fd of 1 of 1 processes /proc refused");
  CHECK(checks.Counters().at("privileged_filled_io") == 2);
  CHECK(checks.Counters().at("privileged_errors") == 0);

  // The source goes away: what /proc refused is unreadable again (-1), and status says why.
  failing = true;
  now_ms += 10'000;
  auto third = checks.Run(CheckKind::kProcess);
  REQUIRE(third.ok());
  CHECK(Find(*third, 4242)->openfdcount() == -1);
  CHECK(Find(*third, 4242)->iostat().readbytesrate() == -1);
  CHECK(checks.Counters().at("privileged_errors") == 1);
  CHECK(checks.Info().at("privileged_stats") ==
        "partial: system-probe (test) unavailable, io/fd of 1 processes /proc refused are unknown: "
        "connection refused");
}
