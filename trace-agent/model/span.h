#pragma once
// The trace-agent's in-memory span model: what the decoders produce and every pipeline stage
// (normalize, obfuscate, sample, stats, write) works on. Plain structs with flat vectors for tags:
// a span has ~10-20 meta entries, where a linear scan beats hashing and there is no per-entry node
// allocation (protobuf's Map costs several times more per span on the decode path).
//
// Span strings borrow from the request body: the msgpack decoders point SpanStrings into the body
// instead of copying every service, name, tag key and value (one heap string per tag longer than
// 15 bytes cost ~15% of the agent's CPU in malloc/free). Only strings a stage rewrites (obfuscated
// resource, truncated or normalized values, invalid UTF-8 repaired, ...) own their bytes.
//
// Lifetime rule: a span decoded from a body is valid while that body is. The receiver keeps the
// request body (counted against its in-flight byte bound) until the payload has been encoded by the
// writer and counted by the concentrator; whatever outlives the request (stats keys, sampler state)
// copies the bytes it keeps. Copying a SpanString copies a borrowed view as a view: use Own() (or
// std::string(view)) for a copy that no longer depends on the body.

#include <compare>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace dogwatch::trace {

// A read-only string that either borrows (a view into bytes someone else keeps alive) or owns its
// bytes (one heap block, freed with it). 16 bytes; borrowing costs no allocation and destroying a
// borrowed string costs nothing. Constructing from any string type makes an owned copy, so ordinary
// code (tests, the pipeline's rewrites) is always safe; borrowing is explicit: SpanString::Borrow.
class SpanString {
 public:
  SpanString() noexcept = default;
  // An owned copy of `text`.
  template <typename T>
  requires(std::convertible_to<const T&, std::string_view> &&
           !std::same_as<std::remove_cvref_t<T>, SpanString>) SpanString(const T& text) {
    CopyFrom(std::string_view(text));
  }
  // A view of `text`, which must outlive this string and every borrowed copy of it.
  static SpanString Borrow(std::string_view text) noexcept {
    SpanString s;
    s.data_ = text.data();
    s.size_ = text.size();
    return s;
  }

  SpanString(const SpanString& other) {
    if (other.owned()) {
      CopyFrom(other.view());
    } else {
      data_ = other.data_;
      size_ = other.size_;
    }
  }
  SpanString(SpanString&& other) noexcept : data_(other.data_), size_(other.size_) {
    other.data_ = nullptr;
    other.size_ = 0;
  }
  SpanString& operator=(const SpanString& other) {
    if (this != &other) *this = SpanString(other);
    return *this;
  }
  SpanString& operator=(SpanString&& other) noexcept {
    if (this != &other) {
      Release();
      data_ = other.data_;
      size_ = other.size_;
      other.data_ = nullptr;
      other.size_ = 0;
    }
    return *this;
  }
  ~SpanString() { Release(); }

  // An owned copy (deep, whether this one borrows or owns).
  SpanString Own() const {
    SpanString s;
    s.CopyFrom(view());
    return s;
  }
  bool owned() const noexcept { return (size_ & kOwnedBit) != 0; }

  std::string_view view() const noexcept { return std::string_view(data_, size()); }
  operator std::string_view() const noexcept { return view(); }  // NOLINT: implicit by design
  std::string str() const { return std::string(view()); }

  const char* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_ & ~kOwnedBit; }
  size_t length() const noexcept { return size(); }
  bool empty() const noexcept { return size() == 0; }
  const char* begin() const noexcept { return data_; }
  const char* end() const noexcept { return data_ + size(); }
  char operator[](size_t i) const noexcept { return data_[i]; }
  char front() const noexcept { return data_[0]; }
  char back() const noexcept { return data_[size() - 1]; }
  bool starts_with(std::string_view prefix) const noexcept { return view().starts_with(prefix); }
  bool ends_with(std::string_view suffix) const noexcept { return view().ends_with(suffix); }
  size_t find(std::string_view s, size_t pos = 0) const noexcept { return view().find(s, pos); }
  size_t find(char c, size_t pos = 0) const noexcept { return view().find(c, pos); }
  std::string_view substr(size_t pos, size_t n = std::string_view::npos) const {
    return view().substr(pos, n);
  }

  // Keeps the first `n` bytes (n <= size()): no copy, a borrowed string stays borrowed.
  void Truncate(size_t n) noexcept {
    if (n < size()) size_ = n | (size_ & kOwnedBit);
  }
  void clear() noexcept {
    Release();
    data_ = nullptr;
    size_ = 0;
  }

  friend bool operator==(const SpanString& a, const SpanString& b) noexcept { return a.view() == b.view(); }
  template <typename T>
  requires(std::convertible_to<const T&, std::string_view> &&
           !std::same_as<std::remove_cvref_t<T>, SpanString>) friend bool
  operator==(const SpanString& a, const T& b) {
    return a.view() == std::string_view(b);
  }
  friend std::strong_ordering operator<=>(const SpanString& a, const SpanString& b) noexcept {
    return a.view() <=> b.view();
  }
  template <typename T>
  requires(std::convertible_to<const T&, std::string_view> &&
           !std::same_as<std::remove_cvref_t<T>, SpanString>) friend std::strong_ordering
  operator<=>(const SpanString& a, const T& b) {
    return a.view() <=> std::string_view(b);
  }

 private:
  static constexpr size_t kOwnedBit = size_t{1} << (sizeof(size_t) * 8 - 1);

  void CopyFrom(std::string_view text) {
    if (text.empty()) {
      data_ = nullptr;
      size_ = 0;
      return;
    }
    char* copy = new char[text.size()];
    std::memcpy(copy, text.data(), text.size());
    data_ = copy;
    size_ = text.size() | kOwnedBit;
  }
  void Release() noexcept {
    if (owned()) delete[] data_;
  }

  const char* data_ = nullptr;
  size_t size_ = 0;  // top bit: owned
};

