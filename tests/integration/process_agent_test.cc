// Integration tests of the process-agent with the real executables: `agent run` in supervisor
// mode starts process-agent, whose checks reach a standalone intake (`agent intake serve`) through
// the core's Submit; the tests read the payloads back decoded by the intake. (a) a real busy child
// process with a secret on its command line; (b) a real podman container (tests/support/podman.sh;
// root, as CI runs; never skipped: a setup failure fails with the script's output).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "common/ipc/grpc_server.h"
#include "dogwatch/core.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "tests/support/test_support.h"

using dogwatch::testing::Bin;
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

const std::string kApiKey = "0123456789abcdef0123456789abcdef";
const std::string kPodmanSocket = "/run/podman/podman.sock";
const std::string kImage = "localhost/dogwatch-test-busybox:1";

// Every socket and port private to the test.
struct Setup {
  TempDir dir;
  int health_port = FreePort();
  int trace_port = FreePort();
  int dogstatsd_port = FreePort();
  std::string socket = dir.File("agent.sock");

  std::map<std::string, std::string> Env() const {
    return {{"DD_APM_RECEIVER_PORT", std::to_string(trace_port)},
            {"DD_APM_RECEIVER_SOCKET", dir.File("apm.socket")},
            {"DD_DOGSTATSD_SOCKET", ""},
            {"DD_DOGSTATSD_PORT", std::to_string(dogstatsd_port)}};
  }

  std::string WriteConfig(const std::string& intake_url, const std::string& extra) const {
    std::string yaml = "run_path: " + dir.path() +
                       "\nlog_level: debug\nhealth_port: " + std::to_string(health_port) +
                       "\nhealth_bind_host: 127.0.0.1\nagent_ipc:\n  socket: " + socket +
                       "\nlocal_intake:\n  port: 0\napi_key: " + kApiKey + "\ndd_url: " + intake_url +
                       "\nenable_metadata_collection: false\nenable_host_checks: false\n"
                       "enable_payloads:\n  series: false\n  sketches: false\n"
                       "supervisor:\n  enabled: true\napm_config:\n  enabled: false\n" +
                       extra;
    return dir.Write("dogwatch.yaml", yaml);
  }
};

bool CoreUp(const std::string& socket) {
  auto stub = dogwatch::core::Core::NewStub(dogwatch::ipc::CreateUnixChannel(socket, 64 << 20));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 500ms);
  dogwatch::core::HealthResponse response;
  return stub->Health(&context, dogwatch::core::HealthRequest(), &response).ok();
}

std::optional<dogwatch::core::ComponentStatus> Component(const std::string& socket, const std::string& name) {
  auto stub = dogwatch::core::Core::NewStub(dogwatch::ipc::CreateUnixChannel(socket, 64 << 20));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 5s);
  dogwatch::core::StatusResponse response;
  if (!stub->GetStatus(&context, dogwatch::core::StatusRequest(), &response).ok()) return std::nullopt;
  for (const auto& c : response.components()) {
    if (c.name() == name) return c;
  }
  return std::nullopt;
}

// `prefix` runs the agent under another command (unshare for the sidecar test).
std::unique_ptr<Process> StartAgent(const Setup& setup, const std::string& config,
                                    std::vector<std::string> prefix = {}) {
  std::vector<std::string> argv = std::move(prefix);
  argv.insert(argv.end(), {Bin("agent"), "run", "-c", config});
  auto agent = std::make_unique<Process>(std::move(argv), setup.Env(), setup.dir.path(), "agent");
  bool up = WaitFor([&] { return CoreUp(setup.socket) || !agent->Running(); }, 15s);
  INFO("agent stderr:\n" << agent->Stderr());
  REQUIRE(up);
  REQUIRE(agent->Running());
  return agent;
}

