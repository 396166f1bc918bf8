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

void TraceWriter::Write(const TracerPayload& payload) {
  // Per-thread encoder and buffer: receiver threads encode in parallel.
  thread_local PayloadEncoder encoder;
  thread_local std::string encoded;
  encoded.clear();
  encoder.AppendTracerPayload(payload, &encoded);
  int64_t spans = 0;
  for (const auto& chunk : payload.chunks) spans += static_cast<int64_t>(chunk.spans.size());

  std::lock_guard<std::mutex> lock(mu_);
  current_.bytes.append(encoded);
  current_.spans += spans;
  current_.traces += static_cast<int64_t>(payload.chunks.size());
  if (!payload.language_name.empty() && current_.languages.size() < 16) {
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
    if (stopping_) return;
  }
}

void TraceWriter::FlushBuffer(Buffer buffer) {
  PayloadEncoder::AppendAgentPayloadHeader(options_.header, &buffer.bytes);
  bytes_uncompressed_.fetch_add(static_cast<int64_t>(buffer.bytes.size()));
  auto compressed = compression::GzipCompress(buffer.bytes, options_.gzip_level);
  if (!compressed.ok()) {
    submit_errors_.fetch_add(1);
    dropped_spans_.fetch_add(buffer.spans);
    log::Get("trace-writer")->error("compressing a trace payload: {}", compressed.status().message());
    return;
  }
  bytes_compressed_.fetch_add(static_cast<int64_t>(compressed->size()));
  OutgoingPayload out;
  out.path = "/api/v0.2/traces";
  out.headers = {{"Content-Type", "application/x-protobuf"},
                 {"Content-Encoding", "gzip"},
                 {"X-Datadog-Reported-Languages", strings::Join(buffer.languages, "|")}};
  out.body = *std::move(compressed);
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
