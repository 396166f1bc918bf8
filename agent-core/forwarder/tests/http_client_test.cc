#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "absl/strings/match.h"
#include "agent-core/forwarder/tests/test_http_server.h"
#include "agent-core/forwarder/transport.h"
#include "common/http/client.h"

namespace dogwatch::http {
namespace {

using forwarder::testing::Reply;
using forwarder::testing::TestHttpServer;

TEST_CASE("http client posts headers and body and reads the answer", "[http]") {
  TestHttpServer server;
  REQUIRE(server.Listen().ok());
  server.Script(Reply{202, "accepted!", {}, absl::ZeroDuration()});
  Client client(ClientOptions{});
  Request request;
  request.url = server.base_url() + "/api/v2/series";
  request.headers = {{"Content-Type", "application/x-protobuf"}, {"X-Empty", ""}};
  const std::string body("a\0b", 3);
  request.body = body;
  auto response = client.Send(request);
  REQUIRE(response.ok());
  CHECK(response->status == 202);
  CHECK(response->body == "accepted!");
  const auto requests = server.Requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].method == "POST");
  CHECK(requests[0].path == "/api/v2/series");
  CHECK(requests[0].body == body);
  CHECK(requests[0].Header("Content-Type") == "application/x-protobuf");
  CHECK(requests[0].Header("Expect").empty());

  // The same handle serves a second request; without a Content-Type, curl must not invent one.
  request.body = "";
  request.headers.clear();
  response = client.Send(request);
  REQUIRE(response.ok());
  CHECK(response->status == 200);
  REQUIRE(server.RequestCount() == 2);
  CHECK(server.Requests()[1].Header("Content-Type").empty());
  CHECK(server.Requests()[1].Header("Content-Length") == "0");
}

TEST_CASE("http client reports refused connections as Unavailable", "[http]") {
  Client client(ClientOptions{});
  Request request;
  request.url = "http://127.0.0.1:" + std::to_string(forwarder::testing::UnusedPort()) + "/x";
  auto response = client.Send(request);
  REQUIRE_FALSE(response.ok());
  CHECK(absl::IsUnavailable(response.status()));
  CHECK(absl::StrContains(response.status().message(), "127.0.0.1"));
}

TEST_CASE("http client does not follow redirects", "[http]") {
  TestHttpServer server;
  REQUIRE(server.Listen().ok());
  server.Script(Reply{302, "", {{"Location", server.base_url() + "/elsewhere"}}, absl::ZeroDuration()});
  Client client(ClientOptions{});
  Request request;
  request.url = server.base_url() + "/api/v1/series";
  auto response = client.Send(request);
  REQUIRE(response.ok());
  CHECK(response->status == 302);
  CHECK(server.RequestCount() == 1);
}

TEST_CASE("http client caps the response body it keeps", "[http]") {
  TestHttpServer server;
  REQUIRE(server.Listen().ok());
  server.Script(Reply{500, std::string(10000, 'x'), {}, absl::ZeroDuration()});
  ClientOptions options;
  options.max_response_body_bytes = 100;
  Client client(options);
  Request request;
  request.url = server.base_url() + "/";
  auto response = client.Send(request);
  REQUIRE(response.ok());
  CHECK(response->status == 500);
  CHECK(response->body.size() == 100);
  CHECK(response->body_truncated);
}

TEST_CASE("http client refuses header injection", "[http]") {
  Client client(ClientOptions{});
  Request request;
  request.url = "http://127.0.0.1:1/";
  request.headers = {{"X-A", "1\r\nX-B: 2"}};
  CHECK(absl::IsInvalidArgument(client.Send(request).status()));
}

TEST_CASE("http client transfers can be cancelled", "[http]") {
  TestHttpServer server;
  REQUIRE(server.Listen().ok());
  server.Script(Reply{200, "", {}, absl::Seconds(10)});
  std::atomic<bool> cancel{false};
  ClientOptions options;
  options.cancel = &cancel;
  Client client(options);
  Request request;
  request.url = server.base_url() + "/slow";
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(100));
    cancel = true;
  });
  const absl::Time start = absl::Now();
  auto response = client.Send(request);
  canceller.join();
  CHECK(absl::IsCancelled(response.status()));
  CHECK(absl::Now() - start < absl::Seconds(5));  // progress callbacks run at least once a second
}

TEST_CASE("JoinUrl avoids double and missing slashes", "[http]") {
  CHECK(forwarder::JoinUrl("https://a.example/", "/api/v2/series") == "https://a.example/api/v2/series");
  CHECK(forwarder::JoinUrl("https://a.example", "/intake/") == "https://a.example/intake/");
  CHECK(forwarder::JoinUrl("https://a.example", "x") == "https://a.example/x");
}

}  // namespace
}  // namespace dogwatch::http
