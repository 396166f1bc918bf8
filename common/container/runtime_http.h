#pragma once
// A small HTTP/1.1 client for the container runtime's API on a unix socket (GET only), so the
// processes that read container metadata (process-agent, core tagger, trace-agent) do not load
// libcurl and the TLS, LDAP, Kerberos and SSH libraries it brings: a unix socket needs none of them.
//
//   ResponseParser  incremental, bounded parser of one response: status line, headers, and a body
//                   framed by Content-Length, chunked transfer coding (what /events streams), or
//                   the end of the connection. Pure: the fuzz target drives it directly.
//   UnixHttpGet     one request per connection (Connection: close), with connect and total
//                   timeouts, a should_stop poll for endless streams, and the body handed to a
//                   callback as it arrives.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/http/message.h"

namespace dogwatch::container {

struct HttpLimits {
  size_t max_header_bytes = 64 * 1024;  // status line + headers
  size_t max_headers = 128;
  size_t max_chunk_line_bytes = 1024;  // "<hex size>[;ext]\r\n" and each trailer line
  // Body bytes handed out in total (0: unbounded, for streams that are read until stopped).
  size_t max_body_bytes = 32 * 1024 * 1024;
};

class ResponseParser {
 public:
  // Called with each piece of the decoded body (chunk framing removed), in order; an error stops
  // the parse and is returned by Feed.
  using BodyCallback = std::function<absl::Status(std::string_view)>;

  ResponseParser(HttpLimits limits, BodyCallback on_body);

  // Consumes `data`. Errors (InvalidArgument for malformed input, ResourceExhausted past a limit)
  // are final: later calls return the same error.
  absl::Status Feed(std::string_view data);
  // The peer closed the connection: completes a body framed by the connection's end; an error when
  // the response was cut short.
  absl::Status Finish();

  bool headers_done() const { return state_ > State::kHeaders; }
  bool done() const { return state_ == State::kDone; }
  int status() const { return status_; }
  // Header names as received; Get() looks them up ignoring case.
  const http::HttpHeaders& headers() const { return headers_; }
  size_t body_bytes() const { return body_bytes_; }

 private:
  enum class State {
    kHeaders,
    kLengthBody,
    kChunkSize,
    kChunkData,
    kChunkDataEnd,
    kTrailers,
    kCloseBody,
    kDone
  };
  absl::Status Fail(absl::Status status);
  absl::Status ParseHead(std::string_view head);
  absl::Status Deliver(std::string_view data);
  absl::Status Process(size_t* pos);
  absl::Status ChooseFraming();

  const HttpLimits limits_;
  BodyCallback on_body_;
  State state_ = State::kHeaders;
  absl::Status error_;
  std::string pending_;  // bytes fed but not consumed yet: a partial head or chunk line
  size_t trailers_ = 0;
  int status_ = 0;
  http::HttpHeaders headers_;
  uint64_t remaining_ = 0;  // of the Content-Length body or the current chunk
  size_t body_bytes_ = 0;
};

struct UnixHttpOptions {
  std::chrono::milliseconds connect_timeout{2000};
  // Whole request; zero: none (streams), then should_stop is what ends it.
  std::chrono::milliseconds total_timeout{10000};
  HttpLimits limits;
};

struct UnixHttpResult {
  int status = 0;
  // True when should_stop ended the request before the response was complete.
  bool stopped = false;
};

// Receives the response status with each piece of the decoded body; an error ends the request.
using StatusBodyCallback = std::function<absl::Status(int status, std::string_view body)>;

// GET `target` ("/v1.41/containers/json?all=1") from the server on `socket_path`. `on_body`
// receives the decoded body as it arrives; `should_stop` (optional) is checked at least every
// 500 ms. Errors: Unavailable (connect, I/O, timeout, connection closed early), InvalidArgument or
// ResourceExhausted from the parser, or on_body's own error.
absl::StatusOr<UnixHttpResult> UnixHttpGet(const std::string& socket_path, std::string_view target,
                                           const UnixHttpOptions& options, const StatusBodyCallback& on_body,
                                           const std::function<bool()>& should_stop = nullptr);

}  // namespace dogwatch::container
