#include "common/process/run_command.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"

namespace dogwatch::process {
namespace {

constexpr size_t kReadChunkBytes = 64 * 1024;
constexpr size_t kWriteChunkBytes = 64 * 1024;
// Without a pidfd the loop polls for the child's exit at this period.
constexpr int kExitPollFallbackMs = 10;
constexpr const char* kDefaultPath = "PATH=/usr/bin:/bin";

std::string ErrnoText(int err) {
  char buf[128];
  // The GNU strerror_r returns a pointer that may or may not point into buf.
  return std::string(strerror_r(err, buf, sizeof(buf)));
}

// Owns one file descriptor and closes it on destruction. close() is not retried on EINTR: Linux
// releases the descriptor even then, and a retry could close a descriptor another thread just got.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  UniqueFd read_end;
  UniqueFd write_end;
};

absl::StatusOr<Pipe> MakePipe(const std::string& purpose) {
  int fds[2];
  // O_CLOEXEC at creation: a fork+exec on another thread must not inherit these, or it would hold
  // our pipes open and we would never see EOF.
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("cannot create ", purpose, " pipe: ", ErrnoText(errno)));
  }
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

absl::Status SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return absl::InternalError(absl::StrCat("cannot make pipe non-blocking: ", ErrnoText(errno)));
  }
  return absl::OkStatus();
}

// What the child reports through the exec-status pipe when it cannot start the program.
struct ChildFailure {
  enum Stage : int { kSetupStdio = 1, kExec = 2 };
  int stage;
  int error;
};

// Everything the child needs, prepared before fork: between fork and exec only async-signal-safe
// calls are allowed (the agent is multithreaded), so no allocation happens there.
struct ChildPlan {
  int stdin_fd;
  int stdout_fd;
  int stderr_fd;
  int status_fd;
  const char* path;
  char* const* argv;
  char* const* envp;
  int fallback_max_fd;
};

int RetryDup2(int from, int to) {
  int result;
  do {
    result = dup2(from, to);
  } while (result < 0 && errno == EINTR);
  return result;
}

// Moves fd to a number >= 3 so that installing the standard descriptors cannot overwrite it.
int MoveAboveStdio(int fd) {
  if (fd > STDERR_FILENO) return fd;
  return fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
}

void CloseFdRange(unsigned first, unsigned last, int fallback_max_fd) {
  if (first > last) return;
#ifdef SYS_close_range
  if (syscall(SYS_close_range, first, last, 0) == 0) return;
#endif
  // Kernels before 5.9: close one by one up to the descriptor limit.
  unsigned stop = std::min<unsigned>(last, static_cast<unsigned>(fallback_max_fd));
  for (unsigned fd = first; fd <= stop; ++fd) close(static_cast<int>(fd));
}

[[noreturn]] void ReportFailureAndExit(int status_fd, ChildFailure::Stage stage, int error) {
  ChildFailure failure{stage, error};
  ssize_t written;
  do {
    written = write(status_fd, &failure, sizeof(failure));
  } while (written < 0 && errno == EINTR);
  _exit(127);
}