// A standalone intake that requires the API key.
struct Intake {
  TempDir dir;
  int port = FreePort();
  std::unique_ptr<Process> process;
  Intake() {
    process = std::make_unique<Process>(
        std::vector<std::string>{Bin("agent"), "intake", "serve", "--port", std::to_string(port), "--dir",
                                 dir.File("store"), "--api-key", kApiKey},
        std::map<std::string, std::string>{}, dir.path(), "intake");
    REQUIRE(WaitFor([&] { return HttpGet(Url("/dogwatch/intake/stats")).status == 200; }, 10s));
  }
  std::string Url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port) + path; }

  struct Stored {
    uint64_t seq = 0;
    std::string decoded_text;  // the intake's JSON, as served
    rapidjson::Document decoded;
    rapidjson::Document meta;
  };
  // Payloads received on `path` after `since` (decoded by the intake), oldest first.
  std::vector<std::unique_ptr<Stored>> Payloads(const std::string& path, uint64_t since = 0) const {
    std::vector<std::unique_ptr<Stored>> out;
    auto list =
        HttpGet(Url("/dogwatch/intake/payloads?path=" + path + "&limit=1000&since=" + std::to_string(since)));
    rapidjson::Document doc;
    doc.Parse(list.body.c_str());
    if (!doc.IsArray()) return out;
    for (const auto& meta : doc.GetArray()) {
      if (std::string(meta["path"].GetString()) != path) continue;
      auto stored = std::make_unique<Stored>();
      stored->seq = meta["seq"].GetUint64();
      rapidjson::StringBuffer buffer;
      rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
      meta.Accept(writer);
      stored->meta.Parse(buffer.GetString());
      auto decoded = HttpGet(Url("/dogwatch/intake/payloads/" + std::to_string(stored->seq)));
      if (decoded.status != 200) continue;
      stored->decoded_text = decoded.body;
      stored->decoded.Parse(decoded.body.c_str());
      if (!stored->decoded.IsObject()) continue;
      out.push_back(std::move(stored));
    }
    return out;
  }
};

// The process message of a decoded payload ({"header", "body"}, possibly under "payload").
const rapidjson::Value* Body(const rapidjson::Document& decoded, int* type) {
  const rapidjson::Value* root = &decoded;
  if (decoded.HasMember("payload") && decoded["payload"].IsObject()) root = &decoded["payload"];
  if (!root->HasMember("header") || !root->HasMember("body") || !(*root)["body"].IsObject()) return nullptr;
  *type = (*root)["header"]["type"].GetInt();
  return &(*root)["body"];
}

std::string Str(const rapidjson::Value& object, const char* key) {
  if (!object.IsObject() || !object.HasMember(key)) return "";
  const auto& v = object[key];
  return v.IsString() ? v.GetString() : "";
}
double Num(const rapidjson::Value& object, const char* key) {
  if (!object.IsObject() || !object.HasMember(key)) return 0;
  const auto& v = object[key];
  if (v.IsNumber()) return v.GetDouble();
  if (v.IsString()) return std::atof(v.GetString());  // 64-bit integers are JSON strings
  return 0;
}

// The first process (type 12 body) entry for `pid` in the newest payload holding it that satisfies
// `accept`; copies it into `out`.
bool FindProcess(const Intake& intake, int pid, const std::function<bool(const rapidjson::Value&)>& accept,
                 rapidjson::Document* out) {
  auto payloads = intake.Payloads("/api/v1/collector");
  for (auto it = payloads.rbegin(); it != payloads.rend(); ++it) {
    int type = 0;
    const rapidjson::Value* body = Body((*it)->decoded, &type);
    if (body == nullptr || type != 12 || !body->HasMember("processes")) continue;
    for (const auto& process : (*body)["processes"].GetArray()) {
      if (process["pid"].GetInt() == pid && accept(process)) {
        out->CopyFrom(process, out->GetAllocator());
        return true;
      }
    }
  }
  return false;
}

std::string Header(const rapidjson::Document& meta, const std::string& name) {
  if (!meta.IsObject() || !meta.HasMember("headers")) return "";
  for (auto it = meta["headers"].MemberBegin(); it != meta["headers"].MemberEnd(); ++it) {
    std::string key = it->name.GetString();
    if (key.size() == name.size() && strncasecmp(key.c_str(), name.c_str(), key.size()) == 0)
      return it->value.GetString();
  }
  return "";
}

int64_t VmRssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return -1;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

