#pragma once
// Framing of process-agent intake messages (agent-payload process/message.go): a fixed
// little-endian header followed by the encoded protobuf body.
//
//   V3 header, 16 bytes: version u8 (=3), encoding u8, type u8, subscription_id u8, org_id i32,
//   timestamp_ms i64. V1 headers are the first 4 bytes of that, V2 the first 8.
//
// The agent sends V3 with encoding 4 (zstd 1.x frame around the protobuf); the intake answers with
// a ResCollector framed the same way.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace dogwatch::process {

// Message type codes (header byte 2). Only the types dogwatch builds or reads are listed; a header
// may carry any other value, which DecodeMessage reports as is.
enum class MessageType : uint8_t {
  kCollectorProc = 12,
  kCollectorConnections = 22,
  kResCollector = 23,
  kCollectorRealTime = 27,
  kCollectorContainer = 39,
  kCollectorContainerRealTime = 40,
  kCollectorProcDiscovery = 53,
};

// Body encodings (header byte 1). 3 is unused by Datadog.
enum class MessageEncoding : uint8_t {
  kProtobuf = 0,
  kJson = 1,
  kZstdProtobuf = 2,       // zstd 0.x era encoder; the frames are still zstd
  kZstd1xProtobuf = 4,     // what the agent sends
  kZstdProtobufNoCgo = 5,  // pure-Go zstd encoder, same format
};

inline constexpr uint8_t kMessageVersion1 = 1;
inline constexpr uint8_t kMessageVersion2 = 2;
inline constexpr uint8_t kMessageVersion3 = 3;
inline constexpr size_t kHeaderV1Bytes = 4;
inline constexpr size_t kHeaderV2Bytes = 8;
inline constexpr size_t kHeaderV3Bytes = 16;

struct MessageHeader {
  uint8_t version = kMessageVersion3;
  uint8_t encoding = static_cast<uint8_t>(MessageEncoding::kZstd1xProtobuf);
  uint8_t type = 0;
  uint8_t subscription_id = 0;  // unused by the agent
  int32_t org_id = 0;           // unused by the agent
  int64_t timestamp_ms = 0;     // V3 only
};

// "CollectorProc", "ResCollector", ...; "unknown" for other codes.
std::string_view MessageTypeName(uint8_t type);
// "protobuf", "json", "zstd-protobuf", "zstd1x-protobuf", "zstd-protobuf-nocgo"; "unknown" otherwise.
std::string_view MessageEncodingName(uint8_t encoding);

// Full protobuf name of the body a type carries ("datadog.process_agent.CollectorProc"), or empty
// when the type's message is not compiled into dogwatch (connections).
std::string_view MessageTypeProtoName(MessageType type);
// The type whose body is `body`'s message type, if any.
std::optional<MessageType> MessageTypeForBody(const google::protobuf::Message& body);

// The 16 header bytes; `header.version` is ignored (always 3).
std::string EncodeHeaderV3(const MessageHeader& header);

// Frames `body` as the agent does: V3 header (encoding 4, subscription and org 0, `timestamp_ms`)
// followed by the zstd-compressed protobuf. InvalidArgument when `body` is not the message `type`
// carries, or is too large to serialize.
absl::StatusOr<std::string> EncodeMessage(MessageType type, const google::protobuf::Message& body,
                                          int64_t timestamp_ms);

struct DecodeLimits {
  // Cap on the framed message as received.
  size_t max_message_bytes = 64 * 1024 * 1024;
  // Cap on the body after decompression (a small zstd frame can expand enormously).
  size_t max_body_bytes = 64 * 1024 * 1024;
};

struct DecodedMessage {
  MessageHeader header;
  size_t header_bytes = 0;
  // The body with message-level compression removed: protobuf bytes, or JSON text for encoding 1.
  std::string body;
};

// Reads the header (V1, V2 or V3) and decompresses the body. InvalidArgument, with a message saying
// what is wrong, for an empty or short message, an unknown version or encoding, or a corrupt zstd
// frame; ResourceExhausted when a limit is exceeded. The body is not parsed (see ParseBody).
absl::StatusOr<DecodedMessage> DecodeMessage(std::string_view message, const DecodeLimits& limits = {});

// Parses a decoded body into `out`: protobuf for the binary encodings, protobuf JSON for encoding 1.
// InvalidArgument when the header's type is not `out`'s message type, or the body does not parse.
absl::Status ParseBody(const DecodedMessage& decoded, google::protobuf::Message* out);

}  // namespace dogwatch::process
