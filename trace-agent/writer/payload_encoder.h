#pragma once
// Encodes the span model as Datadog intake protobuf (span.proto, tracer_payload.proto,
// agent_payload.proto field numbers).

#include <map>
#include <string>

#include "trace-agent/model/span.h"

namespace dogwatch::trace {

// Appends one AgentPayload.tracerPayloads entry (field 5, length-delimited) to `agent_payload`.
// Nested messages go through `scratch` buffers that are reused across calls.
class PayloadEncoder {
 public:
  void AppendTracerPayload(const TracerPayload& payload, std::string* agent_payload);

  struct AgentPayloadHeader {
    std::string hostname;
    std::string env;
    std::map<std::string, std::string> tags;
    std::string agent_version;
    double target_tps = 0;
    double error_tps = 0;
    bool rare_sampler_enabled = false;
  };
  // The AgentPayload fields other than tracerPayloads; protobuf fields may come in any order, so
  // the header is appended after the payloads at flush time.
  static void AppendAgentPayloadHeader(const AgentPayloadHeader& header, std::string* agent_payload);

  static void EncodeSpan(const Span& span, std::string* out);

 private:
  std::string chunk_scratch_;
  std::string span_scratch_;
  std::string tracer_scratch_;
};

}  // namespace dogwatch::trace
