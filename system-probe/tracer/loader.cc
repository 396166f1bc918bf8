#include "system-probe/tracer/loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/log/log.h"
#include "network.skel.h"

namespace dogwatch::sysprobe {

namespace {

// libbpf reports verifier and attach failures through its print callback: keep the tail so an
// error can say why, and send the rest to debug logging.
std::mutex g_libbpf_log_mu;
std::string* g_libbpf_log = nullptr;

int LibbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  // Verifier logs arrive as one message of up to megabytes: size the buffer to it.
  va_list copy;
  va_copy(copy, args);
  int n = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (n < 0) return 0;
  std::string text(static_cast<size_t>(n) + 1, '\0');
  std::vsnprintf(text.data(), text.size(), format, args);
  text.pop_back();
  const char* line = text.c_str();
  std::lock_guard<std::mutex> lock(g_libbpf_log_mu);
  static const bool verbose = std::getenv("DOGWATCH_BPF_VERBOSE") != nullptr;  // whole verifier logs
  if (verbose) std::fputs(line, stderr);
  if (g_libbpf_log != nullptr && level != LIBBPF_DEBUG) {
    g_libbpf_log->append(text);
    if (g_libbpf_log->size() > 16384) g_libbpf_log->erase(0, g_libbpf_log->size() - 16384);
  }
  return n;
}

std::string LastLines(const std::string& text, size_t lines) {
  std::vector<absl::string_view> all = absl::StrSplit(text, '\n', absl::SkipEmpty());
  if (all.size() > lines) all.erase(all.begin(), all.end() - lines);
  return absl::StrJoin(all, " | ");
}

enum class Backend { kTracepoint, kFexit };

const char* BackendName(Backend backend) { return backend == Backend::kTracepoint ? "tracepoint" : "fexit"; }

struct Attachment {
  const char* name;
  bpf_program* program;
  bpf_link** link;
  bool cgroup;
};

std::vector<Attachment> Attachments(network_bpf* skel) {
  auto& p = skel->progs;
  auto& l = skel->links;
  return {
      {"tp_btf/sock_send_length", p.dw_sock_send_length, &l.dw_sock_send_length, false},
      {"tp_btf/sock_recv_length", p.dw_sock_recv_length, &l.dw_sock_recv_length, false},
      {"fexit/tcp_sendmsg", p.dw_fexit_tcp_sendmsg, &l.dw_fexit_tcp_sendmsg, false},
      {"fexit/tcp_recvmsg", p.dw_fexit_tcp_recvmsg, &l.dw_fexit_tcp_recvmsg, false},
      {"fexit/udp_sendmsg", p.dw_fexit_udp_sendmsg, &l.dw_fexit_udp_sendmsg, false},
      {"fexit/udp_recvmsg", p.dw_fexit_udp_recvmsg, &l.dw_fexit_udp_recvmsg, false},
      {"fexit/udpv6_sendmsg", p.dw_fexit_udpv6_sendmsg, &l.dw_fexit_udpv6_sendmsg, false},
      {"fexit/udpv6_recvmsg", p.dw_fexit_udpv6_recvmsg, &l.dw_fexit_udpv6_recvmsg, false},
      {"tp_btf/inet_sock_set_state", p.dw_inet_sock_set_state, &l.dw_inet_sock_set_state, false},
      {"tp_btf/tcp_retransmit_skb", p.dw_tcp_retransmit_skb, &l.dw_tcp_retransmit_skb, false},
      {"cgroup/sendmsg4", p.dw_sendmsg4, &l.dw_sendmsg4, true},
      {"cgroup/sendmsg6", p.dw_sendmsg6, &l.dw_sendmsg6, true},
      {"cgroup/recvmsg4", p.dw_recvmsg4, &l.dw_recvmsg4, true},
      {"cgroup/recvmsg6", p.dw_recvmsg6, &l.dw_recvmsg6, true},
      {"cgroup/bind4", p.dw_bind4, &l.dw_bind4, true},
      {"cgroup/bind6", p.dw_bind6, &l.dw_bind6, true},
      {"cgroup/bind4 (with owner)", p.dw_bind4_owner, &l.dw_bind4_owner, true},
      {"cgroup/bind6 (with owner)", p.dw_bind6_owner, &l.dw_bind6_owner, true},
      {"cgroup/sock_release", p.dw_sock_release, &l.dw_sock_release, true},
      {"cgroup_skb/egress", p.dw_skb_egress, &l.dw_skb_egress, true},
      {"cgroup_skb/ingress", p.dw_skb_ingress, &l.dw_skb_ingress, true},
      {"cgroup_skb/egress (with UDP flows)", p.dw_skb_egress_udp, &l.dw_skb_egress_udp, true},
      {"cgroup_skb/ingress (with UDP flows)", p.dw_skb_ingress_udp, &l.dw_skb_ingress_udp, true},
  };
}

// How socket I/O is counted: what decides which programs load.
enum class Accounting {
  kPackets,       // no per-call hooks: TCP from tcp_sock and socket state, UDP from packets
  kCallsStorage,  // per-call hooks noting the process; TCP bytes from tcp_sock
  kCallsMap,      // per-call hooks adding every call's bytes into the connection map
};

const char* AccountingName(Accounting accounting) {
  switch (accounting) {
    case Accounting::kPackets:
      return "packets and socket state";
    case Accounting::kCallsStorage:
      return "socket calls (TCP counters in socket storage)";
    case Accounting::kCallsMap:
      return "socket calls (TCP counters in the connection map)";
  }
  return "";
}

// Whether a program is part of the set loaded for this backend and accounting.
bool Wanted(network_bpf* skel, const Attachment& a, Backend backend, Accounting accounting,
            bool collect_dns) {
  auto& p = skel->progs;
  const bool tracepoint_io = std::strncmp(a.name, "tp_btf/sock_", 12) == 0;
  const bool fexit_io = std::strncmp(a.name, "fexit/", 6) == 0;
  const bool udp_peer_hooks =
      std::strncmp(a.name, "cgroup/sendmsg", 14) == 0 || std::strncmp(a.name, "cgroup/recvmsg", 14) == 0;
  const bool packets = accounting == Accounting::kPackets;
  if (tracepoint_io) return !packets && backend == Backend::kTracepoint;
  if (fexit_io) return !packets && backend == Backend::kFexit;
  if (udp_peer_hooks) return !packets;
  if (a.program == p.dw_bind4 || a.program == p.dw_bind6) return !packets;
  if (a.program == p.dw_bind4_owner || a.program == p.dw_bind6_owner) return packets;
  if (a.program == p.dw_skb_egress || a.program == p.dw_skb_ingress) return !packets && collect_dns;
  if (a.program == p.dw_skb_egress_udp || a.program == p.dw_skb_ingress_udp) return packets;
  return true;
}

absl::Status ExplainLoadFailure(int err, const std::string& log) {
  std::string why = LastLines(log, 6);
  if (err == -EACCES && log.find("failed to load: -13") != std::string::npos) {
    return absl::InternalError(
        absl::StrCat("the kernel's verifier rejected a program (set DOGWATCH_BPF_VERBOSE=1 "
                     "for its whole log): ",
                     why));
  }
  if (err == -EPERM || err == -EACCES) {
    return absl::PermissionDeniedError(absl::StrCat("loading BPF programs was refused (", std::strerror(-err),
                                                    "): system-probe needs CAP_BPF, CAP_PERFMON and "
                                                    "CAP_NET_ADMIN (or root), and a kernel not locked down "
                                                    "against BPF; libbpf: ",
                                                    why));
  }
  if (err == -ENOSYS) {
    return absl::FailedPreconditionError("this kernel has no bpf() system call (CONFIG_BPF_SYSCALL is off)");
  }
  return absl::InternalError(
      absl::StrCat("loading BPF programs failed: ", std::strerror(-err), "; libbpf: ", why));
}

// Runs an iterator program once: each read walks on from where the last stopped and returns 0 at
// the end (the programs print nothing). EAGAIN is the kernel's "walk interrupted, read again";
// bounded so a pathological walk cannot hold the scan forever.
absl::Status RunIterator(bpf_link* link, const char* what) {
  int fd = bpf_iter_create(bpf_link__fd(link));
  if (fd < 0)
    return absl::InternalError(absl::StrCat("creating the ", what, " iterator: ", std::strerror(errno)));
  char buffer[64];
  absl::Status result = absl::OkStatus();
  for (int attempt = 0; attempt < 1024; ++attempt) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n == 0) break;
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) {
      result = absl::InternalError(absl::StrCat("running the ", what, " iterator: ", std::strerror(errno)));
      break;
    }
  }
  close(fd);
  return result;
}

