#include "agent-core/dogstatsd/parser/parser.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

namespace dogwatch::dogstatsd {
namespace {

using metrics::SampleType;

constexpr std::string_view kEventPrefix = "_e{";
constexpr std::string_view kServiceCheckPrefix = "_sc|";
constexpr std::string_view kHostTagPrefix = "host:";

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && std::memcmp(text.data(), prefix.data(), prefix.size()) == 0;
}

// memchr for the short ranges inside a line (fields of 1 to ~100 bytes): inlined and a word at a time,
// it avoids the call and setup cost that dominated the profile with memchr.
inline const char* Find(const char* begin, const char* end, char c) {
  if constexpr (std::endian::native != std::endian::little) {  // the bit trick needs little-endian
    return static_cast<const char*>(std::memchr(begin, c, static_cast<size_t>(end - begin)));
  }
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHighBits = 0x8080808080808080ULL;
  const uint64_t pattern = kOnes * static_cast<unsigned char>(c);
  const char* p = begin;
  while (end - p >= 8) {
    uint64_t word;
    std::memcpy(&word, p, sizeof(word));
    const uint64_t diff = word ^ pattern;  // zero bytes where `c` is
    // Classic "has zero byte": exact for the lowest zero byte, which is the one we want.
    const uint64_t zero_bytes = (diff - kOnes) & ~diff & kHighBits;
    if (zero_bytes != 0) return p + (std::countr_zero(zero_bytes) >> 3);
    p += 8;
  }
  for (; p < end; ++p) {
    if (*p == c) return p;
  }
  return nullptr;
}

// Walks the '|'-separated fields of a line without copying.
class FieldCursor {
 public:
  FieldCursor(const char* begin, const char* end) : position_(begin), end_(end) {}

  bool Next(std::string_view* field) {
    if (position_ == nullptr) return false;
    const char* separator = Find(position_, end_, '|');
    const char* field_end = separator != nullptr ? separator : end_;
    *field = std::string_view(position_, static_cast<size_t>(field_end - position_));
    position_ = separator != nullptr ? separator + 1 : nullptr;
    return true;
  }

  // Everything from the start of `field` (returned by the last Next) to the end of the line.
  std::string_view RestFrom(std::string_view field) const {
    return std::string_view(field.data(), static_cast<size_t>(end_ - field.data()));
  }

