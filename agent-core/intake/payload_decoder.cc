#include "agent-core/intake/payload_decoder.h"

#include <google/protobuf/util/json_util.h>

#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "agent-core/intake/msgpack_json.h"
#include "agent-core/intake/protobuf_wire_check.h"
#include "common/compression/compression.h"
#include "datadog/metrics/metrics.pb.h"
#include "datadog/process/agent.pb.h"
#include "datadog/process/connections.pb.h"
#include "datadog/trace/agent_payload.pb.h"
#include "rapidjson/error/en.h"
#include "rapidjson/memorystream.h"
#include "rapidjson/reader.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace dogwatch::intake {
namespace {

struct PathEntry {
  std::string_view path;
  PayloadKind kind;
};

constexpr PathEntry kPaths[] = {
    {"/api/v0.2/traces", PayloadKind::kTraces},
    {"/api/v0.2/stats", PayloadKind::kTraceStats},
    {"/api/v2/series", PayloadKind::kSeriesV2},
    {"/api/beta/sketches", PayloadKind::kSketches},
    {"/api/v1/series", PayloadKind::kSeriesV1},
    {"/api/v1/check_run", PayloadKind::kCheckRuns},
    {"/intake/", PayloadKind::kIntake},
    {"/api/v1/metadata", PayloadKind::kMetadata},
    {"/api/v1/collector", PayloadKind::kProcess},
    {"/api/v1/container", PayloadKind::kProcess},
    {"/api/v1/connections", PayloadKind::kProcess},
    {"/api/v2/apmtelemetry", PayloadKind::kOpaque},
    {"/api/v2/profile", PayloadKind::kOpaque},
};

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// A decompression error, naming the header so that a client sending the wrong one is told so.
absl::Status ContentEncodingError(std::string_view content_encoding, const absl::Status& status) {
  const std::string encoding = content_encoding.empty() ? "identity" : std::string(content_encoding);
  return absl::Status(status.code(), absl::StrCat("Content-Encoding ", encoding, ": ", status.message()));
}

// Decompresses per Content-Encoding.
absl::StatusOr<std::string> DecodeContent(std::string_view content_encoding, std::string_view body,
                                          const DecodeLimits& limits) {
  absl::StatusOr<std::string> raw =
      compression::DecompressByContentEncoding(content_encoding, body, limits.max_decompressed_bytes);
  if (!raw.ok()) return ContentEncodingError(content_encoding, raw.status());
  return raw;
}

// One compiled check per type, built on first use.
template <typename Message>
const ProtobufWireCheck& WireCheck() {
  static const ProtobufWireCheck check(Message::descriptor());
  return check;
}

template <typename Message>
absl::Status CheckProtobuf(std::string_view bytes, absl::string_view type_name) {
  absl::Status status = WireCheck<Message>().Check(bytes);
  if (status.ok()) return status;
  return absl::InvalidArgumentError(
      absl::StrCat("invalid ", type_name, " protobuf (", bytes.size(), " bytes): ", status.message()));
}

// The decompressed bytes of the payloads checked on this thread: a trace flush is ~3 MB, and a new
// buffer each time cost more in page faults and zero-filling than the decompression itself. A
// buffer grown past this (a rare huge payload) is freed after use instead of kept.
constexpr size_t kMaxKeptCheckBuffer = 8 << 20;

template <typename Message>
absl::Status ValidateProtobufPayload(std::string_view content_encoding, std::string_view body,
                                     absl::string_view type_name, const DecodeLimits& limits) {
  thread_local std::string raw;
  absl::Cleanup release = [] {
    if (raw.capacity() > kMaxKeptCheckBuffer) std::string().swap(raw);
  };
  absl::StatusOr<compression::Codec> codec = compression::CodecForContentEncoding(content_encoding);
  absl::Status status = codec.ok()
                            ? compression::DecompressInto(*codec, body, limits.max_decompressed_bytes, &raw)
                            : codec.status();
  if (!status.ok()) return ContentEncodingError(content_encoding, status);
  return CheckProtobuf<Message>(raw, type_name);
}

template <typename Message>
absl::StatusOr<std::string> ProtobufToJson(std::string_view bytes, absl::string_view type_name,
                                           const DecodeLimits& limits) {
  Message message;
  if (!message.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    // The wire check says where and why (it refuses what the parser refuses).
    absl::Status why = CheckProtobuf<Message>(bytes, type_name);
    if (!why.ok()) return why;
    return absl::InvalidArgumentError(
        absl::StrCat("invalid ", type_name, " protobuf (", bytes.size(), " bytes)"));
  }
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  google::protobuf::util::Status status =
      google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot render ", type_name, " as JSON: ", status.ToString()));
  }
  if (json.size() > limits.max_json_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("JSON for this ", type_name, " exceeds ", limits.max_json_bytes, " bytes"));
  }
  return json;
}

