#include "trace-agent/writer/trace_writer.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <mutex>
#include <set>
#include <thread>

#include "common/compression/compression.h"
#include "datadog/trace/agent_payload.pb.h"
#include "google/protobuf/util/message_differencer.h"
#include "trace-agent/decode/testdata_payloads.h"
#include "trace-agent/writer/payload_encoder.h"
#include "trace-agent/writer/proto_writer.h"
#include "trace-agent/writer/zstd_stream.h"

using namespace dogwatch::trace;

namespace {

Span MakeSpan(uint64_t id, uint64_t parent) {
  Span span;
  span.service = "web";
  span.name = "http.request";
  span.resource = "GET /users";
  span.type = "web";
  span.trace_id = 42;
  span.span_id = id;
  span.parent_id = parent;
  span.start = 1700000000000000000;
  span.duration = 1500;
  span.error = parent == 0 ? 0 : 1;
  span.meta = {{"http.method", "GET"}, {"empty.value", ""}, {"", "empty key"}};
  span.metrics = {{"_sampling_priority_v1", 1}, {"zero", 0}, {"negative", -2.5}};
  span.meta_struct = {{"appsec", std::string("\x00\x01", 2)}};
  SpanLink link;
  link.trace_id = 7;
  link.span_id = 8;
  link.attributes = {{"k", "v"}};
  link.flags = 0x80000001;
  span.span_links.push_back(link);
  return span;
}

TracerPayload MakePayload() {
  TracerPayload payload;
  payload.container_id = "abc";
  payload.language_name = "nodejs";
  payload.tracer_version = "5.0.0";
  payload.env = "prod";
  payload.hostname = "h";
  payload.app_version = "1.2";
  payload.tags = {{"_dd.tags.container", "a:b"}};
  TraceChunk chunk;
  chunk.priority = -1;  // negative int32 must round-trip
  chunk.origin = "synthetics";
  chunk.spans = {MakeSpan(1, 0), MakeSpan(2, 1)};
  chunk.tags = {{"t", "v"}};
  chunk.dropped_trace = true;
  payload.chunks.push_back(chunk);
  return payload;
}

}  // namespace

TEST_CASE("the hand-written encoder produces what protobuf decodes to the same values") {
  std::string bytes;
  PayloadEncoder encoder;
  encoder.AppendTracerPayload(MakePayload(), &bytes);
  PayloadEncoder::AgentPayloadHeader header;
  header.hostname = "agent-host";
  header.env = "prod";
  header.agent_version = "0.1.0";
  header.target_tps = 10;
  header.tags = {{"a", "b"}};
  PayloadEncoder::AppendAgentPayloadHeader(header, &bytes);

  datadog::trace::AgentPayload decoded;
  REQUIRE(decoded.ParseFromString(bytes));
  CHECK(decoded.hostname() == "agent-host");
  CHECK(decoded.targettps() == 10);
  CHECK(decoded.tags().at("a") == "b");
  REQUIRE(decoded.tracerpayloads_size() == 1);
  const auto& tp = decoded.tracerpayloads(0);
  CHECK(tp.containerid() == "abc");
  CHECK(tp.languagename() == "nodejs");
  CHECK(tp.tags().at("_dd.tags.container") == "a:b");
  REQUIRE(tp.chunks_size() == 1);
  const auto& chunk = tp.chunks(0);
  CHECK(chunk.priority() == -1);
  CHECK(chunk.origin() == "synthetics");
  CHECK(chunk.droppedtrace());
  REQUIRE(chunk.spans_size() == 2);
  const auto& span = chunk.spans(1);
  CHECK(span.spanid() == 2);
  CHECK(span.parentid() == 1);
  CHECK(span.traceid() == 42);
  CHECK(span.start() == 1700000000000000000);
  CHECK(span.error() == 1);
  CHECK(span.meta().at("http.method") == "GET");
  CHECK(span.meta().at("empty.value").empty());
  CHECK(span.meta().at("") == "empty key");
  CHECK(span.metrics().at("zero") == 0);
  CHECK(span.metrics().at("negative") == -2.5);
  CHECK(span.meta_struct().at("appsec") == std::string("\x00\x01", 2));
  REQUIRE(span.spanlinks_size() == 1);
  CHECK(span.spanlinks(0).flags() == 0x80000001);
  CHECK(span.spanlinks(0).attributes().at("k") == "v");
}

