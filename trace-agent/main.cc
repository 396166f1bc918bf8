// trace-agent: the APM intake for unmodified Datadog tracers. Receiver → pipeline (normalize,
// obfuscate, stats, sample) → writer → the core's Submit.

#include <memory>

#include "common/core_client/core_client.h"
#include "common/status/status_macros.h"
#include "common/subagent/subagent.h"
#include "trace-agent/agent/container_tags.h"
#include "trace-agent/agent/dogstatsd_forwarder.h"
#include "trace-agent/agent/pipeline.h"
#include "trace-agent/receiver/receiver.h"
#include "trace-agent/writer/trace_writer.h"

namespace {

using dogwatch::core::SubmitRequest;
using dogwatch::core::Track;

absl::Status Submit(dogwatch::core_client::CoreClient& core, Track track, const std::string& path,
                    const std::vector<std::pair<std::string, std::string>>& headers, std::string body,
                    const std::string& evp_subdomain = "") {
  SubmitRequest request;
  request.set_track(track);
  request.set_path(path);
  request.set_origin("trace-agent");
  request.set_evp_subdomain(evp_subdomain);
  for (const auto& [name, value] : headers) {
    auto* header = request.add_headers();
    header->set_name(name);
    header->set_value(value);
  }
  request.set_body(std::move(body));
  auto response = core.Submit(request, absl::Seconds(10));
  return response.status();
}

absl::Status Run(dogwatch::subagent::Context& ctx) {
  const auto& config = ctx.config;
  auto& core = ctx.core;
  std::string hostname = dogwatch::config::ResolveHostname(config);

  ASSIGN_OR_RETURN(dogwatch::trace::PipelineOptions pipeline_options,
                   dogwatch::trace::PipelineOptionsFromConfig(config, hostname));
  dogwatch::trace::TraceWriterOptions writer_options;
  writer_options.header.hostname = hostname;
  writer_options.header.env = pipeline_options.default_env;
  writer_options.header.agent_version = DOGWATCH_VERSION;
  writer_options.header.target_tps = pipeline_options.sampler.target_tps;
  writer_options.header.error_tps = pipeline_options.sampler.error_tps;
  writer_options.header.rare_sampler_enabled = pipeline_options.sampler.rare_sampler_enabled;
  dogwatch::trace::TraceWriter writer(writer_options, [&core](dogwatch::trace::OutgoingPayload payload) {
    return Submit(core, dogwatch::core::TRACK_TRACES, payload.path, payload.headers, std::move(payload.body));
  });
  ASSIGN_OR_RETURN(auto pipeline,
                   dogwatch::trace::Pipeline::Create(pipeline_options, &writer, [&core](std::string body) {
                     return Submit(core, dogwatch::core::TRACK_TRACES, "/api/v0.2/stats",
                                   {{"Content-Type", "application/msgpack"}, {"Content-Encoding", "gzip"}},
                                   std::move(body));
                   }));

  dogwatch::trace::DogstatsdForwarder dogstatsd(config.GetString("dogstatsd_socket"),
                                                static_cast<int>(config.GetInt("dogstatsd_port")));
  dogwatch::trace::ReceiverOptions receiver_options;
  receiver_options.host = config.GetBool("apm_config.apm_non_local_traffic") ? "0.0.0.0" : "127.0.0.1";
  if (config.GetInt("apm_config.receiver_port") > 0) {
    receiver_options.port = static_cast<uint16_t>(config.GetInt("apm_config.receiver_port"));
  } else {
    receiver_options.port.reset();
  }
  receiver_options.unix_socket_path = config.GetString("apm_config.receiver_socket");
  receiver_options.max_request_bytes = static_cast<size_t>(config.GetInt("apm_config.max_request_bytes"));
  receiver_options.timeout_seconds = static_cast<int>(config.GetInt("apm_config.receiver_timeout"));
  receiver_options.default_env = pipeline_options.default_env;
  receiver_options.target_tps = pipeline_options.sampler.target_tps;
  receiver_options.statsd_port = static_cast<int>(config.GetInt("dogstatsd_port"));
  receiver_options.evp_proxy_enabled = config.GetBool("apm_config.evp_proxy_config.enabled");
  receiver_options.evp_max_payload_bytes =
      static_cast<size_t>(config.GetInt("apm_config.evp_proxy_config.max_payload_size"));
  // Container tags come from the core's tagger (over IPC, cached), at high cardinality as the
  // Datadog trace-agent asks for them.
  dogwatch::trace::ContainerTagCache container_tags(
      {}, [&core](const std::string& container_id) -> absl::StatusOr<std::vector<std::string>> {
        dogwatch::core::TaggerLookupRequest request;
        request.set_container_id(container_id);
        request.set_cardinality("high");
        auto answer = core.TaggerLookup(request, absl::Seconds(2));
        if (!answer.ok()) return answer.status();
        return std::vector<std::string>(answer->tags().begin(), answer->tags().end());
      });
  dogwatch::trace::ContainerTaggingProcessor tagging(pipeline.get(), &container_tags);
  dogwatch::trace::Receiver receiver(
      receiver_options, &tagging,
      [&core](dogwatch::trace::ProxyRequest request) {
        return Submit(core, static_cast<Track>(request.track), request.path, request.headers,
                      std::move(request.body), request.evp_subdomain);
      },
      [&dogstatsd](std::string_view lines) { return dogstatsd.Send(lines); });

  writer.Start();
  pipeline->Start();
  RETURN_IF_ERROR(receiver.Start());
  ctx.set_reporter([&](dogwatch::core::ComponentStatus* status) {
    auto& counters = *status->mutable_counters();
    for (const auto& [name, value] : receiver.Counters()) counters[name] = value;
    for (const auto& [name, value] : pipeline->Counters()) counters[name] = value;
    for (const auto& [name, value] : writer.Counters()) counters[name] = value;
    for (const auto& [name, value] : container_tags.Counters()) counters[name] = value;
    auto& info = *status->mutable_info();
    info["receiver"] =
        receiver_options.port ? receiver_options.host + ":" + std::to_string(receiver.tcp_port()) : "off";
    if (!receiver_options.unix_socket_path.empty())
      info["receiver_socket"] = receiver_options.unix_socket_path;
  });
  ctx.shutdown.Wait();
  receiver.Stop();
  pipeline->Stop();
  writer.Stop();
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  dogwatch::subagent::Spec spec;
  spec.name = "trace-agent";
  spec.summary = "dogwatch trace-agent: the APM intake for Datadog tracers (TCP 8126 and a unix socket).";
  spec.enabled = [](const dogwatch::config::Config& config, std::string* why) {
    *why = "apm_config.enabled is false";
    return config.GetBool("apm_config.enabled");
  };
  spec.run = Run;
  return dogwatch::subagent::Main(spec, argc, argv);
}
