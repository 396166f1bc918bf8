// `agent`: the core agent's command line. Subcommands: run, status, config, health, version,
// secret, intake.

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "agent-core/cli/status_format.h"
#include "agent-core/core/agent.h"
#include "agent-core/intake/intake_server.h"
#include "common/http/client.h"
#include "common/ipc/grpc_server.h"
#include "common/lifecycle/shutdown.h"
#include "common/log/log.h"
#include "common/strings/strings.h"
#include "dogwatch/core.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"

extern char** environ;

namespace {

using dogwatch::strings::Cat;

constexpr char kUsage[] = R"(usage: agent [-c PATH] COMMAND [OPTIONS]

Commands:
  run                 run the core agent in the foreground (SIGTERM/SIGINT to stop)
  status [--json]     show every component, the forwarder and the local intake
  config [--docs]     print the effective configuration (API keys and secrets scrubbed);
                      --docs prints the reference of every key instead
  health              exit 0 when the running agent is ready, 1 otherwise
  secret              list the ENC[] handles the configuration uses (never their values)
  version             print the version
  intake serve [--port N] [--bind HOST] [--dir DIR] [--max-bytes N] [--api-key KEY]...
               [--process-active-clients N]
                      run a standalone local intake answering the Datadog intake paths
                      (process replies say activeClients N; change it at run time with
                      PUT /dogwatch/intake/process_status?active_clients=N&interval=S)
  intake list [--url URL] [--path P] [--since N] [--limit N]
  intake show SEQ [--url URL]
                      inspect a local intake (default URL http://127.0.0.1:5556)

Options:
  -c, --config PATH   configuration file (default /etc/dogwatch/dogwatch.yaml; DD_* env overrides it)
  -h, --help          this help
)";

struct Args {
  std::string config_path = dogwatch::agent::kDefaultConfigPath;
  bool config_given = false;
  std::vector<std::string> rest;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "agent: %s\n", message.c_str());
  return 1;
}

// Finds "--name VALUE" in args (removing both); returns fallback when absent.
std::string TakeOption(std::vector<std::string>& args, const std::string& name, const std::string& fallback) {
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == name) {
      std::string value = args[i + 1];
      args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i) + 2);
      return value;
    }
  }
  return fallback;
}

bool TakeFlag(std::vector<std::string>& args, const std::string& name) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == name) {
      args.erase(args.begin() + static_cast<long>(i));
      return true;
    }
  }
  return false;
}

absl::StatusOr<dogwatch::config::Config> LoadLocalConfig(const Args& args) {
  // Secrets are not resolved for read-only commands: they only need the socket path, and printing
  // the config shows ENC[] handles rather than values anyway.
  return dogwatch::config::Config::Load({args.config_path, args.config_given, environ});
}

std::unique_ptr<dogwatch::core::Core::Stub> ConnectToCore(const dogwatch::config::Config& config) {
  return dogwatch::core::Core::NewStub(
      dogwatch::ipc::CreateUnixChannel(config.GetString("agent_ipc.socket"),
                                       static_cast<size_t>(config.GetInt("agent_ipc.max_message_bytes"))));
}

std::string Unreachable(const dogwatch::config::Config& config, const grpc::Status& status) {
  return Cat("cannot reach the core agent at '", config.GetString("agent_ipc.socket"),
             "' (agent_ipc.socket): ", status.error_message());
}

int CmdStatus(const Args& args, std::vector<std::string> rest) {
  bool json = TakeFlag(rest, "--json");
  auto config = LoadLocalConfig(args);
  if (!config.ok()) return Fail(std::string(config.status().message()));
  auto stub = ConnectToCore(*config);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  dogwatch::core::StatusResponse response;
  grpc::Status status = stub->GetStatus(&context, dogwatch::core::StatusRequest(), &response);
  if (!status.ok()) return Fail(Unreachable(*config, status));
  if (json) {
    std::string out;
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = true;
    options.preserve_proto_field_names = true;
    options.always_print_primitive_fields = true;
    (void)google::protobuf::util::MessageToJsonString(response, &out, options);
    std::fputs(out.c_str(), stdout);
    std::fputs("\n", stdout);
  } else {
    std::fputs(dogwatch::agent::FormatStatus(response, absl::ToUnixMillis(absl::Now())).c_str(), stdout);
  }
  return 0;
}

int CmdHealth(const Args& args) {
  auto config = LoadLocalConfig(args);
  if (!config.ok()) return Fail(std::string(config.status().message()));
  auto stub = ConnectToCore(*config);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  dogwatch::core::HealthResponse response;
  grpc::Status status = stub->Health(&context, dogwatch::core::HealthRequest(), &response);
  if (!status.ok()) return Fail(Unreachable(*config, status));
  if (response.ready()) {
    std::puts("Agent health: PASS");
    return 0;
  }
  std::puts("Agent health: FAIL");
  for (const auto& item : response.unhealthy()) std::printf("  %s\n", item.c_str());
  return 1;
}

int CmdConfig(const Args& args, std::vector<std::string> rest) {
  if (TakeFlag(rest, "--docs")) {
    std::fputs(dogwatch::config::OptionsReferenceMarkdown().c_str(), stdout);
    return 0;
  }
  auto config = LoadLocalConfig(args);
  if (!config.ok()) return Fail(Cat("configuration error: ", config.status().message()));
  std::fputs(config->ToScrubbedYaml().c_str(), stdout);
  for (const auto& key : config->unknown_keys())
    std::fprintf(stderr, "warning: unknown key '%s' ignored\n", key.c_str());
  return 0;
}

