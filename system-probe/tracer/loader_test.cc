#include "system-probe/tracer/loader.h"

#include <catch2/catch.hpp>

namespace dogwatch::sysprobe {
namespace {

TEST_CASE("the cgroup2 mount: the host's single mount") {
  const std::string mountinfo =
      "22 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
      "26 24 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
      "rw,nsdelegate\n";
  CHECK(FindCgroup2Mount(mountinfo) == "/sys/fs/cgroup");
}

TEST_CASE("the cgroup2 mount: none, or only cgroup v1") {
  CHECK(FindCgroup2Mount("").empty());
  CHECK(FindCgroup2Mount("30 25 0:26 / /sys/fs/cgroup/memory rw shared:12 - cgroup cgroup rw,memory\n")
            .empty());
  CHECK(FindCgroup2Mount("malformed line without separator cgroup2\n").empty());
}

TEST_CASE("the cgroup2 mount: in a container with its own cgroup namespace, the host's tree") {
  // The container's own /sys/fs/cgroup is its namespace root ("/"); the host's tree, bind-mounted
  // at /host/sys/fs/cgroup, shows as three levels above it.
  const std::string mountinfo =
      "701 690 0:30 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw\n"
      "702 690 0:30 /../../.. /host/sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw\n";
  CHECK(FindCgroup2Mount(mountinfo) == "/host/sys/fs/cgroup");
}

TEST_CASE("the cgroup2 mount: a subtree mount loses to the root, the first of equals wins") {
  const std::string mountinfo =
      "40 30 0:30 /system.slice /srv/slice rw - cgroup2 cgroup2 rw\n"
      "41 30 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
      "42 30 0:30 / /mnt/cgroup-again rw - cgroup2 cgroup2 rw\n";
  CHECK(FindCgroup2Mount(mountinfo) == "/sys/fs/cgroup");
}

}  // namespace
}  // namespace dogwatch::sysprobe
