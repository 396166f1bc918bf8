#include "agent-core/forwarder/forwarder.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <thread>

#include "agent-core/forwarder/tests/test_http_server.h"
#include "agent-core/forwarder/transaction_file.h"
#include "common/log/log.h"

namespace dogwatch::forwarder {
namespace {

using testing::Reply;
using testing::TestHttpServer;
using testing::UnusedPort;

constexpr char kKey[] = "0123456789abcdef0123456789abcdef";
constexpr char kOtherKey[] = "fedcba9876543210fedcba987654wxyz";
constexpr char kPath[] = "/api/v2/series";

void QuietLogs() { (void)log::Init("forwarder_test", "critical"); }

struct TempDir {
  TempDir() {
    char pattern[] = "/tmp/dogwatch-fwd-test-XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::string path;
};

std::string UrlForPort(uint16_t port) { return "http://127.0.0.1:" + std::to_string(port); }

// Fast retries so tests do not wait on production-sized backoffs.
Options TestOptions(const std::string& url, const std::string& key = kKey) {
  Options options;
  options.destinations[core::TRACK_METRICS] = {Destination{url, key}};
  options.backoff_base = absl::Milliseconds(20);
  options.backoff_max = absl::Milliseconds(80);
  options.agent_version = "7.99.0";
  return options;
}

Options WithDisk(Options options, const std::string& dir, size_t max_bytes = 64 << 20) {
  options.storage_path = dir;
  options.storage_max_bytes = max_bytes;
  // Test machines may have fuller disks than production; only the byte budget matters here.
  options.storage_max_disk_ratio = 1.0;
  return options;
}

std::unique_ptr<Transport> MakeTransport() {
  http::ClientOptions client;
  client.timeout = absl::Seconds(10);
  client.connect_timeout = absl::Seconds(2);
  return std::make_unique<HttpTransport>(client);
}

std::vector<std::pair<std::string, std::string>> PayloadHeaders() {
  return {{"Content-Type", "application/x-protobuf"}, {"Content-Encoding", "deflate"}};
}

absl::StatusOr<int> SubmitBody(Forwarder& forwarder, std::string body) {
  return forwarder.Submit(core::TRACK_METRICS, kPath, PayloadHeaders(), std::move(body), "test");
}

// What one queued transaction of `body_size` bytes costs in the memory bound and on disk.
size_t AccountedBytes(size_t body_size) {
  size_t bytes = body_size + std::string(kPath).size();
  for (const auto& [name, value] : PayloadHeaders()) bytes += name.size() + value.size();
  return bytes;
}
size_t FileBytes(size_t body_size) {
  TransactionMeta meta;
  meta.path = kPath;
  meta.headers = PayloadHeaders();
  return TransactionFileSize(meta, body_size);
}

int64_t Counter(const Forwarder& forwarder, const std::string& name) {
  const core::ForwarderStatus status = forwarder.Status();
  auto it = status.counters().find(name);
  return it == status.counters().end() ? -1 : it->second;
}

bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout = absl::Seconds(15)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return condition();
}

std::vector<std::string> Bodies(const TestHttpServer& server) {
  std::vector<std::string> bodies;
  for (const auto& request : server.Requests()) bodies.push_back(request.body);
  return bodies;
}

// Retries repeat the head, so drop consecutive repeats to get the delivery order.
std::vector<std::string> Distinct(const std::vector<std::string>& bodies) {
  std::vector<std::string> out;
  for (const auto& body : bodies) {
    if (out.empty() || out.back() != body) out.push_back(body);
  }
  return out;
}

std::vector<std::string> Numbered(const std::string& prefix, int count, size_t pad = 0) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    std::string body = prefix + std::to_string(i);
    if (body.size() < pad) body.append(pad - body.size(), '.');
    out.push_back(body);
  }
  return out;
}

size_t CountFiles(const std::string& dir, const std::string& suffix) {
  size_t count = 0;
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      ++count;
    }
  }
  return count;
}

// Every transaction this run knew about is accounted for exactly once.
void CheckConservation(const Forwarder& forwarder) {
  const core::ForwarderStatus status = forwarder.Status();
  const auto& c = status.counters();
  int64_t queued = 0;
  for (const auto& domain : status.domains()) queued += domain.queued_transactions();
  const int64_t in = c.at("submitted") + c.at("requeued_from_disk");
  const int64_t out = c.at("sent") + c.at("dropped_invalid_api_key") + c.at("dropped_bad_request") +
                      c.at("dropped_too_large") + c.at("dropped_queue_full") + c.at("dropped_disk_full") +
                      c.at("dropped_corrupt_file") + c.at("dropped_shutdown") + queued;
  CHECK(in == out);
}

