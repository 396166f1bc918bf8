// dogstatsd_load: sends realistic hot-shots DogStatsD lines to a DogStatsD (or StatsD) server over
// UDP or a unix datagram socket, for a bounded time, optionally paced, from one or two threads.
// Datagrams are prebuilt into a pool (so the sender spends its time in the kernel, not formatting)
// and handed to the kernel in batches with sendmmsg. Prints one JSON line with what was sent.
//
//   dogstatsd_load (--udp HOST:PORT | --uds PATH) [--seconds 10] [--rate 0 (metrics/s, 0 = as fast
//                  as possible)] [--lines-per-datagram 1] [--max-datagram-bytes 8192]
//                  [--contexts 1000] [--threads 1] [--batch 64] [--plain]
//
// --contexts is the number of distinct name+tag combinations, rounded down to a multiple of the 10
// metric names (at least 10); the JSON reports how many the datagram pool really holds.
// --lines-per-datagram 1 is hot-shots unbuffered (one line per datagram); K > 1 is hot-shots with
// maxBufferSize: lines joined by '\n' (no trailing newline) while the datagram stays under
// --max-datagram-bytes. --plain drops the DogStatsD extensions (tags, container id) and the
// DogStatsD-only types (h, d) for servers that speak only Etsy StatsD.
//
// Sends are blocking with a short send timeout: when the receiver's queue is full (unix datagram
// sockets) the sender waits, which is backpressure, not loss; each wait that times out is counted
// as would_block and the same datagram is retried. ENOBUFS is counted and retried the same way.
// A datagram refused outright (ECONNREFUSED: nobody listening) is counted and skipped, so
// metrics_sent counts only lines the kernel accepted.

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace {

constexpr double kMaxSeconds = 600;  // bounded, whatever was asked
constexpr int kMaxThreads = 2;
constexpr int kMaxBatch = 1024;
constexpr long kMaxContexts = 1000000;
constexpr size_t kMaxDatagramBytes = 65000;
// The pool of prebuilt lines: four per context so every context appears with several values and
// consecutive datagrams differ, within bounds that keep it between ~20 and ~160 MiB.
constexpr size_t kMinPoolLines = 1 << 17;
constexpr size_t kMaxPoolLines = 1 << 20;

struct Args {
  std::string udp;  // HOST:PORT
  std::string uds;  // path of a unix datagram socket
  double seconds = 10;
  double rate = 0;  // metrics (lines) per second, all threads together; 0 = unpaced
  int lines_per_datagram = 1;
  size_t max_datagram_bytes = 8192;
  long contexts = 1000;
  int threads = 1;
  int batch = 64;
  bool plain = false;
};

// One metric name of a Node web service instrumented with hot-shots, with the type it is always
// sent as, the share of lines it gets, and the client-side sample rate hot-shots keeps on the line.
struct MetricKind {
  const char* name;
  const char* type;
  int weight;
  const char* sample_rate;  // "" when unsampled
};

// Mix: counters 40%, gauges 15%, histograms 15%, distributions 10%, timings 10%, sets 10%.
constexpr MetricKind kKinds[] = {
    {"web.request.count", "c", 20, ""},   {"web.request.sampled", "c", 10, "0.5"},
    {"web.cache.miss", "c", 10, ""},      {"web.queue.depth", "g", 8, ""},
    {"node.heap.used", "g", 7, ""},       {"web.request.duration", "h", 10, "0.5"},
    {"web.response.bytes", "h", 5, ""},   {"web.db.query.latency", "d", 10, ""},
    {"web.request.timing", "ms", 10, ""}, {"web.users.unique", "s", 10, ""},
};

// Deterministic xorshift so runs are reproducible without <random>'s per-call cost.
struct Rng {
  uint64_t state = 0x9E3779B97F4A7C15ull;
  uint64_t Next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  }
};

const MetricKind& PickKind(Rng& rng) {
  int total = 0;
  for (const auto& kind : kKinds) total += kind.weight;
  int pick = static_cast<int>(rng.Next() % static_cast<uint64_t>(total));
  for (const auto& kind : kKinds) {
    if (pick < kind.weight) return kind;
    pick -= kind.weight;
  }
  return kKinds[0];
}

void AppendValue(std::string& line, const MetricKind& kind, Rng& rng) {
  char buffer[64];
  const std::string type = kind.type;
  if (type == "c") {
    std::snprintf(buffer, sizeof buffer, "%d", static_cast<int>(rng.Next() % 5) + 1);
  } else if (type == "g") {
    std::snprintf(buffer, sizeof buffer, "%.1f", static_cast<double>(rng.Next() % 100000) / 10.0);
  } else if (type == "s") {
    std::snprintf(buffer, sizeof buffer, "user-%d", static_cast<int>(rng.Next() % 5000));
  } else {  // h, d, ms: latencies and sizes with two decimals
    std::snprintf(buffer, sizeof buffer, "%.2f", static_cast<double>(rng.Next() % 2500000) / 100.0);
  }
  line += buffer;
}

