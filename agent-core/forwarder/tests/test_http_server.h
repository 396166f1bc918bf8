#pragma once
// A tiny scriptable HTTP/1.1 server for tests: one thread, blocking sockets, one connection at a
// time, "Connection: close" on every answer. It records each request and answers from a script
// (then a default), and can stop listening so that clients see "connection refused".

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace dogwatch::forwarder::testing {

struct RecordedRequest {
  std::string method;
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  absl::Time received;

  // Case-insensitive lookup; "" when absent.
  std::string Header(std::string_view name) const;
};

struct Reply {
  int status = 200;
  std::string body = "{}";
  std::vector<std::pair<std::string, std::string>> headers;
  absl::Duration delay = absl::ZeroDuration();  // wait before answering
};

class TestHttpServer {
 public:
  TestHttpServer() = default;
  ~TestHttpServer() { StopListening(); }
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  // Listens on 127.0.0.1:`port` (0 = ephemeral; afterwards port() tells which).
  absl::Status Listen(uint16_t port = 0);
  // Closes the listening socket: new connections are refused until Listen(port()) again.
  void StopListening();

  uint16_t port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void SetDefaultReply(Reply reply);
  // Answers the next `count` requests with `reply` (after any already scripted).
  void Script(Reply reply, int count = 1);

  std::vector<RecordedRequest> Requests() const;
  size_t RequestCount() const;
  // True when at least `count` requests arrived within `timeout`.
  bool WaitForRequests(size_t count, absl::Duration timeout) const;

 private:
  void Serve(int listen_fd);
  void HandleConnection(int fd);
  Reply NextReply();

  uint16_t port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;

  mutable absl::Mutex mu_;
  Reply default_reply_ ABSL_GUARDED_BY(mu_);
  std::deque<Reply> script_ ABSL_GUARDED_BY(mu_);
  std::vector<RecordedRequest> requests_ ABSL_GUARDED_BY(mu_);
};

// A port nothing listens on (bound once to get it, then closed).
uint16_t UnusedPort();

}  // namespace dogwatch::forwarder::testing
