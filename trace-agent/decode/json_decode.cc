// JSON trace bodies (v0.1-v0.4 with Content-Type application/json). A legacy, low-volume path:
// RapidJSON builds a DOM (iterative parser, so nesting depth cannot exhaust the stack), then the
// spans are converted with the same tolerance and limits as the msgpack decoders.

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/strings/strings.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"
#include "rapidjson/memorystream.h"
#include "trace-agent/decode/decode.h"
#include "trace-agent/decode/decode_internal.h"
#include "trace-agent/decode/utf8.h"

namespace dogwatch::trace {
namespace {

using decode_internal::DedupeKeepLast;
using decode_internal::LookupSpanField;
using decode_internal::SpanField;
using decode_internal::SpanFieldName;
using strings::AppendTo;
using strings::Cat;
using Value = rapidjson::Value;

constexpr double kTwo63 = 9223372036854775808.0;
constexpr double kTwo64 = 18446744073709551616.0;
constexpr double kTwo31 = 2147483648.0;
constexpr double kTwo32 = 4294967296.0;

const char* JsonTypeName(const Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType:
      return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return "bool";
    case rapidjson::kObjectType:
      return "object";
    case rapidjson::kArrayType:
      return "array";
    case rapidjson::kStringType:
      return "string";
    default:
      return "number";
  }
}

std::string_view View(const Value& string_value) {
  return std::string_view(string_value.GetString(), string_value.GetStringLength());
}

// A leading UTF-8 byte order mark is dropped (some Windows clients write one). RapidJSON's own BOM
// handling skips any of its three bytes, even alone, so the decoders strip it here and parse the rest
// as a plain byte stream.
std::string_view StripUtf8Bom(std::string_view body) {
  if (body.size() >= 3 && body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3);
  return body;
}

// Go's encoding/json matches struct field names case-insensitively when there is no exact match.
SpanField LookupSpanFieldFolded(std::string_view key) {
  const SpanField exact = LookupSpanField(key);
  if (exact != SpanField::kUnknown || key.size() > 16) return exact;
  char folded[16];
  for (size_t i = 0; i < key.size(); ++i) {
    const char c = key[i];
    folded[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return LookupSpanField(std::string_view(folded, key.size()));
}

bool EqualsFolded(std::string_view key, std::string_view lower_name) {
  if (key.size() != lower_name.size()) return false;
  for (size_t i = 0; i < key.size(); ++i) {
    char c = key[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower_name[i]) return false;
  }
  return true;
}

// Go encodes []byte as standard base64 with padding; its decoder skips \r and \n.
bool DecodeBase64(std::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size() / 4 * 3);
  uint32_t buffer = 0;
  int bits = 0;
  size_t padding = 0;
  size_t symbols = 0;
  for (const char c : in) {
    if (c == '\r' || c == '\n') continue;
    if (c == '=') {
      ++padding;
      ++symbols;
      continue;
    }
    if (padding > 0) return false;  // data after padding
    int value;
    if (c >= 'A' && c <= 'Z') {
      value = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      value = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      value = c - '0' + 52;
    } else if (c == '+') {
      value = 62;
    } else if (c == '/') {
      value = 63;
    } else {
      return false;
    }
    ++symbols;
    buffer = (buffer << 6) | static_cast<uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return symbols % 4 == 0 && padding <= 2;
}

class JsonDecoder {
 public:
  explicit JsonDecoder(const DecodeLimits& limits) : limits_(limits) {}

  absl::Status status() const { return absl::Status(code_, error_); }

  bool Decode(const Value& root, std::vector<Trace>* traces);

 private:
  bool Fail(std::string_view detail, absl::StatusCode code = absl::StatusCode::kInvalidArgument);
  bool TypeError(const char* expected, const Value& got) {
    return Fail(Cat("expected ", expected, ", got ", JsonTypeName(got)));
  }
  bool RangeError(const Value& v, const char* target);

  bool CountString(size_t n);
  bool Store(std::string_view raw, std::string* out);
  // JSON strings are unescaped into the parser's document, which dies with the decoder: the span
  // model gets owned copies.
  bool Store(std::string_view raw, SpanString* out);
  bool ReadString(const Value& v, SpanString* out);
  bool ReadUint64(const Value& v, uint64_t* out);
  bool ReadInt64(const Value& v, int64_t* out);
  bool ReadInt32(const Value& v, int32_t* out);
  bool ReadUint32(const Value& v, uint32_t* out);
  bool ReadDouble(const Value& v, double* out);
  bool CheckMap(const Value& v, size_t entry_size);
  bool ReadStringMap(const Value& v, StringMap* out);
  bool ReadNumberMap(const Value& v, NumberMap* out);
  bool ReadBytesMap(const Value& v, StringMap* out);
  bool ReadSpanLinks(const Value& v, std::vector<SpanLink>* out);
  bool ReadSpan(const Value& v, Span* span);
  bool ChargeSpans(size_t count);
  bool Charge(size_t bytes);

  const DecodeLimits& limits_;
  int64_t trace_ = -1;
  int64_t span_ = -1;
  const char* field_ = nullptr;
  int64_t link_ = -1;
  const char* link_field_ = nullptr;
  bool has_key_ = false;
  std::string_view key_;
  size_t spans_ = 0;
  size_t decoded_bytes_ = 0;
  absl::StatusCode code_ = absl::StatusCode::kOk;
  std::string error_;
};

bool JsonDecoder::Fail(std::string_view detail, absl::StatusCode code) {
  if (!error_.empty()) return false;
  code_ = code;
  error_ = "json: ";
  std::string where;
  if (trace_ >= 0) AppendTo(&where, "trace ", trace_);
  if (span_ >= 0) AppendTo(&where, where.empty() ? "" : ", ", "span ", span_);
  if (!where.empty()) AppendTo(&error_, where, ": ");
  std::string what;
  if (field_ != nullptr) AppendTo(&what, "field '", field_, "'");
  if (link_ >= 0) AppendTo(&what, what.empty() ? "" : ", ", "link ", link_);
  if (link_field_ != nullptr) AppendTo(&what, what.empty() ? "" : ", ", "field '", link_field_, "'");
  if (has_key_) {
    AppendTo(&what, what.empty() ? "" : ", ", "key '", key_.substr(0, 64), "'");
  }
  if (!what.empty()) AppendTo(&error_, what, ": ");
  error_.append(detail);
  return false;
}

bool JsonDecoder::RangeError(const Value& v, const char* target) {
  std::string number = v.IsDouble()   ? Cat(v.GetDouble())
                       : v.IsUint64() ? Cat(v.GetUint64())
                                      : Cat(v.GetInt64());
  return Fail(Cat("number ", number, " is out of range for ", target));
}

bool JsonDecoder::CountString(size_t n) {
  if (n > limits_.max_string_bytes) {
    return Fail(Cat("string of ", n, " bytes exceeds the limit of ", limits_.max_string_bytes, " bytes"),
                absl::StatusCode::kResourceExhausted);
  }
  return Charge(n);
}

bool JsonDecoder::Charge(size_t bytes) {
  decoded_bytes_ += bytes;
  if (decoded_bytes_ > limits_.max_decoded_bytes) {
    return Fail(Cat("decoded payload exceeds the limit of ", limits_.max_decoded_bytes, " bytes"),
                absl::StatusCode::kResourceExhausted);
  }
  return true;
}

bool JsonDecoder::Store(std::string_view raw, std::string* out) {
  if (!CountString(raw.size())) return false;
  AssignUtf8(raw, out);
  return true;
}

bool JsonDecoder::Store(std::string_view raw, SpanString* out) {
  std::string copy;
  if (!Store(raw, &copy)) return false;
  *out = SpanString(copy);
  return true;
}

bool JsonDecoder::ReadString(const Value& v, SpanString* out) {
  if (v.IsNull()) {
    out->clear();
    return true;
  }
  if (!v.IsString()) return TypeError("string", v);
  return Store(View(v), out);
}

bool JsonDecoder::ReadUint64(const Value& v, uint64_t* out) {
  if (v.IsNull()) {
    *out = 0;
  } else if (v.IsUint64()) {
    *out = v.GetUint64();
  } else if (v.IsInt64()) {
    *out = static_cast<uint64_t>(v.GetInt64());
  } else if (v.IsDouble()) {
    const double f = v.GetDouble();
    if (f >= 0 && f < kTwo64) {
      *out = static_cast<uint64_t>(f);
    } else if (f < 0 && f >= -kTwo63) {
      *out = static_cast<uint64_t>(static_cast<int64_t>(f));
    } else {
      return RangeError(v, "uint64");
    }
  } else {
    return TypeError("integer", v);
  }
  return true;
}

bool JsonDecoder::ReadInt64(const Value& v, int64_t* out) {
  if (v.IsNull()) {
    *out = 0;
  } else if (v.IsInt64()) {
    *out = v.GetInt64();
  } else if (v.IsUint64()) {
    return RangeError(v, "int64");  // a non-negative integer that is not an int64 is above INT64_MAX
  } else if (v.IsDouble()) {
    const double f = v.GetDouble();
    if (!(f >= -kTwo63 && f < kTwo63)) return RangeError(v, "int64");
    *out = static_cast<int64_t>(f);
  } else {
    return TypeError("integer", v);
  }
  return true;
}

bool JsonDecoder::ReadInt32(const Value& v, int32_t* out) {
  if (v.IsNull()) {
    *out = 0;
  } else if (v.IsInt()) {
    *out = v.GetInt();
  } else if (v.IsDouble()) {
    const double f = v.GetDouble();
    if (!(f > -kTwo31 - 1 && f < kTwo31)) return RangeError(v, "int32");
    *out = static_cast<int32_t>(f);
  } else if (v.IsNumber()) {
    return RangeError(v, "int32");
  } else {
    return TypeError("integer", v);
  }
  return true;
}

bool JsonDecoder::ReadUint32(const Value& v, uint32_t* out) {
  if (v.IsNull()) {
    *out = 0;
  } else if (v.IsUint()) {
    *out = v.GetUint();
  } else if (v.IsInt()) {
    *out = static_cast<uint32_t>(v.GetInt());  // negative int32: the bits of a flag word
  } else if (v.IsDouble()) {
    const double f = v.GetDouble();
    if (!(f >= 0 && f < kTwo32)) return RangeError(v, "uint32");
    *out = static_cast<uint32_t>(f);
  } else if (v.IsNumber()) {
    return RangeError(v, "uint32");
  } else {
    return TypeError("integer", v);
  }
  return true;
}

bool JsonDecoder::ReadDouble(const Value& v, double* out) {
  if (v.IsNull()) {
    *out = 0;
  } else if (v.IsNumber()) {
    *out = v.GetDouble();
  } else {
    return TypeError("number", v);
  }
  return true;
}

bool JsonDecoder::CheckMap(const Value& v, size_t entry_size) {
  if (!v.IsObject()) return TypeError("object", v);
  if (v.MemberCount() > limits_.max_map_entries) {
    return Fail(Cat("map of ", v.MemberCount(), " entries exceeds the limit of ", limits_.max_map_entries),
                absl::StatusCode::kResourceExhausted);
  }
  return Charge(v.MemberCount() * entry_size);
}

bool JsonDecoder::ReadStringMap(const Value& v, StringMap* out) {
  out->clear();
  if (v.IsNull()) return true;
  if (!CheckMap(v, sizeof((*out)[0]))) return false;
  out->reserve(v.MemberCount());
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    auto& entry = out->emplace_back();
    if (!Store(View(it->name), &entry.first)) return false;
    has_key_ = true;
    key_ = View(it->name);
    if (!ReadString(it->value, &entry.second)) return false;
    has_key_ = false;
  }
  DedupeKeepLast(out);
  return true;
}

bool JsonDecoder::ReadNumberMap(const Value& v, NumberMap* out) {
  out->clear();
  if (v.IsNull()) return true;
  if (!CheckMap(v, sizeof((*out)[0]))) return false;
  out->reserve(v.MemberCount());
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    auto& entry = out->emplace_back();
    if (!Store(View(it->name), &entry.first)) return false;
    has_key_ = true;
    key_ = View(it->name);
    if (!ReadDouble(it->value, &entry.second)) return false;
    has_key_ = false;
  }
  DedupeKeepLast(out);
  return true;
}

bool JsonDecoder::ReadBytesMap(const Value& v, StringMap* out) {
  out->clear();
  if (v.IsNull()) return true;
  if (!CheckMap(v, sizeof((*out)[0]))) return false;
  out->reserve(v.MemberCount());
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    auto& entry = out->emplace_back();
    if (!Store(View(it->name), &entry.first)) return false;
    has_key_ = true;
    key_ = View(it->name);
    if (it->value.IsNull()) {
      entry.second.clear();
    } else if (!it->value.IsString()) {
      return TypeError("base64 string", it->value);
    } else {
      std::string bytes;
      if (!CountString(it->value.GetStringLength()) || !DecodeBase64(View(it->value), &bytes))
        return error_.empty() ? Fail("invalid base64") : false;
      entry.second = SpanString(bytes);
    }
    has_key_ = false;
  }
  DedupeKeepLast(out);
  return true;
}