CommandResult Podman(std::vector<std::string> args) {
  std::vector<std::string> argv = {"/usr/bin/env", "podman"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, {}, 60s);
}

// Removes the container whatever happens in the test (retried once; a failure is printed).
struct ContainerGuard {
  std::string name;
  ~ContainerGuard() {
    for (int attempt = 0; attempt < 2; ++attempt) {
      CommandResult rm = Podman({"rm", "-f", "-t", "0", name});
      if (rm.exit_code == 0) return;
      std::cerr << "process_agent_test: podman rm -f " << name << " failed: " << rm.out << rm.err << "\n";
    }
  }
};

}  // namespace

TEST_CASE("process-agent: a busy child with a secret comes back scrubbed, with ppid, user and CPU %",
          "[integration][process-agent]") {
  Setup setup;
  Intake intake;
  // The child: a busy loop whose command line carries a password.
  Process child({"/bin/sh", "-c", "while :; do :; done", "dw-busy-child", "--password=hunter2"}, {},
                setup.dir.path(), "busy-child");
  REQUIRE(child.Running());
  std::string config = setup.WriteConfig(
      intake.Url(""),
      "system_probe_config:\n  sysprobe_socket: " + setup.dir.File("no-sysprobe.sock") +
          "\nprocess_config:\n  process_dd_url: " + intake.Url("") +
          "\n  process_collection:\n    enabled: true\n  container_collection:\n    enabled: false\n"
          "  intervals:\n    process: 1\n");
  auto agent = StartAgent(setup, config);

  rapidjson::Document found;
  bool seen = WaitFor(
      [&] {
        return FindProcess(
            intake, child.pid(), [](const rapidjson::Value& p) { return Num(p["cpu"], "totalPct") > 20; },
            &found);
      },
      30s);
  INFO("agent stderr:\n" << agent->Stderr());
  REQUIRE(seen);
  const rapidjson::Value& command = found["command"];
  CHECK(Num(command, "ppid") == getpid());
  std::vector<std::string> args;
  for (const auto& arg : command["args"].GetArray()) args.push_back(arg.GetString());
  CHECK(args == std::vector<std::string>{"/bin/sh", "-c", "while", ":;", "do", ":;", "done", "dw-busy-child",
                                         "--password=********"});
  passwd* pw = getpwuid(getuid());
  REQUIRE(pw != nullptr);
  CHECK(Str(found["user"], "name") == pw->pw_name);
  CHECK(Num(found["user"], "uid") == getuid());
  INFO("cpu " << Num(found["cpu"], "totalPct"));
  CHECK(Num(found["cpu"], "totalPct") > 20);
  // One thread cannot use more than one core; the process and system clocks are sampled a few
  // microseconds apart, so allow a little skew above 100.
  CHECK(Num(found["cpu"], "totalPct") <= 103);
  CHECK(Num(found["cpu"], "numThreads") == 1);
  CHECK(Str(found, "state") != "");
  CHECK(Num(found, "createTime") > 1.7e12);
  CHECK(Str(command, "exe").find("sh") != std::string::npos);

  // Every stored process payload: type 12 with the agent's headers, and the password nowhere.
  auto payloads = intake.Payloads("/api/v1/collector");
  REQUIRE(!payloads.empty());
  for (const auto& payload : payloads) {
    CHECK(payload->decoded_text.find("hunter2") == std::string::npos);
    int type = 0;
    REQUIRE(Body(payload->decoded, &type) != nullptr);
    CHECK(type == 12);
    CHECK(Header(payload->meta, "Content-Type") == "application/x-protobuf");
    CHECK(!Header(payload->meta, "X-Dd-Hostname").empty());
    CHECK(!Header(payload->meta, "X-DD-Request-ID").empty());
    CHECK(Str(payload->meta, "api_key_hint") == kApiKey.substr(kApiKey.size() - 4));
  }
  // Datadog's real-time checks wait for the backend's signal: not scheduled by default.
  CHECK(intake.Payloads("/api/v1/container").empty());

  // Status counters reach the core.
  std::optional<dogwatch::core::ComponentStatus> status;
  REQUIRE(WaitFor(
      [&] {
        status = Component(setup.socket, "process-agent");
        return status && status->counters().count("process_payloads") &&
               status->counters().at("process_payloads") > 0;
      },
      20s));
  CHECK(status->counters().at("process_runs") >= 2);
  CHECK(status->counters().at("process_submit_errors") == 0);
  CHECK(status->counters().at("proc_processes") > 0);
  // Processes /proc refuses io or fd for (other users', or ptrace-protected even from root) are
  // asked of system-probe; without its socket they stay unreadable and status says so.
  if (status->counters().at("proc_unreadable_io") > 0 || status->counters().at("proc_unreadable_fd") > 0) {
    const std::string socket = setup.dir.File("no-sysprobe.sock");
    const std::string info = status->info().at("privileged_stats");
    INFO(info);
    CHECK(info.rfind("partial: system-probe (" + socket + ") unavailable, io/fd of ", 0) == 0);
    CHECK(info.find("system-probe is not running (no socket at " + socket + ")") != std::string::npos);
    CHECK(status->counters().at("privileged_errors") > 0);
  } else {
    CHECK(status->info().at("privileged_stats") == "procfs: every process readable");
    CHECK(status->counters().at("privileged_requests") == 0);
  }

  // Steady-state memory of the running process-agent (printed for the benchmark record).
  pid_t process_agent = status->pid();
  std::this_thread::sleep_for(3s);
  std::cout << "process_agent_test: process-agent VmRSS " << VmRssKiB(process_agent) << " KiB after "
            << status->counters().at("process_runs") + 3 << " process runs\n";

  // `process-agent check` runs without the core and scrubs the same way.
  CommandResult check =
      RunCommand({Bin("process-agent"), "-c", config, "check", "process", "--json"}, setup.Env(), 30s);
  INFO("check stderr: " << check.err);
  REQUIRE(check.exit_code == 0);
  CHECK(check.out.find("hunter2") == std::string::npos);
  CHECK(check.out.find("dw-busy-child") != std::string::npos);
  CHECK(check.out.find("--password=********") != std::string::npos);
  rapidjson::Document doc;
  doc.Parse(check.out.c_str());
  REQUIRE(doc.IsObject());
  CHECK(Str(doc, "type") == "CollectorProc");
  CommandResult bad = RunCommand({Bin("process-agent"), "check", "nope"}, {}, 10s);
  CHECK(bad.exit_code == 2);

  agent->Signal(SIGTERM);
  CHECK(agent->Wait(20s) == 0);
}

