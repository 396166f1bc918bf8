#pragma once
// Supervisor mode for single-container deployments: `agent run` starts the enabled sub-agents,
// restarts a crashed one with backoff, and forwards SIGTERM on shutdown. Under systemd or
// Kubernetes each executable runs on its own and this stays off.

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace dogwatch::agent {

struct ChildSpec {
  std::string name;        // "trace-agent"
  std::string executable;  // absolute path
  std::vector<std::string> arguments;
  std::vector<std::string> extra_environment;  // NAME=VALUE added to the inherited environment
};

struct ChildState {
  std::string name;
  pid_t pid = 0;
  int64_t starts = 0;
  int64_t restarts = 0;
  std::string last_exit;  // "exit 1", "signal 9"
  absl::Time started;
};

class Supervisor {
 public:
  struct Options {
    absl::Duration initial_backoff = absl::Seconds(1);
    absl::Duration max_backoff = absl::Seconds(60);
    // A child that ran this long before exiting starts again from the initial backoff.
    absl::Duration healthy_after = absl::Seconds(60);
  };

  Supervisor() : Supervisor(Options{}) {}
  explicit Supervisor(Options options) : options_(options) {}
  ~Supervisor();

  // Every executable must exist and be executable before anything starts.
  absl::Status Start(std::vector<ChildSpec> children);
  // SIGTERM to every child, SIGKILL to those still alive after `deadline`.
  void Stop(absl::Duration deadline);
  std::vector<ChildState> States() const;

 private:
  void Watch(size_t index);
  absl::StatusOr<pid_t> Spawn(const ChildSpec& spec);

  const Options options_;
  std::vector<ChildSpec> specs_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ChildState> states_;
  std::vector<std::thread> watchers_;
  bool stopping_ = false;
};

}  // namespace dogwatch::agent
