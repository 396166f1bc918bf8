#include "agent-core/forwarder/forwarder.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <thread>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent-core/forwarder/backoff.h"
#include "agent-core/forwarder/disk_store.h"
#include "agent-core/forwarder/transaction_file.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"

namespace dogwatch::forwarder {

// ---------------------------------------------------------------------------------------------
// Counters

struct ForwarderCounters {
  enum Id {
    kSubmitted,
    kSent,
    kRetried,
    kBytesSent,
    kRequeuedFromDisk,
    kDroppedInvalidApiKey,
    kDroppedBadRequest,
    kDroppedTooLarge,
    kDroppedQueueFull,
    kDroppedDiskFull,
    kDroppedCorruptFile,
    kDroppedOutdated,
    kDroppedShutdown,
    kRejectedInvalid,
    kRejectedTooLarge,
    kRejectedNotRunning,
    kRejectedNoDestination,
    kSpilledToDisk,
    kReloadedFromDisk,
    kStoredInMemoryOnly,
    kDiskWriteErrors,
    kDiskReadErrors,
    kDiskPartialFilesRemoved,
    kCount,
  };
  static constexpr const char* kNames[kCount] = {
      "submitted",
      "sent",
      "retried",
      "bytes_sent",
      "requeued_from_disk",
      "dropped_invalid_api_key",
      "dropped_bad_request",
      "dropped_too_large",
      "dropped_queue_full",
      "dropped_disk_full",
      "dropped_corrupt_file",
      "dropped_outdated",
      "dropped_shutdown",
      "rejected_invalid",
      "rejected_too_large",
      "rejected_not_running",
      "rejected_no_destination",
      "spilled_to_disk",
      "reloaded_from_disk",
      "stored_in_memory_only",
      "disk_write_errors",
      "disk_read_errors",
      "disk_partial_files_removed",
  };

  void Add(Id id, int64_t n = 1) { values[id].fetch_add(n, std::memory_order_relaxed); }

  std::atomic<int64_t> values[kCount] = {};
};

namespace {

constexpr size_t kMaxOrigins = 32;
constexpr size_t kMaxOriginBytes = 64;
constexpr size_t kLoggedBodyBytes = 200;
// No transaction file can legitimately be larger than this: the bound for reading one back.
constexpr size_t kMaxTransactionFileBytes =
    kMaxBodyBytes + kMaxPathBytes + kMaxHeaders * (8 + kMaxHeaderNameBytes + kMaxHeaderValueBytes) + 64;

// Headers that describe the HTTP framing itself; a submitter setting them would corrupt the
// request, so Submit refuses them.
constexpr const char* kFramingHeaders[] = {"Host", "Content-Length", "Transfer-Encoding", "Connection",
                                           "Expect"};

std::string TrackName(core::Track track) {
  switch (track) {
    case core::TRACK_METRICS:
      return "metrics";
    case core::TRACK_TRACES:
      return "traces";
    case core::TRACK_PROCESSES:
      return "processes";
    default:
      return absl::StrCat("track", static_cast<int>(track));
  }
}

uint64_t Fnv1a64(std::string_view data, uint64_t hash = 0xcbf29ce484222325ull) {
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

// Origins come from other processes: keep the counter names short, printable and few.
std::string SanitizeOrigin(const std::string& origin) {
  if (origin.empty()) return "unknown";
  std::string clean = origin.substr(0, kMaxOriginBytes);
  for (char& c : clean) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.';
    if (!ok) c = '_';
  }
  return clean;
}

std::string Truncated(const std::string& text) {
  if (text.size() <= kLoggedBodyBytes) return text;
  return text.substr(0, kLoggedBodyBytes) + "...";
}

// The transaction's subdomain header, or "" without one.
std::string_view SubdomainOf(const TransactionMeta& meta) {
  for (const auto& [name, value] : meta.headers) {
    if (absl::EqualsIgnoreCase(name, kSubdomainHeader)) return value;
  }
  return {};
}

// `base_url` with `{subdomain}` replaced by the transaction's subdomain (validated at Submit).
std::string BaseUrlFor(const std::string& base_url, const TransactionMeta& meta) {
  size_t at = base_url.find(kSubdomainPlaceholder);
  if (at == std::string::npos) return base_url;
  std::string out = base_url;
  out.replace(at, std::strlen(kSubdomainPlaceholder), SubdomainOf(meta));
  return out;
}

// A subdomain is one or more DNS labels: [a-z0-9-] separated by dots, at most 128 bytes.
bool ValidSubdomain(std::string_view subdomain) {
  if (subdomain.empty() || subdomain.size() > 128 || subdomain.front() == '.' || subdomain.back() == '.' ||
      subdomain.front() == '-' || subdomain.find("..") != std::string_view::npos) {
    return false;
  }
  for (char c : subdomain) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  return true;
}

}  // namespace

std::string DestinationDirName(core::Track track, const Destination& destination) {
  uint64_t hash = Fnv1a64("dogwatch-forwarder-v1");
  hash = Fnv1a64(std::string_view("\0", 1), hash);
  hash = Fnv1a64(std::to_string(static_cast<int>(track)), hash);
  hash = Fnv1a64(std::string_view("\0", 1), hash);
  hash = Fnv1a64(destination.base_url, hash);
  hash = Fnv1a64(std::string_view("\0", 1), hash);
  hash = Fnv1a64(destination.api_key, hash);
  return absl::StrFormat("%s-%016x", TrackName(track), hash);
}

std::string ApiKeyHint(const std::string& api_key) {
  // Short keys are invalid anyway; showing 4 of their characters would show most of them.
  if (api_key.size() < 12) return "***";
  return "***" + api_key.substr(api_key.size() - 4);
}

// ---------------------------------------------------------------------------------------------
// One (track, destination): ordered queue, optional disk store, worker thread, circuit breaker.

namespace {

// Immutable once built; shared by the copies of one Submit across destinations.
struct TransactionData {
  TransactionMeta meta;
  std::shared_ptr<const std::string> body;
  size_t accounted_bytes = 0;  // what the memory bound charges: body + path + headers
  // Set when the submitter waits for the intake's answer; never persisted (a transaction read back
  // from disk has no waiter any more).
  std::shared_ptr<ReplySink> reply;
};

size_t AccountedBytes(const TransactionMeta& meta, size_t body_size) {
  size_t bytes = body_size + meta.path.size();
  for (const auto& [name, value] : meta.headers) bytes += name.size() + value.size();
  return bytes;
}

struct Entry {
  uint64_t seq = 0;                             // file name, when file_bytes > 0
  std::shared_ptr<const TransactionData> data;  // null while spilled (only on disk)
  size_t accounted_bytes = 0;
  size_t file_bytes = 0;  // 0: memory only
  uint32_t attempts = 0;
};

// kCancelled: Stop cut the send off; the transaction stays queued, and it says nothing about the
// intake, so neither the retry counter nor the circuit changes.
enum class Outcome { kSent, kDropBadRequest, kDropInvalidApiKey, kDropTooLarge, kRetry, kCancelled };

}  // namespace

class DestinationQueue {
 public:
  DestinationQueue(core::Track track, size_t index, Destination destination, const Options& options,
                   Transport* transport, ForwarderCounters* counters, size_t disk_budget)
      : track_(track),
        index_(index),
        destination_(std::move(destination)),
        key_hint_(ApiKeyHint(destination_.api_key)),
        options_(options),
        transport_(transport),
        counters_(counters),
        disk_budget_(disk_budget),
        backoff_(BackoffOptions{options.backoff_base, options.backoff_max, options.backoff_factor,
                                options.recovery_interval, options.recovery_reset}),
        logger_(log::Get("forwarder")) {}

