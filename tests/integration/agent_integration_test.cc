// Integration tests with the real `agent` executable: config precedence, secrets, forwarding to a
// real (standalone) local intake through outages and kill -9, bad input, sockets and sub-agents.

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstring>
#include <set>
#include <thread>

#include "common/compression/compression.h"
#include "common/ipc/grpc_server.h"
#include "common/strings/strings.h"
#include "datadog/metrics/metrics.pb.h"
#include "dogwatch/core.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "rapidjson/document.h"
#include "tests/support/test_support.h"

using dogwatch::testing::Bin;
using dogwatch::testing::BinDir;
using dogwatch::testing::CommandResult;
using dogwatch::testing::FreePort;
using dogwatch::testing::HttpGet;
using dogwatch::testing::HttpPost;
using dogwatch::testing::PodmanRun;
using dogwatch::testing::Process;
using dogwatch::testing::RunCommand;
using dogwatch::testing::TempDir;
using dogwatch::testing::WaitFor;
using namespace std::chrono_literals;

namespace {

struct AgentSetup {
  TempDir dir;
  int health_port = FreePort();
  std::string socket = dir.File("agent.sock");

  // Private trace-agent listeners, for the sub-agents these tests start (inherited through
  // the supervisor, or passed to a sub-agent started directly).
  std::map<std::string, std::string> SubAgentEnv() const {
    return {{"DD_APM_RECEIVER_PORT", std::to_string(trace_port)},
            {"DD_APM_RECEIVER_SOCKET", dir.File("apm.socket")},
            {"DD_DOGSTATSD_SOCKET", ""},
            {"DD_DOGSTATSD_PORT", std::to_string(dogstatsd_port)},
            // A podman socket on the test machine would otherwise start a process-agent for
            // containers in every supervised test.
            {"DD_PROCESS_CONFIG_CONTAINER_COLLECTION_ENABLED", "false"}};
  }
  int trace_port = FreePort();
  int dogstatsd_port = FreePort();  // a free TCP port number is free for UDP in practice

  // A config with every socket and port private to this test, plus `extra` YAML.
  std::string WriteConfig(const std::string& extra) const {
    std::string yaml = "run_path: " + dir.path() + "\n" +
                       "log_level: debug\n"
                       "health_port: " +
                       std::to_string(health_port) + "\n" +
                       "health_bind_host: 127.0.0.1\n"
                       "agent_ipc:\n  socket: " +
                       socket + "\n" + "local_intake:\n  port: 0\n" +
                       // These tests count the forwarder's payloads: no metrics of the core's own
                       // (host metadata, host checks, telemetry series) unless a test asks.
                       (extra.find("enable_payloads") == std::string::npos
                            ? "enable_metadata_collection: false\nenable_host_checks: false\n"
                              "enable_payloads:\n  series: false\n  sketches: false\n"
                            : "") +
                       extra;
    return dir.Write("dogwatch.yaml", yaml);
  }
};

std::unique_ptr<dogwatch::core::Core::Stub> Stub(const std::string& socket) {
  return dogwatch::core::Core::NewStub(dogwatch::ipc::CreateUnixChannel(socket, 64 << 20));
}

bool CoreUp(const std::string& socket) {
  auto stub = Stub(socket);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 500ms);
  dogwatch::core::HealthResponse response;
  return stub->Health(&context, dogwatch::core::HealthRequest(), &response).ok();
}

// A real series payload with a unique metric name, compressed as the agent sends it.
std::string SeriesBody(const std::string& metric) {
  datadog::agentpayload::MetricPayload payload;
  auto* series = payload.add_series();
  series->set_metric(metric);
  series->set_type(datadog::agentpayload::MetricPayload::GAUGE);
  auto* point = series->add_points();
  point->set_value(1.5);
  point->set_timestamp(1700000000);
  auto* resource = series->add_resources();
  resource->set_type("host");
  resource->set_name("test-host");
  auto compressed = dogwatch::compression::ZlibCompress(payload.SerializeAsString());
  REQUIRE(compressed.ok());
  return *compressed;
}

grpc::Status SubmitSeries(const std::string& socket, const std::string& metric) {
  auto stub = Stub(socket);
  dogwatch::core::SubmitRequest request;
  request.set_track(dogwatch::core::TRACK_METRICS);
  request.set_path("/api/v2/series");
  request.set_origin("integration-test");
  auto* type = request.add_headers();
  type->set_name("Content-Type");
  type->set_value("application/x-protobuf");
  auto* encoding = request.add_headers();
  encoding->set_name("Content-Encoding");
  encoding->set_value("deflate");
  request.set_body(SeriesBody(metric));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 10s);
  dogwatch::core::SubmitResponse response;
  return stub->Submit(&context, request, &response);
}

dogwatch::core::StatusResponse GetStatus(const std::string& socket) {
  auto stub = Stub(socket);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 5s);
  dogwatch::core::StatusResponse response;
  grpc::Status status = stub->GetStatus(&context, dogwatch::core::StatusRequest(), &response);
  INFO(status.error_message());
  REQUIRE(status.ok());
  return response;
}

