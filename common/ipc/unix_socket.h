#pragma once
// Unix stream sockets with the checks every dogwatch IPC endpoint needs: a clear error for a
// missing directory, stale-socket cleanup that never steals a live socket, a restrictive mode and
// group, and the caller's credentials from SO_PEERCRED.

#include <sys/socket.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace dogwatch::ipc {

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

absl::StatusOr<PeerCredentials> GetPeerCredentials(int fd);

struct ListenOptions {
  std::string path;
  std::string config_key;  // named in errors, e.g. "agent_ipc.socket"
  unsigned mode = 0660;
  std::string group;  // empty: keep the process's group
  int backlog = 64;
  // SOCK_STREAM (listens) or SOCK_DGRAM (bound only: DogStatsD's datagram socket).
  int socket_type = SOCK_STREAM;
};

// Binds (and, for stream sockets, listens); returns the fd (close-on-exec, non-blocking).
absl::StatusOr<int> ListenUnix(const ListenOptions& options);

// Who may talk to an endpoint, beyond what the file mode already enforces.
class PeerPolicy {
 public:
  // Root and this process's effective uid are always allowed; `extra_uids` are added.
  explicit PeerPolicy(std::vector<uid_t> extra_uids = {}, std::vector<gid_t> allowed_gids = {});
  bool Allows(const PeerCredentials& peer) const;
  static absl::StatusOr<PeerPolicy> FromConfig(const std::vector<std::string>& uid_strings,
                                               const std::string& group);

 private:
  std::vector<uid_t> uids_;
  std::vector<gid_t> gids_;
};

absl::StatusOr<gid_t> LookupGroup(const std::string& group);

}  // namespace dogwatch::ipc
