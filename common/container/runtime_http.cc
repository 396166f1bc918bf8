#include "common/container/runtime_http.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "common/strings/strings.h"

namespace dogwatch::container {
namespace {

using http::EqualsIgnoreCase;
using strings::Cat;

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Where the head ends ("\r\n\r\n", or "\n\n" from a lax server) and how long the separator is.
size_t FindHeadEnd(std::string_view data, size_t* separator) {
  const size_t crlf = data.find("\r\n\r\n");
  const size_t lf = data.find("\n\n");
  if (crlf != std::string_view::npos && (lf == std::string_view::npos || crlf < lf)) {
    *separator = 4;
    return crlf;
  }
  *separator = 2;
  return lf;
}

absl::StatusOr<uint64_t> ParseDecimal(std::string_view text) {
  if (text.empty() || text.size() > 19) return absl::InvalidArgumentError("invalid Content-Length");
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return absl::InvalidArgumentError("invalid Content-Length");
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

}  // namespace

ResponseParser::ResponseParser(HttpLimits limits, BodyCallback on_body)
    : limits_(limits), on_body_(std::move(on_body)) {}

absl::Status ResponseParser::Fail(absl::Status status) {
  error_ = status;
  pending_.clear();
  return status;
}

absl::Status ResponseParser::Feed(std::string_view data) {
  if (!error_.ok()) return error_;
  if (data.empty()) return absl::OkStatus();
  if (state_ == State::kDone) return Fail(absl::InvalidArgumentError("data after the end of the response"));
  pending_.append(data);
  size_t pos = 0;
  absl::Status status = Process(&pos);
  if (!status.ok()) return Fail(status);
  pending_.erase(0, pos);
  // What is left is an incomplete head or chunk line: bound it.
  if (state_ == State::kHeaders && pending_.size() > limits_.max_header_bytes) {
    return Fail(
        absl::ResourceExhaustedError(Cat("response head exceeds ", limits_.max_header_bytes, " bytes")));
  }
  if ((state_ == State::kChunkSize || state_ == State::kTrailers) &&
      pending_.size() > limits_.max_chunk_line_bytes) {
    return Fail(
        absl::ResourceExhaustedError(Cat("chunk line exceeds ", limits_.max_chunk_line_bytes, " bytes")));
  }
  return absl::OkStatus();
}

absl::Status ResponseParser::Finish() {
  if (!error_.ok()) return error_;
  if (state_ == State::kCloseBody) state_ = State::kDone;
  if (state_ == State::kDone) return absl::OkStatus();
  return Fail(absl::UnavailableError(headers_done() ? "connection closed in the middle of the body"
                                                    : "connection closed before a response"));
}

absl::Status ResponseParser::Deliver(std::string_view data) {
  if (data.empty()) return absl::OkStatus();
  if (limits_.max_body_bytes > 0 && data.size() > limits_.max_body_bytes - body_bytes_) {
    return absl::ResourceExhaustedError(Cat("response body exceeds ", limits_.max_body_bytes, " bytes"));
  }
  body_bytes_ += data.size();
  return on_body_ ? on_body_(data) : absl::OkStatus();
}

absl::Status ResponseParser::ParseHead(std::string_view head) {
  if (head.size() > limits_.max_header_bytes) {
    return absl::ResourceExhaustedError(Cat("response head exceeds ", limits_.max_header_bytes, " bytes"));
  }
  headers_ = http::HttpHeaders();
  bool first = true;
  while (!head.empty()) {
    const size_t newline = head.find('\n');
    std::string_view line = head.substr(0, newline);
    head = newline == std::string_view::npos ? std::string_view() : head.substr(newline + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (first) {
      first = false;
      // "HTTP/1.1 200 OK"
      if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ' || line[9] < '1' ||
          line[9] > '5' || line[10] < '0' || line[10] > '9' || line[11] < '0' || line[11] > '9' ||
          (line.size() > 12 && line[12] != ' ')) {
        return absl::InvalidArgumentError(Cat("not an HTTP/1.x status line: '", line.substr(0, 64), "'"));
      }
      status_ = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) {
      // Includes obsolete line folding (a line starting with a space), which RFC 9112 lets a
      // client reject.
      return absl::InvalidArgumentError(Cat("malformed header line '", line.substr(0, 64), "'"));
    }
    const std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!IsTokenChar(c))
        return absl::InvalidArgumentError(Cat("invalid header name '", name.substr(0, 64), "'"));
    }
    if (headers_.size() >= limits_.max_headers) {
      return absl::ResourceExhaustedError(Cat("more than ", limits_.max_headers, " response headers"));
    }
    headers_.Add(std::string(name), std::string(TrimSpaces(line.substr(colon + 1))));
  }
  if (first) return absl::InvalidArgumentError("empty response head");
  // 1xx answers are interim: the real response follows.
  if (status_ < 200) return absl::OkStatus();
  return ChooseFraming();
}

