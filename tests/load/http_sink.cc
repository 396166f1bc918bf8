// http_sink: an HTTP/1.1 server that reads each request body whole and answers a small JSON reply,
// and does nothing else. It measures what receiving a trace request costs before any trace work:
//
//   --server dogwatch  the project's HttpServer (libmicrohttpd, as the trace-agent's receiver uses
//                      it: epoll, keep-alive, a 64 KB connection pool, the body appended to a string)
//   --server raw       one epoll loop with no library: headers found with memmem, the body read
//                      straight into one buffer, the reply written with one send(). The floor for
//                      HTTP over loopback TCP on this kernel: a hand-written server could save at
//                      most the difference between the two.
//
//   http_sink --server dogwatch|raw --port N [--seconds 60]
//
// tests/bench/http_server_bench.sh runs trace_load against each in turn and prints CPU per request.
// Loopback only; exits after --seconds (at most 600) or on SIGTERM/SIGINT.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/http/server.h"

namespace {

constexpr std::string_view kReplyBody = R"({"rate_by_service":{"service:,env:":1}})";
constexpr std::string_view kAgentVersion = "7.0.0";  // Datadog-Agent-Version, on every reply of both
// Bodies beyond this are refused (the connection is closed): bounded like the real receiver.
constexpr size_t kMaxBodyBytes = 32 * 1024 * 1024;
constexpr size_t kMaxHeaderBytes = 64 * 1024;

volatile sig_atomic_t stop_requested = 0;
void OnSignal(int) { stop_requested = 1; }

struct Connection {
  std::vector<char> buffer = std::vector<char>(64 * 1024);
  size_t filled = 0;
  size_t header_end = 0;   // 0 until the blank line is seen
  size_t request_end = 0;  // header_end + Content-Length
};

// Reads what the socket has; answers every complete request. False when the connection is done.
bool Serve(int fd, Connection& c, const std::string& reply) {
  for (;;) {
    if (c.filled == c.buffer.size()) c.buffer.resize(c.buffer.size() * 2);
    const ssize_t got = recv(fd, c.buffer.data() + c.filled, c.buffer.size() - c.filled, 0);
    if (got == 0) return false;
    if (got < 0) return errno == EAGAIN || errno == EINTR;
    c.filled += static_cast<size_t>(got);
    while (true) {
      if (c.header_end == 0) {
        const void* blank = memmem(c.buffer.data(), c.filled, "\r\n\r\n", 4);
        if (blank == nullptr) {
          if (c.filled > kMaxHeaderBytes) return false;
          break;
        }
        c.header_end = static_cast<size_t>(static_cast<const char*>(blank) - c.buffer.data()) + 4;
        constexpr std::string_view kLength = "\r\nContent-Length: ";
        const void* length = memmem(c.buffer.data(), c.header_end, kLength.data(), kLength.size());
        const size_t body =
            length != nullptr ? std::strtoull(static_cast<const char*>(length) + kLength.size(), nullptr, 10)
                              : 0;
        if (body > kMaxBodyBytes) return false;
        c.request_end = c.header_end + body;
        if (c.buffer.size() < c.request_end) c.buffer.resize(c.request_end);
      }
      if (c.filled < c.request_end) break;
      if (send(fd, reply.data(), reply.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(reply.size()))
        return false;
      std::memmove(c.buffer.data(), c.buffer.data() + c.request_end, c.filled - c.request_end);
      c.filled -= c.request_end;
      c.header_end = c.request_end = 0;
    }
  }
}

int RunRaw(uint16_t port, std::chrono::steady_clock::time_point deadline) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(listener, 128) != 0) {
    std::perror("http_sink: listen");
    return 1;
  }
  const int poller = epoll_create1(EPOLL_CLOEXEC);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = listener;
  epoll_ctl(poller, EPOLL_CTL_ADD, listener, &event);
  const std::string reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDatadog-Agent-Version: " +
                            std::string(kAgentVersion) +
                            "\r\nContent-Length: " + std::to_string(kReplyBody.size()) + "\r\n\r\n" +
                            std::string(kReplyBody);
  std::unordered_map<int, Connection> connections;
  epoll_event ready[64];
  while (!stop_requested && std::chrono::steady_clock::now() < deadline) {
    const int n = epoll_wait(poller, ready, 64, 200);
    for (int i = 0; i < n; ++i) {
      const int fd = ready[i].data.fd;
      if (fd == listener) {
        int client;
        while ((client = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          if (connections.size() >= 512) {
            close(client);
            continue;
          }
          setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          epoll_event client_event{};
          client_event.events = EPOLLIN;
          client_event.data.fd = client;
          epoll_ctl(poller, EPOLL_CTL_ADD, client, &client_event);
          connections.emplace(client, Connection{});
        }
        continue;
      }
      auto found = connections.find(fd);
      if (found == connections.end()) continue;
      if (!Serve(fd, found->second, reply)) {
        close(fd);
        connections.erase(found);
      }
    }
  }
  for (auto& [fd, connection] : connections) close(fd);
  close(poller);
  close(listener);
  return 0;
}

int RunDogwatch(uint16_t port, std::chrono::steady_clock::time_point deadline) {
  dogwatch::http::HttpServerOptions options;
  options.port = port;
  options.max_body_bytes = kMaxBodyBytes;
  options.reply_headers.Add("Datadog-Agent-Version", std::string(kAgentVersion));
  options.log_name = "http_sink";
  auto server = dogwatch::http::HttpServer::Start(options, [](const dogwatch::http::HttpRequest&) {
    return dogwatch::http::HttpReply::Json(200, std::string(kReplyBody));
  });
  if (!server.ok()) {
    std::fprintf(stderr, "http_sink: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  while (!stop_requested && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  (*server)->Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string server = "dogwatch";
  long port = 0;
  double seconds = 60;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    if (key == "--server") {
      server = argv[i + 1];
    } else if (key == "--port") {
      port = std::strtol(argv[i + 1], nullptr, 10);
    } else if (key == "--seconds") {
      seconds = std::strtod(argv[i + 1], nullptr);
    } else {
      std::fprintf(stderr, "http_sink: unknown option %s\n", key.c_str());
      return 2;
    }
  }
  if (port <= 0 || port > 65535 || (server != "raw" && server != "dogwatch")) {
    std::fprintf(stderr, "usage: http_sink --server dogwatch|raw --port N [--seconds 60]\n");
    return 2;
  }
  seconds = std::clamp(seconds, 0.1, 600.0);  // bounded, whatever was asked
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<long>(seconds * 1000));
  const auto listen_port = static_cast<uint16_t>(port);
  return server == "raw" ? RunRaw(listen_port, deadline) : RunDogwatch(listen_port, deadline);
}
