#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "agent-core/cli/status_format.h"
#include "agent-core/core/core_service.h"
#include "agent-core/core/status_registry.h"
#include "agent-core/core/supervisor.h"

using dogwatch::agent::CoreService;
using dogwatch::agent::StatusRegistry;
using dogwatch::agent::Supervisor;

namespace {

dogwatch::core::SubmitRequest ValidRequest() {
  dogwatch::core::SubmitRequest request;
  request.set_track(dogwatch::core::TRACK_TRACES);
  request.set_path("/api/v0.2/traces");
  auto* header = request.add_headers();
  header->set_name("Content-Encoding");
  header->set_value("gzip");
  request.set_body("x");
  return request;
}

std::string Script(const std::string& body) {
  char dir[] = "/tmp/dogwatch-sup-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  std::string path = std::string(dir) + "/child.sh";
  std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
  chmod(path.c_str(), 0700);
  return path;
}

}  // namespace

TEST_CASE("Submit requests are validated before they reach the forwarder") {
  CHECK(CoreService::ValidateSubmit(ValidRequest()).ok());

  auto request = ValidRequest();
  request.set_track(dogwatch::core::TRACK_UNSPECIFIED);
  CHECK_THAT(std::string(CoreService::ValidateSubmit(request).message()), Catch::Contains("track"));

  request = ValidRequest();
  request.set_path("api/v0.2/traces");
  CHECK_THAT(std::string(CoreService::ValidateSubmit(request).message()), Catch::Contains("path"));

  request = ValidRequest();
  request.mutable_headers(0)->set_value("gzip\r\nX-Injected: 1");
  CHECK_THAT(std::string(CoreService::ValidateSubmit(request).message()), Catch::Contains("line break"));

  request = ValidRequest();
  request.mutable_headers(0)->set_name("DD-API-KEY");
  CHECK_THAT(std::string(CoreService::ValidateSubmit(request).message()), Catch::Contains("set by the core"));

  request = ValidRequest();
  request.mutable_headers(0)->set_name("Bad Name");
  CHECK_THAT(std::string(CoreService::ValidateSubmit(request).message()), Catch::Contains("not a token"));

  request = ValidRequest();
  for (int i = 0; i < 40; ++i) request.add_headers()->set_name("X-A");
  CHECK_THAT(std::string(CoreService::ValidateSubmit(request).message()), Catch::Contains("more than"));
}

TEST_CASE("the status registry bounds components and report sizes") {
  StatusRegistry registry(absl::Seconds(10));
  dogwatch::core::ComponentStatus status;
  status.set_name("trace-agent");
  status.set_last_error(std::string(5000, 'e'));
  REQUIRE(registry.Update(status).ok());
  auto snapshot = registry.Snapshot();
  REQUIRE(snapshot.size() == 1);
  CHECK(snapshot[0].last_error().size() == StatusRegistry::kMaxStringBytes);

  for (int i = 0; i < 40; ++i) {
    dogwatch::core::ComponentStatus other;
    other.set_name("c" + std::to_string(i));
    (void)registry.Update(other);
  }
  CHECK(registry.Snapshot().size() == StatusRegistry::kMaxComponents);
  CHECK(registry.refused_reports() == 40 - (StatusRegistry::kMaxComponents - 1));

  dogwatch::core::ComponentStatus noisy;
  noisy.set_name("trace-agent");
  for (int i = 0; i < 600; ++i) (*noisy.mutable_counters())["k" + std::to_string(i)] = i;
  CHECK_FALSE(registry.Update(noisy).ok());
  dogwatch::core::ComponentStatus unnamed;
  CHECK_FALSE(registry.Update(unnamed).ok());
}

TEST_CASE("a component that stops reporting is shown stale") {
  StatusRegistry registry(absl::Milliseconds(20));
  dogwatch::core::ComponentStatus status;
  status.set_name("process-agent");
  status.set_state("running");
  REQUIRE(registry.Update(status).ok());
  CHECK(registry.StaleComponents().empty());
  absl::SleepFor(absl::Milliseconds(100));
  CHECK(registry.StaleComponents() == std::vector<std::string>{"process-agent"});
  CHECK(registry.Snapshot()[0].state() == "stale");
}

TEST_CASE("the supervisor restarts a crashing child with backoff and stops children on SIGTERM") {
  std::string crasher = Script("exit 3");
  std::string sleeper = Script("trap 'exit 0' TERM\nwhile true; do sleep 0.05; done");
  Supervisor::Options options;
  options.initial_backoff = absl::Milliseconds(50);
  options.max_backoff = absl::Milliseconds(200);
  Supervisor supervisor(options);
  REQUIRE(supervisor.Start({{"crasher", crasher, {}, {}}, {"sleeper", sleeper, {}, {"DW_TEST=1"}}}).ok());
  absl::SleepFor(absl::Milliseconds(800));
  auto states = supervisor.States();
  REQUIRE(states.size() == 2);
  CHECK(states[0].restarts >= 2);
  CHECK(states[0].restarts <= 12);  // backoff doubles: nowhere near a tight loop
  CHECK(states[0].last_exit == "exit 3");
  CHECK(states[1].pid > 0);
  CHECK(states[1].restarts == 0);
  pid_t sleeper_pid = states[1].pid;
  supervisor.Stop(absl::Seconds(5));
  CHECK(kill(sleeper_pid, 0) != 0);                     // gone
  CHECK(supervisor.States()[1].last_exit == "exit 0");  // ended by its TERM trap, not SIGKILL
}

TEST_CASE("the supervisor refuses a missing executable up front") {
  Supervisor supervisor;
  auto status = supervisor.Start({{"trace-agent", "/nonexistent/trace-agent", {}, {}}});
  REQUIRE_FALSE(status.ok());
  CHECK_THAT(std::string(status.message()), Catch::Contains("supervisor.bin_dir"));
}

TEST_CASE("human status output shows components, forwarder counters and errors") {
  dogwatch::core::StatusResponse status;
  status.set_hostname("h1");
  status.mutable_core()->set_name("agent");
  status.mutable_core()->set_state("running");
  auto* trace = status.add_components();
  trace->set_name("trace-agent");
  trace->set_state("running");
  trace->set_last_error("decode failed");
  trace->set_last_error_unix_ms(1000);
  (*trace->mutable_counters())["spans_received"] = 42;
  status.mutable_forwarder()->set_destination("local-intake");
  (*status.mutable_forwarder()->mutable_counters())["dropped_invalid_api_key"] = 3;
  std::string text = dogwatch::agent::FormatStatus(status, 61000);
  CHECK_THAT(text, Catch::Contains("trace-agent"));
  CHECK_THAT(text, Catch::Contains("spans_received=42"));
  CHECK_THAT(text, Catch::Contains("last error (60s ago): decode failed"));
  CHECK_THAT(text, Catch::Contains("dropped_invalid_api_key=3"));
  CHECK_THAT(text, Catch::Contains("Forwarder → local-intake"));
}