TEST_CASE("forwarder delivers with the API key and agent headers", "[forwarder]") {
  QuietLogs();
  TestHttpServer server;
  REQUIRE(server.Listen().ok());
  Forwarder forwarder(TestOptions(server.base_url()), MakeTransport());
  REQUIRE(forwarder.Start().ok());

  auto copies = SubmitBody(forwarder, "payload-1");
  REQUIRE(copies.ok());
  CHECK(*copies == 1);
  // A submitter cannot choose the API key.
  auto headers = PayloadHeaders();
  headers.emplace_back("dd-api-key", "not-the-key");
  REQUIRE(forwarder.Submit(core::TRACK_METRICS, kPath, headers, "payload-2", "test").ok());

  REQUIRE(WaitUntil([&] { return Counter(forwarder, "sent") == 2; }));
  const auto requests = server.Requests();
  REQUIRE(requests.size() == 2);
  for (const auto& request : requests) {
    CHECK(request.method == "POST");
    CHECK(request.path == kPath);
    CHECK(request.Header("DD-API-KEY") == kKey);
    CHECK(request.Header("DD-Agent-Version") == "7.99.0");
    CHECK(request.Header("User-Agent") == "datadog-agent/7.99.0");
    CHECK(request.Header("Content-Type") == "application/x-protobuf");
    CHECK(request.Header("Content-Encoding") == "deflate");
    int key_headers = 0;
    for (const auto& [name, value] : request.headers)
      key_headers += (name == "DD-API-KEY" || name == "dd-api-key");
    CHECK(key_headers == 1);
  }
  CHECK(requests[0].body == "payload-1");
  CHECK(requests[1].body == "payload-2");
  CHECK(Counter(forwarder, "submitted") == 2);
  CHECK(Counter(forwarder, "bytes_sent") == 18);
  CHECK(Counter(forwarder, "submitted_origin:test") == 2);
  const auto status = forwarder.Status();
  REQUIRE(status.domains_size() == 1);
  CHECK(status.domains(0).api_key_hint() == "***cdef");
  CHECK(status.destination() == "datadog");
  forwarder.Stop(absl::Seconds(1));
  CheckConservation(forwarder);
}

TEST_CASE("additional endpoints each get their own copy with their own key", "[forwarder]") {
  QuietLogs();
  TestHttpServer main_server, extra_server;
  REQUIRE(main_server.Listen().ok());
  REQUIRE(extra_server.Listen().ok());
  Options options = TestOptions(main_server.base_url());
  options.destinations[core::TRACK_METRICS].push_back({extra_server.base_url(), kOtherKey});
  options.destinations[core::TRACK_METRICS].push_back({main_server.base_url(), kKey});  // duplicate
  Forwarder forwarder(options, MakeTransport());
  REQUIRE(forwarder.Start().ok());

  auto copies = SubmitBody(forwarder, "series");
  REQUIRE(copies.ok());
  CHECK(*copies == 2);
  REQUIRE(WaitUntil([&] { return Counter(forwarder, "sent") == 2; }));
  REQUIRE(main_server.RequestCount() == 1);
  REQUIRE(extra_server.RequestCount() == 1);
  CHECK(main_server.Requests()[0].Header("DD-API-KEY") == kKey);
  CHECK(extra_server.Requests()[0].Header("DD-API-KEY") == kOtherKey);
  CHECK(extra_server.Requests()[0].body == "series");
  CHECK(Counter(forwarder, "submitted") == 2);
  CHECK(forwarder.Status().domains_size() == 2);

  // Another track has no destination.
  auto traces = forwarder.Submit(core::TRACK_TRACES, "/api/v0.2/traces", {}, "x", "trace-agent");
  CHECK(absl::IsFailedPrecondition(traces.status()));
  CHECK(Counter(forwarder, "rejected_no_destination") == 1);
  forwarder.Stop(absl::Seconds(1));
  CheckConservation(forwarder);
}

TEST_CASE("5xx is retried in order until delivered, nothing lost", "[forwarder]") {
  QuietLogs();
  TestHttpServer server;
  REQUIRE(server.Listen().ok());
  server.Script(Reply{500, "oops", {}, absl::ZeroDuration()}, 2);
  server.Script(Reply{503, "busy", {}, absl::ZeroDuration()}, 1);
  Forwarder forwarder(TestOptions(server.base_url()), MakeTransport());
  REQUIRE(forwarder.Start().ok());
  const auto bodies = Numbered("p", 5);
  for (const auto& body : bodies) REQUIRE(SubmitBody(forwarder, body).ok());

  REQUIRE(WaitUntil([&] { return Counter(forwarder, "sent") == 5; }));
  CHECK(Distinct(Bodies(server)) == bodies);
  CHECK(server.RequestCount() == 8);
  CHECK(Counter(forwarder, "retried") == 3);
  CHECK(Counter(forwarder, "submitted") == 5);
  forwarder.Stop(absl::Seconds(1));
  CheckConservation(forwarder);
}

