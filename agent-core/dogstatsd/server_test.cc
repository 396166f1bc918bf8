// The DogStatsD server over real sockets: UDP and unix datagrams, batching, tags, origin
// detection through real SO_PASSCRED credentials, oversize datagrams, and kernel drops accounted
// for exactly.
#include "agent-core/dogstatsd/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

namespace fs = std::filesystem;
using namespace dogwatch;
using namespace dogwatch::dogstatsd;

namespace {

const std::string kContainerId = "aa5e1c2d4b6a79880a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071";

struct RecordedSample {
  std::string name;
  metrics::SampleType type;
  double value;
  std::string set_value;
  double sample_rate;
  std::vector<std::string> tags;
  std::string host;
  int64_t timestamp;
};

class RecordingSink : public Sink {
 public:
  void AddSamples(std::span<const metrics::Sample> samples) override {
    std::unique_lock<std::mutex> lock(mu_);
    gate_.wait(lock, [&] { return open_; });
    for (const metrics::Sample& s : samples) {
      RecordedSample r{std::string(s.name), s.type,     s.value, std::string(s.set_value), s.sample_rate, {},
                       std::string(s.host), s.timestamp};
      for (std::string_view t : s.tags) r.tags.emplace_back(t);
      samples_.push_back(std::move(r));
    }
    ++calls_;
  }
  void AddEvent(metrics::Event event) override {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(event));
  }
  void AddServiceCheck(metrics::ServiceCheck check) override {
    std::lock_guard<std::mutex> lock(mu_);
    checks_.push_back(std::move(check));
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    gate_.notify_all();
  }
  template <typename F>
  auto With(F f) {
    std::lock_guard<std::mutex> lock(mu_);
    return f(*this);
  }
  std::vector<RecordedSample> samples_;
  std::vector<metrics::Event> events_;
  std::vector<metrics::ServiceCheck> checks_;
  int calls_ = 0;

 private:
  std::mutex mu_;
  std::condition_variable gate_;
  bool open_ = true;
};

class FakeTagger : public OriginTagger {
 public:
  void AppendContainerTags(std::string_view container_id, std::string_view cardinality,
                           std::vector<std::string>* out) override {
    if (container_id != kContainerId) return;
    out->push_back("container_name:web");
    if (cardinality == "high") out->push_back("container_id:" + std::string(container_id));
  }
};

bool WaitUntil(const std::function<bool()>& done,
               std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

uint16_t FreeUdpPort() {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

void SendUdp(uint16_t port, std::string_view datagram) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) ==
          static_cast<ssize_t>(datagram.size()));
  close(fd);
}

void SendUnix(const std::string& path, std::string_view datagram) {
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  REQUIRE(sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) ==
          static_cast<ssize_t>(datagram.size()));
  close(fd);
}

