#include "process-agent/checks/connections_check.h"

#include <catch2/catch.hpp>

#include "process-agent/payload/message.h"

namespace dogwatch::process {
namespace {

namespace pa = datadog::process_agent;
namespace sp = dogwatch::sysprobe;

sp::Connection* AddConnection(sp::GetConnectionsResponse* reply, sp::ConnectionType type,
                              const std::string& lip, uint32_t lport, const std::string& rip, uint32_t rport,
                              int32_t pid) {
  sp::Connection* c = reply->add_connections();
  c->set_type(type);
  c->set_family(lip.find(':') != std::string::npos ? sp::FAMILY_V6 : sp::FAMILY_V4);
  c->mutable_local()->set_ip(lip);
  c->mutable_local()->set_port(lport);
  c->mutable_remote()->set_ip(rip);
  c->mutable_remote()->set_port(rport);
  c->set_pid(pid);
  return c;
}

TEST_CASE("a system-probe reply becomes CollectorConnections with deltas, failures, DNS and containers") {
  sp::GetConnectionsResponse reply;
  sp::Connection* tcp =
      AddConnection(&reply, sp::CONNECTION_TYPE_TCP, "127.0.0.1", 40000, "127.0.0.1", 8080, 42);
  tcp->set_bytes_sent(1234567);
  tcp->set_bytes_received(765431);
  tcp->set_packets_sent(30);
  tcp->set_retransmits(2);
  tcp->set_direction(sp::DIRECTION_OUTGOING);
  tcp->set_rtt_us(55);
  tcp->set_rtt_var_us(7);
  tcp->set_established(1);
  tcp->set_closed(1);
  tcp->set_net_ns(4026531833u);
  sp::Connection* refused =
      AddConnection(&reply, sp::CONNECTION_TYPE_TCP, "10.0.0.2", 40001, "10.0.0.9", 9, 43);
  refused->set_failures(1);
  refused->set_failure_errno(111);
  refused->set_closed(1);
  AddConnection(&reply, sp::CONNECTION_TYPE_UDP, "10.0.0.2", 50000, "10.0.0.53", 53, 44);
  sp::DnsStats* ok = reply.add_dns();
  ok->set_domain("ok.example");
  ok->set_query_type(1);
  ok->set_successes(2);
  ok->set_success_latency_sum_us(300);
  ok->set_client_port(50000);
  ok->set_server_ip("10.0.0.53");
  sp::DnsStats* missing = reply.add_dns();
  missing->set_domain("missing.example");
  missing->set_query_type(28);
  (*missing->mutable_failures_by_rcode())[3] = 1;
  missing->set_client_port(50000);
  missing->set_server_ip("10.0.0.53");
  sp::DnsStats* orphan = reply.add_dns();
  orphan->set_domain("orphan.example");
  orphan->set_client_port(1);
  orphan->set_server_ip("10.0.0.53");
  (*reply.mutable_counters())["kernel_conn_map_full"] = 3;

  ConnectionsBuildOptions options;
  options.hostname = "host-a";
  options.host = {"x86_64", "6.18.0", "debian", "12", "debian"};
  options.container_for_pid = [](int32_t pid) { return pid == 42 ? std::string(64, 'c') : std::string(); };
  ConnectionsBuildStats stats;
  auto messages = BuildCollectorConnections(reply, options, &stats);
  REQUIRE(messages.size() == 1);
  const pa::CollectorConnections& m = messages[0];
  CHECK(m.hostname() == "host-a");
  CHECK(m.groupsize() == 1);
  CHECK(m.kernelversion() == "6.18.0");
  CHECK(m.platform() == "debian");
  CHECK(m.conntelemetrymap().at("kernel_conn_map_full") == 3);
  REQUIRE(m.connections_size() == 3);
  const pa::Connection& c0 = m.connections(0);
  CHECK(c0.lastbytessent() == 1234567);
  CHECK(c0.lastbytesreceived() == 765431);
  CHECK(c0.lastretransmits() == 2);
  CHECK(c0.direction() == pa::outgoing);
  CHECK(c0.type() == pa::tcp);
  CHECK(c0.family() == pa::v4);
  CHECK(c0.rtt() == 55);
  CHECK(c0.intrahost());
  CHECK(c0.lasttcpestablished() == 1);
  CHECK(c0.lasttcpclosed() == 1);
  CHECK(c0.laddr().containerid() == std::string(64, 'c'));
  CHECK(m.containerforpid().at(42) == std::string(64, 'c'));
  CHECK(m.connections(1).tcpfailuresbyerrcode().at(111) == 1);
  CHECK_FALSE(m.connections(1).intrahost());

  const pa::Connection& dns = m.connections(2);
  REQUIRE(m.domains_size() == 2);
  CHECK(dns.dnssuccessfulresponses() == 2);
  CHECK(dns.dnsfailedresponses() == 1);
  CHECK(dns.dnssuccesslatencysum() == 300000);  // nanoseconds, as Datadog sends
  int ok_index = m.domains(0) == "ok.example" ? 0 : 1;
  const pa::DNSStats& by_type = dns.dnsstatsbydomainbyquerytype().at(ok_index).dnsstatsbyquerytype().at(1);
  CHECK(by_type.dnscountbyrcode().at(0) == 2);
  CHECK(dns.dnsstatsbydomainbyquerytype()
            .at(1 - ok_index)
            .dnsstatsbyquerytype()
            .at(28)
            .dnscountbyrcode()
            .at(3) == 1);
  CHECK(stats.dns_attached == 2);
  CHECK(stats.dns_unattached == 1);

  // The framed message decodes back to the same body.
  auto framed = EncodeMessage(MessageType::kCollectorConnections, m, 1700000000000);
  REQUIRE(framed.ok());
  auto decoded = DecodeMessage(*framed);
  REQUIRE(decoded.ok());
}

TEST_CASE("connections are split per max_conns_per_message, each message whole") {
  sp::GetConnectionsResponse reply;
  for (uint32_t i = 0; i < 1300; ++i) {
    AddConnection(&reply, sp::CONNECTION_TYPE_TCP, "10.0.0.1", 30000 + i, "10.0.0.2", 443, 7);
  }
  ConnectionsBuildOptions options;
  ConnectionsBuildStats stats;
  auto messages = BuildCollectorConnections(reply, options, &stats);
  REQUIRE(messages.size() == 3);
  CHECK(messages[0].connections_size() == 600);
  CHECK(messages[1].connections_size() == 600);
  CHECK(messages[2].connections_size() == 100);
  for (const auto& m : messages) CHECK(m.groupsize() == 3);
  CHECK(messages[2].connections(99).laddr().port() == 31299);
}

TEST_CASE("an empty reply still reports the host (one empty message)") {
  ConnectionsBuildStats stats;
  auto messages = BuildCollectorConnections(sp::GetConnectionsResponse(), ConnectionsBuildOptions{}, &stats);
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].connections_size() == 0);
}

}  // namespace
}  // namespace dogwatch::process
