#include "common/http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <exception>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace dogwatch::http {
namespace {

constexpr int kListenBacklog = 512;
// Per-connection memory for libmicrohttpd: request headers must fit, and it doubles as the read
// buffer for bodies. Tracers send modest headers; 64 KiB leaves room without waste.
constexpr size_t kConnectionMemoryLimit = 64 * 1024;
// How much of an oversized upload we read and throw away so the client gets a clean 413 on a
// connection that stays usable. Past this the connection is simply closed.
constexpr size_t kMaxDrainBytes = 1024 * 1024;
constexpr size_t kMaxUpfrontReserve = 1024 * 1024;

std::string ErrnoText(int err) { return std::strerror(err); }

// Per-request state, created on the first callback and freed in the completion callback.
struct RequestState {
  HttpRequest request;
  bool too_large = false;
  size_t declared_length = 0;
  size_t drained_bytes = 0;
};

std::string FormatSockaddr(const sockaddr& addr) {
  char host[INET6_ADDRSTRLEN] = {};
  if (addr.sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    return absl::StrCat(host, ":", ntohs(in->sin_port));
  }
  if (addr.sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    return absl::StrCat("[", host, "]:", ntohs(in6->sin6_port));
  }
  return "";
}

MHD_Result CollectValue(void* cls, MHD_ValueKind /*kind*/, const char* key, const char* value) {
  auto* out = static_cast<std::vector<std::pair<std::string, std::string>>*>(cls);
  out->emplace_back(key != nullptr ? key : "", value != nullptr ? value : "");
  return MHD_YES;
}

MHD_Result CollectHeader(void* cls, MHD_ValueKind /*kind*/, const char* key, const char* value) {
  static_cast<HttpHeaders*>(cls)->Add(key != nullptr ? key : "", value != nullptr ? value : "");
  return MHD_YES;
}

}  // namespace

struct HttpServer::Callbacks {
  static MHD_Result OnRequest(void* cls, MHD_Connection* connection, const char* url, const char* method,
                              const char* /*version*/, const char* upload_data, size_t* upload_data_size,
                              void** request_cls) {
    auto* server = static_cast<HttpServer*>(cls);
    // libmicrohttpd is C: nothing may unwind through it.
    try {
      return Handle(server, connection, url, method, upload_data, upload_data_size, request_cls);
    } catch (const std::exception& e) {
      server->errors_.fetch_add(1, std::memory_order_relaxed);
      log::Get(server->options_.log_name)->error("request handling failed: {}", e.what());
    } catch (...) {
      server->errors_.fetch_add(1, std::memory_order_relaxed);
      log::Get(server->options_.log_name)->error("request handling failed: unknown exception");
    }
    return MHD_NO;  // closes the connection
  }

