#pragma once
// What every sub-agent (trace-agent, process-agent) needs from the core: its configuration at
// start (with retries while the core comes up), config changes, status reports and payload
// submission. One gRPC channel per process; gRPC reconnects by itself.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config/config.h"
#include "dogwatch/core.grpc.pb.h"

namespace dogwatch::core_client {

class CoreClient {
 public:
  CoreClient(std::string socket_path, size_t max_message_bytes);
  ~CoreClient();

  // Waits for the core up to `deadline`, retrying with backoff; the error says what was tried.
  absl::StatusOr<core::ConfigSnapshot> FetchConfig(absl::Duration deadline);

  // Streams new snapshots to `on_change` from a background thread until Stop().
  void WatchConfig(uint64_t known_generation, std::function<void(const core::ConfigSnapshot&)> on_change);

  absl::StatusOr<core::SubmitResponse> Submit(const core::SubmitRequest& request, absl::Duration timeout);
  // The core tagger's answer for an origin (container id, pid or cgroup inode).
  absl::StatusOr<core::TaggerLookupResponse> TaggerLookup(const core::TaggerLookupRequest& request,
                                                          absl::Duration timeout);

  // Reports `status` now and then every interval the core asks for, from a background thread;
  // `refresh` fills in counters and state before each report.
  void StartStatusReports(core::ComponentStatus base, std::function<void(core::ComponentStatus*)> refresh);

  void Stop();

  core::Core::Stub* stub() { return stub_.get(); }
  const std::string& socket_path() const { return socket_path_; }

 private:
  std::string socket_path_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<core::Core::Stub> stub_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread watch_thread_;
  std::thread report_thread_;
  std::unique_ptr<grpc::ClientContext> watch_context_;
};

// Loads a sub-agent's configuration: the core's snapshot plus its own DD_* environment.
// `socket_path` comes from -c file / env (agent_ipc.socket) before the core is reachable.
struct SubAgentConfig {
  config::Config config;
  std::unique_ptr<CoreClient> client;
};
// Waits for the core up to agent_ipc.connect_timeout.
absl::StatusOr<SubAgentConfig> ConnectAndLoad(const std::string& config_file, const char* const* environment);

}  // namespace dogwatch::core_client
