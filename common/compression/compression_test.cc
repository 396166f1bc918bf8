#include "common/compression/compression.h"

#include <zstd.h>

#include <catch2/catch.hpp>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"

namespace dogwatch::compression {
namespace {

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

std::string Repetitive(size_t n) {
  std::string out;
  out.reserve(n);
  while (out.size() < n) out += "dogwatch series metric:42|g|#env:prod\n";
  out.resize(n);
  return out;
}

constexpr Codec kAllCodecs[] = {Codec::kIdentity, Codec::kGzip, Codec::kZlib, Codec::kZstd};
constexpr Codec kRealCodecs[] = {Codec::kGzip, Codec::kZlib, Codec::kZstd};

TEST_CASE("round trip for every codec and several sizes") {
  for (Codec codec : kAllCodecs) {
    for (size_t size : {size_t{0}, size_t{1}, size_t{100}, size_t{70000}, size_t{3} << 20}) {
      for (const std::string& input : {RandomBytes(size, 7), Repetitive(size)}) {
        auto compressed = Compress(codec, input);
        REQUIRE(compressed.ok());
        auto restored = Decompress(codec, *compressed, input.size());
        INFO(ContentEncodingName(codec) << " size " << size << ": " << restored.status());
        REQUIRE(restored.ok());
        CHECK(*restored == input);
      }
    }
  }
}

TEST_CASE("compression actually compresses repetitive data") {
  const std::string input = Repetitive(1 << 20);
  for (Codec codec : kRealCodecs) {
    auto compressed = Compress(codec, input);
    REQUIRE(compressed.ok());
    CHECK(compressed->size() < input.size() / 10);
  }
}

TEST_CASE("wire formats are the standard ones") {
  auto gz = GzipCompress("hello");
  REQUIRE(gz.ok());
  CHECK(static_cast<unsigned char>((*gz)[0]) == 0x1f);  // gzip magic
  CHECK(static_cast<unsigned char>((*gz)[1]) == 0x8b);
  auto zl = ZlibCompress("hello");
  REQUIRE(zl.ok());
  CHECK(static_cast<unsigned char>((*zl)[0]) == 0x78);  // zlib CMF: deflate, 32K window
  auto zs = ZstdCompress("hello");
  REQUIRE(zs.ok());
  CHECK(zs->substr(0, 4) == std::string("\x28\xb5\x2f\xfd", 4));  // zstd frame magic
}

TEST_CASE("CompressWholeBuffer: gzip (libdeflate) and zstd round trip through the standard decoders") {
  std::string out = "stale bytes that must be replaced";
  for (Codec codec : {Codec::kGzip, Codec::kZstd}) {
    for (int level : {1, 2, 6}) {
      for (size_t size : {size_t{0}, size_t{1}, size_t{70000}, size_t{3} << 20}) {
        for (const std::string& input : {RandomBytes(size, 11), Repetitive(size)}) {
          REQUIRE(CompressWholeBuffer(codec, input, level, &out).ok());
          auto restored = Decompress(codec, out, input.size());
          INFO(ContentEncodingName(codec)
               << " level " << level << " size " << size << ": " << restored.status());
          REQUIRE(restored.ok());
          CHECK(*restored == input);
        }
      }
    }
  }
  const std::string repetitive = Repetitive(1 << 20);
  REQUIRE(CompressWholeBuffer(Codec::kGzip, repetitive, 1, &out).ok());
  CHECK(static_cast<unsigned char>(out[0]) == 0x1f);  // gzip magic
  CHECK(static_cast<unsigned char>(out[1]) == 0x8b);
  CHECK(out.size() < repetitive.size() / 10);
  REQUIRE(CompressWholeBuffer(Codec::kZstd, repetitive, 1, &out).ok());
  CHECK(out.substr(0, 4) == std::string("\x28\xb5\x2f\xfd", 4));
  CHECK(out.size() < repetitive.size() / 10);
}

TEST_CASE("CompressWholeBuffer validates codec and level") {
  std::string out;
  CHECK(CompressWholeBuffer(Codec::kGzip, "x", kDefaultLevel, &out).ok());
  CHECK(CompressWholeBuffer(Codec::kGzip, "x", 12, &out).ok());
  CHECK(absl::IsInvalidArgument(CompressWholeBuffer(Codec::kGzip, "x", 0, &out)));
  CHECK(absl::IsInvalidArgument(CompressWholeBuffer(Codec::kGzip, "x", 13, &out)));
  CHECK(absl::IsInvalidArgument(CompressWholeBuffer(Codec::kZstd, "x", ZSTD_maxCLevel() + 1, &out)));
  CHECK(absl::IsInvalidArgument(CompressWholeBuffer(Codec::kZlib, "x", 1, &out)));
  CHECK(absl::IsInvalidArgument(CompressWholeBuffer(Codec::kIdentity, "x", 1, &out)));
}

TEST_CASE("levels are validated") {
  CHECK(Compress(Codec::kGzip, "x", 1).ok());
  CHECK(Compress(Codec::kGzip, "x", 9).ok());
  CHECK(Compress(Codec::kGzip, "x", 10).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Compress(Codec::kZstd, "x", 19).ok());
  CHECK(Compress(Codec::kZstd, "x", -1).ok());  // zstd fast levels are negative
  CHECK(Compress(Codec::kZstd, "x", 1000).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("output cap is enforced exactly") {
  const std::string input = Repetitive(100000);
  for (Codec codec : kAllCodecs) {
    auto compressed = Compress(codec, input);
    REQUIRE(compressed.ok());
    INFO(ContentEncodingName(codec));
    CHECK(Decompress(codec, *compressed, input.size()).ok());
    auto over = Decompress(codec, *compressed, input.size() - 1);
    REQUIRE_FALSE(over.ok());
    CHECK(over.status().code() == absl::StatusCode::kResourceExhausted);
    CHECK(over.status().message().find(absl::StrCat("decompressed size exceeds ", input.size() - 1,
                                                    " bytes")) != absl::string_view::npos);
  }
}

TEST_CASE("DecompressInto reuses its buffer across sizes, codecs and errors, and stays exact") {
  std::string out;
  // Large then small then large again: a reused buffer must never leak bytes of an earlier result.
  for (Codec codec : kAllCodecs) {
    for (size_t size : {size_t{3} << 20, size_t{10}, size_t{0}, size_t{200000}}) {
      const std::string input = RandomBytes(size, static_cast<uint32_t>(size) + 3);
      auto compressed = Compress(codec, input);
      REQUIRE(compressed.ok());
      INFO(ContentEncodingName(codec) << " size " << size);
      REQUIRE(DecompressInto(codec, *compressed, input.size(), &out).ok());
      CHECK(out == input);
    }
    // Over the cap or corrupt: an error, and nothing left in the output.
    auto compressed = Compress(codec, Repetitive(100000));
    REQUIRE(compressed.ok());
    const absl::Status over = DecompressInto(codec, *compressed, 99999, &out);
    CHECK(over.code() == absl::StatusCode::kResourceExhausted);
    CHECK(out.empty());
    if (codec != Codec::kIdentity) {
      CHECK(absl::IsInvalidArgument(
          DecompressInto(codec, compressed->substr(0, compressed->size() / 2), 1 << 20, &out)));
      CHECK(out.empty());
    }
    // And the next call after an error still decodes correctly (the kept zstd decoder is reset).
    REQUIRE(DecompressInto(codec, *compressed, 100000, &out).ok());
    CHECK(out == Repetitive(100000));
  }
}

TEST_CASE("decompression bombs stop at the cap") {
  // 1 GiB of zeros as 128 concatenated 8 MiB members/frames (about 1 MB of gzip, far less zstd): a
  // 1 MiB cap must stop decoding early instead of materializing the gigabyte.
  const std::string zeros(8 << 20, '\0');
  for (Codec codec : kRealCodecs) {
    auto member = Compress(codec, zeros, codec == Codec::kZstd ? 19 : 9);
    REQUIRE(member.ok());
    std::string bomb;
    // zlib has no concatenation, so one big member is the bomb there.
    const int copies = codec == Codec::kZlib ? 1 : 128;
    for (int i = 0; i < copies; ++i) bomb += *member;
    auto out = Decompress(codec, bomb, 1 << 20);
    INFO(ContentEncodingName(codec));
    REQUIRE_FALSE(out.ok());
    CHECK(out.status().code() == absl::StatusCode::kResourceExhausted);
  }
}

TEST_CASE(
    "zstd frame that declares a huge content size is rejected before "
    "decoding") {
  auto frame = ZstdCompress(std::string(5 << 20, 'a'));
  REQUIRE(frame.ok());
  auto out = ZstdDecompress(*frame, 1 << 20);
  REQUIRE_FALSE(out.ok());
  CHECK(out.status().message().find("declares") != absl::string_view::npos);
}

TEST_CASE("concatenated gzip members and zstd frames decode as one stream") {
  for (Codec codec : {Codec::kGzip, Codec::kZstd}) {
    auto a = Compress(codec, "hello ");
    auto b = Compress(codec, "world");
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    auto out = Decompress(codec, *a + *b, 100);
    REQUIRE(out.ok());
    CHECK(*out == "hello world");
  }
}

TEST_CASE("corrupt and truncated input give clear errors") {
  const std::string input = RandomBytes(5000, 3);
  for (Codec codec : kRealCodecs) {
    auto compressed = Compress(codec, input);
    REQUIRE(compressed.ok());
    const std::string name(ContentEncodingName(codec));
    INFO(name);

    auto truncated = Decompress(codec, compressed->substr(0, compressed->size() / 2), 1 << 20);
    REQUIRE_FALSE(truncated.ok());
    CHECK(truncated.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(truncated.status().message().find("truncated") != absl::string_view::npos);

    auto empty = Decompress(codec, "", 1 << 20);
    REQUIRE_FALSE(empty.ok());
    CHECK(empty.status().message().find("empty input") != absl::string_view::npos);

    auto garbage = Decompress(codec, "this is not compressed at all", 1 << 20);
    REQUIRE_FALSE(garbage.ok());
    CHECK(garbage.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(garbage.status().message().find("corrupt") != absl::string_view::npos);

    std::string flipped = *compressed;
    flipped[flipped.size() / 2] ^= 0x55;
    flipped[flipped.size() / 2 + 1] ^= 0x55;
    auto corrupt = Decompress(codec, flipped, 1 << 20);
    // A flipped byte may still decode into different data only if the format has no checksum; gzip
    // (CRC32), zlib (Adler-32) and zstd (our frames carry no checksum, but the entropy tables
    // break) all notice in practice.
    CHECK_FALSE((corrupt.ok() && *corrupt == input));
  }
}

TEST_CASE("trailing garbage after a zlib stream is an error") {
  auto compressed = ZlibCompress("payload");
  REQUIRE(compressed.ok());
  auto out = ZlibDecompress(*compressed + "junk", 1000);
  REQUIRE_FALSE(out.ok());
  CHECK(out.status().message().find("after the end of the stream") != absl::string_view::npos);
}

TEST_CASE("gzip and zlib are not interchangeable") {
  auto gz = GzipCompress("payload");
  REQUIRE(gz.ok());
  CHECK_FALSE(ZlibDecompress(*gz, 1000).ok());
  auto zl = ZlibCompress("payload");
  REQUIRE(zl.ok());
  CHECK_FALSE(GzipDecompress(*zl, 1000).ok());
}

TEST_CASE("content-encoding names map to codecs") {
  CHECK(*CodecForContentEncoding("") == Codec::kIdentity);
  CHECK(*CodecForContentEncoding("identity") == Codec::kIdentity);
  CHECK(*CodecForContentEncoding("gzip") == Codec::kGzip);
  CHECK(*CodecForContentEncoding(" GZIP ") == Codec::kGzip);
  CHECK(*CodecForContentEncoding("x-gzip") == Codec::kGzip);
  CHECK(*CodecForContentEncoding("deflate") == Codec::kZlib);
  CHECK(*CodecForContentEncoding("zstd") == Codec::kZstd);
  auto br = CodecForContentEncoding("br");
  REQUIRE_FALSE(br.ok());
  CHECK(br.status().message().find("unsupported Content-Encoding \"br\"") != absl::string_view::npos);
  CHECK_FALSE(CodecForContentEncoding("gzip, zstd").ok());
  for (Codec codec : kAllCodecs) {
    CHECK(*CodecForContentEncoding(ContentEncodingName(codec)) == codec);
  }
}

TEST_CASE("DecompressByContentEncoding dispatches on the header value") {
  auto zs = ZstdCompress("abc");
  REQUIRE(zs.ok());
  CHECK(*DecompressByContentEncoding("zstd", *zs, 10) == "abc");
  auto zl = ZlibCompress("abc");
  REQUIRE(zl.ok());
  CHECK(*DecompressByContentEncoding("deflate", *zl, 10) == "abc");
  CHECK(*DecompressByContentEncoding("", "abc", 10) == "abc");
  CHECK(DecompressByContentEncoding("identity", "abcd", 3).status().code() ==
        absl::StatusCode::kResourceExhausted);
  CHECK(DecompressByContentEncoding("compress", "abc", 10).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("a zstd frame asking for a huge window is refused") {
  // Hand-made frame: no content size, window descriptor exponent 20 (a 1 GiB window), then one raw
  // last block holding "x". Its window would be allocated before any output is produced.
  const std::string frame(
      "\x28\xb5\x2f\xfd"  // magic
      "\x00"              // frame header descriptor: no FCS, not single segment
      "\xa0"              // window descriptor: 2^(10+20)
      "\x09\x00\x00"      // block header: last, raw, size 1
      "x",
      10);
  auto out = ZstdDecompress(frame, 1 << 20);
  REQUIRE_FALSE(out.ok());
  CHECK(out.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(out.status().message().find("window larger than") != absl::string_view::npos);

  // The same block behind a small window decodes fine.
  std::string small = frame;
  small[5] = 0x00;  // 2^10 window
  auto ok = ZstdDecompress(small, 1 << 20);
  REQUIRE(ok.ok());
  CHECK(*ok == "x");
}

}  // namespace
}  // namespace dogwatch::compression
