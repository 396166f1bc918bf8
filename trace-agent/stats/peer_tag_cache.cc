#include "trace-agent/stats/peer_tag_cache.h"

#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"

namespace dogwatch::trace::stats {
namespace {

// A string's heap block and bookkeeping, counted against max_bytes beside its characters.
constexpr size_t kStringOverhead = 48;

absl::string_view A(std::string_view s) { return absl::string_view(s.data(), s.size()); }

uint64_t Mix(uint64_t h, uint64_t x) {
  h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

uint64_t RawPairsHash(std::span<const PeerTagMatch> matches) {
  uint64_t h = matches.size();
  for (const PeerTagMatch& m : matches) {
    h = Mix(h, m.key);
    h = Mix(h, absl::Hash<absl::string_view>{}(A(m.value)));
  }
  return h;
}

}  // namespace

uint64_t PeerTagsGroupHash(std::span<const std::string> sorted_tags) {
  if (sorted_tags.empty()) return 0;
  uint64_t h = sorted_tags.size();
  for (const std::string& t : sorted_tags) h = Mix(h, absl::Hash<absl::string_view>{}(A(t)));
  return h == 0 ? 1 : h;
}

PeerTagSetCache::PeerTagSetCache(const PeerTagMatcher* matcher, Limits limits)
    : matcher_(matcher), limits_(limits) {}

bool PeerTagSetCache::Same(const Set& set, std::span<const PeerTagMatch> matches) {
  if (set.keys.size() != matches.size()) return false;
  for (size_t i = 0; i < matches.size(); ++i) {
    if (set.keys[i] != matches[i].key || set.values[i] != matches[i].value) return false;
  }
  return true;
}

PeerTagSetCache::Tags PeerTagSetCache::Get(std::span<const PeerTagMatch> matches) {
  if (matches.empty()) return {};
  // A service's client spans cycle through a few peer sets (its database, its HTTP peers): the sets
  // returned last are compared first, which spares hashing every value and probing the map.
  for (const Set* recent : recent_) {
    if (recent && Same(*recent, matches)) {
      ++counters_.hits;
      return {recent->tags, recent->hash};
    }
  }
  const uint64_t raw_hash = RawPairsHash(matches);
  auto it = sets_.find(raw_hash);
  if (it != sets_.end() && Same(*it->second, matches)) {
    ++counters_.hits;
    Remember(it->second.get());
    return {it->second->tags, it->second->hash};
  }
  size_t bytes = 0;
  for (const PeerTagMatch& m : matches) {
    // The value, and its formatted string (key, ':', value; quantizing only shortens IP-like values
    // to "blocked-ip-address", which the overhead covers).
    bytes += 2 * (m.value.size() + kStringOverhead) + matcher_->KeyName(m.key).size() + 1;
  }
  if (it != sets_.end() || sets_.size() >= limits_.max_sets || counters_.bytes + bytes > limits_.max_bytes) {
    refused_ = true;
    ++counters_.uncached;
    const size_t n = matcher_->Format(matches, &scratch_);
    const std::span<const std::string> tags(scratch_.data(), n);
    return {tags, PeerTagsGroupHash(tags)};
  }
  auto set = std::make_unique<Set>();
  set->keys.reserve(matches.size());
  set->values.reserve(matches.size());
  for (const PeerTagMatch& m : matches) {
    set->keys.push_back(m.key);
    set->values.emplace_back(m.value);
  }
  const size_t n = matcher_->Format(matches, &set->tags);
  set->tags.resize(n);
  set->hash = PeerTagsGroupHash(set->tags);
  ++counters_.misses;
  counters_.bytes += bytes;
  const Set& stored = *sets_.emplace(raw_hash, std::move(set)).first->second;
  Remember(&stored);
  counters_.sets = sets_.size();
  return {stored.tags, stored.hash};
}

void PeerTagSetCache::Remember(const Set* set) {
  // Most recent first; the oldest is forgotten.
  for (size_t i = recent_.size() - 1; i > 0; --i) recent_[i] = recent_[i - 1];
  recent_[0] = set;
}

void PeerTagSetCache::ResetIfFull() {
  if (!refused_) return;
  sets_.clear();
  recent_.fill(nullptr);
  refused_ = false;
  ++counters_.resets;
  counters_.sets = 0;
  counters_.bytes = 0;
}

}  // namespace dogwatch::trace::stats