  ~DestinationQueue() { Join(); }

  // Opens the disk queue and requeues what a previous run left, oldest first. Runs before the
  // worker starts, so nothing else touches the queue yet.
  absl::Status OpenStorage(const std::string& dir);
  void StartWorker() {
    worker_ = std::thread([this] { Run(); });
  }

  absl::Status Enqueue(const std::shared_ptr<const TransactionData>& data);
  // The URL holds `{subdomain}`: every transaction must name one.
  bool NeedsSubdomain() const {
    return destination_.base_url.find(kSubdomainPlaceholder) != std::string::npos;
  }

  // Shutdown, in phases so that all destinations drain in parallel: Close refuses new work and
  // sets the drain deadline; WaitWorkerDone waits for the worker to finish (false on deadline).
  void Close(absl::Time drain_deadline);
  bool WaitWorkerDone(absl::Time deadline);
  void Join() {
    if (worker_.joinable()) worker_.join();
  }
  // After Join: memory-only leftovers are lost and counted; disk-backed ones wait for next Start.
  void AccountLeftovers();

  core::ForwarderDomainStatus Status() const;

 private:
  struct Head {
    uint64_t seq = 0;
    std::shared_ptr<const TransactionData> data;
    size_t file_bytes = 0;
    uint32_t attempts = 0;
  };
  void Run();
  // Blocks until the head may be sent (marking it in flight) or the worker must exit (false).
  bool WaitForHead(Head* head);
  // Reads a spilled head back from disk; false when it could not (dropped or backed off).
  bool ReloadHead(Head* head, absl::BitGenRef random);
  void FinishHead(Outcome outcome, size_t body_bytes, absl::BitGenRef random);
  Outcome Classify(const absl::StatusOr<http::Response>& result);
  std::vector<std::pair<std::string, std::string>> SendHeaders(const TransactionMeta& meta) const;
  absl::StatusOr<std::shared_ptr<const TransactionData>> LoadFromDisk(uint64_t seq);
  // Writes the transaction's file, first evicting the oldest files if the budget needs it.
  // Returns the file size, or 0 when it is kept in memory only.
  size_t TryPersist(uint64_t* seq, const TransactionData& data) ABSL_EXCLUSIVE_LOCKS_REQUIRED(submit_mu_);

  size_t WaitingResidentBytesLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked(size_t index, std::vector<uint64_t>* files) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EnforceBoundsLocked(std::vector<uint64_t>* files) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveFiles(const std::vector<uint64_t>& files);
  void LogLimited(log::RateLimiter& limiter, spdlog::level::level_enum level, const std::string& message);

  const core::Track track_;
  const size_t index_;  // position in the track's destination list (ReplySink index)
  const Destination destination_;
  const std::string key_hint_;
  const Options& options_;
  Transport* const transport_;
  ForwarderCounters* const counters_;
  const size_t disk_budget_;
  const BackoffPolicy backoff_;
  std::shared_ptr<spdlog::logger> logger_;
  std::unique_ptr<DiskStore> store_;  // set before the worker starts, then read-only
  std::thread worker_;

  log::RateLimiter invalid_key_log_{std::chrono::minutes(5)};
  log::RateLimiter retry_log_{std::chrono::seconds(30)};
  log::RateLimiter drop_log_{std::chrono::seconds(10)};
  log::RateLimiter disk_log_{std::chrono::seconds(60)};

  // Serializes Enqueue (sequence numbers, budget decisions and file writes happen in Submit order)
  // without making the worker wait for a submitter's fsync.
  absl::Mutex submit_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(submit_mu_) = 1;

