// Differential: arbitrary bytes through ProtobufWireCheck and through protobuf's own parser, as each
// protobuf type the local intake checks. They must agree on every input; the first byte picks the
// type, the rest is the message.
#include <google/protobuf/arena.h>
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "agent-core/intake/protobuf_wire_check.h"
#include "datadog/metrics/metrics.pb.h"
#include "datadog/trace/agent_payload.pb.h"

namespace {

template <typename Message>
void Compare(std::string_view bytes) {
  static const dogwatch::intake::ProtobufWireCheck check(Message::descriptor());
  google::protobuf::Arena arena;
  Message* message = google::protobuf::Arena::CreateMessage<Message>(&arena);
  const bool parsed = message->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  const absl::Status checked = check.Check(bytes);
  if (parsed != checked.ok()) {
    std::fprintf(stderr, "%s: the parser %s, the wire check says: %s\n",
                 Message::descriptor()->full_name().c_str(), parsed ? "accepts" : "refuses",
                 checked.ToString().c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Invalid UTF-8 makes the parser log an error per input: noise, not findings.
  static const bool silenced = (google::protobuf::SetLogHandler(
                                    [](google::protobuf::LogLevel, const char*, int, const std::string&) {}),
                                true);
  (void)silenced;
  if (size < 1) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 3) {
    case 0:
      Compare<datadog::trace::AgentPayload>(bytes);
      break;
    case 1:
      Compare<datadog::agentpayload::MetricPayload>(bytes);
      break;
    default:
      Compare<datadog::agentpayload::SketchPayload>(bytes);
      break;
  }
  return 0;
}
