#include "trace-agent/agent/dogstatsd_forwarder.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/strings/strings.h"

namespace dogwatch::trace {

DogstatsdForwarder::DogstatsdForwarder(std::string socket_path, int udp_port, size_t max_datagram_bytes)
    : socket_path_(std::move(socket_path)), udp_port_(udp_port), max_datagram_bytes_(max_datagram_bytes) {}

DogstatsdForwarder::~DogstatsdForwarder() {
  if (fd_ >= 0) close(fd_);
}

absl::Status DogstatsdForwarder::SendDatagram(std::string_view datagram) {
  struct stat st;
  bool use_unix = !socket_path_.empty() && stat(socket_path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
  if (!use_unix && udp_port_ <= 0) {
    return absl::UnavailableError("DogStatsD is off (no dogstatsd_socket and dogstatsd_port is 0)");
  }
  if (fd_ < 0) {
    fd_ = socket(use_unix ? AF_UNIX : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return absl::InternalError(strings::Cat("socket: ", std::strerror(errno)));
  }
  ssize_t sent;
  if (use_unix) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_path_.c_str(), sizeof(addr.sun_path) - 1);
    sent = sendto(fd_, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  } else {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(udp_port_));
    sent = sendto(fd_, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  }
  if (sent < 0) {
    int saved = errno;
    // The socket family may have changed (the unix socket appeared or went away): start afresh.
    close(fd_);
    fd_ = -1;
    return absl::UnavailableError(strings::Cat("sending to DogStatsD: ", std::strerror(saved)));
  }
  return absl::OkStatus();
}

absl::Status DogstatsdForwarder::Send(std::string_view lines) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string datagram;
  size_t start = 0;
  absl::Status result = absl::OkStatus();
  while (start < lines.size()) {
    size_t end = lines.find('\n', start);
    if (end == std::string_view::npos) end = lines.size();
    std::string_view line = lines.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    if (line.size() > max_datagram_bytes_) {
      result =
          absl::InvalidArgumentError(strings::Cat("a line is longer than ", max_datagram_bytes_, " bytes"));
      continue;
    }
    if (!datagram.empty() && datagram.size() + 1 + line.size() > max_datagram_bytes_) {
      absl::Status sent = SendDatagram(datagram);
      if (!sent.ok()) return sent;
      datagram.clear();
    }
    if (!datagram.empty()) datagram.push_back('\n');
    datagram.append(line);
  }
  if (!datagram.empty()) {
    absl::Status sent = SendDatagram(datagram);
    if (!sent.ok()) return sent;
  }
  return result;
}

}  // namespace dogwatch::trace