  mutable absl::Mutex mu_;
  absl::CondVar wake_;
  std::deque<Entry> queue_ ABSL_GUARDED_BY(mu_);
  bool in_flight_ ABSL_GUARDED_BY(mu_) = false;  // queue_.front() is being sent by the worker
  size_t resident_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t disk_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t disk_files_ ABSL_GUARDED_BY(mu_) = 0;
  int errors_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time backoff_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time drain_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  bool worker_done_ ABSL_GUARDED_BY(mu_) = false;
};

void DestinationQueue::LogLimited(log::RateLimiter& limiter, spdlog::level::level_enum level,
                                  const std::string& message) {
  uint64_t suppressed = 0;
  if (!limiter.Allow(&suppressed)) return;
  if (suppressed > 0) {
    logger_->log(level, "{} ({} similar messages suppressed)", message, suppressed);
  } else {
    logger_->log(level, "{}", message);
  }
}

absl::Status DestinationQueue::OpenStorage(const std::string& dir) {
  auto store = DiskStore::Open(dir);
  if (!store.ok()) return store.status();
  store_ = std::move(store).value();
  auto listing = store_->List();
  if (!listing.ok()) return listing.status();
  counters_->Add(ForwarderCounters::kDiskPartialFilesRemoved, listing->partial_files_removed);

  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  const int64_t outdated_ms = absl::ToInt64Milliseconds(options_.outdated_file_age);
  std::vector<uint64_t> files_to_remove;
  absl::MutexLock submit_lock(&submit_mu_);
  absl::MutexLock lock(&mu_);
  for (uint64_t seq : listing->sequences) {
    next_seq_ = std::max(next_seq_, seq + 1);
    auto raw = store_->Read(seq, kMaxTransactionFileBytes);
    if (!raw.ok() && !absl::IsDataLoss(raw.status())) {
      // Unreadable for now (permissions, I/O): leave it for a later run rather than delete it.
      counters_->Add(ForwarderCounters::kDiskReadErrors);
      logger_->error("forwarder storage: cannot read {}: {}", DiskStore::FileName(seq),
                     std::string(raw.status().message()));
      continue;
    }
    absl::StatusOr<StoredTransaction> parsed =
        raw.ok() ? ParseTransactionFile(*raw) : absl::StatusOr<StoredTransaction>(raw.status());
    if (parsed.ok() && parsed->meta.track != static_cast<uint8_t>(track_)) {
      parsed = absl::DataLossError("transaction file belongs to another track");
    }
    if (!parsed.ok()) {
      counters_->Add(ForwarderCounters::kDroppedCorruptFile);
      LogLimited(disk_log_, spdlog::level::warn,
                 absl::StrCat("forwarder storage: removing corrupt ", store_->dir(), "/",
                              DiskStore::FileName(seq), ": ", parsed.status().message()));
      files_to_remove.push_back(seq);
      continue;
    }
    if (outdated_ms > 0 && now_ms - parsed->meta.created_unix_ms > outdated_ms) {
      counters_->Add(ForwarderCounters::kDroppedOutdated);
      files_to_remove.push_back(seq);
      continue;
    }
    auto data = std::make_shared<TransactionData>();
    data->meta = std::move(parsed->meta);
    data->body = std::make_shared<const std::string>(std::move(parsed->body));
    data->accounted_bytes = AccountedBytes(data->meta, data->body->size());
    Entry entry;
    entry.seq = seq;
    entry.accounted_bytes = data->accounted_bytes;
    entry.file_bytes = raw->size();
    entry.attempts = data->meta.attempts;
    // The oldest entries are sent first, so they are the ones worth keeping in memory.
    if (resident_bytes_ + entry.accounted_bytes <= options_.memory_queue_max_bytes) {
      entry.data = std::move(data);
      resident_bytes_ += entry.accounted_bytes;
    }
    queued_bytes_ += entry.accounted_bytes;
    disk_bytes_ += entry.file_bytes;
    ++disk_files_;
    queue_.push_back(std::move(entry));
    counters_->Add(ForwarderCounters::kRequeuedFromDisk);
  }
  // The budget may have shrunk since the files were written: keep the newest that fit.
  while (disk_bytes_ > disk_budget_ && !queue_.empty()) {
    EraseLocked(0, &files_to_remove);
    counters_->Add(ForwarderCounters::kDroppedDiskFull);
  }
  EnforceBoundsLocked(&files_to_remove);
  for (uint64_t seq : files_to_remove) store_->Remove(seq);
  if (!queue_.empty()) {
    logger_->info("forwarder: {} transactions ({} bytes) from a previous run queued for {} (key {})",
                  queue_.size(), disk_bytes_, destination_.base_url, key_hint_);
  }
  return absl::OkStatus();
}

size_t DestinationQueue::WaitingResidentBytesLocked() const {
  size_t bytes = resident_bytes_;
  if (in_flight_ && queue_.front().data != nullptr) bytes -= queue_.front().accounted_bytes;
  return bytes;
}

void DestinationQueue::EraseLocked(size_t index, std::vector<uint64_t>* files) {
  Entry& entry = queue_[index];
  if (entry.data != nullptr) resident_bytes_ -= entry.accounted_bytes;
  queued_bytes_ -= entry.accounted_bytes;
  if (entry.file_bytes > 0) {
    disk_bytes_ -= entry.file_bytes;
    --disk_files_;
    files->push_back(entry.seq);
  }
  queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(index));
}

