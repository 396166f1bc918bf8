#include "common/http/server.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

namespace dogwatch::http {
namespace {

struct CurlResult {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;
  std::vector<std::string> header_lines;

  bool HasHeaderLine(const std::string& line) const {
    for (const std::string& h : header_lines) {
      if (h.rfind(line, 0) == 0) return true;
    }
    return false;
  }
};

struct CurlRequest {
  std::string method = "GET";
  std::string url;
  std::string body;
  std::vector<std::string> headers;
  std::string unix_socket;
  bool chunked = false;  // send the body with Transfer-Encoding: chunked (no
                         // Content-Length)
};

size_t AppendBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

size_t AppendHeader(char* data, size_t size, size_t n, void* out) {
  std::string line(data, size * n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  static_cast<std::vector<std::string>*>(out)->push_back(line);
  return size * n;
}

struct UploadCursor {
  const std::string* body;
  size_t offset = 0;
};

size_t ReadBody(char* buffer, size_t size, size_t n, void* cls) {
  auto* cursor = static_cast<UploadCursor*>(cls);
  const size_t chunk = std::min(size * n, cursor->body->size() - cursor->offset);
  std::memcpy(buffer, cursor->body->data() + cursor->offset, chunk);
  cursor->offset += chunk;
  return chunk;
}

CurlRequest Req(std::string method, std::string url, std::string body = "",
                std::vector<std::string> headers = {}, std::string unix_socket = "", bool chunked = false) {
  CurlRequest r;
  r.method = std::move(method);
  r.url = std::move(url);
  r.body = std::move(body);
  r.headers = std::move(headers);
  r.unix_socket = std::move(unix_socket);
  r.chunked = chunked;
  return r;
}

CurlResult Fetch(const CurlRequest& request) {
  CurlResult result;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  if (request.method == "HEAD") curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  if (!request.unix_socket.empty()) {
    curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, request.unix_socket.c_str());
  }
  curl_slist* headers = nullptr;
  for (const std::string& h : request.headers) headers = curl_slist_append(headers, h.c_str());
  UploadCursor cursor{&request.body};
  if (request.chunked) {
    headers = curl_slist_append(headers, "Transfer-Encoding: chunked");
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, &ReadBody);
    curl_easy_setopt(curl, CURLOPT_READDATA, &cursor);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  } else if (request.method != "GET" && request.method != "HEAD") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &result.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &AppendHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &result.header_lines);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 20L);
  result.code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return result;
}

std::string TempSocketPath(const std::string& name) {
  return absl::StrCat("/tmp/dw-http-test-", getpid(), "-", name, ".sock");
}