// Real-time payloads (type 27) on /api/v1/collector after `since`, oldest first, as seqs.
std::vector<uint64_t> RealTimePayloads(const Intake& intake, uint64_t since = 0) {
  std::vector<uint64_t> out;
  for (const auto& payload : intake.Payloads("/api/v1/collector", since)) {
    int type = 0;
    if (Body(payload->decoded, &type) != nullptr && type == 27) out.push_back(payload->seq);
  }
  return out;
}

uint64_t LastSeq(const Intake& intake) {
  auto payloads = intake.Payloads("/api/v1/collector");
  return payloads.empty() ? 0 : payloads.back()->seq;
}

TEST_CASE("process-agent: real-time checks run only while the intake's ResCollector has active clients",
          "[integration][process-agent]") {
  Setup setup;
  Intake intake;  // answers activeClients 0 until told otherwise
  Process child({"/bin/sh", "-c", "while :; do :; done", "dw-rt-child"}, {}, setup.dir.path(), "rt-child");
  REQUIRE(child.Running());
  std::string config = setup.WriteConfig(
      intake.Url(""),
      "process_config:\n  process_dd_url: " + intake.Url("") +
          "\n  process_collection:\n    enabled: true\n  container_collection:\n    enabled: false\n"
          "  intervals:\n    process: 1\n    process_realtime: 1\n");
  auto agent = StartAgent(setup, config);
  auto realtime_info = [&] {
    auto status = Component(setup.socket, "process-agent");
    return status && status->info().count("realtime") ? status->info().at("realtime") : std::string();
  };

  // Several process payloads, each answered with activeClients 0: no real-time payload.
  REQUIRE(WaitFor([&] { return intake.Payloads("/api/v1/collector").size() >= 4; }, 30s));
  INFO("agent stderr:\n" << agent->Stderr());
  CHECK(RealTimePayloads(intake).empty());
  REQUIRE(WaitFor([&] { return realtime_info() == "off (no active clients)"; }, 20s));

  // Someone opens the live view: the next reply says activeClients 1, real-time payloads follow,
  // carrying the busy child's stats.
  REQUIRE(HttpPost(intake.Url("/dogwatch/intake/process_status?active_clients=1&interval=1"), "").status ==
          200);
  const uint64_t switched_on_at = LastSeq(intake);
  bool child_seen = WaitFor(
      [&] {
        for (const auto& payload : intake.Payloads("/api/v1/collector", switched_on_at)) {
          int type = 0;
          const rapidjson::Value* body = Body(payload->decoded, &type);
          if (body == nullptr || type != 27 || !body->HasMember("stats")) continue;
          for (const auto& stat : (*body)["stats"].GetArray()) {
            if (stat["pid"].GetInt() == child.pid()) return true;
          }
        }
        return false;
      },
      20s);
  CHECK(child_seen);
  // Every real-time payload came after the intake's switch, none before.
  for (uint64_t seq : RealTimePayloads(intake)) CHECK(seq > switched_on_at);
  REQUIRE(WaitFor([&] { return realtime_info().rfind("on (1 active clients)", 0) == 0; }, 20s));
  auto status = Component(setup.socket, "process-agent");
  REQUIRE(status);
  CHECK(status->counters().at("realtime_enabled") == 1);
  CHECK(status->counters().at("intake_replies") > 0);
  CHECK(status->counters().at("intake_reply_errors") == 0);
  CHECK(status->counters().at("rtprocess_payloads") > 0);
  CHECK(status->counters().at("rtprocess_submit_errors") == 0);

  // The live view closes: real time stops with the next reply.
  REQUIRE(HttpPost(intake.Url("/dogwatch/intake/process_status?active_clients=0"), "").status == 200);
  REQUIRE(WaitFor([&] { return realtime_info() == "off (no active clients)"; }, 20s));
  // A run that had already started may still land; after that, nothing.
  std::this_thread::sleep_for(2s);
  const uint64_t switched_off_at = LastSeq(intake);
  std::this_thread::sleep_for(4s);
  CHECK(RealTimePayloads(intake, switched_off_at).empty());
  CHECK(intake.Payloads("/api/v1/collector", switched_off_at).size() >= 2);  // process checks go on

  agent->Signal(SIGTERM);
  CHECK(agent->Wait(20s) == 0);
}

