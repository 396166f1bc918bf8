// pingpong: TCP request/response latency over loopback, for the system-probe benchmark
// (tests/bench/sysprobe_bench.sh). A server thread accepts one connection on 127.0.0.1 and echoes
// every fixed-size request; the client thread sends a request, waits for the whole reply, and
// times each round trip. Small messages keep the cost per system call (where eBPF hooks run)
// large relative to the copy, so added per-call overhead shows up in the latency.
// Prints one JSON line.
//
//   pingpong [--count 200000] [--seconds 10] [--size 64] [--warmup 2000] [--host 127.0.0.1]
//            [--cpu -1]
//
// The run stops after --count timed round trips or --seconds, whichever comes first; both are
// bounded whatever was asked. --warmup round trips run first and are not timed.
// --cpu N pins both threads to CPU N. On a small VM a wakeup on the other CPU costs tens of
// microseconds more and varies with whatever else runs there, which would drown a per-call cost
// of a microsecond; on one CPU each round trip is two sends, two receives and two context
// switches, and the median is stable to a few percent.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr long kMaxCount = 10'000'000;
constexpr double kMaxSeconds = 300;
constexpr long kMaxSize = 65536;
constexpr long kMaxWarmup = 1'000'000;

struct Args {
  long count = 200000;
  double seconds = 10;
  long size = 64;
  long warmup = 2000;
  std::string host = "127.0.0.1";
  int cpu = -1;
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr,
               "pingpong: %s\nusage: pingpong [--count N] [--seconds S] [--size BYTES] [--warmup N] "
               "[--host 127.0.0.1] [--cpu -1]\n",
               why);
  std::exit(2);
}

long ParseLong(const char* text, long lo, long hi, const char* name) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
    std::fprintf(stderr, "pingpong: %s must be an integer in [%ld, %ld]\n", name, lo, hi);
    std::exit(2);
  }
  return v;
}

Args ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) Usage(("missing value for " + flag).c_str());
    const char* value = argv[++i];
    if (flag == "--count") {
      a.count = ParseLong(value, 1, kMaxCount, "--count");
    } else if (flag == "--seconds") {
      char* end = nullptr;
      a.seconds = std::strtod(value, &end);
      if (end == value || *end != '\0' || !(a.seconds > 0) || a.seconds > kMaxSeconds) {
        Usage("--seconds must be in (0, 300]");
      }
    } else if (flag == "--size") {
      a.size = ParseLong(value, 1, kMaxSize, "--size");
    } else if (flag == "--warmup") {
      a.warmup = ParseLong(value, 0, kMaxWarmup, "--warmup");
    } else if (flag == "--host") {
      a.host = value;
    } else if (flag == "--cpu") {
      a.cpu = static_cast<int>(ParseLong(value, -1, CPU_SETSIZE - 1, "--cpu"));
    } else {
      Usage(("unknown flag " + flag).c_str());
    }
  }
  return a;
}

// Full-length I/O: TCP may split a message; a round trip is only over when all of it arrived.
bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Returns false on EOF or error (the peer went away).
bool ReadAll(int fd, char* p, size_t n) {
  while (n > 0) {
    ssize_t r = recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

void NoDelay(int fd) {
  // Without it Nagle holds back a small reply until the previous one is acknowledged.
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void Serve(int listener, size_t size) {
  int fd = accept(listener, nullptr, nullptr);
  if (fd < 0) {
    std::perror("pingpong: accept");
    return;
  }
  NoDelay(fd);
  std::vector<char> buf(size);
  while (ReadAll(fd, buf.data(), size) && WriteAll(fd, buf.data(), size)) {
  }
  close(fd);
}

double Percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t index = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return static_cast<double>(sorted[std::min(index, sorted.size() - 1)]) / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (inet_pton(AF_INET, args.host.c_str(), &addr.sin_addr) != 1) Usage("--host must be an IPv4 address");
  if (args.cpu >= 0) {
    // Before the server thread starts, so it inherits the mask.
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(args.cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
      std::perror("pingpong: sched_setaffinity");
      return 1;
    }
  }

  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listener, 1) != 0) {
    std::perror("pingpong: listen");
    return 1;
  }
  socklen_t len = sizeof(addr);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  const size_t size = static_cast<size_t>(args.size);
  std::thread server(Serve, listener, size);

  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::perror("pingpong: connect");
    shutdown(listener, SHUT_RDWR);
    server.join();
    return 1;
  }
  NoDelay(fd);

  std::vector<char> request(size, 'p'), reply(size);
  bool ok = true;
  for (long i = 0; i < args.warmup && ok; ++i) {
    ok = WriteAll(fd, request.data(), size) && ReadAll(fd, reply.data(), size);
  }
  std::vector<int64_t> samples;
  // Enough for a few seconds at loopback speed without touching memory a short run never uses.
  samples.reserve(static_cast<size_t>(std::min(args.count, 1L << 20)));
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(args.seconds));
  auto before = start;
  while (ok && static_cast<long>(samples.size()) < args.count) {
    ok = WriteAll(fd, request.data(), size) && ReadAll(fd, reply.data(), size);
    const auto after = Clock::now();
    if (!ok) break;
    samples.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(after - before).count());
    before = after;
    if (after >= deadline) break;
  }
  const double elapsed = std::chrono::duration<double>(before - start).count();
  close(fd);  // the server sees EOF and returns
  server.join();
  close(listener);
  if (!ok) {
    std::fprintf(stderr, "pingpong: connection failed after %zu round trips\n", samples.size());
    return 1;
  }

  double sum = 0;
  for (int64_t s : samples) sum += static_cast<double>(s);
  const double mean_us = samples.empty() ? 0.0 : sum / static_cast<double>(samples.size()) / 1000.0;
  std::sort(samples.begin(), samples.end());
  std::printf("{\"round_trips\":%zu,\"size\":%zu,\"cpu\":%d,\"seconds\":%.3f,\"round_trips_per_s\":%.0f,",
              samples.size(), size, args.cpu, elapsed,
              elapsed > 0 ? static_cast<double>(samples.size()) / elapsed : 0.0);
  std::printf("\"mean_us\":%.3f,\"min_us\":%.3f,\"median_us\":%.3f,\"p90_us\":%.3f,\"p99_us\":%.3f,", mean_us,
              Percentile(samples, 0.0), Percentile(samples, 0.5), Percentile(samples, 0.9),
              Percentile(samples, 0.99));
  std::printf("\"p999_us\":%.3f,\"max_us\":%.3f}\n", Percentile(samples, 0.999), Percentile(samples, 1.0));
  return 0;
}