int CmdSecret(const Args& args) {
  auto config = LoadLocalConfig(args);
  if (!config.ok()) return Fail(Cat("configuration error: ", config.status().message()));
  auto refs = config->SecretReferences();
  std::printf("secret_backend_command: %s\n", config->GetString("secret_backend_command").empty()
                                                  ? "(not set)"
                                                  : config->GetString("secret_backend_command").c_str());
  if (refs.empty()) std::puts("No ENC[] handles in the configuration.");
  for (const auto& ref : refs) std::printf("  %s  used by %s\n", ref.handle.c_str(), ref.key.c_str());
  return 0;
}

int CmdIntakeServe(std::vector<std::string> rest) {
  dogwatch::lifecycle::ShutdownSignal::BlockTerminationSignals();
  dogwatch::intake::IntakeServerOptions options;
  options.intake.storage_dir = TakeOption(rest, "--dir", "./dogwatch-intake");
  options.intake.max_bytes = std::stoull(TakeOption(rest, "--max-bytes", std::to_string(64 << 20)));
  std::string key;
  while (!(key = TakeOption(rest, "--api-key", "")).empty()) options.intake.accepted_api_keys.push_back(key);
  options.intake.process_active_clients = std::stoi(TakeOption(rest, "--process-active-clients", "0"));
  options.http.host = TakeOption(rest, "--bind", "127.0.0.1");
  options.http.port = static_cast<uint16_t>(std::stoul(TakeOption(rest, "--port", "5556")));
  options.http.log_name = "intake";
  if (!rest.empty()) return Fail(Cat("intake serve: unexpected argument '", rest.front(), "'"));
  (void)dogwatch::log::Init("intake", "info");

  auto server = dogwatch::intake::IntakeServer::Start(std::move(options));
  if (!server.ok()) return Fail(Cat("intake serve: ", server.status().message()));
  std::printf("local intake listening on %s\n", (*server)->url().c_str());
  std::fflush(stdout);
  dogwatch::lifecycle::ShutdownSignal shutdown;
  shutdown.WatchSignals();
  shutdown.Wait();
  (*server)->Stop();
  return 0;
}

int CmdIntakeQuery(const std::string& what, std::vector<std::string> rest) {
  std::string url = TakeOption(rest, "--url", "http://127.0.0.1:5556");
  std::string target;
  if (what == "list") {
    target = Cat(url, "/dogwatch/intake/payloads?limit=", TakeOption(rest, "--limit", "100"),
                 "&since=", TakeOption(rest, "--since", "0"));
    std::string path = TakeOption(rest, "--path", "");
    if (!path.empty()) target += "&path=" + path;
  } else {
    if (rest.empty()) return Fail("intake show: which payload? (agent intake show SEQ)");
    target = Cat(url, "/dogwatch/intake/payloads/", rest.front());
    rest.erase(rest.begin());
  }
  if (!rest.empty()) return Fail(Cat("intake ", what, ": unexpected argument '", rest.front(), "'"));
  dogwatch::http::ClientOptions client_options;
  client_options.timeout = absl::Seconds(10);
  // The decoded JSON is the whole point here (a series payload decodes to well over the 64 KiB
  // the client keeps by default for logging): without this the output was cut mid-JSON.
  client_options.max_response_body_bytes = 512 * 1024 * 1024;
  dogwatch::http::Client client(client_options);
  dogwatch::http::Request request;
  request.method = "GET";
  request.url = target;
  auto response = client.Send(request);
  if (!response.ok())
    return Fail(Cat("cannot reach the local intake at ", url, ": ", response.status().message()));
  std::fputs(response->body.c_str(), stdout);
  std::fputs("\n", stdout);
  return response->status == 200 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "-c" || arg == "--config") && i + 1 < argc) {
      args.config_path = argv[++i];
      args.config_given = true;
    } else if (arg.rfind("--config=", 0) == 0) {
      args.config_path = arg.substr(9);
      args.config_given = true;
    } else if (arg == "-h" || arg == "--help" || arg == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--version") {
      args.rest = {"version"};
      break;
    } else {
      args.rest.push_back(arg);
    }
  }
  if (args.rest.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string command = args.rest.front();
  std::vector<std::string> rest(args.rest.begin() + 1, args.rest.end());
  if (command == "run") {
    if (!rest.empty()) return Fail(Cat("run: unexpected argument '", rest.front(), "'"));
    return dogwatch::agent::RunAgent(args.config_path, args.config_given);
  }
  if (command == "status") return CmdStatus(args, rest);
  if (command == "health") return CmdHealth(args);
  if (command == "config") return CmdConfig(args, rest);
  if (command == "secret") return CmdSecret(args);
  if (command == "version") {
    std::printf("agent %s (dogwatch)\n", DOGWATCH_VERSION);
    return 0;
  }
  if (command == "intake" && !rest.empty()) {
    std::string sub = rest.front();
    rest.erase(rest.begin());
    if (sub == "serve") return CmdIntakeServe(rest);
    if (sub == "list" || sub == "show") return CmdIntakeQuery(sub, rest);
  }
  std::fprintf(stderr, "agent: unknown command '%s'\n\n%s", command.c_str(), kUsage);
  return 2;
}
