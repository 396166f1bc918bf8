// system-probe with its real eBPF programs against real loopback traffic (CI runs as root): exact
// byte counts, PIDs and directions for TCP and UDP over IPv4 and IPv6, a connection inside a
// network namespace made here, a refused connect, DNS to a resolver on loopback, retransmits under
// induced loss, per-client delta semantics, and the security of the process and its socket.
// BPF hooks are global: every check filters on this test's own ports.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/ipc/grpc_server.h"
#include "dogwatch/sysprobe.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "tests/support/test_support.h"

namespace dogwatch::sysprobe {
namespace {

using dogwatch::testing::Bin;
using dogwatch::testing::Process;
using dogwatch::testing::RunCommand;
using dogwatch::testing::TempDir;
using dogwatch::testing::WaitFor;
using namespace std::chrono_literals;

// ---- system-probe under test -------------------------------------------------------------------

class SystemProbeUnderTest {
 public:
  using Env = std::map<std::string, std::string>;
  explicit SystemProbeUnderTest(Env env = {}) {
    config_ = dir_.Write("system-probe.yaml", "system_probe_config:\n  enabled: true\n  sysprobe_socket: " +
                                                  dir_.File("sysprobe.sock") +
                                                  "\nnetwork_config:\n  enabled: true\nlog_level: info\n");
    process_ = std::make_unique<Process>(std::vector<std::string>{Bin("system-probe"), "-c", config_},
                                         std::move(env), dir_.path(), "system-probe");
    const bool up = WaitFor(
        [&] {
          if (!process_->Running()) return true;
          struct stat st;
          return stat(dir_.File("sysprobe.sock").c_str(), &st) == 0;
        },
        30s);
    INFO("system-probe stderr: " << process_->Stderr());
    REQUIRE(up);
    REQUIRE(process_->Running());
    stub_ = SystemProbe::NewStub(ipc::CreateUnixChannel(dir_.File("sysprobe.sock"), 64 << 20));
    SysprobeHealthResponse health;
    REQUIRE(WaitFor([&] { return Health(&health).ok() && health.healthy(); }, 20s));
  }
  ~SystemProbeUnderTest() {
    process_->Signal(SIGTERM);
    process_->Wait(10s);
  }

  grpc::Status Health(SysprobeHealthResponse* out) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 5s);
    return stub_->Health(&context, SysprobeHealthRequest(), out);
  }
  GetConnectionsResponse Poll(const std::string& client) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    GetConnectionsRequest request;
    request.set_client_id(client);
    GetConnectionsResponse response;
    grpc::Status status = stub_->GetConnections(&context, request, &response);
    INFO("GetConnections: " << status.error_message());
    REQUIRE(status.ok());
    return response;
  }
  grpc::Status ProcessStats(const std::vector<int32_t>& pids, ProcessStatsResponse* out) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 5s);
    ProcessStatsRequest request;
    for (int32_t pid : pids) request.add_pids(pid);
    return stub_->GetProcessStats(&context, request, out);
  }
  pid_t pid() const { return process_->pid(); }
  const std::string& config() const { return config_; }
  std::string socket() const { return dir_.File("sysprobe.sock"); }
  std::string Stderr() const { return process_->Stderr(); }

 private:
  TempDir dir_;
  std::string config_;
  std::unique_ptr<Process> process_;
  std::unique_ptr<SystemProbe::Stub> stub_;
};

// Everything a client has been told about one flow (active deltas and the close), summed.
struct FlowTotals {
  bool seen = false;
  uint64_t sent = 0, received = 0, packets_sent = 0, packets_received = 0, retransmits = 0;
  uint32_t established = 0, closed = 0, failures = 0, failure_errno = 0;
  int32_t pid = 0;
  std::string command;
  Direction direction = DIRECTION_UNSPECIFIED;
  ConnectionType type = CONNECTION_TYPE_UNSPECIFIED;
  Family family = FAMILY_UNSPECIFIED;
  uint32_t netns = 0;
  std::string local_ip, remote_ip;
};

struct FlowFilter {
  ConnectionType type;
  uint16_t local_port;
  uint16_t remote_port;  // 0: any
};

void Accumulate(const GetConnectionsResponse& response, const FlowFilter& filter, FlowTotals* totals) {
  for (const auto& c : response.connections()) {
    if (c.type() != filter.type || c.local().port() != filter.local_port) continue;
    if (filter.remote_port != 0 && c.remote().port() != filter.remote_port) continue;
    totals->seen = true;
    totals->sent += c.bytes_sent();
    totals->received += c.bytes_received();
    totals->packets_sent += c.packets_sent();
    totals->packets_received += c.packets_received();
    totals->retransmits += c.retransmits();
    totals->established += c.established();
    totals->closed += c.closed();
    totals->failures += c.failures();
    if (c.failure_errno() != 0) totals->failure_errno = c.failure_errno();
    if (c.pid() != 0) totals->pid = c.pid();
    if (!c.command().empty()) totals->command = c.command();
    totals->direction = c.direction();
    totals->type = c.type();
    totals->family = c.family();
    totals->netns = c.net_ns();
    totals->local_ip = c.local().ip();
    totals->remote_ip = c.remote().ip();
  }
}

// Polls as `client` until every flow in `filters` is reported closed (or 15 s pass).
std::vector<FlowTotals> PollUntilClosed(SystemProbeUnderTest& probe, const std::string& client,
                                        const std::vector<FlowFilter>& filters) {
  std::vector<FlowTotals> totals(filters.size());
  WaitFor(
      [&] {
        auto response = probe.Poll(client);
        bool all_closed = true;
        for (size_t i = 0; i < filters.size(); ++i) {
          Accumulate(response, filters[i], &totals[i]);
          all_closed = all_closed && totals[i].closed > 0;
        }
        return all_closed;
      },
      15s);
  return totals;
}

// ---- traffic ------------------------------------------------------------------------------------

struct Endpoint {
  int family;
  std::string ip;
};
const Endpoint kV4{AF_INET, "127.0.0.1"};
const Endpoint kV6{AF_INET6, "::1"};

sockaddr_storage Address(const Endpoint& e, uint16_t port, socklen_t* len) {
  sockaddr_storage ss{};
  if (e.family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, e.ip.c_str(), &a->sin_addr);
    *len = sizeof(sockaddr_in);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    inet_pton(AF_INET6, e.ip.c_str(), &a->sin6_addr);
    *len = sizeof(sockaddr_in6);
  }
  return ss;
}

