#include "process-agent/checks/connections_check.h"

#include <chrono>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/container/container_id.h"
#include "common/ipc/grpc_server.h"
#include "grpcpp/client_context.h"
#include "process-agent/payload/message.h"
#include "process-agent/payload/request_headers.h"

namespace dogwatch::process {

namespace pa = datadog::process_agent;
namespace sp = dogwatch::sysprobe;

namespace {

pa::ConnectionDirection ToIntake(sp::Direction d) {
  switch (d) {
    case sp::DIRECTION_INCOMING:
      return pa::incoming;
    case sp::DIRECTION_OUTGOING:
      return pa::outgoing;
    case sp::DIRECTION_LOCAL:
      return pa::local;
    default:
      return pa::unspecified;
  }
}

// Both ends on this host: loopback addresses (the backend also resolves other local addresses).
bool IsLoopback(const std::string& ip) { return ip.rfind("127.", 0) == 0 || ip == "::1"; }

// Where DNS answers go: the querying flow (client port -> server:53).
struct FlowKey {
  uint32_t local_port;
  std::string remote_ip;
  friend bool operator==(const FlowKey&, const FlowKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const FlowKey& k) {
    return H::combine(std::move(h), k.local_port, k.remote_ip);
  }
};

}  // namespace

std::vector<pa::CollectorConnections> BuildCollectorConnections(const sp::GetConnectionsResponse& reply,
                                                                const ConnectionsBuildOptions& options,
                                                                ConnectionsBuildStats* stats) {
  std::vector<pa::Connection> connections;
  connections.reserve(static_cast<size_t>(reply.connections_size()));
  absl::flat_hash_map<FlowKey, size_t> dns_flows;  // querying UDP flow -> index in `connections`
  absl::flat_hash_map<int32_t, std::string> containers;
  for (const sp::Connection& in : reply.connections()) {
    pa::Connection out;
    out.set_pid(in.pid());
    out.mutable_laddr()->set_ip(in.local().ip());
    out.mutable_laddr()->set_port(static_cast<int32_t>(in.local().port()));
    out.mutable_raddr()->set_ip(in.remote().ip());
    out.mutable_raddr()->set_port(static_cast<int32_t>(in.remote().port()));
    out.set_family(in.family() == sp::FAMILY_V6 ? pa::v6 : pa::v4);
    out.set_type(in.type() == sp::CONNECTION_TYPE_UDP ? pa::udp : pa::tcp);
    out.set_lastbytessent(in.bytes_sent());
    out.set_lastbytesreceived(in.bytes_received());
    out.set_lastpacketssent(in.packets_sent());
    out.set_lastpacketsreceived(in.packets_received());
    out.set_lastretransmits(in.retransmits());
    out.set_direction(ToIntake(in.direction()));
    out.set_netns(in.net_ns());
    out.set_rtt(in.rtt_us());
    out.set_rttvar(in.rtt_var_us());
    out.set_intrahost(IsLoopback(in.remote().ip()));
    out.set_lasttcpestablished(in.established());
    out.set_lasttcpclosed(in.closed());
    if (in.failures() > 0 && in.failure_errno() != 0) {
      (*out.mutable_tcpfailuresbyerrcode())[in.failure_errno()] += in.failures();
    }
    if (options.container_for_pid && in.pid() > 0) {
      auto it = containers.find(in.pid());
      if (it == containers.end())
        it = containers.emplace(in.pid(), options.container_for_pid(in.pid())).first;
      if (!it->second.empty()) out.mutable_laddr()->set_containerid(it->second);
    }
    if (in.type() == sp::CONNECTION_TYPE_UDP && in.remote().port() == 53) {
      dns_flows.emplace(FlowKey{in.local().port(), in.remote().ip()}, connections.size());
    }
    connections.push_back(std::move(out));
  }

  // DNS: per querying connection, per domain (index into `domains`) and query type.
  std::vector<std::string> domains;
  absl::flat_hash_map<std::string, int32_t> domain_index;
  for (const sp::DnsStats& dns : reply.dns()) {
    auto flow = dns_flows.find(FlowKey{dns.client_port(), dns.server_ip()});
    if (flow == dns_flows.end()) {
      ++stats->dns_unattached;
      continue;
    }
    auto [index_it, added] = domain_index.emplace(dns.domain(), static_cast<int32_t>(domains.size()));
    if (added) domains.push_back(dns.domain());
    pa::Connection& conn = connections[flow->second];
    pa::DNSStats& by_type = (*(*conn.mutable_dnsstatsbydomainbyquerytype())[index_it->second]
                                  .mutable_dnsstatsbyquerytype())[static_cast<int32_t>(dns.query_type())];
    by_type.set_dnstimeouts(by_type.dnstimeouts() + static_cast<uint32_t>(dns.timeouts()));
    by_type.set_dnssuccesslatencysum(by_type.dnssuccesslatencysum() + dns.success_latency_sum_us() * 1000);
    uint32_t failed = 0;
    if (dns.successes() > 0)
      (*by_type.mutable_dnscountbyrcode())[0] += static_cast<uint32_t>(dns.successes());
    for (const auto& [rcode, n] : dns.failures_by_rcode()) {
      (*by_type.mutable_dnscountbyrcode())[rcode] += static_cast<uint32_t>(n);
      failed += static_cast<uint32_t>(n);
    }
    // The connection-level totals the backend also reads.
    conn.set_dnssuccessfulresponses(conn.dnssuccessfulresponses() + static_cast<uint32_t>(dns.successes()));
    conn.set_dnsfailedresponses(conn.dnsfailedresponses() + failed);
    conn.set_dnstimeouts(conn.dnstimeouts() + static_cast<uint32_t>(dns.timeouts()));
    conn.set_dnssuccesslatencysum(conn.dnssuccesslatencysum() + dns.success_latency_sum_us() * 1000);
    ++stats->dns_attached;
  }
  stats->connections = connections.size();

  const size_t per_message = std::max<size_t>(1, options.max_conns_per_message);
  const size_t count = std::max<size_t>(1, (connections.size() + per_message - 1) / per_message);
  std::vector<pa::CollectorConnections> messages(count);
  for (size_t m = 0; m < count; ++m) {
    pa::CollectorConnections& message = messages[m];
    message.set_hostname(options.hostname);
    message.set_groupsize(static_cast<int32_t>(count));
    message.set_containerhosttype(options.container_host_type);
    message.set_architecture(options.host.architecture);
    message.set_kernelversion(options.host.kernel_version);
    message.set_platform(options.host.platform);
    message.set_platformversion(options.host.platform_version);
    message.mutable_agentconfiguration()->set_npmenabled(true);
    for (const auto& d : domains) message.add_domains(d);
    for (const auto& [name, value] : reply.counters()) (*message.mutable_conntelemetrymap())[name] = value;
    (*message.mutable_coretelemetrybyasset())["network"] = pa::SuccessDefaultBTF;
    const size_t begin = m * per_message, end = std::min(connections.size(), begin + per_message);
    for (size_t i = begin; i < end; ++i) {
      pa::Connection& conn = connections[i];
      if (!conn.laddr().containerid().empty()) {
        (*message.mutable_containerforpid())[conn.pid()] = conn.laddr().containerid();
      }
      *message.add_connections() = std::move(conn);
    }
  }
  return messages;
}

ConnectionsCheck::ConnectionsCheck(ConnectionsCheckOptions options)
    : options_(std::move(options)), host_(ReadHostFacts()) {
  stub_ = sp::SystemProbe::NewStub(ipc::CreateUnixChannel(options_.sysprobe_socket, 256 * 1024 * 1024));
  next_group_id_ = options_.group_id_seed;
}

absl::StatusOr<ConnectionsRun> ConnectionsCheck::Run() {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  sp::GetConnectionsRequest request;
  request.set_client_id(kConnectionsClientId);
  sp::GetConnectionsResponse reply;
  grpc::Status status = stub_->GetConnections(&context, request, &reply);
  std::lock_guard<std::mutex> lock(mu_);
  ++counters_["connections_runs"];
  if (!status.ok()) {
    ++counters_["connections_sysprobe_errors"];
    return absl::UnavailableError(
        absl::StrCat("system-probe (", options_.sysprobe_socket, "): ", status.error_message()));
  }
  ConnectionsBuildOptions build;
  build.hostname = options_.hostname;
  build.max_conns_per_message = options_.max_conns_per_message;
  build.host = host_;
  build.container_host_type = options_.container_host_type;
  build.container_for_pid = [root = options_.proc_root](int32_t pid) {
    return container::ContainerIdForPid(pid, root);
  };
  ConnectionsRun run;
  run.messages = BuildCollectorConnections(reply, build, &run.stats);
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const int32_t group_id = ++next_group_id_;
  for (size_t i = 0; i < run.messages.size(); ++i) {
    run.messages[i].set_groupid(group_id);
    auto body = EncodeMessage(MessageType::kCollectorConnections, run.messages[i], now_ms);
    if (!body.ok()) return body.status();
    RequestHeaderValues values;
    values.hostname = options_.hostname;
    values.agent_version = options_.agent_version;
    values.timestamp_s = now_ms / 1000;
    values.agent_start_time_s = options_.agent_start_time_s;
    // Datadog's submitter sets the request id for the connections check too.
    values.request_id =
        MakeRequestId(now_ms / 1000, options_.hostname, options_.agent_pid, static_cast<int>(i));
    run.payloads.push_back(EncodedPayload{"/api/v1/connections", RequestHeaders(values), std::move(*body)});
  }
  counters_["connections_items"] += static_cast<int64_t>(run.stats.connections);
  counters_["connections_payloads"] += static_cast<int64_t>(run.payloads.size());
  counters_["connections_dns_unattached"] += static_cast<int64_t>(run.stats.dns_unattached);
  for (const auto& [name, value] : reply.counters()) counters_["sysprobe_" + name] = value;
  return run;
}

void ConnectionsCheck::RecordSubmit(const absl::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!status.ok()) ++counters_["connections_submit_errors"];
}

std::map<std::string, int64_t> ConnectionsCheck::Counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

}  // namespace dogwatch::process
