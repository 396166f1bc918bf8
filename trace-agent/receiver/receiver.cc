#include "trace-agent/receiver/receiver.h"

#include <sstream>

#include "common/container/container_id.h"
#include "common/log/log.h"
#include "common/strings/strings.h"
#include "trace-agent/decode/decode.h"

namespace dogwatch::trace {
namespace {

using strings::Cat;

// Mirrors dogwatch::core::Track without pulling the IPC headers into the receiver.
constexpr int kTrackTelemetry = 4;
constexpr int kTrackProfiling = 5;
constexpr int kTrackEvp = 6;

http::HttpReply JsonError(int status, std::string_view message) {
  std::string escaped;
  for (char c : message) {
    if (c == '"' || c == '\\') escaped.push_back('\\');
    if (static_cast<unsigned char>(c) >= 0x20) escaped.push_back(c);
  }
  return http::HttpReply::Json(status, Cat("{\"error\":\"", escaped, "\"}"));
}

int64_t HeaderInt(const http::HttpRequest& request, std::string_view name) {
  auto value = request.headers.Get(name);
  if (!value) return 0;
  int64_t out = 0;
  for (char c : *value) {
    if (c < '0' || c > '9' || out > (INT64_MAX - 9) / 10) return 0;
    out = out * 10 + (c - '0');
  }
  return out;
}

// Path characters a proxied request may carry upstream.
bool SafeProxyPath(std::string_view path) {
  if (path.find("..") != std::string_view::npos) return false;
  for (char c : path) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
              c == '-' || c == '_' || c == '.' || c == '~';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string ReceiverTagStats::CounterValue(std::string_view value) {
  std::string out(value.substr(0, kMaxValueBytes));
  for (char& c : out) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-' || c == '/' || c == '+' || c == '@' || c == ':';
    if (!keep) c = '_';
  }
  return out;
}

void ReceiverTagStats::AddPayload(const TracerPayload& payload, std::string_view lang,
                                  std::string_view tracer_version, size_t body_bytes) {
  // Per service in this payload (a handful at most): traces and spans.
  struct Share {
    std::string_view service;
    int64_t traces = 0;
    int64_t spans = 0;
  };
  std::vector<Share> shares;
  int64_t total_spans = 0;
  for (const TraceChunk& chunk : payload.chunks) {
    std::string_view service;
    if (!chunk.spans.empty()) {
      const Span* root = &chunk.spans.front();
      for (const Span& span : chunk.spans) {
        if (span.parent_id == 0) {
          root = &span;
          break;
        }
      }
      service = root->service;
    }
    Share* share = nullptr;
    for (Share& s : shares) {
      if (s.service == service) share = &s;
    }
    if (share == nullptr) share = &shares.emplace_back(Share{service, 0, 0});
    share->traces += 1;
    share->spans += static_cast<int64_t>(chunk.spans.size());
    total_spans += static_cast<int64_t>(chunk.spans.size());
  }
  if (shares.empty()) shares.push_back(Share{});  // an empty payload still counts, with its bytes
  const std::string suffix =
      strings::Cat(",lang=", CounterValue(lang), ",tracer_version=", CounterValue(tracer_version));
  const int64_t bytes = static_cast<int64_t>(body_bytes);
  int64_t bytes_left = bytes;

  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < shares.size(); ++i) {
    const Share& share = shares[i];
    // Bytes in proportion to spans (evenly by trace when there are no spans); the last share takes
    // the rounding remainder, so the shares add up to the body size.
    int64_t share_bytes = bytes_left;
    if (i + 1 < shares.size()) {
      share_bytes =
          total_spans > 0 ? bytes * share.spans / total_spans : bytes / static_cast<int64_t>(shares.size());
      bytes_left -= share_bytes;
    }
    std::string key = strings::Cat("service=", CounterValue(share.service), suffix);
    Totals* totals;
    auto it = by_tag_set_.find(key);
    if (it != by_tag_set_.end()) {
      totals = &it->second;
    } else if (by_tag_set_.size() < max_tag_sets_) {
      totals = &by_tag_set_[std::move(key)];
    } else {
      totals = &other_;
      ++overflow_;
    }
    totals->payloads += 1;
    totals->traces += share.traces;
    totals->spans += share.spans;
    totals->bytes += share_bytes;
  }
}

void ReceiverTagStats::AppendCounters(std::map<std::string, int64_t>* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto add = [out](std::string_view set, const Totals& t) {
    (*out)[strings::Cat("payloads_received:", set)] += t.payloads;
    (*out)[strings::Cat("traces_received:", set)] += t.traces;
    (*out)[strings::Cat("spans_received:", set)] += t.spans;
    (*out)[strings::Cat("bytes_received:", set)] += t.bytes;
  };
  for (const auto& [set, totals] : by_tag_set_) add(set, totals);
  if (overflow_ > 0) add("other", other_);
  (*out)["received_tag_sets"] = static_cast<int64_t>(by_tag_set_.size());
  (*out)["received_tag_sets_overflow"] = overflow_;
}

Receiver::Receiver(ReceiverOptions options, TraceProcessor* processor, ProxyFunction proxy,
                   DogstatsdFunction dogstatsd)
    : options_(std::move(options)),
      processor_(processor),
      proxy_(std::move(proxy)),
      dogstatsd_(std::move(dogstatsd)) {}

Receiver::~Receiver() { Stop(); }

absl::Status Receiver::Start() {
  http::HttpServerOptions base;
  base.max_body_bytes = options_.max_request_bytes;
  base.connection_timeout = std::chrono::seconds(options_.timeout_seconds);
  base.threads = options_.threads;
  base.reply_headers.Add("Datadog-Agent-Version", options_.agent_version);
  base.log_name = "trace-receiver";
  auto handler = [this](const http::HttpRequest& request) { return Handle(request); };
  if (options_.port) {
    http::HttpServerOptions tcp = base;
    tcp.host = options_.host;
    tcp.port = *options_.port;
    auto server = http::HttpServer::Start(tcp, handler);
    if (!server.ok()) {
      return absl::Status(server.status().code(),
                          Cat("apm_config.receiver_port: ", server.status().message()));
    }
    tcp_ = *std::move(server);
  }
  if (!options_.unix_socket_path.empty()) {
    http::HttpServerOptions uds = base;
    uds.unix_socket_path = options_.unix_socket_path;
    // Tracers run as any user: like the Datadog agent's apm.socket, anyone may write to it.
    uds.unix_socket_mode = 0722;
    auto server = http::HttpServer::Start(uds, handler);
    if (!server.ok()) {
      return absl::Status(server.status().code(),
                          Cat("apm_config.receiver_socket: ", server.status().message()));
    }
    unix_ = *std::move(server);
  }
  return absl::OkStatus();
}

void Receiver::Stop() {
  if (tcp_) tcp_->Stop();
  if (unix_) unix_->Stop();
}

uint16_t Receiver::tcp_port() const { return tcp_ ? tcp_->port() : 0; }

void Receiver::Count(const std::string& name, int64_t delta) {
  std::lock_guard<std::mutex> lock(counters_mu_);
  counters_[name] += delta;
}

std::map<std::string, int64_t> Receiver::Counters() const {
  std::lock_guard<std::mutex> lock(counters_mu_);
  auto out = counters_;
  for (auto* server : {tcp_.get(), unix_.get()}) {
    if (server == nullptr) continue;
    auto c = server->counters();
    out["http_requests"] += c.requests;
    out["refused_too_large"] += c.rejected_too_large;
    out["http_errors"] += c.errors;
  }
  tag_stats_.AppendCounters(&out);
  return out;
}

RequestContext Receiver::ContextFor(const http::HttpRequest& request, const std::string& endpoint) const {
  RequestContext ctx;
  ctx.endpoint = endpoint;
  ctx.lang = std::string(request.headers.GetOr("Datadog-Meta-Lang", ""));
  ctx.lang_version = std::string(request.headers.GetOr("Datadog-Meta-Lang-Version", ""));
  ctx.lang_interpreter = std::string(request.headers.GetOr("Datadog-Meta-Lang-Interpreter", ""));
  ctx.tracer_version = std::string(request.headers.GetOr("Datadog-Meta-Tracer-Version", ""));
  ctx.client_computed_stats = !request.headers.GetOr("Datadog-Client-Computed-Stats", "").empty();
  ctx.client_computed_top_level = !request.headers.GetOr("Datadog-Client-Computed-Top-Level", "").empty();
  ctx.client_dropped_p0_traces = HeaderInt(request, "Datadog-Client-Dropped-P0-Traces");
  ctx.client_dropped_p0_spans = HeaderInt(request, "Datadog-Client-Dropped-P0-Spans");
  // Container resolution order (Datadog): the legacy header, then Entity-ID "ci-<id>", then the
  // unix peer's cgroup.
  std::string_view legacy = request.headers.GetOr("Datadog-Container-ID", "");
  std::string_view entity = request.headers.GetOr("Datadog-Entity-ID", "");
  if (!legacy.empty() && legacy.size() <= 128) {
    ctx.container_id = std::string(legacy);
  } else if (entity.starts_with("ci-") && entity.size() <= 131) {
    ctx.container_id = std::string(entity.substr(3));
  } else if (request.peer.credentials) {
    ctx.peer_pid = request.peer.credentials->pid;
    ctx.container_id = container::ContainerIdForPid(request.peer.credentials->pid);
  }
  return ctx;
}

http::HttpReply Receiver::Finish(http::HttpReply reply) const { return reply; }

http::HttpReply Receiver::Handle(const http::HttpRequest& request) {
  const std::string& path = request.path;
  const bool write = request.method == "PUT" || request.method == "POST";
  if (path == "/v0.3/traces" || path == "/v0.4/traces" || path == "/v0.5/traces" || path == "/v0.7/traces") {
    if (!write) return JsonError(405, "use PUT or POST");
    return HandleTraces(request, path.substr(1, 4));
  }
  if (path == "/v0.6/stats") {
    if (!write) return JsonError(405, "use PUT or POST");
    return HandleStats(request);
  }
  if (path == "/info") {
    if (request.method != "GET" && request.method != "HEAD") return JsonError(405, "use GET");
    return Info();
  }
  if (path == "/v0.3/services" || path == "/v0.4/services") return http::HttpReply::Text(200, "OK\n");
  if (path.starts_with("/telemetry/proxy/")) {
    if (!write) return JsonError(405, "use POST");
    return HandleProxy(request, kTrackTelemetry, path.substr(std::string_view("/telemetry/proxy").size()), "",
                       options_.max_request_bytes);
  }
  if (path == "/profiling/v1/input") {
    if (!write) return JsonError(405, "use POST");
    return HandleProxy(request, kTrackProfiling, "/api/v2/profile", "", options_.max_request_bytes);
  }
  if (path.starts_with("/evp_proxy/v1/") || path.starts_with("/evp_proxy/v2/") ||
      path.starts_with("/evp_proxy/v3/") || path.starts_with("/evp_proxy/v4/")) {
    return HandleEvp(request);
  }
  if (path == "/dogstatsd/v1/proxy" || path == "/dogstatsd/v2/proxy") {
    if (!write) return JsonError(405, "use POST");
    return HandleDogstatsd(request);
  }
  if (path == "/v0.7/config") {
    // Remote configuration is off in dogwatch: the Datadog agent answers this way when it is
    // disabled, and tracers stop polling quietly.
    Count("remote_config_polls");
    return JsonError(404, "remote configuration is disabled");
  }
  Count("not_found");
  return JsonError(404, Cat("unknown endpoint ", path.substr(0, 128)));
}

bool Receiver::AdmitBody(size_t bytes) {
  std::unique_lock<std::mutex> lock(inflight_mu_);
  bool admitted = inflight_cv_.wait_for(lock, options_.overload_timeout, [&] {
    return inflight_requests_ == 0 || inflight_bytes_ + bytes <= options_.max_inflight_bytes;
  });
  if (!admitted) return false;
  inflight_bytes_ += bytes;
  ++inflight_requests_;
  return true;
}

void Receiver::ReleaseBody(size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(inflight_mu_);
    inflight_bytes_ -= bytes;
    --inflight_requests_;
  }
  inflight_cv_.notify_all();
}