// SAX handler that copies events to a writer, enforcing depth and the top-level type.
class JsonForwarder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, JsonForwarder> {
 public:
  JsonForwarder(JsonWriter* writer, JsonTopLevel expected, size_t max_depth)
      : writer_(writer), expected_(expected), max_depth_(max_depth) {}

  bool Null() { return Scalar() && writer_->Null(); }
  bool Bool(bool b) { return Scalar() && writer_->Bool(b); }
  bool RawNumber(const char* str, rapidjson::SizeType length, bool /*copy*/) {
    return Scalar() && writer_->RawValue(str, length, rapidjson::kNumberType);
  }
  bool String(const char* str, rapidjson::SizeType length, bool /*copy*/) {
    return Scalar() && writer_->String(str, length);
  }
  bool Key(const char* str, rapidjson::SizeType length, bool /*copy*/) { return writer_->Key(str, length); }
  bool StartObject() { return Open(JsonTopLevel::kObject) && writer_->StartObject(); }
  bool EndObject(rapidjson::SizeType /*members*/) {
    --depth_;
    return writer_->EndObject();
  }
  bool StartArray() { return Open(JsonTopLevel::kArray) && writer_->StartArray(); }
  bool EndArray(rapidjson::SizeType /*elements*/) {
    --depth_;
    return writer_->EndArray();
  }

  // Why the handler stopped the parse, when it did.
  const std::string& failure() const { return failure_; }

 private:
  bool Scalar() {
    if (depth_ == 0 && expected_ != JsonTopLevel::kAny) {
      failure_ = WrongTopLevel();
      return false;
    }
    return true;
  }

  bool Open(JsonTopLevel kind) {
    if (depth_ == 0 && expected_ != JsonTopLevel::kAny && expected_ != kind) {
      failure_ = WrongTopLevel();
      return false;
    }
    if (++depth_ > max_depth_) {
      failure_ = absl::StrCat("JSON nesting deeper than ", max_depth_, " levels");
      return false;
    }
    return true;
  }

  std::string WrongTopLevel() const {
    return expected_ == JsonTopLevel::kObject ? "expected a JSON object at the top level"
                                              : "expected a JSON array at the top level";
  }

  JsonWriter* writer_;
  const JsonTopLevel expected_;
  const size_t max_depth_;
  size_t depth_ = 0;
  std::string failure_;
};

absl::StatusOr<std::string> DecodeJsonPayload(std::string_view content_encoding, std::string_view body,
                                              JsonTopLevel expected, const DecodeLimits& limits) {
  absl::StatusOr<std::string> raw = DecodeContent(content_encoding, body, limits);
  if (!raw.ok()) return raw.status();
  return NormalizeJson(*raw, expected, limits.max_depth);
}

// The body of a process message of `type` as JSON, through the generated class for the type
// (agent-payload's message-type table); nullopt for types dogwatch has no class for.
std::optional<absl::StatusOr<std::string>> ProcessBodyToJson(int type, std::string_view body,
                                                             const DecodeLimits& limits) {
  namespace pa = datadog::process_agent;
  switch (type) {
    case 12:
      return ProtobufToJson<pa::CollectorProc>(body, "CollectorProc", limits);
    case 22:
      return ProtobufToJson<pa::CollectorConnections>(body, "CollectorConnections", limits);
    case 23:
      return ProtobufToJson<pa::ResCollector>(body, "ResCollector", limits);
    case 27:
      return ProtobufToJson<pa::CollectorRealTime>(body, "CollectorRealTime", limits);
    case 39:
      return ProtobufToJson<pa::CollectorContainer>(body, "CollectorContainer", limits);
    case 40:
      return ProtobufToJson<pa::CollectorContainerRealTime>(body, "CollectorContainerRealTime", limits);
    case 53:
      return ProtobufToJson<pa::CollectorProcDiscovery>(body, "CollectorProcDiscovery", limits);
    default:
      return std::nullopt;
  }
}

