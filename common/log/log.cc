#include "common/log/log.h"

#include <mutex>

#include "spdlog/sinks/basic_file_sink.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace dogwatch::log {
namespace {

std::mutex g_mu;
spdlog::sink_ptr g_sink;
spdlog::level::level_enum g_level = spdlog::level::info;
std::string g_process = "dogwatch";

spdlog::sink_ptr SinkLocked() {
  if (!g_sink) g_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  return g_sink;
}

}  // namespace

absl::Status Init(std::string_view process_name, std::string_view level, std::string_view path) {
  auto parsed = spdlog::level::from_str(std::string(level));
  // from_str maps unknown names to "off"; only accept "off" when it was asked for.
  if (parsed == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError("log_level: unknown level '" + std::string(level) +
                                      "' (expected trace, debug, info, warn, error, critical or off)");
  }
  std::lock_guard<std::mutex> lock(g_mu);
  g_process = std::string(process_name);
  g_level = parsed;
  if (!path.empty()) {
    try {
      g_sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(std::string(path));
    } catch (const spdlog::spdlog_ex& e) {
      return absl::InvalidArgumentError("log_file: cannot open '" + std::string(path) + "': " + e.what());
    }
  } else {
    g_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  }
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& logger) {
    logger->sinks().assign(1, g_sink);
    logger->set_level(g_level);
  });
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e UTC | " + g_process + " | %^%l%$ | (%n) %v",
                      spdlog::pattern_time_type::utc);
  return absl::OkStatus();
}

std::shared_ptr<spdlog::logger> Get(const std::string& component) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (auto existing = spdlog::get(component)) return existing;
  auto logger = std::make_shared<spdlog::logger>(component, SinkLocked());
  logger->set_level(g_level);
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e UTC | " + g_process + " | %^%l%$ | (%n) %v",
                      spdlog::pattern_time_type::utc);
  spdlog::register_logger(logger);
  return logger;
}

bool RateLimiter::Allow(uint64_t* suppressed) {
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  int64_t next = next_allowed_ms_.load(std::memory_order_relaxed);
  if (now >= next && next_allowed_ms_.compare_exchange_strong(next, now + interval_ms_)) {
    *suppressed = suppressed_.exchange(0);
    return true;
  }
  suppressed_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace dogwatch::log
