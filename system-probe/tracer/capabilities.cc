#include "system-probe/tracer/capabilities.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace dogwatch::sysprobe {

namespace {

struct CapSets {
  uint64_t effective = 0, permitted = 0, inheritable = 0;
};

absl::Status Get(CapSets* sets) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &header, data) != 0) {
    return absl::InternalError(absl::StrCat("capget: ", std::strerror(errno)));
  }
  sets->effective = data[0].effective | static_cast<uint64_t>(data[1].effective) << 32;
  sets->permitted = data[0].permitted | static_cast<uint64_t>(data[1].permitted) << 32;
  sets->inheritable = data[0].inheritable | static_cast<uint64_t>(data[1].inheritable) << 32;
  return absl::OkStatus();
}

absl::Status Set(const CapSets& sets) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  data[0].effective = static_cast<uint32_t>(sets.effective);
  data[1].effective = static_cast<uint32_t>(sets.effective >> 32);
  data[0].permitted = static_cast<uint32_t>(sets.permitted);
  data[1].permitted = static_cast<uint32_t>(sets.permitted >> 32);
  data[0].inheritable = static_cast<uint32_t>(sets.inheritable);
  data[1].inheritable = static_cast<uint32_t>(sets.inheritable >> 32);
  if (syscall(SYS_capset, &header, data) != 0) {
    return absl::InternalError(absl::StrCat("capset: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

int LastCapability() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int last = 40;
  if (!(in >> last) || last < 0 || last > 63) last = 40;
  return last;
}

const char* Name(int cap) {
  static const char* const kNames[] = {"cap_chown",
                                       "cap_dac_override",
                                       "cap_dac_read_search",
                                       "cap_fowner",
                                       "cap_fsetid",
                                       "cap_kill",
                                       "cap_setgid",
                                       "cap_setuid",
                                       "cap_setpcap",
                                       "cap_linux_immutable",
                                       "cap_net_bind_service",
                                       "cap_net_broadcast",
                                       "cap_net_admin",
                                       "cap_net_raw",
                                       "cap_ipc_lock",
                                       "cap_ipc_owner",
                                       "cap_sys_module",
                                       "cap_sys_rawio",
                                       "cap_sys_chroot",
                                       "cap_sys_ptrace",
                                       "cap_sys_pacct",
                                       "cap_sys_admin",
                                       "cap_sys_boot",
                                       "cap_sys_nice",
                                       "cap_sys_resource",
                                       "cap_sys_time",
                                       "cap_sys_tty_config",
                                       "cap_mknod",
                                       "cap_lease",
                                       "cap_audit_write",
                                       "cap_audit_control",
                                       "cap_setfcap",
                                       "cap_mac_override",
                                       "cap_mac_admin",
                                       "cap_syslog",
                                       "cap_wake_alarm",
                                       "cap_block_suspend",
                                       "cap_audit_read",
                                       "cap_perfmon",
                                       "cap_bpf",
                                       "cap_checkpoint_restore"};
  return cap >= 0 && cap < static_cast<int>(sizeof(kNames) / sizeof(kNames[0])) ? kNames[cap] : nullptr;
}

}  // namespace

absl::Status KeepOnlyCapabilities(std::initializer_list<int> keep) {
  uint64_t mask = 0;
  for (int cap : keep) mask |= uint64_t{1} << cap;
  CapSets sets;
  if (auto status = Get(&sets); !status.ok()) return status;
  // The bounding set first: dropping from it needs CAP_SETPCAP, which goes next.
  if ((sets.effective & (uint64_t{1} << CAP_SETPCAP)) != 0) {
    for (int cap = 0; cap <= LastCapability(); ++cap) {
      if ((mask & (uint64_t{1} << cap)) == 0 && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1 &&
          prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
        return absl::InternalError(absl::StrCat("dropping ", Name(cap) ? Name(cap) : "?",
                                                " from the bounding set: ", std::strerror(errno)));
      }
    }
  }
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  sets.effective &= mask;
  sets.permitted &= mask;
  sets.inheritable = 0;
  return Set(sets);
}

absl::Status LowerEffective(int capability) {
  CapSets sets;
  if (auto status = Get(&sets); !status.ok()) return status;
  sets.effective &= ~(uint64_t{1} << capability);
  return Set(sets);
}

absl::Status RaiseEffective(int capability) {
  CapSets sets;
  if (auto status = Get(&sets); !status.ok()) return status;
  sets.effective |= uint64_t{1} << capability;
  return Set(sets);
}

uint64_t EffectiveCapabilities() {
  CapSets sets;
  return Get(&sets).ok() ? sets.effective : 0;
}

std::string CapabilityNames(uint64_t mask) {
  std::vector<std::string> names;
  for (int cap = 0; cap < 64; ++cap) {
    if ((mask & (uint64_t{1} << cap)) == 0) continue;
    names.push_back(Name(cap) != nullptr ? Name(cap) : absl::StrCat("cap_", cap));
  }
  return names.empty() ? "none" : absl::StrJoin(names, ",");
}

}  // namespace dogwatch::sysprobe
