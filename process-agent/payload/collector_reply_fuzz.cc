// Arbitrary bytes as the intake's reply to a process payload: DecodeCollectorReply may refuse them
// but must never crash, hang or allocate beyond its bounds; what it accepts must drive the
// real-time switch to a sane state (interval within 1..3600 s, clients never negative).
#include <google/protobuf/stubs/logging.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "process-agent/payload/collector_reply.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool initialized = [] {
    // Invalid UTF-8 in the message field makes protobuf log an error per input: noise.
    google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int, const std::string&) {});
    return true;
  }();
  (void)initialized;

  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto status = dogwatch::process::DecodeCollectorReply(input);
  if (size > dogwatch::process::kMaxCollectorReplyBytes && status.ok()) std::abort();
  if (!status.ok()) return 0;

  dogwatch::process::RealTimeSwitch::Options options;
  dogwatch::process::RealTimeSwitch rt(options);
  const auto now = dogwatch::process::RealTimeSwitch::Clock::now();
  rt.Update({*status, *status}, now);
  if (rt.enabled() != (status->active_clients > 0)) std::abort();
  if (rt.active_clients() < 0) std::abort();
  if (rt.interval().count() < 1 || rt.interval().count() > 3600) std::abort();
  if (rt.Describe().empty()) std::abort();
  return 0;
}
