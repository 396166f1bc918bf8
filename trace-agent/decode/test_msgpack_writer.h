#pragma once
// A tiny msgpack writer for tests, fuzz seeds and benchmark payloads. Every encoding is available
// explicitly (U16, Str32, Array32, ...) so tests can produce exactly the wire forms tracers use;
// the unsuffixed methods pick the smallest form, like most encoders. Not for production use: it
// does no validation (it will happily write a header whose count does not match what follows,
// which is what the negative tests want).

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

namespace dogwatch::trace::testing {

class MsgpackWriter {
 public:
  MsgpackWriter& Nil() { return Byte(0xc0); }
  MsgpackWriter& Bool(bool v) { return Byte(v ? 0xc3 : 0xc2); }

  // Exact encodings.
  MsgpackWriter& FixUint(uint8_t v) { return Byte(v & 0x7f); }
  MsgpackWriter& NegFixInt(int8_t v) { return Byte(static_cast<uint8_t>(v)); }  // -32..-1
  MsgpackWriter& U8(uint8_t v) { return Byte(0xcc).Be(v, 1); }
  MsgpackWriter& U16(uint16_t v) { return Byte(0xcd).Be(v, 2); }
  MsgpackWriter& U32(uint32_t v) { return Byte(0xce).Be(v, 4); }
  MsgpackWriter& U64(uint64_t v) { return Byte(0xcf).Be(v, 8); }
  MsgpackWriter& I8(int8_t v) { return Byte(0xd0).Be(static_cast<uint8_t>(v), 1); }
  MsgpackWriter& I16(int16_t v) { return Byte(0xd1).Be(static_cast<uint16_t>(v), 2); }
  MsgpackWriter& I32(int32_t v) { return Byte(0xd2).Be(static_cast<uint32_t>(v), 4); }
  MsgpackWriter& I64(int64_t v) { return Byte(0xd3).Be(static_cast<uint64_t>(v), 8); }
  MsgpackWriter& F32(float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof(bits));
    return Byte(0xca).Be(bits, 4);
  }
  MsgpackWriter& F64(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof(bits));
    return Byte(0xcb).Be(bits, 8);
  }
  MsgpackWriter& FixStr(std::string_view s) { return Byte(0xa0 | static_cast<uint8_t>(s.size())).Raw(s); }
  MsgpackWriter& Str8(std::string_view s) { return Byte(0xd9).Be(s.size(), 1).Raw(s); }
  MsgpackWriter& Str16(std::string_view s) { return Byte(0xda).Be(s.size(), 2).Raw(s); }
  MsgpackWriter& Str32(std::string_view s) { return Byte(0xdb).Be(s.size(), 4).Raw(s); }
  MsgpackWriter& Bin8(std::string_view s) { return Byte(0xc4).Be(s.size(), 1).Raw(s); }
  MsgpackWriter& Bin16(std::string_view s) { return Byte(0xc5).Be(s.size(), 2).Raw(s); }
  MsgpackWriter& Bin32(std::string_view s) { return Byte(0xc6).Be(s.size(), 4).Raw(s); }
  MsgpackWriter& FixArray(uint32_t n) { return Byte(0x90 | static_cast<uint8_t>(n)); }
  MsgpackWriter& Array16(uint32_t n) { return Byte(0xdc).Be(n, 2); }
  MsgpackWriter& Array32(uint32_t n) { return Byte(0xdd).Be(n, 4); }
  MsgpackWriter& FixMap(uint32_t n) { return Byte(0x80 | static_cast<uint8_t>(n)); }
  MsgpackWriter& Map16(uint32_t n) { return Byte(0xde).Be(n, 2); }
  MsgpackWriter& Map32(uint32_t n) { return Byte(0xdf).Be(n, 4); }
  MsgpackWriter& FixExt1(int8_t type, uint8_t data) {
    return Byte(0xd4).Byte(static_cast<uint8_t>(type)).Byte(data);
  }
  MsgpackWriter& Ext8(int8_t type, std::string_view data) {
    return Byte(0xc7).Be(data.size(), 1).Byte(static_cast<uint8_t>(type)).Raw(data);
  }

  // Smallest encodings.
  MsgpackWriter& Uint(uint64_t v) {
    if (v < 0x80) return FixUint(static_cast<uint8_t>(v));
    if (v <= 0xff) return U8(static_cast<uint8_t>(v));
    if (v <= 0xffff) return U16(static_cast<uint16_t>(v));
    if (v <= 0xffffffffu) return U32(static_cast<uint32_t>(v));
    return U64(v);
  }
  MsgpackWriter& Int(int64_t v) {
    if (v >= 0) return Uint(static_cast<uint64_t>(v));
    if (v >= -32) return NegFixInt(static_cast<int8_t>(v));
    if (v >= INT8_MIN) return I8(static_cast<int8_t>(v));
    if (v >= INT16_MIN) return I16(static_cast<int16_t>(v));
    if (v >= INT32_MIN) return I32(static_cast<int32_t>(v));
    return I64(v);
  }
  MsgpackWriter& Str(std::string_view s) {
    if (s.size() < 32) return FixStr(s);
    if (s.size() <= 0xff) return Str8(s);
    if (s.size() <= 0xffff) return Str16(s);
    return Str32(s);
  }
  MsgpackWriter& Bin(std::string_view s) {
    if (s.size() <= 0xff) return Bin8(s);
    if (s.size() <= 0xffff) return Bin16(s);
    return Bin32(s);
  }
  MsgpackWriter& Array(uint32_t n) { return n < 16 ? FixArray(n) : n <= 0xffff ? Array16(n) : Array32(n); }
  MsgpackWriter& Map(uint32_t n) { return n < 16 ? FixMap(n) : n <= 0xffff ? Map16(n) : Map32(n); }

  MsgpackWriter& Raw(std::string_view bytes) {
    out_.append(bytes);
    return *this;
  }
  MsgpackWriter& Byte(uint8_t b) {
    out_.push_back(static_cast<char>(b));
    return *this;
  }

  const std::string& data() const { return out_; }
  std::string Take() { return std::move(out_); }
  size_t size() const { return out_.size(); }

 private:
  MsgpackWriter& Be(uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }

  std::string out_;
};

}  // namespace dogwatch::trace::testing
