#include "agent-core/core/metric_pipeline.h"

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <ctime>

#include "absl/time/clock.h"
#include "common/log/log.h"
#include "common/strings/strings.h"

namespace dogwatch::agent {
namespace {

using strings::Cat;

int64_t NowUnix() { return static_cast<int64_t>(std::time(nullptr)); }

// Bounded: at most this many check errors are remembered for `agent status`.
constexpr size_t kMaxRememberedCheckErrors = 32;

absl::StatusOr<double> ParsePercentile(const std::string& text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !(value > 0 && value < 1)) {
    return absl::InvalidArgumentError(
        Cat("histogram_percentiles: '", text, "' is not a number between 0 and 1 (e.g. 0.95)"));
  }
  return value;
}

}  // namespace

absl::StatusOr<MetricPipelineOptions> MetricPipelineOptionsFromConfig(const config::Config& config,
                                                                      const std::string& hostname) {
  MetricPipelineOptions o;
  o.dogstatsd_enabled = config.GetBool("use_dogstatsd");
  dogstatsd::ServerOptions& s = o.server;
  s.udp_port = static_cast<uint16_t>(config.GetInt("dogstatsd_port"));
  s.non_local_traffic = config.GetBool("dogstatsd_non_local_traffic");
  s.socket_path = config.GetString("dogstatsd_socket");
  s.so_rcvbuf = static_cast<int>(config.GetInt("dogstatsd_so_rcvbuf"));
  s.buffer_size = static_cast<size_t>(config.GetInt("dogstatsd_buffer_size"));
  s.packets_per_batch = static_cast<size_t>(config.GetInt("dogstatsd_packet_buffer_size"));
  s.queue_batches = static_cast<size_t>(config.GetInt("dogstatsd_queue_size"));
  s.pipelines = static_cast<int>(config.GetInt("dogstatsd_pipeline_count"));
  s.origin_detection = config.GetBool("dogstatsd_origin_detection");
  s.origin_detection_client = config.GetBool("dogstatsd_origin_detection_client");
  s.cardinality = config.GetString("dogstatsd_tag_cardinality");
  s.hostname = hostname;
  if (!config.GetString("statsd_metric_namespace").empty()) {
    s.metric_namespace = config.GetString("statsd_metric_namespace");
    if (!s.metric_namespace.ends_with('.')) s.metric_namespace += '.';
  }
  // Global tags on every DogStatsD metric, event and service check: dogstatsd_tags, the host tags
  // (tags, extra_tags; DD_TAGS) and env, each once.
  std::vector<std::string> extra;
  for (const char* key : {"dogstatsd_tags", "tags", "extra_tags"}) {
    for (const std::string& tag : config.GetStringList(key)) {
      if (!tag.empty() && std::find(extra.begin(), extra.end(), tag) == extra.end()) extra.push_back(tag);
    }
  }
  const std::string& env = config.GetString("env");
  bool has_env =
      std::any_of(extra.begin(), extra.end(), [](const std::string& t) { return t.starts_with("env:"); });
  if (!env.empty() && !has_env) extra.push_back(Cat("env:", env));
  s.extra_tags = extra;

  metrics::AggregatorOptions& a = o.aggregator;
  a.context_expiry_seconds = config.GetInt("dogstatsd_context_expiry_seconds");
  a.counter_expiry_seconds = config.GetInt("dogstatsd_expiry_seconds");
  a.max_contexts = static_cast<size_t>(config.GetInt("dogstatsd_max_contexts"));
  a.histogram_aggregates = config.GetStringList("histogram_aggregates");
  for (const std::string& aggregate : a.histogram_aggregates) {
    static const std::vector<std::string> kKnown = {"max", "min", "median", "avg", "sum", "count"};
    if (std::find(kKnown.begin(), kKnown.end(), aggregate) == kKnown.end()) {
      return absl::InvalidArgumentError(
          Cat("histogram_aggregates: '", aggregate, "' is not one of max, min, median, avg, sum, count"));
    }
  }
  a.histogram_percentiles.clear();
  for (const std::string& text : config.GetStringList("histogram_percentiles")) {
    auto value = ParsePercentile(text);
    if (!value.ok()) return value.status();
    a.histogram_percentiles.push_back(*value);
  }

  auto serializer_options = serializer::OptionsForCompressorKind(
      config.GetString("serializer_compressor_kind"),
      static_cast<int>(config.GetInt("serializer_zstd_compressor_level")));
  if (!serializer_options.ok()) return serializer_options.status();
  o.serializer = *serializer_options;
  o.serializer.hostname = hostname;

  o.host_checks_enabled = config.GetBool("enable_host_checks") && !config.GetBool("eks_fargate");
  o.host_checks.hostname = hostname;
  o.host_checks.proc_root = config.GetString("procfs_path");
  o.host_metadata.hostname = hostname;
  o.host_metadata.agent_version = DOGWATCH_VERSION;
  o.host_metadata.host_tags = config.GetStringList("tags");
  for (const std::string& tag : config.GetStringList("extra_tags")) o.host_metadata.host_tags.push_back(tag);
  o.host_metadata.proc_root = config.GetString("procfs_path");
  o.host_metadata_interval_seconds = config.GetInt("metadata_providers_host_interval");
  o.send_host_metadata = config.GetBool("enable_metadata_collection");
  o.flush_interval_seconds = config.GetInt("metrics_flush_interval");
  o.send_series = config.GetBool("enable_payloads.series");
  o.send_sketches = config.GetBool("enable_payloads.sketches");
  o.send_events = config.GetBool("enable_payloads.events");
  o.send_service_checks = config.GetBool("enable_payloads.service_checks");
  return o;
}