struct TempDir {
  fs::path path;
  TempDir() {
    char templ[] = "/tmp/dogwatch-dsd-XXXXXX";
    path = ::mkdtemp(templ);
  }
  ~TempDir() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE("UDP datagrams become samples with client, global and host tags") {
  RecordingSink sink;
  ServerOptions options;
  options.udp_port = FreeUdpPort();
  options.extra_tags = {"env:prod", "team:core"};
  options.hostname = "box-1";
  options.metric_namespace = "app.";
  Server server(options, &sink, nullptr);
  REQUIRE(server.Start().ok());

  SendUdp(server.udp_port(),
          "queue.depth:42.5|g|#queue:high,host:other\n"
          "requests:3:4|c|@0.5|#route:/x\n"
          "datadog.dogstatsd.client.metrics:13|c\n"
          "users:user-123|s\n"
          "ts.gauge:1|g|T1700000000|#host:\n");
  REQUIRE(WaitUntil([&] { return sink.With([](RecordingSink& s) { return s.samples_.size() == 6; }); }));

  sink.With([](RecordingSink& s) {
    const auto& g = s.samples_[0];
    CHECK(g.name == "app.queue.depth");
    CHECK(g.type == metrics::SampleType::kGauge);
    CHECK(g.value == 42.5);
    CHECK(g.host == "other");  // the host: tag overrides and is not kept as a tag
    CHECK(g.tags == std::vector<std::string>{"queue:high", "env:prod", "team:core"});
    CHECK(s.samples_[1].value == 3);
    CHECK(s.samples_[2].value == 4);
    CHECK(s.samples_[2].sample_rate == 0.5);
    CHECK(s.samples_[2].host == "box-1");
    CHECK(s.samples_[3].name == "datadog.dogstatsd.client.metrics");  // outside the namespace
    CHECK(s.samples_[4].type == metrics::SampleType::kSet);
    CHECK(s.samples_[4].set_value == "user-123");
    CHECK(s.samples_[5].timestamp == 1700000000);
    CHECK(s.samples_[5].host.empty());  // `host:` with no value: explicitly no host
    CHECK(s.calls_ == 1);               // one sink call per datagram
    return 0;
  });
  auto counters = server.Counters();
  CHECK(counters["packets_udp"] == 1);
  CHECK(counters["metric_samples"] == 6);
  server.Stop();
}

TEST_CASE("events and service checks keep their fields and get global tags") {
  RecordingSink sink;
  ServerOptions options;
  options.udp_port = FreeUdpPort();
  options.extra_tags = {"env:prod"};
  options.hostname = "box-1";
  Server server(options, &sink, nullptr);
  REQUIRE(server.Start().ok());
  SendUdp(server.udp_port(),
          "_e{18,24}:probe.Deploy probe|line1\\nline2 with | "
          "pipe|d:1700000000|h:h1|k:agg1|p:low|s:probe|t:warning|"
          "#ev:1|c:in-5859\n"
          "_sc|probe.can_connect|1|#chk:1|c:in-5859|m:slow m:ish");
  REQUIRE(WaitUntil([&] {
    return sink.With([](RecordingSink& s) { return s.events_.size() == 1 && s.checks_.size() == 1; });
  }));
  sink.With([](RecordingSink& s) {
    const metrics::Event& e = s.events_[0];
    CHECK(e.title == "probe.Deploy probe");
    CHECK(e.text == "line1\nline2 with | pipe");
    CHECK(e.host == "h1");
    CHECK(e.timestamp == 1700000000);
    CHECK(e.tags == std::vector<std::string>{"ev:1", "env:prod"});
    const metrics::ServiceCheck& c = s.checks_[0];
    CHECK(c.name == "probe.can_connect");
    CHECK(c.status == metrics::ServiceCheckStatus::kWarning);
    CHECK(c.host == "box-1");
    CHECK(c.timestamp > 1700000000);  // stamped on receipt
    CHECK(c.message == "slow m:ish");
    CHECK(c.tags == std::vector<std::string>{"chk:1", "env:prod"});
    return 0;
  });
  server.Stop();
}

TEST_CASE("unix datagrams: origin detection from the sender's real credentials") {
  TempDir dir;
  // The sender is this process: give it a container cgroup in a private proc tree, so the pid that
  // SO_PASSCRED reports resolves to a known container.
  fs::create_directories(dir.path / "proc" / std::to_string(getpid()));
  std::ofstream(dir.path / "proc" / std::to_string(getpid()) / "cgroup")
      << "0::/machine.slice/libpod-" << kContainerId << ".scope/container\n";

  RecordingSink sink;
  FakeTagger tagger;
  ServerOptions options;
  options.udp_port = 0;
  options.socket_path = (dir.path / "dsd.socket").string();
  options.origin_detection = true;
  options.proc_root = (dir.path / "proc").string();
  options.hostname = "box-1";
  Server server(options, &sink, &tagger);
  REQUIRE(server.Start().ok());
  CHECK((fs::status(options.socket_path).permissions() & fs::perms::all) ==
        (fs::perms::owner_all | fs::perms::group_write | fs::perms::others_write));

  SendUnix(options.socket_path, "uds.metric:1|c|#a:b");
  REQUIRE(WaitUntil([&] { return sink.With([](RecordingSink& s) { return s.samples_.size() == 1; }); }));
  sink.With([](RecordingSink& s) {
    CHECK(s.samples_[0].tags == std::vector<std::string>{"a:b", "container_name:web"});
    return 0;
  });
  auto counters = server.Counters();
  CHECK(counters["packets_unix"] == 1);
  CHECK(counters["origin_resolved"] == 1);

  SECTION("a second agent cannot steal the live socket") {
    RecordingSink other_sink;
    Server other(options, &other_sink, nullptr);
    absl::Status status = other.Start();
    CHECK(absl::IsAlreadyExists(status));
    CHECK(std::string(status.message()).find("dogstatsd_socket") != std::string::npos);
  }
  server.Stop();
  CHECK(!fs::exists(options.socket_path));
}

TEST_CASE("client origin fields are honoured only when configured") {
  RecordingSink sink;
  FakeTagger tagger;
  ServerOptions options;
  options.udp_port = FreeUdpPort();
  options.origin_detection_client = true;
  Server server(options, &sink, &tagger);
  REQUIRE(server.Start().ok());
  SendUdp(server.udp_port(), "m:1|g|#x:y|c:ci-" + kContainerId + "|card:high\nn:1|g|c:ci-" + kContainerId +
                                 "\no:1|g|#dd.internal.entity_id:pod-1,dd.internal.card:high,k:v|c:ci-" +
                                 kContainerId);
  REQUIRE(WaitUntil([&] { return sink.With([](RecordingSink& s) { return s.samples_.size() == 3; }); }));
  sink.With([](RecordingSink& s) {
    CHECK(s.samples_[0].tags ==
          std::vector<std::string>{"x:y", "container_name:web", "container_id:" + kContainerId});
    CHECK(s.samples_[1].tags == std::vector<std::string>{"container_name:web"});  // default low cardinality
    // dd.internal.* tags are instructions: the card one raises the cardinality; neither is kept.
    CHECK(s.samples_[2].tags ==
          std::vector<std::string>{"k:v", "container_name:web", "container_id:" + kContainerId});
    return 0;
  });
  server.Stop();
}

TEST_CASE(
    "bad lines are counted by kind and never break their neighbours; oversize datagrams keep whole lines") {
  RecordingSink sink;
  ServerOptions options;
  options.udp_port = FreeUdpPort();
  options.buffer_size = 512;
  Server server(options, &sink, nullptr);
  REQUIRE(server.Start().ok());
  SendUdp(server.udp_port(), "good.one:1|c\n:1|c\nbad.value:abc|g\nbad.type:1|zz\ngood.two:2|g");
  std::string big;
  for (int i = 0; i < 40; ++i) big += "line.number." + std::to_string(i) + ":1|c\n";  // ~700 bytes
  REQUIRE(big.size() > 512);
  SendUdp(server.udp_port(), big);
  REQUIRE(WaitUntil([&] { return server.Counters()["dropped_oversize_datagram"] == 1; }));
  REQUIRE(WaitUntil([&] { return sink.With([](RecordingSink& s) { return s.samples_.size() >= 2; }); }));
  auto counters = server.Counters();
  CHECK(counters["parse_errors_empty_name"] == 1);
  CHECK(counters["parse_errors_bad_value"] == 1);
  CHECK(counters["parse_errors_bad_type"] == 1);
  sink.With([&](RecordingSink& s) {
    CHECK(s.samples_[0].name == "good.one");
    CHECK(s.samples_[1].name == "good.two");
    // The oversize datagram: every line the 512-byte buffer held completely, and not the cut one.
    size_t complete_lines = std::count(big.begin(), big.begin() + 512, '\n');
    CHECK(s.samples_.size() == 2 + complete_lines);
    CHECK(s.samples_.back().name == "line.number." + std::to_string(complete_lines - 1));
    return 0;
  });
  server.Stop();
}

TEST_CASE("under overload every datagram is either received or counted as a kernel drop") {
  RecordingSink sink;
  ServerOptions options;
  options.udp_port = FreeUdpPort();
  options.queue_batches = 2;
  options.packets_per_batch = 4;
  options.so_rcvbuf = 4096;  // tiny: the kernel must drop
  Server server(options, &sink, nullptr);
  REQUIRE(server.Start().ok());

  sink.Close();  // the aggregator stalls; the batches fill, then the socket buffer
  constexpr int kFlood = 3000;
  int sender = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server.udp_port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < kFlood; ++i) {
    std::string line = "flood:1|c|#i:" + std::to_string(i);
    sendto(sender, line.data(), line.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  }
  sink.Open();
  close(sender);
  // The socket's drop counter is exact at any moment: once the backlog is parsed, every datagram
  // is either received or counted as dropped.
  REQUIRE(WaitUntil([&] {
    auto c = server.Counters();
    return c["packets_udp"] + c["dropped_kernel_udp"] == kFlood;
  }));
  auto counters = server.Counters();
  INFO("received " << counters["packets_udp"] << " dropped " << counters["dropped_kernel_udp"]);
  CHECK(counters["dropped_kernel_udp"] > 0);
  CHECK(counters["reader_waits"] > 0);
  CHECK(sink.With([](RecordingSink& s) { return s.samples_.size(); }) ==
        static_cast<size_t>(counters["packets_udp"]));
  CHECK(counters["batches_allocated"] <= 2);
  server.Stop();
}

TEST_CASE("configuration errors name the key") {
  RecordingSink sink;
  ServerOptions options;
  options.udp_port = 0;
  options.socket_path = "/nonexistent-dir/dsd.socket";
  Server server(options, &sink, nullptr);
  absl::Status status = server.Start();
  REQUIRE(!status.ok());
  CHECK(std::string(status.message()).find("dogstatsd_socket") != std::string::npos);

  // A taken UDP port.
  uint16_t port = FreeUdpPort();
  ServerOptions first_options;
  first_options.udp_port = port;
  Server first(first_options, &sink, nullptr);
  REQUIRE(first.Start().ok());
  Server second(first_options, &sink, nullptr);
  status = second.Start();
  REQUIRE(!status.ok());
  CHECK(std::string(status.message()).find("dogstatsd_port") != std::string::npos);
}
