#pragma once
// The connections check (every process_config.intervals.connections, 30 s): this process-agent's
// deltas from system-probe's GetConnections, as CollectorConnections messages (split per
// max_conns_per_message) for /api/v1/connections, with each process's container, DNS stats
// attached to the querying connection, and the kernel/platform facts the backend shows.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "datadog/process/connections.pb.h"
#include "dogwatch/sysprobe.grpc.pb.h"
#include "process-agent/checks/checks.h"

namespace dogwatch::process {

// Datadog's process-agent uses this fixed client id with system-probe.
inline constexpr char kConnectionsClientId[] = "process-agent-unique-id";

struct ConnectionsBuildOptions {
  std::string hostname;
  size_t max_conns_per_message = 600;
  HostFacts host;
  datadog::process_agent::ContainerHostType container_host_type = datadog::process_agent::notSpecified;
  // The container of a PID ("" for none).
  std::function<std::string(int32_t pid)> container_for_pid;
};

struct ConnectionsBuildStats {
  size_t connections = 0;
  size_t dns_attached = 0;
  size_t dns_unattached = 0;  // answers whose querying connection was not in the reply
};

// Pure conversion of one system-probe reply into intake messages (group ids set by the caller).
std::vector<datadog::process_agent::CollectorConnections> BuildCollectorConnections(
    const dogwatch::sysprobe::GetConnectionsResponse& reply, const ConnectionsBuildOptions& options,
    ConnectionsBuildStats* stats);

struct ConnectionsCheckOptions {
  std::string sysprobe_socket;
  std::string hostname;
  std::string agent_version;
  int64_t agent_start_time_s = 0;
  int32_t agent_pid = 0;
  std::string proc_root = "/proc";
  size_t max_conns_per_message = 600;
  datadog::process_agent::ContainerHostType container_host_type = datadog::process_agent::notSpecified;
  int32_t group_id_seed = 0;
};

struct ConnectionsRun {
  std::vector<datadog::process_agent::CollectorConnections> messages;
  std::vector<EncodedPayload> payloads;  // one per message, same order
  ConnectionsBuildStats stats;
};

class ConnectionsCheck {
 public:
  explicit ConnectionsCheck(ConnectionsCheckOptions options);
  // One GetConnections and its messages. Unavailable when system-probe does not answer.
  absl::StatusOr<ConnectionsRun> Run();
  void RecordSubmit(const absl::Status& status);
  // "connections_runs", "connections_items", "connections_payloads", "connections_submit_errors",
  // "connections_sysprobe_errors", "connections_dns_unattached", plus system-probe's own counters
  // prefixed "sysprobe_".
  std::map<std::string, int64_t> Counters() const;

 private:
  ConnectionsCheckOptions options_;
  HostFacts host_;
  std::unique_ptr<dogwatch::sysprobe::SystemProbe::Stub> stub_;
  int32_t next_group_id_ = 0;
  mutable std::mutex mu_;
  std::map<std::string, int64_t> counters_;
};

}  // namespace dogwatch::process