[[noreturn]] void RunChild(const ChildPlan& plan) {
  // Own process group, so a timeout can kill the backend together with anything it spawned.
  setpgid(0, 0);

  // The parent blocked every signal around fork so that none of its handlers can run here. Reset
  // dispositions before unblocking: ignored signals (SIGPIPE in many daemons) survive exec.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, &default_action, nullptr);  // fails harmlessly for glibc-reserved signals
  }

  int stdin_fd = MoveAboveStdio(plan.stdin_fd);
  int stdout_fd = MoveAboveStdio(plan.stdout_fd);
  int stderr_fd = MoveAboveStdio(plan.stderr_fd);
  int status_fd = MoveAboveStdio(plan.status_fd);
  if (status_fd < 0) _exit(127);  // nowhere to report to; the parent sees exit 127
  if (stdin_fd < 0 || stdout_fd < 0 || stderr_fd < 0 || RetryDup2(stdin_fd, STDIN_FILENO) < 0 ||
      RetryDup2(stdout_fd, STDOUT_FILENO) < 0 || RetryDup2(stderr_fd, STDERR_FILENO) < 0) {
    ReportFailureAndExit(status_fd, ChildFailure::kSetupStdio, errno);
  }

  // Close everything else, keeping only the status pipe (close-on-exec) for reporting exec errors.
  // Descriptors leaked without O_CLOEXEC by other code must not reach the backend.
  const unsigned status = static_cast<unsigned>(status_fd);
  CloseFdRange(STDERR_FILENO + 1, status - 1, plan.fallback_max_fd);
  CloseFdRange(status + 1, ~0U, plan.fallback_max_fd);

  sigset_t empty;
  sigemptyset(&empty);
  sigprocmask(SIG_SETMASK, &empty, nullptr);

  execve(plan.path, plan.argv, plan.envp);
  ReportFailureAndExit(status_fd, ChildFailure::kExec, errno);
}

// Blocks SIGPIPE on this thread while we write to a child that may have gone away, then discards
// the SIGPIPE our own writes raised. Changing the process-wide disposition instead would alter
// behaviour for the rest of the agent.
class ScopedSigpipeSuppression {
 public:
  ScopedSigpipeSuppression() {
    sigemptyset(&sigpipe_set_);
    sigaddset(&sigpipe_set_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    // A SIGPIPE that was already pending belongs to someone else: leave it alone.
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &sigpipe_set_, &saved_mask_);
  }
  ScopedSigpipeSuppression(const ScopedSigpipeSuppression&) = delete;
  ScopedSigpipeSuppression& operator=(const ScopedSigpipeSuppression&) = delete;
  ~ScopedSigpipeSuppression() {
    if (!was_pending_) {
      const struct timespec no_wait {};
      while (sigtimedwait(&sigpipe_set_, nullptr, &no_wait) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &saved_mask_, nullptr);
  }

 private:
  sigset_t sigpipe_set_;
  sigset_t saved_mask_;
  bool was_pending_ = false;
};

// The child stays a zombie (unreaped) until the very end, so its pid and process-group id cannot be
// reused and killing them is always safe.
void KillProcessGroup(pid_t pid) {
  kill(-pid, SIGKILL);
  // The child may not have reached setpgid yet; kill it directly too.
  kill(pid, SIGKILL);
}

// Returns the wait status, or -1 when it cannot be collected (e.g. SIGCHLD set to SIG_IGN).
int Reap(pid_t pid) {
  int status = 0;
  pid_t result;
  do {
    result = waitpid(pid, &status, 0);
  } while (result < 0 && errno == EINTR);
  return result == pid ? status : -1;
}

int OpenPidFd(pid_t pid) {
#ifdef SYS_pidfd_open
  // pidfds (Linux 5.3+) are close-on-exec by default and become readable when the process exits.
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  return -1;
#endif
}

// True once the child has exited; does not reap it.
bool HasExited(pid_t pid) {
  siginfo_t info{};
  int result;
  do {
    result = waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
  } while (result < 0 && errno == EINTR);
  if (result < 0) return errno == ECHILD;  // already reaped by someone else: nothing to wait for
  return info.si_pid == pid;
}

std::string FormatSeconds(absl::Duration duration) { return absl::StrCat(absl::ToDoubleSeconds(duration)); }

absl::Status ValidateOptions(const RunCommandOptions& options) {
  if (options.argv.empty() || options.argv[0].empty()) {
    return absl::InvalidArgumentError("run command: no executable given");
  }
  for (const std::string& arg : options.argv) {
    if (arg.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError("run command: argument contains a NUL byte");
    }
  }
  if (options.env) {
    for (const std::string& entry : *options.env) {
      if (entry.find('\0') != std::string::npos) {
        return absl::InvalidArgumentError("run command: environment entry contains a NUL byte");
      }
    }
  }
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("run command: timeout must be positive, got ", absl::FormatDuration(options.timeout)));
  }
  return absl::OkStatus();
}

