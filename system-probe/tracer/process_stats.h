// Per-PID statistics the unprivileged process-agent cannot read for other users' processes: I/O
// counters (/proc/<pid>/io) and open file descriptors (/proc/<pid>/fd). system-probe keeps
// CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH for exactly this.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace dogwatch::sysprobe {

struct ProcessIo {
  int32_t pid = 0;
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
  uint64_t read_count = 0;   // syscr
  uint64_t write_count = 0;  // syscw
  uint32_t open_fds = 0;
};

// nullopt when the process is gone or unreadable. `proc_root` is "/proc" unless containerized.
std::optional<ProcessIo> ReadProcessIo(const std::string& proc_root, int32_t pid);

}  // namespace dogwatch::sysprobe