// Host checks submit into the aggregator through this adapter.
class MetricPipeline::CheckSink final : public checks::SampleSink {
 public:
  CheckSink(metrics::Aggregator* aggregator, int64_t now) : aggregator_(aggregator), now_(now) {}
  void Add(const metrics::Sample& sample) override {
    aggregator_->Add(sample, now_);
    ++count_;
  }
  int64_t count() const { return count_; }

 private:
  metrics::Aggregator* aggregator_;
  int64_t now_;
  int64_t count_ = 0;
};

MetricPipeline::MetricPipeline(MetricPipelineOptions options, SubmitFunction submit,
                               dogstatsd::OriginTagger* tagger)
    : options_(std::move(options)),
      submit_(std::move(submit)),
      tagger_(tagger),
      aggregator_(options_.aggregator) {}

MetricPipeline::~MetricPipeline() { Stop(); }

absl::Status MetricPipeline::Start() {
  if (started_) return absl::FailedPreconditionError("metric pipeline already started");
  if (options_.dogstatsd_enabled) {
    server_ = std::make_unique<dogstatsd::Server>(options_.server, this, tagger_);
    absl::Status status = server_->Start();
    if (!status.ok()) {
      // As the Datadog Agent does, a DogStatsD listener that cannot start (port taken, socket
      // directory missing) leaves the rest of the agent running; status shows the component as
      // failed with the reason, and the log says it once at error level.
      server_.reset();
      dogstatsd_error_ = std::string(status.message());
      log::Get("dogstatsd")->error("not started: {}", dogstatsd_error_);
    }
  }
  if (options_.host_checks_enabled) checks_ = checks::MakeHostChecks(options_.host_checks);
  started_ = true;
  started_unix_ms_ = absl::ToUnixMillis(absl::Now());
  flush_thread_ = std::thread([this] { FlushLoop(); });
  // Checks get their own thread: a filesystem that hangs statvfs (a dead NFS mount) stalls the
  // disk check, never the flushes.
  if (!checks_.empty()) checks_thread_ = std::thread([this] { ChecksLoop(); });
  return absl::OkStatus();
}

