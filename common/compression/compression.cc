#include "common/compression/compression.h"

#include <libdeflate.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace dogwatch::compression {

absl::StatusOr<int> ZstdLevel(int level) {
  if (level == kDefaultLevel) return ZSTD_CLEVEL_DEFAULT;
  if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid zstd level ", level, " (want ", ZSTD_minCLevel(), "..", ZSTD_maxCLevel(), ")"));
  }
  return level;
}

namespace {

// zstd's default ceiling on frame windows (ZSTD_WINDOWLOG_LIMIT_DEFAULT, which zstd.h only exposes
// under ZSTD_STATIC_LINKING_ONLY).
constexpr int kZstdDefaultMaxWindowLog = 27;

constexpr size_t kMinInitialOutput = 4 * 1024;
// The first guess at the output size; growth is geometric afterwards, so a wrong guess costs a few
// reallocations, while a large guess would let a tiny hostile body reserve a lot of memory.
constexpr size_t kMaxInitialOutput = 1024 * 1024;

absl::Status CapExceeded(size_t cap) {
  return absl::ResourceExhaustedError(absl::StrCat("decompressed size exceeds ", cap, " bytes"));
}

// An output buffer that grows geometrically but never past cap + 1 bytes. The one byte past the cap
// is how we learn that a stream would exceed the cap without decoding any further.
class CappedOutput {
 public:
  // `reuse`: a buffer from an earlier call (DecompressInto). It starts at the larger of the guess and
  // its last result's size, and grows within its capacity without reallocating: only the bytes past
  // its old size are zero-filled, and its pages are already mapped. (Starting at its whole capacity
  // would zero-fill megabytes for a small payload that follows a large one.)
  CappedOutput(size_t cap, size_t input_size, std::string reuse = {})
      : cap_(cap), limit_(cap == SIZE_MAX ? SIZE_MAX : cap + 1), buffer_(std::move(reuse)) {
    size_t guess = input_size > kMaxInitialOutput / 4 ? kMaxInitialOutput : input_size * 4;
    buffer_.resize(std::min(limit_, std::max({guess, kMinInitialOutput, buffer_.size()})));
  }

  // Makes sure there is room after the produced bytes; false when the buffer already holds cap + 1
  // bytes, i.e. the cap is exceeded.
  bool EnsureSpace() {
    if (produced_ < buffer_.size()) return true;
    if (buffer_.size() >= limit_) return false;
    size_t grown = buffer_.size() > limit_ / 2 ? limit_ : buffer_.size() * 2;
    buffer_.resize(std::max(grown, kMinInitialOutput));
    return true;
  }

  unsigned char* tail() { return reinterpret_cast<unsigned char*>(buffer_.data()) + produced_; }
  size_t tail_size() const { return buffer_.size() - produced_; }
  void Commit(size_t n) { produced_ += n; }
  bool exceeded() const { return produced_ > cap_; }

  std::string Take() {
    buffer_.resize(produced_);
    return std::move(buffer_);
  }

 private:
  const size_t cap_;
  const size_t limit_;
  std::string buffer_;
  size_t produced_ = 0;
};

// zlib counts in 32-bit uInt; bodies larger than 4 GiB are fed in slices.
uInt ClampToUInt(size_t n) { return static_cast<uInt>(std::min<size_t>(n, UINT_MAX)); }

absl::StatusOr<std::string> Inflate(std::string_view data, size_t cap, bool gzip, std::string reuse = {}) {
  const char* format = gzip ? "gzip" : "zlib";
  if (data.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("empty input is not valid ", format, " data"));
  }
  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  // windowBits 15 = zlib wrapper; +16 = gzip wrapper.
  int rc = inflateInit2(&zs, gzip ? MAX_WBITS + 16 : MAX_WBITS);
  if (rc != Z_OK) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot initialize ", format, " decoder"));
  }
  absl::Cleanup end_stream = [&zs] { inflateEnd(&zs); };

  CappedOutput out(cap, data.size(), std::move(reuse));
  const auto* next_input = reinterpret_cast<const Bytef*>(data.data());
  size_t input_left = data.size();
  for (;;) {
    if (zs.avail_in == 0 && input_left > 0) {
      zs.next_in = const_cast<Bytef*>(next_input);
      zs.avail_in = ClampToUInt(input_left);
      next_input += zs.avail_in;
      input_left -= zs.avail_in;
    }
    if (!out.EnsureSpace()) return CapExceeded(cap);
    zs.next_out = out.tail();
    zs.avail_out = ClampToUInt(out.tail_size());
    const uInt space_before = zs.avail_out;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.Commit(space_before - zs.avail_out);
    if (out.exceeded()) return CapExceeded(cap);
    switch (rc) {
      case Z_OK:
        continue;
      case Z_STREAM_END: {
        const size_t trailing = zs.avail_in + input_left;
        if (trailing == 0) return out.Take();
        if (!gzip) {
          return absl::InvalidArgumentError(
              absl::StrCat("corrupt zlib data: ", trailing, " bytes after the end of the stream"));
        }
        // RFC 1952 allows several gzip members back to back; they decode as one stream.
        if (inflateReset(&zs) != Z_OK) {
          return absl::InternalError("cannot reset gzip decoder for the next member");
        }
        continue;
      }
      case Z_BUF_ERROR:
        // No progress was possible: out of output space (the loop grows it) or out of input.
        if (zs.avail_in == 0 && input_left == 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("truncated ", format, " data: input ends before the end of the stream"));
        }
        continue;
      case Z_NEED_DICT:
        return absl::InvalidArgumentError(
            absl::StrCat("unsupported ", format, " data: stream needs a preset dictionary"));
      case Z_DATA_ERROR:
        return absl::InvalidArgumentError(
            absl::StrCat("corrupt ", format, " data: ", zs.msg != nullptr ? zs.msg : "invalid stream"));
      case Z_MEM_ERROR:
        return absl::ResourceExhaustedError(
            absl::StrCat("out of memory while decompressing ", format, " data"));
      default:
        return absl::InternalError(absl::StrCat(format, " inflate failed with code ", rc));
    }
  }
}

