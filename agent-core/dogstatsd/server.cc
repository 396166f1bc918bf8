#include "agent-core/dogstatsd/server.h"

#include <arpa/inet.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "common/ipc/unix_socket.h"
#include "common/log/log.h"
#include "common/strings/strings.h"

namespace dogwatch::dogstatsd {
namespace {

using strings::Cat;

constexpr size_t kErrorKinds = static_cast<size_t>(ParseError::kCount);
// Room for SCM_CREDENTIALS in each datagram's control buffer.
constexpr size_t kControlBytes = CMSG_SPACE(sizeof(ucred)) + 16;

std::string Errno() { return std::strerror(errno); }

// The kernel's running count of datagrams it dropped on this socket (receive buffer full), read
// with SO_MEMINFO: exact and current, unlike SO_RXQ_OVFL, which only reports with the next
// datagram delivered. -1 when the socket cannot tell.
int64_t KernelDrops(int fd) {
  uint32_t meminfo[SK_MEMINFO_VARS] = {};
  socklen_t len = sizeof(meminfo);
  if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_MEMINFO, meminfo, &len) != 0 || len <= SK_MEMINFO_DROPS * 4) {
    return -1;
  }
  return meminfo[SK_MEMINFO_DROPS];
}

int64_t NowUnix() { return static_cast<int64_t>(std::time(nullptr)); }

}  // namespace

struct Server::AtomicCounters {
  std::atomic<int64_t> packets_udp{0};
  std::atomic<int64_t> packets_unix{0};
  std::atomic<int64_t> packets_in_process{0};
  std::atomic<int64_t> bytes{0};
  std::atomic<int64_t> metric_samples{0};
  std::atomic<int64_t> events{0};
  std::atomic<int64_t> service_checks{0};
  std::array<std::atomic<int64_t>, kErrorKinds> parse_errors{};
  std::atomic<int64_t> dropped_oversize_datagram{0};
  std::atomic<int64_t> dropped_kernel_udp_at_close{0};
  std::atomic<int64_t> reader_waits{0};
  std::atomic<int64_t> read_errors{0};
  std::atomic<int64_t> origin_resolved{0};
};

// One batch of datagrams as recvmmsg filled it: slot i holds datagram i in
// buffer[i * buffer_size, i * buffer_size + lengths[i]).
struct Server::Batch {
  std::unique_ptr<char[]> buffer;
  std::unique_ptr<char[]> control;
  std::vector<mmsghdr> headers;
  std::vector<iovec> iovecs;
  std::vector<uint32_t> lengths;
  std::vector<uint8_t> truncated;
  std::vector<pid_t> pids;
  size_t count = 0;
  Transport transport = Transport::kUdp;

  Batch(size_t slots, size_t slot_bytes)
      : buffer(new char[slots * slot_bytes]),
        control(new char[slots * kControlBytes]),
        headers(slots),
        iovecs(slots),
        lengths(slots),
        truncated(slots),
        pids(slots) {
    for (size_t i = 0; i < slots; ++i) {
      iovecs[i] = {buffer.get() + i * slot_bytes, slot_bytes};
    }
  }

  // recvmmsg overwrites msg_controllen and msg_flags: reset the free slots before every call.
  void ArmFrom(size_t first, size_t slot_bytes) {
    for (size_t i = first; i < headers.size(); ++i) {
      msghdr& h = headers[i].msg_hdr;
      std::memset(&h, 0, sizeof(h));
      iovecs[i] = {buffer.get() + i * slot_bytes, slot_bytes};
      h.msg_iov = &iovecs[i];
      h.msg_iovlen = 1;
      h.msg_control = control.get() + i * kControlBytes;
      h.msg_controllen = kControlBytes;
      headers[i].msg_len = 0;
    }
  }
};

// Parses datagrams and turns their lines into samples for the sink. One per worker thread: the
// scratch vectors are reused from datagram to datagram, so steady state allocates nothing.
class Server::Worker : public ParseHandler {
 public:
  explicit Worker(Server* server) : server_(server) {
    extra_tag_views_.reserve(server->options_.extra_tags.size());
    for (const std::string& tag : server->options_.extra_tags) extra_tag_views_.push_back(tag);
  }

