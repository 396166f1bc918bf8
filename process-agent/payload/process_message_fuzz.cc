// Arbitrary bytes as a framed process message: DecodeMessage may refuse them but must never crash,
// hang, or return a body above its limit; a decoded body is then parsed as the message its header
// names, and re-encoded when it parses, which must succeed.
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "datadog/process/agent.pb.h"
#include "process-agent/payload/message.h"

namespace {

std::unique_ptr<google::protobuf::Message> MessageFor(uint8_t type) {
  namespace pa = datadog::process_agent;
  using dogwatch::process::MessageType;
  switch (static_cast<MessageType>(type)) {
    case MessageType::kCollectorProc:
      return std::make_unique<pa::CollectorProc>();
    case MessageType::kResCollector:
      return std::make_unique<pa::ResCollector>();
    case MessageType::kCollectorRealTime:
      return std::make_unique<pa::CollectorRealTime>();
    case MessageType::kCollectorContainer:
      return std::make_unique<pa::CollectorContainer>();
    case MessageType::kCollectorContainerRealTime:
      return std::make_unique<pa::CollectorContainerRealTime>();
    case MessageType::kCollectorProcDiscovery:
      return std::make_unique<pa::CollectorProcDiscovery>();
    case MessageType::kCollectorConnections:
      return nullptr;
  }
  return nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool initialized = [] {
    // Invalid UTF-8 in string fields makes protobuf log an error per input: noise, not findings.
    google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int, const std::string&) {});
    return true;
  }();
  (void)initialized;

  dogwatch::process::DecodeLimits limits;
  limits.max_message_bytes = 1 << 20;
  limits.max_body_bytes = 4 << 20;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto decoded = dogwatch::process::DecodeMessage(input, limits);
  if (!decoded.ok()) return 0;
  if (decoded->body.size() > limits.max_body_bytes) std::abort();
  if (decoded->header_bytes > size) std::abort();

  std::unique_ptr<google::protobuf::Message> body = MessageFor(decoded->header.type);
  if (body == nullptr) return 0;
  if (!dogwatch::process::ParseBody(*decoded, body.get()).ok()) return 0;
  auto reencoded = dogwatch::process::EncodeMessage(
      static_cast<dogwatch::process::MessageType>(decoded->header.type), *body, decoded->header.timestamp_ms);
  if (!reencoded.ok()) std::abort();
  return 0;
}
