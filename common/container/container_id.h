#pragma once
// Finding the container a local process runs in, from the cgroup it belongs to. Used for origin
// detection: the trace-agent's unix-socket peers, DogStatsD's unix-socket senders (SO_PASSCRED) and
// the `in-<cgroup inode>` origin field dd-trace and hot-shots send.
//
// A container id is the 64-hex id that runtimes put in the cgroup path: podman "libpod-<id>.scope",
// docker "docker-<id>.scope" or "/docker/<id>", containerd "cri-containerd-<id>.scope", kubepods.

#include <sys/types.h>

#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace dogwatch::container {

// The container id inside one cgroup path, or "" when it names none.
std::string ContainerIdFromCgroupPath(std::string_view path);

// The container id in the text of a /proc/<pid>/cgroup file ("<hierarchy>:<controllers>:<path>"
// lines): the first line whose path names one, or "".
std::string ContainerIdFromCgroupFile(std::string_view text);

// The container id of `pid` from <proc_root>/<pid>/cgroup, or "" (not in a container, gone, or
// unreadable). Reads at most 64 KiB.
std::string ContainerIdForPid(pid_t pid, const std::string& proc_root = "/proc");

// The container id of the cgroup directory whose inode is `inode`, found by walking
// `cgroup_root` (cgroup v2 unified hierarchy) breadth-first, at most `max_directories` entries:
// a host with thousands of cgroups stops the walk early rather than stall the caller.
std::string ContainerIdForCgroupInode(uint64_t inode, const std::string& cgroup_root = "/sys/fs/cgroup",
                                      size_t max_directories = 20000);

// A bounded, time-limited cache of the lookups above, shared by the threads of one receiver.
// Negative answers are cached too (a host process sends thousands of packets a second); entries
// live `ttl_seconds` because PIDs and cgroups are reused.
class OriginCache {
 public:
  struct Options {
    std::string proc_root = "/proc";
    std::string cgroup_root = "/sys/fs/cgroup";
    size_t max_entries = 4096;
    int64_t ttl_seconds = 60;
  };
  explicit OriginCache(Options options);

  std::string ForPid(pid_t pid, int64_t now_unix);
  std::string ForCgroupInode(uint64_t inode, int64_t now_unix);
  // Resolves a client-sent origin field: "ci-<id>" → <id>, "in-<inode>" → the inode's container,
  // a bare id → itself. "" when it resolves to nothing.
  std::string ForClientField(std::string_view field, int64_t now_unix);

  struct Counters {
    int64_t hits = 0;
    int64_t misses = 0;
    int64_t evictions = 0;
  };
  Counters counters() const;

 private:
  struct Entry {
    std::string container_id;
    int64_t expires = 0;
    std::list<uint64_t>::iterator lru_position;
  };
  template <typename Resolve>
  std::string Lookup(uint64_t key, int64_t now_unix, Resolve resolve);

  const Options options_;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Entry> entries_;
  std::list<uint64_t> lru_;  // front = most recently used
  Counters counters_;
};

}  // namespace dogwatch::container
