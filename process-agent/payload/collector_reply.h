#pragma once
// The intake's answer to a process-agent payload, and what the agent does with it.
//
// Datadog's process intake answers every collector message with a framed ResCollector (type 23,
// same header as the request). Its status says whether someone is watching the live process view
// (activeClients > 0) and at what period (interval, seconds): the agent runs its real-time checks
// only then. With several endpoints, any one asking turns them on and the largest interval wins.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace dogwatch::process {

struct CollectorStatus {
  int32_t active_clients = 0;
  int32_t interval_s = 0;
};

// Replies are a few bytes; anything bigger is not a ResCollector worth reading.
inline constexpr size_t kMaxCollectorReplyBytes = 64 * 1024;
inline constexpr size_t kMaxCollectorReplyBodyBytes = 256 * 1024;

// Decodes a reply body (V1/V2/V3 header, plain, JSON or zstd protobuf, bounded as above).
// InvalidArgument when it is not a ResCollector, does not parse, or carries an error message
// (ResCollector.message, which Datadog's agent logs instead of using the status); the message is in
// the error text.
absl::StatusOr<CollectorStatus> DecodeCollectorReply(std::string_view body);

// Whether the real-time checks run, from the intake's replies.
class RealTimeSwitch {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    bool disabled = false;  // process_config.disable_realtime_checks: never on
    bool always = false;    // process_config.realtime_always: on without asking the intake
    // The real-time period until the intake names one (process_config.intervals.process_realtime).
    std::chrono::seconds default_interval{2};
    // While on, no reply at all for this long (intake unreachable) turns real time off: its
    // payloads would only queue up in the core's forwarder.
    std::chrono::seconds stale_after{120};
  };

  explicit RealTimeSwitch(Options options);

  // One batch of statuses from the replies to one submission (possibly several endpoints). An
  // empty batch changes nothing. Returns true when `enabled()` changed.
  bool Update(const std::vector<CollectorStatus>& statuses, Clock::time_point now);
  // Turns real time off when no status came for stale_after; true when that changed it.
  bool Expire(Clock::time_point now);

  bool enabled() const { return enabled_; }
  // The intake's interval (1..3600 s) once it gave one, else the default.
  std::chrono::seconds interval() const { return interval_; }
  bool interval_from_intake() const { return interval_from_intake_; }
  // Whether waiting for the intake's replies is worth it (neither disabled nor always).
  bool wants_replies() const { return !options_.disabled && !options_.always; }
  int32_t active_clients() const { return active_clients_; }
  // For status: "on (3 active clients, every 2 s)", "off (disabled by ...)", ...
  std::string Describe() const;

 private:
  Options options_;
  bool enabled_;
  std::chrono::seconds interval_;
  int32_t active_clients_ = 0;
  std::optional<Clock::time_point> last_status_;
  bool stale_ = false;  // turned off by Expire
  bool interval_from_intake_ = false;
};

}  // namespace dogwatch::process
