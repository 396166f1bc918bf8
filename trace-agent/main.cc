// trace-agent: the APM intake. Until the receiver lands (issue 3) it connects to the core,
// reports its status and honours apm_config.enabled / DD_APM_ENABLED.

#include "common/subagent/subagent.h"

int main(int argc, char** argv) {
  dogwatch::subagent::Spec spec;
  spec.name = "trace-agent";
  spec.summary = "dogwatch trace-agent: the APM intake for Datadog tracers (TCP 8126 and a unix socket).";
  spec.enabled = [](const dogwatch::config::Config& config, std::string* why) {
    *why = "apm_config.enabled is false";
    return config.GetBool("apm_config.enabled");
  };
  spec.run = [](dogwatch::subagent::Context& ctx) {
    ctx.shutdown.Wait();
    return absl::OkStatus();
  };
  return dogwatch::subagent::Main(spec, argc, argv);
}