  void Process(std::string_view datagram, Transport transport, pid_t pid) {
    AtomicCounters& c = *server_->counters_;
    switch (transport) {
      case Transport::kUdp:
        c.packets_udp.fetch_add(1, std::memory_order_relaxed);
        break;
      case Transport::kUnix:
        c.packets_unix.fetch_add(1, std::memory_order_relaxed);
        break;
      case Transport::kInProcess:
        c.packets_in_process.fetch_add(1, std::memory_order_relaxed);
        break;
    }
    c.bytes.fetch_add(static_cast<int64_t>(datagram.size()), std::memory_order_relaxed);
    now_ = NowUnix();
    pid_container_.clear();
    pid_container_resolved_ = false;
    pid_ = transport == Transport::kUnix && server_->options_.origin_detection ? pid : 0;
    pending_.clear();
    tags_.clear();
    owned_.clear();
    origin_memo_.clear();

    ParseDatagram(datagram, *this);
    if (pending_.empty()) return;

    // Tag views are final only now (tags_ may have grown while parsing): bind the spans.
    samples_.resize(pending_.size());
    for (size_t i = 0; i < pending_.size(); ++i) {
      samples_[i] = pending_[i].sample;
      samples_[i].tags = std::span<const std::string_view>(tags_.data() + pending_[i].tags_begin,
                                                           pending_[i].tags_end - pending_[i].tags_begin);
    }
    c.metric_samples.fetch_add(static_cast<int64_t>(samples_.size()), std::memory_order_relaxed);
    server_->sink_->AddSamples(samples_);
  }

  void OnMetric(const ParsedMetric& m) override {
    Pending p;
    p.tags_begin = tags_.size();
    HostTag host;
    SplitTags(m.raw_tags, &tags_, &host);
    std::string_view cardinality = m.cardinality;
    TakeInternalTags(p.tags_begin, &cardinality);
    AppendCommonTags(m.container_id, cardinality);
    p.tags_end = tags_.size();

    metrics::Sample& s = p.sample;
    s.name = m.name;
    const std::string& ns = server_->options_.metric_namespace;
    // Datadog leaves the agent's and clients' own telemetry (datadog.*) out of the namespace.
    if (!ns.empty() && !m.name.starts_with("datadog.")) s.name = Own(Cat(ns, m.name));
    s.type = m.type;
    s.value = m.value;
    s.set_value = m.set_value;
    s.sample_rate = m.sample_rate;
    s.timestamp = m.timestamp;
    s.host = host.present ? host.value : std::string_view(server_->options_.hostname);
    pending_.push_back(p);
  }

  void OnEvent(ParsedEvent&& parsed) override {
    metrics::Event event = std::move(parsed.event);
    std::string_view host = TagsInto(parsed.raw_tags, parsed.container_id, parsed.cardinality, &event.tags);
    if (event.host.empty()) event.host = host;
    if (event.timestamp == 0) event.timestamp = now_;
    server_->counters_->events.fetch_add(1, std::memory_order_relaxed);
    server_->sink_->AddEvent(std::move(event));
  }

  void OnServiceCheck(ParsedServiceCheck&& parsed) override {
    metrics::ServiceCheck check = std::move(parsed.check);
    std::string_view host = TagsInto(parsed.raw_tags, parsed.container_id, parsed.cardinality, &check.tags);
    if (check.host.empty()) check.host = host;
    if (check.timestamp == 0) check.timestamp = now_;
    server_->counters_->service_checks.fetch_add(1, std::memory_order_relaxed);
    server_->sink_->AddServiceCheck(std::move(check));
  }

  void OnError(ParseError error, std::string_view line) override {
    size_t kind = static_cast<size_t>(error);
    if (kind < kErrorKinds) server_->counters_->parse_errors[kind].fetch_add(1, std::memory_order_relaxed);
    uint64_t suppressed = 0;
    if (limiter_.Allow(&suppressed)) {
      // The line is client data: log a bounded prefix, never the whole datagram.
      log::Get("dogstatsd")
          ->debug("dropped line ({}, {} similar suppressed): {:.80}", ParseErrorName(error), suppressed,
                  line);
    }
  }