bool JsonDecoder::ReadSpanLinks(const Value& v, std::vector<SpanLink>* out) {
  out->clear();
  if (v.IsNull()) return true;
  if (!v.IsArray()) return TypeError("array", v);
  if (v.Size() > limits_.max_map_entries) {
    return Fail(Cat(v.Size(), " span links exceed the limit of ", limits_.max_map_entries),
                absl::StatusCode::kResourceExhausted);
  }
  if (!Charge(v.Size() * sizeof(SpanLink))) return false;
  out->reserve(v.Size());
  for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
    link_ = i;
    const Value& item = v[i];
    if (item.IsNull()) continue;
    if (!item.IsObject()) return TypeError("object", item);
    SpanLink& link = out->emplace_back();
    for (auto it = item.MemberBegin(); it != item.MemberEnd(); ++it) {
      const std::string_view key = View(it->name);
      bool ok = true;
      if (EqualsFolded(key, "trace_id")) {
        link_field_ = "trace_id";
        ok = ReadUint64(it->value, &link.trace_id);
      } else if (EqualsFolded(key, "trace_id_high")) {
        link_field_ = "trace_id_high";
        ok = ReadUint64(it->value, &link.trace_id_high);
      } else if (EqualsFolded(key, "span_id")) {
        link_field_ = "span_id";
        ok = ReadUint64(it->value, &link.span_id);
      } else if (EqualsFolded(key, "attributes")) {
        link_field_ = "attributes";
        ok = ReadStringMap(it->value, &link.attributes);
      } else if (EqualsFolded(key, "tracestate")) {
        link_field_ = "tracestate";
        ok = ReadString(it->value, &link.tracestate);
      } else if (EqualsFolded(key, "flags")) {
        link_field_ = "flags";
        ok = ReadUint32(it->value, &link.flags);
      }
      if (!ok) return false;
      link_field_ = nullptr;
    }
  }
  link_ = -1;
  return true;
}

