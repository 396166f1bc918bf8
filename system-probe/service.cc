#include "system-probe/service.h"

#include <arpa/inet.h>

#include "absl/strings/str_cat.h"
#include "system-probe/tracer/capabilities.h"
#include "system-probe/tracer/process_stats.h"

namespace dogwatch::sysprobe {

namespace {

std::string FormatAddress(const std::array<uint8_t, 16>& addr, uint8_t family) {
  char text[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(family == 6 ? AF_INET6 : AF_INET, addr.data(), text, sizeof(text)) == nullptr) return "";
  return text;
}

Direction ToProto(FlowDirection d) {
  switch (d) {
    case FlowDirection::kIncoming:
      return DIRECTION_INCOMING;
    case FlowDirection::kOutgoing:
      return DIRECTION_OUTGOING;
    default:
      return DIRECTION_UNSPECIFIED;
  }
}

}  // namespace

void FillConnection(const ConnSnapshot& conn, const ConnDelta* delta, Connection* out) {
  out->set_pid(static_cast<int32_t>(conn.pid));
  out->set_command(conn.command);
  out->set_type(conn.protocol == 17 ? CONNECTION_TYPE_UDP : CONNECTION_TYPE_TCP);
  out->set_family(conn.family == 6 ? FAMILY_V6 : FAMILY_V4);
  out->mutable_local()->set_ip(FormatAddress(conn.local_addr, conn.family));
  out->mutable_local()->set_port(conn.local_port);
  out->mutable_remote()->set_ip(FormatAddress(conn.remote_addr, conn.family));
  out->mutable_remote()->set_port(conn.remote_port);
  out->set_direction(ToProto(conn.direction));
  out->set_net_ns(conn.netns);
  const ConnCounters& counters = delta != nullptr ? delta->delta : conn.totals;
  out->set_bytes_sent(counters.bytes_sent);
  out->set_bytes_received(counters.bytes_received);
  out->set_packets_sent(counters.packets_sent);
  out->set_packets_received(counters.packets_received);
  out->set_retransmits(static_cast<uint32_t>(counters.retransmits));
  out->set_rtt_us(conn.rtt_us);
  out->set_rtt_var_us(conn.rtt_var_us);
  if (delta != nullptr) {
    out->set_established(delta->established);
    out->set_closed(delta->closed);
    out->set_failures(delta->closed != 0 && conn.failure_errno != 0 ? 1 : 0);
  } else {
    out->set_established(conn.established ? 1 : 0);
    out->set_failures(conn.failure_errno != 0 ? 1 : 0);
  }
  out->set_failure_errno(conn.failure_errno);
  out->set_last_update_epoch_ms(static_cast<uint64_t>(absl::ToUnixMillis(conn.last_update)));
  out->set_cookie(conn.key.cookie);
}

grpc::Status SystemProbeService::GetConnections(grpc::ServerContext*, const GetConnectionsRequest* request,
                                                GetConnectionsResponse* response) {
  if (options_.tracer == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        options_.tracer_error.empty()
                            ? "the network tracer is off (network_config.enabled: false in system-probe.yaml)"
                            : absl::StrCat("the network tracer is not running: ", options_.tracer_error));
  }
  response->set_backend(options_.tracer->probe().backend());
  if (request->snapshot()) {
    for (const auto& conn : options_.tracer->Snapshot())
      FillConnection(*conn, nullptr, response->add_connections());
  } else {
    if (request->client_id().empty() || request->client_id().size() > 256) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "client_id must be 1 to 256 bytes");
    }
    auto reply = options_.tracer->GetConnections(request->client_id());
    if (!reply.ok()) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, std::string(reply.status().message()));
    }
    response->mutable_connections()->Reserve(static_cast<int>(reply->connections.size()));
    for (const auto& delta : reply->connections)
      FillConnection(*delta.conn, &delta, response->add_connections());
    for (const auto& [key, counts] : reply->dns) {
      DnsStats* dns = response->add_dns();
      dns->set_domain(key.domain);
      dns->set_query_type(key.query_type);
      dns->set_client_port(key.client_port);
      dns->set_server_ip(FormatAddress(key.server_addr, key.family));
      dns->set_successes(counts.successes);
      for (const auto& [rcode, n] : counts.failures_by_rcode) (*dns->mutable_failures_by_rcode())[rcode] = n;
      dns->set_timeouts(counts.timeouts);
      dns->set_success_latency_sum_us(counts.success_latency_sum_us);
    }
  }
  for (const auto& [name, value] : options_.tracer->Counters()) (*response->mutable_counters())[name] = value;
  return grpc::Status::OK;
}

grpc::Status SystemProbeService::GetProcessStats(grpc::ServerContext*, const ProcessStatsRequest* request,
                                                 ProcessStatsResponse* response) {
  if (!options_.process_stats_enabled) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "process stats are off (system_probe_config.process_config.enabled: false)");
  }
  if (static_cast<size_t>(request->pids_size()) > options_.max_pids_per_request) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("at most ", options_.max_pids_per_request, " pids per request, got ",
                                     request->pids_size()));
  }
  for (int32_t pid : request->pids()) {
    auto io = ReadProcessIo(options_.proc_root, pid);
    if (!io) continue;  // gone, or not a process: absent from the reply
    ProcessStats* stats = response->add_stats();
    stats->set_pid(io->pid);
    stats->set_read_bytes(io->read_bytes);
    stats->set_write_bytes(io->write_bytes);
    stats->set_read_count(io->read_count);
    stats->set_write_count(io->write_count);
    stats->set_open_fds(io->open_fds);
  }
  return grpc::Status::OK;
}

grpc::Status SystemProbeService::Health(grpc::ServerContext*, const SysprobeHealthRequest*,
                                        SysprobeHealthResponse* response) {
  response->set_capabilities(CapabilityNames(EffectiveCapabilities()));
  if (options_.process_stats_enabled) response->add_modules("process");
  if (options_.tracer != nullptr) {
    response->set_healthy(true);
    response->set_backend(options_.tracer->probe().backend());
    response->add_modules("network_tracer");
    for (const auto& [name, value] : options_.tracer->Counters())
      (*response->mutable_counters())[name] = value;
  } else {
    response->set_healthy(options_.tracer_error.empty());
    response->set_error(options_.tracer_error);
  }
  return grpc::Status::OK;
}

}  // namespace dogwatch::sysprobe
