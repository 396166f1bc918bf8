// system-probe: the only privileged dogwatch process. It reads system-probe.yaml + DD_* itself
// (it must be able to start before the core) and serves dogwatch.sysprobe.SystemProbe on
// system_probe_config.sysprobe_socket. The eBPF network tracer arrives with issue 6; until then
// the service answers Health truthfully and refuses the data RPCs with a clear reason.

#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/config/config.h"
#include "common/ipc/grpc_server.h"
#include "common/lifecycle/shutdown.h"
#include "common/log/log.h"
#include "dogwatch/sysprobe.grpc.pb.h"

extern char** environ;

namespace {

constexpr char kDefaultConfigPath[] = "/etc/dogwatch/system-probe.yaml";

class SystemProbeService final : public dogwatch::sysprobe::SystemProbe::Service {
 public:
  grpc::Status GetConnections(grpc::ServerContext*, const dogwatch::sysprobe::GetConnectionsRequest*,
                              dogwatch::sysprobe::GetConnectionsResponse*) override {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "network tracer: not part of this build yet");
  }
  grpc::Status GetProcessStats(grpc::ServerContext*, const dogwatch::sysprobe::ProcessStatsRequest*,
                               dogwatch::sysprobe::ProcessStatsResponse*) override {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "process stats: not part of this build yet");
  }
  grpc::Status Health(grpc::ServerContext*, const dogwatch::sysprobe::SysprobeHealthRequest*,
                      dogwatch::sysprobe::SysprobeHealthResponse* response) override {
    response->set_healthy(true);
    return grpc::Status::OK;
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = kDefaultConfigPath;
  bool config_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "-c" || arg == "--config") && i + 1 < argc) {
      config_path = argv[++i];
      config_given = true;
    } else if (arg == "-h" || arg == "--help") {
      std::printf(
          "usage: system-probe [-c PATH] [run]\n\n"
          "dogwatch system-probe: eBPF network flows served over sysprobe.sock.\n"
          "Reads system-probe.yaml (default %s) and DD_* variables; needs no core agent.\n\n"
          "Options:\n  -c, --config PATH   system-probe.yaml\n  --version           print the version\n",
          kDefaultConfigPath);
      return 0;
    } else if (arg == "--version" || arg == "version") {
      std::printf("system-probe %s (dogwatch)\n", DOGWATCH_VERSION);
      return 0;
    } else if (arg != "run") {
      std::fprintf(stderr, "system-probe: unexpected argument '%s' (see --help)\n", arg.c_str());
      return 2;
    }
  }
  dogwatch::lifecycle::DieWithSupervisor();
  dogwatch::lifecycle::ShutdownSignal::BlockTerminationSignals();
  auto config = dogwatch::config::Config::Load({config_path, config_given, environ});
  if (!config.ok()) {
    std::fprintf(stderr, "system-probe: configuration error: %s\n",
                 std::string(config.status().message()).c_str());
    return 1;
  }
  (void)dogwatch::log::Init(
      "system-probe", config->GetString("log_level") == "warning" ? "warn" : config->GetString("log_level"),
      config->GetString("log_file"));
  auto logger = dogwatch::log::Get("system-probe");
  if (!config->GetBool("system_probe_config.enabled") && !config->GetBool("network_config.enabled")) {
    logger->info(
        "system-probe is disabled (system_probe_config.enabled and network_config.enabled are false); "
        "exiting");
    return 0;
  }
  auto policy = dogwatch::ipc::PeerPolicy::FromConfig(config->GetStringList("agent_ipc.allowed_uids"),
                                                      config->GetString("agent_ipc.socket_group"));
  if (!policy.ok()) {
    std::fprintf(stderr, "system-probe: %s\n", std::string(policy.status().message()).c_str());
    return 1;
  }
  SystemProbeService service;
  dogwatch::ipc::ServerOptions options{
      {config->GetString("system_probe_config.sysprobe_socket"), "system_probe_config.sysprobe_socket", 0660,
       config->GetString("agent_ipc.socket_group"), 64},
      *std::move(policy),
      4 * 1024 * 1024,
      4};
  auto server = dogwatch::ipc::IpcServer::Start(std::move(options), {&service});
  if (!server.ok()) {
    std::fprintf(stderr, "system-probe: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  logger->info("system-probe {} serving {}", DOGWATCH_VERSION, (*server)->path());
  dogwatch::lifecycle::ShutdownSignal shutdown;
  shutdown.WatchSignals();
  shutdown.Wait();
  (*server)->Shutdown(absl::Seconds(2));
  return 0;
}
