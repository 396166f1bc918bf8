#pragma once
// zstd's streaming compression for the trace writer: an AgentPayload is compressed piece by piece
// as tracer payloads arrive, each piece straight from the encoding thread's warm buffer, instead of
// being written whole into a cold 3.2 MB buffer that the flusher then reads back. The output is one
// ordinary zstd frame (without the content size in its header, as any streaming encoder writes).

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

  // Starts a frame at `level` (a zstd level, or compression::kDefaultLevel). The context (its window and hash
  // tables) is kept between frames: allocating and clearing a new one per 3.2 MB flush would cost more than
  // the flush's header.
  absl::Status Begin(int level);
  // Compresses all of `input` into the frame, appending what zstd emits to `out`; with `end`, also
  // finishes the frame. zstd keeps up to a block (128 KiB) of input until it has a full block.
  absl::Status Append(std::string_view input, bool end, GrowableBytes* out);

 private:
  ZSTD_CCtx_s* context_ = nullptr;
};

}  // namespace dogwatch::trace
