#pragma once
// A minimal MessagePack writer and a bounded, non-allocating reader for the stats payloads.
//
// Why not msgpack-cxx: its unpacker builds a whole object tree (and reports errors by throwing), while
// /v0.6/stats bodies are untrusted and only need a single forward pass; its packer would be fine, but the
// writer below is 100 lines, allocation-free beyond the output string, and keeps the two sides of the
// wire symmetric. Tests decode what we write with msgpack-cxx to check the format independently.
//
// The reader never allocates: strings and binaries are views into the input. Every length read from the
// input is checked against the bytes that remain before anything is done with it (an array header that
// announces more elements than there are bytes left is an error, so callers may reserve() from it), and
// Skip() is depth-limited. Errors say what was expected, what was found and at which byte.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dogwatch::trace::stats {

class MsgpackWriter {
 public:
  explicit MsgpackWriter(std::string* out) : out_(out) {}

  void Nil();
  void Bool(bool v);
  void Uint(uint64_t v);  // smallest encoding
  void Int(int64_t v);    // smallest encoding; non-negative values as unsigned
  void Double(double v);  // float64
  void String(std::string_view v);
  void Binary(std::string_view v);
  void ArrayHeader(uint32_t n);
  void MapHeader(uint32_t n);

 private:
  void Byte(uint8_t b) { out_->push_back(static_cast<char>(b)); }
  void BigEndian(uint64_t v, int bytes);
  std::string* out_;
};

class MsgpackReader {
 public:
  enum class Type { kNil, kBool, kInt, kFloat, kString, kBinary, kArray, kMap, kExt };

  explicit MsgpackReader(std::string_view data, int max_depth = 32) : data_(data), max_depth_(max_depth) {}

  bool AtEnd() const { return pos_ >= data_.size(); }
  size_t offset() const { return pos_; }
  size_t remaining() const { return data_.size() - pos_; }

  absl::StatusOr<Type> Peek() const;
  // Consumes a nil if one is next.
  bool TryNil();

  // Element counts are checked against the remaining bytes (≥ 1 byte per array element, ≥ 2 per map
  // entry), so a header can never make a caller allocate more than the input could fill.
  absl::StatusOr<uint32_t> ReadArrayHeader();
  absl::StatusOr<uint32_t> ReadMapHeader();
  // str or bin, as a view into the input.
  absl::StatusOr<std::string_view> ReadString();
  absl::StatusOr<std::string_view> ReadBytes();
  // Any integer, or a float holding an integral value in range. Negative values are an error.
  absl::StatusOr<uint64_t> ReadUint();
  absl::StatusOr<int64_t> ReadInt();
  absl::StatusOr<double> ReadDouble();
  // A bool, or the integers 0 and 1.
  absl::StatusOr<bool> ReadBool();
  // Skips one value of any type (containers recursively, up to max_depth).
  absl::Status Skip();

  absl::Status Error(std::string_view what) const;

 private:
  absl::Status Need(size_t n) const;
  uint64_t ReadBigEndian(int bytes);  // after Need()
  absl::StatusOr<uint32_t> ReadContainerHeader(bool map);
  absl::StatusOr<std::string_view> ReadRaw(bool want_string);
  absl::Status SkipDepth(int depth);
  std::string_view TypeName(uint8_t marker) const;

  std::string_view data_;
  size_t pos_ = 0;
  int max_depth_;
};

}  // namespace dogwatch::trace::stats
