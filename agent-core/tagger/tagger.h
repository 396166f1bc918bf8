#pragma once
// The core's tagger: container id (or a local PID, or a cgroup inode) → the container's tags, at a
// cardinality, as Datadog's tagger answers them (container_name, container_id, image_name,
// image_tag, short_image, docker_image, labels configured as tags, kube_* from pod labels).
//
// Fed by the container runtime's API (Docker-compatible: docker or podman) through
// container::ContainerMetaStore, which lists once and then follows the runtime's event stream:
// lookups never call the runtime, so a burst of DogStatsD packets or traces from a new container
// costs no API storm. Users: DogStatsD origin detection (in process) and the sub-agents through
// the TaggerLookup RPC (the trace-agent's `_dd.tags.container`, the process-agent's containers).

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "agent-core/dogstatsd/server.h"
#include "common/config/config.h"
#include "common/container/container_id.h"
#include "common/container/runtime.h"
#include "dogwatch/core.pb.h"

namespace dogwatch::tagger {

struct TaggerOptions {
  bool enabled = true;
  std::string runtime_socket;  // "" = none found: the tagger answers with no tags
  std::map<std::string, std::string> labels_as_tags;
  std::string proc_root = "/proc";
  std::string cgroup_root = "/sys/fs/cgroup";
  size_t max_containers = 4096;
};

// container_runtime_socket (or DOCKER_HOST's unix:// form); when unset, the first of
// /var/run/docker.sock and /run/podman/podman.sock that exists.
TaggerOptions TaggerOptionsFromConfig(const config::Config& config);

// "low" | "orchestrator" | "high" (Datadog's names); anything else is low.
container::TagCardinality ParseCardinality(std::string_view text);

class Tagger final : public dogstatsd::OriginTagger {
 public:
  explicit Tagger(TaggerOptions options);
  ~Tagger() override;

  // Starts following the runtime. A missing or unreachable runtime is not an error: the store
  // keeps retrying with backoff, and status says why there are no container tags.
  void Start();
  void Stop();

  struct Answer {
    std::string container_id;  // "" when the origin is not in a container
    std::vector<std::string> tags;
  };
  Answer ForContainer(std::string_view container_id, container::TagCardinality cardinality) const;
  Answer ForPid(pid_t pid, container::TagCardinality cardinality) const;
  Answer ForCgroupInode(uint64_t inode, container::TagCardinality cardinality) const;
  // The TaggerLookup RPC: the first of container_id, pid, cgroup_inode that is set.
  Answer Lookup(const core::TaggerLookupRequest& request) const;

  // dogstatsd::OriginTagger
  void AppendContainerTags(std::string_view container_id, std::string_view cardinality,
                           std::vector<std::string>* out) override;

  core::ComponentStatus Status() const;

 private:
  static int64_t NowUnix();

  const TaggerOptions options_;
  std::unique_ptr<container::ContainerMetaStore> store_;
  mutable container::OriginCache origins_;
  mutable std::mutex counters_mu_;
  mutable std::map<std::string, int64_t> counters_;
  int64_t started_unix_ms_ = 0;
};

}  // namespace dogwatch::tagger
