#pragma once
// The files of one destination's on-disk queue: <dir>/<16 hex digits of the sequence>.txn.
//
// A file is created as .tmp-<seq>, fsync'd, renamed into place and the directory fsync'd, so a
// visible .txn file is always complete; a crash mid-write leaves only a .tmp- file, which the next
// Open-er removes. An exclusive flock on <dir>/.lock keeps two processes (a restarted agent racing
// its predecessor, two agents sharing run_path) from sending -- and deleting -- the same files.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dogwatch::forwarder {

class DiskStore {
 public:
  // Creates `dir` (mode 0700) if needed and locks it. FailedPrecondition when another live
  // process holds the lock.
  static absl::StatusOr<std::unique_ptr<DiskStore>> Open(const std::string& dir);
  ~DiskStore();
  DiskStore(const DiskStore&) = delete;
  DiskStore& operator=(const DiskStore&) = delete;

  struct Listing {
    std::vector<uint64_t> sequences;  // ascending
    int partial_files_removed = 0;    // .tmp- leftovers of an interrupted write
  };
  // Lists the queue's files in order. Files with other names are left alone.
  absl::StatusOr<Listing> List();

  // Durably writes prefix + body + trailer as the file for `seq`.
  absl::Status Write(uint64_t seq, std::string_view prefix, std::string_view body, std::string_view trailer);

  // Reads the whole file; DataLoss when it is larger than max_bytes (it cannot be ours).
  absl::StatusOr<std::string> Read(uint64_t seq, size_t max_bytes);

  // Best effort, not fsync'd: losing an attempt count in a crash only makes it look lower.
  absl::Status UpdateAttempts(uint64_t seq, uint32_t attempts);

  // Best effort: a file that cannot be removed is sent again after a restart (at-least-once).
  void Remove(uint64_t seq);

  // Bytes that may still be written before the filesystem is fuller than max_disk_ratio
  // (forwarder_storage_max_disk_ratio); negative when already past it.
  absl::StatusOr<int64_t> Headroom(double max_disk_ratio) const;

  const std::string& dir() const { return dir_; }
  static std::string FileName(uint64_t seq);

 private:
  DiskStore(std::string dir, int dir_fd, int lock_fd);

  std::string dir_;
  int dir_fd_ = -1;
  int lock_fd_ = -1;
};

}  // namespace dogwatch::forwarder
