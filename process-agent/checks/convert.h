#pragma once
// Pure conversions from what the collectors read (process::Snapshot, cgroup stats, runtime
// metadata) to the intake's protobuf messages, with the field meanings of Datadog's process agent
// (pkg/process/checks/process.go, container.go, process_rt.go, container_rt.go).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/container/cgroup.h"
#include "common/container/runtime.h"
#include "datadog/process/agent.pb.h"
#include "process-agent/procfs/procfs.h"

namespace dogwatch::process {

// The single-letter state of /proc/<pid>/stat as the enum's letter; letters the enum lacks
// (I idle, t tracing stop, P parked, ...) are U, as Datadog's ProcessState_value lookup gives.
datadog::process_agent::ProcessState ProcessStateFromCode(char code);

// Docker's status words ("running", "exited", ...); anything else is `unknown`.
datadog::process_agent::ContainerState ContainerStateFromRuntime(std::string_view state);
// "healthy", "unhealthy", "starting"; "" or anything else is unknownHealth.
datadog::process_agent::ContainerHealth ContainerHealthFromRuntime(std::string_view health);

// The runtime a container cgroup path belongs to: "podman" (libpod-), "docker", "containerd",
// "cri-o"; "" when the path says nothing.
std::string RuntimeFromCgroupPath(std::string_view relative_path);

// One process of a snapshot, as the process check sends it. `snapshot` gives the clock ticks.
datadog::process_agent::Process ToProcess(const ProcessInfo& info, const Snapshot& snapshot);
// The real-time subset.
datadog::process_agent::ProcessStat ToProcessStat(const ProcessInfo& info, const Snapshot& snapshot);

// One container as the checks see it: cgroup statistics with rates, the runtime's metadata when the
// runtime knows it, and its tags (high cardinality).
struct ContainerView {
  container::ContainerStats stats;
  std::optional<container::ContainerRates> rates;  // nullopt on the first collection that sees it
  std::optional<container::ContainerMeta> meta;
  std::vector<std::string> tags;
};

// cpuLimit is a percentage of one core (Datadog's ContainerCPUStats.Limit: 50 for --cpus 0.5,
// 100 * num_cpus without a limit); memoryLimit 0 without a limit; created/started Unix seconds;
// CPU percentages relative to one core; cpuUsageNs the CPU nanoseconds used per second.
datadog::process_agent::Container ToContainer(const ContainerView& view, int32_t num_cpus);
datadog::process_agent::ContainerStat ToContainerStat(const ContainerView& view, int32_t num_cpus);

}  // namespace dogwatch::process
