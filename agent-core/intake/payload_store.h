#pragma once
// On-disk store of received payloads: one file per payload (metadata + raw body) written
// atomically, with the total size and count bounded by evicting the oldest. Sequence numbers keep
// increasing across restarts. Thread-safe.
//
// File layout (all little-endian):
//   "DWINTAKE" | u32 format version (1) | u32 metadata length | metadata JSON | raw body
// named p-<seq, 20 digits>.dwp. A "sequence" file holds the next sequence number; between clean
// shutdowns it is kept a block ahead, so a crash can skip numbers but never reuse them.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dogwatch::intake {

struct PayloadMeta {
  uint64_t seq = 0;
  int64_t received_unix_ms = 0;
  std::string method;
  std::string path;
  std::string content_type;
  std::string content_encoding;
  std::string api_key_hint;   // last 4 characters of the API key, or empty
  uint64_t bytes = 0;         // raw body size as received
  std::string decode_status;  // "ok" or "error"
  std::string decode_error;   // why decoding failed, when it did
  // Request headers as received, except the API key (bounded in count and size).
  std::vector<std::pair<std::string, std::string>> headers;
};

// Metadata as a JSON object, the shape the inspection endpoint lists.
std::string PayloadMetaToJson(const PayloadMeta& meta);

struct PayloadStoreOptions {
  std::string dir;
  size_t max_bytes = 64 * 1024 * 1024;  // sum of file sizes
  size_t max_payloads = 100000;
};

struct PayloadStoreStats {
  int64_t stored_payloads = 0;
  int64_t stored_bytes = 0;
  int64_t evicted_payloads = 0;
  int64_t evicted_bytes = 0;
  int64_t write_errors = 0;
  int64_t load_errors = 0;  // unreadable or corrupt files found (and removed) at Open
};

class PayloadStore {
 public:
  explicit PayloadStore(PayloadStoreOptions options);
  ~PayloadStore();  // records the exact next sequence number for the next Open

  PayloadStore(const PayloadStore&) = delete;
  PayloadStore& operator=(const PayloadStore&) = delete;

  // Creates the directory, removes leftovers of interrupted writes, indexes the stored payloads
  // (evicting beyond the bounds) and restores the sequence.
  absl::Status Open();

  // Assigns the next sequence number and receive time to `meta`, writes the payload and evicts the
  // oldest payloads beyond the bounds (possibly this one, when it alone is too large).
  absl::StatusOr<uint64_t> Add(PayloadMeta meta, std::string_view body);

  struct Query {
    std::string path_prefix;  // empty: all paths
    uint64_t since_seq = 0;   // only payloads with seq > since_seq
    size_t limit = 100;
  };
  std::vector<PayloadMeta> List(const Query& query) const;

  absl::StatusOr<PayloadMeta> Meta(uint64_t seq) const;
  // Metadata and raw body; NotFound once evicted.
  absl::StatusOr<std::pair<PayloadMeta, std::string>> Read(uint64_t seq) const;

  // Removes every stored payload (the sequence keeps counting).
  absl::Status Clear();

  PayloadStoreStats stats() const;
  uint64_t next_seq() const;

 private:
  struct Entry {
    PayloadMeta meta;
    uint64_t file_bytes = 0;
  };

  std::string PayloadFile(uint64_t seq) const;
  absl::Status WriteSequenceFile(uint64_t value);
  absl::Status ReserveSequences();  // requires mu_
  void EvictLocked();               // requires mu_
  void RemoveFrontLocked(bool count_as_evicted);

  const PayloadStoreOptions options_;
  mutable std::mutex mu_;
  std::deque<Entry> entries_;  // ascending seq
  uint64_t total_bytes_ = 0;
  uint64_t next_seq_ = 1;
  uint64_t reserved_until_ = 0;  // the sequence file says at least this
  bool open_ = false;
  PayloadStoreStats stats_;
};

}  // namespace dogwatch::intake
