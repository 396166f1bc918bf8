// Container discovery, cgroup statistics and runtime metadata: fixture cgroup trees for the three
// layouts (exact values), the pure parsers, and a real podman container (tests/support/podman.sh
// installs and configures podman; needs root, as CI runs; fails loudly when podman cannot be set up).

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "common/container/cgroup.h"
#include "common/container/container_id.h"
#include "common/container/runtime.h"
#include "tests/support/test_support.h"

using namespace dogwatch::container;
namespace fs = std::filesystem;

namespace {

const std::string kId1 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kId2 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

void WriteFile(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::trunc);
  out << content;
}

bool Contains(const std::vector<std::string>& tags, const std::string& tag) {
  return std::find(tags.begin(), tags.end(), tag) != tags.end();
}

// A cgroup v1 tree like a docker host's: co-mounted "cpu,cpuacct" with "cpu"/"cpuacct" symlinks,
// memory, blkio, pids and the named systemd hierarchy; container kId1 under /docker/.
void WriteV1Hierarchies(const std::string& root) {
  for (const char* hierarchy : {"cpu,cpuacct", "memory", "blkio", "pids", "systemd"}) {
    WriteFile(root + "/" + hierarchy + "/cgroup.procs", "1\n");
  }
  fs::create_directory_symlink("cpu,cpuacct", root + "/cpu");
  fs::create_directory_symlink("cpu,cpuacct", root + "/cpuacct");
}