uint16_t LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return ss.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port)
                                 : ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

int Listen(const Endpoint& e, int type, uint16_t port = 0) {
  int fd = socket(e.family, type | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  socklen_t len;
  auto addr = Address(e, port, &len);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0);
  if (type == SOCK_STREAM) REQUIRE(listen(fd, 16) == 0);
  return fd;
}

// A TCP client socket connected to `port` on the endpoint.
int ConnectTcp(const Endpoint& e, uint16_t port) {
  int fd = socket(e.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  socklen_t len;
  auto addr = Address(e, port, &len);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0);
  return fd;
}

// A UDP port free on the endpoint: explicit ports mark a UDP socket as a server (incoming).
uint16_t FreeUdpPort(const Endpoint& e) {
  int fd = Listen(e, SOCK_DGRAM, 0);
  uint16_t port = LocalPort(fd);
  close(fd);
  return port;
}

bool SendAll(int fd, size_t bytes, char fill) {
  std::vector<char> buffer(65536, fill);
  while (bytes > 0) {
    ssize_t n = send(fd, buffer.data(), std::min(bytes, buffer.size()), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes -= static_cast<size_t>(n);
  }
  return true;
}

size_t ReceiveUntilEof(int fd, size_t limit) {
  std::vector<char> buffer(65536);
  size_t total = 0;
  while (total <= limit) {
    ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
    if (n <= 0) break;
    total += static_cast<size_t>(n);
  }
  return total;
}

// Waits for a forked child and requires that it exited with 0.
void WaitChildSucceeded(pid_t child) {
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  INFO("child exit status " << status);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
}

// Runs `body` in a child process (a different PID than the test) and returns its pid after it
// exited with 0. Only plain socket calls happen in the child: safe after fork.
pid_t RunChild(const std::function<int()>& body) {
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) _exit(body());
  WaitChildSucceeded(child);
  return child;
}

struct TcpResult {
  pid_t client_pid = 0;
  uint16_t server_port = 0;
  uint16_t client_port = 0;
  size_t server_received = 0;
};

// The child connects and sends `up` bytes then reads to EOF; the test (server) reads `up` bytes
// and answers `down` bytes.
TcpResult TcpTransfer(const Endpoint& e, size_t up, size_t down) {
  TcpResult result;
  int listener = Listen(e, SOCK_STREAM);
  result.server_port = LocalPort(listener);
  int port_pipe[2];
  REQUIRE(pipe(port_pipe) == 0);
  std::thread server([&] {
    int conn = accept(listener, nullptr, nullptr);
    if (conn < 0) return;
    std::vector<char> buffer(65536);
    while (result.server_received < up) {
      ssize_t n = recv(conn, buffer.data(), buffer.size(), 0);
      if (n <= 0) break;
      result.server_received += static_cast<size_t>(n);
    }
    SendAll(conn, down, 'd');
    close(conn);
  });
  result.client_pid = RunChild([&] {
    int fd = socket(e.family, SOCK_STREAM, 0);
    socklen_t len;
    auto addr = Address(e, result.server_port, &len);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) return 1;
    uint16_t port = LocalPort(fd);
    if (write(port_pipe[1], &port, sizeof(port)) != sizeof(port)) return 2;
    if (!SendAll(fd, up, 'u')) return 3;
    if (ReceiveUntilEof(fd, down) != down) return 4;
    close(fd);
    return 0;
  });
  REQUIRE(read(port_pipe[0], &result.client_port, sizeof(result.client_port)) == sizeof(result.client_port));
  server.join();
  close(listener);
  close(port_pipe[0]);
  close(port_pipe[1]);
  return result;
}

// ---- network namespaces ------------------------------------------------------------------------

