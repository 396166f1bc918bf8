// The container runtime's HTTP/1.1 client: the response parser on every framing (fed whole and one
// byte at a time) and its limits, then UnixHttpGet against a real unix-socket server in a thread.

#include "common/container/runtime_http.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <thread>

#include "tests/support/test_support.h"

namespace dogwatch::container {
namespace {

struct Parsed {
  absl::Status status;
  int code = 0;
  std::string body;
  bool done = false;
};

// Feeds `response` in pieces of `piece` bytes, then signals the end of the connection.
Parsed Parse(std::string_view response, size_t piece, HttpLimits limits = {}) {
  Parsed out;
  ResponseParser parser(limits, [&out](std::string_view body) {
    out.body.append(body);
    return absl::OkStatus();
  });
  for (size_t at = 0; at < response.size() && out.status.ok(); at += piece)
    out.status = parser.Feed(response.substr(at, piece));
  if (out.status.ok()) out.status = parser.Finish();
  out.code = parser.status();
  out.done = parser.done();
  return out;
}

// The same outcome whole and byte by byte: split points must not matter.
Parsed ParseBothWays(std::string_view response, HttpLimits limits = {}) {
  Parsed whole = Parse(response, response.size() + 1, limits);
  Parsed bytewise = Parse(response, 1, limits);
  CHECK(whole.status.code() == bytewise.status.code());
  // On an error, how much body came out before it depends on the pieces; on success it must not.
  if (whole.status.ok()) CHECK(whole.body == bytewise.body);
  CHECK(whole.code == bytewise.code);
  return whole;
}

TEST_CASE("runtime http: Content-Length, chunked and close-delimited bodies") {
  Parsed length =
      ParseBothWays("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n[{},{}]");
  REQUIRE(length.status.ok());
  CHECK(length.code == 200);
  CHECK(length.body == "[{},{}]");
  CHECK(length.done);

  // What dockerd and podman stream on /events, with a chunk extension and a trailer.
  Parsed chunked = ParseBothWays(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=x\r\n{\"a\":\r\n3\r\n1}\n\r\nA\r\n0123456789\r\n0\r\nX-Done: yes\r\n\r\n");
  REQUIRE(chunked.status.ok());
  CHECK(chunked.body == "{\"a\":1}\n0123456789");

  Parsed close =
      ParseBothWays("HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\n{\"message\":\"no such container\"}");
  REQUIRE(close.status.ok());
  CHECK(close.code == 404);
  CHECK(close.body == "{\"message\":\"no such container\"}");

  Parsed interim = ParseBothWays("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n");
  REQUIRE(interim.status.ok());
  CHECK(interim.code == 204);
  CHECK(interim.body.empty());

  Parsed lax = ParseBothWays("HTTP/1.1 200 OK\nContent-Length: 2\n\nok");
  REQUIRE(lax.status.ok());
  CHECK(lax.body == "ok");
}

TEST_CASE("runtime http: malformed responses are refused") {
  auto code = [](std::string_view response) { return ParseBothWays(response).status.code(); };
  using absl::StatusCode;
  CHECK(code("SSH-2.0-OpenSSH\r\n\r\n") == StatusCode::kInvalidArgument);
  CHECK(code("HTTP/1.1 2000 OK\r\n\r\n") == StatusCode::kInvalidArgument);
  CHECK(code("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc") ==
        StatusCode::kInvalidArgument);
  CHECK(code("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n") == StatusCode::kInvalidArgument);
  CHECK(code("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == StatusCode::kInvalidArgument);
  CHECK(code("HTTP/1.1 200 OK\r\n folded: header\r\n\r\n") == StatusCode::kInvalidArgument);
  CHECK(code("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n") == StatusCode::kInvalidArgument);
  CHECK(code("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") == StatusCode::kInvalidArgument);
  CHECK(code("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n") ==
        StatusCode::kInvalidArgument);
  CHECK(code("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab") == StatusCode::kInvalidArgument);
  // Cut short: the connection closed before the end the framing announced.
  CHECK(code("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc") == StatusCode::kUnavailable);
  CHECK(code("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab") == StatusCode::kUnavailable);
  CHECK(code("HTTP/1.1 200 OK\r\n") == StatusCode::kUnavailable);
  CHECK(code("") == StatusCode::kUnavailable);
}

TEST_CASE("runtime http: every size is bounded") {
  HttpLimits limits;
  limits.max_header_bytes = 100;
  limits.max_headers = 3;
  limits.max_chunk_line_bytes = 16;
  limits.max_body_bytes = 10;
  auto code = [&](std::string_view response) { return ParseBothWays(response, limits).status.code(); };
  using absl::StatusCode;
  CHECK(code("HTTP/1.1 200 OK\r\nX: " + std::string(200, 'a') + "\r\n\r\n") ==
        StatusCode::kResourceExhausted);
  CHECK(code("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n") == StatusCode::kResourceExhausted);
  CHECK(code("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n") == StatusCode::kResourceExhausted);
  CHECK(code("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n") ==
        StatusCode::kInvalidArgument);
  CHECK(
      code("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n") ==
      StatusCode::kResourceExhausted);
  CHECK(code("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + std::string(40, 'e') + "\r\n") ==
        StatusCode::kResourceExhausted);
  CHECK(code("HTTP/1.1 200 OK\r\n\r\n" + std::string(11, 'x')) == StatusCode::kResourceExhausted);
  // Exactly at the bound is fine.
  CHECK(code("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789") == StatusCode::kOk);
  // No body bound: a stream (chunk sizes up to 15 hex digits).
  HttpLimits stream;
  stream.max_body_bytes = 0;
  Parsed big = Parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000\r\n" +
                         std::string(65536, 'x') + "\r\n0\r\n\r\n",
                     4096, stream);
  CHECK(big.status.ok());
  CHECK(big.body.size() == 65536);
}

// A unix-socket server answering one connection with `response` (optionally holding it open).
struct OneShotServer {
  testing::TempDir dir;
  std::string path = dir.File("runtime.sock");
  int listen_fd = -1;
  std::string request;
  std::thread thread;
  std::atomic<bool> release{false};

  OneShotServer(std::string response, bool hold_open) {
    listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.data(), path.size());
    REQUIRE(::bind(listen_fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    REQUIRE(::listen(listen_fd, 4) == 0);
    thread = std::thread([this, response = std::move(response), hold_open] {
      int fd = ::accept(listen_fd, nullptr, nullptr);
      if (fd < 0) return;
      char buffer[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
        if (n <= 0) break;
        request.append(buffer, static_cast<size_t>(n));
      }
      (void)::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
      for (int i = 0; hold_open && i < 1000 && !release.load(); ++i) ::usleep(10000);
      ::close(fd);
    });
  }
  ~OneShotServer() {
    release.store(true);
    ::shutdown(listen_fd, SHUT_RDWR);
    if (thread.joinable()) thread.join();
    ::close(listen_fd);
  }
};

TEST_CASE("runtime http: a GET over a unix socket, streamed and stopped") {
  {
    OneShotServer server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", false);
    std::string body;
    auto result = UnixHttpGet(server.path, "/v1.41/containers/json?all=1", UnixHttpOptions{},
                              [&](int status, std::string_view piece) {
                                CHECK(status == 200);
                                body.append(piece);
                                return absl::OkStatus();
                              });
    REQUIRE(result.ok());
    CHECK(result->status == 200);
    CHECK_FALSE(result->stopped);
    CHECK(body == "[]");
    server.thread.join();
    CHECK(server.request.rfind("GET /v1.41/containers/json?all=1 HTTP/1.1\r\n", 0) == 0);
    CHECK(server.request.find("\r\nHost: localhost\r\n") != std::string::npos);
    CHECK(server.request.find("\r\nConnection: close\r\n") != std::string::npos);
  }
  {
    // An events stream that stays open: the first event arrives, should_stop ends the request.
    OneShotServer server("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n{\"a\"}\n\r\n", true);
    std::string body;
    auto started = std::chrono::steady_clock::now();
    UnixHttpOptions options;
    options.total_timeout = std::chrono::milliseconds(0);
    auto result = UnixHttpGet(
        server.path, "/v1.41/events", options,
        [&](int, std::string_view piece) {
          body.append(piece);
          return absl::OkStatus();
        },
        [&] { return !body.empty(); });
    REQUIRE(result.ok());
    CHECK(result->stopped);
    CHECK(body == "{\"a\"}\n");
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(3));
  }
  {
    // A server that never finishes: the total timeout ends it.
    OneShotServer server("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", true);
    UnixHttpOptions options;
    options.total_timeout = std::chrono::milliseconds(300);
    auto result = UnixHttpGet(server.path, "/_ping", options, nullptr);
    CHECK(absl::IsUnavailable(result.status()));
    CHECK(std::string(result.status().message()).find("timed out") != std::string::npos);
  }
  {
    // The body callback's error ends the request and is returned.
    OneShotServer server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", false);
    auto result = UnixHttpGet(server.path, "/x", UnixHttpOptions{},
                              [](int, std::string_view) { return absl::ResourceExhaustedError("too long"); });
    CHECK(absl::IsResourceExhausted(result.status()));
  }
  testing::TempDir dir;
  CHECK(absl::IsUnavailable(
      UnixHttpGet(dir.File("absent.sock"), "/_ping", UnixHttpOptions{}, nullptr).status()));
  CHECK(
      absl::IsInvalidArgument(UnixHttpGet(dir.File("a.sock"), "/a b", UnixHttpOptions{}, nullptr).status()));
  CHECK(absl::IsInvalidArgument(
      UnixHttpGet(dir.File("a.sock"), "/a\r\nX: y", UnixHttpOptions{}, nullptr).status()));
}

}  // namespace
}  // namespace dogwatch::container
