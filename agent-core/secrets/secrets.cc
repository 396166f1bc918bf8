#include "agent-core/secrets/secrets.h"

#include <errno.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/process/run_command.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace dogwatch::secrets {
namespace {

constexpr std::string_view kErrorPrefix = "secret backend: ";
constexpr std::string_view kPayloadVersion = "1.0";
// The backend's stderr is only diagnostics: keep enough for the debug log, bound the rest.
constexpr size_t kMaxStderrBytes = 64 * 1024;
constexpr size_t kMaxStderrSnippetBytes = 256;
// Handles, paths and backend error messages are echoed into errors; bound them so that a hostile
// or broken backend cannot make an error message arbitrarily large.
constexpr size_t kMaxEchoedNameBytes = 256;
constexpr size_t kMaxBackendErrorBytes = 256;

// Debian's absl::string_view is a distinct type from std::string_view, so absl::StrCat does not take
// the latter; Concat converts it and passes everything else through.
inline absl::string_view ToAlphaNumArg(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}
template <typename T>
const T& ToAlphaNumArg(const T& value) {
  return value;
}
template <typename... Parts>
std::string Concat(const Parts&... parts) {
  return absl::StrCat(ToAlphaNumArg(parts)...);
}

const std::shared_ptr<spdlog::logger>& Logger() {
  static const std::shared_ptr<spdlog::logger> logger = dogwatch::log::Get("secrets");
  return logger;
}

std::string ErrnoText(int err) {
  char buf[128];
  // The GNU strerror_r returns a pointer that may or may not point into buf.
  return std::string(strerror_r(err, buf, sizeof(buf)));
}

// One byte of untrusted text as it appears in a message: printable ASCII as is, the rest escaped.
size_t EscapeByte(unsigned char c, char (&piece)[4]) {
  static constexpr char kHex[] = "0123456789abcdef";
  if (c >= 0x20 && c < 0x7f) {
    piece[0] = static_cast<char>(c);
    return 1;
  }
  piece[0] = '\\';
  if (c == '\n' || c == '\r' || c == '\t') {
    piece[1] = c == '\n' ? 'n' : (c == '\r' ? 'r' : 't');
    return 2;
  }
  piece[1] = 'x';
  piece[2] = kHex[c >> 4];
  piece[3] = kHex[c & 0xf];
  return 4;
}

// Makes untrusted text safe to put in a one-line message. The result never exceeds max_bytes; a cut
// is marked with "...".
std::string Sanitize(std::string_view text, size_t max_bytes) {
  static constexpr std::string_view kEllipsis = "...";
  char piece[4];
  size_t escaped_size = 0;
  for (char c : text) escaped_size += EscapeByte(static_cast<unsigned char>(c), piece);
  const bool fits = escaped_size <= max_bytes;
  const size_t budget = fits ? max_bytes : (max_bytes > kEllipsis.size() ? max_bytes - kEllipsis.size() : 0);

  std::string out;
  out.reserve(std::min(escaped_size, max_bytes));
  for (char c : text) {
    const size_t piece_size = EscapeByte(static_cast<unsigned char>(c), piece);
    if (out.size() + piece_size > budget) break;
    out.append(piece, piece_size);
  }
  if (!fits && out.size() + kEllipsis.size() <= max_bytes) out.append(kEllipsis);
  return out;
}

std::string Quoted(std::string_view name) { return Concat("'", Sanitize(name, kMaxEchoedNameBytes), "'"); }

absl::Status Error(absl::StatusCode code, std::string_view message) {
  return absl::Status(code, Concat(kErrorPrefix, message));
}

std::string_view JsonTypeName(const rapidjson::Value& value) {
  switch (value.GetType()) {
    case rapidjson::kNullType:
      return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return "boolean";
    case rapidjson::kObjectType:
      return "object";
    case rapidjson::kArrayType:
      return "array";
    case rapidjson::kStringType:
      return "string";
    case rapidjson::kNumberType:
      return "number";
  }
  return "unknown";
}

std::string_view StringOf(const rapidjson::Value& value) {
  return std::string_view(value.GetString(), value.GetStringLength());
}

std::string DescribeUid(uid_t uid) {
  struct passwd entry {};
  struct passwd* found = nullptr;
  char buffer[1024];
  if (getpwuid_r(uid, &entry, buffer, sizeof(buffer), &found) == 0 && found != nullptr && found->pw_name) {
    return Concat("uid ", uid, " (", Sanitize(found->pw_name, kMaxEchoedNameBytes), ")");
  }
  return Concat("uid ", uid);
}

std::string FileTypeName(mode_t mode) {
  if (S_ISDIR(mode)) return "it is a directory";
  if (S_ISCHR(mode)) return "it is a character device";
  if (S_ISBLK(mode)) return "it is a block device";
  if (S_ISFIFO(mode)) return "it is a FIFO";
  if (S_ISSOCK(mode)) return "it is a socket";
  return "it is not a regular file";
}

std::string OctalMode(mode_t mode) {
  char buf[16];
  snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string_view TrimAsciiWhitespace(std::string_view text) {
  constexpr std::string_view kWhitespace = " \t\n\r\f\v";
  const size_t first = text.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  const size_t last = text.find_last_not_of(kWhitespace);
  return text.substr(first, last - first + 1);
}

std::string_view TrimTrailingLineBreaks(std::string_view text) {
  const size_t last = text.find_last_not_of("\r\n");
  return last == std::string_view::npos ? std::string_view() : text.substr(0, last + 1);
}

// Checks one requested handle's entry and returns its value. Error messages name the handle and the
// reason but never include the value, whatever its type.
absl::StatusOr<std::string> ExtractValue(std::string_view handle, const rapidjson::Value& entry,
                                         bool remove_trailing_line_break) {
  auto error_member = entry.FindMember("error");
  if (error_member != entry.MemberEnd() && !error_member->value.IsNull()) {
    const rapidjson::Value& error = error_member->value;
    if (!error.IsString()) {
      return Error(absl::StatusCode::kInvalidArgument,
                   Concat("handle ", Quoted(handle), ": \"error\" must be a string or null, got ",
                          JsonTypeName(error)));
    }
    // An empty string is how backends written for the Datadog Agent say "no error".
    if (error.GetStringLength() > 0) {
      return Error(absl::StatusCode::kFailedPrecondition,
                   Concat("handle ", Quoted(handle), " could not be resolved, the backend reported: ",
                          Sanitize(StringOf(error), kMaxBackendErrorBytes)));
    }
  }

  auto value_member = entry.FindMember("value");
  if (value_member == entry.MemberEnd() || value_member->value.IsNull()) {
    return Error(absl::StatusCode::kInvalidArgument,
                 Concat("handle ", Quoted(handle), ": the backend returned no \"value\""));
  }
  const rapidjson::Value& value = value_member->value;
  if (!value.IsString()) {
    return Error(
        absl::StatusCode::kInvalidArgument,
        Concat("handle ", Quoted(handle), ": \"value\" must be a string, got ", JsonTypeName(value)));
  }
  std::string_view secret = StringOf(value);
  if (remove_trailing_line_break) secret = TrimTrailingLineBreaks(secret);
  if (secret.empty()) {
    return Error(absl::StatusCode::kFailedPrecondition,
                 Concat("handle ", Quoted(handle), ": the resolved value is empty"));
  }
  return std::string(secret);
}

absl::StatusOr<std::string> BuildRequestPayload(const std::vector<std::string>& handles,
                                                absl::Duration timeout) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("version");
  writer.String(kPayloadVersion.data(), static_cast<rapidjson::SizeType>(kPayloadVersion.size()));
  writer.Key("secrets");
  writer.StartArray();
  for (const std::string& handle : handles) {
    writer.String(handle.data(), static_cast<rapidjson::SizeType>(handle.size()));
  }
  writer.EndArray();
  writer.Key("secret_backend_timeout");
  // Whole seconds as the Agent sends them; rounding up never tells the backend it has less time.
  writer.Int64(absl::ToInt64Seconds(absl::Ceil(timeout, absl::Seconds(1))));
  writer.EndObject();
  if (!writer.IsComplete()) {
    return Error(absl::StatusCode::kInternal, "could not serialize the request payload");
  }
  return std::string(buffer.GetString(), buffer.GetSize());
}

absl::Status ValidateOptions(const BackendOptions& options, const std::vector<std::string>& handles) {
  if (options.command.empty()) {
    return Error(absl::StatusCode::kInvalidArgument, "secret_backend_command is not set");
  }
  if (options.timeout <= absl::ZeroDuration() || options.timeout == absl::InfiniteDuration()) {
    return Error(absl::StatusCode::kInvalidArgument,
                 Concat("secret_backend_timeout must be a positive number of seconds, got ",
                        absl::FormatDuration(options.timeout)));
  }
  if (options.max_output_bytes == 0) {
    return Error(absl::StatusCode::kInvalidArgument, "secret_backend_output_max_size must be positive");
  }
  for (const std::string& handle : handles) {
    if (handle.empty()) return Error(absl::StatusCode::kInvalidArgument, "empty secret handle requested");
    if (handle.size() > std::numeric_limits<rapidjson::SizeType>::max()) {
      return Error(absl::StatusCode::kInvalidArgument, "secret handle is too long");
    }
  }
  return absl::OkStatus();
}

// Adds the config key to tune to the run errors where one exists, keeping the status code.
absl::Status RunFailure(const absl::Status& status) {
  std::string_view hint;
  if (absl::IsDeadlineExceeded(status)) hint = " (secret_backend_timeout)";
  if (absl::IsResourceExhausted(status)) hint = " (secret_backend_output_max_size)";
  return Error(status.code(),
               Concat(std::string_view(status.message().data(), status.message().size()), hint));
}

std::string StderrSnippet(std::string_view stderr_data) {
  std::string_view trimmed = TrimAsciiWhitespace(stderr_data);
  if (trimmed.empty()) return "stderr was empty";
  return Concat("stderr: ", Sanitize(trimmed, kMaxStderrSnippetBytes));
}

absl::Status CheckPermissionsUnguarded(const BackendOptions& options) {
  if (options.command.empty()) {
    return Error(absl::StatusCode::kInvalidArgument, "secret_backend_command is not set");
  }
  const std::string path = Quoted(options.command);
  struct stat info {};
  if (stat(options.command.c_str(), &info) != 0) {
    const int err = errno;
    return Error(
        err == ENOENT || err == ENOTDIR ? absl::StatusCode::kNotFound : absl::StatusCode::kPermissionDenied,
        Concat("invalid executable ", path, ": cannot stat it: ", ErrnoText(err)));
  }

  const mode_t forbidden = options.allow_group_exec ? (S_IWGRP | S_IRWXO) : (S_IRWXG | S_IRWXO);
  std::string problem;
  if (!S_ISREG(info.st_mode)) {
    problem = FileTypeName(info.st_mode);
  } else if (info.st_uid != options.expected_owner) {
    problem = "it has the wrong owner";
  } else if ((info.st_mode & forbidden) != 0) {
    problem = options.allow_group_exec ? "'group' can write to it or 'other' has permissions on it"
                                       : "'group' or 'other' have permissions on it";
  } else if ((info.st_mode & S_IXUSR) == 0) {
    problem = "its owner cannot execute it";
  } else {
    return absl::OkStatus();
  }

  const std::string requirement =
      options.allow_group_exec
          ? "at most read and execute for 'group' and nothing for 'other' (e.g. 0700, 0750 or 0550)"
          : "no permissions for 'group' or 'other' (e.g. 0700 or 0500)";
  return Error(absl::StatusCode::kPermissionDenied,
               Concat("invalid executable ", path, ": ", problem, ". It has mode ", OctalMode(info.st_mode),
                      " and owner ", DescribeUid(info.st_uid), "; required: a regular file owned by ",
                      DescribeUid(options.expected_owner), ", executable by its owner, with ", requirement));
}

absl::StatusOr<absl::flat_hash_map<std::string, std::string>> ParseResponseUnguarded(
    std::string_view output, const std::vector<std::string>& requested_handles,
    bool remove_trailing_line_break, size_t max_output_bytes) {
  if (output.size() > max_output_bytes) {
    return Error(absl::StatusCode::kResourceExhausted,
                 Concat("response is ", output.size(), " bytes, more than the ", max_output_bytes,
                        " allowed (secret_backend_output_max_size)"));
  }
  // RapidJSON treats NUL as the end of input, so "{}\0garbage" would otherwise be accepted.
  if (const size_t nul = output.find('\0'); nul != std::string_view::npos) {
    return Error(absl::StatusCode::kInvalidArgument,
                 Concat("response is not valid JSON: NUL byte at offset ", nul));
  }

  rapidjson::Document document;
  // Iterative parsing keeps nesting depth off the call stack; trailing content after the document is
  // an error because kParseStopWhenDoneFlag is not set.
  constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
  document.Parse<kParseFlags>(output.data(), output.size());
  if (document.HasParseError()) {
    std::string_view reason = rapidjson::GetParseError_En(document.GetParseError());
    if (reason.ends_with('.')) reason.remove_suffix(1);
    return Error(absl::StatusCode::kInvalidArgument,
                 Concat("response is not valid JSON: ", reason, " at offset ", document.GetErrorOffset()));
  }
  if (!document.IsObject()) {
    return Error(
        absl::StatusCode::kInvalidArgument,
        Concat("response must be a JSON object mapping handles to results, got ", JsonTypeName(document)));
  }

  // Const iterators: comparing the mutable ones is ambiguous under C++20's rewritten operators.
  const rapidjson::Value& root = document;
  absl::flat_hash_map<std::string_view, const rapidjson::Value*> entries;
  entries.reserve(root.MemberCount());
  for (auto member = root.MemberBegin(); member != root.MemberEnd(); ++member) {
    const std::string_view handle = StringOf(member->name);
    if (!member->value.IsObject()) {
      return Error(absl::StatusCode::kInvalidArgument,
                   Concat("response entry for handle ", Quoted(handle), " must be a JSON object, got ",
                          JsonTypeName(member->value)));
    }
    // JSON parsers disagree on which duplicate wins; refuse to guess which secret was meant.
    if (!entries.emplace(handle, &member->value).second) {
      return Error(absl::StatusCode::kInvalidArgument,
                   Concat("response contains handle ", Quoted(handle), " more than once"));
    }
  }

  absl::flat_hash_map<std::string, std::string> resolved;
  resolved.reserve(requested_handles.size());
  for (const std::string& handle : requested_handles) {
    auto entry = entries.find(std::string_view(handle));
    if (entry == entries.end()) {
      return Error(absl::StatusCode::kNotFound,
                   Concat("handle ", Quoted(handle), " was not resolved: it is missing from the response"));
    }
    absl::StatusOr<std::string> value = ExtractValue(handle, *entry->second, remove_trailing_line_break);
    if (!value.ok()) return value.status();
    resolved.insert_or_assign(handle, *std::move(value));
  }
  return resolved;
}

absl::StatusOr<absl::flat_hash_map<std::string, std::string>> ResolveUnguarded(
    const BackendOptions& options, const std::vector<std::string>& handles) {
  absl::Status valid = ValidateOptions(options, handles);
  if (!valid.ok()) return valid;
  if (handles.empty()) return absl::flat_hash_map<std::string, std::string>();

  if (!options.skip_permission_checks) {
    absl::Status permissions = CheckPermissionsUnguarded(options);
    if (!permissions.ok()) return permissions;
  }

  absl::StatusOr<std::string> payload = BuildRequestPayload(handles, options.timeout);
  if (!payload.ok()) return payload.status();

  process::RunCommandOptions run;
  run.argv.reserve(options.arguments.size() + 1);
  run.argv.push_back(options.command);
  run.argv.insert(run.argv.end(), options.arguments.begin(), options.arguments.end());
  run.stdin_data = *std::move(payload);
  run.timeout = options.timeout;
  run.max_stdout_bytes = options.max_output_bytes;
  run.max_stderr_bytes = kMaxStderrBytes;

  Logger()->debug("running secret_backend_command '{}' for {} handle(s)", Sanitize(options.command, 1024),
                  handles.size());
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<process::CommandResult> result = process::RunCommand(run);
  const auto elapsed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  if (!result.ok()) {
    Logger()->debug("secret_backend_command failed after {} ms", elapsed_ms);
    return RunFailure(result.status());
  }
  // stderr is the backend's only diagnostic channel; log it even on success (values never go there
  // unless the backend itself puts them there).
  if (!result->stderr_data.empty()) {
    Logger()->debug("secret_backend_command stderr{}: {}", result->stderr_truncated ? " (truncated)" : "",
                    Sanitize(result->stderr_data, kMaxStderrBytes));
  }
  if (result->term_signal != 0) {
    return Error(absl::StatusCode::kUnknown,
                 Concat("command ", Quoted(options.command), " was killed by signal ", result->term_signal,
                        "; ", StderrSnippet(result->stderr_data)));
  }
  if (result->exit_code != 0) {
    return Error(absl::StatusCode::kUnknown,
                 Concat("command ", Quoted(options.command), " exited with status ", result->exit_code, "; ",
                        StderrSnippet(result->stderr_data)));
  }
  Logger()->debug("secret_backend_command completed in {} ms with {} bytes of output", elapsed_ms,
                  result->stdout_data.size());
  return ParseResponseUnguarded(result->stdout_data, handles, options.remove_trailing_line_break,
                                options.max_output_bytes);
}

// Only allocation failures (and spdlog) can throw below the public functions; turn them into a
// status so that no exception crosses the module boundary.
template <typename Fn>
auto GuardExceptions(Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return Error(absl::StatusCode::kInternal, Concat("unexpected failure: ", e.what()));
  }
}

}  // namespace