void MetricPipeline::Stop() {
  if (!started_) return;
  {
    std::lock_guard<std::mutex> lock(loop_mu_);
    stopping_ = true;
    loop_cv_.notify_all();
  }
  if (flush_thread_.joinable()) flush_thread_.join();
  if (checks_thread_.joinable()) checks_thread_.join();
  if (server_) server_->Stop();  // parses what the sockets already delivered
  FlushAt(NowUnix(), /*everything=*/true);
  started_ = false;
}

void MetricPipeline::ChecksLoop() {
  // Every 15 s, as Datadog's default check interval; the first run primes the rate checks.
  constexpr int64_t kCheckInterval = 15;
  int64_t next_run = NowUnix();
  while (true) {
    int64_t now = NowUnix();
    if (now >= next_run) {
      RunChecks(now);
      next_run = std::max(next_run + kCheckInterval, now + 1);
    }
    std::unique_lock<std::mutex> lock(loop_mu_);
    if (loop_cv_.wait_for(lock, std::chrono::seconds(std::max<int64_t>(1, next_run - NowUnix())),
                          [&] { return stopping_; })) {
      return;
    }
  }
}

void MetricPipeline::FlushLoop() {
  int64_t next_metadata = NowUnix();
  int64_t next_flush = NowUnix() + options_.flush_interval_seconds;
  while (true) {
    int64_t now = NowUnix();
    if (options_.send_host_metadata && now >= next_metadata) {
      SendHostMetadata();
      next_metadata = now + options_.host_metadata_interval_seconds;
    }
    if (now >= next_flush) {
      FlushAt(now, /*everything=*/false);
      next_flush += options_.flush_interval_seconds;
      if (next_flush <= now) next_flush = now + options_.flush_interval_seconds;  // we fell behind
    }
    std::unique_lock<std::mutex> lock(loop_mu_);
    if (loop_cv_.wait_for(lock, std::chrono::seconds(std::max<int64_t>(1, next_flush - NowUnix())),
                          [&] { return stopping_; })) {
      return;
    }
  }
}

void MetricPipeline::RunChecks(int64_t now_unix) {
  for (auto& check : checks_) {
    CheckSink sink(&aggregator_, now_unix);
    absl::Status status = check->Run(now_unix, sink);
    std::lock_guard<std::mutex> lock(status_mu_);
    std::string name(check->name());
    check_counters_[Cat("runs:", name)] += 1;
    check_counters_[Cat("samples:", name)] += sink.count();
    check_counters_[Cat("dropped_entries:", name)] = static_cast<int64_t>(check->dropped_entries());
    if (!status.ok()) {
      check_counters_[Cat("errors:", name)] += 1;
      if (check_errors_.size() < kMaxRememberedCheckErrors || check_errors_.count(name)) {
        check_errors_[name] = std::string(status.message());
      }
    } else {
      check_errors_.erase(name);
    }
  }
}

void MetricPipeline::SendHostMetadata() {
  auto payload = serializer::BuildHostMetadata(options_.host_metadata, options_.serializer);
  if (!payload.ok()) {
    std::lock_guard<std::mutex> lock(status_mu_);
    pipeline_counters_["host_metadata_errors"] += 1;
    log::Get("metrics")->warn("host metadata: {}", payload.status().message());
    return;
  }
  std::vector<serializer::Payload> one;
  one.push_back(*std::move(payload));
  Submit(std::move(one), "host_metadata");
}

void MetricPipeline::Submit(absl::StatusOr<std::vector<serializer::Payload>> payloads, const char* kind) {
  if (!payloads.ok()) {
    std::lock_guard<std::mutex> lock(status_mu_);
    pipeline_counters_[Cat("serialize_errors:", kind)] += 1;
    log::Get("metrics")->error("serializing {}: {}", kind, payloads.status().message());
    return;
  }
  for (const serializer::Payload& payload : *payloads) {
    absl::Status status = submit_(payload);
    std::lock_guard<std::mutex> lock(status_mu_);
    if (status.ok()) {
      pipeline_counters_[Cat("submitted:", kind)] += 1;
    } else {
      pipeline_counters_[Cat("submit_errors:", kind)] += 1;
      log::Get("metrics")->warn("submitting {} ({} items): {}", kind, payload.items, status.message());
    }
  }
}

