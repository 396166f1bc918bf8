#pragma once
// Where the forwarder's transactions go: the real intake over HTTP(S), or (when no API key is
// configured) the in-process local intake, which implements the same interface.

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/http/client.h"

namespace dogwatch::forwarder {

class Transport {
 public:
  virtual ~Transport() = default;

  // Sends one request and returns whatever status the receiver answered; only failures to get an
  // answer at all are errors (Unavailable, or Cancelled after CancelInFlight). Called concurrently
  // from one thread per destination.
  virtual absl::StatusOr<http::Response> Send(const std::string& base_url, const std::string& path,
                                              const std::vector<std::pair<std::string, std::string>>& headers,
                                              std::string_view body) = 0;

  // Shutdown: make sends in progress (and any later ones) return promptly with an error. The
  // forwarder calls it when Stop's drain deadline passes.
  virtual void CancelInFlight() {}
};

// POSTs to base_url + path with one keep-alive http::Client per calling thread.
class HttpTransport : public Transport {
 public:
  explicit HttpTransport(http::ClientOptions options);

  absl::StatusOr<http::Response> Send(const std::string& base_url, const std::string& path,
                                      const std::vector<std::pair<std::string, std::string>>& headers,
                                      std::string_view body) override;
  void CancelInFlight() override;

 private:
  http::Client& ClientForThisThread();

  http::ClientOptions options_;
  std::atomic<bool> cancelled_{false};
  absl::Mutex mu_;
  // Forwarder workers are long-lived and few, so one client per thread id never needs pruning.
  std::map<std::thread::id, std::unique_ptr<http::Client>> clients_ ABSL_GUARDED_BY(mu_);
};

// "https://host/" + "/api/v2/series" -> "https://host/api/v2/series".
std::string JoinUrl(std::string_view base_url, std::string_view path);

}  // namespace dogwatch::forwarder
