#include "trace-agent/agent/pipeline.h"

#include "common/log/log.h"
#include "common/strings/strings.h"
#include "re2/re2.h"
#include "trace-agent/model/tag_storage.h"
#include "trace-agent/obfuscate/options_config.h"
#include "trace-agent/stats/stats_writer.h"

namespace dogwatch::trace {
namespace {

using strings::Cat;

int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

// A root span matches "key" when it has the tag, "key:value" when it has it with that value.
bool HasTag(const Span& span, std::string_view tag) {
  size_t colon = tag.find(':');
  std::string_view key = tag.substr(0, colon);
  const SpanString* value = Find(span.meta, key);
  if (value == nullptr) return false;
  return colon == std::string_view::npos || *value == tag.substr(colon + 1);
}

std::string JsonEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (static_cast<unsigned char>(c) >= 0x20) out.push_back(c);
  }
  return out;
}

stats::ClientStatsAggregator::Config ClientStatsConfig(const PipelineOptions& options) {
  stats::ClientStatsAggregator::Config config;
  config.agent_env = options.default_env;
  config.agent_hostname = options.hostname;
  config.agent_version = DOGWATCH_VERSION;
  config.peer_tags_aggregation = options.concentrator.peer_tags_aggregation;
  return config;
}

}  // namespace

absl::StatusOr<PipelineOptions> PipelineOptionsFromConfig(const config::Config& config,
                                                          std::string hostname) {
  PipelineOptions options;
  options.hostname = std::move(hostname);
  std::string env = config.GetString("apm_config.env");
  if (env.empty()) env = config.GetString("env");
  options.default_env = env.empty() ? "none" : NormalizeTagValue(env);
  options.ignore_resources = config.GetStringList("apm_config.ignore_resources");
  options.require_tags = config.GetStringList("apm_config.filter_tags.require");
  options.reject_tags = config.GetStringList("apm_config.filter_tags.reject");
  options.normalize = NormalizeOptionsFromConfig(config);
  options.obfuscation = ObfuscationOptionsFromConfig(config);
  options.concentrator.compute_stats_by_span_kind = config.GetBool("apm_config.compute_stats_by_span_kind");
  options.concentrator.peer_tags_aggregation = config.GetBool("apm_config.peer_tags_aggregation");
  options.concentrator.peer_tags = config.GetStringList("apm_config.peer_tags");
  options.concentrator.agent_env = options.default_env;
  options.concentrator.agent_hostname = options.hostname;
  options.concentrator.agent_version = DOGWATCH_VERSION;
  options.sampler.target_tps = config.GetDouble("apm_config.target_traces_per_second");
  options.sampler.error_tps = config.GetDouble("apm_config.errors_per_second");
  options.sampler.rare_sampler_enabled = config.GetBool("apm_config.enable_rare_sampler");
  options.sampler.agent_env = options.default_env;
  return options;
}

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Create(PipelineOptions options, TraceWriter* writer,
                                                           StatsSubmitFunction submit_stats) {
  std::unique_ptr<Pipeline> pipeline(new Pipeline(std::move(options), writer, std::move(submit_stats)));
  for (const auto& pattern : pipeline->options_.ignore_resources) {
    auto re = std::make_unique<re2::RE2>(pattern, re2::RE2::Quiet);
    if (!re->ok()) {
      return absl::InvalidArgumentError(
          Cat("apm_config.ignore_resources: invalid regular expression '", pattern, "': ", re->error()));
    }
    pipeline->ignore_resources_.push_back(std::move(re));
  }
  return pipeline;
}

Pipeline::Pipeline(PipelineOptions options, TraceWriter* writer, StatsSubmitFunction submit_stats)
    : options_(std::move(options)),
      writer_(writer),
      submit_stats_(std::move(submit_stats)),
      obfuscator_(options_.obfuscation),
      concentrator_(options_.concentrator, NowNs()),
      client_stats_(ClientStatsConfig(options_), NowNs()),
      sampler_(options_.sampler) {}

