#include "agent-core/core/supervisor.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "common/log/log.h"
#include "common/strings/strings.h"

extern char** environ;

namespace dogwatch::agent {

Supervisor::~Supervisor() { Stop(absl::Seconds(5)); }

absl::Status Supervisor::Start(std::vector<ChildSpec> children) {
  for (const auto& spec : children) {
    if (access(spec.executable.c_str(), X_OK) != 0) {
      return absl::NotFoundError(strings::Cat("supervisor: cannot execute ", spec.name, " at '",
                                              spec.executable, "': ", std::strerror(errno),
                                              " (set supervisor.bin_dir)"));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  specs_ = std::move(children);
  states_.resize(specs_.size());
  for (size_t i = 0; i < specs_.size(); ++i) {
    states_[i].name = specs_[i].name;
    watchers_.emplace_back([this, i] { Watch(i); });
  }
  return absl::OkStatus();
}

absl::StatusOr<pid_t> Supervisor::Spawn(const ChildSpec& spec) {
  std::vector<std::string> argv_storage{spec.executable};
  argv_storage.insert(argv_storage.end(), spec.arguments.begin(), spec.arguments.end());
  std::vector<char*> argv;
  for (auto& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    bool overridden = false;
    for (const auto& extra : spec.extra_environment) {
      size_t eq = extra.find('=');
      overridden = overridden || entry.substr(0, entry.find('=')) == std::string_view(extra).substr(0, eq);
    }
    if (!overridden) env_storage.emplace_back(entry);
  }
  env_storage.insert(env_storage.end(), spec.extra_environment.begin(), spec.extra_environment.end());
  std::vector<char*> envp;
  for (auto& entry : env_storage) envp.push_back(entry.data());
  envp.push_back(nullptr);

  // The core blocks SIGTERM/SIGINT/SIGHUP for its sigwait thread; children must get them again.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, spec.executable.c_str(), nullptr, &attr, argv.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return absl::InternalError(strings::Cat("supervisor: spawning ", spec.name, ": ", std::strerror(rc)));
  }
  return pid;
}

void Supervisor::Watch(size_t index) {
  auto logger = log::Get("supervisor");
  const ChildSpec& spec = specs_[index];
  absl::Duration backoff = options_.initial_backoff;
  while (true) {
    auto pid = Spawn(spec);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) {
        if (pid.ok()) kill(*pid, SIGTERM);
      }
      if (pid.ok()) {
        states_[index].pid = *pid;
        states_[index].starts++;
        states_[index].started = absl::Now();
      }
    }
    if (pid.ok()) {
      logger->info("started {} (pid {})", spec.name, *pid);
      int status = 0;
      while (waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
      }
      std::string how = WIFSIGNALED(status) ? strings::Cat("signal ", WTERMSIG(status))
                                            : strings::Cat("exit ", WEXITSTATUS(status));
      std::unique_lock<std::mutex> lock(mu_);
      absl::Duration ran = absl::Now() - states_[index].started;
      states_[index].pid = 0;
      states_[index].last_exit = how;
      if (stopping_) {
        logger->info("{} stopped ({})", spec.name, how);
        return;
      }
      if (ran >= options_.healthy_after) backoff = options_.initial_backoff;
      logger->warn("{} exited ({}) after {}; restarting in {}", spec.name, how, absl::FormatDuration(ran),
                   absl::FormatDuration(backoff));
      states_[index].restarts++;
    } else {
      logger->error("{}", pid.status().message());
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, std::chrono::milliseconds(absl::ToInt64Milliseconds(backoff)),
                     [this] { return stopping_; })) {
      return;
    }
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

void Supervisor::Stop(absl::Duration deadline) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (const auto& state : states_) {
      if (state.pid > 0) kill(state.pid, SIGTERM);
    }
  }
  cv_.notify_all();
  absl::Time give_up = absl::Now() + deadline;
  while (absl::Now() < give_up) {
    bool any_alive = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& state : states_) any_alive = any_alive || state.pid > 0;
    }
    if (!any_alive) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& state : states_) {
      if (state.pid > 0) {
        log::Get("supervisor")
            ->warn("{} did not stop within {}; killing it", state.name, absl::FormatDuration(deadline));
        kill(state.pid, SIGKILL);
      }
    }
  }
  for (auto& watcher : watchers_) {
    if (watcher.joinable()) watcher.join();
  }
}

std::vector<ChildState> Supervisor::States() const {
  std::lock_guard<std::mutex> lock(mu_);
  return states_;
}

}  // namespace dogwatch::agent
