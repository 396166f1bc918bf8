// The Agent v5 host metadata payload (comp/metadata/host): agent identity, systemStats, meta,
// host-tags and the gohai JSON string with cpu, memory, filesystem, network and platform facts.

#include "agent-core/serializer/host_metadata.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include "agent-core/serializer/json_util.h"
#include "agent-core/serializer/payload_builder.h"
#include "agent-core/serializer/serializer.h"
#include "common/strings/strings.h"

namespace dogwatch::serializer {
namespace internal {
namespace {

// /proc/cpuinfo on a large host is a few hundred KiB; nothing we read legitimately gets near this.
constexpr size_t kMaxProcFileBytes = 8 * 1024 * 1024;
constexpr size_t kMaxMounts = 1024;
constexpr size_t kMaxInterfaces = 256;
constexpr size_t kMaxAddressesPerInterface = 64;

// Filesystems whose statvfs can block on a remote server, an automounter or a dead FUSE daemon.
// The Agent's gohai bounds these with a timeout; we do not touch them at all.
bool MayBlockOnStatvfs(std::string_view fs_type) {
  static const auto* types = new std::set<std::string, std::less<>>{
      "nfs", "nfs4", "cifs",   "smb3",  "smbfs",  "sshfs", "ceph", "glusterfs",
      "9p",  "afs",  "autofs", "davfs", "lustre", "gfs2",  "fuse", "fuseblk"};
  return types->contains(fs_type) || fs_type.starts_with("fuse.");
}

std::optional<uint64_t> ParseUint(std::string_view text) {
  text = strings::Strip(text);
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  return value;
}

// "key<blanks>: value" lines (cpuinfo, meminfo).
bool SplitKeyValue(std::string_view line, std::string_view* key, std::string_view* value) {
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return false;
  *key = strings::Strip(line.substr(0, colon));
  *value = strings::Strip(line.substr(colon + 1));
  return true;
}

template <typename Fn>
void ForEachLine(std::string_view text, Fn&& fn) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    fn(text.substr(start, end - start));
    start = end + 1;
  }
}

std::string DecodeMountField(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size()) {
      const std::string_view octal = field.substr(i + 1, 3);
      if (octal.size() == 3 &&
          std::all_of(octal.begin(), octal.end(), [](char c) { return c >= '0' && c <= '7'; })) {
        out.push_back(
            static_cast<char>(((octal[0] - '0') << 6) | ((octal[1] - '0') << 3) | (octal[2] - '0')));
        i += 3;
        continue;
      }
    }
    out.push_back(field[i]);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(strings::Cat("cannot open ", path, ": ", std::strerror(errno)));
  std::string data;
  char buffer[16384];
  while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
    data.append(buffer, static_cast<size_t>(in.gcount()));
    if (data.size() > max_bytes) {
      return absl::ResourceExhaustedError(strings::Cat(path, " is larger than ", max_bytes, " bytes"));
    }
  }
  if (in.bad()) return absl::InternalError(strings::Cat("cannot read ", path));
  return data;
}

CpuFacts ParseCpuInfo(std::string_view cpuinfo) {
  CpuFacts facts;
  std::set<std::pair<std::string, std::string>> cores;
  std::string physical_id;
  bool first = true;  // still in the first processor's block
  ForEachLine(cpuinfo, [&](std::string_view line) {
    std::string_view key, value;
    if (!SplitKeyValue(line, &key, &value)) return;
    if (key == "processor") {
      if (facts.logical_processors > 0) first = false;
      ++facts.logical_processors;
      physical_id.clear();
      return;
    }
    if (key == "physical id") physical_id = std::string(value);
    if (key == "core id") cores.emplace(physical_id, std::string(value));
    if (!first) return;
    if (key == "vendor_id" || key == "CPU implementer") {
      if (facts.vendor_id.empty()) facts.vendor_id = std::string(value);
    } else if (key == "model name") {
      facts.model_name = std::string(value);
    } else if (key == "cpu family") {
      facts.family = std::string(value);
    } else if (key == "model") {
      facts.model = std::string(value);
    } else if (key == "stepping") {
      facts.stepping = std::string(value);
    } else if (key == "cpu MHz") {
      facts.mhz = std::string(value);
    } else if (key == "cache size") {
      // "8192 KB"
      const size_t space = value.find(' ');
      facts.cache_size_kb = ParseUint(value.substr(0, space));
    } else if (key == "cpu cores") {
      facts.cores_per_socket = ParseUint(value);
    }
  });
  facts.physical_cores = cores.size();
  return facts;
}