TEST_CASE("refused connections are retried until the intake is back", "[forwarder]") {
  QuietLogs();
  const uint16_t port = UnusedPort();
  Forwarder forwarder(TestOptions(UrlForPort(port)), MakeTransport());
  REQUIRE(forwarder.Start().ok());
  const auto bodies = Numbered("r", 3);
  for (const auto& body : bodies) REQUIRE(SubmitBody(forwarder, body).ok());
  REQUIRE(WaitUntil([&] { return Counter(forwarder, "retried") >= 2; }));
  CHECK(Counter(forwarder, "sent") == 0);
  CHECK(forwarder.Status().domains(0).consecutive_errors() > 0);

  TestHttpServer server;
  REQUIRE(server.Listen(port).ok());
  REQUIRE(WaitUntil([&] { return Counter(forwarder, "sent") == 3; }));
  CHECK(Bodies(server) == bodies);  // the refused attempts never reached it
  forwarder.Stop(absl::Seconds(1));
  CheckConservation(forwarder);
}

TEST_CASE("400, 403 and 413 drop with their reason; 404 is retried", "[forwarder]") {
  QuietLogs();
  TestHttpServer server;
  REQUIRE(server.Listen().ok());
  server.Script(Reply{400, "bad", {}, absl::ZeroDuration()});
  server.Script(Reply{403, "forbidden", {}, absl::ZeroDuration()});
  server.Script(Reply{413, "too big", {}, absl::ZeroDuration()});
  server.Script(Reply{404, "where", {}, absl::ZeroDuration()});
  Forwarder forwarder(TestOptions(server.base_url()), MakeTransport());
  REQUIRE(forwarder.Start().ok());
  for (const auto& body : Numbered("d", 4)) REQUIRE(SubmitBody(forwarder, body).ok());

  REQUIRE(WaitUntil([&] { return Counter(forwarder, "sent") == 1; }));
  CHECK(Counter(forwarder, "dropped_bad_request") == 1);
  CHECK(Counter(forwarder, "dropped_invalid_api_key") == 1);
  CHECK(Counter(forwarder, "dropped_too_large") == 1);
  CHECK(Counter(forwarder, "retried") == 1);
  CHECK(Bodies(server) == std::vector<std::string>{"d0", "d1", "d2", "d3", "d3"});
  forwarder.Stop(absl::Seconds(1));
  CheckConservation(forwarder);
}

TEST_CASE("memory bound drops the oldest transactions when there is no disk queue", "[forwarder]") {
  QuietLogs();
  Options options = TestOptions(UrlForPort(UnusedPort()));
  // Long backoff: after the first failure the head waits, so which entries go is deterministic.
  options.backoff_base = absl::Seconds(10);
  options.backoff_max = absl::Seconds(20);
  options.memory_queue_max_bytes = 3 * AccountedBytes(250) + 10;
  Forwarder forwarder(options, MakeTransport());
  REQUIRE(forwarder.Start().ok());

  const auto bodies = Numbered("m", 5, 250);
  REQUIRE(SubmitBody(forwarder, bodies[0]).ok());
  REQUIRE(WaitUntil([&] { return Counter(forwarder, "retried") == 1; }));
  for (int i = 1; i < 5; ++i) REQUIRE(SubmitBody(forwarder, bodies[i]).ok());
  CHECK(Counter(forwarder, "dropped_queue_full") == 2);
  const auto status = forwarder.Status();
  CHECK(status.domains(0).queued_transactions() == 3);
  CHECK(status.domains(0).queued_bytes() == static_cast<int64_t>(3 * AccountedBytes(250)));
  CHECK(status.domains(0).backoff_until_unix_ms() > 0);

  // A payload that could never fit is refused, not accepted and then dropped.
  auto huge = SubmitBody(forwarder, std::string(options.memory_queue_max_bytes + 1, 'x'));
  CHECK(absl::IsResourceExhausted(huge.status()));
  CHECK(Counter(forwarder, "rejected_too_large") == 1);

  forwarder.Stop(absl::ZeroDuration());
  CHECK(Counter(forwarder, "dropped_shutdown") == 3);
  CHECK(Counter(forwarder, "submitted") == 5);
  CheckConservation(forwarder);
}