absl::Status StartFailureStatus(const std::string& path, const ChildFailure& failure) {
  std::string message =
      failure.stage == ChildFailure::kExec
          ? absl::StrCat("cannot execute '", path, "': ", ErrnoText(failure.error))
          : absl::StrCat("cannot set up stdio for '", path, "': ", ErrnoText(failure.error));
  switch (failure.error) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InternalError(message);
  }
}

// Runs the poll loop for one started child. Owns the parent's ends of the pipes.
class ChildSession {
 public:
  ChildSession(const RunCommandOptions& options, pid_t pid, UniqueFd stdin_w, UniqueFd stdout_r,
               UniqueFd stderr_r, UniqueFd status_r)
      : options_(options),
        path_(options.argv[0]),
        pid_(pid),
        stdin_w_(std::move(stdin_w)),
        stdout_r_(std::move(stdout_r)),
        stderr_r_(std::move(stderr_r)),
        status_r_(std::move(status_r)),
        pid_fd_(OpenPidFd(pid)),
        read_buffer_(new char[kReadChunkBytes]) {}

  absl::StatusOr<CommandResult> Run() {
    absl::Status status = Loop();
    if (!status.ok()) {
      KillProcessGroup(pid_);
      Reap(pid_);
      return status;
    }
    int wait_status = Reap(pid_);
    if (wait_status < 0) {
      return absl::InternalError(
          absl::StrCat("cannot collect the exit status of '", path_, "' (is SIGCHLD ignored?)"));
    }
    if (WIFEXITED(wait_status)) {
      result_.exit_code = WEXITSTATUS(wait_status);
    } else if (WIFSIGNALED(wait_status)) {
      result_.term_signal = WTERMSIG(wait_status);
    }
    return std::move(result_);
  }

 private:
  using Clock = std::chrono::steady_clock;

  absl::Status Loop() {
    const bool has_deadline = options_.timeout != absl::InfiniteDuration();
    const Clock::time_point deadline =
        has_deadline ? Clock::now() + absl::ToChronoNanoseconds(options_.timeout) : Clock::time_point::max();
    if (options_.stdin_data.empty()) stdin_w_.Reset();  // immediate EOF for the child

    bool child_exited = false;
    while (!child_exited || stdout_r_.valid() || stderr_r_.valid() || status_r_.valid()) {
      int wait_ms = -1;
      if (has_deadline) {
        const auto remaining = deadline - Clock::now();
        if (remaining <= Clock::duration::zero()) {
          return absl::DeadlineExceededError(
              absl::StrCat("command '", path_, "' timed out after ", FormatSeconds(options_.timeout), " s"));
        }
        // Round up so we never spin on a sub-millisecond remainder.
        const auto remaining_ms = std::chrono::ceil<std::chrono::milliseconds>(remaining).count();
        wait_ms = static_cast<int>(std::min<int64_t>(remaining_ms, INT_MAX));
      }
      if (!child_exited && !pid_fd_.valid()) {
        wait_ms = wait_ms < 0 ? kExitPollFallbackMs : std::min(wait_ms, kExitPollFallbackMs);
      }

      pollfd fds[5];
      nfds_t count = 0;
      auto add = [&](const UniqueFd& fd, short events) -> pollfd* {
        if (!fd.valid()) return nullptr;
        fds[count] = pollfd{fd.get(), events, 0};
        return &fds[count++];
      };
      pollfd* stdin_poll = add(stdin_w_, POLLOUT);
      pollfd* stdout_poll = add(stdout_r_, POLLIN);
      pollfd* stderr_poll = add(stderr_r_, POLLIN);
      pollfd* status_poll = add(status_r_, POLLIN);
      pollfd* exit_poll = child_exited ? nullptr : add(pid_fd_, POLLIN);

      if (poll(fds, count, wait_ms) < 0) {
        if (errno == EINTR) continue;
        return absl::InternalError(
            absl::StrCat("poll failed while running '", path_, "': ", ErrnoText(errno)));
      }

      if (status_poll && status_poll->revents) RETURN_IF_ERROR(ReadStatusPipe());
      if (stdin_poll && stdin_poll->revents) WriteStdin();
      if (stdout_poll && stdout_poll->revents) RETURN_IF_ERROR(ReadStdout());
      if (stderr_poll && stderr_poll->revents) RETURN_IF_ERROR(ReadStderr());
      if (!child_exited && (!pid_fd_.valid() || (exit_poll && exit_poll->revents))) {
        child_exited = HasExited(pid_);
      }
    }
    return absl::OkStatus();
  }

