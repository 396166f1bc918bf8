#pragma once
// The last status each sub-agent reported, bounded in components and in size per report, so a
// misbehaving (or malicious, if it got past the socket's checks) peer cannot grow the core.

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "dogwatch/core.pb.h"

namespace dogwatch::agent {

class StatusRegistry {
 public:
  static constexpr size_t kMaxComponents = 32;
  static constexpr size_t kMaxCountersPerComponent = 512;
  static constexpr size_t kMaxInfoPerComponent = 64;
  static constexpr size_t kMaxStringBytes = 1024;

  explicit StatusRegistry(absl::Duration report_interval) : report_interval_(report_interval) {}

  // Validates and stores a report. Over-long strings are truncated; too many entries refused.
  absl::Status Update(const core::ComponentStatus& status);
  // Current reports; a component silent for 3 intervals is shown as state "stale".
  std::vector<core::ComponentStatus> Snapshot() const;
  std::vector<std::string> StaleComponents() const;
  absl::Duration report_interval() const { return report_interval_; }
  int64_t refused_reports() const;

 private:
  const absl::Duration report_interval_;
  mutable std::mutex mu_;
  std::map<std::string, core::ComponentStatus> components_;
  int64_t refused_reports_ = 0;
};

}  // namespace dogwatch::agent
