#include "trace-agent/stats/msgpack.h"

#include <bit>
#include <cmath>
#include <limits>

#include "common/strings/strings.h"

namespace dogwatch::trace::stats {

// ---------------------------------------------------------------------------------------------------
// Writer

void MsgpackWriter::BigEndian(uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) Byte(static_cast<uint8_t>(v >> (8 * i)));
}

void MsgpackWriter::Nil() { Byte(0xc0); }

void MsgpackWriter::Bool(bool v) { Byte(v ? 0xc3 : 0xc2); }

void MsgpackWriter::Uint(uint64_t v) {
  if (v < 0x80) {
    Byte(static_cast<uint8_t>(v));
  } else if (v <= 0xff) {
    Byte(0xcc);
    BigEndian(v, 1);
  } else if (v <= 0xffff) {
    Byte(0xcd);
    BigEndian(v, 2);
  } else if (v <= 0xffffffff) {
    Byte(0xce);
    BigEndian(v, 4);
  } else {
    Byte(0xcf);
    BigEndian(v, 8);
  }
}

void MsgpackWriter::Int(int64_t v) {
  if (v >= 0) return Uint(static_cast<uint64_t>(v));
  if (v >= -32) {
    Byte(static_cast<uint8_t>(v));  // negative fixint
  } else if (v >= std::numeric_limits<int8_t>::min()) {
    Byte(0xd0);
    BigEndian(static_cast<uint64_t>(v), 1);
  } else if (v >= std::numeric_limits<int16_t>::min()) {
    Byte(0xd1);
    BigEndian(static_cast<uint64_t>(v), 2);
  } else if (v >= std::numeric_limits<int32_t>::min()) {
    Byte(0xd2);
    BigEndian(static_cast<uint64_t>(v), 4);
  } else {
    Byte(0xd3);
    BigEndian(static_cast<uint64_t>(v), 8);
  }
}

void MsgpackWriter::Double(double v) {
  Byte(0xcb);
  BigEndian(std::bit_cast<uint64_t>(v), 8);
}

void MsgpackWriter::String(std::string_view v) {
  const size_t n = v.size();
  if (n < 32) {
    Byte(static_cast<uint8_t>(0xa0 | n));
  } else if (n <= 0xff) {
    Byte(0xd9);
    BigEndian(n, 1);
  } else if (n <= 0xffff) {
    Byte(0xda);
    BigEndian(n, 2);
  } else {
    Byte(0xdb);
    BigEndian(n, 4);
  }
  out_->append(v);
}

void MsgpackWriter::Binary(std::string_view v) {
  const size_t n = v.size();
  if (n <= 0xff) {
    Byte(0xc4);
    BigEndian(n, 1);
  } else if (n <= 0xffff) {
    Byte(0xc5);
    BigEndian(n, 2);
  } else {
    Byte(0xc6);
    BigEndian(n, 4);
  }
  out_->append(v);
}

void MsgpackWriter::ArrayHeader(uint32_t n) {
  if (n < 16) {
    Byte(static_cast<uint8_t>(0x90 | n));
  } else if (n <= 0xffff) {
    Byte(0xdc);
    BigEndian(n, 2);
  } else {
    Byte(0xdd);
    BigEndian(n, 4);
  }
}

void MsgpackWriter::MapHeader(uint32_t n) {
  if (n < 16) {
    Byte(static_cast<uint8_t>(0x80 | n));
  } else if (n <= 0xffff) {
    Byte(0xde);
    BigEndian(n, 2);
  } else {
    Byte(0xdf);
    BigEndian(n, 4);
  }
}

// ---------------------------------------------------------------------------------------------------
// Reader

namespace {
uint8_t At(std::string_view d, size_t i) { return static_cast<uint8_t>(d[i]); }
}  // namespace

absl::Status MsgpackReader::Error(std::string_view what) const {
  return absl::InvalidArgumentError(strings::Cat("msgpack: ", what, " at byte ", pos_));
}

absl::Status MsgpackReader::Need(size_t n) const {
  if (remaining() < n) {
    return Error(strings::Cat("unexpected end of input (need ", n, " bytes, ", remaining(), " left)"));
  }
  return absl::OkStatus();
}

uint64_t MsgpackReader::ReadBigEndian(int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | At(data_, pos_ + i);
  pos_ += bytes;
  return v;
}