class NetNs {
 public:
  NetNs() : name_("dwtest-" + std::to_string(getpid())) {
    RunCommand({"/usr/sbin/ip", "netns", "del", name_});
    auto added = RunCommand({"/usr/sbin/ip", "netns", "add", name_});
    INFO(added.err);
    REQUIRE(added.exit_code == 0);
    REQUIRE(RunCommand({"/usr/sbin/ip", "-n", name_, "link", "set", "lo", "up"}).exit_code == 0);
    struct stat st;
    REQUIRE(stat(("/var/run/netns/" + name_).c_str(), &st) == 0);
    inode_ = static_cast<uint32_t>(st.st_ino);
  }
  ~NetNs() { RunCommand({"/usr/sbin/ip", "netns", "del", name_}); }
  const std::string& name() const { return name_; }
  uint32_t inode() const { return inode_; }
  // Runs `body` on a thread that has entered the namespace (setns is per thread).
  void Run(const std::function<void()>& body) const {
    std::string error;
    std::thread worker([&] {
      int fd = open(("/var/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        error = std::string("setns: ") + std::strerror(errno);
        return;
      }
      close(fd);
      body();
    });
    worker.join();
    REQUIRE(error.empty());
  }

 private:
  std::string name_;
  uint32_t inode_ = 0;
};

uint32_t OwnNetns() {
  struct stat st;
  REQUIRE(stat("/proc/self/ns/net", &st) == 0);
  return static_cast<uint32_t>(st.st_ino);
}

// ---- tests -------------------------------------------------------------------------------------

// Both ways of counting socket I/O: from packets and socket state (the default where the kernel
// allows it, this one) and per call (the tracepoint backend's length hooks: older kernels).
SystemProbeUnderTest::Env IoAccounting(const std::string& mode) {
  return {{"DD_NETWORK_CONFIG_IO_ACCOUNTING", mode}};
}

TEST_CASE("TCP over IPv4 and IPv6: exact bytes both ways, PIDs, directions, closes") {
  const std::string mode = GENERATE(as<std::string>{}, "packets", "calls");
  INFO("network_config.io_accounting: " << mode);
  SystemProbeUnderTest probe(IoAccounting(mode));
  SysprobeHealthResponse health;
  REQUIRE(probe.Health(&health).ok());
  CHECK(health.counters().at("io_from_packets") == (mode == "packets" ? 1 : 0));
  probe.Poll("test");  // register before the traffic
  const TcpResult v4 = TcpTransfer(kV4, 1234567, 765431);
  const TcpResult v6 = TcpTransfer(kV6, 333333, 4444444);
  REQUIRE(v4.server_received == 1234567);
  REQUIRE(v6.server_received == 333333);
  auto flows = PollUntilClosed(probe, "test",
                               {{CONNECTION_TYPE_TCP, v4.client_port, v4.server_port},
                                {CONNECTION_TYPE_TCP, v4.server_port, v4.client_port},
                                {CONNECTION_TYPE_TCP, v6.client_port, v6.server_port},
                                {CONNECTION_TYPE_TCP, v6.server_port, v6.client_port}});
  const FlowTotals &v4_client = flows[0], &v4_server = flows[1], &v6_client = flows[2], &v6_server = flows[3];
  for (const FlowTotals& f : flows) {
    REQUIRE(f.seen);
    CHECK(f.closed == 1);
    CHECK(f.established == 1);
    CHECK(f.failures == 0);
    CHECK(f.netns == OwnNetns());
  }
  CHECK(v4_client.sent == 1234567);
  CHECK(v4_client.received == 765431);
  CHECK(v4_client.pid == v4.client_pid);
  CHECK(v4_client.direction == DIRECTION_OUTGOING);
  CHECK(v4_client.family == FAMILY_V4);
  CHECK(v4_client.remote_ip == "127.0.0.1");
  CHECK(v4_server.sent == 765431);
  CHECK(v4_server.received == 1234567);
  CHECK(v4_server.pid == getpid());
  CHECK(v4_server.direction == DIRECTION_INCOMING);
  CHECK(v4_client.packets_sent > 0);
  CHECK(v4_client.packets_received > 0);

  CHECK(v6_client.sent == 333333);
  CHECK(v6_client.received == 4444444);
  CHECK(v6_client.pid == v6.client_pid);
  CHECK(v6_client.direction == DIRECTION_OUTGOING);
  CHECK(v6_client.family == FAMILY_V6);
  CHECK(v6_client.remote_ip == "::1");
  CHECK(v6_server.sent == 4444444);
  CHECK(v6_server.received == 333333);
  CHECK(v6_server.pid == getpid());
  CHECK(v6_server.direction == DIRECTION_INCOMING);
}

size_t ReceiveExactly(int fd, size_t bytes) {
  std::vector<char> buffer(65536);
  size_t total = 0;
  while (total < bytes) {
    ssize_t n = recv(fd, buffer.data(), std::min(buffer.size(), bytes - total), 0);
    if (n <= 0) break;
    total += static_cast<size_t>(n);
  }
  return total;
}

// A connected TCP pair on loopback, client and accepted server socket, in this process.
struct TcpPair {
  int listener = -1, client = -1, server = -1;
  uint16_t server_port = 0, client_port = 0;
};
TcpPair ConnectTcpPair(const Endpoint& e) {
  TcpPair pair;
  pair.listener = Listen(e, SOCK_STREAM);
  pair.server_port = LocalPort(pair.listener);
  pair.client = ConnectTcp(e, pair.server_port);
  pair.server = accept4(pair.listener, nullptr, nullptr, SOCK_CLOEXEC);
  REQUIRE(pair.server >= 0);
  pair.client_port = LocalPort(pair.client);
  return pair;
}

// The counters of an open connection, between its transfers: with TCP counters in socket storage
// they reach the map only through the scan's iterator, so this is what proves the iterator runs;
// "map" is the fallback for kernels without sk_storage in tracing programs.
TEST_CASE("a live TCP connection is exact at every poll, before and after it closes") {
  const std::string mode = GENERATE(as<std::string>{}, "storage", "map");
  INFO("network_config.tcp_counters: " << mode);
  SystemProbeUnderTest probe({{"DD_NETWORK_CONFIG_TCP_COUNTERS", mode}});
  SysprobeHealthResponse health;
  REQUIRE(probe.Health(&health).ok());
  CHECK(health.counters().at("tcp_counters_in_socket_storage") == (mode == "storage" ? 1 : 0));
  probe.Poll("live");

  const TcpPair pair = ConnectTcpPair(kV4);
  const int listener = pair.listener, client = pair.client, server = pair.server;
  const uint16_t server_port = pair.server_port, client_port = pair.client_port;
  const std::vector<FlowFilter> filters = {{CONNECTION_TYPE_TCP, client_port, server_port},
                                           {CONNECTION_TYPE_TCP, server_port, client_port}};
  std::vector<FlowTotals> totals(2);
  // Polls until the client flow reached `sent`/`received` (summed deltas), or 10 s pass.
  auto poll_until = [&](uint64_t sent, uint64_t received) {
    WaitFor(
        [&] {
          auto response = probe.Poll("live");
          for (size_t i = 0; i < filters.size(); ++i) Accumulate(response, filters[i], &totals[i]);
          return totals[0].sent >= sent && totals[0].received >= received && totals[1].received >= sent &&
                 totals[1].sent >= received;
        },
        10s);
  };

  REQUIRE(SendAll(client, 100000, 'a'));
  REQUIRE(ReceiveExactly(server, 100000) == 100000);
  poll_until(100000, 0);
  CHECK(totals[0].sent == 100000);
  CHECK(totals[0].received == 0);
  CHECK(totals[1].received == 100000);
  CHECK(totals[0].closed == 0);
  CHECK(totals[0].pid == getpid());
  CHECK(totals[1].pid == getpid());

  REQUIRE(SendAll(server, 54321, 'b'));
  REQUIRE(ReceiveExactly(client, 54321) == 54321);
  poll_until(100000, 54321);
  CHECK(totals[0].sent == 100000);
  CHECK(totals[0].received == 54321);
  CHECK(totals[1].sent == 54321);
  CHECK(totals[0].closed == 0);

  // The last bytes right before the close come with the close itself.
  REQUIRE(SendAll(client, 777, 'c'));
  REQUIRE(ReceiveExactly(server, 777) == 777);
  close(client);
  close(server);
  close(listener);
  auto rest = PollUntilClosed(probe, "live", filters);
  for (size_t i = 0; i < 2; ++i) {
    totals[i].sent += rest[i].sent;
    totals[i].received += rest[i].received;
    totals[i].closed += rest[i].closed;
  }
  CHECK(totals[0].sent == 100777);
  CHECK(totals[0].received == 54321);
  CHECK(totals[1].sent == 54321);
  CHECK(totals[1].received == 100777);
  CHECK(totals[0].closed == 1);
  CHECK(totals[1].closed == 1);
}

// Bytes that never pass through send()/recv(): a splice() from the socket into a pipe and a
// sendfile() into it. With socket storage the counts come from the kernel's own tcp_sock totals,
// which see both; the map fallback counts per call and misses splice, so this is storage only.
TEST_CASE("TCP bytes moved by splice() and sendfile() are counted exactly") {
  SystemProbeUnderTest probe(
      std::map<std::string, std::string>{{"DD_NETWORK_CONFIG_TCP_COUNTERS", "storage"}});
  probe.Poll("zero-copy");
  const TcpPair pair = ConnectTcpPair(kV4);
  const int listener = pair.listener, client = pair.client, server = pair.server;
  const uint16_t server_port = pair.server_port, client_port = pair.client_port;

  // One ordinary byte each way first: the accepted socket is tracked from its first I/O.
  REQUIRE(SendAll(server, 1, 's'));
  REQUIRE(ReceiveExactly(client, 1) == 1);

  constexpr size_t kSpliced = 99999;
  REQUIRE(SendAll(client, kSpliced, 'p'));
  int pipe_fds[2];
  REQUIRE(pipe2(pipe_fds, O_CLOEXEC) == 0);
  size_t spliced = 0;
  std::vector<char> drain(65536);
  for (int guard = 0; spliced < kSpliced && guard < 10000; ++guard) {
    ssize_t n = splice(server, nullptr, pipe_fds[1], nullptr, std::min<size_t>(65536, kSpliced - spliced), 0);
    REQUIRE(n > 0);
    spliced += static_cast<size_t>(n);
    for (ssize_t left = n; left > 0;) {
      ssize_t r = read(pipe_fds[0], drain.data(), std::min<size_t>(drain.size(), static_cast<size_t>(left)));
      REQUIRE(r > 0);
      left -= r;
    }
  }
  REQUIRE(spliced == kSpliced);
  close(pipe_fds[0]);
  close(pipe_fds[1]);

  constexpr size_t kFileBytes = 12345;
  TempDir dir;
  std::string path = dir.Write("payload.bin", std::string(kFileBytes, 'f'));
  int file = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(file >= 0);
  off_t offset = 0;
  for (int guard = 0; offset < static_cast<off_t>(kFileBytes) && guard < 1000; ++guard) {
    REQUIRE(sendfile(server, file, &offset, kFileBytes - static_cast<size_t>(offset)) > 0);
  }
  close(file);
  REQUIRE(ReceiveExactly(client, kFileBytes) == kFileBytes);

  close(client);
  close(server);
  close(listener);
  auto flows = PollUntilClosed(
      probe, "zero-copy",
      {{CONNECTION_TYPE_TCP, client_port, server_port}, {CONNECTION_TYPE_TCP, server_port, client_port}});
  CHECK(flows[0].sent == kSpliced);
  CHECK(flows[0].received == kFileBytes + 1);
  CHECK(flows[1].sent == kFileBytes + 1);
  CHECK(flows[1].received == kSpliced);
  CHECK(flows[0].closed == 1);
  CHECK(flows[1].closed == 1);
  CHECK(flows[1].pid == getpid());
}

// 10 requests of 1000 bytes, 10 replies of 321, from a connected or an unconnected client.
void UdpExchange(const Endpoint& e, bool connected) {
  const std::string mode = GENERATE(as<std::string>{}, "packets", "calls");
  INFO("network_config.io_accounting: " << mode);
  SystemProbeUnderTest probe(IoAccounting(mode));
  probe.Poll("test");
  const uint16_t server_port = FreeUdpPort(e);
  int server = Listen(e, SOCK_DGRAM, server_port);
  int port_pipe[2];
  REQUIRE(pipe(port_pipe) == 0);
  std::thread responder([&] {
    std::vector<char> buffer(2048);
    std::vector<char> reply(321, 'r');
    for (int i = 0; i < 10; ++i) {
      sockaddr_storage peer{};
      socklen_t len = sizeof(peer);
      ssize_t n = recvfrom(server, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&peer), &len);
      if (n <= 0) return;
      sendto(server, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), len);
    }
  });
  const pid_t client_pid = RunChild([&] {
    int fd = socket(e.family, SOCK_DGRAM, 0);
    socklen_t len;
    auto addr = Address(e, server_port, &len);
    if (connected && connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) return 1;
    std::vector<char> request(1000, 'q'), buffer(2048);
    for (int i = 0; i < 10; ++i) {
      ssize_t sent =
          connected ? send(fd, request.data(), request.size(), 0)
                    : sendto(fd, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&addr), len);
      if (sent != 1000) return 2;
      sockaddr_storage from{};
      socklen_t from_len = sizeof(from);
      if (recvfrom(fd, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_len) != 321)
        return 3;
    }
    uint16_t port = LocalPort(fd);
    if (write(port_pipe[1], &port, sizeof(port)) != sizeof(port)) return 4;
    close(fd);
    return 0;
  });
  uint16_t client_port = 0;
  REQUIRE(read(port_pipe[0], &client_port, sizeof(client_port)) == sizeof(client_port));
  responder.join();
  close(server);  // releases the server socket: its per-peer flow closes too
  close(port_pipe[0]);
  close(port_pipe[1]);
  auto flows = PollUntilClosed(
      probe, "test",
      {{CONNECTION_TYPE_UDP, client_port, server_port}, {CONNECTION_TYPE_UDP, server_port, client_port}});
  const FlowTotals &client = flows[0], &server_flow = flows[1];
  REQUIRE(client.seen);
  REQUIRE(server_flow.seen);
  CHECK(client.sent == 10000);
  CHECK(client.received == 3210);
  CHECK(client.packets_sent == 10);
  CHECK(client.packets_received == 10);
  CHECK(client.pid == client_pid);
  CHECK(client.direction == DIRECTION_OUTGOING);
  CHECK(client.closed == 1);
  CHECK(server_flow.sent == 3210);
  CHECK(server_flow.received == 10000);
  CHECK(server_flow.pid == getpid());
  CHECK(server_flow.direction == DIRECTION_INCOMING);
  CHECK(server_flow.closed == 1);
}