// A context is a (name, tag set) pair. Each name takes contexts / names endpoint values, and the
// status code tag follows the endpoint, so there are exactly max(1, contexts / names) * names
// contexts (the kinds' weights make some contexts hotter than others, as in real traffic).
std::string BuildLine(const Args& args, Rng& rng, size_t& kind_index, long& endpoint) {
  const MetricKind& kind = PickKind(rng);
  kind_index = static_cast<size_t>(&kind - kKinds);
  const long names = static_cast<long>(std::size(kKinds));
  const long endpoints = std::max(1L, args.contexts / names);
  endpoint = static_cast<long>(rng.Next() % static_cast<uint64_t>(endpoints));
  std::string type = kind.type;
  // Etsy StatsD has no h/d: a plain client sends those as timings.
  if (args.plain && (type == "h" || type == "d")) type = "ms";
  std::string line;
  line.reserve(160);
  line += kind.name;
  if (args.plain) {
    // Without tags the endpoint goes into the name, Graphite style, to keep the context count.
    line += ".endpoint_";
    line += std::to_string(endpoint);
  }
  line += ':';
  AppendValue(line, kind, rng);
  line += '|';
  line += type;
  if (kind.sample_rate[0] != '\0') {
    line += "|@";
    line += kind.sample_rate;
  }
  if (!args.plain) {
    static const char* const kStatus[] = {"200", "200", "200", "201", "404", "500"};
    line += "|#env:prod,service:checkout-api,version:4.12.1,endpoint:/api/v1/resource_";
    line += std::to_string(endpoint);
    line += ",status_code:";
    line += kStatus[static_cast<size_t>(endpoint) % std::size(kStatus)];
    line += "|c:in-5859";
  }
  return line;
}

// Joins lines into datagrams the way hot-shots' buffer does: append while the result stays under
// the limit, separated by '\n', no trailing newline.
std::vector<std::string> BuildDatagramPool(const Args& args, std::vector<int>& lines_in_datagram,
                                           size_t& contexts_in_pool) {
  Rng rng;
  const size_t pool_lines =
      std::clamp<size_t>(4 * static_cast<size_t>(args.contexts), kMinPoolLines, kMaxPoolLines);
  std::unordered_set<uint64_t> contexts;
  std::vector<std::string> pool;
  std::string current;
  int current_lines = 0;
  for (size_t i = 0; i < pool_lines; ++i) {
    size_t kind_index = 0;
    long endpoint = 0;
    std::string line = BuildLine(args, rng, kind_index, endpoint);
    contexts.insert(static_cast<uint64_t>(endpoint) * std::size(kKinds) + kind_index);
    const size_t joined = current.size() + (current_lines > 0 ? 1 : 0) + line.size();
    if (current_lines > 0 &&
        (current_lines >= args.lines_per_datagram || joined >= args.max_datagram_bytes)) {
      pool.push_back(std::move(current));
      lines_in_datagram.push_back(current_lines);
      current.clear();
      current_lines = 0;
    }
    if (current_lines > 0) current += '\n';
    current += line;
    ++current_lines;
  }
  if (current_lines > 0) {
    pool.push_back(std::move(current));
    lines_in_datagram.push_back(current_lines);
  }
  contexts_in_pool = contexts.size();
  return pool;
}

struct Counters {
  std::atomic<long> datagrams{0};
  std::atomic<long> metrics{0};
  std::atomic<long> bytes{0};
  std::atomic<long> would_block{0};
  std::atomic<long> enobufs{0};
  std::atomic<long> refused{0};
  std::atomic<long> other_errors{0};
  std::atomic<long> abandoned{0};
  std::atomic<int> last_errno{0};
};

int OpenSocket(const Args& args, std::string& error) {
  int fd = -1;
  if (!args.uds.empty()) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (args.uds.size() >= sizeof(address.sun_path)) {
      error = "unix socket path too long";
      return -1;
    }
    std::memcpy(address.sun_path, args.uds.data(), args.uds.size());
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      error = std::string("connect ") + args.uds + ": " + std::strerror(errno);
      if (fd >= 0) close(fd);
      return -1;
    }
  } else {
    const size_t colon = args.udp.rfind(':');
    if (colon == std::string::npos) {
      error = "--udp wants HOST:PORT";
      return -1;
    }
    std::string host = args.udp.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    const std::string port = args.udp.substr(colon + 1);
    addrinfo hints{};
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* found = nullptr;
    if (const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
      error = std::string("resolve ") + args.udp + ": " + gai_strerror(rc);
      return -1;
    }
    fd = socket(found->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
      error = std::string("connect ") + args.udp + ": " + std::strerror(errno);
      if (fd >= 0) close(fd);
      freeaddrinfo(found);
      return -1;
    }
    freeaddrinfo(found);
  }
  // Blocking with a timeout: a full receiver queue makes us wait (backpressure), and each wait
  // that hits the timeout is counted, so the deadline is still honoured.
  timeval timeout{};
  timeout.tv_usec = 50 * 1000;
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  // A generous send buffer so UDP bursts are not limited by the sender's own socket.
  int send_buffer = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_buffer, sizeof send_buffer);
  return fd;
}

