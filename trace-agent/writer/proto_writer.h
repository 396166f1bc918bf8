#pragma once
// A minimal protobuf wire-format writer. The trace writer encodes AgentPayload straight from the
// span structs with it: building protobuf message objects first would cost a map node and a string
// copy per tag, for bytes that are serialized once and thrown away.

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace dogwatch::trace {

// Bytes a varint takes on the wire (length prefixes of nested messages computed up front).
// Branch-free (computed ~6 times per encoded tag, twice per span: the loop's mispredictions
// showed in profiles): 1 + floor(log2(value | 1) / 7), as protobuf computes it.
inline size_t VarintSize(uint64_t value) {
  return static_cast<size_t>((std::bit_width(value | 1) * 9 + 64) / 64);
}

// Bytes of slack the memory a ProtoSink writes into must have past the encoded end: WideUInt64
// stores 8 bytes, then 2 more, whatever the varint's length, and the next field overwrites the rest.
inline constexpr size_t kProtoSinkSlack = 16;

// memcpy for the short strings that make up most of a span (tag keys and values): without a call,
// with at most two overlapping loads and stores that stay inside [0, n).
inline void CopyBytes(char* out, const char* in, size_t n) {
  if (n >= 16) {
    std::memcpy(out, in, n);
  } else if (n >= 8) {
    uint64_t a, b;
    std::memcpy(&a, in, 8);
    std::memcpy(&b, in + n - 8, 8);
    std::memcpy(out, &a, 8);
    std::memcpy(out + n - 8, &b, 8);
  } else if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, in, 4);
    std::memcpy(&b, in + n - 4, 4);
    std::memcpy(out, &a, 4);
    std::memcpy(out + n - 4, &b, 4);
  } else {
    for (size_t i = 0; i < n; ++i) out[i] = in[i];
  }
}

class ProtoWriter {
 public:
  explicit ProtoWriter(std::string* out) : out_(out) {}

  void Varint(uint64_t value) {
    char buffer[10];
    size_t n = 0;
    while (value >= 0x80) {
      buffer[n++] = static_cast<char>((value & 0x7f) | 0x80);
      value >>= 7;
    }
    buffer[n++] = static_cast<char>(value);
    out_->append(buffer, n);
  }
  void Tag(uint32_t field, uint32_t wire_type) { Varint((uint64_t{field} << 3) | wire_type); }

  // Scalar fields; proto3 leaves zero values out.
  void UInt64(uint32_t field, uint64_t value) {
    if (value == 0) return;
    Tag(field, 0);
    Varint(value);
  }
  // int32/int64 are encoded as their two's-complement 64-bit value (negative: 10 bytes).
  void Int64(uint32_t field, int64_t value) { UInt64(field, static_cast<uint64_t>(value)); }
  void Bool(uint32_t field, bool value) { UInt64(field, value ? 1 : 0); }
  void Double(uint32_t field, double value) {
    if (value == 0) return;
    DoubleAlways(field, value);
  }
  // Map values are written even when zero so the entry's meaning does not depend on defaults.
  void DoubleAlways(uint32_t field, double value) {
    Tag(field, 1);
    char bytes[8];
    std::memcpy(bytes, &value, 8);  // little-endian hosts only, as every target of this agent
    out_->append(bytes, 8);
  }
  void String(uint32_t field, std::string_view value) {
    if (value.empty()) return;
    Bytes(field, value);
  }
  void Bytes(uint32_t field, std::string_view value) {
    Tag(field, 2);
    Varint(value.size());
    out_->append(value);
  }
  // A nested message already encoded elsewhere.
  void Message(uint32_t field, std::string_view encoded) { Bytes(field, encoded); }

  std::string* out() { return out_; }

 private:
  std::string* out_;
};

// The same wire format written into memory sized up front (the encoder computes every message's
// size first): no bounds or capacity checks per field, no nested buffers copied into their parents.
class ProtoSink {
 public:
  explicit ProtoSink(char* position) : position_(position) {}