MemoryFacts ParseMemInfo(std::string_view meminfo) {
  MemoryFacts facts;
  ForEachLine(meminfo, [&](std::string_view line) {
    std::string_view key, value;
    if (!SplitKeyValue(line, &key, &value)) return;
    // "1921988 kB"
    const std::string_view number = value.substr(0, value.find(' '));
    if (key == "MemTotal") facts.total_kb = ParseUint(number);
    if (key == "SwapTotal") facts.swap_total_kb = ParseUint(number);
  });
  return facts;
}

OsRelease ParseOsRelease(std::string_view os_release) {
  OsRelease release;
  ForEachLine(os_release, [&](std::string_view line) {
    line = strings::Strip(line);
    const size_t equals = line.find('=');
    if (line.empty() || line.front() == '#' || equals == std::string_view::npos) return;
    const std::string_view key = line.substr(0, equals);
    std::string_view value = line.substr(equals + 1);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    if (key == "ID") release.id = std::string(value);
    if (key == "VERSION_ID") release.version_id = std::string(value);
    if (key == "PRETTY_NAME") release.pretty_name = std::string(value);
  });
  return release;
}

std::vector<MountEntry> ParseMounts(std::string_view mounts, size_t max_entries) {
  std::vector<MountEntry> entries;
  ForEachLine(mounts, [&](std::string_view line) {
    if (entries.size() >= max_entries) return;
    const std::vector<std::string_view> fields = strings::SplitAny(line, " \t");
    if (fields.size() < 3) return;
    entries.push_back(
        MountEntry{DecodeMountField(fields[0]), DecodeMountField(fields[1]), std::string(fields[2])});
  });
  return entries;
}

std::string HostUuid(const std::string& sys_root, const std::string& etc_root, const std::string& proc_root) {
  if (auto product = ReadSmallFile(sys_root + "/class/dmi/id/product_uuid", 4096); product.ok()) {
    std::string uuid = strings::Lower(strings::Strip(*product));
    if (!uuid.empty()) return uuid;
  }
  if (auto machine_id = ReadSmallFile(etc_root + "/machine-id", 4096); machine_id.ok()) {
    const std::string id = strings::Lower(strings::Strip(*machine_id));
    if (id.size() == 32) {
      return strings::Cat(id.substr(0, 8), "-", id.substr(8, 4), "-", id.substr(12, 4), "-", id.substr(16, 4),
                          "-", id.substr(20));
    }
    if (!id.empty()) return id;
  }
  if (auto boot_id = ReadSmallFile(proc_root + "/sys/kernel/random/boot_id", 4096); boot_id.ok()) {
    return strings::Lower(strings::Strip(*boot_id));
  }
  return "";
}

std::string GoArch(std::string_view machine) {
  if (machine == "x86_64") return "amd64";
  if (machine == "aarch64" || machine == "arm64") return "arm64";
  if (machine == "i386" || machine == "i486" || machine == "i586" || machine == "i686") return "386";
  if (machine.starts_with("armv")) return "arm";
  if (machine == "ppc64le") return "ppc64le";
  if (machine == "s390x") return "s390x";
  return std::string(machine);
}

}  // namespace internal

namespace {

using internal::JsonWriter;
using internal::WriteJsonKey;
using internal::WriteJsonString;

struct InterfaceFacts {
  std::string name;
  std::vector<std::string> ipv4;
  std::vector<std::string> ipv6;
  std::string ipv4_network;
  std::string ipv6_network;
  std::string mac;
};

std::string FormatAddress(int family, const void* address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(family, address, text, sizeof(text)) == nullptr) return "";
  return text;
}

