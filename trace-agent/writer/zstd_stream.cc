#include "trace-agent/writer/zstd_stream.h"

#include <zstd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/compression/compression.h"

namespace dogwatch::trace {

void GrowableBytes::Reserve(size_t bytes) {
  if (capacity - size >= bytes) return;
  const size_t capacity_wanted = std::max(size + bytes, capacity * 2);
  std::unique_ptr<char[]> grown(new char[capacity_wanted]);
  if (size > 0) std::memcpy(grown.get(), data.get(), size);
  data = std::move(grown);
  capacity = capacity_wanted;
}

ZstdStream::ZstdStream() : context_(ZSTD_createCCtx()) {}

ZstdStream::~ZstdStream() { ZSTD_freeCCtx(context_); }

absl::Status ZstdStream::Begin(int requested_level) {
  if (context_ == nullptr) return absl::ResourceExhaustedError("cannot allocate a zstd context");
  // The one-shot path's validation (CompressWholeBuffer): zstd would clamp an out-of-range level, and a
  // misconfigured one must show as counted, logged submit errors in either path.
  const absl::StatusOr<int> level = compression::ZstdLevel(requested_level);
  if (!level.ok()) return level.status();
  // Drops any frame left unfinished (after an error); the level is set again below.
  ZSTD_CCtx_reset(context_, ZSTD_reset_session_and_parameters);
  const size_t rc = ZSTD_CCtx_setParameter(context_, ZSTD_c_compressionLevel, *level);
  if (ZSTD_isError(rc))
    return absl::InvalidArgumentError(absl::StrCat("zstd level ", *level, ": ", ZSTD_getErrorName(rc)));
  return absl::OkStatus();
}

absl::Status ZstdStream::Append(std::string_view input, bool end, GrowableBytes* out) {
  if (context_ == nullptr) return absl::ResourceExhaustedError("cannot allocate a zstd context");
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  const ZSTD_EndDirective directive = end ? ZSTD_e_end : ZSTD_e_continue;
  // Each call emits at most the blocks completed by the input it consumed (plus the epilogue when
  // ending); with room for one full compressed block per call, every call makes progress.
  const size_t room = ZSTD_CStreamOutSize();
  for (int calls = 0;; ++calls) {
    out->Reserve(room);
    ZSTD_outBuffer output{out->data.get() + out->size, out->capacity - out->size, 0};
    const size_t remaining = ZSTD_compressStream2(context_, &output, &in, directive);
    out->size += output.pos;
    if (ZSTD_isError(remaining)) {
      return absl::InternalError(absl::StrCat("zstd compression failed: ", ZSTD_getErrorName(remaining)));
    }
    // e_continue: done once the input is consumed; e_end: once zstd has nothing left to flush.
    if (in.pos == in.size && (!end || remaining == 0)) return absl::OkStatus();
    // Bounded: each call consumes input or emits at least a block; far more calls than the input
    // has blocks means the library is misbehaving, and the frame is dropped rather than spun on.
    if (static_cast<size_t>(calls) > input.size() / 1024 + 64) {
      return absl::InternalError("zstd compression made no progress");
    }
  }
}

}  // namespace dogwatch::trace
