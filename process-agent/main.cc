// process-agent: live processes and containers. Until its checks land (issue 5) it connects to
// the core, reports its status and honours process_config.process_collection.enabled.

#include "common/subagent/subagent.h"

int main(int argc, char** argv) {
  dogwatch::subagent::Spec spec;
  spec.name = "process-agent";
  spec.summary = "dogwatch process-agent: live processes, containers and network connections.";
  spec.enabled = [](const dogwatch::config::Config& config, std::string* why) {
    *why = "process_config.process_collection.enabled is false";
    return config.GetBool("process_config.process_collection.enabled");
  };
  spec.run = [](dogwatch::subagent::Context& ctx) {
    ctx.shutdown.Wait();
    return absl::OkStatus();
  };
  return dogwatch::subagent::Main(spec, argc, argv);
}
