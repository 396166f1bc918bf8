#include "trace-agent/agent/container_tags.h"

#include "common/strings/strings.h"

namespace dogwatch::trace {

ContainerTagCache::ContainerTagCache(Options options, Lookup lookup)
    : options_(options), lookup_(std::move(lookup)) {}

std::string ContainerTagCache::TagsFor(const std::string& container_id) {
  if (container_id.empty()) return "";
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(container_id);
    if (it != entries_.end() && it->second.expires > now) {
      ++hits_;
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      return it->second.joined;
    }
    ++misses_;
  }
  absl::StatusOr<std::vector<std::string>> tags = lookup_(container_id);
  std::string joined = tags.ok() ? strings::Join(*tags, ",") : std::string();
  const auto expires = now + (tags.ok() ? options_.ttl : options_.error_ttl);
  std::lock_guard<std::mutex> lock(mu_);
  if (!tags.ok()) ++errors_;
  auto it = entries_.find(container_id);
  if (it != entries_.end()) {
    it->second.joined = joined;
    it->second.expires = expires;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return joined;
  }
  while (entries_.size() >= options_.max_entries && !lru_.empty()) {
    entries_.erase(lru_.back());
    lru_.pop_back();
    ++evictions_;
  }
  lru_.push_front(container_id);
  entries_.emplace(container_id, Entry{joined, expires, lru_.begin()});
  return joined;
}

std::map<std::string, int64_t> ContainerTagCache::Counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {{"container_tags_cache_hits", hits_},
          {"container_tags_cache_misses", misses_},
          {"container_tags_lookup_errors", errors_},
          {"container_tags_cache_evictions", evictions_},
          {"container_tags_cache_entries", static_cast<int64_t>(entries_.size())}};
}

void ContainerTaggingProcessor::Process(TracerPayload payload, const RequestContext& context) {
  const std::string& container_id =
      payload.container_id.empty() ? context.container_id : payload.container_id;
  std::string tags = cache_->TagsFor(container_id);
  if (!tags.empty()) Set(payload.tags, kContainerTagsKey, std::move(tags));
  next_->Process(std::move(payload), context);
}

}  // namespace dogwatch::trace
