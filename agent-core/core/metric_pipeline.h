#pragma once
// The core's metrics path: DogStatsD and the host checks feed one aggregator; every flush
// interval (15 s) the closed buckets, events and service checks are serialized and submitted to the
// forwarder. Host metadata goes out at start and every `metadata_providers_host_interval`.
//
//   DogStatsD server ─┐                 ┌─ series ──────▶ /api/v2/series
//   host checks ──────┼─▶ aggregator ──▶├─ sketches ────▶ /api/beta/sketches
//                     │                 │
//   events, checks ───┴─▶ bounded lists ┴─ JSON ────────▶ /intake/, /api/v1/check_run
//
// Nothing is held without a bound: the aggregator bounds contexts, the event and service-check
// lists are capped per flush, and every shed item is counted in `agent status`.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "agent-core/checks/host_checks.h"
#include "agent-core/dogstatsd/server.h"
#include "agent-core/metrics/aggregator.h"
#include "agent-core/serializer/serializer.h"
#include "common/config/config.h"
#include "dogwatch/core.pb.h"

namespace dogwatch::agent {

struct MetricPipelineOptions {
  bool dogstatsd_enabled = true;
  dogstatsd::ServerOptions server;
  metrics::AggregatorOptions aggregator;
  serializer::SerializerOptions serializer;
  bool host_checks_enabled = true;
  checks::HostCheckOptions host_checks;
  serializer::HostMetadataInputs host_metadata;
  int64_t flush_interval_seconds = 15;
  int64_t host_metadata_interval_seconds = 1800;
  size_t max_events_per_flush = 10000;
  size_t max_service_checks_per_flush = 10000;
  bool send_series = true;
  bool send_sketches = true;
  bool send_events = true;
  bool send_service_checks = true;
  bool send_host_metadata = true;
};

// Reads every metrics-related key of the core's configuration.
absl::StatusOr<MetricPipelineOptions> MetricPipelineOptionsFromConfig(const config::Config& config,
                                                                      const std::string& hostname);

class MetricPipeline final : public dogstatsd::Sink {
 public:
  // Hands one payload to the forwarder; returns its error (counted, never retried here: the
  // forwarder owns retries).
  using SubmitFunction = std::function<absl::Status(const serializer::Payload& payload)>;

  MetricPipeline(MetricPipelineOptions options, SubmitFunction submit, dogstatsd::OriginTagger* tagger);
  ~MetricPipeline() override;

  absl::Status Start();
  // Stops the listeners and the checks, then flushes everything still held, open buckets
  // included: a clean shutdown loses no sample.
  void Stop();

  // One flush at `now_unix` (the flush thread calls this; tests may too). With `everything`, open
  // buckets are flushed as well.
  void FlushAt(int64_t now_unix, bool everything);

  // dogstatsd::Sink
  void AddSamples(std::span<const metrics::Sample> samples) override;
  void AddEvent(metrics::Event event) override;
  void AddServiceCheck(metrics::ServiceCheck check) override;

  // Status rows: "dogstatsd", "aggregator", "host_checks", "metrics_serializer".
  std::vector<core::ComponentStatus> Status() const;

  uint16_t dogstatsd_udp_port() const { return server_ ? server_->udp_port() : 0; }

 private:
  class CheckSink;
  void FlushLoop();
  void ChecksLoop();
  void RunChecks(int64_t now_unix);
  void SendHostMetadata();
  void EmitOwnTelemetry(int64_t now_unix);  // under flush_mu_
  void Submit(absl::StatusOr<std::vector<serializer::Payload>> payloads, const char* kind);

  const MetricPipelineOptions options_;
  const SubmitFunction submit_;
  dogstatsd::OriginTagger* const tagger_;
  metrics::Aggregator aggregator_;
  std::unique_ptr<dogstatsd::Server> server_;
  std::string dogstatsd_error_;  // why the listener did not start, for status
  std::vector<std::unique_ptr<checks::Check>> checks_;

  std::mutex pending_mu_;
  std::vector<metrics::Event> events_;
  std::vector<metrics::ServiceCheck> service_checks_;

  std::mutex flush_mu_;                                // one flush at a time (the thread, Stop, tests)
  std::map<std::string, int64_t> own_telemetry_last_;  // under flush_mu_; bounded by the fixed name set
  mutable std::mutex status_mu_;
  serializer::SerializerCounters serializer_counters_;
  std::map<std::string, int64_t> pipeline_counters_;
  std::map<std::string, std::string> check_errors_;
  std::map<std::string, int64_t> check_counters_;

  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool stopping_ = false;
  bool started_ = false;
  int64_t started_unix_ms_ = 0;
  std::thread flush_thread_;
  std::thread checks_thread_;
};

}  // namespace dogwatch::agent
