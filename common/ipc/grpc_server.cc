#include "common/ipc/grpc_server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "common/log/log.h"
#include "common/strings/strings.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/server_posix.h"
#include "grpcpp/support/channel_arguments.h"

namespace dogwatch::ipc {

absl::StatusOr<std::unique_ptr<IpcServer>> IpcServer::Start(ServerOptions options,
                                                            const std::vector<grpc::Service*>& services) {
  std::unique_ptr<IpcServer> server(new IpcServer(std::move(options)));
  if (server->options_.listen_fd >= 0) {
    server->listen_fd_ = server->options_.listen_fd;
  } else {
    auto fd = ListenUnix(server->options_.listen);
    if (!fd.ok()) return fd.status();
    server->listen_fd_ = *fd;
  }
  if (pipe2(server->wake_fds_, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError(strings::Cat("pipe2: ", std::strerror(errno)));
  }

  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(static_cast<int>(server->options_.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(server->options_.max_message_bytes));
  grpc::ResourceQuota quota("dogwatch-ipc");
  quota.SetMaxThreads(server->options_.max_threads);
  builder.SetResourceQuota(quota);
  for (grpc::Service* service : services) builder.RegisterService(service);
  server->server_ = builder.BuildAndStart();
  if (!server->server_) {
    unlink(server->options_.listen.path.c_str());
    return absl::InternalError("gRPC server failed to start");
  }
  server->accept_thread_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

void IpcServer::AcceptLoop() {
  auto logger = log::Get("ipc");
  log::RateLimiter refused_log(std::chrono::seconds(10));
  pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fds_[0], POLLIN, 0}};
  while (true) {
    int rc = poll(fds, 2, -1);
    if (rc < 0) {
      if (errno == EINTR) continue;
      logger->error("{}: poll failed: {}", options_.listen.path, std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    while (true) {
      int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (client < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          logger->warn("{}: accept failed: {}", options_.listen.path, std::strerror(errno));
        }
        break;
      }
      auto peer = GetPeerCredentials(client);
      if (!peer.ok() || !options_.policy.Allows(*peer)) {
        refused_.fetch_add(1);
        uint64_t suppressed = 0;
        if (refused_log.Allow(&suppressed)) {
          logger->warn(
              "{}: refused connection from uid {} pid {} (not allowed; {} more refused since last report)",
              options_.listen.path, peer.ok() ? static_cast<int64_t>(peer->uid) : -1,
              peer.ok() ? static_cast<int64_t>(peer->pid) : -1, suppressed);
        }
        close(client);
        continue;
      }
      accepted_.fetch_add(1);
      grpc::AddInsecureChannelFromFd(server_.get(), client);
    }
  }
}

void IpcServer::Shutdown(absl::Duration deadline) {
  if (shut_down_) return;
  shut_down_ = true;
  if (!server_) {  // Start() failed part-way: only the fds it opened need closing.
    for (int fd : {listen_fd_, wake_fds_[0], wake_fds_[1]}) {
      if (fd >= 0) close(fd);
    }
    return;
  }
  char byte = 1;
  (void)!write(wake_fds_[1], &byte, 1);
  if (accept_thread_.joinable()) accept_thread_.join();
  close(listen_fd_);
  unlink(options_.listen.path.c_str());
  server_->Shutdown(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(deadline)));
  server_->Wait();
  close(wake_fds_[0]);
  close(wake_fds_[1]);
}

IpcServer::~IpcServer() { Shutdown(absl::Seconds(1)); }

std::shared_ptr<grpc::Channel> CreateUnixChannel(const std::string& path, size_t max_message_bytes) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(max_message_bytes));
  args.SetMaxSendMessageSize(static_cast<int>(max_message_bytes));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  return grpc::CreateCustomChannel("unix:" + path, grpc::InsecureChannelCredentials(), args);
}

}  // namespace dogwatch::ipc
