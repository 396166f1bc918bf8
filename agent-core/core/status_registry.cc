#include "agent-core/core/status_registry.h"

#include "common/strings/strings.h"

namespace dogwatch::agent {
namespace {

void Truncate(std::string* text) {
  if (text->size() > StatusRegistry::kMaxStringBytes) text->resize(StatusRegistry::kMaxStringBytes);
}

bool IsStale(const core::ComponentStatus& status, absl::Duration interval) {
  return absl::FromUnixMillis(status.reported_unix_ms()) + 3 * interval < absl::Now();
}

}  // namespace

absl::Status StatusRegistry::Update(const core::ComponentStatus& in) {
  std::lock_guard<std::mutex> lock(mu_);
  auto refuse = [&](std::string message) {
    ++refused_reports_;
    return absl::InvalidArgumentError(std::move(message));
  };
  if (in.name().empty() || in.name().size() > 64) return refuse("status report: name must be 1 to 64 bytes");
  if (in.counters_size() > static_cast<int>(kMaxCountersPerComponent)) {
    return refuse(strings::Cat("status report: more than ", kMaxCountersPerComponent, " counters"));
  }
  if (in.info_size() > static_cast<int>(kMaxInfoPerComponent)) {
    return refuse(strings::Cat("status report: more than ", kMaxInfoPerComponent, " info entries"));
  }
  if (components_.count(in.name()) == 0 && components_.size() >= kMaxComponents) {
    return refuse(strings::Cat("status report: more than ", kMaxComponents, " components"));
  }
  core::ComponentStatus stored = in;
  Truncate(stored.mutable_version());
  Truncate(stored.mutable_state());
  Truncate(stored.mutable_last_error());
  for (auto& [key, value] : *stored.mutable_info()) Truncate(&value);
  // The core's clock decides staleness, not the reporter's.
  stored.set_reported_unix_ms(absl::ToUnixMillis(absl::Now()));
  components_[in.name()] = std::move(stored);
  return absl::OkStatus();
}

std::vector<core::ComponentStatus> StatusRegistry::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<core::ComponentStatus> out;
  for (const auto& [name, status] : components_) {
    out.push_back(status);
    if (IsStale(status, report_interval_)) out.back().set_state("stale");
  }
  return out;
}

std::vector<std::string> StatusRegistry::StaleComponents() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, status] : components_) {
    if (IsStale(status, report_interval_) && status.state() != "stopped") out.push_back(name);
  }
  return out;
}

int64_t StatusRegistry::refused_reports() const {
  std::lock_guard<std::mutex> lock(mu_);
  return refused_reports_;
}

}  // namespace dogwatch::agent