absl::StatusOr<std::string> Deflate(std::string_view data, int level, bool gzip) {
  if (level == kDefaultLevel) level = Z_DEFAULT_COMPRESSION;
  if (level != Z_DEFAULT_COMPRESSION && (level < 0 || level > 9)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid ", gzip ? "gzip" : "zlib", " level ", level, " (want 0-9)"));
  }
  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  int rc = deflateInit2(&zs, level, Z_DEFLATED, gzip ? MAX_WBITS + 16 : MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  if (rc != Z_OK) return absl::ResourceExhaustedError("cannot initialize deflate encoder");
  absl::Cleanup end_stream = [&zs] { deflateEnd(&zs); };

  std::string out;
  out.resize(std::max<size_t>(deflateBound(&zs, data.size()), 64));
  size_t produced = 0;
  const auto* next_input = reinterpret_cast<const Bytef*>(data.data());
  size_t input_left = data.size();
  for (;;) {
    if (zs.avail_in == 0 && input_left > 0) {
      zs.next_in = const_cast<Bytef*>(next_input);
      zs.avail_in = ClampToUInt(input_left);
      next_input += zs.avail_in;
      input_left -= zs.avail_in;
    }
    if (produced == out.size()) out.resize(out.size() * 2);
    zs.next_out = reinterpret_cast<Bytef*>(out.data()) + produced;
    zs.avail_out = ClampToUInt(out.size() - produced);
    const uInt space_before = zs.avail_out;
    const int flush = input_left == 0 ? Z_FINISH : Z_NO_FLUSH;
    rc = deflate(&zs, flush);
    produced += space_before - zs.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return absl::InternalError(absl::StrCat("deflate failed with code ", rc));
    }
  }
  out.resize(produced);
  return out;
}

struct ZstdDCtxDeleter {
  void operator()(ZSTD_DCtx* ctx) const { ZSTD_freeDCtx(ctx); }
};

// The largest zstd window we let a frame ask for. A frame's window is allocated up front, so the
// limit follows the output cap (a frame never legitimately needs a window larger than its content),
// with 8 MiB as the floor because streaming encoders pick windows of a few MiB for inputs of any
// size.
int MaxWindowLog(size_t cap) {
  int log = 0;
  while (log < 62 && (size_t{1} << log) < cap) ++log;
  return std::clamp(log, 23, kZstdDefaultMaxWindowLog);
}

// Decoders kept per thread between calls: a new one allocates (and page-faults) its window for
// every payload. One that grew past this (a frame with a large window) is freed after use instead.
constexpr size_t kMaxKeptZstdDecoderBytes = 8 << 20;

