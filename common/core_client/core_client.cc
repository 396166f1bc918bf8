#include "common/core_client/core_client.h"

#include <condition_variable>

#include "common/ipc/grpc_server.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "common/strings/strings.h"
#include "grpcpp/grpcpp.h"

namespace dogwatch::core_client {
namespace {

std::chrono::system_clock::time_point Deadline(absl::Duration timeout) {
  return std::chrono::system_clock::now() + std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout));
}

absl::Status FromGrpc(const grpc::Status& status, std::string_view what) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      strings::Cat(what, ": ", status.error_message()));
}

}  // namespace

CoreClient::CoreClient(std::string socket_path, size_t max_message_bytes)
    : socket_path_(std::move(socket_path)),
      channel_(ipc::CreateUnixChannel(socket_path_, max_message_bytes)),
      stub_(core::Core::NewStub(channel_)) {}

CoreClient::~CoreClient() { Stop(); }

absl::StatusOr<core::ConfigSnapshot> CoreClient::FetchConfig(absl::Duration deadline) {
  absl::Time give_up = absl::Now() + deadline;
  absl::Duration wait = absl::Milliseconds(100);
  grpc::Status last;
  while (true) {
    grpc::ClientContext context;
    context.set_deadline(Deadline(absl::Seconds(2)));
    context.set_wait_for_ready(true);
    core::ConfigSnapshot snapshot;
    last = stub_->GetConfig(&context, core::GetConfigRequest(), &snapshot);
    if (last.ok()) return snapshot;
    if (absl::Now() + wait > give_up || stopping_.load()) break;
    absl::SleepFor(wait);
    wait = std::min(wait * 2, absl::Seconds(2));
  }
  return absl::UnavailableError(strings::Cat("cannot get configuration from the core agent at '",
                                             socket_path_, "' (agent_ipc.socket): ", last.error_message(),
                                             " — is `agent run` up, and may this user open the socket?"));
}

void CoreClient::WatchConfig(uint64_t known_generation,
                             std::function<void(const core::ConfigSnapshot&)> on_change) {
  watch_thread_ = std::thread([this, known_generation, on_change = std::move(on_change)]() mutable {
    auto logger = log::Get("core-client");
    while (!stopping_.load()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        watch_context_ = std::make_unique<grpc::ClientContext>();
        watch_context_->set_wait_for_ready(true);
      }
      core::WatchConfigRequest request;
      request.set_known_generation(known_generation);
      auto reader = stub_->WatchConfig(watch_context_.get(), request);
      core::ConfigSnapshot snapshot;
      while (reader->Read(&snapshot)) {
        known_generation = snapshot.generation();
        on_change(snapshot);
      }
      grpc::Status status = reader->Finish();
      if (stopping_.load()) break;
      logger->debug("config watch ended ({}), reconnecting", status.error_message());
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_.load(); });
    }
  });
}

absl::StatusOr<core::SubmitResponse> CoreClient::Submit(const core::SubmitRequest& request,
                                                        absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(Deadline(timeout));
  context.set_wait_for_ready(true);
  core::SubmitResponse response;
  RETURN_IF_ERROR(FromGrpc(stub_->Submit(&context, request, &response), "submit to core"));
  return response;
}

absl::StatusOr<core::TaggerLookupResponse> CoreClient::TaggerLookup(const core::TaggerLookupRequest& request,
                                                                    absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(Deadline(timeout));
  core::TaggerLookupResponse response;
  RETURN_IF_ERROR(FromGrpc(stub_->TaggerLookup(&context, request, &response), "tagger lookup"));
  return response;
}

void CoreClient::StartStatusReports(core::ComponentStatus base,
                                    std::function<void(core::ComponentStatus*)> refresh) {
  report_thread_ = std::thread([this, base = std::move(base), refresh = std::move(refresh)] {
    auto logger = log::Get("core-client");
    log::RateLimiter failures(std::chrono::seconds(60));
    auto interval = std::chrono::seconds(10);
    while (!stopping_.load()) {
      core::ComponentStatus status = base;
      if (refresh) refresh(&status);
      status.set_reported_unix_ms(absl::ToUnixMillis(absl::Now()));
      grpc::ClientContext context;
      context.set_deadline(Deadline(absl::Seconds(2)));
      core::ReportStatusResponse response;
      grpc::Status rpc = stub_->ReportStatus(&context, status, &response);
      uint64_t suppressed = 0;
      if (rpc.ok()) {
        if (response.report_interval_seconds() > 0)
          interval = std::chrono::seconds(response.report_interval_seconds());
      } else if (failures.Allow(&suppressed)) {
        logger->warn("status report to the core failed: {}", rpc.error_message());
      }
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, interval, [this] { return stopping_.load(); });
    }
  });
}

void CoreClient::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_.exchange(true)) return;
    if (watch_context_) watch_context_->TryCancel();
  }
  cv_.notify_all();
  if (watch_thread_.joinable()) watch_thread_.join();
  if (report_thread_.joinable()) report_thread_.join();
}

absl::StatusOr<SubAgentConfig> ConnectAndLoad(const std::string& config_file,
                                              const char* const* environment) {
  // The socket path itself must be known before the core can be asked for anything else.
  ASSIGN_OR_RETURN(config::Config local,
                   config::Config::Load({config_file, !config_file.empty(), environment}));
  auto client = std::make_unique<CoreClient>(
      local.GetString("agent_ipc.socket"), static_cast<size_t>(local.GetInt("agent_ipc.max_message_bytes")));
  ASSIGN_OR_RETURN(core::ConfigSnapshot snapshot,
                   client->FetchConfig(absl::Seconds(local.GetInt("agent_ipc.connect_timeout"))));
  ASSIGN_OR_RETURN(config::Config merged, config::Config::FromSnapshot(snapshot, environment));
  return SubAgentConfig{std::move(merged), std::move(client)};
}

}  // namespace dogwatch::core_client
