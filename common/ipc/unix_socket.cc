#include "common/ipc/unix_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/strings/strings.h"

namespace dogwatch::ipc {
namespace {

using strings::Cat;

std::string Errno() { return std::strerror(errno); }

std::string ParentDirectory(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::StatusOr<sockaddr_un> Address(const std::string& path, const std::string& key) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty()) return absl::InvalidArgumentError(Cat(key, ": socket path is empty"));
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        Cat(key, ": socket path '", path, "' is longer than ", sizeof(addr.sun_path) - 1, " bytes"));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// A socket file is stale when nobody accepts on it. Never unlink a live one: two agents on the
// same path would silently split their clients.
absl::Status RemoveStaleSocket(const std::string& path, const sockaddr_un& addr, const std::string& key,
                               int socket_type) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::InternalError(Cat(key, ": cannot stat '", path, "': ", Errno()));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        Cat(key, ": '", path, "' exists and is not a socket; refusing to replace it"));
  }
  int probe = socket(AF_UNIX, socket_type | SOCK_CLOEXEC, 0);
  if (probe < 0) return absl::InternalError(Cat(key, ": socket(): ", Errno()));
  int rc = connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  int saved = errno;
  close(probe);
  if (rc == 0) {
    return absl::AlreadyExistsError(Cat(key, ": '", path, "' is in use by another running process"));
  }
  if (saved != ECONNREFUSED && saved != ENOENT) {
    return absl::InternalError(Cat(key, ": cannot probe '", path, "': ", std::strerror(saved)));
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::InternalError(Cat(key, ": cannot remove stale socket '", path, "': ", Errno()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PeerCredentials> GetPeerCredentials(int fd) {
  struct ucred cred {};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return absl::InternalError(Cat("SO_PEERCRED: ", Errno()));
  }
  return PeerCredentials{cred.pid, cred.uid, cred.gid};
}

absl::StatusOr<gid_t> LookupGroup(const std::string& group) {
  if (group.empty()) return getegid();
  if (std::all_of(group.begin(), group.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return static_cast<gid_t>(std::stoul(group));
  }
  struct group grp;
  struct group* result = nullptr;
  std::vector<char> buffer(16384);
  if (getgrnam_r(group.c_str(), &grp, buffer.data(), buffer.size(), &result) != 0 || result == nullptr) {
    return absl::NotFoundError(Cat("group '", group, "' does not exist"));
  }
  return result->gr_gid;
}

absl::StatusOr<int> ListenUnix(const ListenOptions& options) {
  const std::string& key = options.config_key.empty() ? std::string("socket") : options.config_key;
  auto addr = Address(options.path, key);
  if (!addr.ok()) return addr.status();

  std::string dir = ParentDirectory(options.path);
  struct stat dir_stat;
  if (stat(dir.c_str(), &dir_stat) != 0 || !S_ISDIR(dir_stat.st_mode)) {
    return absl::FailedPreconditionError(Cat(key, ": directory '", dir, "' for socket '", options.path,
                                             "' does not exist (create it, or set ", key, ")"));
  }
  absl::Status stale = RemoveStaleSocket(options.path, *addr, key, options.socket_type);
  if (!stale.ok()) return stale;

  if (options.socket_type != SOCK_STREAM && options.socket_type != SOCK_DGRAM) {
    return absl::InvalidArgumentError(Cat(key, ": unsupported socket type ", options.socket_type));
  }
  int fd = socket(AF_UNIX, options.socket_type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return absl::InternalError(Cat(key, ": socket(): ", Errno()));
  // Bind under a restrictive umask so the socket is never reachable with a wider mode, not even
  // between bind() and chmod().
  mode_t old_umask = umask(0177);
  int rc = bind(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr));
  int saved = errno;
  umask(old_umask);
  if (rc != 0) {
    close(fd);
    return absl::InternalError(Cat(key, ": cannot bind '", options.path, "': ", std::strerror(saved)));
  }
  if (!options.group.empty()) {
    auto gid = LookupGroup(options.group);
    if (!gid.ok()) {
      close(fd);
      unlink(options.path.c_str());
      return absl::NotFoundError(Cat(key, ": ", gid.status().message()));
    }
    if (chown(options.path.c_str(), static_cast<uid_t>(-1), *gid) != 0) {
      saved = errno;
      close(fd);
      unlink(options.path.c_str());
      return absl::PermissionDeniedError(Cat(key, ": cannot give '", options.path, "' to group '",
                                             options.group, "': ", std::strerror(saved)));
    }
  }
  if (chmod(options.path.c_str(), options.mode & 0777) != 0) {
    saved = errno;
    close(fd);
    unlink(options.path.c_str());
    return absl::InternalError(Cat(key, ": chmod '", options.path, "': ", std::strerror(saved)));
  }
  if (options.socket_type == SOCK_STREAM && listen(fd, options.backlog) != 0) {
    saved = errno;
    close(fd);
    unlink(options.path.c_str());
    return absl::InternalError(Cat(key, ": listen: ", std::strerror(saved)));
  }
  return fd;
}

PeerPolicy::PeerPolicy(std::vector<uid_t> extra_uids, std::vector<gid_t> allowed_gids)
    : uids_(std::move(extra_uids)), gids_(std::move(allowed_gids)) {
  uids_.push_back(0);
  uids_.push_back(geteuid());
}

bool PeerPolicy::Allows(const PeerCredentials& peer) const {
  if (std::find(uids_.begin(), uids_.end(), peer.uid) != uids_.end()) return true;
  return std::find(gids_.begin(), gids_.end(), peer.gid) != gids_.end();
}

absl::StatusOr<PeerPolicy> PeerPolicy::FromConfig(const std::vector<std::string>& uid_strings,
                                                  const std::string& group) {
  std::vector<uid_t> uids;
  for (const auto& text : uid_strings) {
    if (text.empty() || text.size() > 10 ||
        !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return absl::InvalidArgumentError(Cat("agent_ipc.allowed_uids: '", text, "' is not a numeric uid"));
    }
    uids.push_back(static_cast<uid_t>(std::stoul(text)));
  }
  std::vector<gid_t> gids;
  // An explicitly configured socket group admits processes whose primary group it is (the
  // dogwatch group in packaged installs); without one, only uids are trusted.
  if (!group.empty()) {
    auto gid = LookupGroup(group);
    if (!gid.ok()) return absl::NotFoundError(Cat("agent_ipc.socket_group: ", gid.status().message()));
    gids.push_back(*gid);
  }
  return PeerPolicy(std::move(uids), std::move(gids));
}

}  // namespace dogwatch::ipc