http::HttpReply Receiver::Refuse(const http::HttpRequest& request, const std::string& version) {
  Count("payloads_refused");
  Count("traces_refused", HeaderInt(request, "X-Datadog-Trace-Count"));
  static log::RateLimiter limiter(std::chrono::seconds(10));
  uint64_t suppressed = 0;
  if (limiter.Allow(&suppressed)) {
    log::Get("trace-receiver")
        ->warn("overloaded: refused a {}-byte {} payload after waiting {} ms ({} more since)",
               request.body.size(), request.path, options_.overload_timeout.count(), suppressed);
  }
  if (request.headers.Has("Datadog-Send-Real-Http-Status"))
    return JsonError(429, "the trace-agent is overloaded, retry later");
  if (version == "v0.3" || version == "stats") return http::HttpReply::Text(200, "OK\n");
  return http::HttpReply::Json(200, processor_->RateByServiceJson());
}

http::HttpReply Receiver::HandleTraces(const http::HttpRequest& request, const std::string& version) {
  if (!AdmitBody(request.body.size())) return Refuse(request, version);
  InflightRelease release{this, request.body.size()};
  RequestContext ctx = ContextFor(request, request.path);
  Count("requests:" + version);
  Count("bytes_received", static_cast<int64_t>(request.body.size()));
  absl::StatusOr<TracerPayload> payload = absl::InternalError("unreachable");
  if (version == "v0.7") {
    payload = DecodeMsgpackTracerPayloadV07(request.body);
  } else {
    absl::StatusOr<std::vector<Trace>> traces = absl::InternalError("unreachable");
    std::string_view content_type = request.headers.GetOr("Content-Type", "");
    if (version == "v0.5") {
      traces = DecodeMsgpackTracesV05(request.body);
    } else if (content_type.find("json") != std::string_view::npos) {
      traces = DecodeJsonTraces(request.body);
    } else {
      traces = DecodeMsgpackTracesV04(request.body);
    }
    if (traces.ok()) {
      TracerPayload p;
      p.chunks.reserve(traces->size());
      for (Trace& trace : *traces) {
        TraceChunk chunk;
        chunk.spans = std::move(trace);
        p.chunks.push_back(std::move(chunk));
      }
      payload = std::move(p);
    } else {
      payload = traces.status();
    }
  }
  if (!payload.ok()) {
    Count("decode_errors:" + version);
    static log::RateLimiter limiter(std::chrono::seconds(10));
    uint64_t suppressed = 0;
    if (limiter.Allow(&suppressed)) {
      log::Get("trace-receiver")
          ->warn("{} from {} {}: cannot decode ({} more since): {}", request.path, ctx.lang,
                 ctx.tracer_version, suppressed, payload.status().message());
    }
    return JsonError(400, Cat("cannot decode ", version, " traces: ", payload.status().message()));
  }
  int64_t spans = 0;
  for (const auto& chunk : payload->chunks) spans += static_cast<int64_t>(chunk.spans.size());
  Count("traces_received", static_cast<int64_t>(payload->chunks.size()));
  Count("spans_received", spans);
  if (!ctx.lang.empty()) {
    Count("traces_received_lang:" + ReceiverTagStats::CounterValue(ctx.lang.substr(0, 32)),
          static_cast<int64_t>(payload->chunks.size()));
  }
  if (payload->language_name.empty()) payload->language_name = ctx.lang;
  if (payload->language_version.empty()) payload->language_version = ctx.lang_version;
  if (payload->tracer_version.empty()) payload->tracer_version = ctx.tracer_version;
  tag_stats_.AddPayload(*payload, payload->language_name, payload->tracer_version, request.body.size());
  if (payload->container_id.empty()) payload->container_id = ctx.container_id;
  processor_->Process(*std::move(payload), ctx);
  if (version == "v0.3") return http::HttpReply::Text(200, "OK\n");
  http::HttpReply reply = http::HttpReply::Json(200, processor_->RateByServiceJson());
  return reply;
}

