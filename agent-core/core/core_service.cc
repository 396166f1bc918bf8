#include "agent-core/core/core_service.h"

#include <algorithm>

#include "common/strings/strings.h"

namespace dogwatch::agent {
namespace {

constexpr size_t kMaxPathBytes = 512;
constexpr int kMaxHeaders = 32;
constexpr size_t kMaxHeaderBytes = 8192;

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

bool IsTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

}  // namespace

absl::Status CoreService::ValidateSubmit(const core::SubmitRequest& request) {
  if (request.track() == core::TRACK_UNSPECIFIED || !core::Track_IsValid(request.track())) {
    return absl::InvalidArgumentError("submit: track is missing or unknown");
  }
  const std::string& path = request.path();
  if (path.empty() || path.front() != '/' || path.size() > kMaxPathBytes) {
    return absl::InvalidArgumentError(
        strings::Cat("submit: path must start with '/' and be at most ", kMaxPathBytes, " bytes"));
  }
  for (char c : path) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '#') {
      return absl::InvalidArgumentError("submit: path contains a control character, space or '#'");
    }
  }
  if (!request.evp_subdomain().empty()) {
    if (request.track() != core::TRACK_EVP || request.evp_subdomain().size() > 128) {
      return absl::InvalidArgumentError("submit: evp_subdomain is for TRACK_EVP only, at most 128 bytes");
    }
    for (char c : request.evp_subdomain()) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
      if (!ok) return absl::InvalidArgumentError("submit: evp_subdomain may only hold a-z, 0-9, '-' and '.'");
    }
  }
  if (request.headers_size() > kMaxHeaders) {
    return absl::InvalidArgumentError(strings::Cat("submit: more than ", kMaxHeaders, " headers"));
  }
  for (const auto& header : request.headers()) {
    if (header.name().empty() || header.name().size() + header.value().size() > kMaxHeaderBytes) {
      return absl::InvalidArgumentError("submit: header name empty or header too long");
    }
    for (char c : header.name()) {
      if (!IsTokenChar(c)) {
        return absl::InvalidArgumentError(
            strings::Cat("submit: header name '", header.name(), "' is not a token"));
      }
    }
    for (char c : header.value()) {
      // CR/LF would let a sub-agent inject headers into the intake request.
      if (c == '\r' || c == '\n' || c == '\0') {
        return absl::InvalidArgumentError(
            strings::Cat("submit: header '", header.name(), "' contains a line break or NUL"));
      }
    }
    // Only the core decides which API key and framing a request carries.
    std::string lower = strings::Lower(header.name());
    if (lower == "dd-api-key" || lower == "host" || lower == "content-length" ||
        lower == "transfer-encoding") {
      return absl::InvalidArgumentError(
          strings::Cat("submit: header '", header.name(), "' is set by the core"));
    }
  }
  return absl::OkStatus();
}

void CoreService::PublishConfig(core::ConfigSnapshot snapshot) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_ = std::move(snapshot);
  }
  changed_.notify_all();
}

void CoreService::StopWatches() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
}

grpc::Status CoreService::GetConfig(grpc::ServerContext*, const core::GetConfigRequest*,
                                    core::ConfigSnapshot* response) {
  std::lock_guard<std::mutex> lock(mu_);
  if (snapshot_.generation() == 0)
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "config not loaded yet");
  *response = snapshot_;
  return grpc::Status::OK;
}

grpc::Status CoreService::WatchConfig(grpc::ServerContext* context, const core::WatchConfigRequest* request,
                                      grpc::ServerWriter<core::ConfigSnapshot>* writer) {
  uint64_t known = request->known_generation();
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_ && !context->IsCancelled()) {
    if (snapshot_.generation() > known) {
      core::ConfigSnapshot copy = snapshot_;
      known = copy.generation();
      lock.unlock();
      if (!writer->Write(copy)) return grpc::Status::CANCELLED;
      lock.lock();
      continue;
    }
    // Wake up now and then to notice a cancelled client: the sync API has no cancel callback.
    changed_.wait_for(lock, std::chrono::seconds(1));
  }
  return grpc::Status::OK;
}

grpc::Status CoreService::Submit(grpc::ServerContext*, const core::SubmitRequest* request,
                                 core::SubmitResponse* response) {
  absl::Status valid = ValidateSubmit(*request);
  if (!valid.ok()) return ToGrpc(valid);
  std::shared_ptr<forwarder::ReplySink> sink;
  bool waiting = false;
  if (request->reply_timeout_ms() > 0) {
    if (reply_waiters_.fetch_add(1) < kMaxReplyWaiters) {
      waiting = true;
      sink = std::make_shared<forwarder::ReplySink>(backend_->DestinationCount(request->track()),
                                                    kMaxReplyBodyBytes);
    } else {
      reply_waiters_.fetch_sub(1);
    }
  }
  auto transactions = backend_->Submit(*request, sink);
  if (transactions.ok() && sink != nullptr) {
    const int64_t timeout_ms = std::min<int64_t>(request->reply_timeout_ms(), kMaxReplyTimeoutMs);
    for (auto& reply : sink->Wait(absl::Milliseconds(timeout_ms))) {
      auto* out = response->add_replies();
      out->set_destination(std::move(reply.destination));
      out->set_status_code(static_cast<uint32_t>(reply.status));
      out->set_body(std::move(reply.body));
      out->set_truncated(reply.truncated);
    }
  }
  if (waiting) reply_waiters_.fetch_sub(1);
  if (!transactions.ok()) return ToGrpc(transactions.status());
  response->set_transactions(static_cast<uint32_t>(*transactions));
  return grpc::Status::OK;
}

grpc::Status CoreService::ReportStatus(grpc::ServerContext*, const core::ComponentStatus* request,
                                       core::ReportStatusResponse* response) {
  absl::Status updated = registry_->Update(*request);
  if (!updated.ok()) return ToGrpc(updated);
  response->set_report_interval_seconds(
      static_cast<uint32_t>(absl::ToInt64Seconds(registry_->report_interval())));
  return grpc::Status::OK;
}

grpc::Status CoreService::GetStatus(grpc::ServerContext*, const core::StatusRequest*,
                                    core::StatusResponse* response) {
  backend_->FillStatus(response);
  for (auto& component : registry_->Snapshot()) *response->add_components() = std::move(component);
  return grpc::Status::OK;
}

grpc::Status CoreService::TaggerLookup(grpc::ServerContext*, const core::TaggerLookupRequest* request,
                                       core::TaggerLookupResponse* response) {
  if (request->container_id().size() > 256 || request->cardinality().size() > 32 || request->pid() < 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "tagger: container_id at most 256 bytes, cardinality at most 32, pid not negative");
  }
  absl::StatusOr<core::TaggerLookupResponse> answer = backend_->TaggerLookup(*request);
  if (!answer.ok())
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(answer.status().message()));
  *response = *std::move(answer);
  return grpc::Status::OK;
}

grpc::Status CoreService::Health(grpc::ServerContext*, const core::HealthRequest*,
                                 core::HealthResponse* response) {
  *response = backend_->Health();
  return grpc::Status::OK;
}

}  // namespace dogwatch::agent
