#pragma once
// Pieces shared by the msgpack and JSON decoders: span field lookup, last-wins deduplication of the
// flat maps, and the JSON trace counter. Internal to trace-agent/decode.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace dogwatch::trace::decode_internal {

// CountTraces for JSON bodies (json_decode.cc): the top-level array's element count.
absl::StatusOr<size_t> CountJsonTraces(std::string_view body);

enum class SpanField : uint8_t {
  kUnknown,
  kService,
  kName,
  kResource,
  kTraceId,
  kSpanId,
  kParentId,
  kStart,
  kDuration,
  kError,
  kMeta,
  kMetrics,
  kType,
  kMetaStruct,
  kSpanLinks,
};

inline constexpr const char* kSpanFieldNames[] = {
    nullptr,    "service", "name", "resource", "trace_id", "span_id",     "parent_id",  "start",
    "duration", "error",   "meta", "metrics",  "type",     "meta_struct", "span_links",
};

inline const char* SpanFieldName(SpanField field) { return kSpanFieldNames[static_cast<int>(field)]; }

// `key` (already known to be N-1 bytes long) equals the literal: a constant-size memcmp, which the
// compiler turns into one or two loads and compares (std::string_view's == calls memcmp here).
template <size_t N>
inline bool SameBytes(std::string_view key, const char (&literal)[N]) {
  return std::memcmp(key.data(), literal, N - 1) == 0;
}

// Dispatch on length first: one compare rules out most names, then a fixed-size compare.
inline SpanField LookupSpanField(std::string_view key) {
  switch (key.size()) {
    case 4:
      if (SameBytes(key, "name")) return SpanField::kName;
      if (SameBytes(key, "meta")) return SpanField::kMeta;
      if (SameBytes(key, "type")) return SpanField::kType;
      break;
    case 5:
      if (SameBytes(key, "start")) return SpanField::kStart;
      if (SameBytes(key, "error")) return SpanField::kError;
      break;
    case 7:
      if (SameBytes(key, "service")) return SpanField::kService;
      if (SameBytes(key, "metrics")) return SpanField::kMetrics;
      if (SameBytes(key, "span_id")) return SpanField::kSpanId;
      break;
    case 8:
      if (SameBytes(key, "resource")) return SpanField::kResource;
      if (SameBytes(key, "trace_id")) return SpanField::kTraceId;
      if (SameBytes(key, "duration")) return SpanField::kDuration;
      break;
    case 9:
      if (SameBytes(key, "parent_id")) return SpanField::kParentId;
      break;
    case 10:
      if (SameBytes(key, "span_links")) return SpanField::kSpanLinks;
      break;
    case 11:
      if (SameBytes(key, "meta_struct")) return SpanField::kMetaStruct;
      break;
    default:
      break;
  }
  return SpanField::kUnknown;
}

// Catches possible duplicate keys while a map is read, for the price of a few integer operations per
// key: each key's fingerprint (exact up to 8 bytes, a mix of length and both ends above) picks one
// bit of a 1024-bit set, and a bit found already set means "possibly a duplicate". Only such a
// collision (~7% of 13-key maps), or a map too big to track, sends the map through
// DedupeKeepLast's exact check. Comparing each fingerprint with every earlier one cost ~6x more on
// a span's ~10 meta keys.
class DuplicateKeyFilter {
 public:
  // Beyond this many keys the set fills up and collisions become the rule: the exact check is cheaper.
  static constexpr size_t kTracked = 64;

  void Add(std::string_view key) {
    if (size_ == kTracked) {
      possible_duplicate_ = true;
      return;
    }
    ++size_;
    // The top 10 bits of a multiplicative hash spread any fingerprint over the set.
    const uint64_t slot = (Fingerprint(key) * 0x9E3779B97F4A7C15ULL) >> (64 - kSlotBits);
    const uint64_t bit = uint64_t{1} << (slot & 63);
    uint64_t& word = seen_[slot >> 6];
    possible_duplicate_ |= (word & bit) != 0;
    word |= bit;
  }
  bool possible_duplicate() const { return possible_duplicate_; }

 private:
  static constexpr unsigned kSlotBits = 10;

  static uint64_t Fingerprint(std::string_view key) {
    const size_t size = key.size();
    const char* p = key.data();
    if (size >= 8) {
      uint64_t head;
      uint64_t tail;
      std::memcpy(&head, p, sizeof(head));
      std::memcpy(&tail, p + size - 8, sizeof(tail));
      return (uint64_t{size} << 56) ^ (head * 0x9E3779B97F4A7C15ULL) ^ (tail * 0xC2B2AE3D27D4EB4FULL);
    }
    // Short keys without a byte loop: two overlapping 4-byte loads cover 4-7 bytes, the first, middle
    // and last byte cover 1-3, so equal keys always give equal fingerprints (and distinct ones rarely
    // do: a collision only costs the exact check).
    uint64_t bytes = 0;
    if (size >= 4) {
      uint32_t head;
      uint32_t tail;
      std::memcpy(&head, p, sizeof(head));
      std::memcpy(&tail, p + size - 4, sizeof(tail));
      bytes = (uint64_t{head} << 32) | tail;
    } else if (size > 0) {
      bytes = (uint64_t{static_cast<uint8_t>(p[0])} << 16) |
              (uint64_t{static_cast<uint8_t>(p[size / 2])} << 8) | static_cast<uint8_t>(p[size - 1]);
    }
    return bytes ^ (uint64_t{size} << 56);
  }

  uint64_t seen_[(size_t{1} << kSlotBits) / 64] = {};
  size_t size_ = 0;
  bool possible_duplicate_ = false;
};

// Removes all but the last occurrence of each key, keeping the survivors in their order: the Go
// maps the agent decodes into keep the last value written, and the span model requires unique keys.
// Small maps are checked pairwise; big ones (clients may send up to max_map_entries) sort indexes
// instead, so they cost O(n log n), never O(n^2). Decoders call it only when a DuplicateKeyFilter
// saw a possible duplicate.
template <typename Key, typename Value>
void DedupeKeepLast(std::vector<std::pair<Key, Value>>* map) {
  auto& m = *map;
  const size_t n = m.size();
  if (n < 2) return;
  constexpr size_t kPairwiseLimit = 24;
  if (n <= kPairwiseLimit) {
    bool duplicate = false;
    for (size_t i = 1; i < n && !duplicate; ++i) {
      for (size_t j = 0; j < i && !duplicate; ++j) duplicate = m[i].first == m[j].first;
    }
    if (!duplicate) return;
  }
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  // Stable: equal keys stay in payload order, so the last of a run is the one to keep.
  std::stable_sort(order.begin(), order.end(),
                   [&m](uint32_t a, uint32_t b) { return m[a].first < m[b].first; });
  std::vector<bool> drop(n, false);
  bool any = false;
  for (size_t k = 0; k + 1 < n; ++k) {
    if (m[order[k]].first == m[order[k + 1]].first) {
      drop[order[k]] = true;
      any = true;
    }
  }
  if (!any) return;
  size_t out = 0;
  for (size_t i = 0; i < n; ++i) {
    if (drop[i]) continue;
    if (out != i) m[out] = std::move(m[i]);
    ++out;
  }
  m.resize(out);
}

}  // namespace dogwatch::trace::decode_internal
