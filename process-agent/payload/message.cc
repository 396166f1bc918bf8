#include "process-agent/payload/message.h"

#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

#include <climits>

#include "common/compression/compression.h"
#include "common/strings/strings.h"
#include "datadog/process/agent.pb.h"

namespace dogwatch::process {
namespace {

using strings::Cat;

uint32_t ReadLE32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

bool IsZstdEncoding(uint8_t encoding) {
  return encoding == static_cast<uint8_t>(MessageEncoding::kZstdProtobuf) ||
         encoding == static_cast<uint8_t>(MessageEncoding::kZstd1xProtobuf) ||
         encoding == static_cast<uint8_t>(MessageEncoding::kZstdProtobufNoCgo);
}

constexpr MessageType kKnownTypes[] = {
    MessageType::kCollectorProc,          MessageType::kCollectorConnections,
    MessageType::kResCollector,           MessageType::kCollectorRealTime,
    MessageType::kCollectorContainer,     MessageType::kCollectorContainerRealTime,
    MessageType::kCollectorProcDiscovery,
};

}  // namespace

std::string_view MessageTypeName(uint8_t type) {
  switch (static_cast<MessageType>(type)) {
    case MessageType::kCollectorProc:
      return "CollectorProc";
    case MessageType::kCollectorConnections:
      return "CollectorConnections";
    case MessageType::kResCollector:
      return "ResCollector";
    case MessageType::kCollectorRealTime:
      return "CollectorRealTime";
    case MessageType::kCollectorContainer:
      return "CollectorContainer";
    case MessageType::kCollectorContainerRealTime:
      return "CollectorContainerRealTime";
    case MessageType::kCollectorProcDiscovery:
      return "CollectorProcDiscovery";
  }
  return "unknown";
}

std::string_view MessageEncodingName(uint8_t encoding) {
  switch (static_cast<MessageEncoding>(encoding)) {
    case MessageEncoding::kProtobuf:
      return "protobuf";
    case MessageEncoding::kJson:
      return "json";
    case MessageEncoding::kZstdProtobuf:
      return "zstd-protobuf";
    case MessageEncoding::kZstd1xProtobuf:
      return "zstd1x-protobuf";
    case MessageEncoding::kZstdProtobufNoCgo:
      return "zstd-protobuf-nocgo";
  }
  return "unknown";
}

std::string_view MessageTypeProtoName(MessageType type) {
  switch (type) {
    case MessageType::kCollectorProc:
      return "datadog.process_agent.CollectorProc";
    case MessageType::kResCollector:
      return "datadog.process_agent.ResCollector";
    case MessageType::kCollectorRealTime:
      return "datadog.process_agent.CollectorRealTime";
    case MessageType::kCollectorContainer:
      return "datadog.process_agent.CollectorContainer";
    case MessageType::kCollectorContainerRealTime:
      return "datadog.process_agent.CollectorContainerRealTime";
    case MessageType::kCollectorProcDiscovery:
      return "datadog.process_agent.CollectorProcDiscovery";
    case MessageType::kCollectorConnections:
      return "datadog.process_agent.CollectorConnections";
  }
  return "";
}

std::optional<MessageType> MessageTypeForBody(const google::protobuf::Message& body) {
  const std::string& name = body.GetDescriptor()->full_name();
  for (MessageType type : kKnownTypes) {
    const std::string_view proto_name = MessageTypeProtoName(type);
    if (!proto_name.empty() && proto_name == name) return type;
  }
  return std::nullopt;
}

std::string EncodeHeaderV3(const MessageHeader& header) {
  std::string out(kHeaderV3Bytes, '\0');
  out[0] = static_cast<char>(kMessageVersion3);
  out[1] = static_cast<char>(header.encoding);
  out[2] = static_cast<char>(header.type);
  out[3] = static_cast<char>(header.subscription_id);
  const auto org = static_cast<uint32_t>(header.org_id);
  const auto ts = static_cast<uint64_t>(header.timestamp_ms);
  for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<char>((org >> (8 * i)) & 0xff);
  for (int i = 0; i < 8; ++i) out[8 + i] = static_cast<char>((ts >> (8 * i)) & 0xff);
  return out;
}

absl::StatusOr<std::string> EncodeMessage(MessageType type, const google::protobuf::Message& body,
                                          int64_t timestamp_ms) {
  const std::string_view expected = MessageTypeProtoName(type);
  if (expected.empty()) {
    return absl::InvalidArgumentError(Cat("message type ", static_cast<int>(type), " (",
                                          MessageTypeName(static_cast<uint8_t>(type)),
                                          ") has no compiled protobuf to encode"));
  }
  if (body.GetDescriptor()->full_name() != expected) {
    return absl::InvalidArgumentError(Cat("message type ", MessageTypeName(static_cast<uint8_t>(type)),
                                          " carries ", expected, ", not ",
                                          body.GetDescriptor()->full_name()));
  }
  const size_t size = body.ByteSizeLong();
  if (size > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(Cat("message body of ", size, " bytes is too large to serialize"));
  }
  std::string serialized;
  if (!body.SerializeToString(&serialized)) {
    return absl::InvalidArgumentError(Cat("cannot serialize ", expected));
  }
  absl::StatusOr<std::string> compressed = compression::ZstdCompress(serialized);
  if (!compressed.ok()) return compressed.status();

  MessageHeader header;
  header.encoding = static_cast<uint8_t>(MessageEncoding::kZstd1xProtobuf);
  header.type = static_cast<uint8_t>(type);
  header.timestamp_ms = timestamp_ms;
  std::string out = EncodeHeaderV3(header);
  out.append(*compressed);
  return out;
}

absl::StatusOr<DecodedMessage> DecodeMessage(std::string_view message, const DecodeLimits& limits) {
  if (message.size() > limits.max_message_bytes) {
    return absl::ResourceExhaustedError(Cat("process message of ", message.size(), " bytes exceeds the ",
                                            limits.max_message_bytes, " byte limit"));
  }
  if (message.empty()) return absl::InvalidArgumentError("empty process message");
  const auto* p = reinterpret_cast<const unsigned char*>(message.data());
  DecodedMessage decoded;
  MessageHeader& header = decoded.header;
  header.version = p[0];
  switch (header.version) {
    case kMessageVersion1:
      decoded.header_bytes = kHeaderV1Bytes;
      break;
    case kMessageVersion2:
      decoded.header_bytes = kHeaderV2Bytes;
      break;
    case kMessageVersion3:
      decoded.header_bytes = kHeaderV3Bytes;
      break;
    default:
      return absl::InvalidArgumentError(
          Cat("unknown process message version ", header.version, " (expected 1, 2 or 3)"));
  }
  if (message.size() < decoded.header_bytes) {
    return absl::InvalidArgumentError(Cat("process message of ", message.size(),
                                          " bytes is shorter than its V", header.version, " header (",
                                          decoded.header_bytes, " bytes)"));
  }
  header.encoding = p[1];
  header.type = p[2];
  header.subscription_id = p[3];
  if (header.version >= kMessageVersion2) header.org_id = static_cast<int32_t>(ReadLE32(p + 4));
  if (header.version >= kMessageVersion3) {
    const uint64_t ts = static_cast<uint64_t>(ReadLE32(p + 8)) | static_cast<uint64_t>(ReadLE32(p + 12))
                                                                     << 32;
    header.timestamp_ms = static_cast<int64_t>(ts);
  }

  const std::string_view encoded = message.substr(decoded.header_bytes);
  if (header.encoding == static_cast<uint8_t>(MessageEncoding::kProtobuf) ||
      header.encoding == static_cast<uint8_t>(MessageEncoding::kJson)) {
    if (encoded.size() > limits.max_body_bytes) {
      return absl::ResourceExhaustedError(Cat("process message body of ", encoded.size(), " bytes exceeds ",
                                              limits.max_body_bytes, " bytes"));
    }
    decoded.body.assign(encoded);
    return decoded;
  }
  if (!IsZstdEncoding(header.encoding)) {
    return absl::InvalidArgumentError(Cat("unknown process message encoding ", header.encoding));
  }
  absl::StatusOr<std::string> inflated = compression::ZstdDecompress(encoded, limits.max_body_bytes);
  if (!inflated.ok()) {
    return absl::Status(inflated.status().code(), Cat("process message body (encoding ", header.encoding,
                                                      "): ", inflated.status().message()));
  }
  decoded.body = std::move(*inflated);
  return decoded;
}

absl::Status ParseBody(const DecodedMessage& decoded, google::protobuf::Message* out) {
  const std::string& name = out->GetDescriptor()->full_name();
  const std::string_view expected = MessageTypeProtoName(static_cast<MessageType>(decoded.header.type));
  if (expected != name) {
    return absl::InvalidArgumentError(Cat("process message of type ", decoded.header.type, " (",
                                          MessageTypeName(decoded.header.type), ") does not carry ", name));
  }
  if (decoded.header.encoding == static_cast<uint8_t>(MessageEncoding::kJson)) {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    const auto status = google::protobuf::util::JsonStringToMessage(decoded.body, out, options);
    if (!status.ok()) {
      return absl::InvalidArgumentError(Cat("invalid ", name, " JSON: ", status.ToString()));
    }
    return absl::OkStatus();
  }
  if (decoded.body.size() > static_cast<size_t>(INT_MAX) ||
      !out->ParseFromArray(decoded.body.data(), static_cast<int>(decoded.body.size()))) {
    return absl::InvalidArgumentError(Cat("invalid ", name, " protobuf (", decoded.body.size(),
                                          " bytes): truncated, malformed, or a string holds invalid UTF-8"));
  }
  return absl::OkStatus();
}

}  // namespace dogwatch::process