 private:
  struct Pending {
    metrics::Sample sample;
    size_t tags_begin = 0;
    size_t tags_end = 0;
  };

  std::string_view Own(std::string value) {
    owned_.push_back(std::move(value));
    return owned_.back();
  }

  // Datadog's client-side origin tags are instructions, not tags: `dd.internal.card:` overrides
  // the cardinality, `dd.internal.entity_id:` names a pod (for the tagger, once it knows pods).
  // Both are removed from the tags, as the Datadog Agent does.
  void TakeInternalTags(size_t begin, std::string_view* cardinality) {
    size_t out = begin;
    for (size_t i = begin; i < tags_.size(); ++i) {
      std::string_view tag = tags_[i];
      if (tag.starts_with("dd.internal.")) {
        if (tag.starts_with("dd.internal.card:") && server_->options_.origin_detection_client) {
          *cardinality = tag.substr(17);
        }
        if (tag.starts_with("dd.internal.card:") || tag.starts_with("dd.internal.entity_id:")) continue;
      }
      tags_[out++] = tag;
    }
    tags_.resize(out);
  }

  // Global tags, then the origin's container tags.
  void AppendCommonTags(std::string_view client_container, std::string_view client_cardinality) {
    tags_.insert(tags_.end(), extra_tag_views_.begin(), extra_tag_views_.end());
    if (server_->tagger_ == nullptr) return;
    const ServerOptions& o = server_->options_;
    std::string_view cardinality = o.cardinality;
    std::string container_id;
    if (o.origin_detection_client && !client_container.empty()) {
      container_id = server_->origins_.ForClientField(client_container, now_);
      if (!client_cardinality.empty()) cardinality = client_cardinality;
    }
    if (container_id.empty() && pid_ > 0) {
      if (!pid_container_resolved_) {
        pid_container_ = server_->origins_.ForPid(pid_, now_);
        pid_container_resolved_ = true;
      }
      container_id = pid_container_;
    }
    if (container_id.empty() || cardinality == "none") return;
    // One datagram usually carries one origin: ask the tagger once per (container, cardinality).
    std::string memo_key = Cat(container_id, "|", cardinality);
    auto it = origin_memo_.find(memo_key);
    if (it == origin_memo_.end()) {
      std::vector<std::string> tags;
      server_->tagger_->AppendContainerTags(container_id, cardinality, &tags);
      std::vector<std::string_view> views;
      for (std::string& tag : tags) views.push_back(Own(std::move(tag)));
      it = origin_memo_.emplace(std::move(memo_key), std::move(views)).first;
      server_->counters_->origin_resolved.fetch_add(1, std::memory_order_relaxed);
    }
    tags_.insert(tags_.end(), it->second.begin(), it->second.end());
  }

  // Events and service checks own their tags; returns the host to use when the line named none.
  std::string_view TagsInto(std::string_view raw_tags, std::string_view container_id,
                            std::string_view cardinality, std::vector<std::string>* out) {
    size_t begin = tags_.size();
    HostTag host;
    SplitTags(raw_tags, &tags_, &host);
    TakeInternalTags(begin, &cardinality);
    AppendCommonTags(container_id, cardinality);
    for (size_t i = begin; i < tags_.size(); ++i) out->emplace_back(tags_[i]);
    tags_.resize(begin);
    return host.present ? host.value : std::string_view(server_->options_.hostname);
  }

  Server* server_;
  std::vector<std::string_view> extra_tag_views_;
  int64_t now_ = 0;
  pid_t pid_ = 0;
  std::string pid_container_;
  bool pid_container_resolved_ = false;
  std::vector<Pending> pending_;
  std::vector<std::string_view> tags_;
  std::vector<metrics::Sample> samples_;
  std::deque<std::string> owned_;  // deque: growing it never moves what views point at
  std::map<std::string, std::vector<std::string_view>> origin_memo_;
  log::RateLimiter limiter_{std::chrono::seconds(10)};
};

Server::Server(ServerOptions options, Sink* sink, OriginTagger* tagger)
    : options_(std::move(options)),
      sink_(sink),
      tagger_(tagger),
      origins_(container::OriginCache::Options{.proc_root = options_.proc_root,
                                               .cgroup_root = options_.cgroup_root,
                                               .max_entries = 4096,
                                               .ttl_seconds = 60}),
      counters_(std::make_unique<AtomicCounters>()) {
  inline_worker_ = std::make_unique<Worker>(this);
}