void DestinationQueue::EnforceBoundsLocked(std::vector<uint64_t>* files) {
  // The transaction being sent is outside both bounds: it cannot be dropped mid-send.
  const size_t first = in_flight_ ? 1 : 0;
  const size_t max_bytes = options_.memory_queue_max_bytes;
  if (WaitingResidentBytesLocked() > max_bytes) {
    // Bodies that are also on disk just leave memory, newest first (they are sent last).
    for (size_t i = queue_.size(); i > first && WaitingResidentBytesLocked() > max_bytes; --i) {
      Entry& entry = queue_[i - 1];
      if (entry.file_bytes > 0 && entry.data != nullptr) {
        entry.data.reset();
        resident_bytes_ -= entry.accounted_bytes;
        counters_->Add(ForwarderCounters::kSpilledToDisk);
      }
    }
    // Memory-only transactions have nowhere else to go: drop the oldest, as the Datadog Agent does.
    int dropped = 0;
    for (size_t i = first; i < queue_.size() && WaitingResidentBytesLocked() > max_bytes;) {
      if (queue_[i].file_bytes == 0) {
        EraseLocked(i, files);
        ++dropped;
      } else {
        ++i;
      }
    }
    if (dropped > 0) {
      counters_->Add(ForwarderCounters::kDroppedQueueFull, dropped);
      LogLimited(drop_log_, spdlog::level::warn,
                 absl::StrCat("forwarder: retry queue for ", destination_.base_url, " is full (", max_bytes,
                              " bytes); dropped the ", dropped, " oldest transactions"));
    }
  }
  int dropped = 0;
  while (queue_.size() - first > options_.max_queued_transactions) {
    EraseLocked(first, files);
    ++dropped;
  }
  if (dropped > 0) {
    counters_->Add(ForwarderCounters::kDroppedQueueFull, dropped);
    LogLimited(
        drop_log_, spdlog::level::warn,
        absl::StrCat("forwarder: queue for ", destination_.base_url, " holds the maximum of ",
                     options_.max_queued_transactions, " transactions; dropped the ", dropped, " oldest"));
  }
}

void DestinationQueue::RemoveFiles(const std::vector<uint64_t>& files) {
  for (uint64_t seq : files) store_->Remove(seq);
}

size_t DestinationQueue::TryPersist(uint64_t* seq, const TransactionData& data) {
  const size_t file_size = TransactionFileSize(data.meta, data.body->size());
  auto keep_in_memory = [&](const std::string& why) -> size_t {
    counters_->Add(ForwarderCounters::kStoredInMemoryOnly);
    LogLimited(disk_log_, spdlog::level::warn,
               absl::StrCat("forwarder storage: keeping a transaction for ", destination_.base_url,
                            " in memory only (not crash-safe): ", why));
    return 0;
  };
  if (file_size > disk_budget_) {
    return keep_in_memory(absl::StrCat("its ", file_size, " bytes exceed this destination's ", disk_budget_,
                                       "-byte share of the storage budget"));
  }
  auto headroom = store_->Headroom(options_.storage_max_disk_ratio);
  if (!headroom.ok()) return keep_in_memory(std::string(headroom.status().message()));
  // Filling the disk past the ratio is refused outright rather than made room for: our own old
  // files are not what filled it, and deleting them would lose data without fixing anything.
  if (*headroom < static_cast<int64_t>(file_size)) {
    return keep_in_memory(absl::StrCat("the filesystem is fuller than storage_max_disk_ratio ",
                                       options_.storage_max_disk_ratio));
  }
  std::vector<uint64_t> evicted;
  {
    absl::MutexLock lock(&mu_);
    const size_t pinned = in_flight_ ? queue_.front().file_bytes : 0;
    if (pinned + file_size > disk_budget_) {
      return keep_in_memory("the transaction being sent holds the rest of the storage budget");
    }
    int dropped = 0;
    for (size_t i = in_flight_ ? 1 : 0; disk_bytes_ + file_size > disk_budget_ && i < queue_.size();) {
      if (queue_[i].file_bytes > 0) {
        EraseLocked(i, &evicted);
        ++dropped;
      } else {
        ++i;
      }
    }
    if (dropped > 0) {
      counters_->Add(ForwarderCounters::kDroppedDiskFull, dropped);
      LogLimited(drop_log_, spdlog::level::warn,
                 absl::StrCat("forwarder storage for ", destination_.base_url, " is full (", disk_budget_,
                              " bytes); dropped the ", dropped, " oldest transactions"));
    }
  }
  RemoveFiles(evicted);

  *seq = next_seq_++;
  TransactionMeta meta = data.meta;
  meta.track = static_cast<uint8_t>(track_);
  meta.attempts = 0;
  const std::string prefix = EncodeTransactionPrefix(meta, data.body->size());
  const std::string trailer = EncodeTransactionTrailer(prefix, *data.body);
  if (auto status = store_->Write(*seq, prefix, *data.body, trailer); !status.ok()) {
    counters_->Add(ForwarderCounters::kDiskWriteErrors);
    return keep_in_memory(std::string(status.message()));
  }
  return file_size;
}