 private:
  const char* position_ = nullptr;  // nullptr once the last field was returned
  const char* end_ = nullptr;
};

// Powers of ten that are exact in a double (10^22 is the largest).
constexpr double kExactPowersOfTen[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                        1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

// For a decimal that from_chars reported out of range: true when it is too small (underflow, which
// Go's ParseFloat turns into 0 without an error) rather than too large (an error in both).
bool IsDecimalUnderflow(const char* p, const char* end) {
  int64_t integer_digits = 0;  // significant digits before the point
  int64_t leading_fraction_zeros = 0;
  bool seen_nonzero = false;
  while (p < end && *p == '0') ++p;
  while (p < end && *p >= '0' && *p <= '9') {
    ++integer_digits;
    ++p;
  }
  if (p < end && *p == '.') {
    ++p;
    if (integer_digits == 0) {
      while (p < end && *p == '0') {
        ++leading_fraction_zeros;
        ++p;
      }
    }
    while (p < end && *p >= '0' && *p <= '9') {
      seen_nonzero = true;
      ++p;
    }
  }
  if (integer_digits == 0 && !seen_nonzero) return true;  // only zeros: cannot overflow
  int64_t exponent = 0;
  if (p < end && (*p == 'e' || *p == 'E')) {
    ++p;
    bool negative = false;
    if (p < end && (*p == '+' || *p == '-')) negative = *p++ == '-';
    while (p < end && *p >= '0' && *p <= '9') {
      if (exponent < 1'000'000) exponent = exponent * 10 + (*p - '0');
      ++p;
    }
    if (negative) exponent = -exponent;
  }
  const int64_t magnitude = (integer_digits > 0 ? integer_digits : -leading_fraction_zeros) + exponent;
  return magnitude < 0;
}

// The general case of ParseValue: exponents, long mantissas, hex floats.
bool ParseValueSlow(const char* p, const char* end, bool negative, double* value) {
  if (p == end || *p == '+' || *p == '-') return false;  // "+-1", "--1", a lone sign
  double parsed = 0;
  std::from_chars_result result;
  if (end - p >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
    p += 2;
    // Go requires the binary exponent in a hex float; from_chars would also take a sign here.
    if (p == end || *p == '+' || *p == '-') return false;
    if (Find(p, end, 'p') == nullptr && Find(p, end, 'P') == nullptr) return false;
    result = std::from_chars(p, end, parsed, std::chars_format::hex);
    if (result.ec != std::errc() || result.ptr != end) return false;
  } else {
    result = std::from_chars(p, end, parsed, std::chars_format::general);
    if (result.ptr != end) return false;
    if (result.ec == std::errc::result_out_of_range) {
      if (!IsDecimalUnderflow(p, end)) return false;
      parsed = 0;
    } else if (result.ec != std::errc()) {
      return false;
    }
  }
  if (!std::isfinite(parsed)) return false;  // "inf", "nan", "infinity"
  *value = negative ? -parsed : parsed;
  return true;
}

bool ParseInt64(std::string_view text, int64_t* value) {
  const char* p = text.data();
  const char* end = p + text.size();
  if (p < end && *p == '+') {
    ++p;
    if (p < end && *p == '-') return false;
  }
  if (p == end) return false;
  auto result = std::from_chars(p, end, *value);
  return result.ec == std::errc() && result.ptr == end;
}

// An event length: digits with an optional '+', as Go's Atoi reads them; negative is invalid.
bool ParseLength(std::string_view text, uint64_t* value) {
  const char* p = text.data();
  const char* end = p + text.size();
  if (p < end && *p == '+') ++p;
  if (p == end || *p < '0' || *p > '9') return false;
  auto result = std::from_chars(p, end, *value);
  return result.ec == std::errc() && result.ptr == end;
}

// The remaining bytes of a multi-byte UTF-8 sequence starting at `p` (its lead byte already read).
// Returns the position after the sequence, or nullptr when it is malformed.
const unsigned char* ValidateUtf8Sequence(const unsigned char* p, const unsigned char* end) {
  const unsigned char lead = *p;
  unsigned char second_min = 0x80;
  unsigned char second_max = 0xBF;
  int continuation_bytes = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    continuation_bytes = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    continuation_bytes = 2;
    if (lead == 0xE0) second_min = 0xA0;  // overlong
    if (lead == 0xED) second_max = 0x9F;  // UTF-16 surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    continuation_bytes = 3;
    if (lead == 0xF0) second_min = 0x90;  // overlong
    if (lead == 0xF4) second_max = 0x8F;  // above U+10FFFF
  } else {
    return nullptr;  // a continuation byte, an overlong C0/C1 lead, or F5..FF
  }
  if (end - p <= continuation_bytes) return nullptr;
  if (p[1] < second_min || p[1] > second_max) return nullptr;
  for (int i = 2; i <= continuation_bytes; ++i) {
    if ((p[i] & 0xC0) != 0x80) return nullptr;
  }
  return p + 1 + continuation_bytes;
}

std::string UnescapeNewlines(std::string_view text) {
  std::string out;
  out.reserve(text.size());  // bounded by the line, which the caller already holds
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == 'n') {
      out.push_back('\n');
      ++i;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// Datadog's origin detection fields, common to the three message kinds.
struct OriginFields {
  std::string_view container_id;   // c:
  std::string_view external_data;  // e:
  std::string_view cardinality;    // card:
};

// Returns true if `field` was one of the origin detection fields.
template <typename Parsed>
bool TakeOriginField(std::string_view field, Parsed* parsed) {
  if (field.size() >= 2 && field[1] == ':') {
    if (field[0] == 'c') {
      parsed->container_id = field.substr(2);
      return true;
    }
    if (field[0] == 'e') {
      parsed->external_data = field.substr(2);
      return true;
    }
  } else if (StartsWith(field, "card:")) {
    parsed->cardinality = field.substr(5);
    return true;
  }
  return false;
}

bool ParseMetricType(std::string_view text, SampleType* type) {
  if (text.size() == 1) {
    switch (text[0]) {
      case 'g':
        *type = SampleType::kGauge;
        return true;
      case 'c':
        *type = SampleType::kCount;
        return true;
      case 'h':
        *type = SampleType::kHistogram;
        return true;
      case 'd':
        *type = SampleType::kDistribution;
        return true;
      case 's':
        *type = SampleType::kSet;
        return true;
      default:
        return false;
    }
  }
  if (text.size() == 2 && text[0] == 'm' && text[1] == 's') {
    *type = SampleType::kTimer;
    return true;
  }
  return false;
}

// Calls `on_value` for every non-empty value of a `1:2::3` list (Datadog skips empty ones); returns
// false at the first invalid value.
template <typename OnValue>
bool ForEachValue(std::string_view raw_values, OnValue&& on_value) {
  const char* p = raw_values.data();
  const char* end = p + raw_values.size();
  while (p < end) {
    const char* colon = Find(p, end, ':');
    const char* value_end = colon != nullptr ? colon : end;
    if (value_end != p) {
      double value = 0;
      if (!ParseValue(std::string_view(p, static_cast<size_t>(value_end - p)), &value)) return false;
      on_value(value);
    }
    if (colon == nullptr) break;
    p = colon + 1;
  }
  return true;
}

void ParseMetric(std::string_view line, ParseHandler& handler) {
  const char* begin = line.data();
  const char* end = begin + line.size();
  const char* first_pipe = Find(begin, end, '|');
  const char* head_end = first_pipe != nullptr ? first_pipe : end;
  const char* colon = Find(begin, head_end, ':');
  if (colon == nullptr) return handler.OnError(ParseError::kMissingValue, line);
  if (colon == begin) return handler.OnError(ParseError::kEmptyName, line);
  if (colon + 1 == head_end) return handler.OnError(ParseError::kMissingValue, line);
  if (first_pipe == nullptr) return handler.OnError(ParseError::kMissingType, line);

  const std::string_view raw_values(colon + 1, static_cast<size_t>(head_end - colon - 1));
  FieldCursor fields(first_pipe + 1, end);
  std::string_view field;
  fields.Next(&field);
  SampleType type = SampleType::kGauge;
  if (field.empty()) return handler.OnError(ParseError::kMissingType, line);
  if (!ParseMetricType(field, &type)) return handler.OnError(ParseError::kBadType, line);

  // Values first, so that a bad value is reported as such even when a later field is also bad.
  double value = 0;
  std::string_view set_value;
  bool multiple_values = false;
  if (type == SampleType::kSet) {
    set_value = raw_values;  // one value, kept raw, colons included
  } else if (Find(raw_values.data(), raw_values.data() + raw_values.size(), ':') == nullptr) {
    if (!ParseValue(raw_values, &value)) return handler.OnError(ParseError::kBadValue, line);
  } else {
    size_t count = 0;
    if (!ForEachValue(raw_values, [&count](double) { ++count; }) || count == 0) {
      return handler.OnError(ParseError::kBadValue, line);
    }
    multiple_values = true;
  }

  // The fields live in locals and the ParsedMetric is built once at the end: zero-initialising the
  // 128-byte struct up front (a `rep stos`) cost a third of the parse time.
  double sample_rate = 1;
  int64_t timestamp = 0;
  std::string_view raw_tags;
  OriginFields origin;
  while (fields.Next(&field)) {
    if (field.empty()) continue;
    switch (field[0]) {
      case '#':
        raw_tags = field.substr(1);
        break;
      case '@':
        if (!ParseValue(field.substr(1), &sample_rate) || !(sample_rate > 0 && sample_rate <= 1)) {
          return handler.OnError(ParseError::kBadSampleRate, line);
        }
        break;
      case 'T':
        if (!ParseInt64(field.substr(1), &timestamp) || timestamp < 1) {
          return handler.OnError(ParseError::kBadTimestamp, line);
        }
        break;
      default:
        TakeOriginField(field, &origin);  // unknown fields are ignored, as Datadog does
        break;
    }
  }

  ParsedMetric metric{.name = std::string_view(begin, static_cast<size_t>(colon - begin)),
                      .type = type,
                      .value = value,
                      .set_value = set_value,
                      .sample_rate = sample_rate,
                      .raw_tags = raw_tags,
                      .timestamp = timestamp,
                      .container_id = origin.container_id,
                      .external_data = origin.external_data,
                      .cardinality = origin.cardinality};
  if (!multiple_values) return handler.OnMetric(metric);
  ForEachValue(raw_values, [&metric, &handler](double each) {
    metric.value = each;
    handler.OnMetric(metric);
  });
}

void ParseEvent(std::string_view line, ParseHandler& handler) {
  const char* begin = line.data();
  const char* end = begin + line.size();
  // `_e{<title length>,<text length>}:` — the lengths are UTF-8 byte counts.
  const char* colon = Find(begin + kEventPrefix.size(), end, ':');
  if (colon == nullptr || colon[-1] != '}') return handler.OnError(ParseError::kBadEvent, line);
  const char* lengths_begin = begin + kEventPrefix.size();
  const char* lengths_end = colon - 1;
  const char* comma = Find(lengths_begin, lengths_end, ',');
  if (comma == nullptr) return handler.OnError(ParseError::kBadEvent, line);
  uint64_t title_length = 0;
  uint64_t text_length = 0;
  if (!ParseLength(std::string_view(lengths_begin, static_cast<size_t>(comma - lengths_begin)),
                   &title_length) ||
      !ParseLength(std::string_view(comma + 1, static_cast<size_t>(lengths_end - comma - 1)), &text_length) ||
      title_length == 0) {
    return handler.OnError(ParseError::kBadEvent, line);
  }
  // Bound both lengths by what the line holds (`<title>|<text>`) before using them; written so that
  // no sum can overflow whatever the claimed values.
  const std::string_view body(colon + 1, static_cast<size_t>(end - colon - 1));
  if (title_length >= body.size() || text_length > body.size() - title_length - 1) {
    return handler.OnError(ParseError::kBadEvent, line);
  }
  const size_t text_begin = static_cast<size_t>(title_length) + 1;
  const size_t text_end = text_begin + static_cast<size_t>(text_length);
  if (body[text_begin - 1] != '|' || (text_end < body.size() && body[text_end] != '|')) {
    return handler.OnError(ParseError::kBadEvent, line);
  }

  ParsedEvent parsed;
  parsed.event.title = UnescapeNewlines(body.substr(0, static_cast<size_t>(title_length)));
  parsed.event.text = UnescapeNewlines(body.substr(text_begin, static_cast<size_t>(text_length)));
  parsed.event.priority = metrics::EventPriority::kNormal;
  parsed.event.alert_type = metrics::EventAlertType::kInfo;

  if (text_end < body.size()) {
    FieldCursor fields(body.data() + text_end + 1, end);
    std::string_view field;
    while (fields.Next(&field)) {
      if (field.empty()) continue;
      if (field[0] == '#') {
        parsed.raw_tags = field.substr(1);
        continue;
      }
      if (TakeOriginField(field, &parsed)) continue;
      if (field.size() < 2 || field[1] != ':') continue;  // unknown: ignored
      const std::string_view value = field.substr(2);
      switch (field[0]) {
        case 'd':
          if (!ParseInt64(value, &parsed.event.timestamp) || parsed.event.timestamp < 0) {
            return handler.OnError(ParseError::kBadTimestamp, line);
          }
          break;
        case 'h':
          parsed.event.host = std::string(value);
          break;
        case 'k':
          parsed.event.aggregation_key = std::string(value);
          break;
        case 's':
          parsed.event.source_type_name = std::string(value);
          break;
        case 'p':
          if (value == "normal") {
            parsed.event.priority = metrics::EventPriority::kNormal;
          } else if (value == "low") {
            parsed.event.priority = metrics::EventPriority::kLow;
          } else {
            return handler.OnError(ParseError::kBadEvent, line);
          }
          break;
        case 't':
          if (value == "info") {
            parsed.event.alert_type = metrics::EventAlertType::kInfo;
          } else if (value == "error") {
            parsed.event.alert_type = metrics::EventAlertType::kError;
          } else if (value == "warning") {
            parsed.event.alert_type = metrics::EventAlertType::kWarning;
          } else if (value == "success") {
            parsed.event.alert_type = metrics::EventAlertType::kSuccess;
          } else {
            return handler.OnError(ParseError::kBadEvent, line);
          }
          break;
        default:
          break;
      }
    }
  }
  handler.OnEvent(std::move(parsed));
}

void ParseServiceCheck(std::string_view line, ParseHandler& handler) {
  FieldCursor fields(line.data() + kServiceCheckPrefix.size(), line.data() + line.size());
  std::string_view name;
  std::string_view status;
  fields.Next(&name);
  if (!fields.Next(&status)) return handler.OnError(ParseError::kBadServiceCheck, line);
  if (name.empty()) return handler.OnError(ParseError::kEmptyName, line);
  if (status.size() != 1 || status[0] < '0' || status[0] > '3') {
    return handler.OnError(ParseError::kBadServiceCheck, line);
  }

  ParsedServiceCheck parsed;
  parsed.check.name = std::string(name);
  parsed.check.status = static_cast<metrics::ServiceCheckStatus>(status[0] - '0');
  std::string_view field;
  while (fields.Next(&field)) {
    if (field.empty()) continue;
    if (field[0] == '#') {
      parsed.raw_tags = field.substr(1);
      continue;
    }
    if (TakeOriginField(field, &parsed)) continue;
    if (field.size() < 2 || field[1] != ':') continue;  // unknown: ignored
    const std::string_view value = field.substr(2);
    if (field[0] == 'm') {
      // The message is last by definition and may itself contain '|'.
      parsed.check.message = std::string(fields.RestFrom(field).substr(2));
      break;
    }
    if (field[0] == 'd') {
      if (!ParseInt64(value, &parsed.check.timestamp) || parsed.check.timestamp < 0) {
        return handler.OnError(ParseError::kBadTimestamp, line);
      }
    } else if (field[0] == 'h') {
      parsed.check.host = std::string(value);
    }
  }
  handler.OnServiceCheck(std::move(parsed));
}

}  // namespace

std::string_view ParseErrorName(ParseError error) {
  switch (error) {
    case ParseError::kEmptyName:
      return "empty_name";
    case ParseError::kMissingValue:
      return "missing_value";
    case ParseError::kBadValue:
      return "bad_value";
    case ParseError::kMissingType:
      return "missing_type";
    case ParseError::kBadType:
      return "bad_type";
    case ParseError::kBadSampleRate:
      return "bad_sample_rate";
    case ParseError::kBadTimestamp:
      return "bad_timestamp";
    case ParseError::kBadEvent:
      return "bad_event";
    case ParseError::kBadServiceCheck:
      return "bad_service_check";
    case ParseError::kInvalidUtf8:
      return "invalid_utf8";
    case ParseError::kCount:
      break;
  }
  return "unknown";
}

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    // ASCII fast path, a word at a time: DogStatsD lines are almost always pure ASCII.
    while (end - p >= 8) {
      uint64_t word;
      std::memcpy(&word, p, sizeof(word));
      if ((word & 0x8080808080808080ULL) != 0) break;
      p += 8;
    }
    while (p < end && *p < 0x80) ++p;
    if (p == end) return true;
    p = ValidateUtf8Sequence(p, end);
    if (p == nullptr) return false;
  }
  return true;
}

