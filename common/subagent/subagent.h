#pragma once
// The common shape of trace-agent and process-agent: parse -c/--help/--version, fetch the
// effective config from the core, report status until SIGTERM, stop cleanly.

#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "common/config/config.h"
#include "common/core_client/core_client.h"
#include "common/lifecycle/shutdown.h"

namespace dogwatch::subagent {

struct Context {
  const config::Config& config;
  core_client::CoreClient& core;
  lifecycle::ShutdownSignal& shutdown;
  // Set by `run` once its components exist: fills counters and info for each status report.
  std::function<void(std::function<void(core::ComponentStatus*)>)> set_reporter;
};

struct Spec {
  std::string name;     // "trace-agent"
  std::string summary;  // one line for --help
  // True when the component is enabled by config; a disabled one logs why and exits 0.
  std::function<bool(const config::Config&, std::string* why_disabled)> enabled;
  // Runs the component until ctx.shutdown is requested. Status counters go through `counters`.
  std::function<absl::Status(Context& ctx)> run;
};

int Main(const Spec& spec, int argc, char** argv);

}  // namespace dogwatch::subagent
