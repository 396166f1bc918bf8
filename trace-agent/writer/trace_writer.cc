#include "trace-agent/writer/trace_writer.h"

#include <algorithm>
#include <cstring>

#include "common/compression/compression.h"
#include "common/log/log.h"
#include "common/strings/strings.h"
#include "trace-agent/writer/proto_writer.h"

namespace dogwatch::trace {

namespace {

std::string EncodeHeader(const PayloadEncoder::AgentPayloadHeader& header) {
  std::string bytes;
  PayloadEncoder::AppendAgentPayloadHeader(header, &bytes);
  return bytes;
}

}  // namespace

TraceWriter::TraceWriter(TraceWriterOptions options, SubmitFunction submit)
    : options_(std::move(options)), submit_(std::move(submit)), header_(EncodeHeader(options_.header)) {}

TraceWriter::~TraceWriter() { Stop(); }

void TraceWriter::Start() {
  flusher_ = std::thread([this] { Run(); });
}

std::shared_ptr<TraceWriter::Buffer> TraceWriter::NewBuffer(size_t payload_bytes) const {
  auto buffer = std::make_shared<Buffer>();
  // Sized once for a whole flush: growing it would copy every byte again, and writers encode into
  // it without the lock, so it must never move. Pages are only touched as they are written. A
  // payload larger than a flush on its own gets a buffer of its size.
  buffer->data.reset(
      new char[header_.size() + std::max(options_.flush_bytes, payload_bytes) + kProtoSinkSlack]);
  // Protobuf fields may come in any order: the header goes first, written once here.
  std::memcpy(buffer->data.get(), header_.data(), header_.size());
  buffer->size = header_.size();
  buffer->uncompressed = header_.size();
  return buffer;
}

std::shared_ptr<TraceWriter::Buffer> TraceWriter::NewStreamBufferLocked(size_t payload_bytes) {
  auto buffer = std::make_shared<Buffer>();
  // Room for what a full flush compresses to on this payload (~10x); it grows if a flush
  // compresses worse.
  buffer->compressed.Reserve(std::max<size_t>(options_.flush_bytes / 8, 64 * 1024));
  // The frame's input: one buffer for a whole flush, reused frame after frame (the previous frame
  // has ended, so zstd no longer reads it), that payloads are encoded into and zstd compresses
  // where it lies. A payload larger than a flush on its own gets a buffer of its size.
  const size_t needed = header_.size() + std::max(options_.flush_bytes, payload_bytes) + kProtoSinkSlack;
  if (frame_input_capacity_ < needed) {
    frame_input_.reset(new char[needed]);
    frame_input_capacity_ = needed;
  }
  // Protobuf fields may come in any order: the header goes first, as in the gzip buffer. No
  // compressor reads frame_input_ now: the previous frame was ended by the seal (compressing_ is null).
  std::memcpy(frame_input_.get(), header_.data(), header_.size());
  buffer->uncompressed = header_.size();
  std::lock_guard<std::mutex> compress_lock(compress_mu_);
  absl::Status status = stream_.Begin(options_.zstd_level, frame_input_.get());
  if (!status.ok()) {
    buffer->failed = true;
    log::Get("trace-writer")->error("starting a zstd trace payload: {}", status.message());
  }
  compressing_ = buffer.get();
  compressed_end_.store(0, std::memory_order_relaxed);
  encoded_end_.store(buffer->uncompressed, std::memory_order_release);
  return buffer;
}

void TraceWriter::CompressLocked(size_t input_end, bool end) {
  Buffer& buffer = *compressing_;
  compressed_end_.store(input_end, std::memory_order_relaxed);
  if (buffer.failed) return;
  absl::Status status = stream_.Append(input_end, end, &buffer.compressed);
  if (!status.ok()) {
    buffer.failed = true;
    log::Get("trace-writer")->error("compressing a trace payload: {}", status.message());
  }
}

void TraceWriter::CompressEncoded() {
  // Until the stream has been given everything encoded: a writer may publish bytes while the holder
  // compresses and find the lock taken, so the holder looks again after letting go. (A spurious
  // try_lock failure only delays bytes to the next write or the seal, which compress everything.)
  while (encoded_end_.load(std::memory_order_acquire) > compressed_end_.load(std::memory_order_relaxed)) {
    std::unique_lock<std::mutex> lock(compress_mu_, std::try_to_lock);
    if (!lock.owns_lock()) return;        // the holder takes these bytes too
    if (compressing_ == nullptr) return;  // sealed and not yet restarted: the seal compressed everything
    CompressLocked(encoded_end_.load(std::memory_order_acquire), /*end=*/false);
  }
}

void TraceWriter::AddPayloadLocked(Buffer& buffer, const TracerPayload& payload, int64_t spans, size_t size) {
  buffer.uncompressed += size;
  buffer.spans += spans;
  buffer.traces += static_cast<int64_t>(payload.chunks.size());
  if (!payload.language_name.empty() && buffer.languages.size() < 16 &&
      !buffer.languages.contains(payload.language_name)) {
    buffer.languages.insert(payload.language_name);
  }
}

void TraceWriter::Write(const TracerPayload& payload) {
  int64_t spans = 0;
  for (const auto& chunk : payload.chunks) spans += static_cast<int64_t>(chunk.spans.size());
  if (options_.compression == TraceCompression::kZstd) {
    WriteZstd(payload, spans);
  } else {
    WriteGzip(payload, spans);
  }
}

void TraceWriter::WriteZstd(const TracerPayload& payload, int64_t spans) {
  // Measured outside the lock (receiver threads measure in parallel); encoded under it, straight
  // into the frame's input, which zstd then reads in place.
  thread_local PayloadEncoder encoder;
  const size_t size = encoder.Measure(payload);
  std::unique_lock<std::mutex> lock(mu_);
  // Like the Datadog writer, flush what is buffered first when this payload would take the buffer
  // past the flush size (a payload larger than that on its own is sent alone).
  if (current_ != nullptr && PayloadBytes(*current_) + size > options_.flush_bytes) SealLocked();
  if (current_ == nullptr) current_ = NewStreamBufferLocked(size);
  Buffer& buffer = *current_;
  encoder.EncodeMeasured(payload, frame_input_.get() + buffer.uncompressed);
  AddPayloadLocked(buffer, payload, spans, size);
  encoded_end_.store(buffer.uncompressed, std::memory_order_release);
  if (PayloadBytes(buffer) >= options_.flush_bytes) {
    SealLocked();
    return;
  }
  lock.unlock();
  CompressEncoded();
}

void TraceWriter::WriteGzip(const TracerPayload& payload, int64_t spans) {
  thread_local PayloadEncoder encoder;
  const size_t size = encoder.Measure(payload);
  std::shared_ptr<Buffer> buffer;
  char* out = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (current_ != nullptr && PayloadBytes(*current_) + size > options_.flush_bytes) SealLocked();
    if (current_ == nullptr) current_ = NewBuffer(size);
    buffer = current_;
    out = buffer->data.get() + buffer->size;
    buffer->size += size;
    ++buffer->writers;
    AddPayloadLocked(*buffer, payload, spans, size);
    if (PayloadBytes(*buffer) >= options_.flush_bytes) SealLocked();
  }
  encoder.EncodeMeasured(payload, out);
  std::lock_guard<std::mutex> lock(mu_);
  if (--buffer->writers == 0) writers_done_.notify_all();
}