bool JsonDecoder::ReadSpan(const Value& v, Span* span) {
  if (!v.IsObject()) return TypeError("object", v);
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    const SpanField field = LookupSpanFieldFolded(View(it->name));
    field_ = SpanFieldName(field);
    const Value& value = it->value;
    bool ok = true;
    switch (field) {
      case SpanField::kService:
        ok = ReadString(value, &span->service);
        break;
      case SpanField::kName:
        ok = ReadString(value, &span->name);
        break;
      case SpanField::kResource:
        ok = ReadString(value, &span->resource);
        break;
      case SpanField::kType:
        ok = ReadString(value, &span->type);
        break;
      case SpanField::kTraceId:
        ok = ReadUint64(value, &span->trace_id);
        break;
      case SpanField::kSpanId:
        ok = ReadUint64(value, &span->span_id);
        break;
      case SpanField::kParentId:
        ok = ReadUint64(value, &span->parent_id);
        break;
      case SpanField::kStart:
        ok = ReadInt64(value, &span->start);
        break;
      case SpanField::kDuration:
        ok = ReadInt64(value, &span->duration);
        break;
      case SpanField::kError:
        ok = ReadInt32(value, &span->error);
        break;
      case SpanField::kMeta:
        ok = ReadStringMap(value, &span->meta);
        break;
      case SpanField::kMetrics:
        ok = ReadNumberMap(value, &span->metrics);
        break;
      case SpanField::kMetaStruct:
        ok = ReadBytesMap(value, &span->meta_struct);
        break;
      case SpanField::kSpanLinks:
        ok = ReadSpanLinks(value, &span->span_links);
        break;
      default:
        break;  // unknown keys are ignored, as encoding/json does
    }
    if (!ok) return false;
  }
  field_ = nullptr;
  return true;
}