Pipeline::~Pipeline() { Stop(); }

void Pipeline::Start() {
  ticker_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(tick_mu_);
    while (!stopping_) {
      tick_cv_.wait_for(lock, std::chrono::milliseconds(absl::ToInt64Milliseconds(options_.tick)));
      if (stopping_) break;
      lock.unlock();
      Tick(false);
      lock.lock();
    }
  });
}

void Pipeline::Stop() {
  {
    std::lock_guard<std::mutex> lock(tick_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  tick_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  Tick(true);
}

void Pipeline::Count(const std::string& name, int64_t delta) {
  std::lock_guard<std::mutex> lock(mu_);
  counters_[name] += delta;
}

void Pipeline::Tick(bool force) {
  int64_t now = NowNs();
  sampler_.Update(now);
  SubmitStats(concentrator_.Flush(now, force));
  std::vector<stats::StatsPayload> client;
  {
    std::lock_guard<std::mutex> lock(client_stats_mu_);
    client = force ? client_stats_.FlushAll() : client_stats_.Flush(now);
  }
  for (auto& payload : client) SubmitStats(std::move(payload));
}

void Pipeline::SubmitStats(stats::StatsPayload payload) {
  if (payload.stats.empty()) return;
  auto bodies = stats::BuildStatsRequests(std::move(payload));
  if (!bodies.ok()) {
    Count("stats_encode_errors");
    log::Get("trace-pipeline")->error("encoding stats: {}", bodies.status().message());
    return;
  }
  for (auto& body : *bodies) {
    absl::Status status = submit_stats_(std::move(body));
    Count(status.ok() ? "stats_payloads_sent" : "stats_submit_errors");
  }
}

bool Pipeline::Filtered(const Span& root, std::string* reason) const {
  for (const auto& re : ignore_resources_) {
    if (re2::RE2::PartialMatch(re2::StringPiece(root.resource.data(), root.resource.size()), *re)) {
      *reason = "filtered_resource";
      return true;
    }
  }
  for (const auto& tag : options_.reject_tags) {
    if (HasTag(root, tag)) {
      *reason = "filtered_tag_rejected";
      return true;
    }
  }
  for (const auto& tag : options_.require_tags) {
    if (!HasTag(root, tag)) {
      *reason = "filtered_tag_required";
      return true;
    }
  }
  return false;
}

void Pipeline::Process(TracerPayload payload, const RequestContext& context) {
  NormalizeOptions normalize = options_.normalize;
  normalize.language = context.lang;
  NormalizeStats normalize_stats;
  std::map<std::string, int64_t> drops;
  std::vector<TraceChunk> kept;
  std::vector<size_t> kept_roots;  // root index of each kept chunk, as NormalizeChunk found it
  kept.reserve(payload.chunks.size());
  kept_roots.reserve(payload.chunks.size());
  const double p0_weight =
      payload.chunks.empty() ? 0
                             : static_cast<double>(context.client_dropped_p0_traces) / payload.chunks.size();

  for (TraceChunk& chunk : payload.chunks) {
    size_t root_index = 0;
    absl::Status normalized = NormalizeChunk(chunk, normalize, &normalize_stats, &root_index);
    if (!normalized.ok()) {
      drops[Cat("dropped_invalid:", DropReasonTag(normalized))]++;
      continue;
    }
    std::string reason;
    if (Filtered(chunk.spans[root_index], &reason)) {
      drops[Cat("dropped_", reason)]++;
      continue;
    }
    // The payload's env comes from the tracer, else its root span, else the agent's default.
    if (payload.env.empty()) {
      const SpanString* env = Find(chunk.spans[root_index].meta, "env");
      payload.env = env != nullptr && !env->empty() ? NormalizeTagValue(*env) : options_.default_env;
    }
    if (payload.app_version.empty()) {
      if (const SpanString* version = Find(chunk.spans[root_index].meta, "version"))
        payload.app_version = *version;
    }
    for (Span& span : chunk.spans) {
      obfuscator_.ObfuscateSpan(span, &payload.keep_alive);
      TruncateSpan(span, normalize, &normalize_stats);
    }
    MarkTopLevel(chunk.spans, context.client_computed_top_level);
    kept.push_back(std::move(chunk));
    kept_roots.push_back(root_index);
  }

  // Stats see every valid chunk, before sampling drops any (as in the Datadog agent).
  if (!context.client_computed_stats && !kept.empty()) {
    stats::PayloadInfo info;
    info.env = payload.env;
    info.hostname = payload.hostname;
    info.app_version = payload.app_version;
    info.container_id = payload.container_id;
    info.lang = payload.language_name;
    for (size_t i = 0; i < kept.size(); ++i)
      concentrator_.AddChunk(info, kept[i], &kept[i].spans[kept_roots[i]]);
  }

  tag_storage::Recycle(payload.chunks);  // the chunks dropped above (the kept ones were moved out)
  payload.chunks.clear();
  int64_t sampled_out = 0;
  for (size_t i = 0; i < kept.size(); ++i) {
    TraceChunk& chunk = kept[i];
    const Span& root = chunk.spans[kept_roots[i]];
    sampler::SamplingDecision decision =
        sampler_.Sample(chunk, root, payload.env, context.client_dropped_p0_traces > 0, p0_weight);
    if (!decision.send()) {
      ++sampled_out;
      continue;
    }
    payload.chunks.push_back(std::move(chunk));
  }

  {
    std::lock_guard<std::mutex> lock(mu_);
    normalize_stats_.Add(normalize_stats);
    for (const auto& [name, count] : drops) counters_[name] += count;
    counters_["traces_sampled_out"] += sampled_out;
    counters_["traces_processed"] += static_cast<int64_t>(kept.size());
    counters_["client_dropped_p0_traces"] += context.client_dropped_p0_traces;
  }
  if (!payload.chunks.empty()) writer_->Write(payload);
  // Encoded and counted: the spans' tag storage goes back to this thread's pool for the next request's
  // decoder instead of to malloc.
  tag_storage::Recycle(payload.chunks);
  tag_storage::Recycle(kept);  // the sampled-out chunks
}

absl::Status Pipeline::ProcessClientStats(std::string_view body, const RequestContext& context) {
  auto decoded = stats::DecodeClientStatsPayload(body);
  if (!decoded.ok()) return decoded.status();
  stats::ClientStatsContext ctx;
  ctx.lang = context.lang;
  ctx.tracer_version = context.tracer_version;
  ctx.container_id = context.container_id;
  ctx.agent_env = options_.default_env;
  ctx.normalize_env = [](std::string_view env) { return NormalizeTagValue(env); };
  // Each group is normalized and obfuscated like a span, so client and agent stats share keys.
  std::string lang = context.lang;
  ctx.process_group = [this, &lang](stats::ClientGroupedStats& group) {
    NormalizeFix fix;
    bool fixed = false;
    group.service = NormalizeService(group.service, lang, &fix, &fixed);
    group.name = NormalizeName(group.name, &fix, &fixed);
    if (group.resource.empty()) group.resource = group.name;
    group.resource = obfuscator_.ObfuscateStatsResource(group.type, group.resource);
    return true;
  };
  stats::PrepareClientStats(&*decoded, ctx);
  std::vector<stats::StatsPayload> ready;
  {
    std::lock_guard<std::mutex> lock(client_stats_mu_);
    ready = client_stats_.Add(NowNs(), *std::move(decoded));
  }
  for (auto& payload : ready) SubmitStats(std::move(payload));
  Count("client_stats_payloads");
  return absl::OkStatus();
}

std::string Pipeline::RateByServiceJson() {
  std::lock_guard<std::mutex> lock(rates_mu_);
  uint64_t version = sampler_.rates_version();
  if (version != rates_version_) {
    std::string json = "{\"rate_by_service\":{";
    bool first = true;
    for (const auto& [key, rate] : sampler_.RateByService()) {
      strings::AppendTo(&json, first ? "" : ",", "\"", JsonEscape(key), "\":", rate);
      first = false;
    }
    json += "}}";
    rates_json_ = std::move(json);
    rates_version_ = version;
  }
  return rates_json_;
}

std::map<std::string, int64_t> Pipeline::Counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, int64_t> out = counters_;
  for (size_t i = 0; i < kNormalizeFixCount; ++i) {
    if (normalize_stats_.fixes[i] > 0) {
      out[Cat("normalized:", NormalizeFixName(static_cast<NormalizeFix>(i)))] =
          static_cast<int64_t>(normalize_stats_.fixes[i]);
    }
  }
  auto sampler = sampler_.counters();
  for (int i = 0; i < 5; ++i) {
    std::string name(sampler::SamplerNameString(static_cast<sampler::SamplerName>(i)));
    if (sampler.kept[i]) out["sampler_kept:" + name] = static_cast<int64_t>(sampler.kept[i]);
    if (sampler.dropped[i]) out["sampler_dropped:" + name] = static_cast<int64_t>(sampler.dropped[i]);
  }
  auto concentrator = concentrator_.counters();
  out["stats_spans_counted"] = static_cast<int64_t>(concentrator.spans_counted);
  out["stats_spans_shed"] =
      static_cast<int64_t>(concentrator.spans_shed_groups + concentrator.spans_shed_buckets);
  out["stats_live_groups"] = static_cast<int64_t>(concentrator.live_groups);
  // Span tag storage reused across requests (per-thread pools, bounded; what they refuse is freed).
  const tag_storage::Counters tags = tag_storage::GlobalCounters();
  out["tag_storage_reused"] = static_cast<int64_t>(tags.reused);
  out["tag_storage_allocated"] = static_cast<int64_t>(tags.allocated);
  out["tag_storage_released"] = static_cast<int64_t>(tags.released);
  out["tag_storage_pooled"] = static_cast<int64_t>(tags.pooled);
  // Distinct peer tag sets are formatted once; past the cache's bounds they are formatted per span.
  out["stats_peer_tag_sets"] = static_cast<int64_t>(concentrator.peer_tag_sets.sets);
  out["stats_peer_tag_set_hits"] = static_cast<int64_t>(concentrator.peer_tag_sets.hits);
  out["stats_peer_tag_set_misses"] = static_cast<int64_t>(concentrator.peer_tag_sets.misses);
  out["stats_peer_tag_sets_uncached"] = static_cast<int64_t>(concentrator.peer_tag_sets.uncached);
  out["stats_peer_tag_set_cache_resets"] = static_cast<int64_t>(concentrator.peer_tag_sets.resets);
  // The SQL query cache is bounded by entries and bytes; what the bounds shed shows as evictions.
  const ObfuscatorStats obfuscation = obfuscator_.stats();
  out["obfuscation_sql_queries"] = static_cast<int64_t>(obfuscation.sql_queries);
  out["obfuscation_sql_errors"] = static_cast<int64_t>(obfuscation.sql_errors);
  out["obfuscation_sql_cache_hits"] = static_cast<int64_t>(obfuscation.cache_hits);
  out["obfuscation_sql_cache_misses"] = static_cast<int64_t>(obfuscation.cache_misses);
  out["obfuscation_sql_cache_evictions"] = static_cast<int64_t>(obfuscation.cache_evictions);
  out["obfuscation_sql_cache_entries"] = static_cast<int64_t>(obfuscation.cache_entries);
  out["obfuscation_sql_cache_bytes"] = static_cast<int64_t>(obfuscation.cache_bytes);
  out["obfuscation_credit_cards"] = static_cast<int64_t>(obfuscation.credit_cards);
  return out;
}

}  // namespace dogwatch::trace