  // Reads at most one chunk. Returns the byte count, 0 at EOF, or -1 when there is nothing to read
  // yet (a spurious wakeup or EINTR).
  absl::StatusOr<ssize_t> ReadChunk(UniqueFd& fd, const char* stream) {
    ssize_t n = read(fd.get(), read_buffer_.get(), kReadChunkBytes);
    if (n >= 0) {
      if (n == 0) fd.Reset();
      return n;
    }
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return -1;
    return absl::InternalError(
        absl::StrCat("cannot read the ", stream, " of '", path_, "': ", ErrnoText(errno)));
  }

  absl::Status ReadStdout() {
    absl::StatusOr<ssize_t> n = ReadChunk(stdout_r_, "stdout");
    if (!n.ok()) return n.status();
    if (*n <= 0) return absl::OkStatus();
    const size_t size = static_cast<size_t>(*n);
    if (result_.stdout_data.size() + size > options_.max_stdout_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("command '", path_, "' output exceeds ", options_.max_stdout_bytes, " bytes"));
    }
    result_.stdout_data.append(read_buffer_.get(), size);
    return absl::OkStatus();
  }

  absl::Status ReadStderr() {
    absl::StatusOr<ssize_t> n = ReadChunk(stderr_r_, "stderr");
    if (!n.ok()) return n.status();
    if (*n <= 0) return absl::OkStatus();
    const size_t size = static_cast<size_t>(*n);
    const size_t room =
        options_.max_stderr_bytes - std::min(options_.max_stderr_bytes, result_.stderr_data.size());
    if (size > room) result_.stderr_truncated = true;
    // Keep draining even when full: a child blocked on a full stderr pipe would never finish.
    result_.stderr_data.append(read_buffer_.get(), std::min(size, room));
    return absl::OkStatus();
  }

  // The status pipe closes on a successful exec, or carries a ChildFailure when exec failed.
  absl::Status ReadStatusPipe() {
    char* dest = reinterpret_cast<char*>(&failure_) + failure_bytes_;
    ssize_t n = read(status_r_.get(), dest, sizeof(failure_) - failure_bytes_);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return absl::OkStatus();
      return absl::InternalError(
          absl::StrCat("cannot read the exec status of '", path_, "': ", ErrnoText(errno)));
    }
    failure_bytes_ += static_cast<size_t>(n);
    if (failure_bytes_ == sizeof(failure_)) return StartFailureStatus(path_, failure_);
    if (n == 0) {
      status_r_.Reset();
      if (failure_bytes_ != 0) {
        return absl::InternalError(absl::StrCat("cannot execute '", path_, "': truncated status from child"));
      }
    }
    return absl::OkStatus();
  }

  void WriteStdin() {
    const std::string& data = options_.stdin_data;
    const size_t chunk = std::min(kWriteChunkBytes, data.size() - stdin_offset_);
    ssize_t n = write(stdin_w_.get(), data.data() + stdin_offset_, chunk);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return;
      // EPIPE and friends: the child closed stdin or exited without reading it all. That is its
      // choice; its exit status and output tell the caller whether it worked.
      stdin_w_.Reset();
      return;
    }
    stdin_offset_ += static_cast<size_t>(n);
    if (stdin_offset_ == data.size()) stdin_w_.Reset();  // EOF tells the child the input is complete
  }

  const RunCommandOptions& options_;
  const std::string& path_;
  const pid_t pid_;
  UniqueFd stdin_w_;
  UniqueFd stdout_r_;
  UniqueFd stderr_r_;
  UniqueFd status_r_;
  UniqueFd pid_fd_;
  std::unique_ptr<char[]> read_buffer_;
  size_t stdin_offset_ = 0;
  ChildFailure failure_{};
  size_t failure_bytes_ = 0;
  CommandResult result_;
};

}  // namespace