bool JsonDecoder::ChargeSpans(size_t count) {
  if (count > limits_.max_spans - spans_) {
    return Fail(Cat("payload has more than ", limits_.max_spans, " spans"),
                absl::StatusCode::kResourceExhausted);
  }
  spans_ += count;
  return Charge(count * sizeof(Span));
}

bool JsonDecoder::Decode(const Value& root, std::vector<Trace>* traces) {
  if (root.IsNull()) return true;
  if (!root.IsArray()) return TypeError("an array of traces", root);
  // [[span, ...], ...] (v0.2+) or the flat [span, ...] of v0.1: the first non-null element decides.
  bool flat = false;
  for (const Value& item : root.GetArray()) {
    if (item.IsNull()) continue;
    flat = item.IsObject();
    break;
  }
  if (!flat) {
    if (root.Size() > limits_.max_spans) {
      return Fail(Cat(root.Size(), " traces exceed the limit of ", limits_.max_spans),
                  absl::StatusCode::kResourceExhausted);
    }
    if (!Charge(root.Size() * sizeof(Trace))) return false;
    traces->reserve(root.Size());
    for (rapidjson::SizeType i = 0; i < root.Size(); ++i) {
      trace_ = i;
      const Value& item = root[i];
      Trace& trace = traces->emplace_back();
      if (item.IsNull()) continue;
      if (!item.IsArray()) return TypeError("an array of spans", item);
      if (!ChargeSpans(item.Size())) return false;
      trace.reserve(item.Size());
      for (rapidjson::SizeType j = 0; j < item.Size(); ++j) {
        span_ = j;
        if (item[j].IsNull()) continue;
        if (!ReadSpan(item[j], &trace.emplace_back())) return false;
      }
      span_ = -1;
    }
    trace_ = -1;
    return true;
  }
  if (!ChargeSpans(root.Size())) return false;
  std::unordered_map<uint64_t, size_t> trace_index;
  for (rapidjson::SizeType j = 0; j < root.Size(); ++j) {
    span_ = j;
    if (root[j].IsNull()) continue;
    Span span;
    if (!ReadSpan(root[j], &span)) return false;
    auto [it, inserted] = trace_index.emplace(span.trace_id, traces->size());
    if (inserted) traces->emplace_back();
    (*traces)[it->second].push_back(std::move(span));
  }
  span_ = -1;
  return true;
}

}  // namespace

