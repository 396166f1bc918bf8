// Arbitrary bytes through one trace decoder, chosen at compile time by DOGWATCH_FUZZ_FORMAT
// (0 = msgpack v0.4, 1 = v0.5, 2 = v0.7, 3 = JSON). Besides never crashing, a successful decode must
// hold the decoders' promises: valid UTF-8 in every string, unique map keys, span counts within the
// limits, and a CountTraces that agrees with what was decoded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "trace-agent/decode/decode.h"
#include "trace-agent/decode/utf8.h"

#ifndef DOGWATCH_FUZZ_FORMAT
#error "DOGWATCH_FUZZ_FORMAT must select the decoder"
#endif

namespace {

using namespace dogwatch::trace;

void Require(bool condition) {
  if (!condition) std::abort();
}

// The input being decoded: a borrowed string must lie inside it (the spans' lifetime rule, span.h).
std::string_view g_body;

void CheckString(const SpanString& s, bool text) {
  if (text) Require(IsValidUtf8(s));
  if (!s.owned() && !s.empty()) {
    Require(s.data() >= g_body.data() && s.data() + s.size() <= g_body.data() + g_body.size());
  }
}

template <typename Map>
void CheckMap(const Map& map, bool text_values) {
  for (size_t i = 0; i < map.size(); ++i) {
    CheckString(map[i].first, true);
    if constexpr (std::is_same_v<typename Map::value_type::second_type, SpanString>) {
      CheckString(map[i].second, text_values);
    }
    for (size_t j = 0; j < i; ++j) Require(map[i].first != map[j].first);
  }
}

size_t CheckSpans(const std::vector<Span>& spans) {
  for (const Span& s : spans) {
    for (const SpanString* field : {&s.service, &s.name, &s.resource, &s.type}) CheckString(*field, true);
    CheckMap(s.meta, true);
    CheckMap(s.metrics, false);
    CheckMap(s.meta_struct, false);
    for (const SpanLink& l : s.span_links) {
      CheckMap(l.attributes, true);
      CheckString(l.tracestate, true);
    }
  }
  return spans.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  g_body = body;
  DecodeLimits limits;
  limits.max_spans = 10'000;
  limits.max_map_entries = 10'000;
  limits.max_decoded_bytes = 16 << 20;
  size_t spans = 0;
#if DOGWATCH_FUZZ_FORMAT == 0 || DOGWATCH_FUZZ_FORMAT == 1
#if DOGWATCH_FUZZ_FORMAT == 0
  auto traces = DecodeMsgpackTracesV04(body, limits);
  auto count = CountTraces(body, TraceEncoding::kMsgpackV04, limits);
#else
  auto traces = DecodeMsgpackTracesV05(body, limits);
  auto count = CountTraces(body, TraceEncoding::kMsgpackV05, limits);
#endif
  if (!traces.ok()) return 0;
  Require(count.ok() && *count == traces->size());
  for (const Trace& trace : *traces) spans += CheckSpans(trace);
#elif DOGWATCH_FUZZ_FORMAT == 2
  auto payload = DecodeMsgpackTracerPayloadV07(body, limits);
  if (!payload.ok()) return 0;
  Require(CountTraces(body, TraceEncoding::kMsgpackV07, limits).ok());
  for (const std::string* s :
       {&payload->container_id, &payload->language_name, &payload->language_version, &payload->tracer_version,
        &payload->runtime_id, &payload->env, &payload->hostname, &payload->app_version}) {
    Require(IsValidUtf8(*s));
  }
  CheckMap(payload->tags, true);
  for (const TraceChunk& chunk : payload->chunks) {
    Require(IsValidUtf8(chunk.origin));
    CheckMap(chunk.tags, true);
    spans += CheckSpans(chunk.spans);
  }
#else
  auto traces = DecodeJsonTraces(body, limits);
  if (!traces.ok()) return 0;
  Require(CountTraces(body, TraceEncoding::kJson, limits).ok());
  for (const Trace& trace : *traces) spans += CheckSpans(trace);
#endif
  Require(spans <= limits.max_spans);
  return 0;
}