TEST_CASE("UDP over IPv4 from a connected client: exact bytes and packets both ways") {
  UdpExchange(kV4, true);
}
TEST_CASE("UDP over IPv4 from an unconnected client: per-peer flows") { UdpExchange(kV4, false); }
TEST_CASE("UDP over IPv6 from an unconnected client: per-peer flows") { UdpExchange(kV6, false); }

// Counting from packets, nothing runs on a send or receive: a connection older than system-probe
// is found by the scan of open sockets at start, and an accepted socket's process is its
// listener's until a scan finds who holds it (a prefork server's worker) or it closes.
TEST_CASE("a TCP connection older than system-probe counts from its start, exactly") {
  const std::string mode = GENERATE(as<std::string>{}, "packets", "calls");
  INFO("network_config.io_accounting: " << mode);
  const TcpPair pair = ConnectTcpPair(kV4);
  REQUIRE(SendAll(pair.client, 5000, 'x'));  // before system-probe: not counted
  REQUIRE(ReceiveExactly(pair.server, 5000) == 5000);
  SystemProbeUnderTest probe(IoAccounting(mode));
  if (mode == "packets") {
    // Both ends were adopted by the scan at start (other sockets on the machine may be too).
    SysprobeHealthResponse health;
    REQUIRE(probe.Health(&health).ok());
    CHECK(health.counters().at("kernel_tcp_adopted_by_scan") >= 2);
  }
  probe.Poll("old");
  REQUIRE(SendAll(pair.client, 12345, 'a'));
  REQUIRE(ReceiveExactly(pair.server, 12345) == 12345);
  REQUIRE(SendAll(pair.server, 54321, 'b'));
  REQUIRE(ReceiveExactly(pair.client, 54321) == 54321);
  close(pair.client);
  close(pair.server);
  close(pair.listener);
  auto flows = PollUntilClosed(probe, "old",
                               {{CONNECTION_TYPE_TCP, pair.client_port, pair.server_port},
                                {CONNECTION_TYPE_TCP, pair.server_port, pair.client_port}});
  const FlowTotals &client = flows[0], &server = flows[1];
  REQUIRE(client.seen);
  REQUIRE(server.seen);
  CHECK(client.sent == 12345);
  CHECK(client.received == 54321);
  CHECK(server.sent == 54321);
  CHECK(server.received == 12345);
  CHECK(client.pid == getpid());
  CHECK(server.pid == getpid());
  CHECK(client.closed == 1);
  CHECK(server.closed == 1);
}

