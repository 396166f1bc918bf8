#pragma once
// Splitting one check run's processes and containers into intake messages, the way Datadog's
// process agent does (pkg/process/checks/chunking.go, process.go, container.go, process_rt.go):
//
// * Every message of one run shares a group id (random per run) and carries groupSize, the number
//   of messages in the run, so the backend can reassemble the run.
// * A message holds at most `max_per_message` items (processes, containers or stats) and at most
//   `max_message_bytes` of them. Out-of-range settings (<= 0 or above the hard limits of 10,000
//   items / 4,000,000 bytes) fall back to the defaults of 100 items / 1,000,000 bytes, as the
//   agent's ensureValidMaxBatchSize/Bytes do.
// * CollectorProc: processes outside any container are placed first, then each container's
//   processes in container order, each group starting at the last message so far (filling it
//   before opening new ones). Every message that receives processes of a container also carries
//   that Container, because the backend resolves container tags only from containers in the same
//   message; a container may thus appear in several messages. A container with no processes goes
//   into the last message. Processes whose containerId names no listed container are placed with
//   the host processes.
// * An item that cannot fit in a message of its own within `max_message_bytes` (with the shared
//   fields and, for a process, its container) is still sent, alone in its message, and counted
//   as oversized, as Datadog does for items heavier than the byte limit; one whose message would
//   exceed the 4,000,000 byte hard limit could never be accepted and is dropped (counted).
// * CollectorContainer / CollectorContainerRealTime: the items are spread evenly over
//   ceil(n / max_per_message) messages; CollectorRealTime: the process stats are chunked as above
//   and the container stats spread evenly over the same messages.
//
// Byte accounting is exact and stricter than Datadog's estimate: an item's weight is its encoded
// size inside the parent message, containers attached to a CollectorProc count toward its budget,
// and the fields shared by every message (host name, system info, group) are charged up front, so
// every message except an oversized one serializes to at most `max_message_bytes` before
// compression.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "datadog/process/agent.pb.h"

namespace dogwatch::process {

inline constexpr int kDefaultMaxPerMessage = 100;
inline constexpr int kMaxPerMessageLimit = 10000;
inline constexpr int64_t kDefaultMaxMessageBytes = 1000000;
inline constexpr int64_t kMaxMessageBytesLimit = 4000000;

// The settings the agent would use for configured values (defaults for out-of-range ones).
int EffectiveMaxPerMessage(int configured);
int64_t EffectiveMaxMessageBytes(int64_t configured);

struct ChunkLimits {
  int max_per_message = kDefaultMaxPerMessage;
  int64_t max_message_bytes = kDefaultMaxMessageBytes;
};

// What one run's split did, for the caller's telemetry.
struct ChunkStats {
  // Items placed into messages: processes and process-less containers (ChunkProcesses),
  // containers, or process and container stats.
  size_t items = 0;
  size_t oversized_items = 0;  // items too large for max_message_bytes, each sent alone
  size_t dropped_items = 0;    // items above kMaxMessageBytesLimit, not sent
};

// Fields copied into every message of a run.
struct BatchContext {
  std::string hostname;
  std::string network_id;
  datadog::process_agent::SystemInfo info;
  datadog::process_agent::ContainerHostType container_host_type = datadog::process_agent::notSpecified;
  int32_t group_id = 0;
};

// A random non-negative group id for a new run.
int32_t RandomGroupId();

template <typename Message>
struct Batch {
  std::vector<Message> messages;
  ChunkStats stats;
};

// Process check (type 12). `processes` carry their containerId; `containers` are this run's
// containers in the order they should be sent.
Batch<datadog::process_agent::CollectorProc> ChunkProcesses(
    std::vector<datadog::process_agent::Process> processes,
    const std::vector<datadog::process_agent::Container>& containers, const BatchContext& context,
    const ChunkLimits& limits = {});

// Container check (type 39).
Batch<datadog::process_agent::CollectorContainer> ChunkContainers(
    std::vector<datadog::process_agent::Container> containers, const BatchContext& context,
    const ChunkLimits& limits = {});

// Real-time process check (type 27). numCpus and totalMemory come from `context.info`.
Batch<datadog::process_agent::CollectorRealTime> ChunkProcessStats(
    std::vector<datadog::process_agent::ProcessStat> stats,
    std::vector<datadog::process_agent::ContainerStat> container_stats, const BatchContext& context,
    const ChunkLimits& limits = {});

// Real-time container check (type 40). numCpus and totalMemory come from `context.info`.
Batch<datadog::process_agent::CollectorContainerRealTime> ChunkContainerStats(
    std::vector<datadog::process_agent::ContainerStat> stats, const BatchContext& context,
    const ChunkLimits& limits = {});

}  // namespace dogwatch::process
