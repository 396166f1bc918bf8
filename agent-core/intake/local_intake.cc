#include "agent-core/intake/local_intake.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/http/message.h"
#include "datadog/process/agent.pb.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace dogwatch::intake {
namespace {

constexpr absl::string_view kInspectPrefix = "/dogwatch/intake";
constexpr absl::string_view kPayloadsPath = "/dogwatch/intake/payloads";
constexpr absl::string_view kStatsPath = "/dogwatch/intake/stats";
constexpr absl::string_view kProcessStatusPath = "/dogwatch/intake/process_status";
// Bounds for the process reply a test may set (Datadog's RT interval is a few seconds).
constexpr int kMaxActiveClients = 1000;
constexpr int kMaxRealtimeIntervalS = 3600;
constexpr size_t kDefaultListLimit = 100;
constexpr size_t kMaxListLimit = 10000;

// Bounds on what we keep of a request's headers in the stored metadata.
constexpr size_t kMaxStoredHeaders = 64;
constexpr size_t kMaxHeaderNameBytes = 256;
constexpr size_t kMaxHeaderValueBytes = 1024;
constexpr size_t kMaxStoredErrorBytes = 2048;

// Headers carrying credentials are never stored (the API key is kept as a 4-character hint).
bool IsSecretHeader(std::string_view name) {
  for (std::string_view secret :
       {"DD-API-KEY", "DD-APPLICATION-KEY", "Authorization", "Cookie", "Proxy-Authorization"}) {
    if (http::EqualsIgnoreCase(name, secret)) return true;
  }
  return false;
}

std::string ApiKeyOf(const http::HttpRequest& request) {
  if (auto key = request.headers.Get("DD-API-KEY"); key && !key->empty()) return std::string(*key);
  if (auto key = request.QueryParam("api_key"); key && !key->empty()) return std::string(*key);
  return "";
}

// The last 4 characters, and only for keys long enough that this does not reveal most of it.
std::string ApiKeyHint(const std::string& key) { return key.size() >= 8 ? key.substr(key.size() - 4) : ""; }

std::vector<std::pair<std::string, std::string>> StorableHeaders(const http::HttpHeaders& headers) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, value] : headers) {
    if (IsSecretHeader(name)) continue;
    std::string stored_name = name.substr(0, kMaxHeaderNameBytes);
    std::string stored_value = value.substr(0, kMaxHeaderValueBytes);
    // Repeated fields are combined as HTTP allows, so the metadata can be a JSON object.
    auto same = std::find_if(out.begin(), out.end(),
                             [&](const auto& e) { return http::EqualsIgnoreCase(e.first, stored_name); });
    if (same != out.end()) {
      if (same->second.size() + stored_value.size() + 2 <= kMaxHeaderValueBytes) {
        absl::StrAppend(&same->second, ", ", stored_value);
      }
      continue;
    }
    if (out.size() >= kMaxStoredHeaders) continue;
    out.emplace_back(std::move(stored_name), std::move(stored_value));
  }
  return out;
}

http::HttpReply JsonReply(int status, std::string body) {
  return http::HttpReply::Json(status, std::move(body));
}

// What the process agent expects back, as Datadog's intake answers: a framed ResCollector whose
// status says how many live-view clients are watching (activeClients > 0 turns the agent's
// real-time checks on) and the real-time interval in seconds.
std::string ProcessCollectorReply(int active_clients, int interval_s) {
  ProcessMessageHeader header;
  header.encoding = kProcessEncodingProtobuf;
  header.type = kProcessTypeResCollector;
  header.timestamp_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  datadog::process_agent::ResCollector reply;
  reply.mutable_header()->set_type(kProcessTypeResCollector);
  reply.mutable_status()->set_activeclients(active_clients);
  reply.mutable_status()->set_interval(interval_s);
  return EncodeProcessMessageHeaderV3(header) + reply.SerializeAsString();
}

// A query parameter as an integer in [min, max]; nullopt when absent, error text when invalid.
std::optional<int> IntParam(const http::HttpRequest& request, const char* name, int min, int max,
                            std::string* error) {
  auto text = request.QueryParam(name);
  if (!text) return std::nullopt;
  int value = 0;
  if (!absl::SimpleAtoi(absl::string_view(text->data(), text->size()), &value) || value < min ||
      value > max) {
    *error = absl::StrCat(name, " must be an integer in [", min, ", ", max, "]");
    return std::nullopt;
  }
  return value;
}

}  // namespace

