// Arbitrary bodies through every intake path's decoder. The first byte picks the path and the
// Content-Encoding, the rest is the body. Decoders may refuse input but must never crash, hang, or
// produce more than their limits allow.
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "agent-core/intake/msgpack_json.h"
#include "agent-core/intake/payload_decoder.h"

namespace {

constexpr std::string_view kEncodings[] = {"", "gzip", "deflate", "zstd"};

void SilenceProtobufLogs() {
  // Invalid UTF-8 in string fields makes protobuf log an error per input: noise, not findings.
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int, const std::string&) {});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool initialized = (SilenceProtobufLogs(), true);
  (void)initialized;
  if (size < 1) return 0;
  using dogwatch::intake::DecodeLimits;
  using dogwatch::intake::PayloadKindForPath;
  using dogwatch::intake::PayloadPaths;

  const auto& paths = PayloadPaths();
  const std::string_view path = paths[data[0] % paths.size()];
  const std::string_view encoding = kEncodings[(data[0] / paths.size()) % 4];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);

  DecodeLimits limits;
  limits.max_decompressed_bytes = 4 << 20;
  limits.max_json_bytes = 32 << 20;
  auto json = dogwatch::intake::DecodePayloadToJson(*PayloadKindForPath(path), encoding, body, limits);
  if (json.ok() && json->size() > limits.max_json_bytes) std::abort();
  // Receive-time validation accepts everything that decodes (it may accept more: JSON size limits
  // apply to the rendering only).
  const absl::Status validated =
      dogwatch::intake::ValidatePayload(*PayloadKindForPath(path), encoding, body, limits);
  if (json.ok() && !validated.ok()) std::abort();

  // The generic pieces on the raw body too, so the fuzzer reaches them without compression.
  (void)dogwatch::intake::MsgpackToJson(body);
  (void)dogwatch::intake::NormalizeJson(body, dogwatch::intake::JsonTopLevel::kAny, 128);
  (void)dogwatch::intake::ParseProcessMessageHeader(body);
  return 0;
}