std::string_view MsgpackReader::TypeName(uint8_t m) const {
  if (m <= 0x7f || m >= 0xe0 || (m >= 0xcc && m <= 0xd3)) return "integer";
  if (m <= 0x8f || m == 0xde || m == 0xdf) return "map";
  if (m <= 0x9f || m == 0xdc || m == 0xdd) return "array";
  if (m <= 0xbf || (m >= 0xd9 && m <= 0xdb)) return "string";
  switch (m) {
    case 0xc0:
      return "nil";
    case 0xc2:
    case 0xc3:
      return "bool";
    case 0xc4:
    case 0xc5:
    case 0xc6:
      return "binary";
    case 0xca:
    case 0xcb:
      return "float";
    case 0xc1:
      return "reserved byte 0xc1";
    default:
      return "extension";
  }
}

absl::StatusOr<MsgpackReader::Type> MsgpackReader::Peek() const {
  if (AtEnd()) return Error("unexpected end of input");
  const uint8_t m = At(data_, pos_);
  if (m <= 0x7f || m >= 0xe0 || (m >= 0xcc && m <= 0xd3)) return Type::kInt;
  if (m <= 0x8f || m == 0xde || m == 0xdf) return Type::kMap;
  if (m <= 0x9f || m == 0xdc || m == 0xdd) return Type::kArray;
  if (m <= 0xbf || (m >= 0xd9 && m <= 0xdb)) return Type::kString;
  switch (m) {
    case 0xc0:
      return Type::kNil;
    case 0xc2:
    case 0xc3:
      return Type::kBool;
    case 0xc4:
    case 0xc5:
    case 0xc6:
      return Type::kBinary;
    case 0xca:
    case 0xcb:
      return Type::kFloat;
    case 0xc1:
      return Error("reserved byte 0xc1");
    default:
      return Type::kExt;
  }
}

bool MsgpackReader::TryNil() {
  if (!AtEnd() && At(data_, pos_) == 0xc0) {
    ++pos_;
    return true;
  }
  return false;
}

absl::StatusOr<uint32_t> MsgpackReader::ReadContainerHeader(bool map) {
  if (auto s = Need(1); !s.ok()) return s;
  const uint8_t m = At(data_, pos_);
  uint64_t n;
  if (map && m >= 0x80 && m <= 0x8f) {
    n = m & 0x0f;
    pos_ += 1;
  } else if (!map && m >= 0x90 && m <= 0x9f) {
    n = m & 0x0f;
    pos_ += 1;
  } else if (m == (map ? 0xde : 0xdc)) {
    if (auto s = Need(3); !s.ok()) return s;
    pos_ += 1;
    n = ReadBigEndian(2);
  } else if (m == (map ? 0xdf : 0xdd)) {
    if (auto s = Need(5); !s.ok()) return s;
    pos_ += 1;
    n = ReadBigEndian(4);
  } else {
    return Error(strings::Cat("expected ", map ? "map" : "array", ", got ", TypeName(m)));
  }
  const uint64_t min_bytes = map ? 2 * n : n;
  if (min_bytes > remaining()) {
    return Error(strings::Cat(map ? "map" : "array", " of ", n, " elements cannot fit in the ", remaining(),
                              " bytes left"));
  }
  return static_cast<uint32_t>(n);
}

absl::StatusOr<uint32_t> MsgpackReader::ReadArrayHeader() { return ReadContainerHeader(false); }
absl::StatusOr<uint32_t> MsgpackReader::ReadMapHeader() { return ReadContainerHeader(true); }

absl::StatusOr<std::string_view> MsgpackReader::ReadRaw(bool want_string) {
  if (auto s = Need(1); !s.ok()) return s;
  const uint8_t m = At(data_, pos_);
  int len_bytes = 0;
  uint64_t n = 0;
  if (m >= 0xa0 && m <= 0xbf) {
    n = m & 0x1f;
  } else if (m == 0xd9 || m == 0xc4) {
    len_bytes = 1;
  } else if (m == 0xda || m == 0xc5) {
    len_bytes = 2;
  } else if (m == 0xdb || m == 0xc6) {
    len_bytes = 4;
  } else {
    return Error(strings::Cat("expected ", want_string ? "string" : "binary", ", got ", TypeName(m)));
  }
  if (auto s = Need(1 + len_bytes); !s.ok()) return s;
  pos_ += 1;
  if (len_bytes) n = ReadBigEndian(len_bytes);
  if (n > remaining()) {
    return Error(strings::Cat(TypeName(m), " of ", n, " bytes runs past the ", remaining(), " bytes left"));
  }
  std::string_view out = data_.substr(pos_, static_cast<size_t>(n));
  pos_ += static_cast<size_t>(n);
  return out;
}