int CountOpenFds() {
  int n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// Echoes what the server saw so tests can check the request model.
HttpReply Echo(const HttpRequest& request) {
  std::string out =
      absl::StrCat("method=", request.method, "\npath=", request.path, "\nbody=", request.body, "\n");
  for (const auto& [key, value] : request.query_params) {
    absl::StrAppend(&out, "query ", key, "=", value, "\n");
  }
  absl::StrAppend(&out, "x-test=", std::string(request.headers.GetOr("X-TEST", "<none>")), "\n");
  absl::StrAppend(&out, "transport=", static_cast<int>(request.peer.transport), "\n");
  if (request.peer.credentials) {
    absl::StrAppend(&out, "uid=", request.peer.credentials->uid, "\npid=", request.peer.credentials->pid,
                    "\n");
  }
  absl::StrAppend(&out, "peer=", request.peer.address, "\n");
  HttpReply reply = HttpReply::Text(200, out);
  reply.headers.Add("X-Echo", "yes");
  return reply;
}

TEST_CASE("GET and POST over TCP with an ephemeral port") {
  HttpServerOptions options;
  options.reply_headers.Add("Datadog-Agent-Version", "7.99.0");
  auto server = HttpServer::Start(options, &Echo);
  REQUIRE(server.ok());
  const uint16_t port = (*server)->port();
  REQUIRE(port != 0);
  CHECK((*server)->address() == absl::StrCat("127.0.0.1:", port));
  const std::string base = absl::StrCat("http://127.0.0.1:", port);

  CurlResult get = Fetch(Req("GET", base + "/v0.4/traces?a=1&b=two%20words&flag", "", {"X-Test: hi"}));
  REQUIRE(get.code == CURLE_OK);
  CHECK(get.status == 200);
  CHECK(get.body.find("method=GET\n") != std::string::npos);
  CHECK(get.body.find("path=/v0.4/traces\n") != std::string::npos);
  CHECK(get.body.find("query a=1\n") != std::string::npos);
  CHECK(get.body.find("query b=two words\n") != std::string::npos);
  CHECK(get.body.find("query flag=\n") != std::string::npos);
  CHECK(get.body.find("x-test=hi\n") != std::string::npos);  // case-insensitive lookup
  CHECK(get.body.find("transport=1\n") != std::string::npos);
  CHECK(get.body.find("peer=127.0.0.1:") != std::string::npos);
  CHECK(get.HasHeaderLine("Datadog-Agent-Version: 7.99.0"));
  CHECK(get.HasHeaderLine("X-Echo: yes"));
  CHECK(get.HasHeaderLine("Content-Type: text/plain"));

  CurlResult post = Fetch(Req("POST", base + "/api/v2/series", std::string("bin\0ary", 7), {}));
  REQUIRE(post.code == CURLE_OK);
  CHECK(post.status == 200);
  CHECK(post.body.find(std::string("body=bin\0ary\n", 13)) != std::string::npos);

  CurlResult put = Fetch(Req("PUT", base + "/x", "put-body", {}));
  CHECK(put.body.find("method=PUT\n") != std::string::npos);
  CHECK(put.body.find("body=put-body\n") != std::string::npos);

  CurlResult head = Fetch(Req("HEAD", base + "/x", "", {}));
  CHECK(head.code == CURLE_OK);
  CHECK(head.status == 200);
  CHECK(head.body.empty());

  CurlResult chunked = Fetch(Req("POST", base + "/chunked", std::string(100000, 'c'), {}, "", true));
  CHECK(chunked.status == 200);
  CHECK(chunked.body.find("body=" + std::string(100000, 'c')) != std::string::npos);

  const HttpServerCounters counters = (*server)->counters();
  CHECK(counters.requests == 5);
  CHECK(counters.rejected_too_large == 0);
  CHECK(counters.errors == 0);
}

TEST_CASE("IPv6 loopback listener") {
  HttpServerOptions options;
  options.host = "::1";
  auto server = HttpServer::Start(options, &Echo);
  REQUIRE(server.ok());
  CHECK((*server)->address() == absl::StrCat("[::1]:", (*server)->port()));
  CurlResult get = Fetch(Req("GET", absl::StrCat("http://[::1]:", (*server)->port(), "/six")));
  REQUIRE(get.code == CURLE_OK);
  CHECK(get.status == 200);
  CHECK(get.body.find("peer=[::1]:") != std::string::npos);
}

TEST_CASE("unix socket: GET/POST, peer credentials, mode, stale file, cleanup") {
  const std::string path = TempSocketPath("basic");
  // A stale socket file left by a crashed process must not block startup.
  {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path.c_str());
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    close(fd);  // file stays, nobody listens
  }
  HttpServerOptions options;
  options.unix_socket_path = path;
  options.unix_socket_mode = 0620;
  auto server = HttpServer::Start(options, &Echo);
  REQUIRE(server.ok());
  CHECK((*server)->port() == 0);
  CHECK((*server)->address() == "unix://" + path);

  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0620);

  CurlResult get = Fetch(Req("GET", "http://localhost/info", "", {}, path));
  REQUIRE(get.code == CURLE_OK);
  CHECK(get.status == 200);
  CHECK(get.body.find("transport=2\n") != std::string::npos);
  CHECK(get.body.find(absl::StrCat("uid=", getuid(), "\n")) != std::string::npos);
  CHECK(get.body.find(absl::StrCat("pid=", getpid(), "\n")) != std::string::npos);
  CHECK(get.body.find("peer=" + path + "\n") != std::string::npos);

  CurlResult post = Fetch(Req("POST", "http://localhost/v0.4/traces", "[[]]", {}, path));
  CHECK(post.status == 200);
  CHECK(post.body.find("body=[[]]\n") != std::string::npos);

  SECTION("a second server on a live socket is refused") {
    HttpServerOptions again;
    again.unix_socket_path = path;
    auto second = HttpServer::Start(again, &Echo);
    REQUIRE_FALSE(second.ok());
    CHECK(second.status().message().find("already listening") != absl::string_view::npos);
  }

  (*server)->Stop();
  CHECK(access(path.c_str(), F_OK) != 0);  // socket file removed
}

TEST_CASE("a regular file at the socket path is not replaced") {
  const std::string path = TempSocketPath("regular");
  {
    FILE* f = std::fopen(path.c_str(), "w");
    std::fclose(f);
  }
  HttpServerOptions options;
  options.unix_socket_path = path;
  auto server = HttpServer::Start(options, &Echo);
  REQUIRE_FALSE(server.ok());
  CHECK(server.status().message().find("not a socket") != absl::string_view::npos);
  unlink(path.c_str());
}