absl::Status DestinationQueue::Enqueue(const std::shared_ptr<const TransactionData>& data) {
  absl::MutexLock submit_lock(&submit_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (closed_) {
      counters_->Add(ForwarderCounters::kRejectedNotRunning);
      return absl::FailedPreconditionError("forwarder is stopping");
    }
  }
  Entry entry;
  entry.accounted_bytes = data->accounted_bytes;
  if (store_ != nullptr) entry.file_bytes = TryPersist(&entry.seq, *data);
  if (entry.file_bytes == 0 && entry.accounted_bytes > options_.memory_queue_max_bytes) {
    counters_->Add(ForwarderCounters::kRejectedTooLarge);
    return absl::ResourceExhaustedError(absl::StrCat("payload of ", entry.accounted_bytes,
                                                     " bytes exceeds the ", options_.memory_queue_max_bytes,
                                                     "-byte forwarder queue for ", destination_.base_url));
  }
  std::vector<uint64_t> files_to_remove;
  {
    absl::MutexLock lock(&mu_);
    // Close takes submit_mu_ too, so closed_ cannot have changed since the check above.
    if (entry.file_bytes > 0 &&
        WaitingResidentBytesLocked() + entry.accounted_bytes > options_.memory_queue_max_bytes) {
      counters_->Add(ForwarderCounters::kSpilledToDisk);  // durable already; no room in memory
    } else {
      entry.data = data;
      resident_bytes_ += entry.accounted_bytes;
    }
    queued_bytes_ += entry.accounted_bytes;
    if (entry.file_bytes > 0) {
      disk_bytes_ += entry.file_bytes;
      ++disk_files_;
    }
    // A waiting submitter gets no answer from a destination that is backing off, nor for a copy
    // that only lives on disk (reloading it makes a new transaction without the sink): tell it now
    // rather than let it wait out its timeout.
    if (data->reply != nullptr && (entry.data == nullptr || backoff_until_ > absl::Now())) {
      data->reply->ResolveWithout(index_);
    }
    queue_.push_back(std::move(entry));
    counters_->Add(ForwarderCounters::kSubmitted);
    EnforceBoundsLocked(&files_to_remove);
    wake_.Signal();
  }
  RemoveFiles(files_to_remove);
  return absl::OkStatus();
}

void DestinationQueue::Close(absl::Time drain_deadline) {
  absl::MutexLock submit_lock(&submit_mu_);
  absl::MutexLock lock(&mu_);
  closed_ = true;
  drain_deadline_ = drain_deadline;
  wake_.SignalAll();
}

bool DestinationQueue::WaitWorkerDone(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  if (!worker_.joinable()) return true;
  return mu_.AwaitWithDeadline(absl::Condition(&worker_done_), deadline);
}

void DestinationQueue::AccountLeftovers() {
  absl::MutexLock lock(&mu_);
  int64_t lost = 0;
  std::deque<Entry> on_disk;
  for (Entry& entry : queue_) {
    if (entry.file_bytes == 0) {
      ++lost;
      continue;
    }
    entry.data.reset();  // free the memory; the file is what the next run reads
    on_disk.push_back(std::move(entry));
  }
  queue_ = std::move(on_disk);
  resident_bytes_ = 0;
  queued_bytes_ = 0;
  for (const Entry& entry : queue_) queued_bytes_ += entry.accounted_bytes;
  if (lost > 0) {
    counters_->Add(ForwarderCounters::kDroppedShutdown, lost);
    logger_->warn("forwarder: {} transactions for {} were still queued at shutdown and are lost", lost,
                  destination_.base_url);
  }
  if (!queue_.empty()) {
    logger_->info("forwarder: {} transactions for {} stay on disk for the next start", queue_.size(),
                  destination_.base_url);
  }
}

std::vector<std::pair<std::string, std::string>> DestinationQueue::SendHeaders(
    const TransactionMeta& meta) const {
  std::vector<std::pair<std::string, std::string>> headers;
  headers.reserve(meta.headers.size() + 3);
  if (!destination_.api_key.empty()) headers.emplace_back("DD-API-KEY", destination_.api_key);
  bool has_version = false;
  bool has_user_agent = false;
  for (const auto& header : meta.headers) {
    if (absl::EqualsIgnoreCase(header.first, kSubdomainHeader)) {
      headers.emplace_back("X-Datadog-EVP-Subdomain", header.second);
      continue;
    }
    has_version |= absl::EqualsIgnoreCase(header.first, "DD-Agent-Version");
    has_user_agent |= absl::EqualsIgnoreCase(header.first, "User-Agent");
    headers.push_back(header);
  }
  if (!has_version && !options_.agent_version.empty()) {
    headers.emplace_back("DD-Agent-Version", options_.agent_version);
  }
  if (!has_user_agent) {
    headers.emplace_back("User-Agent", options_.user_agent.empty() ? "datadog-agent/" + options_.agent_version
                                                                   : options_.user_agent);
  }
  return headers;
}

Outcome DestinationQueue::Classify(const absl::StatusOr<http::Response>& result) {
  if (!result.ok()) {
    if (absl::IsCancelled(result.status())) return Outcome::kCancelled;
    LogLimited(retry_log_, spdlog::level::warn,
               absl::StrCat("forwarder: cannot reach ", destination_.base_url, ": ",
                            result.status().message(), "; will retry"));
    return Outcome::kRetry;
  }
  const long status = result->status;
  if (status >= 200 && status < 300) return Outcome::kSent;
  if (status == 403) {
    LogLimited(invalid_key_log_, spdlog::level::err,
               absl::StrCat("forwarder: ", destination_.base_url, " rejected API key ", key_hint_,
                            " (403); dropping its transactions until the key is fixed"));
    return Outcome::kDropInvalidApiKey;
  }
  if (status == 400 || status == 413) {
    LogLimited(drop_log_, spdlog::level::warn,
               absl::StrCat("forwarder: ", destination_.base_url, " answered ", status,
                            status == 413 ? " (payload too large)" : " (bad request)",
                            "; dropping the transaction: ", Truncated(result->body)));
    return status == 413 ? Outcome::kDropTooLarge : Outcome::kDropBadRequest;
  }
  // 404, other 4xx, 5xx and anything unexpected (1xx, 3xx: we never follow redirects) are treated
  // as the intake being unavailable.
  LogLimited(retry_log_, spdlog::level::warn,
             absl::StrCat("forwarder: ", destination_.base_url, " answered ", status, ": ",
                          Truncated(result->body), "; will retry"));
  return Outcome::kRetry;
}

