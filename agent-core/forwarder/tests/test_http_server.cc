#include "agent-core/forwarder/tests/test_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace dogwatch::forwarder::testing {
namespace {

constexpr size_t kMaxRequestBytes = 128 << 20;

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 302:
      return "Found";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 413:
      return "Payload Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

// Reads until `data` holds `size` bytes; false on EOF, error or 5 s without progress.
bool ReadMore(int fd, std::string* data) {
  pollfd pfd{fd, POLLIN, 0};
  if (::poll(&pfd, 1, 5000) <= 0) return false;
  char buffer[64 * 1024];
  const ssize_t got = ::read(fd, buffer, sizeof(buffer));
  if (got <= 0) return false;
  data->append(buffer, static_cast<size_t>(got));
  return data->size() <= kMaxRequestBytes;
}

void WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t written = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (written <= 0) return;
    data.remove_prefix(static_cast<size_t>(written));
  }
}

}  // namespace

std::string RecordedRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, absl::string_view(name.data(), name.size()))) return value;
  }
  return "";
}

absl::Status TestHttpServer::Listen(uint16_t port) {
  StopListening();
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 || ::listen(fd, 64) != 0) {
    const int saved = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat("test server bind/listen: ", std::strerror(saved)));
  }
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
  listen_fd_ = fd;
  stop_ = false;
  thread_ = std::thread([this, fd] { Serve(fd); });
  return absl::OkStatus();
}

void TestHttpServer::StopListening() {
  if (!thread_.joinable()) return;
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
  listen_fd_ = -1;
}

void TestHttpServer::SetDefaultReply(Reply reply) {
  absl::MutexLock lock(&mu_);
  default_reply_ = std::move(reply);
}

void TestHttpServer::Script(Reply reply, int count) {
  absl::MutexLock lock(&mu_);
  for (int i = 0; i < count; ++i) script_.push_back(reply);
}

Reply TestHttpServer::NextReply() {
  absl::MutexLock lock(&mu_);
  if (script_.empty()) return default_reply_;
  Reply reply = std::move(script_.front());
  script_.pop_front();
  return reply;
}

std::vector<RecordedRequest> TestHttpServer::Requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

size_t TestHttpServer::RequestCount() const {
  absl::MutexLock lock(&mu_);
  return requests_.size();
}

bool TestHttpServer::WaitForRequests(size_t count, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto enough = [this, count]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return requests_.size() >= count; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

void TestHttpServer::Serve(int listen_fd) {
  while (!stop_) {
    pollfd pfd{listen_fd, POLLIN, 0};
    if (::poll(&pfd, 1, 20) <= 0) continue;
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    HandleConnection(fd);
    ::close(fd);
  }
}

void TestHttpServer::HandleConnection(int fd) {
  std::string data;
  size_t header_end = std::string::npos;
  while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
    if (!ReadMore(fd, &data)) return;
  }
  RecordedRequest request;
  const std::vector<std::string> lines = absl::StrSplit(absl::string_view(data.data(), header_end), "\r\n");
  const std::vector<std::string> request_line = absl::StrSplit(lines[0], ' ');
  if (request_line.size() >= 2) {
    request.method = request_line[0];
    request.path = request_line[1];
  }
  size_t content_length = 0;
  bool expect_continue = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    std::string name = lines[i].substr(0, colon);
    std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    if (absl::EqualsIgnoreCase(name, "Content-Length")) {
      if (!absl::SimpleAtoi(value, &content_length)) return;
    }
    if (absl::EqualsIgnoreCase(name, "Expect") && absl::EqualsIgnoreCase(value, "100-continue")) {
      expect_continue = true;
    }
    request.headers.emplace_back(std::move(name), std::move(value));
  }
  if (expect_continue) WriteAll(fd, "HTTP/1.1 100 Continue\r\n\r\n");
  const size_t body_start = header_end + 4;
  while (data.size() < body_start + content_length) {
    if (!ReadMore(fd, &data)) return;
  }
  request.body = data.substr(body_start, content_length);
  request.received = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    requests_.push_back(std::move(request));
  }
  const Reply reply = NextReply();
  // Sleep in slices so that StopListening is never held up for long.
  for (absl::Time until = absl::Now() + reply.delay; !stop_ && absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  std::string response = absl::StrCat("HTTP/1.1 ", reply.status, " ", ReasonPhrase(reply.status),
                                      "\r\nContent-Length: ", reply.body.size(), "\r\nConnection: close\r\n");
  for (const auto& [name, value] : reply.headers) absl::StrAppend(&response, name, ": ", value, "\r\n");
  absl::StrAppend(&response, "\r\n", reply.body);
  WriteAll(fd, response);
}

uint16_t UnusedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

}  // namespace dogwatch::forwarder::testing
