#include "agent-core/forwarder/transaction_file.h"

#include <zlib.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace dogwatch::forwarder {
namespace {

constexpr char kMagic[4] = {'D', 'W', 'T', 'X'};
// The CRC covers everything except the attempts counter [8, 12) and the CRC itself.
constexpr size_t kChecksumStart = 12;
constexpr size_t kTrailerBytes = 4;
// magic..created, path length, header count, body length, CRC.
constexpr size_t kMinFileBytes = 20 + 4 + 4 + 8 + kTrailerBytes;

void PutU32(std::string& out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void PutU64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t GetLittleEndian(std::string_view bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    value |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  }
  return value;
}

uint32_t Crc32(uint32_t crc, std::string_view bytes) {
  return static_cast<uint32_t>(crc32_z(crc, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
}

// RFC 7230 "tchar": what a header name may contain.
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

// Sequential reader over the untrusted file: every read is checked against what remains.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  bool ReadU32(uint32_t* value) {
    if (data_.size() < 4) return false;
    *value = static_cast<uint32_t>(GetLittleEndian(data_.substr(0, 4)));
    data_.remove_prefix(4);
    return true;
  }
  bool ReadU64(uint64_t* value) {
    if (data_.size() < 8) return false;
    *value = GetLittleEndian(data_.substr(0, 8));
    data_.remove_prefix(8);
    return true;
  }
  // A u32 length, bounded by `max` and by what remains, then that many bytes.
  absl::Status ReadString(const char* what, size_t max, std::string* out) {
    uint32_t length = 0;
    if (!ReadU32(&length)) return Truncated(what);
    if (length > max) {
      return absl::DataLossError(
          absl::StrCat("transaction file: ", what, " length ", length, " exceeds limit ", max));
    }
    if (length > data_.size()) return Truncated(what);
    out->assign(data_.data(), length);
    data_.remove_prefix(length);
    return absl::OkStatus();
  }
  std::string_view remaining() const { return data_; }
  void Skip(size_t n) { data_.remove_prefix(n); }

  static absl::Status Truncated(const char* what) {
    return absl::DataLossError(absl::StrCat("transaction file: truncated in ", what));
  }

 private:
  std::string_view data_;
};

}  // namespace

absl::Status ValidateTransactionMeta(const TransactionMeta& meta) {
  if (meta.path.empty() || meta.path.front() != '/') {
    return absl::InvalidArgumentError("path must start with '/'");
  }
  if (meta.path.size() > kMaxPathBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("path is ", meta.path.size(), " bytes, limit ", kMaxPathBytes));
  }
  for (char c : meta.path) {
    // Control characters or spaces would corrupt the request line.
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("path contains a space or control character");
    }
  }
  if (meta.headers.size() > kMaxHeaders) {
    return absl::InvalidArgumentError(absl::StrCat(meta.headers.size(), " headers, limit ", kMaxHeaders));
  }
  for (const auto& [name, value] : meta.headers) {
    if (name.empty() || name.size() > kMaxHeaderNameBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("header name must be 1..", kMaxHeaderNameBytes, " bytes"));
    }
    for (char c : name) {
      if (!IsTokenChar(c)) {
        return absl::InvalidArgumentError("header name contains a character not allowed in a token");
      }
    }
    if (value.size() > kMaxHeaderValueBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("header '", name, "' value exceeds ", kMaxHeaderValueBytes, " bytes"));
    }
    for (char c : value) {
      // CR/LF would let a value start a new header or end the header block.
      if (c == '\r' || c == '\n' || c == '\0') {
        return absl::InvalidArgumentError(absl::StrCat("header '", name, "' value contains CR, LF or NUL"));
      }
    }
  }
  return absl::OkStatus();
}

std::string EncodeTransactionPrefix(const TransactionMeta& meta, size_t body_size) {
  std::string out;
  out.reserve(TransactionFileSize(meta, 0));
  out.append(kMagic, sizeof(kMagic));
  out.push_back(static_cast<char>(kTransactionFileVersion));
  out.push_back(static_cast<char>(meta.track));
  out.append(2, '\0');
  PutU32(out, meta.attempts);
  PutU64(out, static_cast<uint64_t>(meta.created_unix_ms));
  PutU32(out, static_cast<uint32_t>(meta.path.size()));
  out.append(meta.path);
  PutU32(out, static_cast<uint32_t>(meta.headers.size()));
  for (const auto& [name, value] : meta.headers) {
    PutU32(out, static_cast<uint32_t>(name.size()));
    out.append(name);
    PutU32(out, static_cast<uint32_t>(value.size()));
    out.append(value);
  }
  PutU64(out, body_size);
  return out;
}