std::ostream& operator<<(std::ostream& out, const SpanString& s);

using StringMap = std::vector<std::pair<SpanString, SpanString>>;
using NumberMap = std::vector<std::pair<SpanString, double>>;

// Key equality for the flat-map scans: most keys differ from the one looked up in length or in
// their first byte, which rejects them without a call to memcmp.
inline bool SameKey(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() &&
         (a.empty() || (a[0] == b[0] && std::memcmp(a.data(), b.data(), a.size()) == 0));
}

// Lookups and updates on the flat maps. Keys are unique: Set replaces an existing entry. A new
// entry's key is an owned copy of `key`.
const SpanString* Find(const StringMap& map, std::string_view key);
const double* Find(const NumberMap& map, std::string_view key);
// The value, for updating it in place (valid until the map is changed otherwise).
SpanString* Find(StringMap& map, std::string_view key);
void Set(StringMap& map, std::string_view key, SpanString value);
void Set(NumberMap& map, std::string_view key, double value);
bool Erase(StringMap& map, std::string_view key);
// Set for a key with static storage duration (a literal, a namespace-scope constexpr string_view):
// a new entry borrows the key instead of copying it.
void SetStaticKey(StringMap& map, std::string_view static_key, SpanString value);
void SetStaticKey(NumberMap& map, std::string_view static_key, double value);
// Makes every string of the map an owned copy.
void MakeOwned(StringMap& map);
void MakeOwned(NumberMap& map);

struct SpanLink {
  uint64_t trace_id = 0;
  uint64_t trace_id_high = 0;
  uint64_t span_id = 0;
  StringMap attributes;
  SpanString tracestate;
  uint32_t flags = 0;
};

struct Span {
  SpanString service;
  SpanString name;
  SpanString resource;
  SpanString type;
  uint64_t trace_id = 0;
  uint64_t span_id = 0;
  uint64_t parent_id = 0;
  int64_t start = 0;     // unix ns
  int64_t duration = 0;  // ns
  int32_t error = 0;
  StringMap meta;
  NumberMap metrics;
  StringMap meta_struct;  // values are raw bytes
  std::vector<SpanLink> span_links;
};

using Trace = std::vector<Span>;

// Sampling priorities as tracers send them in metrics["_sampling_priority_v1"].
inline constexpr int32_t kPriorityUserReject = -1;
inline constexpr int32_t kPriorityAutoReject = 0;
inline constexpr int32_t kPriorityAutoKeep = 1;
inline constexpr int32_t kPriorityUserKeep = 2;
// The chunk has no priority (none of its spans carried one).
inline constexpr int32_t kPriorityNone = -128;

struct TraceChunk {
  int32_t priority = kPriorityNone;
  std::string origin;
  std::vector<Span> spans;
  StringMap tags;
  bool dropped_trace = false;
};

// Shared results that spans of a payload borrow strings from (obfuscated SQL from the query
// cache): one reference per result instead of a copy per span. Destroyed after the chunks.
using KeepAlive = std::vector<std::shared_ptr<const void>>;

// Payload-level strings are few (one set per request) and stay std::string.
struct TracerPayload {
  KeepAlive keep_alive;  // first: outlives every span that borrows from it
  std::string container_id;
  std::string language_name;
  std::string language_version;
  std::string tracer_version;
  std::string runtime_id;
  std::vector<TraceChunk> chunks;
  StringMap tags;
  std::string env;
  std::string hostname;
  std::string app_version;
};

// Makes every string of the span / chunk an owned copy, for spans kept beyond the body they were
// decoded from.
void MakeOwned(Span& span);
void MakeOwned(TraceChunk& chunk);

// Well-known keys.
inline constexpr std::string_view kSamplingPriorityKey = "_sampling_priority_v1";
inline constexpr std::string_view kTopLevelKey = "_top_level";
inline constexpr std::string_view kMeasuredKey = "_dd.measured";
inline constexpr std::string_view kOriginKey = "_dd.origin";

}  // namespace dogwatch::trace