TEST_CASE("a socket accepted by a forked worker is the worker's while open and at close") {
  SystemProbeUnderTest probe(IoAccounting("packets"));
  probe.Poll("prefork");
  const int listener = Listen(kV4, SOCK_STREAM);  // listened on by this process
  const uint16_t server_port = LocalPort(listener);
  int ready[2], done[2];
  REQUIRE(pipe(ready) == 0);
  REQUIRE(pipe(done) == 0);
  const pid_t worker = fork();
  REQUIRE(worker >= 0);
  if (worker == 0) {
    // The worker accepts, reads the request, answers, says so, then waits to be told to close.
    // Plain system calls on stack buffers only: the test process has other threads.
    int conn = accept(listener, nullptr, nullptr);
    if (conn < 0) _exit(1);
    char buffer[1024];
    size_t got = 0;
    while (got < 777) {
      ssize_t n = recv(conn, buffer, sizeof(buffer), 0);
      if (n <= 0) _exit(2);
      got += static_cast<size_t>(n);
    }
    std::memset(buffer, 'w', sizeof(buffer));
    if (send(conn, buffer, 888, MSG_NOSIGNAL) != 888) _exit(3);
    char byte = 1;
    if (write(ready[1], &byte, 1) != 1) _exit(4);
    if (read(done[0], &byte, 1) != 1) _exit(5);
    close(conn);
    _exit(0);
  }
  const int client = ConnectTcp(kV4, server_port);
  const uint16_t client_port = LocalPort(client);
  REQUIRE(SendAll(client, 777, 'c'));
  REQUIRE(ReceiveExactly(client, 888) == 888);
  char byte = 0;
  REQUIRE(read(ready[0], &byte, 1) == 1);

  // Deltas: every poll's share of each flow is summed, open and closed.
  const std::vector<FlowFilter> filters = {{CONNECTION_TYPE_TCP, server_port, client_port},
                                           {CONNECTION_TYPE_TCP, client_port, server_port}};
  std::vector<FlowTotals> flows(2);
  WaitFor(
      [&] {
        auto response = probe.Poll("prefork");
        for (size_t i = 0; i < filters.size(); ++i) Accumulate(response, filters[i], &flows[i]);
        return flows[0].received == 777 && flows[0].sent == 888;
      },
      10s);
  CHECK(flows[0].received == 777);
  CHECK(flows[0].sent == 888);
  CHECK(flows[0].pid == worker);  // not the listener's process
  CHECK(flows[0].closed == 0);

  byte = 1;
  REQUIRE(write(done[1], &byte, 1) == 1);
  WaitChildSucceeded(worker);
  close(client);
  close(listener);
  for (int fd : {ready[0], ready[1], done[0], done[1]}) close(fd);
  WaitFor(
      [&] {
        auto response = probe.Poll("prefork");
        for (size_t i = 0; i < filters.size(); ++i) Accumulate(response, filters[i], &flows[i]);
        return flows[0].closed > 0 && flows[1].closed > 0;
      },
      15s);
  CHECK(flows[0].closed == 1);
  CHECK(flows[0].pid == worker);
  CHECK(flows[0].received == 777);
  CHECK(flows[0].sent == 888);
  CHECK(flows[1].closed == 1);
  CHECK(flows[1].pid == getpid());
  CHECK(flows[1].sent == 777);
  CHECK(flows[1].received == 888);
}

TEST_CASE("a listener older than system-probe hands its process to the sockets it accepts") {
  const int listener = Listen(kV4, SOCK_STREAM);  // before system-probe: its listen() was not seen
  const uint16_t server_port = LocalPort(listener);
  SystemProbeUnderTest probe(IoAccounting("packets"));
  probe.Poll("listener");
  const int client = ConnectTcp(kV4, server_port);
  const uint16_t client_port = LocalPort(client);
  int server = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  REQUIRE(server >= 0);
  REQUIRE(SendAll(client, 1001, 'a'));
  REQUIRE(ReceiveExactly(server, 1001) == 1001);
  // Reset rather than FIN: no close in process context and no scan between the accept and the
  // end, so the accepted socket's process can only be the one inherited from the listener.
  linger abort_on_close{1, 0};
  REQUIRE(setsockopt(server, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close)) == 0);
  close(server);
  close(client);
  close(listener);
  auto flows = PollUntilClosed(probe, "listener", {{CONNECTION_TYPE_TCP, server_port, client_port}});
  REQUIRE(flows[0].seen);
  CHECK(flows[0].closed == 1);
  CHECK(flows[0].received == 1001);
  CHECK(flows[0].pid == getpid());
  CHECK(flows[0].direction == DIRECTION_INCOMING);
}