absl::StatusOr<std::shared_ptr<const TransactionData>> DestinationQueue::LoadFromDisk(uint64_t seq) {
  auto raw = store_->Read(seq, kMaxTransactionFileBytes);
  if (!raw.ok()) return raw.status();
  auto parsed = ParseTransactionFile(*raw);
  if (!parsed.ok()) return parsed.status();
  auto data = std::make_shared<TransactionData>();
  data->meta = std::move(parsed->meta);
  data->body = std::make_shared<const std::string>(std::move(parsed->body));
  data->accounted_bytes = AccountedBytes(data->meta, data->body->size());
  return std::shared_ptr<const TransactionData>(std::move(data));
}

bool DestinationQueue::WaitForHead(Head* head) {
  absl::MutexLock lock(&mu_);
  for (;;) {
    const absl::Time now = absl::Now();
    if (closed_ && (queue_.empty() || now >= drain_deadline_)) {
      worker_done_ = true;
      return false;
    }
    // While the circuit is open (backoff) nothing is sent; new transactions just queue.
    if (!queue_.empty() && now >= backoff_until_) break;
    absl::Time wake_at = queue_.empty() ? absl::InfiniteFuture() : backoff_until_;
    if (closed_) wake_at = std::min(wake_at, drain_deadline_);
    wake_.WaitWithDeadline(&mu_, wake_at);
  }
  const Entry& front = queue_.front();
  in_flight_ = true;
  head->seq = front.seq;
  head->data = front.data;
  head->file_bytes = front.file_bytes;
  head->attempts = front.attempts;
  return true;
}

bool DestinationQueue::ReloadHead(Head* head, absl::BitGenRef random) {
  auto loaded = LoadFromDisk(head->seq);
  std::vector<uint64_t> files_to_remove;
  {
    absl::MutexLock lock(&mu_);
    if (loaded.ok()) {
      head->data = *std::move(loaded);
      Entry& front = queue_.front();
      front.data = head->data;
      resident_bytes_ += front.accounted_bytes;
      counters_->Add(ForwarderCounters::kReloadedFromDisk);
      EnforceBoundsLocked(&files_to_remove);  // spills newer bodies if this one needs the room
    } else if (absl::IsDataLoss(loaded.status())) {
      in_flight_ = false;
      counters_->Add(ForwarderCounters::kDroppedCorruptFile);
      EraseLocked(0, &files_to_remove);
      LogLimited(
          disk_log_, spdlog::level::warn,
          absl::StrCat("forwarder storage: dropping unreadable transaction: ", loaded.status().message()));
    } else {
      // Possibly transient (fd exhaustion, I/O error): keep it and try again after a backoff.
      in_flight_ = false;
      counters_->Add(ForwarderCounters::kDiskReadErrors);
      errors_ = backoff_.AfterFailure(errors_);
      backoff_until_ = absl::Now() + backoff_.Delay(errors_, random);
      LogLimited(
          disk_log_, spdlog::level::warn,
          absl::StrCat("forwarder storage: cannot read a queued transaction: ", loaded.status().message()));
    }
  }
  RemoveFiles(files_to_remove);
  return loaded.ok();
}

void DestinationQueue::FinishHead(Outcome outcome, size_t body_bytes, absl::BitGenRef random) {
  std::vector<uint64_t> files_to_remove;
  {
    absl::MutexLock lock(&mu_);
    in_flight_ = false;
    if (outcome == Outcome::kCancelled) {
      if (closed_) return;
      outcome = Outcome::kRetry;  // not our shutdown: a failure like any other, with backoff
    }
    switch (outcome) {
      case Outcome::kSent:
        counters_->Add(ForwarderCounters::kSent);
        counters_->Add(ForwarderCounters::kBytesSent, static_cast<int64_t>(body_bytes));
        break;
      case Outcome::kDropBadRequest:
        counters_->Add(ForwarderCounters::kDroppedBadRequest);
        break;
      case Outcome::kDropInvalidApiKey:
        counters_->Add(ForwarderCounters::kDroppedInvalidApiKey);
        break;
      case Outcome::kDropTooLarge:
        counters_->Add(ForwarderCounters::kDroppedTooLarge);
        break;
      case Outcome::kRetry:
        counters_->Add(ForwarderCounters::kRetried);
        break;
      case Outcome::kCancelled:
        break;
    }
    // Any answer other than "retry" means the intake is up, which is what the circuit tracks. As in
    // the Datadog Agent, recovery also waits out the (shorter) delay of the remaining error count.
    errors_ = outcome == Outcome::kRetry ? backoff_.AfterFailure(errors_) : backoff_.AfterSuccess(errors_);
    backoff_until_ = errors_ > 0 ? absl::Now() + backoff_.Delay(errors_, random) : absl::InfinitePast();
    if (outcome == Outcome::kRetry) {
      ++queue_.front().attempts;  // stays at the head: order is kept
    } else {
      EraseLocked(0, &files_to_remove);
    }
  }
  RemoveFiles(files_to_remove);
}

void DestinationQueue::Run() {
  absl::BitGen random;
  Head head;
  while (WaitForHead(&head)) {
    if (head.data == nullptr && !ReloadHead(&head, random)) continue;
    absl::StatusOr<http::Response> result =
        transport_->Send(BaseUrlFor(destination_.base_url, head.data->meta), head.data->meta.path,
                         SendHeaders(head.data->meta), *head.data->body);
    const Outcome outcome = Classify(result);
    if (outcome == Outcome::kRetry && head.file_bytes > 0) {
      // Only informational (it survives restarts in the file); failing to record it is harmless.
      (void)store_->UpdateAttempts(head.seq, head.attempts + 1);
    }
    FinishHead(outcome, head.data->body->size(), random);
    // The waiter wakes only now that FinishHead has recorded this answer (a backoff after a
    // failure): a Submit it makes next sees the destination as it is, not as it was before the send.
    if (head.data->reply != nullptr) {
      // Only the first attempt matters to the waiter (see reply.h); later ones resolve nothing.
      // The transport may already have cut the body (its own limit); Resolve cuts it to the sink's.
      if (result.ok()) {
        head.data->reply->Resolve(index_, IntakeReply{destination_.base_url, static_cast<int>(result->status),
                                                      std::move(result->body), result->body_truncated});
      } else {
        head.data->reply->ResolveWithout(index_);
      }
    }
    head = Head();
  }
}

