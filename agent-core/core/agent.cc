#include "agent-core/core/agent.h"

#include <unistd.h>

#include <map>
#include <memory>

#include "agent-core/core/core_service.h"
#include "agent-core/core/metric_pipeline.h"
#include "agent-core/core/status_registry.h"
#include "agent-core/core/supervisor.h"
#include "agent-core/forwarder/forwarder.h"
#include "agent-core/forwarder/transport.h"
#include "agent-core/intake/local_intake.h"
#include "agent-core/secrets/secrets.h"
#include "agent-core/tagger/tagger.h"
#include "common/http/server.h"
#include "common/ipc/grpc_server.h"
#include "common/lifecycle/shutdown.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "common/strings/strings.h"

extern char** environ;

namespace dogwatch::agent {
namespace {

using strings::Cat;

std::string JoinPath(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

// The in-process local intake as a forwarder transport: same request, same answer as over HTTP.
class LocalIntakeTransport final : public forwarder::Transport {
 public:
  explicit LocalIntakeTransport(intake::LocalIntake* intake) : intake_(intake) {}
  absl::StatusOr<http::Response> Send(const std::string& base_url, const std::string& path,
                                      const std::vector<std::pair<std::string, std::string>>& headers,
                                      std::string_view body) override {
    http::HttpRequest request;
    request.method = "POST";
    request.path = path;
    for (const auto& [name, value] : headers) request.headers.Add(name, value);
    request.body = std::string(body);
    request.peer.transport = http::PeerInfo::Transport::kInProcess;
    http::HttpReply reply = intake_->Accept(request);
    http::Response response;
    response.status = reply.status;
    response.body = std::move(reply.body);
    return response;
  }

 private:
  intake::LocalIntake* intake_;
};

std::vector<forwarder::Destination> DestinationsFor(const config::Config& config, const std::string& main_url,
                                                    const char* additional_key) {
  std::vector<forwarder::Destination> out{{main_url, config.GetString("api_key")}};
  for (const auto& [url, keys] : config.GetStringListMap(additional_key)) {
    for (const auto& key : keys) out.push_back({url, key});
  }
  return out;
}

std::string OrDefault(const std::string& value, std::string fallback) {
  return value.empty() ? fallback : value;
}

// An EVP intake as the forwarder wants it: a site ("datadoghq.eu") becomes
// https://{subdomain}.datadoghq.eu, as Datadog's EVP proxy builds it; a URL is taken as given (it
// may hold {subdomain}; without it, the subdomain travels as X-Datadog-EVP-Subdomain only, for a
// proxy in front of Datadog).
std::string EvpUrlTemplate(const std::string& site_or_url) {
  if (site_or_url.starts_with("http://") || site_or_url.starts_with("https://")) return site_or_url;
  return Cat("https://", forwarder::kSubdomainPlaceholder, ".", site_or_url);
}

class Agent final : public CoreBackend {
 public:
  Agent(config::Config config, std::string config_path)
      : config_(std::move(config)), config_path_(std::move(config_path)), registry_(absl::Seconds(10)) {}

  absl::Status Start();
  void Stop();

  absl::StatusOr<int> Submit(const core::SubmitRequest& request,
                             std::shared_ptr<forwarder::ReplySink> reply) override {
    std::vector<std::pair<std::string, std::string>> headers;
    for (const auto& header : request.headers()) {
      // The subdomain comes from the validated evp_subdomain field only.
      if (http::EqualsIgnoreCase(header.name(), forwarder::kSubdomainHeader)) continue;
      headers.emplace_back(header.name(), header.value());
    }
    if (!request.evp_subdomain().empty())
      headers.emplace_back(forwarder::kSubdomainHeader, request.evp_subdomain());
    return forwarder_->Submit(request.track(), request.path(), std::move(headers), request.body(),
                              request.origin().empty() ? "unknown" : request.origin(), std::move(reply));
  }
  size_t DestinationCount(core::Track track) override { return forwarder_->DestinationCount(track); }

  void FillStatus(core::StatusResponse* response) override;
  absl::StatusOr<core::TaggerLookupResponse> TaggerLookup(const core::TaggerLookupRequest& request) override {
    core::TaggerLookupResponse response;
    if (!tagger_) return response;
    tagger::Tagger::Answer answer = tagger_->Lookup(request);
    response.set_container_id(answer.container_id);
    for (auto& tag : answer.tags) response.add_tags(std::move(tag));
    return response;
  }
  core::HealthResponse Health() override;
  bool started() const { return started_.load(); }

 private:
  absl::Status StartForwarder();
  absl::Status StartSupervisor();
  absl::Status StartMetricPipeline();
  http::HttpReply HandleHealth(const http::HttpRequest& request);

  config::Config config_;
  std::string config_path_;
  std::string hostname_;
  absl::Time started_at_ = absl::Now();
  std::atomic<bool> started_{false};
  StatusRegistry registry_;
  std::unique_ptr<intake::LocalIntake> local_intake_;
  std::unique_ptr<http::HttpServer> local_intake_server_;
  std::unique_ptr<forwarder::Forwarder> forwarder_;
  std::unique_ptr<tagger::Tagger> tagger_;
  std::unique_ptr<MetricPipeline> metric_pipeline_;
  std::unique_ptr<CoreService> service_;
  std::unique_ptr<ipc::IpcServer> ipc_;
  std::unique_ptr<http::HttpServer> health_;
  std::unique_ptr<Supervisor> supervisor_;
  std::shared_ptr<spdlog::logger> logger_ = log::Get("core");
};

absl::Status Agent::StartForwarder() {
  const std::string& site = config_.GetString("site");
  const std::string& run_path = config_.GetString("run_path");
  forwarder::Options options;
  std::unique_ptr<forwarder::Transport> transport;
  if (config_.GetString("api_key").empty()) {
    if (!config_.GetBool("local_intake.enabled")) {
      return absl::FailedPreconditionError(
          "api_key is not set and local_intake.enabled is false: there is nowhere to send payloads");
    }
    intake::LocalIntake::Options intake_options;
    intake_options.storage_dir =
        OrDefault(config_.GetString("local_intake.storage_path"), JoinPath(run_path, "intake"));
    intake_options.max_bytes = static_cast<size_t>(config_.GetInt("local_intake.max_size_in_bytes"));
    local_intake_ = std::make_unique<intake::LocalIntake>(intake_options);
    RETURN_IF_ERROR(local_intake_->Open());
    if (config_.GetInt("local_intake.port") > 0) {
      http::HttpServerOptions server_options;
      server_options.host = config_.GetString("local_intake.bind_host");
      server_options.port = static_cast<uint16_t>(config_.GetInt("local_intake.port"));
      server_options.max_body_bytes = intake_options.max_payload_bytes;
      server_options.log_name = "local-intake";
      auto server = http::HttpServer::Start(server_options, [this](const http::HttpRequest& request) {
        return local_intake_->Accept(request);
      });
      if (!server.ok()) {
        return absl::Status(server.status().code(), Cat("local_intake.port: ", server.status().message()));
      }
      local_intake_server_ = *std::move(server);
    }
    const std::string local = "local-intake";
    for (auto track : {core::TRACK_METRICS, core::TRACK_TRACES, core::TRACK_PROCESSES, core::TRACK_TELEMETRY,
                       core::TRACK_PROFILING, core::TRACK_EVP}) {
      options.destinations[track] = {{local, ""}};
    }
    options.status_name = "local-intake";
    transport = std::make_unique<LocalIntakeTransport>(local_intake_.get());
    logger_->info(
        "no api_key configured: payloads go to the local intake at {}{}", intake_options.storage_dir,
        local_intake_server_
            ? Cat(" (inspect: http://", local_intake_server_->address(), "/dogwatch/intake/payloads)")
            : std::string());
  } else {
    options.destinations[core::TRACK_METRICS] = DestinationsFor(
        config_, OrDefault(config_.GetString("dd_url"), "https://app." + site), "additional_endpoints");
    options.destinations[core::TRACK_TRACES] = DestinationsFor(
        config_, OrDefault(config_.GetString("apm_config.apm_dd_url"), "https://trace.agent." + site),
        "apm_config.additional_endpoints");
    options.destinations[core::TRACK_PROCESSES] = DestinationsFor(
        config_, OrDefault(config_.GetString("process_config.process_dd_url"), "https://process." + site),
        "process_config.additional_endpoints");
    options.destinations[core::TRACK_TELEMETRY] = {
        {"https://instrumentation-telemetry-intake." + site, config_.GetString("api_key")}};
    options.destinations[core::TRACK_PROFILING] = {
        {"https://intake.profile." + site, config_.GetString("api_key")}};
    // EVP: each payload names its subdomain (citestcycle-intake, llmobs-intake, ...); the
    // forwarder substitutes it per transaction.
    const std::string& evp_key =
        OrDefault(config_.GetString("apm_config.evp_proxy_config.api_key"), config_.GetString("api_key"));
    options.destinations[core::TRACK_EVP] = {
        {EvpUrlTemplate(OrDefault(config_.GetString("apm_config.evp_proxy_config.dd_url"), site)), evp_key}};
    for (const auto& [target, keys] :
         config_.GetStringListMap("apm_config.evp_proxy_config.additional_endpoints")) {
      for (const auto& key : keys)
        options.destinations[core::TRACK_EVP].push_back({EvpUrlTemplate(target), key});
    }
    http::ClientOptions client;
    client.timeout = absl::Seconds(config_.GetInt("forwarder_timeout"));
    client.skip_ssl_validation = config_.GetBool("skip_ssl_validation");
    client.proxy = OrDefault(config_.GetString("proxy.https"), config_.GetString("proxy.http"));
    client.no_proxy = strings::Join(config_.GetStringList("proxy.no_proxy"), ",");
    transport = std::make_unique<forwarder::HttpTransport>(client);
  }
  options.backoff_base = absl::Seconds(config_.GetInt("forwarder_backoff_base"));
  options.backoff_max = absl::Seconds(config_.GetInt("forwarder_backoff_max"));
  options.backoff_factor = config_.GetDouble("forwarder_backoff_factor");
  options.recovery_interval = static_cast<int>(config_.GetInt("forwarder_recovery_interval"));
  options.recovery_reset = config_.GetBool("forwarder_recovery_reset");
  options.memory_queue_max_bytes =
      static_cast<size_t>(config_.GetInt("forwarder_retry_queue_payloads_max_size"));
  options.storage_max_bytes = static_cast<size_t>(config_.GetInt("forwarder_storage_max_size_in_bytes"));
  if (options.storage_max_bytes > 0) {
    options.storage_path =
        OrDefault(config_.GetString("forwarder_storage_path"), JoinPath(run_path, "transactions_to_retry"));
  }
  options.agent_version = DOGWATCH_VERSION;
  forwarder_ = std::make_unique<forwarder::Forwarder>(std::move(options), std::move(transport));
  return forwarder_->Start();
}

absl::Status Agent::StartSupervisor() {
  if (!config_.GetBool("supervisor.enabled")) return absl::OkStatus();
  std::string bin_dir = config_.GetString("supervisor.bin_dir");
  if (bin_dir.empty()) {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
      return absl::InternalError("supervisor: cannot find the agent's own directory; set supervisor.bin_dir");
    std::string exe(self, static_cast<size_t>(n));
    bin_dir = exe.substr(0, exe.rfind('/'));
  }
  std::vector<std::string> args = {"run"};
  if (!config_path_.empty()) args = {"run", "-c", config_path_};
  // Children find the core at the socket it actually serves, whatever their own config says.
  // DOGWATCH_SUPERVISOR_PID lets a child die with the core (PR_SET_PDEATHSIG) instead of running
  // on as an orphan when the core is killed with SIGKILL.
  std::vector<std::string> env = {"DD_AGENT_IPC_SOCKET=" + config_.GetString("agent_ipc.socket"),
                                  "DOGWATCH_SUPERVISOR_PID=" + std::to_string(getpid())};
  std::vector<ChildSpec> children;
  if (config_.GetBool("system_probe_config.enabled")) {
    children.push_back({"system-probe", JoinPath(bin_dir, "system-probe"), args, env});
  }
  if (config_.GetBool("apm_config.enabled")) {
    children.push_back({"trace-agent", JoinPath(bin_dir, "trace-agent"), args, env});
  }
  // The process-agent also runs for containers alone when a container runtime is there to
  // describe them (the tagger found its socket), as Datadog's container check does.
  const bool containers = config_.GetBool("process_config.container_collection.enabled") && tagger_ &&
                          !tagger::TaggerOptionsFromConfig(config_).runtime_socket.empty();
  // And for the connections check, which needs only system-probe.
  if (config_.GetBool("process_config.process_collection.enabled") || containers ||
      config_.GetBool("network_config.enabled")) {
    children.push_back({"process-agent", JoinPath(bin_dir, "process-agent"), args, env});
  }
  supervisor_ = std::make_unique<Supervisor>();
  return supervisor_->Start(std::move(children));
}

absl::Status Agent::StartMetricPipeline() {
  ASSIGN_OR_RETURN(MetricPipelineOptions options, MetricPipelineOptionsFromConfig(config_, hostname_));
  auto submit = [this](const serializer::Payload& payload) -> absl::Status {
    auto accepted =
        forwarder_->Submit(core::TRACK_METRICS, payload.path, payload.headers, payload.body, "metrics");
    return accepted.status();
  };
  metric_pipeline_ = std::make_unique<MetricPipeline>(std::move(options), submit, tagger_.get());
  return metric_pipeline_->Start();
}

// gRPC's sync server holds one thread for the whole life of every call, and answers
// RESOURCE_EXHAUSTED (which `agent status` and the health checks report as a failure) once its
// quota is spent. Long-lived holders: a WatchConfig stream per sub-agent (three, doubled so a
// restarting sub-agent's new stream can overlap its old one), up to kMaxReplyWaiters Submits parked
// on an intake reply for up to 10 s, and gRPC's own pollers (two). The rest is room for the short
// unary calls (status, health, tagger, Submit) that must still be served while all those are held.
// Eight, the old figure, was spent by three streams, four parked Submits and a poller.
constexpr int kSubAgentWatchStreams = 2 * 3;
constexpr int kGrpcPollers = 2;
constexpr int kUnaryHeadroom = 16;
constexpr int kIpcServerThreads =
    kSubAgentWatchStreams + CoreService::kMaxReplyWaiters + kGrpcPollers + kUnaryHeadroom;

absl::Status Agent::Start() {
  hostname_ = config::ResolveHostname(config_);
  RETURN_IF_ERROR(StartForwarder());

  service_ = std::make_unique<CoreService>(this, &registry_);
  core::ConfigSnapshot snapshot;
  config_.ToSnapshot(&snapshot, 1);
  service_->PublishConfig(std::move(snapshot));

  ASSIGN_OR_RETURN(ipc::PeerPolicy policy,
                   ipc::PeerPolicy::FromConfig(config_.GetStringList("agent_ipc.allowed_uids"),
                                               config_.GetString("agent_ipc.socket_group")));
  ipc::ServerOptions ipc_options{{config_.GetString("agent_ipc.socket"), "agent_ipc.socket",
                                  static_cast<unsigned>(config_.GetInt("agent_ipc.socket_mode")),
                                  config_.GetString("agent_ipc.socket_group"), 64},
                                 std::move(policy),
                                 static_cast<size_t>(config_.GetInt("agent_ipc.max_message_bytes")),
                                 kIpcServerThreads};
  ASSIGN_OR_RETURN(ipc_, ipc::IpcServer::Start(std::move(ipc_options), {service_.get()}));

  if (config_.GetInt("health_port") > 0) {
    http::HttpServerOptions health_options;
    health_options.host = config_.GetString("health_bind_host");
    health_options.port = static_cast<uint16_t>(config_.GetInt("health_port"));
    health_options.max_body_bytes = 4096;
    health_options.threads = 1;
    health_options.log_name = "health";
    auto health = http::HttpServer::Start(
        health_options, [this](const http::HttpRequest& request) { return HandleHealth(request); });
    if (!health.ok())
      return absl::Status(health.status().code(), Cat("health_port: ", health.status().message()));
    health_ = *std::move(health);
  }
  tagger_ = std::make_unique<tagger::Tagger>(tagger::TaggerOptionsFromConfig(config_));
  tagger_->Start();
  RETURN_IF_ERROR(StartMetricPipeline());
  RETURN_IF_ERROR(StartSupervisor());
  started_.store(true);
  logger_->info("dogwatch agent {} running: IPC {}, host '{}'", DOGWATCH_VERSION,
                config_.GetString("agent_ipc.socket"), hostname_);
  return absl::OkStatus();
}

void Agent::Stop() {
  logger_->info("stopping");
  if (supervisor_) supervisor_->Stop(absl::Seconds(10));
  if (service_) service_->StopWatches();
  if (ipc_) ipc_->Shutdown(absl::Seconds(2));
  if (health_) health_->Stop();
  // Before the forwarder: the pipeline's last flush (open buckets included) must still be sent.
  if (metric_pipeline_) metric_pipeline_->Stop();
  if (tagger_) tagger_->Stop();
  if (forwarder_) forwarder_->Stop(absl::Seconds(5));
  if (local_intake_server_) local_intake_server_->Stop();
}

http::HttpReply Agent::HandleHealth(const http::HttpRequest& request) {
  if (request.method != "GET" && request.method != "HEAD") return http::HttpReply::Text(405, "use GET\n");
  if (request.path == "/live") return http::HttpReply::Json(200, R"({"status":"ok"})");
  if (request.path == "/startup") {
    return started() ? http::HttpReply::Json(200, R"({"status":"ok"})")
                     : http::HttpReply::Json(503, R"({"status":"starting"})");
  }
  if (request.path == "/ready") {
    core::HealthResponse health = Health();
    std::string body = Cat(R"({"status":")", health.ready() ? "ok" : "not ready", R"(","unhealthy":[)");
    for (int i = 0; i < health.unhealthy_size(); ++i) {
      strings::AppendTo(&body, i ? "," : "", "\"", health.unhealthy(i), "\"");
    }
    body += "]}";
    return http::HttpReply::Json(health.ready() ? 200 : 503, body);
  }
  return http::HttpReply::Text(404, "unknown health endpoint; use /live, /ready or /startup\n");
}

core::HealthResponse Agent::Health() {
  core::HealthResponse response;
  response.set_live(true);
  for (const auto& name : registry_.StaleComponents()) response.add_unhealthy(name + ": no status report");
  if (!started()) response.add_unhealthy("core: starting");
  response.set_ready(response.unhealthy_size() == 0);
  return response;
}

void Agent::FillStatus(core::StatusResponse* response) {
  core::ComponentStatus* self = response->mutable_core();
  self->set_name("agent");
  self->set_version(DOGWATCH_VERSION);
  self->set_pid(getpid());
  self->set_started_unix_ms(absl::ToUnixMillis(started_at_));
  self->set_state(started() ? "running" : "starting");
  self->set_reported_unix_ms(absl::ToUnixMillis(absl::Now()));
  (*self->mutable_info())["config_file"] = config_path_.empty() ? "(none)" : config_path_;
  (*self->mutable_info())["ipc_socket"] = config_.GetString("agent_ipc.socket");
  if (health_) (*self->mutable_info())["health"] = health_->address();
  if (local_intake_server_) (*self->mutable_info())["local_intake"] = local_intake_server_->address();
  response->set_hostname(hostname_);
  if (forwarder_) *response->mutable_forwarder() = forwarder_->Status();
  if (metric_pipeline_) {
    for (auto& row : metric_pipeline_->Status()) *response->add_components() = std::move(row);
  }
  if (tagger_) *response->add_components() = tagger_->Status();
  if (local_intake_) {
    for (const auto& [name, value] : local_intake_->Counters())
      (*response->mutable_local_intake())[name] = value;
  }
  auto& ipc = *response->mutable_ipc();
  if (ipc_) {
    ipc["accepted_connections"] = ipc_->accepted_connections();
    ipc["refused_connections"] = ipc_->refused_connections();
  }
  ipc["refused_status_reports"] = registry_.refused_reports();
  if (supervisor_) {
    for (const auto& child : supervisor_->States()) {
      (*self->mutable_counters())["supervisor_restarts:" + child.name] = child.restarts;
      (*self->mutable_info())["supervisor:" + child.name] =
          child.pid > 0 ? Cat("running, pid ", child.pid) : Cat("down (", child.last_exit, ")");
    }
  }
}

}  // namespace

absl::StatusOr<config::Config> LoadCoreConfig(const std::string& path, bool required,
                                              const char* const* environment) {
  ASSIGN_OR_RETURN(config::Config config, config::Config::Load({path, required, environment}));
  std::vector<config::SecretReference> refs = config.SecretReferences();
  if (refs.empty()) return config;
  if (config.GetString("secret_backend_command").empty()) {
    return absl::FailedPreconditionError(Cat("key '", refs.front().key, "' uses secret handle ENC[",
                                             refs.front().handle, "] but secret_backend_command is not set"));
  }
  secrets::BackendOptions backend;
  backend.command = config.GetString("secret_backend_command");
  backend.arguments = config.GetStringList("secret_backend_arguments");
  backend.timeout = absl::Seconds(config.GetInt("secret_backend_timeout"));
  backend.max_output_bytes = static_cast<size_t>(config.GetInt("secret_backend_output_max_size"));
  backend.skip_permission_checks = config.GetBool("secret_backend_skip_checks");
  backend.allow_group_exec = config.GetBool("secret_backend_command_allow_group_exec_perm");
  backend.remove_trailing_line_break = config.GetBool("secret_backend_remove_trailing_line_break");
  std::vector<std::string> handles;
  for (const auto& ref : refs) {
    if (std::find(handles.begin(), handles.end(), ref.handle) == handles.end()) handles.push_back(ref.handle);
  }
  auto resolved = secrets::Resolve(backend, handles);
  if (!resolved.ok()) {
    std::string keys;
    for (const auto& ref : refs) strings::AppendTo(&keys, keys.empty() ? "" : ", ", ref.key);
    return absl::Status(resolved.status().code(),
                        Cat(resolved.status().message(), " (needed by: ", keys, ")"));
  }
  std::map<std::string, std::string> values(resolved->begin(), resolved->end());
  RETURN_IF_ERROR(config.ApplySecrets(values));
  return config;
}

int RunAgent(const std::string& config_path, bool config_required) {
  lifecycle::ShutdownSignal::BlockTerminationSignals();
  auto config = LoadCoreConfig(config_path, config_required, environ);
  if (!config.ok()) {
    std::fprintf(stderr, "agent: configuration error: %s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  std::string level = config->GetString("log_level") == "warning" ? "warn" : config->GetString("log_level");
  if (auto status = log::Init("agent", level, config->GetString("log_file")); !status.ok()) {
    std::fprintf(stderr, "agent: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  auto logger = log::Get("core");
  for (const auto& key : config->unknown_keys())
    logger->warn("{}: unknown key '{}' ignored", config_path, key);

  lifecycle::ShutdownSignal shutdown;
  shutdown.WatchSignals(
      [logger] { logger->warn("SIGHUP: live reload is not supported; restart the agent to apply changes"); });
  Agent agent(*std::move(config), config_path);
  absl::Status started = agent.Start();
  if (!started.ok()) {
    logger->critical("cannot start: {}", started.message());
    std::fprintf(stderr, "agent: cannot start: %s\n", std::string(started.message()).c_str());
    agent.Stop();
    return 1;
  }
  shutdown.Wait();
  logger->info("received signal {}, shutting down", shutdown.signal());
  agent.Stop();
  return 0;
}

}  // namespace dogwatch::agent