absl::Status ResponseParser::ChooseFraming() {
  bool chunked = false;
  bool has_length = false;
  uint64_t length = 0;
  for (const auto& [name, value] : headers_) {
    if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
      std::string_view codings = value;
      while (!codings.empty()) {
        const size_t comma = codings.find(',');
        const std::string_view coding = TrimSpaces(codings.substr(0, comma));
        codings = comma == std::string_view::npos ? std::string_view() : codings.substr(comma + 1);
        if (coding.empty()) continue;
        // Only chunked, once: any other coding would need decoding this client does not do.
        if (!EqualsIgnoreCase(coding, "chunked") || chunked) {
          return absl::InvalidArgumentError(Cat("unsupported transfer coding '", coding.substr(0, 32), "'"));
        }
        chunked = true;
      }
    } else if (EqualsIgnoreCase(name, "Content-Length")) {
      absl::StatusOr<uint64_t> parsed = ParseDecimal(value);
      if (!parsed.ok()) return parsed.status();
      // Differing lengths are how responses get smuggled: refuse them.
      if (has_length && *parsed != length)
        return absl::InvalidArgumentError("conflicting Content-Length headers");
      has_length = true;
      length = *parsed;
    }
  }
  if (status_ == 204 || status_ == 304) {
    state_ = State::kDone;
  } else if (chunked) {
    state_ = State::kChunkSize;
  } else if (has_length) {
    if (limits_.max_body_bytes > 0 && length > limits_.max_body_bytes) {
      return absl::ResourceExhaustedError(
          Cat("response body of ", length, " bytes exceeds ", limits_.max_body_bytes));
    }
    remaining_ = length;
    state_ = length == 0 ? State::kDone : State::kLengthBody;
  } else {
    state_ = State::kCloseBody;
  }
  return absl::OkStatus();
}

absl::Status ResponseParser::Process(size_t* pos) {
  while (*pos < pending_.size()) {
    std::string_view rest(pending_.data() + *pos, pending_.size() - *pos);
    switch (state_) {
      case State::kHeaders: {
        size_t separator = 0;
        const size_t end = FindHeadEnd(rest, &separator);
        if (end == std::string_view::npos) return absl::OkStatus();
        absl::Status head = ParseHead(rest.substr(0, end));
        if (!head.ok()) return head;
        *pos += end + separator;
        break;
      }
      case State::kLengthBody:
      case State::kChunkData: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, rest.size()));
        absl::Status delivered = Deliver(rest.substr(0, n));
        if (!delivered.ok()) return delivered;
        remaining_ -= n;
        *pos += n;
        if (remaining_ == 0) state_ = state_ == State::kLengthBody ? State::kDone : State::kChunkDataEnd;
        break;
      }
      case State::kCloseBody: {
        absl::Status delivered = Deliver(rest);
        if (!delivered.ok()) return delivered;
        *pos += rest.size();
        break;
      }
      case State::kChunkDataEnd: {
        if (rest[0] == '\n') {
          *pos += 1;
        } else if (rest[0] == '\r') {
          if (rest.size() < 2) return absl::OkStatus();
          if (rest[1] != '\n') return absl::InvalidArgumentError("chunk data not followed by CRLF");
          *pos += 2;
        } else {
          return absl::InvalidArgumentError("chunk data not followed by CRLF");
        }
        state_ = State::kChunkSize;
        break;
      }
      case State::kChunkSize:
      case State::kTrailers: {
        const size_t newline = rest.find('\n');
        if (newline == std::string_view::npos) return absl::OkStatus();
        std::string_view line = rest.substr(0, newline);
        if (line.size() > limits_.max_chunk_line_bytes) {
          return absl::ResourceExhaustedError(
              Cat("chunk line exceeds ", limits_.max_chunk_line_bytes, " bytes"));
        }
        *pos += newline + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (state_ == State::kTrailers) {
          if (line.empty()) {
            state_ = State::kDone;
          } else if (++trailers_ > limits_.max_headers) {
            return absl::ResourceExhaustedError(Cat("more than ", limits_.max_headers, " trailer lines"));
          }
          break;
        }
        // "<hex>[ ;ext]": extensions are ignored.
        const std::string_view digits = TrimSpaces(line.substr(0, line.find(';')));
        if (digits.empty() || digits.size() > 15)
          return absl::InvalidArgumentError("invalid chunk size line");
        uint64_t size = 0;
        for (char c : digits) {
          int v = -1;
          if (c >= '0' && c <= '9') v = c - '0';
          if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
          if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
          if (v < 0) return absl::InvalidArgumentError("invalid chunk size line");
          size = size * 16 + static_cast<uint64_t>(v);
        }
        if (limits_.max_body_bytes > 0 && size > limits_.max_body_bytes - body_bytes_) {
          return absl::ResourceExhaustedError(
              Cat("response body exceeds ", limits_.max_body_bytes, " bytes"));
        }
        remaining_ = size;
        state_ = size == 0 ? State::kTrailers : State::kChunkData;
        break;
      }
      case State::kDone:
        return absl::InvalidArgumentError("data after the end of the response");
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// The connection.

namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

using Clock = std::chrono::steady_clock;

absl::Status Unavailable(const std::string& socket_path, std::string_view what, int error) {
  return absl::UnavailableError(Cat("container runtime at ", socket_path, ": ", what,
                                    error != 0 ? Cat(": ", std::strerror(error)) : std::string()));
}

}  // namespace

absl::StatusOr<UnixHttpResult> UnixHttpGet(const std::string& socket_path, std::string_view target,
                                           const UnixHttpOptions& options, const StatusBodyCallback& on_body,
                                           const std::function<bool()>& should_stop) {
  if (target.empty() || target.front() != '/' || target.size() > 4096) {
    return absl::InvalidArgumentError("request target must start with '/' and be at most 4096 bytes");
  }
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("request target contains a space or control character");
    }
  }
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(Cat("unix socket path '", socket_path, "' is empty or too long"));
  }
  std::memcpy(address.sun_path, socket_path.data(), socket_path.size());

  Fd sock;
  sock.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock.fd < 0) return Unavailable(socket_path, "socket", errno);
  // A unix-socket connect blocks only while the server's backlog is full, and honours the send
  // timeout while it does.
  timeval connect_timeout{};
  connect_timeout.tv_sec = static_cast<time_t>(options.connect_timeout.count() / 1000);
  connect_timeout.tv_usec = static_cast<suseconds_t>((options.connect_timeout.count() % 1000) * 1000);
  (void)::setsockopt(sock.fd, SOL_SOCKET, SO_SNDTIMEO, &connect_timeout, sizeof(connect_timeout));
  if (::connect(sock.fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return Unavailable(socket_path, "connect", errno);
  }

  const bool bounded = options.total_timeout.count() > 0;
  const Clock::time_point deadline = Clock::now() + options.total_timeout;
  auto wait_ms = [&]() -> int {
    if (!bounded) return 500;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return static_cast<int>(std::clamp<int64_t>(left, 0, 500));
  };
  auto timed_out = [&] { return bounded && Clock::now() >= deadline; };

  const std::string request = Cat("GET ", target,
                                  " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: dogwatch\r\n"
                                  "Accept: application/json\r\nConnection: close\r\n\r\n");
  size_t sent = 0;
  while (sent < request.size()) {
    pollfd pfd{sock.fd, POLLOUT, 0};
    const int ready = ::poll(&pfd, 1, wait_ms());
    if (ready < 0 && errno != EINTR) return Unavailable(socket_path, "poll", errno);
    if (ready <= 0) {
      if (timed_out()) return Unavailable(socket_path, Cat("GET ", target, ": timed out sending"), 0);
      if (should_stop && should_stop()) return UnixHttpResult{0, true};
      continue;
    }
    const ssize_t n =
        ::send(sock.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Unavailable(socket_path, Cat("GET ", target, ": send"), errno);
    }
    sent += static_cast<size_t>(n);
  }

  // The body callback needs the status the parser read first.
  const ResponseParser* self = nullptr;
  ResponseParser parser(options.limits, [&on_body, &self](std::string_view body) {
    return on_body ? on_body(self->status(), body) : absl::OkStatus();
  });
  self = &parser;
  char buffer[16 * 1024];
  while (!parser.done()) {
    if (should_stop && should_stop()) return UnixHttpResult{parser.status(), true};
    if (timed_out()) return Unavailable(socket_path, Cat("GET ", target, ": timed out"), 0);
    pollfd pfd{sock.fd, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, wait_ms());
    if (ready < 0 && errno != EINTR) return Unavailable(socket_path, "poll", errno);
    if (ready <= 0) continue;
    const ssize_t n = ::recv(sock.fd, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Unavailable(socket_path, Cat("GET ", target, ": recv"), errno);
    }
    absl::Status fed =
        n == 0 ? parser.Finish() : parser.Feed(std::string_view(buffer, static_cast<size_t>(n)));
    if (!fed.ok()) {
      if (absl::IsUnavailable(fed))
        return Unavailable(socket_path, Cat("GET ", target, ": ", fed.message()), 0);
      return absl::Status(fed.code(),
                          Cat("container runtime at ", socket_path, ": GET ", target, ": ", fed.message()));
    }
    if (n == 0) break;
  }
  return UnixHttpResult{parser.status(), false};
}

}  // namespace dogwatch::container
