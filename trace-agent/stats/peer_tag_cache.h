#pragma once
// Peer tags formatted once per distinct set of (key, value) pairs instead of once per span.
//
// A client span's peer tags are a handful of "key:value" strings (values IP-quantized), sorted, and hashed
// into the span's aggregation key. Services talk to few peers, so the same set comes back span after span:
// the cache keys the formatted strings by the raw (key index, value) pairs, which the matcher finds
// without building a string. Bounded by sets and bytes; when a bound is reached, further new sets are
// formatted per span (as without the cache) and counted, and the owner empties the cache at its next
// flush so that a change of peers does not leave it full of sets that no longer occur.

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "trace-agent/stats/aggregation.h"

namespace dogwatch::trace::stats {

// Identifies a sorted set of peer tag strings inside an aggregation key (0 when empty). Only equality
// matters (the strings themselves are stored with the group), so a fast hash replaces the agent's FNV.
uint64_t PeerTagsGroupHash(std::span<const std::string> sorted_tags);

class PeerTagSetCache {
 public:
  struct Limits {
    size_t max_sets = 4096;
    size_t max_bytes = 1 << 20;  // values and formatted strings, plus a fixed overhead per string
  };
  struct Counters {
    uint64_t hits = 0;
    uint64_t misses = 0;    // new sets, formatted and stored
    uint64_t uncached = 0;  // new sets formatted per span: a bound was reached (or a 64-bit hash collided)
    uint64_t resets = 0;    // ResetIfFull emptied the cache
    uint64_t sets = 0;      // gauge
    uint64_t bytes = 0;     // gauge
  };
  // What a span's aggregation key takes: its sorted peer tag strings and their hash.
  struct Tags {
    std::span<const std::string> tags;
    uint64_t hash = 0;
  };

  // `matcher` formats the tags and must outlive the cache.
  PeerTagSetCache(const PeerTagMatcher* matcher, Limits limits);
  PeerTagSetCache(const PeerTagSetCache&) = delete;
  PeerTagSetCache& operator=(const PeerTagSetCache&) = delete;

  // The tags of `matches` (sorted by key, as PeerTagMatcher::MatchRaw returns them). The strings stay
  // valid until the next Get, ResetIfFull or the cache's destruction. Not thread-safe.
  Tags Get(std::span<const PeerTagMatch> matches);
  // Empties the cache if a bound was reached since the last reset.
  void ResetIfFull();
  const Counters& counters() const { return counters_; }

 private:
  struct Set {
    std::vector<uint32_t> keys;
    std::vector<std::string> values;
    std::vector<std::string> tags;  // formatted, sorted
    uint64_t hash = 0;              // PeerTagsGroupHash(tags)
  };
  static bool Same(const Set& set, std::span<const PeerTagMatch> matches);
  void Remember(const Set* set);

  const PeerTagMatcher* matcher_;
  const Limits limits_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Set>> sets_;  // by the hash of the raw pairs
  std::array<const Set*, 2> recent_ = {};                     // the last sets returned from sets_
  bool refused_ = false;                                      // a bound was reached since the last reset
  std::vector<std::string> scratch_;                          // per-span formatting when not cached
  Counters counters_;
};

}  // namespace dogwatch::trace::stats