void TraceWriter::SealLocked() {
  if (current_ == nullptr) return;
  if (pending_.size() >= options_.max_pending_payloads) {
    // The core is not keeping up (or is down): shed the oldest, keep the freshest. A writer still
    // encoding into it keeps the memory alive until it is done.
    dropped_payloads_.fetch_add(1);
    dropped_spans_.fetch_add(pending_.front()->spans);
    pending_.pop_front();
  }
  // zstd: the frame ends here, so that the one stream serves the next buffer at once (and a
  // pending buffer holds only compressed bytes). This waits for a compression in flight, then
  // compresses whatever writers encoded since.
  if (options_.compression == TraceCompression::kZstd) {
    std::lock_guard<std::mutex> compress_lock(compress_mu_);
    CompressLocked(current_->uncompressed, /*end=*/true);
    compressing_ = nullptr;
  }
  pending_.push_back(std::move(current_));
  current_ = nullptr;
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
      std::shared_ptr<Buffer> buffer = std::move(pending_.front());
      pending_.pop_front();
      // Writers that reserved a range before the seal may still be encoding into it.
      writers_done_.wait(lock, [&buffer] { return buffer->writers == 0; });
      lock.unlock();
      FlushBuffer(*buffer);
      buffer.reset();  // the memory goes back before the next wait, not at the next flush
      lock.lock();
    }
    // Writes may have filled the current buffer while the lock was released to flush: on stop,
    // go round once more to seal and send it rather than lose it.
    if (stopping_ && current_ == nullptr) return;
  }
}

void TraceWriter::FlushBuffer(Buffer& buffer) {
  bytes_uncompressed_.fetch_add(static_cast<int64_t>(buffer.uncompressed));
  const bool zstd = options_.compression == TraceCompression::kZstd;
  std::string compressed;
  absl::Status compressed_ok;
  if (zstd) {
    // Compressed as it was written; the frame ended at the seal.
    if (buffer.failed) {
      compressed_ok = absl::InternalError("the zstd stream failed (logged when it did)");
    } else {
      compressed.assign(buffer.compressed.view());
    }
    buffer.compressed = GrowableBytes();
  } else {
    compressed_ok = compression::CompressWholeBuffer(compression::Codec::kGzip,
                                                     std::string_view(buffer.data.get(), buffer.size),
                                                     options_.gzip_level, &compressed);
    // The uncompressed bytes are not needed any more: give the memory back before the submit.
    // (Keeping the buffer for reuse measured ~10% slower end to end, most likely because glibc then
    // never raises its dynamic mmap threshold, so every request body is mmap'd and page-faulted.)
    buffer.data.reset();
  }
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
