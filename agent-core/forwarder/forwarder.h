#pragma once
// The core's forwarder: every payload from every component goes through Submit into one ordered
// queue per (track, destination), and from there to the intake (or the local intake) with the
// Datadog rules for headers, status codes, retries and backoff.
//
// Guarantees:
//  - Ordered: each destination sends its transactions in Submit order, one at a time; a failed
//    transaction is retried before anything behind it.
//  - Bounded: per destination, the in-memory queue holds at most memory_queue_max_bytes of
//    payload (plus the one being sent) and max_queued_transactions entries; the disk queue holds
//    at most storage_max_bytes split evenly between destinations and never fills the filesystem
//    past storage_max_disk_ratio.
//  - Never lost silently: each transaction ends as exactly one of sent, dropped_<reason>, left on
//    disk for the next run, or (without disk) dropped_shutdown, and every outcome is a counter.
//    Delivery is at-least-once: a send cut off by a crash or by Stop's deadline may repeat.
//  - Durable when acknowledged: with a disk queue, Submit returns only after the transaction's
//    file is fsync'd and renamed into place, so kill -9 after Submit loses nothing.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent-core/forwarder/reply.h"
#include "agent-core/forwarder/transport.h"
#include "dogwatch/core.pb.h"

namespace dogwatch::forwarder {

// A transaction's intake subdomain (EVP proxy: each request names its own, e.g.
// "citestcycle-intake"). The submitter sets it as this header; it is stored with the transaction
// like any header, substituted for `{subdomain}` in the destination's URL at send time and sent on
// as X-Datadog-EVP-Subdomain (what a proxy or test intake in front of Datadog reads). Submit
// refuses a transaction for a `{subdomain}` destination without it.
inline constexpr char kSubdomainHeader[] = "X-Dogwatch-Subdomain";
inline constexpr char kSubdomainPlaceholder[] = "{subdomain}";

// One (intake URL, API key) pair. An empty api_key sends no DD-API-KEY header (local intake). The
// URL may hold `{subdomain}` (see kSubdomainHeader).
struct Destination {
  std::string base_url;
  std::string api_key;
};

struct Options {
  // Per track: the main endpoint plus one copy per additional_endpoints (url, key) pair.
  // Duplicate (url, key) pairs within a track are merged.
  std::map<core::Track, std::vector<Destination>> destinations;

  // forwarder_backoff_base / _max / _factor, forwarder_recovery_interval / _reset.
  absl::Duration backoff_base = absl::Seconds(2);
  absl::Duration backoff_max = absl::Seconds(64);
  double backoff_factor = 2;
  int recovery_interval = 2;
  bool recovery_reset = false;

  // forwarder_retry_queue_payloads_max_size: payload bytes kept in memory, per destination (as in
  // the Datadog Agent, where each domain forwarder has its own retry queue).
  size_t memory_queue_max_bytes = 15 * 1024 * 1024;
  // Entries per destination, memory and disk together: bounds the bookkeeping for tiny payloads.
  size_t max_queued_transactions = 100000;

  // forwarder_storage_path; "" disables the disk queue.
  std::string storage_path;
  // forwarder_storage_max_size_in_bytes: the whole storage folder, split evenly between the
  // destinations; 0 disables the disk queue.
  size_t storage_max_bytes = 0;
  // forwarder_storage_max_disk_ratio: never write when the filesystem is fuller than this.
  double storage_max_disk_ratio = 0.80;
  // forwarder_outdated_file_in_days: files older than this are dropped at Start.
  absl::Duration outdated_file_age = absl::Hours(24 * 10);