void SendLoop(const Args& args, int thread_index, const std::vector<std::string>& pool,
              const std::vector<int>& lines_in_datagram, std::chrono::steady_clock::time_point start,
              std::chrono::steady_clock::time_point deadline, Counters& counters, std::string& error) {
  const int fd = OpenSocket(args, error);
  if (fd < 0) return;
  const double thread_rate = args.rate / args.threads;
  const size_t batch = static_cast<size_t>(args.batch);
  std::vector<iovec> iovecs(batch);
  std::vector<mmsghdr> messages(batch);
  // Threads start at different places in the pool so they do not send identical datagrams.
  size_t next = (pool.size() / static_cast<size_t>(args.threads)) * static_cast<size_t>(thread_index);
  long sent_lines = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (thread_rate > 0) {
      // Pace on lines: sleep until the schedule has caught up with what was already sent.
      const auto due = start + std::chrono::nanoseconds(static_cast<long>(sent_lines / thread_rate * 1e9));
      if (due > deadline) break;
      if (due > std::chrono::steady_clock::now()) std::this_thread::sleep_until(due);
    }
    // Fill a batch; when paced, keep a batch to about a millisecond of the schedule.
    size_t count = batch;
    if (thread_rate > 0) {
      const double lines_per_ms = thread_rate / 1000.0;
      const double datagrams_per_ms = lines_per_ms / std::max(1, args.lines_per_datagram);
      count = std::clamp<size_t>(static_cast<size_t>(datagrams_per_ms), 1, batch);
    }
    for (size_t i = 0; i < count; ++i) {
      const std::string& datagram = pool[(next + i) % pool.size()];
      iovecs[i].iov_base = const_cast<char*>(datagram.data());
      iovecs[i].iov_len = datagram.size();
      messages[i] = mmsghdr{};
      messages[i].msg_hdr.msg_iov = &iovecs[i];
      messages[i].msg_hdr.msg_iovlen = 1;
    }
    size_t done = 0;
    while (done < count) {
      const int rc = sendmmsg(fd, messages.data() + done, static_cast<unsigned>(count - done), 0);
      if (rc > 0) {
        for (int i = 0; i < rc; ++i) {
          const size_t index = (next + done + static_cast<size_t>(i)) % pool.size();
          sent_lines += lines_in_datagram[index];
          counters.bytes.fetch_add(static_cast<long>(pool[index].size()), std::memory_order_relaxed);
        }
        counters.datagrams.fetch_add(rc, std::memory_order_relaxed);
        done += static_cast<size_t>(rc);
        continue;
      }
      const int err = errno;
      if (err == EINTR) continue;
      counters.last_errno.store(err);
      if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
        (err == ENOBUFS ? counters.enobufs : counters.would_block).fetch_add(1, std::memory_order_relaxed);
        if (std::chrono::steady_clock::now() >= deadline) {
          counters.abandoned.fetch_add(static_cast<long>(count - done), std::memory_order_relaxed);
          break;
        }
        if (err == ENOBUFS) {
          std::this_thread::sleep_for(std::chrono::microseconds(100));
        } else {
          pollfd wait{fd, POLLOUT, 0};
          poll(&wait, 1, 10);
        }
        continue;
      }
      if (err == ECONNREFUSED) {
        // Nobody listening (an ICMP error from a previous datagram): this one is not counted as
        // sent; move past it.
        counters.refused.fetch_add(1, std::memory_order_relaxed);
        ++done;
        continue;
      }
      counters.other_errors.fetch_add(1, std::memory_order_relaxed);
      error = std::string("sendmmsg: ") + std::strerror(err);
      close(fd);
      counters.metrics.fetch_add(sent_lines, std::memory_order_relaxed);
      return;
    }
    next = (next + count) % pool.size();
  }
  counters.metrics.fetch_add(sent_lines, std::memory_order_relaxed);
  close(fd);
}

