// The msgpack trace decoders (v0.4, v0.5, v0.7) and CountTraces. One Decoder object per payload
// holds the cursor, the error location and the running totals the limits apply to.

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "common/strings/strings.h"
#include "trace-agent/decode/decode.h"
#include "trace-agent/decode/decode_internal.h"
#include "trace-agent/decode/msgpack_reader.h"
#include "trace-agent/decode/utf8.h"
#include "trace-agent/model/tag_storage.h"

namespace dogwatch::trace {
namespace {

using decode_internal::DedupeKeepLast;
using decode_internal::DuplicateKeyFilter;
using decode_internal::LookupSpanField;
using decode_internal::SameBytes;
using decode_internal::SpanField;
using decode_internal::SpanFieldName;
using msgpack::Location;
using msgpack::Number;
using msgpack::Reader;
using strings::Cat;

// Exact bounds of the integer ranges as doubles (each is a power of two, so exactly representable);
// a float converts only when it lies inside, because an out-of-range float-to-int cast is UB.
constexpr double kTwo63 = 9223372036854775808.0;
constexpr double kTwo64 = 18446744073709551616.0;
constexpr double kTwo31 = 2147483648.0;
constexpr double kTwo32 = 4294967296.0;

std::string DescribeNumber(const Number& n) {
  switch (n.kind) {
    case Number::kUint:
      return Cat("uint ", n.u);
    case Number::kInt:
      return Cat("int ", n.i);
    case Number::kFloat:
      return Cat("float ", n.f);
    default:
      return "nil";
  }
}

enum class PayloadField : uint8_t {
  kUnknown,
  kContainerId,
  kLanguageName,
  kLanguageVersion,
  kTracerVersion,
  kRuntimeId,
  kChunks,
  kTags,
  kEnv,
  kHostname,
  kAppVersion,
};

PayloadField LookupPayloadField(std::string_view key) {
  switch (key.size()) {
    case 3:
      if (SameBytes(key, "env")) return PayloadField::kEnv;
      break;
    case 4:
      if (SameBytes(key, "tags")) return PayloadField::kTags;
      break;
    case 6:
      if (SameBytes(key, "chunks")) return PayloadField::kChunks;
      break;
    case 8:
      if (SameBytes(key, "hostname")) return PayloadField::kHostname;
      break;
    case 10:
      if (SameBytes(key, "runtime_id")) return PayloadField::kRuntimeId;
      break;
    case 11:
      if (SameBytes(key, "app_version")) return PayloadField::kAppVersion;
      break;
    case 12:
      if (SameBytes(key, "container_id")) return PayloadField::kContainerId;
      break;
    case 13:
      if (SameBytes(key, "language_name")) return PayloadField::kLanguageName;
      break;
    case 14:
      if (SameBytes(key, "tracer_version")) return PayloadField::kTracerVersion;
      break;
    case 16:
      if (SameBytes(key, "language_version")) return PayloadField::kLanguageVersion;
      break;
    default:
      break;
  }
  return PayloadField::kUnknown;
}

class Decoder {
 public:
  Decoder(std::string_view body, std::string_view prefix, const DecodeLimits& limits)
      : limits_(limits), r_(body, prefix, &where_, limits.max_string_bytes, limits.max_depth) {
    // Outside v0.5 each string is copied from the body at most once: charge the body's size up
    // front and skip the per-string accounting on the hot path.
    if (body.size() <= limits.max_decoded_bytes) {
      decoded_bytes_ = body.size();
      charge_strings_ = false;
    }
  }

  absl::Status status() const { return r_.status(); }

  bool DecodeTracesV04(std::vector<Trace>* traces);
  bool DecodeTracesV05(std::vector<Trace>* traces);
  bool DecodePayloadV07(TracerPayload* payload);