int64_t Counter(const dogwatch::core::StatusResponse& status, const std::string& name) {
  auto it = status.forwarder().counters().find(name);
  return it == status.forwarder().counters().end() ? 0 : it->second;
}

// A standalone local intake (`agent intake serve`) on a fixed port.
struct Intake {
  TempDir dir;
  int port;
  std::unique_ptr<Process> process;
  explicit Intake(int p, std::vector<std::string> api_keys = {}) : port(p) {
    std::vector<std::string> argv = {Bin("agent"),         "intake", "serve",          "--port",
                                     std::to_string(port), "--dir",  dir.File("store")};
    for (const auto& key : api_keys) {
      argv.push_back("--api-key");
      argv.push_back(key);
    }
    process = std::make_unique<Process>(argv, std::map<std::string, std::string>{}, dir.path(), "intake");
    REQUIRE(WaitFor([&] { return HttpGet(Url("/dogwatch/intake/stats")).status == 200; }, 10s));
  }
  std::string Url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port) + path; }

  // Metric names of every series payload received, decoded by the intake itself.
  std::multiset<std::string> Metrics() const {
    std::multiset<std::string> out;
    auto list = HttpGet(Url("/dogwatch/intake/payloads?path=/api/v2/series&limit=1000"));
    rapidjson::Document doc;
    doc.Parse(list.body.c_str());
    if (!doc.IsArray()) return out;
    for (const auto& meta : doc.GetArray()) {
      auto decoded = HttpGet(Url("/dogwatch/intake/payloads/" + std::to_string(meta["seq"].GetUint64())));
      rapidjson::Document payload;
      payload.Parse(decoded.body.c_str());
      const rapidjson::Value* root = &payload;
      if (payload.IsObject() && payload.HasMember("payload")) root = &payload["payload"];
      if (!root->IsObject() || !root->HasMember("series")) continue;
      for (const auto& series : (*root)["series"].GetArray()) out.insert(series["metric"].GetString());
    }
    return out;
  }

  std::vector<std::string> ApiKeyHints() const {
    std::vector<std::string> out;
    auto list = HttpGet(Url("/dogwatch/intake/payloads?limit=1000"));
    rapidjson::Document doc;
    doc.Parse(list.body.c_str());
    if (!doc.IsArray()) return out;
    for (const auto& meta : doc.GetArray()) out.push_back(meta["api_key_hint"].GetString());
    return out;
  }
};

// Answers every HTTP request with 500 until stopped: the intake "up but broken".
class FailingServer {
 public:
  explicit FailingServer(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(listen(fd_, 16) == 0);
    thread_ = std::thread([this] {
      while (!stop_) {
        int client = accept(fd_, nullptr, nullptr);
        if (client < 0) continue;
        timeval tv{0, 200000};
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        char buffer[65536];
        while (read(client, buffer, sizeof(buffer)) > 0) {
        }
        static const char kReply[] =
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\noops";
        (void)!write(client, kReply, sizeof(kReply) - 1);
        answered_++;
        close(client);
      }
    });
  }
  ~FailingServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  int answered() const { return answered_.load(); }

 private:
  int fd_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> answered_{0};
};

std::unique_ptr<Process> StartAgent(const AgentSetup& setup, const std::string& config,
                                    std::map<std::string, std::string> env = {},
                                    const std::string& name = "agent") {
  for (const auto& [key, value] : setup.SubAgentEnv()) env.emplace(key, value);
  auto agent = std::make_unique<Process>(std::vector<std::string>{Bin("agent"), "run", "-c", config}, env,
                                         setup.dir.path(), name);
  bool up = WaitFor([&] { return CoreUp(setup.socket) || !agent->Running(); }, 15s);
  INFO("agent stderr:\n" << agent->Stderr());
  REQUIRE(up);
  REQUIRE(agent->Running());
  return agent;
}