// How high in the cgroup2 hierarchy a mount's root is, from mountinfo's root field: "/" is the
// root of this process's cgroup namespace, each leading "/.." one level above it (the host's tree
// bind-mounted into a container that has its own cgroup namespace), each other component one
// level below (a subtree).
int CgroupMountHeight(absl::string_view root) {
  int height = 0;
  for (absl::string_view part : absl::StrSplit(root, '/', absl::SkipEmpty())) height += part == ".." ? 1 : -1;
  return height;
}

}  // namespace

std::string FindCgroup2Mount(const std::string& mountinfo) {
  // "36 25 0:30 / /sys/fs/cgroup/unified rw,... shared:9 - cgroup2 cgroup2 rw,..."
  // The highest mount wins: hooks attached there see every process below it, and a containerized
  // system-probe must watch the host's tree rather than its own namespace's.
  std::string best;
  int best_height = 0;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
    size_t dash = line.find(" - ");
    if (dash == std::string_view::npos) continue;
    std::vector<absl::string_view> after = absl::StrSplit(line.substr(dash + 3), ' ');
    if (after.empty() || after[0] != "cgroup2") continue;
    std::vector<absl::string_view> before = absl::StrSplit(line.substr(0, dash), ' ');
    if (before.size() < 5) continue;
    const int height = CgroupMountHeight(before[3]);
    if (best.empty() || height > best_height) {
      best = std::string(before[4]);
      best_height = height;
    }
  }
  return best;
}