TEST_CASE("process-agent: a real podman container in CollectorContainer and its processes in CollectorProc",
          "[integration][process-agent][podman]") {
  REQUIRE(geteuid() == 0);  // podman here runs rootful; CI runs the tests as root
  CommandResult podman_setup =
      RunCommand({"/bin/bash", std::string(DOGWATCH_TEST_SOURCE_DIR) + "/tests/support/podman.sh"}, {}, 300s);
  INFO("tests/support/podman.sh failed:\n" << podman_setup.out << podman_setup.err);
  REQUIRE(podman_setup.exit_code == 0);

  const std::string name = "dw-pa-" + std::to_string(std::random_device{}() % 1000000000);
  ContainerGuard guard{name};
  CommandResult run = PodmanRun({"-d", "--name", name, "--label", "team=core", "--cpus", "0.5", "--memory",
                                 "64m", kImage, "sh", "-c", "while :; do :; done"},
                                name);
  INFO("podman run: " << run.out << run.err);
  REQUIRE(run.exit_code == 0);
  const std::string out = Trim(run.out);
  const std::string id = out.substr(out.size() >= 64 ? out.size() - 64 : 0);
  REQUIRE(id.size() == 64);

  Setup setup;
  Intake intake;
  std::string config = setup.WriteConfig(
      intake.Url(""),
      "container_runtime_socket: " + kPodmanSocket +
          "\ncontainer_labels_as_tags:\n  team: team\nprocess_config:\n  process_dd_url: " + intake.Url("") +
          "\n  process_collection:\n    enabled: true\n  container_collection:\n    enabled: true\n"
          "  intervals:\n    process: 1\n    container: 1\n");
  auto agent = StartAgent(setup, config);

  // CollectorContainer: the container with its limits, CPU, memory and the tagger's tags.
  rapidjson::Document container;
  bool seen = WaitFor(
      [&] {
        for (const auto& payload : intake.Payloads("/api/v1/container")) {
          int type = 0;
          const rapidjson::Value* body = Body(payload->decoded, &type);
          if (body == nullptr || type != 39 || !body->HasMember("containers")) continue;
          for (const auto& c : (*body)["containers"].GetArray()) {
            if (Str(c, "id") != id || Num(c, "totalPct") <= 0 || !c.HasMember("tags") || c["tags"].Empty())
              continue;
            container.CopyFrom(c, container.GetAllocator());
            return true;
          }
        }
        return false;
      },
      45s);
  INFO("agent stderr:\n" << agent->Stderr());
  REQUIRE(seen);
  CHECK(Str(container, "type") == "podman");
  CHECK(Str(container, "state") == "running");
  CHECK(Num(container, "cpuLimit") == Approx(50.0));
  CHECK(Num(container, "memoryLimit") == 64.0 * 1024 * 1024);
  INFO("container cpu % " << Num(container, "totalPct"));
  CHECK(Num(container, "totalPct") > 5);
  CHECK(Num(container, "totalPct") < 80);  // --cpus 0.5
  CHECK(Num(container, "memUsage") > 0);
  CHECK(Num(container, "threadCount") >= 1);
  CHECK(Num(container, "created") > 1.7e9);
  CHECK(Num(container, "started") >= Num(container, "created"));
  std::set<std::string> tags;
  for (const auto& tag : container["tags"].GetArray()) tags.insert(tag.GetString());
  CHECK(tags.count("container_name:" + name) == 1);
  CHECK(tags.count("container_id:" + id) == 1);
  CHECK(tags.count("image_name:localhost/dogwatch-test-busybox") == 1);
  CHECK(tags.count("short_image:dogwatch-test-busybox") == 1);
  CHECK(tags.count("image_tag:1") == 1);
  CHECK(tags.count("team:core") == 1);

  // CollectorProc: the container's busy sh carries its containerId; the Container rides along.
  bool proc_seen = WaitFor(
      [&] {
        for (const auto& payload : intake.Payloads("/api/v1/collector")) {
          int type = 0;
          const rapidjson::Value* body = Body(payload->decoded, &type);
          if (body == nullptr || type != 12 || !body->HasMember("processes") ||
              !body->HasMember("containers"))
            continue;
          bool has_container = false;
          for (const auto& c : (*body)["containers"].GetArray()) has_container |= Str(c, "id") == id;
          for (const auto& p : (*body)["processes"].GetArray()) {
            if (Str(p, "containerId") != id || !has_container) continue;
            std::string args;
            for (const auto& arg : p["command"]["args"].GetArray())
              args += std::string(arg.GetString()) + " ";
            if (args.find("while") != std::string::npos && Num(p["cpu"], "totalPct") > 5) return true;
          }
        }
        return false;
      },
      30s);
  CHECK(proc_seen);
  CHECK(Header(intake.Payloads("/api/v1/container").back()->meta, "X-Dd-ContainerCount") != "");

  agent->Signal(SIGTERM);
  CHECK(agent->Wait(20s) == 0);
}

