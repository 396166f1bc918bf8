#pragma once
// Internal: the host facts behind the v5 host metadata payload, read from /proc, /etc, /sys and the
// kernel, parsed by small functions the tests drive with fixture text.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace dogwatch::serializer::internal {

struct CpuFacts {
  std::string vendor_id;
  std::string model_name;
  std::string family;
  std::string model;
  std::string stepping;
  std::string mhz;  // as /proc/cpuinfo prints it
  std::optional<uint64_t> cache_size_kb;
  uint64_t logical_processors = 0;           // "processor" entries
  uint64_t physical_cores = 0;               // distinct (physical id, core id); 0 when not listed
  std::optional<uint64_t> cores_per_socket;  // "cpu cores" of the first processor
};
CpuFacts ParseCpuInfo(std::string_view cpuinfo);

struct MemoryFacts {
  std::optional<uint64_t> total_kb;
  std::optional<uint64_t> swap_total_kb;
};
MemoryFacts ParseMemInfo(std::string_view meminfo);

struct OsRelease {
  std::string id;          // ID, e.g. "debian"
  std::string version_id;  // VERSION_ID, e.g. "12"
  std::string pretty_name;
};
OsRelease ParseOsRelease(std::string_view os_release);

struct MountEntry {
  std::string device;
  std::string mount_point;
  std::string fs_type;
};
// Entries of /proc/mounts, with the kernel's octal escapes (\040 for a space) decoded; at most
// `max_entries`.
std::vector<MountEntry> ParseMounts(std::string_view mounts, size_t max_entries);

// The host's stable identifier as gopsutil's HostID reports it: DMI product UUID, else
// /etc/machine-id shaped as a UUID, else the boot id; lower case; empty when none is readable.
std::string HostUuid(const std::string& sys_root, const std::string& etc_root, const std::string& proc_root);

// The whole file, or an error when it cannot be read or is larger than `max_bytes`.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes);

// Go's GOARCH name for a uname machine string (x86_64 → amd64, aarch64 → arm64, ...).
std::string GoArch(std::string_view machine);

}  // namespace dogwatch::serializer::internal