  void Varint(uint64_t value) {
    while (value >= 0x80) {
      *position_++ = static_cast<char>((value & 0x7f) | 0x80);
      value >>= 7;
    }
    *position_++ = static_cast<char>(value);
  }
  // Every field number this encoder writes is below 16: the tag is one byte.
  void Tag(uint32_t field, uint32_t wire_type) { *position_++ = static_cast<char>((field << 3) | wire_type); }
  void UInt64(uint32_t field, uint64_t value) {
    if (value == 0) return;
    Tag(field, 0);
    Varint(value);
  }
  void Int64(uint32_t field, int64_t value) { UInt64(field, static_cast<uint64_t>(value)); }
  // The same for values that are usually long (random 64-bit ids: 9-10 bytes; nanosecond
  // timestamps: 9): the byte loop's exit is mispredicted on every one and its stores are serial.
  // Here the first 8 bytes are built in a register and stored at once, the last two always
  // written; needs kProtoSinkSlack bytes past the end of the encoding.
  void WideUInt64(uint32_t field, uint64_t value) {
    if (value == 0) return;
    Tag(field, 0);
    WideVarint(value);
  }
  void WideInt64(uint32_t field, int64_t value) { WideUInt64(field, static_cast<uint64_t>(value)); }
  void WideVarint(uint64_t value) {
    // Continuation bits of bytes 0-7 for a varint of n bytes (every byte but the last has one).
    static constexpr uint64_t kContinuation[11] = {0,
                                                   0,
                                                   0x80,
                                                   0x8080,
                                                   0x808080,
                                                   0x80808080,
                                                   0x8080808080,
                                                   0x808080808080,
                                                   0x80808080808080,
                                                   0x8080808080808080,
                                                   0x8080808080808080};
    // The low 56 bits, 7 to a byte: halves of 28 bits 32 apart, quarters of 14 bits 16 apart,
    // then groups of 7 bits 8 apart.
    uint64_t x = value & 0x00FFFFFFFFFFFFFFull;
    x = (x & 0x000000000FFFFFFFull) | ((x & 0x00FFFFFFF0000000ull) << 4);
    x = (x & 0x00003FFF00003FFFull) | ((x & 0x0FFFC0000FFFC000ull) << 2);
    x = (x & 0x007F007F007F007Full) | ((x & 0x3F803F803F803F80ull) << 1);
    const size_t n = VarintSize(value);
    x |= kContinuation[n];
    std::memcpy(position_, &x, 8);  // little-endian hosts only, as every target of this agent
    // Bytes 8 and 9: bits 56-62 with bit 63 as byte 8's continuation bit (set exactly when the
    // varint has 10 bytes), and bit 63 itself.
    position_[8] = static_cast<char>(value >> 56);
    position_[9] = static_cast<char>(value >> 63);
    position_ += n;
  }
  void Bool(uint32_t field, bool value) { UInt64(field, value ? 1 : 0); }
  void Double(uint32_t field, double value) {
    if (value == 0) return;
    Tag(field, 1);
    std::memcpy(position_, &value, 8);  // little-endian hosts only, as every target of this agent
    position_ += 8;
  }
  void String(uint32_t field, std::string_view value) {
    if (value.empty()) return;
    Tag(field, 2);
    Varint(value.size());
    CopyBytes(position_, value.data(), value.size());
    position_ += value.size();
  }
  // A map<string, string> entry {1: key, 2: value} whose key and value are both 1-60 bytes: every
  // length then takes one byte (the entry is at most 124), so there is no varint loop and no size
  // to compute field by field. Most span tags are such entries.
  static bool IsShortStringEntry(std::string_view key, std::string_view value) {
    return key.size() - 1 < 60 && value.size() - 1 < 60;
  }
  void ShortStringEntry(uint32_t field, std::string_view key, std::string_view value) {
    ShortEntryWithKey(field, 4 + key.size() + value.size(), key);
    position_[0] = static_cast<char>((2 << 3) | 2);
    position_[1] = static_cast<char>(value.size());
    CopyBytes(position_ + 2, value.data(), value.size());
    position_ += 2 + value.size();
  }
  // The encoded size of such an entry as a field: tag, length, then the entry.
  static size_t ShortStringEntryFieldSize(std::string_view key, std::string_view value) {
    return 6 + key.size() + value.size();
  }
  // A map<string, double> entry {1: key, 2: value} whose key is 1-100 bytes: the entry is at most 113
  // bytes, so both lengths take one byte. A zero value is left out, as Double() leaves it out. Most span
  // metrics are such entries.
  static bool IsShortNumberEntry(std::string_view key) { return key.size() - 1 < 100; }
  static size_t ShortNumberEntryFieldSize(std::string_view key, double value) {
    return 4 + key.size() + (value == 0 ? 0 : 9);
  }
  void ShortNumberEntry(uint32_t field, std::string_view key, double value) {
    ShortEntryWithKey(field, 2 + key.size() + (value == 0 ? 0 : 9), key);
    Double(2, value);
  }
  // The header of a nested message of `size` bytes, which the caller writes next.
  void MessageHeader(uint32_t field, size_t size) {
    Tag(field, 2);
    Varint(size);
  }

  char* position() const { return position_; }

 private:
  // A short map entry's field tag and one-byte length (`entry_size` < 128), then its key as field 1
  // with a one-byte length; the value is the caller's to write.
  void ShortEntryWithKey(uint32_t field, size_t entry_size, std::string_view key) {
    position_[0] = static_cast<char>((field << 3) | 2);
    position_[1] = static_cast<char>(entry_size);
    position_[2] = static_cast<char>((1 << 3) | 2);
    position_[3] = static_cast<char>(key.size());
    CopyBytes(position_ + 4, key.data(), key.size());
    position_ += 4 + key.size();
  }

  char* position_;
};

// Encoded sizes, matching ProtoSink field for field.
inline size_t StringFieldSize(std::string_view value) {
  return value.empty() ? 0 : 1 + VarintSize(value.size()) + value.size();
}
inline size_t UInt64FieldSize(uint64_t value) { return value == 0 ? 0 : 1 + VarintSize(value); }
inline size_t Int64FieldSize(int64_t value) { return UInt64FieldSize(static_cast<uint64_t>(value)); }
inline size_t DoubleFieldSize(double value) { return value == 0 ? 0 : 9; }
inline size_t MessageFieldSize(size_t size) { return 1 + VarintSize(size) + size; }

}  // namespace dogwatch::trace
