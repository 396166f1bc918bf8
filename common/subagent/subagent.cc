#include "common/subagent/subagent.h"

#include <unistd.h>

#include <cstdio>

#include "common/log/log.h"
#include "common/strings/strings.h"

extern char** environ;

namespace dogwatch::subagent {

int Main(const Spec& spec, int argc, char** argv) {
  std::string config_path;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "-c" || arg == "--config") && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg == "-h" || arg == "--help") {
      std::printf(
          "usage: %s [-c PATH] [run]\n\n%s\n\n"
          "It reads its configuration from the core agent over agent_ipc.socket (DD_AGENT_IPC_SOCKET);\n"
          "-c names a dogwatch.yaml to find that socket. DD_* variables in its own environment override\n"
          "what the core serves.\n\n"
          "Options:\n  -c, --config PATH   configuration file\n  --version           print the version\n",
          spec.name.c_str(), spec.summary.c_str());
      return 0;
    } else if (arg == "--version" || arg == "version") {
      std::printf("%s %s (dogwatch)\n", spec.name.c_str(), DOGWATCH_VERSION);
      return 0;
    } else if (arg != "run") {
      std::fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", spec.name.c_str(), arg.c_str());
      return 2;
    }
  }

  lifecycle::DieWithSupervisor();
  lifecycle::ShutdownSignal::BlockTerminationSignals();
  (void)log::Init(spec.name, "info");
  auto logger = log::Get(spec.name);
  auto loaded = core_client::ConnectAndLoad(config_path, environ);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s: %s\n", spec.name.c_str(), std::string(loaded.status().message()).c_str());
    return 1;
  }
  const config::Config& config = loaded->config;
  std::string level = config.GetString("log_level") == "warning" ? "warn" : config.GetString("log_level");
  (void)log::Init(spec.name, level, config.GetString("log_file"));

  std::string why;
  if (!spec.enabled(config, &why)) {
    logger->info("{} is disabled ({}); exiting", spec.name, why);
    return 0;
  }

  lifecycle::ShutdownSignal shutdown;
  shutdown.WatchSignals();
  core::ComponentStatus base;
  base.set_name(spec.name);
  base.set_version(DOGWATCH_VERSION);
  base.set_pid(getpid());
  base.set_started_unix_ms(absl::ToUnixMillis(absl::Now()));
  std::mutex error_mu;
  std::string last_error;
  int64_t last_error_ms = 0;
  std::function<void(core::ComponentStatus*)> reporter;
  loaded->client->StartStatusReports(base, [&](core::ComponentStatus* status) {
    status->set_state(shutdown.Requested() ? "stopping" : "running");
    std::lock_guard<std::mutex> lock(error_mu);
    status->set_last_error(last_error);
    status->set_last_error_unix_ms(last_error_ms);
    if (reporter) reporter(status);
  });
  logger->info("{} {} running (core at {})", spec.name, DOGWATCH_VERSION, loaded->client->socket_path());

  Context ctx{config, *loaded->client, shutdown, [&](std::function<void(core::ComponentStatus*)> fn) {
                std::lock_guard<std::mutex> lock(error_mu);
                reporter = std::move(fn);
              }};
  absl::Status result = spec.run(ctx);
  if (!result.ok()) {
    {
      std::lock_guard<std::mutex> lock(error_mu);
      last_error = std::string(result.message());
      last_error_ms = absl::ToUnixMillis(absl::Now());
    }
    logger->critical("{}", result.message());
    std::fprintf(stderr, "%s: %s\n", spec.name.c_str(), std::string(result.message()).c_str());
  }
  {
    // The components the reporter reads are gone once run() returned.
    std::lock_guard<std::mutex> lock(error_mu);
    reporter = nullptr;
  }
  // One last report so `agent status` shows the component stopped rather than stale.
  core::ComponentStatus final_status = base;
  final_status.set_state(result.ok() ? "stopped" : "failed");
  final_status.set_last_error(last_error);
  final_status.set_last_error_unix_ms(last_error_ms);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
  core::ReportStatusResponse ignored;
  (void)loaded->client->stub()->ReportStatus(&context, final_status, &ignored);
  loaded->client->Stop();
  logger->info("{} stopped", spec.name);
  return result.ok() ? 0 : 1;
}

}  // namespace dogwatch::subagent