TEST_CASE("disk queue: kill -9 after Submit returned loses nothing", "[forwarder][disk]") {
  QuietLogs();
  TempDir storage;
  const uint16_t port = UnusedPort();
  const auto bodies = Numbered("crash-", 20, 300);
  Options options = WithDisk(TestOptions(UrlForPort(port)), storage.path);
  // A small memory bound makes most of them live on disk only (spilled), exercising reloads too.
  options.memory_queue_max_bytes = 4 * AccountedBytes(300);

  int acks[2];
  REQUIRE(::pipe(acks) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child never returns into Catch2: it submits, acknowledges each one, and waits to die.
    ::close(acks[0]);
    Forwarder forwarder(options, MakeTransport());
    if (!forwarder.Start().ok()) ::_exit(2);
    for (const auto& body : bodies) {
      if (!SubmitBody(forwarder, body).ok()) ::_exit(3);
      if (::write(acks[1], "k", 1) != 1) ::_exit(4);
    }
    for (;;) ::pause();
  }
  ::close(acks[1]);
  size_t acknowledged = 0;
  char buffer[64];
  while (acknowledged < bodies.size()) {
    pollfd pfd{acks[0], POLLIN, 0};
    if (::poll(&pfd, 1, 30000) <= 0) break;
    const ssize_t got = ::read(acks[0], buffer, sizeof(buffer));
    if (got <= 0) break;
    acknowledged += static_cast<size_t>(got);
  }
  ::kill(child, SIGKILL);
  int wait_status = 0;
  ::waitpid(child, &wait_status, 0);
  ::close(acks[0]);
  REQUIRE(acknowledged == bodies.size());
  REQUIRE(WIFSIGNALED(wait_status));
  CHECK(CountFiles(storage.path, ".txn") == bodies.size());

  TestHttpServer server;
  REQUIRE(server.Listen(port).ok());
  Forwarder forwarder(options, MakeTransport());
  REQUIRE(forwarder.Start().ok());
  CHECK(Counter(forwarder, "requeued_from_disk") == 20);
  REQUIRE(WaitUntil([&] { return Counter(forwarder, "sent") == 20; }));
  CHECK(Distinct(Bodies(server)) == bodies);
  CHECK(Counter(forwarder, "reloaded_from_disk") > 0);
  CHECK(server.Requests()[0].Header("DD-API-KEY") == kKey);
  REQUIRE(WaitUntil([&] { return CountFiles(storage.path, ".txn") == 0; }));
  forwarder.Stop(absl::Seconds(1));
  CheckConservation(forwarder);
}

TEST_CASE("disk queue: spilled transactions are reloaded and delivered in order", "[forwarder][disk]") {
  QuietLogs();
  TempDir storage;
  const uint16_t port = UnusedPort();
  Options options = WithDisk(TestOptions(UrlForPort(port)), storage.path);
  options.memory_queue_max_bytes = 3 * AccountedBytes(400);
  Forwarder forwarder(options, MakeTransport());
  REQUIRE(forwarder.Start().ok());
  const auto bodies = Numbered("spill-", 12, 400);
  for (const auto& body : bodies) REQUIRE(SubmitBody(forwarder, body).ok());
  CHECK(Counter(forwarder, "spilled_to_disk") >= 8);
  CHECK(Counter(forwarder, "dropped_queue_full") == 0);
  CHECK(forwarder.Status().domains(0).on_disk_transactions() == 12);

  TestHttpServer server;
  REQUIRE(server.Listen(port).ok());
  REQUIRE(WaitUntil([&] { return Counter(forwarder, "sent") == 12; }));
  CHECK(Distinct(Bodies(server)) == bodies);
  CHECK(Counter(forwarder, "reloaded_from_disk") >= 8);
  CHECK(forwarder.Status().domains(0).on_disk_transactions() == 0);
  CHECK(CountFiles(storage.path, ".txn") == 0);
  forwarder.Stop(absl::Seconds(1));
  CheckConservation(forwarder);
}

TEST_CASE("disk bound drops the oldest files; Stop keeps the rest for the next run", "[forwarder][disk]") {
  QuietLogs();
  TempDir storage;
  const uint16_t port = UnusedPort();
  Options options = WithDisk(TestOptions(UrlForPort(port)), storage.path, 3 * FileBytes(500) + 10);
  options.backoff_base = absl::Seconds(10);
  options.backoff_max = absl::Seconds(20);
  const auto bodies = Numbered("disk-", 6, 500);
  {
    Forwarder forwarder(options, MakeTransport());
    REQUIRE(forwarder.Start().ok());
    REQUIRE(SubmitBody(forwarder, bodies[0]).ok());
    REQUIRE(WaitUntil([&] { return Counter(forwarder, "retried") == 1; }));
    for (int i = 1; i < 6; ++i) REQUIRE(SubmitBody(forwarder, bodies[i]).ok());
    CHECK(Counter(forwarder, "dropped_disk_full") == 3);
    const auto status = forwarder.Status();
    CHECK(status.domains(0).on_disk_transactions() == 3);
    CHECK(status.domains(0).on_disk_bytes() <= static_cast<int64_t>(options.storage_max_bytes));
    CHECK(CountFiles(storage.path, ".txn") == 3);
    forwarder.Stop(absl::Milliseconds(50));
    CHECK(Counter(forwarder, "dropped_shutdown") == 0);  // on disk, not lost
    CheckConservation(forwarder);
  }
  CHECK(CountFiles(storage.path, ".txn") == 3);

  options.backoff_base = absl::Milliseconds(20);
  options.backoff_max = absl::Milliseconds(80);
  TestHttpServer server;
  REQUIRE(server.Listen(port).ok());
  Forwarder forwarder(options, MakeTransport());
  REQUIRE(forwarder.Start().ok());
  CHECK(Counter(forwarder, "requeued_from_disk") == 3);
  REQUIRE(WaitUntil([&] { return Counter(forwarder, "sent") == 3; }));
  CHECK(Bodies(server) == std::vector<std::string>(bodies.begin() + 3, bodies.end()));
  forwarder.Stop(absl::Seconds(1));
  CheckConservation(forwarder);
}

