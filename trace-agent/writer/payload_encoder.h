#pragma once
// Encodes the span model as Datadog intake protobuf (span.proto, tracer_payload.proto,
// agent_payload.proto field numbers).

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "trace-agent/model/span.h"

namespace dogwatch::trace {

// Encodes AgentPayload.tracerPayloads entries in two passes: the sizes of every nested message
// first (spans, chunks, the tracer payload), then the bytes, written once straight into memory of
// the exact size. Building nested messages in scratch buffers and copying each into its parent
// would move every span's bytes three more times. One encoder per thread; it keeps its buffers.
class PayloadEncoder {
 public:
  // One AgentPayload.tracerPayloads entry (field 5, length-delimited), valid until the next call.
  std::string_view EncodeTracerPayload(const TracerPayload& payload);
  // The same in two steps, for callers that own the destination memory (the trace writer encodes
  // straight into its flush buffer): Measure returns the entry's size, EncodeMeasured then writes
  // exactly that many bytes at `out`, which must be followed by kProtoSinkSlack (proto_writer.h)
  // bytes it may scribble on. `payload` must not change in between.
  size_t Measure(const TracerPayload& payload);
  void EncodeMeasured(const TracerPayload& payload, char* out);
  // Appends EncodeTracerPayload(payload) to `agent_payload`.
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

  // One Span message (without its field tag and length), appended to `out`.
  static void EncodeSpan(const Span& span, std::string* out);
  // The size EncodeSpan appends.
  static size_t SpanSize(const Span& span);

 private:
  char* Reserve(size_t size);

  std::vector<size_t> span_sizes_;   // every span of the payload, in order
  std::vector<size_t> chunk_sizes_;  // every chunk of the payload, in order
  size_t measured_tracer_size_ = 0;  // the TracerPayload message's size, from the last Measure
  std::unique_ptr<char[]> buffer_;   // not value-initialised: every byte is written before it is read
  size_t capacity_ = 0;
};

}  // namespace dogwatch::trace