absl::StatusOr<std::unique_ptr<NetworkProbe>> NetworkProbe::Load(const LoaderOptions& options) {
  const std::string btf_path = options.btf_path.empty() ? "/sys/kernel/btf/vmlinux" : options.btf_path;
  if (access(btf_path.c_str(), R_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("this kernel exposes no BTF (", btf_path, ": ", std::strerror(errno),
                     "); the CO-RE network tracer needs CONFIG_DEBUG_INFO_BTF=y, or "
                     "system_probe_config.btf_path pointing at "
                     "the running kernel's BTF"));
  }
  std::string cgroup2 = options.cgroup2_path;
  if (cgroup2.empty()) {
    std::ifstream in("/proc/self/mountinfo");
    std::stringstream text;
    text << in.rdbuf();
    cgroup2 = FindCgroup2Mount(text.str());
  }

  std::string libbpf_log;
  {
    std::lock_guard<std::mutex> lock(g_libbpf_log_mu);
    g_libbpf_log = &libbpf_log;
  }
  libbpf_set_print(LibbpfPrint);
  struct LogReset {
    ~LogReset() {
      std::lock_guard<std::mutex> lock(g_libbpf_log_mu);
      g_libbpf_log = nullptr;
    }
  } reset_log;

  std::unique_ptr<NetworkProbe> probe(new NetworkProbe());
  int cgroup_fd = -1;
  if (!cgroup2.empty()) {
    cgroup_fd = open(cgroup2.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cgroup_fd < 0)
      probe->notes_.push_back(absl::StrCat("cannot open cgroup2 root ", cgroup2, ": ", std::strerror(errno)));
  } else {
    probe->notes_.push_back("no cgroup2 mount: unconnected UDP peers, UDP closes and DNS are not collected");
  }
  probe->cgroup_fd_ = cgroup_fd;

  std::vector<Backend> order = {Backend::kTracepoint, Backend::kFexit};
  if (options.forced_backend == "tracepoint") order = {Backend::kTracepoint};
  if (options.forced_backend == "fexit") order = {Backend::kFexit};
  // Best first: no per-call hooks at all (needs the cgroup hooks, socket storage, its iterators
  // and a read-only cast; its tracing programs are the tracepoint backend's), then each backend
  // with TCP counters in socket storage, then (a kernel that refuses the storage or its iterator
  // in tracing programs) with them in the connection map.
  struct Attempt {
    Backend backend;
    Accounting accounting;
  };
  std::vector<Attempt> attempts;
  const bool packets_allowed =
      options.io_accounting != "calls" && options.tcp_counters != "map" && options.forced_backend != "fexit";
  if (packets_allowed && cgroup_fd >= 0) {
    attempts.push_back({Backend::kTracepoint, Accounting::kPackets});
  } else if (options.io_accounting == "packets") {
    return absl::FailedPreconditionError(
        cgroup_fd < 0
            ? "network_config.io_accounting: packets needs the cgroup2 hierarchy, which is not available"
            : "network_config.io_accounting: packets needs network_config.tcp_counters other than map "
              "and a tracer_backend other than fexit");
  }
  if (options.io_accounting != "packets") {
    for (Backend backend : order) {
      if (options.tcp_counters != "map") attempts.push_back({backend, Accounting::kCallsStorage});
      if (options.tcp_counters != "storage") attempts.push_back({backend, Accounting::kCallsMap});
    }
  }
  absl::Status last_error = absl::InternalError("no backend tried");
  for (const auto& [backend, accounting] : attempts) {
    const std::string attempt_name =
        absl::StrCat(BackendName(backend), ", counting ", AccountingName(accounting));
    const bool tcp_storage = accounting != Accounting::kCallsMap;
    const bool packets = accounting == Accounting::kPackets;
    libbpf_log.clear();
    network_bpf* skel = network_bpf::open();
    if (skel == nullptr) {
      return absl::InternalError(absl::StrCat("opening the embedded BPF object failed: ",
                                              std::strerror(errno), "; libbpf: ", LastLines(libbpf_log, 4)));
    }
    skel->rodata->collect_dns = options.collect_dns ? 1 : 0;
    skel->rodata->ephemeral_port_min = 32768;
    {
      std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
      uint32_t low = 0, high = 0;
      if (range >> low >> high && low > 0) skel->rodata->ephemeral_port_min = low;
    }
    skel->rodata->tcp_io_in_sk_storage = tcp_storage ? 1 : 0;
    skel->rodata->count_from_packets = packets ? 1 : 0;
    bpf_program__set_autoload(skel->progs.dw_sync_tcp_io, tcp_storage);
    bpf_program__set_autoload(skel->progs.dw_scan_task_sockets, packets);
    bpf_map__set_max_entries(skel->maps.conns, options.max_tracked_connections);
    bpf_map__set_max_entries(skel->maps.events, options.ring_buffer_bytes);
    skel->rodata->ring_wakeup_bytes = options.ring_buffer_bytes / 4;
    auto attachments = Attachments(skel);
    for (auto& a : attachments) {
      bool enabled = Wanted(skel, a, backend, accounting, options.collect_dns);
      if (a.cgroup && cgroup_fd < 0) enabled = false;
      bpf_program__set_autoload(a.program, enabled);
    }
    int err = network_bpf::load(skel);
    if (err != 0) {
      last_error = ExplainLoadFailure(err, libbpf_log);
      probe->notes_.push_back(absl::StrCat("backend ", attempt_name, " rejected: ", last_error.message()));
      // Keep trying: fexit is refused with EPERM on locked-down kernels even for root, so one
      // backend's permission error does not speak for the next.
      network_bpf::destroy(skel);
      continue;
    }
    std::vector<std::string> attached;
    absl::Status attach_error;
    for (auto& a : attachments) {
      if (!bpf_program__autoload(a.program)) continue;
      bpf_link* link =
          a.cgroup ? bpf_program__attach_cgroup(a.program, cgroup_fd) : bpf_program__attach(a.program);
      if (link == nullptr) {
        attach_error = absl::InternalError(absl::StrCat(
            "attaching ", a.name, " failed: ", std::strerror(errno), "; libbpf: ", LastLines(libbpf_log, 3)));
        break;
      }
      *a.link = link;
      attached.push_back(a.name);
    }
    if (attach_error.ok() && tcp_storage) {
      // An iterator is attached to the map it walks; it runs when its fd is read (each scan).
      union bpf_iter_link_info link_info;
      std::memset(&link_info, 0, sizeof(link_info));
      link_info.map.map_fd = static_cast<uint32_t>(bpf_map__fd(skel->maps.tcp_io));
      DECLARE_LIBBPF_OPTS(bpf_iter_attach_opts, iter_options);
      iter_options.link_info = &link_info;
      iter_options.link_info_len = sizeof(link_info);
      bpf_link* link = bpf_program__attach_iter(skel->progs.dw_sync_tcp_io, &iter_options);
      if (link == nullptr) {
        attach_error = absl::InternalError(
            absl::StrCat("attaching iter/bpf_sk_storage_map failed: ", std::strerror(errno),
                         "; libbpf: ", LastLines(libbpf_log, 3)));
      } else {
        skel->links.dw_sync_tcp_io = link;  // destroyed with the skeleton
        attached.push_back("iter/bpf_sk_storage_map");
      }
    }
    if (attach_error.ok() && packets) {
      bpf_link* link = bpf_program__attach_iter(skel->progs.dw_scan_task_sockets, nullptr);
      if (link == nullptr) {
        attach_error =
            absl::InternalError(absl::StrCat("attaching iter/task_file failed: ", std::strerror(errno),
                                             "; libbpf: ", LastLines(libbpf_log, 3)));
      } else {
        skel->links.dw_scan_task_sockets = link;
        attached.push_back("iter/task_file");
      }
    }
    if (!attach_error.ok()) {
      last_error = attach_error;
      probe->notes_.push_back(absl::StrCat("backend ", attempt_name, " rejected: ", attach_error.message()));
      network_bpf::destroy(skel);
      continue;
    }
    probe->skel_ = skel;
    probe->sync_link_ = tcp_storage ? skel->links.dw_sync_tcp_io : nullptr;
    probe->scan_link_ = packets ? skel->links.dw_scan_task_sockets : nullptr;
    probe->backend_ = BackendName(backend);
    probe->io_accounting_ = AccountingName(accounting);
    probe->attached_ = std::move(attached);
    if (packets) {
      // Adopts the connections already open, so they count from now rather than from the first
      // poll. A failure here is the same as at any poll: counted there, and not fatal.
      if (absl::Status scanned = RunIterator(probe->scan_link_, "socket scan"); !scanned.ok())
        probe->notes_.push_back(absl::StrCat("first socket scan: ", scanned.message()));
    }
    return probe;
  }
  return absl::Status(last_error.code(), absl::StrCat("no network tracer backend could be loaded: ",
                                                      absl::StrJoin(probe->notes_, "; ")));
}