http::HttpReply IntakeError(int status, absl::string_view message) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("errors");
  w.StartArray();
  w.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
  w.EndArray();
  w.EndObject();
  return JsonReply(status, std::string(buffer.GetString(), buffer.GetSize()));
}

LocalIntake::LocalIntake(Options options)
    : options_(std::move(options)),
      store_(PayloadStoreOptions{options_.storage_dir, options_.max_bytes, options_.max_payloads}),
      log_(log::Get("intake")),
      process_active_clients_(std::clamp(options_.process_active_clients, 0, kMaxActiveClients)),
      process_realtime_interval_s_(
          std::clamp(options_.process_realtime_interval_s, 1, kMaxRealtimeIntervalS)) {}

absl::Status LocalIntake::Open() {
  absl::Status status = store_.Open();
  if (!status.ok()) return status;
  open_ = true;
  const PayloadStoreStats stats = store_.stats();
  log_->info("local intake storing in {} ({} payloads, {} bytes kept; next seq {})", options_.storage_dir,
             stats.stored_payloads, stats.stored_bytes, store_.next_seq());
  return absl::OkStatus();
}

void LocalIntake::Count(const std::string& name, int64_t delta) {
  std::lock_guard<std::mutex> lock(counters_mu_);
  counters_[name] += delta;
}

std::map<std::string, int64_t> LocalIntake::Counters() const {
  std::map<std::string, int64_t> out;
  {
    std::lock_guard<std::mutex> lock(counters_mu_);
    out = counters_;
  }
  // Always present, so dashboards and tests can read them before anything happened.
  for (const char* name :
       {"received", "received_bytes", "decode_errors", "rejected_forbidden", "rejected_too_large",
        "rejected_not_found", "rejected_method", "validate_requests"}) {
    out.emplace(name, 0);
  }
  const PayloadStoreStats stats = store_.stats();
  out["stored_payloads"] = stats.stored_payloads;
  out["stored_bytes"] = stats.stored_bytes;
  out["evicted_payloads"] = stats.evicted_payloads;
  out["evicted_bytes"] = stats.evicted_bytes;
  out["storage_errors"] = stats.write_errors;
  out["load_errors"] = stats.load_errors;
  return out;
}

absl::Status LocalIntake::CheckApiKey(const http::HttpRequest& request, bool require) const {
  const std::string key = ApiKeyOf(request);
  if (key.empty()) {
    return require ? absl::PermissionDeniedError("missing API key (DD-API-KEY header)") : absl::OkStatus();
  }
  if (!options_.accepted_api_keys.empty() &&
      std::find(options_.accepted_api_keys.begin(), options_.accepted_api_keys.end(), key) ==
          options_.accepted_api_keys.end()) {
    return absl::PermissionDeniedError("invalid API key");
  }
  return absl::OkStatus();
}

http::HttpReply LocalIntake::Accept(const http::HttpRequest& request) {
  if (!open_) return IntakeError(503, "local intake is not open");
  const absl::string_view path = request.path;
  if (path == kInspectPrefix || (path.rfind(kInspectPrefix, 0) == 0 && path.size() > kInspectPrefix.size() &&
                                 path[kInspectPrefix.size()] == '/')) {
    return Inspect(request);
  }
  if (path == "/api/v1/validate") return Validate(request);
  std::optional<PayloadKind> kind =
      PayloadKindForRequest(request.path, request.headers.Has("X-Datadog-EVP-Subdomain"));
  if (!kind) {
    Count("rejected_not_found");
    return IntakeError(404, absl::StrCat("no intake endpoint at ", path.substr(0, 200)));
  }
  if (request.method != "POST" && request.method != "PUT") {
    Count("rejected_method");
    http::HttpReply reply = IntakeError(
        405, absl::StrCat(request.method.substr(0, 16), " not allowed on ", path, " (use POST or PUT)"));
    reply.headers.Add("Allow", "POST, PUT");
    return reply;
  }
  return AcceptPayload(request, *kind);
}

