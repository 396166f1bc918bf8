#pragma once
// A small blocking HTTP(S) client on one libcurl easy handle.
//
// The handle is reused across requests so connections stay alive (one TLS handshake per intake
// connection, not per payload). A Client is not thread-safe: give each sending thread its own.

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace dogwatch::http {

struct Request {
  std::string method = "POST";  // POST, PUT, GET, HEAD or another verb (sent as-is, with body)
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view body;  // must outlive Send
};

struct Response {
  long status = 0;
  std::string body;  // at most ClientOptions::max_response_body_bytes: we only log it
  bool body_truncated = false;
};

struct ClientOptions {
  absl::Duration timeout = absl::Seconds(20);  // whole request (forwarder_timeout)
  absl::Duration connect_timeout = absl::Seconds(10);
  bool skip_ssl_validation = false;
  // Proxy URL (http://user:pass@host:port). Empty means no proxy at all: the *_proxy environment
  // variables are deliberately ignored so that what the config says is what happens.
  std::string proxy;
  std::string no_proxy;  // comma-separated hosts that bypass `proxy`
  std::string user_agent;
  size_t max_response_body_bytes = 64 * 1024;
  // When set and true, transfers in progress abort promptly (shutdown); Send returns Cancelled.
  const std::atomic<bool>* cancel = nullptr;
};

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Any HTTP status is a Response (the caller decides what a 5xx means). Errors: Unavailable with
  // curl's message for transport failures (DNS, refused, TLS, timeout), Cancelled when the cancel
  // flag stopped it, InvalidArgument for a request curl cannot express. Redirects are not followed.
  absl::StatusOr<Response> Send(const Request& request);

 private:
  struct State;
  ClientOptions options_;
  std::unique_ptr<State> state_;
};

}  // namespace dogwatch::http
