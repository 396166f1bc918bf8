#pragma once
// Per-destination circuit breaker timing (Datadog's forwarder_backoff_* / forwarder_recovery_*).
//
// After the n-th consecutive error the destination stays closed for a random delay in
// [d / factor, d] where d = min(base * factor^n, max): the jitter keeps many agents that lost the
// intake at the same moment from coming back in lockstep. Successes lower the error count by
// recovery_interval (or reset it), so a flapping intake does not jump straight back to full rate.

#include "absl/random/bit_gen_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace dogwatch::forwarder {

struct BackoffOptions {
  absl::Duration base = absl::Seconds(2);
  absl::Duration max = absl::Seconds(64);
  double factor = 2;
  int recovery_interval = 2;
  bool recovery_reset = false;
};

class BackoffPolicy {
 public:
  explicit BackoffPolicy(BackoffOptions options);

  // base > 0, max >= base, factor > 1, recovery_interval >= 0.
  static absl::Status Validate(const BackoffOptions& options);

  // The error count at which the delay reaches max; counts never go beyond it, so recovery after a
  // long outage takes a bounded number of successes.
  int max_errors() const { return max_errors_; }

  int AfterFailure(int errors) const;
  int AfterSuccess(int errors) const;

  // Zero for errors <= 0.
  absl::Duration Delay(int errors, absl::BitGenRef random) const;

 private:
  BackoffOptions options_;
  int max_errors_ = 0;
};

}  // namespace dogwatch::forwarder
