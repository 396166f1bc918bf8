#include "agent-core/checks/host_checks.h"

#include <stdlib.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agent-core/checks/proc_parsers.h"

namespace dogwatch::checks {
namespace {

namespace fs = std::filesystem;

struct RecordedSample {
  std::string name;
  metrics::SampleType type;
  double value;
  std::vector<std::string> tags;  // sorted
  std::string host;
  int64_t timestamp;
};

// Copies every sample, since a Sample's strings only live during Add().
class RecordingSink final : public SampleSink {
 public:
  void Add(const metrics::Sample& sample) override {
    RecordedSample copy{std::string(sample.name), sample.type,     sample.value, {},
                        std::string(sample.host), sample.timestamp};
    for (std::string_view tag : sample.tags) copy.tags.emplace_back(tag);
    std::sort(copy.tags.begin(), copy.tags.end());
    samples.push_back(std::move(copy));
  }

  std::vector<const RecordedSample*> All(std::string_view name) const {
    std::vector<const RecordedSample*> found;
    for (const RecordedSample& sample : samples) {
      if (sample.name == name) found.push_back(&sample);
    }
    return found;
  }

  // The value of the one sample with this name and exactly these tags; fails the test if there
  // is more than one.
  std::optional<double> Get(std::string_view name, std::vector<std::string> tags = {}) const {
    std::sort(tags.begin(), tags.end());
    std::optional<double> value;
    for (const RecordedSample& sample : samples) {
      if (sample.name != name || sample.tags != tags) continue;
      CHECK_FALSE(value.has_value());
      value = sample.value;
    }
    return value;
  }

  std::vector<RecordedSample> samples;
};

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "host_checks_test.XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void WriteFile(const fs::path& path, std::string_view contents) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  REQUIRE(out.good());
}

Check& FindCheck(std::vector<std::unique_ptr<Check>>& checks, std::string_view name) {
  for (auto& check : checks) {
    if (check->name() == name) return *check;
  }
  FAIL("no check named " << name);
  throw std::logic_error("unreachable");
}

// A fake host: proc and sys trees under a temp dir, a mount table naming real directories (statvfs
// needs a real path), and a clock the test advances.
struct FakeHost {
  TempDir dir;
  fs::path proc = dir.path() / "proc";
  fs::path sys = dir.path() / "sys";
  fs::path data = dir.path() / "data";
  fs::path spaced = dir.path() / "with space";
  double clock = 1000.0;

  FakeHost() {
    fs::create_directories(data);
    fs::create_directories(spaced);
    WriteFile(sys / "class/net/eth0/speed", "1000\n");
    WriteFile(sys / "class/net/eth0/mtu", "1500\n");
    // proc_root is not /proc, so the disk check reads init's mount table (the host's, when a host
    // procfs is mounted into a container).
    WriteFile(proc / "1/mounts",
              "proc /proc proc rw,nosuid 0 0\n"
              "none /nothing ext4 rw 0 0\n"
              "systemd-1 /proc/sys/fs/binfmt_misc autofs rw 0 0\n"
              "/dev/gone /does/not/exist ext4 rw 0 0\n"
              "/dev/fake1 " +
                  data.string() + " ext4 rw,relatime 0 0\n" + "/dev/mapper/fake2 " + dir.path().string() +
                  "/with\\040space xfs rw 0 0\n" + "/dev/fake1 " + data.string() + " ext4 rw,bind 0 0\n");
  }

  HostCheckOptions Options() {
    HostCheckOptions options;
    options.proc_root = proc.string();
    options.sys_root = sys.string();
    options.hostname = "test-host";
    options.excluded_interfaces = {"docker0"};
    options.monotonic_seconds = [this] { return clock; };
    return options;
  }

