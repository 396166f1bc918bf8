#pragma once
// Per-component loggers on top of spdlog, plus a rate limiter for drop paths so that a flood of
// bad input never turns into a flood of log lines.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "spdlog/spdlog.h"

namespace dogwatch::log {

// Sets up the process-wide sink (stderr, or a file when `path` is non-empty) and level
// ("trace", "debug", "info", "warn", "error", "critical", "off").
absl::Status Init(std::string_view process_name, std::string_view level, std::string_view path = "");

// Returns the named logger, creating it on the shared sink if needed. Cheap after the first call;
// keep the pointer in the component.
std::shared_ptr<spdlog::logger> Get(const std::string& component);

// Allows one event per `interval`; the rest are counted and reported with the next allowed one.
class RateLimiter {
 public:
  explicit RateLimiter(std::chrono::milliseconds interval) : interval_ms_(interval.count()) {}

  // True when the caller may log now; `suppressed` receives how many events were held back since.
  bool Allow(uint64_t* suppressed);

 private:
  const int64_t interval_ms_;
  std::atomic<int64_t> next_allowed_ms_{0};
  std::atomic<uint64_t> suppressed_{0};
};

}  // namespace dogwatch::log

// Debian's absl::string_view is not std::string_view; let loggers format it (status messages) directly.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(absl::string_view text, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(std::string_view(text.data(), text.size()), ctx);
  }
};
