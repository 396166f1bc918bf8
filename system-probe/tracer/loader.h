// Loads dogwatch's network eBPF programs and attaches them, choosing the backend by trying to load
// it (never by `bpftool feature probe`, which is wrong on locked-down kernels): first the
// tracepoint + cgroup hook set counting from packets and socket state, then with per-call hooks,
// then the fexit set. A kernel without BTF or without BPF gets an
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
  std::string io_accounting;   // "", "packets" or "calls": whether per-call hooks are attached
                               // ("" = packets when the kernel allows it)
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
  // Whether socket I/O is counted without per-call hooks (from packets and socket state), and
  // how, in words.
  bool io_from_packets() const { return scan_link_ != nullptr; }
  const std::string& io_accounting() const { return io_accounting_; }
  // Scans every process's sockets (when counting from packets) and folds every TCP socket's
  // storage into conns (the dw_scan_task_sockets and dw_sync_tcp_io iterators); a no-op when the
  // counters are in the map already. Call right before reading conns.
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
  bpf_link* scan_link_ = nullptr;  // the dw_scan_task_sockets iterator, when counting from packets
  std::string io_accounting_;
  std::vector<std::string> attached_;
  std::vector<std::string> notes_;
};

// The cgroup2 mount point from a mountinfo text ("" when there is none): of several, the one
// highest in the hierarchy (the host's tree mounted into a container with its own cgroup namespace
// rather than the container's own /sys/fs/cgroup), the first of equals.
std::string FindCgroup2Mount(const std::string& mountinfo);

}  // namespace dogwatch::sysprobe