std::string EncodeTransactionTrailer(std::string_view prefix, std::string_view body) {
  uint32_t crc = Crc32(0, prefix.substr(0, std::min(kAttemptsOffset, prefix.size())));
  crc = Crc32(crc, prefix.substr(std::min(kChecksumStart, prefix.size())));
  crc = Crc32(crc, body);
  std::string out;
  PutU32(out, crc);
  return out;
}

std::string SerializeTransactionFile(const StoredTransaction& txn) {
  std::string file = EncodeTransactionPrefix(txn.meta, txn.body.size());
  const std::string trailer = EncodeTransactionTrailer(file, txn.body);
  file.append(txn.body);
  file.append(trailer);
  return file;
}

size_t TransactionFileSize(const TransactionMeta& meta, size_t body_size) {
  size_t size = kMinFileBytes + meta.path.size() + body_size;
  for (const auto& [name, value] : meta.headers) size += 8 + name.size() + value.size();
  return size;
}

absl::StatusOr<StoredTransaction> ParseTransactionFile(std::string_view file) {
  if (file.size() < kMinFileBytes) {
    return absl::DataLossError(
        absl::StrCat("transaction file: ", file.size(), " bytes is shorter than the smallest valid file"));
  }
  if (std::memcmp(file.data(), kMagic, sizeof(kMagic)) != 0) {
    return absl::DataLossError("transaction file: bad magic");
  }
  if (static_cast<uint8_t>(file[4]) != kTransactionFileVersion) {
    return absl::DataLossError(absl::StrCat("transaction file: unsupported version ",
                                            static_cast<int>(static_cast<uint8_t>(file[4]))));
  }
  if (file[6] != '\0' || file[7] != '\0') {
    return absl::DataLossError("transaction file: reserved bytes are not zero");
  }
  const std::string_view checked = file.substr(kChecksumStart, file.size() - kChecksumStart - kTrailerBytes);
  const uint32_t stored_crc =
      static_cast<uint32_t>(GetLittleEndian(file.substr(file.size() - kTrailerBytes)));
  if (Crc32(Crc32(0, file.substr(0, kAttemptsOffset)), checked) != stored_crc) {
    return absl::DataLossError("transaction file: checksum mismatch (torn or modified file)");
  }

  StoredTransaction txn;
  txn.meta.track = static_cast<uint8_t>(file[5]);
  txn.meta.attempts = static_cast<uint32_t>(GetLittleEndian(file.substr(kAttemptsOffset, 4)));
  Reader reader(checked);
  uint64_t created = 0;
  if (!reader.ReadU64(&created)) return Reader::Truncated("created time");
  txn.meta.created_unix_ms = static_cast<int64_t>(created);
  if (auto status = reader.ReadString("path", kMaxPathBytes, &txn.meta.path); !status.ok()) {
    return status;
  }
  uint32_t header_count = 0;
  if (!reader.ReadU32(&header_count)) return Reader::Truncated("header count");
  // Each header needs at least its two length fields: a huge count cannot make us reserve memory.
  if (header_count > kMaxHeaders || header_count > reader.remaining().size() / 8) {
    return absl::DataLossError(
        absl::StrCat("transaction file: header count ", header_count, " is not plausible"));
  }
  txn.meta.headers.reserve(header_count);
  for (uint32_t i = 0; i < header_count; ++i) {
    std::string name, value;
    if (auto status = reader.ReadString("header name", kMaxHeaderNameBytes, &name); !status.ok()) {
      return status;
    }
    if (auto status = reader.ReadString("header value", kMaxHeaderValueBytes, &value); !status.ok()) {
      return status;
    }
    txn.meta.headers.emplace_back(std::move(name), std::move(value));
  }
  uint64_t body_size = 0;
  if (!reader.ReadU64(&body_size)) return Reader::Truncated("body length");
  if (body_size > kMaxBodyBytes) {
    return absl::DataLossError(
        absl::StrCat("transaction file: body length ", body_size, " exceeds limit ", kMaxBodyBytes));
  }
  if (body_size != reader.remaining().size()) {
    return absl::DataLossError(absl::StrCat("transaction file: body length ", body_size,
                                            " does not match the ", reader.remaining().size(),
                                            " bytes present"));
  }
  txn.body.assign(reader.remaining().data(), body_size);
  if (auto status = ValidateTransactionMeta(txn.meta); !status.ok()) {
    return absl::DataLossError(absl::StrCat("transaction file: ", status.message()));
  }
  return txn;
}

}  // namespace dogwatch::forwarder
