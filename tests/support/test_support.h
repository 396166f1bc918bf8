#pragma once
// Helpers for integration tests that drive the real dogwatch executables.

#include <netinet/in.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace dogwatch::testing {

// A directory under /tmp, removed (recursively) when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  // Writes `content` to File(name) with `mode`; returns the path.
  std::string Write(const std::string& name, const std::string& content, unsigned mode = 0644) const;

 private:
  std::string path_;
};

std::string BinDir();  // $DOGWATCH_BIN_DIR, set by ctest
std::string Bin(const std::string& name);
std::string ReadFile(const std::string& path);

// A child process with stdout/stderr captured to files.
class Process {
 public:
  Process(std::vector<std::string> argv, std::map<std::string, std::string> env, const std::string& log_dir,
          const std::string& log_name);
  ~Process();  // SIGKILL if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool Running();
  void Signal(int sig);
  // Waits for exit; returns the exit code, 128+signal when killed, or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  std::string Stdout() const;
  std::string Stderr() const;

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  bool reaped_ = false;
  std::string stdout_path_;
  std::string stderr_path_;
};

// Runs a command to completion (with a timeout); returns exit code and captured output.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CommandResult RunCommand(std::vector<std::string> argv, std::map<std::string, std::string> env = {},
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

// `podman run ARGS...` for a container named `name` (ARGS must include `--name name`). podman 4.3
// (Debian 12) sometimes fails a container's start with "write child: broken pipe", a race on
// conmon's sync pipe that a second start does not hit (containers/conmon#438,
// testcontainers-java#6640): on that error only, the half-created container is removed and the run
// tried once more, and the first error is printed to stderr so it stays visible in the test log.
CommandResult PodmanRun(const std::vector<std::string>& args, const std::string& name,
                        std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Polls `condition` every 50 ms until true or timeout.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// A TCP port free on 127.0.0.1 at the time of the call.
int FreePort();

// A TCP socket listening on 127.0.0.1 at a port the kernel chose; fd is -1 if that failed.
struct LoopbackListener {
  int fd = -1;
  sockaddr_in addr{};
  int port() const { return ntohs(addr.sin_port); }
};
LoopbackListener ListenOnLoopback(int backlog);

struct HttpResult {
  long status = 0;  // 0: no answer
  std::string body;
};
HttpResult HttpGet(const std::string& url);
HttpResult HttpPost(const std::string& url, const std::string& body,
                    const std::vector<std::pair<std::string, std::string>>& headers = {});

}  // namespace dogwatch::testing
