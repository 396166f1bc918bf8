#pragma once
// The core's built-in host checks: the Linux equivalents of the Datadog Agent's cpu, memory, load,
// uptime, disk, io, network and file_handle checks, emitting the same metric names, units and tags
// (see README.md in this directory for the list and where each one was verified).
//
// A check reads the host once per Run() and submits gauges stamped with the run's timestamp, so the
// aggregator passes them through unchanged. Values the Datadog Agent submits as rates or monotonic
// counts are derived here from the previous run's counters; a check's first run only primes them.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "agent-core/metrics/types.h"

namespace dogwatch::checks {

// Where a check sends its samples. A sample's strings are valid only during Add().
class SampleSink {
 public:
  virtual ~SampleSink() = default;
  virtual void Add(const metrics::Sample& sample) = 0;
};

struct HostCheckOptions {
  // Roots of procfs and sysfs; a containerised agent points these at the host's (/host/proc...).
  std::string proc_root = "/proc";
  std::string sys_root = "/sys";
  // The mount table the disk check walks. Empty: <proc_root>/self/mounts, or <proc_root>/1/mounts
  // when proc_root is not /proc (a host procfs mounted into a container, whose init sees the host's
  // mounts while this process sees the container's).
  std::string mounts_file;
  std::string hostname;
  // File system types the disk check skips. Datadog's defaults are iso9660 and tracefs; the rest are
  // pseudo file systems whose statvfs reports 0 blocks (Datadog calls statvfs and then drops them),
  // so skipping them changes no output and saves a syscall each, plus autofs, whose statvfs would
  // trigger the automount. tmpfs, devtmpfs and overlay are reported, as Datadog does.
  std::vector<std::string> excluded_filesystems = {
      "iso9660", "tracefs",   "autofs",     "proc",        "sysfs",  "cgroup",   "cgroup2",
      "devpts",  "mqueue",    "debugfs",    "securityfs",  "pstore", "bpf",      "configfs",
      "fusectl", "hugetlbfs", "rpc_pipefs", "binfmt_misc", "nsfs",   "efivarfs", "selinuxfs"};
  // Interfaces the network check skips (Datadog's `excluded_interfaces`; empty by default, so `lo`
  // is reported as the Agent does).
  std::vector<std::string> excluded_interfaces;
  // Seconds on a monotonic clock, used for the time between two runs when computing per-second
  // rates. Empty: CLOCK_MONOTONIC. Tests inject a fake clock to assert exact rates.
  std::function<double()> monotonic_seconds;
};

class Check {
 public:
  virtual ~Check() = default;
  // The Datadog check name ("cpu", "memory", "load", "uptime", "disk", "io", "network",
  // "file_handle").
  virtual std::string_view name() const = 0;
  // Reads the host once and submits samples stamped with `now_unix` (non-zero, so the aggregator
  // passes them through as gauges). Rates are computed from the previous run's counters; the first
  // run only primes them. Submits what it could read even when part of the host could not be read,
  // and then returns the first error, which names the file.
  virtual absl::Status Run(int64_t now_unix, SampleSink& sink) = 0;
  // Table entries (CPUs, devices, interfaces, mounts) skipped since construction because a file
  // listed more than the check's cap.
  virtual uint64_t dropped_entries() const { return 0; }
};

// cpu, memory, load, uptime, disk, io, network, file_handle, in that order.
std::vector<std::unique_ptr<Check>> MakeHostChecks(const HostCheckOptions& options);

}  // namespace dogwatch::checks
