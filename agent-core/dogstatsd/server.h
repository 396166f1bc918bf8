#pragma once
// The DogStatsD server: UDP and unix-datagram listeners feeding the metric aggregator.
//
//   socket ──recvmmsg──▶ reader thread ──batch──▶ bounded queue ──▶ worker thread(s) ──▶ Sink
//                        (one per socket)                           parse, tag, origin     (aggregator,
//                                                                                           events, checks)
//
// Readers only move bytes: one recvmmsg fills a batch of up to `packets_per_batch` datagrams (and,
// on the unix socket, each sender's credentials), so a burst costs one syscall per batch. Workers
// parse the batch in place (no copy of the datagram), split tags, add the global and origin tags
// and hand each datagram's samples to the sink in one call.
//
// Bounded and never silent: at most `queue_batches` batches exist. When all are in use the reader
// stops reading and the kernel's socket buffer absorbs the burst; what the kernel then drops on the
// UDP socket is read from the socket's own counter (SO_MEMINFO) and shown as dropped_kernel_udp
// (unix-datagram senders block instead, so nothing is lost there). A datagram longer than
// `buffer_size` is counted as oversize and its cut last line dropped; its complete lines are used.

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "agent-core/dogstatsd/parser/parser.h"
#include "agent-core/metrics/types.h"
#include "common/container/container_id.h"

namespace dogwatch::dogstatsd {

// Where parsed data goes. Called from the worker threads; implementations must be thread-safe.
class Sink {
 public:
  virtual ~Sink() = default;
  // The samples of one datagram. Views are valid only during the call.
  virtual void AddSamples(std::span<const metrics::Sample> samples) = 0;
  virtual void AddEvent(metrics::Event event) = 0;
  virtual void AddServiceCheck(metrics::ServiceCheck check) = 0;
};

// The core's tagger, as origin detection sees it: the tags of a container at a cardinality.
class OriginTagger {
 public:
  virtual ~OriginTagger() = default;
  virtual void AppendContainerTags(std::string_view container_id, std::string_view cardinality,
                                   std::vector<std::string>* out) = 0;
};

struct ServerOptions {
  uint16_t udp_port = 8125;  // 0 = no UDP listener
  bool non_local_traffic = false;
  std::string socket_path;  // "" = no unix-datagram listener
  int so_rcvbuf = 0;
  size_t buffer_size = 8192;
  size_t packets_per_batch = 32;
  size_t queue_batches = 64;
  int pipelines = 1;
  bool origin_detection = false;         // unix socket: sender PID → container → tags
  bool origin_detection_client = false;  // honour c:/card: sent by the client
  std::string cardinality = "low";
  std::vector<std::string> extra_tags;  // dogstatsd_tags, tags, env:...
  std::string hostname;                 // default host of every sample, event and check
  std::string metric_namespace;         // statsd_metric_namespace, with its trailing '.'
  std::string proc_root = "/proc";
  std::string cgroup_root = "/sys/fs/cgroup";
};

enum class Transport : uint8_t { kUdp, kUnix, kInProcess };

class Server {
 public:
  Server(ServerOptions options, Sink* sink, OriginTagger* tagger /* nullable */);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the configured sockets and starts the threads. Errors name the config key.
  absl::Status Start();
  // Stops reading, parses what is already queued, joins. Idempotent.
  void Stop();

  // Parses one datagram on the caller's thread (tests, benchmarks, in-process producers).
  void ProcessDatagram(std::string_view datagram, Transport transport, pid_t sender_pid = 0);

  // Counters by name: packets_<transport>, bytes, metric_samples, events, service_checks,
  // parse_errors_<kind>, dropped_oversize_datagram, dropped_kernel_udp, reader_waits (the reader
  // found no free batch), read_errors, origin_resolved, origin_cache_{hits,misses,evictions},
  // queue_depth, batches_allocated.
  std::map<std::string, int64_t> Counters() const;

  uint16_t udp_port() const { return bound_udp_port_; }

 private:
  struct Batch;
  class Worker;

  absl::Status OpenUdp();
  absl::Status OpenUnix();
  void ReadLoop(int fd, Transport transport);
  void WorkLoop(Worker* worker);
  Batch* AcquireBatch();  // nullptr when stopping
  void ReleaseBatch(Batch* batch);

  const ServerOptions options_;
  Sink* const sink_;
  OriginTagger* const tagger_;
  container::OriginCache origins_;

  mutable std::mutex udp_fd_mu_;  // guards closing udp_fd_ against Counters() reading its drops
  int udp_fd_ = -1;
  int unix_fd_ = -1;
  int stop_fd_ = -1;  // eventfd: wakes readers blocked in poll
  uint16_t bound_udp_port_ = 0;
  bool started_ = false;
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> readers_;
  std::vector<std::thread> workers_;
  std::vector<std::unique_ptr<Worker>> worker_states_;
  std::unique_ptr<Worker> inline_worker_;  // ProcessDatagram's
  std::mutex inline_mu_;

  // Batch pool and queue.
  mutable std::mutex queue_mu_;
  std::condition_variable batch_free_;
  std::condition_variable batch_ready_;
  std::vector<std::unique_ptr<Batch>> batches_;  // every batch ever allocated (≤ queue_batches)
  std::vector<Batch*> free_batches_;
  std::deque<Batch*> ready_batches_;
  int readers_running_ = 0;

  struct AtomicCounters;
  std::unique_ptr<AtomicCounters> counters_;
};

}  // namespace dogwatch::dogstatsd
