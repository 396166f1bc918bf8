#include "trace-agent/writer/payload_encoder.h"

#include <cstdlib>

#include "trace-agent/writer/proto_writer.h"

namespace dogwatch::trace {
namespace {

// map<string, string> entries are messages {1: key, 2: value}; empty strings are left out, as
// protobuf's own encoder leaves out default values.
size_t StringEntrySize(std::string_view key, std::string_view value) {
  return StringFieldSize(key) + StringFieldSize(value);
}

size_t StringMapSize(const StringMap& map) {
  size_t size = 0;
  for (const auto& [key, value] : map) {
    size += ProtoSink::IsShortStringEntry(key, value) ? ProtoSink::ShortStringEntryFieldSize(key, value)
                                                      : MessageFieldSize(StringEntrySize(key, value));
  }
  return size;
}

size_t NumberEntrySize(std::string_view key, double value) {
  return StringFieldSize(key) + DoubleFieldSize(value);
}

size_t NumberMapSize(const NumberMap& map) {
  size_t size = 0;
  for (const auto& [key, value] : map) {
    size += ProtoSink::IsShortNumberEntry(key) ? ProtoSink::ShortNumberEntryFieldSize(key, value)
                                               : MessageFieldSize(NumberEntrySize(key, value));
  }
  return size;
}

void WriteStringMap(ProtoSink& w, uint32_t field, const StringMap& map) {
  for (const auto& [key, value] : map) {
    if (ProtoSink::IsShortStringEntry(key, value)) {
      w.ShortStringEntry(field, key, value);
      continue;
    }
    w.MessageHeader(field, StringEntrySize(key, value));
    w.String(1, key);
    w.String(2, value);
  }
}

void WriteNumberMap(ProtoSink& w, uint32_t field, const NumberMap& map) {
  for (const auto& [key, value] : map) {
    if (ProtoSink::IsShortNumberEntry(key)) {
      w.ShortNumberEntry(field, key, value);
      continue;
    }
    w.MessageHeader(field, NumberEntrySize(key, value));
    w.String(1, key);
    w.Double(2, value);
  }
}

size_t SpanLinkSize(const SpanLink& link) {
  return UInt64FieldSize(link.trace_id) + UInt64FieldSize(link.trace_id_high) +
         UInt64FieldSize(link.span_id) + StringMapSize(link.attributes) + StringFieldSize(link.tracestate) +
         UInt64FieldSize(link.flags);
}

void WriteSpan(ProtoSink& w, const Span& span) {
  w.String(1, span.service);
  w.String(2, span.name);
  w.String(3, span.resource);
  w.WideUInt64(4, span.trace_id);
  w.WideUInt64(5, span.span_id);
  w.WideUInt64(6, span.parent_id);
  w.WideInt64(7, span.start);
  w.WideInt64(8, span.duration);
  w.Int64(9, span.error);
  WriteStringMap(w, 10, span.meta);
  WriteNumberMap(w, 11, span.metrics);
  w.String(12, span.type);
  WriteStringMap(w, 13, span.meta_struct);
  for (const SpanLink& link : span.span_links) {
    w.MessageHeader(14, SpanLinkSize(link));
    w.UInt64(1, link.trace_id);
    w.UInt64(2, link.trace_id_high);
    w.UInt64(3, link.span_id);
    WriteStringMap(w, 4, link.attributes);
    w.String(5, link.tracestate);
    w.UInt64(6, link.flags);
  }
}

size_t ChunkHeaderSize(const TraceChunk& chunk) {
  return Int64FieldSize(chunk.priority) + StringFieldSize(chunk.origin);
}

size_t ChunkTrailerSize(const TraceChunk& chunk) {
  return StringMapSize(chunk.tags) + UInt64FieldSize(chunk.dropped_trace ? 1 : 0);
}

size_t TracerHeaderSize(const TracerPayload& payload) {
  return StringFieldSize(payload.container_id) + StringFieldSize(payload.language_name) +
         StringFieldSize(payload.language_version) + StringFieldSize(payload.tracer_version) +
         StringFieldSize(payload.runtime_id);
}

size_t TracerTrailerSize(const TracerPayload& payload) {
  return StringMapSize(payload.tags) + StringFieldSize(payload.env) + StringFieldSize(payload.hostname) +
         StringFieldSize(payload.app_version);
}

}  // namespace

size_t PayloadEncoder::SpanSize(const Span& span) {
  size_t size = StringFieldSize(span.service) + StringFieldSize(span.name) + StringFieldSize(span.resource) +
                UInt64FieldSize(span.trace_id) + UInt64FieldSize(span.span_id) +
                UInt64FieldSize(span.parent_id) + Int64FieldSize(span.start) + Int64FieldSize(span.duration) +
                Int64FieldSize(span.error) + StringMapSize(span.meta) + NumberMapSize(span.metrics) +
                StringFieldSize(span.type) + StringMapSize(span.meta_struct);
  for (const SpanLink& link : span.span_links) size += MessageFieldSize(SpanLinkSize(link));
  return size;
}

void PayloadEncoder::EncodeSpan(const Span& span, std::string* out) {
  const size_t size = SpanSize(span);
  const size_t old_size = out->size();
  out->resize(old_size + size + kProtoSinkSlack);
  ProtoSink w(out->data() + old_size);
  WriteSpan(w, span);
  out->resize(old_size + size);
}

char* PayloadEncoder::Reserve(size_t size) {
  size += kProtoSinkSlack;
  if (size > capacity_) {
    // Geometric growth; the buffer lives as long as the (per-thread) encoder and is as large as
    // the largest tracer payload it encoded, which the receiver's request size limit bounds.
    size_t capacity = capacity_ == 0 ? 64 * 1024 : capacity_;
    while (capacity < size) capacity *= 2;
    buffer_.reset(new char[capacity]);
    capacity_ = capacity;
  }
  return buffer_.get();
}

size_t PayloadEncoder::Measure(const TracerPayload& payload) {
  // Pass 1: sizes, innermost first.
  span_sizes_.clear();
  chunk_sizes_.clear();
  size_t tracer_size = TracerHeaderSize(payload) + TracerTrailerSize(payload);
  for (const TraceChunk& chunk : payload.chunks) {
    size_t chunk_size = ChunkHeaderSize(chunk) + ChunkTrailerSize(chunk);
    for (const Span& span : chunk.spans) {
      const size_t span_size = SpanSize(span);
      span_sizes_.push_back(span_size);
      chunk_size += MessageFieldSize(span_size);
    }
    chunk_sizes_.push_back(chunk_size);
    tracer_size += MessageFieldSize(chunk_size);
  }
  measured_tracer_size_ = tracer_size;
  return MessageFieldSize(tracer_size);
}

void PayloadEncoder::EncodeMeasured(const TracerPayload& payload, char* start) {
  // Pass 2: the bytes, in field order.
  const size_t tracer_size = measured_tracer_size_;
  const size_t total = MessageFieldSize(tracer_size);
  ProtoSink w(start);
  w.MessageHeader(5, tracer_size);
  w.String(1, payload.container_id);
  w.String(2, payload.language_name);
  w.String(3, payload.language_version);
  w.String(4, payload.tracer_version);
  w.String(5, payload.runtime_id);
  size_t span_index = 0;
  for (size_t c = 0; c < payload.chunks.size(); ++c) {
    const TraceChunk& chunk = payload.chunks[c];
    w.MessageHeader(6, chunk_sizes_[c]);
    w.Int64(1, chunk.priority);
    w.String(2, chunk.origin);
    for (const Span& span : chunk.spans) {
      w.MessageHeader(3, span_sizes_[span_index++]);
      WriteSpan(w, span);
    }
    WriteStringMap(w, 4, chunk.tags);
    w.Bool(5, chunk.dropped_trace);
  }
  WriteStringMap(w, 7, payload.tags);
  w.String(8, payload.env);
  w.String(9, payload.hostname);
  w.String(10, payload.app_version);
  // The two passes must agree byte for byte; a mismatch is a bug in this file, and sending a
  // corrupt payload would be worse than stopping (the tests cover every field).
  if (w.position() != start + total) std::abort();
}

std::string_view PayloadEncoder::EncodeTracerPayload(const TracerPayload& payload) {
  const size_t total = Measure(payload);
  char* start = Reserve(total);
  EncodeMeasured(payload, start);
  return std::string_view(start, total);
}

void PayloadEncoder::AppendTracerPayload(const TracerPayload& payload, std::string* agent_payload) {
  agent_payload->append(EncodeTracerPayload(payload));
}

void PayloadEncoder::AppendAgentPayloadHeader(const AgentPayloadHeader& header, std::string* agent_payload) {
  ProtoWriter w(agent_payload);
  w.String(1, header.hostname);
  w.String(2, header.env);
  for (const auto& [key, value] : header.tags) {
    w.Tag(6, 2);
    w.Varint(StringEntrySize(key, value));
    w.String(1, key);
    w.String(2, value);
  }
  w.String(7, header.agent_version);
  w.Double(8, header.target_tps);
  w.Double(9, header.error_tps);
  w.Bool(10, header.rare_sampler_enabled);
}

}  // namespace dogwatch::trace
