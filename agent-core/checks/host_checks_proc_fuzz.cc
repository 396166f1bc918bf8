// Fuzzes every /proc and /sys parser of the host checks with the same bytes. Beyond "no crash",
// checks the bounds callers rely on: tables never exceed their caps and parsed values are usable.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "agent-core/checks/proc_parsers.h"

using namespace dogwatch::checks;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto stat = ParseProcStat(text); stat.ok()) {
    if (stat->cpus.size() > kMaxCpus) abort();
    for (const PerCpuTimes& cpu : stat->cpus) {
      if (cpu.name.size() <= 3) abort();
    }
  }
  if (auto mem = ParseMeminfo(text); mem.ok()) {
    if (mem->total == 0) abort();
  }
  (void)ParseVmstat(text);
  if (auto load = ParseLoadavg(text); load.ok()) {
    if (!std::isfinite(load->one) || !std::isfinite(load->five) || !std::isfinite(load->fifteen)) abort();
    if (load->one < 0 || load->five < 0 || load->fifteen < 0) abort();
  }
  if (auto uptime = ParseUptime(text); uptime.ok()) {
    if (!std::isfinite(*uptime) || *uptime < 0) abort();
  }
  if (auto disks = ParseDiskstats(text); disks.ok()) {
    if (disks->disks.size() > kMaxDevices) abort();
  }
  if (auto net = ParseNetDev(text); net.ok()) {
    if (net->interfaces.size() > kMaxDevices) abort();
    for (const NetDevCounters& interface : net->interfaces) {
      if (interface.name.empty() || interface.name.find(':') != std::string::npos) abort();
    }
  }
  if (auto mounts = ParseMounts(text); mounts.ok()) {
    if (mounts->mounts.size() > kMaxMounts) abort();
    for (const MountEntry& mount : mounts->mounts) {
      // Decoding only ever shortens a field.
      if (mount.device.size() > size || mount.mount_point.size() > size) abort();
    }
  }
  (void)ParseFileNr(text);
  (void)ParseSysfsInt(text);
  return 0;
}