core::ForwarderDomainStatus DestinationQueue::Status() const {
  core::ForwarderDomainStatus row;
  row.set_url(destination_.base_url);
  row.set_api_key_hint(key_hint_);
  absl::MutexLock lock(&mu_);
  row.set_queued_transactions(static_cast<int64_t>(queue_.size()));
  row.set_queued_bytes(static_cast<int64_t>(queued_bytes_));
  row.set_on_disk_transactions(static_cast<int64_t>(disk_files_));
  row.set_on_disk_bytes(static_cast<int64_t>(disk_bytes_));
  row.set_consecutive_errors(errors_);
  if (backoff_until_ > absl::Now()) row.set_backoff_until_unix_ms(absl::ToUnixMillis(backoff_until_));
  return row;
}

// ---------------------------------------------------------------------------------------------
// Forwarder

Forwarder::Forwarder(Options options, std::unique_ptr<Transport> transport)
    : options_(std::move(options)),
      transport_(std::move(transport)),
      counters_(std::make_unique<ForwarderCounters>()) {}

Forwarder::~Forwarder() { Stop(absl::ZeroDuration()); }

absl::Status Forwarder::Start() {
  absl::MutexLock lifecycle(&lifecycle_mu_);
  if (state_.load() != kNew) return absl::FailedPreconditionError("forwarder already started");
  if (transport_ == nullptr) return absl::InvalidArgumentError("forwarder: no transport");
  RETURN_IF_ERROR(BackoffPolicy::Validate(BackoffOptions{options_.backoff_base, options_.backoff_max,
                                                         options_.backoff_factor, options_.recovery_interval,
                                                         options_.recovery_reset}));
  if (options_.memory_queue_max_bytes == 0) {
    return absl::InvalidArgumentError("forwarder_retry_queue_payloads_max_size must be > 0");
  }
  if (options_.max_queued_transactions == 0) {
    return absl::InvalidArgumentError("forwarder: max_queued_transactions must be > 0");
  }
  const bool use_disk = !options_.storage_path.empty() && options_.storage_max_bytes > 0;
  if (use_disk && !(options_.storage_max_disk_ratio > 0 && options_.storage_max_disk_ratio <= 1)) {
    return absl::InvalidArgumentError("forwarder_storage_max_disk_ratio must be in (0, 1]");
  }

  // Merge duplicate (url, key) pairs: two queues would share one directory and send twice.
  std::map<core::Track, std::vector<Destination>> unique;
  size_t queue_count = 0;
  for (const auto& [track, destinations] : options_.destinations) {
    if (track == core::TRACK_UNSPECIFIED || !core::Track_IsValid(track)) {
      return absl::InvalidArgumentError(absl::StrCat("forwarder: invalid track ", track));
    }
    for (const Destination& destination : destinations) {
      if (destination.base_url.empty() || destination.base_url.find_first_of(" \r\n") != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat("forwarder: invalid intake URL '",
                                                       destination.base_url, "' for ", TrackName(track)));
      }
      if (destination.api_key.find_first_of("\r\n") != std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("forwarder: API key ", ApiKeyHint(destination.api_key), " contains a line break"));
      }
      auto& list = unique[track];
      const bool duplicate = std::any_of(list.begin(), list.end(), [&](const Destination& d) {
        return d.base_url == destination.base_url && d.api_key == destination.api_key;
      });
      if (duplicate) continue;
      list.push_back(destination);
      ++queue_count;
    }
  }

  const size_t disk_budget = use_disk && queue_count > 0 ? options_.storage_max_bytes / queue_count : 0;
  std::map<core::Track, std::vector<std::unique_ptr<DestinationQueue>>> queues;
  for (const auto& [track, destinations] : unique) {
    for (size_t index = 0; index < destinations.size(); ++index) {
      const Destination& destination = destinations[index];
      auto queue = std::make_unique<DestinationQueue>(track, index, destination, options_, transport_.get(),
                                                      counters_.get(), disk_budget);
      if (use_disk) {
        const std::string dir = options_.storage_path + "/" + DestinationDirName(track, destination);
        RETURN_IF_ERROR(queue->OpenStorage(dir));
      }
      queues[track].push_back(std::move(queue));
    }
  }
  queues_ = std::move(queues);
  for (auto& [track, list] : queues_) {
    for (auto& queue : list) queue->StartWorker();
  }
  log::Get("forwarder")
      ->info("forwarder started: {} destinations, disk queue {}", queue_count,
             use_disk ? options_.storage_path : std::string("off"));
  state_.store(kRunning);
  return absl::OkStatus();
}

