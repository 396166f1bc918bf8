#include "process-agent/payload/collector_reply.h"

#include <algorithm>
#include <cstdint>

#include "common/strings/strings.h"
#include "datadog/process/agent.pb.h"
#include "process-agent/payload/message.h"

namespace dogwatch::process {

using strings::Cat;

namespace {
constexpr int32_t kMaxIntervalS = 3600;
}  // namespace

absl::StatusOr<CollectorStatus> DecodeCollectorReply(std::string_view body) {
  DecodeLimits limits;
  limits.max_message_bytes = kMaxCollectorReplyBytes;
  limits.max_body_bytes = kMaxCollectorReplyBodyBytes;
  absl::StatusOr<DecodedMessage> decoded = DecodeMessage(body, limits);
  if (!decoded.ok()) return decoded.status();
  if (decoded->header.type != static_cast<uint8_t>(MessageType::kResCollector)) {
    return absl::InvalidArgumentError(Cat("intake reply is a ", MessageTypeName(decoded->header.type),
                                          " (type ", decoded->header.type, "), not a ResCollector"));
  }
  datadog::process_agent::ResCollector reply;
  if (absl::Status parsed = ParseBody(*decoded, &reply); !parsed.ok()) return parsed;
  if (!reply.message().empty()) {
    // The intake's own words, shown to the user: keep the log line bounded.
    return absl::InvalidArgumentError(Cat("intake reply says: ", reply.message().substr(0, 512)));
  }
  return CollectorStatus{reply.status().activeclients(), reply.status().interval()};
}

RealTimeSwitch::RealTimeSwitch(Options options)
    : options_(options), enabled_(options.always && !options.disabled), interval_(options.default_interval) {}

bool RealTimeSwitch::Update(const std::vector<CollectorStatus>& statuses, Clock::time_point now) {
  if (statuses.empty() || !wants_replies()) return false;
  last_status_ = now;
  stale_ = false;
  bool want = false;
  int32_t clients = 0;
  int32_t max_interval = 0;
  for (const CollectorStatus& status : statuses) {
    if (status.active_clients > 0) {
      want = true;
      // Saturating: the count is only shown, and a hostile reply must not overflow it.
      clients = static_cast<int32_t>(std::min<int64_t>(int64_t{clients} + status.active_clients, INT32_MAX));
    }
    if (status.interval_s > 0 && status.interval_s <= kMaxIntervalS)
      max_interval = std::max(max_interval, status.interval_s);
  }
  active_clients_ = clients;
  if (max_interval > 0) {
    interval_ = std::chrono::seconds(max_interval);
    interval_from_intake_ = true;
  }
  const bool changed = want != enabled_;
  enabled_ = want;
  return changed;
}

bool RealTimeSwitch::Expire(Clock::time_point now) {
  if (!enabled_ || !wants_replies() || !last_status_) return false;
  if (now - *last_status_ < options_.stale_after) return false;
  enabled_ = false;
  active_clients_ = 0;
  stale_ = true;
  return true;
}

std::string RealTimeSwitch::Describe() const {
  if (options_.disabled) return "off (process_config.disable_realtime_checks)";
  if (options_.always) return Cat("on, every ", interval_.count(), " s (process_config.realtime_always)");
  if (!last_status_) return "off (no intake reply yet)";
  if (stale_) return Cat("off (no intake reply for ", options_.stale_after.count(), " s)");
  if (enabled_) return Cat("on (", active_clients_, " active clients), every ", interval_.count(), " s");
  return "off (no active clients)";
}

}  // namespace dogwatch::process
