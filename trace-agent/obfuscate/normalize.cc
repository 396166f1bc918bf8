#include "trace-agent/obfuscate/normalize.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common/strings/strings.h"
#include "trace-agent/obfuscate/unicode.h"

namespace dogwatch::trace {
namespace {

constexpr std::string_view kPeerServiceKey = "peer.service";
constexpr std::string_view kBaseServiceKey = "_dd.base_service";
constexpr std::string_view kComponentKey = "component";
constexpr std::string_view kEnvKey = "env";
constexpr std::string_view kHttpStatusCodeKey = "http.status_code";
constexpr std::string_view kLinkNameKey = "link.name";

bool IsAsciiAlpha(uint8_t b) { return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z'); }
bool IsAsciiAlnum(uint8_t b) { return IsAsciiAlpha(b) || (b >= '0' && b <= '9'); }
// Byte classes of the tag fast path, one table load per byte where a chain of range tests cost a
// branch per range (the check runs on several service values of every span). Any other byte is 0.
enum : uint8_t { kTagChar = 1, kTagStart = 2, kTagUnderscore = 4 };
constexpr std::array<uint8_t, 256> kTagByteClasses = [] {
  std::array<uint8_t, 256> classes{};
  for (int b = 'a'; b <= 'z'; ++b) classes[b] = kTagChar | kTagStart;
  classes[':'] = kTagChar | kTagStart;
  for (int b = '0'; b <= '9'; ++b) classes[b] = kTagChar;
  classes['.'] = classes['/'] = classes['-'] = kTagChar;
  classes['_'] = kTagUnderscore;
  return classes;
}();
uint8_t TagByteClass(char c) { return kTagByteClasses[static_cast<uint8_t>(c)]; }

// Tags that are already normalized ASCII are by far the common case: check before building anything.
bool IsNormalizedAsciiTag(std::string_view tag, bool check_start) {
  if (tag.empty()) return true;
  if (tag.size() > kMaxTagLen) return false;
  size_t i = 0;
  if (check_start) {
    if ((TagByteClass(tag[0]) & kTagStart) == 0) return false;
    i = 1;
  }
  for (; i < tag.size(); ++i) {
    const uint8_t byte_class = TagByteClass(tag[i]);
    if (byte_class & kTagChar) continue;
    if (byte_class != kTagUnderscore) return false;
    // An underscore is fine only when a valid non-underscore character follows.
    ++i;
    if (i == tag.size() || (TagByteClass(tag[i]) & kTagChar) == 0) return false;
  }
  return true;
}

// The agent's tag normalization. Runs of characters outside the allowed set collapse to one '_' (a run
// at the very end is dropped); `remove_leading_non_letters` (full tags) drops everything before the first
// letter. The scan stops after 200 kept-or-replaced characters or 400 input bytes, as the agent does, so
// a huge garbage value costs little.
std::string NormalizeTagImpl(std::string_view value, bool remove_leading_non_letters) {
  if (IsNormalizedAsciiTag(value, remove_leading_non_letters)) return std::string(value);
  std::string out;
  out.reserve(std::min(value.size(), 2 * kMaxTagLen));
  size_t chars = 0;
  bool pending_cut = false;
  auto keep = [&](char32_t rune) {
    ++chars;
    if (pending_cut) {
      out.push_back('_');
      pending_cut = false;
    }
    unicode::AppendRune(out, rune);
  };
  for (size_t i = 0; i < value.size();) {
    unicode::Decoded d = unicode::DecodeRune(value, i);
    char32_t r = d.rune;  // U+FFFD for invalid bytes: never kept
    if ((r >= 'a' && r <= 'z') || r == ':') {
      keep(r);
    } else if (r >= 'A' && r <= 'Z') {
      keep(r + ('a' - 'A'));
    } else {
      if (unicode::IsUpper(r)) {
        // Lower-case only when the encoding keeps its length (the agent rewrites in place).
        char32_t low = unicode::ToLower(r);
        if (unicode::EncodedLength(low) == unicode::EncodedLength(r)) r = low;
      }
      if (d.valid && unicode::IsLetter(r)) {
        keep(r);
      } else if (remove_leading_non_letters && chars == 0) {
        // Trimmed: nothing kept yet, so nothing to remove from `out`.
      } else if (d.valid && (unicode::IsDigit(r) || r == '.' || r == '/' || r == '-')) {
        keep(r);
      } else {
        ++chars;
        pending_cut = true;
      }
    }
    i += d.width;
    if (i >= 2 * kMaxTagLen || chars >= kMaxTagLen) break;
  }
  return out;
}

bool IsValidNormalizedMetricName(std::string_view name) {
  if (name.empty() || !IsAsciiAlpha(static_cast<uint8_t>(name[0]))) return false;
  for (size_t j = 1; j < name.size(); ++j) {
    const auto b = static_cast<uint8_t>(name[j]);
    const bool after_underscore = name[j - 1] == '_';
    if (!(IsAsciiAlnum(b) || ((b == '.' || b == '_') && !after_underscore))) return false;
  }
  return true;
}

// Metric-name rules: start at the first ASCII letter; keep alphanumerics; '.' kept (replacing a '_' just
// before it); any other run becomes one '_' (none right after '.' or '_'); no trailing '_'.
bool NormalizeMetricName(std::string_view name, std::string* out) {
  if (name.empty() || name.size() > kMaxNameLen) return false;
  size_t i = 0;
  while (i < name.size() && !IsAsciiAlpha(static_cast<uint8_t>(name[i]))) ++i;
  if (i == name.size()) return false;
  std::string_view rest = name.substr(i);
  if (IsValidNormalizedMetricName(rest)) {
    if (rest.back() == '_') rest.remove_suffix(1);
    out->assign(rest);
    return true;
  }
  out->clear();
  out->reserve(rest.size());
  for (char c : rest) {
    const auto b = static_cast<uint8_t>(c);
    if (IsAsciiAlnum(b)) {
      out->push_back(c);
    } else if (c == '.') {
      if (out->back() == '_') {
        out->back() = '.';
      } else {
        out->push_back('.');
      }
    } else if (out->back() != '.' && out->back() != '_') {
      out->push_back('_');
    }
  }
  if (out->back() == '_') out->pop_back();
  return true;
}

std::string FallbackService(std::string_view language) {
  if (language.empty()) return std::string(kDefaultServiceName);
  return strings::Cat("unnamed-", language, "-service");
}

// peer.service and _dd.base_service: like the service, but an invalid value becomes "" (no fallback).
std::string NormalizePeerService(std::string_view value, bool* truncated, bool* invalid) {
  *truncated = false;
  *invalid = false;
  if (value.size() > kMaxServiceLen) {
    value = TruncateUtf8(value, kMaxServiceLen);
    *truncated = true;
  }
  std::string s = NormalizeTagValue(value);
  if (s.empty()) *invalid = true;
  return s;
}

// strconv.ParseUint(sc, 10, 64) followed by the 100..599 range check.
bool IsValidStatusCode(std::string_view code) {
  if (code.empty()) return false;
  uint64_t value = 0;
  for (char c : code) {
    if (c < '0' || c > '9') return false;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) return false;
    value = value * 10 + digit;
  }
  return value >= 100 && value < 600;
}

int64_t NowNanos(const NormalizeOptions& options) {
  if (options.now_unix_nanos != 0) return options.now_unix_nanos;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void CountFix(NormalizeStats* stats, NormalizeFix fix) {
  if (stats != nullptr) stats->Count(fix);
}

absl::Status Drop(NormalizeStats* stats, DropReason reason, std::string_view detail) {
  if (stats != nullptr) stats->Count(reason);
  return absl::InvalidArgumentError(strings::Cat(DropReasonName(reason), ": ", detail));
}

// `first_high` is the chunk's first span's _dd.p.tid (nullptr when it has none), looked up once per
// chunk instead of once per span.
bool SameTraceId(const Span& span, const Span& first, const SpanString* first_high) {
  if (span.trace_id != first.trace_id) return false;
  // Tracers put the high 64 bits of a 128-bit ID only on the first span of a chunk: compare them only
  // when both spans carry them.
  if (first_high == nullptr) return true;
  const SpanString* high = Find(span.meta, kTraceIdHighKey);
  return high == nullptr || *high == *first_high;
}

bool MetricEquals(const NumberMap& metrics, std::string_view key, double value) {
  const double* v = Find(metrics, key);
  return v != nullptr && *v == value;
}

// Renames entry `index` to `key`, dropping any other entry that already has that key (the truncated key
// wins, as a map assignment would in the agent).
// Returns the entry's index afterwards.
template <typename Map>
size_t RenameKey(Map& map, size_t index, SpanString key) {
  for (size_t j = 0; j < map.size(); ++j) {
    if (j != index && map[j].first == key) {
      map.erase(map.begin() + static_cast<std::ptrdiff_t>(j));
      if (j < index) --index;
      break;
    }
  }
  map[index].first = std::move(key);
  return index;
}

}  // namespace

std::string_view NormalizeFixName(NormalizeFix fix) {
  switch (fix) {
    case NormalizeFix::kServiceEmpty:
      return "service_empty";
    case NormalizeFix::kServiceTruncate:
      return "service_truncate";
    case NormalizeFix::kServiceInvalid:
      return "service_invalid";
    case NormalizeFix::kPeerServiceTruncate:
      return "peer_service_truncate";
    case NormalizeFix::kPeerServiceInvalid:
      return "peer_service_invalid";
    case NormalizeFix::kBaseServiceTruncate:
      return "base_service_truncate";
    case NormalizeFix::kBaseServiceInvalid:
      return "base_service_invalid";
    case NormalizeFix::kSpanNameEmpty:
      return "span_name_empty";
    case NormalizeFix::kSpanNameTruncate:
      return "span_name_truncate";
    case NormalizeFix::kSpanNameInvalid:
      return "span_name_invalid";
    case NormalizeFix::kResourceEmpty:
      return "resource_empty";
    case NormalizeFix::kTypeTruncate:
      return "type_truncate";
    case NormalizeFix::kInvalidStartDate:
      return "invalid_start_date";
    case NormalizeFix::kInvalidDuration:
      return "invalid_duration";
    case NormalizeFix::kInvalidHttpStatusCode:
      return "invalid_http_status_code";
    case NormalizeFix::kDuplicateSpanId:
      return "duplicate_span_id";
    case NormalizeFix::kInvalidError:
      return "invalid_error";
    case NormalizeFix::kResourceTruncate:
      return "resource_truncate";
    case NormalizeFix::kMetaKeyTruncate:
      return "meta_key_truncate";
    case NormalizeFix::kMetaValueTruncate:
      return "meta_value_truncate";
    case NormalizeFix::kMetricKeyTruncate:
      return "metric_key_truncate";
  }
  return "unknown";
}

std::string_view DropReasonName(DropReason reason) {
  switch (reason) {
    case DropReason::kEmptyTrace:
      return "empty_trace";
    case DropReason::kTraceIdZero:
      return "trace_id_zero";
    case DropReason::kSpanIdZero:
      return "span_id_zero";
    case DropReason::kForeignSpan:
      return "foreign_span";
  }
  return "unknown";
}

void NormalizeStats::Add(const NormalizeStats& other) {
  for (size_t i = 0; i < fixes.size(); ++i) fixes[i] += other.fixes[i];
  for (size_t i = 0; i < drops.size(); ++i) drops[i] += other.drops[i];
}

std::string_view DropReasonTag(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kInvalidArgument) return "";
  const std::string_view message(status.message().data(), status.message().size());
  for (size_t i = 0; i < kDropReasonCount; ++i) {
    std::string_view name = DropReasonName(static_cast<DropReason>(i));
    if (message.size() > name.size() && message.substr(0, name.size()) == name &&
        message[name.size()] == ':') {
      return name;
    }
  }
  return "";
}

std::string_view TruncateUtf8(std::string_view text, size_t limit) {
  if (text.size() <= limit) return text;
  size_t cut = limit;
  if ((static_cast<uint8_t>(text[limit]) & 0xC0) == 0x80) {
    // text[limit] continues a sequence: cut before that sequence if it is a real one straddling the
    // limit (a stray continuation byte is a one-byte "rune" of its own and is cut after).
    size_t begin = limit;
    while (begin > 0 && limit - begin < 3 && (static_cast<uint8_t>(text[begin]) & 0xC0) == 0x80) --begin;
    unicode::Decoded d = unicode::DecodeRune(text, begin);
    if (d.valid && begin + d.width > limit) cut = begin;
  }
  return text.substr(0, cut);
}

std::string NormalizeTagValue(std::string_view value) { return NormalizeTagImpl(value, false); }

std::string NormalizeTag(std::string_view tag) { return NormalizeTagImpl(tag, true); }

std::string NormalizeName(std::string_view name, NormalizeFix* fix, bool* fixed) {
  *fixed = false;
  if (name.empty()) {
    *fix = NormalizeFix::kSpanNameEmpty;
    *fixed = true;
    return std::string(kDefaultSpanName);
  }
  if (name.size() > kMaxNameLen) {
    name = TruncateUtf8(name, kMaxNameLen);
    *fix = NormalizeFix::kSpanNameTruncate;
    *fixed = true;
  }
  std::string out;
  if (!NormalizeMetricName(name, &out)) {
    *fix = NormalizeFix::kSpanNameInvalid;
    *fixed = true;
    return std::string(kDefaultSpanName);
  }
  return out;
}

std::string NormalizeService(std::string_view service, std::string_view language, NormalizeFix* fix,
                             bool* fixed) {
  *fixed = false;
  if (service.empty()) {
    *fix = NormalizeFix::kServiceEmpty;
    *fixed = true;
    return FallbackService(language);
  }
  if (service.size() > kMaxServiceLen) {
    service = TruncateUtf8(service, kMaxServiceLen);
    *fix = NormalizeFix::kServiceTruncate;
    *fixed = true;
  }
  std::string s = NormalizeTagValue(service);
  if (s.empty()) {
    *fix = NormalizeFix::kServiceInvalid;
    *fixed = true;
    return FallbackService(language);
  }
  return s;
}

namespace {

// peer.service and _dd.base_service values: only present, non-empty values are normalized; an invalid
// one is blanked, not removed.
void NormalizePeerServiceValue(SpanString& value, bool peer, NormalizeStats* stats) {
  if (value.empty() || (value.size() <= kMaxServiceLen && IsNormalizedAsciiTag(value, false))) return;
  bool truncated = false;
  bool invalid = false;
  std::string normalized = NormalizePeerService(value, &truncated, &invalid);
  if (invalid) {
    CountFix(stats, peer ? NormalizeFix::kPeerServiceInvalid : NormalizeFix::kBaseServiceInvalid);
  } else if (truncated) {
    CountFix(stats, peer ? NormalizeFix::kPeerServiceTruncate : NormalizeFix::kBaseServiceTruncate);
  }
  value = std::move(normalized);
}

// `verified_service` holds bytes already known to pass the service fast path (the previous span's
// service in NormalizeTrace; consecutive spans nearly always carry the same one), empty when none.
// `service_kept` (optional) is set when the span's service passed as it was.
absl::Status NormalizeSpanImpl(Span& span, const NormalizeOptions& options, NormalizeStats* stats,
                               std::string_view verified_service, bool* service_kept) {
  if (span.trace_id == 0) {
    return Drop(stats, DropReason::kTraceIdZero, strings::Cat("TraceID is zero, span_id ", span.span_id));
  }
  if (span.span_id == 0) {
    return Drop(stats, DropReason::kSpanIdZero, strings::Cat("SpanID is zero, trace_id ", span.trace_id));
  }

  NormalizeFix fix{};
  bool fixed = false;
  // Most spans are already valid: check before building replacement strings. Equal bytes to a service
  // that passed this check give the same answer, so a memcmp replaces the per-byte scan.
  const bool known_valid =
      !verified_service.empty() && span.service.size() == verified_service.size() &&
      (span.service.data() == verified_service.data() ||
       std::memcmp(span.service.data(), verified_service.data(), verified_service.size()) == 0);
  if (!known_valid && (span.service.empty() || span.service.size() > kMaxServiceLen ||
                       !IsNormalizedAsciiTag(span.service, false))) {
    std::string service = NormalizeService(span.service, options.language, &fix, &fixed);
    if (fixed) CountFix(stats, fix);
    span.service = std::move(service);
  } else if (service_kept != nullptr) {
    *service_kept = true;
  }

  // One pass over meta for every key normalization looks at (peer.service, _dd.base_service,
  // component, env, http.status_code). Each key's repair touches only its own entry, so one pass gives
  // what separate passes gave. The keys differ in length (or, at 16 bytes, in their first byte): a bit
  // per length of interest rejects most keys with one test (a switch on the length compiled to a jump
  // table, an indirect branch per key).
  static_assert(kComponentKey.size() < 32 && kPeerServiceKey.size() < 32 && kBaseServiceKey.size() < 32);
  static_assert(kBaseServiceKey.size() == kHttpStatusCodeKey.size() &&
                kBaseServiceKey[0] != kHttpStatusCodeKey[0]);
  const uint32_t lengths = (uint32_t{1} << kEnvKey.size()) | (uint32_t{1} << kPeerServiceKey.size()) |
                           (uint32_t{1} << kBaseServiceKey.size()) |
                           (options.component_to_name ? uint32_t{1} << kComponentKey.size() : 0);
  bool component_seen = false;
  for (size_t i = 0; i < span.meta.size(); ++i) {
    auto& [key, value] = span.meta[i];
    const size_t n = key.size();
    if (n >= 32 || ((lengths >> n) & 1) == 0) continue;
    if (n == kEnvKey.size()) {
      if (SameKey(key, kEnvKey) && !IsNormalizedAsciiTag(value, false)) value = NormalizeTagValue(value);
    } else if (n == kBaseServiceKey.size()) {
      if (SameKey(key, kBaseServiceKey)) {
        NormalizePeerServiceValue(value, /*peer=*/false, stats);
      } else if (SameKey(key, kHttpStatusCodeKey) && !IsValidStatusCode(value)) {
        CountFix(stats, NormalizeFix::kInvalidHttpStatusCode);
        span.meta.erase(span.meta.begin() + static_cast<std::ptrdiff_t>(i));
        --i;
      }
    } else if (n == kPeerServiceKey.size()) {
      if (SameKey(key, kPeerServiceKey)) NormalizePeerServiceValue(value, /*peer=*/true, stats);
    } else if (!component_seen && SameKey(key, kComponentKey)) {
      // Like Find: the first "component" entry decides. span.name is normalized after this loop.
      component_seen = true;
      if (!value.empty()) span.name = value;
    }
  }

  if (span.name.size() > kMaxNameLen || !IsValidNormalizedMetricName(span.name) || span.name.back() == '_') {
    std::string name = NormalizeName(span.name, &fix, &fixed);
    if (fixed) CountFix(stats, fix);
    span.name = std::move(name);
  }

  if (span.resource.empty()) {
    CountFix(stats, NormalizeFix::kResourceEmpty);
    span.resource = span.name;
  }

  if (span.parent_id == span.trace_id && span.parent_id == span.span_id) span.parent_id = 0;

  // A negative duration, or one that overflows start+duration, becomes 0. A negative start makes the
  // agent's overflow check (MaxInt64 - start) wrap, so it always resets the duration as well.
  if (span.duration < 0 || span.start < 0 ||
      span.duration > std::numeric_limits<int64_t>::max() - span.start) {
    CountFix(stats, NormalizeFix::kInvalidDuration);
    span.duration = 0;
  }
  if (span.start < kYear2000Nanos) {
    CountFix(stats, NormalizeFix::kInvalidStartDate);
    const int64_t now = NowNanos(options);
    const int64_t start = now - span.duration;
    span.start = start < 0 ? now : start;
  }

  if (span.type.size() > kMaxTypeLen) {
    CountFix(stats, NormalizeFix::kTypeTruncate);
    span.type = std::string(TruncateUtf8(span.type, kMaxTypeLen));
  }

  for (SpanLink& link : span.span_links) {
    for (auto& [key, value] : link.attributes) {
      if (key != kLinkNameKey) continue;
      bool link_fixed = false;
      value = NormalizeName(value, &fix, &link_fixed);
    }
  }

  // Tracers send 0 or 1; anything else is still an error for the backend, so keep its meaning and
  // make the value canonical.
  if (span.error != 0 && span.error != 1) {
    CountFix(stats, NormalizeFix::kInvalidError);
    span.error = 1;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status NormalizeSpan(Span& span, const NormalizeOptions& options, NormalizeStats* stats) {
  return NormalizeSpanImpl(span, options, stats, /*verified_service=*/{}, /*service_kept=*/nullptr);
}

absl::Status NormalizeTrace(Trace& spans, const NormalizeOptions& options, NormalizeStats* stats) {
  if (spans.empty()) return Drop(stats, DropReason::kEmptyTrace, "trace is empty");
  // Duplicate span IDs: most chunks are small, where comparing with the spans before costs less than
  // building a hash set (an allocation per chunk). Span IDs are not changed by normalization.
  constexpr size_t kLinearDuplicateScan = 32;
  absl::flat_hash_set<uint64_t> span_ids;
  if (spans.size() > kLinearDuplicateScan) span_ids.reserve(spans.size());
  const SpanString* first_high = nullptr;  // set once the first span is normalized; it is not changed after
  // The service bytes of an earlier span that passed the service check as they were; that span is not
  // touched again, so the view stays valid for the rest of the loop.
  std::string_view verified_service;
  for (size_t i = 0; i < spans.size(); ++i) {
    Span& span = spans[i];
    if (i > 0 && !SameTraceId(span, spans.front(), first_high)) {
      return Drop(stats, DropReason::kForeignSpan,
                  strings::Cat("trace has foreign span: trace_id ", span.trace_id, " in trace ",
                               spans.front().trace_id));
    }
    bool service_kept = false;
    absl::Status status = NormalizeSpanImpl(span, options, stats, verified_service, &service_kept);
    if (!status.ok()) return status;
    // Only a service that passed as it was is reused: a repaired one went through other rules.
    if (service_kept) verified_service = span.service;
    if (i == 0) first_high = Find(span.meta, kTraceIdHighKey);
    bool duplicate = false;
    if (spans.size() > kLinearDuplicateScan) {
      duplicate = !span_ids.insert(span.span_id).second;
    } else {
      for (size_t j = 0; j < i && !duplicate; ++j) duplicate = spans[j].span_id == span.span_id;
    }
    if (duplicate) CountFix(stats, NormalizeFix::kDuplicateSpanId);
  }
  return absl::OkStatus();
}

absl::Status NormalizeChunk(TraceChunk& chunk, const NormalizeOptions& options, NormalizeStats* stats,
                            size_t* root_index) {
  absl::Status status = NormalizeTrace(chunk.spans, options, stats);
  if (!status.ok()) return status;
  const size_t root = FindRootSpan(chunk.spans);
  SetChunkAttributes(chunk, root);
  if (root_index != nullptr) *root_index = root;
  return absl::OkStatus();
}

size_t FindRootSpan(const Trace& spans) {
  if (spans.empty()) return 0;
  // Common case first: a span without parent, searched from the end since some tracers send the root
  // last.
  for (size_t i = spans.size(); i-- > 0;) {
    if (spans[i].parent_id == 0) return i;
  }
  absl::flat_hash_set<uint64_t> ids;
  ids.reserve(spans.size());
  for (const Span& span : spans) ids.insert(span.span_id);
  for (size_t i = 0; i < spans.size(); ++i) {
    if (!ids.contains(spans[i].parent_id)) return i;
  }
  return spans.size() - 1;
}

void SetChunkAttributes(TraceChunk& chunk, size_t root_index) {
  if (chunk.spans.empty()) return;
  const Span& root = chunk.spans[std::min(root_index, chunk.spans.size() - 1)];
  if (chunk.priority == kPriorityNone) {
    auto priority_of = [](const Span& span) -> std::optional<int32_t> {
      const double* p = Find(span.metrics, kSamplingPriorityKey);
      if (p == nullptr || std::isnan(*p)) return std::nullopt;
      // Tracers send small integers; clamp anything else instead of relying on an undefined cast.
      const double clamped = std::clamp(*p, static_cast<double>(std::numeric_limits<int32_t>::min()),
                                        static_cast<double>(std::numeric_limits<int32_t>::max()));
      return static_cast<int32_t>(clamped);
    };
    std::optional<int32_t> priority = priority_of(root);
    for (size_t i = 0; !priority && i < chunk.spans.size(); ++i) priority = priority_of(chunk.spans[i]);
    if (priority) chunk.priority = *priority;
  }
  if (chunk.origin.empty()) {
    const SpanString* origin = Find(root.meta, kOriginKey);
    if (origin != nullptr) chunk.origin = *origin;
  }
  if (Find(chunk.tags, kDecisionMakerKey) == nullptr) {
    for (const Span& span : chunk.spans) {
      const SpanString* dm = Find(span.meta, kDecisionMakerKey);
      if (dm != nullptr) {
        SetStaticKey(chunk.tags, kDecisionMakerKey, *dm);
        break;
      }
    }
  }
}

namespace {

// Whether any meta key, meta value or metric key is over its limit. Nearly every span is within all
// of them: one branch-free pass over the sizes lets TruncateSpan skip the per-entry work.
bool AnyTagOverLimit(const Span& span) {
  bool over = false;
  for (const auto& [key, value] : span.meta) {
    over |= (key.size() > kMaxMetaKeyLen) | (value.size() > kMaxMetaValueLen);
  }
  for (const auto& entry : span.metrics) over |= entry.first.size() > kMaxMetricKeyLen;
  return over;
}

}  // namespace

void TruncateSpan(Span& span, const NormalizeOptions& options, NormalizeStats* stats) {
  if (span.resource.size() > options.max_resource_len) {
    CountFix(stats, NormalizeFix::kResourceTruncate);
    span.resource.Truncate(TruncateUtf8(span.resource, options.max_resource_len).size());
  }
  if (!AnyTagOverLimit(span)) return;
  for (size_t i = 0; i < span.meta.size(); ++i) {
    SpanString& value = span.meta[i].second;
    if (value.size() > kMaxMetaValueLen) {
      CountFix(stats, NormalizeFix::kMetaValueTruncate);
      value = SpanString(strings::Cat(TruncateUtf8(value, kMaxMetaValueLen), "..."));
    }
    if (span.meta[i].first.size() > kMaxMetaKeyLen) {
      CountFix(stats, NormalizeFix::kMetaKeyTruncate);
      std::string key = strings::Cat(TruncateUtf8(span.meta[i].first, kMaxMetaKeyLen), "...");
      i = RenameKey(span.meta, i, std::move(key));
    }
  }
  for (size_t i = 0; i < span.metrics.size(); ++i) {
    if (span.metrics[i].first.size() > kMaxMetricKeyLen) {
      CountFix(stats, NormalizeFix::kMetricKeyTruncate);
      std::string key = strings::Cat(TruncateUtf8(span.metrics[i].first, kMaxMetricKeyLen), "...");
      i = RenameKey(span.metrics, i, std::move(key));
    }
  }
}

void ComputeTopLevel(Trace& spans) {
  // Small chunks (most of them) find the parent by scanning the spans instead of building a hash map
  // (an allocation and a hash per span). Scanning from the end finds the last span with that ID, which
  // is the one the map (later spans overwrite earlier ones) would have returned.
  constexpr size_t kLinearParentScan = 16;
  if (spans.size() <= kLinearParentScan) {
    for (Span& span : spans) {
      if (span.parent_id != 0) {
        const Span* parent = nullptr;
        for (size_t j = spans.size(); j-- > 0;) {
          if (spans[j].span_id == span.parent_id) {
            parent = &spans[j];
            break;
          }
        }
        if (parent != nullptr && parent->service == span.service) continue;
      }
      SetStaticKey(span.metrics, kTopLevelKey, 1);
    }
    return;
  }
  absl::flat_hash_map<uint64_t, size_t> index_by_id;
  index_by_id.reserve(spans.size());
  for (size_t i = 0; i < spans.size(); ++i) index_by_id[spans[i].span_id] = i;
  for (Span& span : spans) {
    if (span.parent_id != 0) {
      auto it = index_by_id.find(span.parent_id);
      if (it != index_by_id.end() && spans[it->second].service == span.service) continue;
    }
    SetStaticKey(span.metrics, kTopLevelKey, 1);
  }
}

void MarkTopLevel(Trace& spans, bool client_computed_top_level) {
  if (!client_computed_top_level) {
    ComputeTopLevel(spans);
    return;
  }
  for (Span& span : spans) {
    if (MetricEquals(span.metrics, kTracerTopLevelKey, 1)) SetStaticKey(span.metrics, kTopLevelKey, 1);
  }
}

bool IsTopLevel(const Span& span) {
  return MetricEquals(span.metrics, kTopLevelKey, 1) || MetricEquals(span.metrics, kTracerTopLevelKey, 1);
}

bool IsMeasured(const Span& span) { return MetricEquals(span.metrics, kMeasuredKey, 1); }

bool IsPartialSnapshot(const Span& span) {
  const double* v = Find(span.metrics, kPartialVersionKey);
  return v != nullptr && *v >= 0;
}

}  // namespace dogwatch::trace