TEST_CASE("the writer flushes on size and on shutdown, gzip-compressed, with the Datadog headers") {
  std::mutex mu;
  std::vector<OutgoingPayload> submitted;
  TraceWriterOptions options;
  options.compression = TraceCompression::kGzip;  // zstd is the default; gzip is still supported
  options.flush_bytes = 1;                        // every write seals a payload
  options.flush_interval = absl::Seconds(60);
  options.header.hostname = "h";
  TraceWriter writer(options, [&](OutgoingPayload payload) {
    std::lock_guard<std::mutex> lock(mu);
    submitted.push_back(std::move(payload));
    return absl::OkStatus();
  });
  writer.Start();
  writer.Write(MakePayload());
  writer.Write(MakePayload());
  writer.Stop();
  REQUIRE(submitted.size() == 2);
  CHECK(submitted[0].path == "/api/v0.2/traces");
  bool gzip = false;
  for (const auto& [name, value] : submitted[0].headers)
    gzip |= name == "Content-Encoding" && value == "gzip";
  CHECK(gzip);
  auto body = dogwatch::compression::GzipDecompress(submitted[0].body, 1 << 20);
  REQUIRE(body.ok());
  datadog::trace::AgentPayload decoded;
  REQUIRE(decoded.ParseFromString(*body));
  CHECK(decoded.tracerpayloads(0).chunks(0).spans_size() == 2);
  bool has_languages = false;
  for (const auto& [name, value] : submitted[0].headers)
    has_languages |= name == "X-Datadog-Reported-Languages" && value == "nodejs";
  CHECK(has_languages);
  CHECK(writer.Counters().at("writer_spans") == 4);
}

TEST_CASE("the writer bounds pending payloads and counts what it sheds and what fails") {
  TraceWriterOptions options;
  options.flush_bytes = 1;
  options.max_pending_payloads = 2;
  std::atomic<bool> release{false};
  TraceWriter writer(options, [&](OutgoingPayload) {
    while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return absl::UnavailableError("core down");
  });
  writer.Start();
  for (int i = 0; i < 10; ++i) writer.Write(MakePayload());
  release.store(true);
  writer.Stop();
  auto counters = writer.Counters();
  CHECK(counters.at("writer_dropped_payloads") >= 7);
  CHECK(counters.at("writer_submit_errors") >= 1);
  CHECK(counters.at("writer_dropped_payloads") + counters.at("writer_submit_errors") == 10);
}

TEST_CASE("realistic payloads encode to exactly what protobuf parses back, span by span") {
  TracerPayload payload;
  payload.language_name = "nodejs";
  payload.env = "prod";
  for (Trace& trace : testdata::BuildRealisticTraces(20, 15)) {
    TraceChunk chunk;
    chunk.priority = 1;
    chunk.spans = std::move(trace);
    payload.chunks.push_back(std::move(chunk));
  }
  // Exercise the rarer fields on one span too.
  payload.chunks[3].spans[2] = MakeSpan(99, 1);
  PayloadEncoder encoder;
  // Twice through the same encoder: its reused buffers must not leak state between payloads.
  std::string bytes;
  encoder.AppendTracerPayload(MakePayload(), &bytes);
  bytes.clear();
  encoder.AppendTracerPayload(payload, &bytes);
  datadog::trace::AgentPayload decoded;
  REQUIRE(decoded.ParseFromString(bytes));
  REQUIRE(decoded.tracerpayloads_size() == 1);
  const auto& tp = decoded.tracerpayloads(0);
  CHECK(tp.env() == "prod");
  REQUIRE(tp.chunks_size() == 20);
  for (int c = 0; c < 20; ++c) {
    const TraceChunk& want_chunk = payload.chunks[static_cast<size_t>(c)];
    REQUIRE(tp.chunks(c).spans_size() == static_cast<int>(want_chunk.spans.size()));
    for (int s = 0; s < tp.chunks(c).spans_size(); ++s) {
      const Span& want = want_chunk.spans[static_cast<size_t>(s)];
      const auto& got = tp.chunks(c).spans(s);
      CHECK(got.service() == want.service);
      CHECK(got.name() == want.name);
      CHECK(got.resource() == want.resource);
      CHECK(got.type() == want.type);
      CHECK(got.spanid() == want.span_id);
      CHECK(got.parentid() == want.parent_id);
      CHECK(got.duration() == want.duration);
      CHECK(got.meta_size() == static_cast<int>(want.meta.size()));
      for (const auto& [key, value] : want.meta) CHECK(got.meta().at(key) == value);
      CHECK(got.metrics_size() == static_cast<int>(want.metrics.size()));
      for (const auto& [key, value] : want.metrics) CHECK(got.metrics().at(key) == value);
      CHECK(got.spanlinks_size() == static_cast<int>(want.span_links.size()));
      // A span encoded on its own is the same bytes, of the size SpanSize announces.
      std::string alone;
      PayloadEncoder::EncodeSpan(want, &alone);
      CHECK(alone.size() == PayloadEncoder::SpanSize(want));
      datadog::trace::Span parsed;
      REQUIRE(parsed.ParseFromString(alone));
      CHECK(google::protobuf::util::MessageDifferencer::Equals(parsed, got));
    }
  }
}