TEST_CASE("a UDP server that only receives is named from its bind") {
  const std::string mode = GENERATE(as<std::string>{}, "packets", "calls");
  INFO("network_config.io_accounting: " << mode);
  SystemProbeUnderTest probe(IoAccounting(mode));
  probe.Poll("udp-rx");
  const uint16_t server_port = FreeUdpPort(kV4);
  int ready[2];
  REQUIRE(pipe(ready) == 0);
  const pid_t server = fork();
  REQUIRE(server >= 0);
  if (server == 0) {
    // Plain system calls on stack buffers only: the test process has other threads.
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    socklen_t len;
    auto addr = Address(kV4, server_port, &len);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) _exit(1);
    char byte = 1;
    if (write(ready[1], &byte, 1) != 1) _exit(1);
    char buffer[2048];
    for (int i = 0; i < 5; ++i) {
      // With the peer's address: per call, that is where the peer of an unconnected socket comes from.
      sockaddr_storage peer{};
      socklen_t peer_len = sizeof(peer);
      if (recvfrom(fd, buffer, sizeof(buffer), 0, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 200 + i)
        _exit(2);
    }
    close(fd);
    _exit(0);
  }
  char byte = 0;
  REQUIRE(read(ready[0], &byte, 1) == 1);
  int client = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  socklen_t len;
  auto addr = Address(kV4, server_port, &len);
  std::vector<char> datagram(300, 'u');
  for (int i = 0; i < 5; ++i) {
    REQUIRE(sendto(client, datagram.data(), 200 + i, 0, reinterpret_cast<sockaddr*>(&addr), len) == 200 + i);
  }
  const uint16_t client_port = LocalPort(client);
  WaitChildSucceeded(server);
  close(client);
  close(ready[0]);
  close(ready[1]);
  auto flows = PollUntilClosed(
      probe, "udp-rx",
      {{CONNECTION_TYPE_UDP, server_port, client_port}, {CONNECTION_TYPE_UDP, client_port, server_port}});
  CHECK(flows[0].received == 200 + 201 + 202 + 203 + 204);
  CHECK(flows[0].packets_received == 5);
  CHECK(flows[0].sent == 0);
  CHECK(flows[0].pid == server);
  CHECK(flows[0].direction == DIRECTION_INCOMING);
  CHECK(flows[1].sent == 200 + 201 + 202 + 203 + 204);
  CHECK(flows[1].packets_sent == 5);
  CHECK(flows[1].pid == getpid());
  CHECK(flows[1].direction == DIRECTION_OUTGOING);
}

TEST_CASE("a connection inside a network namespace the test creates carries that namespace") {
  SystemProbeUnderTest probe;
  probe.Poll("test");
  NetNs ns;
  uint16_t server_port = 0, client_port = 0;
  ns.Run([&] {
    int listener = Listen(kV4, SOCK_STREAM);
    server_port = LocalPort(listener);
    int client = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t len;
    auto addr = Address(kV4, server_port, &len);
    REQUIRE(connect(client, reinterpret_cast<sockaddr*>(&addr), len) == 0);
    client_port = LocalPort(client);
    int conn = accept(listener, nullptr, nullptr);
    REQUIRE(conn >= 0);
    REQUIRE(SendAll(client, 12345, 'n'));  // fits the socket buffers: no second thread needed
    std::vector<char> buffer(65536);
    size_t got = 0;
    while (got < 12345) {
      ssize_t n = recv(conn, buffer.data(), buffer.size(), 0);
      REQUIRE(n > 0);
      got += static_cast<size_t>(n);
    }
    REQUIRE(SendAll(conn, 777, 'm'));
    got = 0;
    while (got < 777) {
      ssize_t n = recv(client, buffer.data(), buffer.size(), 0);
      REQUIRE(n > 0);
      got += static_cast<size_t>(n);
    }
    close(client);
    close(conn);
    close(listener);
  });
  auto flows = PollUntilClosed(
      probe, "test",
      {{CONNECTION_TYPE_TCP, client_port, server_port}, {CONNECTION_TYPE_TCP, server_port, client_port}});
  REQUIRE(flows[0].seen);
  REQUIRE(flows[1].seen);
  CHECK(flows[0].netns == ns.inode());
  CHECK(flows[1].netns == ns.inode());
  CHECK(flows[0].netns != OwnNetns());
  CHECK(flows[0].sent == 12345);
  CHECK(flows[0].received == 777);
  CHECK(flows[0].direction == DIRECTION_OUTGOING);
  CHECK(flows[1].sent == 777);
  CHECK(flows[1].received == 12345);
  CHECK(flows[1].direction == DIRECTION_INCOMING);
}

TEST_CASE("a refused connect is a closed connection with ECONNREFUSED") {
  SystemProbeUnderTest probe;
  probe.Poll("test");
  int listener = Listen(kV4, SOCK_STREAM);
  const uint16_t closed_port = LocalPort(listener);
  close(listener);  // nobody listens there now
  uint16_t client_port = 0;
  int port_pipe[2];
  REQUIRE(pipe(port_pipe) == 0);
  const pid_t client_pid = RunChild([&] {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in bound{};
    bound.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &bound.sin_addr);
    // Bind first so the test knows the local port of a connection that never gets established.
    if (bind(fd, reinterpret_cast<sockaddr*>(&bound), sizeof(bound)) != 0) return 1;
    uint16_t port = LocalPort(fd);
    if (write(port_pipe[1], &port, sizeof(port)) != sizeof(port)) return 2;
    socklen_t len;
    auto addr = Address(kV4, closed_port, &len);
    int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), len);
    return rc != 0 && errno == ECONNREFUSED ? 0 : 3;
  });
  REQUIRE(read(port_pipe[0], &client_port, sizeof(client_port)) == sizeof(client_port));
  close(port_pipe[0]);
  close(port_pipe[1]);
  auto flows = PollUntilClosed(probe, "test", {{CONNECTION_TYPE_TCP, client_port, closed_port}});
  REQUIRE(flows[0].seen);
  CHECK(flows[0].closed == 1);
  CHECK(flows[0].failures == 1);
  CHECK(flows[0].failure_errno == ECONNREFUSED);
  CHECK(flows[0].established == 0);
  CHECK(flows[0].pid == client_pid);
  CHECK(flows[0].direction == DIRECTION_OUTGOING);
  CHECK(flows[0].sent == 0);
}

