#include "trace-agent/writer/trace_writer.h"

#include "common/compression/compression.h"
#include "common/log/log.h"
#include "common/strings/strings.h"

namespace dogwatch::trace {

TraceWriter::TraceWriter(TraceWriterOptions options, SubmitFunction submit)
    : options_(std::move(options)), submit_(std::move(submit)) {}

TraceWriter::~TraceWriter() { Stop(); }

void TraceWriter::Start() {
  flusher_ = std::thread([this] { Run(); });
}

TraceWriter::Buffer TraceWriter::NewBuffer() const {
  Buffer buffer;
  // Sized once for a whole flush (plus the AgentPayload header): growing it from empty would copy
  // every byte about twice more. Pages are only touched as they are written.
  buffer.bytes.reserve(options_.flush_bytes + 4096);
  return buffer;
}

void TraceWriter::Write(const TracerPayload& payload) {
  // Per-thread encoder: receiver threads encode in parallel, outside the lock.
  thread_local PayloadEncoder encoder;
  std::string_view encoded = encoder.EncodeTracerPayload(payload);
  int64_t spans = 0;
  for (const auto& chunk : payload.chunks) spans += static_cast<int64_t>(chunk.spans.size());

  std::lock_guard<std::mutex> lock(mu_);
  // Like the Datadog writer, flush what is buffered first when this payload would take the buffer
  // past the flush size (a payload larger than that on its own is sent alone).
  if (!current_.bytes.empty() && current_.bytes.size() + encoded.size() > options_.flush_bytes) SealLocked();
  if (current_.bytes.empty() && current_.bytes.capacity() < options_.flush_bytes) current_ = NewBuffer();
  current_.bytes.append(encoded);
  current_.spans += spans;
  current_.traces += static_cast<int64_t>(payload.chunks.size());
  if (!payload.language_name.empty() && current_.languages.size() < 16 &&
      !current_.languages.contains(payload.language_name)) {
    current_.languages.insert(payload.language_name);
  }
  if (current_.bytes.size() >= options_.flush_bytes) SealLocked();
}

void TraceWriter::SealLocked() {
  if (current_.bytes.empty()) return;
  if (pending_.size() >= options_.max_pending_payloads) {
    // The core is not keeping up (or is down): shed the oldest, keep the freshest.
    dropped_payloads_.fetch_add(1);
    dropped_spans_.fetch_add(pending_.front().spans);
    pending_.pop_front();
  }
  pending_.push_back(std::move(current_));
  current_ = Buffer{};
  wake_.notify_one();
}

void TraceWriter::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  auto next_flush = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(options_.flush_interval));
  while (true) {
    wake_.wait_until(lock, next_flush, [this] { return stopping_ || !pending_.empty(); });
    if (std::chrono::steady_clock::now() >= next_flush || stopping_) {
      SealLocked();
      next_flush = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(absl::ToInt64Milliseconds(options_.flush_interval));
    }
    while (!pending_.empty()) {
      Buffer buffer = std::move(pending_.front());
      pending_.pop_front();
      lock.unlock();
      FlushBuffer(std::move(buffer));
      lock.lock();
    }
    // Writes may have filled the current buffer while the lock was released to flush: on stop,
    // go round once more to seal and send it rather than lose it.
    if (stopping_ && current_.bytes.empty()) return;
  }
}

void TraceWriter::FlushBuffer(Buffer buffer) {
  PayloadEncoder::AppendAgentPayloadHeader(options_.header, &buffer.bytes);
  bytes_uncompressed_.fetch_add(static_cast<int64_t>(buffer.bytes.size()));
  const bool zstd = options_.compression == TraceCompression::kZstd;
  std::string compressed;
  absl::Status compressed_ok = compression::CompressWholeBuffer(
      zstd ? compression::Codec::kZstd : compression::Codec::kGzip, buffer.bytes,
      zstd ? options_.zstd_level : options_.gzip_level, &compressed);
  // The uncompressed bytes are not needed any more: give the memory back before the submit.
  // (Keeping the buffer for reuse measured ~10% slower end to end, most likely because glibc then
  // never raises its dynamic mmap threshold, so every request body is mmap'd and page-faulted.)
  std::string().swap(buffer.bytes);
  if (!compressed_ok.ok()) {
    submit_errors_.fetch_add(1);
    dropped_spans_.fetch_add(buffer.spans);
    log::Get("trace-writer")->error("compressing a trace payload: {}", compressed_ok.message());
    return;
  }
  bytes_compressed_.fetch_add(static_cast<int64_t>(compressed.size()));
  OutgoingPayload out;
  out.path = "/api/v0.2/traces";
  out.headers = {{"Content-Type", "application/x-protobuf"},
                 {"Content-Encoding", zstd ? "zstd" : "gzip"},
                 {"X-Datadog-Reported-Languages", strings::Join(buffer.languages, "|")}};
  out.body = std::move(compressed);
  absl::Status status = submit_(std::move(out));
  flushes_.fetch_add(1);
  if (!status.ok()) {
    submit_errors_.fetch_add(1);
    dropped_spans_.fetch_add(buffer.spans);
    static log::RateLimiter limiter(std::chrono::seconds(10));
    uint64_t suppressed = 0;
    if (limiter.Allow(&suppressed)) {
      log::Get("trace-writer")
          ->warn("submitting traces to the core failed ({} more since): {}", suppressed, status.message());
    }
    return;
  }
  payloads_written_.fetch_add(1);
  spans_written_.fetch_add(buffer.spans);
  traces_written_.fetch_add(buffer.traces);
}

void TraceWriter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (flusher_.joinable()) flusher_.join();
}

std::map<std::string, int64_t> TraceWriter::Counters() const {
  return {{"writer_payloads", payloads_written_.load()},
          {"writer_spans", spans_written_.load()},
          {"writer_traces", traces_written_.load()},
          {"writer_flushes", flushes_.load()},
          {"writer_bytes_uncompressed", bytes_uncompressed_.load()},
          {"writer_bytes_compressed", bytes_compressed_.load()},
          {"writer_submit_errors", submit_errors_.load()},
          {"writer_dropped_payloads", dropped_payloads_.load()},
          {"writer_dropped_spans", dropped_spans_.load()}};
}

}  // namespace dogwatch::trace