absl::Status CheckExecutablePermissions(const BackendOptions& options) {
  return GuardExceptions([&] { return CheckPermissionsUnguarded(options); });
}

absl::StatusOr<absl::flat_hash_map<std::string, std::string>> ParseBackendResponse(
    std::string_view output, const std::vector<std::string>& requested_handles,
    bool remove_trailing_line_break, size_t max_output_bytes) {
  return GuardExceptions([&] {
    return ParseResponseUnguarded(output, requested_handles, remove_trailing_line_break, max_output_bytes);
  });
}

absl::StatusOr<absl::flat_hash_map<std::string, std::string>> Resolve(
    const BackendOptions& options, const std::vector<std::string>& handles) {
  return GuardExceptions([&] { return ResolveUnguarded(options, handles); });
}

bool ParseEncHandle(std::string_view value, std::string* handle) {
  constexpr std::string_view kPrefix = "ENC[";
  constexpr std::string_view kSuffix = "]";
  const std::string_view trimmed = TrimAsciiWhitespace(value);
  if (trimmed.size() <= kPrefix.size() + kSuffix.size()) return false;
  if (!trimmed.starts_with(kPrefix) || !trimmed.ends_with(kSuffix)) return false;
  if (handle != nullptr) {
    handle->assign(trimmed.substr(kPrefix.size(), trimmed.size() - kPrefix.size() - kSuffix.size()));
  }
  return true;
}

}  // namespace dogwatch::secrets