  static MHD_Result Handle(HttpServer* server, MHD_Connection* connection, const char* url,
                           const char* method, const char* upload_data, size_t* upload_data_size,
                           void** request_cls) {
    const HttpServerOptions& options = server->options_;
    auto* state = static_cast<RequestState*>(*request_cls);
    if (state == nullptr) {
      // First call: the headers are complete, no body has been read yet.
      server->requests_.fetch_add(1, std::memory_order_relaxed);
      state = new RequestState;
      *request_cls = state;
      FillRequest(server, connection, url, method, &state->request);

      const char* content_length =
          MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
      uint64_t declared = 0;
      if (content_length != nullptr && absl::SimpleAtoi(content_length, &declared)) {
        if (declared > options.max_body_bytes) {
          state->too_large = true;
          state->declared_length = declared;
          server->rejected_too_large_.fetch_add(1, std::memory_order_relaxed);
          const char* expect =
              MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
          const bool waits_for_continue = expect != nullptr && EqualsIgnoreCase(expect, "100-continue");
          // Answer now unless the body is small enough to drain: a client that waits for "100
          // Continue" never sends the body, and one that sends a large body anyway has its
          // connection closed after the reply instead of being read to the end.
          if (waits_for_continue || declared - options.max_body_bytes > kMaxDrainBytes) {
            return QueueReply(server, connection, TooLargeReply(options, declared));
          }
          return MHD_YES;
        }
        // Reserve by the client's claim only up to a point: a claim costs it nothing.
        state->request.body.reserve(std::min<uint64_t>(declared, kMaxUpfrontReserve));
      }
      return MHD_YES;
    }

    if (*upload_data_size != 0) {
      const size_t chunk = *upload_data_size;
      *upload_data_size = 0;
      if (state->too_large) {
        state->drained_bytes += chunk;
        // A reply cannot be queued mid-upload; past the drain budget, hang up instead.
        return state->drained_bytes > options.max_body_bytes + kMaxDrainBytes ? MHD_NO : MHD_YES;
      }
      if (state->request.body.size() + chunk > options.max_body_bytes) {
        state->too_large = true;
        state->drained_bytes = state->request.body.size() + chunk;
        std::string().swap(state->request.body);
        server->rejected_too_large_.fetch_add(1, std::memory_order_relaxed);
        return MHD_YES;
      }
      state->request.body.append(upload_data, chunk);
      return MHD_YES;
    }

    // The request is complete.
    if (state->too_large) {
      return QueueReply(server, connection, TooLargeReply(options, state->declared_length));
    }
    HttpReply reply;
    try {
      reply = server->handler_(state->request);
    } catch (const std::exception& e) {
      log::Get(options.log_name)->error("handler for {} {} threw: {}", method, url, e.what());
      reply = HttpReply::Text(500, "internal error\n");
    } catch (...) {
      log::Get(options.log_name)->error("handler for {} {} threw a non-standard exception", method, url);
      reply = HttpReply::Text(500, "internal error\n");
    }
    return QueueReply(server, connection, reply);
  }

  static HttpReply TooLargeReply(const HttpServerOptions& options, uint64_t declared) {
    std::string message =
        declared > 0 ? absl::StrCat("request body of ", declared, " bytes exceeds the limit of ",
                                    options.max_body_bytes, " bytes\n")
                     : absl::StrCat("request body exceeds the limit of ", options.max_body_bytes, " bytes\n");
    return HttpReply::Text(413, std::move(message));
  }

  static void FillRequest(HttpServer* server, MHD_Connection* connection, const char* url, const char* method,
                          HttpRequest* request) {
    request->method = method != nullptr ? method : "";
    request->path = url != nullptr ? url : "";
    MHD_get_connection_values(connection, MHD_HEADER_KIND, &CollectHeader, &request->headers);
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, &CollectValue, &request->query_params);