Server::~Server() { Stop(); }

absl::Status Server::OpenUdp() {
  if (options_.udp_port == 0) return absl::OkStatus();
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return absl::InternalError(Cat("dogstatsd_port: socket(): ", Errno()));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(options_.udp_port);
  addr.sin_addr.s_addr = htonl(options_.non_local_traffic ? INADDR_ANY : INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::string error = Errno();
    close(fd);
    return absl::UnavailableError(Cat("dogstatsd_port: cannot bind UDP ",
                                      options_.non_local_traffic ? "0.0.0.0" : "127.0.0.1", ":",
                                      options_.udp_port, ": ", error));
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  bound_udp_port_ = ntohs(addr.sin_port);
  udp_fd_ = fd;
  return absl::OkStatus();
}

absl::Status Server::OpenUnix() {
  if (options_.socket_path.empty()) return absl::OkStatus();
  // 0722: any local process may send metrics (as with Datadog's dsd.socket); only the agent reads.
  auto fd = ipc::ListenUnix({.path = options_.socket_path,
                             .config_key = "dogstatsd_socket",
                             .mode = 0722,
                             .group = "",
                             .backlog = 0,
                             .socket_type = SOCK_DGRAM});
  if (!fd.ok()) return fd.status();
  unix_fd_ = *fd;
  if (options_.origin_detection) {
    int one = 1;
    if (setsockopt(unix_fd_, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) != 0) {
      return absl::InternalError(Cat("dogstatsd_origin_detection: SO_PASSCRED: ", Errno()));
    }
  }
  return absl::OkStatus();
}

absl::Status Server::Start() {
  if (started_) return absl::FailedPreconditionError("dogstatsd: already started");
  if (options_.buffer_size == 0 || options_.packets_per_batch == 0 || options_.queue_batches < 2) {
    return absl::InvalidArgumentError(
        "dogstatsd: buffer_size, packets_per_batch and queue_batches must be set");
  }
  absl::Status status = OpenUdp();
  if (status.ok()) status = OpenUnix();
  if (!status.ok()) {
    Stop();
    return status;
  }
  for (int fd : {udp_fd_, unix_fd_}) {
    if (fd < 0) continue;
    if (options_.so_rcvbuf > 0) {
      int size = options_.so_rcvbuf;
      // SO_RCVBUFFORCE passes rmem_max when privileged; otherwise the capped SO_RCVBUF applies.
      if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
      }
    }
  }
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) {
    Stop();
    return absl::InternalError(Cat("dogstatsd: eventfd: ", Errno()));
  }
  started_ = true;
  stopping_ = false;
  // Counted before any worker starts: a worker that sees no reader running exits.
  readers_running_ = (udp_fd_ >= 0 ? 1 : 0) + (unix_fd_ >= 0 ? 1 : 0);
  for (int i = 0; i < std::max(1, options_.pipelines); ++i) {
    worker_states_.push_back(std::make_unique<Worker>(this));
    Worker* worker = worker_states_.back().get();
    workers_.emplace_back([this, worker] { WorkLoop(worker); });
  }
  if (udp_fd_ >= 0) readers_.emplace_back([this] { ReadLoop(udp_fd_, Transport::kUdp); });
  if (unix_fd_ >= 0) readers_.emplace_back([this] { ReadLoop(unix_fd_, Transport::kUnix); });
  log::Get("dogstatsd")
      ->info("listening: udp={} unix={}", udp_fd_ >= 0 ? std::to_string(bound_udp_port_) : "off",
             unix_fd_ >= 0 ? options_.socket_path : "off");
  return absl::OkStatus();
}