// The pipeline's own telemetry as metrics, like any other: counters as the count since the last
// flush, aggregated into the current bucket like a DogStatsD count (so they arrive as rates),
// levels as gauges. Only non-zero counts are sent, so an idle agent adds a handful of series.
void MetricPipeline::EmitOwnTelemetry(int64_t now_unix) {
  std::vector<std::pair<std::string, std::pair<std::string, int64_t>>> counts;  // name, (tag, total)
  std::vector<std::pair<std::string, double>> gauges;
  if (server_) {
    for (const auto& [name, value] : server_->Counters()) {
      if (name.starts_with("parse_errors_")) {
        counts.push_back({"dogwatch.dogstatsd.parse_errors", {Cat("kind:", name.substr(13)), value}});
      } else if (name.starts_with("dropped_")) {
        counts.push_back({"dogwatch.dogstatsd.dropped", {Cat("reason:", name.substr(8)), value}});
      } else if (name.starts_with("packets_")) {
        counts.push_back({"dogwatch.dogstatsd.packets", {Cat("transport:", name.substr(8)), value}});
      } else if (name == "metric_samples" || name == "events" || name == "service_checks" ||
                 name == "bytes") {
        counts.push_back({Cat("dogwatch.dogstatsd.", name), {"", value}});
      }
    }
  }
  metrics::Aggregator::Counters a = aggregator_.GetCounters();
  gauges.push_back({"dogwatch.aggregator.contexts", static_cast<double>(a.contexts_live)});
  for (const auto& [reason, value] : std::vector<std::pair<const char*, uint64_t>>{
           {"context_limit", a.shed_context_limit},
           {"timestamped_limit", a.shed_timestamped_limit},
           {"timestamped_unsupported", a.shed_timestamped_unsupported},
           {"invalid_value", a.shed_invalid_value},
           {"type_mismatch", a.shed_type_mismatch},
           {"set_values", a.shed_set_values},
           {"bucket_limit", a.shed_bucket_limit}}) {
    counts.push_back({"dogwatch.aggregator.shed", {Cat("reason:", reason), static_cast<int64_t>(value)}});
  }
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    counts.push_back(
        {"dogwatch.serializer.payloads", {"", static_cast<int64_t>(serializer_counters_.payloads)}});
    counts.push_back({"dogwatch.serializer.bytes_compressed",
                      {"", static_cast<int64_t>(serializer_counters_.bytes_compressed)}});
    counts.push_back(
        {"dogwatch.serializer.dropped", {"", static_cast<int64_t>(serializer_counters_.dropped_too_big)}});
  }
  const std::string& host = options_.server.hostname;
  for (const auto& [name, tagged] : counts) {
    const auto& [tag, total] = tagged;
    std::string key = Cat(name, "|", tag);
    int64_t delta = total - own_telemetry_last_[key];
    own_telemetry_last_[key] = total;
    if (delta <= 0) continue;
    std::string_view tag_view = tag;
    metrics::Sample sample;
    sample.name = name;
    sample.type = metrics::SampleType::kCount;
    sample.value = static_cast<double>(delta);
    sample.tags =
        tag.empty() ? std::span<const std::string_view>() : std::span<const std::string_view>(&tag_view, 1);
    sample.host = host;
    aggregator_.Add(sample, now_unix);
  }
  for (const auto& [name, value] : gauges) {
    metrics::Sample sample;
    sample.name = name;
    sample.type = metrics::SampleType::kGauge;
    sample.value = value;
    sample.host = host;
    aggregator_.Add(sample, now_unix);
  }
}