http::HttpReply LocalIntake::AcceptPayload(const http::HttpRequest& request, PayloadKind kind) {
  if (absl::Status key = CheckApiKey(request, options_.require_api_key); !key.ok()) {
    Count("rejected_forbidden");
    return IntakeError(403, key.message());
  }
  if (request.body.size() > options_.max_payload_bytes) {
    Count("rejected_too_large");
    return IntakeError(413, absl::StrCat("payload of ", request.body.size(), " bytes exceeds the limit of ",
                                         options_.max_payload_bytes, " bytes"));
  }

  const std::string content_encoding(request.headers.GetOr("Content-Encoding", ""));
  // Checked, not rendered: the JSON is made when someone asks for the payload (Decoded).
  const absl::Status decoded = ValidatePayload(kind, content_encoding, request.body, options_.decode_limits);

  PayloadMeta meta;
  meta.method = request.method;
  meta.path = request.path;
  meta.content_type = std::string(request.headers.GetOr("Content-Type", ""));
  meta.content_encoding = content_encoding;
  meta.api_key_hint = ApiKeyHint(ApiKeyOf(request));
  meta.decode_status = decoded.ok() ? "ok" : "error";
  if (!decoded.ok()) {
    meta.decode_error = std::string(decoded.message()).substr(0, kMaxStoredErrorBytes);
  }
  meta.headers = StorableHeaders(request.headers);
  const std::string error_text = meta.decode_error;

  absl::StatusOr<uint64_t> seq = store_.Add(std::move(meta), request.body);

  {
    std::lock_guard<std::mutex> lock(counters_mu_);
    counters_["received"] += 1;
    counters_["received_bytes"] += static_cast<int64_t>(request.body.size());
    counters_[absl::StrCat("received:", request.path)] += 1;
    if (!decoded.ok()) {
      counters_["decode_errors"] += 1;
      counters_[absl::StrCat("decode_errors:", request.path)] += 1;
    }
  }
  if (!seq.ok()) {
    log_->error("cannot store payload for {}: {}", request.path, seq.status().message());
    return IntakeError(500, absl::StrCat("cannot store payload: ", seq.status().message()));
  }
  if (!decoded.ok()) {
    uint64_t suppressed = 0;
    if (decode_error_log_limiter_.Allow(&suppressed)) {
      log_->warn("malformed payload #{} on {}: {} ({} similar suppressed)", *seq, request.path, error_text,
                 suppressed);
    }
    return IntakeError(400, absl::StrCat("cannot decode payload for ", request.path, ": ", error_text));
  }
  if (kind == PayloadKind::kProcess) {
    http::HttpReply reply;
    reply.status = 202;
    reply.content_type = "application/x-protobuf";
    reply.body = ProcessCollectorReply(process_active_clients_.load(), process_realtime_interval_s_.load());
    return reply;
  }
  return JsonReply(202, "{}");
}

http::HttpReply LocalIntake::Validate(const http::HttpRequest& request) {
  Count("validate_requests");
  if (absl::Status key = CheckApiKey(request, /*require=*/true); !key.ok()) {
    Count("rejected_forbidden");
    return IntakeError(403, key.message());
  }
  return JsonReply(200, "{\"valid\":true}");
}

