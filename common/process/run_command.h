#pragma once
// Runs a helper executable (no shell) with bounded time and bounded captured output. Used for
// commands whose output the agent must trust only as far as it can bound it, such as the secret
// backend.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace dogwatch::process {

struct RunCommandOptions {
  // argv[0] is the path of the executable, used as is: no PATH search and no shell, so nothing in
  // the arguments is ever interpreted.
  std::vector<std::string> argv;
  // Bytes written to the child's stdin, which is then closed. A child that exits or closes stdin
  // without reading everything is not an error.
  std::string stdin_data;
  // Complete environment as "NAME=value" entries. When unset the child gets only
  // PATH=/usr/bin:/bin, so nothing from the agent's own environment (API keys...) leaks into it.
  std::optional<std::vector<std::string>> env;
  // Wall-clock limit for the whole run. On expiry the child's process group is killed with SIGKILL.
  // absl::InfiniteDuration() disables the limit.
  absl::Duration timeout = absl::Seconds(30);
  // Exceeding this fails the run (ResourceExhausted) and kills the child: partial output of a
  // program that was cut short must never be mistaken for a complete answer.
  size_t max_stdout_bytes = 1024 * 1024;
  // stderr is diagnostics only, so exceeding this keeps the first bytes, drains and drops the rest.
  size_t max_stderr_bytes = 64 * 1024;
};

struct CommandResult {
  int exit_code = -1;   // exit status when the child exited normally, else -1
  int term_signal = 0;  // signal that killed the child, else 0
  std::string stdout_data;
  std::string stderr_data;
  bool stderr_truncated = false;  // stderr went over max_stderr_bytes and was cut
};

// Runs the command to completion. A nonzero exit or a death by signal is reported in the result,
// not as an error. Errors: InvalidArgument (bad options), NotFound / PermissionDenied / Internal
// (the executable could not be started; the message names the path and the reason),
// DeadlineExceeded (timed out), ResourceExhausted (stdout over its cap).
absl::StatusOr<CommandResult> RunCommand(const RunCommandOptions& options);

}  // namespace dogwatch::process