TEST_CASE("the writer batches payloads up to the flush size and sends zstd by default, like Datadog 7.59+") {
  std::string one;
  PayloadEncoder().AppendTracerPayload(MakePayload(), &one);
  std::mutex mu;
  std::vector<OutgoingPayload> submitted;
  TraceWriterOptions options;
  CHECK(options.compression == TraceCompression::kZstd);  // the default, as Datadog 7.59+
  options.flush_bytes = one.size() * 5 / 2;               // two payloads fit, a third would pass the size
  options.flush_interval = absl::Seconds(60);
  TraceWriter writer(options, [&](OutgoingPayload payload) {
    std::lock_guard<std::mutex> lock(mu);
    submitted.push_back(std::move(payload));
    return absl::OkStatus();
  });
  writer.Start();
  for (int i = 0; i < 5; ++i) writer.Write(MakePayload());
  writer.Stop();
  REQUIRE(submitted.size() == 3);
  int spans = 0;
  for (const OutgoingPayload& payload : submitted) {
    bool zstd = false;
    for (const auto& [name, value] : payload.headers) zstd |= name == "Content-Encoding" && value == "zstd";
    CHECK(zstd);
    auto body = dogwatch::compression::ZstdDecompress(payload.body, 1 << 20);
    REQUIRE(body.ok());
    CHECK(body->size() <= options.flush_bytes + 100);  // + the AgentPayload header
    datadog::trace::AgentPayload decoded;
    REQUIRE(decoded.ParseFromString(*body));
    for (const auto& tp : decoded.tracerpayloads())
      for (const auto& chunk : tp.chunks()) spans += chunk.spans_size();
  }
  CHECK(spans == 10);
  CHECK(writer.Counters().at("writer_spans") == 10);
}

