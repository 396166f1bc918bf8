#pragma once
// Internal: the few protobuf wire-format writes the metric payloads need, appended to a string.
//
// Nested messages are length-prefixed, so their size must be known before their bytes are written:
// Message() encodes the child into a per-depth scratch buffer (reused across calls, so steady-state
// encoding does not allocate) and then appends tag, length and bytes. Like the generated proto3
// encoders, scalar fields equal to their default are skipped.

#include <bit>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>

namespace dogwatch::serializer::internal {

// Buffers for nested messages, one per nesting depth. A deque, because a child taking the next
// buffer must not move the one its parent is still writing into. Keep one per encoding loop.
struct ProtoScratch {
  std::deque<std::string> buffers;
  size_t depth = 0;
};

class ProtoWriter {
 public:
  enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2 };

  ProtoWriter(std::string* out, ProtoScratch* scratch) : out_(out), scratch_(scratch) {}

  static void AppendVarint(std::string* out, uint64_t value) {
    char buffer[10];
    size_t n = 0;
    while (value >= 0x80) {
      buffer[n++] = static_cast<char>((value & 0x7f) | 0x80);
      value >>= 7;
    }
    buffer[n++] = static_cast<char>(value);
    out->append(buffer, n);
  }

  void Tag(uint32_t field, WireType type) { AppendVarint(out_, (static_cast<uint64_t>(field) << 3) | type); }

  void Int64(uint32_t field, int64_t value) {
    if (value == 0) return;
    Tag(field, kVarint);
    AppendVarint(out_, static_cast<uint64_t>(value));
  }

  void Int32(uint32_t field, int32_t value) {
    if (value == 0) return;
    Tag(field, kVarint);
    // Negative int32 values are sign-extended to 10 bytes on the wire, as protobuf specifies.
    AppendVarint(out_, static_cast<uint64_t>(static_cast<int64_t>(value)));
  }

  void Uint32(uint32_t field, uint32_t value) {
    if (value == 0) return;
    Tag(field, kVarint);
    AppendVarint(out_, value);
  }

  void Double(uint32_t field, double value) {
    const uint64_t bits = std::bit_cast<uint64_t>(value);
    if (bits == 0) return;  // +0.0 only: -0.0 is not the default and is kept
    Tag(field, kFixed64);
    char bytes[8];
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((bits >> (8 * i)) & 0xff);
    out_->append(bytes, 8);
  }

  // Always written, even when empty: used for repeated string elements, where empty strings count.
  void Bytes(uint32_t field, std::string_view value) {
    Tag(field, kLengthDelimited);
    AppendVarint(out_, value.size());
    out_->append(value);
  }

  void String(uint32_t field, std::string_view value) {
    if (value.empty()) return;
    Bytes(field, value);
  }

  void PackedSint32(uint32_t field, std::span<const int32_t> values) {
    if (values.empty()) return;
    std::string& packed = Scratch();
    for (int32_t v : values) {
      const uint32_t zigzag = (static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31);
      AppendVarint(&packed, zigzag);
    }
    Bytes(field, packed);
    Release();
  }

  void PackedUint32(uint32_t field, std::span<const uint32_t> values) {
    if (values.empty()) return;
    std::string& packed = Scratch();
    for (uint32_t v : values) AppendVarint(&packed, v);
    Bytes(field, packed);
    Release();
  }

  // Writes a nested message whose fields `fill(ProtoWriter&)` writes. An empty child is still
  // written (a present-but-empty message differs from an absent one for message fields).
  template <typename Fill>
  void Message(uint32_t field, Fill&& fill) {
    std::string& child = Scratch();
    ProtoWriter child_writer(&child, scratch_);
    fill(child_writer);
    Bytes(field, child);
    Release();
  }

 private:
  std::string& Scratch() {
    if (scratch_->buffers.size() <= scratch_->depth) scratch_->buffers.emplace_back();
    std::string& buffer = scratch_->buffers[scratch_->depth++];
    buffer.clear();
    return buffer;
  }
  void Release() { --scratch_->depth; }

  std::string* out_;
  ProtoScratch* scratch_;
};

}  // namespace dogwatch::serializer::internal
