#pragma once
// Buffers processed tracer payloads as AgentPayload bytes and hands compressed payloads to the core
// every `flush_interval` or when the buffer passes `flush_bytes` of uncompressed bytes (Datadog: 5 s
// and 3.2 MB). Encoding happens on the caller's thread, outside the lock.
//  - zstd (the default): each payload is encoded into the thread's own, reused buffer (it stays in
//    cache) and fed, under the lock, to the zstd stream of the AgentPayload being filled; a seal
//    ends the frame. Only compressed bytes are buffered, and no 3.2 MB buffer is written and then
//    read back cold for a one-shot compression.
//  - gzip (libdeflate has no streaming API): each payload is encoded straight into the flush buffer
//    at a byte range reserved under the lock (its size is computed first); the flusher waits for
//    the writers still filling a sealed buffer and compresses it whole.
// Submission runs on one flusher thread. Pending payloads are bounded; what the bound sheds is
// counted.

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "trace-agent/model/span.h"
#include "trace-agent/writer/payload_encoder.h"
#include "trace-agent/writer/zstd_stream.h"

namespace dogwatch::trace {

// How payloads are compressed for /api/v0.2/traces. The intake takes both: the Datadog trace-agent
// sent gzip level 1 (BestSpeed) until 7.58 (zstd behind apm_config.features "zstd-encoding" from
// 7.54) and sends zstd level 1 by default since 7.59. zstd level 1 costs ~4x less CPU than zlib's
// gzip level 1 on trace payloads, and ~2.5x less than libdeflate's, for smaller output.
enum class TraceCompression { kGzip, kZstd };

struct TraceWriterOptions {
  size_t flush_bytes = 3'200'000;
  absl::Duration flush_interval = absl::Seconds(5);
  // Full buffers waiting for the flusher: gzip ~25 MiB at most (uncompressed); zstd holds only
  // the compressed frames (~0.2-0.4 MiB each at this flush size).
  size_t max_pending_payloads = 8;
  PayloadEncoder::AgentPayloadHeader header;
  TraceCompression compression = TraceCompression::kZstd;
  int gzip_level = 1;  // BestSpeed, as the Datadog trace writer (libdeflate's level 1)
  int zstd_level = 1;  // BestSpeed, as the Datadog trace writer
};

struct OutgoingPayload {
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Delivers one payload (to the core's Submit); an error is counted and the payload dropped
// (the core, not the trace-agent, owns retries and the disk queue).
using SubmitFunction = std::function<absl::Status(OutgoingPayload)>;

class TraceWriter {
 public:
  TraceWriter(TraceWriterOptions options, SubmitFunction submit);
  ~TraceWriter();

  void Start();
  // Flushes what is buffered and waits for the flusher.
  void Stop();

  // Encodes and buffers `payload` (spans already normalized, obfuscated and sampled).
  void Write(const TracerPayload& payload);

  std::map<std::string, int64_t> Counters() const;

 private:
  // One AgentPayload being filled: the header first (constant, encoded once), then tracer payloads.
  struct Buffer {
    // gzip: the uncompressed AgentPayload, tracer payloads at the byte ranges their writers
    // reserved. Not value-initialised: every byte is written before it is read.
    std::unique_ptr<char[]> data;
    size_t size = 0;           // gzip: bytes reserved, header included
    GrowableBytes compressed;  // zstd: the frame so far (whole once sealed; guarded by compress_mu_)
    size_t uncompressed = 0;   // AgentPayload bytes so far, header included (both codecs)
    int writers = 0;           // gzip: threads still encoding into a reserved range (guarded by mu_)
    bool failed = false;       // zstd: the stream failed (guarded by compress_mu_ until sealed)
    int64_t spans = 0;
    int64_t traces = 0;
    std::set<std::string> languages;
  };
  void Run();
  void FlushBuffer(Buffer& buffer);
  void SealLocked();
  std::shared_ptr<Buffer> NewBuffer(size_t payload_bytes) const;
  size_t PayloadBytes(const Buffer& buffer) const { return buffer.uncompressed - header_.size(); }
  void WriteGzip(const TracerPayload& payload, int64_t spans);
  void WriteZstd(const TracerPayload& payload, int64_t spans);
  // zstd: starts current_'s frame with the header, with frame_input_ room for a flush or for
  // `payload_bytes` (under mu_).
  std::shared_ptr<Buffer> NewStreamBufferLocked(size_t payload_bytes);
  // zstd: compresses the open frame's input up to `input_end`, and with `end` finishes it (under
  // compress_mu_).
  void CompressLocked(size_t input_end, bool end);
  // zstd, after a write: compresses what writers have encoded so far unless another thread is already
  // compressing, in which case that thread takes these bytes too (or the next write, or the seal, does).
  // A writer never waits here for another's compression.
  void CompressEncoded();
  void AddPayloadLocked(Buffer& buffer, const TracerPayload& payload, int64_t spans, size_t size);

  const TraceWriterOptions options_;
  const SubmitFunction submit_;
  const std::string header_;  // the AgentPayload fields other than tracerPayloads
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable writers_done_;
  // Null until the first write after a seal, and never empty otherwise: the write that creates it
  // reserves its entry (Measure() >= 2 bytes: field tag and length) in the same critical section.
  std::shared_ptr<Buffer> current_;
  // zstd: compression runs outside mu_, so that a writer encodes its payload while another compresses
  // (it used to wait for the whole compression of the other's request). Lock order: mu_, then
  // compress_mu_; a thread holding compress_mu_ never takes mu_. Encoding stays under mu_: payloads
  // land in the frame in order, and the encoded end is published to compressors through
  // encoded_end_ only once the bytes below it are written.
  std::mutex compress_mu_;
  ZstdStream stream_;                      // the open frame (guarded by compress_mu_)
  Buffer* compressing_ = nullptr;          // current_ while its frame is open (guarded by compress_mu_)
  std::atomic<size_t> encoded_end_{0};     // frame_input_ bytes written for the open frame
  std::atomic<size_t> compressed_end_{0};  // of which the stream has been given this many
  // zstd: the uncompressed AgentPayload of current_ (its first buffer.uncompressed bytes), which the
  // stream reads in place; kept for the next frame (guarded by mu_).
  std::unique_ptr<char[]> frame_input_;
  size_t frame_input_capacity_ = 0;
  std::deque<std::shared_ptr<Buffer>> pending_;
  bool stopping_ = false;
  std::thread flusher_;

  std::atomic<int64_t> payloads_written_{0};
  std::atomic<int64_t> spans_written_{0};
  std::atomic<int64_t> traces_written_{0};
  std::atomic<int64_t> flushes_{0};
  std::atomic<int64_t> bytes_uncompressed_{0};
  std::atomic<int64_t> bytes_compressed_{0};
  std::atomic<int64_t> submit_errors_{0};
  std::atomic<int64_t> dropped_payloads_{0};
  std::atomic<int64_t> dropped_spans_{0};
};

}  // namespace dogwatch::trace