// Issue 6 end to end: loopback traffic -> system-probe's eBPF programs -> GetConnections ->
// process-agent's connections check -> the core's Submit -> the intake, which decodes
// CollectorConnections. The client is a child process so its PID differs from the server's.
TEST_CASE("connections: loopback TCP traffic reaches the intake as CollectorConnections",
          "[integration][connections]") {
  Setup setup;
  Intake intake;
  std::string config = setup.WriteConfig(
      intake.Url(""),
      "system_probe_config:\n  enabled: true\n  sysprobe_socket: " + setup.dir.File("sysprobe.sock") +
          "\nnetwork_config:\n  enabled: true\nprocess_config:\n  process_dd_url: " + intake.Url("") +
          "\n  process_collection:\n    enabled: false\n  container_collection:\n    enabled: false\n"
          "  intervals:\n    connections: 5\n");
  auto agent = StartAgent(setup, config);
  // The process-agent's first successful check registers it with system-probe; traffic after that
  // is its delta. A check that ran before system-probe was serving (its socket not there yet)
  // registered nothing, and a connection opened and closed before the registration is, by the
  // per-client semantics, never this client's.
  REQUIRE(WaitFor(
      [&] {
        auto status = Component(setup.socket, "process-agent");
        if (!status) return false;
        auto counter = [&](const char* name) {
          auto it = status->counters().find(name);
          return it == status->counters().end() ? int64_t{0} : static_cast<int64_t>(it->second);
        };
        return counter("connections_runs") > counter("connections_sysprobe_errors");
      },
      30s));

  auto loopback = dogwatch::testing::ListenOnLoopback(4);
  REQUIRE(loopback.fd >= 0);
  const int listener = loopback.fd;
  sockaddr_in addr = loopback.addr;
  const int server_port = loopback.port();
  int ports[2];
  REQUIRE(pipe(ports) == 0);
  const pid_t client = fork();
  REQUIRE(client >= 0);
  if (client == 0) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) _exit(1);
    sockaddr_in local{};
    socklen_t local_len = sizeof(local);
    getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len);
    uint16_t port = ntohs(local.sin_port);
    if (write(ports[1], &port, sizeof(port)) != sizeof(port)) _exit(2);
    std::string up(54321, 'u');
    if (send(fd, up.data(), up.size(), 0) != static_cast<ssize_t>(up.size())) _exit(3);
    char buffer[4096];
    size_t got = 0;
    while (got < 12345) {
      ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) _exit(4);
      got += static_cast<size_t>(n);
    }
    close(fd);
    _exit(0);
  }
  int conn = accept(listener, nullptr, nullptr);
  REQUIRE(conn >= 0);
  std::vector<char> buffer(65536);
  size_t got = 0;
  while (got < 54321) {
    ssize_t n = recv(conn, buffer.data(), buffer.size(), 0);
    REQUIRE(n > 0);
    got += static_cast<size_t>(n);
  }
  std::string down(12345, 'd');
  REQUIRE(send(conn, down.data(), down.size(), 0) == static_cast<ssize_t>(down.size()));
  int status = 0;
  waitpid(client, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  close(conn);
  close(listener);
  uint16_t client_port = 0;
  REQUIRE(read(ports[0], &client_port, sizeof(client_port)) == sizeof(client_port));
  close(ports[0]);
  close(ports[1]);

  // Deltas across every payload until the close is reported.
  double sent = 0, received = 0, closed = 0, established = 0;
  int pid = 0;
  std::string direction, family, type, hostname;
  double server_received = 0;
  int server_pid = 0;
  std::string server_direction;
  uint64_t since = 0;
  bool done = WaitFor(
      [&] {
        for (const auto& payload : intake.Payloads("/api/v1/connections", since)) {
          since = std::max(since, payload->seq);
          int message_type = 0;
          const rapidjson::Value* body = Body(payload->decoded, &message_type);
          if (body == nullptr || message_type != 22 || !body->HasMember("connections")) continue;
          hostname = Str(*body, "hostName");
          CHECK(Header(payload->meta, "Content-Type") == "application/x-protobuf");
          CHECK(!Header(payload->meta, "X-DD-Request-ID").empty());
          for (const auto& c : (*body)["connections"].GetArray()) {
            const int lport = static_cast<int>(Num(c["laddr"], "port"));
            const int rport = static_cast<int>(Num(c["raddr"], "port"));
            if (lport == client_port && rport == server_port) {
              sent += Num(c, "lastBytesSent");
              received += Num(c, "lastBytesReceived");
              closed += Num(c, "lastTcpClosed");
              established += Num(c, "lastTcpEstablished");
              if (Num(c, "pid") != 0) pid = static_cast<int>(Num(c, "pid"));
              direction = Str(c, "direction");
              family = Str(c, "family");
              type = Str(c, "type");
            } else if (lport == server_port && rport == client_port) {
              server_received += Num(c, "lastBytesReceived");
              if (Num(c, "pid") != 0) server_pid = static_cast<int>(Num(c, "pid"));
              server_direction = Str(c, "direction");
            }
          }
        }
        return closed > 0 && server_received >= 54321;
      },
      40s);
  INFO("agent stderr:\n" << agent->Stderr());
  INFO("client flow " << client_port << "->" << server_port << ": sent " << sent << " received " << received
                      << " closed " << closed << "; server received " << server_received
                      << "; last payload seq " << since);
  REQUIRE(done);
  CHECK(sent == 54321);
  CHECK(received == 12345);
  CHECK(closed == 1);
  CHECK(established == 1);
  CHECK(pid == client);
  // tcp and v4 are the enums' zero values: proto JSON may omit them.
  CHECK(direction == "outgoing");
  CHECK((type.empty() || type == "tcp"));
  CHECK((family.empty() || family == "v4"));
  CHECK(server_received == 54321);
  CHECK(server_pid == getpid());
  CHECK(server_direction == "incoming");
  CHECK(!hostname.empty());
  agent->Signal(SIGTERM);
  CHECK(agent->Wait(20s) == 0);
}