http::HttpReply Receiver::HandleStats(const http::HttpRequest& request) {
  if (!AdmitBody(request.body.size())) return Refuse(request, "stats");
  InflightRelease release{this, request.body.size()};
  RequestContext ctx = ContextFor(request, request.path);
  Count("stats_payloads");
  absl::Status status = processor_->ProcessClientStats(request.body, ctx);
  if (!status.ok()) {
    Count("stats_decode_errors");
    return JsonError(400, Cat("cannot decode client stats: ", status.message()));
  }
  return http::HttpReply::Text(200, "OK\n");
}

http::HttpReply Receiver::HandleProxy(const http::HttpRequest& request, int track, std::string path,
                                      std::string evp_subdomain, size_t max_bytes) {
  if (request.body.size() > max_bytes) {
    Count("proxy_refused_too_large");
    return JsonError(413, Cat("body larger than ", max_bytes, " bytes"));
  }
  if (!SafeProxyPath(path)) {
    Count("proxy_refused_path");
    return JsonError(400, "invalid characters in the proxied path");
  }
  ProxyRequest out;
  out.track = track;
  out.path = std::move(path);
  out.evp_subdomain = std::move(evp_subdomain);
  out.body = request.body;
  // Only headers that describe the body (and the tracer's own metadata) travel upstream: never
  // credentials, hop-by-hop headers or anything that changes framing.
  for (const auto& [name, value] : request.headers) {
    std::string lower = strings::Lower(name);
    bool keep = lower == "content-type" || lower == "content-encoding" || lower == "user-agent" ||
                lower == "dd-ci-provider-name" || lower.starts_with("dd-telemetry-") ||
                lower.starts_with("dd-client-library-") || lower == "dd-session-id" ||
                lower == "dd-parent-session-id" || lower == "dd-evp-origin" ||
                lower == "dd-evp-origin-version";
    if (keep && out.headers.size() < 24) out.headers.emplace_back(name, value);
  }
  if (!proxy_) return JsonError(503, "no upstream for proxied requests");
  absl::Status status = proxy_(std::move(out));
  std::string counter = track == kTrackTelemetry   ? "telemetry"
                        : track == kTrackProfiling ? "profiling"
                                                   : "evp";
  if (!status.ok()) {
    Count("proxy_errors:" + counter);
    return JsonError(502, Cat("forwarding failed: ", status.message()));
  }
  Count("proxy_requests:" + counter);
  return http::HttpReply::Json(202, "{}");
}