TEST_CASE("corrupt, foreign, outdated and partial files are counted and removed", "[forwarder][disk]") {
  QuietLogs();
  TempDir storage;
  TestHttpServer server;
  REQUIRE(server.Listen().ok());
  const Options options = WithDisk(TestOptions(server.base_url()), storage.path);
  const Destination destination = options.destinations.at(core::TRACK_METRICS)[0];
  const std::string dir = storage.path + "/" + DestinationDirName(core::TRACK_METRICS, destination);
  REQUIRE(std::filesystem::create_directories(dir));
  auto write = [&](const std::string& name, const std::string& content) {
    std::ofstream(dir + "/" + name, std::ios::binary) << content;
  };
  StoredTransaction good;
  good.meta.track = core::TRACK_METRICS;
  good.meta.created_unix_ms = absl::ToUnixMillis(absl::Now());
  good.meta.path = kPath;
  good.meta.headers = PayloadHeaders();
  good.body = "good-body";
  const std::string good_file = SerializeTransactionFile(good);
  StoredTransaction other_track = good;
  other_track.meta.track = core::TRACK_TRACES;
  StoredTransaction outdated = good;
  outdated.meta.created_unix_ms = absl::ToUnixMillis(absl::Now() - absl::Hours(24 * 11));

  write("0000000000000001.txn", "hello, not a transaction");
  write("0000000000000002.txn", good_file.substr(0, good_file.size() / 2));
  write("0000000000000003.txn", SerializeTransactionFile(other_track));
  write("0000000000000004.txn", SerializeTransactionFile(outdated));
  write("0000000000000005.txn", good_file);
  write(".tmp-0000000000000006.txn", good_file.substr(0, 10));
  write("README", "left alone");

  Forwarder forwarder(options, MakeTransport());
  REQUIRE(forwarder.Start().ok());
  CHECK(Counter(forwarder, "dropped_corrupt_file") == 3);
  CHECK(Counter(forwarder, "dropped_outdated") == 1);
  CHECK(Counter(forwarder, "disk_partial_files_removed") == 1);
  CHECK(Counter(forwarder, "requeued_from_disk") == 1);
  REQUIRE(WaitUntil([&] { return Counter(forwarder, "sent") == 1; }));
  CHECK(Bodies(server) == std::vector<std::string>{"good-body"});
  CHECK(server.Requests()[0].Header("Content-Type") == "application/x-protobuf");

  // New files continue after the highest sequence found, so they sort after the replayed ones.
  REQUIRE(SubmitBody(forwarder, "after-restart").ok());
  REQUIRE(WaitUntil([&] { return Counter(forwarder, "sent") == 2; }));
  REQUIRE(WaitUntil([&] { return CountFiles(storage.path, ".txn") == 0; }));
  CHECK(std::filesystem::exists(dir + "/README"));
  forwarder.Stop(absl::Seconds(1));
}

TEST_CASE("a storage directory is used by one forwarder at a time", "[forwarder][disk]") {
  QuietLogs();
  TempDir storage;
  const Options options = WithDisk(TestOptions(UrlForPort(UnusedPort())), storage.path);
  Forwarder first(options, MakeTransport());
  REQUIRE(first.Start().ok());
  Forwarder second(options, MakeTransport());
  CHECK(absl::IsFailedPrecondition(second.Start()));
}

TEST_CASE("backoff delays grow between retries", "[forwarder][backoff]") {
  QuietLogs();
  TestHttpServer server;
  REQUIRE(server.Listen().ok());
  server.SetDefaultReply(Reply{500, "down", {}, absl::ZeroDuration()});
  Options options = TestOptions(server.base_url());
  options.backoff_base = absl::Milliseconds(50);
  options.backoff_max = absl::Seconds(2);
  Forwarder forwarder(options, MakeTransport());
  REQUIRE(forwarder.Start().ok());
  const absl::Time start = absl::Now();
  REQUIRE(SubmitBody(forwarder, "again").ok());
  REQUIRE(server.WaitForRequests(5, absl::Seconds(15)));
  const auto requests = server.Requests();
  // After k errors the wait is at least base * 2^k / 2; upper bounds are left to a loaded machine.
  for (int k = 1; k <= 4; ++k) {
    const absl::Duration gap = requests[k].received - requests[k - 1].received;
    const absl::Duration minimum = absl::Milliseconds(50) * (1 << k) / 2;
    INFO("gap after " << k << " errors: " << absl::FormatDuration(gap));
    CHECK(gap >= minimum * 0.95);
  }
  CHECK(requests[4].received - requests[3].received > requests[1].received - requests[0].received);
  CHECK(absl::Now() - start < absl::Seconds(15));
  CHECK(forwarder.Status().domains(0).consecutive_errors() >= 4);
  forwarder.Stop(absl::ZeroDuration());
  CHECK(Counter(forwarder, "dropped_shutdown") == 1);
  CheckConservation(forwarder);
}

