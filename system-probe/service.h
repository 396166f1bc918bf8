// dogwatch.sysprobe.SystemProbe over sysprobe.sock: connections with per-client deltas from the
// network tracer, privileged per-PID stats, and health.
#pragma once

#include <string>

#include "dogwatch/sysprobe.grpc.pb.h"
#include "system-probe/tracer/tracer.h"

namespace dogwatch::sysprobe {

struct ServiceOptions {
  NetworkTracer* tracer = nullptr;  // null when network_config.enabled is off
  std::string tracer_error;         // why the tracer is not running, when it should be
  bool process_stats_enabled = true;
  std::string proc_root = "/proc";
  size_t max_pids_per_request = 20000;
};

class SystemProbeService final : public dogwatch::sysprobe::SystemProbe::Service {
 public:
  explicit SystemProbeService(ServiceOptions options) : options_(std::move(options)) {}

  grpc::Status GetConnections(grpc::ServerContext*, const GetConnectionsRequest* request,
                              GetConnectionsResponse* response) override;
  grpc::Status GetProcessStats(grpc::ServerContext*, const ProcessStatsRequest* request,
                               ProcessStatsResponse* response) override;
  grpc::Status Health(grpc::ServerContext*, const SysprobeHealthRequest*,
                      SysprobeHealthResponse* response) override;

 private:
  ServiceOptions options_;
};

// Fills a protobuf Connection from a tracer record (with `delta` counters when given).
void FillConnection(const ConnSnapshot& conn, const ConnDelta* delta, Connection* out);

}  // namespace dogwatch::sysprobe
