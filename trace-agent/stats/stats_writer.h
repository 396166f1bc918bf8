#pragma once
// Turns a StatsPayload into the request bodies for POST https://trace.agent.<site>/api/v0.2/stats
// (Content-Type: application/msgpack, Content-Encoding: gzip), split as the agent's stats writer does.

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "trace-agent/stats/stats_payload.h"

namespace dogwatch::trace::stats {

// The intake accepts ~8000 entries per compressed payload; the agent stays at 4000 (~1.5 MB).
inline constexpr size_t kMaxEntriesPerPayload = 4000;

// Splits the ClientStatsPayloads that carry `max_entries` grouped stats or more into several (groups dealt
// round-robin, one bucket per time window in each part), then packs client payloads into StatsPayloads of at
// most `max_entries` entries. When more than one StatsPayload results, all are flagged split_payload so the
// backend knows to re-aggregate. Client payloads without any bucket are dropped; `tags` are cleared where
// there is no container ID.
std::vector<StatsPayload> SplitStatsPayload(StatsPayload payload, size_t max_entries = kMaxEntriesPerPayload);

// gzip(msgpack) of one payload (gzip level 1, the agent's BestSpeed).
absl::StatusOr<std::string> EncodeStatsRequestBody(const StatsPayload& payload);

// Both steps: the bodies to POST, in order. Empty when there is nothing to send.
absl::StatusOr<std::vector<std::string>> BuildStatsRequests(StatsPayload payload,
                                                            size_t max_entries = kMaxEntriesPerPayload);

}  // namespace dogwatch::trace::stats
