#include "trace-agent/model/tag_storage.h"

#include <atomic>

namespace dogwatch::trace::tag_storage {
namespace {

struct ThreadPool {
  std::vector<StringMap> string_maps;
  std::vector<NumberMap> number_maps;
  Counters pending;  // published to the totals at the next Recycle: one atomic add per request
};

thread_local ThreadPool pool;

std::atomic<uint64_t> total_reused{0};
std::atomic<uint64_t> total_allocated{0};
std::atomic<uint64_t> total_pooled{0};
std::atomic<uint64_t> total_released{0};

// Capacities are rounded up to a multiple of this many entries, so that pooled maps of spans with a few
// tags more or less are interchangeable (a span's meta of 12 or 14 entries both come out as 16).
constexpr size_t kEntryGranule = 8;

template <typename Map>
void Take(std::vector<Map>& free_maps, Map* map, size_t entries) {
  if (map->capacity() >= entries) return;
  if (!free_maps.empty() && free_maps.back().capacity() >= entries) {
    *map = std::move(free_maps.back());
    free_maps.pop_back();
    ++pool.pending.reused;
    return;
  }
  // Pool empty, or its next map too small: that one stays for a smaller request.
  ++pool.pending.allocated;
  map->reserve((entries + kEntryGranule - 1) / kEntryGranule * kEntryGranule);
}

template <typename Map>
void Give(std::vector<Map>& free_maps, Map& map) {
  if (map.capacity() == 0) return;
  map.clear();  // frees the strings a stage made owned
  if (map.capacity() > kMaxPooledEntries || free_maps.size() >= kMaxPooledMaps) {
    ++pool.pending.released;
    Map().swap(map);
    return;
  }
  if (free_maps.capacity() == 0) free_maps.reserve(kMaxPooledMaps);
  free_maps.push_back(std::move(map));
  ++pool.pending.pooled;
}

}  // namespace

void Reserve(StringMap* map, size_t entries) { Take(pool.string_maps, map, entries); }
void Reserve(NumberMap* map, size_t entries) { Take(pool.number_maps, map, entries); }

void Recycle(std::vector<TraceChunk>& chunks) {
  for (TraceChunk& chunk : chunks) {
    for (Span& span : chunk.spans) {
      Give(pool.string_maps, span.meta);
      Give(pool.number_maps, span.metrics);
    }
  }
  Counters& c = pool.pending;
  total_reused.fetch_add(c.reused, std::memory_order_relaxed);
  total_allocated.fetch_add(c.allocated, std::memory_order_relaxed);
  total_pooled.fetch_add(c.pooled, std::memory_order_relaxed);
  total_released.fetch_add(c.released, std::memory_order_relaxed);
  c = Counters();
}

Counters GlobalCounters() {
  Counters c;
  c.reused = total_reused.load(std::memory_order_relaxed);
  c.allocated = total_allocated.load(std::memory_order_relaxed);
  c.pooled = total_pooled.load(std::memory_order_relaxed);
  c.released = total_released.load(std::memory_order_relaxed);
  return c;
}

}  // namespace dogwatch::trace::tag_storage
