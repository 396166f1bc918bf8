#include "agent-core/forwarder/backoff.h"

#include <catch2/catch.hpp>

#include "absl/random/random.h"

namespace dogwatch::forwarder {
namespace {

TEST_CASE("backoff delay stays within [d/factor, d] and under max", "[forwarder][backoff]") {
  BackoffOptions options;  // Datadog defaults: 2 s base, 64 s max, factor 2
  BackoffPolicy policy(options);
  CHECK(policy.max_errors() == 5);  // 2 s * 2^5 = 64 s
  absl::BitGen random;
  CHECK(policy.Delay(0, random) == absl::ZeroDuration());
  for (int errors = 1; errors <= 8; ++errors) {
    const double full = std::min(2.0 * std::pow(2.0, errors), 64.0);
    for (int i = 0; i < 200; ++i) {
      const double seconds = absl::ToDoubleSeconds(policy.Delay(errors, random));
      INFO("errors " << errors << " delay " << seconds);
      CHECK(seconds >= full / 2 - 1e-9);
      CHECK(seconds <= full + 1e-9);
    }
  }
}

TEST_CASE("error count is capped and recovers by the interval", "[forwarder][backoff]") {
  BackoffOptions options;
  BackoffPolicy policy(options);
  int errors = 0;
  for (int i = 0; i < 50; ++i) errors = policy.AfterFailure(errors);
  CHECK(errors == policy.max_errors());
  CHECK(policy.AfterSuccess(5) == 3);
  CHECK(policy.AfterSuccess(1) == 0);
  options.recovery_reset = true;
  CHECK(BackoffPolicy(options).AfterSuccess(5) == 0);
}

TEST_CASE("backoff options are validated", "[forwarder][backoff]") {
  BackoffOptions options;
  CHECK(BackoffPolicy::Validate(options).ok());
  options.factor = 1;
  CHECK_FALSE(BackoffPolicy::Validate(options).ok());
  options = BackoffOptions();
  options.max = absl::Seconds(1);
  CHECK_FALSE(BackoffPolicy::Validate(options).ok());
  options = BackoffOptions();
  options.base = absl::ZeroDuration();
  CHECK_FALSE(BackoffPolicy::Validate(options).ok());
  options = BackoffOptions();
  options.recovery_interval = -1;
  CHECK_FALSE(BackoffPolicy::Validate(options).ok());
}

}  // namespace
}  // namespace dogwatch::forwarder