http::HttpReply Receiver::HandleEvp(const http::HttpRequest& request) {
  if (!options_.evp_proxy_enabled) return JsonError(405, "EVP proxy is disabled");
  std::string_view subdomain = request.headers.GetOr("X-Datadog-EVP-Subdomain", "");
  if (subdomain.empty() || subdomain.size() > 128)
    return JsonError(400, "missing X-Datadog-EVP-Subdomain header");
  for (char c : subdomain) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!ok) return JsonError(400, "invalid X-Datadog-EVP-Subdomain");
  }
  // /evp_proxy/vN/<rest>
  std::string_view rest = std::string_view(request.path).substr(std::string_view("/evp_proxy/v2").size());
  return HandleProxy(request, kTrackEvp, std::string(rest), strings::Lower(subdomain),
                     options_.evp_max_payload_bytes);
}

http::HttpReply Receiver::HandleDogstatsd(const http::HttpRequest& request) {
  Count("dogstatsd_proxy_requests");
  if (!dogstatsd_) return JsonError(503, "DogStatsD is not available");
  absl::Status status = dogstatsd_(request.body);
  if (!status.ok()) {
    Count("dogstatsd_proxy_errors");
    return JsonError(503, Cat("DogStatsD: ", status.message()));
  }
  return http::HttpReply::Text(200, "OK\n");
}

