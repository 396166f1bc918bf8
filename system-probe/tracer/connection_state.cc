#include "system-probe/tracer/connection_state.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace dogwatch::sysprobe {

namespace {
uint64_t Minus(uint64_t now, uint64_t before) { return now >= before ? now - before : 0; }
}  // namespace

ConnCounters Subtract(const ConnCounters& now, const ConnCounters& before) {
  return {Minus(now.bytes_sent, before.bytes_sent), Minus(now.bytes_received, before.bytes_received),
          Minus(now.packets_sent, before.packets_sent), Minus(now.packets_received, before.packets_received),
          Minus(now.retransmits, before.retransmits)};
}

ConnectionState::ConnectionState(StateLimits limits) : limits_(limits) {}

void ConnectionState::AddClosed(std::shared_ptr<const ConnSnapshot> conn) {
  for (auto& [id, client] : clients_) {
    if (client.closed.size() >= limits_.max_closed_per_client) {
      ++stats_.closed_dropped;
      continue;
    }
    client.closed.push_back(conn);
  }
}

void ConnectionState::AddDns(const DnsKey& key, uint32_t rcode, uint64_t latency_us, bool timeout) {
  for (auto& [id, client] : clients_) {
    auto it = client.dns.find(key);
    if (it == client.dns.end()) {
      if (client.dns.size() >= limits_.max_dns_per_client) {
        ++stats_.dns_dropped;
        continue;
      }
      it = client.dns.emplace(key, DnsCounts{}).first;
    }
    DnsCounts& counts = it->second;
    if (timeout) {
      ++counts.timeouts;
    } else if (rcode == 0) {
      ++counts.successes;
      counts.success_latency_sum_us += latency_us;
    } else {
      ++counts.failures_by_rcode[rcode];
    }
  }
}

void ConnectionState::ExpireClients(absl::Time now) {
  for (auto it = clients_.begin(); it != clients_.end();) {
    if (now - it->second.last_poll > limits_.client_expiry) {
      ++stats_.clients_expired;
      clients_.erase(it++);
    } else {
      ++it;
    }
  }
}

absl::StatusOr<ClientReply> ConnectionState::Poll(
    std::string_view client_id, absl::Time now,
    absl::Span<const std::shared_ptr<const ConnSnapshot>> active) {
  ExpireClients(now);
  const std::string id(client_id);  // Debian's Abseil has its own string_view: look up by string
  auto it = clients_.find(id);
  if (it == clients_.end()) {
    if (clients_.size() >= limits_.max_clients) {
      ++stats_.clients_refused;
      return absl::ResourceExhaustedError(absl::StrCat("too many GetConnections clients (",
                                                       limits_.max_clients, "); idle ones expire after ",
                                                       absl::FormatDuration(limits_.client_expiry)));
    }
    it = clients_.emplace(id, Client{}).first;
  }
  Client& client = it->second;
  client.last_poll = now;
  const uint64_t generation = ++client.generation;

  ClientReply reply;
  reply.connections.reserve(active.size() + client.closed.size());
  for (const auto& conn : active) {
    Seen& seen = client.seen[conn->key];
    ConnDelta delta{conn, Subtract(conn->totals, seen.totals), 0, 0};
    if (conn->established && !seen.established_reported) {
      delta.established = 1;
      seen.established_reported = true;
    }
    seen.totals = conn->totals;
    seen.generation = generation;
    reply.connections.push_back(std::move(delta));
  }
  // Closed after the active ones: a connection caught by both (it closed while being read) reports
  // its remaining bytes here and its close exactly once.
  for (auto& conn : client.closed) {
    auto seen_it = client.seen.find(conn->key);
    Seen seen = seen_it == client.seen.end() ? Seen{} : seen_it->second;
    ConnDelta delta{conn, Subtract(conn->totals, seen.totals), 0, 1};
    if (conn->established && !seen.established_reported) delta.established = 1;
    if (seen_it != client.seen.end()) client.seen.erase(seen_it);
    reply.connections.push_back(std::move(delta));
  }
  client.closed.clear();
  // Whatever this client saw before and is neither active nor closed now went away unreported
  // (expired from the kernel map): forget it so the table stays bounded by the live set.
  for (auto seen_it = client.seen.begin(); seen_it != client.seen.end();) {
    if (seen_it->second.generation != generation) {
      client.seen.erase(seen_it++);
    } else {
      ++seen_it;
    }
  }
  reply.dns.reserve(client.dns.size());
  for (auto& [key, counts] : client.dns) reply.dns.emplace_back(key, std::move(counts));
  client.dns.clear();
  return reply;
}

StateStats ConnectionState::stats() const {
  StateStats out = stats_;
  out.clients = clients_.size();
  return out;
}

}  // namespace dogwatch::sysprobe
