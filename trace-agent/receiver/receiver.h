#pragma once
// The trace intake: HTTP on TCP (apm_config.receiver_port) and a unix socket
// (apm_config.receiver_socket), answering every endpoint a Datadog tracer uses the way the
// Datadog trace-agent answers it. Decoded payloads go to a TraceProcessor; side traffic
// (telemetry, profiles, EVP) to a Forwarder function (the core's Submit).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "common/http/server.h"
#include "trace-agent/model/span.h"

namespace dogwatch::trace {

// Who sent a payload, from the request headers and the connection.
struct RequestContext {
  std::string endpoint;  // "/v0.4/traces"
  std::string lang;
  std::string lang_version;
  std::string lang_interpreter;
  std::string tracer_version;
  std::string container_id;
  bool client_computed_stats = false;
  bool client_computed_top_level = false;
  int64_t client_dropped_p0_traces = 0;
  int64_t client_dropped_p0_spans = 0;
  std::optional<pid_t> peer_pid;  // unix socket callers
};

// What the receiver took in, per (service, lang, tracer version): payloads, traces, spans and body
// bytes, like the Datadog receiver's per-tag stats (pkg/trace/info), reported with the receiver's
// counters. A chunk counts under its root's service (the first span with parent_id 0, else its first
// span), as sent, before normalization. A payload counts once under every combination it holds, and
// its bytes are shared out by span count. Bounded: the first `max_tag_sets` combinations are kept,
// later ones add up under "other", and each payload share folded there is counted.
class ReceiverTagStats {
 public:
  static constexpr size_t kDefaultMaxTagSets = 64;
  // Longest service, lang or tracer version kept in a counter name.
  static constexpr size_t kMaxValueBytes = 64;

  explicit ReceiverTagStats(size_t max_tag_sets = kDefaultMaxTagSets) : max_tag_sets_(max_tag_sets) {}

  void AddPayload(const TracerPayload& payload, std::string_view lang, std::string_view tracer_version,
                  size_t body_bytes);
  // Adds "payloads_received:<set>", "traces_received:<set>", "spans_received:<set>",
  // "bytes_received:<set>" with <set> = "service=<s>,lang=<l>,tracer_version=<v>" (or "other"), plus
  // "received_tag_sets" and "received_tag_sets_overflow".
  void AppendCounters(std::map<std::string, int64_t>* out) const;

  // A value as it appears in a counter name: ASCII letters, digits and "._-/+@:" kept, anything
  // else '_', at most kMaxValueBytes (counter names travel as protobuf map keys: valid UTF-8 only).
  static std::string CounterValue(std::string_view value);

 private:
  struct Totals {
    int64_t payloads = 0;
    int64_t traces = 0;
    int64_t spans = 0;
    int64_t bytes = 0;
  };
  const size_t max_tag_sets_;
  mutable std::mutex mu_;
  std::map<std::string, Totals, std::less<>> by_tag_set_;
  Totals other_;
  int64_t overflow_ = 0;
};

class TraceProcessor {
 public:
  virtual ~TraceProcessor() = default;
  // Takes a decoded payload through normalize → obfuscate → stats → sample → write. The payload's
  // spans borrow from the request body, which lives until Process returns: nothing may keep a span
  // string beyond that without copying it (see span.h).
  virtual void Process(TracerPayload payload, const RequestContext& context) = 0;
  // Client-computed stats from /v0.6/stats (msgpack body as received).
  virtual absl::Status ProcessClientStats(std::string_view body, const RequestContext& context) = 0;
  // The body of a v0.4+ reply: {"rate_by_service": {...}}.
  virtual std::string RateByServiceJson() = 0;
};

struct ProxyRequest {
  int track = 0;  // dogwatch::core::Track
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string evp_subdomain;
};
using ProxyFunction = std::function<absl::Status(ProxyRequest)>;
// Lines for the core's DogStatsD (from /dogstatsd/v2/proxy).
using DogstatsdFunction = std::function<absl::Status(std::string_view lines)>;

struct ReceiverOptions {
  std::string host = "127.0.0.1";
  std::optional<uint16_t> port = 8126;  // unset: no TCP listener; 0: an ephemeral port (tests)
  std::string unix_socket_path;         // empty: no unix listener
  size_t max_request_bytes = 25 * 1024 * 1024;
  int timeout_seconds = 5;
  unsigned threads = 4;
  std::string agent_version = DOGWATCH_VERSION;
  // For /info.
  std::string default_env;
  double target_tps = 10;
  int statsd_port = 8125;
  bool evp_proxy_enabled = true;
  size_t evp_max_payload_bytes = 5 * 1024 * 1024;
  // Overload protection, after the Datadog receiver's decoder semaphore: trace and stats bodies
  // being decoded and processed at once may add up to this many bytes (one body alone is always
  // admitted, however large). A request that does not fit waits up to `overload_timeout`, then is
  // refused and counted (payloads_refused, traces_refused): answered 200 with the usual body, so
  // old tracers do not retry, or 429 when the tracer sent Datadog-Send-Real-Http-Status.
  // Decoded spans borrow their strings from the body (span.h), and Process runs to completion (the
  // payload encoded, stats taken) inside the request: a body is counted here for exactly as long as
  // anything refers to it.
  size_t max_inflight_bytes = 8 * 1024 * 1024;
  std::chrono::milliseconds overload_timeout{1000};
};

class Receiver {
 public:
  Receiver(ReceiverOptions options, TraceProcessor* processor, ProxyFunction proxy,
           DogstatsdFunction dogstatsd);
  ~Receiver();

  absl::Status Start();
  void Stop();

  // The request handler, exposed for in-process tests.
  http::HttpReply Handle(const http::HttpRequest& request);
  std::map<std::string, int64_t> Counters() const;
  uint16_t tcp_port() const;

 private:
  http::HttpReply HandleTraces(const http::HttpRequest& request, const std::string& version);
  http::HttpReply HandleStats(const http::HttpRequest& request);
  http::HttpReply HandleProxy(const http::HttpRequest& request, int track, std::string path,
                              std::string evp_subdomain, size_t max_bytes);
  http::HttpReply HandleEvp(const http::HttpRequest& request);
  http::HttpReply HandleDogstatsd(const http::HttpRequest& request);
  http::HttpReply Info() const;
  http::HttpReply Finish(http::HttpReply reply) const;
  RequestContext ContextFor(const http::HttpRequest& request, const std::string& endpoint) const;
  void Count(const std::string& name, int64_t delta = 1);
  // Admission against options_.max_inflight_bytes; false when the wait timed out.
  bool AdmitBody(size_t bytes);
  void ReleaseBody(size_t bytes);
  struct InflightRelease {
    Receiver* receiver;
    size_t bytes;
    ~InflightRelease() { receiver->ReleaseBody(bytes); }
  };
  http::HttpReply Refuse(const http::HttpRequest& request, const std::string& version);

  const ReceiverOptions options_;
  TraceProcessor* processor_;
  ProxyFunction proxy_;
  DogstatsdFunction dogstatsd_;
  std::unique_ptr<http::HttpServer> tcp_;
  std::unique_ptr<http::HttpServer> unix_;
  mutable std::mutex counters_mu_;
  std::map<std::string, int64_t> counters_;
  ReceiverTagStats tag_stats_;
  std::mutex inflight_mu_;
  std::condition_variable inflight_cv_;
  size_t inflight_bytes_ = 0;
  size_t inflight_requests_ = 0;
};

}  // namespace dogwatch::trace
