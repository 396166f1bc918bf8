#pragma once
// `agent run`: the core process. Owns config, secrets, the forwarder (to Datadog or the local
// intake), the IPC server for the sub-agents, the health endpoint and, optionally, the supervisor.

#include <string>

#include "absl/status/statusor.h"
#include "common/config/config.h"

namespace dogwatch::agent {

// The config file `agent` reads when no -c is given. Missing is fine: defaults and DD_* apply.
inline constexpr char kDefaultConfigPath[] = "/etc/dogwatch/dogwatch.yaml";

// Loads file + environment and resolves ENC[] secrets through the configured backend. Errors
// name the key, the handle and the reason, never a secret value.
absl::StatusOr<config::Config> LoadCoreConfig(const std::string& path, bool required,
                                              const char* const* environment);

// Runs until SIGTERM/SIGINT; returns the process exit code.
int RunAgent(const std::string& config_path, bool config_required);

}  // namespace dogwatch::agent
