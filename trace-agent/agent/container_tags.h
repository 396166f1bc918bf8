#pragma once
// Container tags for traces: a TraceProcessor in front of the pipeline that resolves each
// payload's container id (from Datadog-Container-ID, Datadog-Entity-ID or the unix peer's cgroup,
// as the receiver found it) to the core tagger's tags and attaches them as the TracerPayload tag
// `_dd.tags.container`, as the Datadog trace-agent does.
//
// Lookups go over IPC to the core, so answers are cached: bounded (LRU), with a TTL (containers
// come and go, their tags rarely change), negative answers included, and a failed lookup cached
// briefly so an unreachable core costs one call per container per few seconds, not one per payload.

#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "trace-agent/receiver/receiver.h"

namespace dogwatch::trace {

inline constexpr std::string_view kContainerTagsKey = "_dd.tags.container";

class ContainerTagCache {
 public:
  // Asks the core; called without the cache lock held.
  using Lookup = std::function<absl::StatusOr<std::vector<std::string>>(const std::string& container_id)>;
  struct Options {
    size_t max_entries = 1024;
    std::chrono::seconds ttl{60};
    std::chrono::seconds error_ttl{5};
  };
  ContainerTagCache(Options options, Lookup lookup);

  // "tag1,tag2" (sorted as the tagger returns them), "" for none.
  std::string TagsFor(const std::string& container_id);
  std::map<std::string, int64_t> Counters() const;

 private:
  struct Entry {
    std::string joined;
    std::chrono::steady_clock::time_point expires;
    std::list<std::string>::iterator lru;
  };
  const Options options_;
  const Lookup lookup_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;
  int64_t hits_ = 0, misses_ = 0, errors_ = 0, evictions_ = 0;
};

class ContainerTaggingProcessor final : public TraceProcessor {
 public:
  ContainerTaggingProcessor(TraceProcessor* next, ContainerTagCache* cache) : next_(next), cache_(cache) {}
  void Process(TracerPayload payload, const RequestContext& context) override;
  absl::Status ProcessClientStats(std::string_view body, const RequestContext& context) override {
    return next_->ProcessClientStats(body, context);
  }
  std::string RateByServiceJson() override { return next_->RateByServiceJson(); }

 private:
  TraceProcessor* next_;
  ContainerTagCache* cache_;
};

}  // namespace dogwatch::trace