// "192.168.1.0/24" from an address and its netmask.
std::string NetworkCidr(int family, const sockaddr* address, const sockaddr* netmask) {
  if (address == nullptr || netmask == nullptr) return "";
  unsigned char bytes[16] = {};
  unsigned char mask[16] = {};
  size_t length = 0;
  if (family == AF_INET) {
    length = 4;
    std::memcpy(bytes, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, 4);
    std::memcpy(mask, &reinterpret_cast<const sockaddr_in*>(netmask)->sin_addr, 4);
  } else {
    length = 16;
    std::memcpy(bytes, &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, 16);
    std::memcpy(mask, &reinterpret_cast<const sockaddr_in6*>(netmask)->sin6_addr, 16);
  }
  int prefix = 0;
  for (size_t i = 0; i < length; ++i) {
    bytes[i] &= mask[i];
    prefix += __builtin_popcount(mask[i]);
  }
  return strings::Cat(FormatAddress(family, bytes), "/", prefix);
}

std::vector<InterfaceFacts> CollectInterfaces() {
  std::vector<InterfaceFacts> interfaces;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return interfaces;
  std::unique_ptr<ifaddrs, decltype(&freeifaddrs)> owner(list, &freeifaddrs);
  std::map<std::string, size_t> index;
  auto facts_for = [&](const char* name) -> InterfaceFacts* {
    auto it = index.find(name);
    if (it != index.end()) return &interfaces[it->second];
    if (interfaces.size() >= internal::kMaxInterfaces) return nullptr;
    index.emplace(name, interfaces.size());
    interfaces.push_back(InterfaceFacts{name, {}, {}, "", "", ""});
    return &interfaces.back();
  };
  for (ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    // As gohai: interfaces that are up and not loopback.
    if (entry->ifa_addr == nullptr || (entry->ifa_flags & IFF_UP) == 0 ||
        (entry->ifa_flags & IFF_LOOPBACK) != 0) {
      continue;
    }
    const int family = entry->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6 && family != AF_PACKET) continue;
    InterfaceFacts* facts = facts_for(entry->ifa_name);
    if (facts == nullptr) continue;
    if (family == AF_PACKET) {
      const auto* link = reinterpret_cast<const sockaddr_ll*>(entry->ifa_addr);
      if (link->sll_halen == 6) {
        char mac[18];
        std::snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", link->sll_addr[0], link->sll_addr[1],
                      link->sll_addr[2], link->sll_addr[3], link->sll_addr[4], link->sll_addr[5]);
        facts->mac = mac;
      }
      continue;
    }
    if (facts->ipv4.size() + facts->ipv6.size() >= internal::kMaxAddressesPerInterface) continue;
    if (family == AF_INET) {
      facts->ipv4.push_back(
          FormatAddress(AF_INET, &reinterpret_cast<const sockaddr_in*>(entry->ifa_addr)->sin_addr));
      facts->ipv4_network = NetworkCidr(AF_INET, entry->ifa_addr, entry->ifa_netmask);
    } else {
      facts->ipv6.push_back(
          FormatAddress(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(entry->ifa_addr)->sin6_addr));
      facts->ipv6_network = NetworkCidr(AF_INET6, entry->ifa_addr, entry->ifa_netmask);
    }
  }
  // An up interface with only a link-layer address (no IP) is not interesting, as in gohai.
  std::erase_if(interfaces, [](const InterfaceFacts& f) { return f.ipv4.empty() && f.ipv6.empty(); });
  return interfaces;
}

void WriteStringArray(JsonWriter& w, const std::vector<std::string>& values) {
  w.StartArray();
  for (const std::string& value : values) WriteJsonString(w, value);
  w.EndArray();
}

void WriteKeyString(JsonWriter& w, std::string_view key, std::string_view value) {
  WriteJsonKey(w, key);
  WriteJsonString(w, value);
}

struct Uname {
  std::string sysname, nodename, release, version, machine;
};

Uname ReadUname() {
  utsname raw{};
  if (uname(&raw) != 0) return Uname{};
  return Uname{raw.sysname, raw.nodename, raw.release, raw.version, raw.machine};
}

std::string SocketHostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "";
  return name;
}