void Server::Stop() {
  if (started_) {
    stopping_ = true;
    uint64_t one = 1;
    if (write(stop_fd_, &one, sizeof(one)) < 0) {
      // The eventfd counter cannot overflow from one write; nothing else can fail here.
    }
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      batch_free_.notify_all();
    }
    for (auto& t : readers_) t.join();
    readers_.clear();
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      readers_running_ = 0;
      batch_ready_.notify_all();
    }
    for (auto& t : workers_) t.join();  // workers drain what the readers queued, then exit
    workers_.clear();
    started_ = false;
  }
  if (udp_fd_ >= 0) {
    std::lock_guard<std::mutex> lock(udp_fd_mu_);  // Counters() may be reading the drop count
    counters_->dropped_kernel_udp_at_close.store(std::max<int64_t>(0, KernelDrops(udp_fd_)));
    close(udp_fd_);
    udp_fd_ = -1;
  }
  if (unix_fd_ >= 0) {
    close(unix_fd_);
    unlink(options_.socket_path.c_str());
  }
  if (stop_fd_ >= 0) close(stop_fd_);
  udp_fd_ = unix_fd_ = stop_fd_ = -1;
}

Server::Batch* Server::AcquireBatch() {
  std::unique_lock<std::mutex> lock(queue_mu_);
  while (true) {
    if (stopping_) return nullptr;
    if (!free_batches_.empty()) {
      Batch* batch = free_batches_.back();
      free_batches_.pop_back();
      return batch;
    }
    if (batches_.size() < options_.queue_batches) {
      batches_.push_back(std::make_unique<Batch>(options_.packets_per_batch, options_.buffer_size));
      return batches_.back().get();
    }
    counters_->reader_waits.fetch_add(1, std::memory_order_relaxed);
    batch_free_.wait(lock);
  }
}

void Server::ReleaseBatch(Batch* batch) {
  std::lock_guard<std::mutex> lock(queue_mu_);
  free_batches_.push_back(batch);
  batch_free_.notify_one();
}