std::string CountersToJson(const std::map<std::string, int64_t>& counters) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  for (const auto& [name, value] : counters) {
    w.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    w.Int64(value);
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

http::HttpReply LocalIntake::Inspect(const http::HttpRequest& request) {
  const absl::string_view path = request.path;
  const bool is_get = request.method == "GET" || request.method == "HEAD";

  if (path == kStatsPath) {
    if (!is_get) return IntakeError(405, "use GET");
    return JsonReply(200, CountersToJson(Counters()));
  }

  if (path == kProcessStatusPath) {
    if (request.method == "PUT" || request.method == "POST") {
      std::string error;
      auto active = IntParam(request, "active_clients", 0, kMaxActiveClients, &error);
      auto interval = IntParam(request, "interval", 1, kMaxRealtimeIntervalS, &error);
      if (!error.empty()) return IntakeError(400, error);
      if (active) process_active_clients_.store(*active);
      if (interval) process_realtime_interval_s_.store(*interval);
      log_->info("process replies now say activeClients {} interval {}s", process_active_clients_.load(),
                 process_realtime_interval_s_.load());
    } else if (!is_get) {
      return IntakeError(405, "use GET, PUT or POST");
    }
    return JsonReply(200, absl::StrCat("{\"active_clients\":", process_active_clients_.load(),
                                       ",\"interval\":", process_realtime_interval_s_.load(), "}"));
  }

  if (path == kPayloadsPath || path == absl::StrCat(kPayloadsPath, "/")) {
    if (request.method == "DELETE") {
      const int64_t removed = store_.stats().stored_payloads;
      absl::Status cleared = Clear();
      if (!cleared.ok()) return IntakeError(500, cleared.message());
      return JsonReply(200, absl::StrCat("{\"removed\":", removed, "}"));
    }
    if (!is_get) return IntakeError(405, "use GET or DELETE");
    ListFilter filter;
    filter.limit = kDefaultListLimit;
    if (auto prefix = request.QueryParam("path")) filter.path_prefix = std::string(*prefix);
    if (auto since = request.QueryParam("since")) {
      if (!absl::SimpleAtoi(absl::string_view(since->data(), since->size()), &filter.since_seq)) {
        return IntakeError(400, "since must be a sequence number");
      }
    }
    if (auto limit = request.QueryParam("limit")) {
      if (!absl::SimpleAtoi(absl::string_view(limit->data(), limit->size()), &filter.limit) ||
          filter.limit == 0) {
        return IntakeError(400, "limit must be a positive number");
      }
      filter.limit = std::min(filter.limit, kMaxListLimit);
    }
    std::string body = "[";
    bool first = true;
    for (const PayloadMeta& meta : List(filter)) {
      if (!first) body += ",";
      first = false;
      body += PayloadMetaToJson(meta);
    }
    body += "]";
    return JsonReply(200, std::move(body));
  }

  const std::string item_prefix = absl::StrCat(kPayloadsPath, "/");
  if (path.rfind(item_prefix, 0) == 0) {
    if (!is_get) return IntakeError(405, "use GET");
    uint64_t seq = 0;
    const absl::string_view id = path.substr(item_prefix.size());
    if (!absl::SimpleAtoi(id, &seq)) {
      return IntakeError(400, "payload id must be a sequence number");
    }
    const bool raw = request.QueryParam("raw").value_or("0") != "0";
    if (raw) {
      absl::StatusOr<PayloadMeta> meta = store_.Meta(seq);
      absl::StatusOr<std::string> body = Raw(seq);
      if (!meta.ok() || !body.ok()) {
        return IntakeError(404, !meta.ok() ? meta.status().message() : body.status().message());
      }
      http::HttpReply reply;
      reply.status = 200;
      reply.content_type = meta->content_type.empty() ? "application/octet-stream" : meta->content_type;
      reply.body = std::move(*body);
      // Not Content-Encoding: clients would undo it, and the point is the bytes as received.
      if (!meta->content_encoding.empty()) {
        reply.headers.Add("X-Dogwatch-Content-Encoding", meta->content_encoding);
      }
      return reply;
    }
    absl::StatusOr<std::string> decoded = Decoded(seq);
    if (!decoded.ok()) {
      const int status = decoded.status().code() == absl::StatusCode::kNotFound ? 404 : 422;
      return IntakeError(status, decoded.status().message());
    }
    return JsonReply(200, std::move(*decoded));
  }

  return IntakeError(404, absl::StrCat("no inspection endpoint at ", path.substr(0, 200)));
}

std::vector<PayloadMeta> LocalIntake::List(const ListFilter& filter) const { return store_.List(filter); }

absl::StatusOr<PayloadMeta> LocalIntake::Meta(uint64_t seq) const { return store_.Meta(seq); }

absl::StatusOr<std::string> LocalIntake::Decoded(uint64_t seq) const {
  absl::StatusOr<std::pair<PayloadMeta, std::string>> stored = store_.Read(seq);
  if (!stored.ok()) return stored.status();
  bool evp = false;
  for (const auto& [name, value] : stored->first.headers)
    evp |= http::EqualsIgnoreCase(name, "X-Datadog-EVP-Subdomain");
  std::optional<PayloadKind> kind = PayloadKindForRequest(stored->first.path, evp);
  if (!kind) {
    return absl::InternalError(absl::StrCat("payload ", seq, " has unknown path ", stored->first.path));
  }
  absl::StatusOr<std::string> decoded =
      DecodePayloadToJson(*kind, stored->first.content_encoding, stored->second, options_.decode_limits);
  if (!decoded.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("payload ", seq, " (", stored->first.path,
                                                   ") does not decode: ", decoded.status().message()));
  }
  return decoded;
}

absl::StatusOr<std::string> LocalIntake::Raw(uint64_t seq) const {
  absl::StatusOr<std::pair<PayloadMeta, std::string>> stored = store_.Read(seq);
  if (!stored.ok()) return stored.status();
  return std::move(stored->second);
}

absl::Status LocalIntake::Clear() { return store_.Clear(); }

}  // namespace dogwatch::intake