http::HttpReply Receiver::Info() const {
  std::ostringstream out;
  out << "{\n"
      << "  \"version\": \"" << options_.agent_version << "\",\n"
      << "  \"git_commit\": \"\",\n"
      << "  \"endpoints\": [\n"
      << "    \"/v0.3/traces\",\n    \"/v0.3/services\",\n    \"/v0.4/traces\",\n    \"/v0.4/services\",\n"
      << "    \"/v0.5/traces\",\n    \"/v0.7/traces\",\n    \"/profiling/v1/input\",\n    "
         "\"/telemetry/proxy/\",\n"
      << "    \"/v0.6/stats\",\n    \"/evp_proxy/v1/\",\n    \"/evp_proxy/v2/\",\n    \"/evp_proxy/v3/\",\n"
      << "    \"/evp_proxy/v4/\",\n    \"/dogstatsd/v1/proxy\",\n    \"/dogstatsd/v2/proxy\"\n"
      << "  ],\n"
      << "  \"feature_flags\": [],\n"
      << "  \"client_drop_p0s\": true,\n"
      << "  \"span_meta_structs\": true,\n"
      << "  \"long_running_spans\": false,\n"
      << "  \"span_events\": false,\n"
      << "  \"evp_proxy_allowed_headers\": [\"Content-Type\", \"Accept-Encoding\", \"Content-Encoding\", "
         "\"User-Agent\", \"DD-CI-PROVIDER-NAME\"],\n"
      << "  \"peer_tags\": null,\n"
      << "  \"span_kinds_stats_computed\": [\"server\", \"consumer\", \"client\", \"producer\"],\n"
      << "  \"obfuscation_version\": 1,\n"
      << "  \"config\": {\n"
      << "    \"default_env\": \"" << options_.default_env << "\",\n"
      << "    \"target_tps\": " << options_.target_tps << ",\n"
      << "    \"receiver_port\": " << tcp_port() << ",\n"
      << "    \"receiver_socket\": \"" << options_.unix_socket_path << "\",\n"
      << "    \"receiver_timeout\": " << options_.timeout_seconds << ",\n"
      << "    \"max_request_bytes\": " << options_.max_request_bytes << ",\n"
      << "    \"statsd_port\": " << options_.statsd_port << "\n"
      << "  }\n"
      << "}\n";
  return http::HttpReply::Json(200, out.str());
}

}  // namespace dogwatch::trace
