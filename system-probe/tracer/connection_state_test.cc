#include "system-probe/tracer/connection_state.h"

#include <catch2/catch.hpp>

namespace dogwatch::sysprobe {
namespace {

std::shared_ptr<const ConnSnapshot> Conn(uint64_t cookie, uint64_t sent, uint64_t received,
                                         bool established = true, uint32_t failure = 0) {
  auto c = std::make_shared<ConnSnapshot>();
  c->key.cookie = cookie;
  c->key.remote_port = 80;
  c->totals.bytes_sent = sent;
  c->totals.bytes_received = received;
  c->established = established;
  c->failure_errno = failure;
  return c;
}

const ConnDelta* Find(const ClientReply& reply, uint64_t cookie, bool closed) {
  for (const auto& d : reply.connections) {
    if (d.conn->key.cookie == cookie && (d.closed != 0) == closed) return &d;
  }
  return nullptr;
}

TEST_CASE("two clients see independent deltas and each closed connection once") {
  ConnectionState state(StateLimits{});
  absl::Time t = absl::FromUnixSeconds(1000);
  // Both clients register before traffic.
  REQUIRE(state.Poll("a", t, {}).ok());
  REQUIRE(state.Poll("b", t, {}).ok());

  std::vector<std::shared_ptr<const ConnSnapshot>> active = {Conn(1, 100, 10)};
  auto a1 = state.Poll("a", t, active);
  REQUIRE(a1.ok());
  REQUIRE(Find(*a1, 1, false) != nullptr);
  CHECK(Find(*a1, 1, false)->delta.bytes_sent == 100);
  CHECK(Find(*a1, 1, false)->established == 1);

  active = {Conn(1, 250, 40)};
  auto a2 = state.Poll("a", t, active);
  REQUIRE(a2.ok());
  CHECK(Find(*a2, 1, false)->delta.bytes_sent == 150);
  CHECK(Find(*a2, 1, false)->delta.bytes_received == 30);
  CHECK(Find(*a2, 1, false)->established == 0);  // reported once per client

  // Client b polls for the first time since registering: the whole history.
  auto b1 = state.Poll("b", t, active);
  REQUIRE(b1.ok());
  CHECK(Find(*b1, 1, false)->delta.bytes_sent == 250);
  CHECK(Find(*b1, 1, false)->established == 1);

  // The connection closes with 300/50 in total.
  state.AddClosed(Conn(1, 300, 50));
  auto a3 = state.Poll("a", t, {});
  REQUIRE(a3.ok());
  REQUIRE(a3->connections.size() == 1);
  const ConnDelta* closed_a = Find(*a3, 1, true);
  REQUIRE(closed_a != nullptr);
  CHECK(closed_a->delta.bytes_sent == 50);
  CHECK(closed_a->delta.bytes_received == 10);
  auto a4 = state.Poll("a", t, {});
  CHECK(a4->connections.empty());  // once only

  auto b2 = state.Poll("b", t, {});
  REQUIRE(b2.ok());
  REQUIRE(Find(*b2, 1, true) != nullptr);
  CHECK(Find(*b2, 1, true)->delta.bytes_sent == 50);
  CHECK(state.Poll("b", t, {})->connections.empty());
}

TEST_CASE("a connection opened and closed between two polls is reported whole, with its failure") {
  ConnectionState state(StateLimits{});
  absl::Time t = absl::FromUnixSeconds(1000);
  REQUIRE(state.Poll("a", t, {}).ok());
  state.AddClosed(Conn(7, 0, 0, /*established=*/false, /*failure=*/111));
  auto reply = state.Poll("a", t, {});
  REQUIRE(reply->connections.size() == 1);
  CHECK(reply->connections[0].closed == 1);
  CHECK(reply->connections[0].established == 0);
  CHECK(reply->connections[0].conn->failure_errno == 111);
}

TEST_CASE("a connection seen active and closed in the same poll is not double counted") {
  ConnectionState state(StateLimits{});
  absl::Time t = absl::FromUnixSeconds(1000);
  REQUIRE(state.Poll("a", t, {Conn(3, 10, 0)}).ok());
  state.AddClosed(Conn(3, 30, 0));
  auto reply = state.Poll("a", t, {Conn(3, 30, 0)});
  REQUIRE(reply.ok());
  uint64_t total = 0;
  for (const auto& d : reply->connections) total += d.delta.bytes_sent;
  CHECK(total == 20);
  CHECK(Find(*reply, 3, true) != nullptr);
}

TEST_CASE("closed buffers and DNS tables are bounded and count what they shed") {
  StateLimits limits;
  limits.max_closed_per_client = 2;
  limits.max_dns_per_client = 1;
  ConnectionState state(limits);
  absl::Time t = absl::FromUnixSeconds(1000);
  REQUIRE(state.Poll("a", t, {}).ok());
  for (uint64_t i = 0; i < 5; ++i) state.AddClosed(Conn(i, 1, 1));
  state.AddDns({"a.example", 1}, 0, 100, false);
  state.AddDns({"a.example", 1}, 3, 0, false);
  state.AddDns({"b.example", 1}, 0, 100, false);
  auto reply = state.Poll("a", t, {});
  CHECK(reply->connections.size() == 2);
  CHECK(state.stats().closed_dropped == 3);
  CHECK(state.stats().dns_dropped == 1);
  REQUIRE(reply->dns.size() == 1);
  CHECK(reply->dns[0].first.domain == "a.example");
  CHECK(reply->dns[0].second.successes == 1);
  CHECK(reply->dns[0].second.success_latency_sum_us == 100);
  CHECK(reply->dns[0].second.failures_by_rcode.at(3) == 1);
}

TEST_CASE("idle clients expire and the client count is bounded") {
  StateLimits limits;
  limits.max_clients = 2;
  ConnectionState state(limits);
  absl::Time t = absl::FromUnixSeconds(1000);
  REQUIRE(state.Poll("a", t, {}).ok());
  REQUIRE(state.Poll("b", t, {}).ok());
  auto refused = state.Poll("c", t, {});
  CHECK(refused.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(state.stats().clients_refused == 1);
  // Three minutes later a and b have expired; c is welcome and a closed connection is not kept
  // for the expired ones.
  auto later = t + absl::Minutes(3);
  REQUIRE(state.Poll("c", later, {}).ok());
  CHECK(state.stats().clients_expired == 2);
  CHECK(state.stats().clients == 1);
}

TEST_CASE("counters that go backwards give zero, not a wrapped delta") {
  ConnCounters before{100, 100, 10, 10, 2};
  ConnCounters now{50, 150, 5, 20, 1};
  ConnCounters d = Subtract(now, before);
  CHECK(d.bytes_sent == 0);
  CHECK(d.bytes_received == 50);
  CHECK(d.packets_sent == 0);
  CHECK(d.packets_received == 10);
  CHECK(d.retransmits == 0);
}

}  // namespace
}  // namespace dogwatch::sysprobe