absl::StatusOr<std::string> ZstdDecode(std::string_view data, size_t cap, std::string reuse = {}) {
  if (data.empty()) return absl::InvalidArgumentError("empty input is not valid zstd data");
  // A bomb usually announces itself: reject before decoding anything.
  const unsigned long long declared = ZSTD_getFrameContentSize(data.data(), data.size());
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != ZSTD_CONTENTSIZE_ERROR && declared > cap) {
    return absl::ResourceExhaustedError(
        absl::StrCat("decompressed size exceeds ", cap, " bytes (zstd frame declares ", declared, " bytes)"));
  }
  thread_local std::unique_ptr<ZSTD_DCtx, ZstdDCtxDeleter> kept;
  std::unique_ptr<ZSTD_DCtx, ZstdDCtxDeleter> dctx = std::move(kept);
  if (dctx == nullptr) dctx.reset(ZSTD_createDCtx());
  if (dctx == nullptr) return absl::ResourceExhaustedError("cannot allocate zstd decoder");
  ZSTD_DCtx_reset(dctx.get(), ZSTD_reset_session_and_parameters);
  // Given back for the next call however this one ends (a reset decoder carries nothing over).
  absl::Cleanup keep = [&dctx] {
    if (ZSTD_sizeof_DCtx(dctx.get()) <= kMaxKeptZstdDecoderBytes) kept = std::move(dctx);
  };
  const int max_window_log = MaxWindowLog(cap);
  ZSTD_DCtx_setParameter(dctx.get(), ZSTD_d_windowLogMax, max_window_log);

  CappedOutput out(cap, data.size(), std::move(reuse));
  ZSTD_inBuffer input{data.data(), data.size(), 0};
  for (;;) {
    if (!out.EnsureSpace()) return CapExceeded(cap);
    ZSTD_outBuffer output{out.tail(), out.tail_size(), 0};
    const size_t rc = ZSTD_decompressStream(dctx.get(), &output, &input);
    out.Commit(output.pos);
    if (ZSTD_isError(rc)) {
      if (ZSTD_getErrorCode(rc) == ZSTD_error_frameParameter_windowTooLarge) {
        return absl::ResourceExhaustedError(
            absl::StrCat("zstd frame needs a window larger than ", size_t{1} << max_window_log, " bytes"));
      }
      return absl::InvalidArgumentError(absl::StrCat("corrupt zstd data: ", ZSTD_getErrorName(rc)));
    }
    if (out.exceeded()) return CapExceeded(cap);
    const bool input_consumed = input.pos == input.size;
    // rc == 0: a frame ended exactly here; more input means another frame follows.
    if (rc == 0 && input_consumed) return out.Take();
    // With input exhausted and output space left over, the decoder has flushed everything it could:
    // the frame is incomplete.
    if (input_consumed && output.pos < output.size) {
      return absl::InvalidArgumentError("truncated zstd data: input ends before the end of the frame");
    }
  }
}

absl::StatusOr<std::string> ZstdEncode(std::string_view data, int requested_level) {
  absl::StatusOr<int> level = ZstdLevel(requested_level);
  if (!level.ok()) return level.status();
  std::string out;
  out.resize(ZSTD_compressBound(data.size()));
  const size_t rc = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), *level);
  if (ZSTD_isError(rc)) {
    return absl::InternalError(absl::StrCat("zstd compression failed: ", ZSTD_getErrorName(rc)));
  }
  out.resize(rc);
  return out;
}

// Per-thread output space of at least `bound` bytes (the codec's worst case), kept between calls:
// compressing into a fresh buffer of that size would zero-fill and page-fault all of it every time
// (megabytes for a trace flush), where copying out the result touches only what was produced.
std::string& WholeBufferScratch(size_t bound) {
  thread_local std::string scratch;
  if (scratch.size() < bound) scratch.resize(bound);
  return scratch;
}

// One libdeflate compressor per thread, kept for the level it was made for (its state is a few
// hundred KiB, allocated once instead of per payload).
struct DeflateCompressorDeleter {
  void operator()(libdeflate_compressor* c) const { libdeflate_free_compressor(c); }
};
struct ThreadDeflateCompressor {
  int level = 0;
  std::unique_ptr<libdeflate_compressor, DeflateCompressorDeleter> compressor;
};

absl::Status GzipWholeBuffer(std::string_view data, int level, std::string* out) {
  if (level == kDefaultLevel) level = 6;
  if (level < 1 || level > 12) {
    return absl::InvalidArgumentError(absl::StrCat("invalid gzip level ", level, " (want 1-12)"));
  }
  thread_local ThreadDeflateCompressor state;
  if (state.compressor == nullptr || state.level != level) {
    state.compressor.reset(libdeflate_alloc_compressor(level));
    state.level = level;
    if (state.compressor == nullptr) return absl::ResourceExhaustedError("cannot allocate a gzip compressor");
  }
  std::string& scratch =
      WholeBufferScratch(libdeflate_gzip_compress_bound(state.compressor.get(), data.size()));
  const size_t written = libdeflate_gzip_compress(state.compressor.get(), data.data(), data.size(),
                                                  scratch.data(), scratch.size());
  if (written == 0) {
    out->clear();
    return absl::InternalError("gzip compression failed: output larger than its bound");
  }
  out->assign(scratch.data(), written);
  return absl::OkStatus();
}

struct ZstdContextDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

