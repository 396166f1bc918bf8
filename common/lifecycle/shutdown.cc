#include "common/lifecycle/shutdown.h"

#include <signal.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace dogwatch::lifecycle {
namespace {

sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

}  // namespace

void DieWithSupervisor() {
  const char* pid_text = std::getenv("DOGWATCH_SUPERVISOR_PID");
  if (pid_text == nullptr || *pid_text == '\0') return;
  const long supervisor = std::strtol(pid_text, nullptr, 10);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  // The supervisor may have died between our fork and the prctl: then no signal will come.
  if (getppid() != static_cast<pid_t>(supervisor)) {
    std::fprintf(stderr, "the supervising agent (pid %ld) is gone; exiting\n", supervisor);
    std::_Exit(1);
  }
}

namespace {
// Never runs: the signals stay blocked and the watcher thread takes them with sigtimedwait.
void IgnoredHandler(int) {}
}  // namespace

void ShutdownSignal::BlockTerminationSignals() {
  sigset_t set = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // As PID 1 of a container (a pod without shareProcessNamespace, `docker run` without --init) the
  // kernel drops every signal whose disposition is SIG_DFL, blocked or not, and the agent could
  // never be stopped with SIGTERM. A handler, even one that never runs, keeps them deliverable.
  struct sigaction action {};
  action.sa_handler = IgnoredHandler;
  sigemptyset(&action.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sigismember(&set, sig) == 1) sigaction(sig, &action, nullptr);
  }
  // Writes to a closed socket must return EPIPE, not kill the process.
  ::signal(SIGPIPE, SIG_IGN);
}

void ShutdownSignal::WatchSignals(std::function<void()> on_reload) {
  watcher_ = std::thread([this, on_reload = std::move(on_reload)] {
    sigset_t set = TerminationSignals();
    // sigtimedwait so the thread can notice its own destruction without a signal.
    timespec tick{0, 200 * 1000 * 1000};
    while (!stop_watcher_.load()) {
      int sig = sigtimedwait(&set, nullptr, &tick);
      if (sig < 0) continue;
      if (sig == SIGHUP) {
        if (on_reload) on_reload();
        continue;
      }
      Trigger(sig);
    }
  });
}

ShutdownSignal::~ShutdownSignal() {
  stop_watcher_.store(true);
  if (watcher_.joinable()) watcher_.join();
}

void ShutdownSignal::Trigger(int sig) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!requested_.load()) signal_.store(sig);
    requested_.store(true);
  }
  cv_.notify_all();
}

bool ShutdownSignal::WaitFor(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return requested_.load(); });
}

void ShutdownSignal::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return requested_.load(); });
}

}  // namespace dogwatch::lifecycle