TEST_CASE("Stop drains the queue before the deadline", "[forwarder]") {
  QuietLogs();
  TestHttpServer server;
  REQUIRE(server.Listen().ok());
  Forwarder forwarder(TestOptions(server.base_url()), MakeTransport());
  REQUIRE(forwarder.Start().ok());
  const auto bodies = Numbered("s", 10);
  for (const auto& body : bodies) REQUIRE(SubmitBody(forwarder, body).ok());
  forwarder.Stop(absl::Seconds(10));
  CHECK(Counter(forwarder, "sent") == 10);
  CHECK(Bodies(server) == bodies);
  auto late = SubmitBody(forwarder, "late");
  CHECK(absl::IsFailedPrecondition(late.status()));
  CHECK(Counter(forwarder, "rejected_not_running") == 1);
  CheckConservation(forwarder);
}

TEST_CASE("Stop cuts off a hung send at the deadline and counts the loss", "[forwarder]") {
  QuietLogs();
  TestHttpServer server;
  REQUIRE(server.Listen().ok());
  server.Script(Reply{200, "", {}, absl::Seconds(20)});
  Forwarder forwarder(TestOptions(server.base_url()), MakeTransport());
  REQUIRE(forwarder.Start().ok());
  REQUIRE(SubmitBody(forwarder, "slow").ok());
  REQUIRE(server.WaitForRequests(1, absl::Seconds(10)));
  const absl::Time start = absl::Now();
  forwarder.Stop(absl::Milliseconds(100));
  CHECK(absl::Now() - start < absl::Seconds(5));
  CHECK(Counter(forwarder, "dropped_shutdown") == 1);
  CHECK(Counter(forwarder, "retried") == 0);  // cut off by us, not failed by the intake
  CheckConservation(forwarder);
}

TEST_CASE("Submit validates its input and the forwarder state", "[forwarder]") {
  QuietLogs();
  TestHttpServer server;
  REQUIRE(server.Listen().ok());
  Forwarder forwarder(TestOptions(server.base_url()), MakeTransport());
  CHECK(absl::IsFailedPrecondition(SubmitBody(forwarder, "early").status()));
  REQUIRE(forwarder.Start().ok());
  CHECK(absl::IsFailedPrecondition(forwarder.Start()));
  CHECK(absl::IsInvalidArgument(
      forwarder.Submit(core::TRACK_METRICS, kPath, {{"Content-Length", "1"}}, "x", "t").status()));
  CHECK(absl::IsInvalidArgument(
      forwarder.Submit(core::TRACK_METRICS, kPath, {{"X-A", "1\r\nX-B: 2"}}, "x", "t").status()));
  CHECK(
      absl::IsInvalidArgument(forwarder.Submit(core::TRACK_METRICS, "api/v2/series", {}, "x", "t").status()));
  CHECK(Counter(forwarder, "rejected_invalid") == 3);
  CHECK(Counter(forwarder, "rejected_not_running") == 1);
  CHECK(Counter(forwarder, "submitted") == 0);
  forwarder.Stop(absl::Seconds(1));
  CHECK(server.RequestCount() == 0);
}

TEST_CASE("invalid options are refused at Start", "[forwarder]") {
  QuietLogs();
  Options options = TestOptions("http://127.0.0.1:1");
  options.backoff_factor = 1;
  CHECK(absl::IsInvalidArgument(Forwarder(options, MakeTransport()).Start()));
  options = TestOptions("http://127.0.0.1:1");
  options.destinations[core::TRACK_METRICS].push_back({"", kKey});
  CHECK(absl::IsInvalidArgument(Forwarder(options, MakeTransport()).Start()));
  options = TestOptions("http://127.0.0.1:1");
  options.memory_queue_max_bytes = 0;
  CHECK(absl::IsInvalidArgument(Forwarder(options, MakeTransport()).Start()));
}