absl::Status ZstdWholeBuffer(std::string_view data, int requested_level, std::string* out) {
  absl::StatusOr<int> level = ZstdLevel(requested_level);
  if (!level.ok()) return level.status();
  thread_local std::unique_ptr<ZSTD_CCtx, ZstdContextDeleter> context(ZSTD_createCCtx());
  if (context == nullptr) return absl::ResourceExhaustedError("cannot allocate a zstd context");
  std::string& scratch = WholeBufferScratch(ZSTD_compressBound(data.size()));
  const size_t rc =
      ZSTD_compressCCtx(context.get(), scratch.data(), scratch.size(), data.data(), data.size(), *level);
  if (ZSTD_isError(rc)) {
    out->clear();
    return absl::InternalError(absl::StrCat("zstd compression failed: ", ZSTD_getErrorName(rc)));
  }
  out->assign(scratch.data(), rc);
  return absl::OkStatus();
}

}  // namespace

absl::Status CompressWholeBuffer(Codec codec, std::string_view data, int level, std::string* out) {
  switch (codec) {
    case Codec::kGzip:
      return GzipWholeBuffer(data, level, out);
    case Codec::kZstd:
      return ZstdWholeBuffer(data, level, out);
    case Codec::kIdentity:
    case Codec::kZlib:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("CompressWholeBuffer supports gzip and zstd, not ",
                                                 std::string(ContentEncodingName(codec))));
}

std::string_view ContentEncodingName(Codec codec) {
  switch (codec) {
    case Codec::kIdentity:
      return "identity";
    case Codec::kGzip:
      return "gzip";
    case Codec::kZlib:
      return "deflate";
    case Codec::kZstd:
      return "zstd";
  }
  return "identity";
}

absl::StatusOr<Codec> CodecForContentEncoding(std::string_view content_encoding) {
  const std::string token = absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(absl::string_view(content_encoding.data(), content_encoding.size())));
  if (token.empty() || token == "identity") return Codec::kIdentity;
  if (token == "gzip" || token == "x-gzip") return Codec::kGzip;
  if (token == "deflate") return Codec::kZlib;
  if (token == "zstd") return Codec::kZstd;
  return absl::InvalidArgumentError(absl::StrCat("unsupported Content-Encoding \"", token.substr(0, 64),
                                                 "\" (supported: identity, gzip, deflate, zstd)"));
}

absl::StatusOr<std::string> Compress(Codec codec, std::string_view data, int level) {
  switch (codec) {
    case Codec::kIdentity:
      return std::string(data);
    case Codec::kGzip:
      return Deflate(data, level, /*gzip=*/true);
    case Codec::kZlib:
      return Deflate(data, level, /*gzip=*/false);
    case Codec::kZstd:
      return ZstdEncode(data, level);
  }
  return absl::InvalidArgumentError("unknown codec");
}

absl::StatusOr<std::string> Decompress(Codec codec, std::string_view data, size_t max_output_bytes) {
  switch (codec) {
    case Codec::kIdentity:
      if (data.size() > max_output_bytes) return CapExceeded(max_output_bytes);
      return std::string(data);
    case Codec::kGzip:
      return Inflate(data, max_output_bytes, /*gzip=*/true);
    case Codec::kZlib:
      return Inflate(data, max_output_bytes, /*gzip=*/false);
    case Codec::kZstd:
      return ZstdDecode(data, max_output_bytes);
  }
  return absl::InvalidArgumentError("unknown codec");
}

absl::Status DecompressInto(Codec codec, std::string_view data, size_t max_output_bytes, std::string* out) {
  absl::StatusOr<std::string> result;
  switch (codec) {
    case Codec::kIdentity:
      if (data.size() > max_output_bytes) {
        out->clear();
        return CapExceeded(max_output_bytes);
      }
      out->assign(data);
      return absl::OkStatus();
    case Codec::kGzip:
      result = Inflate(data, max_output_bytes, /*gzip=*/true, std::move(*out));
      break;
    case Codec::kZlib:
      result = Inflate(data, max_output_bytes, /*gzip=*/false, std::move(*out));
      break;
    case Codec::kZstd:
      result = ZstdDecode(data, max_output_bytes, std::move(*out));
      break;
    default:
      return absl::InvalidArgumentError("unknown codec");
  }
  out->clear();
  if (!result.ok()) return result.status();
  *out = *std::move(result);
  return absl::OkStatus();
}

absl::StatusOr<std::string> DecompressByContentEncoding(std::string_view content_encoding,
                                                        std::string_view data, size_t max_output_bytes) {
  absl::StatusOr<Codec> codec = CodecForContentEncoding(content_encoding);
  if (!codec.ok()) return codec.status();
  return Decompress(*codec, data, max_output_bytes);
}

}  // namespace dogwatch::compression
