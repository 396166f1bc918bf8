#pragma once
// The local intake served over HTTP (`agent intake serve`, and tests that point dd_url,
// apm_config.apm_dd_url and process_config.process_dd_url at it).

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent-core/intake/local_intake.h"
#include "common/http/server.h"

namespace dogwatch::intake {

struct IntakeServerOptions {
  LocalIntake::Options intake;
  // Where to listen and how many threads; max_body_bytes is taken from intake.max_payload_bytes so
  // oversized bodies are refused before they are buffered.
  http::HttpServerOptions http;
};

class IntakeServer {
 public:
  // Opens the intake storage, then starts listening.
  static absl::StatusOr<std::unique_ptr<IntakeServer>> Start(IntakeServerOptions options);

  ~IntakeServer();
  IntakeServer(const IntakeServer&) = delete;
  IntakeServer& operator=(const IntakeServer&) = delete;

  void Stop();

  LocalIntake& intake() { return *intake_; }
  uint16_t port() const { return server_->port(); }
  std::string address() const { return server_->address(); }
  // "http://127.0.0.1:<port>" for a TCP listener: the value for dd_url and friends.
  std::string url() const;

  // The intake's counters plus the HTTP layer's (http_requests, http_errors; bodies refused by the
  // HTTP layer for size count in rejected_too_large).
  std::map<std::string, int64_t> Counters() const;

 private:
  IntakeServer() = default;
  http::HttpReply Handle(const http::HttpRequest& request);

  std::unique_ptr<LocalIntake> intake_;
  std::unique_ptr<http::HttpServer> server_;
};

}  // namespace dogwatch::intake