// Sidecar mode: the suite in a PID namespace of its own with its own /proc, as in a pod with
// shareProcessNamespace: the process-agent says so in its status, reports only the processes that
// namespace shows, and runs nothing host-level (no connections check even though it is enabled).
TEST_CASE("process-agent: in a pod's PID namespace it reports only what the pod shows",
          "[integration][process-agent]") {
  Setup setup;
  Intake intake;
  std::string config = setup.WriteConfig(
      intake.Url(""),
      "process_config:\n  process_dd_url: " + intake.Url("") +
          "\n  process_collection:\n    enabled: true\n  container_collection:\n    enabled: false\n"
          "  intervals:\n    process: 1\nnetwork_config:\n  enabled: true\n");
  // --kill-child: the agent (pid 1 inside) gets SIGTERM when unshare goes, whatever ends it.
  auto agent = StartAgent(setup, config,
                          {"/usr/bin/unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGTERM"});

  std::set<std::string> commands;
  std::set<int> pids;
  bool seen = WaitFor(
      [&] {
        for (const auto& payload : intake.Payloads("/api/v1/collector")) {
          int type = 0;
          const rapidjson::Value* body = Body(payload->decoded, &type);
          if (body == nullptr || type != 12 || !body->HasMember("processes")) continue;
          commands.clear();
          pids.clear();
          for (const auto& process : (*body)["processes"].GetArray()) {
            pids.insert(process["pid"].GetInt());
            std::string exe = Str(process["command"], "exe");
            commands.insert(exe.substr(exe.rfind('/') + 1));
          }
          return !pids.empty();
        }
        return false;
      },
      30s);
  REQUIRE(seen);
  // Only the namespace's own processes: the core as pid 1 and the process-agent it started.
  INFO("pids " << pids.size());
  CHECK(pids.count(1) == 1);
  CHECK(pids.size() <= 3);
  CHECK(pids.count(getpid()) == 0);
  CHECK(commands.count("agent") == 1);
  CHECK(commands.count("process-agent") == 1);

  std::optional<dogwatch::core::ComponentStatus> status;
  REQUIRE(WaitFor(
      [&] {
        status = Component(setup.socket, "process-agent");
        return status && status->info().count("mode");
      },
      20s));
  CHECK(status->info().at("mode").rfind("sidecar: pid namespace", 0) == 0);
  CHECK(status->counters().count("connections_runs") == 0);
  // unshare ignores SIGTERM while it waits for its child; killing it hands SIGTERM to the agent,
  // which is PID 1 of its namespace: it must still stop cleanly (its socket goes away).
  agent->Signal(SIGKILL);
  agent->Wait(5s);
  CHECK(WaitFor([&] { return access(setup.socket.c_str(), F_OK) != 0; }, 20s));
}
