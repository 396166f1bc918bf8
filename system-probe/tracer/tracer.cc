#include "system-probe/tracer/tracer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/epoll.h>
#include <time.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "network_types.h"
#include "system-probe/tracer/dns.h"

namespace dogwatch::sysprobe {

static_assert(sizeof(dw_conn_key) == 32, "dw_conn_key layout");
static_assert(sizeof(dw_conn_stats) == 128, "dw_conn_stats layout");
static_assert(sizeof(dw_conn_event) == 168, "dw_conn_event layout");
static_assert(sizeof(dw_dns_pending) == 144, "dw_dns_pending layout");
static_assert(sizeof(dw_dns_event) == 168, "dw_dns_event layout");
static_assert(sizeof(dw_dns_key) == 40, "dw_dns_key layout");

namespace {

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::shared_ptr<ConnSnapshot> ToSnapshot(const dw_conn_key& key, const dw_conn_stats& s, absl::Time now,
                                         uint64_t now_mono) {
  auto c = std::make_shared<ConnSnapshot>();
  c->key.cookie = key.cookie;
  std::memcpy(c->key.remote_addr.data(), key.raddr, 16);
  c->key.remote_port = key.rport;
  std::memcpy(c->local_addr.data(), s.laddr, 16);
  std::memcpy(c->remote_addr.data(), s.raddr, 16);
  c->local_port = s.lport;
  c->remote_port = s.rport;
  c->family = s.family;
  c->protocol = s.protocol;
  c->direction = static_cast<FlowDirection>(s.direction <= 2 ? s.direction : 0);
  c->established = (s.flags & DW_FLAG_ESTABLISHED) != 0;
  c->netns = s.netns;
  c->pid = s.pid;
  c->command.assign(s.comm, strnlen(s.comm, sizeof(s.comm)));
  c->totals = {s.bytes_sent, s.bytes_received, s.packets_sent, s.packets_received, s.retransmits};
  c->rtt_us = s.rtt_us;
  c->rtt_var_us = s.rtt_var_us;
  c->failure_errno = s.failure_errno;
  const uint64_t age_ns = now_mono > s.last_update_ns ? now_mono - s.last_update_ns : 0;
  c->last_update = now - absl::Nanoseconds(static_cast<int64_t>(age_ns));
  return c;
}

// The per-client DNS key of an answer or a timeout: the question and the querying flow.
DnsKey MakeDnsKey(const DnsQuestion& question, uint16_t client_port, const uint8_t (&server_addr)[16],
                  uint8_t family) {
  DnsKey key{question.name, question.query_type, client_port, {}, family == 6 ? uint8_t{6} : uint8_t{4}};
  std::memcpy(key.server_addr.data(), server_addr, sizeof(server_addr));
  return key;
}

const char* TelemetryName(int index) {
  switch (index) {
    case DW_TEL_CONN_MAP_FULL:
      return "kernel_conn_map_full";
    case DW_TEL_RINGBUF_FULL:
      return "kernel_ringbuf_full_closes";
    case DW_TEL_DNS_RINGBUF_FULL:
      return "kernel_dns_ringbuf_full";
    case DW_TEL_DNS_PENDING_FULL:
      return "kernel_dns_pending_full";
    case DW_TEL_DNS_UNMATCHED:
      return "kernel_dns_unmatched_responses";
    case DW_TEL_DNS_TRUNCATED:
      return "kernel_dns_truncated_questions";
    case DW_TEL_UDP_PEER_UNKNOWN:
      return "kernel_udp_peer_unknown";
    case DW_TEL_CONNS_OPENED:
      return "kernel_conns_opened";
    case DW_TEL_CONNS_CLOSED:
      return "kernel_conns_closed";
    case DW_TEL_SOCK_STORAGE_FAILED:
      return "kernel_tcp_storage_failed";
    case DW_TEL_TCP_ADOPTED:
      return "kernel_tcp_adopted_by_scan";
    default:
      return "kernel_unknown";
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<NetworkTracer>> NetworkTracer::Load(TracerOptions options) {
  std::unique_ptr<NetworkTracer> tracer(new NetworkTracer(options));
  auto probe = NetworkProbe::Load(options.loader);
  if (!probe.ok()) return probe.status();
  tracer->probe_ = *std::move(probe);
  tracer->ring_ = ring_buffer__new(
      tracer->probe_->events_fd(),
      [](void* ctx, void* data, size_t size) {
        return static_cast<NetworkTracer*>(ctx)->HandleEvent(data, size);
      },
      tracer.get(), nullptr);
  if (tracer->ring_ == nullptr) {
    return absl::InternalError(absl::StrCat("opening the BPF ring buffer failed: ", std::strerror(errno)));
  }
  return tracer;
}

void NetworkTracer::StartWorker() {
  if (!consumer_.joinable()) consumer_ = std::thread([this] { ConsumeLoop(); });
}

NetworkTracer::~NetworkTracer() {
  stop_ = true;
  if (consumer_.joinable()) consumer_.join();
  if (ring_ != nullptr) ring_buffer__free(ring_);
}

void NetworkTracer::ConsumeLoop() {
  const int epoll_fd = ring_buffer__epoll_fd(ring_);
  uint64_t next_housekeeping = MonotonicNs() + absl::ToInt64Nanoseconds(options_.housekeeping_interval);
  while (!stop_) {
    epoll_event ready[4];
    // Wait outside the lock; GetConnections drains the ring itself when it runs.
    int n = epoll_wait(epoll_fd, ready, 4, 200);
    if (n < 0 && errno != EINTR) {
      log::Get("system-probe")->warn("ring buffer wait failed: {}", std::strerror(errno));
    }
    absl::MutexLock lock(&mu_);
    // Also on a timeout: the programs wake this loop only when the ring is a quarter full.
    ring_buffer__consume(ring_);
    if (MonotonicNs() >= next_housekeeping) {
      ScanConnections(/*finalize=*/true);
      ring_buffer__consume(ring_);
      ExpireDnsQueries();
      next_housekeeping = MonotonicNs() + absl::ToInt64Nanoseconds(options_.housekeeping_interval);
    }
  }
}

int NetworkTracer::HandleEvent(const void* data, size_t size) {
  // Called from ring_buffer__consume, which every caller runs with mu_ held.
  mu_.AssertHeld();
  if (size < sizeof(uint32_t)) {
    ++counters_["events_malformed"];
    return 0;
  }
  uint32_t kind;
  std::memcpy(&kind, data, sizeof(kind));
  if (kind == DW_EVENT_CONN_CLOSED && size >= sizeof(dw_conn_event)) {
    dw_conn_event event;
    std::memcpy(&event, data, sizeof(event));
    state_.AddClosed(ToSnapshot(event.key, event.stats, absl::Now(), MonotonicNs()));
    ++counters_["closed_connections"];
  } else if (kind == DW_EVENT_SOCK_RELEASED && size >= sizeof(dw_conn_event)) {
    dw_conn_event event;
    std::memcpy(&event, data, sizeof(event));
    if (released_cookies_.size() >= options_.max_released_cookies) {
      ++counters_["released_sockets_dropped"];  // their flows close by idle expiry instead
    } else {
      released_cookies_.insert(event.key.cookie);
    }
  } else if (kind == DW_EVENT_DNS && size >= sizeof(dw_dns_event)) {
    dw_dns_event event;
    std::memcpy(&event, data, sizeof(event));
    const size_t len = std::min<size_t>(event.question_len, DW_DNS_QUESTION_MAX);
    auto question = ParseDnsQuestion({event.question, len});
    if (!question.ok()) {
      ++counters_["dns_bad_questions"];
      return 0;
    }
    state_.AddDns(MakeDnsKey(*question, event.client_port, event.server_addr, event.family), event.rcode,
                  event.latency_ns / 1000, false);
    ++counters_["dns_responses"];
  } else {
    ++counters_["events_malformed"];
  }
  return 0;
}

std::vector<std::shared_ptr<const ConnSnapshot>> NetworkTracer::ScanConnections(bool finalize) {
  // Live TCP connections count their bytes in socket storage: fold it into the map first.
  if (absl::Status synced = probe_->SyncTcpCounters(); !synced.ok()) {
    ++counters_["tcp_sync_errors"];
    uint64_t suppressed = 0;
    if (sync_errors_log_.Allow(&suppressed))
      log::Get("system-probe")
          ->warn("folding TCP counters into the connection map: {} ({} more suppressed)", synced.message(),
                 suppressed);
  }
  const int fd = probe_->conns_fd();
  const absl::Time now = absl::Now();
  const uint64_t now_mono = MonotonicNs();
  const uint64_t udp_idle_ns = absl::ToInt64Nanoseconds(options_.udp_idle_timeout);
  std::vector<std::shared_ptr<const ConnSnapshot>> active;
  std::vector<dw_conn_key> finalized;

  auto visit = [&](const dw_conn_key& key, const dw_conn_stats& stats) {
    bool closed = (stats.flags & DW_FLAG_CLOSED) != 0;
    bool idle_udp = stats.protocol == 17 && now_mono > stats.last_update_ns &&
                    now_mono - stats.last_update_ns > udp_idle_ns;
    bool released = released_cookies_.contains(key.cookie);
    auto snapshot = ToSnapshot(key, stats, now, now_mono);
    if (finalize && (closed || idle_udp || released)) {
      state_.AddClosed(std::move(snapshot));
      finalized.push_back(key);
      ++counters_[closed     ? "closed_from_kernel_flag"
                  : idle_udp ? "udp_idle_expired"
                             : "udp_released_finalized"];
      return;
    }
    active.push_back(std::move(snapshot));
  };

  // Batched reads: 65,536 entries in 16 system calls instead of 131,072.
  constexpr uint32_t kBatch = 4096;
  std::vector<dw_conn_key> keys(kBatch);
  std::vector<dw_conn_stats> values(kBatch);
  alignas(8) unsigned char in_token[64], out_token[64];
  void* in = nullptr;
  bool batch_supported = true;
  for (int round = 0; round < 1024; ++round) {
    uint32_t count = kBatch;
    int err = bpf_map_lookup_batch(fd, in, out_token, keys.data(), values.data(), &count, nullptr);
    const int saved_errno = errno;
    if (err != 0 && saved_errno != ENOENT) {
      if (round == 0 && (saved_errno == EINVAL || saved_errno == ENOTSUP || saved_errno == EOPNOTSUPP ||
                         saved_errno == 524 /* ENOTSUPP */)) {
        batch_supported = false;
      } else {
        ++counters_["scan_errors"];
      }
      break;
    }
    for (uint32_t i = 0; i < count; ++i) visit(keys[i], values[i]);
    if (err != 0) break;  // ENOENT: that was the last batch
    std::memcpy(in_token, out_token, sizeof(in_token));
    in = in_token;
  }
  if (!batch_supported) {
    dw_conn_key key, next;
    void* previous = nullptr;
    for (uint32_t i = 0; i < options_.loader.max_tracked_connections + 1024; ++i) {
      if (bpf_map_get_next_key(fd, previous, &next) != 0) break;
      dw_conn_stats stats;
      if (bpf_map_lookup_elem(fd, &next, &stats) == 0) visit(next, stats);
      key = next;
      previous = &key;
    }
  }
  for (const auto& key : finalized) bpf_map_delete_elem(fd, &key);
  if (finalize) released_cookies_.clear();
  counters_["tracked_connections"] = static_cast<int64_t>(active.size());
  return active;
}

void NetworkTracer::ExpireDnsQueries() {
  const int fd = probe_->dns_pending_fd();
  const uint64_t now_mono = MonotonicNs();
  const uint64_t timeout_ns = absl::ToInt64Nanoseconds(options_.dns_timeout);
  std::vector<dw_dns_key> expired;
  dw_dns_key key, next;
  void* previous = nullptr;
  for (int i = 0; i < 32768; ++i) {  // the map holds 16,384 at most
    if (bpf_map_get_next_key(fd, previous, &next) != 0) break;
    dw_dns_pending pending;
    if (bpf_map_lookup_elem(fd, &next, &pending) == 0 && now_mono > pending.start_ns &&
        now_mono - pending.start_ns > timeout_ns) {
      auto question =
          ParseDnsQuestion({pending.question, std::min<size_t>(pending.question_len, DW_DNS_QUESTION_MAX)});
      if (question.ok()) {
        state_.AddDns(MakeDnsKey(*question, next.client_port, next.server_addr, next.family), 0, 0,
                      /*timeout=*/true);
        ++counters_["dns_timeouts"];
      } else {
        ++counters_["dns_bad_questions"];
      }
      expired.push_back(next);
    }
    key = next;
    previous = &key;
  }
  for (const auto& k : expired) bpf_map_delete_elem(fd, &k);
}

absl::StatusOr<ClientReply> NetworkTracer::GetConnections(std::string_view client_id) {
  absl::MutexLock lock(&mu_);
  auto active = ScanConnections(/*finalize=*/true);
  // After the scan: a connection deleted from the map before the scan had its close event
  // submitted before the deletion, so this drain sees every close the scan missed.
  ring_buffer__consume(ring_);
  return state_.Poll(client_id, absl::Now(), active);
}

absl::Status NetworkTracer::CheckMapAccess() {
  dw_conn_key next;
  if (bpf_map_get_next_key(probe_->conns_fd(), nullptr, &next) != 0 && errno != ENOENT) {
    return absl::PermissionDeniedError(absl::StrCat("reading the connection map: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

std::vector<std::shared_ptr<const ConnSnapshot>> NetworkTracer::Snapshot() {
  absl::MutexLock lock(&mu_);
  return ScanConnections(/*finalize=*/false);
}

std::map<std::string, int64_t> NetworkTracer::Counters() {
  std::map<std::string, int64_t> out;
  const int cpus = libbpf_num_possible_cpus();
  if (cpus > 0) {
    std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
    for (uint32_t i = 0; i < DW_TEL_COUNT; ++i) {
      if (bpf_map_lookup_elem(probe_->telemetry_fd(), &i, per_cpu.data()) != 0) continue;
      uint64_t sum = 0;
      for (uint64_t v : per_cpu) sum += v;
      out[TelemetryName(static_cast<int>(i))] = static_cast<int64_t>(sum);
    }
  }
  absl::MutexLock lock(&mu_);
  for (const auto& [name, value] : counters_) out[name] = value;
  StateStats stats = state_.stats();
  out["clients"] = static_cast<int64_t>(stats.clients);
  out["clients_expired"] = static_cast<int64_t>(stats.clients_expired);
  out["clients_refused"] = static_cast<int64_t>(stats.clients_refused);
  out["closed_buffer_dropped"] = static_cast<int64_t>(stats.closed_dropped);
  out["dns_stats_dropped"] = static_cast<int64_t>(stats.dns_dropped);
  out["max_tracked_connections"] = options_.loader.max_tracked_connections;
  out["tcp_counters_in_socket_storage"] = probe_->tcp_counters_in_storage() ? 1 : 0;
  out["io_from_packets"] = probe_->io_from_packets() ? 1 : 0;
  return out;
}

}  // namespace dogwatch::sysprobe