void Server::ReadLoop(int fd, Transport transport) {
  // A batch goes to the workers when it is full, or kBatchLinger after its first datagram: under a
  // trickle, waking a worker per datagram would cost more than parsing it (futex round trips were
  // ~16% of the agent's CPU at 1 M metrics/s before this linger), and 2 ms is nothing for metrics
  // aggregated over 10 s.
  constexpr auto kBatchLinger = std::chrono::milliseconds(2);
  bool expect_more = false;  // the last recvmmsg filled every free slot: read again before polling
  log::RateLimiter error_limiter(std::chrono::seconds(30));
  Batch* batch = nullptr;
  std::chrono::steady_clock::time_point hand_off_at;
  auto hand_off = [&] {
    std::lock_guard<std::mutex> lock(queue_mu_);
    ready_batches_.push_back(batch);
    batch_ready_.notify_one();
    batch = nullptr;
  };
  while (!stopping_) {
    if (batch == nullptr) {
      batch = AcquireBatch();
      if (batch == nullptr) break;
      batch->count = 0;
      batch->transport = transport;
    }
    if (!expect_more) {
      int timeout_ms = -1;
      if (batch->count > 0) {
        auto left =
            std::chrono::ceil<std::chrono::milliseconds>(hand_off_at - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
          hand_off();
          continue;
        }
        timeout_ms = static_cast<int>(left.count());
      }
      pollfd fds[2] = {{fd, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      int rc = poll(fds, 2, timeout_ms);
      if (rc < 0 && errno != EINTR) {
        counters_->read_errors.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (fds[1].revents != 0) break;
      if ((fds[0].revents & POLLIN) == 0) continue;  // the linger timed out: handed off above
    }
    const size_t first = batch->count;
    const size_t free_slots = batch->headers.size() - first;
    batch->ArmFrom(first, options_.buffer_size);
    int n =
        recvmmsg(fd, batch->headers.data() + first, static_cast<unsigned>(free_slots), MSG_DONTWAIT, nullptr);
    if (n <= 0) {
      expect_more = false;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        counters_->read_errors.fetch_add(1, std::memory_order_relaxed);
        uint64_t suppressed = 0;
        if (error_limiter.Allow(&suppressed)) log::Get("dogstatsd")->warn("recvmmsg: {}", Errno());
      }
      continue;
    }
    for (size_t i = first; i < first + static_cast<size_t>(n); ++i) {
      msghdr& h = batch->headers[i].msg_hdr;
      batch->lengths[i] = batch->headers[i].msg_len;
      batch->truncated[i] = (h.msg_flags & MSG_TRUNC) != 0;
      batch->pids[i] = 0;
      for (cmsghdr* cm = CMSG_FIRSTHDR(&h); cm != nullptr; cm = CMSG_NXTHDR(&h, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS &&
            cm->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
          ucred cred;
          std::memcpy(&cred, CMSG_DATA(cm), sizeof(cred));
          batch->pids[i] = cred.pid;
        }
      }
    }
    if (first == 0) hand_off_at = std::chrono::steady_clock::now() + kBatchLinger;
    batch->count = first + static_cast<size_t>(n);
    expect_more = static_cast<size_t>(n) == free_slots;
    if (batch->count == batch->headers.size()) hand_off();
  }
  // What was read is parsed, never dropped: a partly filled batch still goes to the workers.
  if (batch != nullptr && batch->count > 0) {
    hand_off();
  } else if (batch != nullptr) {
    ReleaseBatch(batch);
  }
  std::lock_guard<std::mutex> lock(queue_mu_);
  --readers_running_;
  batch_ready_.notify_all();
}

void Server::WorkLoop(Worker* worker) {
  while (true) {
    Batch* batch = nullptr;
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      batch_ready_.wait(lock, [&] { return !ready_batches_.empty() || readers_running_ == 0; });
      if (ready_batches_.empty()) return;  // readers gone and nothing left to parse
      batch = ready_batches_.front();
      ready_batches_.pop_front();
    }
    for (size_t i = 0; i < batch->count; ++i) {
      std::string_view datagram(batch->buffer.get() + i * options_.buffer_size,
                                std::min<size_t>(batch->lengths[i], options_.buffer_size));
      if (batch->truncated[i]) {
        counters_->dropped_oversize_datagram.fetch_add(1, std::memory_order_relaxed);
        // Keep the complete lines; the one the buffer cut is unusable.
        size_t last_newline = datagram.rfind('\n');
        if (last_newline == std::string_view::npos) continue;
        datagram = datagram.substr(0, last_newline);
      }
      worker->Process(datagram, batch->transport, batch->pids[i]);
    }
    ReleaseBatch(batch);
  }
}

void Server::ProcessDatagram(std::string_view datagram, Transport transport, pid_t sender_pid) {
  std::lock_guard<std::mutex> lock(inline_mu_);
  inline_worker_->Process(datagram, transport, sender_pid);
}

std::map<std::string, int64_t> Server::Counters() const {
  const AtomicCounters& c = *counters_;
  int64_t kernel_drops = c.dropped_kernel_udp_at_close.load();
  {
    std::lock_guard<std::mutex> lock(udp_fd_mu_);
    if (udp_fd_ >= 0) kernel_drops = std::max<int64_t>(0, KernelDrops(udp_fd_));
  }
  std::map<std::string, int64_t> out = {
      {"packets_udp", c.packets_udp.load()},
      {"packets_unix", c.packets_unix.load()},
      {"packets_in_process", c.packets_in_process.load()},
      {"bytes", c.bytes.load()},
      {"metric_samples", c.metric_samples.load()},
      {"events", c.events.load()},
      {"service_checks", c.service_checks.load()},
      {"dropped_oversize_datagram", c.dropped_oversize_datagram.load()},
      {"dropped_kernel_udp", kernel_drops},
      {"reader_waits", c.reader_waits.load()},
      {"read_errors", c.read_errors.load()},
      {"origin_resolved", c.origin_resolved.load()},
  };
  for (size_t kind = 0; kind < kErrorKinds; ++kind) {
    out[Cat("parse_errors_", ParseErrorName(static_cast<ParseError>(kind)))] = c.parse_errors[kind].load();
  }
  container::OriginCache::Counters origin = origins_.counters();
  out["origin_cache_hits"] = origin.hits;
  out["origin_cache_misses"] = origin.misses;
  out["origin_cache_evictions"] = origin.evictions;
  std::lock_guard<std::mutex> lock(queue_mu_);
  out["queue_depth"] = static_cast<int64_t>(ready_batches_.size());
  out["batches_allocated"] = static_cast<int64_t>(batches_.size());
  return out;
}

}  // namespace dogwatch::dogstatsd
