#pragma once
// LRU cache of obfuscated SQL queries. SQL obfuscation dominates the trace-agent's CPU on database-heavy
// traffic and applications repeat the same statements, so most lookups hit. Bounded both in entries
// and in bytes (keys, values and bookkeeping); what the bounds shed is counted as evictions.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "trace-agent/obfuscate/obfuscate.h"

namespace dogwatch::trace {

class QueryCache {
 public:
  QueryCache(size_t max_entries, size_t max_bytes);

  // nullptr on a miss.
  std::shared_ptr<const ObfuscatedQuery> Get(std::string_view query);
  // Inserts or refreshes; entries larger than the whole byte budget are not cached.
  void Put(std::string_view query, std::shared_ptr<const ObfuscatedQuery> value);

  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }
  uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }
  size_t entries() const;
  size_t bytes() const;

  // Approximate bytes one entry costs besides its strings: list and hash nodes, shared_ptr control
  // block and the ObfuscatedQuery itself.
  static constexpr size_t kEntryOverhead = 256;

 private:
  struct Entry {
    std::string key;
    std::shared_ptr<const ObfuscatedQuery> value;
    size_t cost;
  };
  using List = std::list<Entry>;

  void EvictLocked();

  const size_t max_entries_;
  const size_t max_bytes_;
  mutable std::mutex mu_;
  List lru_;  // most recently used first
  // Keys view the strings owned by the list nodes, which never move. absl's open-addressing map
  // and hash: a hit on a long query costs about half of std::unordered_map's (one probe in a flat
  // array instead of a bucket and a node, and a faster hash over the query's bytes).
  // (absl::Hash of a std::string_view falls back to std::hash where absl has its own string_view
  // type, as Debian's build: hash it as an absl::string_view.)
  struct Hash {
    size_t operator()(std::string_view s) const {
      return absl::Hash<absl::string_view>{}(absl::string_view(s.data(), s.size()));
    }
  };
  absl::flat_hash_map<std::string_view, List::iterator, Hash> index_;
  size_t bytes_ = 0;
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> evictions_{0};
};

}  // namespace dogwatch::trace