  void WriteSnapshot1() {
    WriteFile(proc / "stat",
              "cpu  1000 100 500 8000 200 50 50 100 30 0\n"
              "cpu0 500 50 250 4000 100 25 25 50 15 0\n"
              "cpu1 500 50 250 4000 100 25 25 50 15 0\n"
              "intr 12345 0 0\n"
              "ctxt 100000\n"
              "btime 1700000000\n");
    WriteFile(proc / "meminfo",
              "MemTotal:        8192000 kB\n"
              "MemFree:         1024000 kB\n"
              "MemAvailable:    4096000 kB\n"
              "Buffers:          204800 kB\n"
              "Cached:          2048000 kB\n"
              "SwapCached:        10240 kB\n"
              "Shmem:            102400 kB\n"
              "Slab:             307200 kB\n"
              "SReclaimable:     204800 kB\n"
              "PageTables:        20480 kB\n"
              "CommitLimit:     6144000 kB\n"
              "Committed_AS:    3072000 kB\n"
              "SwapTotal:       2048000 kB\n"
              "SwapFree:        1536000 kB\n"
              "HugePages_Total:       0\n");
    WriteFile(proc / "vmstat", "nr_free_pages 1\npgpgin 1000\npgpgout 2000\npswpin 100\npswpout 200\n");
    WriteFile(proc / "loadavg", "1.50 1.00 0.50 2/300 12345\n");
    WriteFile(proc / "uptime", "12345.67 20000.00\n");
    WriteFile(proc / "diskstats",
              "   8       0 sda 1000 100 20000 5000 2000 200 40000 8000 0 6000 13000 0 0 0 0\n"
              "garbage line\n"
              "   8       1 sdc 1 0 8 0 0 0 0 0 0 4294967000 4294967000\n");
    WriteFile(proc / "net/dev",
              "Inter-|   Receive                                                |  Transmit\n"
              " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop "
              "fifo colls carrier compressed\n"
              "    lo: 5000 50 0 0 0 0 0 0 5000 50 0 0 0 0 0 0\n"
              "  eth0: 100000 1000 1 2 0 0 0 0 50000 500 3 4 0 0 0 0\n"
              "docker0: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n");
    WriteFile(proc / "sys/fs/file-nr", "2048\t48\t100000\n");
  }

