#include "trace-agent/obfuscate/query_cache.h"

namespace dogwatch::trace {
namespace {

size_t Cost(std::string_view key, const ObfuscatedQuery& value) {
  return key.size() + value.query.size() + value.metadata.size + QueryCache::kEntryOverhead;
}

}  // namespace

QueryCache::QueryCache(size_t max_entries, size_t max_bytes)
    : max_entries_(max_entries), max_bytes_(max_bytes) {}

std::shared_ptr<const ObfuscatedQuery> QueryCache::Get(std::string_view query) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(query);
  if (it == index_.end()) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  if (it->second != lru_.begin()) lru_.splice(lru_.begin(), lru_, it->second);
  hits_.fetch_add(1, std::memory_order_relaxed);
  return it->second->value;
}

void QueryCache::Put(std::string_view query, std::shared_ptr<const ObfuscatedQuery> value) {
  if (value == nullptr || max_entries_ == 0) return;
  const size_t cost = Cost(query, *value);
  if (cost > max_bytes_) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(query);
  if (it != index_.end()) {
    // Another thread obfuscated the same query concurrently: refresh.
    bytes_ -= it->second->cost;
    it->second->value = std::move(value);
    it->second->cost = cost;
    bytes_ += cost;
    lru_.splice(lru_.begin(), lru_, it->second);
  } else {
    lru_.push_front(Entry{std::string(query), std::move(value), cost});
    index_.emplace(lru_.front().key, lru_.begin());
    bytes_ += cost;
  }
  EvictLocked();
}

void QueryCache::EvictLocked() {
  while (!lru_.empty() && (lru_.size() > max_entries_ || bytes_ > max_bytes_)) {
    Entry& last = lru_.back();
    bytes_ -= last.cost;
    index_.erase(last.key);
    lru_.pop_back();
    evictions_.fetch_add(1, std::memory_order_relaxed);
  }
}

size_t QueryCache::entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lru_.size();
}

size_t QueryCache::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

}  // namespace dogwatch::trace