absl::StatusOr<std::string> DecodeProcessPayload(std::string_view content_encoding, std::string_view body,
                                                 const DecodeLimits& limits) {
  absl::StatusOr<std::string> message = DecodeContent(content_encoding, body, limits);
  if (!message.ok()) return message.status();
  absl::StatusOr<ProcessMessageHeader> header = ParseProcessMessageHeader(*message);
  if (!header.ok()) return header.status();
  const std::string_view encoded = std::string_view(*message).substr(header->header_bytes);

  std::string decoded_storage;
  std::string_view decoded = encoded;
  switch (header->encoding) {
    case 0:  // protobuf
    case 1:  // JSON
      break;
    case 2:    // zstd + protobuf (legacy encoder)
    case 4:    // zstd 1.x + protobuf, what the agent sends
    case 5: {  // zstd + protobuf without cgo
      absl::StatusOr<std::string> inflated =
          compression::ZstdDecompress(encoded, limits.max_decompressed_bytes);
      if (!inflated.ok()) {
        return absl::Status(inflated.status().code(),
                            absl::StrCat("process message body (encoding ", header->encoding,
                                         "): ", inflated.status().message()));
      }
      decoded_storage = std::move(*inflated);
      decoded = decoded_storage;
      break;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown process message encoding ", header->encoding));
  }

  // A JSON body is checked and kept as sent; a protobuf body is rendered through the generated
  // class of its message type; other types (connections, orchestrator) stay opaque.
  std::string body_json;
  bool body_is_json = false;
  if (header->encoding == 1) {
    absl::StatusOr<std::string> normalized = NormalizeJson(decoded, JsonTopLevel::kAny, limits.max_depth);
    if (!normalized.ok()) {
      return absl::Status(normalized.status().code(),
                          absl::StrCat("process message JSON body: ", normalized.status().message()));
    }
    body_json = std::move(*normalized);
    body_is_json = true;
  } else if (std::optional<absl::StatusOr<std::string>> rendered =
                 ProcessBodyToJson(header->type, decoded, limits);
             rendered.has_value()) {
    if (!rendered->ok()) {
      return absl::Status(rendered->status().code(),
                          absl::StrCat("process message body: ", rendered->status().message()));
    }
    body_json = std::move(**rendered);
    body_is_json = true;
  }

  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("header");
  w.StartObject();
  w.Key("version");
  w.Int(header->version);
  w.Key("encoding");
  w.Int(header->encoding);
  w.Key("encoding_name");
  w.String(std::string(ProcessMessageEncodingName(header->encoding)).c_str());
  w.Key("type");
  w.Int(header->type);
  w.Key("type_name");
  w.String(std::string(ProcessMessageTypeName(header->type)).c_str());
  w.Key("subscription_id");
  w.Int(header->subscription_id);
  w.Key("org_id");
  w.Int(header->org_id);
  w.Key("timestamp_ms");
  w.Int64(header->timestamp_ms);
  w.EndObject();
  w.Key("body_bytes");
  w.Uint64(decoded.size());
  if (body_is_json) {
    w.Key("body");
    w.RawValue(body_json.data(), body_json.size(), rapidjson::kObjectType);
  } else {
    const std::string b64 = absl::Base64Escape(absl::string_view(decoded.data(), decoded.size()));
    w.Key("body_base64");
    w.String(b64.data(), static_cast<rapidjson::SizeType>(b64.size()));
  }
  w.EndObject();
  if (buffer.GetSize() > limits.max_json_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("JSON for this process message exceeds ", limits.max_json_bytes, " bytes"));
  }
  return std::string(buffer.GetString(), buffer.GetSize());
}

uint32_t ReadLE32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

}  // namespace

std::optional<PayloadKind> PayloadKindForPath(std::string_view path) {
  for (const PathEntry& entry : kPaths) {
    if (entry.path == path) return entry.kind;
  }
  // Some clients drop the trailing slash of /intake/.
  if (path == "/intake") return PayloadKind::kIntake;
  return std::nullopt;
}

std::optional<PayloadKind> PayloadKindForRequest(std::string_view path, bool has_evp_subdomain) {
  if (has_evp_subdomain && path.starts_with("/api/")) return PayloadKind::kOpaque;
  return PayloadKindForPath(path);
}

const std::vector<std::string_view>& PayloadPaths() {
  static const std::vector<std::string_view> paths = [] {
    std::vector<std::string_view> out;
    for (const PathEntry& entry : kPaths) out.push_back(entry.path);
    return out;
  }();
  return paths;
}

std::string_view PayloadKindName(PayloadKind kind) {
  switch (kind) {
    case PayloadKind::kTraces:
      return "traces";
    case PayloadKind::kTraceStats:
      return "stats";
    case PayloadKind::kSeriesV2:
      return "series_v2";
    case PayloadKind::kSketches:
      return "sketches";
    case PayloadKind::kSeriesV1:
      return "series_v1";
    case PayloadKind::kCheckRuns:
      return "check_runs";
    case PayloadKind::kIntake:
      return "intake";
    case PayloadKind::kMetadata:
      return "metadata";
    case PayloadKind::kProcess:
      return "process";
    case PayloadKind::kOpaque:
      return "opaque";
  }
  return "unknown";
}

