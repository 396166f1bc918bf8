#include "trace-agent/writer/zstd_stream.h"

// ZSTD_c_stableInBuffer is in zstd's experimental section (stable since 1.4.5 in practice; Debian 12
// ships 1.5.4); it is set through the ordinary ZSTD_CCtx_setParameter.
#define ZSTD_STATIC_LINKING_ONLY
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

absl::Status ZstdStream::Begin(int requested_level, const char* input) {
  if (context_ == nullptr) return absl::ResourceExhaustedError("cannot allocate a zstd context");
  input_ = nullptr;  // until this frame is set up
  taken_ = 0;
  // The one-shot path's validation (CompressWholeBuffer): zstd would clamp an out-of-range level, and a
  // misconfigured one must show as counted, logged submit errors in either path.
  const absl::StatusOr<int> level = compression::ZstdLevel(requested_level);
  if (!level.ok()) return level.status();
  if (frame_open_) {
    // A frame left unfinished (after an error): with a stable input, zstd 1.5.4's reset keeps the
    // tail it held back from that frame and would emit it into the next one (the reuse test caught
    // this), so the context is replaced instead. Only after errors: ended frames hold nothing back.
    ZSTD_freeCCtx(context_);
    context_ = ZSTD_createCCtx();
    if (context_ == nullptr) return absl::ResourceExhaustedError("cannot allocate a zstd context");
    frame_open_ = false;
  }
  // The parameters are set again below.
  ZSTD_CCtx_reset(context_, ZSTD_reset_session_and_parameters);
  size_t rc = ZSTD_CCtx_setParameter(context_, ZSTD_c_compressionLevel, *level);
  if (ZSTD_isError(rc))
    return absl::InvalidArgumentError(absl::StrCat("zstd level ", *level, ": ", ZSTD_getErrorName(rc)));
  rc = ZSTD_CCtx_setParameter(context_, ZSTD_c_stableInBuffer, 1);
  if (ZSTD_isError(rc)) {
    return absl::InternalError(absl::StrCat("zstd in-place input: ", ZSTD_getErrorName(rc)));
  }
  input_ = input;
  frame_open_ = true;
  return absl::OkStatus();
}

absl::Status ZstdStream::Append(size_t input_size, bool end, GrowableBytes* out) {
  if (context_ == nullptr) return absl::ResourceExhaustedError("cannot allocate a zstd context");
  if (input_ == nullptr) return absl::FailedPreconditionError("no zstd frame was begun");
  if (input_size < taken_) return absl::InvalidArgumentError("zstd in-place input shrank");
  // zstd checks too that the buffer and what it took are those of the previous call.
  ZSTD_inBuffer in{input_, input_size, taken_};
  const size_t to_take = input_size - taken_;
  const ZSTD_EndDirective directive = end ? ZSTD_e_end : ZSTD_e_continue;
  // Each call emits at most the blocks completed by the input it consumed (plus the epilogue when
  // ending); with room for one full compressed block per call, every call makes progress.
  const size_t room = ZSTD_CStreamOutSize();
  for (int calls = 0;; ++calls) {
    out->Reserve(room);
    ZSTD_outBuffer output{out->data.get() + out->size, out->capacity - out->size, 0};
    const size_t remaining = ZSTD_compressStream2(context_, &output, &in, directive);
    taken_ = in.pos;
    out->size += output.pos;
    if (ZSTD_isError(remaining)) {
      return absl::InternalError(absl::StrCat("zstd compression failed: ", ZSTD_getErrorName(remaining)));
    }
    // e_continue: done once the input is taken (in place, zstd takes a tail of less than a block
    // without compressing it yet, and expects it back unchanged); e_end: once nothing is left.
    if (in.pos == in.size && (!end || remaining == 0)) {
      if (end) frame_open_ = false;
      return absl::OkStatus();
    }
    // Bounded: each call consumes input or emits at least a block; far more calls than the input
    // has blocks means the library is misbehaving, and the frame is dropped rather than spun on.
    if (static_cast<size_t>(calls) > to_take / 1024 + 64) {
      return absl::InternalError("zstd compression made no progress");
    }
  }
}

}  // namespace dogwatch::trace