// A minimal DNS server on 127.0.0.1:53 inside the namespace: NXDOMAIN for names starting with
// "missing", one A record otherwise.
std::vector<uint8_t> DnsQuery(uint16_t id, const std::string& name) {
  std::vector<uint8_t> q = {
      static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q.push_back(static_cast<uint8_t>(dot - start));
    q.insert(q.end(), name.begin() + static_cast<long>(start), name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  q.push_back(0);
  q.insert(q.end(), {0, 1, 0, 1});  // A, IN
  return q;
}

TEST_CASE("DNS: latency and response codes per domain from a resolver on loopback") {
  SystemProbeUnderTest probe;
  probe.Poll("test");
  NetNs ns;
  uint16_t client_port = 0;
  ns.Run([&] {
    int server = Listen(kV4, SOCK_DGRAM, 53);
    std::thread resolver([&] {
      std::vector<uint8_t> buffer(512);
      for (int i = 0; i < 3; ++i) {
        sockaddr_in peer{};
        socklen_t len = sizeof(peer);
        ssize_t n =
            recvfrom(server, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&peer), &len);
        if (n < 12) return;
        std::vector<uint8_t> answer(buffer.begin(), buffer.begin() + n);
        const bool missing = n > 13 && std::memcmp(&buffer[13], "missing", 7) == 0;
        answer[2] = 0x81;                   // response, recursion desired
        answer[3] = missing ? 0x83 : 0x80;  // NXDOMAIN or NOERROR
        if (!missing) {
          answer[7] = 1;  // one answer: pointer to the question name, A, IN, TTL 60, 10.1.2.3
          answer.insert(answer.end(), {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3});
        }
        sendto(server, answer.data(), answer.size(), 0, reinterpret_cast<sockaddr*>(&peer), len);
      }
    });
    int client = socket(AF_INET, SOCK_DGRAM, 0);
    socklen_t len;
    auto addr = Address(kV4, 53, &len);
    REQUIRE(connect(client, reinterpret_cast<sockaddr*>(&addr), len) == 0);
    client_port = LocalPort(client);
    std::vector<uint8_t> reply(512);
    uint16_t id = 0x4242;
    for (const char* name :
         {"ok.dogwatch-test.example", "OK.dogwatch-test.example", "missing.dogwatch-test.example"}) {
      auto query = DnsQuery(id++, name);
      REQUIRE(send(client, query.data(), query.size(), 0) == static_cast<ssize_t>(query.size()));
      REQUIRE(recv(client, reply.data(), reply.size(), 0) > 12);
    }
    resolver.join();
    close(client);
    close(server);
  });
  std::optional<DnsStats> ok, missing;
  WaitFor(
      [&] {
        auto response = probe.Poll("test");
        for (const auto& d : response.dns()) {
          if (d.domain() == "ok.dogwatch-test.example") ok = d;
          if (d.domain() == "missing.dogwatch-test.example") missing = d;
        }
        return ok && missing;
      },
      10s);
  REQUIRE(ok.has_value());
  REQUIRE(missing.has_value());
  CHECK(ok->query_type() == 1);
  CHECK(ok->successes() == 2);  // both casings are one domain (same querying flow)
  CHECK(ok->server_ip() == "127.0.0.1");
  CHECK(ok->client_port() == client_port);
  CHECK(missing->client_port() == client_port);
  CHECK(ok->success_latency_sum_us() > 0);
  CHECK(ok->failures_by_rcode().empty());
  CHECK(missing->successes() == 0);
  REQUIRE(missing->failures_by_rcode().count(3) == 1);
  CHECK(missing->failures_by_rcode().at(3) == 1);
}

TEST_CASE("retransmits appear when the test drops packets inside its own namespace") {
  SystemProbeUnderTest probe;
  probe.Poll("test");
  NetNs ns;
  // Every 5th TCP segment to the server port is dropped: loss only inside this namespace.
  const uint16_t server_port = 47123;
  auto nft = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/sbin/ip", "netns", "exec", ns.name(), "/usr/sbin/nft"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto result = RunCommand(argv);
    INFO("nft " << result.err);
    REQUIRE(result.exit_code == 0);
  };
  nft({"add", "table", "inet", "dwloss"});
  nft({"add chain inet dwloss out { type filter hook output priority 0; }"});
  nft({"add rule inet dwloss out tcp dport " + std::to_string(server_port) + " numgen inc mod 5 == 0 drop"});
  uint16_t client_port = 0;
  ns.Run([&] {
    int listener = Listen(kV4, SOCK_STREAM, server_port);
    std::thread server([&] {
      int conn = accept(listener, nullptr, nullptr);
      if (conn >= 0) {
        ReceiveUntilEof(conn, 1 << 24);
        close(conn);
      }
    });
    int client = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t len;
    auto addr = Address(kV4, server_port, &len);
    // Small segments so the transfer has many packets to lose.
    int mss = 1000;
    setsockopt(client, IPPROTO_TCP, 2 /* TCP_MAXSEG */, &mss, sizeof(mss));
    REQUIRE(connect(client, reinterpret_cast<sockaddr*>(&addr), len) == 0);
    client_port = LocalPort(client);
    REQUIRE(SendAll(client, 300000, 'l'));
    shutdown(client, SHUT_WR);
    server.join();
    close(client);
    close(listener);
  });
  auto flows = PollUntilClosed(probe, "test", {{CONNECTION_TYPE_TCP, client_port, server_port}});
  REQUIRE(flows[0].seen);
  CHECK(flows[0].sent == 300000);
  CHECK(flows[0].retransmits > 0);
  CHECK(flows[0].netns == ns.inode());
}