void MetricPipeline::FlushAt(int64_t now_unix, bool everything) {
  std::lock_guard<std::mutex> flush_lock(flush_mu_);
  EmitOwnTelemetry(now_unix);
  // Open buckets close at their end; `everything` moves the clock past the current one.
  metrics::Aggregator::Flushed flushed =
      aggregator_.Flush(everything ? now_unix + options_.aggregator.bucket_seconds : now_unix);
  std::vector<metrics::Event> events;
  std::vector<metrics::ServiceCheck> service_checks;
  {
    std::lock_guard<std::mutex> lock(pending_mu_);
    events.swap(events_);
    service_checks.swap(service_checks_);
  }
  serializer::SerializerCounters counters;
  if (options_.send_series && !flushed.series.empty()) {
    Submit(serializer::SerializeSeries(flushed.series, options_.serializer, &counters), "series");
  }
  if (options_.send_sketches && !flushed.sketches.empty()) {
    Submit(serializer::SerializeSketches(flushed.sketches, options_.serializer, &counters), "sketches");
  }
  if (options_.send_events && !events.empty()) {
    Submit(serializer::SerializeEvents(events, options_.serializer, &counters), "events");
  }
  if (options_.send_service_checks && !service_checks.empty()) {
    Submit(serializer::SerializeServiceChecks(service_checks, options_.serializer, &counters),
           "service_checks");
  }
  std::lock_guard<std::mutex> lock(status_mu_);
  serializer_counters_.payloads += counters.payloads;
  serializer_counters_.items += counters.items;
  serializer_counters_.points += counters.points;
  serializer_counters_.bytes_uncompressed += counters.bytes_uncompressed;
  serializer_counters_.bytes_compressed += counters.bytes_compressed;
  serializer_counters_.dropped_too_big += counters.dropped_too_big;
  serializer_counters_.dropped_invalid += counters.dropped_invalid;
  serializer_counters_.splits += counters.splits;
  serializer_counters_.recompressions += counters.recompressions;
  pipeline_counters_["flushes"] += 1;
  pipeline_counters_["last_flush_series"] = static_cast<int64_t>(flushed.series.size());
  pipeline_counters_["last_flush_sketches"] = static_cast<int64_t>(flushed.sketches.size());
  if (!options_.send_series)
    pipeline_counters_["disabled_series"] += static_cast<int64_t>(flushed.series.size());
  if (!options_.send_sketches) {
    pipeline_counters_["disabled_sketches"] += static_cast<int64_t>(flushed.sketches.size());
  }
  pipeline_counters_["events_flushed"] += static_cast<int64_t>(events.size());
  pipeline_counters_["service_checks_flushed"] += static_cast<int64_t>(service_checks.size());
}

void MetricPipeline::AddSamples(std::span<const metrics::Sample> samples) {
  aggregator_.AddBatch(samples, NowUnix());
}

void MetricPipeline::AddEvent(metrics::Event event) {
  std::lock_guard<std::mutex> lock(pending_mu_);
  if (events_.size() >= options_.max_events_per_flush) {
    std::lock_guard<std::mutex> status_lock(status_mu_);
    pipeline_counters_["dropped_events_limit"] += 1;
    return;
  }
  events_.push_back(std::move(event));
}

void MetricPipeline::AddServiceCheck(metrics::ServiceCheck check) {
  std::lock_guard<std::mutex> lock(pending_mu_);
  if (service_checks_.size() >= options_.max_service_checks_per_flush) {
    std::lock_guard<std::mutex> status_lock(status_mu_);
    pipeline_counters_["dropped_service_checks_limit"] += 1;
    return;
  }
  service_checks_.push_back(std::move(check));
}