TEST_CASE("oversized bodies get 413 without reaching the handler") {
  std::atomic<int> handled{0};
  HttpServerOptions options;
  options.max_body_bytes = 1000;
  auto server = HttpServer::Start(options, [&](const HttpRequest& r) {
    ++handled;
    return HttpReply::Text(200, absl::StrCat("got ", r.body.size()));
  });
  REQUIRE(server.ok());
  const std::string url = absl::StrCat("http://127.0.0.1:", (*server)->port(), "/upload");

  CurlResult at_limit = Fetch(Req("POST", url, std::string(1000, 'a'), {}));
  CHECK(at_limit.status == 200);
  CHECK(at_limit.body == "got 1000");

  // Small excess with Content-Length: drained, clean 413.
  CurlResult small_excess = Fetch(Req("POST", url, std::string(5000, 'a'), {"Expect:"}));
  REQUIRE(small_excess.code == CURLE_OK);
  CHECK(small_excess.status == 413);
  CHECK(small_excess.body.find("request body of 5000 bytes exceeds the limit of 1000 bytes") !=
        std::string::npos);

  // Expect: 100-continue: rejected before the body is sent.
  CurlResult expect = Fetch(Req("POST", url, std::string(4 << 20, 'a'), {"Expect: 100-continue"}));
  REQUIRE(expect.code == CURLE_OK);
  CHECK(expect.status == 413);

  // Chunked upload with no Content-Length: noticed while accumulating.
  CurlResult chunked = Fetch(Req("POST", url, std::string(200000, 'a'), {}, "", true));
  REQUIRE(chunked.code == CURLE_OK);
  CHECK(chunked.status == 413);
  CHECK(chunked.body.find("exceeds the limit of 1000 bytes") != std::string::npos);

  CHECK(handled == 1);
  CHECK((*server)->counters().rejected_too_large == 3);
}

TEST_CASE("concurrent requests are served in parallel threads") {
  HttpServerOptions options;
  options.threads = 4;
  std::atomic<int> in_flight{0};
  std::atomic<int> max_in_flight{0};
  auto server = HttpServer::Start(options, [&](const HttpRequest& r) {
    int now = ++in_flight;
    int seen = max_in_flight.load();
    while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    --in_flight;
    return HttpReply::Json(202, absl::StrCat("{\"len\":", r.body.size(), "}"));
  });
  REQUIRE(server.ok());
  const std::string url = absl::StrCat("http://127.0.0.1:", (*server)->port(), "/p");

  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        CurlResult r = Fetch(Req("POST", url, std::string(t * 100 + i, 'x'), {}));
        if (r.status == 202 && r.body == absl::StrCat("{\"len\":", t * 100 + i, "}")) ++ok;
      }
    });
  }
  for (auto& c : clients) c.join();
  CHECK(ok == 80);
  CHECK(max_in_flight > 1);
  CHECK((*server)->counters().requests == 80);
}

TEST_CASE("handler exceptions become 500 and are counted") {
  auto server =
      HttpServer::Start({}, [](const HttpRequest&) -> HttpReply { throw std::runtime_error("boom"); });
  REQUIRE(server.ok());
  CurlResult r = Fetch(Req("GET", absl::StrCat("http://127.0.0.1:", (*server)->port(), "/"), "", {}));
  CHECK(r.status == 500);
  CHECK((*server)->counters().errors == 1);
}

TEST_CASE("listen errors name the address") {
  auto first = HttpServer::Start({}, &Echo);
  REQUIRE(first.ok());
  HttpServerOptions clash;
  clash.port = (*first)->port();
  auto second = HttpServer::Start(clash, &Echo);
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().message().find(absl::StrCat("127.0.0.1:", clash.port)) != absl::string_view::npos);

  HttpServerOptions bad_host;
  bad_host.host = "no.such.host.invalid";
  CHECK_FALSE(HttpServer::Start(bad_host, &Echo).ok());
}

TEST_CASE("stopping releases the listening socket") {
  const int before = CountOpenFds();
  {
    auto server = HttpServer::Start({}, &Echo);
    REQUIRE(server.ok());
    CurlResult r = Fetch(Req("GET", absl::StrCat("http://127.0.0.1:", (*server)->port(), "/"), "", {}));
    CHECK(r.status == 200);
  }
  CHECK(CountOpenFds() == before);
}

}  // namespace
}  // namespace dogwatch::http
