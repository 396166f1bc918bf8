#pragma once
// gzip, zlib ("deflate" as Datadog and HTTP use the word: the RFC 1950 zlib format) and zstd.
//
// Every decompression takes a hard cap on the output size: the bodies we decompress come from the
// network, and a few kilobytes of zstd or gzip can expand to gigabytes. Corrupt, truncated or
// oversized input is an error that says which of those it was; nothing here throws or aborts.

#include <cstddef>
#include <limits>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dogwatch::compression {

enum class Codec {
  kIdentity,  // no compression
  kGzip,      // RFC 1952
  kZlib,      // RFC 1950, sent as "Content-Encoding: deflate"
  kZstd,      // RFC 8878
};

// Selects each codec's own default level (zlib 6, zstd 3). Not -1: zstd's negative levels are real.
inline constexpr int kDefaultLevel = std::numeric_limits<int>::min();

// The Content-Encoding token for `codec`: "identity", "gzip", "deflate" or "zstd".
std::string_view ContentEncodingName(Codec codec);

// Maps a Content-Encoding header value to a codec. Accepts "" and "identity" (no compression),
// "gzip" / "x-gzip", "deflate" and "zstd", case-insensitively and ignoring surrounding blanks.
// Anything else (including stacked encodings such as "gzip, zstd") is InvalidArgument.
absl::StatusOr<Codec> CodecForContentEncoding(std::string_view content_encoding);

// A zstd level as libzstd takes it: kDefaultLevel becomes zstd's default (3); a level outside
// ZSTD_minCLevel()..ZSTD_maxCLevel() is InvalidArgument (zstd itself would clamp it silently).
absl::StatusOr<int> ZstdLevel(int level);

// Compresses `data`. `level` is kDefaultLevel or a codec level (zlib/gzip 0-9, zstd
// ZSTD_minCLevel()..ZSTD_maxCLevel()); an out-of-range level is InvalidArgument.
absl::StatusOr<std::string> Compress(Codec codec, std::string_view data, int level = kDefaultLevel);

// Decompresses `data`, failing with ResourceExhausted ("decompressed size exceeds N bytes") as soon
// as the output would grow past `max_output_bytes`, and with InvalidArgument on corrupt or
// truncated input. Concatenated gzip members and zstd frames are decoded as one stream.
absl::StatusOr<std::string> Decompress(Codec codec, std::string_view data, size_t max_output_bytes);

// Decompress, for callers that decompress large bodies often (the local intake's check of every
// payload): the result replaces `*out`, whose buffer is reused (kept at its largest size: its pages
// stay mapped, and only bytes past what it held are zero-filled); the zstd decoder is kept per
// thread. On error `*out` is empty.
absl::Status DecompressInto(Codec codec, std::string_view data, size_t max_output_bytes, std::string* out);

// Decompress with the codec named by an HTTP Content-Encoding value (see CodecForContentEncoding).
absl::StatusOr<std::string> DecompressByContentEncoding(std::string_view content_encoding,
                                                        std::string_view data, size_t max_output_bytes);

// Whole-buffer compression for hot paths that send large bodies often (the trace writer): the
// result replaces `*out` (its capacity is reused). The compressor state and an output buffer of the
// codec's worst-case size for the largest input so far are kept per calling thread, instead of
// being set up, zero-filled and page-faulted for every call.
//
// kGzip goes through libdeflate: the same RFC 1952 format every gzip reader accepts (different
// bytes from zlib's), 2-4x less CPU than zlib at the same level. Levels 1-12 (libdeflate's scale:
// 1-9 compare with zlib's, 10-12 are slower and smaller); kDefaultLevel is 6.
// kZstd uses a reused ZSTD_CCtx; levels as for Compress. Other codecs are InvalidArgument.
absl::Status CompressWholeBuffer(Codec codec, std::string_view data, int level, std::string* out);

// Shorthands for the fixed-codec cases.
inline absl::StatusOr<std::string> GzipCompress(std::string_view data, int level = kDefaultLevel) {
  return Compress(Codec::kGzip, data, level);
}
inline absl::StatusOr<std::string> ZlibCompress(std::string_view data, int level = kDefaultLevel) {
  return Compress(Codec::kZlib, data, level);
}
inline absl::StatusOr<std::string> ZstdCompress(std::string_view data, int level = kDefaultLevel) {
  return Compress(Codec::kZstd, data, level);
}
inline absl::StatusOr<std::string> GzipDecompress(std::string_view data, size_t max_output_bytes) {
  return Decompress(Codec::kGzip, data, max_output_bytes);
}
inline absl::StatusOr<std::string> ZlibDecompress(std::string_view data, size_t max_output_bytes) {
  return Decompress(Codec::kZlib, data, max_output_bytes);
}
inline absl::StatusOr<std::string> ZstdDecompress(std::string_view data, size_t max_output_bytes) {
  return Decompress(Codec::kZstd, data, max_output_bytes);
}

}  // namespace dogwatch::compression