// Runs in a forked child with only async-signal-safe calls: 0 = the server answered, 1 = closed
// on us, 2 = connect refused by the file mode.
int ProbeSocketAs(const std::string& path, uid_t uid) {
  pid_t pid = fork();
  if (pid == 0) {
    signal(SIGPIPE, SIG_IGN);
    if (setgid(uid) != 0 || setuid(uid) != 0) _exit(3);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) _exit(2);
    static const char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
    (void)!write(fd, kPreface, sizeof(kPreface) - 1);
    char buffer[16];
    _exit(read(fd, buffer, sizeof(buffer)) > 0 ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("config precedence: default < file < environment, aliases included", "[integration]") {
  AgentSetup setup;
  std::string config = setup.WriteConfig(
      "site: datadoghq.eu\nenv: from-file\napm_config:\n  enabled: false\n  receiver_port: 9126\n");
  CommandResult result = RunCommand({Bin("agent"), "-c", config, "config"},
                                    {{"DD_ENV", "from-env"}, {"DD_APM_ENABLED", "true"}});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  CHECK_THAT(result.out, Catch::Contains("site: \"datadoghq.eu\"  # file"));
  CHECK_THAT(result.out, Catch::Contains("env: \"from-env\"  # environment (DD_ENV)"));
  CHECK_THAT(result.out, Catch::Contains("apm_config.enabled: true  # environment (DD_APM_ENABLED)"));
  CHECK_THAT(result.out, Catch::Contains("apm_config.receiver_port: 9126  # file"));
  CHECK_THAT(result.out, Catch::Contains("dogstatsd_port: 8125  # default"));

  // The running core serves the same effective values to sub-agents over IPC.
  auto agent = StartAgent(setup, config, {{"DD_ENV", "from-env"}, {"DD_APM_ENABLED", "false"}});
  auto stub = Stub(setup.socket);
  grpc::ClientContext context;
  dogwatch::core::ConfigSnapshot snapshot;
  REQUIRE(stub->GetConfig(&context, dogwatch::core::GetConfigRequest(), &snapshot).ok());
  std::map<std::string, dogwatch::core::ConfigEntry> entries;
  for (const auto& entry : snapshot.entries()) entries[entry.key()] = entry;
  CHECK(entries["env"].value().string_value() == "from-env");
  CHECK(entries["env"].source() == dogwatch::core::CONFIG_SOURCE_ENVIRONMENT);
  CHECK(entries["site"].value().string_value() == "datadoghq.eu");
  CHECK(entries["site"].source() == dogwatch::core::CONFIG_SOURCE_FILE);
  CHECK(entries["apm_config.enabled"].value().bool_value() == false);
  // The file says 9126; the environment the test gives every agent (DD_APM_RECEIVER_PORT) wins.
  CHECK(entries["apm_config.receiver_port"].value().int_value() == setup.trace_port);
  CHECK(entries["apm_config.receiver_port"].source() == dogwatch::core::CONFIG_SOURCE_ENVIRONMENT);
  CHECK(entries["dogstatsd_buffer_size"].source() == dogwatch::core::CONFIG_SOURCE_DEFAULT);
  CHECK(entries.count("api_key") == 0);  // never served
}

TEST_CASE("an ENC[] API key is resolved by a real backend and delivered as DD-API-KEY", "[integration]") {
  AgentSetup setup;
  const std::string key = "0123456789abcdef0123456789abcdef";
  std::string backend = setup.dir.Write("backend.sh",
                                        "#!/bin/sh\n"
                                        "cat > \"$(dirname \"$0\")/backend-stdin.json\"\n"
                                        "printf '{\"dd_key\": {\"value\": \"" +
                                            key + "\", \"error\": null}}'\n",
                                        0700);
  Intake intake(FreePort(), {key});
  std::string config = setup.WriteConfig("api_key: ENC[dd_key]\nsecret_backend_command: " + backend +
                                         "\ndd_url: " + intake.Url("") + "\n");
  auto agent = StartAgent(setup, config);
  REQUIRE(SubmitSeries(setup.socket, "dogwatch.test.secret").ok());
  REQUIRE(WaitFor([&] { return intake.Metrics().count("dogwatch.test.secret") == 1; }, 10s));
  CHECK(intake.ApiKeyHints() == std::vector<std::string>{key.substr(key.size() - 4)});
  // The backend was asked with the Datadog protocol.
  std::string stdin_json = dogwatch::testing::ReadFile(setup.dir.File("backend-stdin.json"));
  rapidjson::Document request;
  request.Parse(stdin_json.c_str());
  REQUIRE(request.IsObject());
  CHECK(std::string(request["version"].GetString()) == "1.0");
  CHECK(std::string(request["secrets"][0].GetString()) == "dd_key");

  // The key never shows in status, config output or logs.
  CommandResult status = RunCommand({Bin("agent"), "-c", config, "status", "--json"});
  REQUIRE(status.exit_code == 0);
  CHECK(status.out.find(key) == std::string::npos);
  CommandResult printed = RunCommand({Bin("agent"), "-c", config, "config"});
  CHECK(printed.out.find(key) == std::string::npos);
  CHECK_THAT(printed.out, Catch::Contains("api_key: ENC[dd_key]"));
  agent->Signal(SIGTERM);
  REQUIRE(agent->Wait(10s) == 0);
  CHECK(agent->Stderr().find(key) == std::string::npos);
}

TEST_CASE("a wrong API key is answered 403 and counted as dropped_invalid_api_key", "[integration]") {
  AgentSetup setup;
  Intake intake(FreePort(), {"the-right-key-000000000000000000"});
  std::string config =
      setup.WriteConfig("api_key: the-wrong-key-11111111111111111\ndd_url: " + intake.Url("") + "\n");
  auto agent = StartAgent(setup, config);
  REQUIRE(SubmitSeries(setup.socket, "dogwatch.test.denied").ok());
  REQUIRE(WaitFor([&] { return Counter(GetStatus(setup.socket), "dropped_invalid_api_key") == 1; }, 10s));
  CHECK(Counter(GetStatus(setup.socket), "sent") == 0);
}

TEST_CASE("a secret backend with group-writable permissions is refused with a clear error", "[integration]") {
  AgentSetup setup;
  std::string backend = setup.dir.Write("backend.sh", "#!/bin/sh\nprintf '{}'\n", 0770);
  std::string config = setup.WriteConfig("api_key: ENC[dd_key]\nsecret_backend_command: " + backend + "\n");
  Process agent({Bin("agent"), "run", "-c", config}, {}, setup.dir.path(), "agent");
  int code = agent.Wait(10s);
  CHECK(code == 1);
  std::string err = agent.Stderr();
  CHECK_THAT(err, Catch::Contains("secret backend"));
  CHECK_THAT(err, Catch::Contains(backend));
  CHECK_THAT(err, Catch::Contains("770"));
  CHECK_THAT(err, Catch::Contains("api_key"));
}

TEST_CASE("the intake refusing connections, then answering 500, then back: nothing lost", "[integration]") {
  AgentSetup setup;
  int port = FreePort();
  std::string config = setup.WriteConfig(
      "api_key: aaaabbbbccccddddaaaabbbbccccdddd\ndd_url: http://127.0.0.1:" + std::to_string(port) +
      "\nforwarder_backoff_base: 1\nforwarder_backoff_max: 2\n");
  auto agent = StartAgent(setup, config);
  constexpr int kPayloads = 20;
  for (int i = 0; i < 10; ++i)
    REQUIRE(SubmitSeries(setup.socket, "dogwatch.outage." + std::to_string(i)).ok());
  REQUIRE(WaitFor([&] { return Counter(GetStatus(setup.socket), "retried") >= 1; }, 10s));  // refused
  {
    FailingServer failing(port);
    for (int i = 10; i < kPayloads; ++i)
      REQUIRE(SubmitSeries(setup.socket, "dogwatch.outage." + std::to_string(i)).ok());
    REQUIRE(WaitFor([&] { return failing.answered() >= 2; }, 15s));  // 500s
  }
  Intake intake(port);
  REQUIRE(WaitFor([&] { return intake.Metrics().size() >= kPayloads; }, 30s));
  auto metrics = intake.Metrics();
  for (int i = 0; i < kPayloads; ++i) CHECK(metrics.count("dogwatch.outage." + std::to_string(i)) >= 1);
  auto status = GetStatus(setup.socket);
  CHECK(Counter(status, "submitted") == kPayloads);
  CHECK(Counter(status, "sent") == kPayloads);
  CHECK(Counter(status, "retried") >= 2);
  for (const auto& [name, value] : status.forwarder().counters()) {
    if (name.rfind("dropped_", 0) == 0) CHECK(value == 0);
  }
}

TEST_CASE("kill -9 with payloads queued on disk: after a restart they are delivered", "[integration]") {
  AgentSetup setup;
  int port = FreePort();
  std::string config = setup.WriteConfig(
      "api_key: aaaabbbbccccddddaaaabbbbccccdddd\ndd_url: http://127.0.0.1:" + std::to_string(port) +
      "\nforwarder_backoff_base: 1\nforwarder_backoff_max: 1\n"
      "forwarder_storage_max_size_in_bytes: 10000000\n");
  constexpr int kPayloads = 10;
  {
    auto agent = StartAgent(setup, config, {}, "agent-first");
    for (int i = 0; i < kPayloads; ++i)
      REQUIRE(SubmitSeries(setup.socket, "dogwatch.crash." + std::to_string(i)).ok());
    agent->Signal(SIGKILL);
    REQUIRE(agent->Wait(5s) == 128 + SIGKILL);
  }
  Intake intake(port);
  auto agent = StartAgent(setup, config, {}, "agent-second");
  REQUIRE(WaitFor([&] { return intake.Metrics().size() >= kPayloads; }, 30s));
  auto metrics = intake.Metrics();
  for (int i = 0; i < kPayloads; ++i) CHECK(metrics.count("dogwatch.crash." + std::to_string(i)) >= 1);
  CHECK(Counter(GetStatus(setup.socket), "requeued_from_disk") >= kPayloads);
}

TEST_CASE("bad configuration gives a clear error and a non-zero exit", "[integration]") {
  AgentSetup setup;
  SECTION("malformed YAML names the file and line") {
    std::string config = setup.dir.Write("bad.yaml", "site: x\napm_config:\n  enabled: [true\n");
    Process agent({Bin("agent"), "run", "-c", config}, {}, setup.dir.path(), "agent");
    CHECK(agent.Wait(10s) == 1);
    CHECK_THAT(agent.Stderr(), Catch::Contains(config + ":"));
    CHECK_THAT(agent.Stderr(), Catch::Contains("invalid YAML"));
  }
  SECTION("a wrong type names the key and the expected type") {
    std::string config = setup.WriteConfig("forwarder_timeout: soon\n");
    Process agent({Bin("agent"), "run", "-c", config}, {}, setup.dir.path(), "agent");
    CHECK(agent.Wait(10s) == 1);
    CHECK_THAT(agent.Stderr(), Catch::Contains("'forwarder_timeout'"));
    CHECK_THAT(agent.Stderr(), Catch::Contains("expected integer"));
  }
  SECTION("an unknown DD_ enum value") {
    std::string config = setup.WriteConfig("");
    Process agent({Bin("agent"), "run", "-c", config}, {{"DD_LOG_LEVEL", "loud"}}, setup.dir.path(), "agent");
    CHECK(agent.Wait(10s) == 1);
    CHECK_THAT(agent.Stderr(), Catch::Contains("DD_LOG_LEVEL"));
    CHECK_THAT(agent.Stderr(), Catch::Contains("'loud' is not one of"));
  }
  SECTION("a missing socket directory") {
    std::string config = setup.WriteConfig("");
    Process agent({Bin("agent"), "run", "-c", config},
                  {{"DD_AGENT_IPC_SOCKET", setup.dir.File("missing/agent.sock")}}, setup.dir.path(), "agent");
    CHECK(agent.Wait(10s) == 1);
    CHECK_THAT(agent.Stderr(), Catch::Contains("agent_ipc.socket"));
    CHECK_THAT(agent.Stderr(), Catch::Contains("does not exist"));
  }
  SECTION("a missing config file given with -c") {
    Process agent({Bin("agent"), "run", "-c", setup.dir.File("nope.yaml")}, {}, setup.dir.path(), "agent");
    CHECK(agent.Wait(10s) == 1);
    CHECK_THAT(agent.Stderr(), Catch::Contains("nope.yaml"));
  }
}

TEST_CASE("an oversized IPC message is refused and the core keeps running", "[integration]") {
  AgentSetup setup;
  std::string config =
      setup.WriteConfig("agent_ipc:\n  socket: " + setup.socket + "\n  max_message_bytes: 65536\n");
  auto agent = StartAgent(setup, config);
  auto stub = Stub(setup.socket);
  dogwatch::core::SubmitRequest request;
  request.set_track(dogwatch::core::TRACK_METRICS);
  request.set_path("/api/v2/series");
  request.set_body(std::string(1 << 20, 'x'));
  grpc::ClientContext context;
  dogwatch::core::SubmitResponse response;
  grpc::Status status = stub->Submit(&context, request, &response);
  CHECK(status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(agent->Running());
  CHECK(CoreUp(setup.socket));
}

TEST_CASE("status answers while every sub-agent's config stream and every reply waiter holds a thread",
          "[integration]") {
  AgentSetup setup;
  // An intake that completes TCP handshakes (the kernel's backlog) but never reads or answers:
  // every Submit that asks for the reply stays parked in the core for its whole timeout.
  auto silent = dogwatch::testing::ListenOnLoopback(64);
  REQUIRE(silent.fd >= 0);
  std::string config = setup.WriteConfig(
      "api_key: aaaabbbbccccddddaaaabbbbccccdddd\ndd_url: http://127.0.0.1:" + std::to_string(silent.port()) +
      "\n");
  auto agent = StartAgent(setup, config);

  // What a supervised suite holds for minutes at a time: one WatchConfig stream per sub-agent...
  std::vector<std::unique_ptr<grpc::ClientContext>> watch_contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<dogwatch::core::ConfigSnapshot>>> watches;
  auto stub = Stub(setup.socket);
  for (int i = 0; i < 3; ++i) {
    watch_contexts.push_back(std::make_unique<grpc::ClientContext>());
    watches.push_back(stub->WatchConfig(watch_contexts.back().get(), dogwatch::core::WatchConfigRequest()));
    dogwatch::core::ConfigSnapshot first;
    REQUIRE(watches.back()->Read(&first));
  }
  // ...and every reply waiter the core allows, parked on the silent intake.
  std::vector<std::thread> parked;
  std::atomic<int> parked_done{0};
  for (int i = 0; i < 4; ++i) {
    parked.emplace_back([&, i] {
      auto submit_stub = Stub(setup.socket);
      dogwatch::core::SubmitRequest request;
      request.set_track(dogwatch::core::TRACK_METRICS);
      request.set_path("/api/v2/series");
      request.set_body(SeriesBody("dogwatch.parked." + std::to_string(i)));
      request.set_reply_timeout_ms(6000);
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + 20s);
      dogwatch::core::SubmitResponse response;
      (void)submit_stub->Submit(&context, request, &response);
      parked_done++;
    });
  }
  std::this_thread::sleep_for(1500ms);  // let all four reach the wait
  // The health check's own calls, repeated while those are held: each must be served.
  for (int i = 0; i < 5; ++i) {
    INFO("call #" << i);
    (void)GetStatus(setup.socket);  // REQUIREs an OK answer
    CHECK(CoreUp(setup.socket));
  }
  CHECK(parked_done.load() == 0);  // the calls above really ran while all four were parked
  for (auto& thread : parked) thread.join();
  for (auto& context : watch_contexts) context->TryCancel();
  for (auto& watch : watches) (void)watch->Finish();
  close(silent.fd);
}

TEST_CASE("the core's socket is 0660 and refuses a second uid", "[integration]") {
  REQUIRE(geteuid() == 0);  // switching uids needs root; CI runs as root
  AgentSetup setup;
  auto agent = StartAgent(setup, setup.WriteConfig(""));
  struct stat st;
  REQUIRE(stat(setup.socket.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0660);
  CHECK(ProbeSocketAs(setup.socket, 0) == 0);
  CHECK(ProbeSocketAs(setup.socket, 65534) == 2);  // the file mode stops it
  REQUIRE(chmod(setup.socket.c_str(), 0666) == 0);
  CHECK(ProbeSocketAs(setup.socket, 65534) == 1);  // the peer-credential check stops it
  auto status = GetStatus(setup.socket);
  CHECK(status.ipc().at("refused_connections") >= 1);
}

TEST_CASE("health endpoints answer on health_port", "[integration]") {
  AgentSetup setup;
  auto agent = StartAgent(setup, setup.WriteConfig(""));
  std::string base = "http://127.0.0.1:" + std::to_string(setup.health_port);
  CHECK(HttpGet(base + "/live").status == 200);
  CHECK(WaitFor([&] { return HttpGet(base + "/ready").status == 200; }, 5s));
  CHECK(HttpGet(base + "/startup").status == 200);
  CHECK(HttpGet(base + "/nope").status == 404);
  CommandResult health = RunCommand({Bin("agent"), "-c", setup.dir.File("dogwatch.yaml"), "health"});
  CHECK(health.exit_code == 0);
  CHECK_THAT(health.out, Catch::Contains("PASS"));
}

TEST_CASE("supervisor mode runs the sub-agents, restarts a crashed one and stops them all", "[integration]") {
  AgentSetup setup;
  std::string config = setup.WriteConfig(
      "supervisor:\n  enabled: true\napm_config:\n  enabled: true\nprocess_config:\n  process_collection:\n"
      "    enabled: true\n");
  auto agent = StartAgent(setup, config);
  auto components = [&] {
    std::map<std::string, dogwatch::core::ComponentStatus> out;
    auto status = GetStatus(setup.socket);
    for (const auto& c : status.components()) out[c.name()] = c;
    return out;
  };
  bool up = WaitFor(
      [&] {
        auto c = components();
        return c.count("trace-agent") && c.count("process-agent") && c["trace-agent"].state() == "running";
      },
      20s);
  INFO("agent stderr:\n" << agent->Stderr());
  REQUIRE(up);
  pid_t trace_pid = components()["trace-agent"].pid();
  REQUIRE(trace_pid > 0);
  kill(trace_pid, SIGKILL);
  REQUIRE(WaitFor(
      [&] {
        auto c = components();
        return c["trace-agent"].pid() != trace_pid && c["trace-agent"].state() == "running";
      },
      20s));
  auto status_after = GetStatus(setup.socket);
  const auto& core = status_after.core();
  CHECK(core.counters().at("supervisor_restarts:trace-agent") == 1);

  // `agent status` shows them in human form too.
  CommandResult status = RunCommand({Bin("agent"), "-c", config, "status"});
  CHECK_THAT(status.out, Catch::Contains("trace-agent"));
  CHECK_THAT(status.out, Catch::Contains("process-agent"));

  pid_t process_pid = components()["process-agent"].pid();
  pid_t new_trace_pid = components()["trace-agent"].pid();
  agent->Signal(SIGTERM);
  CHECK(agent->Wait(20s) == 0);
  CHECK(kill(process_pid, 0) != 0);
  CHECK(kill(new_trace_pid, 0) != 0);
}

TEST_CASE("sub-agents fail clearly without a core and honour their enable flags", "[integration]") {
  AgentSetup setup;
  std::string config = setup.WriteConfig("");
  auto no_core_env = setup.SubAgentEnv();
  no_core_env["DD_AGENT_IPC_CONNECT_TIMEOUT"] = "2";
  CommandResult no_core = RunCommand({Bin("trace-agent"), "-c", config}, no_core_env, 30s);
  CHECK(no_core.exit_code == 1);
  CHECK_THAT(no_core.err, Catch::Contains("agent_ipc.socket"));

  auto agent = StartAgent(setup, setup.WriteConfig("apm_config:\n  enabled: false\n"));
  CommandResult disabled = RunCommand({Bin("trace-agent"), "-c", config}, setup.SubAgentEnv(), 20s);
  CHECK(disabled.exit_code == 0);
  CHECK_THAT(disabled.err, Catch::Contains("apm_config.enabled is false"));
  // A sub-agent's own DD_* environment overrides what the core serves.
  auto enabled_env = setup.SubAgentEnv();
  enabled_env["DD_APM_ENABLED"] = "true";
  Process trace({Bin("trace-agent"), "-c", config}, enabled_env, setup.dir.path(), "trace");
  REQUIRE(WaitFor(
      [&] {
        auto status = GetStatus(setup.socket);
        for (const auto& c : status.components()) {
          if (c.name() == "trace-agent" && c.state() == "running") return true;
        }
        return false;
      },
      20s));
  trace.Signal(SIGTERM);
  CHECK(trace.Wait(10s) == 0);
}

TEST_CASE("supervised sub-agents exit when the core is killed with SIGKILL", "[integration]") {
  AgentSetup setup;
  std::string config = setup.WriteConfig(
      "supervisor:\n  enabled: true\napm_config:\n  enabled: true\nprocess_config:\n  process_collection:\n"
      "    enabled: true\n");
  auto agent = StartAgent(setup, config);
  std::vector<pid_t> children;
  REQUIRE(WaitFor(
      [&] {
        children.clear();
        auto status = GetStatus(setup.socket);
        for (const auto& c : status.components()) {
          // In-process components (DogStatsD, aggregator, ...) report the core's own pid.
          if (c.state() == "running" && c.pid() != status.core().pid()) children.push_back(c.pid());
        }
        return children.size() == 2;
      },
      20s));
  agent->Signal(SIGKILL);
  REQUIRE(agent->Wait(5s) == 128 + SIGKILL);
  // PR_SET_PDEATHSIG delivers SIGTERM; each child then stops cleanly (its last report to the
  // vanished core times out after about a second).
  for (pid_t pid : children) {
    CHECK(WaitFor([&] { return kill(pid, 0) != 0; }, 10s));
  }
}

TEST_CASE(
    "DogStatsD in Datadog mode: UDP lines reach the intake as series with the API key; shutdown flushes",
    "[integration]") {
  AgentSetup setup;
  const std::string key = "abcdef0123456789abcdef0123456789";
  Intake intake(FreePort(), {key});
  std::string config = setup.WriteConfig("api_key: " + key + "\ndd_url: " + intake.Url("") +
                                         "\nenable_payloads:\n  series: true\n  sketches: true\n"
                                         "enable_host_checks: false\nenable_metadata_collection: false\n"
                                         "metrics_flush_interval: 1\ntags: [team:core]\n");
  auto agent = StartAgent(setup, config);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(setup.dogstatsd_port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string datagram = "it.dsd.count:2|c|#k:v\nit.dsd.gauge:7|g\nnot a metric\n";
  REQUIRE(sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) ==
          static_cast<ssize_t>(datagram.size()));
  // The bucket closes within 10 s; the 1 s flush then sends it through the real HTTP forwarder.
  REQUIRE(WaitFor([&] { return intake.Metrics().count("it.dsd.count") == 1; }, 20s));
  CHECK(intake.Metrics().count("it.dsd.gauge") == 1);
  for (const auto& hint : intake.ApiKeyHints()) CHECK(hint == key.substr(key.size() - 4));
  auto status = GetStatus(setup.socket);
  int64_t parse_errors = -1;
  for (const auto& c : status.components()) {
    if (c.name() == "dogstatsd") parse_errors = c.counters().at("parse_errors_missing_value");
  }
  CHECK(parse_errors == 1);  // "not a metric": counted by kind, the other lines kept

  // A line sent just before SIGTERM is in an open bucket: the shutdown flush still delivers it.
  std::string last = "it.dsd.at_shutdown:1|c";
  REQUIRE(sendto(fd, last.data(), last.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) ==
          static_cast<ssize_t>(last.size()));
  close(fd);
  std::this_thread::sleep_for(200ms);
  agent->Signal(SIGTERM);
  REQUIRE(agent->Wait(15s) == 0);
  CHECK(intake.Metrics().count("it.dsd.at_shutdown") == 1);
}

namespace {

// Every decoded payload the standalone intake holds for `path`, parsed.
std::vector<rapidjson::Document> DecodedPayloads(const Intake& intake, const std::string& path) {
  std::vector<rapidjson::Document> out;
  auto list = HttpGet(intake.Url("/dogwatch/intake/payloads?path=" + path + "&limit=1000"));
  rapidjson::Document doc;
  doc.Parse(list.body.c_str());
  if (!doc.IsArray()) return out;
  for (const auto& meta : doc.GetArray()) {
    auto decoded =
        HttpGet(intake.Url("/dogwatch/intake/payloads/" + std::to_string(meta["seq"].GetUint64())));
    rapidjson::Document payload;
    payload.Parse(decoded.body.c_str());
    if (payload.IsObject()) out.push_back(std::move(payload));
  }
  return out;
}

std::string RunOrFail(const std::vector<std::string>& argv) {
  CommandResult result = RunCommand(argv);
  INFO("command: " << argv[0] << " " << (argv.size() > 1 ? argv[1] : "") << "\nstdout:\n"
                   << result.out << "\nstderr:\n"
                   << result.err);
  REQUIRE(result.exit_code == 0);
  return result.out;
}

}  // namespace

TEST_CASE("the tagger: a real podman container's DogStatsD (origin from SO_PASSCRED) and traces get its tags",
          "[integration][podman]") {
  // Never skipped: podman.sh installs and configures podman offline, or the test fails saying why.
  RunOrFail({"/bin/bash", std::string(DOGWATCH_TEST_SOURCE_DIR) + "/tests/support/podman.sh"});

  AgentSetup setup;
  const std::string key = "fedcba9876543210fedcba9876543210";
  Intake intake(FreePort(), {key});
  const std::string socket = setup.dir.File("dsd.socket");
  std::string config = setup.WriteConfig(
      "api_key: " + key + "\ndd_url: " + intake.Url("") +
      "\napm_config:\n  enabled: true\n  apm_dd_url: " + intake.Url("") + "\nsupervisor:\n  enabled: true\n" +
      "enable_payloads:\n  series: true\n  sketches: true\nenable_host_checks: false\n"
      "enable_metadata_collection: false\nmetrics_flush_interval: 1\n"
      "dogstatsd_origin_detection: true\ndogstatsd_tag_cardinality: high\n"
      "container_runtime_socket: /run/podman/podman.sock\n");
  auto agent = StartAgent(setup, config, {{"DD_DOGSTATSD_SOCKET", socket}});
  REQUIRE(WaitFor([&] { return access(socket.c_str(), F_OK) == 0; }, 10s));
  chmod(setup.dir.path().c_str(), 0755);

  const std::string name = "dw-tag-" + std::to_string(getpid());
  struct Cleanup {
    std::string name;
    ~Cleanup() { RunCommand({"/usr/bin/podman", "rm", "-f", "-t", "0", name}); }
  } cleanup{name};
  CommandResult run =
      PodmanRun({"-d", "--name", name, "--label", "team=core", "-v", setup.dir.path() + ":/dsd", "-v",
                 BinDir() + ":/dw:ro", "localhost/dogwatch-test-busybox:1", "sleep", "300"},
                name);
  INFO("podman run: " << run.out << run.err);
  REQUIRE(run.exit_code == 0);
  const std::string id = std::string(dogwatch::strings::Strip(run.out));
  REQUIRE(id.size() == 64);
  // The tagger follows the runtime's events: the new container is known within a moment. Wait for
  // this container by id (a count of known containers is also satisfied by any other container on the
  // host, and then the datagram below would race the tagger).
  auto tagger_knows_container = [&] {
    auto stub = Stub(setup.socket);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 5s);
    dogwatch::core::TaggerLookupRequest request;
    request.set_container_id(id);
    request.set_cardinality("high");
    dogwatch::core::TaggerLookupResponse response;
    if (!stub->TaggerLookup(&context, request, &response).ok()) return false;
    return std::find(response.tags().begin(), response.tags().end(), "container_name:" + name) !=
           response.tags().end();
  };
  REQUIRE(WaitFor(tagger_knows_container, 15s));

  // A process inside the container sends over the unix socket: the agent sees its PID.
  RunOrFail({"/usr/bin/podman", "exec", name, "/dw/dsd_send", "/dsd/dsd.socket",
             "it.origin.metric:1|c|#from:container"});
  auto tags_of = [&](const std::string& metric) {
    std::vector<std::string> tags;
    for (const auto& payload : DecodedPayloads(intake, "/api/v2/series")) {
      if (!payload.HasMember("series")) continue;
      for (const auto& series : payload["series"].GetArray()) {
        if (metric != series["metric"].GetString() || !series.HasMember("tags")) continue;
        for (const auto& tag : series["tags"].GetArray()) tags.emplace_back(tag.GetString());
      }
    }
    return tags;
  };
  REQUIRE(WaitFor([&] { return !tags_of("it.origin.metric").empty(); }, 25s));
  std::vector<std::string> tags = tags_of("it.origin.metric");
  auto has = [&](const std::string& tag) { return std::find(tags.begin(), tags.end(), tag) != tags.end(); };
  INFO("tags: " << dogwatch::strings::Join(tags, ","));
  CHECK(has("from:container"));
  CHECK(has("container_name:" + name));
  CHECK(has("container_id:" + id));
  CHECK(has("image_name:localhost/dogwatch-test-busybox"));
  CHECK(has("short_image:dogwatch-test-busybox"));
  CHECK(has("image_tag:1"));

  // A trace from that container (the tracer names it with Datadog-Container-ID): the AgentPayload's
  // TracerPayload carries the tagger's tags as _dd.tags.container.
  const int64_t now_ns = static_cast<int64_t>(time(nullptr)) * 1000000000;
  const std::string trace =
      R"([[{"trace_id":11,"span_id":11,"parent_id":0,"name":"web.request","resource":"/x",)"
      R"("service":"tagged","type":"web","start":)" +
      std::to_string(now_ns) + R"(,"duration":1000000}]])";
  REQUIRE(WaitFor(
      [&] {
        return HttpPost("http://127.0.0.1:" + std::to_string(setup.trace_port) + "/v0.4/traces", trace,
                        {{"Content-Type", "application/json"}, {"Datadog-Container-ID", id}})
                   .status == 200;
      },
      15s));
  std::string container_tags;
  REQUIRE(WaitFor(
      [&] {
        for (const auto& payload : DecodedPayloads(intake, "/api/v0.2/traces")) {
          if (!payload.HasMember("tracerPayloads")) continue;
          for (const auto& tp : payload["tracerPayloads"].GetArray()) {
            if (tp.HasMember("tags") && tp["tags"].HasMember("_dd.tags.container")) {
              container_tags = tp["tags"]["_dd.tags.container"].GetString();
              return true;
            }
          }
        }
        return false;
      },
      30s));
  INFO("_dd.tags.container: " << container_tags);
  CHECK(container_tags.find("container_name:" + name) != std::string::npos);
  CHECK(container_tags.find("image_name:localhost/dogwatch-test-busybox") != std::string::npos);
}