TEST_CASE("writers on several threads encode into the shared buffer without losing or mixing payloads") {
  // gzip: each writer reserves its byte range under the lock and encodes into it outside; the flusher
  // must wait for ranges still being filled. zstd: writers encode in turn and compress outside the
  // lock, one at a time, each taking what the others encoded meanwhile; a seal waits for the
  // compression in flight. Payloads carry their writer and sequence number in a tag, and every one
  // must come back whole (protobuf parses each flush) exactly once.
  std::mutex mu;
  std::vector<OutgoingPayload> submitted;
  TraceWriterOptions options;
  std::string one;
  PayloadEncoder().AppendTracerPayload(MakePayload(), &one);
  // Small flushes (many seals while others encode or compress), and flushes of several zstd blocks
  // (compression mid-frame while others encode), each with both codecs.
  options.flush_bytes = GENERATE_COPY(one.size() * 7 / 2, one.size() * 1000);
  options.compression = GENERATE(TraceCompression::kZstd, TraceCompression::kGzip);
  options.flush_interval = absl::Milliseconds(1);
  options.max_pending_payloads = 1000;
  options.header.hostname = "agent-host";
  TraceWriter writer(options, [&](OutgoingPayload payload) {
    std::lock_guard<std::mutex> lock(mu);
    submitted.push_back(std::move(payload));
    return absl::OkStatus();
  });
  writer.Start();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 300;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&writer, t] {
      for (int i = 0; i < kPerThread; ++i) {
        TracerPayload payload = MakePayload();
        payload.runtime_id = std::to_string(t) + "/" + std::to_string(i);
        writer.Write(payload);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  writer.Stop();
  std::set<std::string> seen;
  int spans = 0;
  for (const OutgoingPayload& payload : submitted) {
    auto body = options.compression == TraceCompression::kZstd
                    ? dogwatch::compression::ZstdDecompress(payload.body, 1 << 24)
                    : dogwatch::compression::GzipDecompress(payload.body, 1 << 24);
    REQUIRE(body.ok());
    datadog::trace::AgentPayload decoded;
    REQUIRE(decoded.ParseFromString(*body));
    CHECK(decoded.hostname() == "agent-host");
    for (const auto& tp : decoded.tracerpayloads()) {
      CHECK(seen.insert(tp.runtimeid()).second);
      REQUIRE(tp.chunks_size() == 1);
      spans += tp.chunks(0).spans_size();
      CHECK(tp.chunks(0).spans(1).meta().at("http.method") == "GET");
    }
  }
  CHECK(seen.size() == kThreads * kPerThread);
  CHECK(spans == 2 * kThreads * kPerThread);
  CHECK(writer.Counters().at("writer_spans") == spans);
  CHECK(writer.Counters().at("writer_dropped_payloads") == 0);
}

TEST_CASE("varint sizes and short copies match the wire format at every boundary") {
  for (int bits = 0; bits <= 64; ++bits) {
    for (int delta = -1; delta <= 1; ++delta) {
      const uint64_t value = (bits == 64 ? 0 : (uint64_t{1} << bits)) + static_cast<uint64_t>(delta);
      std::string out;
      ProtoWriter(&out).Varint(value);
      INFO(value);
      CHECK(VarintSize(value) == out.size());
    }
  }
  // Every length around the copy's size classes, at unaligned offsets, must copy exactly n bytes.
  const std::string source = "0123456789abcdefghijklmnopqrstuvwxyz";
  for (size_t n = 0; n <= 33; ++n) {
    std::string target(40, '#');
    CopyBytes(target.data() + 3, source.data() + 1, n);
    CHECK(target == std::string(3, '#') + source.substr(1, n) + std::string(37 - n, '#'));
  }
}

TEST_CASE("wide varints match the byte loop at every length and leave the bytes past them alone") {
  // Every bit width, its neighbours, and values with every 7-bit group set or clear.
  std::vector<uint64_t> values;
  for (int bits = 0; bits <= 64; ++bits) {
    for (int delta = -1; delta <= 1; ++delta) {
      values.push_back((bits == 64 ? 0 : (uint64_t{1} << bits)) + static_cast<uint64_t>(delta));
    }
  }
  for (uint64_t pattern :
       std::initializer_list<uint64_t>{0x5555555555555555ull, 0xAAAAAAAAAAAAAAAAull, 0x7F007F007F007F00ull,
                                       0x0102040810204081ull, ~uint64_t{0}, uint64_t{1} << 63}) {
    for (int shift = 0; shift < 64; shift += 7) values.push_back(pattern >> shift);
  }
  for (uint64_t value : values) {
    INFO(value);
    std::string want;
    ProtoWriter(&want).UInt64(4, value);
    // A field before and after, written into memory with slack, as the encoder does.
    std::string memory(want.size() + 2 + kProtoSinkSlack, '#');
    ProtoSink sink(memory.data());
    sink.WideUInt64(4, value);
    CHECK(static_cast<size_t>(sink.position() - memory.data()) == want.size());
    sink.Tag(1, 0);
    sink.Varint(1);
    CHECK(memory.substr(0, want.size()) == want);
    CHECK(memory.substr(want.size(), 2) == std::string("\x08\x01", 2));
    CHECK(UInt64FieldSize(value) == want.size());
  }
}

namespace {

// A span whose only field is one map entry (`entry`, encoded by the general ProtoWriter) as field
// `field`: the encoder must write exactly that, and measure it so.
void CheckSpanIsOneEntry(const Span& span, uint32_t field, const std::string& entry) {
  std::string want;
  ProtoWriter(&want).Message(field, entry);
  std::string got;
  PayloadEncoder::EncodeSpan(span, &got);
  CHECK(got == want);
  CHECK(PayloadEncoder::SpanSize(span) == want.size());
}

}  // namespace

TEST_CASE("map entries take the one-byte-length shortcut only where it writes the same bytes") {
  // Key and value lengths around the shortcut's bounds (1-60 bytes each) and the varint boundary.
  for (size_t key_size : std::initializer_list<size_t>{0, 1, 2, 59, 60, 61, 62, 127, 128}) {
    for (size_t value_size : std::initializer_list<size_t>{0, 1, 2, 59, 60, 61, 62, 127, 128, 300}) {
      INFO(key_size << " " << value_size);
      const std::string key(key_size, 'k');
      const std::string value(value_size, 'v');
      Span span;
      span.meta.emplace_back(SpanString(key), SpanString(value));
      std::string entry;
      ProtoWriter(&entry).String(1, key);
      ProtoWriter(&entry).String(2, value);
      CheckSpanIsOneEntry(span, 10, entry);
      CHECK(ProtoSink::IsShortStringEntry(key, value) ==
            (key_size >= 1 && key_size <= 60 && value_size >= 1 && value_size <= 60));
    }
  }
}

TEST_CASE("metric entries take the one-byte-length shortcut only where it writes the same bytes") {
  // Key lengths around the shortcut's bound (1-100 bytes) and the varint boundary; zero values (left
  // out of the entry), negative zero, NaN and ordinary values.
  for (size_t key_size : std::initializer_list<size_t>{0, 1, 2, 99, 100, 101, 116, 117, 127, 128, 300}) {
    for (double value : std::initializer_list<double>{0.0, -0.0, 1.0, -3.5, 1e300, std::nan("")}) {
      INFO(key_size << " " << value);
      const std::string key(key_size, 'k');
      Span span;
      span.metrics.emplace_back(SpanString(key), value);
      std::string entry;
      ProtoWriter(&entry).String(1, key);
      ProtoWriter(&entry).Double(2, value);
      CheckSpanIsOneEntry(span, 11, entry);
      CHECK(ProtoSink::IsShortNumberEntry(key) == (key_size >= 1 && key_size <= 100));
    }
  }
}

TEST_CASE("a zstd stream that cannot start drops its payload and counts it, and the next one works") {
  std::mutex mu;
  std::vector<OutgoingPayload> submitted;
  TraceWriterOptions options;
  options.zstd_level = 1000;  // refused, as CompressWholeBuffer refuses it
  options.flush_bytes = 1;    // every write seals a payload
  options.flush_interval = absl::Seconds(60);
  TraceWriter writer(options, [&](OutgoingPayload payload) {
    std::lock_guard<std::mutex> lock(mu);
    submitted.push_back(std::move(payload));
    return absl::OkStatus();
  });
  writer.Start();
  writer.Write(MakePayload());
  writer.Write(MakePayload());
  writer.Stop();
  CHECK(submitted.empty());
  CHECK(writer.Counters().at("writer_submit_errors") == 2);
  CHECK(writer.Counters().at("writer_dropped_spans") == 4);
  CHECK(writer.Counters().at("writer_spans") == 0);

  // A stream reused frame after frame, including after an unfinished one, starts clean each time.
  ZstdStream stream;
  GrowableBytes abandoned;
  const std::string unfinished(300'000, 'a');
  REQUIRE(stream.Begin(1, unfinished.data()).ok());
  REQUIRE(stream.Append(unfinished.size(), false, &abandoned).ok());
  for (int frame = 0; frame < 3; ++frame) {
    GrowableBytes out;
    const std::string input = "frame " + std::to_string(frame) + std::string(200'000, 'x');
    REQUIRE(stream.Begin(1, input.data()).ok());
    REQUIRE(stream.Append(150'000, false, &out).ok());
    REQUIRE(stream.Append(input.size(), true, &out).ok());
    auto decoded = dogwatch::compression::ZstdDecompress(std::string(out.view()), 1 << 20);
    REQUIRE(decoded.ok());
    CHECK(*decoded == input);
  }
}

TEST_CASE("a zstd stream compresses its growing buffer where it lies, frame after frame") {
  ZstdStream stream;
  {
    GrowableBytes out;  // nothing to append to before a frame is begun
    CHECK(stream.Append(0, true, &out).code() == absl::StatusCode::kFailedPrecondition);
  }
  // Each frame: one buffer filled in uneven steps, some shorter than a zstd block (which zstd takes
  // without compressing yet), some spanning several; a later frame gets a larger buffer, as the
  // writer's does for a payload larger than a flush.
  for (size_t frame = 0; frame < 3; ++frame) {
    std::string input;
    for (size_t i = 0; input.size() < 400'000 * (frame + 1); ++i) {
      input += "span " + std::to_string(i % 977) + " of frame " + std::to_string(frame) + ";";
    }
    GrowableBytes out;
    REQUIRE(stream.Begin(1, input.data()).ok());
    size_t filled = 0;
    for (size_t step : {size_t{10}, size_t{70'000}, size_t{1}, size_t{300'000}, size_t{5'000}}) {
      filled = std::min(input.size(), filled + step);
      REQUIRE(stream.Append(filled, false, &out).ok());
    }
    CHECK(stream.Append(filled - 1, false, &out).code() == absl::StatusCode::kInvalidArgument);
    REQUIRE(stream.Append(input.size(), true, &out).ok());
    auto decoded = dogwatch::compression::ZstdDecompress(std::string(out.view()), 1 << 22);
    REQUIRE(decoded.ok());
    CHECK(*decoded == input);
    CHECK(out.size < input.size() / 10);
  }
}
