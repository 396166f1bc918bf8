#include "common/container/container_id.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using namespace dogwatch::container;

namespace {
const std::string kId = "3f5e1c2d4b6a79880a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071";

struct TempTree {
  fs::path root;
  TempTree() {
    char templ[] = "/tmp/dogwatch-container-XXXXXX";
    root = ::mkdtemp(templ);
  }
  ~TempTree() { fs::remove_all(root); }
};

uint64_t InodeOf(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_ino;
}
}  // namespace

TEST_CASE("container ids are found in every runtime's cgroup path form") {
  CHECK(ContainerIdFromCgroupPath("/machine.slice/libpod-" + kId + ".scope/container") == kId);
  CHECK(ContainerIdFromCgroupPath("/system.slice/docker-" + kId + ".scope") == kId);
  CHECK(ContainerIdFromCgroupPath("/docker/" + kId) == kId);
  CHECK(ContainerIdFromCgroupPath("/kubepods/besteffort/pod1234/cri-containerd-" + kId + ".scope") == kId);
  CHECK(ContainerIdFromCgroupPath("/user.slice/user-0.slice/session-3.scope").empty());
  CHECK(ContainerIdFromCgroupPath("/docker/" + kId.substr(1)).empty());         // 63 chars
  CHECK(ContainerIdFromCgroupPath("/docker/" + std::string(64, 'G')).empty());  // not hex
  CHECK(ContainerIdFromCgroupPath("").empty());
}

TEST_CASE("a pid's container comes from its cgroup file") {
  TempTree tree;
  fs::create_directories(tree.root / "42");
  std::ofstream(tree.root / "42" / "cgroup") << "0::/machine.slice/libpod-" << kId << ".scope/container\n";
  fs::create_directories(tree.root / "43");
  std::ofstream(tree.root / "43" / "cgroup") << "0::/user.slice/user-0.slice/session-1.scope\n";
  CHECK(ContainerIdForPid(42, tree.root) == kId);
  CHECK(ContainerIdForPid(43, tree.root).empty());
  CHECK(ContainerIdForPid(44, tree.root).empty());  // gone
  CHECK(ContainerIdForPid(-1, tree.root).empty());
  CHECK(ContainerIdForPid(::getpid())
            .empty());  // the test itself runs on the host (or is not in a runtime scope)
}

TEST_CASE("a cgroup inode is resolved by walking the hierarchy, within a bound") {
  TempTree tree;
  fs::path container_dir = tree.root / "machine.slice" / ("libpod-" + kId + ".scope") / "container";
  fs::create_directories(container_dir);
  fs::path host_dir = tree.root / "user.slice" / "session-1.scope";
  fs::create_directories(host_dir);
  CHECK(ContainerIdForCgroupInode(InodeOf(container_dir), tree.root) == kId);
  CHECK(ContainerIdForCgroupInode(InodeOf(host_dir), tree.root).empty());
  CHECK(ContainerIdForCgroupInode(1, tree.root).empty());
  // The walk stops after 2 directories: the container (4 levels down) is not reached.
  CHECK(ContainerIdForCgroupInode(InodeOf(container_dir), tree.root, 2).empty());
}

TEST_CASE("the origin cache answers client fields, caches negatives, expires and stays bounded") {
  TempTree tree;
  fs::path container_dir = tree.root / "cg" / ("libpod-" + kId + ".scope");
  fs::create_directories(container_dir);
  for (int pid = 1; pid <= 5; ++pid) {
    fs::create_directories(tree.root / "proc" / std::to_string(pid));
    std::ofstream(tree.root / "proc" / std::to_string(pid) / "cgroup") << "0::/docker/" << kId << "\n";
  }
  OriginCache cache({.proc_root = (tree.root / "proc").string(),
                     .cgroup_root = (tree.root / "cg").string(),
                     .max_entries = 3,
                     .ttl_seconds = 10});
  CHECK(cache.ForClientField("ci-" + kId, 100) == kId);
  CHECK(cache.ForClientField("ci-nothex", 100).empty());
  CHECK(cache.ForClientField(kId, 100) == kId);
  CHECK(cache.ForClientField("in-" + std::to_string(InodeOf(container_dir)), 100) == kId);
  CHECK(cache.ForClientField("in-12x", 100).empty());
  CHECK(cache.ForClientField("in-", 100).empty());

  CHECK(cache.ForPid(1, 100) == kId);
  CHECK(cache.ForPid(1, 101) == kId);
  CHECK(cache.counters().hits == 1);
  // The file changes: the cached answer holds until the TTL passes.
  std::ofstream(tree.root / "proc" / "1" / "cgroup", std::ios::trunc) << "0::/user.slice\n";
  CHECK(cache.ForPid(1, 105) == kId);
  CHECK(cache.ForPid(1, 111).empty());
  // Bounded: 5 pids through a 3-entry cache evict the least recently used.
  for (int pid = 1; pid <= 5; ++pid) cache.ForPid(pid, 200);
  CHECK(cache.counters().evictions >= 2);
}