    // A server listens on one socket, so its transport is known without asking the kernel; the
    // client's address is the one libmicrohttpd kept from accept(). (getsockname and getpeername
    // were two syscalls on every request.)
    if (!server->options_.unix_socket_path.empty()) {
      request->peer.transport = PeerInfo::Transport::kUnix;
      request->peer.address = server->options_.unix_socket_path;
      // The kernel recorded the peer's credentials at connect(); the origin detection keys on its PID.
      const MHD_ConnectionInfo* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
      if (info == nullptr) return;
      ucred cred{};
      socklen_t cred_len = sizeof(cred);
      if (getsockopt(info->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) == 0) {
        request->peer.credentials = PeerInfo::Credentials{cred.pid, cred.uid, cred.gid};
      }
      return;
    }
    request->peer.transport = PeerInfo::Transport::kTcp;
    const MHD_ConnectionInfo* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info != nullptr && info->client_addr != nullptr)
      request->peer.address = FormatSockaddr(*info->client_addr);
  }

  static MHD_Result QueueReply(HttpServer* server, MHD_Connection* connection, const HttpReply& reply) {
    const unsigned status = reply.status >= 100 && reply.status <= 599 ? reply.status : 500;
    if (status >= 500) server->errors_.fetch_add(1, std::memory_order_relaxed);
    MHD_Response* response = MHD_create_response_from_buffer(
        reply.body.size(), const_cast<char*>(reply.body.data()), MHD_RESPMEM_MUST_COPY);
    if (response == nullptr) {
      server->errors_.fetch_add(1, std::memory_order_relaxed);
      return MHD_NO;
    }
    // libmicrohttpd refuses fields with CR/LF; such a header is dropped rather than failing the
    // whole reply.
    for (const auto& [name, value] : server->options_.reply_headers) {
      MHD_add_response_header(response, name.c_str(), value.c_str());
    }
    if (!reply.content_type.empty()) {
      MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, reply.content_type.c_str());
    }
    for (const auto& [name, value] : reply.headers) {
      if (EqualsIgnoreCase(name, MHD_HTTP_HEADER_CONTENT_LENGTH)) continue;
      MHD_add_response_header(response, name.c_str(), value.c_str());
    }
    const MHD_Result result = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    if (result != MHD_YES) server->errors_.fetch_add(1, std::memory_order_relaxed);
    return result;
  }

  static void OnCompleted(void* /*cls*/, MHD_Connection* /*connection*/, void** request_cls,
                          MHD_RequestTerminationCode /*code*/) {
    delete static_cast<RequestState*>(*request_cls);
    *request_cls = nullptr;
  }

  static void OnLog(void* cls, const char* format, va_list args) {
    auto* server = static_cast<HttpServer*>(cls);
    static log::RateLimiter limiter(std::chrono::seconds(10));
    uint64_t suppressed = 0;
    if (!limiter.Allow(&suppressed)) return;
    char message[512];
    std::vsnprintf(message, sizeof(message), format, args);
    size_t len = std::strlen(message);
    while (len > 0 && (message[len - 1] == '\n' || message[len - 1] == '\r')) message[--len] = 0;
    log::Get(server->options_.log_name)
        ->warn("libmicrohttpd: {} ({} similar messages suppressed)", message, suppressed);
  }
};

HttpServer::HttpServer(HttpServerOptions options, Handler handler)
    : options_(std::move(options)), handler_(std::move(handler)) {}

HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options, Handler handler) {
  if (!handler) return absl::InvalidArgumentError("HTTP server needs a handler");
  std::unique_ptr<HttpServer> server(new HttpServer(std::move(options), std::move(handler)));
  absl::Status status = server->Listen();
  if (status.ok()) status = server->StartDaemon();
  if (!status.ok()) return status;
  log::Get(server->options_.log_name)->info("listening on {}", server->address());
  return server;
}

std::string HttpServer::address() const {
  if (!options_.unix_socket_path.empty()) return "unix://" + options_.unix_socket_path;
  const std::string host = options_.host.empty() ? "0.0.0.0" : options_.host;
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", bound_port_);
  return absl::StrCat(host, ":", bound_port_);
}

HttpServerCounters HttpServer::counters() const {
  HttpServerCounters c;
  c.requests = requests_.load(std::memory_order_relaxed);
  c.rejected_too_large = rejected_too_large_.load(std::memory_order_relaxed);
  c.errors = errors_.load(std::memory_order_relaxed);
  return c;
}

