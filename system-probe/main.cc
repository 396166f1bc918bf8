// system-probe: the only privileged dogwatch process. It reads system-probe.yaml + DD_* itself
// (it must be able to start before the core), loads the eBPF network tracer, serves
// dogwatch.sysprobe.SystemProbe on system_probe_config.sysprobe_socket, and then drops every
// capability but the two that reading other processes' /proc files needs.

#include <linux/capability.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/config/config.h"
#include "common/ipc/grpc_server.h"
#include "common/ipc/unix_socket.h"
#include "common/lifecycle/shutdown.h"
#include "common/log/log.h"
#include "dogwatch/sysprobe.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/client_context.h"
#include "system-probe/service.h"
#include "system-probe/tracer/capabilities.h"
#include "system-probe/tracer/tracer.h"

extern char** environ;

namespace {

constexpr char kDefaultConfigPath[] = "/etc/dogwatch/system-probe.yaml";

void PrintUsage() {
  std::printf(
      "usage: system-probe [-c PATH] [run | connections [--json] | version]\n\n"
      "dogwatch system-probe: eBPF network flows served over sysprobe.sock.\n"
      "Reads system-probe.yaml (default %s) and DD_* variables; needs no core agent.\n\n"
      "Commands:\n"
      "  run                 load the programs and serve (default)\n"
      "  connections [--json]\n"
      "                      print the running system-probe's current connection table\n"
      "  version             print the version\n\n"
      "Options:\n  -c, --config PATH   system-probe.yaml\n",
      kDefaultConfigPath);
}

const char* TypeName(dogwatch::sysprobe::ConnectionType t) {
  return t == dogwatch::sysprobe::CONNECTION_TYPE_UDP ? "udp" : "tcp";
}

const char* DirectionName(dogwatch::sysprobe::Direction d) {
  switch (d) {
    case dogwatch::sysprobe::DIRECTION_INCOMING:
      return "in";
    case dogwatch::sysprobe::DIRECTION_OUTGOING:
      return "out";
    case dogwatch::sysprobe::DIRECTION_LOCAL:
      return "local";
    default:
      return "?";
  }
}

std::string Endpoint(const dogwatch::sysprobe::Address& a, dogwatch::sysprobe::Family family) {
  return family == dogwatch::sysprobe::FAMILY_V6 ? absl::StrCat("[", a.ip(), "]:", a.port())
                                                 : absl::StrCat(a.ip(), ":", a.port());
}

int PrintConnections(const dogwatch::config::Config& config, bool json) {
  const std::string socket = config.GetString("system_probe_config.sysprobe_socket");
  auto channel = dogwatch::ipc::CreateUnixChannel(socket, 64 * 1024 * 1024);
  auto stub = dogwatch::sysprobe::SystemProbe::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  dogwatch::sysprobe::GetConnectionsRequest request;
  request.set_snapshot(true);
  dogwatch::sysprobe::GetConnectionsResponse response;
  grpc::Status status = stub->GetConnections(&context, request, &response);
  if (!status.ok()) {
    std::fprintf(stderr, "system-probe connections: %s (socket %s)\n", status.error_message().c_str(),
                 socket.c_str());
    return 1;
  }
  if (json) {
    std::string out;
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = true;
    (void)google::protobuf::util::MessageToJsonString(response, &out, options);
    std::printf("%s\n", out.c_str());
    return 0;
  }
  std::printf("backend: %s, %d connections\n", response.backend().c_str(), response.connections_size());
  std::printf("%-4s %-3s %-46s %-46s %8s %-15s %12s %12s %6s %8s %10s\n", "TYPE", "DIR", "LOCAL", "REMOTE",
              "PID", "COMMAND", "SENT", "RECEIVED", "RETR", "RTT(us)", "NETNS");
  for (const auto& c : response.connections()) {
    std::printf("%-4s %-3s %-46s %-46s %8d %-15s %12llu %12llu %6u %8u %10u\n", TypeName(c.type()),
                DirectionName(c.direction()), Endpoint(c.local(), c.family()).c_str(),
                Endpoint(c.remote(), c.family()).c_str(), c.pid(), c.command().c_str(),
                static_cast<unsigned long long>(c.bytes_sent()),
                static_cast<unsigned long long>(c.bytes_received()), c.retransmits(), c.rtt_us(), c.net_ns());
  }
  std::printf("\ncounters:\n");
  for (const auto& [name, value] : response.counters()) {
    std::printf("  %-34s %lld\n", name.c_str(), static_cast<long long>(value));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = kDefaultConfigPath;
  bool config_given = false;
  std::string command = "run";
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "-c" || arg == "--config") && i + 1 < argc) {
      config_path = argv[++i];
      config_given = true;
    } else if (arg == "-h" || arg == "--help") {
      PrintUsage();
      return 0;
    } else if (arg == "--version" || arg == "version") {
      std::printf("system-probe %s (dogwatch)\n", DOGWATCH_VERSION);
      return 0;
    } else if (arg == "run" || arg == "connections") {
      command = arg;
    } else if (arg == "--json" && command == "connections") {
      json = true;
    } else {
      std::fprintf(stderr, "system-probe: unexpected argument '%s' (see --help)\n", arg.c_str());
      return 2;
    }
  }
  auto config = dogwatch::config::Config::Load({config_path, config_given, environ});
  if (!config.ok()) {
    std::fprintf(stderr, "system-probe: configuration error: %s\n",
                 std::string(config.status().message()).c_str());
    return 1;
  }
  if (command == "connections") return PrintConnections(*config, json);

  dogwatch::lifecycle::DieWithSupervisor();
  dogwatch::lifecycle::ShutdownSignal::BlockTerminationSignals();
  (void)dogwatch::log::Init(
      "system-probe", config->GetString("log_level") == "warning" ? "warn" : config->GetString("log_level"),
      config->GetString("log_file"));
  auto logger = dogwatch::log::Get("system-probe");
  const bool network_enabled = config->GetBool("network_config.enabled");
  if (!config->GetBool("system_probe_config.enabled") && !network_enabled) {
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

  std::unique_ptr<dogwatch::sysprobe::NetworkTracer> tracer;
  if (network_enabled) {
    dogwatch::sysprobe::TracerOptions options;
    options.loader.max_tracked_connections =
        static_cast<uint32_t>(config->GetInt("system_probe_config.max_tracked_connections"));
    options.loader.collect_dns = config->GetBool("system_probe_config.collect_dns_stats");
    options.loader.btf_path = config->GetString("system_probe_config.btf_path");
    // Each of these picks among fixed values; "auto" leaves the choice to the loader ("").
    struct Choice {
      const char* key;
      std::vector<std::string> allowed;
      std::string* out;
    };
    for (const Choice& choice : {
             Choice{"network_config.tracer_backend",
                    {"auto", "tracepoint", "fexit"},
                    &options.loader.forced_backend},
             Choice{"network_config.tcp_counters", {"auto", "storage", "map"}, &options.loader.tcp_counters},
             Choice{
                 "network_config.io_accounting", {"auto", "packets", "calls"}, &options.loader.io_accounting},
         }) {
      const std::string value = config->GetString(choice.key);
      if (std::find(choice.allowed.begin(), choice.allowed.end(), value) == choice.allowed.end()) {
        std::fprintf(stderr, "system-probe: %s must be %s, not '%s'\n", choice.key,
                     absl::StrJoin(choice.allowed, ", ").c_str(), value.c_str());
        return 1;
      }
      *choice.out = value == "auto" ? "" : value;
    }
    options.limits.max_closed_per_client =
        static_cast<size_t>(config->GetInt("system_probe_config.max_connection_state_buffered"));
    options.limits.max_dns_per_client =
        static_cast<size_t>(config->GetInt("system_probe_config.max_dns_stats"));
    options.dns_timeout = absl::Seconds(config->GetInt("system_probe_config.dns_timeout_in_s"));
    options.udp_idle_timeout = absl::Seconds(config->GetInt("system_probe_config.udp_conn_timeout_in_s"));
    auto started = dogwatch::sysprobe::NetworkTracer::Load(options);
    if (!started.ok()) {
      std::fprintf(stderr, "system-probe: network tracer: %s\n",
                   std::string(started.status().message()).c_str());
      logger->error("network tracer: {}", started.status().message());
      return 1;
    }
    tracer = *std::move(started);
    logger->info("network tracer: backend {}, counting {} ({} programs attached)", tracer->probe().backend(),
                 tracer->probe().io_accounting(), tracer->probe().attached().size());
    for (const auto& note : tracer->probe().notes()) logger->info("network tracer: {}", note);
  }

  dogwatch::ipc::ServerOptions options{
      {config->GetString("system_probe_config.sysprobe_socket"), "system_probe_config.sysprobe_socket", 0660,
       config->GetString("agent_ipc.socket_group"), 64},
      *std::move(policy),
      64 * 1024 * 1024,
      4};
  auto listen_fd = dogwatch::ipc::ListenUnix(options.listen);
  if (!listen_fd.ok()) {
    std::fprintf(stderr, "system-probe: %s\n", std::string(listen_fd.status().message()).c_str());
    return 1;
  }
  options.listen_fd = *listen_fd;

  // Loaded, attached, socket bound and chowned: from here on only other processes' /proc files
  // need privilege (GetProcessStats). Capabilities belong to threads, so this runs while the
  // process has just this one; every thread started later inherits the reduced sets. Kernels
  // before 6.5 also check CAP_BPF on every map operation: keep it only where a map read without
  // it fails.
  bool keep_bpf = false;
  if (tracer != nullptr && dogwatch::sysprobe::LowerEffective(CAP_BPF).ok()) {
    keep_bpf = !tracer->CheckMapAccess().ok();
    if (keep_bpf) (void)dogwatch::sysprobe::RaiseEffective(CAP_BPF);
  }
  absl::Status dropped =
      keep_bpf ? dogwatch::sysprobe::KeepOnlyCapabilities({CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH, CAP_BPF})
               : dogwatch::sysprobe::KeepOnlyCapabilities({CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH});
  if (!dropped.ok()) {
    logger->error("dropping capabilities failed: {}", dropped.message());
    return 1;
  }
  if (tracer != nullptr) tracer->StartWorker();
  dogwatch::sysprobe::ServiceOptions service_options;
  service_options.tracer = tracer.get();
  service_options.process_stats_enabled = config->GetBool("system_probe_config.process_config.enabled");
  dogwatch::sysprobe::SystemProbeService service(service_options);
  auto server = dogwatch::ipc::IpcServer::Start(std::move(options), {&service});
  if (!server.ok()) {
    std::fprintf(stderr, "system-probe: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  logger->info("system-probe {} serving {}; capabilities kept: {}", DOGWATCH_VERSION, (*server)->path(),
               dogwatch::sysprobe::CapabilityNames(dogwatch::sysprobe::EffectiveCapabilities()));
  dogwatch::lifecycle::ShutdownSignal shutdown;
  shutdown.WatchSignals();
  shutdown.Wait();
  (*server)->Shutdown(absl::Seconds(2));
  return 0;
}