NetworkProbe::~NetworkProbe() {
  if (skel_ != nullptr) network_bpf::destroy(skel_);
  if (cgroup_fd_ >= 0) close(cgroup_fd_);
}

absl::Status NetworkProbe::SyncTcpCounters() {
  // The scan first: it adopts established sockets and names their holders, which the fold then
  // carries into the records.
  if (scan_link_ != nullptr) {
    if (absl::Status scanned = RunIterator(scan_link_, "socket scan"); !scanned.ok()) return scanned;
  }
  if (sync_link_ == nullptr) return absl::OkStatus();
  return RunIterator(sync_link_, "TCP counter");
}

int NetworkProbe::conns_fd() const { return bpf_map__fd(skel_->maps.conns); }
int NetworkProbe::dns_pending_fd() const { return bpf_map__fd(skel_->maps.dns_pending); }
int NetworkProbe::telemetry_fd() const { return bpf_map__fd(skel_->maps.telemetry); }
int NetworkProbe::events_fd() const { return bpf_map__fd(skel_->maps.events); }

std::vector<std::pair<std::string, uint32_t>> NetworkProbe::program_ids() const {
  std::vector<std::pair<std::string, uint32_t>> ids;
  for (auto& a : Attachments(skel_)) {
    if (!bpf_program__autoload(a.program)) continue;
    bpf_prog_info info;
    std::memset(&info, 0, sizeof(info));
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(bpf_program__fd(a.program), &info, &len) == 0)
      ids.emplace_back(a.name, info.id);
  }
  return ids;
}

}  // namespace dogwatch::sysprobe