  std::string agent_version;            // DD-Agent-Version
  std::string user_agent;               // "" -> "datadog-agent/<agent_version>"
  std::string status_name = "datadog";  // ForwarderStatus.destination ("local-intake" for that)
};

// Name of the directory (under storage_path) holding one destination's disk queue. Derived from a
// hash of the track, URL and key: stable across restarts, and the key never appears in a path.
std::string DestinationDirName(core::Track track, const Destination& destination);

// "***abcd": the only form of an API key that may appear in logs and status.
std::string ApiKeyHint(const std::string& api_key);

class DestinationQueue;  // one per (track, destination); defined in forwarder.cc
struct ForwarderCounters;

class Forwarder {
 public:
  Forwarder(Options options, std::unique_ptr<Transport> transport);
  // Stops with no drain time if Stop was not called.
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // Validates the options, opens the disk queues (replaying transactions a previous run left:
  // corrupt files are counted and removed, outdated ones dropped) and starts one worker per
  // destination. Errors: InvalidArgument for bad options, FailedPrecondition when called twice or
  // when another process holds a storage directory, Internal for unusable storage.
  absl::Status Start();

  // Sends what is queued until everything is delivered or `drain_deadline` has passed, then cuts
  // off sends in progress and joins the workers. With a disk queue, what is left stays on disk for
  // the next Start; without one it is counted as dropped_shutdown. Idempotent.
  void Stop(absl::Duration drain_deadline);

  // Queues one transaction per destination of `track` and returns how many. `headers` are the
  // submitter's (Content-Type, Content-Encoding, ...); the forwarder adds DD-API-KEY (always its
  // own), DD-Agent-Version and User-Agent (unless the submitter set them). When this returns, every
  // counted copy is accepted and, with a disk queue, durable -- except when the disk cannot take it
  // (write error, filesystem past storage_max_disk_ratio, payload bigger than the destination's
  // share): then the copy is kept in memory only and counted stored_in_memory_only, because
  // delivering it beats refusing it. Errors, each counted as
  // rejected_<reason>: FailedPrecondition before Start / after Stop / for a track without
  // destinations; InvalidArgument for an invalid path or header (or one that would break HTTP
  // framing: Host, Content-Length, Transfer-Encoding, Connection, Expect); ResourceExhausted when
  // the payload cannot fit any bound. When only some copies fail, the accepted count is returned.
  //
  // `reply` (optional, sized with DestinationCount(track)) collects the intake's answer to each
  // copy's first attempt; see reply.h. It changes nothing about queueing, ordering or retries. On
  // an error return nothing was queued and the sink is left as is (the caller does not wait).
  absl::StatusOr<int> Submit(core::Track track, std::string path,
                             std::vector<std::pair<std::string, std::string>> headers, std::string body,
                             std::string origin, std::shared_ptr<ReplySink> reply = nullptr);

  // Destinations (after merging duplicates) of `track`; 0 before Start or for a track without any.
  size_t DestinationCount(core::Track track) const;

  // Counters (all present, zero or not): submitted, sent, retried, bytes_sent, requeued_from_disk,
  // dropped_{invalid_api_key,bad_request,too_large,queue_full,disk_full,corrupt_file,outdated,
  // shutdown}, rejected_{invalid,too_large,not_running,no_destination}, spilled_to_disk,
  // reloaded_from_disk, stored_in_memory_only, disk_write_errors, disk_read_errors,
  // disk_partial_files_removed, plus submitted_origin:<origin> (accepted payloads per submitter;
  // the first 32 origins by name, the rest under submitted_origin:other).
  // One row per destination.
  core::ForwarderStatus Status() const;

 private:
  Options options_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<ForwarderCounters> counters_;
  std::map<core::Track, std::vector<std::unique_ptr<DestinationQueue>>> queues_;

  enum State { kNew, kRunning, kStopped };
  std::atomic<State> state_{kNew};
  absl::Mutex lifecycle_mu_;  // serializes Start and Stop

  mutable absl::Mutex origins_mu_;
  std::map<std::string, int64_t> submitted_by_origin_ ABSL_GUARDED_BY(origins_mu_);
};

}  // namespace dogwatch::forwarder