absl::StatusOr<std::string> DecodePayloadToJson(PayloadKind kind, std::string_view content_encoding,
                                                std::string_view body, const DecodeLimits& limits) {
  switch (kind) {
    case PayloadKind::kOpaque: {
      absl::StatusOr<std::string> raw = DecodeContent(content_encoding, body, limits);
      if (!raw.ok()) return raw.status();
      rapidjson::StringBuffer buffer;
      JsonWriter w(buffer);
      w.StartObject();
      w.Key("bytes");
      w.Uint64(raw->size());
      absl::StatusOr<std::string> json = NormalizeJson(*raw, JsonTopLevel::kAny, limits.max_depth);
      if (json.ok()) {
        w.Key("json");
        w.RawValue(json->data(), json->size(), rapidjson::kObjectType);
      } else {
        const std::string b64 = absl::Base64Escape(absl::string_view(raw->data(), raw->size()));
        w.Key("body_base64");
        w.String(b64.data(), static_cast<rapidjson::SizeType>(b64.size()));
      }
      w.EndObject();
      if (buffer.GetSize() > limits.max_json_bytes) {
        return absl::ResourceExhaustedError(
            absl::StrCat("JSON for this payload exceeds ", limits.max_json_bytes, " bytes"));
      }
      return std::string(buffer.GetString(), buffer.GetSize());
    }
    case PayloadKind::kTraces: {
      absl::StatusOr<std::string> raw = DecodeContent(content_encoding, body, limits);
      if (!raw.ok()) return raw.status();
      return ProtobufToJson<datadog::trace::AgentPayload>(*raw, "AgentPayload", limits);
    }
    case PayloadKind::kSeriesV2: {
      absl::StatusOr<std::string> raw = DecodeContent(content_encoding, body, limits);
      if (!raw.ok()) return raw.status();
      return ProtobufToJson<datadog::agentpayload::MetricPayload>(*raw, "MetricPayload", limits);
    }
    case PayloadKind::kSketches: {
      absl::StatusOr<std::string> raw = DecodeContent(content_encoding, body, limits);
      if (!raw.ok()) return raw.status();
      return ProtobufToJson<datadog::agentpayload::SketchPayload>(*raw, "SketchPayload", limits);
    }
    case PayloadKind::kTraceStats: {
      absl::StatusOr<std::string> raw = DecodeContent(content_encoding, body, limits);
      if (!raw.ok()) return raw.status();
      if (raw->empty() || !((static_cast<unsigned char>((*raw)[0]) & 0xf0) == 0x80 || (*raw)[0] == '\xde' ||
                            (*raw)[0] == '\xdf')) {
        return absl::InvalidArgumentError("StatsPayload must be a msgpack map");
      }
      MsgpackJsonLimits msgpack_limits;
      msgpack_limits.max_depth = limits.max_depth;
      msgpack_limits.max_output_bytes = limits.max_json_bytes;
      absl::StatusOr<std::string> json = MsgpackToJson(*raw, msgpack_limits);
      if (!json.ok()) {
        return absl::Status(json.status().code(), absl::StrCat("StatsPayload: ", json.status().message()));
      }
      return json;
    }
    case PayloadKind::kSeriesV1:
    case PayloadKind::kIntake:
    case PayloadKind::kMetadata:
      return DecodeJsonPayload(content_encoding, body, JsonTopLevel::kObject, limits);
    case PayloadKind::kCheckRuns:
      return DecodeJsonPayload(content_encoding, body, JsonTopLevel::kArray, limits);
    case PayloadKind::kProcess:
      return DecodeProcessPayload(content_encoding, body, limits);
  }
  return absl::InternalError("unknown payload kind");
}

absl::Status ValidatePayload(PayloadKind kind, std::string_view content_encoding, std::string_view body,
                             const DecodeLimits& limits) {
  switch (kind) {
    case PayloadKind::kTraces:
      return ValidateProtobufPayload<datadog::trace::AgentPayload>(content_encoding, body, "AgentPayload",
                                                                   limits);
    case PayloadKind::kSeriesV2:
      return ValidateProtobufPayload<datadog::agentpayload::MetricPayload>(content_encoding, body,
                                                                           "MetricPayload", limits);
    case PayloadKind::kSketches:
      return ValidateProtobufPayload<datadog::agentpayload::SketchPayload>(content_encoding, body,
                                                                           "SketchPayload", limits);
    case PayloadKind::kTraceStats:
    case PayloadKind::kSeriesV1:
    case PayloadKind::kCheckRuns:
    case PayloadKind::kIntake:
    case PayloadKind::kMetadata:
    case PayloadKind::kProcess:
    case PayloadKind::kOpaque:
      return DecodePayloadToJson(kind, content_encoding, body, limits).status();
  }
  return absl::InternalError("unknown payload kind");
}