absl::Status HttpServer::Listen() {
  if (!options_.unix_socket_path.empty()) {
    const std::string& path = options_.unix_socket_path;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof(addr.sun_path)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unix socket path ", path, " is longer than ", sizeof(addr.sun_path) - 1, " bytes"));
    }
    std::memcpy(addr.sun_path, path.data(), path.size());

    struct stat st {};
    if (lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        return absl::FailedPreconditionError(
            absl::StrCat("refusing to replace ", path, ": it exists and is not a socket"));
      }
      // A socket file is stale unless someone still accepts on it; never steal a live one.
      int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (probe >= 0) {
        const bool live = connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
        close(probe);
        if (live) {
          return absl::AlreadyExistsError(absl::StrCat("another process is already listening on ", path));
        }
      }
      if (unlink(path.c_str()) != 0 && errno != ENOENT) {
        return absl::PermissionDeniedError(
            absl::StrCat("cannot remove stale socket ", path, ": ", ErrnoText(errno)));
      }
    }

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return absl::InternalError(absl::StrCat("socket(AF_UNIX): ", ErrnoText(errno)));
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      const int err = errno;
      close(fd);
      return absl::UnavailableError(absl::StrCat("bind ", path, ": ", ErrnoText(err)));
    }
    // chmod before listen(): until then nobody can connect, so there is no window where the socket
    // is reachable with the umask's mode.
    if (chmod(path.c_str(), options_.unix_socket_mode) != 0 || listen(fd, kListenBacklog) != 0) {
      const int err = errno;
      close(fd);
      unlink(path.c_str());
      return absl::UnavailableError(absl::StrCat("listen on ", path, ": ", ErrnoText(err)));
    }
    listen_fd_ = fd;
    return absl::OkStatus();
  }

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  const std::string host = options_.host.empty() ? "0.0.0.0" : options_.host;
  const std::string port = std::to_string(options_.port);
  addrinfo* results = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &results); rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve listen address ", host, ": ", gai_strerror(rc)));
  }
  std::string last_error = "no addresses";
  for (addrinfo* ai = results; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      last_error = ErrnoText(errno);
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, kListenBacklog) != 0) {
      last_error = ErrnoText(errno);
      close(fd);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof(bound);
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
    bound_port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                              : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    listen_fd_ = fd;
    break;
  }
  freeaddrinfo(results);
  if (listen_fd_ < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", host, ":", options_.port, ": ", last_error));
  }
  return absl::OkStatus();
}

absl::Status HttpServer::StartDaemon() {
  const unsigned threads = options_.threads == 0 ? 1 : options_.threads;
  MHD_OptionItem items[10];
  size_t n = 0;
  // The logger goes first so that startup messages already use it.
  items[n++] = {MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<intptr_t>(&Callbacks::OnLog), this};
  items[n++] = {MHD_OPTION_LISTEN_SOCKET, listen_fd_, nullptr};
  items[n++] = {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&Callbacks::OnCompleted), nullptr};
  items[n++] = {MHD_OPTION_CONNECTION_TIMEOUT, static_cast<intptr_t>(options_.connection_timeout.count()),
                nullptr};
  items[n++] = {MHD_OPTION_CONNECTION_LIMIT, static_cast<intptr_t>(options_.connection_limit), nullptr};
  items[n++] = {MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<intptr_t>(kConnectionMemoryLimit), nullptr};
  // A pool size of 1 means "no pool" to libmicrohttpd; only pass real pools.
  if (threads > 1) items[n++] = {MHD_OPTION_THREAD_POOL_SIZE, static_cast<intptr_t>(threads), nullptr};
  items[n++] = {MHD_OPTION_END, 0, nullptr};

  const unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
  daemon_ = MHD_start_daemon(flags, 0, nullptr, nullptr, &Callbacks::OnRequest, this, MHD_OPTION_ARRAY, items,
                             MHD_OPTION_END);
  if (daemon_ == nullptr) {
    close(listen_fd_);
    listen_fd_ = -1;
    if (!options_.unix_socket_path.empty()) unlink(options_.unix_socket_path.c_str());
    return absl::InternalError(absl::StrCat("cannot start HTTP server on ", address()));
  }
  return absl::OkStatus();
}

void HttpServer::Stop() {
  if (daemon_ == nullptr) return;
  // MHD_stop_daemon joins the workers and closes the listening socket we handed it.
  MHD_stop_daemon(daemon_);
  daemon_ = nullptr;
  listen_fd_ = -1;
  if (!options_.unix_socket_path.empty()) unlink(options_.unix_socket_path.c_str());
}

}  // namespace dogwatch::http
