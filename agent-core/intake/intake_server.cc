#include "agent-core/intake/intake_server.h"

#include "absl/strings/str_cat.h"

namespace dogwatch::intake {

absl::StatusOr<std::unique_ptr<IntakeServer>> IntakeServer::Start(IntakeServerOptions options) {
  std::unique_ptr<IntakeServer> server(new IntakeServer());
  server->intake_ = std::make_unique<LocalIntake>(options.intake);
  absl::Status opened = server->intake_->Open();
  if (!opened.ok()) return opened;

  options.http.max_body_bytes = options.intake.max_payload_bytes;
  if (options.http.log_name == "http") options.http.log_name = "intake-http";
  IntakeServer* self = server.get();
  absl::StatusOr<std::unique_ptr<http::HttpServer>> http = http::HttpServer::Start(
      std::move(options.http), [self](const http::HttpRequest& r) { return self->Handle(r); });
  if (!http.ok()) return http.status();
  server->server_ = std::move(*http);
  return server;
}

IntakeServer::~IntakeServer() { Stop(); }

void IntakeServer::Stop() {
  // The HTTP server goes first: its handlers use the intake.
  if (server_ != nullptr) server_->Stop();
}

std::string IntakeServer::url() const { return absl::StrCat("http://", server_->address()); }

std::map<std::string, int64_t> IntakeServer::Counters() const {
  std::map<std::string, int64_t> out = intake_->Counters();
  if (server_ != nullptr) {
    const http::HttpServerCounters http = server_->counters();
    out["http_requests"] = http.requests;
    out["http_errors"] = http.errors;
    out["rejected_too_large"] += http.rejected_too_large;
  }
  return out;
}

http::HttpReply IntakeServer::Handle(const http::HttpRequest& request) {
  // The stats endpoint shows the HTTP layer's counters too, which the intake alone cannot see.
  if (request.path == "/dogwatch/intake/stats" && (request.method == "GET" || request.method == "HEAD")) {
    return http::HttpReply::Json(200, CountersToJson(Counters()));
  }
  return intake_->Accept(request);
}

}  // namespace dogwatch::intake