 private:
  // Scalars. Each accepts every width msgpack has for its family, plus nil as the zero value when
  // nil_allowed_ (everything but v0.5).
  bool ReadKey(std::string_view* raw);
  bool ReadString(std::string* out);
  bool ReadString(SpanString* out);
  bool ReadBytes(SpanString* out);
  bool IsText(std::string_view raw) const { return r_.ShortAscii(raw) || IsValidUtf8(raw); }
  std::string MakeString(std::string_view raw) const {
    if (IsText(raw)) [[likely]] {
      return std::string(raw);
    }
    std::string repaired;
    AssignRepairedUtf8(raw, &repaired);
    return repaired;
  }
  // Valid UTF-8 borrows from the body (the span model's lifetime rule, span.h); only a repaired
  // string is a copy of its own.
  SpanString MakeSpanString(std::string_view raw) const {
    if (IsText(raw)) [[likely]] {
      return SpanString::Borrow(raw);
    }
    return SpanString(MakeString(raw));
  }
  bool ReadStringView(std::string_view* out);
  // Adds to the estimate of the decoded payload's memory (max_decoded_bytes): struct sizes for
  // every element reserved, the length of every string copied.
  bool Charge(size_t bytes) {
    decoded_bytes_ += bytes;
    return decoded_bytes_ <= limits_.max_decoded_bytes || OverBudget();
  }
  bool ChargeString(size_t bytes) { return !charge_strings_ || Charge(bytes); }
  bool OverBudget();
  bool ReadNumber(Number* n, const char* expected, size_t* at);
  bool ReadUint64(uint64_t* out);
  bool ReadInt64(int64_t* out);
  bool ReadInt32(int32_t* out);
  bool ReadUint32(uint32_t* out);
  bool ReadDouble(double* out);
  bool ReadBoolish(bool* out);
  bool RangeError(const Number& n, const char* target, size_t at);

  // Containers.
  bool MapEntries(uint32_t* count, size_t entry_size);
  bool ReadStringMap(StringMap* map);
  bool ReadNumberMap(NumberMap* map);
  bool ReadBytesMap(StringMap* map);
  bool ReadSpanLinks(std::vector<SpanLink>* links, size_t depth);
  bool ReadSpanLink(SpanLink* link, size_t depth);
  bool ReadSpan(Span* span, size_t depth);
  bool ReadSpans(std::vector<Span>* spans, size_t depth);
  bool ReadChunk(TraceChunk* chunk, size_t depth);
  bool ChargeSpans(uint32_t count);
  bool CheckOuterCount(uint32_t count, const char* what, size_t element_size);

  // v0.5.
  bool ReadStringTable();
  bool ReadIndex(const SpanString** out);
  bool ReadIndexed(SpanString* out);
  bool ReadSpanV05(Span* span);