absl::StatusOr<CommandResult> RunCommand(const RunCommandOptions& options) {
  absl::Status valid = ValidateOptions(options);
  if (!valid.ok()) return valid;

  // Everything execve needs is built before fork (no allocation in the child).
  std::vector<std::string> argv_storage = options.argv;
  std::vector<std::string> env_storage = options.env ? *options.env : std::vector<std::string>{kDefaultPath};
  std::vector<char*> argv_ptrs;
  for (std::string& arg : argv_storage) argv_ptrs.push_back(arg.data());
  argv_ptrs.push_back(nullptr);
  std::vector<char*> env_ptrs;
  for (std::string& entry : env_storage) env_ptrs.push_back(entry.data());
  env_ptrs.push_back(nullptr);

  struct rlimit fd_limit {};
  int fallback_max_fd = 65535;
  if (getrlimit(RLIMIT_NOFILE, &fd_limit) == 0 && fd_limit.rlim_cur != RLIM_INFINITY) {
    fallback_max_fd = static_cast<int>(std::min<rlim_t>(fd_limit.rlim_cur, INT_MAX));
  }

  absl::StatusOr<Pipe> stdin_pipe = MakePipe("stdin");
  if (!stdin_pipe.ok()) return stdin_pipe.status();
  absl::StatusOr<Pipe> stdout_pipe = MakePipe("stdout");
  if (!stdout_pipe.ok()) return stdout_pipe.status();
  absl::StatusOr<Pipe> stderr_pipe = MakePipe("stderr");
  if (!stderr_pipe.ok()) return stderr_pipe.status();
  absl::StatusOr<Pipe> status_pipe = MakePipe("exec status");
  if (!status_pipe.ok()) return status_pipe.status();
  for (int fd : {stdin_pipe->write_end.get(), stdout_pipe->read_end.get(), stderr_pipe->read_end.get(),
                 status_pipe->read_end.get()}) {
    absl::Status status = SetNonBlocking(fd);
    if (!status.ok()) return status;
  }

  const ChildPlan plan{stdin_pipe->read_end.get(),
                       stdout_pipe->write_end.get(),
                       stderr_pipe->write_end.get(),
                       status_pipe->write_end.get(),
                       argv_ptrs[0],
                       argv_ptrs.data(),
                       env_ptrs.data(),
                       fallback_max_fd};

  // Writing to a child that went away must give EPIPE, not kill the agent.
  ScopedSigpipeSuppression no_sigpipe;

  sigset_t all_signals;
  sigset_t saved_mask;
  sigfillset(&all_signals);
  pthread_sigmask(SIG_SETMASK, &all_signals, &saved_mask);
  const pid_t pid = fork();
  if (pid == 0) RunChild(plan);
  const int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &saved_mask, nullptr);
  if (pid < 0) {
    return absl::InternalError(
        absl::StrCat("cannot start '", options.argv[0], "': fork failed: ", ErrnoText(fork_errno)));
  }
  // Also set the group from the parent so that a kill right after fork already reaches the group.
  setpgid(pid, pid);

  // The child's ends belong to the child now; keeping them would hide its EOFs from us.
  stdin_pipe->read_end.Reset();
  stdout_pipe->write_end.Reset();
  stderr_pipe->write_end.Reset();
  status_pipe->write_end.Reset();

  ChildSession session(options, pid, std::move(stdin_pipe->write_end), std::move(stdout_pipe->read_end),
                       std::move(stderr_pipe->read_end), std::move(status_pipe->read_end));
  return session.Run();
}

}  // namespace dogwatch::process