absl::StatusOr<std::string_view> MsgpackReader::ReadString() { return ReadRaw(true); }
absl::StatusOr<std::string_view> MsgpackReader::ReadBytes() { return ReadRaw(false); }

absl::StatusOr<int64_t> MsgpackReader::ReadInt() {
  if (auto s = Need(1); !s.ok()) return s;
  const uint8_t m = At(data_, pos_);
  if (m <= 0x7f) {
    ++pos_;
    return int64_t{m};
  }
  if (m >= 0xe0) {
    ++pos_;
    return int64_t{static_cast<int8_t>(m)};
  }
  int bytes = 0;
  bool is_signed = false, is_float = false;
  switch (m) {
    case 0xcc:
      bytes = 1;
      break;
    case 0xcd:
      bytes = 2;
      break;
    case 0xce:
      bytes = 4;
      break;
    case 0xcf:
      bytes = 8;
      break;
    case 0xd0:
      bytes = 1, is_signed = true;
      break;
    case 0xd1:
      bytes = 2, is_signed = true;
      break;
    case 0xd2:
      bytes = 4, is_signed = true;
      break;
    case 0xd3:
      bytes = 8, is_signed = true;
      break;
    case 0xca:
      bytes = 4, is_float = true;
      break;
    case 0xcb:
      bytes = 8, is_float = true;
      break;
    default:
      return Error(strings::Cat("expected integer, got ", TypeName(m)));
  }
  if (auto s = Need(1 + bytes); !s.ok()) return s;
  const size_t start = pos_;
  pos_ += 1;
  const uint64_t raw = ReadBigEndian(bytes);
  if (is_float) {
    const double d = bytes == 4 ? static_cast<double>(std::bit_cast<float>(static_cast<uint32_t>(raw)))
                                : std::bit_cast<double>(raw);
    // Tolerate integral floats (some tracers write counts as floats); refuse anything lossy.
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != std::trunc(d)) {
      pos_ = start;
      return Error(strings::Cat("expected integer, got float ", d));
    }
    return static_cast<int64_t>(d);
  }
  if (!is_signed) {
    if (bytes == 8 && raw > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      pos_ = start;
      return Error("unsigned integer does not fit int64");
    }
    return static_cast<int64_t>(raw);
  }
  // Sign-extend from the encoded width.
  const int shift = 64 - 8 * bytes;
  return static_cast<int64_t>(raw << shift) >> shift;
}

absl::StatusOr<uint64_t> MsgpackReader::ReadUint() {
  if (auto s = Need(1); !s.ok()) return s;
  const uint8_t m = At(data_, pos_);
  if (m == 0xcf) {  // the one width that may exceed int64
    if (auto s = Need(9); !s.ok()) return s;
    pos_ += 1;
    return ReadBigEndian(8);
  }
  if (m == 0xcb) {  // float64 may hold integral values up to 2^64
    if (auto s = Need(9); !s.ok()) return s;
    uint64_t bits = 0;
    for (int i = 1; i <= 8; ++i) bits = (bits << 8) | At(data_, pos_ + i);
    const double d = std::bit_cast<double>(bits);
    if (d >= 9223372036854775808.0 && d < 18446744073709551616.0 && d == std::trunc(d)) {
      pos_ += 9;
      return static_cast<uint64_t>(d);
    }
  }
  const size_t start = pos_;
  auto v = ReadInt();
  if (!v.ok()) return v.status();
  if (*v < 0) {
    pos_ = start;
    return Error(strings::Cat("expected unsigned integer, got ", *v));
  }
  return static_cast<uint64_t>(*v);
}

