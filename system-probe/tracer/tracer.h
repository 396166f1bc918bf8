// The live network tracer: the loaded programs, a thread draining their ring buffer (closed
// connections, DNS answers), housekeeping of the kernel maps (idle UDP flows, released sockets,
// DNS timeouts) and the per-client state behind GetConnections.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/log/log.h"
#include "system-probe/tracer/connection_state.h"
#include "system-probe/tracer/loader.h"

struct ring_buffer;

namespace dogwatch::sysprobe {

struct TracerOptions {
  LoaderOptions loader;
  StateLimits limits;
  absl::Duration udp_idle_timeout = absl::Seconds(120);  // an idle UDP flow is reported closed
  absl::Duration dns_timeout = absl::Seconds(15);        // dns_timeout_in_s
  absl::Duration housekeeping_interval = absl::Seconds(10);
  size_t max_released_cookies = 65536;
};

class NetworkTracer {
 public:
  // Loads and attaches the programs; starts no thread, so the caller can drop privileges first.
  static absl::StatusOr<std::unique_ptr<NetworkTracer>> Load(TracerOptions options);
  // Starts draining the ring buffer and the periodic housekeeping.
  void StartWorker();
  ~NetworkTracer();

  // Every active connection with this client's deltas, then those closed since its last call.
  absl::StatusOr<ClientReply> GetConnections(std::string_view client_id);
  // The current table, absolute counters, no client state touched (for `system-probe connections`).
  std::vector<std::shared_ptr<const ConnSnapshot>> Snapshot();
  // Everything counted: kernel-side drops, ring buffer, state buffers, clients.
  std::map<std::string, int64_t> Counters();

  const NetworkProbe& probe() const { return *probe_; }
  // One read of the connection map: fails when the process lacks what the kernel wants for it.
  absl::Status CheckMapAccess();

 private:
  explicit NetworkTracer(TracerOptions options) : options_(std::move(options)), state_(options_.limits) {}
  void ConsumeLoop();
  int HandleEvent(const void* data, size_t size);  // ring buffer callback, under mu_
  // Reads the kernel table. Finalizes (as closed, removed from the kernel map) the flows flagged
  // closed, idle UDP flows and flows of released sockets; returns the rest.
  std::vector<std::shared_ptr<const ConnSnapshot>> ScanConnections(bool finalize)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireDnsQueries() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  TracerOptions options_;
  std::unique_ptr<NetworkProbe> probe_;
  ring_buffer* ring_ = nullptr;
  std::thread consumer_;
  std::atomic<bool> stop_{false};

  absl::Mutex mu_;
  ConnectionState state_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<uint64_t> released_cookies_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> counters_ ABSL_GUARDED_BY(mu_);
  log::RateLimiter sync_errors_log_ ABSL_GUARDED_BY(mu_){std::chrono::seconds(60)};
};

}  // namespace dogwatch::sysprobe