bool ParseValue(std::string_view text, double* value) {
  const char* p = text.data();
  const char* end = p + text.size();
  bool negative = false;
  if (p < end && (*p == '+' || *p == '-')) negative = *p++ == '-';

  // Fast path for what clients send nearly always: up to 15 significant digits with an optional
  // fraction and no exponent. The mantissa then fits a double exactly, as does 10^fraction_digits, so
  // one division is correctly rounded (the classic Clinger fast path).
  const char* q = p;
  uint64_t mantissa = 0;
  int digits = 0;
  int fraction_digits = 0;
  while (q < end && static_cast<unsigned>(*q - '0') < 10 && digits < 16) {
    mantissa = mantissa * 10 + static_cast<unsigned>(*q - '0');
    ++digits;
    ++q;
  }
  if (q < end && *q == '.') {
    ++q;
    while (q < end && static_cast<unsigned>(*q - '0') < 10 && digits < 16) {
      mantissa = mantissa * 10 + static_cast<unsigned>(*q - '0');
      ++digits;
      ++fraction_digits;
      ++q;
    }
  }
  if (q == end && digits > 0 && digits <= 15) {
    double magnitude = static_cast<double>(mantissa);
    if (fraction_digits != 0)
      magnitude /= kExactPowersOfTen[fraction_digits];  // integers skip the slow divide
    *value = negative ? -magnitude : magnitude;
    return true;
  }
  return ParseValueSlow(p, end, negative, value);
}

