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
#include <unordered_map>

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
  // Keys view the strings owned by the list nodes, which never move.
  std::unordered_map<std::string_view, List::iterator> index_;
  size_t bytes_ = 0;
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> evictions_{0};
};

}  // namespace dogwatch::trace
