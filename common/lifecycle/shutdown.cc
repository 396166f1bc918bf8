#include "common/lifecycle/shutdown.h"

#include <signal.h>
#include <time.h>

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

void ShutdownSignal::BlockTerminationSignals() {
  sigset_t set = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
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