std::vector<core::ComponentStatus> MetricPipeline::Status() const {
  std::vector<core::ComponentStatus> rows;
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  auto row = [&](const char* name, const char* state) -> core::ComponentStatus& {
    rows.emplace_back();
    core::ComponentStatus& r = rows.back();
    r.set_name(name);
    r.set_state(state);
    r.set_version(DOGWATCH_VERSION);
    r.set_pid(getpid());  // in the core's process
    r.set_started_unix_ms(started_unix_ms_);
    r.set_reported_unix_ms(now_ms);
    return r;
  };
  if (!dogstatsd_error_.empty()) {
    core::ComponentStatus& dsd = row("dogstatsd", "failed");
    dsd.set_last_error(dogstatsd_error_);
  }
  if (server_) {
    core::ComponentStatus& dsd = row("dogstatsd", started_ ? "running" : "stopped");
    for (const auto& [name, value] : server_->Counters()) (*dsd.mutable_counters())[name] = value;
    (*dsd.mutable_info())["udp"] =
        server_->udp_port()
            ? Cat(options_.server.non_local_traffic ? "0.0.0.0:" : "127.0.0.1:", server_->udp_port())
            : "off";
    (*dsd.mutable_info())["socket"] =
        options_.server.socket_path.empty() ? "off" : options_.server.socket_path;
  }
  metrics::Aggregator::Counters a = aggregator_.GetCounters();
  core::ComponentStatus& agg = row("aggregator", "running");
  auto& ac = *agg.mutable_counters();
  ac["samples_in"] = static_cast<int64_t>(a.samples_in);
  ac["samples_aggregated"] = static_cast<int64_t>(a.samples_aggregated);
  ac["timestamped_in"] = static_cast<int64_t>(a.timestamped_in);
  ac["contexts_live"] = static_cast<int64_t>(a.contexts_live);
  ac["contexts_created"] = static_cast<int64_t>(a.contexts_created);
  ac["contexts_expired"] = static_cast<int64_t>(a.contexts_expired);
  ac["shed_context_limit"] = static_cast<int64_t>(a.shed_context_limit);
  ac["shed_timestamped_limit"] = static_cast<int64_t>(a.shed_timestamped_limit);
  ac["shed_timestamped_unsupported"] = static_cast<int64_t>(a.shed_timestamped_unsupported);
  ac["shed_invalid_value"] = static_cast<int64_t>(a.shed_invalid_value);
  ac["shed_type_mismatch"] = static_cast<int64_t>(a.shed_type_mismatch);
  ac["shed_set_values"] = static_cast<int64_t>(a.shed_set_values);
  ac["shed_bucket_limit"] = static_cast<int64_t>(a.shed_bucket_limit);
  ac["histogram_samples_sketched"] = static_cast<int64_t>(a.histogram_samples_sketched);
  ac["series_flushed"] = static_cast<int64_t>(a.series_flushed);
  ac["sketches_flushed"] = static_cast<int64_t>(a.sketches_flushed);
  ac["points_flushed"] = static_cast<int64_t>(a.points_flushed);

  std::lock_guard<std::mutex> lock(status_mu_);
  core::ComponentStatus& ser = row("metrics_serializer", "running");
  auto& sc = *ser.mutable_counters();
  sc["payloads"] = static_cast<int64_t>(serializer_counters_.payloads);
  sc["items"] = static_cast<int64_t>(serializer_counters_.items);
  sc["points"] = static_cast<int64_t>(serializer_counters_.points);
  sc["bytes_uncompressed"] = static_cast<int64_t>(serializer_counters_.bytes_uncompressed);
  sc["bytes_compressed"] = static_cast<int64_t>(serializer_counters_.bytes_compressed);
  sc["dropped_too_big"] = static_cast<int64_t>(serializer_counters_.dropped_too_big);
  sc["dropped_invalid"] = static_cast<int64_t>(serializer_counters_.dropped_invalid);
  sc["splits"] = static_cast<int64_t>(serializer_counters_.splits);
  for (const auto& [name, value] : pipeline_counters_) sc[name] = value;
  (*ser.mutable_info())["compression"] =
      std::string(compression::ContentEncodingName(options_.serializer.codec));

  if (options_.host_checks_enabled) {
    core::ComponentStatus& hc = row("host_checks", check_errors_.empty() ? "running" : "degraded");
    for (const auto& [name, value] : check_counters_) (*hc.mutable_counters())[name] = value;
    for (const auto& [name, error] : check_errors_) {
      (*hc.mutable_info())[Cat("error:", name)] = error;
      hc.set_last_error(Cat(name, ": ", error));
    }
  } else {
    row("host_checks", "disabled");
  }
  return rows;
}

}  // namespace dogwatch::agent
