#pragma once
// Signal handling for graceful shutdown: SIGTERM/SIGINT/SIGHUP are blocked in every thread and
// taken by one watcher thread with sigwait, so no handler runs async-signal-unsafe code.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace dogwatch::lifecycle {

// Under `agent run`'s supervisor ($DOGWATCH_SUPERVISOR_PID set), makes the kernel send SIGTERM to
// this process when the supervisor dies, and exits at once if it is already gone. A no-op otherwise.
void DieWithSupervisor();

class ShutdownSignal {
 public:
  // Call first thing in main(), before any thread starts, so every thread inherits the mask.
  static void BlockTerminationSignals();

  // Starts the watcher thread. `on_reload` runs on SIGHUP (may be empty).
  void WatchSignals(std::function<void()> on_reload = nullptr);
  ~ShutdownSignal();

  void Trigger(int signal = 0);
  bool Requested() const { return requested_.load(); }
  int signal() const { return signal_.load(); }
  // True when shutdown was requested within `timeout`.
  bool WaitFor(std::chrono::milliseconds timeout);
  void Wait();

 private:
  std::atomic<bool> requested_{false};
  std::atomic<int> signal_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread watcher_;
  std::atomic<bool> stop_watcher_{false};
};

}  // namespace dogwatch::lifecycle