absl::StatusOr<ProcessMessageHeader> ParseProcessMessageHeader(std::string_view message) {
  const auto* p = reinterpret_cast<const unsigned char*>(message.data());
  if (message.empty()) return absl::InvalidArgumentError("empty process message");
  ProcessMessageHeader header;
  header.version = p[0];
  switch (header.version) {
    case 1:
      header.header_bytes = 4;
      break;
    case 2:
      header.header_bytes = 8;
      break;
    case 3:
      header.header_bytes = 16;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown process message version ", header.version, " (expected 1, 2 or 3)"));
  }
  if (message.size() < header.header_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("process message of ", message.size(),
                                                   " bytes is shorter than its V", header.version,
                                                   " header (", header.header_bytes, " bytes)"));
  }
  header.encoding = p[1];
  header.type = p[2];
  header.subscription_id = p[3];
  if (header.version >= 2) header.org_id = static_cast<int32_t>(ReadLE32(p + 4));
  if (header.version >= 3) {
    const uint64_t ts = static_cast<uint64_t>(ReadLE32(p + 8)) | static_cast<uint64_t>(ReadLE32(p + 12))
                                                                     << 32;
    header.timestamp_ms = static_cast<int64_t>(ts);
  }
  return header;
}

std::string EncodeProcessMessageHeaderV3(const ProcessMessageHeader& header) {
  std::string out(16, '\0');
  out[0] = 3;
  out[1] = static_cast<char>(header.encoding);
  out[2] = static_cast<char>(header.type);
  out[3] = static_cast<char>(header.subscription_id);
  const auto org = static_cast<uint32_t>(header.org_id);
  const auto ts = static_cast<uint64_t>(header.timestamp_ms);
  for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<char>((org >> (8 * i)) & 0xff);
  for (int i = 0; i < 8; ++i) out[8 + i] = static_cast<char>((ts >> (8 * i)) & 0xff);
  return out;
}

std::string_view ProcessMessageTypeName(int type) {
  switch (type) {
    case 12:
      return "CollectorProc";
    case 22:
      return "CollectorConnections";
    case 23:
      return "ResCollector";
    case 27:
      return "CollectorRealTime";
    case 39:
      return "CollectorContainer";
    case 40:
      return "CollectorContainerRealTime";
    case 41:
      return "CollectorPod";
    case 53:
      return "CollectorProcDiscovery";
    case 60:
      return "CollectorProcEvent";
    case 200:
      return "CollectorECSTask";
    default:
      return "unknown";
  }
}

std::string_view ProcessMessageEncodingName(int encoding) {
  switch (encoding) {
    case 0:
      return "protobuf";
    case 1:
      return "json";
    case 2:
      return "zstd-protobuf";
    case 4:
      return "zstd1x-protobuf";
    case 5:
      return "zstd-protobuf-nocgo";
    default:
      return "unknown";
  }
}

absl::StatusOr<std::string> NormalizeJson(std::string_view text, JsonTopLevel expected, size_t max_depth) {
  if (const void* nul = std::memchr(text.data(), '\0', text.size()); nul != nullptr) {
    // The reader treats NUL as the end of input; a NUL is never valid JSON anyway.
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON: NUL byte at offset ", static_cast<const char*>(nul) - text.data()));
  }
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  JsonForwarder forwarder(&writer, expected, max_depth);
  rapidjson::MemoryStream stream(text.data(), text.size());
  rapidjson::Reader reader;
  // Iterative: a deeply nested document must not recurse on our stack. Numbers as strings: keep
  // their exact text instead of round-tripping through double.
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag |
                              rapidjson::kParseNumbersAsStringsFlag;
  rapidjson::ParseResult result = reader.Parse<kFlags>(stream, forwarder);
  if (!result) {
    if (!forwarder.failure().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid JSON at offset ", result.Offset(), ": ", forwarder.failure()));
    }
    return absl::InvalidArgumentError(absl::StrCat("invalid JSON at offset ", result.Offset(), ": ",
                                                   rapidjson::GetParseError_En(result.Code())));
  }
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace dogwatch::intake