TEST_CASE("concurrent submitters keep per-destination order through failures and spills",
          "[forwarder][disk]") {
  QuietLogs();
  TempDir storage;
  TestHttpServer main_server, extra_server;
  REQUIRE(main_server.Listen().ok());
  REQUIRE(extra_server.Listen().ok());
  for (int i = 0; i < 400; ++i) {
    main_server.Script(Reply{i % 5 == 0 ? 500 : 200, "", {}, absl::ZeroDuration()});
    extra_server.Script(Reply{i % 7 == 0 ? 503 : 202, "", {}, absl::ZeroDuration()});
  }
  Options options = WithDisk(TestOptions(main_server.base_url()), storage.path);
  options.destinations[core::TRACK_METRICS].push_back({extra_server.base_url(), kOtherKey});
  options.backoff_base = absl::Milliseconds(1);
  options.backoff_max = absl::Milliseconds(4);
  options.memory_queue_max_bytes = 5 * AccountedBytes(100);  // most bodies spill to disk
  Forwarder forwarder(options, MakeTransport());
  REQUIRE(forwarder.Start().ok());

  constexpr int kThreads = 4;
  constexpr int kPerThread = 40;
  std::vector<std::thread> submitters;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&, t] {
      for (const auto& body : Numbered("t" + std::to_string(t) + "-", kPerThread, 100)) {
        auto copies = SubmitBody(forwarder, body);
        if (!copies.ok() || *copies != 2) ++failures;
      }
    });
  }
  for (auto& thread : submitters) thread.join();
  CHECK(failures == 0);
  REQUIRE(
      WaitUntil([&] { return Counter(forwarder, "sent") == 2 * kThreads * kPerThread; }, absl::Seconds(60)));
  for (const TestHttpServer* server : {&main_server, &extra_server}) {
    const auto delivered = Distinct(Bodies(*server));
    CHECK(delivered.size() == static_cast<size_t>(kThreads * kPerThread));
    // Each submitter's payloads arrive in the order it submitted them.
    for (int t = 0; t < kThreads; ++t) {
      std::vector<std::string> mine;
      for (const auto& body : delivered) {
        if (body.rfind("t" + std::to_string(t) + "-", 0) == 0) mine.push_back(body);
      }
      CHECK(mine == Numbered("t" + std::to_string(t) + "-", kPerThread, 100));
    }
  }
  CHECK(Counter(forwarder, "retried") > 0);
  // (Whether bodies spilled depends on timing here; the spill path has its own deterministic test.)
  REQUIRE(WaitUntil([&] { return CountFiles(storage.path, ".txn") == 0; }));
  forwarder.Stop(absl::Seconds(1));
  CheckConservation(forwarder);
}

TEST_CASE("logs show API keys only as their last four characters", "[forwarder]") {
  TempDir logs;
  const std::string log_path = logs.path + "/forwarder.log";
  REQUIRE(log::Init("forwarder_test", "debug", log_path).ok());
  {
    TestHttpServer server;
    REQUIRE(server.Listen().ok());
    server.Script(Reply{403, "invalid key", {}, absl::ZeroDuration()});
    server.Script(Reply{500, "oops", {}, absl::ZeroDuration()});
    Options options = TestOptions(server.base_url());
    options.destinations[core::TRACK_METRICS].push_back({UrlForPort(UnusedPort()), kOtherKey});
    Forwarder forwarder(options, MakeTransport());
    REQUIRE(forwarder.Start().ok());
    REQUIRE(SubmitBody(forwarder, "a").ok());
    REQUIRE(SubmitBody(forwarder, "b").ok());
    REQUIRE(WaitUntil([&] { return Counter(forwarder, "sent") == 1; }));
    REQUIRE(WaitUntil([&] { return Counter(forwarder, "retried") >= 2; }));
    forwarder.Stop(absl::ZeroDuration());
  }
  log::Get("forwarder")->flush();
  std::ifstream file(log_path);
  const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  QuietLogs();
  CHECK(text.find("***cdef") != std::string::npos);  // the 403 was logged, with the hint
  CHECK(text.find(kKey) == std::string::npos);
  CHECK(text.find(kOtherKey) == std::string::npos);
  CHECK(text.find(std::string(kKey).substr(0, 8)) == std::string::npos);
}

TEST_CASE("destination directories and key hints never reveal the key", "[forwarder]") {
  const Destination destination{"https://app.example", kKey};
  const std::string dir = DestinationDirName(core::TRACK_METRICS, destination);
  CHECK(dir.rfind("metrics-", 0) == 0);
  CHECK(dir.find("cdef") == std::string::npos);
  CHECK(dir == DestinationDirName(core::TRACK_METRICS, destination));  // stable
  CHECK(dir != DestinationDirName(core::TRACK_TRACES, destination));
  CHECK(dir != DestinationDirName(core::TRACK_METRICS, {"https://app.example", kOtherKey}));
  CHECK(ApiKeyHint(kKey) == "***cdef");
  CHECK(ApiKeyHint("short") == "***");
}

TEST_CASE("a {subdomain} destination sends each payload to the subdomain it names", "[forwarder]") {
  QuietLogs();
  TestHttpServer server;
  REQUIRE(server.Listen().ok());
  // curl resolves *.localhost to the loopback address, so the Host header shows the substitution.
  const std::string port = server.base_url().substr(server.base_url().rfind(':') + 1);
  Options options = TestOptions(server.base_url());
  options.destinations.clear();
  options.destinations[core::TRACK_EVP] = {{"http://{subdomain}.localhost:" + port, kKey}};
  Forwarder forwarder(options, MakeTransport());
  REQUIRE(forwarder.Start().ok());

  auto with = [](std::string subdomain) {
    return std::vector<std::pair<std::string, std::string>>{{"Content-Type", "application/json"},
                                                            {kSubdomainHeader, std::move(subdomain)}};
  };
  REQUIRE(
      forwarder.Submit(core::TRACK_EVP, "/api/v2/citestcycle", with("citestcycle-intake"), "a", "t").ok());
  REQUIRE(forwarder.Submit(core::TRACK_EVP, "/api/v2/llmobs", with("llmobs-intake"), "b", "t").ok());
  // Without a subdomain, or with one that is not DNS labels, the payload is refused at Submit.
  CHECK(absl::IsInvalidArgument(forwarder.Submit(core::TRACK_EVP, "/api/v2/x", {}, "c", "t").status()));
  CHECK(absl::IsInvalidArgument(
      forwarder.Submit(core::TRACK_EVP, "/api/v2/x", with("evil.com/"), "d", "t").status()));
  CHECK(absl::IsInvalidArgument(
      forwarder.Submit(core::TRACK_EVP, "/api/v2/x", with("a..b"), "e", "t").status()));
  CHECK(Counter(forwarder, "rejected_invalid") == 3);

  REQUIRE(WaitUntil([&] { return Counter(forwarder, "sent") == 2; }));
  const auto requests = server.Requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].path == "/api/v2/citestcycle");
  CHECK(requests[0].Header("Host") == "citestcycle-intake.localhost:" + port);
  CHECK(requests[0].Header("X-Datadog-EVP-Subdomain") == "citestcycle-intake");
  CHECK(requests[0].Header(kSubdomainHeader).empty());  // internal: never sent as such
  CHECK(requests[0].Header("DD-API-KEY") == kKey);
  CHECK(requests[1].Header("Host") == "llmobs-intake.localhost:" + port);
  forwarder.Stop(absl::Seconds(1));
  CheckConservation(forwarder);
}

