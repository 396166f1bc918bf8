#pragma once
// Reuse of span meta / metrics storage within a thread.
//
// Every decoded span has a meta and a metrics vector: two heap blocks allocated in the decoder and freed
// when the request's payload is destroyed, 600 of each for a 300-span request, which kept glibc's malloc
// busy beyond its small per-thread caches (~4% of the trace-agent's CPU). The receiver decodes and the
// pipeline finishes a request on the same HTTP thread, so the pipeline hands the emptied vectors back to a
// per-thread pool and the decoder takes them for the next request's spans.
//
// Bounded: at most kMaxPooledMaps vectors of each kind per thread, each with room for at most
// kMaxPooledEntries entries (a larger one is freed as before); what is not pooled is counted.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "trace-agent/model/span.h"

namespace dogwatch::trace::tag_storage {

inline constexpr size_t kMaxPooledMaps = 1024;   // per kind and thread: a 300-span request uses 300
inline constexpr size_t kMaxPooledEntries = 32;  // per map: 1 KiB of meta, 768 bytes of metrics

// Leaves `map` empty with room for at least `entries`, taking a pooled vector of this thread when there
// is one instead of allocating. `map` must be empty.
void Reserve(StringMap* map, size_t entries);
void Reserve(NumberMap* map, size_t entries);

// Empties the meta and metrics of every span of the chunks and pools their storage on this thread (up to
// the bounds). The spans stay valid, with empty maps.
void Recycle(std::vector<TraceChunk>& chunks);

struct Counters {
  uint64_t reused = 0;     // Reserve served from the pool
  uint64_t allocated = 0;  // Reserve allocated (pool empty, or the pooled vector was too small)
  uint64_t pooled = 0;     // vectors given back to a pool
  uint64_t released = 0;   // vectors freed instead: pool full, or more than kMaxPooledEntries entries
};
// Totals over all threads, as of each thread's last Recycle.
Counters GlobalCounters();

}  // namespace dogwatch::trace::tag_storage
