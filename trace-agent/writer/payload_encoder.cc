#include "trace-agent/writer/payload_encoder.h"

#include "trace-agent/writer/proto_writer.h"

namespace dogwatch::trace {
namespace {

// map<string, string> entries: repeated {1: key, 2: value} messages.
void AppendStringMap(ProtoWriter& w, uint32_t field, const StringMap& map) {
  for (const auto& [key, value] : map) {
    size_t entry_size = 0;
    // key and value are always present in an entry, even when empty, like protobuf's own encoder
    // for non-default values; empty strings are simply left out.
    if (!key.empty()) entry_size += 1 + VarintSize(key.size()) + key.size();
    if (!value.empty()) entry_size += 1 + VarintSize(value.size()) + value.size();
    w.Tag(field, 2);
    w.Varint(entry_size);
    w.String(1, key);
    w.String(2, value);
  }
}

void AppendNumberMap(ProtoWriter& w, uint32_t field, const NumberMap& map) {
  for (const auto& [key, value] : map) {
    size_t entry_size = (key.empty() ? 0 : 1 + VarintSize(key.size()) + key.size()) + (value != 0 ? 9 : 0);
    w.Tag(field, 2);
    w.Varint(entry_size);
    w.String(1, key);
    w.Double(2, value);
  }
}

}  // namespace

void PayloadEncoder::EncodeSpan(const Span& span, std::string* out) {
  ProtoWriter w(out);
  w.String(1, span.service);
  w.String(2, span.name);
  w.String(3, span.resource);
  w.UInt64(4, span.trace_id);
  w.UInt64(5, span.span_id);
  w.UInt64(6, span.parent_id);
  w.Int64(7, span.start);
  w.Int64(8, span.duration);
  w.Int64(9, span.error);
  AppendStringMap(w, 10, span.meta);
  AppendNumberMap(w, 11, span.metrics);
  w.String(12, span.type);
  AppendStringMap(w, 13, span.meta_struct);
  std::string link;
  for (const SpanLink& l : span.span_links) {
    link.clear();
    ProtoWriter lw(&link);
    lw.UInt64(1, l.trace_id);
    lw.UInt64(2, l.trace_id_high);
    lw.UInt64(3, l.span_id);
    AppendStringMap(lw, 4, l.attributes);
    lw.String(5, l.tracestate);
    lw.UInt64(6, l.flags);
    w.Message(14, link);
  }
}

void PayloadEncoder::AppendTracerPayload(const TracerPayload& payload, std::string* agent_payload) {
  tracer_scratch_.clear();
  ProtoWriter tw(&tracer_scratch_);
  tw.String(1, payload.container_id);
  tw.String(2, payload.language_name);
  tw.String(3, payload.language_version);
  tw.String(4, payload.tracer_version);
  tw.String(5, payload.runtime_id);
  for (const TraceChunk& chunk : payload.chunks) {
    chunk_scratch_.clear();
    ProtoWriter cw(&chunk_scratch_);
    cw.Int64(1, chunk.priority);
    cw.String(2, chunk.origin);
    for (const Span& span : chunk.spans) {
      span_scratch_.clear();
      EncodeSpan(span, &span_scratch_);
      cw.Message(3, span_scratch_);
    }
    AppendStringMap(cw, 4, chunk.tags);
    cw.Bool(5, chunk.dropped_trace);
    tw.Message(6, chunk_scratch_);
  }
  AppendStringMap(tw, 7, payload.tags);
  tw.String(8, payload.env);
  tw.String(9, payload.hostname);
  tw.String(10, payload.app_version);
  ProtoWriter(agent_payload).Message(5, tracer_scratch_);
}

void PayloadEncoder::AppendAgentPayloadHeader(const AgentPayloadHeader& header, std::string* agent_payload) {
  ProtoWriter w(agent_payload);
  w.String(1, header.hostname);
  w.String(2, header.env);
  StringMap tags(header.tags.begin(), header.tags.end());
  AppendStringMap(w, 6, tags);
  w.String(7, header.agent_version);
  w.Double(8, header.target_tps);
  w.Double(9, header.error_tps);
  w.Bool(10, header.rare_sampler_enabled);
}

}  // namespace dogwatch::trace
