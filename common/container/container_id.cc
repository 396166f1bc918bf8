#include "common/container/container_id.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <deque>

#include "common/strings/strings.h"

namespace dogwatch::container {
namespace {

bool IsHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Reads at most `cap` bytes of a small kernel file (no std::ifstream: /proc files report size 0).
std::string ReadSmallFile(const std::string& path, size_t cap) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  while (out.size() < cap) {
    ssize_t n = ::read(fd, buf, std::min(sizeof(buf), cap - out.size()));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace

std::string ContainerIdFromCgroupPath(std::string_view path) {
  size_t pos = 0;
  while (pos < path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(pos, end - pos);
    if (part.ends_with(".scope")) part.remove_suffix(6);
    size_t dash = part.rfind('-');
    if (dash != std::string_view::npos) part = part.substr(dash + 1);
    if (part.size() == 64 && IsHex(part)) return std::string(part);
    pos = end + 1;
  }
  return "";
}

std::string ContainerIdFromCgroupFile(std::string_view text) {
  // Lines are "<hierarchy>:<controllers>:<path>"; the path is after the second colon.
  for (std::string_view line : strings::SplitAny(text, "\n")) {
    size_t first = line.find(':');
    if (first == std::string_view::npos) continue;
    size_t second = line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    std::string id = ContainerIdFromCgroupPath(line.substr(second + 1));
    if (!id.empty()) return id;
  }
  return "";
}

std::string ContainerIdForPid(pid_t pid, const std::string& proc_root) {
  if (pid <= 0) return "";
  return ContainerIdFromCgroupFile(ReadSmallFile(strings::Cat(proc_root, "/", pid, "/cgroup"), 64 * 1024));
}

std::string ContainerIdForCgroupInode(uint64_t inode, const std::string& cgroup_root,
                                      size_t max_directories) {
  std::deque<std::string> pending{cgroup_root};
  size_t visited = 0;
  while (!pending.empty() && visited < max_directories) {
    std::string dir = std::move(pending.front());
    pending.pop_front();
    ++visited;
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) continue;
    if (static_cast<uint64_t>(st.st_ino) == inode) {
      return ContainerIdFromCgroupPath(std::string_view(dir).substr(cgroup_root.size()));
    }
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) continue;
    while (dirent* entry = ::readdir(d)) {
      if (entry->d_type != DT_DIR) continue;
      std::string_view name = entry->d_name;
      if (name == "." || name == "..") continue;
      if (pending.size() >= max_directories) break;
      pending.push_back(strings::Cat(dir, "/", name));
    }
    ::closedir(d);
  }
  return "";
}

OriginCache::OriginCache(Options options) : options_(std::move(options)) {}

template <typename Resolve>
std::string OriginCache::Lookup(uint64_t key, int64_t now_unix, Resolve resolve) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end() && it->second.expires > now_unix) {
      ++counters_.hits;
      lru_.splice(lru_.begin(), lru_, it->second.lru_position);
      return it->second.container_id;
    }
    ++counters_.misses;
  }
  // Resolved without the lock: the cgroup walk can take milliseconds on a busy host.
  std::string id = resolve();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    it->second.container_id = id;
    it->second.expires = now_unix + options_.ttl_seconds;
    lru_.splice(lru_.begin(), lru_, it->second.lru_position);
    return id;
  }
  while (entries_.size() >= options_.max_entries && !lru_.empty()) {
    entries_.erase(lru_.back());
    lru_.pop_back();
    ++counters_.evictions;
  }
  lru_.push_front(key);
  entries_.emplace(key, Entry{id, now_unix + options_.ttl_seconds, lru_.begin()});
  return id;
}

// PIDs and inodes share one map: the top bit tells them apart (inodes never use it in practice;
// a collision would only mis-attribute one cache entry for one TTL).
std::string OriginCache::ForPid(pid_t pid, int64_t now_unix) {
  uint64_t key = (uint64_t{1} << 63) | static_cast<uint32_t>(pid);
  return Lookup(key, now_unix, [&] { return ContainerIdForPid(pid, options_.proc_root); });
}

std::string OriginCache::ForCgroupInode(uint64_t inode, int64_t now_unix) {
  uint64_t key = inode & ~(uint64_t{1} << 63);
  return Lookup(key, now_unix, [&] { return ContainerIdForCgroupInode(inode, options_.cgroup_root); });
}

std::string OriginCache::ForClientField(std::string_view field, int64_t now_unix) {
  if (field.starts_with("ci-")) {
    field.remove_prefix(3);
    return field.size() == 64 && IsHex(field) ? std::string(field) : "";
  }
  if (field.starts_with("in-")) {
    field.remove_prefix(3);
    uint64_t inode = 0;
    auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), inode);
    if (ec != std::errc() || end != field.data() + field.size() || inode == 0) return "";
    return ForCgroupInode(inode, now_unix);
  }
  return field.size() == 64 && IsHex(field) ? std::string(field) : "";
}

OriginCache::Counters OriginCache::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

}  // namespace dogwatch::container