void WriteV1Container(const std::string& root, const std::string& id, uint64_t usage_ns, uint64_t user_ticks,
                      uint64_t system_ticks, uint64_t periods, uint64_t throttled, uint64_t read_bytes) {
  const std::string cpu = root + "/cpu,cpuacct/docker/" + id;
  WriteFile(cpu + "/cgroup.procs", "4242\n4243\n");
  WriteFile(cpu + "/cpuacct.usage", std::to_string(usage_ns) + "\n");
  WriteFile(cpu + "/cpuacct.stat",
            "user " + std::to_string(user_ticks) + "\nsystem " + std::to_string(system_ticks) + "\n");
  WriteFile(cpu + "/cpu.stat", "nr_periods " + std::to_string(periods) + "\nnr_throttled " +
                                   std::to_string(throttled) + "\nthrottled_time 5000000\n");
  WriteFile(cpu + "/cpu.cfs_quota_us", "150000\n");
  WriteFile(cpu + "/cpu.cfs_period_us", "100000\n");
  WriteFile(cpu + "/cpu.shares", "512\n");
  const std::string memory = root + "/memory/docker/" + id;
  WriteFile(memory + "/cgroup.procs", "4242\n4243\n");
  WriteFile(memory + "/memory.usage_in_bytes", "10485760\n");
  WriteFile(memory + "/memory.limit_in_bytes", "9223372036854771712\n");  // no limit
  WriteFile(memory + "/memory.max_usage_in_bytes", "20971520\n");
  WriteFile(memory + "/memory.failcnt", "3\n");
  WriteFile(memory + "/memory.stat", "cache 111\nrss 222\ntotal_cache 4096000\ntotal_rss 6291456\n");
  WriteFile(memory + "/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
  const std::string blkio = root + "/blkio/docker/" + id;
  WriteFile(blkio + "/blkio.throttle.io_service_bytes_recursive",
            "8:0 Read " + std::to_string(read_bytes) +
                "\n8:0 Write 1000\n8:0 Sync 5\n8:16 Read 10\n8:16 Write 0\n" + "Total 99999\n");
  WriteFile(blkio + "/cgroup.procs", "4242\n4243\n");
  const std::string pids = root + "/pids/docker/" + id;
  WriteFile(pids + "/cgroup.procs", "4242\n4243\n");
  WriteFile(pids + "/pids.current", "2\n");
  WriteFile(pids + "/pids.max", "max\n");
  WriteFile(root + "/systemd/docker/" + id + "/cgroup.procs", "4242\n4243\n");
}

void WriteV2Container(const std::string& dir, uint64_t usage_usec, uint64_t user_usec, uint64_t system_usec,
                      uint64_t rbytes) {
  WriteFile(dir + "/cgroup.procs", "");  // a container running systemd: processes are in children
  WriteFile(dir + "/init.scope/cgroup.procs", "300\n");
  WriteFile(dir + "/system.slice/app.service/cgroup.procs", "301\n302\n");
  WriteFile(dir + "/cpu.stat", "usage_usec " + std::to_string(usage_usec) + "\nuser_usec " +
                                   std::to_string(user_usec) + "\nsystem_usec " +
                                   std::to_string(system_usec) +
                                   "\nnr_periods 10\nnr_throttled 4\nthrottled_usec 2500\n");
  WriteFile(dir + "/cpu.max", "50000 100000\n");
  WriteFile(dir + "/cpu.weight", "100\n");
  WriteFile(dir + "/memory.current", "67108864\n");
  WriteFile(dir + "/memory.max", "134217728\n");
  WriteFile(dir + "/memory.peak", "100000000\n");
  WriteFile(dir + "/memory.stat", "anon 50000000\nfile 7000000\nkernel 123\nslab_reclaimable 5\n");
  WriteFile(dir + "/memory.events", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 0\n");
  WriteFile(dir + "/pids.current", "3\n");
  WriteFile(dir + "/pids.max", "100\n");
  WriteFile(dir + "/io.stat", "8:0 rbytes=" + std::to_string(rbytes) +
                                  " wbytes=2000 rios=3 wios=4 dbytes=0 dios=0\n"
                                  "253:0 rbytes=24 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Pure parsers.

TEST_CASE("cgroup parsers read kernel formats and reject garbage", "[cgroup]") {
  KeyedValues keyed = ParseKeyedValues("user 10\nsystem 20\nbogus line here\nneg -1\n\n");
  CHECK(keyed.entries.size() == 2);
  CHECK(keyed.Get("system") == 20u);
  CHECK_FALSE(keyed.Get("missing").has_value());
  CHECK(keyed.malformed_lines == 2);

  CHECK(ParseSingleValue("12345\n").value() == 12345u);
  CHECK_FALSE(ParseSingleValue("max\n").value().has_value());
  CHECK_FALSE(ParseSingleValue("12a").ok());
  CHECK_FALSE(ParseSingleValue("").ok());
  CHECK(ParseSignedValue("-1\n").value() == -1);

  CpuMax max = ParseCpuMax("max 100000\n").value();
  CHECK_FALSE(max.quota_us.has_value());
  CHECK(max.period_us == 100000u);
  max = ParseCpuMax("25000 50000").value();
  CHECK(max.quota_us == 25000u);
  CHECK(max.period_us == 50000u);
  CHECK_FALSE(ParseCpuMax("10 0").ok());
  CHECK_FALSE(ParseCpuMax("a b c").ok());

  IoBytes blkio = ParseBlkioServiceBytes("8:0 Read 100\n8:0 Write 7\n8:16 Read 1\nTotal 108\n").value();
  CHECK(blkio.read_bytes == 101u);
  CHECK(blkio.write_bytes == 7u);
  CHECK(ParseBlkioServiceBytes("Total 0\n").value().read_bytes == 0u);
  CHECK_FALSE(ParseBlkioServiceBytes("8:0 Read x\n").ok());

  IoBytes io = ParseIoStat("8:0 rbytes=5 wbytes=6 rios=1\n8:1 rbytes=1 wbytes=1 cost.usage=abc\n").value();
  CHECK(io.read_bytes == 6u);
  CHECK(io.write_bytes == 7u);
  CHECK_FALSE(ParseIoStat("rbytes=5\n").ok());

  IoBytes proc = ParseProcIo(
                     "rchar: 900\nwchar: 800\nsyscr: 1\nsyscw: 2\nread_bytes: 4096\nwrite_bytes: 8192\n"
                     "cancelled_write_bytes: 0\n")
                     .value();
  CHECK(proc.read_bytes == 4096u);
  CHECK(proc.write_bytes == 8192u);
  CHECK_FALSE(ParseProcIo("rchar: 1\n").ok());

  size_t dropped = 0;
  std::vector<pid_t> pids = ParseCgroupProcs("1\n2\nx\n0\n3\n4\n", 3, &dropped);
  CHECK(pids == std::vector<pid_t>{1, 2, 3});
  CHECK(dropped == 1);
}

// ---------------------------------------------------------------------------------------------
// Fixture trees.

TEST_CASE("cgroup v1: discovery, exact stats and rates", "[cgroup]") {
  dogwatch::testing::TempDir tmp;
  const std::string root = tmp.path() + "/cgroup";
  WriteV1Hierarchies(root);
  WriteV1Container(root, kId1, 1000000000, 50, 20, 100, 10, 4096);
  WriteFile(root + "/memory/system.slice/cron.service/cgroup.procs", "77\n");  // not a container

  CgroupHierarchies hierarchies = DetectCgroupHierarchies(root).value();
  CHECK(hierarchies.layout == CgroupLayout::kV1);
  CHECK(hierarchies.unified.empty());
  CHECK(hierarchies.v1.at("cpu") == root + "/cpu,cpuacct");
  CHECK(hierarchies.v1.at("cpuacct") == root + "/cpu,cpuacct");
  CHECK(hierarchies.distinct.size() == 5);  // the symlinks are not walked twice

  DiscoveryCounters counters;
  std::vector<ContainerCgroup> cgroups = DiscoverContainerCgroups(hierarchies, {}, &counters);
  REQUIRE(cgroups.size() == 1);
  const ContainerCgroup& cgroup = cgroups[0];
  CHECK(cgroup.container_id == kId1);
  CHECK(cgroup.relative_path == "/docker/" + kId1);
  CHECK(cgroup.v1_dirs.at("cpuacct") == root + "/cpu,cpuacct/docker/" + kId1);
  CHECK(cgroup.v1_dirs.at("memory") == root + "/memory/docker/" + kId1);
  CHECK(cgroup.v1_dirs.count("systemd") == 1);
  CHECK_FALSE(counters.directory_limit_hit);

  StatsOptions options;
  options.proc_root = tmp.path() + "/proc";  // no /proc entries: blkio is non-zero, so no fallback
  ContainerStats first = ReadContainerStats(cgroup, options, 1'000'000'000);
  CHECK(first.missing_files == 0);
  CHECK(first.parse_errors == 0);
  CHECK(first.pids == std::vector<pid_t>{4242, 4243});
  CHECK(first.cpu.usage_ns == 1000000000u);
  const uint64_t ns_per_tick = 1000000000ULL / static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
  CHECK(first.cpu.user_ns == 50 * ns_per_tick);
  CHECK(first.cpu.system_ns == 20 * ns_per_tick);
  CHECK(first.cpu.periods == 100u);
  CHECK(first.cpu.throttled_periods == 10u);
  CHECK(first.cpu.throttled_time_ns == 5000000u);
  REQUIRE(first.cpu.limit_cores.has_value());
  CHECK(*first.cpu.limit_cores == Approx(1.5));
  CHECK(first.cpu.shares == 512u);
  CHECK(first.memory.usage_bytes == 10485760u);
  CHECK_FALSE(first.memory.limit_bytes.has_value());
  CHECK(first.memory.max_usage_bytes == 20971520u);
  CHECK(first.memory.rss_bytes == 6291456u);  // total_rss, not rss
  CHECK(first.memory.cache_bytes == 4096000u);
  CHECK(first.memory.oom_events == 2u);
  CHECK(first.memory.failcnt == 3u);
  CHECK(first.pids_stats.current == 2u);
  CHECK_FALSE(first.pids_stats.limit.has_value());
  CHECK(first.io.source == IoSource::kBlkio);
  CHECK(first.io.read_bytes == 4106u);
  CHECK(first.io.write_bytes == 1000u);

  // Two seconds later: +1.5 s of CPU (75 % of one core), 100 + 50 user/system ticks.
  WriteV1Container(root, kId1, 2500000000, 150, 70, 200, 60, 4096 + 2 * 1048576);
  ContainerStats second = ReadContainerStats(cgroup, options, 3'000'000'000);
  ContainerRates rates = ComputeRates(first, second);
  CHECK(rates.interval_seconds == Approx(2.0));
  CHECK(rates.cpu_total_pct.value() == Approx(75.0));
  CHECK(rates.cpu_user_pct.value() == Approx(100.0 * 100 * ns_per_tick / 2e9));
  CHECK(rates.cpu_system_pct.value() == Approx(100.0 * 50 * ns_per_tick / 2e9));
  CHECK(rates.cpu_throttled_pct.value() == Approx(50.0));
  CHECK(rates.io_read_bytes_per_s.value() == Approx(1048576.0));
  CHECK(rates.io_write_bytes_per_s.value() == Approx(0.0));

  // A counter going backwards (container restarted under the same id) gives no rate, not garbage.
  ContainerRates backwards = ComputeRates(second, first);
  CHECK_FALSE(backwards.cpu_total_pct.has_value());
}

TEST_CASE("cgroup v2: nested cgroups, exact stats and rates", "[cgroup]") {
  dogwatch::testing::TempDir tmp;
  const std::string root = tmp.path() + "/cgroup";
  WriteFile(root + "/cgroup.controllers", "cpuset cpu io memory pids\n");
  WriteFile(root + "/cgroup.procs", "1\n");
  const std::string dir = root + "/system.slice/docker-" + kId2 + ".scope";
  WriteV2Container(dir, 1000000, 600000, 400000, 1000);
  WriteFile(root + "/user.slice/user-0.slice/cgroup.procs", "55\n");

  CgroupHierarchies hierarchies = DetectCgroupHierarchies(root).value();
  CHECK(hierarchies.layout == CgroupLayout::kV2);
  CHECK(hierarchies.unified == root);
  CHECK(hierarchies.v1.empty());

  std::vector<ContainerCgroup> cgroups = DiscoverContainerCgroups(hierarchies, {});
  REQUIRE(cgroups.size() == 1);  // the nested init.scope/system.slice are not containers of their own
  CHECK(cgroups[0].container_id == kId2);
  CHECK(cgroups[0].relative_path == "/system.slice/docker-" + kId2 + ".scope");
  CHECK(cgroups[0].unified_dir == dir);

  StatsOptions options;
  options.proc_root = tmp.path() + "/proc";
  ContainerStats first = ReadContainerStats(cgroups[0], options, 10'000'000'000);
  CHECK(first.missing_files == 0);
  CHECK(first.parse_errors == 0);
  CHECK(first.pids == std::vector<pid_t>{300, 301, 302});
  CHECK(first.cpu.usage_ns == 1000000000u);
  CHECK(first.cpu.user_ns == 600000000u);
  CHECK(first.cpu.system_ns == 400000000u);
  CHECK(first.cpu.periods == 10u);
  CHECK(first.cpu.throttled_periods == 4u);
  CHECK(first.cpu.throttled_time_ns == 2500000u);
  CHECK(first.cpu.limit_cores.value() == Approx(0.5));
  CHECK(first.cpu.shares == 100u);
  CHECK(first.memory.usage_bytes == 67108864u);
  CHECK(first.memory.limit_bytes == 134217728u);
  CHECK(first.memory.max_usage_bytes == 100000000u);
  CHECK(first.memory.rss_bytes == 50000000u);
  CHECK(first.memory.cache_bytes == 7000000u);
  CHECK(first.memory.oom_events == 1u);
  CHECK(first.memory.failcnt == 7u);
  CHECK(first.pids_stats.current == 3u);
  CHECK(first.pids_stats.limit == 100u);
  CHECK(first.io.source == IoSource::kIoStat);
  CHECK(first.io.read_bytes == 1024u);
  CHECK(first.io.write_bytes == 2000u);

  // 500 ms later: +250 ms CPU = 50 % of a core (30 % user, 20 % system).
  WriteV2Container(dir, 1250000, 750000, 500000, 1000 + 512);
  ContainerStats second = ReadContainerStats(cgroups[0], options, 10'500'000'000);
  ContainerRates rates = ComputeRates(first, second);
  CHECK(rates.cpu_total_pct.value() == Approx(50.0));
  CHECK(rates.cpu_user_pct.value() == Approx(30.0));
  CHECK(rates.cpu_system_pct.value() == Approx(20.0));
  CHECK(rates.io_read_bytes_per_s.value() == Approx(1024.0));

  // "max" limits mean "no limit".
  WriteFile(dir + "/cpu.max", "max 100000\n");
  WriteFile(dir + "/memory.max", "max\n");
  WriteFile(dir + "/pids.max", "max\n");
  ContainerStats unlimited = ReadContainerStats(cgroups[0], options, 11'000'000'000);
  CHECK_FALSE(unlimited.cpu.limit_cores.has_value());
  CHECK_FALSE(unlimited.memory.limit_bytes.has_value());
  CHECK_FALSE(unlimited.pids_stats.limit.has_value());
  CHECK(unlimited.missing_files == 0);
}

TEST_CASE("hybrid layout: v1 controllers win, pids from the unified tree, /proc io fallback", "[cgroup]") {
  dogwatch::testing::TempDir tmp;
  const std::string root = tmp.path() + "/cgroup";
  // Like this machine: separate cpu and cpuacct mounts, podman's libpod_parent.
  for (const char* hierarchy : {"cpu", "cpuacct", "memory", "blkio", "pids", "systemd"}) {
    WriteFile(root + "/" + hierarchy + "/cgroup.procs", "1\n");
  }
  WriteFile(root + "/unified/cgroup.controllers", "");
  WriteFile(root + "/unified/cgroup.procs", "1\n");
  const std::string rel = "/libpod_parent/libpod-" + kId1;
  WriteFile(root + "/cpu" + rel + "/cpu.cfs_quota_us", "50000\n");
  WriteFile(root + "/cpu" + rel + "/cpu.cfs_period_us", "100000\n");
  WriteFile(root + "/cpu" + rel + "/cpu.stat", "nr_periods 3\nnr_throttled 1\nthrottled_time 100\n");
  WriteFile(root + "/cpu" + rel + "/cpu.shares", "1024\n");
  WriteFile(root + "/cpuacct" + rel + "/cpuacct.usage", "777\n");
  WriteFile(root + "/cpuacct" + rel + "/cpuacct.stat", "user 1\nsystem 0\n");
  WriteFile(root + "/memory" + rel + "/memory.usage_in_bytes", "417792\n");
  WriteFile(root + "/memory" + rel + "/memory.limit_in_bytes", "67108864\n");
  WriteFile(root + "/memory" + rel + "/memory.max_usage_in_bytes", "4308992\n");
  WriteFile(root + "/memory" + rel + "/memory.failcnt", "0\n");
  WriteFile(root + "/memory" + rel + "/memory.stat",
            "cache 4096\nrss 57344\ntotal_cache 4096\ntotal_rss 57344\n");
  // no memory.oom_control: an old kernel; not counted as missing (optional file)
  WriteFile(root + "/blkio" + rel + "/blkio.throttle.io_service_bytes_recursive", "Total 0\n");
  WriteFile(root + "/pids" + rel + "/pids.current", "1\n");
  // pids.max deleted on purpose: counted, the rest still read
  WriteFile(root + "/unified" + rel + "/cgroup.procs", "4959\n");
  WriteFile(root + "/unified" + rel + "/cpu.stat", "usage_usec 999999\nuser_usec 1\nsystem_usec 1\n");
  WriteFile(root + "/systemd" + rel + "/cgroup.procs", "4959\n");
  WriteFile(root + "/unified/libpod_parent/conmon/cgroup.procs", "4950\n");
  const std::string proc = tmp.path() + "/proc";
  WriteFile(proc + "/4959/io", "rchar: 1\nwchar: 2\nread_bytes: 12288\nwrite_bytes: 4096\n");

  CgroupHierarchies hierarchies = DetectCgroupHierarchies(root).value();
  CHECK(hierarchies.layout == CgroupLayout::kHybrid);
  CHECK(hierarchies.unified == root + "/unified");
  CHECK(hierarchies.distinct.size() == 7);

  std::vector<ContainerCgroup> cgroups = DiscoverContainerCgroups(hierarchies, {});
  REQUIRE(cgroups.size() == 1);
  CHECK(cgroups[0].relative_path == rel);
  CHECK(cgroups[0].unified_dir == root + "/unified" + rel);

  StatsOptions options;
  options.proc_root = proc;
  ContainerStats stats = ReadContainerStats(cgroups[0], options, 1);
  CHECK(stats.missing_files == 1);  // pids.max
  CHECK(stats.parse_errors == 0);
  CHECK(stats.cpu.usage_ns == 777u);  // cpuacct, not the unified cpu.stat
  CHECK(stats.cpu.limit_cores.value() == Approx(0.5));
  CHECK(stats.memory.limit_bytes == 67108864u);
  CHECK_FALSE(stats.memory.oom_events.has_value());
  CHECK(stats.pids_stats.current == 1u);
  CHECK_FALSE(stats.pids_stats.limit.has_value());
  CHECK(stats.pids == std::vector<pid_t>{4959});
  CHECK(stats.io.source == IoSource::kProcPids);
  CHECK(stats.io.read_bytes == 12288u);
  CHECK(stats.io.write_bytes == 4096u);

  // Garbage in a file: a parse error for that field only.
  WriteFile(root + "/memory" + rel + "/memory.usage_in_bytes", "lots\n");
  ContainerStats garbled = ReadContainerStats(cgroups[0], options, 2);
  CHECK(garbled.parse_errors == 1);
  CHECK_FALSE(garbled.memory.usage_bytes.has_value());
  CHECK(garbled.memory.limit_bytes == 67108864u);

  // The container's cgroup vanishing mid-collection: everything missing, nothing thrown.
  fs::remove_all(root + "/memory" + rel);
  ContainerStats gone = ReadContainerStats(cgroups[0], options, 3);
  CHECK(gone.missing_files >= 5);
  CHECK_FALSE(gone.memory.usage_bytes.has_value());
  CHECK(gone.cpu.usage_ns == 777u);
}

TEST_CASE("collector: bounded discovery, rates across collections, bad roots", "[cgroup]") {
  dogwatch::testing::TempDir tmp;
  const std::string root = tmp.path() + "/cgroup";
  WriteFile(root + "/cgroup.controllers", "cpu memory\n");
  for (int i = 0; i < 5; ++i) {
    std::string id(64, static_cast<char>('a' + i));
    WriteV2Container(root + "/kubepods/pod1/cri-containerd-" + id + ".scope", 1000, 500, 500, 0);
  }
  CgroupCollector::Options options;
  options.cgroup_root = root;
  options.proc_root = tmp.path() + "/proc";
  options.discovery.max_containers = 3;
  CgroupCollector collector(options);
  auto first = collector.Collect();
  REQUIRE(first.ok());
  CHECK(first->containers.size() == 3);
  CHECK(first->discovery.containers_dropped == 2);
  for (const auto& container : first->containers) CHECK_FALSE(container.rates.has_value());
  auto second = collector.Collect();
  REQUIRE(second.ok());
  for (const auto& container : second->containers) {
    REQUIRE(container.rates.has_value());
    CHECK(container.rates->cpu_total_pct.value() == Approx(0.0));  // counters did not move
  }
  CHECK(collector.StatsFor(first->containers[0].stats.container_id).has_value());
  CHECK_FALSE(collector.StatsFor("nope").has_value());

  options.discovery.max_containers = 4096;
  options.discovery.max_directories = 2;
  CgroupCollector limited(options);
  auto walk = limited.Collect();
  REQUIRE(walk.ok());
  CHECK(walk->discovery.directory_limit_hit);

  CgroupCollector missing(CgroupCollector::Options{tmp.path() + "/nope", "/proc", {}, 65536, 16});
  auto status = missing.Collect();
  CHECK_FALSE(status.ok());
  CHECK(std::string(status.status().message()).find(tmp.path() + "/nope") != std::string::npos);
  WriteFile(tmp.path() + "/empty/file", "");
  CHECK_FALSE(DetectCgroupHierarchies(tmp.path() + "/empty").ok());
}

// ---------------------------------------------------------------------------------------------
// Runtime metadata (pure parts).

TEST_CASE("engine API parsers", "[runtime]") {
  const std::string inspect = R"({
    "Id": ")" + kId1 + R"(", "Name": "/web-1", "Image": "sha256:238c43",
    "Created": "2026-11-21T06:08:19.697909095Z",
    "State": {"Status": "running", "Running": true, "Pid": 4959, "ExitCode": 0,
              "StartedAt": "2026-11-21T08:08:20.14+02:00", "FinishedAt": "0001-01-01T00:00:00Z",
              "Health": {"Status": "healthy"}},
    "Config": {"Image": "registry.example.com:5000/team/web:2.1", "Labels": {"team": "core", "Tier": "front"},
               "Env": ["PATH=/bin", "DD_ENV=prod", "DD_SERVICE=web", "API_TOKEN=secret"]},
    "HostConfig": {"NanoCpus": 500000000, "CpuQuota": 50000, "CpuPeriod": 100000, "Memory": 67108864}})";
  ContainerMeta meta = ParseContainerInspect(inspect).value();
  CHECK(meta.inspected);
  CHECK(meta.id == kId1);
  CHECK(meta.name == "web-1");
  CHECK(meta.image == "registry.example.com:5000/team/web:2.1");
  CHECK(meta.image_id == "sha256:238c43");
  CHECK(meta.state == "running");
  CHECK(meta.health == "healthy");
  CHECK(meta.pid == 4959);
  CHECK(meta.created_unix == 1795241299);
  CHECK(meta.started_unix == 1795241300);  // 08:08:20+02:00 = 06:08:20Z
  CHECK(meta.finished_unix == 0);
  CHECK(meta.cpu_limit_cores.value() == Approx(0.5));
  CHECK(meta.memory_limit_bytes == 67108864);
  CHECK(meta.labels.at("team") == "core");
  CHECK(meta.tag_env.size() == 2);  // only DD_* tag variables are kept, never API_TOKEN
  CHECK(meta.tag_env.at("DD_ENV") == "prod");

  CHECK_FALSE(ParseContainerInspect("{}").ok());
  CHECK_FALSE(ParseContainerInspect("[1,2").ok());
  CHECK_FALSE(ParseContainerInspect(std::string(100000, '[')).ok());  // deep nesting: error, no crash

  auto list = ParseContainerList(R"([{"Id":"a1","Names":["/x"],"Image":"busybox","ImageID":"sha256:1",
      "Created":1795241299,"State":"exited","Labels":{"k":"v"}},{"Id":"a2"},{"Id":"a3"},{"Names":[]}])",
                                 2)
                  .value();
  REQUIRE(list.size() == 2);
  CHECK(list[0].name == "x");
  CHECK(list[0].state == "exited");
  CHECK(list[0].labels.at("k") == "v");
  CHECK_FALSE(list[0].inspected);

  ContainerEvent event = ParseContainerEvent(
                             R"({"status":"die","id":"abc","from":"img:1","Type":"container","Action":"die",
      "Actor":{"ID":"abc","Attributes":{"exitCode":"137","image":"img:1","name":"dw"}},"time":1795241355,
      "timeNano":1795241355859971606})")
                             .value();
  CHECK(event.id == "abc");
  CHECK(event.action == "die");
  CHECK(event.name == "dw");
  CHECK(event.image == "img:1");
  CHECK(event.time_unix_nano == 1795241355859971606);
  CHECK(ParseContainerEvent(R"({"status":"start","id":"old","time":5})").value().time_unix_nano ==
        5000000000);
  CHECK_FALSE(ParseContainerEvent(R"({"Type":"network","Action":"connect","Actor":{"ID":"n"}})").ok());

  CHECK(ParseRfc3339("1970-01-01T00:00:10Z").value() == 10);
  CHECK_FALSE(ParseRfc3339("yesterday").ok());
  CHECK_FALSE(ParseRfc3339("2026-13-01T00:00:00Z").ok());
}

TEST_CASE("image references and container tags by cardinality", "[runtime]") {
  ImageRef ref = SplitImageRef("registry.example.com:5000/team/web:2.1");
  CHECK(ref.name == "registry.example.com:5000/team/web");
  CHECK(ref.short_name == "web");
  CHECK(ref.tag == "2.1");
  ref = SplitImageRef("registry.example.com:5000/web");
  CHECK(ref.name == "registry.example.com:5000/web");
  CHECK(ref.tag == "latest");
  ref = SplitImageRef("busybox");
  CHECK(ref.short_name == "busybox");
  CHECK(ref.tag == "latest");
  ref = SplitImageRef("docker.io/library/redis@sha256:abcd");
  CHECK(ref.name == "docker.io/library/redis");
  CHECK(ref.short_name == "redis");
  CHECK(ref.tag.empty());
  CHECK(SplitImageRef("redis:7@sha256:abcd").tag == "7");

  ContainerMeta meta;
  meta.id = kId1;
  meta.name = "web-1";
  meta.image = "registry.example.com:5000/team/web:2.1";
  meta.image_id = "sha256:1";
  meta.labels = {{"io.kubernetes.pod.name", "web-5d8f"},
                 {"io.kubernetes.pod.namespace", "shop"},
                 {"io.kubernetes.container.name", "web"},
                 {"com.datadoghq.tags.env", "staging"},
                 {"com.datadoghq.ad.tags", R"(["owner:alice","tier:front"])"},
                 {"Team", "core"},
                 {"request-id", "r-77"}};
  meta.tag_env = {{"DD_ENV", "prod"}, {"DD_SERVICE", "web"}};

  const std::map<std::string, std::string> labels_as_tags = {{"team", "team"}, {"request-id", "+request_id"}};
  std::vector<std::string> low = ContainerTags(meta, TagCardinality::kLow, labels_as_tags);
  const std::vector<std::string> expected_low = {"docker_image:registry.example.com:5000/team/web:2.1",
                                                 "env:staging",  // the label wins over DD_ENV
                                                 "image_id:sha256:1",
                                                 "image_name:registry.example.com:5000/team/web",
                                                 "image_tag:2.1",
                                                 "kube_container_name:web",
                                                 "kube_namespace:shop",
                                                 "owner:alice",
                                                 "service:web",
                                                 "short_image:web",
                                                 "team:core",
                                                 "tier:front"};
  CHECK(low == expected_low);

  std::vector<std::string> orchestrator = ContainerTags(meta, TagCardinality::kOrchestrator, labels_as_tags);
  CHECK(orchestrator.size() == expected_low.size() + 1);
  CHECK(Contains(orchestrator, "pod_name:web-5d8f"));
  CHECK_FALSE(Contains(orchestrator, "container_id:" + kId1));

  std::vector<std::string> high = ContainerTags(meta, TagCardinality::kHigh, labels_as_tags);
  CHECK(high.size() == expected_low.size() + 4);
  CHECK(Contains(high, "container_id:" + kId1));
  CHECK(Contains(high, "container_name:web-1"));
  CHECK(Contains(high, "request_id:r-77"));
  CHECK(Contains(high, "pod_name:web-5d8f"));

  // Without labels_as_tags, plain labels are not tags.
  CHECK_FALSE(Contains(ContainerTags(meta, TagCardinality::kHigh), "team:core"));
}

TEST_CASE("runtime client: a missing socket is a clear error naming the path", "[runtime]") {
  RuntimeClient::Options options;
  options.socket_path = "/nonexistent/dogwatch/docker.sock";
  RuntimeClient client(options);
  absl::Status status = client.Ping();
  CHECK(absl::IsUnavailable(status));
  CHECK(std::string(status.message()).find("/nonexistent/dogwatch/docker.sock") != std::string::npos);
  CHECK_FALSE(client.ListContainers().ok());
  CHECK(absl::IsInvalidArgument(client.Inspect("../../etc").status()));

  ContainerMetaStore::Options store_options;
  store_options.client = options;
  ContainerMetaStore store(store_options);
  absl::Status start = store.Start();
  CHECK_FALSE(start.ok());
  CHECK(std::string(start.message()).find("/nonexistent/dogwatch/docker.sock") != std::string::npos);
  CHECK(store.List().empty());
}

// ---------------------------------------------------------------------------------------------
// Real podman.

namespace {

const std::string kPodmanSocket = "/run/podman/podman.sock";
const std::string kImage = "localhost/dogwatch-test-busybox:1";

dogwatch::testing::CommandResult Podman(std::vector<std::string> args,
                                        std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  std::vector<std::string> argv = {"/usr/bin/env", "podman"};
  argv.insert(argv.end(), args.begin(), args.end());
  return dogwatch::testing::RunCommand(argv, {}, timeout);
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Removes the container by name whatever happens in the test.
struct ContainerGuard {
  std::string name;
  ~ContainerGuard() { Podman({"rm", "-f", "-t", "0", name}); }
};

// Setup is part of the tests: CI runs as root with the Debian mirror reachable. Never skipped.
void SetUpPodman() {
  REQUIRE(geteuid() == 0);  // podman here runs rootful; run the tests as root (CI does)
  auto setup = dogwatch::testing::RunCommand(
      {"/bin/bash", std::string(DOGWATCH_TEST_SOURCE_DIR) + "/tests/support/podman.sh"}, {},
      std::chrono::seconds(300));
  INFO("tests/support/podman.sh failed:\n" << setup.out << setup.err);
  REQUIRE(setup.exit_code == 0);
}

std::string RandomName() {
  std::mt19937_64 rng(std::random_device{}());
  return "dw-test-" + std::to_string(rng() % 1000000000);
}

}  // namespace

TEST_CASE("real podman container: discovery, stats, metadata, tags, events", "[podman]") {
  SetUpPodman();

  RuntimeClient::Options client_options;
  client_options.socket_path = kPodmanSocket;
  RuntimeClient client(client_options);
  REQUIRE(client.Ping().ok());

  // The metadata store follows events from before the container exists.
  std::mutex events_mu;
  std::vector<ContainerEvent> events;
  ContainerMetaStore::Options store_options;
  store_options.client = client_options;
  ContainerMetaStore store(store_options);
  absl::Status started = store.Start([&](const ContainerEvent& event, const std::optional<ContainerMeta>&) {
    std::lock_guard<std::mutex> lock(events_mu);
    events.push_back(event);
  });
  INFO(started.message());
  REQUIRE(started.ok());

  const std::string name = RandomName();
  ContainerGuard guard{name};
  auto run = dogwatch::testing::PodmanRun({"-d", "--name", name, "--label", "team=core", "--cpus", "0.5",
                                           "--memory", "64m", kImage, "sh", "-c", "while :; do :; done"},
                                          name);
  INFO("podman run: " << run.out << run.err);
  REQUIRE(run.exit_code == 0);
  const std::string id = Trim(run.out).substr(Trim(run.out).size() >= 64 ? Trim(run.out).size() - 64 : 0);
  REQUIRE(id.size() == 64);

  // Runtime API.
  ContainerMeta meta = client.Inspect(id).value();
  CHECK(meta.name == name);
  CHECK(meta.image == kImage);
  CHECK(meta.labels.at("team") == "core");
  CHECK(meta.state == "running");
  REQUIRE(meta.pid > 0);
  CHECK(meta.cpu_limit_cores.value() == Approx(0.5));
  CHECK(meta.memory_limit_bytes == 64 * 1024 * 1024);
  CHECK(meta.started_unix >= meta.created_unix);
  CHECK(ContainerIdForPid(meta.pid) == id);
  auto list = client.ListContainers().value();
  CHECK(std::any_of(list.begin(), list.end(),
                    [&](const ContainerMeta& m) { return m.id == id && m.name == name; }));
  CHECK(dogwatch::testing::WaitFor(
      [&] { return store.Get(id).has_value() && store.Get(id)->pid == meta.pid; }, std::chrono::seconds(10)));
  CHECK(store.ForPid(meta.pid).has_value());

  // Tags.
  std::vector<std::string> tags = ContainerTags(meta, TagCardinality::kHigh, {{"team", "team"}});
  CHECK(Contains(tags, "container_name:" + name));
  CHECK(Contains(tags, "container_id:" + id));
  CHECK(Contains(tags, "image_name:localhost/dogwatch-test-busybox"));
  CHECK(Contains(tags, "short_image:dogwatch-test-busybox"));
  CHECK(Contains(tags, "image_tag:1"));
  CHECK(Contains(tags, "docker_image:localhost/dogwatch-test-busybox:1"));
  CHECK(Contains(tags, "team:core"));
  std::vector<std::string> low_tags = ContainerTags(meta, TagCardinality::kLow, {{"team", "team"}});
  CHECK_FALSE(Contains(low_tags, "container_id:" + id));
  CHECK(Contains(low_tags, "team:core"));

  // cgroups on the real host.
  CgroupCollector collector(CgroupCollector::Options{});
  auto first = collector.Collect();
  REQUIRE(first.ok());
  auto find = [&](const CgroupCollector::Collection& collection) -> const CgroupCollector::Container* {
    for (const auto& container : collection.containers) {
      if (container.stats.container_id == id) return &container;
    }
    return nullptr;
  };
  const CgroupCollector::Container* found = find(*first);
  REQUIRE(found != nullptr);
  INFO("layout " << CgroupLayoutName(collector.hierarchies().layout) << " path "
                 << found->stats.relative_path);
  CHECK(std::find(found->stats.pids.begin(), found->stats.pids.end(), meta.pid) != found->stats.pids.end());
  CHECK(found->stats.cpu.limit_cores.value() == Approx(0.5));
  CHECK(found->stats.memory.limit_bytes == 64u * 1024 * 1024);
  CHECK(found->stats.memory.usage_bytes.value() > 0);
  CHECK(found->stats.pids_stats.current.value() >= 1);
  CHECK(found->stats.io.source != IoSource::kNone);
  CHECK(found->stats.missing_files == 0);
  CHECK(found->stats.parse_errors == 0);

  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  auto second = collector.Collect();
  REQUIRE(second.ok());
  found = find(*second);
  REQUIRE(found != nullptr);
  REQUIRE(found->rates.has_value());
  const double cpu_pct = found->rates->cpu_total_pct.value();
  INFO("cpu % of one core: " << cpu_pct);
  CHECK(cpu_pct > 0.0);
  CHECK(cpu_pct < 80.0);  // --cpus 0.5: the CFS quota caps it near 50 %
  CHECK(found->rates->cpu_user_pct.value() >= 0.0);

  // Cost of one collection per container (discovery walk + all stats files).
  {
    const int rounds = 50;
    auto begin = std::chrono::steady_clock::now();
    size_t containers = 0;
    for (int i = 0; i < rounds; ++i) containers += collector.Collect().value().containers.size();
    auto elapsed =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - begin).count();
    auto stats_begin = std::chrono::steady_clock::now();
    for (int i = 0; i < rounds; ++i) REQUIRE(collector.StatsFor(id).has_value());
    auto stats_elapsed =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - stats_begin).count();
    std::cout << "container_test: Collect() " << elapsed / rounds << " us for " << containers / rounds
              << " container(s) = " << elapsed / static_cast<double>(containers)
              << " us/container; stats only " << stats_elapsed / rounds << " us/container\n";
  }

  // Cost of one inspect over the unix socket (what each container event costs the store).
  {
    const int rounds = 20;
    auto begin = std::chrono::steady_clock::now();
    for (int i = 0; i < rounds; ++i) REQUIRE(client.Inspect(id).ok());
    auto elapsed =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - begin).count();
    std::cout << "container_test: Inspect() " << elapsed / rounds << " us\n";
  }

  // Events: stopping the container is seen as "die", and the store's metadata follows.
  auto stop = Podman({"stop", "-t", "1", name});
  INFO("podman stop: " << stop.out << stop.err);
  REQUIRE(stop.exit_code == 0);
  CHECK(dogwatch::testing::WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(events_mu);
        return std::any_of(events.begin(), events.end(),
                           [&](const ContainerEvent& e) { return e.id == id && e.action == "die"; });
      },
      std::chrono::seconds(15)));
  CHECK(dogwatch::testing::WaitFor(
      [&] { return store.Get(id).has_value() && store.Get(id)->state == "exited"; },
      std::chrono::seconds(10)));
  CHECK(store.Get(id)->pid == 0);
  {
    std::lock_guard<std::mutex> lock(events_mu);
    CHECK(std::any_of(events.begin(), events.end(),
                      [&](const ContainerEvent& e) { return e.id == id && e.action == "start"; }));
  }
  ContainerMetaStore::Counters counters = store.counters();
  CHECK(counters.events >= 2);
  CHECK(counters.event_parse_errors == 0);

  // Removal drops it from the store.
  REQUIRE(Podman({"rm", "-f", name}).exit_code == 0);
  CHECK(dogwatch::testing::WaitFor([&] { return !store.Get(id).has_value(); }, std::chrono::seconds(10)));
  auto stop_begin = std::chrono::steady_clock::now();
  store.Stop();
  CHECK(std::chrono::steady_clock::now() - stop_begin < std::chrono::seconds(3));
}

