#pragma once
// The core's IPC service (dogwatch.core.Core) on agent_ipc.socket.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>

#include "absl/status/statusor.h"
#include "agent-core/core/status_registry.h"
#include "agent-core/forwarder/reply.h"
#include "dogwatch/core.grpc.pb.h"

namespace dogwatch::agent {

// What the service needs from the rest of the core, so it can be tested without a forwarder.
class CoreBackend {
 public:
  virtual ~CoreBackend() = default;
  // `reply`, when set, collects the intake's answers (see forwarder/reply.h); size it with
  // DestinationCount(request.track()).
  virtual absl::StatusOr<int> Submit(const core::SubmitRequest& request,
                                     std::shared_ptr<forwarder::ReplySink> reply) = 0;
  virtual size_t DestinationCount(core::Track track) = 0;
  virtual void FillStatus(core::StatusResponse* response) = 0;
  virtual core::HealthResponse Health() = 0;
  // Container id and tags for an origin; NotFound-free: an unknown origin has no tags.
  virtual absl::StatusOr<core::TaggerLookupResponse> TaggerLookup(
      const core::TaggerLookupRequest& request) = 0;
};

class CoreService final : public core::Core::Service {
 public:
  CoreService(CoreBackend* backend, StatusRegistry* registry) : backend_(backend), registry_(registry) {}

  // Publishes a new effective config to GetConfig and every WatchConfig stream.
  void PublishConfig(core::ConfigSnapshot snapshot);
  // Ends WatchConfig streams so the server can shut down.
  void StopWatches();

  grpc::Status GetConfig(grpc::ServerContext*, const core::GetConfigRequest*, core::ConfigSnapshot*) override;
  grpc::Status WatchConfig(grpc::ServerContext*, const core::WatchConfigRequest*,
                           grpc::ServerWriter<core::ConfigSnapshot>*) override;
  grpc::Status Submit(grpc::ServerContext*, const core::SubmitRequest*, core::SubmitResponse*) override;
  grpc::Status ReportStatus(grpc::ServerContext*, const core::ComponentStatus*,
                            core::ReportStatusResponse*) override;
  grpc::Status GetStatus(grpc::ServerContext*, const core::StatusRequest*, core::StatusResponse*) override;
  grpc::Status TaggerLookup(grpc::ServerContext*, const core::TaggerLookupRequest*,
                            core::TaggerLookupResponse*) override;
  grpc::Status Health(grpc::ServerContext*, const core::HealthRequest*, core::HealthResponse*) override;

  // Validation of a Submit request, exposed for tests and the fuzz target.
  static absl::Status ValidateSubmit(const core::SubmitRequest& request);

  // Bounds on waiting for the intake's answer (SubmitRequest.reply_timeout_ms): each wait holds an
  // IPC server thread, so only a few may wait at once; the others return without replies.
  static constexpr int64_t kMaxReplyTimeoutMs = 10000;
  static constexpr size_t kMaxReplyBodyBytes = 64 * 1024;
  static constexpr int kMaxReplyWaiters = 4;

 private:
  CoreBackend* backend_;
  StatusRegistry* registry_;
  std::mutex mu_;
  std::condition_variable changed_;
  core::ConfigSnapshot snapshot_;
  bool stopping_ = false;
  std::atomic<int> reply_waiters_{0};
};

}  // namespace dogwatch::agent