  // 10 seconds later.
  void WriteSnapshot2() {
    clock += 10.0;
    // +user 300 +nice 100 +system 200 +idle 1100 +iowait 100 +irq 50 +softirq 50 +steal 100 (=2000
    // ticks in total), +guest 40.
    WriteFile(proc / "stat",
              "cpu  1300 200 700 9100 300 100 100 200 70 0\n"
              "cpu0 650 100 350 4550 150 50 50 100 35 0\n"
              "cpu1 650 100 350 4550 150 50 50 100 35 0\n"
              "ctxt 103000\n");
    WriteFile(proc / "vmstat", "pgpgin 3560\npgpgout 7120\npswpin 356\npswpout 712\n");
    WriteFile(proc / "loadavg", "2.00 1.00 0.40 1/300 12346\n");
    WriteFile(proc / "uptime", "12355.99 20010.00\n");
    // sda: +100 reads, +10 merged, +2048 sectors (1 MiB), +500 ms; +300 writes, +30 merged, +6144
    // sectors (3 MiB), +2100 ms; io_ms +2500, weighted +10240. sdc's 32-bit counters wrapped. sdb is
    // new.
    WriteFile(proc / "diskstats",
              "   8       0 sda 1100 110 22048 5500 2300 230 46144 10100 1 8500 23240 0 0 0 0\n"
              "   8       1 sdc 1 0 8 0 0 0 0 0 0 704 704\n"
              "   8      16 sdb 5 0 40 1 0 0 0 0 0 1 1\n");
    // eth0: rx +1 MiB, +1000 packets, +10 errors, +20 drops; tx +512 KiB, +500, +30, +40. lo's rx
    // counters went down (reset); its tx went up by 100 bytes.
    WriteFile(proc / "net/dev",
              "Inter-|   Receive                                                |  Transmit\n"
              " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop "
              "fifo colls carrier compressed\n"
              "    lo: 10 1 0 0 0 0 0 0 5100 51 0 0 0 0 0 0\n"
              "  eth0: 1148576 2000 11 22 0 0 0 0 574288 1000 33 44 0 0 0 0\n"
              "docker0: 100 100 0 0 0 0 0 0 100 100 0 0 0 0 0 0\n");
  }
};

constexpr int64_t kNow1 = 1800000000;
constexpr int64_t kNow2 = kNow1 + 10;

TEST_CASE("fixture host: first run primes rates, second run computes them exactly", "[host_checks]") {
  FakeHost host;
  host.WriteSnapshot1();
  auto checks = MakeHostChecks(host.Options());
  REQUIRE(checks.size() == 8);

  RecordingSink first;
  for (auto& check : checks) {
    const absl::Status status = check->Run(kNow1, first);
    INFO(check->name() << ": " << std::string(status.message()));
    REQUIRE(status.ok());
  }
  for (const RecordedSample& sample : first.samples) {
    CHECK(sample.type == metrics::SampleType::kGauge);
    CHECK(sample.timestamp == kNow1);
    CHECK(sample.host == "test-host");
  }
  // Rates and deltas need a previous run.
  for (const char* name :
       {"system.cpu.user", "system.cpu.idle", "system.cpu.context_switches", "system.swap.swap_in",
        "system.io.r_s", "system.io.util", "system.io.block_in", "system.net.bytes_rcvd"}) {
    INFO(name);
    CHECK(first.All(name).empty());
  }
  CHECK(first.Get("system.cpu.num_cores") == 2.0);
  CHECK(first.Get("system.mem.total") == 8000.0);
  CHECK(first.Get("system.load.norm.1") == 0.75);
  CHECK(first.Get("system.uptime") == 12345.0);

  host.WriteSnapshot2();
  RecordingSink second;
  for (auto& check : checks) {
    const absl::Status status = check->Run(kNow2, second);
    INFO(check->name() << ": " << std::string(status.message()));
    REQUIRE(status.ok());
  }
  for (const RecordedSample& sample : second.samples) {
    CHECK(sample.type == metrics::SampleType::kGauge);
    CHECK(sample.timestamp == kNow2);
    CHECK(sample.host == "test-host");
  }

  SECTION("cpu: shares of the 2000 ticks that elapsed") {
    CHECK(second.Get("system.cpu.user") == Approx(20.0));      // (300 user + 100 nice) / 2000
    CHECK(second.Get("system.cpu.system") == Approx(15.0));    // (200 + 50 irq + 50 softirq) / 2000
    CHECK(second.Get("system.cpu.interrupt") == Approx(5.0));  // (50 + 50) / 2000
    CHECK(second.Get("system.cpu.iowait") == Approx(5.0));
    CHECK(second.Get("system.cpu.idle") == Approx(55.0));
    CHECK(second.Get("system.cpu.stolen") == Approx(5.0));
    CHECK(second.Get("system.cpu.guest") == Approx(2.0));
    CHECK(second.Get("system.cpu.num_cores") == 2.0);
    CHECK(second.Get("system.cpu.context_switches") == 3000.0);
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    CHECK(second.Get("system.cpu.user.total", {"core:cpu0"}) == Approx(650 / ticks));
    CHECK(second.Get("system.cpu.idle.total", {"core:cpu1"}) == Approx(4550 / ticks));
    CHECK(second.Get("system.cpu.guest.total", {"core:cpu1"}) == Approx(35 / ticks));
  }

  SECTION("memory: MiB from kB, gopsutil's cached and used") {
    CHECK(second.Get("system.mem.total") == 8000.0);
    CHECK(second.Get("system.mem.free") == 1000.0);
    CHECK(second.Get("system.mem.used") == 7000.0);
    CHECK(second.Get("system.mem.usable") == 4000.0);
    CHECK(second.Get("system.mem.pct_usable") == 0.5);
    CHECK(second.Get("system.mem.cached") == 2200.0);  // Cached + SReclaimable
    CHECK(second.Get("system.mem.buffered") == 200.0);
    CHECK(second.Get("system.mem.shared") == 100.0);
    CHECK(second.Get("system.mem.slab") == 300.0);
    CHECK(second.Get("system.mem.slab_reclaimable") == 200.0);
    CHECK(second.Get("system.mem.page_tables") == 20.0);
    CHECK(second.Get("system.mem.commit_limit") == 6000.0);
    CHECK(second.Get("system.mem.committed_as") == 3000.0);
    CHECK(second.Get("system.swap.cached") == 10.0);
    CHECK(second.Get("system.swap.total") == 2000.0);
    CHECK(second.Get("system.swap.free") == 1500.0);
    CHECK(second.Get("system.swap.used") == 500.0);
    CHECK(second.Get("system.swap.pct_free") == 0.75);
    // 256 and 512 pages of 4 KiB over 10 s.
    CHECK(second.Get("system.swap.swap_in") == Approx(0.1));
    CHECK(second.Get("system.swap.swap_out") == Approx(0.2));
  }

  SECTION("load and uptime") {
    CHECK(second.Get("system.load.1") == 2.0);
    CHECK(second.Get("system.load.5") == 1.0);
    CHECK(second.Get("system.load.15") == Approx(0.4));
    CHECK(second.Get("system.load.norm.1") == 1.0);
    CHECK(second.Get("system.load.norm.5") == 0.5);
    CHECK(second.Get("system.load.norm.15") == Approx(0.2));
    CHECK(second.Get("system.uptime") == 12355.0);
  }

  SECTION("io: iostat-style figures over 10 s") {
    const std::vector<std::string> sda = {"device:sda", "device_name:sda"};
    CHECK(second.Get("system.io.r_s", sda) == Approx(10.0));
    CHECK(second.Get("system.io.w_s", sda) == Approx(30.0));
    CHECK(second.Get("system.io.rrqm_s", sda) == Approx(1.0));
    CHECK(second.Get("system.io.wrqm_s", sda) == Approx(3.0));
    CHECK(second.Get("system.io.rkb_s", sda) == Approx(102.4));  // 1 MiB / 10 s
    CHECK(second.Get("system.io.wkb_s", sda) == Approx(307.2));
    CHECK(second.Get("system.io.r_await", sda) == Approx(5.0));      // 500 ms / 100 reads
    CHECK(second.Get("system.io.w_await", sda) == Approx(7.0));      // 2100 ms / 300 writes
    CHECK(second.Get("system.io.await", sda) == Approx(6.5));        // 2600 ms / 400 operations
    CHECK(second.Get("system.io.avg_rq_sz", sda) == Approx(20.48));  // 8192 sectors / 400
    CHECK(second.Get("system.io.avg_q_sz", sda) == Approx(1.0));     // 10240 / 1024 / 10 s
    CHECK(second.Get("system.io.util", sda) == Approx(25.0));        // 2500 ms busy of 10000
    CHECK(second.Get("system.io.svctm", sda) == Approx(6.25));       // 2500 ms / 400
    // 32-bit counters that wrapped: 4294967000 -> 704 is an increase of 1000 ms.
    const std::vector<std::string> sdc = {"device:sdc", "device_name:sdc"};
    CHECK(second.Get("system.io.util", sdc) == Approx(10.0));
    CHECK(second.Get("system.io.avg_q_sz", sdc) == Approx(0.1));  // 0.0977, rounded to 2 decimals
    // sdb appeared in this run: primed only.
    for (const RecordedSample* sample : second.All("system.io.util")) {
      CHECK(sample->tags != std::vector<std::string>{"device:sdb", "device_name:sdb"});
    }
    CHECK(second.Get("system.io.block_in") == Approx(2560.0 * 4096 / 10));
    CHECK(second.Get("system.io.block_out") == Approx(5120.0 * 4096 / 10));
  }

  SECTION("network: bytes/s from counter deltas and the 10 s interval") {
    const std::vector<std::string> eth0 = {"device:eth0", "device_name:eth0", "mtu:1500", "speed:1000"};
    CHECK(second.Get("system.net.bytes_rcvd", eth0) == Approx(104857.6));
    CHECK(second.Get("system.net.bytes_sent", eth0) == Approx(52428.8));
    CHECK(second.Get("system.net.packets_in.count", eth0) == Approx(100.0));
    CHECK(second.Get("system.net.packets_in.error", eth0) == Approx(1.0));
    CHECK(second.Get("system.net.packets_in.drop", eth0) == Approx(2.0));
    CHECK(second.Get("system.net.packets_out.count", eth0) == Approx(50.0));
    CHECK(second.Get("system.net.packets_out.error", eth0) == Approx(3.0));
    CHECK(second.Get("system.net.packets_out.drop", eth0) == Approx(4.0));
    // lo has no sysfs attributes here; its rx counters were reset, so only tx is reported.
    const std::vector<std::string> lo = {"device:lo", "device_name:lo"};
    CHECK_FALSE(second.Get("system.net.bytes_rcvd", lo).has_value());
    CHECK(second.Get("system.net.bytes_sent", lo) == Approx(10.0));
    for (const RecordedSample& sample : second.samples) {
      CHECK(std::find(sample.tags.begin(), sample.tags.end(), "device:docker0") == sample.tags.end());
    }
  }

  SECTION("file handles") {
    CHECK(second.Get("system.fs.file_handles.allocated") == 2048.0);
    CHECK(second.Get("system.fs.file_handles.allocated_unused") == 48.0);
    CHECK(second.Get("system.fs.file_handles.used") == 2000.0);
    CHECK(second.Get("system.fs.file_handles.max") == 100000.0);
    CHECK(second.Get("system.fs.file_handles.in_use") == Approx(0.02));
  }

  SECTION("disk: statvfs of the real directories, in KiB, excluded mounts skipped") {
    const std::vector<std::string> fake1 = {"device:/dev/fake1", "device_name:fake1"};
    auto total = second.Get("system.disk.total", fake1);
    auto used = second.Get("system.disk.used", fake1);
    auto free = second.Get("system.disk.free", fake1);
    auto in_use = second.Get("system.disk.in_use", fake1);
    auto utilized = second.Get("system.disk.utilized", fake1);
    REQUIRE(total.has_value());
    REQUIRE(used.has_value());
    REQUIRE(free.has_value());
    REQUIRE(in_use.has_value());
    REQUIRE(utilized.has_value());
    struct statvfs fs {};
    REQUIRE(statvfs(host.data.c_str(), &fs) == 0);
    // The size of a file system does not change while the test runs; its free space may.
    CHECK(*total == static_cast<double>(fs.f_blocks) * fs.f_frsize / 1024);
    const double reserved_kib =
        (static_cast<double>(fs.f_bfree) - static_cast<double>(fs.f_bavail)) * fs.f_frsize / 1024;
    CHECK(*used + *free <= *total);
    CHECK(*used + *free + reserved_kib == Approx(*total).epsilon(0.01));
    CHECK(*in_use >= 0.0);
    CHECK(*in_use <= 1.0);
    CHECK(*in_use == Approx(*used / (*used + *free)));
    CHECK(*utilized == Approx(*in_use * 100));
    if (fs.f_files != 0) {
      auto inodes_total = second.Get("system.fs.inodes.total", fake1);
      auto inodes_used = second.Get("system.fs.inodes.used", fake1);
      auto inodes_free = second.Get("system.fs.inodes.free", fake1);
      auto inodes_in_use = second.Get("system.fs.inodes.in_use", fake1);
      REQUIRE(inodes_total.has_value());
      REQUIRE(inodes_used.has_value());
      REQUIRE(inodes_free.has_value());
      REQUIRE(inodes_in_use.has_value());
      CHECK(*inodes_total == static_cast<double>(fs.f_files));
      CHECK(*inodes_used + *inodes_free == *inodes_total);
      CHECK(*inodes_in_use == Approx(*inodes_used / *inodes_total));
    }
    // The mount point with an escaped space was decoded and queried.
    CHECK(second.Get("system.disk.total", {"device:/dev/mapper/fake2", "device_name:fake2"}).has_value());
    // Every reported device: the two real ones, each once (the bind mount of fake1 is not doubled).
    CHECK(second.All("system.disk.total").size() == 2);
  }
}

TEST_CASE("fixture host: unreadable or malformed files fail with the file's name", "[host_checks]") {
  FakeHost host;
  host.WriteSnapshot1();
  auto checks = MakeHostChecks(host.Options());
  RecordingSink sink;

  SECTION("missing file") {
    fs::remove(host.proc / "loadavg");
    const absl::Status status = FindCheck(checks, "load").Run(kNow1, sink);
    CHECK(absl::IsNotFound(status));
    CHECK(std::string(status.message()).find((host.proc / "loadavg").string()) != std::string::npos);
  }
  SECTION("garbage /proc/stat") {
    WriteFile(host.proc / "stat", "cpu  12 x 3 4\n");
    const absl::Status status = FindCheck(checks, "cpu").Run(kNow1, sink);
    CHECK(absl::IsInvalidArgument(status));
    CHECK(std::string(status.message()).find((host.proc / "stat").string()) != std::string::npos);
    CHECK(sink.samples.empty());
  }
  SECTION("file above the 1 MiB bound") {
    WriteFile(host.proc / "uptime", std::string(kMaxProcFileBytes + 1, '1'));
    const absl::Status status = FindCheck(checks, "uptime").Run(kNow1, sink);
    CHECK(absl::IsOutOfRange(status));
    CHECK(std::string(status.message()).find((host.proc / "uptime").string()) != std::string::npos);
  }
  SECTION("memory still reports meminfo when vmstat is unreadable") {
    fs::remove(host.proc / "vmstat");
    const absl::Status status = FindCheck(checks, "memory").Run(kNow1, sink);
    CHECK(absl::IsNotFound(status));
    CHECK(sink.Get("system.mem.total") == 8000.0);
  }
  SECTION("meminfo without MemTotal") {
    WriteFile(host.proc / "meminfo", "MemFree: 10 kB\n");
    CHECK(absl::IsInvalidArgument(FindCheck(checks, "memory").Run(kNow1, sink)));
  }
}

TEST_CASE("parsers accept the kernel's formats and reject garbage", "[host_checks]") {
  SECTION("mounts decode octal escapes and skip short lines") {
    auto table = ParseMounts("/dev/a /mnt/a\\040b\\134c ext4 rw 0 0\nshort line\n\n/dev/b /x xfs rw 0 0");
    REQUIRE(table.ok());
    REQUIRE(table->mounts.size() == 2);
    CHECK(table->mounts[0].mount_point == "/mnt/a b\\c");
    CHECK(table->mounts[1].fs_type == "xfs");
    CHECK(table->malformed_lines == 1);
    CHECK_FALSE(ParseMounts("x\ny\n").ok());
    // A trailing backslash or a non-octal escape is kept verbatim.
    auto odd = ParseMounts("/dev/a /m\\9x\\ ext4 rw 0 0\n");
    REQUIRE(odd.ok());
    CHECK(odd->mounts[0].mount_point == "/m\\9x\\");
  }
  SECTION("net/dev without a space after the colon") {
    auto table = ParseNetDev("eth0:1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n");
    REQUIRE(table.ok());
    REQUIRE(table->interfaces.size() == 1);
    CHECK(table->interfaces[0].rx_bytes == 1);
    CHECK(table->interfaces[0].tx_drops == 12);
    CHECK_FALSE(ParseNetDev("eth0: 1 2 3\n").ok());
  }
  SECTION("numbers") {
    CHECK_FALSE(ParseLoadavg("nan 1 1 1/1 1\n").ok());
    CHECK_FALSE(ParseLoadavg("1e9 1 1 1/1 1\n").ok());
    CHECK_FALSE(ParseUptime("").ok());
    CHECK_FALSE(ParseFileNr("1 2\n").ok());
    CHECK_FALSE(ParseFileNr("1 2 -3\n").ok());
    CHECK_FALSE(ParseProcStat("cpu 1 2 3\n").ok());  // fewer than user nice system idle
    CHECK_FALSE(ParseProcStat("intr 1\n").ok());
    CHECK(ParseSysfsInt("-1\n").value() == -1);
    CHECK_FALSE(ParseSysfsInt("fast\n").ok());
    // A kB value too large to scale to bytes is ignored rather than wrapped.
    auto mem = ParseMeminfo("MemTotal: 1000 kB\nMemFree: 99999999999999999 kB\n");
    CHECK_FALSE(mem.ok());
  }
  SECTION("proc/stat keeps at most kMaxCpus CPUs and counts the rest") {
    std::string text = "cpu 1 1 1 1\n";
    for (size_t i = 0; i < kMaxCpus + 3; ++i) text += "cpu" + std::to_string(i) + " 1 1 1 1\n";
    auto stat = ParseProcStat(text);
    REQUIRE(stat.ok());
    CHECK(stat->cpus.size() == kMaxCpus);
    CHECK(stat->dropped_entries == 3);
  }
}

TEST_CASE("real host: every check runs twice and reports sane core metrics", "[host_checks][real_host]") {
  HostCheckOptions options;
  options.hostname = "real-host";
  auto checks = MakeHostChecks(options);
  RecordingSink first;
  for (auto& check : checks) {
    INFO(check->name());
    const absl::Status status = check->Run(kNow1, first);
    INFO(std::string(status.message()));
    CHECK(status.ok());
  }
  // Long enough for a few hundred jiffies to elapse on any core count.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  RecordingSink second;
  for (auto& check : checks) {
    INFO(check->name());
    const absl::Status status = check->Run(kNow2, second);
    INFO(std::string(status.message()));
    CHECK(status.ok());
    CHECK(check->dropped_entries() == 0);
  }
  for (const RecordedSample& sample : second.samples) {
    INFO(sample.name);
    CHECK(std::isfinite(sample.value));
    CHECK(sample.timestamp == kNow2);
    CHECK(sample.host == "real-host");
  }

  const long online_cpus = sysconf(_SC_NPROCESSORS_ONLN);
  CHECK(second.Get("system.cpu.num_cores") == static_cast<double>(online_cpus));
  double cpu_sum = 0;
  for (const char* name : {"system.cpu.user", "system.cpu.system", "system.cpu.iowait", "system.cpu.idle",
                           "system.cpu.stolen"}) {
    INFO(name);
    auto value = second.Get(name);
    REQUIRE(value.has_value());
    CHECK(*value >= 0.0);
    CHECK(*value <= 100.0);
    cpu_sum += *value;
  }
  CHECK(cpu_sum == Approx(100.0).margin(0.01));
  REQUIRE(second.Get("system.cpu.context_switches").has_value());
  CHECK(*second.Get("system.cpu.context_switches") > 0);

  CHECK(second.Get("system.mem.total").value_or(0) > 0);
  CHECK(second.Get("system.mem.usable").value_or(-1) >= 0);
  CHECK(second.Get("system.mem.usable").value_or(0) <= *second.Get("system.mem.total"));
  CHECK(second.Get("system.mem.pct_usable").value_or(-1) >= 0);
  CHECK(second.Get("system.mem.pct_usable").value_or(2) <= 1);
  CHECK(second.Get("system.swap.pct_free").value_or(-1) >= 0);
  CHECK(second.Get("system.uptime").value_or(0) > 0);
  CHECK(second.Get("system.load.1").value_or(-1) >= 0);
  CHECK(second.Get("system.load.norm.1").value_or(-1) >= 0);
  CHECK(second.Get("system.fs.file_handles.in_use").value_or(-1) >= 0);
  CHECK(second.Get("system.fs.file_handles.in_use").value_or(2) <= 1);

  // At least the root file system is reported, each in_use a fraction.
  const auto disks = second.All("system.disk.in_use");
  CHECK_FALSE(disks.empty());
  for (const RecordedSample* disk : disks) {
    CHECK(disk->value >= 0.0);
    CHECK(disk->value <= 1.0);
  }
  // Loopback exists everywhere and is reported by default.
  auto lo_bytes = second.Get("system.net.bytes_rcvd", {"device:lo", "device_name:lo", "mtu:65536"});
  if (!lo_bytes) lo_bytes = second.Get("system.net.bytes_rcvd", {"device:lo", "device_name:lo"});
  REQUIRE(lo_bytes.has_value());
  CHECK(*lo_bytes >= 0);
  for (const RecordedSample* util : second.All("system.io.util")) {
    CHECK(util->value >= 0.0);
    CHECK(util->value <= 100.0);
  }
}

}  // namespace
}  // namespace dogwatch::checks
