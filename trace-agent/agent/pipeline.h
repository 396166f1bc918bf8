#pragma once
// The trace-agent's processing of one tracer payload, in the Datadog agent's order:
// normalize → filter (ignore_resources, filter_tags) → env → obfuscate → truncate → top-level →
// stats (unless the tracer computed them) → sample → write. Every dropped chunk is counted by reason.

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/config/config.h"
#include "trace-agent/obfuscate/normalize.h"
#include "trace-agent/obfuscate/obfuscate.h"
#include "trace-agent/receiver/receiver.h"
#include "trace-agent/stats/client_stats.h"
#include "trace-agent/stats/concentrator.h"
#include "trace-agent/stats/sampler.h"
#include "trace-agent/writer/trace_writer.h"

namespace re2 {
class RE2;
}

namespace dogwatch::trace {

// Delivers one stats request body (gzip msgpack StatsPayload) to /api/v0.2/stats.
using StatsSubmitFunction = std::function<absl::Status(std::string body)>;

struct PipelineOptions {
  std::string hostname;
  std::string default_env;  // apm_config.env, else env, else "none"
  std::vector<std::string> ignore_resources;
  std::vector<std::string> require_tags;
  std::vector<std::string> reject_tags;
  NormalizeOptions normalize;
  ObfuscationOptions obfuscation;
  stats::ConcentratorConfig concentrator;
  sampler::SamplerConfig sampler;
  absl::Duration tick = absl::Seconds(1);
};

absl::StatusOr<PipelineOptions> PipelineOptionsFromConfig(const config::Config& config, std::string hostname);

class Pipeline final : public TraceProcessor {
 public:
  static absl::StatusOr<std::unique_ptr<Pipeline>> Create(PipelineOptions options, TraceWriter* writer,
                                                          StatsSubmitFunction submit_stats);
  ~Pipeline() override;

  void Start();
  // Flushes every stats bucket and waits for the ticker.
  void Stop();

  void Process(TracerPayload payload, const RequestContext& context) override;
  absl::Status ProcessClientStats(std::string_view body, const RequestContext& context) override;
  std::string RateByServiceJson() override;

  std::map<std::string, int64_t> Counters() const;

 private:
  explicit Pipeline(PipelineOptions options, TraceWriter* writer, StatsSubmitFunction submit_stats);
  bool Filtered(const Span& root, std::string* reason) const;
  void Tick(bool force);
  void SubmitStats(stats::StatsPayload payload);
  void Count(const std::string& name, int64_t delta = 1);

  const PipelineOptions options_;
  TraceWriter* writer_;
  StatsSubmitFunction submit_stats_;
  std::vector<std::unique_ptr<re2::RE2>> ignore_resources_;
  Obfuscator obfuscator_;
  stats::Concentrator concentrator_;
  stats::ClientStatsAggregator client_stats_;
  std::mutex client_stats_mu_;
  sampler::TraceSampler sampler_;

  mutable std::mutex mu_;
  std::map<std::string, int64_t> counters_;
  NormalizeStats normalize_stats_;

  std::mutex rates_mu_;
  uint64_t rates_version_ = ~uint64_t{0};
  std::string rates_json_;

  std::mutex tick_mu_;
  std::condition_variable tick_cv_;
  bool stopping_ = false;
  std::thread ticker_;
};

}  // namespace dogwatch::trace
