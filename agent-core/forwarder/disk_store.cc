#include "agent-core/forwarder/disk_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent-core/forwarder/transaction_file.h"

namespace dogwatch::forwarder {
namespace {

constexpr char kSuffix[] = ".txn";
constexpr char kTempPrefix[] = ".tmp-";
constexpr size_t kSuffixBytes = sizeof(kSuffix) - 1;
constexpr size_t kTempPrefixBytes = sizeof(kTempPrefix) - 1;
constexpr size_t kSequenceDigits = 16;

absl::Status ErrnoError(const char* what, const std::string& path, int error) {
  const std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(error));
  if (error == ENOSPC || error == EDQUOT) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

// Writes all of the iovecs, resuming after short writes and EINTR.
bool WriteAll(int fd, iovec* parts, int count) {
  while (count > 0) {
    const ssize_t written = ::writev(fd, parts, count);
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    size_t left = static_cast<size_t>(written);
    while (count > 0 && left >= parts->iov_len) {
      left -= parts->iov_len;
      ++parts;
      --count;
    }
    if (count > 0) {
      parts->iov_base = static_cast<char*>(parts->iov_base) + left;
      parts->iov_len -= left;
    }
  }
  return true;
}

}  // namespace

DiskStore::DiskStore(std::string dir, int dir_fd, int lock_fd)
    : dir_(std::move(dir)), dir_fd_(dir_fd), lock_fd_(lock_fd) {}

DiskStore::~DiskStore() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // closing releases the flock
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

absl::StatusOr<std::unique_ptr<DiskStore>> DiskStore::Open(const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(dir).parent_path(), error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", error.message()));
  }
  // Payloads can carry host and process details: only the agent's user may read them.
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoError("mkdir", dir, errno);
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return ErrnoError("open", dir, errno);
  const int lock_fd = ::openat(dir_fd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) {
    const int saved = errno;
    ::close(dir_fd);
    return ErrnoError("open lock file in", dir, saved);
  }
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    const int saved = errno;
    ::close(lock_fd);
    ::close(dir_fd);
    if (saved == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("forwarder storage ", dir, " is in use by another process"));
    }
    return ErrnoError("flock", dir, saved);
  }
  return std::unique_ptr<DiskStore>(new DiskStore(dir, dir_fd, lock_fd));
}

std::string DiskStore::FileName(uint64_t seq) { return absl::StrFormat("%016x%s", seq, kSuffix); }

absl::StatusOr<DiskStore::Listing> DiskStore::List() {
  const int fd = ::dup(dir_fd_);
  if (fd < 0) return ErrnoError("dup", dir_, errno);
  DIR* stream = ::fdopendir(fd);
  if (stream == nullptr) {
    const int saved = errno;
    ::close(fd);
    return ErrnoError("opendir", dir_, saved);
  }
  ::rewinddir(stream);  // the dup shares the offset with dir_fd_; start from the top regardless
  Listing listing;
  while (dirent* entry = ::readdir(stream)) {
    const std::string_view name(entry->d_name);
    if (name.substr(0, kTempPrefixBytes) == kTempPrefix) {
      // Only we write here (we hold the lock), so this is a write that never completed: its
      // Submit never returned, nothing was acknowledged.
      if (::unlinkat(dir_fd_, entry->d_name, 0) == 0) ++listing.partial_files_removed;
      continue;
    }
    if (name.size() != kSequenceDigits + kSuffixBytes || name.substr(kSequenceDigits) != kSuffix) {
      continue;
    }
    uint64_t seq = 0;
    if (!absl::SimpleHexAtoi(absl::string_view(entry->d_name, kSequenceDigits), &seq)) continue;
    listing.sequences.push_back(seq);
  }
  ::closedir(stream);
  std::sort(listing.sequences.begin(), listing.sequences.end());
  return listing;
}

absl::Status DiskStore::Write(uint64_t seq, std::string_view prefix, std::string_view body,
                              std::string_view trailer) {
  const std::string temp_name = absl::StrCat(kTempPrefix, FileName(seq));
  const std::string final_name = FileName(seq);
  const int fd = ::openat(dir_fd_, temp_name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("create", absl::StrCat(dir_, "/", temp_name), errno);
  iovec parts[3] = {{const_cast<char*>(prefix.data()), prefix.size()},
                    {const_cast<char*>(body.data()), body.size()},
                    {const_cast<char*>(trailer.data()), trailer.size()}};
  bool ok = WriteAll(fd, parts, 3);
  int error = errno;
  if (ok && ::fsync(fd) != 0) {
    ok = false;
    error = errno;
  }
  ::close(fd);
  if (ok && ::renameat(dir_fd_, temp_name.c_str(), dir_fd_, final_name.c_str()) != 0) {
    ok = false;
    error = errno;
  }
  if (!ok) {
    ::unlinkat(dir_fd_, temp_name.c_str(), 0);
    return ErrnoError("write", absl::StrCat(dir_, "/", final_name), error);
  }
  // The rename is only durable once the directory itself is on disk.
  if (::fsync(dir_fd_) != 0) return ErrnoError("fsync", dir_, errno);
  return absl::OkStatus();
}

absl::StatusOr<std::string> DiskStore::Read(uint64_t seq, size_t max_bytes) {
  const std::string name = FileName(seq);
  const int fd = ::openat(dir_fd_, name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int saved = errno;
    if (saved == ENOENT) return absl::DataLossError(absl::StrCat(dir_, "/", name, " disappeared"));
    return ErrnoError("open", absl::StrCat(dir_, "/", name), saved);
  }
  struct stat info = {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return absl::DataLossError(absl::StrCat(dir_, "/", name, " is not a regular file"));
  }
  if (static_cast<uint64_t>(info.st_size) > max_bytes) {
    ::close(fd);
    return absl::DataLossError(
        absl::StrCat(dir_, "/", name, " is ", info.st_size, " bytes, more than any transaction can be"));
  }
  std::string data(static_cast<size_t>(info.st_size), '\0');
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t got = ::read(fd, data.data() + done, data.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // shrank under us: the parser will call it truncated
    done += static_cast<size_t>(got);
  }
  ::close(fd);
  data.resize(done);
  return data;
}

absl::Status DiskStore::UpdateAttempts(uint64_t seq, uint32_t attempts) {
  const std::string name = FileName(seq);
  const int fd = ::openat(dir_fd_, name.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open", absl::StrCat(dir_, "/", name), errno);
  unsigned char bytes[4];
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<unsigned char>((attempts >> (8 * i)) & 0xff);
  const ssize_t written = ::pwrite(fd, bytes, sizeof(bytes), kAttemptsOffset);
  const int saved = errno;
  ::close(fd);
  if (written != sizeof(bytes)) return ErrnoError("pwrite", absl::StrCat(dir_, "/", name), saved);
  return absl::OkStatus();
}

void DiskStore::Remove(uint64_t seq) { ::unlinkat(dir_fd_, FileName(seq).c_str(), 0); }

absl::StatusOr<int64_t> DiskStore::Headroom(double max_disk_ratio) const {
  struct statvfs info = {};
  if (::fstatvfs(dir_fd_, &info) != 0) return ErrnoError("statvfs", dir_, errno);
  const double total = static_cast<double>(info.f_blocks) * static_cast<double>(info.f_frsize);
  const double available = static_cast<double>(info.f_bavail) * static_cast<double>(info.f_frsize);
  const double reserve = total * (1.0 - std::clamp(max_disk_ratio, 0.0, 1.0));
  return static_cast<int64_t>(available - reserve);
}

}  // namespace dogwatch::forwarder