std::string LocalTimezoneName() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  if (localtime_r(&now, &local) == nullptr || local.tm_zone == nullptr) return "";
  return local.tm_zone;
}

std::string BuildGohaiJson(const HostMetadataInputs& inputs, const internal::CpuFacts& cpu,
                           const internal::MemoryFacts& memory, const Uname& uts) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();

  // gohai reports every cpu and memory value as a string, and leaves out what it could not collect.
  WriteJsonKey(w, "cpu");
  w.StartObject();
  if (cpu.logical_processors > 0) {
    const uint64_t cores = cpu.physical_cores > 0 ? cpu.physical_cores : cpu.logical_processors;
    WriteKeyString(w, "cpu_cores", std::to_string(cores));
    WriteKeyString(w, "cpu_logical_processors", std::to_string(cpu.logical_processors));
  }
  if (!cpu.family.empty()) WriteKeyString(w, "family", cpu.family);
  if (!cpu.mhz.empty()) WriteKeyString(w, "mhz", cpu.mhz);
  if (!cpu.model.empty()) WriteKeyString(w, "model", cpu.model);
  if (!cpu.model_name.empty()) WriteKeyString(w, "model_name", cpu.model_name);
  if (!cpu.stepping.empty()) WriteKeyString(w, "stepping", cpu.stepping);
  if (!cpu.vendor_id.empty()) WriteKeyString(w, "vendor_id", cpu.vendor_id);
  if (cpu.cache_size_kb) WriteKeyString(w, "cache_size", strings::Cat(*cpu.cache_size_kb, " KB"));
  w.EndObject();

  WriteJsonKey(w, "filesystem");
  w.StartArray();
  if (inputs.collect_filesystems) {
    if (auto mounts = internal::ReadSmallFile(inputs.proc_root + "/mounts", internal::kMaxProcFileBytes);
        mounts.ok()) {
      for (const internal::MountEntry& entry : internal::ParseMounts(*mounts, internal::kMaxMounts)) {
        if (internal::MayBlockOnStatvfs(entry.fs_type)) continue;
        struct statvfs stats {};
        if (statvfs(entry.mount_point.c_str(), &stats) != 0 || stats.f_blocks == 0) continue;
        const uint64_t kb = static_cast<uint64_t>(stats.f_blocks) * stats.f_frsize / 1024;
        w.StartObject();
        WriteKeyString(w, "kb_size", std::to_string(kb));
        WriteKeyString(w, "mounted_on", entry.mount_point);
        WriteKeyString(w, "name", entry.device);
        w.EndObject();
      }
    }
  }
  w.EndArray();

  WriteJsonKey(w, "memory");
  w.StartObject();
  if (memory.total_kb) WriteKeyString(w, "total", std::to_string(*memory.total_kb * 1024));
  if (memory.swap_total_kb) WriteKeyString(w, "swap_total", strings::Cat(*memory.swap_total_kb, "kB"));
  w.EndObject();

  WriteJsonKey(w, "network");
  if (inputs.collect_network) {
    const std::vector<InterfaceFacts> interfaces = CollectInterfaces();
    std::string ipaddress, ipaddressv6, macaddress;
    for (const InterfaceFacts& facts : interfaces) {
      if (ipaddress.empty() && !facts.ipv4.empty()) {
        ipaddress = facts.ipv4.front();
        macaddress = facts.mac;
      }
      if (ipaddressv6.empty() && !facts.ipv6.empty()) ipaddressv6 = facts.ipv6.front();
    }
    w.StartObject();
    WriteJsonKey(w, "interfaces");
    w.StartArray();
    for (const InterfaceFacts& facts : interfaces) {
      w.StartObject();
      WriteKeyString(w, "name", facts.name);
      WriteJsonKey(w, "ipv4");
      WriteStringArray(w, facts.ipv4);
      WriteJsonKey(w, "ipv6");
      WriteStringArray(w, facts.ipv6);
      if (!facts.ipv4_network.empty()) WriteKeyString(w, "ipv4-network", facts.ipv4_network);
      if (!facts.ipv6_network.empty()) WriteKeyString(w, "ipv6-network", facts.ipv6_network);
      if (!facts.mac.empty()) WriteKeyString(w, "macaddress", facts.mac);
      w.EndObject();
    }
    w.EndArray();
    WriteKeyString(w, "ipaddress", ipaddress);
    if (!ipaddressv6.empty()) WriteKeyString(w, "ipaddressv6", ipaddressv6);
    WriteKeyString(w, "macaddress", macaddress);
    w.EndObject();
  } else {
    w.Null();
  }

  WriteJsonKey(w, "platform");
  w.StartObject();
  WriteKeyString(w, "GOOARCH", internal::GoArch(uts.machine));
  WriteKeyString(w, "GOOS", "linux");
  WriteKeyString(w, "hardware_platform", uts.machine);
  WriteKeyString(w, "hostname", uts.nodename);
  WriteKeyString(w, "kernel_name", uts.sysname);
  WriteKeyString(w, "kernel_release", uts.release);
  WriteKeyString(w, "kernel_version", uts.version);
  WriteKeyString(w, "machine", uts.machine);
  WriteKeyString(w, "os", "GNU/Linux");
  WriteKeyString(w, "processor", uts.machine);
  w.EndObject();

  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace

absl::StatusOr<std::string> HostMetadataJson(const HostMetadataInputs& inputs) {
  if (inputs.hostname.empty()) return absl::InvalidArgumentError("host metadata needs the agent's hostname");

  internal::CpuFacts cpu;
  if (auto text = internal::ReadSmallFile(inputs.proc_root + "/cpuinfo", internal::kMaxProcFileBytes);
      text.ok()) {
    cpu = internal::ParseCpuInfo(*text);
  }
  internal::MemoryFacts memory;
  if (auto text = internal::ReadSmallFile(inputs.proc_root + "/meminfo", internal::kMaxProcFileBytes);
      text.ok()) {
    memory = internal::ParseMemInfo(*text);
  }
  internal::OsRelease release;
  if (auto text = internal::ReadSmallFile(inputs.etc_root + "/os-release", 65536); text.ok()) {
    release = internal::ParseOsRelease(*text);
  }
  std::string platform_version = release.version_id;
  if (release.id == "debian") {
    // gopsutil reports Debian's point release from /etc/debian_version ("12.5", not "12").
    if (auto text = internal::ReadSmallFile(inputs.etc_root + "/debian_version", 4096); text.ok()) {
      const std::string_view version = strings::Strip(*text);
      if (!version.empty()) platform_version = std::string(version);
    }
  }
  const Uname uts = ReadUname();
  const std::string socket_hostname = SocketHostname();
  // systemStats.cpuCores is gopsutil's first-CPU "cpu cores" (cores per socket); processors that do
  // not list it (ARM) report their logical count.
  uint64_t cpu_cores = cpu.cores_per_socket.value_or(cpu.logical_processors);
  if (cpu_cores == 0) cpu_cores = static_cast<uint64_t>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));

  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  WriteKeyString(w, "agentVersion", inputs.agent_version);
  WriteKeyString(w, "uuid", internal::HostUuid(inputs.sys_root, inputs.etc_root, inputs.proc_root));
  WriteKeyString(w, "internalHostname", inputs.hostname);
  WriteKeyString(w, "os", "linux");
  WriteKeyString(w, "agent-flavor", inputs.agent_flavor);
  // No embedded Python: the Agent reports "n/a" (python and pythonV) when it has none loaded.
  WriteKeyString(w, "python", "n/a");

  WriteJsonKey(w, "systemStats");
  w.StartObject();
  WriteJsonKey(w, "cpuCores");
  w.Uint64(cpu_cores);
  WriteKeyString(w, "machine", internal::GoArch(uts.machine));
  WriteKeyString(w, "platform", "linux");
  WriteKeyString(w, "pythonV", "n/a");
  WriteKeyString(w, "processor", cpu.model_name);
  // Agent v5's platform.*_ver() triples; on Linux only nixV is filled: [distribution, version, ""].
  WriteJsonKey(w, "macV");
  WriteStringArray(w, {"", "", ""});
  WriteJsonKey(w, "nixV");
  WriteStringArray(w, {release.id, platform_version, ""});
  WriteJsonKey(w, "fbsdV");
  WriteStringArray(w, {"", "", ""});
  WriteJsonKey(w, "winV");
  WriteStringArray(w, {"", "", ""});
  w.EndObject();

  WriteJsonKey(w, "meta");
  w.StartObject();
  WriteKeyString(w, "socket-hostname", socket_hostname);
  WriteJsonKey(w, "timezones");
  WriteStringArray(w, {LocalTimezoneName()});
  WriteKeyString(w, "socket-fqdn", inputs.socket_fqdn.empty() ? socket_hostname : inputs.socket_fqdn);
  WriteKeyString(w, "ec2-hostname", "");
  WriteKeyString(w, "hostname", inputs.hostname);
  WriteJsonKey(w, "host_aliases");
  WriteStringArray(w, inputs.host_aliases);
  WriteKeyString(w, "instance-id", "");
  WriteKeyString(w, "hostname-resolution-version", "1.0");
  w.EndObject();

  WriteJsonKey(w, "host-tags");
  w.StartObject();
  WriteJsonKey(w, "system");
  WriteStringArray(w, inputs.host_tags);
  w.EndObject();

  // No cloud provider network id to report.
  WriteJsonKey(w, "network");
  w.Null();

  WriteJsonKey(w, "logs");
  w.StartObject();
  WriteKeyString(w, "transport", inputs.logs_enabled ? inputs.logs_transport : "");
  WriteJsonKey(w, "auto_multi_line_detection_enabled");
  w.Bool(false);
  w.EndObject();

  WriteJsonKey(w, "install-method");
  w.StartObject();
  WriteJsonKey(w, "tool");
  if (inputs.install_tool.empty()) {
    w.Null();
  } else {
    WriteJsonString(w, inputs.install_tool);
  }
  WriteKeyString(w, "tool_version", inputs.install_tool.empty() ? "undefined" : inputs.install_tool_version);
  WriteJsonKey(w, "installer_version");
  if (inputs.install_tool.empty()) {
    w.Null();
  } else {
    WriteJsonString(w, inputs.installer_version);
  }
  w.EndObject();

  WriteJsonKey(w, "proxy-info");
  w.StartObject();
  WriteJsonKey(w, "no-proxy-nonexact-match");
  w.Bool(false);
  WriteJsonKey(w, "proxy-behavior-changed");
  w.Bool(false);
  WriteJsonKey(w, "no-proxy-nonexact-match-explicitly-set");
  w.Bool(false);
  w.EndObject();

  WriteJsonKey(w, "otlp");
  w.StartObject();
  WriteJsonKey(w, "enabled");
  w.Bool(false);
  w.EndObject();

  // The Agent embeds gohai as a JSON document inside a JSON string (the Agent v5 format).
  WriteKeyString(w, "gohai", BuildGohaiJson(inputs, cpu, memory, uts));
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

absl::StatusOr<Payload> BuildHostMetadata(const HostMetadataInputs& inputs,
                                          const SerializerOptions& options) {
  absl::StatusOr<std::string> json = HostMetadataJson(inputs);
  if (!json.ok()) return json.status();
  if (json->size() > options.max_uncompressed_payload_size) {
    return absl::ResourceExhaustedError(strings::Cat("host metadata is ", json->size(), " bytes, over the ",
                                                     options.max_uncompressed_payload_size, " byte limit"));
  }
  absl::StatusOr<std::string> body = compression::Compress(
      options.codec, *json, internal::EffectiveLevel(options.codec, options.compression_level));
  if (!body.ok()) return body.status();
  if (body->size() > options.max_payload_size) {
    return absl::ResourceExhaustedError(strings::Cat("compressed host metadata is ", body->size(),
                                                     " bytes, over the ", options.max_payload_size,
                                                     " byte limit"));
  }
  Payload payload;
  payload.path = kHostMetadataPath;
  payload.headers = internal::PayloadHeaders(kContentTypeJson, options.codec);
  payload.body = std::move(*body);
  payload.items = 1;
  return payload;
}

}  // namespace dogwatch::serializer