TEST_CASE("two clients see independent deltas and each closed connection once") {
  SystemProbeUnderTest probe;
  probe.Poll("a");
  probe.Poll("b");
  int listener = Listen(kV4, SOCK_STREAM);
  const uint16_t server_port = LocalPort(listener);
  int client = socket(AF_INET, SOCK_STREAM, 0);
  socklen_t len;
  auto addr = Address(kV4, server_port, &len);
  REQUIRE(connect(client, reinterpret_cast<sockaddr*>(&addr), len) == 0);
  const uint16_t client_port = LocalPort(client);
  int conn = accept(listener, nullptr, nullptr);
  REQUIRE(conn >= 0);
  std::vector<char> sink(65536);
  auto send_and_drain = [&](size_t bytes) {
    REQUIRE(SendAll(client, bytes, 'x'));
    size_t got = 0;
    while (got < bytes)
      got += static_cast<size_t>(std::max<ssize_t>(0, recv(conn, sink.data(), sink.size(), 0)));
  };
  const FlowFilter filter{CONNECTION_TYPE_TCP, client_port, server_port};
  auto delta = [&](const std::string& who) {
    FlowTotals totals;
    Accumulate(probe.Poll(who), filter, &totals);
    return totals;
  };
  send_and_drain(1000);
  FlowTotals a1 = delta("a");
  CHECK(a1.sent == 1000);
  CHECK(a1.established == 1);
  send_and_drain(500);
  FlowTotals a2 = delta("a");
  CHECK(a2.sent == 500);
  CHECK(a2.established == 0);
  FlowTotals b1 = delta("b");
  CHECK(b1.sent == 1500);
  CHECK(b1.established == 1);
  send_and_drain(250);
  close(client);
  close(conn);
  close(listener);
  FlowTotals a3, b2;
  REQUIRE(WaitFor(
      [&] {
        Accumulate(probe.Poll("a"), filter, &a3);
        return a3.closed > 0;
      },
      10s));
  CHECK(a3.closed == 1);
  CHECK(a3.sent == 250);
  FlowTotals a4 = delta("a");
  CHECK_FALSE(a4.seen);  // reported closed once, then gone
  b2 = delta("b");
  CHECK(b2.closed == 1);
  CHECK(b2.sent == 250);
  CHECK_FALSE(delta("b").seen);
}

TEST_CASE("after start system-probe keeps only what reading other processes needs") {
  SystemProbeUnderTest probe;
  // Capabilities are per thread: every thread of the process (gRPC's, the tracer's) is checked.
  // CAP_DAC_READ_SEARCH (2) and CAP_SYS_PTRACE (19): /proc/<pid>/io and /proc/<pid>/fd of others.
  const uint64_t expected = (uint64_t{1} << 2) | (uint64_t{1} << 19);
  const std::string tasks = "/proc/" + std::to_string(probe.pid()) + "/task";
  int threads = 0;
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    std::ifstream status(task.path() / "status");
    std::string line;
    std::map<std::string, std::string> caps;
    while (std::getline(status, line)) {
      if (line.rfind("Cap", 0) == 0) caps[line.substr(0, line.find(':'))] = line.substr(line.find('\t') + 1);
    }
    INFO("thread " << task.path().filename().string());
    CHECK(std::stoull(caps["CapEff"], nullptr, 16) == expected);
    CHECK(std::stoull(caps["CapPrm"], nullptr, 16) == expected);
    CHECK(std::stoull(caps["CapInh"], nullptr, 16) == 0);
    CHECK(std::stoull(caps["CapAmb"], nullptr, 16) == 0);
    CHECK(std::stoull(caps["CapBnd"], nullptr, 16) == expected);
    ++threads;
  }
  CHECK(threads > 1);
  SysprobeHealthResponse health;
  REQUIRE(probe.Health(&health).ok());
  CHECK(health.backend() == "tracepoint");
  CHECK(health.capabilities() == "cap_dac_read_search,cap_sys_ptrace");

  // And with only those it still reads another user's process: I/O and descriptors of a child
  // running as nobody.
  Process sleeper(
      {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sleep", "30"}, {},
      "/tmp", "dw-sysprobe-sleeper");
  REQUIRE(WaitFor([&] { return sleeper.Running(); }, 5s));
  ProcessStatsResponse stats;
  REQUIRE(WaitFor([&] { return probe.ProcessStats({sleeper.pid()}, &stats).ok() && stats.stats_size() == 1; },
                  5s));
  CHECK(stats.stats(0).pid() == sleeper.pid());
  CHECK(stats.stats(0).open_fds() >= 3);
  CHECK(stats.stats(0).read_count() > 0);  // exec read the binary
}

TEST_CASE("the socket refuses a uid outside its group") {
  SystemProbeUnderTest probe;
  struct stat st;
  REQUIRE(stat(probe.socket().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0660);
  // The CLI as nobody (uid 65534, no supplementary groups) cannot reach it.
  auto as_nobody = RunCommand({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               Bin("system-probe"), "-c", probe.config(), "connections"});
  CHECK(as_nobody.exit_code == 1);
  CHECK(as_nobody.err.find("system-probe connections:") != std::string::npos);
  // Even with the file opened to everyone, the peer-credential check turns it away.
  REQUIRE(chmod(probe.socket().c_str(), 0666) == 0);
  auto opened = RunCommand({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            Bin("system-probe"), "-c", probe.config(), "connections"});
  CHECK(opened.exit_code == 1);
  // Root gets the table.
  auto as_root = RunCommand({Bin("system-probe"), "-c", probe.config(), "connections"});
  INFO(as_root.err);
  CHECK(as_root.exit_code == 0);
  CHECK(as_root.out.find("backend: tracepoint") != std::string::npos);
}

TEST_CASE("the kernel map bound sheds new connections and counts them") {
  SystemProbeUnderTest probe(
      std::map<std::string, std::string>{{"DD_SYSTEM_PROBE_CONFIG_MAX_TRACKED_CONNECTIONS", "1024"}});
  // Unconnected UDP to 1,500 distinct peers (ports) from one socket: 1,500 flows, no handshakes.
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  char byte = 'p';
  for (uint16_t port = 20000; port < 21500; ++port) {
    socklen_t len;
    auto addr = Address(kV4, port, &len);
    sendto(fd, &byte, 1, 0, reinterpret_cast<sockaddr*>(&addr), len);
  }
  auto response = probe.Poll("test");
  close(fd);
  CHECK(response.connections_size() <= 1024);
  CHECK(response.counters().at("kernel_conn_map_full") >= 1500 - 1024);
  CHECK(response.counters().at("max_tracked_connections") == 1024);
}

}  // namespace
}  // namespace dogwatch::sysprobe