TEST_CASE("a submitter waiting for the intake's answer gets each destination's first reply", "[forwarder]") {
  QuietLogs();
  TestHttpServer main_server, extra_server;
  REQUIRE(main_server.Listen().ok());
  REQUIRE(extra_server.Listen().ok());
  main_server.SetDefaultReply(Reply{202, "main-answer", {}, absl::ZeroDuration()});
  extra_server.SetDefaultReply(Reply{202, std::string(100, 'x'), {}, absl::ZeroDuration()});
  Options options = TestOptions(main_server.base_url());
  options.destinations[core::TRACK_METRICS].push_back({extra_server.base_url(), kOtherKey});
  Forwarder forwarder(options, MakeTransport());
  REQUIRE(forwarder.Start().ok());
  REQUIRE(forwarder.DestinationCount(core::TRACK_METRICS) == 2);
  CHECK(forwarder.DestinationCount(core::TRACK_TRACES) == 0);

  auto sink = std::make_shared<ReplySink>(2, 10);
  REQUIRE(forwarder.Submit(core::TRACK_METRICS, kPath, PayloadHeaders(), "p", "test", sink).ok());
  std::vector<IntakeReply> replies = sink->Wait(absl::Seconds(10));
  REQUIRE(replies.size() == 2);
  std::map<std::string, IntakeReply> by_url;
  for (auto& reply : replies) by_url[reply.destination] = reply;
  CHECK(by_url[main_server.base_url()].status == 202);
  CHECK(by_url[main_server.base_url()].body == "main-answe");  // cut at the sink's 10 bytes
  CHECK(by_url[main_server.base_url()].truncated);
  CHECK(by_url[extra_server.base_url()].body == std::string(10, 'x'));
  forwarder.Stop(absl::Seconds(1));
  CheckConservation(forwarder);
}

TEST_CASE("waiting for a reply changes nothing about retries; a backing-off destination answers nothing",
          "[forwarder]") {
  QuietLogs();
  TestHttpServer server;
  REQUIRE(server.Listen().ok());
  server.Script(Reply{503, "busy", {}, absl::ZeroDuration()}, 1);
  server.SetDefaultReply(Reply{202, "ok", {}, absl::ZeroDuration()});
  Options options = TestOptions(server.base_url());
  // Long enough that the second submit surely finds the destination backing off.
  options.backoff_base = absl::Seconds(2);
  options.backoff_max = absl::Seconds(2);
  Forwarder forwarder(options, MakeTransport());
  REQUIRE(forwarder.Start().ok());

  // The first attempt's answer is what the waiter gets, even though it is then retried.
  auto first = std::make_shared<ReplySink>(1, 1024);
  REQUIRE(forwarder.Submit(core::TRACK_METRICS, kPath, PayloadHeaders(), "p1", "test", first).ok());
  auto replies = first->Wait(absl::Seconds(10));
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 503);
  CHECK(replies[0].body == "busy");

  // While backing off: resolved at once, without an answer, and still queued and delivered.
  auto second = std::make_shared<ReplySink>(1, 1024);
  const absl::Time before = absl::Now();
  REQUIRE(forwarder.Submit(core::TRACK_METRICS, kPath, PayloadHeaders(), "p2", "test", second).ok());
  CHECK(second->Wait(absl::Seconds(5)).empty());
  CHECK(absl::Now() - before < absl::Seconds(1));
  REQUIRE(WaitUntil([&] { return Counter(forwarder, "sent") == 2; }));
  CHECK(Distinct(Bodies(server)) == std::vector<std::string>{"p1", "p2"});
  CHECK(Counter(forwarder, "retried") == 1);
  forwarder.Stop(absl::Seconds(1));
  CheckConservation(forwarder);
}

}  // namespace
}  // namespace dogwatch::forwarder
