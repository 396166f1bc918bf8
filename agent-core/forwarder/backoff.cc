#include "agent-core/forwarder/backoff.h"

#include <algorithm>
#include <cmath>

#include "absl/random/distributions.h"

namespace dogwatch::forwarder {

BackoffPolicy::BackoffPolicy(BackoffOptions options) : options_(options) {
  if (!Validate(options_).ok()) return;  // max_errors_ stays 0: Delay() then always returns 0
  const double ratio = absl::FDivDuration(options_.max, options_.base);
  // Smallest n with base * factor^n >= max; at most a few dozen for any sane configuration.
  max_errors_ = 1;
  while (max_errors_ < 64 && std::pow(options_.factor, max_errors_) < ratio) ++max_errors_;
}

absl::Status BackoffPolicy::Validate(const BackoffOptions& options) {
  if (options.base <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("forwarder_backoff_base must be positive");
  }
  if (options.max < options.base) {
    return absl::InvalidArgumentError("forwarder_backoff_max must be >= forwarder_backoff_base");
  }
  if (!(options.factor > 1.0) || !std::isfinite(options.factor)) {
    return absl::InvalidArgumentError("forwarder_backoff_factor must be a finite number > 1");
  }
  if (options.recovery_interval < 0) {
    return absl::InvalidArgumentError("forwarder_recovery_interval must be >= 0");
  }
  return absl::OkStatus();
}

int BackoffPolicy::AfterFailure(int errors) const {
  return std::min(std::max(errors, 0) + 1, std::max(max_errors_, 1));
}

int BackoffPolicy::AfterSuccess(int errors) const {
  if (options_.recovery_reset) return 0;
  return std::max(0, errors - options_.recovery_interval);
}

absl::Duration BackoffPolicy::Delay(int errors, absl::BitGenRef random) const {
  if (errors <= 0 || max_errors_ == 0) return absl::ZeroDuration();
  const double base_seconds = absl::ToDoubleSeconds(options_.base);
  const double max_seconds = absl::ToDoubleSeconds(options_.max);
  const double delay = std::min(base_seconds * std::pow(options_.factor, errors), max_seconds);
  const double low = delay / options_.factor;
  return absl::Seconds(low >= delay ? delay : absl::Uniform(absl::IntervalClosed, random, low, delay));
}

}  // namespace dogwatch::forwarder