  const DecodeLimits& limits_;
  Location where_;
  Reader r_;
  bool nil_allowed_ = true;
  size_t spans_ = 0;
  size_t decoded_bytes_ = 0;
  bool charge_strings_ = true;
  // v0.5 string table: views into the body, or owned copies for entries that needed a UTF-8 fix
  // (spans get owned copies of those: the table does not outlive the decoder).
  std::vector<SpanString> table_;
};

// ---------------------------------------------------------------------------------------------
// Scalars

bool Decoder::OverBudget() {
  return r_.FailLimit(Cat("decoded payload exceeds the limit of ", limits_.max_decoded_bytes, " bytes"));
}

// A str or bin value as a view, nil (where allowed) reading as empty. Inlined into the map loops:
// as a call it cost more than the read itself.
[[gnu::always_inline]] inline bool Decoder::ReadStringView(std::string_view* out) {
  if (nil_allowed_ && r_.TryNil()) {
    *out = std::string_view();
    return true;
  }
  return r_.ReadStr(out, /*allow_bin=*/true) && ChargeString(out->size());
}

// Keys: str or bin, nil meaning "" (parseStringBytes in the agent). Inlined, as ReadStringView.
[[gnu::always_inline]] inline bool Decoder::ReadKey(std::string_view* raw) {
  if (r_.TryNil()) {
    *raw = std::string_view();
    return true;
  }
  return r_.ReadStr(raw, /*allow_bin=*/true);
}

bool Decoder::ReadString(std::string* out) {
  std::string_view raw;
  if (!ReadStringView(&raw)) return false;
  *out = MakeString(raw);
  return true;
}

bool Decoder::ReadString(SpanString* out) {
  std::string_view raw;
  if (!ReadStringView(&raw)) return false;
  *out = MakeSpanString(raw);
  return true;
}

// meta_struct values are opaque bytes (msgpack-encoded structures): no UTF-8 repair, borrowed.
bool Decoder::ReadBytes(SpanString* out) {
  if (r_.TryNil()) {
    out->clear();
    return true;
  }
  std::string_view raw;
  if (!r_.ReadStr(&raw, /*allow_bin=*/true) || !ChargeString(raw.size())) return false;
  *out = SpanString::Borrow(raw);
  return true;
}

// Inlined (as ReadDouble): a metric value or an id costs a few loads once the Number's kind folds away.
[[gnu::always_inline]] inline bool Decoder::ReadNumber(Number* n, const char* expected, size_t* at) {
  *at = r_.offset();
  if (!r_.ReadNumber(n, expected)) return false;
  if (n->kind == Number::kNil && !nil_allowed_) return r_.FailValueAt("nil is not allowed in v0.5", *at);
  return true;
}

bool Decoder::RangeError(const Number& n, const char* target, size_t at) {
  return r_.FailValueAt(Cat(DescribeNumber(n), " is out of range for ", target), at);
}

bool Decoder::ReadUint64(uint64_t* out) {
  Number n;
  size_t at;
  if (!ReadNumber(&n, "integer", &at)) return false;
  switch (n.kind) {
    case Number::kUint:
      *out = n.u;
      return true;
    case Number::kInt:
      // Tracers on runtimes without unsigned types (early Java) send IDs as int64: keep the bits.
      *out = static_cast<uint64_t>(n.i);
      return true;
    case Number::kFloat:
      if (n.f >= 0 && n.f < kTwo64) {
        *out = static_cast<uint64_t>(n.f);
        return true;
      }
      if (n.f < 0 && n.f >= -kTwo63) {
        *out = static_cast<uint64_t>(static_cast<int64_t>(n.f));
        return true;
      }
      return RangeError(n, "uint64", at);
    default:
      *out = 0;
      return true;
  }
}

bool Decoder::ReadInt64(int64_t* out) {
  Number n;
  size_t at;
  if (!ReadNumber(&n, "integer", &at)) return false;
  switch (n.kind) {
    case Number::kUint:
      // The agent refuses a uint64 above INT64_MAX here rather than wrapping it to a negative time.
      if (n.u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return RangeError(n, "int64", at);
      *out = static_cast<int64_t>(n.u);
      return true;
    case Number::kInt:
      *out = n.i;
      return true;
    case Number::kFloat:
      if (n.f >= -kTwo63 && n.f < kTwo63) {
        *out = static_cast<int64_t>(n.f);
        return true;
      }
      return RangeError(n, "int64", at);
    default:
      *out = 0;
      return true;
  }
}

bool Decoder::ReadInt32(int32_t* out) {
  Number n;
  size_t at;
  if (!ReadNumber(&n, "integer", &at)) return false;
  switch (n.kind) {
    case Number::kUint:
      if (n.u > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) return RangeError(n, "int32", at);
      *out = static_cast<int32_t>(n.u);
      return true;
    case Number::kInt:
      if (n.i < std::numeric_limits<int32_t>::min() || n.i > std::numeric_limits<int32_t>::max()) {
        return RangeError(n, "int32", at);
      }
      *out = static_cast<int32_t>(n.i);
      return true;
    case Number::kFloat:
      if (n.f > -kTwo31 - 1 && n.f < kTwo31) {
        *out = static_cast<int32_t>(n.f);
        return true;
      }
      return RangeError(n, "int32", at);
    default:
      *out = 0;
      return true;
  }
}

// Span link flags: a uint32 whose top bit marks "flags set"; a tracer without unsigned types sends
// that as a negative int32, so negative int32 values keep their bits.
bool Decoder::ReadUint32(uint32_t* out) {
  Number n;
  size_t at;
  if (!ReadNumber(&n, "integer", &at)) return false;
  switch (n.kind) {
    case Number::kUint:
      if (n.u > std::numeric_limits<uint32_t>::max()) return RangeError(n, "uint32", at);
      *out = static_cast<uint32_t>(n.u);
      return true;
    case Number::kInt:
      if (n.i < std::numeric_limits<int32_t>::min() || n.i > std::numeric_limits<uint32_t>::max()) {
        return RangeError(n, "uint32", at);
      }
      *out = static_cast<uint32_t>(n.i);
      return true;
    case Number::kFloat:
      if (n.f >= 0 && n.f < kTwo32) {
        *out = static_cast<uint32_t>(n.f);
        return true;
      }
      return RangeError(n, "uint32", at);
    default:
      *out = 0;
      return true;
  }
}

[[gnu::always_inline]] inline bool Decoder::ReadDouble(double* out) {
  Number n;
  size_t at;
  if (!ReadNumber(&n, "number", &at)) return false;
  switch (n.kind) {
    case Number::kUint:
      *out = static_cast<double>(n.u);
      return true;
    case Number::kInt:
      *out = static_cast<double>(n.i);
      return true;
    case Number::kFloat:
      *out = n.f;
      return true;
    default:
      *out = 0;
      return true;
  }
}

// dropped_trace: a bool; nil is false and, for tracers that encode bools as 0/1, so is any zero.
bool Decoder::ReadBoolish(bool* out) {
  uint8_t next;
  if (r_.Peek(&next) && (next == 0xc2 || next == 0xc3)) return r_.ReadBool(out);
  Number n;
  size_t at;
  if (!ReadNumber(&n, "bool", &at)) return false;
  switch (n.kind) {
    case Number::kUint:
      *out = n.u != 0;
      break;
    case Number::kInt:
      *out = n.i != 0;
      break;
    case Number::kFloat:
      *out = n.f != 0;
      break;
    default:
      *out = false;
      break;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Maps and links

// Reads a map header for a map the decoder materializes; nil reads as an empty map.
bool Decoder::MapEntries(uint32_t* count, size_t entry_size) {
  if (r_.TryNil()) {
    *count = 0;
    return true;
  }
  if (!r_.ReadMapHeader(count)) return false;
  if (*count > limits_.max_map_entries) {
    return r_.FailLimit(Cat("map of ", *count, " entries exceeds the limit of ", limits_.max_map_entries));
  }
  return Charge(*count * entry_size);
}

// The pipeline adds a tag or two to most spans (obfuscated SQL, _top_level, _dd.measured...): room
// for them up front saves moving the whole vector to a new allocation for one more entry.
constexpr uint32_t kRoomForAgentTags = 2;

bool Decoder::ReadStringMap(StringMap* map) {
  map->clear();
  uint32_t count;
  if (!MapEntries(&count, sizeof((*map)[0]))) return false;
  tag_storage::Reserve(map, count + kRoomForAgentTags);  // storage of a finished request, when there is
  // Sized up front and filled in place: emplace_back was an out-of-line call per entry. A map left
  // half-filled by an error holds empty strings, and the whole decode fails anyway.
  map->resize(count);
  std::pair<SpanString, SpanString>* entry = map->data();
  DuplicateKeyFilter keys;
  for (uint32_t i = 0; i < count; ++i, ++entry) {
    std::string_view key;
    if (!ReadKey(&key) || !ChargeString(key.size())) return false;
    where_.has_key = true;
    where_.key = key;
    std::string_view value;
    if (!ReadStringView(&value)) return false;
    where_.has_key = false;
    entry->first = MakeSpanString(key);
    entry->second = MakeSpanString(value);
    keys.Add(entry->first);
  }
  if (keys.possible_duplicate()) DedupeKeepLast(map);
  return true;
}

bool Decoder::ReadNumberMap(NumberMap* map) {
  map->clear();
  uint32_t count;
  if (!MapEntries(&count, sizeof((*map)[0]))) return false;
  tag_storage::Reserve(map, count + kRoomForAgentTags);  // storage of a finished request, when there is
  map->resize(count);                                    // filled in place, as ReadStringMap
  std::pair<SpanString, double>* entry = map->data();
  DuplicateKeyFilter keys;
  for (uint32_t i = 0; i < count; ++i, ++entry) {
    std::string_view key;
    if (!ReadKey(&key) || !ChargeString(key.size())) return false;
    where_.has_key = true;
    where_.key = key;
    if (!ReadDouble(&entry->second)) return false;
    where_.has_key = false;
    entry->first = MakeSpanString(key);
    keys.Add(entry->first);
  }
  if (keys.possible_duplicate()) DedupeKeepLast(map);
  return true;
}

bool Decoder::ReadBytesMap(StringMap* map) {
  map->clear();
  uint32_t count;
  if (!MapEntries(&count, sizeof((*map)[0]))) return false;
  map->reserve(count);
  DuplicateKeyFilter keys;
  for (uint32_t i = 0; i < count; ++i) {
    auto& entry = map->emplace_back();
    std::string_view key;
    if (!ReadKey(&key) || !ChargeString(key.size())) return false;
    entry.first = MakeSpanString(key);
    keys.Add(entry.first);
    where_.has_key = true;
    where_.key = key;
    if (!ReadBytes(&entry.second)) return false;
    where_.has_key = false;
  }
  if (keys.possible_duplicate()) DedupeKeepLast(map);
  return true;
}

bool Decoder::ReadSpanLinks(std::vector<SpanLink>* links, size_t depth) {
  links->clear();
  if (r_.TryNil()) return true;
  uint32_t count;
  if (!r_.ReadArrayHeader(&count)) return false;
  if (count > limits_.max_map_entries) {
    return r_.FailLimit(Cat(count, " span links exceed the limit of ", limits_.max_map_entries));
  }
  if (!Charge(count * sizeof(SpanLink))) return false;
  links->reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    where_.link = i;
    if (r_.TryNil()) continue;
    if (!ReadSpanLink(&links->emplace_back(), depth + 1)) return false;
  }
  where_.link = -1;
  return true;
}

bool Decoder::ReadSpanLink(SpanLink* link, size_t depth) {
  uint32_t count;
  if (!r_.ReadMapHeader(&count)) return false;
  for (uint32_t i = 0; i < count; ++i) {
    where_.link_field = nullptr;
    std::string_view key;
    if (!ReadKey(&key)) return false;
    bool ok;
    if (key == "trace_id") {
      where_.link_field = "trace_id";
      ok = ReadUint64(&link->trace_id);
    } else if (key == "trace_id_high") {
      where_.link_field = "trace_id_high";
      ok = ReadUint64(&link->trace_id_high);
    } else if (key == "span_id") {
      where_.link_field = "span_id";
      ok = ReadUint64(&link->span_id);
    } else if (key == "attributes") {
      where_.link_field = "attributes";
      ok = ReadStringMap(&link->attributes);
    } else if (key == "tracestate") {
      where_.link_field = "tracestate";
      ok = ReadString(&link->tracestate);
    } else if (key == "flags") {
      where_.link_field = "flags";
      ok = ReadUint32(&link->flags);
    } else {
      where_.has_key = true;
      where_.key = key;
      ok = r_.Skip(depth + 1);
      where_.has_key = false;
    }
    if (!ok) return false;
  }
  where_.link_field = nullptr;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Spans, traces, chunks

bool Decoder::ReadSpan(Span* span, size_t depth) {
  uint32_t count;
  if (!r_.ReadMapHeader(&count)) return false;
  for (uint32_t i = 0; i < count; ++i) {
    where_.field = nullptr;
    std::string_view key;
    if (!ReadKey(&key)) return false;
    const SpanField field = LookupSpanField(key);
    where_.field = SpanFieldName(field);
    bool ok;
    switch (field) {
      case SpanField::kService:
        ok = ReadString(&span->service);
        break;
      case SpanField::kName:
        ok = ReadString(&span->name);
        break;
      case SpanField::kResource:
        ok = ReadString(&span->resource);
        break;
      case SpanField::kType:
        ok = ReadString(&span->type);
        break;
      case SpanField::kTraceId:
        ok = ReadUint64(&span->trace_id);
        break;
      case SpanField::kSpanId:
        ok = ReadUint64(&span->span_id);
        break;
      case SpanField::kParentId:
        ok = ReadUint64(&span->parent_id);
        break;
      case SpanField::kStart:
        ok = ReadInt64(&span->start);
        break;
      case SpanField::kDuration:
        ok = ReadInt64(&span->duration);
        break;
      case SpanField::kError:
        ok = ReadInt32(&span->error);
        break;
      case SpanField::kMeta:
        ok = ReadStringMap(&span->meta);
        break;
      case SpanField::kMetrics:
        ok = ReadNumberMap(&span->metrics);
        break;
      case SpanField::kMetaStruct:
        ok = ReadBytesMap(&span->meta_struct);
        break;
      case SpanField::kSpanLinks:
        ok = ReadSpanLinks(&span->span_links, depth + 1);
        break;
      default:  // span_events and whatever newer tracers add
        where_.has_key = true;
        where_.key = key;
        ok = r_.Skip(depth + 1);
        where_.has_key = false;
        break;
    }
    if (!ok) return false;
  }
  where_.field = nullptr;
  return true;
}

bool Decoder::ChargeSpans(uint32_t count) {
  if (count > limits_.max_spans - spans_) {
    return r_.FailLimit(Cat("payload has more than ", limits_.max_spans, " spans"));
  }
  spans_ += count;
  return Charge(count * sizeof(Span));
}

bool Decoder::CheckOuterCount(uint32_t count, const char* what, size_t element_size) {
  if (count > limits_.max_spans) {
    return r_.FailLimit(Cat(count, " ", what, " exceed the limit of ", limits_.max_spans));
  }
  return Charge(count * element_size);
}

// An array of span maps (a v0.4 trace, a v0.7 chunk's spans). Nil spans are dropped.
bool Decoder::ReadSpans(std::vector<Span>* spans, size_t depth) {
  spans->clear();
  if (r_.TryNil()) return true;
  uint32_t count;
  if (!r_.ReadArrayHeader(&count) || !ChargeSpans(count)) return false;
  spans->reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    where_.span = i;
    if (r_.TryNil()) continue;
    if (!ReadSpan(&spans->emplace_back(), depth + 1)) return false;
  }
  where_.span = -1;
  return true;
}

bool Decoder::DecodeTracesV04(std::vector<Trace>* traces) {
  if (r_.TryNil()) return true;
  uint32_t count;
  if (!r_.ReadArrayHeader(&count) || !CheckOuterCount(count, "traces", sizeof(Trace))) return false;
  traces->reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    where_.outer = i;
    if (!ReadSpans(&traces->emplace_back(), 2)) return false;
  }
  where_.outer = -1;
  return true;
}

bool Decoder::ReadChunk(TraceChunk* chunk, size_t depth) {
  uint32_t count;
  if (!r_.ReadMapHeader(&count)) return false;
  for (uint32_t i = 0; i < count; ++i) {
    where_.field = nullptr;
    std::string_view key;
    if (!ReadKey(&key)) return false;
    bool ok;
    if (key == "spans") {
      where_.field = "spans";
      ok = ReadSpans(&chunk->spans, depth + 1);
    } else if (key == "priority") {
      where_.field = "priority";
      ok = ReadInt32(&chunk->priority);
    } else if (key == "origin") {
      where_.field = "origin";
      ok = ReadString(&chunk->origin);
    } else if (key == "tags") {
      where_.field = "tags";
      ok = ReadStringMap(&chunk->tags);
    } else if (key == "dropped_trace") {
      where_.field = "dropped_trace";
      ok = ReadBoolish(&chunk->dropped_trace);
    } else {
      where_.has_key = true;
      where_.key = key;
      ok = r_.Skip(depth + 1);
      where_.has_key = false;
    }
    if (!ok) return false;
  }
  where_.field = nullptr;
  return true;
}

bool Decoder::DecodePayloadV07(TracerPayload* payload) {
  where_.outer_name = "chunk";
  if (r_.TryNil()) return true;
  uint32_t count;
  if (!r_.ReadMapHeader(&count)) return false;
  for (uint32_t i = 0; i < count; ++i) {
    where_.field = nullptr;
    std::string_view key;
    if (!ReadKey(&key)) return false;
    const PayloadField field = LookupPayloadField(key);
    bool ok = true;
    switch (field) {
      case PayloadField::kContainerId:
        where_.field = "container_id";
        ok = ReadString(&payload->container_id);
        break;
      case PayloadField::kLanguageName:
        where_.field = "language_name";
        ok = ReadString(&payload->language_name);
        break;
      case PayloadField::kLanguageVersion:
        where_.field = "language_version";
        ok = ReadString(&payload->language_version);
        break;
      case PayloadField::kTracerVersion:
        where_.field = "tracer_version";
        ok = ReadString(&payload->tracer_version);
        break;
      case PayloadField::kRuntimeId:
        where_.field = "runtime_id";
        ok = ReadString(&payload->runtime_id);
        break;
      case PayloadField::kEnv:
        where_.field = "env";
        ok = ReadString(&payload->env);
        break;
      case PayloadField::kHostname:
        where_.field = "hostname";
        ok = ReadString(&payload->hostname);
        break;
      case PayloadField::kAppVersion:
        where_.field = "app_version";
        ok = ReadString(&payload->app_version);
        break;
      case PayloadField::kTags:
        where_.field = "tags";
        ok = ReadStringMap(&payload->tags);
        break;
      case PayloadField::kChunks: {
        where_.field = "chunks";
        payload->chunks.clear();  // a repeated key replaces, as in the agent's generated decoder
        if (r_.TryNil()) break;
        uint32_t chunks;
        if (!r_.ReadArrayHeader(&chunks) || !CheckOuterCount(chunks, "chunks", sizeof(TraceChunk)))
          return false;
        payload->chunks.reserve(chunks);
        for (uint32_t c = 0; c < chunks && ok; ++c) {
          where_.outer = c;
          where_.field = nullptr;
          if (r_.TryNil()) continue;
          ok = ReadChunk(&payload->chunks.emplace_back(), 3);
        }
        where_.outer = -1;
        break;
      }
      default:
        where_.has_key = true;
        where_.key = key;
        ok = r_.Skip(2);
        where_.has_key = false;
        break;
    }
    if (!ok) return false;
  }
  where_.field = nullptr;
  return true;
}

// ---------------------------------------------------------------------------------------------
// v0.5

bool Decoder::ReadStringTable() {
  uint32_t count;
  if (!r_.ReadArrayHeader(&count)) return false;
  if (count > limits_.max_dictionary_entries) {
    return r_.FailLimit(
        Cat("string table of ", count, " entries exceeds the limit of ", limits_.max_dictionary_entries));
  }
  if (!Charge(count * sizeof(SpanString))) return false;
  table_.reserve(count);
  where_.outer_name = "string table entry";
  for (uint32_t i = 0; i < count; ++i) {
    where_.outer = i;
    std::string_view raw;
    if (!r_.ReadStr(&raw, /*allow_bin=*/true)) return false;
    if (IsValidUtf8(raw)) {
      table_.push_back(SpanString::Borrow(raw));
    } else {
      if (!Charge(raw.size() * 3)) return false;  // at worst every byte becomes U+FFFD
      table_.push_back(SpanString(MakeString(raw)));
    }
  }
  where_.outer_name = "trace";
  where_.outer = -1;
  return true;
}

bool Decoder::ReadIndex(const SpanString** out) {
  Number n;
  size_t at;
  if (!ReadNumber(&n, "string table index", &at)) return false;
  uint64_t index;
  if (n.kind == Number::kUint) {
    index = n.u;
  } else if (n.kind == Number::kInt && n.i >= 0) {
    index = static_cast<uint64_t>(n.i);
  } else {
    return r_.FailValueAt(Cat("expected a string table index, got ", DescribeNumber(n)), at);
  }
  if (index >= table_.size()) {
    return r_.FailValueAt(
        Cat("string table index ", index, " out of range (the table has ", table_.size(), " strings)"), at);
  }
  *out = &table_[index];
  return true;
}

// A borrowed table entry is borrowed again; a repaired one is copied (the table dies with the
// decoder). The table was UTF-8-checked once, when it was read.
bool Decoder::ReadIndexed(SpanString* out) {
  const SpanString* s;
  if (!ReadIndex(&s) || !ChargeString(s->size())) return false;
  *out = *s;
  return true;
}

bool Decoder::ReadSpanV05(Span* span) {
  uint32_t count;
  if (!r_.ReadArrayHeader(&count)) return false;
  if (count != 12) return r_.Fail(Cat("a v0.5 span is an array of exactly 12 elements, got ", count));
  where_.field = "service";
  if (!ReadIndexed(&span->service)) return false;
  where_.field = "name";
  if (!ReadIndexed(&span->name)) return false;
  where_.field = "resource";
  if (!ReadIndexed(&span->resource)) return false;
  where_.field = "trace_id";
  if (!ReadUint64(&span->trace_id)) return false;
  where_.field = "span_id";
  if (!ReadUint64(&span->span_id)) return false;
  where_.field = "parent_id";
  if (!ReadUint64(&span->parent_id)) return false;
  where_.field = "start";
  if (!ReadInt64(&span->start)) return false;
  where_.field = "duration";
  if (!ReadInt64(&span->duration)) return false;
  where_.field = "error";
  if (!ReadInt32(&span->error)) return false;

  where_.field = "meta";
  uint32_t entries;
  if (!r_.ReadMapHeader(&entries)) return false;
  if (entries > limits_.max_map_entries) {
    return r_.FailLimit(Cat("map of ", entries, " entries exceeds the limit of ", limits_.max_map_entries));
  }
  if (!Charge(entries * sizeof(span->meta[0]))) return false;
  span->meta.reserve(entries);
  DuplicateKeyFilter keys;
  for (uint32_t i = 0; i < entries; ++i) {
    const SpanString* key;
    if (!ReadIndex(&key) || !ChargeString(key->size())) return false;
    where_.has_key = true;
    where_.key = *key;
    const SpanString* value;
    if (!ReadIndex(&value) || !ChargeString(value->size())) return false;
    where_.has_key = false;
    keys.Add(span->meta.emplace_back(*key, *value).first);
  }
  if (keys.possible_duplicate()) DedupeKeepLast(&span->meta);

  where_.field = "metrics";
  if (!r_.ReadMapHeader(&entries)) return false;
  if (entries > limits_.max_map_entries) {
    return r_.FailLimit(Cat("map of ", entries, " entries exceeds the limit of ", limits_.max_map_entries));
  }
  if (!Charge(entries * sizeof(span->metrics[0]))) return false;
  span->metrics.reserve(entries);
  DuplicateKeyFilter metric_keys;
  for (uint32_t i = 0; i < entries; ++i) {
    const SpanString* key;
    if (!ReadIndex(&key) || !ChargeString(key->size())) return false;
    where_.has_key = true;
    where_.key = *key;
    double value;
    if (!ReadDouble(&value)) return false;
    where_.has_key = false;
    metric_keys.Add(span->metrics.emplace_back(*key, value).first);
  }
  if (metric_keys.possible_duplicate()) DedupeKeepLast(&span->metrics);

  where_.field = "type";
  if (!ReadIndexed(&span->type)) return false;
  where_.field = nullptr;
  return true;
}

bool Decoder::DecodeTracesV05(std::vector<Trace>* traces) {
  nil_allowed_ = false;
  // The string table lets one stored string be copied into every span: count every copy.
  charge_strings_ = true;
  decoded_bytes_ = 0;
  uint32_t count;
  if (!r_.ReadArrayHeader(&count)) return false;
  if (count != 2) {
    return r_.Fail(Cat("a v0.5 payload is an array of exactly 2 items (string table, traces), got ", count));
  }
  if (!ReadStringTable()) return false;
  if (!r_.ReadArrayHeader(&count) || !CheckOuterCount(count, "traces", sizeof(Trace))) return false;
  traces->reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    where_.outer = i;
    Trace& trace = traces->emplace_back();
    uint32_t spans;
    if (!r_.ReadArrayHeader(&spans) || !ChargeSpans(spans)) return false;
    trace.reserve(spans);
    for (uint32_t j = 0; j < spans; ++j) {
      where_.span = j;
      if (!ReadSpanV05(&trace.emplace_back())) return false;
    }
    where_.span = -1;
  }
  where_.outer = -1;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Counting

absl::StatusOr<size_t> CountMsgpack(std::string_view body, TraceEncoding encoding,
                                    const DecodeLimits& limits) {
  Reader r(body, "msgpack", nullptr, limits.max_string_bytes, limits.max_depth);
  uint32_t count = 0;
  switch (encoding) {
    case TraceEncoding::kMsgpackV04:
      if (r.TryNil() || r.ReadArrayHeader(&count)) return size_t{count};
      break;
    case TraceEncoding::kMsgpackV05:
      if (!r.ReadArrayHeader(&count)) break;
      if (count != 2)
        return absl::InvalidArgumentError(Cat("msgpack v0.5: expected 2 top-level items, got ", count));
      if (!r.ReadArrayHeader(&count)) break;
      for (uint32_t i = 0; i < count; ++i) {
        if (!r.Skip(2)) return r.status();
      }
      if (r.ReadArrayHeader(&count)) return size_t{count};
      break;
    default: {  // v0.7: the length of the first "chunks" array
      if (r.TryNil()) return size_t{0};
      uint32_t entries;
      if (!r.ReadMapHeader(&entries)) break;
      for (uint32_t i = 0; i < entries; ++i) {
        std::string_view key;
        if (!r.TryNil() && !r.ReadStr(&key, /*allow_bin=*/true)) return r.status();
        if (key == "chunks") {
          if (r.TryNil() || r.ReadArrayHeader(&count)) return size_t{count};
          return r.status();
        }
        if (!r.Skip(2)) return r.status();
      }
      return size_t{0};
    }
  }
  return r.status();
}

}  // namespace

absl::StatusOr<std::vector<Trace>> DecodeMsgpackTracesV04(std::string_view body, const DecodeLimits& limits) {
  std::vector<Trace> traces;
  Decoder decoder(body, "msgpack", limits);
  if (!decoder.DecodeTracesV04(&traces)) return decoder.status();
  return traces;
}

absl::StatusOr<std::vector<Trace>> DecodeMsgpackTracesV05(std::string_view body, const DecodeLimits& limits) {
  std::vector<Trace> traces;
  Decoder decoder(body, "msgpack v0.5", limits);
  if (!decoder.DecodeTracesV05(&traces)) return decoder.status();
  return traces;
}

absl::StatusOr<TracerPayload> DecodeMsgpackTracerPayloadV07(std::string_view body,
                                                            const DecodeLimits& limits) {
  TracerPayload payload;
  Decoder decoder(body, "msgpack v0.7", limits);
  if (!decoder.DecodePayloadV07(&payload)) return decoder.status();
  return payload;
}

absl::StatusOr<size_t> CountTraces(std::string_view body, TraceEncoding encoding,
                                   const DecodeLimits& limits) {
  if (encoding == TraceEncoding::kJson) return decode_internal::CountJsonTraces(body);
  return CountMsgpack(body, encoding, limits);
}

}  // namespace dogwatch::trace