absl::StatusOr<double> MsgpackReader::ReadDouble() {
  if (auto s = Need(1); !s.ok()) return s;
  const uint8_t m = At(data_, pos_);
  if (m == 0xcb || m == 0xca) {
    const int bytes = m == 0xcb ? 8 : 4;
    if (auto s = Need(1 + bytes); !s.ok()) return s;
    pos_ += 1;
    const uint64_t raw = ReadBigEndian(bytes);
    return bytes == 8 ? std::bit_cast<double>(raw)
                      : static_cast<double>(std::bit_cast<float>(static_cast<uint32_t>(raw)));
  }
  if (m == 0xcf) {
    auto v = ReadUint();
    if (!v.ok()) return v.status();
    return static_cast<double>(*v);
  }
  auto v = ReadInt();
  if (!v.ok()) return v.status();
  return static_cast<double>(*v);
}

absl::StatusOr<bool> MsgpackReader::ReadBool() {
  if (auto s = Need(1); !s.ok()) return s;
  const uint8_t m = At(data_, pos_);
  if (m == 0xc2 || m == 0xc3) {
    ++pos_;
    return m == 0xc3;
  }
  if (m == 0x00 || m == 0x01) {
    ++pos_;
    return m == 0x01;
  }
  return Error(strings::Cat("expected bool, got ", TypeName(m)));
}

absl::Status MsgpackReader::Skip() { return SkipDepth(0); }

absl::Status MsgpackReader::SkipDepth(int depth) {
  if (depth > max_depth_) return Error(strings::Cat("nesting deeper than ", max_depth_));
  if (auto s = Need(1); !s.ok()) return s;
  const uint8_t m = At(data_, pos_);
  auto skip_bytes = [this](size_t header, size_t n) -> absl::Status {
    if (auto s = Need(header + n); !s.ok()) return s;
    pos_ += header + n;
    return absl::OkStatus();
  };
  auto ext = [this](int len_bytes) -> absl::Status {
    if (auto s = Need(1 + len_bytes); !s.ok()) return s;
    pos_ += 1;
    const uint64_t n = ReadBigEndian(len_bytes);
    if (remaining() < 1 + n) return Error("extension runs past the end of input");
    pos_ += 1 + n;  // type byte + data
    return absl::OkStatus();
  };
  if (m <= 0x7f || m >= 0xe0 || m == 0xc0 || m == 0xc2 || m == 0xc3) return skip_bytes(1, 0);
  if ((m >= 0x80 && m <= 0x8f) || m == 0xde || m == 0xdf || (m >= 0x90 && m <= 0x9f) || m == 0xdc ||
      m == 0xdd) {
    const bool map = (m >= 0x80 && m <= 0x8f) || m == 0xde || m == 0xdf;
    auto n = ReadContainerHeader(map);
    if (!n.ok()) return n.status();
    const uint64_t items = map ? 2 * uint64_t{*n} : *n;
    for (uint64_t i = 0; i < items; ++i) {
      if (auto s = SkipDepth(depth + 1); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  if ((m >= 0xa0 && m <= 0xbf) || (m >= 0xd9 && m <= 0xdb) || (m >= 0xc4 && m <= 0xc6)) {
    auto raw = ReadRaw((m & 0xe0) == 0xa0 || (m >= 0xd9 && m <= 0xdb));
    return raw.ok() ? absl::OkStatus() : raw.status();
  }
  switch (m) {
    case 0xcc:
    case 0xd0:
      return skip_bytes(1, 1);
    case 0xcd:
    case 0xd1:
      return skip_bytes(1, 2);
    case 0xce:
    case 0xd2:
    case 0xca:
      return skip_bytes(1, 4);
    case 0xcf:
    case 0xd3:
    case 0xcb:
      return skip_bytes(1, 8);
    case 0xd4:
      return skip_bytes(2, 1);  // fixext 1: type + 1 byte
    case 0xd5:
      return skip_bytes(2, 2);
    case 0xd6:
      return skip_bytes(2, 4);
    case 0xd7:
      return skip_bytes(2, 8);
    case 0xd8:
      return skip_bytes(2, 16);
    case 0xc7:
      return ext(1);
    case 0xc8:
      return ext(2);
    case 0xc9:
      return ext(4);
    default:
      return Error(strings::Cat("invalid marker byte ", static_cast<int>(m)));
  }
}

}  // namespace dogwatch::trace::stats
