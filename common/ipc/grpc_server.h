#pragma once
// A gRPC server on a unix socket whose connections are admitted by SO_PEERCRED before gRPC reads
// a byte: we accept() ourselves, check the caller against a PeerPolicy, and only then hand the fd
// to gRPC. (gRPC's own unix listener exposes no peer credentials to check.)

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/ipc/unix_socket.h"
#include "grpcpp/channel.h"
#include "grpcpp/server.h"

namespace dogwatch::ipc {

struct ServerOptions {
  ListenOptions listen;
  PeerPolicy policy;
  size_t max_message_bytes = 32 * 1024 * 1024;
  int max_threads = 8;
  // A socket already bound and listening (ListenUnix), adopted instead of binding `listen.path`:
  // a process that drops privileges binds first, drops, and only then starts threads.
  int listen_fd = -1;
};

class IpcServer {
 public:
  static absl::StatusOr<std::unique_ptr<IpcServer>> Start(ServerOptions options,
                                                          const std::vector<grpc::Service*>& services);
  ~IpcServer();
  IpcServer(const IpcServer&) = delete;
  IpcServer& operator=(const IpcServer&) = delete;

  // Stops accepting, cancels calls still running after `deadline`, removes the socket file.
  void Shutdown(absl::Duration deadline);

  int64_t accepted_connections() const { return accepted_.load(); }
  int64_t refused_connections() const { return refused_.load(); }
  const std::string& path() const { return options_.listen.path; }

 private:
  explicit IpcServer(ServerOptions options) : options_(std::move(options)) {}
  void AcceptLoop();

  ServerOptions options_;
  std::unique_ptr<grpc::Server> server_;
  int listen_fd_ = -1;
  int wake_fds_[2] = {-1, -1};
  std::thread accept_thread_;
  std::atomic<int64_t> accepted_{0};
  std::atomic<int64_t> refused_{0};
  bool shut_down_ = false;
};

// A channel to a dogwatch unix socket. gRPC reconnects on its own with the backoff set here
// (200 ms doubling to 5 s), so callers keep one channel for the process's life.
std::shared_ptr<grpc::Channel> CreateUnixChannel(const std::string& path, size_t max_message_bytes);

}  // namespace dogwatch::ipc