void ParseLine(std::string_view line, ParseHandler& handler) {
  if (line.empty()) return;
  if (!IsValidUtf8(line)) return handler.OnError(ParseError::kInvalidUtf8, line);
  if (StartsWith(line, kEventPrefix)) return ParseEvent(line, handler);
  if (StartsWith(line, kServiceCheckPrefix)) return ParseServiceCheck(line, handler);
  ParseMetric(line, handler);
}

void ParseDatagram(std::string_view datagram, ParseHandler& handler) {
  const char* p = datagram.data();
  const char* end = p + datagram.size();
  while (p < end) {
    // Lines are long enough for libc's vectorised memchr to pay off.
    const char* newline = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* line_end = newline != nullptr ? newline : end;
    if (line_end > p && line_end[-1] == '\r') --line_end;
    if (line_end > p) ParseLine(std::string_view(p, static_cast<size_t>(line_end - p)), handler);
    if (newline == nullptr) break;
    p = newline + 1;
  }
}

void SplitTags(std::string_view raw_tags, std::vector<std::string_view>* out, HostTag* host) {
  const char* p = raw_tags.data();
  const char* end = p + raw_tags.size();
  while (p < end) {
    const char* comma = Find(p, end, ',');
    const char* tag_end = comma != nullptr ? comma : end;
    const std::string_view tag(p, static_cast<size_t>(tag_end - p));
    if (!tag.empty()) {
      if (host != nullptr && StartsWith(tag, kHostTagPrefix)) {
        host->present = true;
        host->value = tag.substr(kHostTagPrefix.size());
      } else {
        out->push_back(tag);
      }
    }
    if (comma == nullptr) break;
    p = comma + 1;
  }
}

}  // namespace dogwatch::dogstatsd