bool ParseArgs(int argc, char** argv, Args& args) {
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (key == "--plain") {
      args.plain = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "dogstatsd_load: %s needs a value\n", key.c_str());
      return false;
    }
    const std::string value = argv[++i];
    try {
      if (key == "--udp")
        args.udp = value;
      else if (key == "--uds")
        args.uds = value;
      else if (key == "--seconds")
        args.seconds = std::stod(value);
      else if (key == "--rate")
        args.rate = std::stod(value);
      else if (key == "--lines-per-datagram")
        args.lines_per_datagram = std::stoi(value);
      else if (key == "--max-datagram-bytes")
        args.max_datagram_bytes = static_cast<size_t>(std::stoul(value));
      else if (key == "--contexts")
        args.contexts = std::stol(value);
      else if (key == "--threads")
        args.threads = std::stoi(value);
      else if (key == "--batch")
        args.batch = std::stoi(value);
      else {
        std::fprintf(stderr, "dogstatsd_load: unknown option %s\n", key.c_str());
        return false;
      }
    } catch (const std::exception&) {
      std::fprintf(stderr, "dogstatsd_load: bad value for %s: %s\n", key.c_str(), value.c_str());
      return false;
    }
  }
  if (args.udp.empty() == args.uds.empty()) {
    std::fprintf(stderr, "dogstatsd_load: give exactly one of --udp HOST:PORT or --uds PATH\n");
    return false;
  }
  if (!(args.seconds > 0) || args.rate < 0 || args.lines_per_datagram < 1 || args.contexts < 1 ||
      args.threads < 1 || args.batch < 1 || args.max_datagram_bytes < 64) {
    std::fprintf(stderr, "dogstatsd_load: values must be positive\n");
    return false;
  }
  args.seconds = std::min(args.seconds, kMaxSeconds);
  args.threads = std::min(args.threads, kMaxThreads);
  args.batch = std::min(args.batch, kMaxBatch);
  args.contexts = std::min(args.contexts, kMaxContexts);
  args.max_datagram_bytes = std::min(args.max_datagram_bytes, kMaxDatagramBytes);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!ParseArgs(argc, argv, args)) return 2;
  std::vector<int> lines_in_datagram;
  size_t contexts_in_pool = 0;
  const std::vector<std::string> pool = BuildDatagramPool(args, lines_in_datagram, contexts_in_pool);
  size_t pool_bytes = 0;
  for (const auto& datagram : pool) pool_bytes += datagram.size();

  Counters counters;
  std::vector<std::string> errors(static_cast<size_t>(args.threads));
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::milliseconds(static_cast<long>(args.seconds * 1000));
  std::vector<std::thread> workers;
  for (int t = 0; t < args.threads; ++t) {
    workers.emplace_back([&, t] {
      SendLoop(args, t, pool, lines_in_datagram, start, deadline, counters, errors[static_cast<size_t>(t)]);
    });
  }
  for (auto& worker : workers) worker.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::string error;
  for (const auto& e : errors)
    if (!e.empty()) error = e;
  std::string escaped;
  for (char c : error) {
    if (c == '"' || c == '\\') escaped += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) escaped += c;
  }
  std::printf(
      "{\"transport\": \"%s\", \"target\": \"%s\", \"threads\": %d, \"lines_per_datagram\": %d, "
      "\"max_datagram_bytes\": %zu, \"contexts\": %zu, \"plain\": %s, \"rate_requested\": %.0f, "
      "\"elapsed_seconds\": %.3f, \"datagrams_sent\": %ld, \"metrics_sent\": %ld, \"bytes_sent\": %ld, "
      "\"metrics_per_second\": %.0f, \"avg_datagram_bytes\": %.1f, \"would_block\": %ld, \"enobufs\": %ld, "
      "\"refused\": %ld, \"other_errors\": %ld, \"abandoned_at_deadline\": %ld, \"pool_datagrams\": %zu, "
      "\"pool_bytes\": %zu, \"error\": \"%s\"}\n",
      args.uds.empty() ? "udp" : "uds", args.uds.empty() ? args.udp.c_str() : args.uds.c_str(), args.threads,
      args.lines_per_datagram, args.max_datagram_bytes, contexts_in_pool, args.plain ? "true" : "false",
      args.rate, elapsed, counters.datagrams.load(), counters.metrics.load(), counters.bytes.load(),
      elapsed > 0 ? static_cast<double>(counters.metrics.load()) / elapsed : 0.0,
      counters.datagrams.load() > 0 ? static_cast<double>(counters.bytes.load()) / counters.datagrams.load()
                                    : 0.0,
      counters.would_block.load(), counters.enobufs.load(), counters.refused.load(),
      counters.other_errors.load(), counters.abandoned.load(), pool.size(), pool_bytes, escaped.c_str());
  return error.empty() ? 0 : 1;
}
