#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

#include "common/ipc/grpc_server.h"
#include "common/ipc/unix_socket.h"
#include "dogwatch/core.grpc.pb.h"
#include "grpcpp/grpcpp.h"

using dogwatch::ipc::IpcServer;
using dogwatch::ipc::PeerPolicy;
using dogwatch::ipc::ServerOptions;

namespace {

class EchoCore final : public dogwatch::core::Core::Service {
  grpc::Status Submit(grpc::ServerContext*, const dogwatch::core::SubmitRequest* request,
                      dogwatch::core::SubmitResponse* response) override {
    response->set_transactions(static_cast<uint32_t>(request->body().size()));
    return grpc::Status::OK;
  }
};

std::string TempDir() {
  char dir[] = "/tmp/dogwatch-ipc-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  chmod(dir, 0755);  // the unprivileged child must be able to reach the socket file
  return dir;
}

ServerOptions Options(const std::string& path, unsigned mode = 0660) {
  ServerOptions options{{path, "agent_ipc.socket", mode, "", 16}, PeerPolicy(), 1024 * 1024, 4};
  return options;
}

// Runs in a forked child: only async-signal-safe calls. Returns 0 when the server answered the
// HTTP/2 preface, 1 when it closed the connection, 2 when connect() was refused by the file mode.
int ProbeAsUid(const std::string& path, uid_t uid) {
  signal(SIGPIPE, SIG_IGN);  // a refused connection is closed under us; see EPIPE, not death
  if (setgid(uid) != 0 || setuid(uid) != 0) return 3;
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return 2;
  static const char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  static const unsigned char kEmptySettings[] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
  if (write(fd, kPreface, sizeof(kPreface) - 1) < 0) return 1;
  if (write(fd, kEmptySettings, sizeof(kEmptySettings)) < 0) return 1;
  char buffer[64];
  ssize_t n = read(fd, buffer, sizeof(buffer));
  return n > 0 ? 0 : 1;
}

int RunProbe(const std::string& path, uid_t uid) {
  pid_t pid = fork();
  if (pid == 0) _exit(ProbeAsUid(path, uid));
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("the IPC socket is created with the configured restrictive mode and serves gRPC") {
  std::string dir = TempDir();
  std::string path = dir + "/agent.sock";
  EchoCore service;
  auto server = IpcServer::Start(Options(path, 0600), {&service});
  REQUIRE(server.ok());
  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0600);

  auto stub = dogwatch::core::Core::NewStub(dogwatch::ipc::CreateUnixChannel(path, 1024 * 1024));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  dogwatch::core::SubmitRequest request;
  request.set_body("hello");
  dogwatch::core::SubmitResponse response;
  grpc::Status status = stub->Submit(&context, request, &response);
  REQUIRE(status.ok());
  CHECK(response.transactions() == 5);
  CHECK((*server)->accepted_connections() >= 1);
  (*server)->Shutdown(absl::Seconds(1));
  CHECK(access(path.c_str(), F_OK) != 0);  // the socket file is removed on shutdown
}

TEST_CASE("an oversized IPC message is refused with RESOURCE_EXHAUSTED, and the server survives") {
  std::string dir = TempDir();
  std::string path = dir + "/agent.sock";
  EchoCore service;
  auto server = IpcServer::Start(Options(path), {&service});
  REQUIRE(server.ok());
  // The client allows big messages; the server's 1 MiB bound must still hold.
  auto stub = dogwatch::core::Core::NewStub(dogwatch::ipc::CreateUnixChannel(path, 64 * 1024 * 1024));
  dogwatch::core::SubmitRequest big;
  big.set_body(std::string(2 * 1024 * 1024, 'x'));
  dogwatch::core::SubmitResponse response;
  {
    grpc::ClientContext context;
    grpc::Status status = stub->Submit(&context, big, &response);
    CHECK(status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  dogwatch::core::SubmitRequest small;
  small.set_body("ok");
  grpc::ClientContext context;
  CHECK(stub->Submit(&context, small, &response).ok());
}

TEST_CASE("a stale socket file is replaced, a live one is not stolen") {
  std::string dir = TempDir();
  std::string path = dir + "/agent.sock";
  {
    // Leave a stale socket file behind: bound, never accepting, then closed.
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path.c_str());
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    close(fd);
  }
  EchoCore service;
  auto first = IpcServer::Start(Options(path), {&service});
  REQUIRE(first.ok());
  auto second = IpcServer::Start(Options(path), {&service});
  REQUIRE_FALSE(second.ok());
  CHECK_THAT(std::string(second.status().message()), Catch::Contains("in use by another running process"));
}

TEST_CASE("a missing socket directory is a clear error naming the key") {
  EchoCore service;
  auto server = IpcServer::Start(Options("/nonexistent-dogwatch-dir/agent.sock"), {&service});
  REQUIRE_FALSE(server.ok());
  std::string message(server.status().message());
  CHECK_THAT(message, Catch::Contains("agent_ipc.socket"));
  CHECK_THAT(message, Catch::Contains("/nonexistent-dogwatch-dir"));
  CHECK_THAT(message, Catch::Contains("does not exist"));
}

TEST_CASE("a second uid is refused by the file mode and by the peer-credential check") {
  // Switching to another uid needs root; CI runs the suite as root.
  REQUIRE(geteuid() == 0);
  constexpr uid_t kNobody = 65534;
  std::string dir = TempDir();
  std::string path = dir + "/agent.sock";
  EchoCore service;
  auto server = IpcServer::Start(Options(path, 0660), {&service});
  REQUIRE(server.ok());

  // Root (this process's uid) is admitted.
  CHECK(RunProbe(path, 0) == 0);
  // With mode 0660 and root's group, nobody cannot even connect.
  CHECK(RunProbe(path, kNobody) == 2);
  // Open the file mode wide: the peer-credential check must still refuse the connection.
  REQUIRE(chmod(path.c_str(), 0666) == 0);
  int64_t refused_before = (*server)->refused_connections();
  CHECK(RunProbe(path, kNobody) == 1);
  CHECK((*server)->refused_connections() == refused_before + 1);

  // An explicitly allowed uid gets through.
  (*server)->Shutdown(absl::Seconds(1));
  ServerOptions allowed = Options(path, 0666);
  allowed.policy = PeerPolicy({kNobody});
  auto server2 = IpcServer::Start(std::move(allowed), {&service});
  REQUIRE(server2.ok());
  CHECK(RunProbe(path, kNobody) == 0);
}
