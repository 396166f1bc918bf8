#pragma once
// A small HTTP/1.1 server on libmicrohttpd: a pool of threads, each with its own epoll loop,
// serving one handler function over TCP or a unix socket.
//
// Bodies are bounded: a request whose Content-Length or accumulated upload passes max_body_bytes is
// answered 413 without buffering more of it. The handler sees a complete request (headers, decoded
// path and query, body, peer credentials for unix sockets) and returns a complete reply; it runs on
// the server's threads, concurrently, so it must be thread-safe.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/http/message.h"

struct MHD_Daemon;

namespace dogwatch::http {

struct HttpServerOptions {
  // TCP listener, used when unix_socket_path is empty. Port 0 picks an ephemeral port; read it back
  // with HttpServer::port(). An empty host listens on all IPv4 interfaces.
  std::string host = "127.0.0.1";
  uint16_t port = 0;

  // Unix-socket listener instead of TCP. A stale socket file at the path is replaced; a socket
  // someone still accepts on, or a file that is not a socket, is an error. The file gets
  // unix_socket_mode and is removed again by Stop().
  std::string unix_socket_path;
  mode_t unix_socket_mode = 0660;

  // Largest request body accepted; larger ones get 413.
  size_t max_body_bytes = 32 * 1024 * 1024;
  // Idle connections are closed after this long (0 = never).
  std::chrono::seconds connection_timeout{30};
  // Connections beyond this many are refused at accept time.
  unsigned connection_limit = 512;
  // Worker threads, each running its own epoll loop over the shared listening socket.
  unsigned threads = 2;
  // Added to every reply, before the handler's own headers (e.g. Datadog-Agent-Version).
  HttpHeaders reply_headers;
  // Logger component name, so several servers in one process log distinguishably.
  std::string log_name = "http";
};

struct HttpServerCounters {
  int64_t requests = 0;            // requests whose headers were received
  int64_t rejected_too_large = 0;  // answered 413 (or cut off) for an oversized body
  int64_t errors = 0;              // 5xx replies, handler exceptions, replies that failed to queue
};

class HttpServer {
 public:
  using Handler = std::function<HttpReply(const HttpRequest&)>;

  // Binds, listens and starts the worker threads. Errors name the address and the reason.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(HttpServerOptions options, Handler handler);

  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Stops accepting, waits for running handlers, closes connections and removes the unix socket
  // file. Idempotent; also done by the destructor.
  void Stop();

  // The bound TCP port (useful with port 0), or 0 for a unix socket.
  uint16_t port() const { return bound_port_; }
  // "127.0.0.1:8126" or "unix:///var/run/dogwatch/apm.socket", for logs and status.
  std::string address() const;
  HttpServerCounters counters() const;

 private:
  struct Callbacks;  // libmicrohttpd's C callbacks, kept out of this header

  HttpServer(HttpServerOptions options, Handler handler);
  absl::Status Listen();
  absl::Status StartDaemon();

  const HttpServerOptions options_;
  const Handler handler_;
  int listen_fd_ = -1;
  uint16_t bound_port_ = 0;
  MHD_Daemon* daemon_ = nullptr;

  std::atomic<int64_t> requests_{0};
  std::atomic<int64_t> rejected_too_large_{0};
  std::atomic<int64_t> errors_{0};
};

}  // namespace dogwatch::http
