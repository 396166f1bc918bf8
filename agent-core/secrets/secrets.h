#pragma once
// Secret backend: resolves ENC[handle] configuration values by running the user's
// secret_backend_command, following the Datadog Agent's protocol (reference: datadog-wire.md 5.2).
//
// Secret values are never written to logs or error messages; only handles, sizes and types are.

#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace dogwatch::secrets {

inline constexpr size_t kDefaultMaxOutputBytes = 1024 * 1024;

struct BackendOptions {
  std::string command;                               // secret_backend_command
  std::vector<std::string> arguments;                // secret_backend_arguments
  absl::Duration timeout = absl::Seconds(30);        // secret_backend_timeout
  size_t max_output_bytes = kDefaultMaxOutputBytes;  // secret_backend_output_max_size
  bool skip_permission_checks = false;               // secret_backend_skip_checks
  bool allow_group_exec = false;                     // secret_backend_command_allow_group_exec_perm
  bool remove_trailing_line_break = false;           // secret_backend_remove_trailing_line_break
  uid_t expected_owner = geteuid();                  // the agent's own user
};

// Checks that the executable is a regular file owned by expected_owner, executable by its owner,
// with no group/other permissions (or, with allow_group_exec, group r-x at most and nothing for
// other). The error names the path, the actual mode in octal and owner, and what is required.
// Symlinks are followed: the check applies to the file that would be executed.
absl::Status CheckExecutablePermissions(const BackendOptions& options);

// Parses the backend's stdout: {"h1": {"value": "...", "error": null}, ...}. The input must be at
// most max_output_bytes, the document a JSON object whose members are all objects. Every requested
// handle must be present with no error and a non-empty string value; otherwise the error names the
// handle and the reason and NEVER contains a secret value. Handles the backend returned but nobody
// asked for are ignored. Duplicate handles in the response are rejected as ambiguous.
//
// As in the Datadog Agent, "error": "" counts as no error (backends written against it emit that),
// and with remove_trailing_line_break all trailing '\r' and '\n' are removed before the empty check.
absl::StatusOr<absl::flat_hash_map<std::string, std::string>> ParseBackendResponse(
    std::string_view output, const std::vector<std::string>& requested_handles,
    bool remove_trailing_line_break, size_t max_output_bytes = kDefaultMaxOutputBytes);

// Runs the backend once for all handles, writing
// {"version":"1.0","secrets":[...],"secret_backend_timeout":N} (N in whole seconds, rounded up) to
// its stdin. Errors: permission check failure, spawn failure, timeout, nonzero exit or death by
// signal (with a sanitized stderr snippet of at most 256 bytes), oversize output, parse errors.
// An empty handle list resolves to an empty map without running anything.
absl::StatusOr<absl::flat_hash_map<std::string, std::string>> Resolve(
    const BackendOptions& options, const std::vector<std::string>& handles);

// True, and sets *handle when handle is not null, when `value` is of the whole form ENC[handle]
// once surrounding ASCII whitespace is trimmed, with a non-empty handle. As in the Datadog Agent the
// handle is everything between "ENC[" and the final "]", so it may itself contain brackets.
bool ParseEncHandle(std::string_view value, std::string* handle);

}  // namespace dogwatch::secrets
