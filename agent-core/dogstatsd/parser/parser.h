#pragma once
// DogStatsD datagram parser: turns the text lines of one datagram into metric samples, events and
// service checks, as the Datadog Agent's DogStatsD server reads them
// (https://docs.datadoghq.com/developers/dogstatsd/datagram_shell/).
//
// Metrics are parsed without copying or allocating: every string_view in a ParsedMetric points into
// the datagram and is valid only during the OnMetric call. Events and service checks are rare, so
// they are built as owning model objects (their text needs unescaping anyway); their tag and origin
// fields still borrow from the datagram until the handler returns.
//
// Deliberate choices where the Datadog Agent is lenient or silent (it is the reference otherwise):
// - A sample rate outside (0, 1] is rejected (kBadSampleRate). The Agent's parser accepts any float
//   and its aggregator then divides counts by it (`@0` yields +Inf, `@2` halves the count) while
//   histograms treat 0 as 1; none of that is meaningful, so the line is counted as an error instead.
// - An event whose byte after the title (or after the text) is not `|` (or the end of the line) is
//   rejected: its `{title,text}` lengths do not describe the line (for instance a client counting
//   characters instead of UTF-8 bytes), and cutting there could split a UTF-8 sequence. The Agent
//   slices anyway and keeps the truncated strings.
// - A malformed value in a known event or service check field (`d:` not an integer, `p:`/`t:` not a
//   known word) rejects the line; the Agent logs it and keeps the event with the field unset.
// - A service check's `m:` takes the rest of the line, `|` included (the grammar requires it last).
// - Lines starting with `_sc|` are service checks; the Agent also claims any line starting with `_sc`
//   (so a metric named `_scores` would be an error there, and is a metric here).

#include <cstdint>
#include <string_view>
#include <vector>

#include "agent-core/metrics/types.h"

namespace dogwatch::dogstatsd {

// Why a line was dropped. The names (ParseErrorName) are stable: they are used as counter names.
enum class ParseError : uint8_t {
  kEmptyName,        // metric `:1|c`, service check `_sc||0`
  kMissingValue,     // metric without `:` before the first `|`, or with nothing after it
  kBadValue,         // not a finite number (NaN, Inf, garbage, overflow), or no value in `a::|c`
  kMissingType,      // metric without `|<type>` (no `|` at all, or an empty type)
  kBadType,          // a type other than g c h d s ms
  kBadSampleRate,    // `@` not a number in (0, 1]
  kBadTimestamp,     // `|T` not an integer >= 1; event/service check `d:` not an integer >= 0
  kBadEvent,         // `_e{a,b}:` header malformed, lengths exceeding the line, empty title,
                     // lengths not ending on `|`, unknown `p:` or `t:` value
  kBadServiceCheck,  // missing or unknown status (only 0 1 2 3)
  kInvalidUtf8,      // the line is not valid UTF-8
  kCount,
};

// snake_case name of an error, e.g. "empty_name"; "unknown" for values out of range.
std::string_view ParseErrorName(ParseError error);

// One metric value. `name:1:2:3|c` yields three, differing only in `value`.
struct ParsedMetric {
  std::string_view name;
  metrics::SampleType type = metrics::SampleType::kGauge;
  double value = 0;                // every type but kSet
  std::string_view set_value;      // kSet only: the raw text after the first `:` (colons included)
  double sample_rate = 1;          // (0, 1]
  std::string_view raw_tags;       // after `#`, comma separated, may be empty; see SplitTags
  int64_t timestamp = 0;           // `|T<unix seconds>`, 0 when absent
  std::string_view container_id;   // raw value of `c:` (e.g. `in-5859`, `ci-<id>`), empty if absent
  std::string_view external_data;  // raw value of `e:`
  std::string_view cardinality;    // raw value of `card:`
};

struct ParsedEvent {
  metrics::Event event;  // title/text unescaped; tags left empty (see raw_tags)
  std::string_view raw_tags;
  std::string_view container_id;
  std::string_view external_data;
  std::string_view cardinality;
};

struct ParsedServiceCheck {
  metrics::ServiceCheck check;  // tags left empty (see raw_tags)
  std::string_view raw_tags;
  std::string_view container_id;
  std::string_view external_data;
  std::string_view cardinality;
};

class ParseHandler {
 public:
  virtual ~ParseHandler() = default;
  virtual void OnMetric(const ParsedMetric& metric) = 0;
  virtual void OnEvent(ParsedEvent&& event) = 0;
  virtual void OnServiceCheck(ParsedServiceCheck&& check) = 0;
  // `line` is the offending line without its line terminator.
  virtual void OnError(ParseError error, std::string_view line) = 0;
};

// Parses every line of `datagram`, split on '\n' (a trailing newline and empty lines are ignored,
// a '\r' before the '\n' is dropped). Each line produces metrics, an event, a service check or
// exactly one error; a bad line never affects the others. Never throws.
void ParseDatagram(std::string_view datagram, ParseHandler& handler);

// Parses one line (no '\n' inside; used by ParseDatagram, exposed for tests and tools).
void ParseLine(std::string_view line, ParseHandler& handler);

// The special `host:` tag. `present` with an empty `value` means "explicitly no host".
struct HostTag {
  bool present = false;
  std::string_view value;
};

// Splits `raw_tags` on ',' and appends the non-empty tags to `out`. When `host` is not null, `host:`
// tags are taken out into it instead (the last one wins); when it is null they stay ordinary tags.
void SplitTags(std::string_view raw_tags, std::vector<std::string_view>* out, HostTag* host);

// Exposed for tests and the fuzzer: DogStatsD value syntax (what Go's strconv.ParseFloat accepts,
// minus NaN and infinities): optional sign, decimal with optional fraction and exponent, or a hex
// float `0x1.8p3`. Returns false for anything else, including overflow.
bool ParseValue(std::string_view text, double* value);

// Exposed for tests and the fuzzer: true when `text` is well-formed UTF-8 (no overlong forms,
// surrogates or code points above U+10FFFF).
bool IsValidUtf8(std::string_view text);

}  // namespace dogwatch::dogstatsd