void Forwarder::Stop(absl::Duration drain_deadline) {
  absl::MutexLock lifecycle(&lifecycle_mu_);
  if (state_.exchange(kStopped) != kRunning) return;
  const absl::Time deadline = absl::Now() + std::max(drain_deadline, absl::ZeroDuration());
  // Close every queue first so all destinations drain in parallel against the same deadline.
  for (auto& [track, list] : queues_) {
    for (auto& queue : list) queue->Close(deadline);
  }
  bool drained = true;
  for (auto& [track, list] : queues_) {
    for (auto& queue : list) drained = queue->WaitWorkerDone(deadline) && drained;
  }
  // Sends still running past the deadline are cut off; they stay queued (on disk, or counted).
  if (!drained) transport_->CancelInFlight();
  for (auto& [track, list] : queues_) {
    for (auto& queue : list) {
      queue->Join();
      queue->AccountLeftovers();
    }
  }
}

absl::StatusOr<int> Forwarder::Submit(core::Track track, std::string path,
                                      std::vector<std::pair<std::string, std::string>> headers,
                                      std::string body, std::string origin,
                                      std::shared_ptr<ReplySink> reply) {
  if (state_.load() != kRunning) {
    counters_->Add(ForwarderCounters::kRejectedNotRunning);
    return absl::FailedPreconditionError("forwarder is not running");
  }
  auto found = queues_.find(track);
  if (found == queues_.end() || found->second.empty()) {
    counters_->Add(ForwarderCounters::kRejectedNoDestination);
    return absl::FailedPreconditionError(
        absl::StrCat("forwarder: no destination configured for track ", TrackName(track)));
  }
  auto data = std::make_shared<TransactionData>();
  data->meta.track = static_cast<uint8_t>(track);
  data->meta.created_unix_ms = absl::ToUnixMillis(absl::Now());
  data->meta.path = std::move(path);
  data->meta.headers.reserve(headers.size());
  for (auto& header : headers) {
    for (const char* framing : kFramingHeaders) {
      if (absl::EqualsIgnoreCase(header.first, framing)) {
        counters_->Add(ForwarderCounters::kRejectedInvalid);
        return absl::InvalidArgumentError(
            absl::StrCat("forwarder: header '", header.first, "' is set by the HTTP client"));
      }
    }
    // The API key is the forwarder's business alone: a submitter's value is never sent or stored.
    if (absl::EqualsIgnoreCase(header.first, "DD-API-KEY")) continue;
    data->meta.headers.push_back(std::move(header));
  }
  if (auto status = ValidateTransactionMeta(data->meta); !status.ok()) {
    counters_->Add(ForwarderCounters::kRejectedInvalid);
    return absl::InvalidArgumentError(absl::StrCat("forwarder: ", status.message()));
  }
  if (body.size() > kMaxBodyBytes) {
    counters_->Add(ForwarderCounters::kRejectedTooLarge);
    return absl::ResourceExhaustedError(
        absl::StrCat("forwarder: payload of ", body.size(), " bytes exceeds the limit of ", kMaxBodyBytes));
  }
  const bool any_subdomain_destination = std::any_of(
      found->second.begin(), found->second.end(), [](const auto& queue) { return queue->NeedsSubdomain(); });
  const std::string_view subdomain = SubdomainOf(data->meta);
  if (!subdomain.empty() && !ValidSubdomain(subdomain)) {
    counters_->Add(ForwarderCounters::kRejectedInvalid);
    return absl::InvalidArgumentError("forwarder: invalid subdomain (DNS labels of a-z, 0-9 and '-' only)");
  }
  if (any_subdomain_destination && subdomain.empty()) {
    counters_->Add(ForwarderCounters::kRejectedInvalid);
    return absl::InvalidArgumentError(
        absl::StrCat("forwarder: ", TrackName(track), " destinations need a subdomain for each payload"));
  }
  data->accounted_bytes = AccountedBytes(data->meta, body.size());
  data->body = std::make_shared<const std::string>(std::move(body));
  data->reply = reply;
  const std::shared_ptr<const TransactionData> shared = std::move(data);

  int accepted = 0;
  absl::Status first_error;
  for (size_t i = 0; i < found->second.size(); ++i) {
    absl::Status status = found->second[i]->Enqueue(shared);
    if (status.ok()) {
      ++accepted;
    } else {
      if (reply != nullptr) reply->ResolveWithout(i);
      if (first_error.ok()) first_error = std::move(status);
    }
  }
  if (accepted == 0) return first_error;

  const std::string origin_name = SanitizeOrigin(origin);
  absl::MutexLock lock(&origins_mu_);
  auto it = submitted_by_origin_.find(origin_name);
  if (it == submitted_by_origin_.end() && submitted_by_origin_.size() >= kMaxOrigins) {
    it = submitted_by_origin_.try_emplace("other", 0).first;
  } else if (it == submitted_by_origin_.end()) {
    it = submitted_by_origin_.emplace(origin_name, 0).first;
  }
  ++it->second;
  return accepted;
}

size_t Forwarder::DestinationCount(core::Track track) const {
  // queues_ is only written by Start before the state becomes running.
  if (state_.load() == kNew) return 0;
  auto found = queues_.find(track);
  return found == queues_.end() ? 0 : found->second.size();
}

core::ForwarderStatus Forwarder::Status() const {
  core::ForwarderStatus status;
  status.set_destination(options_.status_name);
  auto& counters = *status.mutable_counters();
  for (int id = 0; id < ForwarderCounters::kCount; ++id) {
    counters[ForwarderCounters::kNames[id]] = counters_->values[id].load(std::memory_order_relaxed);
  }
  {
    absl::MutexLock lock(&origins_mu_);
    for (const auto& [origin, count] : submitted_by_origin_) {
      counters["submitted_origin:" + origin] = count;
    }
  }
  // queues_ is only written by Start before the state becomes running.
  if (state_.load() != kNew) {
    for (const auto& [track, list] : queues_) {
      for (const auto& queue : list) *status.add_domains() = queue->Status();
    }
  }
  return status;
}

}  // namespace dogwatch::forwarder
