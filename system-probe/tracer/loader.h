// Loads dogwatch's network eBPF programs and attaches them, choosing the backend by trying to load
// it (never by `bpftool feature probe`, which is wrong on locked-down kernels): first the
// tracepoint + cgroup hook set, then the fexit set. A kernel without BTF or without BPF gets an
// error naming what is missing.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

struct network_bpf;
struct bpf_link;

namespace dogwatch::sysprobe {

struct LoaderOptions {
  uint32_t max_tracked_connections = 65536;
  bool collect_dns = true;
  uint32_t ring_buffer_bytes = 1 << 20;
  std::string btf_path;        // empty: the running kernel's /sys/kernel/btf/vmlinux
  std::string cgroup2_path;    // empty: found in /proc/self/mountinfo
  std::string forced_backend;  // "", "tracepoint" or "fexit" (tests and operators)
  std::string tcp_counters;    // "", "storage" or "map": where live TCP byte counts are kept
                               // ("" = storage when the kernel allows it; tests force one)
};

class NetworkProbe {
 public:
  static absl::StatusOr<std::unique_ptr<NetworkProbe>> Load(const LoaderOptions& options);
  ~NetworkProbe();
  NetworkProbe(const NetworkProbe&) = delete;
  NetworkProbe& operator=(const NetworkProbe&) = delete;

  const std::string& backend() const { return backend_; }
  const std::vector<std::string>& attached() const { return attached_; }
  // Why the backends tried before the chosen one were rejected.
  const std::vector<std::string>& notes() const { return notes_; }

  // Whether live TCP connections' byte counters are kept in socket storage (folded into conns by
  // an iterator at each scan) rather than in conns itself (kernels without sk_storage in tracing
  // programs); tcp_counters() says the same in words.
  bool tcp_counters_in_storage() const { return sync_link_ != nullptr; }
  const char* tcp_counters() const { return tcp_counters_in_storage() ? "socket storage" : "connection map"; }
  // Folds every TCP socket's storage into conns (runs the dw_sync_tcp_io iterator); a no-op when
  // the counters are in the map already. Call right before reading conns.
  absl::Status SyncTcpCounters();

  int conns_fd() const;
  int dns_pending_fd() const;
  int telemetry_fd() const;
  int events_fd() const;
  // Kernel program ids, for per-program run time statistics (BPF_ENABLE_STATS).
  std::vector<std::pair<std::string, uint32_t>> program_ids() const;

 private:
  NetworkProbe() = default;
  network_bpf* skel_ = nullptr;
  int cgroup_fd_ = -1;
  std::string backend_;
  bpf_link* sync_link_ = nullptr;  // the dw_sync_tcp_io iterator, when the counters are in storage
  std::vector<std::string> attached_;
  std::vector<std::string> notes_;
};

// The cgroup2 mount point from a mountinfo text ("" when there is none).
std::string FindCgroup2Mount(const std::string& mountinfo);

}  // namespace dogwatch::sysprobe
