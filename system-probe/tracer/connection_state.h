// Per-client connection deltas with Datadog's semantics (pkg/network/state.go): every client of
// GetConnections keeps its own last-seen counters per connection and its own buffer of connections
// closed since its last call, so two clients polling at different rates each see exact deltas and
// each closed connection exactly once. Pure C++ (no kernel): the tracer feeds it snapshots.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace dogwatch::sysprobe {

// Identifies one flow for as long as its socket lives: the socket cookie plus the remote end (an
// unconnected UDP socket has one flow per peer).
struct ConnKey {
  uint64_t cookie = 0;
  std::array<uint8_t, 16> remote_addr{};
  uint16_t remote_port = 0;

  friend bool operator==(const ConnKey&, const ConnKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const ConnKey& k) {
    return H::combine(std::move(h), k.cookie, k.remote_addr, k.remote_port);
  }
};

struct ConnCounters {
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  uint64_t packets_sent = 0;
  uint64_t packets_received = 0;
  uint64_t retransmits = 0;
};

enum class FlowDirection : uint8_t { kUnknown = 0, kIncoming = 1, kOutgoing = 2 };

// One connection as read from the kernel, with absolute (since first seen) counters.
struct ConnSnapshot {
  ConnKey key;
  std::array<uint8_t, 16> local_addr{};
  std::array<uint8_t, 16> remote_addr{};
  uint16_t local_port = 0;
  uint16_t remote_port = 0;
  uint8_t family = 4;    // 4 or 6
  uint8_t protocol = 6;  // IPPROTO_TCP / IPPROTO_UDP
  FlowDirection direction = FlowDirection::kUnknown;
  bool established = false;
  uint32_t netns = 0;
  uint32_t pid = 0;
  std::string command;
  ConnCounters totals;
  uint32_t rtt_us = 0;
  uint32_t rtt_var_us = 0;
  uint32_t failure_errno = 0;
  absl::Time last_update;
};

// What one client receives for one connection.
struct ConnDelta {
  std::shared_ptr<const ConnSnapshot> conn;
  ConnCounters delta;
  uint32_t established = 0;  // 1 the first time this client sees the handshake done
  uint32_t closed = 0;       // 1 in the one reply that reports the close
};

// DNS answers are counted per domain and query type for each querying flow (client port to one
// server), so the process-agent can attach them to that connection as Datadog does.
struct DnsKey {
  std::string domain;
  uint16_t query_type = 0;
  uint16_t client_port = 0;
  std::array<uint8_t, 16> server_addr{};
  uint8_t family = 4;
  friend bool operator==(const DnsKey&, const DnsKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const DnsKey& k) {
    return H::combine(std::move(h), k.domain, k.query_type, k.client_port, k.server_addr, k.family);
  }
};

struct DnsCounts {
  uint64_t successes = 0;  // rcode 0
  absl::flat_hash_map<uint32_t, uint64_t> failures_by_rcode;
  uint64_t timeouts = 0;
  uint64_t success_latency_sum_us = 0;
};

struct ClientReply {
  std::vector<ConnDelta> connections;
  std::vector<std::pair<DnsKey, DnsCounts>> dns;
};

struct StateLimits {
  size_t max_clients = 32;
  // Closed connections buffered per client between its calls (max_connection_state_buffered).
  size_t max_closed_per_client = 75000;
  // Distinct (domain, type) DNS entries kept per client between its calls (max_dns_stats).
  size_t max_dns_per_client = 20000;
  // A client not seen for this long is forgotten with its buffers.
  absl::Duration client_expiry = absl::Minutes(2);
};

struct StateStats {
  uint64_t clients = 0;
  uint64_t clients_expired = 0;
  uint64_t clients_refused = 0;
  uint64_t closed_dropped = 0;  // a client's closed buffer was full
  uint64_t dns_dropped = 0;     // a client's DNS table was full
};

class ConnectionState {
 public:
  explicit ConnectionState(StateLimits limits);

  // A connection closed: buffered for every client registered now.
  void AddClosed(std::shared_ptr<const ConnSnapshot> conn);
  // One DNS answer (or timeout) for every registered client.
  void AddDns(const DnsKey& key, uint32_t rcode, uint64_t latency_us, bool timeout);

  // The reply for `client_id`: every active connection with its delta since this client's previous
  // call, then the connections closed since then, each once. A new client is registered (refused
  // with ResourceExhausted beyond max_clients). Expires idle clients first.
  absl::StatusOr<ClientReply> Poll(std::string_view client_id, absl::Time now,
                                   absl::Span<const std::shared_ptr<const ConnSnapshot>> active);

  StateStats stats() const;

 private:
  struct Seen {
    ConnCounters totals;
    bool established_reported = false;
    uint64_t generation = 0;
  };
  struct Client {
    absl::Time last_poll;
    uint64_t generation = 0;
    absl::flat_hash_map<ConnKey, Seen> seen;
    std::deque<std::shared_ptr<const ConnSnapshot>> closed;
    absl::flat_hash_map<DnsKey, DnsCounts> dns;
  };

  void ExpireClients(absl::Time now);

  StateLimits limits_;
  absl::flat_hash_map<std::string, Client> clients_;
  StateStats stats_;
};

// Counter difference that never wraps: a counter that went backwards reports 0.
ConnCounters Subtract(const ConnCounters& now, const ConnCounters& before);

}  // namespace dogwatch::sysprobe
