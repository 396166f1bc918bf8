#pragma once
// system-probe's GetProcessStats as the checks' privileged source: io counters and open fds of
// the processes /proc does not let the process-agent's user read. system-probe is optional: while
// its socket is absent no connection is attempted and the answer says so (the checks then report
// those processes as unreadable and say which source they used in status).

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "process-agent/checks/checks.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace dogwatch::process {

class SysprobeStatsClient {
 public:
  // `socket_path`: system_probe_config.sysprobe_socket.
  SysprobeStatsClient(std::string socket_path, absl::Duration timeout);
  ~SysprobeStatsClient();

  // Unavailable without asking when the socket does not exist; otherwise the RPC's answer (at
  // most the pids asked, at most `pids.size()` entries kept).
  absl::StatusOr<std::vector<PrivilegedStat>> Get(const std::vector<int32_t>& pids);

  // "system-probe (<socket>)", for status.
  std::string Name() const;

 private:
  const std::string socket_path_;
  const absl::Duration timeout_;
  std::mutex mu_;
  std::shared_ptr<grpc::Channel> channel_;  // created on first use, kept (gRPC reconnects)
};

}  // namespace dogwatch::process
