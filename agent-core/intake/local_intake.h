#pragma once
// The local intake: what payloads go to when no Datadog API key is configured, and a stand-in for
// the Datadog intake in tests. It answers the Datadog intake paths the way Datadog does (202 {}),
// checks every payload on arrival by decompressing and parsing it (answering 400 with the reason
// when our own agents send something malformed; ValidatePayload), and keeps what it received on
// disk, bounded, for inspection, rendered as JSON when asked for.
//
// Both transports call Accept(): the HTTP server (IntakeServer) and the core's forwarder
// in-process. Accept() also serves the inspection API under /dogwatch/intake/:
//   GET    /dogwatch/intake/payloads?path=<prefix>&since=<seq>&limit=<n>  → [metadata...]
//   GET    /dogwatch/intake/payloads/<seq>          → decoded JSON (422 if it does not decode)
//   GET    /dogwatch/intake/payloads/<seq>?raw=1    → the body as received
//   GET    /dogwatch/intake/stats                   → counters
//   DELETE /dogwatch/intake/payloads                → removes all stored payloads
//   GET    /dogwatch/intake/process_status          → {"active_clients":N,"interval":S}
//   PUT    /dogwatch/intake/process_status?active_clients=N&interval=S → sets what the process
//          paths' ResCollector replies say (either parameter may be left out)
// The inspection API has no authentication: bind the server to loopback or a private socket.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent-core/intake/payload_decoder.h"
#include "agent-core/intake/payload_store.h"
#include "common/http/message.h"
#include "common/log/log.h"

namespace dogwatch::intake {

class LocalIntake {
 public:
  struct Options {
    std::string storage_dir;
    size_t max_bytes = 64 * 1024 * 1024;          // total on disk; oldest evicted beyond
    size_t max_payload_bytes = 32 * 1024 * 1024;  // one body as received; larger → 413
    // Empty: any non-empty key is accepted. Otherwise a key not listed gets
    // 403.
    std::vector<std::string> accepted_api_keys;
    // Payloads without DD-API-KEY (header, or api_key query parameter) get 403.
    bool require_api_key = false;
    size_t max_payloads = 100000;  // stored payload count bound
    // What the ResCollector reply to process payloads says at start: activeClients (> 0 turns the
    // process-agent's real-time checks on) and the real-time interval in seconds.
    int process_active_clients = 0;
    int process_realtime_interval_s = 2;
    DecodeLimits decode_limits;
  };

  using ListFilter = PayloadStore::Query;

  explicit LocalIntake(Options options);

  LocalIntake(const LocalIntake&) = delete;
  LocalIntake& operator=(const LocalIntake&) = delete;

  // Creates the storage directory and loads the index of what it holds.
  absl::Status Open();

  // Handles one request: an intake path, /api/v1/validate, or the inspection API.
  http::HttpReply Accept(const http::HttpRequest& request);

  std::vector<PayloadMeta> List(const ListFilter& filter) const;
  absl::StatusOr<PayloadMeta> Meta(uint64_t seq) const;
  // The stored payload decoded to JSON (see payload_decoder.h for the shapes). NotFound for an
  // unknown or evicted seq; InvalidArgument with the decode error for a malformed payload.
  absl::StatusOr<std::string> Decoded(uint64_t seq) const;
  // The body exactly as received.
  absl::StatusOr<std::string> Raw(uint64_t seq) const;
  absl::Status Clear();

  // received, received_bytes, received:<path>, decode_errors, decode_errors:<path>,
  // rejected_forbidden, rejected_too_large, rejected_not_found, rejected_method, stored_payloads,
  // stored_bytes, evicted_payloads, evicted_bytes, storage_errors, load_errors, validate_requests.
  std::map<std::string, int64_t> Counters() const;

  const Options& options() const { return options_; }

 private:
  http::HttpReply AcceptPayload(const http::HttpRequest& request, PayloadKind kind);
  http::HttpReply Validate(const http::HttpRequest& request);
  http::HttpReply Inspect(const http::HttpRequest& request);
  // Non-OK (403 reason) when the request's API key is missing-but-required or not accepted.
  absl::Status CheckApiKey(const http::HttpRequest& request, bool require) const;
  void Count(const std::string& name, int64_t delta = 1);

  const Options options_;
  PayloadStore store_;
  std::atomic<bool> open_{false};
  mutable std::mutex counters_mu_;
  std::map<std::string, int64_t> counters_;
  std::shared_ptr<spdlog::logger> log_;
  std::atomic<int> process_active_clients_;
  std::atomic<int> process_realtime_interval_s_;
  log::RateLimiter decode_error_log_limiter_{std::chrono::seconds(5)};
};

// The JSON error body Datadog's intake uses: {"errors":["<message>"]}.
http::HttpReply IntakeError(int status, absl::string_view message);

// A counters map as one JSON object (the /dogwatch/intake/stats body).
std::string CountersToJson(const std::map<std::string, int64_t>& counters);

}  // namespace dogwatch::intake