namespace decode_internal {

// The top-level array's element count, found by tracking nesting and strings only.
absl::StatusOr<size_t> CountJsonTraces(std::string_view body) {
  body = StripUtf8Bom(body);
  size_t i = 0;
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (i < body.size() && is_space(body[i])) ++i;
  if (body.substr(i, 4) == "null") return size_t{0};
  if (i == body.size() || body[i] != '[')
    return absl::InvalidArgumentError("json: expected an array of traces");
  ++i;
  size_t depth = 0;
  size_t count = 0;
  bool expecting = true;
  bool in_string = false;
  for (; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (is_space(c)) continue;
    if (c == ']' || c == '}') {
      if (depth == 0) {
        if (c == ']') return count;
        return absl::InvalidArgumentError(Cat("json: unexpected '}' at byte ", i));
      }
      --depth;
      continue;
    }
    if (c == ',') {
      if (depth == 0) expecting = true;
      continue;
    }
    if (depth == 0 && expecting) {
      ++count;
      expecting = false;
    }
    if (c == '"') in_string = true;
    if (c == '[' || c == '{') ++depth;
  }
  return absl::InvalidArgumentError("json: unterminated array");
}

}  // namespace decode_internal

absl::StatusOr<std::vector<Trace>> DecodeJsonTraces(std::string_view body, const DecodeLimits& limits) {
  const size_t bom = body.size() - StripUtf8Bom(body).size();
  body.remove_prefix(bom);
  rapidjson::Document document;
  rapidjson::MemoryStream stream(body.data(), body.size());
  document.ParseStream<rapidjson::kParseIterativeFlag, rapidjson::UTF8<>>(stream);
  if (document.HasParseError()) {
    return absl::InvalidArgumentError(Cat("json: ", rapidjson::GetParseError_En(document.GetParseError()),
                                          " (at byte ", document.GetErrorOffset() + bom, ")"));
  }
  std::vector<Trace> traces;
  JsonDecoder decoder(limits);
  if (!decoder.Decode(document, &traces)) return decoder.status();
  return traces;
}

}  // namespace dogwatch::trace