TEST_CASE("metadata store reconnects with backoff and resyncs what it missed", "[podman]") {
  SetUpPodman();
  // A private API service, so stopping it does not disturb anyone else's.
  dogwatch::testing::TempDir dir;
  const std::string socket = dir.File("podman.sock");
  auto start_service = [&] {
    return std::make_unique<dogwatch::testing::Process>(
        std::vector<std::string>{"/usr/bin/env", "podman", "system", "service", "--time=0",
                                 "unix://" + socket},
        std::map<std::string, std::string>{}, dir.path(), "service");
  };
  auto service = start_service();
  RuntimeClient::Options client_options;
  client_options.socket_path = socket;
  RuntimeClient client(client_options);
  REQUIRE(dogwatch::testing::WaitFor([&] { return client.Ping().ok(); }, std::chrono::seconds(20)));

  ContainerMetaStore::Options store_options;
  store_options.client = client_options;
  store_options.initial_backoff = std::chrono::milliseconds(100);
  store_options.max_backoff = std::chrono::milliseconds(400);
  ContainerMetaStore store(store_options);
  REQUIRE(store.Start().ok());
  CHECK(dogwatch::testing::WaitFor([&] { return store.counters().connected; }, std::chrono::seconds(5)));

  // The runtime goes away: the stream ends, the store retries with backoff and keeps its cache.
  service->Signal(SIGTERM);
  REQUIRE(service->Wait(std::chrono::seconds(20)) != -1);
  CHECK(
      dogwatch::testing::WaitFor([&] { return store.counters().reconnects >= 1; }, std::chrono::seconds(10)));
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  ContainerMetaStore::Counters down = store.counters();
  CHECK(down.resyncs == 1);  // only the initial one succeeded
  CHECK(down.last_error.find(socket) != std::string::npos);

  // A container created while the store could not hear about it...
  const std::string name = RandomName();
  ContainerGuard guard{name};
  auto create = Podman({"create", "--name", name, "--label", "team=core", kImage, "true"});
  INFO(create.out << create.err);
  REQUIRE(create.exit_code == 0);
  std::string id = Trim(create.out);
  id = id.substr(id.size() >= 64 ? id.size() - 64 : 0);

  // ...is in the cache once the runtime is back (resync after reconnect).
  service = start_service();
  CHECK(dogwatch::testing::WaitFor([&] { return store.Get(id).has_value(); }, std::chrono::seconds(15)));
  ContainerMetaStore::Counters up = store.counters();
  CHECK(up.resyncs >= 2);
  CHECK(store.Get(id)->name == name);
  CHECK(store.Get(id)->state == "created");
  store.Stop();
  service->Signal(SIGTERM);
  service->Wait(std::chrono::seconds(20));
}
