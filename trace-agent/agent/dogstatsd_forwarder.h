#pragma once
// Hands DogStatsD lines from tracers (/dogstatsd/v2/proxy) to the core's DogStatsD server as
// datagrams, over its unix socket when there is one, else UDP to 127.0.0.1:dogstatsd_port, the
// way the Datadog trace-agent relays them.

#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace dogwatch::trace {

class DogstatsdForwarder {
 public:
  DogstatsdForwarder(std::string socket_path, int udp_port, size_t max_datagram_bytes = 8192);
  ~DogstatsdForwarder();
  // Splits `lines` on '\n' into datagrams of at most max_datagram_bytes (never splitting a line;
  // a longer line is refused and counted by the caller through the error).
  absl::Status Send(std::string_view lines);

 private:
  absl::Status SendDatagram(std::string_view datagram);
  const std::string socket_path_;
  const int udp_port_;
  const size_t max_datagram_bytes_;
  std::mutex mu_;
  int fd_ = -1;
};

}  // namespace dogwatch::trace
