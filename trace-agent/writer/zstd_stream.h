#pragma once
// zstd's streaming compression for the trace writer: an AgentPayload is compressed piece by piece
// as tracer payloads arrive, instead of being written whole into a 3.2 MB buffer that the flusher
// then compresses in one go. The writer encodes each payload into the frame's one input buffer and
// the stream reads it there. The output is one ordinary zstd frame (without the content size in its
// header, as any streaming encoder writes).

#include <cstddef>
#include <memory>
#include <string_view>

#include "absl/status/status.h"

struct ZSTD_CCtx_s;

namespace dogwatch::trace {

// Bytes written by a producer that knows how much room it needs next; grows geometrically, never
// zero-fills (every byte below `size` has been written).
struct GrowableBytes {
  std::unique_ptr<char[]> data;
  size_t size = 0;
  size_t capacity = 0;

  // Makes room for at least `bytes` more after `size`.
  void Reserve(size_t bytes);
  std::string_view view() const { return {data.get(), size}; }
};

class ZstdStream {
 public:
  ZstdStream();
  ~ZstdStream();
  ZstdStream(const ZstdStream&) = delete;
  ZstdStream& operator=(const ZstdStream&) = delete;

  // Starts a frame at `level` (a zstd level, or compression::kDefaultLevel) whose input is one buffer,
  // starting at `input`, that only grows at its end and stays where it is, unchanged, until the frame
  // ends: zstd reads the input where it lies instead of first copying it into its own window (that
  // copy was ~2.5% of the trace-agent's CPU). The context (its window and hash tables) is kept between
  // frames: allocating and clearing a new one per 3.2 MB flush would cost more than the flush's header.
  absl::Status Begin(int level, const char* input);
  // Compresses the frame's buffer up to `input_size` bytes (never less than the previous call's),
  // appending what zstd emits to `out`; with `end`, also finishes the frame. zstd holds back a tail
  // of less than a block (128 KiB) until more comes or the frame ends.
  absl::Status Append(size_t input_size, bool end, GrowableBytes* out);

 private:
  ZSTD_CCtx_s* context_ = nullptr;
  // The frame's input buffer (null before the first Begin) and how much of it zstd has taken.
  const char* input_ = nullptr;
  size_t taken_ = 0;
  bool frame_open_ = false;  // begun and not yet ended
};

}  // namespace dogwatch::trace
