// Credit card detection in span tags (pkg/obfuscate/credit_cards.go): a value that is 12 to 16 digits,
// optionally separated by spaces or dashes, starting with a known issuer prefix (IIN), and optionally
// passing the Luhn checksum.

#include <array>
#include <string_view>

#include "trace-agent/obfuscate/internal.h"

namespace dogwatch::trace::obfuscate_internal {
namespace {

struct PrefixCheck {
  bool maybe;  // could become a valid prefix with more digits
  bool yes;    // is a valid prefix
};

// Issuer prefixes from https://www.regular-expressions.info/creditcard.html and
// https://baymard.com/checkout-usability/credit-card-patterns, as the agent checks them.
PrefixCheck ValidCardPrefix(int n) {
  if (n > 699999) return {false, false};
  if (n < 10) {
    if (n == 1 || n == 4) return {false, true};
    if (n == 2 || n == 3 || n == 5 || n == 6) return {true, false};
    return {false, false};
  }
  if (n < 100) {
    if ((n >= 34 && n <= 39) || (n >= 51 && n <= 55) || n == 62 || n == 65) return {false, true};
    if (n == 30 || n == 63 || n == 64 || n == 50 || n == 60 || (n >= 22 && n <= 27) || (n >= 56 && n <= 58) ||
        (n >= 60 && n <= 69)) {
      return {true, false};
    }
  }
  if (n < 1000) {
    if ((n >= 300 && n <= 305) || (n >= 644 && n <= 649) || n == 309 || n == 636) return {false, true};
    if ((n >= 352 && n <= 358) || n == 501 || n == 601 || (n >= 222 && n <= 272) || (n >= 500 && n <= 509) ||
        (n >= 560 && n <= 589) || (n >= 600 && n <= 699)) {
      return {true, false};
    }
  }
  if (n < 10000) {
    if ((n >= 3528 && n <= 3589) || n == 5019 || n == 6011) return {false, true};
    if ((n >= 2221 && n <= 2720) || (n >= 5000 && n <= 5099) || (n >= 5600 && n <= 5899) ||
        (n >= 6000 && n <= 6999)) {
      return {true, false};
    }
  }
  if (n < 100000) {
    if ((n >= 22210 && n <= 27209) || (n >= 50000 && n <= 50999) || (n >= 56000 && n <= 58999) ||
        (n >= 60000 && n <= 69999)) {
      return {true, false};
    }
  }
  if (n < 1000000) {
    if ((n >= 222100 && n <= 272099) || (n >= 500000 && n <= 509999) || (n >= 560000 && n <= 589999) ||
        (n >= 600000 && n <= 699999)) {
      return {false, true};
    }
  }
  return {false, false};
}

bool LuhnValid(const std::array<uint8_t, 16>& digits, size_t count) {
  int sum = 0;
  bool alternate = false;
  for (size_t i = count; i-- > 0;) {
    int d = digits[i];
    if (alternate) {
      d *= 2;
      if (d > 9) d = d % 10 + 1;
    }
    alternate = !alternate;
    sum += d;
  }
  return sum % 10 == 0;
}

}  // namespace

bool IsCardNumber(std::string_view value, bool luhn) {
  if (value.size() < 12) return false;  // too short even without separators
  const char first = value[0];
  if (first != ' ' && first != '-' && (first < '0' || first > '9')) return false;
  int prefix = 0;
  size_t count = 0;
  bool found_prefix = false;
  std::array<uint8_t, 16> digits{};
  for (char c : value) {
    if (c == ' ' || c == '-') continue;
    if (c < '0' || c > '9') return false;
    if (count == 16) return false;  // a 17th digit: too long
    digits[count++] = static_cast<uint8_t>(c - '0');
    if (!found_prefix) {
      prefix = prefix * 10 + (c - '0');
      PrefixCheck check = ValidCardPrefix(prefix);
      if (check.yes) {
        found_prefix = true;
      } else if (!check.maybe) {
        return false;
      }
    }
  }
  if (count < 12 || !found_prefix) return false;
  return !luhn || LuhnValid(digits, count);
}

bool IsCreditCardAllowListed(std::string_view key) {
  static constexpr std::string_view kAllowList[] = {
      "_sample_rate",
      "_sampling_priority_v1",
      "account_id",
      "aws_account",
      "error",
      "error.msg",
      "error.type",
      "error.stack",
      "env",
      "graphql.field",
      "graphql.query",
      "graphql.type",
      "graphql.operation.name",
      "grpc.code",
      "grpc.method",
      "grpc.request",
      "http.status_code",
      "http.method",
      "runtime-id",
      "out.host",
      "out.port",
      "sampling.priority",
      "span.type",
      "span.name",
      "service.name",
      "service",
      "sql.query",
      "version",
      // Data Jobs Monitoring IDs look like card numbers.
      "databricks_job_id",
      "databricks_job_run_id",
      "databricks_task_run_id",
      "config.spark_app_startTime",
      "config.spark_databricks_job_parentRunId",
  };
  if (!key.empty() && key[0] == '_') return true;
  for (std::string_view allowed : kAllowList) {
    if (key == allowed) return true;
  }
  return false;
}

}  // namespace dogwatch::trace::obfuscate_internal
